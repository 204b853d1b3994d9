//! Writing HTTP/1 heads: the request as it goes upstream, the response as
//! it goes to the client, and ringway's own answers (described as data in
//! [`crate::request::answer`]).
//!
//! Heads are written into a buffer the request's parts keep, so a request
//! costs no allocation once the buffer has grown to its working size.

use super::tracing::UpTrace;
use crate::trace::context::{Fate, Format as TraceFormat, Header as TraceHeader};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::digits;
use crate::proto::h1::request::{RequestBody, RequestHead};
use crate::proto::h1::response::{ResponseBody, ResponseHead};
use crate::proto::h1::{Known, Version};
use crate::request::answer::{Answer, Body, Field};
use crate::table::route::HeaderEdits;

/// What the request head going upstream needs besides the request itself.
pub(super) struct Upward<'a> {
    /// The route's request edits.
    pub edits: &'a HeaderEdits,
    /// `Some((prefix matched, replacement))` to rewrite the path.
    pub rewrite: Option<(&'a str, &'a str)>,
    /// The client's address.
    pub client: IpAddr,
    /// The scheme the request arrived with (from the client's transport):
    /// the `x-forwarded-proto` written when the request carries none kept.
    pub proto: &'a str,
    /// Keep and extend arriving `X-Forwarded-*`.
    pub trust_forwarded: bool,
    /// A fresh request id, used when the request has none.
    pub request_id: u128,
    /// The attempt number, written as `x-ringway-attempt` when this hop
    /// retries the request; an arriving `x-ringway-attempt` is always
    /// dropped (the header speaks for the hop that wrote it).
    pub attempt: Option<u32>,
    /// The client's SPIFFE ID, verified in the TLS handshake: written as
    /// `x-ringway-peer-identity`. An arriving one is always dropped, so
    /// no client can claim an identity it did not prove.
    pub identity: Option<&'a str>,
    /// The trace context to carry, on listeners with tracing: the
    /// arriving trace headers it replaces or drops are left out, the
    /// others kept, and it is written in its format.
    pub trace: Option<UpTrace>,
}

/// Writes the request head for the upstream into `out`. `fallback_host`
/// is the `host` of a request that came without one (HTTP/1.0): HTTP/1.1
/// requires it upstream.
pub(super) fn request(
    out: &mut Vec<u8>,
    head: &RequestHead,
    buf: &[u8],
    up: &Upward<'_>,
    fallback_host: SocketAddr,
) {
    out.clear();
    out.extend_from_slice(head.method(buf));
    out.push(b' ');
    // The normal path, the one the route matched: the upstream must not
    // resolve a spelling ringway did not route.
    let path = head.normal_path(buf);
    match up.rewrite {
        Some((prefix, replacement)) if path.starts_with(prefix.as_bytes()) => {
            out.extend_from_slice(replacement.as_bytes());
            out.extend_from_slice(&path[prefix.len()..]);
        }
        _ => out.extend_from_slice(path),
    }
    out.extend_from_slice(head.query(buf));
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let host = head
        .host
        .as_ref()
        .map(|r| &buf[r.start as usize..r.end as usize]);
    if !up.edits.drops(b"host") {
        match host {
            Some(host) => line(out, b"host", host),
            None => {
                let _ = write!(out, "host: {fallback_host}\r\n");
            }
        }
    }
    let mut has_forwarded_for = false;
    let mut has_proto = false;
    let mut has_forwarded_host = false;
    let mut has_request_id = false;
    for h in &head.headers {
        if h.hop {
            continue;
        }
        let name = h.name(buf);
        match h.kind {
            // Host is written above; framing below, from what was parsed,
            // never copied: a `Connection: content-length` must not be able
            // to drop it.
            Known::Host | Known::ContentLength => continue,
            Known::XForwardedFor => {
                // Trusted values are joined into one field below, with the
                // client added; untrusted ones are dropped.
                has_forwarded_for |= up.trust_forwarded;
                continue;
            }
            Known::XForwardedProto | Known::XForwardedHost if !up.trust_forwarded => continue,
            Known::XRingwayAttempt | Known::XRingwayPeerIdentity => continue,
            _ => {}
        }
        if let Some(trace) = &up.trace {
            if let Some(header) = TraceHeader::classify(name) {
                match trace.report.fate(header) {
                    Fate::Forward => {}
                    Fate::Drop => continue,
                    // Replaced, unless the caller's context goes on as
                    // it came.
                    Fate::Replace if trace.context.is_some() => continue,
                    Fate::Replace => {}
                }
            }
        }
        if !up.edits.is_empty() && up.edits.drops(name) {
            continue;
        }
        match h.kind {
            Known::XForwardedProto => has_proto = true,
            Known::XForwardedHost => has_forwarded_host = true,
            Known::XRequestId => has_request_id = true,
            _ => {}
        }
        line(out, name, h.value(buf));
    }
    write_edits(out, up.edits);

    out.extend_from_slice(b"x-forwarded-for: ");
    if has_forwarded_for {
        let mut first = true;
        for h in head
            .headers
            .iter()
            .filter(|h| h.kind == Known::XForwardedFor)
        {
            let v = h.value(buf);
            if v.is_empty() {
                continue;
            }
            if !first {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(v);
            first = false;
        }
        if !first {
            out.extend_from_slice(b", ");
        }
    }
    digits::push_ip(out, up.client);
    out.extend_from_slice(b"\r\n");
    if !has_proto {
        line(out, b"x-forwarded-proto", up.proto.as_bytes());
    }
    if !has_forwarded_host {
        if let Some(host) = host {
            line(out, b"x-forwarded-host", host);
        }
    }
    if !has_request_id {
        out.extend_from_slice(b"x-request-id: ");
        digits::push_hex_u128(out, up.request_id);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(identity) = up.identity {
        line(out, b"x-ringway-peer-identity", identity.as_bytes());
    }
    if let Some(context) = up.trace.as_ref().and_then(|t| t.context.as_ref()) {
        let format = up.trace.as_ref().map_or(TraceFormat::W3c, |t| t.format);
        context.write_headers(format, out);
    }
    if let Some(attempt) = up.attempt {
        out.extend_from_slice(b"x-ringway-attempt: ");
        digits::push_u64(out, u64::from(attempt));
        out.extend_from_slice(b"\r\n");
    }
    match head.body {
        RequestBody::None => {}
        RequestBody::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            digits::push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        RequestBody::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// What an answer says about the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Persist {
    /// It closes after this answer: `connection: close`.
    Close,
    /// An HTTP/1.0 client asked to keep it: `connection: keep-alive` (1.0
    /// closes by default, and would wait for a close that never comes).
    KeepAlive10,
    /// It stays open, as HTTP/1.1 does by default: nothing to say.
    Default,
}

impl Persist {
    /// For a client of `version` that asked for `keep_alive`, when the
    /// connection closes after this answer if `close`.
    pub(super) fn of(close: bool, version: Version, keep_alive: bool) -> Self {
        match (close || !keep_alive, version) {
            (true, _) => Persist::Close,
            (false, Version::Http10) => Persist::KeepAlive10,
            (false, Version::Http11) => Persist::Default,
        }
    }

    /// Whether the connection closes.
    pub(super) fn closes(self) -> bool {
        self == Persist::Close
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Persist::Close => out.extend_from_slice(b"connection: close\r\n"),
            Persist::KeepAlive10 => out.extend_from_slice(b"connection: keep-alive\r\n"),
            Persist::Default => {}
        }
    }
}

/// How the response to the client is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// As the upstream framed it.
    Same,
    /// A chunked body going to an HTTP/1.0 client: sent without its chunk
    /// framing, ended by closing the connection.
    Dechunked,
}

/// Writes the response head for the client into `out`.
pub(super) fn response(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    buf: &[u8],
    edits: &HeaderEdits,
    framing: Framing,
    persist: Persist,
) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    digits::push_u64(out, u64::from(head.status));
    out.push(b' ');
    out.extend_from_slice(&buf[head.reason.start as usize..head.reason.end as usize]);
    out.extend_from_slice(b"\r\n");
    for h in &head.headers {
        // A length that frames the body is written below from what was
        // parsed; one on a bodiless answer (HEAD, 304) is passed on.
        if h.hop || (h.kind == Known::ContentLength && head.body != ResponseBody::None) {
            continue;
        }
        let name = h.name(buf);
        if !edits.is_empty() && edits.drops(name) {
            continue;
        }
        line(out, name, h.value(buf));
    }
    write_edits(out, edits);
    match (head.body, framing) {
        (ResponseBody::Length(n), _) => {
            out.extend_from_slice(b"content-length: ");
            digits::push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        (ResponseBody::Chunked, Framing::Same) => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        _ => {}
    }
    persist.write(out);
    out.extend_from_slice(b"\r\n");
}

/// Writes an interim (1xx) response for the client.
pub(super) fn interim(out: &mut Vec<u8>, head: &ResponseHead, buf: &[u8]) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    digits::push_u64(out, u64::from(head.status));
    out.push(b' ');
    out.extend_from_slice(&buf[head.reason.start as usize..head.reason.end as usize]);
    out.extend_from_slice(b"\r\n");
    for h in head.headers.iter().filter(|h| !h.hop) {
        line(out, h.name(buf), h.value(buf));
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes one of ringway's own answers: the status line, then its
/// location, media type, `x-ringway-error` and the route's fields, then its
/// framing and the body (none after a HEAD request).
pub(super) fn answer(out: &mut Vec<u8>, answer: &Answer<'_>, persist: Persist) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    digits::push_u64(out, u64::from(answer.status));
    out.push(b' ');
    out.extend_from_slice(phrase(answer.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(to) = &answer.location {
        out.extend_from_slice(b"location: ");
        out.extend_from_slice(to.scheme.as_bytes());
        out.extend_from_slice(b"://");
        out.extend_from_slice(to.host);
        out.extend_from_slice(to.path);
        out.extend_from_slice(to.query);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(ct) = answer.content_type {
        line(out, b"content-type", ct.as_bytes());
    }
    if let Some(reason) = answer.error {
        line(out, b"x-ringway-error", reason.name().as_bytes());
    }
    if let Some(seconds) = answer.retry_after {
        out.extend_from_slice(b"retry-after: ");
        digits::push_u64(out, seconds);
        out.extend_from_slice(b"\r\n");
    }
    write_fields(out, answer.fields);
    out.extend_from_slice(b"content-length: ");
    digits::push_u64(out, answer.body.len() as u64);
    out.extend_from_slice(b"\r\n");
    persist.write(out);
    out.extend_from_slice(b"\r\n");
    if answer.head_only {
        return;
    }
    match answer.body {
        Body::Empty => {}
        Body::Bytes(bytes) => out.extend_from_slice(bytes),
        Body::Explained(detail) => {
            out.extend_from_slice(Body::EXPLAINED_PREFIX.as_bytes());
            out.extend_from_slice(detail.as_bytes());
            out.push(b'\n');
        }
    }
}

/// Fields to write as they are: the set ones, then the added ones.
fn write_fields(out: &mut Vec<u8>, fields: [&[Field]; 2]) {
    for (name, value) in fields.into_iter().flatten() {
        line(out, name.as_bytes(), value.as_bytes());
    }
}

/// The set and add fields of `edits`.
fn write_edits(out: &mut Vec<u8>, edits: &HeaderEdits) {
    write_fields(out, [&edits.set, &edits.add]);
}

/// One header field.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase ringway writes for a status.
pub(super) fn phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::h1::path::PathRules;
    use crate::proto::h1::Limits;
    use crate::request::Reason;

    const LIMITS: Limits = Limits {
        max_request_line: 8192,
        max_header_bytes: 65536,
        max_headers: 100,
        path_rules: PathRules::DEFAULT,
    };

    fn parsed(raw: &[u8]) -> RequestHead {
        let mut head = RequestHead::new();
        let status = head.parse(raw, &LIMITS).expect("a valid head");
        assert_eq!(status, crate::proto::h1::Status::Complete);
        head
    }

    fn upward<'a>(edits: &'a HeaderEdits, trust: bool) -> Upward<'a> {
        Upward {
            edits,
            rewrite: None,
            client: "10.0.0.7".parse().expect("an address"),
            proto: "http",
            trust_forwarded: trust,
            request_id: 0xabc,
            attempt: None,
            identity: None,
            trace: None,
        }
    }

    /// The trace of `raw`, sampled or not as the caller says (or always,
    /// without a decision).
    fn traced(raw: &[u8]) -> super::super::tracing::Trace {
        let head = parsed(raw);
        let n = std::cell::Cell::new(0u64);
        let random = || {
            n.set(n.get() + 1);
            n.get().wrapping_mul(0x9e37_79b9_7f4a_7c15)
        };
        super::super::tracing::Trace::read(
            &head,
            raw,
            crate::trace::context::Threshold::ALWAYS,
            random,
        )
    }

    #[test]
    fn a_sampled_request_goes_up_as_a_child_of_its_attempt() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\ntracestate: a=1\r\n\r\n";
        let trace = traced(raw);
        assert!(trace.sampled);
        let attempt = [7u8; 8];
        let edits = HeaderEdits::default();
        let mut up = upward(&edits, false);
        up.trace = Some(trace.outgoing(Some(attempt)));
        let out = written(raw, &up);
        assert!(
            out.contains(
                "traceparent: 00-0af7651916cd43dd8448eb211c80319c-0707070707070707-01\r\n"
            ),
            "{out}"
        );
        assert_eq!(out.matches("traceparent").count(), 1, "{out}");
        assert!(out.contains("tracestate: a=1\r\n"), "{out}");
    }

    #[test]
    fn an_invalid_trace_header_is_dropped_and_a_new_trace_goes_up() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\ntraceparent: 00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01\r\ntracestate: a=1\r\n\r\n";
        let trace = traced(raw);
        assert!(trace.report.any_invalid());
        let edits = HeaderEdits::default();
        let mut up = upward(&edits, false);
        up.trace = Some(trace.outgoing(Some([9; 8])));
        let out = written(raw, &up);
        assert!(!out.contains("0AF7651916CD43DD"), "{out}");
        assert!(!out.contains("tracestate"), "{out}");
        assert_eq!(out.matches("traceparent: 00-").count(), 1, "{out}");
        assert!(out.contains("-0909090909090909-01\r\n"), "{out}");
    }

    #[test]
    fn an_unsampled_request_passes_its_caller_on_unrecorded() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0\r\n\r\n";
        let trace = traced(raw);
        assert!(!trace.sampled);
        let edits = HeaderEdits::default();
        let mut up = upward(&edits, false);
        up.trace = Some(trace.outgoing(None));
        let out = written(raw, &up);
        assert!(
            out.contains("b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("b3:").count(), 1, "{out}");
        assert!(!out.contains("traceparent"), "{out}");
    }

    #[test]
    fn the_attempt_header_speaks_for_this_hop_alone() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Ringway-Attempt: 7\r\n\r\n";
        let edits = HeaderEdits::default();
        let quiet = written(raw, &upward(&edits, false));
        assert!(
            !quiet.to_ascii_lowercase().contains("x-ringway-attempt"),
            "{quiet}"
        );
        let retrying = Upward {
            attempt: Some(2),
            ..upward(&edits, false)
        };
        let out = written(raw, &retrying);
        assert!(out.contains("x-ringway-attempt: 2\r\n"), "{out}");
        assert!(!out.contains(": 7"), "{out}");
    }

    #[test]
    fn a_claimed_peer_identity_never_goes_up() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Ringway-Peer-Identity: spiffe://evil.org/admin\r\nx-ringway-peer-identity: spiffe://evil.org/x\r\n\r\n";
        let edits = HeaderEdits::default();
        let plain = written(raw, &upward(&edits, true));
        assert!(
            !plain.to_ascii_lowercase().contains("peer-identity"),
            "{plain}"
        );
        let verified = Upward {
            identity: Some("spiffe://example.org/ns/default/sa/web"),
            ..upward(&edits, true)
        };
        let out = written(raw, &verified);
        assert!(
            out.contains("x-ringway-peer-identity: spiffe://example.org/ns/default/sa/web\r\n"),
            "{out}"
        );
        assert!(!out.contains("evil.org"), "{out}");
    }

    fn written(raw: &[u8], up: &Upward<'_>) -> String {
        let head = parsed(raw);
        let mut out = Vec::new();
        request(
            &mut out,
            &head,
            raw,
            up,
            "10.9.9.9:80".parse().expect("an address"),
        );
        String::from_utf8(out).expect("a UTF-8 head")
    }

    #[test]
    fn hop_by_hop_fields_go_and_framing_is_written_from_the_parse() {
        let raw = b"POST /a HTTP/1.1\r\nHost: h\r\nConnection: x-hop, content-length\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nContent-Length: 3\r\nX-Keep: 2\r\n\r\n";
        let edits = HeaderEdits::default();
        let out = written(raw, &upward(&edits, false));
        assert_eq!(
            out,
            "POST /a HTTP/1.1\r\nhost: h\r\nX-Keep: 2\r\nx-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\nx-request-id: 00000000000000000000000000000abc\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn forwarded_fields_are_replaced_unless_trusted() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Proto: https\r\nX-Request-Id: given\r\n\r\n";
        let edits = HeaderEdits::default();
        let untrusted = written(raw, &upward(&edits, false));
        assert!(
            untrusted.contains("x-forwarded-for: 10.0.0.7\r\n"),
            "{untrusted}"
        );
        assert!(
            untrusted.contains("x-forwarded-proto: http\r\n"),
            "{untrusted}"
        );
        assert!(!untrusted.contains("https"), "{untrusted}");
        assert!(untrusted.contains("X-Request-Id: given\r\n"), "{untrusted}");
        assert!(!untrusted.contains("x-request-id"), "{untrusted}");
        let trusted = written(raw, &upward(&edits, true));
        assert!(
            trusted.contains("x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.7\r\n"),
            "{trusted}"
        );
        assert!(
            trusted.contains("X-Forwarded-Proto: https\r\n"),
            "{trusted}"
        );
        assert!(
            !trusted.contains("x-forwarded-proto: http\r\n"),
            "{trusted}"
        );
    }

    #[test]
    fn edits_remove_then_set_then_add_and_the_prefix_is_rewritten() {
        let raw = b"GET /api/users?id=1 HTTP/1.1\r\nHost: h\r\nX-Internal: secret\r\nX-Env: dev\r\nX-Env: test\r\n\r\n";
        let edits = HeaderEdits {
            remove: vec!["x-internal".into()],
            set: vec![
                ("x-env".into(), "prod".into()),
                ("host".into(), "inner".into()),
            ],
            add: vec![("x-via".into(), "ringway".into())],
        };
        let mut up = upward(&edits, false);
        up.rewrite = Some(("/api/", "/v2/"));
        let out = written(raw, &up);
        assert!(out.starts_with("GET /v2/users?id=1 HTTP/1.1\r\n"), "{out}");
        assert!(!out.contains("secret"), "{out}");
        assert_eq!(
            out.matches("x-env").count() + out.matches("X-Env").count(),
            1
        );
        assert!(
            out.contains("x-env: prod\r\nhost: inner\r\nx-via: ringway\r\n"),
            "{out}"
        );
        assert!(!out.contains("\r\nhost: h\r\n"), "{out}");
        assert!(out.contains("x-forwarded-host: h\r\n"), "{out}");
    }

    #[test]
    fn the_normal_path_goes_upstream_with_the_query_as_sent() {
        let edits = HeaderEdits::default();
        let up = upward(&edits, false);
        let out = written(
            b"GET /a/../%62//c?x=/../%2e HTTP/1.1\r\nHost: h\r\n\r\n",
            &up,
        );
        assert!(out.starts_with("GET /b/c?x=/../%2e HTTP/1.1\r\n"), "{out}");
        let out = written(b"GET http://h//a/./b HTTP/1.1\r\nHost: h\r\n\r\n", &up);
        assert!(out.starts_with("GET /a/b HTTP/1.1\r\n"), "{out}");
        let out = written(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &up);
        assert!(out.starts_with("OPTIONS * HTTP/1.1\r\n"), "{out}");
    }

    #[test]
    fn a_rewrite_applies_to_the_normal_path() {
        let edits = HeaderEdits::default();
        let mut up = upward(&edits, false);
        up.rewrite = Some(("/api/", "/v2/"));
        let out = written(b"GET /api/x/../%79?q HTTP/1.1\r\nHost: h\r\n\r\n", &up);
        assert!(out.starts_with("GET /v2/y?q HTTP/1.1\r\n"), "{out}");
        // Normalized first, `/api/../admin` is `/admin`: not the prefix, so
        // not rewritten (and no route with this prefix would match it).
        let out = written(b"GET /api/../admin HTTP/1.1\r\nHost: h\r\n\r\n", &up);
        assert!(out.starts_with("GET /admin HTTP/1.1\r\n"), "{out}");
    }

    #[test]
    fn the_forwarded_proto_is_the_transports() {
        let edits = HeaderEdits::default();
        let mut up = upward(&edits, false);
        up.proto = "https";
        let out = written(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &up);
        assert!(out.contains("\r\nx-forwarded-proto: https\r\n"), "{out}");
    }

    #[test]
    fn a_redirect_is_its_location_the_routes_fields_and_no_body() {
        use crate::request::answer::Location;
        let fields: Vec<Field> = vec![("x-a".into(), "1".into())];
        let to = Location {
            scheme: "https",
            host: b"h",
            path: b"/a/b",
            query: b"?q=1",
        };
        let mut out = Vec::new();
        let redirect = Answer::redirect(308, to, [&fields, &[]]);
        answer(&mut out, &redirect, Persist::Default);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "HTTP/1.1 308 Permanent Redirect\r\nlocation: https://h/a/b?q=1\r\nx-a: 1\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn a_direct_response_to_head_says_its_length_without_its_body() {
        let mut out = Vec::new();
        let direct = Answer::direct(200, Some("text/plain"), b"hello", [&[], &[]], true);
        answer(&mut out, &direct, Persist::Close);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn own_answers_say_why_in_one_line() {
        let mut out = Vec::new();
        let failure = Answer::failure(Reason::NoRoute, "no route matches this request")
            .expect("no_route has an answer");
        answer(&mut out, &failure, Persist::Default);
        let text = String::from_utf8(out).expect("UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        assert!(head.contains("x-ringway-error: no_route"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(body, "ringway: no route matches this request\n");
    }
}
