//! Tests of a route's `mirror = { ... }`.

use std::sync::Arc;

use dataplane::table::mirror::{Mirror, MirrorOutcome, MILLION};
use dataplane::table::route::RouteAction;
use dataplane::table::Service;

use super::compile::mirror::{DEFAULT_MAX_BODY, DEFAULT_MAX_IN_FLIGHT};
use super::http_tests::parse_ok;
use super::tests::{self, line_of, only_error};

/// A file with one forwarding route (these extra lines) to cluster `v1`,
/// and a second cluster `v2`.
fn file(route: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"

  [[listeners.routes]]
  name = "all"
  cluster = "v1"
  {route}

[[clusters]]
name = "v1"
endpoints = ["127.0.0.1:8000"]

[[clusters]]
name = "v2"
endpoints = ["127.0.0.1:8001"]
"#
    )
}

fn update(running: &super::Config, text: &str) -> super::Config {
    match super::update::parse_update(text, "next.toml", running, Some(&[0, 1, 2, 3]), |_| Ok(())) {
        Ok(config) => config,
        Err(errors) => panic!("update refused:\n{errors}"),
    }
}

fn assert_error(text: &str, needle: &str, key: &str, reason: &str) {
    let error = only_error(text);
    tests::assert_error(&error, line_of(text, needle, 0), key, reason);
}

fn mirror_of(config: &super::Config) -> Option<&Mirror> {
    let Service::Http(http) = &config.table.listeners[0].service else {
        panic!("an http listener");
    };
    match &http.routes.iter().next().expect("a route").action {
        RouteAction::Forward(f) => f.mirror.as_ref(),
        _ => panic!("a forward"),
    }
}

#[test]
fn keys_left_out_take_the_defaults() {
    let config = parse_ok(&file(r#"mirror = { cluster = "v2" }"#));
    let m = mirror_of(&config).expect("a mirror");
    assert_eq!(config.table.cluster(m.cluster).name.as_ref(), "v2");
    assert_eq!(m.ppm, MILLION);
    assert!(!m.host_suffix);
    assert_eq!(m.max_body, DEFAULT_MAX_BODY);
    assert_eq!(m.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert!(mirror_of(&parse_ok(&file(""))).is_none());
}

#[test]
fn every_key_parses_and_round_trips() {
    let text = file(
        r#"mirror = { cluster = "v2", percent = 12.5, host_suffix = true, max_body = 1024, max_in_flight = 8 }"#,
    );
    let config = parse_ok(&text);
    let m = mirror_of(&config).expect("a mirror");
    assert_eq!(
        (m.ppm, m.host_suffix, m.max_body, m.max_in_flight),
        (125_000, true, 1024, 8)
    );
    let rendered = config.to_toml();
    assert!(
        rendered.contains("percent = 12.5"),
        "the rendered config shows the share: {rendered}"
    );
    let again = parse_ok(&rendered);
    let back = mirror_of(&again).expect("a mirror after the round trip");
    assert_eq!(again.table.cluster(back.cluster).name.as_ref(), "v2");
    assert_eq!(
        (
            back.ppm,
            back.host_suffix,
            back.max_body,
            back.max_in_flight
        ),
        (m.ppm, m.host_suffix, m.max_body, m.max_in_flight)
    );
    // Integers are percentages too, and the primary's own cluster may be
    // mirrored to (pointless, but not wrong).
    let config = parse_ok(&file(r#"mirror = { cluster = "v1", percent = 0 }"#));
    assert_eq!(mirror_of(&config).expect("a mirror").ppm, 0);
}

#[test]
fn mistakes_name_their_key_and_line() {
    for (route, key, reason) in [
        (
            r#"mirror = { cluster = "v3" }"#,
            "listeners[0].routes[0].mirror.cluster",
            "no cluster named `v3` (clusters: v1, v2)",
        ),
        (
            "mirror = { percent = 10 }",
            "listeners[0].routes[0].mirror.cluster",
            "missing required key `cluster`",
        ),
        (
            r#"mirror = { cluster = "v2", percent = 100.5 }"#,
            "listeners[0].routes[0].mirror.percent",
            "percent 100.5 is out of range: from 0",
        ),
        (
            r#"mirror = { cluster = "v2", percent = -1 }"#,
            "listeners[0].routes[0].mirror.percent",
            "out of range",
        ),
        (
            r#"mirror = { cluster = "v2", max_body = 2000000 }"#,
            "listeners[0].routes[0].mirror.max_body",
            "max_body 2000000 is out of range",
        ),
        (
            r#"mirror = { cluster = "v2", max_in_flight = 0 }"#,
            "listeners[0].routes[0].mirror.max_in_flight",
            "to mirror nothing, set percent = 0",
        ),
        (
            r#"mirror = { cluster = "v2", pct = 1 }"#,
            "listeners[0].routes[0].mirror.pct",
            "unknown field `pct`",
        ),
        (
            r#"mirror = { cluster = "v2", host_suffix = "yes" }"#,
            "listeners[0].routes[0].mirror.host_suffix",
            "invalid type",
        ),
    ] {
        assert_error(&file(route), "mirror =", key, reason);
    }
}

#[test]
fn a_route_that_forwards_nothing_takes_no_mirror() {
    let text = file("").replace(
        "  cluster = \"v1\"\n",
        "  direct = { status = 200 }\n  mirror = { cluster = \"v2\" }\n",
    );
    assert_error(
        &text,
        "mirror =",
        "listeners[0].routes[0].mirror",
        "a `redirect` or `direct` route sends nothing upstream",
    );
}

#[test]
fn a_reload_keeps_the_counts_while_the_labels_stay() {
    let text = file(r#"mirror = { cluster = "v2", percent = 50 }"#);
    let first = parse_ok(&text);
    let tally = &mirror_of(&first).expect("a mirror").tally;
    tally.count(0, MirrorOutcome::Answered);
    let same = update(&first, &text);
    let kept = &mirror_of(&same).expect("a mirror").tally;
    assert!(Arc::ptr_eq(tally, kept), "same labels, same tally");
    let other = file(r#"mirror = { cluster = "v1" }"#);
    let moved = update(&first, &other);
    let fresh = &mirror_of(&moved).expect("a mirror").tally;
    assert_eq!(fresh.totals(), [0; 4], "another cluster starts from zero");
}
