//! HTTP listeners and routes: text in, table or errors out; tallies across
//! updates.

use std::sync::Arc;
use std::time::Duration;

use dataplane::table::route::{
    HeaderTest, HostMatch, HttpService, PathMatch, Route, RouteAction, Target,
};
use dataplane::table::{ClusterId, Service};

use super::*;

mod authz;
mod paths;

/// The cores the tests pretend this machine has.
pub(super) const CORES: &[usize] = &[0, 1, 2, 3];

/// An HTTP listener that uses every key, next to a TCP one.
pub(super) const HTTP_FULL: &str = r#"
[runtime]
worker_cores = [0, 1]

[[listeners]]
name = "web"
address = "127.0.0.1:8081"
protocol = "http"
idle_timeout = "2m"
header_timeout = "5s"
request_timeout = "45s"
send_timeout = "20s"
max_request_line = 4096
max_header_bytes = 32768
max_headers = 64
max_body = 1048576
trust_forwarded = true

  [[listeners.routes]]
  name = "canary"
  host = "API.example.com"
  path_prefix = "/api/"
  methods = ["GET", "HEAD"]
  headers = [ { name = "X-Canary", exact = "1" }, { name = "x-debug", present = true }, { name = "x-user", prefix = "beta-" } ]
  split = [ { cluster = "v1", weight = 90 }, { cluster = "v2", weight = 10 }, { cluster = "v3", weight = 0 } ]
  rewrite_prefix = "/v2/"
  request_headers = { remove = ["X-Internal"], set = { "x-env" = "prod", "Host" = "api.internal" }, add = { "x-via" = "ringway" } }
  response_headers = { remove = ["server"], set = { "x-frame-options" = "DENY" }, add = { "x-served-by" = "ringway 1" } }

  [[listeners.routes]]
  name = "health"
  path = "/health"
  direct = { status = 200, body = "ok\n", content_type = "text/plain" }

  [[listeners.routes]]
  name = "old"
  host = "*.Example.org"
  redirect = { status = 308, scheme = "https", host = "example.com:8443", path = "/new" }

  [[listeners.routes]]
  name = "to-https"
  redirect = { scheme = "https" }

  [[listeners.routes]]
  name = "rest"
  cluster = "v1"

[[listeners]]
name = "db"
address = "127.0.0.1:5433"
protocol = "tcp"
cluster = "v1"

[[clusters]]
name = "v1"
endpoints = ["127.0.0.1:9001"]
pool_max_idle = 0
pool_idle_timeout = "90s"

[[clusters]]
name = "v2"
endpoints = ["127.0.0.1:9002"]

[[clusters]]
name = "v3"
endpoints = ["127.0.0.1:9003"]
pool_max_idle = 4096
"#;

pub(super) fn parse_ok(text: &str) -> Config {
    match parse_with_cores(text, "ringway.toml", Some(CORES)) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse_with_cores(text, "ringway.toml", Some(CORES)) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(errors) => errors.errors,
    }
}

/// The one error `text` yields; checks its line (of the `nth` line holding
/// `needle`), key and reason.
#[track_caller]
fn assert_only_error(text: &str, needle: &str, nth: usize, key: &str, reason: &str) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "expected one error, got:\n{errors:#?}");
    let error = &errors[0];
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not found"));
    assert_eq!(error.line, Some(line), "{error}");
    assert_eq!(error.key.as_deref(), Some(key), "{error}");
    assert!(error.reason.contains(reason), "{reason:?} not in {error}");
}

fn http(config: &Config, listener: usize) -> &HttpService {
    match &config.table.listeners[listener].service {
        Service::Http(http) => http,
        Service::Tcp { .. } => panic!("listener {listener} is not http"),
    }
}

fn targets(route: &Route) -> &[Target] {
    match &route.action {
        RouteAction::Forward(f) => &f.targets,
        other => panic!("route `{}` does not forward: {other:?}", route.name),
    }
}

/// A valid file with one http listener; `route` is its one route's body
/// (after `name = "r"`), `listener` extra listener keys.
fn one_route(listener: &str, route: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8081"
protocol = "http"
{listener}
[[listeners.routes]]
name = "r"
{route}

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]

[[clusters]]
name = "canary"
endpoints = ["127.0.0.1:8001"]
"#
    )
}

#[test]
fn full_http_listener_parses_to_expected_values() {
    let config = parse_ok(HTTP_FULL);
    let table = &config.table;
    let web = &table.listeners[0];
    assert_eq!(web.idle_timeout, Duration::from_secs(120));
    let http = http(&config, 0);
    assert_eq!(http.timeouts.header, Duration::from_secs(5));
    assert_eq!(http.timeouts.request, Duration::from_secs(45));
    assert_eq!(http.timeouts.send, Duration::from_secs(20));
    assert_eq!(http.timeouts.idle, Duration::from_secs(120));
    assert_eq!(http.limits.max_request_line, 4096);
    assert_eq!(http.limits.max_header_bytes, 32768);
    assert_eq!(http.limits.max_headers, 64);
    assert_eq!(http.limits.max_body, Some(1 << 20));
    assert!(http.trust_forwarded);
    let names: Vec<&str> = http.routes.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["canary", "health", "old", "to-https", "rest"]);

    let canary = &http.routes[0];
    let m = &canary.matcher;
    assert_eq!(m.host, Some(HostMatch::Exact("api.example.com".into())));
    assert_eq!(m.path, Some(PathMatch::Prefix("/api/".into())));
    assert_eq!(
        m.methods,
        [b"GET".as_slice().into(), b"HEAD".as_slice().into()]
    );
    assert_eq!(m.headers.len(), 3);
    assert_eq!(&*m.headers[0].name, "x-canary");
    assert_eq!(m.headers[0].test, HeaderTest::Exact(b"1".as_slice().into()));
    assert_eq!(m.headers[1].test, HeaderTest::Present);
    assert_eq!(
        m.headers[2].test,
        HeaderTest::Prefix(b"beta-".as_slice().into())
    );
    let RouteAction::Forward(forward) = &canary.action else {
        panic!("canary forwards")
    };
    let split: Vec<(ClusterId, u32)> = forward
        .targets
        .iter()
        .map(|t| (t.cluster, t.weight))
        .collect();
    assert_eq!(
        split,
        [(ClusterId(0), 90), (ClusterId(1), 10), (ClusterId(2), 0)]
    );
    assert_eq!(forward.total_weight, 100);
    assert_eq!(forward.rewrite_prefix.as_deref(), Some("/v2/"));
    let req = &canary.request_headers;
    assert_eq!(req.remove, ["x-internal".into()]);
    // In the order written, names lower-cased.
    assert_eq!(
        req.set,
        [
            ("x-env".into(), "prod".into()),
            ("host".into(), "api.internal".into())
        ]
    );
    assert_eq!(req.add, [("x-via".into(), "ringway".into())]);
    assert_eq!(
        canary.response_headers.add,
        [("x-served-by".into(), "ringway 1".into())]
    );

    let RouteAction::Direct(direct) = &http.routes[1].action else {
        panic!("health answers directly")
    };
    assert_eq!(
        http.routes[1].matcher.path,
        Some(PathMatch::Exact("/health".into()))
    );
    assert_eq!(direct.status, 200);
    assert_eq!(&*direct.body, b"ok\n");
    assert_eq!(direct.content_type.as_deref(), Some("text/plain"));

    let old = &http.routes[2];
    assert_eq!(
        old.matcher.host,
        Some(HostMatch::Suffix(".example.org".into()))
    );
    let RouteAction::Redirect(redirect) = &old.action else {
        panic!("old redirects")
    };
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.scheme.as_deref(), Some("https"));
    assert_eq!(redirect.host.as_deref(), Some("example.com:8443"));
    assert_eq!(redirect.path.as_deref(), Some("/new"));
    let RouteAction::Redirect(redirect) = &http.routes[3].action else {
        panic!("to-https redirects")
    };
    assert_eq!(redirect.status, 301, "the default status");

    // A plain `cluster` is a forward to one target of weight 1.
    let rest = &http.routes[4];
    assert!(rest.matcher.host.is_none() && rest.matcher.path.is_none());
    let [target] = targets(rest) else {
        panic!("one target")
    };
    assert_eq!((target.cluster, target.weight), (ClusterId(0), 1));

    let pools: Vec<(usize, Duration)> = table
        .clusters
        .iter()
        .map(|c| (c.pool.max_idle, c.pool.idle_timeout))
        .collect();
    assert_eq!(
        pools,
        [
            (0, Duration::from_secs(90)),
            (64, Duration::from_secs(30)),
            (4096, Duration::from_secs(30))
        ]
    );
}

#[test]
fn http_defaults_fill_in() {
    let config = parse_ok(&one_route("", "cluster = \"app\""));
    let http = http(&config, 0);
    assert_eq!(http.timeouts.header, Duration::from_secs(10));
    assert_eq!(http.timeouts.request, Duration::from_secs(60));
    assert_eq!(http.timeouts.send, Duration::from_secs(30));
    assert_eq!(http.timeouts.idle, Duration::from_secs(600));
    assert_eq!(http.limits.max_request_line, 8192);
    assert_eq!(http.limits.max_header_bytes, 61440);
    assert_eq!(http.limits.max_headers, 100);
    assert_eq!(http.limits.max_body, None);
    assert!(!http.trust_forwarded);
    let route = &http.routes[0];
    assert!(route.request_headers.is_empty() && route.response_headers.is_empty());
    let dumped = config.to_toml();
    for expected in [
        "header_timeout = \"10s\"",
        "request_timeout = \"1m\"",
        "send_timeout = \"30s\"",
        "max_request_line = 8192",
        "max_header_bytes = 61440",
        "max_headers = 100",
        "trust_forwarded = false",
        "pool_max_idle = 64",
        "pool_idle_timeout = \"30s\"",
    ] {
        assert!(
            dumped.contains(expected),
            "{expected:?} missing from\n{dumped}"
        );
    }
    assert!(!dumped.contains("max_body"), "{dumped}");
}

#[test]
fn http_round_trips_through_to_toml() {
    let config = parse_ok(HTTP_FULL);
    let dumped = config.to_toml();
    let again = parse_ok(&dumped);
    assert_eq!(again.to_toml(), dumped);
    // Every field but the tallies, which are fresh in each parse.
    for (a, b) in again.table.listeners.iter().zip(&config.table.listeners) {
        assert_eq!(format!("{:?}", a.service), format!("{:?}", b.service));
    }
}

#[test]
fn summary_lists_each_route() {
    let summary = parse_ok(HTTP_FULL).summary();
    for expected in [
        "  web 127.0.0.1:8081 http -> 5 routes (idle timeout 2m)\n",
        "    route canary: host api.example.com, path prefix /api/, methods GET HEAD, header x-canary = 1, header x-debug present, header x-user prefix beta- -> split v1 90, v2 10, v3 0 (prefix rewritten to /v2/); request headers: 1 removed, 2 set, 1 added; response headers: 1 removed, 1 set, 1 added\n",
        "    route health: path /health -> direct 200 (3 bytes)\n",
        "    route old: host *.example.org -> redirect 308 (scheme https, host example.com:8443, path /new)\n",
        "    route rest: any request -> cluster v1\n",
        "v1 [127.0.0.1:9001] (round_robin, connect timeout 1s, pool 0 idle for 1m 30s)",
    ] {
        assert!(summary.contains(expected), "{expected:?} missing from\n{summary}");
    }
}

#[test]
fn protocol_decides_cluster_or_routes() {
    // tcp refuses routes and http keys.
    let text = r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "t"
address = "127.0.0.1:8080"
protocol = "tcp"
cluster = "app"
max_body = 10
trust_forwarded = true

[[listeners.routes]]
name = "r"
cluster = "app"

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#;
    let errors = errors(text);
    let found: Vec<(Option<usize>, Option<&str>)> =
        errors.iter().map(|e| (e.line, e.key.as_deref())).collect();
    assert_eq!(
        found,
        [
            (Some(9), Some("listeners[0].max_body")),
            (Some(10), Some("listeners[0].trust_forwarded")),
            (Some(12), Some("listeners[0].routes")),
        ]
    );
    assert!(
        errors[0].reason.contains("applies to http listeners only"),
        "{}",
        errors[0]
    );
    assert!(
        errors[2].reason.contains("set protocol = \"http\""),
        "{}",
        errors[2]
    );

    // http refuses `cluster` and needs routes.
    let text = one_route("cluster = \"app\"\n", "cluster = \"app\"");
    assert_only_error(
        &text,
        "cluster = \"app\"",
        0,
        "listeners[0].cluster",
        "move `cluster = \"app\"` into a [[listeners.routes]] entry",
    );
    let text = "[runtime]\nworker_cores = [0]\n\n[[listeners]]\nname = \"web\"\naddress = \"127.0.0.1:8081\"\nprotocol = \"http\"\n";
    assert_only_error(
        text,
        "[[listeners]]",
        0,
        "listeners[0].routes",
        "missing required key `routes`",
    );
    let text = "[runtime]\nworker_cores = [0]\n\n[[listeners]]\nname = \"web\"\naddress = \"127.0.0.1:8081\"\nprotocol = \"http\"\nroutes = []\n";
    assert_only_error(
        text,
        "[[listeners]]",
        0,
        "listeners[0].routes",
        "no routes listed",
    );
}

#[test]
fn unknown_key_in_a_route_is_named() {
    let text = one_route("", "cluster = \"app\"\npath_prefx = \"/a\"");
    assert_only_error(
        &text,
        "path_prefx",
        0,
        "listeners[0].routes[0].path_prefx",
        "unknown field `path_prefx`",
    );
    let text = one_route(
        "",
        "cluster = \"app\"\nheaders = [{ name = \"a\", exakt = \"1\" }]",
    );
    assert_only_error(
        &text,
        "exakt",
        0,
        "listeners[0].routes[0].headers[0].exakt",
        "unknown field `exakt`",
    );
}

#[test]
fn route_names_are_required_valid_and_unique() {
    let text = one_route(
        "",
        "cluster = \"app\"\n\n[[listeners.routes]]\nname = \"r\"\ncluster = \"app\"",
    );
    assert_only_error(
        &text,
        "name = \"r\"",
        1,
        "listeners[0].routes[1].name",
        "duplicate route name `r`; first defined on line 10",
    );
    let text = one_route("", "cluster = \"app\"").replace("name = \"r\"", "name = \"a b\"");
    assert_only_error(
        &text,
        "a b",
        0,
        "listeners[0].routes[0].name",
        "invalid name \"a b\"",
    );
    let text = one_route("", "cluster = \"app\"").replace("name = \"r\"\n", "");
    assert_only_error(
        &text,
        "[[listeners.routes]]",
        0,
        "listeners[0].routes[0].name",
        "missing required key `name`",
    );
}

#[test]
fn condition_errors() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "host = \"api.example.com:8080\"",
            "host",
            "listeners[0].routes[0].host",
            "it has a port",
        ),
        (
            "host = \"api.*.com\"",
            "host",
            "listeners[0].routes[0].host",
            "a `*` may only start the host",
        ),
        (
            "host = \".example.com\"",
            "host",
            "listeners[0].routes[0].host",
            "write \"*.example.com\"",
        ),
        (
            "host = \"\"",
            "host",
            "listeners[0].routes[0].host",
            "it is empty",
        ),
        (
            "path = \"health\"",
            "path",
            "listeners[0].routes[0].path",
            "must start with '/'",
        ),
        (
            "path = \"/a?b=1\"",
            "path",
            "listeners[0].routes[0].path",
            "without their query",
        ),
        (
            "path_prefix = \"/a b\"",
            "path_prefix",
            "listeners[0].routes[0].path_prefix",
            "percent-encoded",
        ),
        (
            "path = \"/a\"\npath_prefix = \"/b\"",
            "path_prefix",
            "listeners[0].routes[0].path_prefix",
            "`path` or `path_prefix`, not both; this one also has `path` (line 11)",
        ),
        (
            "methods = []",
            "methods",
            "listeners[0].routes[0].methods",
            "no methods listed",
        ),
        (
            "methods = [\"GET\", \"G T\"]",
            "methods",
            "listeners[0].routes[0].methods[1]",
            "invalid method \"G T\"",
        ),
        (
            "methods = [\"get\"]",
            "methods",
            "listeners[0].routes[0].methods[0]",
            "write \"GET\"",
        ),
        (
            "methods = [\"GET\", \"GET\"]",
            "methods",
            "listeners[0].routes[0].methods[1]",
            "listed twice",
        ),
        (
            "headers = [{ name = \"x y\", exact = \"1\" }]",
            "headers",
            "listeners[0].routes[0].headers[0].name",
            "invalid header name \"x y\"",
        ),
        (
            "headers = [{ name = \"x\" }]",
            "headers",
            "listeners[0].routes[0].headers[0]",
            "no test; give exactly one of",
        ),
        (
            "headers = [{ name = \"x\", exact = \"1\", prefix = \"2\" }]",
            "headers",
            "listeners[0].routes[0].headers[0].prefix",
            "already has `exact`",
        ),
        (
            "headers = [{ name = \"x\", present = false }]",
            "headers",
            "listeners[0].routes[0].headers[0].present",
            "write `present = true`",
        ),
        (
            "headers = [{ name = \"x\", exact = \"a\\rb\" }]",
            "headers",
            "listeners[0].routes[0].headers[0].exact",
            "visible ASCII, spaces and tabs only",
        ),
        (
            "headers = []",
            "headers",
            "listeners[0].routes[0].headers",
            "no header conditions listed",
        ),
    ];
    for (route, needle, key, reason) in cases {
        let text = one_route("", &format!("{route}\ncluster = \"app\""));
        assert_only_error(&text, needle, 0, key, reason);
    }
}

#[test]
fn action_errors() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("path = \"/\"", "[[listeners.routes]]", "listeners[0].routes[0]", "no action; give exactly one of `cluster`, `split`, `redirect` or `direct`"),
        ("cluster = \"app\"\ndirect = { status = 200 }", "direct", "listeners[0].routes[0].direct", "already has `cluster` (line 11)"),
        ("cluster = \"nope\"", "nope", "listeners[0].routes[0].cluster", "no cluster named `nope` (clusters: app, canary)"),
        ("split = []", "split", "listeners[0].routes[0].split", "no clusters listed"),
        ("split = [{ cluster = \"app\", weight = 0 }, { cluster = \"canary\", weight = 0 }]", "split", "listeners[0].routes[0].split", "every weight is 0"),
        ("split = [{ cluster = \"app\", weight = 4294967295 }, { cluster = \"canary\", weight = 1 }]", "split", "listeners[0].routes[0].split", "add up to 4294967296, more than 4294967295"),
        ("split = [{ cluster = \"app\", weight = -1 }]", "split", "listeners[0].routes[0].split[0].weight", "weight -1 is out of range: from 0 to 4294967295"),
        ("split = [{ cluster = \"app\" }]", "split", "listeners[0].routes[0].split[0].weight", "missing required key `weight`"),
        ("split = [{ cluster = \"ghost\", weight = 1 }]", "split", "listeners[0].routes[0].split[0].cluster", "no cluster named `ghost`"),
        ("split = [{ cluster = \"app\", weight = 1 }, { cluster = \"app\", weight = 2 }]", "split", "listeners[0].routes[0].split[1].cluster", "already in this split (line 11)"),
        ("redirect = { status = 200, scheme = \"https\" }", "redirect", "listeners[0].routes[0].redirect.status", "not one of 301, 302, 303, 307, 308"),
        ("redirect = { scheme = \"ftp\" }", "redirect", "listeners[0].routes[0].redirect.scheme", "unknown scheme \"ftp\" (accepted: http, https)"),
        ("redirect = { status = 302 }", "redirect", "listeners[0].routes[0].redirect", "at least one of `scheme`, `host` or `path`"),
        ("redirect = { host = \"a b\" }", "redirect", "listeners[0].routes[0].redirect.host", "invalid redirect host \"a b\""),
        ("redirect = { host = \"example.com:0\" }", "redirect", "listeners[0].routes[0].redirect.host", "is not a port"),
        ("redirect = { path = \"new\" }", "redirect", "listeners[0].routes[0].redirect.path", "must start with '/'"),
        ("direct = { status = 600 }", "direct", "listeners[0].routes[0].direct.status", "status 600 is out of range: from 200 to 599"),
        ("direct = { body = \"x\" }", "direct", "listeners[0].routes[0].direct.status", "missing required key `status`"),
        ("direct = { status = 204, body = \"x\" }", "direct", "listeners[0].routes[0].direct.body", "a 204 response has no body"),
        ("direct = { status = 200, content_type = \"text/plain\\n\" }", "direct", "listeners[0].routes[0].direct.content_type", "visible ASCII"),
        ("cluster = \"app\"\nrewrite_prefix = \"/v2/\"", "rewrite_prefix", "listeners[0].routes[0].rewrite_prefix", "this route has none; add a `path_prefix`"),
        ("path_prefix = \"/a/\"\nredirect = { path = \"/b\" }\nrewrite_prefix = \"/v2/\"", "rewrite_prefix", "listeners[0].routes[0].rewrite_prefix", "applies to forwarded requests"),
        ("path_prefix = \"/a/\"\ncluster = \"app\"\nrewrite_prefix = \"v2\"", "rewrite_prefix", "listeners[0].routes[0].rewrite_prefix", "must start with '/'"),
    ];
    for (route, needle, key, reason) in cases {
        let text = one_route("", route);
        assert_only_error(&text, needle, 0, key, reason);
    }
}

#[test]
fn header_edit_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("request_headers = { remove = [\"Content-Length\"] }", "listeners[0].routes[0].request_headers.remove[0]", "header `content-length` cannot be edited: message framing and hop-by-hop headers are ringway's"),
        ("response_headers = { set = { \"Transfer-Encoding\" = \"chunked\" } }", "listeners[0].routes[0].response_headers.set.Transfer-Encoding", "cannot be edited"),
        ("request_headers = { add = { \"connection\" = \"close\" } }", "listeners[0].routes[0].request_headers.add.connection", "cannot be edited"),
        ("request_headers = { remove = [\"host\"] }", "listeners[0].routes[0].request_headers.remove[0]", "cannot be removed; use `set` to rewrite it"),
        ("request_headers = { add = { host = \"a\" } }", "listeners[0].routes[0].request_headers.add.host", "cannot be added"),
        ("request_headers = { set = { \"x-a\" = \"1\\r\\nx-b: 2\" } }", "listeners[0].routes[0].request_headers.set.x-a", "'\\r' at byte 1 is not allowed"),
        ("request_headers = { set = { \"x a\" = \"1\" } }", "listeners[0].routes[0].request_headers.set.\"x a\"", "invalid header name \"x a\""),
        ("request_headers = { set = { \"X-A\" = \"1\", \"x-a\" = \"2\" } }", "listeners[0].routes[0].request_headers.set.x-a", "set twice"),
        ("response_headers = { remove = [\"a\", \"A\"] }", "listeners[0].routes[0].response_headers.remove[1]", "listed twice"),
    ];
    for (edit, key, reason) in cases {
        let text = one_route("", &format!("cluster = \"app\"\n{edit}"));
        assert_only_error(&text, "_headers", 0, key, reason);
    }
    // `host` may be set in a request: a host rewrite.
    let config = parse_ok(&one_route(
        "",
        "cluster = \"app\"\nrequest_headers = { set = { Host = \"b\" } }",
    ));
    assert_eq!(
        http(&config, 0).routes[0].request_headers.set,
        [("host".into(), "b".into())]
    );
}

#[test]
fn limit_and_timeout_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "max_request_line = 63",
            "listeners[0].max_request_line",
            "max_request_line 63 is out of range: from 64 to 65536 bytes",
        ),
        (
            "max_header_bytes = 2000000",
            "listeners[0].max_header_bytes",
            "from 1024 to 1048576 bytes",
        ),
        (
            "max_headers = 513",
            "listeners[0].max_headers",
            "from 1 to 512 header fields",
        ),
        (
            "max_headers = 0",
            "listeners[0].max_headers",
            "out of range",
        ),
        (
            "max_body = -1",
            "listeners[0].max_body",
            "max_body -1 is negative",
        ),
        (
            "max_request_line = 65536",
            "listeners[0].max_request_line",
            "max_header_bytes 61440 (the default) is below max_request_line 65536",
        ),
        (
            "max_header_bytes = 2048\nmax_request_line = 4096",
            "listeners[0].max_header_bytes",
            "max_header_bytes 2048 is below max_request_line 4096",
        ),
        (
            "header_timeout = \"0s\"",
            "listeners[0].header_timeout",
            "must be longer than zero",
        ),
        (
            "request_timeout = \"soon\"",
            "listeners[0].request_timeout",
            "invalid duration \"soon\"",
        ),
        (
            "send_timeout = \"0ms\"",
            "listeners[0].send_timeout",
            "must be longer than zero",
        ),
    ];
    for (keys, key, reason) in cases {
        let text = one_route(&format!("{keys}\n"), "cluster = \"app\"");
        let needle = key.rsplit('.').next().expect("a key");
        assert_only_error(&text, needle, 0, key, reason);
    }
    let text = one_route("max_body = 0\n", "cluster = \"app\"");
    assert_eq!(http(&parse_ok(&text), 0).limits.max_body, Some(0));
}

#[test]
fn pool_errors() {
    let text = one_route("", "cluster = \"app\"").replace(
        "endpoints = [\"127.0.0.1:8000\"]",
        "endpoints = [\"127.0.0.1:8000\"]\npool_max_idle = 4097\npool_idle_timeout = \"0s\"",
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].key.as_deref(), Some("clusters[0].pool_max_idle"));
    assert!(
        errors[0].reason.contains("from 0 (no reuse) to 4096"),
        "{}",
        errors[0]
    );
    assert_eq!(
        errors[1].key.as_deref(),
        Some("clusters[0].pool_idle_timeout")
    );
    assert!(
        errors[1].reason.contains("must be longer than zero"),
        "{}",
        errors[1]
    );
}

#[test]
fn route_errors_are_all_reported_with_listener_errors() {
    let text = one_route("max_headers = 0\n", "host = \"a:1\"\nsplit = [{ cluster = \"x\", weight = 1 }]\n\n[[listeners.routes]]\nname = \"s\"");
    let errors = errors(&text);
    let keys: Vec<&str> = errors.iter().filter_map(|e| e.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            "listeners[0].max_headers",
            "listeners[0].routes[0].host",
            "listeners[0].routes[0].split[0].cluster",
            "listeners[0].routes[1]",
        ]
    );
}

const RUNNING: &str = r#"[runtime]
worker_cores = [0, 1]

[[listeners]]
name = "web"
address = "127.0.0.1:8081"
protocol = "http"

[[listeners.routes]]
name = "api"
split = [{ cluster = "stable", weight = 90 }, { cluster = "canary", weight = 10 }]

[[listeners.routes]]
name = "rest"
cluster = "stable"

[[clusters]]
name = "stable"
endpoints = ["127.0.0.1:9001"]

[[clusters]]
name = "canary"
endpoints = ["127.0.0.1:9002"]
"#;

fn update(running: &Config, text: &str) -> Config {
    match parse_update(text, "next.toml", running, Some(CORES), |_| Ok(())) {
        Ok(config) => config,
        Err(errors) => panic!("update refused:\n{errors}"),
    }
}

#[test]
fn tallies_carry_over_an_update_by_name() {
    let running = parse_ok(RUNNING);
    let old = http(&running, 0);
    old.tally.worker(1).requests.add(3);
    // Move the weights, rename one route, reorder the split and add a
    // route in front.
    let next_text = RUNNING
        .replace(
            "split = [{ cluster = \"stable\", weight = 90 }, { cluster = \"canary\", weight = 10 }]",
            "split = [{ cluster = \"canary\", weight = 50 }, { cluster = \"stable\", weight = 50 }]",
        )
        .replace("name = \"rest\"", "name = \"fallback\"")
        .replace(
            "[[listeners.routes]]\nname = \"api\"",
            "[[listeners.routes]]\nname = \"health\"\npath = \"/health\"\ndirect = { status = 200 }\n\n[[listeners.routes]]\nname = \"api\"",
        );
    let next = update(&running, &next_text);
    let new = http(&next, 0);
    assert!(Arc::ptr_eq(&new.tally, &old.tally));
    assert_eq!(new.tally.totals().requests, 3);

    let (old_api, new_api) = (&old.routes[0], &new.routes[1]);
    assert_eq!((&*old_api.name, &*new_api.name), ("api", "api"));
    assert!(Arc::ptr_eq(&new_api.tally, &old_api.tally));
    // Targets are matched by cluster name, not by position.
    let (old_t, new_t) = (targets(old_api), targets(new_api));
    assert!(Arc::ptr_eq(&new_t[0].tally, &old_t[1].tally), "canary");
    assert!(Arc::ptr_eq(&new_t[1].tally, &old_t[0].tally), "stable");

    // A renamed route starts afresh, and so do its targets; so does a new
    // route.
    let (old_rest, fallback) = (&old.routes[1], &new.routes[2]);
    assert!(!Arc::ptr_eq(&fallback.tally, &old_rest.tally));
    assert!(!Arc::ptr_eq(
        &targets(fallback)[0].tally,
        &targets(old_rest)[0].tally
    ));
    assert_eq!(new.routes[0].tally.totals().requests, 0);

    // A fresh parse of the same text shares nothing.
    let fresh = parse_ok(&next_text);
    assert!(!Arc::ptr_eq(&http(&fresh, 0).tally, &new.tally));
}

#[test]
fn a_renamed_listener_or_removed_cluster_starts_afresh() {
    let running = parse_ok(RUNNING);
    let next = update(
        &running,
        &RUNNING
            .replace("name = \"web\"", "name = \"front\"")
            .replace(
                "{ cluster = \"canary\", weight = 10 }",
                "{ cluster = \"stable2\", weight = 10 }",
            )
            .replace("name = \"canary\"", "name = \"stable2\""),
    );
    let (old, new) = (http(&running, 0), http(&next, 0));
    assert!(!Arc::ptr_eq(&new.tally, &old.tally));
    assert!(!Arc::ptr_eq(&new.routes[0].tally, &old.routes[0].tally));

    // Same listener, a split target on another cluster: only that target
    // is new.
    let next = update(
        &running,
        &RUNNING
            .replace(
                "{ cluster = \"canary\", weight = 10 }",
                "{ cluster = \"stable2\", weight = 10 }",
            )
            .replace("name = \"canary\"", "name = \"stable2\""),
    );
    let new = http(&next, 0);
    assert!(Arc::ptr_eq(&new.routes[0].tally, &old.routes[0].tally));
    let (old_t, new_t) = (targets(&old.routes[0]), targets(&new.routes[0]));
    assert!(Arc::ptr_eq(&new_t[0].tally, &old_t[0].tally));
    assert!(!Arc::ptr_eq(&new_t[1].tally, &old_t[1].tally));
}

#[test]
fn tallies_have_a_block_per_worker() {
    let config = parse_ok(RUNNING);
    let tally = &http(&config, 0).tally;
    tally.worker(0).requests.add(1);
    tally.worker(1).requests.add(2);
    // Past the worker count the last block is shared: 2 blocks, not more.
    tally.worker(5).requests.add(4);
    assert_eq!(tally.totals().requests, 7);
    assert_eq!(tally.worker(1).requests.get(), 6);
}

#[test]
fn a_cloned_config_shares_its_tallies() {
    // `PUT /clusters/{name}/endpoints` builds its table from a clone of
    // the running configuration.
    let running = parse_ok(RUNNING);
    let clone = running.clone();
    assert!(Arc::ptr_eq(
        &http(&clone, 0).tally,
        &http(&running, 0).tally
    ));
    assert!(Arc::ptr_eq(
        &targets(&http(&clone, 0).routes[0])[1].tally,
        &targets(&http(&running, 0).routes[0])[1].tally
    ));
}
