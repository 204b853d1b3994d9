//! The counting origin: the server tests and benches put behind a proxy
//! when what matters is how much it served, not what each request said.
//!
//! Fast and predictable, so that its share of a core stays small and flat:
//! one tokio-uring thread per entry of `cores` (pinned), each with its own
//! `SO_REUSEPORT` listener on the same port. In [`Mode::Http`] it answers
//! every HTTP/1.1 request alike ([`Answer`]: keep-alive, pipelined requests
//! answered in order, `Content-Length` bodies read and dropped,
//! `Connection: close` and HTTP/1.0 honoured); in [`Mode::Sink`] it reads
//! TCP streams to their end; in [`Mode::Echo`] it sends back every byte it
//! reads. It counts connections (accepted, ended, failed), requests and
//! bytes each way, readable while it runs ([`CountingOrigin::served`]).
//!
//! For tests of a client (the load generator), an HTTP origin can also
//! misbehave in the plainest ways — cut every answer short, never answer,
//! hold every answer due during a time window ([`Stall`]) — and record
//! each distinct request head and body length it saw
//! ([`Settings::recording`]). An origin scripted request by request, with
//! faults of HTTP framing, is the tests' own (`ringway_tests::http_origin`):
//! a different tool, which records every request whole.
//!
//! For benches of resilience, an HTTP origin can follow a fault schedule
//! ([`Faults`]): windows of time during which it answers late, or answers a
//! share of the requests with a `503`, counted apart ([`Served::faulted`]).
//! Requests for a health-check path ([`Settings::checked_at`]) are counted
//! apart too ([`Served::checks`]), so that a proxy's own checks do not pass
//! for its clients' traffic.
//!
//! In a test: `CountingOrigin::start(Settings::http(100), &[])` binds a
//! loopback port itself (nobody can take it in between) and
//! [`CountingOrigin::addr`] says which. `ringway-bench origin` runs the same
//! server in a process of its own through [`bind`] and [`run`].

mod faults;
mod serve;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

pub use self::faults::{Draws, Effect, Faults, Phase};
use crate::wait::poll;

/// Pending connections per listener: the memory run connects thousands in
/// a burst.
const BACKLOG: i32 = 4096;

/// What the origin does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers every HTTP/1.1 request as [`Settings::answer`] says.
    Http,
    /// Reads and counts until the peer closes.
    Sink,
    /// Sends back what it reads, until the peer closes.
    Echo,
}

/// How the origin answers every HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// These bytes, a whole response formatted once (see [`response`]).
    Whole(&'static [u8]),
    /// These bytes, then a close: a response cut short.
    Cut(&'static [u8]),
    /// Nothing: requests are read and counted, never answered.
    Never,
}

/// A window during which the origin holds every answer: an answer due
/// inside it goes out when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// Start of the window, after the first request the origin received.
    pub after: Duration,
    /// Length of the window.
    pub length: Duration,
}

/// What the origin serves.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// What it does with a connection.
    pub mode: Mode,
    /// How it answers HTTP requests; unused by the TCP modes.
    pub answer: Answer,
    /// A window during which answers are held.
    pub stall: Option<Stall>,
    /// Whether it keeps each distinct request head and body length, with
    /// how many requests had it ([`Served::heads`], [`Served::body_lens`]).
    /// A lock per request: for tests, not for benches.
    pub record: bool,
    /// A fault schedule, followed once its clock starts.
    pub faults: Option<&'static Faults>,
    /// Requests for this path are health checks, counted apart.
    pub check_path: Option<&'static str>,
}

impl Settings {
    /// HTTP, answering `200` with `body` bytes to every request.
    pub fn http(body: usize) -> Self {
        Self::answering(Answer::Whole(response(body)))
    }

    /// HTTP, answering every request with `answer`.
    pub fn answering(answer: Answer) -> Self {
        Self {
            mode: Mode::Http,
            answer,
            stall: None,
            record: false,
            faults: None,
            check_path: None,
        }
    }

    /// A TCP sink.
    pub fn sink() -> Self {
        Self {
            mode: Mode::Sink,
            ..Self::answering(Answer::Never)
        }
    }

    /// A TCP echo.
    pub fn echo() -> Self {
        Self {
            mode: Mode::Echo,
            ..Self::answering(Answer::Never)
        }
    }

    /// Holds the answers due during `stall`.
    pub fn stalling(mut self, stall: Stall) -> Self {
        self.stall = Some(stall);
        self
    }

    /// Records request heads and body lengths.
    pub fn recording(mut self) -> Self {
        self.record = true;
        self
    }

    /// Follows `faults` once its clock starts.
    pub fn with_faults(mut self, faults: &'static Faults) -> Self {
        self.faults = Some(faults);
        self
    }

    /// Counts the requests for `path` as health checks.
    pub fn checked_at(mut self, path: &'static str) -> Self {
        self.check_path = Some(path);
        self
    }
}

/// What was served, all threads together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Served {
    /// Connections accepted.
    pub connections: u64,
    /// Connections that have ended (the peer closed, asked to close, sent
    /// something that is not HTTP/1.1, an error, or the origin cut an
    /// answer short).
    pub ended: u64,
    /// Connections that ended on a read or write error (a reset, say)
    /// rather than an orderly end.
    pub failed: u64,
    /// HTTP requests received whole (head and body).
    pub received: u64,
    /// HTTP requests answered (the answer goes out once the head is in,
    /// before the body), whole or cut short.
    pub requests: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
    /// Bytes that did not frame as an HTTP/1.x request (the origin closed
    /// those connections).
    pub malformed: u64,
    /// Requests whose answer a [`Stall`] held back.
    pub held: u64,
    /// The longest a held request waited at the origin, from its arrival
    /// to the end of the stall: a lower bound of its latency at the client.
    pub longest_hold: Duration,
    /// Answers the fault schedule made a `503` (counted in `requests`
    /// too).
    pub faulted: u64,
    /// Answers the fault schedule delayed.
    pub delayed: u64,
    /// Requests received for the health-check path (counted in `received`
    /// too).
    pub checks: u64,
    /// Each distinct request head (request line to empty line, as
    /// received), with how many requests had it; empty unless recording.
    pub heads: BTreeMap<String, u64>,
    /// Each request body length, with how many requests had it; empty
    /// unless recording.
    pub body_lens: BTreeMap<u64, u64>,
}

/// The byte every answer's body is made of.
pub const BODY_BYTE: u8 = b'o';

/// The answer to every request: a `200` with `body` bytes, formatted once
/// and kept for the life of the process, so each write lends the ring a
/// `'static` slice.
pub fn response(body: usize) -> &'static [u8] {
    response_with(200, body)
}

/// A response with `status` and `body` bytes of [`BODY_BYTE`], formatted
/// once and kept for the life of the process.
pub fn response_with(status: u16, body: usize) -> &'static [u8] {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    };
    let mut r = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: ringway-bench\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
    )
    .into_bytes();
    r.resize(r.len() + body, BODY_BYTE);
    r.leak()
}

/// `threads` listeners (at least one) on `addr`, all with `SO_REUSEPORT`:
/// with port 0, the first one picks the port and the others join it. Bind
/// them all before serving, so a busy port fails before anything runs.
pub fn bind(addr: SocketAddr, threads: usize) -> io::Result<Vec<TcpListener>> {
    let first = reuseport_listener(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads.max(1) {
        listeners.push(reuseport_listener(addr)?);
    }
    Ok(listeners)
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves on `listeners`, one thread each, pinned to `cores` in order (one
/// unpinned thread per listener past the end of `cores`), until `stop` is
/// set; returns what was served.
pub fn run(
    listeners: Vec<TcpListener>,
    settings: Settings,
    cores: &[usize],
    stop: Arc<AtomicBool>,
) -> io::Result<Served> {
    let shared = Arc::new(Shared::new(settings, listeners.len()));
    serve::run(listeners, &shared, cores, &stop)?;
    Ok(shared.served())
}

/// A counting origin running in this process; stops when dropped.
#[derive(Debug)]
pub struct CountingOrigin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    runner: Option<JoinHandle<io::Result<()>>>,
}

impl CountingOrigin {
    /// Starts on a loopback port the kernel picks, one thread per entry of
    /// `cores` (one unpinned thread when empty).
    pub fn start(settings: Settings, cores: &[usize]) -> io::Result<Self> {
        Self::on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), settings, cores)
    }

    /// Starts on `listen` (port 0: the kernel picks).
    pub fn on(listen: SocketAddr, settings: Settings, cores: &[usize]) -> io::Result<Self> {
        Self::serve(bind(listen, cores.len())?, settings, cores)
    }

    /// Serves on `listeners` (from [`bind`]), one thread each, pinned to
    /// `cores` in order.
    pub fn serve(
        listeners: Vec<TcpListener>,
        settings: Settings,
        cores: &[usize],
    ) -> io::Result<Self> {
        let addr = listeners
            .first()
            .ok_or_else(|| io::Error::other("an origin needs a listener"))?
            .local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::new(settings, listeners.len()));
        let runner = {
            let (stop, shared, cores) = (stop.clone(), shared.clone(), cores.to_vec());
            std::thread::Builder::new()
                .name(format!("origin-{}", addr.port()))
                .spawn(move || serve::run(listeners, &shared, &cores, &stop))?
        };
        Ok(Self {
            addr,
            stop,
            shared,
            runner: Some(runner),
        })
    }

    /// Starts one unpinned thread serving `settings` on a loopback port;
    /// panics if it cannot (the tests' shorthand).
    pub fn serving(settings: Settings) -> Self {
        Self::start(settings, &[]).unwrap_or_else(|e| panic!("cannot start an origin: {e}"))
    }

    /// A TCP echo on a loopback port ([`CountingOrigin::serving`]).
    pub fn echo() -> Self {
        Self::serving(Settings::echo())
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it still serves: `false` once a thread failed (it could not
    /// pin itself, say) and the others stopped with it; [`Self::stop`] then
    /// says why.
    pub fn running(&self) -> bool {
        self.runner.as_ref().is_some_and(|r| !r.is_finished())
    }

    /// Starts the fault schedule's clock (once: later calls change
    /// nothing).
    pub fn start_faults(&self) {
        self.shared.fault_clock.get_or_init(Instant::now);
    }

    /// What it served so far. Each figure is up to date on its own; read
    /// while connections are busy, they may be a request apart.
    pub fn served(&self) -> Served {
        self.shared.served()
    }

    /// Waits until what was served satisfies `done`, and returns it;
    /// panics after `timeout`, naming `what` and showing the last figures.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Served) -> bool,
    ) -> Served {
        let what = format!("origin {}: {what}", self.addr);
        poll(&what, timeout, || {
            let served = self.served();
            if done(&served) {
                Ok(served)
            } else {
                Err(format!("{served:?}"))
            }
        })
    }

    /// Waits until it has received `n` whole requests; panics after
    /// `timeout`.
    pub fn wait_received(&self, n: u64, timeout: Duration) -> Served {
        self.wait_until(&format!("{n} requests"), timeout, |s| s.received >= n)
    }

    /// Waits until it has accepted at least `n` connections and every one
    /// of them has ended; panics after `timeout`.
    pub fn wait_ended(&self, n: u64, timeout: Duration) -> Served {
        self.wait_until(&format!("{n} connections, all ended"), timeout, |s| {
            s.connections >= n && s.ended == s.connections
        })
    }

    /// Stops every thread and returns what was served; the `Err` says why a
    /// thread failed (it could not pin itself, say).
    pub fn stop(mut self) -> io::Result<Served> {
        self.halt()?;
        Ok(self.served())
    }

    fn halt(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.runner.take() {
            Some(runner) => runner
                .join()
                .map_err(|_| io::Error::other("the origin's thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for CountingOrigin {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// What the origin's threads share: the settings, each thread's counters,
/// and what recording and stalling keep.
#[derive(Debug)]
struct Shared {
    settings: Settings,
    counts: Vec<Counts>,
    /// When the first request arrived: a [`Stall`] counts from it.
    first_request: OnceLock<Instant>,
    /// When the fault schedule's clock started.
    fault_clock: OnceLock<Instant>,
    /// Heads and body lengths, when recording.
    records: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    heads: BTreeMap<String, u64>,
    body_lens: BTreeMap<u64, u64>,
}

impl Shared {
    fn new(settings: Settings, threads: usize) -> Self {
        Self {
            settings,
            counts: (0..threads).map(|_| Counts::default()).collect(),
            first_request: OnceLock::new(),
            fault_clock: OnceLock::new(),
            records: Mutex::default(),
        }
    }

    fn served(&self) -> Served {
        let mut sum = self.counts.iter().fold(Served::default(), |sum, c| {
            let c = c.read();
            Served {
                connections: sum.connections + c.connections,
                ended: sum.ended + c.ended,
                failed: sum.failed + c.failed,
                received: sum.received + c.received,
                requests: sum.requests + c.requests,
                bytes_received: sum.bytes_received + c.bytes_received,
                bytes_sent: sum.bytes_sent + c.bytes_sent,
                malformed: sum.malformed + c.malformed,
                held: sum.held + c.held,
                longest_hold: sum.longest_hold.max(c.longest_hold),
                faulted: sum.faulted + c.faulted,
                delayed: sum.delayed + c.delayed,
                checks: sum.checks + c.checks,
                ..Served::default()
            }
        });
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        sum.heads = records.heads.clone();
        sum.body_lens = records.body_lens.clone();
        sum
    }
}

/// One thread's counters. Only that thread writes them (a load and a store,
/// as cheap as a plain `Cell`); anyone may read them.
#[derive(Debug, Default)]
struct Counts {
    connections: AtomicU64,
    ended: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    requests: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    malformed: AtomicU64,
    held: AtomicU64,
    longest_hold_us: AtomicU64,
    faulted: AtomicU64,
    delayed: AtomicU64,
    checks: AtomicU64,
}

impl Counts {
    /// Adds `n` to `counter`: only the owning thread calls this. The
    /// release pairs with [`Counts::read`]'s acquire: a reader that sees a
    /// connection ended also sees it accepted.
    fn add(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Release);
    }

    /// Raises `counter` to `n`: only the owning thread calls this.
    fn raise(counter: &AtomicU64, n: u64) {
        if n > counter.load(Ordering::Relaxed) {
            counter.store(n, Ordering::Release);
        }
    }

    fn read(&self) -> Served {
        let get = |counter: &AtomicU64| counter.load(Ordering::Acquire);
        // Ended before accepted: a connection accepted after the first
        // read cannot make the two look equal.
        let ended = get(&self.ended);
        Served {
            ended,
            connections: get(&self.connections),
            failed: get(&self.failed),
            received: get(&self.received),
            requests: get(&self.requests),
            bytes_received: get(&self.bytes_received),
            bytes_sent: get(&self.bytes_sent),
            malformed: get(&self.malformed),
            held: get(&self.held),
            longest_hold: Duration::from_micros(get(&self.longest_hold_us)),
            faulted: get(&self.faulted),
            delayed: get(&self.delayed),
            checks: get(&self.checks),
            ..Served::default()
        }
    }
}
