use super::*;

const MAX_BYTES: usize = 1024;
const MAX_FIELDS: usize = 16;

fn try_parse(buf: &[u8], head: bool) -> Result<ResponseHead, HeadError> {
    let mut h = ResponseHead::new();
    match h.parse(buf, MAX_BYTES, MAX_FIELDS, head)? {
        Status::Complete => Ok(h),
        Status::Partial => panic!("partial: {:?}", String::from_utf8_lossy(buf)),
    }
}

fn ok(buf: &[u8]) -> ResponseHead {
    match try_parse(buf, false) {
        Ok(h) => h,
        Err(e) => panic!("{e}: {:?}", String::from_utf8_lossy(buf)),
    }
}

fn bad(buf: &[u8], detail: &str) {
    match try_parse(buf, false) {
        Ok(_) => panic!("accepted: {:?}", String::from_utf8_lossy(buf)),
        Err(e) => {
            assert_eq!(e.kind, Refusal::Malformed, "{e}");
            assert!(e.detail.contains(detail), "{e} lacks {detail:?}");
        }
    }
}

#[test]
fn content_length_response() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
    let h = ok(buf);
    assert_eq!(h.len, buf.len() - 5);
    assert_eq!(h.status, 200);
    assert_eq!(&buf[h.reason.start as usize..h.reason.end as usize], b"OK");
    assert_eq!(h.version, Version::Http11);
    assert_eq!(h.body, ResponseBody::Length(5));
    assert!(h.keep_alive);
    assert!(!h.is_interim());
    assert_eq!(h.headers.len(), 2);
    assert_eq!(h.headers[1].value(buf), b"x");
}

#[test]
fn chunked_response() {
    let h = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(h.body, ResponseBody::Chunked);
    assert!(h.keep_alive && h.headers[0].hop);
    // Earlier codings are content for the client; chunked last frames it.
    assert_eq!(
        ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").body,
        ResponseBody::Chunked
    );
}

#[test]
fn until_close_response() {
    let h = ok(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(h.body, ResponseBody::UntilClose);
    assert!(!h.keep_alive);
}

#[test]
fn bodiless_statuses() {
    for st in [100u16, 103, 204, 304] {
        let buf = format!("HTTP/1.1 {st} X\r\nContent-Length: 7\r\n\r\n");
        let h = ok(buf.as_bytes());
        assert_eq!(h.body, ResponseBody::None, "{st}");
        assert!(h.keep_alive);
        assert_eq!(h.is_interim(), st < 200);
    }
    let h = try_parse(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", true).unwrap();
    assert_eq!(h.body, ResponseBody::None);
    let h = try_parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
    )
    .unwrap();
    assert_eq!(h.body, ResponseBody::None);
    // Without framing, a HEAD answer still ends with its head.
    let h = try_parse(b"HTTP/1.1 200 OK\r\n\r\n", true).unwrap();
    assert_eq!(h.body, ResponseBody::None);
    assert!(h.keep_alive);
}

#[test]
fn switching_protocols_is_refused() {
    bad(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "101",
    );
}

#[test]
fn keep_alive_rules() {
    assert!(!ok(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
    let h = ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
    assert!(h.keep_alive);
    assert_eq!(h.version, Version::Http10);
    assert!(!ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive);
}

#[test]
fn connection_listed_fields_are_hop_by_hop() {
    let buf = b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nX-Public: 2\r\nContent-Length: 0\r\n\r\n";
    let h = ok(buf);
    let hops: Vec<bool> = h.headers.iter().map(|f| f.hop).collect();
    assert_eq!(hops, [true, true, false, false]);
}

#[test]
fn missing_reason_phrase_is_taken() {
    let buf = b"HTTP/1.1 204\r\n\r\n";
    let h = ok(buf);
    assert_eq!(h.status, 204);
    assert!(h.reason.is_empty());
    let buf = b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n";
    assert!(ok(buf).reason.is_empty());
}

#[test]
fn status_code_rules() {
    bad(b"HTTP/1.1 99 X\r\n\r\n", "three digits");
    bad(b"HTTP/1.1 099 X\r\n\r\n", "outside 100-599");
    bad(b"HTTP/1.1 600 X\r\n\r\n", "outside 100-599");
    bad(b"HTTP/1.1 2000 X\r\n\r\n", "three digits");
    bad(b"HTTP/1.1 abc X\r\n\r\n", "three digits");
    bad(b"HTTP/2 200 X\r\n\r\n", "unsupported HTTP version");
    bad(b"HTTP/1.1  200 X\r\n\r\n", "three digits");
    bad(b"HTTP/1.1 200 O\x01K\r\n\r\n", "reason phrase");
}

#[test]
fn framing_conflicts() {
    bad(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "both",
    );
    bad(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "more than one Content-Length",
    );
    bad(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n",
        "not a plain number",
    );
    bad(
        b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
        "not a plain number",
    );
    bad(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "final transfer coding is not chunked",
    );
    bad(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "final transfer coding is not chunked",
    );
    bad(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "not chunked",
    );
    bad(b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", "empty");
    bad(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.0",
    );
    // Framing lies are refused even where no body follows.
    bad(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "more than one",
    );
}

#[test]
fn line_strictness() {
    bad(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF");
    bad(b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", "bare LF");
    bad(
        b"HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n",
        "obsolete line folding",
    );
    bad(
        b"HTTP/1.1 200 OK\r\nX : 1\r\n\r\n",
        "whitespace before the colon",
    );
    bad(b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", "NUL");
    bad(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "bare CR");
    bad(
        b"HTTP/1.1 200 OK\r\nX: a\x1bb\r\n\r\n",
        "invalid character in a header value",
    );
}

#[test]
fn limits() {
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "v".repeat(MAX_BYTES));
    let mut h = ResponseHead::new();
    let e = h
        .parse(big.as_bytes(), MAX_BYTES, MAX_FIELDS, false)
        .unwrap_err();
    assert_eq!(e.kind, Refusal::Malformed);
    assert_eq!(
        h.parse(
            &big.as_bytes()[..MAX_BYTES - 1],
            MAX_BYTES,
            MAX_FIELDS,
            false
        ),
        Ok(Status::Partial)
    );
    assert!(h
        .parse(&big.as_bytes()[..MAX_BYTES], MAX_BYTES, MAX_FIELDS, false)
        .is_err());
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for _ in 0..=MAX_FIELDS {
        many.extend_from_slice(b"A: 1\r\n");
    }
    let e = h.parse(&many, MAX_BYTES, MAX_FIELDS, false).unwrap_err();
    assert_eq!(e.detail, "more header fields than the limit");
}

pub(crate) const SPLIT_CASES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.0 304\r\nConnection: keep-alive, x\r\nX: y\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
];

#[test]
fn split_at_every_byte() {
    for &buf in SPLIT_CASES {
        let mut whole = ResponseHead::new();
        let expect = whole.parse(buf, MAX_BYTES, MAX_FIELDS, false);
        let mut h = ResponseHead::new();
        for k in 0..buf.len() {
            let got = h.parse(&buf[..k], MAX_BYTES, MAX_FIELDS, false);
            if got == Ok(Status::Complete) {
                assert!(k >= whole.len);
                assert_eq!(h, whole);
            } else {
                assert!(
                    got == Ok(Status::Partial) || got == expect,
                    "prefix {k}: {got:?} vs {expect:?}"
                );
            }
        }
        assert_eq!(h.parse(buf, MAX_BYTES, MAX_FIELDS, false), expect);
    }
}

#[test]
fn reuse_does_not_reallocate() {
    let mut h = ResponseHead::default();
    let ptr = h.headers.as_ptr();
    for buf in [
        &b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n"[..],
        b"HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n",
    ] {
        assert_eq!(
            h.parse(buf, MAX_BYTES, MAX_FIELDS, false),
            Ok(Status::Complete)
        );
        assert_eq!(h, ok(buf));
    }
    assert_eq!(h.headers.as_ptr(), ptr);
}
