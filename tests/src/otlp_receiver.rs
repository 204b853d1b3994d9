//! A real OTLP/HTTP trace receiver, as a collector runs one: `POST
//! /v1/traces` with an `application/x-protobuf` body, decoded as
//! `ExportTraceServiceRequest` with `opentelemetry-proto`'s types, every
//! span kept with its resource and scope.
//!
//! It listens on a loopback port the kernel picks and serves each
//! connection on a thread of its own, keep-alive, with the strict reader of
//! [`crate::http_wire`]. A test chooses how it answers ([`Mode`]): accept,
//! refuse with a status (503, say, for a collector that is down), or stall
//! (read the request and never answer, for one that hangs). It counts every
//! request, and a test waits for spans or requests on a condition variable
//! with a deadline ([`OtlpReceiver::wait_spans`]).

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::http_wire::{
    body_framing, field, lists_token, parse_field, split_head, Framing, Piece, Wire, WireError,
};
use crate::net::Acceptor;

/// The path traces are posted to.
pub const TRACES_PATH: &str = "/v1/traces";
/// Accept backlog.
const BACKLOG: i32 = 128;
/// How long a connection waits on one read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest request head read.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read (a batch of 1,000 spans is a few hundred KiB).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Longest a stalled request is held, should a test never release it.
const STALL_MAX: Duration = Duration::from_secs(300);

/// How the receiver answers the requests it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Decode, keep the spans, answer 200 with an empty
    /// `ExportTraceServiceResponse`.
    Accept,
    /// Answer `status` (with `Retry-After: seconds` when given), keeping
    /// nothing: a collector that is down or refuses.
    Refuse {
        /// The status sent.
        status: u16,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Read the request, keep nothing, and never answer; when the mode
    /// changes (or the receiver is dropped), close the connection: a
    /// collector that hangs.
    Stall,
}

/// One span the receiver decoded, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The resource attributes of its `ResourceSpans`.
    pub resource: Vec<KeyValue>,
    /// The name of its instrumentation scope.
    pub scope: String,
    /// The span as decoded.
    pub span: Span,
}

impl ReceivedSpan {
    /// The span's attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        find(&self.span.attributes, key)
    }

    /// The span's attribute `key` as a string, if it is one.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The span's attribute `key` as an integer, if it is one.
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(Value::IntValue(i)) => Some(*i),
            _ => None,
        }
    }

    /// The resource attribute `key` as a string, if it is one.
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        match find(&self.resource, key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    /// The span's attribute keys, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.span
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect()
    }
}

/// Lower-case hex of `bytes` (trace and span ids as the SDKs print them).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// What the receiver has seen, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests read (any mode, any path).
    pub requests: u64,
    /// Requests accepted and decoded.
    pub accepted: u64,
    /// Requests refused because of the mode.
    pub refused: u64,
    /// Requests stalled.
    pub stalled: u64,
    /// Requests answered with an error because they were not valid OTLP
    /// (wrong method, path, media type, or a body that does not decode).
    pub invalid: u64,
    /// Spans kept.
    pub spans: u64,
    /// The most spans one accepted request carried.
    pub largest_request: u64,
}

/// An OTLP/HTTP trace receiver on a loopback port; stops accepting when
/// dropped, and lets stalled requests go.
pub struct OtlpReceiver {
    acceptor: Acceptor,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("addr", &self.addr())
            .finish()
    }
}

impl OtlpReceiver {
    /// A receiver that accepts every valid request.
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        let acceptor = Acceptor::start("otlp-receiver", BACKLOG, IO_TIMEOUT, move |stream| {
            let shared = Arc::clone(&accepting);
            thread::Builder::new()
                .name("otlp-receiver-conn".to_owned())
                .spawn(move || serve(stream, &shared))
                .unwrap_or_else(|e| panic!("OTLP receiver: cannot start a connection thread: {e}"));
        });
        Self { acceptor, shared }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// The URL to export traces to.
    pub fn url(&self) -> String {
        format!("http://{}{TRACES_PATH}", self.addr())
    }

    /// Changes how the next requests (and those stalled now) are answered.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.update(|s| s.mode = mode);
    }

    /// The counts so far.
    pub fn tally(&self) -> Tally {
        self.shared.lock().tally
    }

    /// Every span kept so far, in the order received.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.lock().spans.clone()
    }

    /// Why each invalid request was refused, in order.
    pub fn invalid(&self) -> Vec<String> {
        self.shared.lock().invalid.clone()
    }

    /// Waits until at least `n` spans were kept, and returns them all;
    /// panics after `timeout`.
    pub fn wait_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        self.shared.wait(&format!("{n} spans"), timeout, |s| {
            (s.spans.len() >= n).then(|| s.spans.clone())
        })
    }

    /// Waits until `done` holds for the counts, and returns them; panics
    /// after `timeout`.
    pub fn wait_tally(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Tally) -> bool,
    ) -> Tally {
        self.shared
            .wait(what, timeout, |s| done(&s.tally).then_some(s.tally))
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.shared.update(|s| s.closing = true);
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    mode: Mode,
    tally: Tally,
    spans: Vec<ReceivedSpan>,
    invalid: Vec<String>,
    /// The receiver was dropped: stalls end.
    closing: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            mode: Mode::Accept,
            tally: Tally::default(),
            spans: Vec::new(),
            invalid: Vec::new(),
            closing: false,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let out = change(&mut self.lock());
        self.changed.notify_all();
        out
    }

    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(out) = done(&state) {
                return out;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "OTLP receiver: {what}: not reached within {timeout:?}; {:?}, invalid requests: {:?}",
                    state.tally, state.invalid
                );
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A request read off the wire.
struct Request {
    method: String,
    target: String,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Serves one connection until the client closes it or a request asks to.
fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut wire = Wire::new(reader);
    let mut writer = stream;
    loop {
        let request = match read_request(&mut wire) {
            Ok(request) => request,
            Err(WireError::Eof) => return,
            Err(e) => {
                let why = format!("unreadable request: {e}");
                shared.update(|s| {
                    s.tally.requests += 1;
                    s.tally.invalid += 1;
                    s.invalid.push(why.clone());
                });
                let _ = send(&mut writer, &Reply::new(400, why), true);
                return;
            }
        };
        let close = lists_token(&request.fields, "connection", "close");
        let answered = match answer(&request, shared) {
            Some(answer) => send(&mut writer, &answer, close),
            // Stalled, then let go: close without an answer.
            None => return,
        };
        if answered.is_err() || close {
            return;
        }
    }
}

fn read_request(wire: &mut Wire<TcpStream>) -> Result<Request, WireError> {
    let head = wire.read_head(MAX_HEAD)?;
    let (line, lines) = split_head(&head)?;
    let line = String::from_utf8_lossy(&line).into_owned();
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some("HTTP/1.1" | "HTTP/1.0"), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(WireError::Invalid(format!("bad request line {line:?}")));
    };
    let fields = lines
        .iter()
        .map(|l| parse_field(l))
        .collect::<Result<Vec<_>, _>>()?;
    let framing = body_framing(&fields, Framing::None)?;
    if matches!(framing, Framing::Length(n) if n > MAX_BODY as u64) {
        return Err(WireError::Invalid("body too large".to_owned()));
    }
    let mut body = Vec::new();
    wire.read_body(framing, &mut |piece| {
        if let Piece::Data(bytes) = piece {
            if body.len() + bytes.len() > MAX_BODY {
                return Err(std::io::Error::other("body too large"));
            }
            body.extend_from_slice(bytes);
        }
        Ok(())
    })?;
    Ok(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        fields,
        body,
    })
}

/// An answer to send.
struct Reply {
    status: u16,
    /// Header fields besides `Content-Length` and `Connection`.
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            fields: Vec::new(),
            body: body.into(),
        }
    }
}

/// The answer to `request`; `None` for a request stalled and then let go.
fn answer(request: &Request, shared: &Shared) -> Option<Reply> {
    let mode = shared.update(|s| {
        s.tally.requests += 1;
        s.mode.clone()
    });
    if let Err((status, why)) = check(request) {
        shared.update(|s| {
            s.tally.invalid += 1;
            s.invalid.push(why.clone());
        });
        return Some(Reply::new(status, why));
    }
    match mode {
        Mode::Accept => match ExportTraceServiceRequest::decode(request.body.as_slice()) {
            Ok(export) => {
                let spans = flatten(export);
                shared.update(|s| {
                    s.tally.accepted += 1;
                    s.tally.spans += spans.len() as u64;
                    s.tally.largest_request = s.tally.largest_request.max(spans.len() as u64);
                    s.spans.extend(spans);
                });
                let ok = ExportTraceServiceResponse::default().encode_to_vec();
                let media = (
                    "Content-Type".to_owned(),
                    "application/x-protobuf".to_owned(),
                );
                Some(Reply {
                    fields: vec![media],
                    ..Reply::new(200, ok)
                })
            }
            Err(e) => {
                let why = format!("the body is not an ExportTraceServiceRequest: {e}");
                shared.update(|s| {
                    s.tally.invalid += 1;
                    s.invalid.push(why.clone());
                });
                Some(Reply::new(400, why))
            }
        },
        Mode::Refuse {
            status,
            retry_after,
        } => {
            shared.update(|s| s.tally.refused += 1);
            let fields = retry_after
                .map(|secs| ("Retry-After".to_owned(), secs.to_string()))
                .into_iter()
                .collect();
            Some(Reply {
                fields,
                ..Reply::new(status, "refused by the test\n")
            })
        }
        Mode::Stall => {
            shared.update(|s| s.tally.stalled += 1);
            shared.wait_quietly(STALL_MAX, |s| s.closing || s.mode != Mode::Stall);
            None
        }
    }
}

impl Shared {
    /// Waits until `done` holds or `timeout` passes, without failing.
    fn wait_quietly(&self, timeout: Duration, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while !done(&state) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What OTLP/HTTP asks of a trace export request, or the status and reason
/// to refuse it with.
fn check(request: &Request) -> Result<(), (u16, String)> {
    let path = request.target.split('?').next().unwrap_or_default();
    if path != TRACES_PATH {
        return Err((404, format!("no such path {path:?}")));
    }
    if request.method != "POST" {
        return Err((405, format!("method {} on {TRACES_PATH}", request.method)));
    }
    let media = field(&request.fields, "content-type")
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err((
            415,
            format!("content-type {media:?}, not application/x-protobuf"),
        ));
    }
    if let Some(coding) = field(&request.fields, "content-encoding") {
        if !coding.eq_ignore_ascii_case("identity") {
            return Err((415, format!("content-encoding {coding:?} is not read here")));
        }
    }
    Ok(())
}

/// Every span of an export request, with its resource and scope.
fn flatten(export: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut spans = Vec::new();
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                spans.push(ReceivedSpan {
                    resource: resource.clone(),
                    scope: scope.clone(),
                    span,
                });
            }
        }
    }
    spans
}

fn send(writer: &mut TcpStream, reply: &Reply, close: bool) -> std::io::Result<()> {
    use std::io::Write;

    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.fields {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    let mut message = head.into_bytes();
    message.extend_from_slice(&reply.body);
    writer.write_all(&message)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Whatever",
    }
}
