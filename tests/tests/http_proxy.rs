//! The HTTP/1.1 proxy path: what a forwarded request looks like upstream,
//! keep-alive on both sides, bodies by length and by chunks (100 MiB
//! streamed), heads without bodies, close-delimited responses, pipelining,
//! `Expect: 100-continue`, and the same through `curl`.

use std::io::Write;
use std::thread;
use std::time::Duration;

use ringway_kit::procfs::peak_rss_bytes;
use ringway_kit::Ringway;
use ringway_tests::data;
use ringway_tests::http_client::{curl, curl_heads, read_file, CurlRun, HttpConn, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::http_origin::{ConnEnd, HttpOrigin, Reply};

const MIB: u64 = 1024 * 1024;
/// "Soon", for things that happen at once.
const SOON: Duration = Duration::from_secs(10);
/// Long enough for 100 MiB each way through a debug build on two cores.
const BULK_TIMEOUT: Duration = Duration::from_secs(240);

/// An origin behind a listener whose one route forwards everything to it.
fn proxied(origin: &HttpOrigin) -> (Ringway, HttpConfig) {
    let config = HttpConfig::forward_all(&[origin.addr()]);
    (Ringway::start(&config.to_toml()), config)
}

fn assert_request_id(value: Option<&str>) {
    let id = value.unwrap_or_else(|| panic!("no x-request-id upstream"));
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "x-request-id {id:?} is not 32 lower-case hex characters"
    );
}

#[test]
fn forwards_the_request_line_and_strips_hop_by_hop_fields() {
    let origin = HttpOrigin::ok("fine");
    let (_proxy, config) = proxied(&origin);

    let response = HttpConn::open(config.listen).exchange(
        &Req::get("/a/b?q=1&r=%20")
            .host("Api.Example.com:8080")
            .header("Connection", "keep-alive, X-Drop")
            .header("X-Drop", "gone")
            .header("Keep-Alive", "timeout=5")
            .header("Proxy-Connection", "keep-alive")
            .header("TE", "trailers")
            .header("X-Keep", "kept"),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"fine");

    let got = origin.requests();
    assert_eq!(got.len(), 1, "{}", origin.summary());
    let up = &got[0];
    let head = String::from_utf8_lossy(&up.raw_head);
    assert!(
        head.starts_with("GET /a/b?q=1&r=%20 HTTP/1.1\r\n"),
        "request line upstream:\n{head}"
    );
    for hop in [
        "connection",
        "x-drop",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
    ] {
        assert_eq!(up.header(hop), None, "{hop} was forwarded:\n{head}");
    }
    assert_eq!(up.header("x-keep"), Some("kept"), "{head}");
    assert_eq!(up.header("host"), Some("Api.Example.com:8080"), "{head}");
    assert_eq!(up.headers_named("x-forwarded-for"), ["127.0.0.1"], "{head}");
    assert_eq!(up.headers_named("x-forwarded-proto"), ["http"], "{head}");
    assert_eq!(
        up.headers_named("x-forwarded-host"),
        ["Api.Example.com:8080"],
        "{head}"
    );
    assert_request_id(up.header("x-request-id"));
    for added in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-request-id",
    ] {
        assert!(
            up.headers.iter().any(|(n, _)| n == added),
            "{added} is not written in lower case:\n{head}"
        );
    }
}

#[test]
fn an_http_1_0_request_goes_upstream_as_http_1_1() {
    let origin = HttpOrigin::ok("old");
    let (_proxy, config) = proxied(&origin);

    let response = HttpConn::open(config.listen).exchange(&Req::get("/legacy").version("HTTP/1.0"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"old");
    let up = &origin.requests()[0];
    assert!(
        up.raw_head.starts_with(b"GET /legacy HTTP/1.1\r\n"),
        "{}",
        String::from_utf8_lossy(&up.raw_head)
    );
}

/// HTTP/1.0 has no chunked framing: a chunked answer reaches a 1.0 client
/// as its bare payload, ended by the close of the connection.
#[test]
fn a_chunked_answer_reaches_an_http_1_0_client_unchunked_then_closes() {
    let origin = HttpOrigin::start(|_| Reply::chunked(200, &[b"first ", b"second ", b"third"]));
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(Duration::from_secs(10));
    conn.send_raw(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let (bytes, reset) = conn.read_until_closed();
    assert!(!reset, "the connection was reset");
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body, "first second third");
}

#[test]
fn an_arriving_request_id_is_kept() {
    let origin = HttpOrigin::ok("");
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    conn.exchange(&Req::get("/").header("X-Request-Id", "caller-chose-this"));
    conn.exchange(&Req::get("/"));
    let got = origin.requests();
    assert_eq!(got[0].headers_named("x-request-id"), ["caller-chose-this"]);
    assert_request_id(got[1].header("x-request-id"));
}

#[test]
fn forwarded_fields_from_an_untrusted_client_are_replaced() {
    let origin = HttpOrigin::ok("");
    let (_proxy, config) = proxied(&origin);

    HttpConn::open(config.listen).exchange(
        &Req::get("/")
            .host("real.example")
            .header("X-Forwarded-For", "6.6.6.6")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "forged.example"),
    );
    let up = &origin.requests()[0];
    assert_eq!(up.headers_named("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(up.headers_named("x-forwarded-proto"), ["http"]);
    assert_eq!(up.headers_named("x-forwarded-host"), ["real.example"]);
}

#[test]
fn forwarded_fields_from_a_trusted_client_are_extended() {
    let origin = HttpOrigin::ok("");
    let config = HttpConfig::forward_all(&[origin.addr()]).trust_forwarded(true);
    let _proxy = Ringway::start(&config.to_toml());

    HttpConn::open(config.listen).exchange(
        &Req::get("/")
            .host("edge.example")
            .header("X-Forwarded-For", "203.0.113.9")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "public.example"),
    );
    let up = &origin.requests()[0];
    assert_eq!(
        up.headers_named("x-forwarded-for"),
        ["203.0.113.9, 127.0.0.1"]
    );
    assert_eq!(up.headers_named("x-forwarded-proto"), ["https"]);
    assert_eq!(up.headers_named("x-forwarded-host"), ["public.example"]);
}

#[test]
fn many_requests_on_one_client_connection_share_one_upstream_connection() {
    let origin = HttpOrigin::start(|r| Reply::ok(r.target.as_bytes()));
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    for i in 0..50 {
        let target = format!("/r/{i}");
        let response = conn.exchange(&Req::get(&target));
        assert_eq!(response.status, 200);
        assert_eq!(response.body, target.as_bytes());
    }
    let got = origin.requests();
    assert_eq!(got.len(), 50);
    assert!(
        got.iter().all(|r| r.conn == 0),
        "requests spread over upstream connections: {}",
        origin.summary()
    );
    assert_eq!(origin.connections().len(), 1, "{}", origin.summary());
}

#[test]
fn a_pooled_connection_the_origin_closed_is_never_used() {
    // The first answer looks keep-alive, but the origin closes right after.
    let origin = HttpOrigin::start(|r| {
        if r.conn == 0 {
            Reply::ok(b"first").then_close()
        } else {
            Reply::ok(b"second")
        }
    });
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    assert_eq!(conn.exchange(&Req::get("/1")).body, b"first");
    assert_eq!(origin.wait_ended(0, SOON), ConnEnd::ClosedByOrigin);

    let response = conn.exchange(&Req::get("/2"));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, b"second");
    let got = origin.requests();
    assert_eq!(got.len(), 2, "{}", origin.summary());
    assert_eq!(got[1].conn, 1, "{}", origin.summary());
    assert_eq!(
        origin.raw(0).len(),
        got[0].raw_head.len(),
        "bytes of the second request reached the closed connection"
    );
}

#[test]
fn a_content_length_body_goes_both_ways() {
    let origin = HttpOrigin::echo();
    let (_proxy, config) = proxied(&origin);

    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut conn = HttpConn::open(config.listen);
    let response = conn.exchange(&Req::post("/echo").body(&body));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("100000"));
    assert_eq!(response.body, body);
    let up = &origin.wait_requests(1, SOON)[0];
    assert_eq!(up.header("content-length"), Some("100000"));
    assert_eq!(up.body, body);
    // The echo's head may come back before the whole body went up (the
    // origin answers as soon as it has the head): ringway then closes the
    // connection after the answer, and says so. Otherwise the connection
    // is still good for another exchange.
    if response.header("connection") == Some("close") {
        conn = HttpConn::open(config.listen);
    }
    assert_eq!(conn.exchange(&Req::post("/again").body(b"x")).body, b"x");
}

#[test]
fn a_chunked_body_and_its_trailers_go_both_ways() {
    let origin = HttpOrigin::echo();
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    let response = conn.exchange(
        &Req::post("/chunks")
            .chunked(&[b"first,", b"second,", &[b'z'; 3000]])
            .trailer("X-Checksum", "abc123"),
    );
    assert_eq!(response.status, 200);
    let mut want = b"first,second,".to_vec();
    want.extend_from_slice(&[b'z'; 3000]);
    assert_eq!(response.body, want);
    assert_eq!(response.chunks, Some(vec![6, 7, 3000]));
    assert_eq!(
        response.trailers,
        [("X-Checksum".to_owned(), "abc123".to_owned())]
    );

    let up = &origin.wait_requests(1, SOON)[0];
    assert_eq!(up.header("transfer-encoding"), Some("chunked"));
    assert_eq!(up.header("content-length"), None);
    assert_eq!(up.chunks, Some(vec![6, 7, 3000]), "chunks upstream");
    assert_eq!(
        up.trailers,
        [("X-Checksum".to_owned(), "abc123".to_owned())]
    );
    assert_eq!(up.body, want);
}

#[test]
fn response_trailers_reach_the_client() {
    let origin = HttpOrigin::start(|_| {
        Reply::chunked(200, &[b"one ", b"two"])
            .trailer("X-Digest", "d1")
            .trailer("X-Count", "2")
    });
    let (_proxy, config) = proxied(&origin);

    let response = HttpConn::open(config.listen).exchange(&Req::get("/t"));
    assert_eq!(response.body, b"one two");
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        response.trailers,
        [
            ("X-Digest".to_owned(), "d1".to_owned()),
            ("X-Count".to_owned(), "2".to_owned())
        ]
    );
}

#[test]
fn streams_a_100_mib_body_both_ways_in_bounded_memory() {
    let len = 100 * MIB;
    let origin = HttpOrigin::echo();
    let (proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(BULK_TIMEOUT);
    conn.send_raw(
        format!("POST /bulk HTTP/1.1\r\nHost: bulk.test\r\nContent-Length: {len}\r\n\r\n")
            .as_bytes(),
    );
    let mut writer = conn
        .stream()
        .try_clone()
        .expect("cloning the client socket");
    let sender = thread::spawn(move || data::write_stream(&mut writer, len, |_| {}));
    // The echo starts before the upload ends: the proxy must stream both
    // directions at once.
    let head = conn.read_head_only();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    let echoed = data::read_hashed(conn.wire(), len).expect("reading the echo");
    let sent = sender
        .join()
        .unwrap_or_else(|_| panic!("the sending thread panicked"))
        .expect("sending 100 MiB");

    assert_eq!(echoed, sent, "what came back to the client");
    let up = &origin.wait_requests(1, BULK_TIMEOUT)[0];
    assert_eq!((up.body_len, up.body_digest), (sent.bytes, sent.digest));

    // A body is streamed through fixed buffers and never held whole: the
    // proxy's peak memory stays far below the 100 MiB it carried each way
    // (64 MiB leaves room for the runtime, rings and buffer pools of a debug
    // build; holding one copy of the body would pass 100 MiB).
    let peak = peak_rss_bytes(proxy.pid());
    eprintln!("100 MiB echo: ringway's peak RSS {} KiB", peak / 1024);
    assert!(
        peak < 64 * MIB,
        "ringway's peak RSS reached {} MiB carrying a 100 MiB body",
        peak / MIB
    );
}

#[test]
fn head_204_and_304_answers_have_no_body() {
    let origin = HttpOrigin::start(|r| match r.path() {
        "/204" => Reply::no_body(204),
        "/304" => Reply::no_body(304).header("ETag", "\"v1\""),
        "/after" => Reply::ok(b"after"),
        _ => Reply::ok(b"a body of 23 bytes long"),
    });
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    let head = conn.exchange(&Req::new("HEAD", "/doc"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("23"));
    let no_content = conn.exchange(&Req::get("/204"));
    assert_eq!(no_content.status, 204);
    let not_modified = conn.exchange(&Req::get("/304"));
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some("\"v1\""));
    // Had any body bytes followed those heads, this would read them.
    let after = conn.exchange(&Req::get("/after"));
    assert_eq!(after.status, 200);
    assert_eq!(after.body, b"after");
    assert_eq!(origin.requests()[0].method, "HEAD");
}

#[test]
fn a_close_delimited_response_is_forwarded_then_the_client_is_closed() {
    let origin = HttpOrigin::start(|_| Reply::close_delimited(200, b"no length, just a close"));
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    let response = conn.exchange(&Req::get("/stream"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"no length, just a close");
    conn.assert_closed(SOON);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let origin = HttpOrigin::start(|r| Reply::ok(format!("answer to {}", r.target).as_bytes()));
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    let mut all = Vec::new();
    for i in 1..=3 {
        all.extend_from_slice(&Req::get(&format!("/p/{i}")).to_bytes());
    }
    conn.send_raw(&all);
    for i in 1..=3 {
        let response = conn.read();
        assert_eq!(response.status, 200);
        assert_eq!(response.body_text(), format!("answer to /p/{i}"));
    }
    let targets: Vec<String> = origin.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/p/1", "/p/2", "/p/3"]);
}

#[test]
fn expect_100_continue_passes_the_interim_answer_through() {
    let origin = HttpOrigin::echo();
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    conn.send_raw(
        b"PUT /upload HTTP/1.1\r\nHost: up.test\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    // The body is not sent until the interim answer arrives.
    let interim = conn.read_head_only();
    assert_eq!(interim.status, 100, "{interim:?}");
    conn.send_raw(b"hello there");
    let response = conn.read();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello there");
    let up = &origin.wait_requests(1, SOON)[0];
    assert_eq!(up.body, b"hello there");
}

/// A file of `len` bytes of the test stream, for curl to upload.
fn upload_file(len: u64) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    data::write_stream(&mut file, len, |_| {}).expect("writing the upload file");
    file.flush().expect("flushing the upload file");
    file
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn curl_reuses_its_connection_over_several_urls() {
    let origin = HttpOrigin::start(|r| Reply::ok(r.target.as_bytes()));
    let (_proxy, config) = proxied(&origin);

    let urls: Vec<String> = (0..4)
        .map(|i| format!("http://{}/c/{i}", config.listen))
        .collect();
    let mut args = vec!["-sS", "-w", "%{http_code} %{num_connects}\\n"];
    // Each `-o` goes with one URL, in order.
    for url in &urls {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let run = curl(&args);
    assert!(run.success, "curl failed: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        ["200 1", "200 0", "200 0", "200 0"],
        "{}",
        run.stderr
    );
    let got = origin.requests();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.conn == 0), "{}", origin.summary());
}

/// POSTs `len` bytes of the test stream with curl to `path` through the
/// proxy at `listen`, `args` added to curl's (`-sS`, the upload, the output
/// file); returns curl's run, what the echo brought back, and what was sent.
fn curl_upload(
    listen: std::net::SocketAddr,
    path: &str,
    len: u64,
    args: &[&str],
) -> (CurlRun, data::Transfer, data::Transfer) {
    let upload = upload_file(len);
    let out = tempfile::NamedTempFile::new().expect("a temporary file");
    let body_arg = format!("@{}", path_str(upload.path()));
    let url = format!("http://{listen}{path}");
    let mut all = vec!["-sS", "-o", path_str(out.path())];
    all.extend_from_slice(args);
    all.extend(["--data-binary", body_arg.as_str(), url.as_str()]);
    let run = curl(&all);
    assert!(run.success, "curl failed: {}", run.stderr);
    let echoed =
        data::read_to_end_hashed(&mut read_file(out.path()).as_slice()).expect("reading a Vec");
    (run, echoed, data::stream_transfer(len))
}

#[test]
fn curl_posts_a_body() {
    let origin = HttpOrigin::echo();
    let (_proxy, config) = proxied(&origin);

    let (run, echoed, sent) = curl_upload(config.listen, "/post", 3 * MIB + 17, &["-D", "-"]);
    let heads = curl_heads(&run.stdout);
    assert_eq!(heads.last().map(|h| h.0), Some(200), "{}", run.stdout);
    assert_eq!(echoed, sent);
    let up = &origin.wait_requests(1, SOON)[0];
    assert_eq!(up.method, "POST");
    assert_eq!((up.body_len, up.body_digest), (sent.bytes, sent.digest));
}

#[test]
fn curl_uploads_chunked() {
    let origin = HttpOrigin::echo();
    let (_proxy, config) = proxied(&origin);

    let args = ["-w", "%{http_code}", "-H", "Transfer-Encoding: chunked"];
    let (run, echoed, sent) = curl_upload(config.listen, "/chunked", MIB + 3, &args);
    assert_eq!(run.stdout, "200");
    let up = &origin.wait_requests(1, SOON)[0];
    assert!(up.chunks.is_some(), "the upload did not arrive chunked");
    assert_eq!((up.body_len, up.body_digest), (sent.bytes, sent.digest));
    assert_eq!(echoed, sent);
}

#[test]
fn curl_sees_100_continue_then_the_answer() {
    let origin = HttpOrigin::echo();
    let (_proxy, config) = proxied(&origin);

    let args = ["-D", "-", "-H", "Expect: 100-continue"];
    let (run, echoed, sent) = curl_upload(config.listen, "/continue", 64 * 1024, &args);
    let statuses: Vec<u16> = curl_heads(&run.stdout).iter().map(|h| h.0).collect();
    assert_eq!(statuses, [100, 200], "{}", run.stdout);
    assert_eq!(echoed, sent);
}

/// An HTTP/1.0 client that asks to keep its connection is told it stays
/// open, also on answers ringway writes itself (1.0 closes by default), and
/// can send its next request on it.
#[test]
fn an_http_1_0_keep_alive_client_keeps_its_connection_through_own_answers() {
    let origin = HttpOrigin::ok("proxied");
    let config = HttpConfig::new()
        .route(
            ringway_tests::http_config::Route::new("health")
                .path("/health")
                .direct(200, "ok\n", None),
        )
        .route(ringway_tests::http_config::Route::new("all").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(Duration::from_secs(10));
    let keep = |path: &str| {
        Req::get(path)
            .version("HTTP/1.0")
            .header("Connection", "keep-alive")
    };
    let direct = conn.exchange(&keep("/health"));
    assert_eq!((direct.status, direct.body.as_slice()), (200, &b"ok\n"[..]));
    assert_eq!(direct.header("connection"), Some("keep-alive"));
    let proxied = conn.exchange(&keep("/app"));
    assert_eq!(proxied.body, b"proxied");
    assert_eq!(proxied.header("connection"), Some("keep-alive"));
}

/// HTTP/1.1 requires a Host upstream: an HTTP/1.0 request without one goes
/// up with the endpoint's address as its host.
#[test]
fn an_http_1_0_request_without_host_gets_one_upstream() {
    let origin = HttpOrigin::ok("old");
    let (_proxy, config) = proxied(&origin);

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(Duration::from_secs(10));
    conn.send_raw(b"GET /no-host HTTP/1.0\r\n\r\n");
    let (bytes, _) = conn.read_until_closed();
    assert!(
        bytes.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let up = &origin.requests()[0];
    assert_eq!(up.header("host"), Some(origin.addr().to_string().as_str()));
}
