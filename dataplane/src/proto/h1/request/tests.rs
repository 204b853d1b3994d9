use super::*;
use crate::proto::h1::{Known, Limits, Refusal};

const LIMITS: Limits = Limits {
    max_request_line: 256,
    max_header_bytes: 1024,
    max_headers: 16,
    path_rules: PathRules::DEFAULT,
};

fn try_parse(buf: &[u8]) -> Result<RequestHead, HeadError> {
    let mut h = RequestHead::new();
    match h.parse(buf, &LIMITS)? {
        Status::Complete => Ok(h),
        Status::Partial => panic!("partial: {:?}", String::from_utf8_lossy(buf)),
    }
}

fn ok(buf: &[u8]) -> RequestHead {
    match try_parse(buf) {
        Ok(h) => h,
        Err(e) => panic!("{e}: {:?}", String::from_utf8_lossy(buf)),
    }
}

fn refused(buf: &[u8], reason: Refusal, detail: &str) {
    match try_parse(buf) {
        Ok(_) => panic!("accepted: {:?}", String::from_utf8_lossy(buf)),
        Err(e) => {
            assert_eq!(e.kind, reason, "{e}: {:?}", String::from_utf8_lossy(buf));
            assert!(e.detail.contains(detail), "{e} lacks {detail:?}");
        }
    }
}

fn bad(buf: &[u8], detail: &str) {
    refused(buf, Refusal::Malformed, detail)
}

fn s<'a>(buf: &'a [u8], r: &Range<u32>) -> &'a str {
    std::str::from_utf8(&buf[r.start as usize..r.end as usize]).unwrap()
}

fn header<'a>(h: &'a RequestHead, buf: &[u8], name: &str) -> Option<&'a Header> {
    h.headers
        .iter()
        .find(|f| f.name(buf).eq_ignore_ascii_case(name.as_bytes()))
}

#[test]
fn simple_get() {
    let buf = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing:  v w \t\r\nAccept: */*\r\n\r\nrest";
    let h = ok(buf);
    assert_eq!(h.len, buf.len() - 4);
    assert_eq!(h.method(buf), b"GET");
    assert_eq!(s(buf, &h.target), "/a/b?x=1");
    assert_eq!(h.path(buf), b"/a/b?x=1");
    assert_eq!(h.normal_path(buf), b"/a/b");
    assert_eq!(h.query_start.map(|q| buf[q as usize]), Some(b'?'));
    assert_eq!(s(buf, h.host.as_ref().unwrap()), "example.com");
    assert_eq!(h.authority, None);
    assert_eq!(h.version, Version::Http11);
    assert_eq!(h.body, RequestBody::None);
    assert!(h.keep_alive && !h.expect_continue && !h.upgrade);
    assert!(!h.is_head(buf));
    assert_eq!(h.headers.len(), 3);
    assert_eq!(h.headers[0].kind, Known::Host);
    assert_eq!(h.headers[1].value(buf), b"v w");
    assert_eq!(h.headers[2].name(buf), b"Accept");
    assert!(h.headers.iter().all(|f| !f.hop));
}

#[test]
fn empty_value_and_head_method() {
    let buf = b"HEAD / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Blank:   \r\n\r\n";
    let h = ok(buf);
    assert!(h.is_head(buf));
    assert_eq!(h.headers[1].value(buf), b"");
    assert_eq!(h.headers[2].value(buf), b"");
}

#[test]
fn known_fields_are_classified() {
    let buf = b"GET / HTTP/1.1\r\nhost: h\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-proto: https\r\nX-FORWARDED-HOST: a\r\nX-Request-Id: 7\r\nExpect: 100-continue\r\n\r\n";
    let kinds: Vec<Known> = ok(buf).headers.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            Known::Host,
            Known::XForwardedFor,
            Known::XForwardedProto,
            Known::XForwardedHost,
            Known::XRequestId,
            Known::Expect
        ]
    );
}

#[test]
fn content_length_body() {
    let buf = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n";
    assert_eq!(ok(buf).body, RequestBody::Length(42));
    assert_eq!(
        ok(b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").body,
        RequestBody::Length(0)
    );
}

#[test]
fn chunked_body() {
    let buf = b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  Chunked \r\n\r\n";
    let h = ok(buf);
    assert_eq!(h.body, RequestBody::Chunked);
    assert!(h.headers[1].hop);
}

#[test]
fn leading_empty_lines_are_skipped_and_counted() {
    let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let h = ok(buf);
    assert_eq!(h.len, buf.len());
    assert_eq!(h.method(buf), b"GET");
}

#[test]
fn absolute_form() {
    let buf = b"GET hTTp://Example.com:8080/p/q?z=1 HTTP/1.1\r\nHost: other.example\r\n\r\n";
    let h = ok(buf);
    assert_eq!(s(buf, h.authority.as_ref().unwrap()), "Example.com:8080");
    assert_eq!(s(buf, h.host.as_ref().unwrap()), "Example.com:8080");
    assert_eq!(h.path(buf), b"/p/q?z=1");
    assert_eq!(h.normal_path(buf), b"/p/q");
    assert_eq!(h.query_start, Some(h.path.start + 4));
    assert_eq!(s(buf, &h.target), "hTTp://Example.com:8080/p/q?z=1");
}

#[test]
fn absolute_form_without_path_gets_slash() {
    for buf in [
        &b"GET https://h HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET HTTP://h HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let h = ok(buf);
        assert_eq!(h.path(buf), b"/");
        assert_eq!(h.query_start, None);
        assert_eq!(s(buf, h.host.as_ref().unwrap()), "h");
    }
}

#[test]
fn absolute_form_ignores_empty_host_but_needs_one() {
    let h = ok(b"GET http://a/ HTTP/1.1\r\nHost:\r\n\r\n");
    assert!(h.host.is_some());
    bad(b"GET http://a/ HTTP/1.1\r\n\r\n", "missing Host");
    bad(
        b"GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "more than one Host",
    );
}

#[test]
fn absolute_form_refusals() {
    bad(
        b"GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n",
        "query but no path",
    );
    bad(
        b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "invalid authority",
    );
    bad(
        b"GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n",
        "invalid authority",
    );
    bad(
        b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "unsupported request target form",
    );
    bad(
        b"GET foo HTTP/1.1\r\nHost: h\r\n\r\n",
        "unsupported request target form",
    );
}

#[test]
fn a_fragment_is_refused_wherever_it_is() {
    for buf in [
        &b"GET /a#b?c HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /a?q#f HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET # HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://h#frag HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://h/p#frag HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        bad(buf, "fragment ('#') in the request target");
    }
    // Refused at the '#', before the rest of the line is judged.
    bad(b"GET /a#b HTTP/9.9\r\n", "fragment");
    // A '#' in a header value is no fragment.
    ok(b"GET /a HTTP/1.1\r\nHost: h\r\nX-Tag: #1\r\n\r\n");
}

#[test]
fn asterisk_form_only_with_options() {
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(ok(buf).path(buf), b"*");
    bad(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", "asterisk-form");
}

#[test]
fn connect_is_an_upgrade() {
    let buf = b"CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n";
    let h = ok(buf);
    assert!(h.upgrade);
    assert_eq!(h.path(buf), b"h.example:443");
    bad(b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT target");
    bad(b"CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n", "CONNECT target");
    bad(
        b"GET h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        "unsupported request target form",
    );
}

#[test]
fn upgrade_header_is_an_upgrade() {
    let buf = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let h = ok(buf);
    assert!(h.upgrade);
    assert!(h.headers[1].hop && h.headers[2].hop);
    assert!(h.keep_alive);
}

#[test]
fn http10_keep_alive() {
    let h = ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.version, Version::Http10);
    assert!(!h.keep_alive);
    assert_eq!(h.host, None);
    let h = ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\n\r\n");
    assert!(h.keep_alive);
    assert!(h.headers.iter().all(|f| f.hop));
    let h = ok(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(!h.keep_alive);
    let buf = b"GET / HTTP/1.0\r\nHost: h:8080\r\n\r\n";
    assert_eq!(s(buf, ok(buf).host.as_ref().unwrap()), "h:8080");
}

#[test]
fn http11_close() {
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n").keep_alive);
    assert!(
        !ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo\r\nConnection: ,close\r\n\r\n")
            .keep_alive
    );
}

#[test]
fn connection_listed_fields_are_hop_by_hop() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Foo , x-bar\r\nx-foo: 1\r\nX-BAR: 2\r\nX-Baz: 3\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nKeep-Alive: 1\r\n\r\n";
    let h = ok(buf);
    let hop = |n: &str| header(&h, buf, n).unwrap().hop;
    assert!(hop("connection") && hop("x-foo") && hop("x-bar") && hop("te"));
    assert!(hop("proxy-connection") && hop("keep-alive"));
    assert!(!hop("x-baz") && !hop("host"));
}

#[test]
fn connection_option_rules() {
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: a b\r\n\r\n",
        "invalid Connection option",
    );
    let many = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: {}\r\n\r\n",
        (0..17)
            .map(|i| format!("o{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    bad(many.as_bytes(), "too many Connection options");
}

#[test]
fn expect_continue() {
    assert!(
        ok(b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
            .expect_continue
    );
    assert!(!ok(b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n").expect_continue);
    // RFC 9110 §10.1.1: ignored from an HTTP/1.0 client.
    assert!(!ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
}

#[test]
fn request_line_too_long() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(300));
    refused(long.as_bytes(), Refusal::LineTooLong, "request line longer");
    // Incomplete, but already past the limit without a line end.
    let mut h = RequestHead::new();
    let e = h.parse(&long.as_bytes()[..260], &LIMITS).unwrap_err();
    assert_eq!(e.kind, Refusal::LineTooLong);
    // Just at the limit is fine: 256 bytes, the CRLF not counted.
    let fits = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(256 - 14));
    assert_eq!(fits.find("\r\n"), Some(256));
    ok(fits.as_bytes());
    // One byte more is over: whole, or cut once the line and its CRLF
    // would have fit.
    let over = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(256 - 13));
    assert_eq!(over.find("\r\n"), Some(257));
    refused(over.as_bytes(), Refusal::LineTooLong, "request line longer");
    for cut in [258, 259, 260] {
        let e = RequestHead::new()
            .parse(&over.as_bytes()[..cut], &LIMITS)
            .unwrap_err();
        assert_eq!(e.kind, Refusal::LineTooLong, "cut at {cut}");
    }
    // Up to the limit and its CR, the line may still end in time.
    assert_eq!(
        RequestHead::new().parse(&fits.as_bytes()[..257], &LIMITS),
        Ok(Status::Partial)
    );
}

#[test]
fn header_block_too_large() {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1000)
    );
    refused(big.as_bytes(), Refusal::TooLarge, "larger than the limit");
    let mut h = RequestHead::new();
    let e = h.parse(&big.as_bytes()[..1024], &LIMITS).unwrap_err();
    assert_eq!(e.kind, Refusal::TooLarge);
    assert_eq!(
        h.parse(&big.as_bytes()[..1023], &LIMITS),
        Ok(Status::Partial)
    );
}

#[test]
fn head_exactly_at_the_byte_limit_is_fine() {
    let filler = 1024 - b"GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n".len();
    let buf = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "x".repeat(filler)
    );
    assert_eq!(buf.len(), 1024);
    ok(buf.as_bytes());
}

#[test]
fn header_block_split_across_calls_hits_the_limit() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    let mut h = RequestHead::new();
    loop {
        buf.extend_from_slice(b"X-A: 1\r\n");
        match h.parse(&buf, &LIMITS) {
            Ok(Status::Partial) => assert!(buf.len() < 1024),
            Ok(Status::Complete) => panic!("no end was sent"),
            Err(e) => {
                assert_eq!(e.kind, Refusal::TooLarge);
                break;
            }
        }
    }
    // Field count limit, bytes well within the size limit.
    let mut buf = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for _ in 0..15 {
        buf.extend_from_slice(b"A: 1\r\n");
    }
    assert_eq!(
        h.parse(&[&buf[..], b"\r\n"].concat(), &LIMITS),
        Ok(Status::Complete)
    );
    buf.extend_from_slice(b"B: 2\r\n");
    let e = h.parse(&buf, &LIMITS).unwrap_err();
    assert_eq!(
        e,
        HeadError {
            kind: Refusal::TooLarge,
            detail: "more header fields than the limit"
        }
    );
}

#[test]
fn max_headers_is_capped() {
    let limits = Limits {
        max_request_line: 100,
        max_header_bytes: 1 << 20,
        max_headers: 10_000,
        path_rules: PathRules::DEFAULT,
    };
    let mut buf = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for _ in 0..MAX_HEADERS_CAP {
        buf.extend_from_slice(b"A: 1\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    let e = RequestHead::new().parse(&buf, &limits).unwrap_err();
    assert_eq!(e.kind, Refusal::TooLarge);
}

#[test]
fn content_length_and_transfer_encoding() {
    bad(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "both Content-Length and Transfer-Encoding",
    );
    bad(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "both",
    );
}

#[test]
fn several_content_lengths() {
    bad(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "more than one Content-Length",
    );
    bad(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
        "not a plain number",
    );
}

#[test]
fn content_length_must_be_digits() {
    for v in [
        "+5",
        "0x10",
        "1_0",
        "1 0",
        "",
        "-1",
        "12345678901234567890",
        "99999999999999999999999",
    ] {
        let buf = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {v}\r\n\r\n");
        bad(buf.as_bytes(), "Content-Length is not a plain number");
    }
}

#[test]
fn transfer_encoding_must_be_exactly_chunked() {
    for (v, detail) in [
        ("gzip", "final transfer coding is not chunked"),
        ("chunked, gzip", "final transfer coding is not chunked"),
        ("gzip, chunked", "unsupported transfer coding"),
        ("chunked, chunked", "final transfer coding is not chunked"),
        ("", "empty"),
        ("chunked,", "empty element"),
        ("chunked;x", "parameters"),
        ("chunked;x=1", "parameters"),
        ("chunked\"", "invalid transfer coding"),
    ] {
        let buf = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {v}\r\n\r\n");
        bad(buf.as_bytes(), detail);
    }
    bad(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", "unsupported");
    bad(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "not chunked");
}

#[test]
fn transfer_encoding_in_http10() {
    bad(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.0",
    );
}

#[test]
fn obsolete_line_folding() {
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n\r\n",
        "obsolete line folding",
    );
    bad(
        b"GET / HTTP/1.1\r\n\tHost: h\r\n\r\n",
        "obsolete line folding",
    );
}

#[test]
fn whitespace_before_colon() {
    bad(
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "whitespace before the colon",
    );
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 5\r\n\r\n",
        "whitespace before the colon",
    );
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nX A: 5\r\n\r\n",
        "invalid character in a header name",
    );
}

#[test]
fn control_bytes_in_values() {
    bad(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", "NUL");
    bad(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", "bare CR");
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nb: c\r\n\r\n",
        "bare LF",
    );
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n",
        "invalid character in a header value",
    );
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n",
        "invalid character in a header value",
    );
    // obs-text is allowed (and opaque).
    ok(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\r\n\r\n");
}

#[test]
fn bare_lf_line_endings() {
    bad(b"GET / HTTP/1.1\nHost: h\r\n\r\n", "bare LF");
    bad(b"GET / HTTP/1.1\r\nHost: h\n\r\n", "bare LF");
    bad(b"GET / HTTP/1.1\r\nHost: h\r\n\n", "bare LF");
    bad(b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "bare LF");
    bad(b"GET / HTTP/1.1\r\nHost: h\r\n\rX", "bare CR");
    bad(b"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", "bare CR");
}

#[test]
fn invalid_field_names() {
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n",
        "invalid character in a header name",
    );
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n",
        "empty header name",
    );
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "without a colon",
    );
    bad(
        b"GET / HTTP/1.1\r\nHost: h\r\nX\xffA: 1\r\n\r\n",
        "invalid character in a header name",
    );
}

#[test]
fn host_rules() {
    bad(b"GET / HTTP/1.1\r\n\r\n", "missing Host header");
    bad(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "more than one Host header",
    );
    bad(
        b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n",
        "more than one Host header",
    );
    bad(b"GET / HTTP/1.1\r\nHost:\r\n\r\n", "empty Host header");
    for v in ["a b", "a/b", "u@h", "h:", "h:99999", "[::1", "h?x", "h#x"] {
        let buf = format!("GET / HTTP/1.1\r\nHost: {v}\r\n\r\n");
        bad(buf.as_bytes(), "invalid Host header");
    }
    bad(
        b"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",
        "invalid character in a header value",
    );
    let buf = b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n";
    assert_eq!(s(buf, ok(buf).host.as_ref().unwrap()), "[::1]:80");
}

#[test]
fn versions() {
    for v in [
        "HTTP/2.0",
        "HTTP/1.2",
        "HTTP/0.9",
        "http/1.1",
        "HTTP/1.10",
        "HTTP/1",
        "HTTP/1.1 ",
    ] {
        let buf = format!("GET / {v}\r\nHost: h\r\n\r\n");
        bad(buf.as_bytes(), "unsupported HTTP version");
    }
    bad(b"GET /\r\nHost: h\r\n\r\n", "without an HTTP version");
}

#[test]
fn method_and_target_characters() {
    bad(
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        "invalid character in the method",
    );
    bad(b" / HTTP/1.1\r\nHost: h\r\n\r\n", "empty method");
    bad(
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        "empty request target",
    );
    bad(
        b"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        "invalid character in the request target",
    );
    bad(
        b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
        "invalid character in the request target",
    );
    bad(b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", "not valid UTF-8");
    let buf = "GET /caf\u{e9} HTTP/1.1\r\nHost: h\r\n\r\n";
    ok(buf.as_bytes());
    let buf = b"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n";
    bad(buf, "asterisk-form");
}

/// The heads the split tests run over: valid ones and refused ones.
pub(crate) const SPLIT_CASES: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\nPOST /up?x=1 HTTP/1.1\r\nHost: example.com:80\r\nContent-Length: 10\r\nConnection: x-a, close\r\nX-A: b\r\n\r\nbodybodybo",
    b"GET http://a.b/c HTTP/1.1\r\nHost: z\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"GET /a/./b/..//%7e;x/%2e%2E;y/c?q=/../ HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /x/../../y HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a%2fb\\c HTTP/1.1\r\nHost: h\r\n\r\n",
];

#[test]
fn split_at_every_byte() {
    for &buf in SPLIT_CASES {
        let mut whole = RequestHead::new();
        let expect = whole.parse(buf, &LIMITS);
        let mut h = RequestHead::new();
        for k in 0..buf.len() {
            let got = h.parse(&buf[..k], &LIMITS);
            match (&got, &expect) {
                (Ok(Status::Partial), _) => {}
                (Ok(Status::Complete), Ok(Status::Complete)) => {
                    assert!(k >= whole.len);
                    assert_eq!(h, whole);
                }
                (Err(a), Err(b)) => assert_eq!(a, b),
                _ => panic!(
                    "prefix {k} of {:?}: {got:?} vs {expect:?}",
                    String::from_utf8_lossy(buf)
                ),
            }
            if let (Ok(Status::Complete), Ok(Status::Complete)) = (&got, &expect) {
                continue;
            }
            assert!(got == Ok(Status::Partial) || got == expect, "prefix {k}");
        }
        // The whole buffer, parsed by the reused head, agrees too.
        let got = h.parse(buf, &LIMITS);
        assert_eq!(got, expect);
        if expect.is_ok() {
            assert_eq!(h, whole);
        }
    }
}

#[test]
fn split_limits_give_the_same_error_as_whole() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(300));
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1000)
    );
    for buf in [long.as_bytes(), big.as_bytes()] {
        let expect = RequestHead::new().parse(buf, &LIMITS).unwrap_err();
        let mut h = RequestHead::new();
        let mut seen_error = false;
        for k in 0..=buf.len() {
            match h.parse(&buf[..k], &LIMITS) {
                Ok(Status::Partial) => assert!(!seen_error, "partial after an error at {k}"),
                Ok(Status::Complete) => panic!("complete"),
                Err(e) => {
                    assert_eq!(e, expect);
                    seen_error = true;
                }
            }
        }
    }
}

#[test]
fn reuse_does_not_reallocate() {
    let mut h = RequestHead::new();
    let cap = h.headers.capacity();
    let ptr = h.headers.as_ptr();
    for buf in [
        &b"GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"[..],
        b"POST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 1\r\n\r\n",
        b"GET /c HTTP/1.1\r\nHost: c\r\n\r\n",
    ] {
        assert_eq!(h.parse(buf, &LIMITS), Ok(Status::Complete));
        assert_eq!(h, ok(buf));
    }
    assert_eq!(h.headers.capacity(), cap);
    assert_eq!(h.headers.as_ptr(), ptr);
    assert_eq!(RequestHead::default().headers.capacity(), cap);
}

#[test]
fn head_error_displays() {
    let e = try_parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(e.to_string(), "malformed: missing Host header");
}

#[test]
fn the_path_is_normalized_and_the_query_kept() {
    let buf = b"GET /a/./b/../%63//d?x=/../%2e&y HTTP/1.1\r\nHost: h\r\n\r\n";
    let h = ok(buf);
    assert_eq!(h.normal_path(buf), b"/a/c/d");
    assert_eq!(h.query(buf), b"?x=/../%2e&y");
    assert_eq!(h.path_as_sent(buf), b"/a/./b/../%63//d");
    assert_eq!(h.path(buf), b"/a/./b/../%63//d?x=/../%2e&y");

    let buf = b"GET http://h/x/%2e%2e/%61dmin HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(ok(buf).normal_path(buf), b"/admin");
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(ok(buf).normal_path(buf), b"*");
}

#[test]
fn a_normal_path_is_not_copied() {
    for buf in [
        &b"GET /api/v1/users?id=7 HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        // Takes the slow path for its ';' and escape, and comes out equal.
        b"GET /a;v=1/%3A HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let h = ok(buf);
        let path = h.normal_path(buf);
        assert_eq!(path.as_ptr(), buf[4..].as_ptr(), "points into the buffer");
    }
}

#[test]
fn the_rewrite_buffer_is_reused_and_cleared() {
    let mut h = RequestHead::new();
    let first = b"GET //a HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(h.parse(first, &LIMITS), Ok(Status::Complete));
    assert_eq!(h.normal_path(first), b"/a");
    let second = b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(h.parse(second, &LIMITS), Ok(Status::Complete));
    assert_eq!(h.normal_path(second), b"/b");
    assert_eq!(h, ok(second), "nothing of the first request is left");
}

#[test]
fn a_path_without_a_normal_form_is_refused() {
    for (target, detail) in [
        ("/../x", "above the root"),
        ("/a/..;/../x", "above the root"),
        ("/a%2Fb", "encoded slash"),
        ("/a%5cb", "encoded slash"),
        ("/a\\b", "backslash in the path"),
        ("/a%zz", "invalid percent-encoding"),
        ("http://h/%2e%2e", "above the root"),
    ] {
        let buf = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        bad(buf.as_bytes(), detail);
    }
    // The query is not the path.
    ok(b"GET /a?%2F&%zz&/../ HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn the_listener_rules_apply() {
    let limits = Limits {
        path_rules: PathRules {
            merge_slashes: false,
            encoded_slashes: crate::proto::h1::path::EncodedSlashes::Pass,
        },
        ..LIMITS
    };
    let buf = b"GET //a/%2f/./b\\c HTTP/1.1\r\nHost: h\r\n\r\n";
    let mut h = RequestHead::new();
    assert_eq!(h.parse(buf, &limits), Ok(Status::Complete));
    assert_eq!(h.normal_path(buf), b"//a/%2F/b\\c");
}

/// What parsing a typical head costs, in nanoseconds (the best of 20
/// batches), to set the path check (`path::tests::normalize_cost`)
/// against. Not a test of speed (no threshold): `cargo test --release -p
/// ringway-dataplane --lib cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn parse_cost() {
    use std::hint::black_box;
    let buf = b"GET /api/v1/users/12345/orders?limit=10 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\nAccept: application/json\r\nX-Request-Id: 0123456789abcdef\r\n\r\n";
    let mut h = RequestHead::new();
    let ns = crate::proto::h1::path::tests::best_of_batches(|| {
        let _ = black_box(h.parse(black_box(buf), &LIMITS));
    });
    println!("parse of a {}-byte head: {ns:.1} ns", buf.len());
}
