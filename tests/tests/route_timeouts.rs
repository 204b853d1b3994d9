//! A route's own `request_timeout`, `max_body` and `idle_timeout`, in
//! place of its listener's, end to end.
//!
//! The timeouts are chosen far apart (a 500 ms route timeout against an
//! origin that holds its answer 5 s, a 1 s idle timeout against the
//! listener's 60 s), and what is checked is the order of events (which
//! answer came, which connection closed first), never how long anything
//! took.

use std::thread;
use std::time::Duration;

use ringway_kit::Ringway;
use ringway_tests::http_client::{wait_metric, HttpConn, Req};
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};

/// Bound on waits for what must happen within a few seconds.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_route_request_timeout_shorter_or_longer_than_the_listeners_decides_the_answer() {
    // The origin holds every answer 5 s: past the short route's 500 ms
    // and the listener's 3 s, well within the long route's 60 s.
    let origin = HttpOrigin::start(|_| Reply::ok(b"late").delay(Duration::from_secs(5)));
    let config = HttpConfig::new()
        .request_timeout("3s")
        .route(
            Route::new("short")
                .path_prefix("/short")
                .cluster("app")
                .key("request_timeout", "\"500ms\""),
        )
        .route(
            Route::new("long")
                .path_prefix("/long")
                .cluster("app")
                .key("request_timeout", "\"60s\""),
        )
        .route(Route::new("plain").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let listen = config.listen;
    let asks: Vec<_> = ["/short", "/long", "/plain"]
        .into_iter()
        .map(|path| {
            thread::spawn(move || {
                let mut conn = HttpConn::open(listen);
                conn.set_timeouts(WAIT);
                conn.exchange(&Req::get(path))
            })
        })
        .collect();
    let [short, long, plain]: [_; 3] = asks
        .into_iter()
        .map(|h| h.join().expect("a client thread"))
        .collect::<Vec<_>>()
        .try_into()
        .expect("three answers");
    short.assert_ringway_error(504, "upstream_timeout");
    plain.assert_ringway_error(504, "upstream_timeout");
    assert_eq!(long.status, 200, "{long:?}");
    assert_eq!(long.body, b"late");
    for route in ["short", "plain"] {
        wait_metric(
            config.admin,
            "ringway_http_errors_total",
            &[("route", route), ("reason", "upstream_timeout")],
            1.0,
        );
    }
}

#[test]
fn a_route_max_body_raises_or_lowers_the_listeners() {
    let origin = HttpOrigin::ok("taken");
    let config = HttpConfig::new()
        .max_body(100)
        .route(
            Route::new("small")
                .path_prefix("/small")
                .cluster("app")
                .key("max_body", "10"),
        )
        .route(
            Route::new("big")
                .path_prefix("/big")
                .cluster("app")
                .key("max_body", "1000"),
        )
        .route(Route::new("plain").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let post = |path: &str, body: &[u8]| {
        HttpConn::open(config.listen).exchange(&Req::post(path).body(body))
    };
    let chunked = |path: &str, chunks: &[&[u8]]| {
        HttpConn::open(config.listen).exchange(&Req::post(path).chunked(chunks))
    };
    // By length, refused before anything goes upstream.
    post("/small", &[b's'; 50]).assert_ringway_error(413, "body_too_large");
    post("/plain", &[b'p'; 500]).assert_ringway_error(413, "body_too_large");
    assert_eq!(post("/big", &[b'b'; 500]).status, 200);
    assert_eq!(post("/small", &[b's'; 10]).status, 200);
    // Chunked, refused as the body streams past the route's limit.
    chunked("/small", &[&[b'c'; 30], &[b'c'; 30]]).assert_ringway_error(413, "body_too_large");
    assert_eq!(chunked("/big", &[&[b'd'; 300], &[b'd'; 300]]).status, 200);

    let reached: Vec<(String, usize)> = origin
        .requests()
        .iter()
        .map(|r| (r.path().to_owned(), r.body.len()))
        .collect();
    // The chunked /small request went upstream before its body passed
    // the limit; its body never arrived whole.
    assert!(reached.contains(&("/big".to_owned(), 500)), "{reached:?}");
    assert!(reached.contains(&("/small".to_owned(), 10)), "{reached:?}");
    assert!(reached.contains(&("/big".to_owned(), 600)), "{reached:?}");
    assert!(
        !reached.iter().any(|(p, n)| p == "/plain" || *n == 50),
        "{reached:?}"
    );
}

#[test]
fn a_route_idle_timeout_closes_the_connection_after_its_requests_only() {
    let origin = HttpOrigin::ok("ok");
    let config = HttpConfig::new()
        .idle_timeout("60s")
        .route(
            Route::new("brief")
                .path_prefix("/brief")
                .cluster("app")
                .key("idle_timeout", "\"1s\""),
        )
        .route(Route::new("plain").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    // `other` was served by the brief route, then by the plain one: its
    // wait is the listener's again. It goes quiet before `brief` does.
    let mut other = HttpConn::open(config.listen);
    assert_eq!(other.exchange(&Req::get("/brief/1")).status, 200);
    assert_eq!(other.exchange(&Req::get("/plain/1")).status, 200);
    let mut plain = HttpConn::open(config.listen);
    assert_eq!(plain.exchange(&Req::get("/plain/2")).status, 200);
    let mut brief = HttpConn::open(config.listen);
    assert_eq!(brief.exchange(&Req::get("/brief/2")).status, 200);

    // The connection whose last request the brief route took is closed
    // by ringway with a FIN...
    brief.set_timeouts(WAIT);
    let (rest, reset) = brief.read_until_closed();
    assert!(rest.is_empty() && !reset, "{rest:?}, reset: {reset}");
    // ...while the two that went quiet before it, on the listener's
    // idle timeout, are still served.
    assert_eq!(other.exchange(&Req::get("/plain/3")).status, 200);
    assert_eq!(plain.exchange(&Req::get("/plain/4")).status, 200);
}

/// `ringway check` on `text`: exit 2, and the one error line naming the
/// file, the line of `line_with`, `key` and `reason`.
fn assert_check_refuses(text: &str, line_with: &str, key: &str, reason: &str) {
    use ringway_kit::launcher::{run_to_exit, write_config};
    let file = write_config(text);
    let path = file.path().to_str().expect("a UTF-8 temp path");
    let output = run_to_exit(&["check", path], WAIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let line = 1 + text
        .lines()
        .position(|l| l.contains(line_with))
        .unwrap_or_else(|| panic!("{line_with:?} is not in the file"));
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with(&format!("error: {path}:{line}:")),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains(&format!(": {key}: ")), "{}", errors[0]);
    assert!(errors[0].contains(reason), "{}", errors[0]);
}

#[test]
fn a_per_try_timeout_must_be_shorter_than_the_routes_request_timeout() {
    let config = HttpConfig::new()
        .request_timeout("30s")
        .route(
            Route::new("all")
                .cluster("app")
                .key("request_timeout", "\"2s\"")
                .key("retry", "{ per_try_timeout = \"5s\" }"),
        )
        .cluster("app", &["127.0.0.1:9".parse().expect("an address")]);
    assert_check_refuses(
        &config.to_toml(),
        "per_try_timeout",
        "listeners[0].routes[0].retry.per_try_timeout",
        "not shorter than the route's request_timeout 2s",
    );
}
