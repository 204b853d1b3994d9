//! Writing heads: the request as it goes upstream, the response as it goes
//! to the client, and the answers ringway gives itself.
//!
//! Heads are written into a buffer the connection reuses, so a request
//! costs no allocation once the buffer has grown to its working size.

use std::io::Write as _;
use std::net::IpAddr;

use crate::proto::h1::request::{RequestBody, RequestHead};
use crate::proto::h1::response::{ResponseBody, ResponseHead};
use crate::proto::h1::Known;
use crate::stats::http::Reason;
use crate::table::route::{DirectResponse, HeaderEdits, Redirect};

/// What the request head going upstream needs besides the request itself.
pub(super) struct Upward<'a> {
    /// The route's request edits.
    pub edits: &'a HeaderEdits,
    /// `Some((prefix matched, replacement))` to rewrite the path.
    pub rewrite: Option<(&'a str, &'a str)>,
    /// The client's address.
    pub client: IpAddr,
    /// Keep and extend arriving `X-Forwarded-*`.
    pub trust_forwarded: bool,
    /// A fresh request id, used when the request has none.
    pub request_id: u128,
}

/// Writes the request head for the upstream into `out`.
pub(super) fn request(out: &mut Vec<u8>, head: &RequestHead, buf: &[u8], up: &Upward<'_>) {
    out.clear();
    out.extend_from_slice(head.method(buf));
    out.push(b' ');
    let path = head.path(buf);
    match up.rewrite {
        Some((prefix, replacement)) if path.starts_with(prefix.as_bytes()) => {
            out.extend_from_slice(replacement.as_bytes());
            out.extend_from_slice(&path[prefix.len()..]);
        }
        _ => out.extend_from_slice(path),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let host = head
        .host
        .as_ref()
        .map(|r| &buf[r.start as usize..r.end as usize]);
    if let Some(host) = host {
        if !up.edits.drops("host") {
            line(out, b"host", host);
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
            Known::Host => continue,
            Known::XForwardedFor => {
                // Trusted values are joined into one field below, with the
                // client added; untrusted ones are dropped.
                has_forwarded_for |= up.trust_forwarded;
                continue;
            }
            Known::XForwardedProto | Known::XForwardedHost if !up.trust_forwarded => continue,
            Known::XForwardedProto => has_proto = true,
            Known::XForwardedHost => has_forwarded_host = true,
            Known::XRequestId => has_request_id = true,
            _ => {}
        }
        if h.kind == Known::ContentLength {
            // Framing is written below from what was parsed, never copied:
            // a `Connection: content-length` must not be able to drop it.
            continue;
        }
        if !up.edits.is_empty() && drops(up.edits, name) {
            continue;
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
    let _ = write!(out, "{}\r\n", up.client);
    if !has_proto {
        out.extend_from_slice(b"x-forwarded-proto: http\r\n");
    }
    if !has_forwarded_host {
        if let Some(host) = host {
            line(out, b"x-forwarded-host", host);
        }
    }
    if !has_request_id {
        let _ = write!(out, "x-request-id: {:032x}\r\n", up.request_id);
    }
    match head.body {
        RequestBody::None => {}
        RequestBody::Length(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        RequestBody::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
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

/// Writes the response head for the client into `out`. `close` adds
/// `connection: close`; `keep_alive_10` adds `connection: keep-alive` for an
/// HTTP/1.0 client that asked for it.
pub(super) fn response(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    buf: &[u8],
    edits: &HeaderEdits,
    framing: Framing,
    close: bool,
    keep_alive_10: bool,
) {
    out.clear();
    let _ = write!(out, "HTTP/1.1 {} ", head.status);
    out.extend_from_slice(&buf[head.reason.start as usize..head.reason.end as usize]);
    out.extend_from_slice(b"\r\n");
    for h in &head.headers {
        // A length that frames the body is written below from what was
        // parsed; one on a bodiless answer (HEAD, 304) is passed on.
        if h.hop || (h.kind == Known::ContentLength && head.body != ResponseBody::None) {
            continue;
        }
        let name = h.name(buf);
        if !edits.is_empty() && drops(edits, name) {
            continue;
        }
        line(out, name, h.value(buf));
    }
    write_edits(out, edits);
    match (head.body, framing) {
        (ResponseBody::Length(n), _) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        (ResponseBody::Chunked, Framing::Same) => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        _ => {}
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    } else if keep_alive_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes an interim (1xx) response for the client.
pub(super) fn interim(out: &mut Vec<u8>, head: &ResponseHead, buf: &[u8]) {
    out.clear();
    let _ = write!(out, "HTTP/1.1 {} ", head.status);
    out.extend_from_slice(&buf[head.reason.start as usize..head.reason.end as usize]);
    out.extend_from_slice(b"\r\n");
    for h in head.headers.iter().filter(|h| !h.hop) {
        line(out, h.name(buf), h.value(buf));
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes ringway's own answer for `reason`: the status, the reason in
/// `x-ringway-error`, and a one-line body saying what happened.
pub(super) fn error(out: &mut Vec<u8>, reason: Reason, status: u16, detail: &str, close: bool) {
    out.clear();
    let body_len = "ringway: ".len() + detail.len() + 1;
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\ncontent-type: text/plain; charset=utf-8\r\nx-ringway-error: {}\r\ncontent-length: {body_len}\r\n{}\r\nringway: {detail}\n",
        phrase(status),
        reason.name(),
        if close { "connection: close\r\n" } else { "" },
    );
}

/// Writes a redirect for the request `head` (from `buf`).
pub(super) fn redirect(
    out: &mut Vec<u8>,
    to: &Redirect,
    head: &RequestHead,
    buf: &[u8],
    edits: &HeaderEdits,
    close: bool,
) {
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nlocation: ",
        to.status,
        phrase(to.status)
    );
    out.extend_from_slice(to.scheme.as_deref().unwrap_or("http").as_bytes());
    out.extend_from_slice(b"://");
    match (&to.host, &head.host) {
        (Some(host), _) => out.extend_from_slice(host.as_bytes()),
        (None, Some(r)) => out.extend_from_slice(&buf[r.start as usize..r.end as usize]),
        (None, None) => {}
    }
    let path = head.path(buf);
    match &to.path {
        Some(new) => {
            out.extend_from_slice(new.as_bytes());
            if let Some(q) = path.iter().position(|&b| b == b'?') {
                out.extend_from_slice(&path[q..]);
            }
        }
        None => out.extend_from_slice(path),
    }
    out.extend_from_slice(b"\r\n");
    write_edits(out, edits);
    out.extend_from_slice(b"content-length: 0\r\n");
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a direct response.
pub(super) fn direct(
    out: &mut Vec<u8>,
    answer: &DirectResponse,
    edits: &HeaderEdits,
    close: bool,
    head_only: bool,
) {
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        answer.status,
        phrase(answer.status)
    );
    if let Some(ct) = &answer.content_type {
        line(out, b"content-type", ct.as_bytes());
    }
    write_edits(out, edits);
    let _ = write!(out, "content-length: {}\r\n", answer.body.len());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&answer.body);
    }
}

/// Whether `name` is removed or replaced by `edits`.
fn drops(edits: &HeaderEdits, name: &[u8]) -> bool {
    edits
        .remove
        .iter()
        .chain(edits.set.iter().map(|(n, _)| n))
        .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}

/// The set and add fields of `edits`.
fn write_edits(out: &mut Vec<u8>, edits: &HeaderEdits) {
    for (name, value) in edits.set.iter().chain(&edits.add) {
        line(out, name.as_bytes(), value.as_bytes());
    }
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
