//! Tests of a split route's `rollout = { ... }`.

use std::time::Duration;

use dataplane::table::route::RouteAction;
use dataplane::table::Service;

use super::http_tests::parse_ok;
use super::tests::{self, line_of, only_error};

/// A file with one route `api` (these lines, one of them the action) and
/// clusters `v1`, `v2` and `v3`.
fn file(route: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"

  [[listeners.routes]]
  name = "api"
  {route}

[[clusters]]
name = "v1"
endpoints = ["127.0.0.1:8000"]

[[clusters]]
name = "v2"
endpoints = ["127.0.0.1:8001"]

[[clusters]]
name = "v3"
endpoints = ["127.0.0.1:8002"]
"#
    )
}

const SPLIT: &str = r#"split = [{ cluster = "v1", weight = 90 }, { cluster = "v2", weight = 10 }]"#;

fn with_rollout(rollout: &str) -> String {
    file(&format!("{SPLIT}\n  rollout = {{ {rollout} }}"))
}

fn assert_error(text: &str, needle: &str, key: &str, reason: &str) {
    let error = only_error(text);
    tests::assert_error(&error, line_of(text, needle, 0), key, reason);
}

#[test]
fn defaults_fill_in_and_both_targets_are_watched() {
    let config = parse_ok(&with_rollout(r#"canary = "v2", stable = "v1""#));
    let Service::Http(http) = &config.table.listeners[0].service else {
        panic!("an http listener");
    };
    let RouteAction::Forward(forward) = &http.routes[0].action else {
        panic!("a forward");
    };
    let plan = forward.rollout.as_deref().expect("a rollout");
    assert_eq!((plan.canary, plan.stable), (1, 0));
    assert_eq!(&*plan.steps, &[5, 10, 25, 50, 100]);
    assert_eq!(plan.interval, Duration::from_secs(30));
    assert_eq!(plan.max_error_rate_delta, 0.01);
    assert_eq!(plan.max_p99_ratio, 1.5);
    assert_eq!(plan.min_requests, 200);
    assert_eq!(plan.min_p99, Duration::from_millis(5));
    assert_eq!(plan.configured, (10, 90));
    assert!(forward.targets.iter().all(|t| t.watch.is_some()));
    // A route without a rollout keeps no rollout figures.
    let plain = parse_ok(&file(SPLIT));
    let Service::Http(http) = &plain.table.listeners[0].service else {
        panic!("an http listener");
    };
    let RouteAction::Forward(forward) = &http.routes[0].action else {
        panic!("a forward");
    };
    assert!(forward.rollout.is_none());
    assert!(forward.targets.iter().all(|t| t.watch.is_none()));
}

#[test]
fn the_effective_config_round_trips_every_key() {
    let text = with_rollout(
        r#"canary = "v2", stable = "v1", steps = [20, 100], interval = "1s 500ms", max_error_rate_delta = 0.05, max_p99_ratio = 2, min_requests = 10, min_p99 = "0s""#,
    );
    let config = parse_ok(&text);
    let dumped = config.to_toml();
    assert!(dumped.contains("[listeners.routes.rollout]"), "{dumped}");
    for line in [
        "canary = \"v2\"",
        "stable = \"v1\"",
        "steps = [20, 100]",
        "interval = \"1s 500ms\"",
        "max_error_rate_delta = 0.05",
        "max_p99_ratio = 2.0",
        "min_requests = 10",
        "min_p99 = \"0s\"",
    ] {
        assert!(dumped.contains(line), "{line} in {dumped}");
    }
    let again = parse_ok(&dumped);
    assert_eq!(again.to_toml(), dumped);
    assert!(config
        .summary()
        .contains("(rollout of v2 over v1: steps 20 100 every 1s 500ms)"));
}

#[test]
fn a_rollout_needs_a_split_with_its_two_clusters() {
    let text = file("cluster = \"v1\"\n  rollout = { canary = \"v2\", stable = \"v1\" }");
    assert_error(
        &text,
        "rollout",
        "listeners[0].routes[0].rollout",
        "this route has no split",
    );
    let text = with_rollout(r#"canary = "v3", stable = "v1""#);
    assert_error(
        &text,
        "rollout",
        "listeners[0].routes[0].rollout.canary",
        "cluster `v3` is not in this route's split",
    );
    let text = with_rollout(r#"canary = "v2", stable = "v2""#);
    assert_error(
        &text,
        "rollout",
        "listeners[0].routes[0].rollout.stable",
        "the stable cluster is the canary itself",
    );
    let text = with_rollout(r#"stable = "v1""#);
    assert_error(
        &text,
        "rollout",
        "listeners[0].routes[0].rollout.canary",
        "missing required key `canary`",
    );
    let three = file(
        "split = [{ cluster = \"v1\", weight = 80 }, { cluster = \"v2\", weight = 10 }, { cluster = \"v3\", weight = 10 }]\n  rollout = { canary = \"v2\", stable = \"v1\" }",
    );
    assert_error(
        &three,
        "split",
        "listeners[0].routes[0].split",
        "this split has 3 entries",
    );
}

#[test]
fn out_of_range_settings_are_refused() {
    let cases = [
        ("steps = []", "rollout.steps", "no steps listed"),
        (
            "steps = [5, 50]",
            "rollout.steps",
            "the last step must be 100",
        ),
        (
            "steps = [10, 10, 100]",
            "rollout.steps[1]",
            "step 10 does not follow 10",
        ),
        (
            "steps = [0, 100]",
            "rollout.steps[0]",
            "step 0 is out of range",
        ),
        (
            "steps = [50, 101]",
            "rollout.steps[1]",
            "step 101 is out of range",
        ),
        (
            "interval = \"99ms\"",
            "rollout.interval",
            "shorter than 100ms",
        ),
        (
            "interval = \"soon\"",
            "rollout.interval",
            "invalid duration",
        ),
        (
            "max_error_rate_delta = 1.5",
            "rollout.max_error_rate_delta",
            "from 0 to 1",
        ),
        (
            "max_error_rate_delta = -0.1",
            "rollout.max_error_rate_delta",
            "from 0 to 1",
        ),
        ("max_p99_ratio = 0.9", "rollout.max_p99_ratio", "from 1"),
        ("min_requests = 0", "rollout.min_requests", "from 1 to"),
        ("min_p99 = \"-1s\"", "rollout.min_p99", "invalid duration"),
    ];
    for (setting, key, reason) in cases {
        let text = with_rollout(&format!(r#"canary = "v2", stable = "v1", {setting}"#));
        assert_error(
            &text,
            "rollout",
            &format!("listeners[0].routes[0].{key}"),
            reason,
        );
    }
    let text = with_rollout(r#"canary = "v2", stable = "v1", pace = 3"#);
    let error = only_error(&text);
    assert!(error.reason.contains("unknown field `pace`"), "{error}");
}
