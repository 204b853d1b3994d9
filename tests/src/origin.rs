//! Scripted TCP peers: plain `std::net` threads behind the proxy, for
//! tests about what one connection carries and how it ends.
//!
//! An [`Origin`] accepts on a loopback port and runs a handler on its own
//! thread for every connection; each handler's result goes to a queue the
//! test reads with [`Origin::next_result`], and [`Origin::accepted`] counts
//! the connections. The handlers the tests share live here ([`echo`],
//! which returns a digest of what it got, [`source`], [`reply_after_eof`],
//! [`half_closing`]); a test with a special peer writes its own closure. A
//! peer that only has to echo or count is the kit's counting origin
//! ([`ringway_kit::origin::CountingOrigin`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::data::{self, Digest, Transfer};
use crate::net::Acceptor;

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
    acceptor: Acceptor,
    results: Receiver<HandlerResult<R>>,
    accepted: Arc<AtomicU64>,
}

impl<R: Send + 'static> Origin<R> {
    /// Starts an origin that runs `handler` on every connection it accepts.
    pub fn start<F>(handler: F) -> Self
    where
        F: Fn(TcpStream) -> HandlerResult<R> + Send + Sync + 'static,
    {
        let (tx, results) = mpsc::channel();
        let accepted = Arc::new(AtomicU64::new(0));
        let handler = Arc::new(handler);
        let counter = Arc::clone(&accepted);
        let acceptor = Acceptor::start("origin", BACKLOG, IO_TIMEOUT, move |stream| {
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = Arc::clone(&handler);
            let tx = tx.clone();
            let spawned = thread::Builder::new()
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    let _ = tx.send(handler(stream));
                });
            if let Err(e) = spawned {
                panic!("origin: cannot start a connection thread: {e}");
            }
        });
        Self {
            acceptor,
            results,
            accepted,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// How many connections it accepted so far: up to date as soon as the
    /// connection's first byte came back through the proxy.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The result of the next connection to finish; panics if none finishes
    /// within `timeout`.
    pub fn next_result(&self, timeout: Duration) -> HandlerResult<R> {
        match self.results.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => panic!(
                "origin {}: no connection finished within {timeout:?}",
                self.addr()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("origin {}: the acceptor thread is gone", self.addr())
            }
        }
    }

    /// Like [`Origin::next_result`], but panics on a handler error too.
    pub fn next_ok(&self, timeout: Duration) -> R {
        self.next_result(timeout)
            .unwrap_or_else(|e| panic!("origin {}: connection failed: {e}", self.addr()))
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
