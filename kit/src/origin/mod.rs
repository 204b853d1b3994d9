//! The counting origin: the server tests and benches put behind a proxy
//! when what matters is how much it served, not what each request said.
//!
//! Fast and predictable, so that its share of a core stays small and flat:
//! one tokio-uring thread per entry of `cores` (pinned), each with its own
//! `SO_REUSEPORT` listener on the same port. In [`Mode::Http`] it answers
//! every HTTP/1.1 request with the same preformatted response (keep-alive,
//! pipelined requests answered in order, `Content-Length` bodies read and
//! dropped, `Connection: close` and HTTP/1.0 honoured); in [`Mode::Sink`]
//! it reads TCP streams to their end; in [`Mode::Echo`] it sends back
//! every byte it reads. It counts connections (accepted and ended),
//! requests and bytes each way, readable while it runs
//! ([`CountingOrigin::served`]).
//!
//! In a test: `CountingOrigin::start(Settings::http(100), &[])` binds a
//! loopback port itself (nobody can take it in between) and
//! [`CountingOrigin::addr`] says which. `ringway-bench origin` runs the same
//! server in a process of its own through [`bind`] and [`run`].

mod serve;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections per listener: the memory run connects thousands in
/// a burst.
const BACKLOG: i32 = 4096;

/// What the origin does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers every HTTP/1.1 request with [`Settings::response`].
    Http,
    /// Reads and counts until the peer closes.
    Sink,
    /// Sends back what it reads, until the peer closes.
    Echo,
}

/// What the origin serves.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// What it does with a connection.
    pub mode: Mode,
    /// The whole answer to every HTTP request, formatted once (see
    /// [`response`]); unused by the TCP modes.
    pub response: &'static [u8],
}

impl Settings {
    /// HTTP, answering `200` with `body` bytes to every request.
    pub fn http(body: usize) -> Self {
        Self {
            mode: Mode::Http,
            response: response(body),
        }
    }

    /// A TCP sink.
    pub fn sink() -> Self {
        Self {
            mode: Mode::Sink,
            response: b"",
        }
    }

    /// A TCP echo.
    pub fn echo() -> Self {
        Self {
            mode: Mode::Echo,
            response: b"",
        }
    }
}

/// What was served, all threads together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Connections accepted.
    pub connections: u64,
    /// Connections that have ended (the peer closed, asked to close, sent
    /// something that is not HTTP/1.1, or an error).
    pub ended: u64,
    /// HTTP requests received whole (head and body).
    pub received: u64,
    /// HTTP requests answered (the answer goes out once the head is in,
    /// before the body).
    pub requests: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
}

/// The answer to every request: a `200` with `body` bytes, formatted once
/// and kept for the life of the process, so each write lends the ring a
/// `'static` slice.
pub fn response(body: usize) -> &'static [u8] {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: ringway-bench\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
    )
    .into_bytes();
    r.resize(r.len() + body, b'o');
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
    let counts: Vec<Arc<Counts>> = listeners.iter().map(|_| Arc::default()).collect();
    serve::run(listeners, settings, cores, &counts, &stop)?;
    Ok(total(&counts))
}

/// A counting origin running in this process; stops when dropped.
#[derive(Debug)]
pub struct CountingOrigin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Vec<Arc<Counts>>,
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
        let listeners = bind(listen, cores.len())?;
        let addr = listeners[0].local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Vec<Arc<Counts>> = listeners.iter().map(|_| Arc::default()).collect();
        let runner = {
            let (stop, counts, cores) = (stop.clone(), counts.clone(), cores.to_vec());
            std::thread::Builder::new()
                .name(format!("origin-{}", addr.port()))
                .spawn(move || serve::run(listeners, settings, &cores, &counts, &stop))?
        };
        Ok(Self {
            addr,
            stop,
            counts,
            runner: Some(runner),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it served so far. Each figure is up to date on its own; read
    /// while connections are busy, they may be a request apart.
    pub fn served(&self) -> Served {
        total(&self.counts)
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

/// One thread's counters. Only that thread writes them (a load and a store,
/// as cheap as a plain `Cell`); anyone may read them.
#[derive(Debug, Default)]
struct Counts {
    connections: AtomicU64,
    ended: AtomicU64,
    received: AtomicU64,
    requests: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
}

impl Counts {
    /// Adds `n` to `counter`: only the owning thread calls this.
    fn add(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    fn read(&self) -> Served {
        Served {
            connections: self.connections.load(Ordering::Relaxed),
            ended: self.ended.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
        }
    }
}

fn total(counts: &[Arc<Counts>]) -> Served {
    counts.iter().fold(Served::default(), |sum, c| {
        let c = c.read();
        Served {
            connections: sum.connections + c.connections,
            ended: sum.ended + c.ended,
            received: sum.received + c.received,
            requests: sum.requests + c.requests,
            bytes_received: sum.bytes_received + c.bytes_received,
            bytes_sent: sum.bytes_sent + c.bytes_sent,
        }
    })
}
