//! Origin servers: plain `std::net` threads behind the proxy.
//!
//! An [`Origin`] accepts on a loopback port and runs a handler on its own
//! thread for every connection; each handler's result goes to a queue the
//! test reads with [`Origin::next_result`]. The handlers the tests share
//! live here ([`echo`], [`sink`], [`source`], [`reply_after_eof`],
//! [`half_closing`], [`record`]), and [`counting`] wraps any of them to
//! count the connections an origin got; a test with a special peer writes
//! its own closure.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::data::{self, Digest, Transfer};
use crate::net::set_timeouts;

/// Accept backlog: room for a thousand connections arriving at once, so the
/// origin never drops a SYN of the proxy's.
const BACKLOG: i32 = 4096;
/// How long an origin's connection waits on one read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Stack of a connection thread: handlers are small, and a test may run a
/// thousand of them.
const STACK_SIZE: usize = 256 * 1024;

/// What a connection handler returns.
pub type HandlerResult<R> = io::Result<R>;

/// An origin server on a loopback port; stops accepting when dropped.
#[derive(Debug)]
pub struct Origin<R> {
    addr: SocketAddr,
    results: Receiver<HandlerResult<R>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl<R: Send + 'static> Origin<R> {
    /// Starts an origin that runs `handler` on every connection it accepts.
    pub fn start<F>(handler: F) -> Self
    where
        F: Fn(TcpStream) -> HandlerResult<R> + Send + Sync + 'static,
    {
        let listener = ringway_kit::ports::loopback_listener(BACKLOG)
            .unwrap_or_else(|e| panic!("cannot start an origin: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("origin has no address: {e}"));
        let (tx, results) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stopping = Arc::clone(&stop);
        let acceptor = thread::Builder::new()
            .name(format!("origin-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    set_timeouts(&stream, IO_TIMEOUT);
                    let handler = Arc::clone(&handler);
                    let tx = tx.clone();
                    let spawned = thread::Builder::new()
                        .stack_size(STACK_SIZE)
                        .spawn(move || {
                            let _ = tx.send(handler(stream));
                        });
                    if let Err(e) = spawned {
                        panic!("origin {addr}: cannot start a connection thread: {e}");
                    }
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the origin's thread: {e}"));
        Self {
            addr,
            results,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The result of the next connection to finish; panics if none finishes
    /// within `timeout`.
    pub fn next_result(&self, timeout: Duration) -> HandlerResult<R> {
        match self.results.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => panic!(
                "origin {}: no connection finished within {timeout:?}",
                self.addr
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("origin {}: the acceptor thread is gone", self.addr)
            }
        }
    }

    /// Like [`Origin::next_result`], but panics on a handler error too.
    pub fn next_ok(&self, timeout: Duration) -> R {
        self.next_result(timeout)
            .unwrap_or_else(|e| panic!("origin {}: connection failed: {e}", self.addr))
    }
}

impl<R> Drop for Origin<R> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Sends back everything it receives; at end of stream sends its own FIN.
/// Returns what it received.
pub fn echo(mut stream: TcpStream) -> HandlerResult<Transfer> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        stream.write_all(&buf[..n])?;
    }
    stream.shutdown(Shutdown::Write)?;
    Ok(Transfer {
        bytes: total,
        digest: Digest(hasher.finalize().into()),
    })
}

/// Reads to end of stream; returns what it received.
pub fn sink(mut stream: TcpStream) -> HandlerResult<Transfer> {
    data::read_to_end_hashed(&mut stream)
}

/// Sends `len` bytes of the test stream and its FIN, then waits for the
/// peer's FIN; returns what it sent.
pub fn source(len: u64) -> impl Fn(TcpStream) -> HandlerResult<Transfer> {
    source_counted(len, Arc::new(AtomicU64::new(0)))
}

/// Like [`source`], and keeps `written` at the number of bytes the kernel
/// has taken so far.
pub fn source_counted(
    len: u64,
    written: Arc<AtomicU64>,
) -> impl Fn(TcpStream) -> HandlerResult<Transfer> {
    move |mut stream| {
        let sent = data::write_stream(&mut stream, len, |n| written.store(n, Ordering::SeqCst))?;
        stream.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest)?;
        Ok(sent)
    }
}

/// Reads the request to its end, and only then answers with `len` bytes of
/// the test stream and a FIN: the reply travels on the direction left open
/// by the client's half-close. Returns the request and the reply sent.
pub fn reply_after_eof(len: u64) -> impl Fn(TcpStream) -> HandlerResult<(Vec<u8>, Transfer)> {
    move |mut stream| {
        let mut request = Vec::new();
        stream.read_to_end(&mut request)?;
        let sent = data::write_stream(&mut stream, len, |_| {})?;
        stream.shutdown(Shutdown::Write)?;
        Ok((request, sent))
    }
}

/// Sends `len` bytes of the test stream and its FIN first, then records
/// what the client still sends on the open direction. Returns what it sent
/// and what it got.
pub fn half_closing(len: u64) -> impl Fn(TcpStream) -> HandlerResult<(Transfer, Vec<u8>)> {
    move |mut stream| {
        let sent = data::write_stream(&mut stream, len, |_| {})?;
        stream.shutdown(Shutdown::Write)?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got)?;
        Ok((sent, got))
    }
}

/// Runs `handler`, first adding one to `served`: the count is up to date
/// as soon as the connection's first byte came back through the proxy.
pub fn counting<R, F>(
    served: Arc<AtomicU64>,
    handler: F,
) -> impl Fn(TcpStream) -> HandlerResult<R> + Send + Sync + 'static
where
    F: Fn(TcpStream) -> HandlerResult<R> + Send + Sync + 'static,
{
    move |stream| {
        served.fetch_add(1, Ordering::SeqCst);
        handler(stream)
    }
}

/// Reads to end of stream; returns the bytes.
pub fn record(mut stream: TcpStream) -> HandlerResult<Vec<u8>> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got)?;
    Ok(got)
}
