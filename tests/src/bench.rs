//! The load generator under test: run `ringway-bench load` and read its
//! JSON, and the servers it loads.
//!
//! [`load`] runs the generator to its end; [`Load`] starts it and lets the
//! test signal it first. [`CountingServer`] is an HTTP/1.1 server built for
//! thousands of requests: it keeps counts (connections, requests, bytes,
//! distinct request heads, body lengths), not the requests themselves, and
//! answers every request alike ([`Answer`]), optionally holding every answer
//! during a time window ([`Stall`]). [`Sink`] reads TCP streams to their end
//! and counts their bytes.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use socket2::{Domain, Socket, Type};

/// Longest run of the generator the harness waits for: the tests' runs last
/// a few seconds; a debug build on two busy cores gets far more.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Accept backlog: a new-connection run opens hundreds of connections a
/// second, and the acceptor thread may be slow to get a core.
const BACKLOG: i32 = 1024;
/// How long a server connection waits on one read before it gives up: only
/// reached when a test went wrong, so that no thread lingers for ever.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of every response body [`CountingServer`] sends.
pub const BODY_LEN: usize = 100;
/// Body bytes a [`Answer::CutShort`] response sends of the [`BODY_LEN`] it
/// announces.
const CUT_AT: usize = 10;
/// Longest request head the server reads; the generator's are far shorter.
const MAX_HEAD: usize = 64 * 1024;

/// Runs of the generator in one test process take turns: the machine may
/// have two cores, a closed loop takes both, and runs that overlapped would
/// measure each other.
static TURN: Mutex<()> = Mutex::new(());

/// Waits for this test's turn to load; the turn lasts as long as the guard.
pub fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Path of the `ringway-bench` binary built beside this test executable.
pub fn binary() -> PathBuf {
    crate::proxy::sibling_binary("ringway-bench")
}

/// Runs `ringway-bench load --target TARGET ARGS --json --progress never`
/// to its end; panics if it runs longer than [`RUN_TIMEOUT`].
pub fn load(target: SocketAddr, args: &[&str]) -> LoadRun {
    Load::spawn(target, args).finish(RUN_TIMEOUT)
}

/// A running `ringway-bench load`; killed if dropped before it finished.
#[derive(Debug)]
pub struct Load {
    child: Child,
    args: Vec<String>,
    /// Each pipe's whole content, sent when the pipe closes.
    pipes: Receiver<(Pipe, Vec<u8>)>,
}

/// One of the child's output pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    Stdout,
    Stderr,
}

impl Load {
    /// Starts `ringway-bench load --target TARGET ARGS --json`, with
    /// `--progress never` unless ARGS says otherwise.
    pub fn spawn(target: SocketAddr, args: &[&str]) -> Self {
        let mut all = vec![
            "load".to_string(),
            "--target".to_string(),
            target.to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all.push("--json".to_string());
        if !args.contains(&"--progress") {
            all.extend(["--progress", "never"].map(String::from));
        }
        let mut child = Command::new(binary())
            .args(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ringway-bench {all:?}: {e}"));
        let (tx, pipes) = mpsc::channel();
        let stdout = child
            .stdout
            .take()
            .unwrap_or_else(|| panic!("the child's stdout was not piped"));
        let stderr = child
            .stderr
            .take()
            .unwrap_or_else(|| panic!("the child's stderr was not piped"));
        read_in_background(Pipe::Stdout, stdout, tx.clone());
        read_in_background(Pipe::Stderr, stderr, tx);
        Self {
            child,
            args: all,
            pipes,
        }
    }

    /// Sends `signal` to the generator.
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id())
            .unwrap_or_else(|_| panic!("pid {} out of range", self.child.id()));
        kill(Pid::from_raw(pid), signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to ringway-bench: {e}"));
    }

    /// Waits for the generator to exit (both its pipes closed) and returns
    /// what it printed; kills it and panics after `timeout`.
    pub fn finish(mut self, timeout: Duration) -> LoadRun {
        let deadline = Instant::now() + timeout;
        let mut stdout = None;
        let mut stderr = None;
        while stdout.is_none() || stderr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.pipes.recv_timeout(left) {
                Ok((Pipe::Stdout, bytes)) => stdout = Some(bytes),
                Ok((Pipe::Stderr, bytes)) => stderr = Some(bytes),
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    // The pipes close with the process: what it printed
                    // so far comes now.
                    let late: Vec<_> = self.pipes.iter().collect();
                    let err = late
                        .into_iter()
                        .find(|(k, _)| *k == Pipe::Stderr)
                        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
                        .or(stderr.map(|b| String::from_utf8_lossy(&b).into_owned()));
                    panic!(
                        "ringway-bench {:?} still running after {timeout:?}; stderr:\n{}",
                        self.args,
                        err.unwrap_or_default()
                    );
                }
            }
        }
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("cannot wait for ringway-bench: {e}"));
        let stdout = String::from_utf8_lossy(&stdout.unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&stderr.unwrap_or_default()).into_owned();
        LoadRun {
            args: self.args.clone(),
            code: status.code(),
            json: serde_json::from_str(&stdout).ok(),
            stdout,
            stderr,
        }
    }
}

/// Reads `pipe` to its end on a thread of its own, then sends its content.
fn read_in_background(
    kind: Pipe,
    mut pipe: impl Read + Send + 'static,
    done: mpsc::Sender<(Pipe, Vec<u8>)>,
) {
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        let _ = done.send((kind, out));
    });
}

impl Drop for Load {
    fn drop(&mut self) {
        // Only a test that panicked leaves a generator running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished `ringway-bench load` printed.
#[derive(Debug)]
pub struct LoadRun {
    /// The arguments it ran with.
    pub args: Vec<String>,
    /// Its exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Its stdout parsed as JSON, if it was JSON.
    pub json: Option<Value>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr (the human summary, or why it refused the options).
    pub stderr: String,
}

impl LoadRun {
    /// The JSON document; panics, showing stderr, when there is none.
    pub fn doc(&self) -> &Value {
        self.json.as_ref().unwrap_or_else(|| {
            panic!(
                "ringway-bench {:?} printed no JSON document (exit {:?}); stdout:\n{}\nstderr:\n{}",
                self.args, self.code, self.stdout, self.stderr
            )
        })
    }

    /// The field at JSON pointer `ptr` (`/requests/ok`); panics when absent.
    pub fn field(&self, ptr: &str) -> &Value {
        self.doc()
            .pointer(ptr)
            .unwrap_or_else(|| panic!("no {ptr} in the JSON document:\n{}", self.doc()))
    }

    /// The unsigned integer at `ptr`; panics when absent or of another type.
    pub fn count(&self, ptr: &str) -> u64 {
        self.field(ptr)
            .as_u64()
            .unwrap_or_else(|| panic!("{ptr} is not an unsigned integer in:\n{}", self.doc()))
    }

    /// The number at `ptr`; panics when absent or not a number.
    pub fn number(&self, ptr: &str) -> f64 {
        self.field(ptr)
            .as_f64()
            .unwrap_or_else(|| panic!("{ptr} is not a number in:\n{}", self.doc()))
    }

    /// The latency spectrum as (quantile, µs) pairs.
    pub fn spectrum(&self) -> Vec<(f64, u64)> {
        let points = self
            .field("/spectrum")
            .as_array()
            .unwrap_or_else(|| panic!("/spectrum is not an array in:\n{}", self.doc()));
        points
            .iter()
            .map(|p| {
                let q = p.get("quantile").and_then(Value::as_f64);
                let us = p.get("latency_us").and_then(Value::as_u64);
                match (q, us) {
                    (Some(q), Some(us)) => (q, us),
                    _ => panic!("spectrum point {p} is not {{quantile, latency_us}}"),
                }
            })
            .collect()
    }

    /// The `first_errors` strings.
    pub fn first_errors(&self) -> Vec<String> {
        strings(self.field("/first_errors"))
    }

    /// The `fatal` strings.
    pub fn fatal(&self) -> Vec<String> {
        strings(self.field("/fatal"))
    }

    /// Panics, showing the summary, unless the generator exited with `code`.
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "ringway-bench {:?}: unexpected exit; stderr:\n{}",
            self.args,
            self.stderr
        );
    }
}

fn strings(v: &Value) -> Vec<String> {
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"));
    items
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{s} is not a string"))
                .to_owned()
        })
        .collect()
}

/// A value behind a lock that threads change and tests wait on.
#[derive(Debug, Default)]
struct Watched<T> {
    value: Mutex<T>,
    changed: Condvar,
}

impl<T: Clone> Watched<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        let r = change(&mut self.lock());
        self.changed.notify_all();
        r
    }

    /// Waits until `done` holds and returns a copy of the value; panics
    /// after `timeout`, naming `what` and showing the value.
    fn wait(&self, what: &str, timeout: Duration, done: impl Fn(&T) -> bool) -> T
    where
        T: std::fmt::Debug,
    {
        let deadline = Instant::now() + timeout;
        let mut value = self.lock();
        loop {
            if done(&value) {
                return value.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("{what}: not reached within {timeout:?}; last: {:?}", *value);
            }
            value = self
                .changed
                .wait_timeout(value, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// How [`CountingServer`] answers every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A whole response with this status and a [`BODY_LEN`]-byte body.
    Status(u16),
    /// The head and the first bytes of the announced body, then a close.
    CutShort,
    /// Nothing: the request is read and left unanswered.
    Never,
}

/// A window during which [`CountingServer`] holds every answer: an answer
/// due inside it goes out when it ends.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    /// Start of the window, after the first request the server received.
    pub after: Duration,
    /// Length of the window.
    pub length: Duration,
}

/// What a [`CountingServer`] saw.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Connections accepted.
    pub connections: u64,
    /// Connections that have ended (end of stream, error, or the server
    /// closed them).
    pub ended: u64,
    /// Complete requests (head and body).
    pub requests: u64,
    /// Bytes read, on every connection.
    pub bytes_in: u64,
    /// Bytes written, on every connection.
    pub bytes_out: u64,
    /// Each distinct request head, with how many requests had it.
    pub heads: BTreeMap<String, u64>,
    /// Each request body length, with how many requests had it.
    pub body_lens: BTreeMap<u64, u64>,
    /// Bytes that did not frame as an HTTP/1.1 request.
    pub malformed: u64,
    /// Requests whose answer the stall held back.
    pub held: u64,
    /// The longest a held request waited at the server, from its arrival to
    /// the end of the stall: a lower bound of its latency at the client.
    pub longest_hold: Duration,
}

/// A thread-per-connection HTTP/1.1 server that counts what it sees and
/// answers every request alike; stops accepting when dropped.
#[derive(Debug)]
pub struct CountingServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _acceptor: Acceptor,
}

#[derive(Debug)]
struct Shared {
    answer: Answer,
    stall: Option<Stall>,
    tally: Watched<Tally>,
    first_request: OnceLock<Instant>,
}

impl CountingServer {
    /// A server that answers every request with `answer`.
    pub fn start(answer: Answer) -> Self {
        Self::launch(answer, None)
    }

    /// A server that answers 200, except that it holds every answer due
    /// during `stall` until the stall ends.
    pub fn stalling(stall: Stall) -> Self {
        Self::launch(Answer::Status(200), Some(stall))
    }

    fn launch(answer: Answer, stall: Option<Stall>) -> Self {
        let shared = Arc::new(Shared {
            answer,
            stall,
            tally: Watched::default(),
            first_request: OnceLock::new(),
        });
        let state = Arc::clone(&shared);
        let acceptor = Acceptor::start("counting", move |stream| {
            state.tally.update(|t| t.connections += 1);
            let conn = Arc::clone(&state);
            let spawned = thread::Builder::new()
                .name("counting-conn".into())
                .spawn(move || serve(stream, &conn));
            if spawned.is_err() {
                // Dropping the stream closed it; count it ended so that
                // waits for the end of every connection end.
                state.tally.update(|t| t.ended += 1);
            }
        });
        Self {
            addr: acceptor.addr,
            shared,
            _acceptor: acceptor,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it saw so far.
    pub fn tally(&self) -> Tally {
        self.shared.tally.lock().clone()
    }

    /// Waits until it has received `n` requests; panics after `timeout`.
    pub fn wait_requests(&self, n: u64, timeout: Duration) -> Tally {
        self.shared.tally.wait(
            &format!("counting server {}: {n} requests", self.addr),
            timeout,
            |t| t.requests >= n,
        )
    }

    /// Waits until it has accepted at least `n` connections and every one
    /// of them has ended, and returns the tally; panics after `timeout`.
    pub fn wait_ended(&self, n: u64, timeout: Duration) -> Tally {
        self.shared.tally.wait(
            &format!("counting server {}: {n} connections, all ended", self.addr),
            timeout,
            |t| t.connections >= n && t.ended == t.connections,
        )
    }
}

/// The bytes of a [`CountingServer`] response with `status`, saying
/// `Connection: close` when `close`.
pub fn response(status: u16, close: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        503 => "Service Unavailable",
        _ => "Other",
    };
    let connection = if close { "Connection: close\r\n" } else { "" };
    let mut bytes =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {BODY_LEN}\r\n{connection}\r\n")
            .into_bytes();
    bytes.resize(bytes.len() + BODY_LEN, b'r');
    bytes
}

/// A loopback listener whose thread hands every accepted connection to a
/// handler, until dropped: the test servers' accept loop.
#[derive(Debug)]
struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Listens on a loopback port; `name` names the thread.
    fn start(name: &str, mut on_conn: impl FnMut(TcpStream) + Send + 'static) -> Self {
        let listener = listen();
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the {name} server has no address: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        on_conn(stream);
                    }
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the {name} server's thread: {e}"));
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the thread with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn listen() -> TcpListener {
    Socket::new(Domain::IPV4, Type::STREAM, None)
        .and_then(|s| {
            s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
            s.listen(BACKLOG)?;
            Ok(TcpListener::from(s))
        })
        .unwrap_or_else(|e| panic!("cannot listen on loopback: {e}"))
}

/// Serves one connection until the client closes it, or the server does.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    'conn: loop {
        loop {
            let request = match frame(&buf) {
                Ok(Some(r)) if buf.len() >= r.head_len + r.body_len => r,
                Ok(_) => break,
                Err(()) => {
                    shared.tally.update(|t| t.malformed += buf.len() as u64);
                    break 'conn;
                }
            };
            let head = String::from_utf8_lossy(&buf[..request.head_len]).into_owned();
            buf.drain(..request.head_len + request.body_len);
            let arrived = Instant::now();
            shared.first_request.get_or_init(|| arrived);
            shared.tally.update(|t| {
                t.requests += 1;
                *t.heads.entry(head).or_default() += 1;
                *t.body_lens.entry(request.body_len as u64).or_default() += 1;
            });
            shared.hold(arrived);
            let (bytes, close) = match shared.answer {
                Answer::Status(status) => (response(status, request.close), request.close),
                Answer::CutShort => {
                    let mut whole = response(200, false);
                    whole.truncate(whole.len() - (BODY_LEN - CUT_AT));
                    (whole, true)
                }
                Answer::Never => (Vec::new(), false),
            };
            if !bytes.is_empty() {
                if stream.write_all(&bytes).is_err() {
                    break 'conn;
                }
                shared.tally.update(|t| t.bytes_out += bytes.len() as u64);
            }
            if close {
                break 'conn;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                shared.tally.update(|t| t.bytes_in += n as u64);
            }
        }
    }
    drop(stream);
    shared.tally.update(|t| t.ended += 1);
}

impl Shared {
    /// Holds the calling connection until the stall's end when the stall
    /// is on now.
    fn hold(&self, arrived: Instant) {
        let (Some(stall), Some(&first)) = (self.stall, self.first_request.get()) else {
            return;
        };
        let start = first + stall.after;
        let end = start + stall.length;
        let now = Instant::now();
        if now < start || now >= end {
            return;
        }
        self.tally.update(|t| {
            t.held += 1;
            t.longest_hold = t.longest_hold.max(end - arrived);
        });
        // The stall is the scenario itself: the answer is due at its end.
        thread::sleep(end - now);
    }
}

/// Where a request ends in the buffer and what it asks of the connection.
#[derive(Debug, Clone, Copy)]
struct Framed {
    head_len: usize,
    body_len: usize,
    close: bool,
}

/// Frames the request at the start of `buf`: `Ok(None)` while its head is
/// incomplete, `Err` when it is not an HTTP/1.1 request with a plain
/// `Content-Length` body (or none).
fn frame(buf: &[u8]) -> Result<Option<Framed>, ()> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(())
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ())?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(())?;
    let parts: Vec<&str> = request_line.split(' ').collect();
    if parts.len() != 3 || parts[2] != "HTTP/1.1" || !parts[1].starts_with('/') {
        return Err(());
    }
    let mut body_len = 0;
    let mut close = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(())?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value.parse().map_err(|_| ())?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(());
        } else if name.eq_ignore_ascii_case("connection") {
            close = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    Ok(Some(Framed {
        head_len: end + 4,
        body_len,
        close,
    }))
}

/// How one stream into a [`Sink`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    /// Bytes read.
    pub bytes: u64,
    /// `None` at an orderly end of stream, or the error that ended it.
    pub error: Option<String>,
}

/// A TCP server that reads every connection to its end and counts the
/// bytes; stops accepting when dropped.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<SinkShared>,
    _acceptor: Acceptor,
}

#[derive(Debug, Default)]
struct SinkShared {
    /// One entry per accepted connection: `None` until it ends.
    conns: Watched<Vec<Option<Drained>>>,
}

impl Sink {
    /// Starts a sink on a loopback port.
    pub fn start() -> Self {
        let shared = Arc::new(SinkShared::default());
        let state = Arc::clone(&shared);
        let acceptor = Acceptor::start("sink", move |stream| {
            let index = state.conns.update(|c| {
                c.push(None);
                c.len() - 1
            });
            let conn = Arc::clone(&state);
            thread::spawn(move || {
                let drained = drain(stream);
                conn.conns.update(|c| c[index] = Some(drained));
            });
        });
        Self {
            addr: acceptor.addr,
            shared,
            _acceptor: acceptor,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until it has accepted at least `n` connections and every one
    /// of them has ended, and returns how each did; panics after `timeout`.
    pub fn wait_ended(&self, n: usize, timeout: Duration) -> Vec<Drained> {
        let conns = self.shared.conns.wait(
            &format!("sink {}: {n} connections, all ended", self.addr),
            timeout,
            |c| c.len() >= n && c.iter().all(Option::is_some),
        );
        conns.into_iter().flatten().collect()
    }
}

/// Reads `stream` to its end.
fn drain(mut stream: TcpStream) -> Drained {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Drained { bytes, error: None },
            Ok(n) => bytes += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Drained {
                    bytes,
                    error: Some(e.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_requests() {
        let get = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET";
        let f = frame(get).expect("valid").expect("complete");
        assert_eq!((f.head_len, f.body_len, f.close), (28, 0, false));
        let post = b"POST / HTTP/1.1\r\ncontent-length: 3\r\nConnection: close\r\n\r\nxxx";
        let f = frame(post).expect("valid").expect("complete");
        assert_eq!((f.body_len, f.close), (3, true));
        assert!(frame(b"GET / HTTP/1.1\r\nHost").expect("valid").is_none());
        assert!(frame(b"hello\r\n\r\n").is_err());
        assert!(frame(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn responses_carry_their_announced_body() {
        let r = response(200, true);
        let text = String::from_utf8_lossy(&r);
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        assert!(head.contains(&format!("Content-Length: {BODY_LEN}")));
        assert!(head.contains("Connection: close"));
        assert_eq!(body.len(), BODY_LEN);
    }
}
