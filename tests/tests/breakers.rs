//! Circuit breakers per cluster: past a limit, a request is refused at once
//! with 503 `overflow` (a TCP connection is reset), counted; below it,
//! nothing changes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway_kit::admin;
use ringway_kit::wait::poll;
use ringway_kit::{CountingOrigin, Ringway};
use ringway_tests::http_client::{metric_sum, HttpConn, Req};
use ringway_tests::http_config::{Cluster, HttpConfig, Route};
use ringway_tests::http_origin::{Gate, HttpOrigin, Reply};
use ringway_tests::net::{assert_closed_without_a_byte, ping, Blackhole};
use ringway_tests::ProxyConfig;

/// Longest wait for something that happens at once.
const SOON: Duration = Duration::from_secs(10);

fn start(cluster: Cluster) -> (Ringway, HttpConfig) {
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(cluster);
    let proxy = Ringway::start(&config.to_toml());
    (proxy, config)
}

/// An origin that holds every request until `gate` opens, counting the
/// requests that reached it.
fn held_origin(gate: &Gate) -> (HttpOrigin, Arc<AtomicUsize>) {
    let arrived = Arc::new(AtomicUsize::new(0));
    let (held, arriving) = (gate.clone(), Arc::clone(&arrived));
    let origin = HttpOrigin::start(move |_| {
        arriving.fetch_add(1, Ordering::SeqCst);
        held.wait(Duration::from_secs(60));
        Reply::ok(b"done")
    });
    (origin, arrived)
}

#[test]
fn max_requests_refuses_the_one_too_many_at_once() {
    let gate = Gate::new();
    let (origin, arrived) = held_origin(&gate);
    let (proxy, config) = start(Cluster::new("app", &[origin.addr()]).key("max_requests", "2"));
    let mut held = Vec::new();
    for n in 1..=2 {
        let mut client = HttpConn::open(config.listen);
        client.send(&Req::get("/"));
        poll("a request reached the origin", SOON, || {
            match arrived.load(Ordering::SeqCst) {
                seen if seen == n => Ok(()),
                seen => Err(format!("{seen} reached it")),
            }
        });
        held.push(client);
    }
    let started = Instant::now();
    let refused = HttpConn::open(config.listen).exchange(&Req::get("/"));
    refused.assert_ringway_error(503, "overflow");
    assert!(started.elapsed() < SOON);
    assert_eq!(
        arrived.load(Ordering::SeqCst),
        2,
        "the refused request reached the origin"
    );
    let metrics = admin::metrics(config.admin);
    let overflows = metric_sum(
        &metrics,
        "ringway_http_errors_total",
        &[("reason", "overflow")],
    );
    assert_eq!(overflows, 1.0);
    gate.open();
    for mut client in held {
        assert_eq!(client.read().body_text(), "done");
    }
    // Places come free as requests end.
    let after = HttpConn::open(config.listen).exchange(&Req::get("/"));
    assert_eq!(after.status, 200);
    proxy.stop().assert_clean();
}

#[test]
fn max_connections_lets_requests_reuse_an_idle_connection_but_opens_no_more() {
    let hold = Gate::new();
    let holding = hold.clone();
    let first = Arc::new(AtomicUsize::new(0));
    let counting = Arc::clone(&first);
    // The second request that reaches it is held until `hold` opens.
    let origin = HttpOrigin::start(move |_| {
        if counting.fetch_add(1, Ordering::SeqCst) == 1 {
            holding.wait(Duration::from_secs(60));
        }
        Reply::ok(b"done")
    });
    let (proxy, config) = start(Cluster::new("app", &[origin.addr()]).key("max_connections", "1"));
    // One connection, pooled between requests: the limit never bites.
    let mut client = HttpConn::open(config.listen);
    assert_eq!(client.exchange(&Req::get("/")).status, 200);
    // The pooled connection is in use by this request (held)...
    client.send(&Req::get("/"));
    poll(
        "the second request reached the origin",
        SOON,
        || match first.load(Ordering::SeqCst) {
            2 => Ok(()),
            seen => Err(format!("{seen} reached it")),
        },
    );
    // ... so another needs a second connection: refused.
    let refused = HttpConn::open(config.listen).exchange(&Req::get("/"));
    refused.assert_ringway_error(503, "overflow");
    hold.open();
    assert_eq!(client.read().status, 200);
    // Idle again: the next request takes it.
    assert_eq!(
        HttpConn::open(config.listen)
            .exchange(&Req::get("/"))
            .status,
        200
    );
    assert_eq!(origin.connections().len(), 1, "{}", origin.summary());
    proxy.stop().assert_clean();
}

#[test]
fn max_pending_requests_bounds_requests_waiting_for_a_connection() {
    let blackhole = Blackhole::new();
    let (proxy, config) = start(
        Cluster::new("app", &[blackhole.addr()])
            .connect_timeout("3s")
            .key("max_pending_requests", "1"),
    );
    // The first request waits on a connect that can only time out.
    let mut waiting = HttpConn::open(config.listen);
    waiting.send(&Req::get("/"));
    // Until its place is taken the second could slip in; the refused
    // answer comes at once, long before the 3 s connect timeout.
    let started = Instant::now();
    let refused = loop {
        let response = HttpConn::open(config.listen).exchange(&Req::get("/"));
        if response.header("x-ringway-error") == Some("overflow") {
            break response;
        }
        assert!(
            started.elapsed() < SOON,
            "never refused: {}",
            response.status
        );
    };
    refused.assert_ringway_error(503, "overflow");
    assert!(started.elapsed() < Duration::from_secs(3));
    waiting.read().assert_ringway_error(502, "upstream_refused");
    proxy.stop().assert_clean();
}

#[test]
fn a_tcp_cluster_at_max_connections_resets_the_next_client() {
    let echo = CountingOrigin::echo();
    let config = ProxyConfig::new(&[echo.addr()]);
    let text = config.to_toml();
    let limited = text.replacen(
        "name = \"app\"\n",
        "name = \"app\"\nmax_connections = 1\n",
        1,
    );
    assert_ne!(limited, text);
    let proxy = Ringway::start(&limited);
    let mut open = ringway_tests::net::client(config.listen);
    ping(&mut open, b"first");
    assert_closed_without_a_byte(config.listen, SOON);
    assert_eq!(echo.served().connections, 1);
    drop(open);
    // Its place comes free once the pair has closed.
    poll("a new client is relayed again", SOON, || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(config.listen).map_err(|e| e.to_string())?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut back = [0u8; 5];
        stream.write_all(b"again").map_err(|e| e.to_string())?;
        stream.read_exact(&mut back).map_err(|e| e.to_string())
    });
    let exit = proxy.stop();
    exit.assert_clean();
    assert!(exit.total("overflows") >= 1, "{}", exit.stderr);
}
