//! A recording HTTP/1.1 origin server on `std::net` threads: the tests'
//! scripted, fault-injecting origin. Where a test only needs answers
//! counted (the load generator's tests, a drain under load), the kit's
//! counting origin ([`ringway_kit::origin`]) serves instead.
//!
//! [`HttpOrigin`] accepts on a loopback port and serves every connection on
//! a thread of its own, keep-alive by default. It parses each request with
//! the strict reader of [`crate::http_wire`], records it ([`Recorded`]) and
//! answers as the test's handler says ([`Reply`]). It also keeps the raw
//! bytes of every connection, so a test can check that nothing hid in them
//! (a smuggled request), and how every connection ended ([`ConnEnd`]).
//!
//! The handler sees a request's head only: it decides the reply before the
//! body is read, so that [`Reply::echo`] can stream a body of any size back
//! as it arrives. The request is recorded once its body is complete, before
//! the reply is written (after the head, for an echo): a test that has
//! received the whole reply finds the request recorded, except for an echo,
//! where [`HttpOrigin::wait_requests`] is the way to wait.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use socket2::SockRef;

use crate::data::Digest;
use crate::http_wire::{
    body_framing, lists_token, parse_field, split_head, Framing, Piece, Wire, WireError,
};
use crate::net::Acceptor;

/// Accept backlog: more than the connections any test opens at once.
const BACKLOG: i32 = 1024;
/// How long a connection waits on one read or write: long enough for a
/// proxy that holds a pooled connection idle for the whole of a test.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest request head the origin accepts: far beyond the proxy's limits,
/// so that every refusal the tests see is the proxy's.
const MAX_HEAD: usize = 1024 * 1024;
/// Body bytes kept in a [`Recorded`]; beyond this only length and digest.
const BODY_KEEP: usize = 1024 * 1024;
/// Raw bytes kept per connection; beyond this only the count.
const RAW_KEEP: usize = 1024 * 1024;
/// How long a [`Gate`] holds a reply back at most.
const GATE_TIMEOUT: Duration = Duration::from_secs(60);

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The connection it came on (0 for the first the origin accepted).
    pub conn: usize,
    /// Its place among the requests of that connection, from 0.
    pub index_on_conn: usize,
    /// Method.
    pub method: String,
    /// Request target as written.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Header fields in order, as received (names not case-folded).
    pub headers: Vec<(String, String)>,
    /// The first MiB of the body.
    pub body: Vec<u8>,
    /// Length of the whole body.
    pub body_len: u64,
    /// SHA-256 of the whole body.
    pub body_digest: Digest,
    /// The chunk sizes, in order, when the body came chunked.
    pub chunks: Option<Vec<u64>>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// The head exactly as received, up to and including the empty line.
    pub raw_head: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http_wire::field(&self.headers, name)
    }

    /// Every value of header `name` (any case), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        crate::http_wire::fields_named(&self.headers, name)
    }

    /// The path: the target before any `?`.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The kept body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a connection of the origin ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEnd {
    /// The peer closed between requests.
    PeerClosed,
    /// The peer closed inside a request.
    PeerClosedMidRequest,
    /// The peer reset the connection.
    PeerReset,
    /// The peer sent bytes that are not valid HTTP/1.1; the origin closed.
    Invalid(String),
    /// The origin closed, as the request or the reply asked.
    ClosedByOrigin,
    /// The origin reset, as the reply asked.
    ResetByOrigin,
    /// Another socket error (a timeout, say).
    Failed(String),
}

/// One connection the origin accepted.
#[derive(Debug, Clone)]
pub struct ConnRecord {
    /// Its id: its place in accept order, from 0.
    pub id: usize,
    /// The proxy's address on it.
    pub peer: SocketAddr,
    /// Complete requests received on it.
    pub requests: usize,
    /// Bytes received on it.
    pub bytes: u64,
    /// How it ended; `None` while open.
    pub ended: Option<ConnEnd>,
}

/// A recording HTTP/1.1 origin on a loopback port; stops accepting when
/// dropped (connections already open finish by themselves).
pub struct HttpOrigin {
    acceptor: Acceptor,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOrigin")
            .field("addr", &self.addr())
            .finish()
    }
}

impl HttpOrigin {
    /// Starts an origin that answers every request as `handler` says.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let accepting = Arc::clone(&shared);
        let acceptor = Acceptor::start("http-origin", BACKLOG, IO_TIMEOUT, move |stream| {
            accept(stream, &accepting, &handler);
        });
        Self { acceptor, shared }
    }

    /// An origin that answers every request 200 with `body`.
    pub fn ok(body: &str) -> Self {
        let body = body.to_owned();
        Self::start(move |_| Reply::ok(body.as_bytes()))
    }

    /// An origin that echoes every request body ([`Reply::echo`]).
    pub fn echo() -> Self {
        Self::start(|_| Reply::echo())
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// Every complete request so far, in the order they completed.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Every connection accepted so far, in accept order.
    pub fn connections(&self) -> Vec<ConnRecord> {
        self.shared
            .lock()
            .conns
            .iter()
            .map(|c| c.record.clone())
            .collect()
    }

    /// The raw bytes received on connection `conn` (the first MiB).
    pub fn raw(&self, conn: usize) -> Vec<u8> {
        self.shared
            .lock()
            .conns
            .get(conn)
            .map(|c| c.raw.clone())
            .unwrap_or_else(|| panic!("origin {}: no connection {conn}", self.addr()))
    }

    /// Bytes received over all connections.
    pub fn raw_total(&self) -> u64 {
        self.shared
            .lock()
            .conns
            .iter()
            .map(|c| c.record.bytes)
            .sum()
    }

    /// Whether `needle` occurs in the kept raw bytes of any connection.
    pub fn raw_contains(&self, needle: &[u8]) -> bool {
        self.shared
            .lock()
            .conns
            .iter()
            .any(|c| crate::http_wire::find(&c.raw, needle).is_some())
    }

    /// Waits until at least `n` requests are recorded and returns them all;
    /// panics after `timeout`.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        self.shared.wait(
            &format!("origin {}: {n} requests", self.addr()),
            timeout,
            |s| (s.requests.len() >= n).then(|| s.requests.clone()),
        )
    }

    /// Waits until connection `conn` has ended and returns how; panics after
    /// `timeout`.
    pub fn wait_ended(&self, conn: usize, timeout: Duration) -> ConnEnd {
        self.shared.wait(
            &format!("origin {}: connection {conn} ends", self.addr()),
            timeout,
            |s| s.conns.get(conn).and_then(|c| c.record.ended.clone()),
        )
    }

    /// Waits until at least `n` connections were accepted; panics after
    /// `timeout`.
    pub fn wait_connections(&self, n: usize, timeout: Duration) -> Vec<ConnRecord> {
        self.shared.wait(
            &format!("origin {}: {n} connections", self.addr()),
            timeout,
            |s| (s.conns.len() >= n).then(|| s.conns.iter().map(|c| c.record.clone()).collect()),
        )
    }

    /// A one-line account of what the origin saw, for failure messages.
    pub fn summary(&self) -> String {
        let state = self.shared.lock();
        let requests: Vec<String> = state
            .requests
            .iter()
            .map(|r| format!("#{} {} {}", r.conn, r.method, r.target))
            .collect();
        let conns: Vec<String> = state
            .conns
            .iter()
            .map(|c| {
                format!(
                    "#{} {} bytes {:?}",
                    c.record.id, c.record.bytes, c.record.ended
                )
            })
            .collect();
        format!("requests {requests:?}; connections {conns:?}")
    }
}

/// What the origin does with one request.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    kind: ReplyKind,
    delay: Duration,
    close: bool,
}

#[derive(Debug, Clone)]
enum ReplyKind {
    Length(Vec<u8>),
    Chunked {
        chunks: Vec<Vec<u8>>,
        trailers: Vec<(String, String)>,
    },
    CloseDelimited(Vec<u8>),
    NoBody,
    Echo,
    Raw(Vec<u8>),
    Reset,
    PartialThenReset {
        framing: Framing,
        sent: Vec<u8>,
        gate: Option<Gate>,
    },
    Close,
}

impl Reply {
    /// 200 with `body` and a `Content-Length`.
    pub fn ok(body: &[u8]) -> Self {
        Self::status(200, body)
    }

    /// `status` with `body` and a `Content-Length`.
    pub fn status(status: u16, body: &[u8]) -> Self {
        Self::new(status, ReplyKind::Length(body.to_vec()))
    }

    /// `status`, chunked: one chunk per element of `chunks` (none empty).
    pub fn chunked(status: u16, chunks: &[&[u8]]) -> Self {
        Self::new(
            status,
            ReplyKind::Chunked {
                chunks: chunks.iter().map(|c| c.to_vec()).collect(),
                trailers: Vec::new(),
            },
        )
    }

    /// `status` with `body` and no length: the origin closes after it.
    pub fn close_delimited(status: u16, body: &[u8]) -> Self {
        let mut reply = Self::new(status, ReplyKind::CloseDelimited(body.to_vec()));
        reply.close = true;
        reply
    }

    /// `status` with no body and no framing field the origin adds (for
    /// 204, 304, or a HEAD answer whose fields the test writes itself).
    pub fn no_body(status: u16) -> Self {
        Self::new(status, ReplyKind::NoBody)
    }

    /// 200, streaming the request body back as it arrives: with a
    /// `Content-Length` for a request that had one, chunk for chunk (with
    /// the trailers) for a chunked one.
    pub fn echo() -> Self {
        Self::new(200, ReplyKind::Echo)
    }

    /// `bytes` verbatim as the whole answer (a malformed head, say); the
    /// origin closes after them.
    pub fn raw(bytes: &[u8]) -> Self {
        let mut reply = Self::new(0, ReplyKind::Raw(bytes.to_vec()));
        reply.close = true;
        reply
    }

    /// No answer: the origin resets the connection (SO_LINGER 0).
    pub fn reset() -> Self {
        Self::new(0, ReplyKind::Reset)
    }

    /// No answer: the origin closes the connection (a FIN).
    pub fn close() -> Self {
        Self::new(0, ReplyKind::Close)
    }

    /// 200 declaring a body of `declared` bytes, of which only `sent` go out
    /// before the origin resets. With a gate, the reset waits until the test
    /// opens it (it has seen the head reach the client).
    pub fn partial_with_length(declared: u64, sent: &[u8], gate: Option<Gate>) -> Self {
        Self::new(
            200,
            ReplyKind::PartialThenReset {
                framing: Framing::Length(declared),
                sent: sent.to_vec(),
                gate,
            },
        )
    }

    /// 200 chunked, sending `chunks` but never the last chunk before the
    /// origin resets; with a gate as [`Reply::partial_with_length`].
    pub fn partial_chunked(chunks: &[&[u8]], gate: Option<Gate>) -> Self {
        let mut sent = Vec::new();
        for chunk in chunks {
            sent.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            sent.extend_from_slice(chunk);
            sent.extend_from_slice(b"\r\n");
        }
        Self::new(
            200,
            ReplyKind::PartialThenReset {
                framing: Framing::Chunked,
                sent,
                gate,
            },
        )
    }

    /// Adds a header field to the reply.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a trailer field (chunked replies only).
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        match &mut self.kind {
            ReplyKind::Chunked { trailers, .. } => {
                trailers.push((name.to_owned(), value.to_owned()));
            }
            other => panic!("a trailer on a reply that is not chunked: {other:?}"),
        }
        self
    }

    /// Waits `delay` before writing the head.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Closes the connection after the reply, without saying so in it (no
    /// `Connection: close`): the proxy keeps it as if it stayed open.
    pub fn then_close(mut self) -> Self {
        self.close = true;
        self
    }

    fn new(status: u16, kind: ReplyKind) -> Self {
        Self {
            status,
            headers: Vec::new(),
            kind,
            delay: Duration::ZERO,
            close: false,
        }
    }
}

/// A one-shot signal from the test to the origin: opened once, waited on by
/// a reply.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens it.
    pub fn open(&self) {
        let (lock, wake) = &*self.inner;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
    }

    /// Waits until it is open, at most `timeout`; false on timeout.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (lock, wake) = &*self.inner;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, timeout, |open| !*open)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    conns: Vec<ConnState>,
}

struct ConnState {
    record: ConnRecord,
    raw: Vec<u8>,
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
                let conns: Vec<_> = state.conns.iter().map(|c| c.record.clone()).collect();
                panic!(
                    "{what}: not reached within {timeout:?}; {} requests, connections {conns:?}",
                    state.requests.len()
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

/// Records a connection the origin accepted and serves it on a thread of
/// its own.
fn accept(stream: TcpStream, shared: &Arc<Shared>, handler: &Arc<Handler>) {
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let id = shared.update(|s| {
        let id = s.conns.len();
        s.conns.push(ConnState {
            record: ConnRecord {
                id,
                peer,
                requests: 0,
                bytes: 0,
                ended: None,
            },
            raw: Vec::new(),
        });
        id
    });
    let shared = Arc::clone(shared);
    let handler = Arc::clone(handler);
    thread::Builder::new()
        .name(format!("http-origin-conn-{id}"))
        .spawn(move || serve(stream, id, &shared, &*handler))
        .unwrap_or_else(|e| panic!("HTTP origin: cannot start a connection thread: {e}"));
}

/// What to do with the connection after a reply.
enum Next {
    KeepAlive,
    Close,
    Reset,
}

fn serve(stream: TcpStream, id: usize, shared: &Arc<Shared>, handler: &Handler) {
    let reader = match stream.try_clone() {
        Ok(reader) => reader,
        Err(e) => {
            shared.update(|s| s.conns[id].record.ended = Some(ConnEnd::Failed(e.to_string())));
            return;
        }
    };
    let tap = Arc::clone(shared);
    let mut wire = Wire::tapped(reader, move |bytes| {
        tap.update(|s| {
            let conn = &mut s.conns[id];
            conn.record.bytes += bytes.len() as u64;
            let room = RAW_KEEP.saturating_sub(conn.raw.len());
            conn.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
        });
    });
    let mut index = 0;
    let end = loop {
        match serve_one(&mut wire, &stream, id, index, shared, handler) {
            Ok(Next::KeepAlive) => index += 1,
            Ok(Next::Close) => break ConnEnd::ClosedByOrigin,
            Ok(Next::Reset) => {
                let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                break ConnEnd::ResetByOrigin;
            }
            Err(WireError::Eof) => break ConnEnd::PeerClosed,
            Err(WireError::Truncated(_)) => break ConnEnd::PeerClosedMidRequest,
            Err(WireError::Invalid(why)) => break ConnEnd::Invalid(why),
            Err(WireError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                break ConnEnd::PeerReset
            }
            Err(WireError::Io(e)) => break ConnEnd::Failed(e.to_string()),
        }
    };
    drop(wire);
    drop(stream);
    shared.update(|s| s.conns[id].record.ended = Some(end));
}

/// Reads one request, records it and answers it.
fn serve_one(
    wire: &mut Wire<TcpStream>,
    stream: &TcpStream,
    id: usize,
    index: usize,
    shared: &Shared,
    handler: &Handler,
) -> Result<Next, WireError> {
    let raw_head = wire.read_head(MAX_HEAD)?;
    let mut request = parse_request_head(raw_head, id, index)?;
    let framing = body_framing(&request.headers, Framing::None)?;
    if request.version == "HTTP/1.0" && framing == Framing::Chunked {
        return Err(WireError::Invalid(
            "transfer-encoding in an HTTP/1.0 request".into(),
        ));
    }
    let reply = handler(&request);
    let mut out = stream;

    if lists_token(&request.headers, "expect", "100-continue") {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let client_close = lists_token(&request.headers, "connection", "close")
        || (request.version == "HTTP/1.0"
            && !lists_token(&request.headers, "connection", "keep-alive"));
    let mut headers = reply.headers.clone();
    if client_close {
        headers.push(("connection".into(), "close".into()));
    }

    let mut body = BodyRecorder::new(framing);
    if let ReplyKind::Echo = reply.kind {
        thread::sleep(reply.delay);
        let mut echo = Echo::new(out, framing, reply.status, &headers)?;
        wire.read_body(framing, &mut |piece| {
            body.take(&piece);
            echo.take(&piece)
        })?;
        body.finish(&mut request);
        shared.update(|s| {
            s.conns[id].record.requests += 1;
            s.requests.push(request);
        });
        return Ok(if client_close || reply.close {
            Next::Close
        } else {
            Next::KeepAlive
        });
    }
    wire.read_body(framing, &mut |piece| {
        body.take(&piece);
        Ok(())
    })?;
    body.finish(&mut request);
    let head_request = request.method == "HEAD";
    shared.update(|s| {
        s.conns[id].record.requests += 1;
        s.requests.push(request);
    });

    thread::sleep(reply.delay);
    let next = write_reply(out, &reply, headers, head_request)?;
    Ok(match next {
        Next::KeepAlive if client_close || reply.close => Next::Close,
        next => next,
    })
}

fn parse_request_head(raw_head: Vec<u8>, conn: usize, index: usize) -> Result<Recorded, WireError> {
    let (line, field_lines) = split_head(&raw_head)?;
    let line = String::from_utf8(line)
        .map_err(|_| WireError::Invalid("request line is not UTF-8".into()))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(WireError::Invalid(format!("bad request line {line:?}")));
    };
    if method.is_empty() || !method.bytes().all(crate::http_wire::is_token) {
        return Err(WireError::Invalid(format!("bad method in {line:?}")));
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(WireError::Invalid(format!("bad target in {line:?}")));
    }
    if *version != "HTTP/1.1" && *version != "HTTP/1.0" {
        return Err(WireError::Invalid(format!("bad version in {line:?}")));
    }
    let headers = field_lines
        .iter()
        .map(|l| parse_field(l))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Recorded {
        conn,
        index_on_conn: index,
        method: (*method).to_owned(),
        target: (*target).to_owned(),
        version: (*version).to_owned(),
        headers,
        body: Vec::new(),
        body_len: 0,
        body_digest: Digest(Sha256::digest(b"").into()),
        chunks: None,
        trailers: Vec::new(),
        raw_head,
    })
}

/// Keeps what a request body was: its first MiB, length, digest, chunks
/// and trailers.
struct BodyRecorder {
    hasher: Sha256,
    kept: Vec<u8>,
    len: u64,
    chunks: Option<Vec<u64>>,
    trailers: Vec<(String, String)>,
}

impl BodyRecorder {
    fn new(framing: Framing) -> Self {
        Self {
            hasher: Sha256::new(),
            kept: Vec::new(),
            len: 0,
            chunks: (framing == Framing::Chunked).then(Vec::new),
            trailers: Vec::new(),
        }
    }

    fn take(&mut self, piece: &Piece<'_>) {
        match piece {
            Piece::ChunkStart(size) => {
                if let Some(chunks) = &mut self.chunks {
                    chunks.push(*size);
                }
            }
            Piece::Data(bytes) => {
                self.hasher.update(bytes);
                self.len += bytes.len() as u64;
                let room = BODY_KEEP.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Piece::End(trailers) => self.trailers = trailers.to_vec(),
        }
    }

    fn finish(self, request: &mut Recorded) {
        request.body = self.kept;
        request.body_len = self.len;
        request.body_digest = Digest(self.hasher.finalize().into());
        request.chunks = self.chunks;
        request.trailers = self.trailers;
    }
}

/// Streams a request body back as the response body, in the request's
/// framing.
struct Echo<'a> {
    out: &'a TcpStream,
    chunked: bool,
    chunk_left: u64,
}

impl<'a> Echo<'a> {
    fn new(
        mut out: &'a TcpStream,
        framing: Framing,
        status: u16,
        headers: &[(String, String)],
    ) -> io::Result<Self> {
        let framing_field = match framing {
            Framing::Chunked => ("transfer-encoding", "chunked".to_owned()),
            Framing::Length(len) => ("content-length", len.to_string()),
            Framing::None | Framing::Close => ("content-length", "0".to_owned()),
        };
        let mut head = status_line(status);
        push_fields(&mut head, headers);
        push_fields(&mut head, &[(framing_field.0.to_owned(), framing_field.1)]);
        head.extend_from_slice(b"\r\n");
        out.write_all(&head)?;
        Ok(Self {
            out,
            chunked: framing == Framing::Chunked,
            chunk_left: 0,
        })
    }

    fn take(&mut self, piece: &Piece<'_>) -> io::Result<()> {
        match piece {
            Piece::ChunkStart(size) => {
                self.chunk_left = *size;
                self.out.write_all(format!("{size:x}\r\n").as_bytes())
            }
            Piece::Data(bytes) => {
                self.out.write_all(bytes)?;
                if self.chunked {
                    self.chunk_left -= bytes.len() as u64;
                    if self.chunk_left == 0 {
                        self.out.write_all(b"\r\n")?;
                    }
                }
                Ok(())
            }
            Piece::End(trailers) if self.chunked => {
                let mut end = b"0\r\n".to_vec();
                push_fields(&mut end, trailers);
                end.extend_from_slice(b"\r\n");
                self.out.write_all(&end)
            }
            Piece::End(_) => Ok(()),
        }
    }
}

fn write_reply(
    mut out: &TcpStream,
    reply: &Reply,
    mut headers: Vec<(String, String)>,
    head_request: bool,
) -> io::Result<Next> {
    let mut bytes = Vec::new();
    let mut next = Next::KeepAlive;
    match &reply.kind {
        ReplyKind::Length(body) => {
            headers.push(("content-length".into(), body.len().to_string()));
            head(&mut bytes, reply.status, &headers);
            if !head_request {
                bytes.extend_from_slice(body);
            }
        }
        ReplyKind::Chunked { chunks, trailers } => {
            headers.push(("transfer-encoding".into(), "chunked".into()));
            head(&mut bytes, reply.status, &headers);
            if !head_request {
                for chunk in chunks {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n");
                push_fields(&mut bytes, trailers);
                bytes.extend_from_slice(b"\r\n");
            }
        }
        ReplyKind::CloseDelimited(body) => {
            head(&mut bytes, reply.status, &headers);
            bytes.extend_from_slice(body);
            next = Next::Close;
        }
        ReplyKind::NoBody => head(&mut bytes, reply.status, &headers),
        ReplyKind::Echo => unreachable!("echo replies are streamed by serve_one"),
        ReplyKind::Raw(raw) => {
            bytes.extend_from_slice(raw);
            next = Next::Close;
        }
        ReplyKind::Reset => return Ok(Next::Reset),
        ReplyKind::Close => return Ok(Next::Close),
        ReplyKind::PartialThenReset {
            framing,
            sent,
            gate,
        } => {
            match framing {
                Framing::Length(len) => headers.push(("content-length".into(), len.to_string())),
                _ => headers.push(("transfer-encoding".into(), "chunked".into())),
            }
            head(&mut bytes, reply.status, &headers);
            bytes.extend_from_slice(sent);
            out.write_all(&bytes)?;
            out.flush()?;
            if let Some(gate) = gate {
                // Whether or not the test opened it in time, reset now; a
                // test that forgot to open it fails on its own assertions.
                let _ = gate.wait(GATE_TIMEOUT);
            }
            return Ok(Next::Reset);
        }
    }
    out.write_all(&bytes)?;
    Ok(next)
}

fn head(bytes: &mut Vec<u8>, status: u16, headers: &[(String, String)]) {
    bytes.extend_from_slice(&status_line(status));
    push_fields(bytes, headers);
    bytes.extend_from_slice(b"\r\n");
}

fn status_line(status: u16) -> Vec<u8> {
    let reason = match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    };
    format!("HTTP/1.1 {status} {reason}\r\n").into_bytes()
}

fn push_fields(bytes: &mut Vec<u8>, fields: &[(String, String)]) {
    for (name, value) in fields {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_client::{HttpConn, Req};

    const SOON: Duration = Duration::from_secs(10);

    #[test]
    fn records_requests_on_one_kept_alive_connection() {
        let origin = HttpOrigin::start(|r| Reply::ok(format!("you asked {}", r.target).as_bytes()));
        let mut conn = HttpConn::open(origin.addr());
        for i in 0..3 {
            let response = conn.exchange(&Req::get(&format!("/n/{i}")).header("X-A", "b"));
            assert_eq!(response.status, 200);
            assert_eq!(response.body_text(), format!("you asked /n/{i}"));
        }
        let got = origin.requests();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.conn == 0));
        assert_eq!(got[2].index_on_conn, 2);
        assert_eq!(got[1].header("x-a"), Some("b"));
        assert_eq!(
            got[1].headers[0],
            ("Host".to_owned(), "example.test".to_owned())
        );
        assert!(origin.raw(0).starts_with(b"GET /n/0 HTTP/1.1\r\n"));
        assert_eq!(origin.connections().len(), 1);
        drop(conn);
        assert_eq!(origin.wait_ended(0, SOON), ConnEnd::PeerClosed);
    }

    #[test]
    fn echoes_length_and_chunked_bodies_with_trailers() {
        let origin = HttpOrigin::echo();
        let mut conn = HttpConn::open(origin.addr());
        let response = conn.exchange(&Req::post("/e").body(b"hello world"));
        assert_eq!(response.header("content-length"), Some("11"));
        assert_eq!(response.body, b"hello world");
        let response = conn.exchange(
            &Req::post("/c")
                .chunked(&[b"abc", b"defgh"])
                .trailer("X-Sum", "8"),
        );
        assert_eq!(response.body, b"abcdefgh");
        assert_eq!(response.chunks, Some(vec![3, 5]));
        assert_eq!(response.trailers, vec![("X-Sum".into(), "8".into())]);
        let got = origin.wait_requests(2, SOON);
        assert_eq!(got[1].chunks, Some(vec![3, 5]));
        assert_eq!(got[1].trailers, vec![("X-Sum".into(), "8".into())]);
        assert_eq!(got[0].body, b"hello world");
    }

    #[test]
    fn answers_100_continue_before_reading_the_body() {
        let origin = HttpOrigin::echo();
        let mut conn = HttpConn::open(origin.addr());
        conn.send_raw(
            b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        );
        let interim = conn.read_head_only();
        assert_eq!(interim.status, 100);
        conn.send_raw(b"ok");
        let response = conn.read();
        assert_eq!(response.body, b"ok");
    }

    #[test]
    fn heads_no_bodies_and_close_delimited_replies() {
        let origin = HttpOrigin::start(|r| match r.path() {
            "/204" => Reply::no_body(204),
            "/close" => Reply::close_delimited(200, b"until the end"),
            _ => Reply::ok(b"twelve bytes"),
        });
        let mut conn = HttpConn::open(origin.addr());
        let head = conn.exchange(&Req::new("HEAD", "/"));
        assert_eq!(head.header("content-length"), Some("12"));
        assert!(head.body.is_empty());
        assert_eq!(conn.exchange(&Req::get("/204")).status, 204);
        let last = conn.exchange(&Req::get("/close"));
        assert_eq!(last.body, b"until the end");
        assert_eq!(last.framing, Framing::Close);
        assert_eq!(origin.wait_ended(0, SOON), ConnEnd::ClosedByOrigin);
    }

    #[test]
    fn resets_and_partial_replies() {
        let gate = Gate::new();
        let held = gate.clone();
        let origin = HttpOrigin::start(move |r| match r.path() {
            "/reset" => Reply::reset(),
            _ => Reply::partial_with_length(100, b"0123456789", Some(held.clone())),
        });
        let mut conn = HttpConn::open(origin.addr());
        conn.send(&Req::get("/reset"));
        assert!(conn.try_read(false).is_err());
        assert_eq!(origin.wait_ended(0, SOON), ConnEnd::ResetByOrigin);

        let mut conn = HttpConn::open(origin.addr());
        conn.send(&Req::get("/partial"));
        let head = conn.read_head_only();
        assert_eq!(head.header("content-length"), Some("100"));
        gate.open();
        let (rest, _) = conn.read_until_closed();
        assert_eq!(rest, b"0123456789");
    }

    #[test]
    fn serves_a_plain_std_client_pipelining_two_requests() {
        let origin = HttpOrigin::start(|r| Reply::ok(r.target.as_bytes()));
        let mut stream = crate::net::client(origin.addr());
        stream
            .write_all(
                b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n\
                  GET /two HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            )
            .expect("sending");
        let mut got = String::new();
        std::io::Read::read_to_string(&mut stream, &mut got).expect("reading to the close");
        assert_eq!(
            got,
            "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n/one\
             HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 4\r\n\r\n/two"
        );
        assert_eq!(origin.wait_ended(0, SOON), ConnEnd::ClosedByOrigin);
    }

    #[test]
    fn streams_an_echo_without_holding_the_body() {
        let len = 16 * 1024 * 1024;
        let origin = HttpOrigin::echo();
        let mut conn = HttpConn::open(origin.addr());
        conn.send_raw(
            format!("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
        );
        let mut writer = conn.stream().try_clone().expect("cloning the socket");
        let sender = thread::spawn(move || crate::data::write_stream(&mut writer, len, |_| {}));
        let head = conn.read_head_only();
        assert_eq!(
            head.header("content-length"),
            Some(len.to_string().as_str())
        );
        let echoed = crate::data::read_hashed(conn.wire(), len).expect("reading the echo");
        let sent = sender.join().expect("the sender").expect("sending");
        assert_eq!(echoed, sent);
        let got = origin.wait_requests(1, SOON);
        assert_eq!(
            (got[0].body_len, got[0].body_digest),
            (sent.bytes, sent.digest)
        );
        assert_eq!(got[0].body.len(), BODY_KEEP);
    }

    #[test]
    fn refuses_ambiguous_framing_and_keeps_the_raw_bytes() {
        let origin = HttpOrigin::ok("x");
        let mut conn = HttpConn::open(origin.addr());
        conn.send_raw(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        assert!(matches!(origin.wait_ended(0, SOON), ConnEnd::Invalid(_)));
        assert!(origin.requests().is_empty());
        assert!(origin.raw_contains(b"Content-Length: 3"));
    }
}
