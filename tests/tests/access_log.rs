//! Access logs end to end: the real binary, real clients, the lines read
//! back from the file (or pipe) the writer wrote.
//!
//! - every field of a JSON line (each key of `format::FIELDS`, in order),
//!   for every kind of request: proxied with and without a client request
//!   id, with a body (by length and chunked), on a kept-alive connection,
//!   over HTTP/1.0, retried after resets, a direct answer, no route,
//!   upstream refused or held out, refused before routing (413, 501),
//!   malformed; and the text format, column by column;
//! - `errors_only` and `sample = 0`;
//! - under load, within the ring's capacity, one line per request;
//! - past the ring's capacity, every record is either written or counted
//!   as dropped, never lost silently; with the writer held still, exactly
//!   what fits in the ring is written;
//! - logrotate's move and `SIGUSR1`; a path that cannot be opened, then
//!   can; an output that takes nothing does not hold up the stop;
//! - configuration errors.
//!
//! Lines are matched to requests by their `x-request-id` (or their path),
//! never by timing. Waits poll a condition with a generous deadline: the
//! writer writes at 64 KiB or once a second.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Output;
use std::thread;
use std::time::Duration;

use control::access_log::format::FIELDS;
use dataplane::access::MIN_RING;
use nix::sys::signal::Signal;
use ringway_kit::admin;
use ringway_kit::launcher::{run_to_exit, write_config, Exit};
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::access_log::{
    check_line, json, line_where, lines, logged_by, record_len, rfc3339, send, send_logged,
    send_on, text_fields, to_millis, wait_lines, Counts, Pipe, Sent, TextField, Want,
};
use ringway_tests::http_client::{HttpConn, Req};
use ringway_tests::http_config::{AccessLog, HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::net::Refusing;
use ringway_tests::up_to_two_cores;
use serde_json::json;
use tempfile::TempDir;

/// Bound on every wait for the log or the counters to catch up: the
/// writer writes at least once a second; this is for a debug build on two
/// busy cores.
const WAIT: Duration = Duration::from_secs(30);

/// The body every proxied request gets from the origin.
const ORIGIN_BODY: &[u8] = b"hello from the origin\n";

/// A fresh directory for a test's log files.
fn tempdir() -> TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// `path` as the UTF-8 text a config holds.
fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// Stops the proxy (SIGTERM: the writer writes everything at exit) and
/// checks it stopped cleanly.
fn stop(proxy: Ringway) -> Exit {
    let exit = proxy.stop();
    exit.assert_clean();
    exit
}

// ---------------------------------------------------------------------
// 1. Every field
// ---------------------------------------------------------------------

#[test]
fn every_field_of_a_json_line_for_every_kind_of_request() {
    let dir = tempdir();
    let log = dir.path().join("access.log");
    let origin = HttpOrigin::start(|req| match req.path() {
        "/api/reset" => Reply::reset(),
        _ => Reply::ok(ORIGIN_BODY),
    });
    let refusing = Refusing::new();
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)).format("json"))
        .route(Route::new("api").path_prefix("/api/").cluster("app"))
        .route(Route::new("down").path_prefix("/down/").cluster("gone"))
        .route(
            Route::new("hello")
                .path("/hello")
                .direct(200, "hello\n", None),
        )
        .cluster("app", &[origin.addr()])
        .cluster("gone", &[refusing.addr]);
    let proxy = Ringway::start(&config.to_toml());
    // Each request is sent once the one before was logged: its line's
    // start time then lies between its `before` and `after`.
    let mut logged = 0;
    let mut exchange = |raw: &[u8]| {
        logged += 1;
        send_logged(config.listen, config.admin, raw, logged)
    };

    // A proxied GET with a query and the client's request id.
    let get = exchange(
        &Req::get("/api/items?color=blue&n=2")
            .header("X-Request-Id", "rid-get")
            .to_bytes(),
    );
    assert_eq!(get.response.status, 200, "{:?}", get.response);
    // A POST with a body: bytes_received counts head and body.
    let post = exchange(
        &Req::post("/api/upload")
            .header("X-Request-Id", "rid-post")
            .body(&[b'b'; 1000])
            .to_bytes(),
    );
    assert_eq!(post.response.status, 200, "{:?}", post.response);
    // A chunked body: the bytes received are the chunks as sent.
    let chunked = exchange(
        &Req::post("/api/chunked")
            .header("X-Request-Id", "rid-chunked")
            .chunked(&[b"hello", b"chunked world"])
            .to_bytes(),
    );
    assert_eq!(chunked.response.status, 200, "{:?}", chunked.response);
    // The origin resets every attempt: a GET is tried again (twice by
    // default), then 502; the last attempt's endpoint is the origin.
    let reset = exchange(
        &Req::get("/api/reset")
            .header("X-Request-Id", "rid-reset")
            .to_bytes(),
    );
    reset.response.assert_ringway_error(502, "upstream_reset");
    // No request id: ringway makes one for the upstream, and logs it.
    let anon = exchange(&Req::get("/api/anonymous").to_bytes());
    assert_eq!(anon.response.status, 200, "{:?}", anon.response);
    // HTTP/1.0.
    let old = exchange(
        &Req::get("/api/old")
            .version("HTTP/1.0")
            .header("X-Request-Id", "rid-10")
            .to_bytes(),
    );
    assert_eq!(old.response.status, 200, "{:?}", old.response);
    // No route.
    let lost = exchange(
        &Req::get("/nowhere")
            .header("X-Request-Id", "rid-404")
            .to_bytes(),
    );
    lost.response.assert_ringway_error(404, "no_route");
    // The only endpoint refuses: 502 the first time; the second, while
    // the endpoint is held out, is ringway's to say (503 no_endpoint
    // within the hold-out); the line must say what the client got.
    let refused = exchange(
        &Req::get("/down/first")
            .header("X-Request-Id", "rid-down-1")
            .to_bytes(),
    );
    refused
        .response
        .assert_ringway_error(502, "upstream_refused");
    let held_out = exchange(
        &Req::get("/down/second")
            .header("X-Request-Id", "rid-down-2")
            .to_bytes(),
    );
    let held_out_reason = held_out
        .response
        .header("x-ringway-error")
        .unwrap_or_else(|| panic!("ringway's own answer: {:?}", held_out.response))
        .to_owned();
    // A direct answer: a route, no cluster, no upstream.
    let hello = exchange(
        &Req::get("/hello")
            .header("X-Request-Id", "rid-hello")
            .to_bytes(),
    );
    assert_eq!(hello.response.status, 200, "{:?}", hello.response);
    // Two requests on one kept-alive connection: each line counts its own
    // request's bytes, not the connection's.
    let mut conn = HttpConn::open(config.listen);
    let mut kept = Vec::new();
    for (i, body) in [&b"first"[..], &b"the second body"[..]]
        .into_iter()
        .enumerate()
    {
        let mut sent = send_on(
            &mut conn,
            &Req::post(&format!("/api/kept/{i}"))
                .header("X-Request-Id", &format!("rid-kept-{i}"))
                .body(body)
                .to_bytes(),
        );
        assert_eq!(sent.response.status, 200, "{:?}", sent.response);
        sent.after = logged_by(config.admin, logged + 1 + i as u64);
        kept.push(sent);
    }

    let sent = 12;
    let counts = Counts::wait(
        config.admin,
        "every request logged and written",
        WAIT,
        |c| c.written == sent,
    );
    assert_eq!(
        counts,
        Counts {
            records: sent,
            dropped: 0,
            written: sent,
            failed: 0
        }
    );
    let exit = stop(proxy);
    assert_eq!(exit.total("access_logged"), sent);
    assert_eq!(exit.total("access_log_dropped"), 0);
    let lines = lines(&log);
    assert_eq!(lines.len(), sent as usize, "{}", lines.join("\n"));

    let app = origin.addr();
    check_line(
        line_where(&lines, "request_id", &json!("rid-get")),
        &get,
        &Want::head("GET", "/api/items?color=blue&n=2", "HTTP/1.1", 200)
            .proxied("api", "app", app)
            .set("request_id", json!("rid-get")),
    );
    check_line(
        line_where(&lines, "request_id", &json!("rid-post")),
        &post,
        &Want::head("POST", "/api/upload", "HTTP/1.1", 200)
            .proxied("api", "app", app)
            .set("request_id", json!("rid-post")),
    );

    // The id the origin got is the one logged: 32 lowercase hex digits.
    let recorded = origin.requests();
    let at_origin = recorded
        .iter()
        .find(|r| r.target == "/api/anonymous")
        .unwrap_or_else(|| panic!("the origin got /api/anonymous: {}", origin.summary()));
    let made = at_origin
        .header("x-request-id")
        .unwrap_or_else(|| panic!("ringway gave the upstream an x-request-id: {at_origin:?}"))
        .to_owned();
    assert!(
        made.len() == 32
            && made
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "32 lowercase hex digits: {made:?}"
    );
    check_line(
        line_where(&lines, "path", &json!("/api/anonymous")),
        &anon,
        &Want::head("GET", "/api/anonymous", "HTTP/1.1", 200)
            .proxied("api", "app", app)
            .set("request_id", json!(made)),
    );

    check_line(
        line_where(&lines, "request_id", &json!("rid-10")),
        &old,
        &Want::head("GET", "/api/old", "HTTP/1.0", 200)
            .proxied("api", "app", app)
            .set("request_id", json!("rid-10")),
    );
    check_line(
        line_where(&lines, "request_id", &json!("rid-404")),
        &lost,
        &Want::head("GET", "/nowhere", "HTTP/1.1", 404)
            .set("error", json!("no_route"))
            .set("request_id", json!("rid-404")),
    );
    // A refused connect sent the request on no connection: no attempt,
    // no upstream (the field is the endpoint of the last attempt).
    check_line(
        line_where(&lines, "request_id", &json!("rid-down-1")),
        &refused,
        &Want::head("GET", "/down/first", "HTTP/1.1", 502)
            .set("error", json!("upstream_refused"))
            .set("route", json!("down"))
            .set("cluster", json!("gone"))
            .set("request_id", json!("rid-down-1")),
    );
    check_line(
        line_where(&lines, "request_id", &json!("rid-down-2")),
        &held_out,
        &Want::head("GET", "/down/second", "HTTP/1.1", held_out.response.status)
            .set("error", json!(held_out_reason))
            .set("route", json!("down"))
            .set("cluster", json!("gone"))
            .set("request_id", json!("rid-down-2")),
    );
    check_line(
        line_where(&lines, "request_id", &json!("rid-chunked")),
        &chunked,
        &Want::head("POST", "/api/chunked", "HTTP/1.1", 200)
            .proxied("api", "app", app)
            .set("request_id", json!("rid-chunked")),
    );
    let tries = recorded.iter().filter(|r| r.path() == "/api/reset").count();
    assert!(
        tries > 1,
        "the reset GET was tried again: {}",
        origin.summary()
    );
    check_line(
        line_where(&lines, "request_id", &json!("rid-reset")),
        &reset,
        &Want::head("GET", "/api/reset", "HTTP/1.1", 502)
            .set("error", json!("upstream_reset"))
            .set("route", json!("api"))
            .set("cluster", json!("app"))
            .set("upstream", json!(app.to_string()))
            .set("attempts", json!(tries))
            .set("request_id", json!("rid-reset")),
    );
    check_line(
        line_where(&lines, "request_id", &json!("rid-hello")),
        &hello,
        &Want::head("GET", "/hello", "HTTP/1.1", 200)
            .set("route", json!("hello"))
            .set("request_id", json!("rid-hello")),
    );
    for (i, sent) in kept.iter().enumerate() {
        check_line(
            line_where(&lines, "request_id", &json!(format!("rid-kept-{i}"))),
            sent,
            &Want::head("POST", &format!("/api/kept/{i}"), "HTTP/1.1", 200)
                .proxied("api", "app", app)
                .set("request_id", json!(format!("rid-kept-{i}"))),
        );
    }
}

/// A head that does not parse (a field line without a colon): nothing of
/// it is known, no method, path or version; the status, the reason, and
/// the bytes the client sent for it (the whole head was read before it
/// was refused).
#[test]
fn a_malformed_request_is_logged_with_its_status_and_its_bytes() {
    let dir = tempdir();
    let log = dir.path().join("access.log");
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)))
        .route(Route::new("ok").direct(200, "ok\n", None));
    let proxy = Ringway::start(&config.to_toml());

    let malformed = send_logged(
        config.listen,
        config.admin,
        b"GET /api/bad HTTP/1.1\r\nHost: example.test\r\nX-Request-Id: rid-bad\r\n\
          this line has no colon\r\n\r\n",
        1,
    );
    malformed.response.assert_ringway_error(400, "bad_request");
    Counts::wait(config.admin, "the request written", WAIT, |c| {
        c.written == 1
    });
    stop(proxy);

    let lines = lines(&log);
    assert_eq!(lines.len(), 1, "{lines:?}");
    check_line(
        &lines[0],
        &malformed,
        &Want::unparsed(400).set("error", json!("bad_request")),
    );
}

/// Requests refused before they are routed, for their body size (413) or
/// an upgrade (501), had their head read: their line names their method,
/// path, version and request id (`protocol` is "null when no request line
/// was read"), as a request refused after routing (404) does.
#[test]
fn requests_refused_before_routing_are_logged_with_their_request_line() {
    let dir = tempdir();
    let log = dir.path().join("access.log");
    let config = HttpConfig::new()
        .max_body(10)
        .access_log(&AccessLog::to(text(&log)))
        .route(Route::new("ok").path("/ok").direct(200, "ok\n", None));
    let proxy = Ringway::start(&config.to_toml());

    let big = send_logged(
        config.listen,
        config.admin,
        &Req::post("/too/big?q=1")
            .header("X-Request-Id", "rid-413")
            .body(&[b'x'; 100])
            .to_bytes(),
        1,
    );
    big.response.assert_ringway_error(413, "body_too_large");
    let upgrade = send_logged(
        config.listen,
        config.admin,
        &Req::get("/socket")
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("X-Request-Id", "rid-501")
            .to_bytes(),
        2,
    );
    upgrade
        .response
        .assert_ringway_error(501, "not_implemented");
    let lost = send_logged(
        config.listen,
        config.admin,
        &Req::get("/lost")
            .header("X-Request-Id", "rid-404")
            .to_bytes(),
        3,
    );
    lost.response.assert_ringway_error(404, "no_route");
    Counts::wait(config.admin, "the requests written", WAIT, |c| {
        c.written == 3
    });
    stop(proxy);

    let lines = lines(&log);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let by_status = |status: u16| line_where(&lines, "status", &json!(status));
    check_line(
        by_status(404),
        &lost,
        &Want::head("GET", "/lost", "HTTP/1.1", 404)
            .set("error", json!("no_route"))
            .set("request_id", json!("rid-404")),
    );
    check_line(
        by_status(501),
        &upgrade,
        &Want::head("GET", "/socket", "HTTP/1.1", 501)
            .set("error", json!("not_implemented"))
            .set("request_id", json!("rid-501")),
    );
    // The body was refused unread: the bytes received are the head's.
    let head_only = Sent {
        wrote: big.wrote - 100,
        ..big
    };
    check_line(
        by_status(413),
        &head_only,
        &Want::head("POST", "/too/big?q=1", "HTTP/1.1", 413)
            .set("error", json!("body_too_large"))
            .set("request_id", json!("rid-413")),
    );
}

#[test]
fn the_text_format_has_every_field_in_its_column() {
    let dir = tempdir();
    let log = dir.path().join("access.txt");
    let origin = HttpOrigin::start(|_| Reply::ok(ORIGIN_BODY));
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)).format("text"))
        .route(Route::new("all").path_prefix("/a/").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let sent = send_logged(
        config.listen,
        config.admin,
        &Req::get("/a/path?x=1&y=two%20words")
            .header("X-Request-Id", "rid-text")
            .to_bytes(),
        1,
    );
    assert_eq!(sent.response.status, 200, "{:?}", sent.response);
    let lost = send_logged(
        config.listen,
        config.admin,
        &Req::new("DELETE", "/a%20b/").host("other.test").to_bytes(),
        2,
    );
    lost.response.assert_ringway_error(404, "no_route");
    Counts::wait(config.admin, "the requests written", WAIT, |c| {
        c.written == 2
    });
    stop(proxy);

    let lines = lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Columns follow FIELDS; look each up by its name.
    let columns = |line: &str| {
        let fields = text_fields(line);
        assert_eq!(fields.len(), FIELDS.len(), "one column per field: {line}");
        fields
    };
    let column = |fields: &[TextField], key: &str| -> TextField {
        let i = FIELDS
            .iter()
            .position(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no field {key}"));
        fields[i].clone()
    };
    let quoted = |s: &str| TextField::Quoted(s.to_owned());
    let bare = |s: &str| TextField::Bare(s.to_owned());
    let (proxied, refused) = if lines[0].contains("rid-text") {
        (columns(&lines[0]), columns(&lines[1]))
    } else {
        (columns(&lines[1]), columns(&lines[0]))
    };

    let start = rfc3339(column(&proxied, "start_time").text());
    assert!(to_millis(sent.before) <= start && start <= sent.after);
    let want = [
        ("method", bare("GET")),
        ("authority", quoted("example.test")),
        ("path", quoted("/a/path?x=1&y=two%20words")),
        ("protocol", quoted("HTTP/1.1")),
        ("tls", bare("-")),
        ("status", bare("200")),
        ("error", bare("-")),
        ("bytes_received", bare(&sent.wrote.to_string())),
        ("bytes_sent", bare(&sent.read.to_string())),
        ("upstream", quoted(&origin.addr().to_string())),
        ("attempts", bare("1")),
        ("listener", bare("web")),
        ("route", bare("all")),
        ("cluster", bare("app")),
        ("request_id", bare("rid-text")),
        ("trace_id", bare("-")),
        ("client", quoted("127.0.0.1")),
        ("peer_identity", bare("-")),
    ];
    for (key, value) in &want {
        assert_eq!(&column(&proxied, key), value, "column {key}: {lines:?}");
    }
    for key in ["duration_ms", "upstream_ms"] {
        let ms: f64 = column(&proxied, key)
            .text()
            .parse()
            .unwrap_or_else(|e| panic!("{key} is a number ({e}): {lines:?}"));
        assert!(ms >= 0.0);
    }

    // What is absent is `-`; ringway's reason is quoted.
    let start = rfc3339(column(&refused, "start_time").text());
    assert!(to_millis(lost.before) <= start && start <= lost.after);
    let want = [
        ("method", bare("DELETE")),
        ("authority", quoted("other.test")),
        ("path", quoted("/a%20b/")),
        ("status", bare("404")),
        ("error", quoted("no_route")),
        ("bytes_received", bare(&lost.wrote.to_string())),
        ("bytes_sent", bare(&lost.read.to_string())),
        ("upstream_ms", bare("-")),
        ("upstream", bare("-")),
        ("attempts", bare("0")),
        ("route", bare("-")),
        ("cluster", bare("-")),
        ("request_id", bare("-")),
    ];
    for (key, value) in &want {
        assert_eq!(&column(&refused, key), value, "column {key}: {lines:?}");
    }
}

// ---------------------------------------------------------------------
// Which requests are logged
// ---------------------------------------------------------------------

#[test]
fn errors_only_logs_server_errors_and_ringways_own_failures() {
    let dir = tempdir();
    let log = dir.path().join("errors.log");
    let origin = HttpOrigin::start(|req| match req.path() {
        "/api/missing" => Reply::status(404, b"not here\n"),
        "/api/broken" => Reply::status(500, b"broken\n"),
        _ => Reply::ok(ORIGIN_BODY),
    });
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)).errors_only(true))
        .route(Route::new("api").path_prefix("/api/").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let cases = [
        ("/api/fine", "ok", 200),
        ("/api/missing", "upstream-404", 404),
        ("/api/broken", "upstream-500", 500),
        ("/elsewhere", "no-route", 404),
        ("/api/fine", "ok-again", 200),
    ];
    for (path, id, status) in cases {
        let sent = send(
            config.listen,
            &Req::get(path).header("X-Request-Id", id).to_bytes(),
        );
        assert_eq!(sent.response.status, status, "{path}: {:?}", sent.response);
    }
    // Settled requests are counted before their record (if any) is
    // written: once every request is counted and the writer caught up
    // with the records, nothing more is to come.
    let counts = poll("every request settled and written", WAIT, || {
        let stats = admin::stats(config.admin);
        let counts = Counts::read(config.admin);
        if stats.sum("requests") == cases.len() as u64 && counts.written == counts.records {
            Ok(counts)
        } else {
            Err(format!("{counts:?}; requests {}", stats.sum("requests")))
        }
    });
    assert_eq!(
        (counts.records, counts.dropped),
        (2, 0),
        "the upstream's 500 and ringway's no_route"
    );
    stop(proxy);

    let lines = lines(&log);
    // (request id, status, error), the error as JSON text.
    let logged: BTreeSet<(String, u64, String)> = lines
        .iter()
        .map(|l| {
            let v = json(l);
            (
                v["request_id"].as_str().unwrap_or_default().to_owned(),
                v["status"].as_u64().unwrap_or_default(),
                v["error"].to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, u64, String)> = [
        ("upstream-500".to_owned(), 500, "null".to_owned()),
        ("no-route".to_owned(), 404, "\"no_route\"".to_owned()),
    ]
    .into_iter()
    .collect();
    assert_eq!(logged, want, "{}", lines.join("\n"));
    assert_eq!(lines.len(), 2);
}

#[test]
fn sample_zero_logs_nothing_and_counts_no_record() {
    let dir = tempdir();
    let log = dir.path().join("sampled.log");
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)).sample(0.0))
        .route(Route::new("ok").direct(200, "ok\n", None));
    let proxy = Ringway::start(&config.to_toml());

    let requests = 50;
    let mut conn = HttpConn::open(config.listen);
    for i in 0..requests {
        let response = conn.exchange(&Req::get(&format!("/s/{i}")));
        assert_eq!(response.status, 200, "{response:?}");
    }
    // Failures are sampled too.
    let malformed = send(config.listen, b"GET / HTTP/1.1\r\nno colon\r\n\r\n");
    malformed.response.assert_ringway_error(400, "bad_request");
    poll("every request settled", WAIT, || {
        let n = admin::stats(config.admin).sum("requests");
        if n == requests + 1 {
            Ok(())
        } else {
            Err(format!("{n} requests"))
        }
    });
    let counts = Counts::read(config.admin);
    assert_eq!(
        counts,
        Counts {
            records: 0,
            dropped: 0,
            written: 0,
            failed: 0
        }
    );
    let exit = stop(proxy);
    assert_eq!(exit.total("access_logged"), 0);
    assert_eq!(exit.total("access_log_dropped"), 0);
    assert_eq!(lines(&log), Vec::<String>::new());
}

// ---------------------------------------------------------------------
// 2. Load within the ring's capacity
// ---------------------------------------------------------------------

/// The default `runtime.access_log_buffer`: 1 MiB per worker.
const DEFAULT_RING: usize = 1 << 20;

#[test]
fn under_load_within_the_ring_every_request_gets_exactly_one_line() {
    const REQUESTS: usize = 5_000;
    const CONNECTIONS: usize = 8;
    let dir = tempdir();
    let log = dir.path().join("load.log");
    let origin = HttpOrigin::start(|_| Reply::ok(ORIGIN_BODY));
    let mut config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)))
        .route(Route::new("api").path_prefix("/l/").cluster("app"))
        .cluster("app", &[origin.addr()]);
    config.worker_cores = up_to_two_cores();
    let proxy = Ringway::start(&config.to_toml());

    // Every record of the run fits in one ring at once: even a writer
    // that took nothing until the end would lose none. What is tested is
    // that none is lost, duplicated or mangled on the way.
    let largest = record_len([
        b"web",
        b"api",
        b"app",
        b"GET",
        b"example.test",
        format!("/l/{}", REQUESTS - 1).as_bytes(),
        format!("req-{}", REQUESTS - 1).as_bytes(),
        b"",
    ]);
    assert!(
        REQUESTS * largest <= DEFAULT_RING,
        "{REQUESTS} records of {largest} bytes fit in the default ring"
    );

    thread::scope(|scope| {
        for c in 0..CONNECTIONS {
            let addr = config.listen;
            scope.spawn(move || {
                let mut conn = HttpConn::open(addr);
                for n in (c..REQUESTS).step_by(CONNECTIONS) {
                    let response = conn.exchange(
                        &Req::get(&format!("/l/{n}")).header("X-Request-Id", &format!("req-{n}")),
                    );
                    assert_eq!(response.status, 200, "request {n}: {response:?}");
                }
            });
        }
    });

    let total = REQUESTS as u64;
    let counts = Counts::wait(config.admin, "every request written", WAIT, |c| {
        c.written >= total
    });
    assert_eq!(
        counts,
        Counts {
            records: total,
            dropped: 0,
            written: total,
            failed: 0
        }
    );
    let stats = admin::stats(config.admin);
    assert_eq!(stats.sum("access_logged"), total);
    assert_eq!(stats.sum("access_log_dropped"), 0);
    let exit = stop(proxy);
    assert_eq!(exit.total("access_logged"), total);
    assert_eq!(exit.total("access_log_dropped"), 0);

    let lines = lines(&log);
    assert_eq!(lines.len(), REQUESTS, "one line per request");
    let mut seen = HashSet::new();
    for line in &lines {
        let v = json(line);
        let id = v["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a request id: {line}"));
        let n: usize = id
            .strip_prefix("req-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("an id the test sent: {line}"));
        assert!(n < REQUESTS && seen.insert(n), "request {n} twice: {line}");
        assert_eq!(v["path"], json!(format!("/l/{n}")), "{line}");
        assert_eq!(v["status"], json!(200), "{line}");
        assert_eq!(v["upstream"], json!(origin.addr().to_string()), "{line}");
    }
    assert_eq!(seen.len(), REQUESTS);
}

// ---------------------------------------------------------------------
// 3. Past the ring's capacity
// ---------------------------------------------------------------------

/// Requests in a burst, all written at once on one connection.
const BURST: usize = 2_000;
/// The length of each burst request's path: near the record's 2048-byte
/// cap, so that few records fit in the smallest ring.
const BURST_PATH: usize = 2_000;

/// The path and request id of burst request `n`: all the same length.
fn burst_request(n: usize) -> (String, String) {
    let head = format!("/burst/{n:04}/");
    let path = format!("{head}{}", "p".repeat(BURST_PATH - head.len()));
    (path, format!("burst-{n:04}"))
}

/// A config whose one route answers directly (no upstream: requests are
/// quick), logging to `path`, with the smallest ring on one worker.
fn burst_config(path: &Path) -> HttpConfig {
    HttpConfig::new()
        .runtime_key("access_log_buffer", &MIN_RING.to_string())
        .access_log(&AccessLog::to(text(path)))
        .route(Route::new("burst").direct(200, "ok\n", None))
}

/// Writes [`BURST`] requests in one go on one connection while reading
/// their answers, and checks each is a 200; then waits until every one is
/// settled, logged or dropped, and returns the counts.
fn send_burst(config: &HttpConfig) -> Counts {
    let mut wire = Vec::with_capacity(BURST * (BURST_PATH + 100));
    for n in 0..BURST {
        let (path, id) = burst_request(n);
        wire.extend_from_slice(&Req::get(&path).header("X-Request-Id", &id).to_bytes());
    }
    let mut reader = HttpConn::open(config.listen);
    let mut writer = reader.stream().try_clone().expect("a second handle");
    thread::scope(|scope| {
        scope.spawn(move || writer.write_all(&wire).expect("the burst is written"));
        for n in 0..BURST {
            let response = reader.read();
            assert_eq!(response.status, 200, "request {n}: {response:?}");
        }
    });
    Counts::wait(
        config.admin,
        "every burst request logged or dropped",
        WAIT,
        |c| c.records + c.dropped == BURST as u64,
    )
}

/// Checks the lines written of a burst: each a burst request, each once,
/// in the order sent (one connection, one worker); returns their numbers.
fn burst_lines(lines: &[String]) -> Vec<usize> {
    let mut numbers = Vec::with_capacity(lines.len());
    for line in lines {
        let v = json(line);
        let id = v["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a request id: {line}"));
        let n: usize = id
            .strip_prefix("burst-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("an id the test sent: {id}"));
        assert!(n < BURST, "{id}");
        assert_eq!(v["path"], json!(burst_request(n).0), "request {n}");
        assert_eq!(v["status"], json!(200), "request {n}");
        assert_eq!(v["route"], json!("burst"), "request {n}");
        if let Some(&last) = numbers.last() {
            assert!(n > last, "request {n} after {last}: out of order or twice");
        }
        numbers.push(n);
    }
    numbers
}

/// A burst of 2,000 records of about 2.3 KB into the smallest ring (six
/// records): every record is written or counted as dropped, none twice,
/// in order, and some are dropped. How many depends on scheduling, but
/// none dropped cannot happen: a writer slower than the worker lets the
/// ring fill, and one that catches up finds the ring empty and rests
/// 10 ms, in which the worker makes far more than six records.
#[test]
fn a_burst_past_the_ring_loses_no_record_uncounted() {
    let dir = tempdir();
    let log = dir.path().join("burst.log");
    let config = burst_config(&log);
    let proxy = Ringway::start(&config.to_toml());

    send_burst(&config);
    let counts = Counts::wait(config.admin, "the ring written out", WAIT, |c| {
        c.written == c.records
    });
    let exit = stop(proxy);
    let lines = lines(&log);

    assert_eq!(counts.records + counts.dropped, BURST as u64, "{counts:?}");
    assert_eq!(lines.len() as u64, counts.records, "{counts:?}");
    assert_eq!(exit.total("access_logged"), counts.records);
    assert_eq!(exit.total("access_log_dropped"), counts.dropped);
    assert_eq!(counts.failed, 0);
    assert!(counts.dropped > 0, "a burst 300 times the ring: {counts:?}");
    burst_lines(&lines);
    eprintln!(
        "free writer: {} lines, {} dropped of {BURST}",
        lines.len(),
        counts.dropped
    );
}

// ---------------------------------------------------------------------
// 4. Reopening after logrotate
// ---------------------------------------------------------------------

#[test]
fn sigusr1_after_a_move_writes_on_in_a_new_file() {
    const BEFORE: usize = 10;
    const AFTER: usize = 7;
    let dir = tempdir();
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)))
        .route(Route::new("ok").direct(200, "ok\n", None));
    let proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    let mut send_many = |prefix: &str, n: usize| {
        for i in 0..n {
            let response = conn.exchange(
                &Req::get(&format!("/{prefix}/{i}"))
                    .header("X-Request-Id", &format!("{prefix}-{i}")),
            );
            assert_eq!(response.status, 200, "{response:?}");
        }
    };
    send_many("before", BEFORE);
    wait_lines(&log, BEFORE, WAIT);

    fs::rename(&log, &rotated).expect("the log is moved");
    proxy.signal(Signal::SIGUSR1);
    proxy.wait_for_stderr("reopening the access log files", WAIT);
    // The line comes before the writer acts; the new file appears when it
    // has: records taken after that go to it.
    poll("the log is opened again", WAIT, || {
        if log.exists() {
            Ok(())
        } else {
            Err("no new file yet".to_owned())
        }
    });
    send_many("after", AFTER);
    wait_lines(&log, AFTER, WAIT);
    stop(proxy);

    let ids = |path: &Path| -> Vec<String> {
        lines(path)
            .iter()
            .map(|l| {
                json(l)["request_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    let want = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>();
    assert_eq!(ids(&rotated), want("before", BEFORE), "the moved file");
    assert_eq!(ids(&log), want("after", AFTER), "the new file");
}

// ---------------------------------------------------------------------
// 5. A path that cannot be opened
// ---------------------------------------------------------------------

#[test]
fn a_log_that_cannot_be_opened_costs_its_records_not_the_requests() {
    let dir = tempdir();
    let missing = dir.path().join("not-yet");
    let log = missing.join("access.log");
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(&log)))
        .route(Route::new("ok").direct(200, "ok\n", None));
    let proxy = Ringway::start(&config.to_toml());
    let said = proxy.wait_for_stderr("cannot open", WAIT);
    assert!(said.contains(text(&log)), "names the file: {said}");

    let requests = 5;
    let mut conn = HttpConn::open(config.listen);
    for i in 0..requests {
        let response = conn.exchange(&Req::get(&format!("/r/{i}")));
        assert_eq!(response.status, 200, "{response:?}");
    }
    let counts = Counts::wait(config.admin, "the records counted as lost", WAIT, |c| {
        c.failed >= requests
    });
    assert_eq!(
        counts,
        Counts {
            records: requests,
            dropped: 0,
            written: 0,
            failed: requests
        }
    );
    // Still serving; the file is tried again (every 5 s), and the failure
    // said once, not once per attempt.
    let response = conn.exchange(&Req::get("/still"));
    assert_eq!(response.status, 200, "{response:?}");
    Counts::wait(config.admin, "that record lost too", WAIT, |c| {
        c.failed == requests + 1
    });
    assert_eq!(
        proxy.stderr().matches("cannot open").count(),
        1,
        "{}",
        proxy.stderr()
    );

    // Once the directory exists, a later attempt opens the file and the
    // records go to it again.
    fs::create_dir(&missing).expect("the directory is made");
    let counts = poll("the file is opened again", WAIT, || {
        let response = conn.exchange(&Req::get("/again"));
        assert_eq!(response.status, 200, "{response:?}");
        let counts = Counts::wait(config.admin, "the record's fate known", WAIT, |c| {
            c.written + c.failed == c.records
        });
        if counts.written > 0 {
            Ok(counts)
        } else {
            Err(format!("{counts:?}"))
        }
    });
    stop(proxy);
    let lines = lines(&log);
    assert_eq!(lines.len() as u64, counts.written, "{counts:?}");
    for line in &lines {
        assert_eq!(json(line)["path"], json!("/again"), "{line}");
    }
}

/// An output that takes nothing (a pipe whose reader never comes; the
/// same holds for standard output piped to a consumer that stopped
/// reading) costs its records, not the process: SIGTERM still drains and
/// stops ringway. The bound is far above the 5 s drain; a proxy that is
/// not stopped by then never will be.
#[test]
fn an_output_that_takes_nothing_does_not_hold_up_the_stop() {
    let dir = tempdir();
    let pipe = Pipe::make(&dir.path().join("nobody-reads.pipe"));
    let config = HttpConfig::new()
        .access_log(&AccessLog::to(text(pipe.path())))
        .route(Route::new("ok").direct(200, "ok\n", None));
    let proxy = Ringway::start(&config.to_toml());

    let sent = send_logged(config.listen, config.admin, &Req::get("/").to_bytes(), 1);
    assert_eq!(sent.response.status, 200, "{:?}", sent.response);
    match proxy.try_stop(WAIT) {
        Ok(exit) => exit.assert_clean(),
        Err(e) => panic!("ringway did not stop with its log output stuck: {e}"),
    }
}

// ---------------------------------------------------------------------
// 6. Configuration errors
// ---------------------------------------------------------------------

/// A valid file with an access log, to break one way at a time.
const VALID: &str = r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:18080"
protocol = "http"
access_log = { path = "/var/log/ringway/access.log", format = "json", sample = 0.5, errors_only = false }

  [[listeners.routes]]
  name = "all"
  direct = { status = 200, body = "ok" }

[[listeners]]
name = "raw"
address = "127.0.0.1:18081"
protocol = "tcp"
cluster = "app"

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:18000"]
"#;

/// Runs `ringway check` on `text`.
fn check(text: &str) -> (Output, String) {
    let file = write_config(text);
    let path = self::text(file.path()).to_owned();
    let output = run_to_exit(&["check", &path], Duration::from_secs(20));
    (output, path)
}

/// Checks that `ringway check` refuses `text` with exit code 2 and one
/// error, on the line holding `line_with`, naming `key` and saying
/// `reason`.
fn assert_refused(text: &str, line_with: &str, key: &str, reason: &str) {
    let (output, path) = check(text);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "stderr:\n{stderr}\nfile:\n{text}"
    );
    let line = 1 + text
        .lines()
        .position(|l| l.contains(line_with))
        .unwrap_or_else(|| panic!("{line_with:?} is not in the file"));
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error; stderr:\n{stderr}");
    let error = errors[0];
    assert!(
        error.starts_with(&format!("error: {path}:{line}:")),
        "the error names the file and line {line}: {error}"
    );
    assert!(
        error.contains(&format!(": {key}: ")),
        "the error names `{key}`: {error}"
    );
    assert!(error.contains(reason), "the error says {reason:?}: {error}");
}

#[test]
fn the_valid_access_log_config_passes_the_check() {
    let (output, _) = check(VALID);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn access_log_on_a_tcp_listener_is_refused() {
    let text = VALID.replace(
        "cluster = \"app\"\n\n[[clusters]]",
        "cluster = \"app\"\naccess_log = { path = \"/tmp/tcp.log\" }\n\n[[clusters]]",
    );
    assert_refused(
        &text,
        "/tmp/tcp.log",
        "listeners[1].access_log",
        "applies to http listeners only",
    );
}

#[test]
fn a_relative_access_log_path_is_refused() {
    let text = VALID.replace("\"/var/log/ringway/access.log\"", "\"logs/access.log\"");
    assert_refused(
        &text,
        "logs/access.log",
        "listeners[0].access_log.path",
        "`logs/access.log` is not an absolute path",
    );
}

#[test]
fn an_unknown_access_log_format_is_refused() {
    let text = VALID.replace("format = \"json\"", "format = \"xml\"");
    assert_refused(
        &text,
        "\"xml\"",
        "listeners[0].access_log.format",
        "unknown format `xml`",
    );
}

#[test]
fn a_sample_above_one_is_refused() {
    let text = VALID.replace("sample = 0.5", "sample = 2");
    assert_refused(
        &text,
        "sample = 2",
        "listeners[0].access_log.sample",
        "sample 2 is not from 0 to 1",
    );
}

#[test]
fn an_access_log_without_a_path_is_refused() {
    let text = VALID.replace("path = \"/var/log/ringway/access.log\", ", "");
    assert_refused(
        &text,
        "access_log = {",
        "listeners[0].access_log.path",
        "missing required key `path`",
    );
}

#[test]
fn an_access_log_buffer_below_the_minimum_is_refused() {
    let small = MIN_RING - 1;
    let text = VALID.replace(
        "worker_cores = [0]\n",
        &format!("worker_cores = [0]\naccess_log_buffer = {small}\n"),
    );
    assert_refused(
        &text,
        "access_log_buffer",
        "runtime.access_log_buffer",
        &format!("access log buffer {small} is not from {MIN_RING}"),
    );
}
