//! Answers ringway writes itself when a request cannot be served (404, 501,
//! 502, 503, 504), what a client sees when the upstream fails mid-body, and
//! how `/metrics` counts each of them.

use std::time::Duration;

use ringway_kit::ports::dead_endpoint;
use ringway_kit::Ringway;
use ringway_tests::http_client::{metric_sum, wait_metric, HttpConn, HttpResponse, Req};
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::http_origin::{Gate, HttpOrigin, Reply};
use ringway_tests::http_wire::{Framing, Wire, WireError};

const ERRORS: &str = "ringway_http_errors_total";

/// Sends one GET through a proxy forwarding everything to `origin` (with
/// `tweak` applied to the config); returns the response, the proxy and the
/// config.
fn one_get(
    origin: &HttpOrigin,
    tweak: impl FnOnce(HttpConfig) -> HttpConfig,
) -> (HttpResponse, Ringway, HttpConfig) {
    let config = tweak(HttpConfig::forward_all(&[origin.addr()]));
    let proxy = Ringway::start(&config.to_toml());
    let response = HttpConn::open(config.listen).exchange(&Req::get("/resource"));
    (response, proxy, config)
}

/// Waits for the error counter of `reason` on route `all`, cluster `app`.
fn assert_counted(config: &HttpConfig, reason: &str) {
    wait_metric(
        config.admin,
        ERRORS,
        &[
            ("listener", "web"),
            ("route", "all"),
            ("cluster", "app"),
            ("reason", reason),
        ],
        1.0,
    );
}

#[test]
fn no_matching_route_is_404_no_route() {
    let origin = HttpOrigin::ok("never");
    let config = HttpConfig::new()
        .route(Route::new("only").host("only.example").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let response = HttpConn::open(config.listen).exchange(&Req::get("/").host("other.example"));
    response.assert_ringway_error(404, "no_route");
    assert!(origin.requests().is_empty());
    wait_metric(
        config.admin,
        ERRORS,
        &[
            ("listener", "web"),
            ("route", ""),
            ("cluster", ""),
            ("reason", "no_route"),
        ],
        1.0,
    );
}

#[test]
fn refused_connects_are_502_then_503_while_the_endpoint_is_held_out() {
    let config = HttpConfig::forward_all(&[dead_endpoint()]);
    let _proxy = Ringway::start(&config.to_toml());

    let first = HttpConn::open(config.listen).exchange(&Req::get("/"));
    first.assert_ringway_error(502, "upstream_refused");
    // Within the 2 s the one worker holds the failed endpoint out, it does
    // not try it again: there is no endpoint left to try.
    let second = HttpConn::open(config.listen).exchange(&Req::get("/"));
    second.assert_ringway_error(503, "no_endpoint");
    assert_counted(&config, "upstream_refused");
    assert_counted(&config, "no_endpoint");
}

#[test]
fn a_reset_before_the_response_head_is_502_upstream_reset() {
    let origin = HttpOrigin::start(|_| Reply::reset());
    let (response, _proxy, config) = one_get(&origin, |c| c);
    response.assert_ringway_error(502, "upstream_reset");
    // A GET that met a reset is retried by default, twice; the only
    // endpoint reset each attempt.
    assert_eq!(origin.requests().len(), 3, "{}", origin.summary());
    assert_counted(&config, "upstream_reset");
}

#[test]
fn a_close_before_the_response_head_is_502_upstream_reset() {
    let origin = HttpOrigin::start(|_| Reply::close());
    let (response, _proxy, config) = one_get(&origin, |c| c);
    response.assert_ringway_error(502, "upstream_reset");
    assert_eq!(origin.requests().len(), 3, "{}", origin.summary());
    assert_counted(&config, "upstream_reset");
}

#[test]
fn a_close_inside_the_response_head_is_502_upstream_reset() {
    let origin = HttpOrigin::start(|_| Reply::raw(b"HTTP/1.1 200 OK\r\nContent-Le"));
    let (response, _proxy, config) = one_get(&origin, |c| c);
    response.assert_ringway_error(502, "upstream_reset");
    assert_counted(&config, "upstream_reset");
}

#[test]
fn a_malformed_status_line_is_502_upstream_bad_response() {
    let origin =
        HttpOrigin::start(|_| Reply::raw(b"HTTP/1.1 2x0 Broken\r\nContent-Length: 0\r\n\r\n"));
    let (response, _proxy, config) = one_get(&origin, |c| c);
    response.assert_ringway_error(502, "upstream_bad_response");
    assert_counted(&config, "upstream_bad_response");
}

#[test]
fn a_malformed_response_field_is_502_upstream_bad_response() {
    let origin = HttpOrigin::start(|_| {
        Reply::raw(b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\nok")
    });
    let (response, _proxy, config) = one_get(&origin, |c| c);
    response.assert_ringway_error(502, "upstream_bad_response");
    assert_counted(&config, "upstream_bad_response");
}

#[test]
fn ambiguous_response_framing_is_502_upstream_bad_response() {
    let origin = HttpOrigin::start(|_| {
        Reply::raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!")
    });
    let (response, _proxy, config) = one_get(&origin, |c| c);
    response.assert_ringway_error(502, "upstream_bad_response");
    assert_counted(&config, "upstream_bad_response");
}

#[test]
fn no_response_head_within_the_request_timeout_is_504() {
    let origin = HttpOrigin::start(|_| Reply::ok(b"too late").delay(Duration::from_secs(5)));
    let (response, _proxy, config) = one_get(&origin, |c| c.request_timeout("1s"));
    response.assert_ringway_error(504, "upstream_timeout");
    assert_counted(&config, "upstream_timeout");
}

#[test]
fn a_reset_mid_body_closes_the_client_before_the_declared_length() {
    const DECLARED: u64 = 100_000;
    let gate = Gate::new();
    let held = gate.clone();
    let origin = HttpOrigin::start(move |_| {
        Reply::partial_with_length(DECLARED, &[b'x'; 1000], Some(held.clone()))
    });
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.send(&Req::get("/partial"));
    let head = conn.read_head_only();
    assert_eq!(head.status, 200);
    // Only now, with the head at the client, does the origin reset.
    gate.open();
    let (body, _) = conn.read_until_closed();
    assert!(
        (body.len() as u64) < DECLARED,
        "the client got {} bytes of a body the origin never finished ({head:?})",
        body.len()
    );
}

#[test]
fn a_reset_mid_chunked_body_closes_the_client_before_the_last_chunk() {
    let gate = Gate::new();
    let held = gate.clone();
    let origin = HttpOrigin::start(move |_| {
        Reply::partial_chunked(&[b"part one, ", b"part two"], Some(held.clone()))
    });
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.send(&Req::get("/partial"));
    let head = conn.read_head_only();
    assert_eq!(head.status, 200);
    gate.open();
    let (rest, _) = conn.read_until_closed();
    // Whatever framing the proxy chose, the body it sent must not be
    // complete.
    let mut wire = Wire::new(rest.as_slice());
    let outcome = wire.read_body(head.framing, &mut |_| Ok(()));
    assert!(
        head.framing == Framing::Close
            || matches!(
                outcome,
                Err(WireError::Truncated(_) | WireError::Invalid(_))
            ),
        "the client got a complete body ({:?} framing): {:?}",
        head.framing,
        String::from_utf8_lossy(&rest)
    );
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "the client got a last chunk: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn a_websocket_upgrade_is_501_not_implemented() {
    let origin = HttpOrigin::ok("never");
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let response = HttpConn::open(config.listen).exchange(
        &Req::get("/socket")
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    );
    response.assert_ringway_error(501, "not_implemented");
    assert!(origin.requests().is_empty(), "{}", origin.summary());
    assert_eq!(origin.raw_total(), 0);
    wait_metric(
        config.admin,
        ERRORS,
        &[("listener", "web"), ("reason", "not_implemented")],
        1.0,
    );
}

/// A head that arrives in two pieces and then turns out bad gets one 400,
/// counted once: the header deadline still pending while ringway answers
/// and lingers must not add a 408 (a second answer, a second count).
#[test]
fn a_bad_head_in_pieces_is_answered_and_counted_once() {
    let origin = HttpOrigin::ok("unused");
    let config = HttpConfig::forward_all(&[origin.addr()]).header_timeout("1s");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(Duration::from_secs(10));
    conn.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n");
    // The pause makes the head arrive in two reads, so the header deadline
    // is armed when the bad line comes (the scenario, not a wait).
    std::thread::sleep(Duration::from_millis(200));
    conn.send_raw(b"Bad Header : y\r\n\r\n");
    let (bytes, _) = conn.read_until_closed();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    // Our side stays open, so ringway lingers (2 s) past the 1 s header
    // deadline; the connection ends for ringway only after both.
    ringway_kit::wait::poll("the connection to end", Duration::from_secs(10), || {
        match ringway_kit::admin::stats(config.admin).sum("active") {
            0 => Ok(()),
            n => Err(format!("{n} connection(s) open")),
        }
    });
    drop(conn);

    wait_metric(
        config.admin,
        "ringway_http_errors_total",
        &[("listener", "web"), ("reason", "bad_request")],
        1.0,
    );
    let metrics = ringway_kit::admin::metrics(config.admin);
    let timeouts = metric_sum(
        &metrics,
        "ringway_http_errors_total",
        &[("reason", "header_timeout")],
    );
    assert_eq!(timeouts, 0.0);
    assert_eq!(
        metric_sum(&metrics, "ringway_http_requests_total", &[]),
        1.0
    );
}
