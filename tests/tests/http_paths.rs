//! What a route sees of the request, and what goes upstream: the host
//! without one trailing dot, fragments refused, and the request line limit
//! counted without its CRLF.

use ringway_tests::http_client::{HttpConn, HttpResponse, Req};
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::Ringway;

/// Sends `request` on a fresh connection.
fn send(config: &HttpConfig, request: &Req) -> HttpResponse {
    HttpConn::open(config.listen).exchange(request)
}

/// The targets the origin received, in order.
fn targets(origin: &HttpOrigin) -> Vec<String> {
    origin.requests().into_iter().map(|r| r.target).collect()
}

#[test]
fn a_trailing_dot_on_the_host_does_not_sidestep_a_host_route() {
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::new()
        .route(
            Route::new("admin-host")
                .host("admin.example.com")
                .direct(403, "guarded\n", None),
        )
        .route(
            Route::new("wild")
                .host("*.internal.example")
                .direct(403, "guarded\n", None),
        )
        .route(Route::new("rest").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    for host in [
        "admin.example.com",
        "admin.example.com.",
        "ADMIN.example.com.:8080",
        "a.internal.example.",
    ] {
        let response = send(&config, &Req::get("/").host(host));
        assert_eq!(response.status, 403, "Host: {host}");
        assert_eq!(response.body_text(), "guarded\n", "Host: {host}");
    }
    assert!(targets(&origin).is_empty(), "{}", origin.summary());
    // Only one dot goes: two is a different (invalid) name.
    let response = send(&config, &Req::get("/").host("admin.example.com.."));
    assert_ne!(response.body_text(), "guarded\n");
}

#[test]
fn a_fragment_in_the_request_target_is_refused() {
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    for target in ["/a#frag", "/a?q=1#frag", "/#", "http://example.test/x#y"] {
        let response = send(&config, &Req::get(target));
        response.assert_ringway_error(400, "bad_request");
        assert!(
            response.body_text().contains("fragment"),
            "target {target}: {}",
            response.body_text()
        );
    }
    assert!(targets(&origin).is_empty(), "{}", origin.summary());
}

#[test]
fn the_request_line_limit_does_not_count_the_crlf() {
    const LIMIT: usize = 100;
    let origin = HttpOrigin::ok("origin");
    let config = HttpConfig::forward_all(&[origin.addr()])
        .listener_key("max_request_line", &LIMIT.to_string());
    let _proxy = Ringway::start(&config.to_toml());

    // "GET " + target + " HTTP/1.1" is the line; its CRLF follows.
    let target_of = |line_len: usize| format!("/{}", "a".repeat(line_len - 4 - 9 - 1));
    let at = target_of(LIMIT);
    assert_eq!(format!("GET {at} HTTP/1.1").len(), LIMIT);
    assert_eq!(send(&config, &Req::get(&at)).status, 200);
    let over = target_of(LIMIT + 1);
    send(&config, &Req::get(&over)).assert_ringway_error(414, "uri_too_long");
    assert_eq!(targets(&origin), [at]);
}
