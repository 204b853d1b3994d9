//! Load balancing policies, end to end: real origins, real clients, the
//! requests each origin saw.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::http_client::{HttpConn, Req};
use ringway_tests::http_config::{Cluster, HttpConfig, Route};
use ringway_tests::http_origin::{Gate, HttpOrigin, Reply};
use ringway_tests::net::ping;
use ringway_tests::ProxyConfig;

/// Longest wait for something that happens at once.
const SOON: Duration = Duration::from_secs(10);

/// Origins that answer 200 with their own name: `o0`, `o1`, ...
fn named_origins(n: usize) -> Vec<HttpOrigin> {
    (0..n).map(|i| HttpOrigin::ok(&format!("o{i}"))).collect()
}

fn addrs(origins: &[HttpOrigin]) -> Vec<SocketAddr> {
    origins.iter().map(HttpOrigin::addr).collect()
}

/// A proxy whose route `all` forwards to `cluster` (named `app`).
fn start(cluster: Cluster, cores: &[usize]) -> (Ringway, HttpConfig) {
    let mut config = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(cluster);
    config.worker_cores = cores.to_vec();
    let proxy = Ringway::start(&config.to_toml());
    (proxy, config)
}

#[test]
fn weighted_round_robin_gives_each_endpoint_its_weight() {
    let origins = named_origins(3);
    let cluster = Cluster::new("app", &addrs(&origins))
        .lb("weighted_round_robin")
        .weights(&[1, 2, 3]);
    let (proxy, config) = start(cluster, &[0]);
    let mut client = HttpConn::open(config.listen);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..60 {
        let response = client.exchange(&Req::get("/"));
        assert_eq!(response.status, 200);
        *counts.entry(response.body_text()).or_default() += 1;
    }
    assert_eq!(counts["o0"], 10, "{counts:?}");
    assert_eq!(counts["o1"], 20, "{counts:?}");
    assert_eq!(counts["o2"], 30, "{counts:?}");
    proxy.stop().assert_clean();
}

#[test]
fn least_request_stops_sending_to_an_endpoint_that_holds_its_requests() {
    let gate = Gate::default();
    let held = gate.clone();
    // The origin records a request once it answered it: its own count of
    // requests that reached it is kept here.
    let arrived = Arc::new(AtomicUsize::new(0));
    let arriving = Arc::clone(&arrived);
    let stuck = HttpOrigin::start(move |_| {
        arriving.fetch_add(1, Ordering::SeqCst);
        held.wait(Duration::from_secs(60));
        Reply::ok(b"stuck")
    });
    let quick = HttpOrigin::ok("quick");
    let cluster = Cluster::new("app", &[stuck.addr(), quick.addr()]).lb("least_request");
    let (proxy, config) = start(cluster, &[0]);

    // Each request on a connection of its own; a request the stuck origin
    // took stays in flight until the gate opens.
    let mut waiting = Vec::new();
    for i in 0..20 {
        let mut client = HttpConn::open(config.listen);
        client.send(&Req::get("/"));
        poll(
            &format!("request {} reached an origin", i + 1),
            SOON,
            || {
                let seen = arrived.load(Ordering::SeqCst) + quick.requests().len();
                if seen > i {
                    Ok(())
                } else {
                    Err(format!("{seen} reached them"))
                }
            },
        );
        if arrived.load(Ordering::SeqCst) == waiting.len() {
            assert_eq!(client.read().body_text(), "quick");
        } else {
            waiting.push(client);
        }
    }
    // Round robin would have sent it 10. Once one request is in flight
    // there, the other endpoint (none in flight) wins every draw.
    assert_eq!(arrived.load(Ordering::SeqCst), 1, "{}", stuck.summary());
    gate.open();
    for mut client in waiting {
        assert_eq!(client.read().body_text(), "stuck");
    }
    proxy.stop().assert_clean();
}

#[test]
fn peak_ewma_moves_traffic_off_a_slow_endpoint() {
    let slow = HttpOrigin::start(|_| Reply::ok(b"slow").delay(Duration::from_millis(300)));
    let fast = HttpOrigin::ok("fast");
    let cluster = Cluster::new("app", &[slow.addr(), fast.addr()]).lb("peak_ewma");
    let (proxy, config) = start(cluster, &[0]);
    let mut client = HttpConn::open(config.listen);
    for _ in 0..30 {
        assert_eq!(client.exchange(&Req::get("/")).status, 200);
    }
    // Both start at the 30 ms seed; one 300 ms answer puts the slow one
    // out of reach for tens of seconds (the estimate decays over 10 s).
    assert!(slow.requests().len() <= 1, "{}", slow.summary());
    assert_eq!(slow.requests().len() + fast.requests().len(), 30);
    proxy.stop().assert_clean();
}

#[test]
fn peak_ewma_does_not_reward_an_endpoint_that_fails_fast() {
    let failing = HttpOrigin::start(|_| Reply::status(503, b"down"));
    let working = HttpOrigin::start(|_| Reply::ok(b"up").delay(Duration::from_millis(20)));
    let cluster = Cluster::new("app", &[failing.addr(), working.addr()]).lb("peak_ewma");
    let (proxy, config) = start(cluster, &[0]);
    // Four clients at once: with requests in flight on the working
    // endpoint, the idle failing one is cheaper by in-flight count alone,
    // so it is tried; what keeps it tried only a few times is the penalty
    // each 503 adds.
    let start_line = Arc::new(std::sync::Barrier::new(4));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let listen = config.listen;
            let start_line = Arc::clone(&start_line);
            std::thread::spawn(move || {
                let mut client = HttpConn::open(listen);
                start_line.wait();
                (0..20)
                    .filter(|_| client.exchange(&Req::get("/")).status == 503)
                    .count()
            })
        })
        .collect();
    let failures: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    // Answering at once, the failing endpoint would look fastest and take
    // most of the 80 requests if its answers counted as latency samples.
    assert!(failures <= 8, "{failures} of 80 answered 503");
    assert!(failures >= 1, "the failing endpoint was never tried");
    assert_eq!(failures, failing.requests().len());
    proxy.stop().assert_clean();
}

#[test]
fn peak_ewma_is_not_fooled_by_a_client_that_trickles_its_body() {
    let origins = named_origins(2);
    let cluster = Cluster::new("app", &addrs(&origins)).lb("peak_ewma");
    let (proxy, config) = start(cluster, &[0]);
    let mut client = HttpConn::open(config.listen);
    // A POST whose body comes 300 ms after its head: the upstream can only
    // answer after it, which must not count as the endpoint's latency.
    client.send_raw(b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    client.send_raw(b"body");
    let first = client.read();
    assert_eq!(first.status, 200);
    let target = first.body_text();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..20 {
        *counts
            .entry(client.exchange(&Req::get("/")).body_text())
            .or_default() += 1;
    }
    // Its answer came at once after the body: the endpoint's estimate fell
    // below the other's seed, so it takes the requests that follow. Counted
    // from the head, it would have looked 300 ms slow and taken none.
    assert_eq!(
        counts.get(&target),
        Some(&20),
        "{target} after the slow body: {counts:?}"
    );
    proxy.stop().assert_clean();
}

/// The origin each user's request reached, for users `u0`..`u{n}`.
fn owners(listen: SocketAddr, n: usize) -> HashMap<String, String> {
    let mut client = HttpConn::open(listen);
    (0..n)
        .map(|u| {
            let user = format!("u{u}");
            let response = client.exchange(&Req::get("/").header("x-user", &user));
            assert_eq!(response.status, 200);
            (user, response.body_text())
        })
        .collect()
}

#[test]
fn ring_hash_keeps_every_other_key_in_place_when_an_endpoint_goes() {
    let origins = named_origins(4);
    let cluster = Cluster::new("app", &addrs(&origins))
        .lb("ring_hash")
        .key("hash_on", "\"header:x-user\"");
    let (proxy, config) = start(cluster, &[0]);
    let before = owners(config.listen, 200);
    assert_eq!(
        owners(config.listen, 200),
        before,
        "the same key, another endpoint"
    );
    let used: HashSet<&String> = before.values().collect();
    assert_eq!(used.len(), 4, "every endpoint owns some keys: {before:?}");

    // o2 leaves the cluster.
    let remaining: Vec<String> = [0, 1, 3]
        .iter()
        .map(|&i| format!("\"{}\"", origins[i].addr()))
        .collect();
    let body = format!("[{}]", remaining.join(", "));
    let response = admin::request(config.admin, "PUT", "/clusters/app/endpoints", Some(&body))
        .expect("PUT /clusters/app/endpoints");
    assert_eq!(response.status, 200, "{}", response.body);
    let after = owners(config.listen, 200);
    let mut moved = 0;
    for (user, was) in &before {
        let now = &after[user];
        if was == "o2" {
            assert_ne!(now, "o2");
            moved += 1;
        } else {
            assert_eq!(now, was, "{user} moved from {was} to {now}");
        }
    }
    assert!(moved > 0);
    proxy.stop().assert_clean();
}

#[test]
fn maglev_on_the_client_address_chooses_alike_on_every_worker() {
    let origins = named_origins(3);
    let cluster = Cluster::new("app", &addrs(&origins))
        .lb("maglev")
        .key("hash_on", "\"client_address\"");
    let (proxy, config) = start(cluster, &[0, 1]);
    let mut by_source: HashMap<Ipv4Addr, HashSet<String>> = HashMap::new();
    // Clients from 30 loopback addresses, each on 6 connections of its own
    // (SO_REUSEPORT spreads connections over both workers by their ports).
    for host in 2..32u8 {
        let source = Ipv4Addr::new(127, 0, 0, host);
        for _ in 0..6 {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            socket
                .bind(&SocketAddr::from((source, 0)).into())
                .expect("bind the client to its source address");
            socket.connect(&config.listen.into()).expect("connect");
            let stream: TcpStream = socket.into();
            let mut client = HttpConn::from_stream(stream);
            let response = client.exchange(&Req::get("/"));
            by_source
                .entry(source)
                .or_default()
                .insert(response.body_text());
        }
    }
    for (source, seen) in &by_source {
        assert_eq!(seen.len(), 1, "{source} reached {seen:?}");
    }
    let used: HashSet<&String> = by_source.values().flatten().collect();
    assert!(used.len() >= 2, "30 sources all on {used:?}");
    let stats = admin::stats(config.admin);
    let accepted: Vec<u64> = stats
        .workers()
        .iter()
        .map(|w| w["accepted"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        accepted.iter().all(|&n| n > 0),
        "one worker took every connection: {accepted:?}"
    );
    proxy.stop().assert_clean();
}

#[test]
fn least_request_on_tcp_counts_open_connections() {
    let a = ringway_kit::CountingOrigin::echo();
    let b = ringway_kit::CountingOrigin::echo();
    let config = ProxyConfig::new(&[a.addr(), b.addr()]);
    let text = config.to_toml();
    let with_lb = text.replacen(
        "name = \"app\"\n",
        "name = \"app\"\nlb = \"least_request\"\n",
        1,
    );
    assert_ne!(with_lb, text);
    let proxy = Ringway::start(&with_lb);
    // Each connection stays open; with two endpoints both are drawn every
    // time, so each new connection goes to the one with fewer open (a tie
    // goes either way).
    let mut open = Vec::new();
    for i in 0..6 {
        let mut stream = ringway_tests::net::client(config.listen);
        ping(&mut stream, format!("hello {i}").as_bytes());
        open.push(stream);
        let (ca, cb) = (a.served().connections, b.served().connections);
        assert!(
            ca.abs_diff(cb) <= 1,
            "after {} connections: {ca} and {cb}",
            i + 1
        );
    }
    assert_eq!(a.served().connections, 3);
    assert_eq!(b.served().connections, 3);
    for mut stream in open {
        let _ = stream.write_all(b"");
    }
    proxy.stop().assert_clean();
}
