//! Passive ejection: an endpoint that fails several requests in a row is
//! taken out of its cluster for a while, probed by one request when the
//! while is over, and taken out for longer if the probe fails; never more
//! of the cluster than its share, never the last endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringway_kit::{admin, Ringway};
use ringway_tests::http_client::{wait_metric, HttpConn, Req};
use serde_json::json;

/// Longest wait for what the agent shows once a second.
const SOON: Duration = Duration::from_secs(10);
use ringway_tests::http_config::{Cluster, HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};

/// An origin answering 200 with `name`, or 503 while `failing` is set.
fn origin(name: &'static str, failing: &Arc<AtomicBool>) -> HttpOrigin {
    let failing = Arc::clone(failing);
    HttpOrigin::start(move |_| {
        if failing.load(Ordering::SeqCst) {
            Reply::status(503, name.as_bytes())
        } else {
            Reply::ok(name.as_bytes())
        }
    })
}

fn start(cluster: Cluster) -> (Ringway, HttpConfig) {
    // Round robin: each endpoint takes its turn, failing or not.
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(cluster.lb("round_robin"));
    let proxy = Ringway::start(&config.to_toml());
    (proxy, config)
}

/// Sends `n` requests in a row on one connection; what answered, by name.
fn send(client: &mut HttpConn, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        *seen
            .entry(client.exchange(&Req::get("/")).body_text())
            .or_default() += 1;
    }
    seen
}

#[test]
fn failures_in_a_row_eject_an_endpoint_until_a_probe_finds_it_well() {
    let (bad, good) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let origins = [origin("o0", &bad), origin("o1", &good), origin("o2", &good)];
    let cluster = Cluster::new(
        "app",
        &origins.iter().map(HttpOrigin::addr).collect::<Vec<_>>(),
    )
    .key("consecutive_gateway_failures", "3")
    .key("base_ejection_time", "\"1s\"");
    let (proxy, config) = start(cluster);
    let mut client = HttpConn::open(config.listen);
    // Round robin: o0 answers requests 1, 4 and 7 with 503; the third in a
    // row ejects it.
    let first = send(&mut client, 9);
    assert_eq!(first.get("o0"), Some(&3), "{first:?}");
    let during = send(&mut client, 20);
    assert_eq!(
        during.get("o0"),
        None,
        "an ejected endpoint was sent requests: {during:?}"
    );
    // The ejection is counted per endpoint, shown and logged.
    let o0 = origins[0].addr().to_string();
    let labels = [("cluster", "app"), ("endpoint", o0.as_str())];
    wait_metric(
        config.admin,
        "ringway_endpoint_ejections_total",
        &[
            labels[0],
            labels[1],
            ("reason", "consecutive_gateway_failures"),
        ],
        1.0,
    );
    let stats = admin::stats(config.admin);
    let shown = stats.json["endpoints"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["endpoint"] == o0.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&shown["cluster"], &shown["ejected"], &shown["returns"]),
        (&json!("app"), &json!(true), &json!(0)),
        "{shown}"
    );
    proxy.wait_for_stderr(
        &format!("endpoint {o0}: ejected after consecutive gateway failures"),
        SOON,
    );
    // It recovers; the ejection (2 s, plus up to half again) runs out.
    bad.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(3100));
    let after = send(&mut client, 30);
    assert!(
        after.get("o0").copied().unwrap_or(0) >= 8,
        "not back after a good probe: {after:?}"
    );
    wait_metric(config.admin, "ringway_endpoint_returns_total", &labels, 1.0);
    proxy.wait_for_stderr(&format!("endpoint {o0}: back after a good probe"), SOON);
    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("ejections"), 1, "{}", exit.stderr);
}

#[test]
fn one_probe_goes_when_an_ejection_ends_and_its_failure_ejects_again_for_longer() {
    let good = Arc::new(AtomicBool::new(false));
    let probes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = Arc::clone(&probes);
    // Always fails, slowly: a probe stays out for 300 ms.
    let bad = HttpOrigin::start(move |_| {
        counting.fetch_add(1, Ordering::SeqCst);
        Reply::status(503, b"o0").delay(Duration::from_millis(300))
    });
    let origins = [bad, origin("o1", &good), origin("o2", &good)];
    let cluster = Cluster::new(
        "app",
        &origins.iter().map(HttpOrigin::addr).collect::<Vec<_>>(),
    )
    .key("consecutive_gateway_failures", "1")
    .key("base_ejection_time", "\"2s\"");
    let (proxy, config) = start(cluster);
    let mut client = HttpConn::open(config.listen);
    let first = send(&mut client, 6);
    assert_eq!(first.get("o0"), Some(&1), "one failure ejects: {first:?}");
    // Past the first ejection (at most 3 s), four clients at once: one
    // request probes, the others pass the endpoint by while the probe is
    // out, and its failure ejects it again for at least 4 s.
    std::thread::sleep(Duration::from_millis(3100));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let listen = config.listen;
            std::thread::spawn(move || send(&mut HttpConn::open(listen), 10))
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    assert_eq!(
        probes.load(Ordering::SeqCst),
        2,
        "the first failure and exactly one probe"
    );
    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("ejections"), 2, "{}", exit.stderr);
}

#[test]
fn ejection_stops_at_the_clusters_share_and_never_takes_the_last_endpoint() {
    let bad = Arc::new(AtomicBool::new(true));
    let origins = [origin("o0", &bad), origin("o1", &bad)];
    let cluster = Cluster::new(
        "app",
        &origins.iter().map(HttpOrigin::addr).collect::<Vec<_>>(),
    )
    .key("consecutive_gateway_failures", "1");
    let (proxy, config) = start(cluster);
    let mut client = HttpConn::open(config.listen);
    // Both fail: the first is ejected (half of two), the second is spared
    // and keeps taking requests; the client sees the upstream's own 503s,
    // never a `no_endpoint` from ringway.
    for _ in 0..10 {
        let response = client.exchange(&Req::get("/"));
        assert_eq!(response.status, 503);
        assert_eq!(
            response.header("x-ringway-error"),
            None,
            "{}",
            response.body_text()
        );
    }
    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("ejections"), 1, "{}", exit.stderr);
    assert!(exit.total("ejections_spared") >= 1, "{}", exit.stderr);

    // A cluster of one is never emptied.
    let one = origin("solo", &bad);
    let cluster = Cluster::new("app", &[one.addr()])
        .key("consecutive_gateway_failures", "1")
        .key("max_ejection_percent", "100");
    let (proxy, config) = start(cluster);
    let mut client = HttpConn::open(config.listen);
    let seen = send(&mut client, 5);
    assert_eq!(seen.get("solo"), Some(&5));
    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("ejections"), 0, "{}", exit.stderr);
}
