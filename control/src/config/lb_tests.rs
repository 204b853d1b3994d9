//! Tests of the keys that choose how a cluster balances (`lb`, weighted
//! `endpoints`, `hash_on`, `ewma_decay`, `ewma_seed_rtt`) and how much it
//! may carry (`max_connections`, `max_pending_requests`, `max_requests`),
//! and when it ejects an endpoint (`consecutive_gateway_failures`,
//! `base_ejection_time`, `max_ejection_time`, `max_ejection_percent`).

use std::time::Duration;

use dataplane::table::lb::{Ewma, HashOn, Policy};

use super::http_tests::parse_ok;
use super::tests::{self, line_of, only_error};

/// A file whose one cluster has these extra lines.
fn with_cluster(endpoints: &str, extra: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"

  [[listeners.routes]]
  name = "all"
  cluster = "app"

[[clusters]]
name = "app"
endpoints = {endpoints}
{extra}"#
    )
}

/// The one error of `text`, at the line holding `needle`, for `key`.
fn assert_error(text: &str, needle: &str, key: &str, reason: &str) {
    let error = only_error(text);
    tests::assert_error(&error, line_of(text, needle, 0), key, reason);
}

#[test]
fn peak_ewma_is_the_default_and_every_policy_parses() {
    let config = parse_ok(&with_cluster(r#"["127.0.0.1:8000"]"#, ""));
    assert_eq!(
        config.table.clusters[0].balance.policy,
        Policy::PeakEwma(Ewma::default())
    );
    assert!(config.to_toml().contains("lb = \"peak_ewma\""));
    for (lines, policy) in [
        (r#"lb = "least_request""#, Policy::LeastRequest),
        (r#"lb = "peak_ewma""#, Policy::PeakEwma(Ewma::default())),
        (
            "lb = \"peak_ewma\"\newma_decay = \"5s\"\newma_seed_rtt = \"2ms\"",
            Policy::PeakEwma(Ewma {
                decay: Duration::from_secs(5),
                seed: Duration::from_millis(2),
            }),
        ),
        (
            r#"lb = "ring_hash""#,
            Policy::RingHash(HashOn::ClientAddress),
        ),
        (
            "lb = \"maglev\"\nhash_on = \"header:X-User\"",
            Policy::Maglev(HashOn::Header("x-user".into())),
        ),
        (
            "lb = \"ring_hash\"\nhash_on = \"cookie:session\"",
            Policy::RingHash(HashOn::Cookie("session".into())),
        ),
    ] {
        let config = parse_ok(&with_cluster(
            r#"["127.0.0.1:8000", "127.0.0.1:8001"]"#,
            lines,
        ));
        assert_eq!(config.table.clusters[0].balance.policy, policy, "{lines}");
    }
}

#[test]
fn weighted_endpoints_parse_and_round_trip() {
    let text = with_cluster(
        r#"["127.0.0.1:8000", { address = "127.0.0.1:8001", weight = 3 }]"#,
        r#"lb = "weighted_round_robin""#,
    );
    let config = parse_ok(&text);
    let cluster = &config.table.clusters[0];
    assert_eq!(cluster.balance.weights(), &[1, 3]);
    assert_eq!(cluster.balance.cycle().map(<[u32]>::len), Some(4));
    let dumped = config.to_toml();
    assert!(dumped.contains("lb = \"weighted_round_robin\""), "{dumped}");
    let again = parse_ok(&dumped);
    assert_eq!(again.to_toml(), dumped);
    assert_eq!(again.table.clusters[0].balance.weights(), &[1, 3]);
    assert!(config.summary().contains("127.0.0.1:8001 weight 3"));
}

#[test]
fn hashing_and_ewma_keys_round_trip() {
    for lines in [
        "lb = \"maglev\"\nhash_on = \"cookie:sid\"",
        "lb = \"peak_ewma\"\newma_decay = \"3s\"",
    ] {
        let config = parse_ok(&with_cluster(r#"["127.0.0.1:8000"]"#, lines));
        let dumped = config.to_toml();
        let again = parse_ok(&dumped);
        assert_eq!(
            again.table.clusters[0].balance.policy,
            config.table.clusters[0].balance.policy
        );
    }
}

#[test]
fn an_unknown_policy_names_the_choices() {
    let text = with_cluster(r#"["127.0.0.1:8000"]"#, r#"lb = "fastest""#);
    assert_error(&text, "fastest", "clusters[0].lb", "unknown load balancing policy \"fastest\" (accepted: round_robin, weighted_round_robin, least_request, peak_ewma, ring_hash, maglev)");
}

#[test]
fn weights_are_range_checked_and_need_a_policy_that_reads_them() {
    let text = with_cluster(
        r#"[{ address = "127.0.0.1:8000", weight = 0 }]"#,
        r#"lb = "weighted_round_robin""#,
    );
    assert_error(
        &text,
        "weight = 0",
        "clusters[0].endpoints[0].weight",
        "weight 0 is out of range: from 1 to 128",
    );
    let text = with_cluster(
        r#"[{ address = "127.0.0.1:8000", weight = 2 }, "127.0.0.1:8001"]"#,
        r#"lb = "round_robin""#,
    );
    assert_error(
        &text,
        "weight = 2",
        "clusters[0].endpoints",
        "lb = \"weighted_round_robin\"",
    );
    let text = with_cluster(r#"[{ weight = 2 }]"#, "");
    assert_error(
        &text,
        "weight = 2",
        "clusters[0].endpoints[0].address",
        "missing required key `address`",
    );
    let text = with_cluster(r#"[{ address = "127.0.0.1:8000", wieght = 2 }]"#, "");
    let error = only_error(&text);
    assert!(error.reason.contains("wieght"), "{error}");
}

#[test]
fn keys_of_other_policies_are_refused_by_name() {
    let text = with_cluster(r#"["127.0.0.1:8000"]"#, "hash_on = \"client_address\"");
    assert_error(
        &text,
        "hash_on",
        "clusters[0].hash_on",
        "applies only to lb = \"ring_hash\" or \"maglev\" (this cluster's lb is peak_ewma)",
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        "lb = \"least_request\"\newma_decay = \"1s\"",
    );
    assert_error(
        &text,
        "ewma_decay",
        "clusters[0].ewma_decay",
        "applies only to lb = \"peak_ewma\"",
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        "lb = \"maglev\"\nhash_on = \"query:user\"",
    );
    assert_error(
        &text,
        "query:user",
        "clusters[0].hash_on",
        "invalid hash_on \"query:user\"",
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        "lb = \"peak_ewma\"\newma_seed_rtt = \"0s\"",
    );
    assert_error(&text, "ewma_seed_rtt", "clusters[0].ewma_seed_rtt", "");
}

#[test]
fn a_ring_too_big_to_hold_is_refused_before_it_is_built() {
    let endpoints: Vec<String> = (0..100)
        .map(|i| format!("{{ address = \"127.0.0.1:{}\", weight = 128 }}", 9000 + i))
        .collect();
    let text = with_cluster(
        &format!("[{}]", endpoints.join(", ")),
        r#"lb = "ring_hash""#,
    );
    let error = only_error(&text);
    assert_eq!(error.key.as_deref(), Some("clusters[0].endpoints"));
    assert!(error.reason.contains("1280000 points"), "{error}");
}

#[test]
fn breaker_limits_parse_round_trip_and_are_range_checked() {
    let config = parse_ok(&with_cluster(r#"["127.0.0.1:8000"]"#, ""));
    assert!(
        config.table.clusters[0].breaker.is_none(),
        "no limit, no breaker"
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        "max_connections = 100\nmax_pending_requests = 10\nmax_requests = 50",
    );
    let config = parse_ok(&text);
    let limits = config.table.clusters[0]
        .breaker
        .as_ref()
        .expect("a breaker")
        .limits;
    assert_eq!(limits.max_connections, Some(100));
    assert_eq!(limits.max_pending_requests, Some(10));
    assert_eq!(limits.max_requests, Some(50));
    let dumped = config.to_toml();
    assert!(dumped.contains("max_requests = 50"), "{dumped}");
    let summary = config.summary();
    assert!(
        summary.contains("max_connections 100, max_pending_requests 10, max_requests 50)"),
        "{summary}"
    );
    let again = parse_ok(&dumped);
    assert_eq!(
        again.table.clusters[0].breaker.as_ref().map(|b| b.limits),
        Some(limits)
    );
    for bad in ["0", "-1", "1000001"] {
        let text = with_cluster(r#"["127.0.0.1:8000"]"#, &format!("max_requests = {bad}"));
        assert_error(
            &text,
            "max_requests",
            "clusters[0].max_requests",
            "is out of range: from 1 to 1000000 (leave it out for no limit)",
        );
    }
}

#[test]
fn a_reload_carries_the_breaker_counts_over() {
    use dataplane::table::breaker::Kind;
    let text = with_cluster(r#"["127.0.0.1:8000"]"#, "max_requests = 1");
    let running = parse_ok(&text);
    let held = running.table.clusters[0]
        .breaker
        .as_ref()
        .unwrap()
        .enter(Kind::Request);
    assert!(held.is_some());
    let next =
        super::parse_update(&text, "ringway.toml", &running, Some(&[0, 1]), |_| Ok(())).unwrap();
    let breaker = next.table.clusters[0].breaker.as_ref().unwrap();
    assert_eq!(breaker.open(Kind::Request), 1);
    assert!(breaker.enter(Kind::Request).is_none());
}

#[test]
fn outlier_keys_default_parse_round_trip_and_are_checked() {
    use dataplane::table::outlier::Outlier;
    let config = parse_ok(&with_cluster(r#"["127.0.0.1:8000"]"#, ""));
    assert_eq!(config.table.clusters[0].outlier, Outlier::default());
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        "consecutive_gateway_failures = 0\nbase_ejection_time = \"5s\"\nmax_ejection_time = \"5m\"\nmax_ejection_percent = 30",
    );
    let config = parse_ok(&text);
    let o = config.table.clusters[0].outlier;
    assert_eq!(o.consecutive_failures, 0);
    assert_eq!(o.base_ejection, Duration::from_secs(5));
    assert_eq!(o.max_ejection, Duration::from_secs(300));
    assert_eq!(o.max_ejection_percent, 30);
    let again = parse_ok(&config.to_toml());
    assert_eq!(again.table.clusters[0].outlier, o);
    let text = with_cluster(r#"["127.0.0.1:8000"]"#, "max_ejection_percent = 101");
    assert_error(
        &text,
        "max_ejection_percent",
        "clusters[0].max_ejection_percent",
        "from 0 to 100",
    );
    let text = with_cluster(r#"["127.0.0.1:8000"]"#, "consecutive_gateway_failures = -1");
    assert_error(
        &text,
        "consecutive_gateway_failures",
        "clusters[0].consecutive_gateway_failures",
        "from 0 (no ejection) to 1000",
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        "base_ejection_time = \"10s\"\nmax_ejection_time = \"5s\"",
    );
    assert_error(
        &text,
        "max_ejection_time",
        "clusters[0].max_ejection_time",
        "max_ejection_time 5s is shorter than base_ejection_time 10s",
    );
}

#[test]
fn health_checks_parse_round_trip_and_are_checked() {
    use dataplane::table::checks::Probe;
    let text = with_cluster(
        r#"["127.0.0.1:8000", "127.0.0.1:8001"]"#,
        r#"health_check = { path = "/healthz", host = "svc", expected_statuses = [200, 204], interval = "5s", timeout = "2s", healthy_threshold = 3, unhealthy_threshold = 4 }"#,
    );
    let config = parse_ok(&text);
    let checks = config.table.clusters[0].checks.as_ref().expect("checks");
    assert_eq!(
        checks.settings.probe,
        Probe::Http {
            path: "/healthz".into(),
            host: Some("svc".into()),
            statuses: vec![(200, 200), (204, 204)],
        }
    );
    assert_eq!(checks.settings.interval, Duration::from_secs(5));
    assert_eq!(
        (
            checks.settings.healthy_threshold,
            checks.settings.unhealthy_threshold
        ),
        (3, 4)
    );
    let again = parse_ok(&config.to_toml());
    assert_eq!(
        again.table.clusters[0].checks.as_ref().unwrap().settings,
        checks.settings
    );
    // Defaults: http GET /, 200-399, every 2 s, 1 s, rise 2, fall 3.
    let config = parse_ok(&with_cluster(r#"["127.0.0.1:8000"]"#, "health_check = {}"));
    let settings = &config.table.clusters[0].checks.as_ref().unwrap().settings;
    assert_eq!(
        (settings.interval, settings.timeout),
        (Duration::from_secs(2), Duration::from_secs(1))
    );
    assert_eq!(
        (settings.healthy_threshold, settings.unhealthy_threshold),
        (2, 3)
    );
    let again = parse_ok(&config.to_toml());
    assert_eq!(
        &again.table.clusters[0].checks.as_ref().unwrap().settings,
        settings
    );

    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        r#"health_check = { kind = "udp" }"#,
    );
    assert_error(
        &text,
        "udp",
        "clusters[0].health_check.kind",
        "unknown check kind \"udp\" (accepted: http, tcp)",
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        r#"health_check = { expected_statuses = [200, 700] }"#,
    );
    assert_error(
        &text,
        "700",
        "clusters[0].health_check.expected_statuses",
        "status 700 is out of range",
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        r#"health_check = { path = "healthz" }"#,
    );
    assert_error(
        &text,
        "healthz",
        "clusters[0].health_check.path",
        "must start with `/`",
    );
    let text = with_cluster(
        r#"["127.0.0.1:8000"]"#,
        r#"health_check = { kind = "tcp", path = "/x" }"#,
    );
    assert_error(
        &text,
        "health_check",
        "clusters[0].health_check.path",
        "applies only to kind = \"http\"",
    );
}

#[test]
fn a_cluster_a_tcp_listener_sends_to_keeps_round_robin_by_default() {
    let text = r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "db"
address = "127.0.0.1:5432"
protocol = "tcp"
cluster = "db"

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"

  [[listeners.routes]]
  name = "all"
  cluster = "app"

[[clusters]]
name = "db"
endpoints = ["127.0.0.1:6000"]

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#;
    let config = parse_ok(text);
    let policies: Vec<&Policy> = config
        .table
        .clusters
        .iter()
        .map(|c| &c.balance.policy)
        .collect();
    assert_eq!(
        policies,
        [&Policy::RoundRobin, &Policy::PeakEwma(Ewma::default())]
    );
}
