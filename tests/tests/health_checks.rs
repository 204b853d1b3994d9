//! Active health checks: run from the control core, they take an endpoint
//! that fails them out of every worker's picks and bring it back when it
//! passes again; when every endpoint fails, the checks are ignored.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::http_client::{wait_metric, HttpConn, Req};
use ringway_tests::http_config::{Cluster, HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};

const SOON: Duration = Duration::from_secs(10);

/// An origin named `name` whose `/healthz` answers 503 while `sick` is set;
/// it counts the checks it saw.
fn origin(name: &'static str, sick: &Arc<AtomicBool>, checks: &Arc<AtomicUsize>) -> HttpOrigin {
    let (sick, checks) = (Arc::clone(sick), Arc::clone(checks));
    HttpOrigin::start(move |req| {
        if req.path() == "/healthz" {
            checks.fetch_add(1, Ordering::SeqCst);
            assert_eq!(req.header("user-agent"), Some("ringway-health-check"));
            if sick.load(Ordering::SeqCst) {
                return Reply::status(503, b"sick");
            }
            return Reply::ok(b"ok");
        }
        Reply::ok(name.as_bytes())
    })
}

/// Sends requests (one per poll) until `n` in a row satisfy `ok`; panics
/// after [`SOON`].
fn until_in_a_row(client: &mut HttpConn, n: usize, what: &str, ok: impl Fn(&str) -> bool) {
    let mut run = 0;
    poll(what, SOON, || {
        let body = client.exchange(&Req::get("/")).body_text();
        run = if ok(&body) { run + 1 } else { 0 };
        if run >= n {
            Ok(())
        } else {
            Err(format!("{run} in a row, the last {body:?}"))
        }
    });
}

#[test]
fn an_endpoint_failing_its_checks_takes_no_traffic_until_it_passes_again() {
    let (sick_a, well) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (checks_a, checks_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a = origin("a", &sick_a, &checks_a);
    let b = origin("b", &well, &checks_b);
    let mut config = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(Cluster::new("app", &[a.addr(), b.addr()]).lb("round_robin").key(
            "health_check",
            r#"{ path = "/healthz", interval = "100ms", timeout = "500ms", healthy_threshold = 2, unhealthy_threshold = 2 }"#,
        ));
    // Two workers: the checks run once for the node, not per worker.
    config.worker_cores = vec![0, 1];
    let proxy = Ringway::start(&config.to_toml());
    let mut client = HttpConn::open(config.listen);
    until_in_a_row(&mut client, 4, "both endpoints in turn", |_| true);

    sick_a.store(true, Ordering::SeqCst);
    until_in_a_row(&mut client, 20, "a to be taken out", |body| body == "b");
    // Out it stays while it fails (each worker's picks skip it).
    for _ in 0..40 {
        assert_eq!(
            HttpConn::open(config.listen)
                .exchange(&Req::get("/"))
                .body_text(),
            "b"
        );
    }
    // The verdicts are in /metrics.
    let healthy = |addr: std::net::SocketAddr, want: f64| {
        let endpoint = addr.to_string();
        wait_metric(
            config.admin,
            "ringway_endpoint_healthy",
            &[("cluster", "app"), ("endpoint", endpoint.as_str())],
            want,
        )
    };
    healthy(a.addr(), 0.0);
    healthy(b.addr(), 1.0);

    sick_a.store(false, Ordering::SeqCst);
    until_in_a_row(&mut client, 1, "a to be back", |body| body == "a");

    // Every 100 ms per endpoint for the node: far fewer than one per worker
    // per request, and about the same for both endpoints.
    let (ca, cb) = (
        checks_a.load(Ordering::SeqCst),
        checks_b.load(Ordering::SeqCst),
    );
    assert!(ca.abs_diff(cb) <= 3, "checks of a {ca}, of b {cb}");
    let exit = proxy.stop();
    exit.assert_clean();
    assert!(
        exit.stderr.contains("fails its health check"),
        "{}",
        exit.stderr
    );
    assert!(
        exit.stderr.contains("passes its health check"),
        "{}",
        exit.stderr
    );
}

#[test]
fn when_every_endpoint_fails_its_checks_they_are_ignored() {
    let sick = Arc::new(AtomicBool::new(true));
    let counts = Arc::new(AtomicUsize::new(0));
    let a = origin("a", &sick, &counts);
    let b = origin("b", &sick, &counts);
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(
            Cluster::new("app", &[a.addr(), b.addr()])
                .lb("round_robin")
                .key(
                    "health_check",
                    r#"{ path = "/healthz", interval = "50ms", unhealthy_threshold = 1 }"#,
                ),
        );
    let proxy = Ringway::start(&config.to_toml());
    // Wait until both have failed a check, then traffic still goes to both.
    poll("both endpoints failed checks", SOON, || {
        match counts.load(Ordering::SeqCst) {
            seen if seen >= 6 => Ok(()),
            seen => Err(format!("{seen} checks")),
        }
    });
    let mut client = HttpConn::open(config.listen);
    let bodies: Vec<String> = (0..10)
        .map(|_| client.exchange(&Req::get("/")).body_text())
        .collect();
    assert!(
        bodies.iter().any(|b| b == "a") && bodies.iter().any(|b| b == "b"),
        "{bodies:?}"
    );
    proxy.stop().assert_clean();
}
