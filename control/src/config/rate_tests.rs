//! Tests of the rate limit keys: a route's `rate_limit = { ... }` and a
//! listener's `connection_rate_limit = { ... }`.

use dataplane::table::rate::{RateKey, RateSettings, DEFAULT_MAX_KEYS};
use dataplane::table::Service;

use super::http_tests::{parse_ok, CORES};
use super::tests::{self, line_of, only_error, route_and_tcp_file as file};

fn route_limit(config: &super::Config) -> Option<RateSettings> {
    let Service::Http(http) = &config.table.listeners[0].service else {
        panic!("an http listener");
    };
    let route = http.routes.iter().next().expect("a route");
    route.rate_limit.as_ref().map(|l| l.settings.clone())
}

fn connection_limit(config: &super::Config) -> Option<RateSettings> {
    config.table.listeners[1]
        .connection_rate_limit
        .as_ref()
        .map(|c| c.limit.settings.clone())
}

#[test]
fn no_limit_unless_asked() {
    let config = parse_ok(&file("", ""));
    assert_eq!(route_limit(&config), None);
    assert_eq!(connection_limit(&config), None);
    assert!(!config.to_toml().contains("rate_limit"));
}

#[test]
fn every_key_parses_with_its_defaults_and_round_trips() {
    for (route, expected) in [
        (
            "rate_limit = { requests_per_second = 1000 }",
            RateSettings {
                per_second: 1000,
                burst: 100,
                key: RateKey::Route,
                max_keys: DEFAULT_MAX_KEYS,
            },
        ),
        (
            r#"rate_limit = { requests_per_second = 5, burst = 50, key = "client_address", max_keys = 100 }"#,
            RateSettings {
                per_second: 5,
                burst: 50,
                key: RateKey::ClientAddress,
                max_keys: 100,
            },
        ),
        (
            r#"rate_limit = { requests_per_second = 7, key = "header:X-Api-Key" }"#,
            RateSettings {
                per_second: 7,
                burst: 1,
                key: RateKey::Header("x-api-key".into()),
                max_keys: DEFAULT_MAX_KEYS,
            },
        ),
    ] {
        let text = file(
            route,
            "connection_rate_limit = { connections_per_second = 30 }",
        );
        let config = parse_ok(&text);
        assert_eq!(route_limit(&config).as_ref(), Some(&expected), "{route}");
        let conns = connection_limit(&config).expect("a connection limit");
        assert_eq!((conns.per_second, conns.burst), (30, 3));
        let again = parse_ok(&config.to_toml());
        assert_eq!(route_limit(&again), Some(expected), "{}", config.to_toml());
        assert_eq!(connection_limit(&again), Some(conns));
    }
}

#[test]
fn an_http_listener_takes_a_connection_limit_too() {
    let text = file("", "").replace(
        "protocol = \"http\"\n",
        "protocol = \"http\"\nconnection_rate_limit = { connections_per_second = 8, burst = 2 }\n",
    );
    let config = parse_ok(&text);
    let limit = config.table.listeners[0]
        .connection_rate_limit
        .as_ref()
        .expect("a connection limit");
    assert_eq!(
        (limit.limit.settings.per_second, limit.limit.settings.burst),
        (8, 2)
    );
}

#[test]
fn mistakes_name_their_key_and_line() {
    for (route, tcp, needle, key, reason) in [
        (
            "rate_limit = { requests_per_second = 0 }",
            "",
            "requests_per_second",
            "listeners[0].routes[0].rate_limit.requests_per_second",
            "requests_per_second 0 is out of range: from 1 to 10000000",
        ),
        (
            "rate_limit = { requests_per_second = -5 }",
            "",
            "requests_per_second",
            "listeners[0].routes[0].rate_limit.requests_per_second",
            "out of range",
        ),
        (
            "rate_limit = { requests_per_second = 10, burst = 0 }",
            "",
            "burst",
            "listeners[0].routes[0].rate_limit.burst",
            "burst 0 is out of range: from 1",
        ),
        (
            r#"rate_limit = { requests_per_second = 10, key = "cookie:session" }"#,
            "",
            "cookie:session",
            "listeners[0].routes[0].rate_limit.key",
            "unknown rate limit key \"cookie:session\"",
        ),
        (
            r#"rate_limit = { requests_per_second = 10, key = "header:x api" }"#,
            "",
            "header:x api",
            "listeners[0].routes[0].rate_limit.key",
            "invalid header name \"x api\"",
        ),
        (
            r#"rate_limit = { requests_per_second = 10, key = "client_address", max_keys = 0 }"#,
            "",
            "max_keys",
            "listeners[0].routes[0].rate_limit.max_keys",
            "max_keys 0 is out of range: from 1 to 1048576",
        ),
        (
            r#"rate_limit = { requests_per_second = 10, key = "client_address", max_keys = 100000000 }"#,
            "",
            "max_keys",
            "listeners[0].routes[0].rate_limit.max_keys",
            "out of range",
        ),
        (
            "rate_limit = { requests_per_second = 10, max_keys = 10 }",
            "",
            "max_keys",
            "listeners[0].routes[0].rate_limit.max_keys",
            "max_keys is for a keyed limit",
        ),
        (
            "rate_limit = { burst = 3 }",
            "",
            "rate_limit",
            "listeners[0].routes[0].rate_limit.requests_per_second",
            "missing required key `requests_per_second`",
        ),
        (
            "rate_limit = { requests_per_second = 10, per_ip = true }",
            "",
            "per_ip",
            "listeners[0].routes[0].rate_limit.per_ip",
            "unknown field `per_ip`",
        ),
        (
            "",
            "connection_rate_limit = { connections_per_second = 0 }",
            "connections_per_second",
            "listeners[1].connection_rate_limit.connections_per_second",
            "connections_per_second 0 is out of range",
        ),
        (
            "",
            "connection_rate_limit = { connections_per_second = 10, burst = -1 }",
            "burst",
            "listeners[1].connection_rate_limit.burst",
            "burst -1 is out of range",
        ),
    ] {
        let text = file(route, tcp);
        let error = only_error(&text);
        tests::assert_error(&error, line_of(&text, needle, 0), key, reason);
    }
}

#[test]
fn a_reload_keeps_the_buckets_of_a_limit_that_did_not_change() {
    let limit = "rate_limit = { requests_per_second = 10, burst = 2 }";
    let conns = "connection_rate_limit = { connections_per_second = 4 }";
    let running = parse_ok(&file(limit, conns));
    let bind = |_| Ok(());
    let update = |text: &str| {
        super::update::parse_update(text, "ringway.toml", &running, Some(CORES), bind)
            .unwrap_or_else(|e| panic!("unexpected errors:\n{e}"))
    };
    let route_of = |config: &super::Config| {
        let Service::Http(http) = &config.table.listeners[0].service else {
            panic!("an http listener");
        };
        http.routes
            .iter()
            .next()
            .expect("a route")
            .rate_limit
            .clone()
    };
    let before = route_of(&running).expect("a limit");
    let conn_before = running.table.listeners[1]
        .connection_rate_limit
        .clone()
        .expect("a connection limit");

    // Same settings, another key elsewhere: the buckets carry on.
    let same = update(&file(limit, conns).replace("8000", "8001"));
    assert!(route_of(&same).expect("a limit").shares_state(&before));
    let conn = same.table.listeners[1]
        .connection_rate_limit
        .clone()
        .expect("a connection limit");
    assert!(conn.limit.shares_state(&conn_before.limit));

    // Changed settings: full buckets, but the count of connections
    // turned away goes on.
    let changed = update(&file(
        "rate_limit = { requests_per_second = 11, burst = 2 }",
        "connection_rate_limit = { connections_per_second = 5 }",
    ));
    assert!(!route_of(&changed).expect("a limit").shares_state(&before));
    let conn = changed.table.listeners[1]
        .connection_rate_limit
        .clone()
        .expect("a connection limit");
    assert!(!conn.limit.shares_state(&conn_before.limit));
    assert!(std::sync::Arc::ptr_eq(&conn.limited, &conn_before.limited));

    // A renamed route is another route: fresh buckets.
    let renamed = update(&file(limit, conns).replace("name = \"all\"", "name = \"every\""));
    assert!(!route_of(&renamed).expect("a limit").shares_state(&before));
}

#[test]
fn the_key_tables_of_a_file_are_bounded_together() {
    // Seventeen routes of the largest table (16 MiB each) are refused at
    // the seventeenth's max_keys, and no table is allocated.
    let route = |j: usize| {
        format!(
            "\n  [[listeners.routes]]\n  name = \"r{j}\"\n  path = \"/r{j}\"\n  direct = {{ status = 200 }}\n  rate_limit = {{ requests_per_second = 1, key = \"client_address\", max_keys = 1048576 }}\n"
        )
    };
    let routes: String = (0..17).map(route).collect();
    let text = file("", "").replace(
        "  [[listeners.routes]]\n  name = \"all\"",
        &format!("{routes}\n  [[listeners.routes]]\n  name = \"all\""),
    );
    let error = only_error(&text);
    tests::assert_error(
        &error,
        line_of(&text, "max_keys = 1048576", 16),
        "listeners[0].routes[16].rate_limit.max_keys",
        "would take 272 MiB of key tables; a configuration may take at most 256 MiB",
    );
    // (Sixteen are within the bound: compile::rate's own test, which does
    // not allocate 256 MiB to show it.)
}
