//! Closed-loop HTTP/1.1 keep-alive load: N connections, each sending one
//! request, reading the whole response, and sending the next at once.
//!
//! It runs on a tokio current-thread runtime with one task per connection.
//! That is fast enough for what it measures: one wake-up of the runtime
//! serves every connection that has an answer ready (one `epoll_wait` for
//! many), and a request costs the generator a write and a read or two, a few
//! microseconds; one proxy worker spends more than that per request on its
//! two legs, so one core of generator outruns one core of proxy (measured on
//! the 2-vCPU bench machine: 6-7 µs of generator CPU per request, against
//! 13-18 µs for each proxy; see docs/benchmarks.md). One thread also keeps
//! the generator off the proxy's core and its cost easy to account for.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::load::response::{self as parse, FramingError};

/// Highest latency recorded, in µs; longer ones are recorded as this.
const MAX_LATENCY_US: u64 = 60_000_000;
/// Pause after a failed connection attempt, so that a dead target is not
/// hammered in a tight loop (the count of errors matters, not their rate).
const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// Free room kept in a connection's read buffer before each read; the
/// responses under test are a few hundred bytes.
const READ_ROOM: usize = 4096;

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to connect.
    pub target: SocketAddr,
    /// Connections, each with one request in flight.
    pub connections: usize,
    /// How long requests are counted.
    pub duration: Duration,
    /// The request bytes, sent as they are.
    pub request: Vec<u8>,
    /// Longest wait for a connection or a whole response.
    pub timeout: Duration,
}

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be made.
    Connect,
    /// The connection broke (reset, broken pipe, other I/O error).
    Io,
    /// The server closed the connection before the whole response came.
    Eof,
    /// The response could not be framed (see [`FramingError`]).
    Framing,
    /// A status other than 200.
    Status,
    /// Bytes beyond the end of the response (nothing was pipelined).
    Extra,
    /// No whole response within the timeout.
    Timeout,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Io,
        ErrorKind::Eof,
        ErrorKind::Framing,
        ErrorKind::Status,
        ErrorKind::Extra,
        ErrorKind::Timeout,
    ];

    /// The kind's name in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Io => "io",
            ErrorKind::Eof => "eof",
            ErrorKind::Framing => "framing",
            ErrorKind::Status => "status",
            ErrorKind::Extra => "extra_bytes",
            ErrorKind::Timeout => "timeout",
        }
    }
}

/// What the connections saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Requests answered with a well-framed 200 within the run.
    pub requests: u64,
    /// Requests in flight when the run ended, completed afterwards and not
    /// counted in `requests` or the latency (the server saw them, though).
    pub drained: u64,
    /// Failed requests, indexed like [`ErrorKind::ALL`].
    pub errors: [u64; 7],
    /// Connections made again after the server closed one or an error.
    pub reconnects: u64,
    /// Latency of each counted request, write to last byte, in µs.
    pub latency: Histogram<u64>,
    /// From the start of the run (all connections open) to its end.
    pub elapsed: Duration,
    /// The first error of each kind met, for the operator.
    pub first_errors: Vec<String>,
}

impl Outcome {
    fn new() -> Self {
        Self {
            requests: 0,
            drained: 0,
            errors: [0; 7],
            reconnects: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant histogram bounds are valid"),
            elapsed: Duration::ZERO,
            first_errors: Vec::new(),
        }
    }

    /// All failed requests.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    fn fail(&mut self, kind: ErrorKind, detail: impl FnOnce() -> String) {
        let i = kind as usize;
        if self.errors[i] == 0 {
            self.first_errors
                .push(format!("{}: {}", kind.name(), detail()));
        }
        self.errors[i] += 1;
    }

    fn add(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.drained += other.drained;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        self.reconnects += other.reconnects;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for e in other.first_errors {
            if !self.first_errors.contains(&e) {
                self.first_errors.push(e);
            }
        }
    }
}

/// Runs the load on the calling thread (pin it first) and returns what the
/// connections saw. Fails only when the runtime cannot be built or not one
/// connection can be opened.
pub fn run(settings: &Settings) -> io::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(Arc::new(settings.clone())))
}

async fn run_async(settings: Arc<Settings>) -> io::Result<Outcome> {
    // Open every connection before the clock starts, so the run measures
    // requests on warm connections, not the handshakes.
    let mut streams = Vec::with_capacity(settings.connections);
    for _ in 0..settings.connections {
        let stream = connect(&settings).await.map_err(|e| {
            io::Error::new(e.kind(), format!("connecting to {}: {e}", settings.target))
        })?;
        streams.push(stream);
    }
    let start = Instant::now();
    let deadline = start + settings.duration;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| tokio::spawn(connection(settings.clone(), stream, deadline)))
        .collect();
    let mut total = Outcome::new();
    for task in tasks {
        match task.await {
            Ok(outcome) => total.add(outcome),
            Err(e) => return Err(io::Error::other(format!("a connection task failed: {e}"))),
        }
    }
    total.elapsed = settings.duration;
    Ok(total)
}

async fn connect(settings: &Settings) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(settings.timeout, TcpStream::connect(settings.target))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    // Requests are single small writes: never hold one back.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One connection's closed loop until `deadline`; reconnects when the
/// server closes or an error breaks the connection.
async fn connection(settings: Arc<Settings>, first: TcpStream, deadline: Instant) -> Outcome {
    let mut out = Outcome::new();
    let mut buf = Vec::with_capacity(READ_ROOM);
    let mut stream = Some(first);
    while Instant::now() < deadline {
        let mut conn = match stream.take() {
            Some(s) => s,
            None => {
                out.reconnects += 1;
                match connect(&settings).await {
                    Ok(s) => s,
                    Err(e) => {
                        out.fail(ErrorKind::Connect, || e.to_string());
                        tokio::time::sleep(ERROR_PAUSE).await;
                        continue;
                    }
                }
            }
        };
        let started = Instant::now();
        let result = tokio::time::timeout(
            settings.timeout,
            exchange(&mut conn, &settings.request, &mut buf),
        )
        .await;
        let finished = Instant::now();
        match result {
            Ok(Ok((status, close))) => {
                if finished > deadline {
                    out.drained += 1;
                } else if status != 200 {
                    out.fail(ErrorKind::Status, || format!("status {status}"));
                } else {
                    out.requests += 1;
                    let us = u64::try_from(finished.duration_since(started).as_micros())
                        .unwrap_or(u64::MAX);
                    out.latency.saturating_record(us.max(1));
                }
                if !close {
                    stream = Some(conn);
                }
            }
            Ok(Err((kind, detail))) => out.fail(kind, || detail),
            Err(_) => out.fail(ErrorKind::Timeout, || {
                format!("no whole response in {:?}", settings.timeout)
            }),
        }
    }
    out
}

/// Sends `request` and reads one whole response: its status, and whether
/// the server closes after it.
async fn exchange(
    conn: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(u16, bool), (ErrorKind, String)> {
    let io_err = |e: io::Error| (ErrorKind::Io, e.to_string());
    conn.write_all(request).await.map_err(io_err)?;
    buf.clear();
    let mut head = None;
    loop {
        if buf.capacity() - buf.len() < READ_ROOM / 4 {
            buf.reserve(READ_ROOM);
        }
        let n = conn.read_buf(buf).await.map_err(io_err)?;
        if n == 0 {
            return Err((
                ErrorKind::Eof,
                format!("connection closed after {} bytes of a response", buf.len()),
            ));
        }
        if head.is_none() {
            head = parse::parse_head(buf)
                .map_err(|e: FramingError| (ErrorKind::Framing, e.to_string()))?;
        }
        if let Some(h) = head {
            let total = h.total_len();
            if buf.len() > total {
                return Err((
                    ErrorKind::Extra,
                    format!("{} bytes after a {total}-byte response", buf.len() - total),
                ));
            }
            if buf.len() == total {
                return Ok((h.status, h.close));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;

    use super::*;

    /// A tiny keep-alive server: a thread per connection, answering every
    /// request head with `response`, counting the requests it saw.
    fn serve(response: &'static [u8]) -> (SocketAddr, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let counter = counter.clone();
                thread::spawn(move || {
                    let mut pending = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Ok(n) = conn.read(&mut chunk) else { return };
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&chunk[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            counter.fetch_add(1, Ordering::SeqCst);
                            if conn.write_all(response).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    fn settings(target: SocketAddr, connections: usize) -> Settings {
        Settings {
            target,
            connections,
            duration: Duration::from_millis(300),
            request: b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn counts_match_what_the_server_saw() {
        let (addr, seen) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
        let out = run(&settings(addr, 4)).unwrap();
        assert_eq!(out.error_total(), 0, "{:?}", out.first_errors);
        assert!(out.requests > 100, "only {} requests", out.requests);
        assert_eq!(out.latency.len(), out.requests);
        assert_eq!(seen.load(Ordering::SeqCst), out.requests + out.drained);
        assert!(out.drained <= 4);
        assert_eq!(out.reconnects, 0);
    }

    #[test]
    fn counts_other_statuses_as_errors_and_keeps_the_connection() {
        let (addr, seen) = serve(b"HTTP/1.1 503 Busy\r\nContent-Length: 5\r\n\r\nbusy\n");
        let out = run(&settings(addr, 2)).unwrap();
        assert_eq!(out.requests, 0);
        let status = out.errors[ErrorKind::Status as usize];
        assert!(status > 0);
        assert_eq!(out.error_total(), status);
        assert_eq!(seen.load(Ordering::SeqCst), status + out.drained);
        assert_eq!(out.reconnects, 0);
    }

    #[test]
    fn reconnects_when_the_server_closes() {
        let (addr, seen) =
            serve(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nok\n");
        let out = run(&settings(addr, 1)).unwrap();
        assert_eq!(out.error_total(), 0, "{:?}", out.first_errors);
        assert!(out.requests > 1);
        assert_eq!(seen.load(Ordering::SeqCst), out.requests + out.drained);
        assert!(out.reconnects + 1 >= out.requests);
    }

    #[test]
    fn refuses_an_unframed_response() {
        let (addr, _) = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let out = run(&settings(addr, 1)).unwrap();
        assert_eq!(out.requests, 0);
        assert!(out.errors[ErrorKind::Framing as usize] > 0);
    }

    #[test]
    fn fails_when_nothing_listens() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(run(&settings(port, 1)).is_err());
    }
}
