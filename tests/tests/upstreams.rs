//! Choosing an upstream: endpoints that refuse or never answer are skipped;
//! a cluster with no endpoint answering closes the client promptly.

use std::time::{Duration, Instant};

use ringway_kit::origin::CountingOrigin;
use ringway_kit::ports::dead_endpoint;
use ringway_kit::Ringway;
use ringway_tests::net::{assert_closed_without_a_byte, assert_echoed, Blackhole};
use ringway_tests::ProxyConfig;

/// "Promptly", for things the proxy must do at once.
const PROMPTLY: Duration = Duration::from_secs(5);

/// How long the proxy holds out an endpoint whose connect failed.
const HOLD_DOWN: Duration = Duration::from_secs(2);

#[test]
fn dead_first_endpoint_is_skipped() {
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[dead_endpoint(), origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    for i in 0..6 {
        assert_echoed(config.listen, i);
    }

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("no_upstream"), 0);
    // Round robin starts every other connection on the dead endpoint.
    assert!(exit.total("connect_failures") >= 1, "{}", exit.stderr);
}

#[test]
fn unreachable_cluster_closes_the_client_promptly() {
    let config = ProxyConfig::new(&[dead_endpoint(), dead_endpoint()]);
    let proxy = Ringway::start(&config.to_toml());

    let first = Instant::now();
    for _ in 0..3 {
        let started = Instant::now();
        assert_closed_without_a_byte(config.listen, PROMPTLY);
        assert!(started.elapsed() < PROMPTLY);
    }
    let all_within_hold_down = first.elapsed() < HOLD_DOWN;

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("no_upstream"), 3);
    // The first client tries both endpoints; both are then held out, so the
    // others are closed without a connect (unless a slow machine spread
    // them past the hold-down: then each endpoint is tried at most once
    // per client).
    let failures = exit.total("connect_failures");
    if all_within_hold_down {
        assert_eq!(failures, 2);
    } else {
        assert!((2..=6).contains(&failures), "{failures}");
    }
}

#[test]
fn blackholed_endpoint_times_out_and_the_next_one_serves() {
    let blackhole = Blackhole::new();
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[blackhole.addr(), origin.addr()]).connect_timeout("300ms");
    let proxy = Ringway::start(&config.to_toml());

    for i in 0..4 {
        let started = Instant::now();
        assert_echoed(config.listen, i);
        assert!(
            started.elapsed() < PROMPTLY,
            "connection {i} took {:?}",
            started.elapsed()
        );
    }

    let exit = proxy.stop();
    exit.assert_clean();
    assert!(exit.total("connect_timeouts") >= 1, "{}", exit.stderr);
    assert_eq!(exit.total("no_upstream"), 0);
}
