//! TCP listeners fail over and hold dead endpoints out as HTTP ones do: a
//! connect refused by an endpoint moves on to the next one, the worker holds
//! the failed endpoint out for the hold-down (2 s) instead of trying it for
//! every connection, and tries it again once the hold-down passed. A
//! cluster whose every endpoint is held out closes the client without
//! trying any.

use std::thread;
use std::time::{Duration, Instant};

use ringway_kit::admin;
use ringway_kit::origin::CountingOrigin;
use ringway_kit::wait;
use ringway_kit::Ringway;
use ringway_tests::net::{assert_closed_without_a_byte, assert_echoed, Refusing};
use ringway_tests::ProxyConfig;

/// How long the proxy holds out an endpoint whose connect failed
/// (`upstream::health::HOLD_DOWN`).
const HOLD_DOWN: Duration = Duration::from_secs(2);

/// Slack past the hold-down before the test counts on it having ended:
/// the proxy reads a clock cached per loop turn.
const SLACK: Duration = Duration::from_millis(300);

/// How long the proxy's counters may take to show what a client saw.
const SOON: Duration = Duration::from_secs(10);

fn connect_failures(config: &ProxyConfig) -> u64 {
    admin::stats(config.admin).sum("connect_failures")
}

#[test]
fn a_refused_endpoint_is_failed_over_held_out_then_tried_again() {
    let dead = Refusing::new();
    let origin = CountingOrigin::echo();
    // One worker: its round robin alternates between the two endpoints, so
    // of any two connections in a row exactly one starts on the dead one.
    let config = ProxyConfig::new(&[dead.addr, origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    // (a) Both connections are served; the one that started on the dead
    // endpoint failed over to the live one, after one refused connect.
    let started = Instant::now();
    assert_echoed(config.listen, 0);
    assert_echoed(config.listen, 1);
    let first_failed_by = Instant::now();
    assert_eq!(connect_failures(&config), 1, "{}", proxy.stderr());

    // (b) Within the hold-down the dead endpoint is not tried again, though
    // half of these connections start on it: each goes straight to the live
    // one.
    for i in 2..8 {
        assert_echoed(config.listen, i);
    }
    let phase_ended = Instant::now();
    let failures = connect_failures(&config);
    if phase_ended - started < HOLD_DOWN {
        assert_eq!(
            failures, 1,
            "the dead endpoint was tried within its hold-down"
        );
    } else {
        // A machine so slow that the connections outlasted the hold-down:
        // the endpoint may have been tried again, but at most once per
        // hold-down, never once for every other connection (3 more).
        let windows = ((phase_ended - started).as_secs_f64() / HOLD_DOWN.as_secs_f64()) as u64;
        assert!(
            failures <= 1 + windows,
            "{failures} refused connects in {:?}: more than one per hold-down",
            phase_ended - started
        );
    }

    // (c) Once the hold-down passed (counted from the last moment a failure
    // could have happened), the dead endpoint is tried again: of two
    // connections, the one that starts on it meets the refusal (and fails
    // over), the other goes to the live endpoint first.
    let last_failure_by = if failures == 1 {
        first_failed_by
    } else {
        phase_ended
    };
    let resume = last_failure_by + HOLD_DOWN + SLACK;
    thread::sleep(resume.saturating_duration_since(Instant::now()));
    assert_echoed(config.listen, 8);
    assert_echoed(config.listen, 9);
    assert_eq!(
        connect_failures(&config),
        failures + 1,
        "the dead endpoint was not tried again after its hold-down"
    );

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("no_upstream"), 0);
    assert_eq!(exit.total("connect_timeouts"), 0);
    assert_eq!(exit.total("connect_failures"), failures + 1);
}

/// The counters `no_upstream` and `connect_failures` once `no_upstream`
/// reached `expected`.
fn after_no_upstream(config: &ProxyConfig, expected: u64) -> (u64, u64) {
    wait::poll("no_upstream counted", SOON, || {
        let stats = admin::stats(config.admin);
        let seen = (stats.sum("no_upstream"), stats.sum("connect_failures"));
        if seen.0 >= expected {
            Ok(seen)
        } else {
            Err(format!("{seen:?}"))
        }
    })
}

#[test]
fn a_cluster_held_out_whole_closes_the_client_without_a_connect() {
    let dead = Refusing::new();
    let config = ProxyConfig::new(&[dead.addr]);
    let proxy = Ringway::start(&config.to_toml());

    // The first client's connect is refused: the endpoint is held out.
    let started = Instant::now();
    assert_closed_without_a_byte(config.listen, SOON);
    assert_eq!(after_no_upstream(&config, 1), (1, 1));

    // Within the hold-down the next client finds no endpoint to try: it is
    // closed all the same, and no connect is made.
    assert_closed_without_a_byte(config.listen, SOON);
    let (no_upstream, failures) = after_no_upstream(&config, 2);
    assert_eq!(no_upstream, 2);
    if started.elapsed() < HOLD_DOWN {
        assert_eq!(failures, 1, "a held-out endpoint was tried");
    } else {
        // Too slow a machine to stay within one hold-down: the second
        // client may have tried the endpoint again after it ended.
        assert!(failures <= 2, "{failures} refused connects for two clients");
    }

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("no_upstream"), 2);
    assert_eq!(exit.total("connect_failures"), failures);
}
