//! Tests of the retry keys: a cluster's and a route's `retry = { ... }`,
//! a cluster's `retry_budget` and `max_retries`.

use std::time::Duration;

use dataplane::table::retry::{BudgetSettings, RetryOn, RetryPolicy};
use dataplane::table::route::RouteAction;
use dataplane::table::Service;

use super::http_tests::parse_ok;
use super::tests::{self, line_of, only_error};

/// A file with one route (these extra lines) to cluster `app` (these).
fn file(route: &str, cluster: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"
request_timeout = "10s"

  [[listeners.routes]]
  name = "all"
  cluster = "app"
  {route}

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
{cluster}"#
    )
}

fn assert_error(text: &str, needle: &str, key: &str, reason: &str) {
    let error = only_error(text);
    tests::assert_error(&error, line_of(text, needle, 0), key, reason);
}

fn route_policy(config: &super::Config) -> Option<RetryPolicy> {
    let Service::Http(http) = &config.table.listeners[0].service else {
        panic!("an http listener");
    };
    match &http.routes.iter().next().expect("a route").action {
        RouteAction::Forward(f) => f.retry.as_deref().cloned(),
        _ => panic!("a forward"),
    }
}

#[test]
fn defaults_retry_resets_of_idempotent_requests_within_a_budget() {
    let config = parse_ok(&file("", ""));
    let cluster = &config.table.clusters[0];
    assert_eq!(*cluster.retry, RetryPolicy::default());
    assert_eq!(cluster.retry.retries, 2);
    assert_eq!(cluster.retry.on, RetryOn::RESET);
    assert!(cluster.retry.retries_after_sending());
    assert_eq!(cluster.budget.settings, BudgetSettings::default());
    assert_eq!(
        (
            cluster.budget.settings.percent,
            cluster.budget.settings.min_per_second
        ),
        (20, 10)
    );
    assert!(cluster.breaker.is_none());
    assert_eq!(route_policy(&config), None);
}

#[test]
fn every_key_parses_and_round_trips() {
    let text = file(
        r#"retry = { retries = 1, retry_on = ["reset"], per_try_timeout = "2s" }"#,
        r#"retry = { retries = 3, retry_on = ["gateway_error", "timeout"], retriable_status_codes = [409, 500], per_try_timeout = "250ms", retry_non_idempotent = true, retry_buffer = 1024, backoff_base = "10ms", backoff_max = "1s", leave_to_earlier_hop = true }
retry_budget = { percent = 50, min_per_second = 3 }
max_retries = 7"#,
    );
    let config = parse_ok(&text);
    let cluster = &config.table.clusters[0];
    let p = &*cluster.retry;
    assert_eq!(p.retries, 3);
    assert_eq!(p.on, RetryOn::GATEWAY_ERROR.with(RetryOn::TIMEOUT));
    assert_eq!(&*p.statuses, &[409, 500]);
    assert_eq!(p.per_try_timeout, Some(Duration::from_millis(250)));
    assert!(p.non_idempotent && p.leave_to_earlier_hop);
    assert_eq!(p.buffer, 1024);
    assert_eq!(
        (p.backoff_base, p.backoff_max),
        (Duration::from_millis(10), Duration::from_secs(1))
    );
    assert_eq!(
        cluster.budget.settings,
        BudgetSettings {
            percent: 50,
            min_per_second: 3
        }
    );
    assert_eq!(
        cluster.breaker.as_ref().and_then(|b| b.limits.max_retries),
        Some(7)
    );
    let route = route_policy(&config).expect("the route's own policy");
    assert_eq!((route.retries, route.on), (1, RetryOn::RESET));
    assert_eq!(route.per_try_timeout, Some(Duration::from_secs(2)));
    // Keys the route leaves out take the defaults, not the cluster's.
    assert_eq!(route.buffer, RetryPolicy::default().buffer);

    let again = parse_ok(&config.to_toml());
    assert_eq!(*again.table.clusters[0].retry, *p);
    assert_eq!(
        again.table.clusters[0].budget.settings,
        cluster.budget.settings
    );
    assert_eq!(route_policy(&again), Some(route));
    assert!(
        config.summary().contains("max_retries 7"),
        "{}",
        config.summary()
    );
}

#[test]
fn mistakes_name_their_key_and_line() {
    for (route, cluster, needle, key, reason) in [
        (
            "",
            r#"retry = { retry_on = ["5xx", "connect-failure"] }"#,
            "retry_on",
            "clusters[0].retry.retry_on",
            "unknown retry condition \"connect-failure\" (accepted: 5xx, gateway_error, reset, timeout",
        ),
        (
            "",
            "retry = { retries = 6 }",
            "retries",
            "clusters[0].retry.retries",
            "from 0 (never retry) to 5",
        ),
        (
            "",
            "retry = { retriable_status_codes = [302] }",
            "retriable_status_codes",
            "clusters[0].retry.retriable_status_codes",
            "only 4xx and 5xx",
        ),
        (
            "",
            r#"retry = { backoff_base = "100ms", backoff_max = "50ms" }"#,
            "backoff_max",
            "clusters[0].retry.backoff_max",
            "shorter than backoff_base",
        ),
        (
            "",
            "retry = { retry_buffer = 2000000 }",
            "retry_buffer",
            "clusters[0].retry.retry_buffer",
            "out of range",
        ),
        (
            "",
            "retry_budget = { percent = 101 }",
            "retry_budget",
            "clusters[0].retry_budget.percent",
            "from 0 to 100",
        ),
        (
            "",
            "max_retries = 0",
            "max_retries",
            "clusters[0].max_retries",
            "from 1 to",
        ),
        (
            r#"retry = { per_try_timeout = "10s" }"#,
            "",
            "per_try_timeout",
            "listeners[0].routes[0].retry.per_try_timeout",
            "not shorter than the listener's request_timeout 10s",
        ),
        (
            "retry = { retrys = 1 }",
            "",
            "retrys",
            "listeners[0].routes[0].retry.retrys",
            "unknown field `retrys`",
        ),
    ] {
        assert_error(&file(route, cluster), needle, key, reason);
    }
}

#[test]
fn a_route_that_forwards_nothing_takes_no_retry() {
    let text = r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"

  [[listeners.routes]]
  name = "moved"
  redirect = { host = "elsewhere" }
  retry = { retries = 1 }

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#;
    assert_error(
        text,
        "retry =",
        "listeners[0].routes[0].retry",
        "a `redirect` or `direct` route sends nothing upstream",
    );
}
