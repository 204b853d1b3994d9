//! Tests of fault injection (a route's and a TCP listener's `fault`) and a
//! route's own `request_timeout`, `idle_timeout` and `max_body`.

use std::time::Duration;

use dataplane::request::Fault;
use dataplane::table::route::RouteLimits;
use dataplane::table::Service;

use super::http_tests::parse_ok;
use super::tests::{self, line_of, only_error, route_and_tcp_file as file};

fn assert_error(text: &str, needle: &str, key: &str, reason: &str) {
    let error = only_error(text);
    tests::assert_error(&error, line_of(text, needle, 0), key, reason);
}

fn route(config: &super::Config) -> &dataplane::table::route::Route {
    let Service::Http(http) = &config.table.listeners[0].service else {
        panic!("an http listener");
    };
    http.routes.iter().next().expect("a route")
}

#[test]
fn a_route_fault_parses_with_its_defaults_and_round_trips() {
    let text = file(
        r#"fault = { delay = "200ms", delay_percent = 10, abort_percent = 5.5, header = "X-Fault-Test" }"#,
        r#"fault = { delay = "1s", delay_percent = 2.5, abort_percent = 1 }"#,
    );
    let config = parse_ok(&text);
    let fault = route(&config).fault.as_deref().expect("a fault");
    assert_eq!(fault.abort_status, 503);
    assert_eq!(fault.shares.abort_percent, 5.5);
    assert_eq!(fault.shares.delay_percent, 10.0);
    assert_eq!(fault.delay, Some(Duration::from_millis(200)));
    assert_eq!(fault.header.as_deref(), Some("x-fault-test"));
    assert_eq!(fault.shares.decide(0), Some(Fault::Abort));
    assert_eq!(fault.shares.decide(u64::MAX), None);
    let Service::Tcp {
        fault: Some(tcp), ..
    } = &config.table.listeners[1].service
    else {
        panic!("a tcp listener with a fault");
    };
    assert_eq!(tcp.delay, Some(Duration::from_secs(1)));
    assert_eq!(tcp.shares.abort_percent, 1.0);

    let summary = config.summary();
    assert!(
        summary.contains(
            "; injects faults: abort 503 to 5.5% delay 200ms to 10% (requests with x-fault-test only)"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("    injects faults: abort to 1% delay 1s to 2.5%\n"),
        "{summary}"
    );
    let dumped = config.to_toml();
    assert!(dumped.contains("abort_status = 503"), "{dumped}");
    assert!(dumped.contains("header = \"x-fault-test\""), "{dumped}");
    let again = parse_ok(&dumped);
    assert_eq!(again.to_toml(), dumped);
    assert_eq!(route(&again).fault, route(&config).fault);
}

#[test]
fn route_limits_parse_and_round_trip() {
    let text = file(
        r#"request_timeout = "2s"
  idle_timeout = "5s"
  max_body = 1024"#,
        "",
    );
    let config = parse_ok(&text);
    assert_eq!(
        route(&config).limits,
        RouteLimits {
            request_timeout: Some(Duration::from_secs(2)),
            idle_timeout: Some(Duration::from_secs(5)),
            max_body: Some(1024),
        }
    );
    let dumped = config.to_toml();
    let again = parse_ok(&dumped);
    assert_eq!(again.to_toml(), dumped);
    assert_eq!(route(&again).limits, route(&config).limits);
    // A route without them keeps the listener's.
    let plain = parse_ok(&file("", ""));
    assert_eq!(route(&plain).limits, RouteLimits::default());
    assert!(!plain.to_toml().contains("abort_percent"));
}

#[test]
fn fault_errors_name_the_key_and_line() {
    for (route, tcp, needle, key, reason) in [
        (
            "fault = { abort_percent = 101 }",
            "",
            "abort_percent",
            "listeners[0].routes[0].fault.abort_percent",
            "from 0 to 100",
        ),
        (
            "fault = { abort_percent = -1 }",
            "",
            "abort_percent",
            "listeners[0].routes[0].fault.abort_percent",
            "from 0 to 100",
        ),
        (
            r#"fault = { delay_percent = 10 }"#,
            "",
            "delay_percent",
            "listeners[0].routes[0].fault.delay_percent",
            "needs a delay",
        ),
        (
            r#"fault = { delay = "1s" }"#,
            "",
            "delay",
            "listeners[0].routes[0].fault.delay",
            "needs delay_percent",
        ),
        (
            r#"fault = { delay = "0s", delay_percent = 5 }"#,
            "",
            "delay",
            "listeners[0].routes[0].fault.delay",
            "longer than zero",
        ),
        (
            "fault = { abort_status = 503 }",
            "",
            "abort_status",
            "listeners[0].routes[0].fault.abort_status",
            "no abort_percent",
        ),
        (
            "fault = { abort_status = 200, abort_percent = 5 }",
            "",
            "abort_status",
            "listeners[0].routes[0].fault.abort_status",
            "from 400 to 599",
        ),
        (
            r#"fault = { abort_percent = 60, delay = "1s", delay_percent = 50 }"#,
            "",
            "abort_percent",
            "listeners[0].routes[0].fault.delay_percent",
            "add up to more than 100",
        ),
        (
            r#"fault = { abort_percent = 0, delay = "1s", delay_percent = 0 }"#,
            "",
            "abort_percent",
            "listeners[0].routes[0].fault",
            "injects nothing",
        ),
        (
            r#"fault = { abort_percent = 5, header = "x fault" }"#,
            "",
            "abort_percent",
            "listeners[0].routes[0].fault.header",
            "invalid header name",
        ),
        (
            "fault = { abort_percnt = 5 }",
            "",
            "abort_percnt",
            "listeners[0].routes[0].fault.abort_percnt",
            "unknown field `abort_percnt`",
        ),
        (
            "",
            "fault = { abort_status = 503, abort_percent = 5 }",
            "abort_status = 503",
            "listeners[1].fault.abort_status",
            "unknown field `abort_status`",
        ),
        (
            "",
            "fault = { abort_percent = 0 }",
            "abort_percent = 0",
            "listeners[1].fault",
            "injects nothing",
        ),
    ] {
        assert_error(&file(route, tcp), needle, key, reason);
    }
}

#[test]
fn an_http_listener_takes_its_faults_on_its_routes() {
    let text = file("", "").replace(
        "request_timeout = \"10s\"\n",
        "request_timeout = \"10s\"\nfault = { abort_percent = 5 }\n",
    );
    assert_error(&text, "fault = {", "listeners[0].fault", "per route");
}

#[test]
fn route_limit_errors_name_the_key_and_line() {
    for (route, needle, key, reason) in [
        (
            r#"request_timeout = "0s""#,
            "request_timeout = \"0s\"",
            "listeners[0].routes[0].request_timeout",
            "longer than zero",
        ),
        (
            r#"idle_timeout = "soon""#,
            "idle_timeout",
            "listeners[0].routes[0].idle_timeout",
            "invalid duration",
        ),
        (
            "max_body = -1",
            "max_body",
            "listeners[0].routes[0].max_body",
            "negative",
        ),
        // The route's own request timeout bounds its attempts: a
        // per-try timeout must be shorter than it, whatever the
        // listener's (10s here).
        (
            r#"request_timeout = "1s"
  retry = { per_try_timeout = "2s" }"#,
            "per_try_timeout",
            "listeners[0].routes[0].retry.per_try_timeout",
            "not shorter than the route's request_timeout 1s",
        ),
        (
            r#"request_timeout = "1s"
  retry = { per_try_timeout = "1s" }"#,
            "per_try_timeout",
            "listeners[0].routes[0].retry.per_try_timeout",
            "not shorter than the route's request_timeout 1s",
        ),
    ] {
        assert_error(&file(route, ""), needle, key, reason);
    }
    // A route's longer request timeout lets a per-try timeout past the
    // listener's stand.
    let config = parse_ok(&file(
        r#"request_timeout = "30s"
  retry = { per_try_timeout = "20s" }"#,
        "",
    ));
    assert_eq!(
        route(&config).limits.request_timeout,
        Some(Duration::from_secs(30))
    );
}

#[test]
fn a_route_that_answers_itself_takes_no_request_timeout() {
    let text = file("", "").replace(
        "  cluster = \"app\"\n",
        "  direct = { status = 200, body = \"ok\" }\n  request_timeout = \"1s\"\n",
    );
    assert_error(
        &text,
        "request_timeout = \"1s\"",
        "listeners[0].routes[0].request_timeout",
        "has none",
    );
}
