//! Exemplars: a traced request's trace id on the request duration bucket
//! it fell in, in the OpenMetrics exposition a scraper asks for with
//! `Accept: application/openmetrics-text`, and stored by a real
//! Prometheus with exemplar storage on. The plain text format (what
//! `promtool` judges) carries none.
//!
//! `prometheus` comes from `scripts/install-prometheus.sh`, which
//! `scripts/test.sh` runs.

use std::net::SocketAddr;
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::ports::free_port;
use ringway_kit::wait::until;
use ringway_kit::Ringway;
use ringway_tests::http_client::curl;
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::prometheus::{encode, PrometheusServer};
use ringway_tests::up_to_two_cores;

/// Bound on waits for things the proxy does soon.
const WAIT: Duration = Duration::from_secs(10);
/// Bound on waits for Prometheus, which scrapes every second.
const SCRAPE_WAIT: Duration = Duration::from_secs(60);

/// The caller's trace: the exemplar must name it.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// ringway tracing every request (to a collector nobody runs: exemplars
/// need no export), in front of one origin.
fn start(origin: SocketAddr) -> (Ringway, SocketAddr, SocketAddr) {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let collector = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cores: Vec<String> = up_to_two_cores().iter().map(|c| c.to_string()).collect();
    let config = format!(
        r#"[runtime]
worker_cores = [{cores}]
drain_timeout = "1s"

[admin]
address = "{admin}"

[tracing]
collector = "http://{collector}/v1/traces"
sample = 1.0

[[listeners]]
name = "web"
address = "{web}"
protocol = "http"

  [[listeners.routes]]
  name = "api"
  cluster = "api"

[[clusters]]
name = "api"
endpoints = ["{origin}"]
"#,
        cores = cores.join(", ")
    );
    let proxy = Ringway::start(&config);
    admin::wait_ready(admin, WAIT);
    (proxy, admin, web)
}

/// `/metrics` as an OpenMetrics scraper gets it.
fn openmetrics(admin: SocketAddr) -> (String, String) {
    let run = curl(&[
        "-s",
        "-D",
        "/dev/stderr",
        "-H",
        "Accept: application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4; q=0.5",
        &format!("http://{admin}/metrics"),
    ]);
    assert!(run.success, "{}", run.stderr);
    (run.stderr, run.stdout)
}

#[test]
fn a_traced_request_is_the_exemplar_of_its_bucket() {
    let origin = HttpOrigin::ok("hello");
    let (_proxy, admin, web) = start(origin.addr());
    let traceparent = format!("traceparent: 00-{TRACE}-00f067aa0ba902b7-01");
    let run = curl(&["-s", "-H", &traceparent, &format!("http://{web}/a")]);
    assert!(run.success && run.stdout == "hello", "{run:?}");

    // The plain text format has no exemplars.
    let plain = admin::get(admin, "/metrics");
    assert!(!plain.body.contains(" # {"), "{}", plain.body);

    let (head, body) = openmetrics(admin);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    // Counter families are named without `_total`; their samples keep it.
    assert!(
        body.contains("# TYPE ringway_http_requests counter\n"),
        "{body}"
    );
    assert!(
        body.contains("\nringway_http_requests_total{listener=\"web\"} 1\n"),
        "{body}"
    );
    let bucket = body
        .lines()
        .find(|l| {
            l.starts_with("ringway_http_request_duration_seconds_bucket{listener=\"web\",route=\"api\",cluster=\"api\"")
                && l.contains(" # {")
        })
        .unwrap_or_else(|| panic!("no bucket with an exemplar: {body}"));
    let (sample, exemplar) = bucket.split_once(" # ").expect("an exemplar");
    assert!(
        sample.ends_with(" 1"),
        "the request is counted in that bucket: {bucket}"
    );
    assert!(
        exemplar.starts_with(&format!("{{trace_id=\"{TRACE}\"}} ")),
        "{bucket}"
    );
    let fields: Vec<&str> = exemplar.split(' ').collect();
    let value: f64 = fields[1].parse().expect("a value in seconds");
    let le: f64 = sample
        .split("le=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|le| le.parse().ok())
        .expect("an le bound");
    assert!(
        value > 0.0 && value <= le,
        "the exemplar's value lies in its bucket: {bucket}"
    );
    let stamp: f64 = fields[2].parse().expect("a timestamp in seconds");
    assert!(stamp > 1.7e9, "{bucket}");

    // A real Prometheus with exemplar storage ingests it.
    let prometheus = PrometheusServer::start_with(
        "ringway",
        admin,
        "1s",
        &["--enable-feature=exemplar-storage"],
    );
    let query = encode("ringway_http_request_duration_seconds_bucket{route=\"api\"}");
    let found = until(SCRAPE_WAIT, || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path = format!(
            "/api/v1/query_exemplars?query={query}&start={}&end={}",
            now - 3600,
            now + 60
        );
        let response = prometheus.get(&path);
        if response.body.contains(TRACE) {
            Ok(response.body)
        } else {
            Err(response.body)
        }
    });
    let body = found.unwrap_or_else(|last| {
        panic!(
            "Prometheus never stored the exemplar: {last}\nits log:\n{}",
            prometheus.log()
        )
    });
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["status"], "success", "{body}");
}
