//! The size limits of an HTTP listener as a client and an upstream meet
//! them: the request line limit counted without its CRLF, and response
//! heads held to the listener's head limits.

use ringway_kit::Ringway;
use ringway_tests::http_client::{HttpConn, HttpResponse, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::http_origin::{HttpOrigin, Reply};

/// Sends `request` on a fresh connection.
fn send(config: &HttpConfig, request: &Req) -> HttpResponse {
    HttpConn::open(config.listen).exchange(request)
}

/// The targets the origin received, in order.
fn targets(origin: &HttpOrigin) -> Vec<String> {
    origin.requests().into_iter().map(|r| r.target).collect()
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

#[test]
fn response_heads_are_held_to_the_listener_head_limits() {
    const MAX_BYTES: usize = 1024;
    const MAX_FIELDS: usize = 8;
    // The origin's head is its status line, `content-length`, and what the
    // path asks for.
    let origin = HttpOrigin::start(|r| match r.path() {
        "/fits" => Reply::ok(b"ok").header("x-pad", &"p".repeat(MAX_BYTES / 2)),
        "/big" => Reply::ok(b"ok").header("x-pad", &"p".repeat(MAX_BYTES)),
        "/many" => (0..MAX_FIELDS).fold(Reply::ok(b"ok"), |reply, i| {
            reply.header(&format!("x-f{i}"), "1")
        }),
        _ => Reply::ok(b"ok"),
    });
    let config = HttpConfig::forward_all(&[origin.addr()])
        .listener_key("max_request_line", "512")
        .listener_key("max_header_bytes", &MAX_BYTES.to_string())
        .listener_key("max_headers", &MAX_FIELDS.to_string());
    let _proxy = Ringway::start(&config.to_toml());

    assert_eq!(send(&config, &Req::get("/fits")).status, 200);
    send(&config, &Req::get("/big")).assert_ringway_error(502, "upstream_bad_response");
    send(&config, &Req::get("/many")).assert_ringway_error(502, "upstream_bad_response");
}
