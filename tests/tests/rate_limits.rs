//! Rate limits with real clients: a route's `rate_limit` held within ±5%
//! under three times its rate, on one worker and on two however the
//! connections spread; its 429s (`retry-after`, `x-ringway-error:
//! rate_limited`) counted on the route; keyed limits (client address,
//! header) that keep a noisy client from a quiet one; the fixed key table
//! under a flood of distinct keys; a listener's `connection_rate_limit`;
//! and mistakes in the keys refused with their line.
//!
//! Accuracy is a matter of counts: GCRA accepts `burst + rate x span` over
//! a span, exactly, whatever the spread of requests over workers. The
//! span the tests divide by is the client's (first request written to last
//! answer read), a little longer than the proxy's.
#![allow(
    clippy::disallowed_types,
    reason = "a lock on a test thread keeps the heavy tests apart; no worker takes it"
)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::ports::free_port;
use ringway_kit::{admin, procfs, CountingOrigin, Ringway};
use ringway_tests::access_log;
use ringway_tests::http_client::{metric_sum, wait_metric};
use ringway_tests::http_config::{AccessLog, HttpConfig, Route};
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::paced::{self, request_bytes, Answer, Load, Tally};

/// The route limit of the accuracy tests.
const LIMIT: u32 = 1000;
/// Its burst: small beside a second's worth (it adds 50 / 10,000 = 0.5%
/// to a 10 s count), large enough that a pause of up to 50 ms in the
/// proxy's turn on a shared core costs no accepted request.
const BURST: u32 = 50;
/// The load offered: three times the limit.
const OFFERED: u32 = 3 * LIMIT;
/// How long the accuracy runs send.
const RUN: Duration = Duration::from_secs(10);
const ERRORS: &str = "ringway_http_errors_total";

/// Held by the tests that load the machine (the accuracy runs and the
/// flood), so that they run one at a time. Every proxy of this file runs
/// its worker on core 0: run together, the flood's proxy would take core 0
/// from an accuracy run's in slices longer than its burst lasts (50 ms),
/// and the requests of each slice would find the bucket holding only its
/// burst. The limit counts requests when the proxy reads them; a proxy
/// kept from its core reads them late and in heaps.
static HEAVY: Mutex<()> = Mutex::new(());

/// Takes [`HEAVY`] (a test that failed holding it does not keep the others
/// from running).
fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A listener `web` whose route `limited` answers 200 directly under a
/// rate limit of `limit` (the inline table's keys), on `cores`.
fn direct_config(limit: &str, cores: Vec<usize>) -> HttpConfig {
    let mut config = HttpConfig::new().route(
        Route::new("limited")
            .direct(200, "ok", None)
            .key("rate_limit", &format!("{{ {limit} }}")),
    );
    config.worker_cores = cores;
    config
}

/// Runs the paced load of the accuracy tests over `connections` against
/// `config`'s proxy, checks every answer and the accepted rate, the
/// route's count of 429s, and returns the requests each worker served.
fn accuracy(config: &HttpConfig, connections: usize) -> (Tally, Vec<u64>) {
    let tally = paced::run(&Load {
        addr: config.listen,
        path: "/".to_owned(),
        headers: Vec::new(),
        rate: OFFERED,
        duration: RUN,
        connections,
    });
    assert_eq!(tally.answered(), tally.sent, "{tally:?}");
    assert_eq!(tally.other, 0, "answers neither 200 nor 429: {tally:?}");
    assert_eq!(tally.malformed_429, 0, "{tally:?}");
    let rate = tally.accepted_rate();
    let (low, high) = (f64::from(LIMIT) * 0.95, f64::from(LIMIT) * 1.05);
    assert!(
        (low..=high).contains(&rate),
        "accepted {rate:.1}/s ({} of {} in {:?}), not within 5% of {LIMIT}/s",
        tally.ok,
        tally.sent,
        tally.elapsed
    );
    // The route's count of refusals is the 429s; none is blamed on the
    // listener.
    let limited = tally.limited as f64;
    wait_metric(
        config.admin,
        ERRORS,
        &[("route", "limited"), ("reason", "rate_limited")],
        limited,
    );
    let metrics = admin::metrics(config.admin);
    let on_listener = metric_sum(
        &metrics,
        ERRORS,
        &[("route", ""), ("reason", "rate_limited")],
    );
    assert_eq!(on_listener, 0.0);
    let per_worker: Vec<u64> = (0..config.worker_cores.len())
        .map(|w| {
            let worker = w.to_string();
            metric_sum(
                &metrics,
                "ringway_worker_requests_total",
                &[("worker", worker.as_str())],
            ) as u64
        })
        .collect();
    assert_eq!(per_worker.iter().sum::<u64>(), tally.sent);
    eprintln!(
        "{connections} connection(s), {} worker(s): sent {}, 200 {}, 429 {}, {:?}: {rate:.1}/s accepted; per worker {per_worker:?}",
        config.worker_cores.len(),
        tally.sent,
        tally.ok,
        tally.limited,
        tally.elapsed
    );
    (tally, per_worker)
}

#[test]
fn a_route_limit_holds_within_five_percent_on_one_worker() {
    let _heavy = heavy();
    let config = direct_config(
        &format!("requests_per_second = {LIMIT}, burst = {BURST}"),
        vec![0],
    );
    let _proxy = Ringway::start(&config.to_toml());
    accuracy(&config, 4);
}

#[test]
fn a_route_limit_holds_with_two_workers_and_every_connection_on_one() {
    let _heavy = heavy();
    let config = direct_config(
        &format!("requests_per_second = {LIMIT}, burst = {BURST}"),
        vec![0, 1],
    );
    let _proxy = Ringway::start(&config.to_toml());
    let (tally, per_worker) = accuracy(&config, 1);
    // One connection: one worker served every request, the other none.
    let mut sorted = per_worker.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, tally.sent], "{per_worker:?}");
}

#[test]
fn a_route_limit_holds_with_two_workers_and_connections_spread() {
    let _heavy = heavy();
    let config = direct_config(
        &format!("requests_per_second = {LIMIT}, burst = {BURST}"),
        vec![0, 1],
    );
    let _proxy = Ringway::start(&config.to_toml());
    // 16 connections, spread by the kernel's SO_REUSEPORT hash of their
    // ports: both workers serve some, whatever the skew (all 16 on one
    // worker has odds of 2 in 65,536).
    let (_, per_worker) = accuracy(&config, 16);
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
}

/// Opens a connection to `to` from loopback address `from` (any of
/// 127.0.0.0/8 is this host's).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .unwrap_or_else(|e| panic!("cannot bind {from}: {e}"));
    socket
        .connect(&to.into())
        .unwrap_or_else(|e| panic!("cannot connect from {from} to {to}: {e}"));
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    stream
}

/// One request on `stream` with `headers`, and its answer.
fn exchange(stream: &mut std::io::BufReader<TcpStream>, headers: &[String]) -> Answer {
    stream
        .get_mut()
        .write_all(&request_bytes("/", headers))
        .expect("a request sent");
    paced::read_answer(stream).unwrap_or_else(|e| panic!("no answer: {e}"))
}

#[test]
fn a_refusal_is_a_429_with_retry_after_counted_on_the_route_before_any_upstream() {
    let origin = HttpOrigin::ok("from origin");
    let logs = tempfile::tempdir().expect("a temp dir");
    let log_path = logs.path().join("access.log");
    let log_path_text = log_path.to_str().expect("a UTF-8 path");
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(log_path_text).format("json"))
        .route(
            Route::new("api")
                .cluster("app")
                .key("rate_limit", "{ requests_per_second = 1, burst = 2 }"),
        )
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());
    let mut conn = std::io::BufReader::new(connect_from(Ipv4Addr::LOCALHOST, config.listen));
    // Five at once (the odds that a whole second passes between two of
    // them, refilling the bucket, are nil on loopback): the burst of two
    // goes through, the rest wait a second at most.
    let answers: Vec<Answer> = (0..5).map(|_| exchange(&mut conn, &[])).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    for a in &answers[2..] {
        assert_eq!(a.retry_after.as_deref(), Some("1"), "{a:?}");
        assert_eq!(a.error.as_deref(), Some("rate_limited"), "{a:?}");
    }
    // Refused before the action: the origin saw the two accepted only.
    assert_eq!(origin.requests().len(), 2);
    // The connection is kept: a refusal is not a reason to close it.
    let again = exchange(&mut conn, &[]);
    assert!(again.status == 429 || again.status == 200, "{again:?}");
    let refused = 3.0 + f64::from(u8::from(again.status == 429));
    wait_metric(
        config.admin,
        ERRORS,
        &[
            ("listener", "web"),
            ("route", "api"),
            ("reason", "rate_limited"),
        ],
        refused,
    );
    let metrics = admin::metrics(config.admin);
    let route_4xx = metric_sum(
        &metrics,
        "ringway_http_responses_total",
        &[("route", "api"), ("cluster", ""), ("class", "4xx")],
    );
    assert_eq!(route_4xx, refused);
    assert_eq!(
        metric_sum(
            &metrics,
            ERRORS,
            &[("route", ""), ("reason", "rate_limited")]
        ),
        0.0
    );
    // /stats shows the limit and the refusals on the route.
    let stats = admin::stats(config.admin);
    assert_eq!(stats.u64("/rate_limits/routes/0/requests_per_second"), 1);
    assert_eq!(stats.u64("/rate_limits/routes/0/burst"), 2);
    assert_eq!(
        stats.u64("/http/listeners/0/routes/0/errors/rate_limited"),
        refused as u64
    );
    // The access log names the reason, on the route, with no upstream.
    let lines = access_log::wait_lines(&log_path, 6, Duration::from_secs(10));
    let refusals: Vec<_> = lines
        .iter()
        .map(|l| access_log::json(l))
        .filter(|v| v["status"] == 429)
        .collect();
    assert_eq!(refusals.len() as f64, refused, "{lines:?}");
    for v in refusals {
        assert_eq!(v["error"], "rate_limited", "{v:?}");
        assert_eq!(v["route"], "api", "{v:?}");
        assert!(v["upstream"].is_null(), "{v:?}");
    }
}

/// A keyed limit (5 per second, burst 5, per `key`) keeps a noisy
/// client's flood from a quiet one: the noisy one is refused, the quiet
/// one's requests (within its own burst) all go through, before, during
/// and after the flood. `noisy` and `quiet` open a connection each and
/// give the header fields their requests carry.
fn isolation(
    key: &str,
    noisy: impl Fn(&HttpConfig) -> (TcpStream, Vec<String>),
    quiet: impl Fn(&HttpConfig) -> (TcpStream, Vec<String>),
) {
    let config = direct_config(
        &format!("requests_per_second = 5, burst = 5, key = \"{key}\", max_keys = 64"),
        vec![0],
    );
    let _proxy = Ringway::start(&config.to_toml());
    let (noisy_stream, noisy_headers) = noisy(&config);
    let (quiet_stream, quiet_headers) = quiet(&config);
    let mut noisy_conn = std::io::BufReader::new(noisy_stream);
    let mut quiet_conn = std::io::BufReader::new(quiet_stream);
    let started = Instant::now();
    let mut noisy_ok = 0u64;
    let mut noisy_limited = 0u64;
    let mut quiet_statuses = Vec::new();
    for i in 0..200 {
        match exchange(&mut noisy_conn, &noisy_headers).status {
            200 => noisy_ok += 1,
            429 => noisy_limited += 1,
            other => panic!("noisy client got {other}"),
        }
        // The quiet client's five requests go at the start, in the middle
        // and at the end of the flood.
        if [0, 1, 100, 198, 199].contains(&i) {
            quiet_statuses.push(exchange(&mut quiet_conn, &quiet_headers).status);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(quiet_statuses, [200; 5], "the quiet client was refused");
    assert!(noisy_limited > 0, "the noisy client was never refused");
    // At most its burst and its rate over the time it sent.
    let bound = 5.0 + 5.0 * elapsed + 1.0;
    assert!(
        noisy_ok as f64 <= bound,
        "noisy client got {noisy_ok} through in {elapsed:.2}s"
    );
    wait_metric(
        config.admin,
        ERRORS,
        &[("route", "limited"), ("reason", "rate_limited")],
        noisy_limited as f64,
    );
    let stats = admin::stats(config.admin);
    assert_eq!(stats.u64("/rate_limits/routes/0/keys_held"), 2);
    assert_eq!(stats.u64("/rate_limits/routes/0/key_slots"), 64);
}

#[test]
fn a_limit_keyed_by_client_address_isolates_a_noisy_client() {
    let from = |ip: [u8; 4]| {
        move |config: &HttpConfig| (connect_from(Ipv4Addr::from(ip), config.listen), Vec::new())
    };
    isolation("client_address", from([127, 0, 0, 2]), from([127, 0, 0, 3]));
}

#[test]
fn a_limit_keyed_by_a_header_isolates_a_noisy_client() {
    // Both from the same address: only the header tells them apart.
    let with = |value: &'static str| {
        move |config: &HttpConfig| {
            (
                connect_from(Ipv4Addr::LOCALHOST, config.listen),
                vec![format!("X-Api-Key: {value}")],
            )
        }
    };
    isolation("header:x-api-key", with("noisy"), with("quiet"));
}

/// Distinct keys in the flood test.
const FLOOD_KEYS: u64 = 100_000;
/// Bytes of each flood key's value.
const FLOOD_KEY_BYTES: usize = 128;
/// The most resident memory may grow over the flood: 1 MiB. State kept
/// per key would need at least its 16-byte fingerprint and TAT for each of
/// the 100,000 keys (1.6 MB) and, holding the value itself, 14.4 MB.
const FLOOD_RSS_BOUND: u64 = 1 << 20;

/// Requests with `count` distinct `x-api-key` values from `first` on,
/// each `FLOOD_KEY_BYTES` long, with one of key `noisy` every 100th.
fn flood_requests(first: u64, count: u64) -> Vec<Vec<u8>> {
    (first..first + count)
        .map(|i| {
            let value = if i % 100 == 0 {
                "noisy".to_owned()
            } else {
                format!("{i:0>width$}", width = FLOOD_KEY_BYTES)
            };
            request_bytes("/", &[format!("x-api-key: {value}")])
        })
        .collect()
}

#[test]
fn a_flood_of_distinct_keys_stays_in_the_fixed_table() {
    let _heavy = heavy();
    // A ring of 16 receive buffers (512 KiB): a pipelining client fills
    // every buffer of the ring it is given, and the pages of the default
    // ring (8 MiB) would become resident over the flood, whatever the
    // limit keeps.
    let config = direct_config(
        "requests_per_second = 1, burst = 1, key = \"header:x-api-key\", max_keys = 64",
        vec![0],
    )
    .runtime_key("buffer_count", "16");
    let proxy = Ringway::start(&config.to_toml());
    // A first flood brings the proxy's buffers and free lists to their
    // working size; the second is the one measured.
    let warm = paced::pipeline(config.listen, flood_requests(0, 20_000));
    assert!(warm.iter().all(|a| a.status == 200 || a.status == 429));
    let before = procfs::rss_bytes(proxy.pid());
    let answers = paced::pipeline(config.listen, flood_requests(20_000, FLOOD_KEYS));
    let after = procfs::rss_bytes(proxy.pid());
    let (mut ok, mut limited) = (0u64, 0u64);
    for a in &answers {
        match a.status {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("an answer of {other} in the flood: {a:?}"),
        }
    }
    assert_eq!(ok + limited, FLOOD_KEYS);
    let grown = after.saturating_sub(before);
    eprintln!(
        "flood of {FLOOD_KEYS} keys: 200 {ok}, 429 {limited}; VmRSS {before} -> {after} (+{grown} bytes)"
    );
    assert!(
        grown <= FLOOD_RSS_BOUND,
        "resident memory grew by {grown} bytes over the flood"
    );
    // The table held 64 keys throughout.
    let stats = admin::stats(config.admin);
    assert_eq!(stats.u64("/rate_limits/routes/0/key_slots"), 64);
    assert!(stats.u64("/rate_limits/routes/0/keys_held") <= 64);
    // The noisy key is still limited after the flood: of ten requests at
    // once, one may go through if the flood evicted its bucket (it comes
    // back full: one burst of 1), and one more if a second passed since
    // its last; the others are refused.
    let mut conn = std::io::BufReader::new(connect_from(Ipv4Addr::LOCALHOST, config.listen));
    let noisy = vec!["x-api-key: noisy".to_owned()];
    let statuses: Vec<u16> = (0..10)
        .map(|_| exchange(&mut conn, &noisy).status)
        .collect();
    let through = statuses.iter().filter(|&&s| s == 200).count();
    assert!(through <= 2, "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
}

/// A TCP listener `db` with `connection_rate_limit = { limit }` in front
/// of an echo origin.
fn tcp_config(listen: SocketAddr, admin: SocketAddr, origin: SocketAddr, limit: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]
drain_timeout = "5s"

[admin]
address = "{admin}"

[[listeners]]
name = "db"
address = "{listen}"
protocol = "tcp"
cluster = "app"
connection_rate_limit = {{ {limit} }}

[[clusters]]
name = "app"
endpoints = ["{origin}"]
"#
    )
}

#[test]
fn a_tcp_listener_limits_new_connections_per_second() {
    let origin = CountingOrigin::echo();
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let admin_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let text = tcp_config(
        listen,
        admin_addr,
        origin.addr(),
        "connections_per_second = 5, burst = 5",
    );
    let _proxy = Ringway::start(&text);
    let started = Instant::now();
    let (mut served, mut refused) = (0u64, 0u64);
    for i in 0..40 {
        let mut stream = TcpStream::connect(listen).expect("the kernel completes the handshake");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        let message = format!("ping {i}\n");
        // A refused connection is reset at accept: the write may still
        // succeed (it went before the reset came), the read cannot.
        let _ = stream.write_all(message.as_bytes());
        let mut echoed = vec![0u8; message.len()];
        match stream.read_exact(&mut echoed) {
            Ok(()) => {
                assert_eq!(echoed, message.as_bytes());
                served += 1;
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                    ),
                    "connection {i}: {e}"
                );
                refused += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(served >= 5, "only {served} of 40 served");
    assert!(
        served as f64 <= 5.0 + 5.0 * elapsed + 1.0,
        "{served} served in {elapsed:.2}s"
    );
    assert_eq!(served + refused, 40);
    wait_metric(
        admin_addr,
        "ringway_connections_rate_limited_total",
        &[("listener", "db")],
        refused as f64,
    );
    let stats = admin::stats(admin_addr);
    assert_eq!(stats.u64("/rate_limits/connections/0/limited"), refused);
}

#[test]
fn an_http_listener_limits_new_connections_per_second_too() {
    let config = direct_config("requests_per_second = 1000000", vec![0]).listener_key(
        "connection_rate_limit",
        "{ connections_per_second = 5, burst = 5 }",
    );
    let _proxy = Ringway::start(&config.to_toml());
    let started = Instant::now();
    let (mut served, mut refused) = (0u64, 0u64);
    for i in 0..30 {
        let stream = connect_from(Ipv4Addr::LOCALHOST, config.listen);
        let mut conn = std::io::BufReader::new(stream);
        // A refused connection is reset at accept: its request may go out
        // before the reset comes, its answer never does.
        let _ = conn.get_mut().write_all(&request_bytes("/", &[]));
        match paced::read_answer(&mut conn) {
            Ok(a) => {
                assert_eq!(a.status, 200, "connection {i}: {a:?}");
                served += 1;
            }
            Err(_) => refused += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(served >= 5, "only {served} of 30 served");
    assert!(
        served as f64 <= 5.0 + 5.0 * elapsed + 1.0,
        "{served} served in {elapsed:.2}s"
    );
    wait_metric(
        config.admin,
        "ringway_connections_rate_limited_total",
        &[("listener", "web")],
        refused as f64,
    );
    // Refused connections never reached the HTTP layer.
    let metrics = admin::metrics(config.admin);
    assert_eq!(
        metric_sum(
            &metrics,
            "ringway_http_requests_total",
            &[("listener", "web")]
        ),
        served as f64
    );
}

#[test]
fn mistakes_in_the_rate_limit_keys_are_refused_with_their_line() {
    let config = direct_config("requests_per_second = 10, key = \"cookie\"", vec![0]);
    let text = config.to_toml();
    let line = text
        .lines()
        .position(|l| l.contains("rate_limit"))
        .expect("the rate_limit line")
        + 1;
    let file = write_config(&text);
    let path = file.path().to_str().expect("a UTF-8 path");
    let out = run_to_exit(&["check", path], Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{path}:{line}:"))
            && stderr.contains("listeners[0].routes[0].rate_limit.key")
            && stderr.contains("unknown rate limit key \"cookie\""),
        "{stderr}"
    );
}

/// Requests answered 200 of `n` sent at once on a new connection.
fn through(listen: SocketAddr, n: usize) -> usize {
    let mut conn = std::io::BufReader::new(connect_from(Ipv4Addr::LOCALHOST, listen));
    (0..n)
        .map(|_| exchange(&mut conn, &[]).status)
        .inspect(|&s| assert!(s == 200 || s == 429, "status {s}"))
        .filter(|&s| s == 200)
        .count()
}

#[test]
fn a_reload_keeps_the_buckets_of_an_unchanged_limit_and_refills_a_changed_one() {
    let limit = "requests_per_second = 1, burst = 10";
    let config = direct_config(limit, vec![0]);
    let _proxy = Ringway::start(&config.to_toml());
    // The burst, then refusals.
    assert_eq!(through(config.listen, 15), 10);
    // Another route added, this one untouched: a reload must not hand
    // every client a fresh burst. Ten more at once get through only as
    // many as the seconds since the bucket emptied (a reload of 5 s or
    // more, on loopback, would be needed to pass five).
    let more = config
        .clone()
        .route(Route::new("other").path("/other").direct(200, "", None));
    let response = admin::post(config.admin, "/config", &more.to_toml());
    assert_eq!(response.status, 200, "{response:?}");
    admin::wait_generation(config.admin, 2, Duration::from_secs(10));
    let after = through(config.listen, 10);
    assert!(after <= 5, "{after} of 10 went through after the reload");
    // A changed limit starts full.
    let mut changed = direct_config("requests_per_second = 1, burst = 12", vec![0]);
    (changed.listen, changed.admin) = (config.listen, config.admin);
    let response = admin::post(config.admin, "/config", &changed.to_toml());
    assert_eq!(response.status, 200, "{response:?}");
    admin::wait_generation(config.admin, 3, Duration::from_secs(10));
    assert_eq!(through(config.listen, 12), 12);
}
