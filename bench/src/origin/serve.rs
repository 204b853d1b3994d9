//! The origin's threads and connections.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use core_affinity::CoreId;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_uring::net::{TcpListener, TcpStream};

use crate::ring_io::read_more;

/// How often a thread looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Read buffer per connection: a few requests' heads.
const READ_SIZE: usize = 16 * 1024;
/// Header lines a request may carry.
const MAX_HEADERS: usize = 64;
/// Pending connections per listener: the memory run connects thousands in
/// a burst.
const BACKLOG: i32 = 4096;

/// What the origin serves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listening address.
    pub listen: SocketAddr,
    /// HTTP (answer requests) or TCP (sink).
    pub http: bool,
    /// The whole answer to every request, formatted once.
    pub response: &'static [u8],
}

/// What was served, all threads together.
#[derive(Debug, Default, Clone, Copy)]
pub struct Served {
    /// Requests answered.
    pub requests: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Connections accepted.
    pub connections: u64,
}

/// The answer to every request: formatted once and kept for the life of the
/// process, so each write lends the ring a `'static` slice.
pub fn response(body: usize) -> &'static [u8] {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: ringway-bench\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
    )
    .into_bytes();
    r.resize(r.len() + body, b'o');
    r.leak()
}

/// Serves on one thread per core (one unpinned thread when `cores` is
/// empty) until `stop` is set.
pub fn run(settings: &Settings, cores: &[usize], stop: Arc<AtomicBool>) -> io::Result<Served> {
    let threads = cores.len().max(1);
    // Bind every listener first, so a busy port fails before anything runs.
    let mut listeners = Vec::with_capacity(threads);
    for _ in 0..threads {
        listeners.push(bind(settings.listen)?);
    }
    let handles: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(t, listener)| {
            let settings = settings.clone();
            let core = cores.get(t).copied();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("origin-{t}"))
                .spawn(move || serve_thread(&settings, core, listener, &stop))
        })
        .collect();
    let mut served = Served::default();
    for h in handles {
        let done = h?
            .join()
            .map_err(|_| io::Error::other("an origin thread panicked"))??;
        served.requests += done.requests;
        served.bytes_received += done.bytes_received;
        served.connections += done.connections;
    }
    Ok(served)
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Per-thread counters (the thread's tasks share them; nothing crosses
/// threads until the end).
#[derive(Debug, Default)]
struct Counts {
    requests: Cell<u64>,
    bytes: Cell<u64>,
    connections: Cell<u64>,
}

fn serve_thread(
    settings: &Settings,
    core: Option<usize>,
    listener: std::net::TcpListener,
    stop: &AtomicBool,
) -> io::Result<Served> {
    if let Some(core) = core {
        if !core_affinity::set_for_current(CoreId { id: core }) {
            return Err(io::Error::other(format!("cannot pin to core {core}")));
        }
    }
    let counts = Rc::new(Counts::default());
    let c = counts.clone();
    let settings = settings.clone();
    tokio_uring::start(async move {
        let listener = Rc::new(TcpListener::from_std(listener));
        let accepting = tokio_uring::spawn(accept_loop(listener, settings, c));
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(STOP_POLL).await;
        }
        accepting.abort();
    });
    Ok(Served {
        requests: counts.requests.get(),
        bytes_received: counts.bytes.get(),
        connections: counts.connections.get(),
    })
}

async fn accept_loop(listener: Rc<TcpListener>, settings: Settings, counts: Rc<Counts>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                counts.connections.set(counts.connections.get() + 1);
                let counts = counts.clone();
                if settings.http {
                    let _ = stream.set_nodelay(true);
                    tokio_uring::spawn(http_conn(stream, settings.response, counts));
                } else {
                    tokio_uring::spawn(sink(stream, counts));
                }
            }
            // Out of descriptors or a connection reset before it was
            // taken: keep serving the others.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// Reads and counts until the peer closes.
async fn sink(stream: TcpStream, counts: Rc<Counts>) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let (got, back) = stream.read(buf).await;
        buf = back;
        match got {
            Ok(0) | Err(_) => return,
            Ok(n) => counts.bytes.set(counts.bytes.get() + n as u64),
        }
    }
}

/// Answers every request on the connection, in order, until the client
/// closes, asks to close, or sends something that is not HTTP/1.1.
async fn http_conn(stream: TcpStream, response: &'static [u8], counts: Rc<Counts>) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
    // Body bytes of the current request still to be read and dropped.
    let mut body_left = 0usize;
    loop {
        if buf.capacity() - buf.len() < READ_SIZE / 4 {
            buf.reserve(READ_SIZE);
        }
        let (got, back) = read_more(&stream, buf).await;
        buf = back;
        match got {
            Ok(0) | Err(_) => return,
            Ok(n) => counts.bytes.set(counts.bytes.get() + n as u64),
        }
        let mut at = 0;
        let mut answers = 0usize;
        let mut close = false;
        loop {
            if body_left > 0 {
                let take = body_left.min(buf.len() - at);
                body_left -= take;
                at += take;
                if body_left > 0 {
                    break;
                }
            }
            match parse_request(&buf[at..]) {
                Ok(Some(req)) => {
                    at += req.head_len;
                    body_left = req.body_len;
                    answers += 1;
                    close |= req.close;
                    if close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(()) => return,
            }
        }
        buf.drain(..at);
        for _ in 0..answers {
            let (written, _) = stream.write_all(response).await;
            if written.is_err() {
                return;
            }
            counts.requests.set(counts.requests.get() + 1);
        }
        if close {
            return;
        }
    }
}

/// A request head at the start of a buffer.
struct RequestHead {
    head_len: usize,
    body_len: usize,
    close: bool,
}

/// `Ok(None)` while the head is incomplete; `Err` for what is not an
/// HTTP/1.x request this origin can frame (chunked bodies included).
fn parse_request(buf: &[u8]) -> Result<Option<RequestHead>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let mut body_len = 0;
    let mut close = req.version == Some(0);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(())?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(());
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    Ok(Some(RequestHead {
        head_len,
        body_len,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_requests_with_and_without_bodies() {
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET";
        let r = parse_request(get).unwrap().unwrap();
        assert_eq!((r.head_len, r.body_len, r.close), (27, 0, false));
        let post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        let r = parse_request(post).unwrap().unwrap();
        assert_eq!((r.body_len, r.close), (5, true));
        assert!(parse_request(b"GET / HTTP/1.1\r\nHo").unwrap().is_none());
        assert!(
            parse_request(b"GET / HTTP/1.0\r\n\r\n")
                .unwrap()
                .unwrap()
                .close
        );
        assert!(parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_request(b"\x16\x03\x01").is_err());
    }

    /// A request head that arrives in two pieces is answered once, whole:
    /// the second read must not overwrite the first piece.
    #[test]
    fn a_head_split_across_reads_is_answered() {
        use std::io::{Read, Write};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let settings = Settings {
            listen: port,
            http: true,
            response: response(3),
        };
        let flag = stop.clone();
        let server = std::thread::spawn(move || run(&settings, &[], flag));
        let mut client = loop {
            match std::net::TcpStream::connect(port) {
                Ok(c) => break c,
                Err(_) if !server.is_finished() => std::thread::yield_now(),
                Err(e) => panic!("the origin did not listen: {e}"),
            }
        };
        client.set_nodelay(true).unwrap();
        client.write_all(b"GET /a HTTP/1.1\r\nHo").unwrap();
        // Two segments, so the origin reads the head in two pieces.
        std::thread::sleep(Duration::from_millis(50));
        client.write_all(b"st: x\r\n\r\n").unwrap();
        let want = response(3);
        let mut got = vec![0u8; want.len()];
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, want);
        drop(client);
        stop.store(true, Ordering::Relaxed);
        let served = server.join().unwrap().unwrap();
        assert_eq!((served.requests, served.connections), (1, 1));
    }

    #[test]
    fn the_response_is_framed() {
        let r = response(5);
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(r.ends_with(b"Content-Length: 5\r\n\r\nooooo"));
    }
}
