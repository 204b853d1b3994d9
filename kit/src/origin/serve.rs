//! The origin's threads and connections.

use std::io;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use core_affinity::CoreId;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use super::{Counts, Mode, Settings};
use crate::ring_io::read_more;

/// How often a thread looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Read buffer per HTTP connection: a few requests' heads.
const READ_SIZE: usize = 16 * 1024;
/// Read buffer per TCP connection: large reads keep the origin's syscall
/// count per byte low.
const STREAM_READ_SIZE: usize = 256 * 1024;
/// Header lines a request may carry.
const MAX_HEADERS: usize = 64;

/// Serves `listeners`, one thread each, until `stop` is set; thread `t`
/// counts into `counts[t]` and is pinned to `cores[t]` when there is one.
pub(super) fn run(
    listeners: Vec<StdListener>,
    settings: Settings,
    cores: &[usize],
    counts: &[Arc<Counts>],
    stop: &Arc<AtomicBool>,
) -> io::Result<()> {
    let handles: Vec<_> = listeners
        .into_iter()
        .zip(counts)
        .enumerate()
        .map(|(t, (listener, counts))| {
            let core = cores.get(t).copied();
            let (stop, counts) = (stop.clone(), counts.clone());
            std::thread::Builder::new()
                .name(format!("origin-{t}"))
                .spawn(move || serve_thread(settings, core, listener, counts, &stop))
        })
        .collect();
    let mut first_error = None;
    for handle in handles {
        let outcome = handle.and_then(|h| {
            h.join()
                .map_err(|_| io::Error::other("an origin thread panicked"))?
        });
        if let Err(e) = outcome {
            // The others must stop too before the error is reported.
            stop.store(true, Ordering::Relaxed);
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn serve_thread(
    settings: Settings,
    core: Option<usize>,
    listener: StdListener,
    counts: Arc<Counts>,
    stop: &AtomicBool,
) -> io::Result<()> {
    if let Some(core) = core {
        if !core_affinity::set_for_current(CoreId { id: core }) {
            return Err(io::Error::other(format!("cannot pin to core {core}")));
        }
    }
    tokio_uring::start(async move {
        let listener = Rc::new(TcpListener::from_std(listener));
        let accepting = tokio_uring::spawn(accept_loop(listener, settings, counts));
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(STOP_POLL).await;
        }
        accepting.abort();
    });
    Ok(())
}

async fn accept_loop(listener: Rc<TcpListener>, settings: Settings, counts: Arc<Counts>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                Counts::add(&counts.connections, 1);
                let counts = counts.clone();
                tokio_uring::spawn(async move {
                    match settings.mode {
                        Mode::Http => {
                            let _ = stream.set_nodelay(true);
                            http_conn(&stream, settings.response, &counts).await;
                        }
                        Mode::Sink => sink(&stream, &counts).await,
                        Mode::Echo => echo(&stream, &counts).await,
                    }
                    drop(stream);
                    Counts::add(&counts.ended, 1);
                });
            }
            // Out of descriptors or a connection reset before it was
            // taken: keep serving the others.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// Reads and counts until the peer closes.
async fn sink(stream: &TcpStream, counts: &Counts) {
    let mut buf = vec![0u8; STREAM_READ_SIZE];
    loop {
        let (got, back) = stream.read(buf).await;
        buf = back;
        match got {
            Ok(0) | Err(_) => return,
            Ok(n) => Counts::add(&counts.bytes_received, n as u64),
        }
    }
}

/// Sends back what it reads, until the peer closes.
async fn echo(stream: &TcpStream, counts: &Counts) {
    let mut buf = vec![0u8; STREAM_READ_SIZE];
    loop {
        let (got, back) = stream.read(buf).await;
        buf = back;
        let n = match got {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        Counts::add(&counts.bytes_received, n as u64);
        let (written, back) = stream.write_all(buf.slice(..n)).await;
        buf = back.into_inner();
        if written.is_err() {
            return;
        }
        Counts::add(&counts.bytes_sent, n as u64);
    }
}

/// Answers every request on the connection, in order, until the client
/// closes, asks to close, or sends something that is not HTTP/1.1.
async fn http_conn(stream: &TcpStream, response: &'static [u8], counts: &Counts) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
    // Body bytes of the current request still to be read and dropped.
    let mut body_left = 0usize;
    loop {
        if buf.capacity() - buf.len() < READ_SIZE / 4 {
            buf.reserve(READ_SIZE);
        }
        let (got, back) = read_more(stream, buf).await;
        buf = back;
        match got {
            Ok(0) | Err(_) => return,
            Ok(n) => Counts::add(&counts.bytes_received, n as u64),
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
                Counts::add(&counts.received, 1);
            }
            if close {
                break;
            }
            match parse_request(&buf[at..]) {
                Ok(Some(req)) => {
                    at += req.head_len;
                    answers += 1;
                    close = req.close;
                    if req.body_len == 0 {
                        Counts::add(&counts.received, 1);
                    } else {
                        body_left = req.body_len;
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
            Counts::add(&counts.requests, 1);
            Counts::add(&counts.bytes_sent, response.len() as u64);
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
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    use super::super::{response, CountingOrigin, Served, Settings};
    use super::*;
    use crate::wait::poll;

    const SOON: Duration = Duration::from_secs(10);

    fn connect(origin: &CountingOrigin) -> StdStream {
        let client = StdStream::connect(origin.addr()).expect("the origin listens");
        client.set_nodelay(true).expect("nodelay");
        client.set_read_timeout(Some(SOON)).expect("a read timeout");
        client
    }

    /// Waits until every connection the origin accepted has ended.
    fn settled(origin: &CountingOrigin, connections: u64) -> Served {
        poll("the origin's connections end", SOON, || {
            let served = origin.served();
            if served.connections == connections && served.ended == connections {
                Ok(served)
            } else {
                Err(format!("{served:?}"))
            }
        })
    }

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
        let origin = CountingOrigin::start(Settings::http(3), &[]).expect("the origin starts");
        let mut client = connect(&origin);
        client.write_all(b"GET /a HTTP/1.1\r\nHo").unwrap();
        // Two segments, so the origin reads the head in two pieces.
        std::thread::sleep(Duration::from_millis(50));
        client.write_all(b"st: x\r\n\r\n").unwrap();
        let want = response(3);
        let mut got = vec![0u8; want.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, want);
        drop(client);
        let served = settled(&origin, 1);
        assert_eq!((served.received, served.requests), (1, 1));
        assert_eq!(served.bytes_sent, want.len() as u64);
        assert_eq!(origin.stop().expect("a clean stop"), served);
    }

    #[test]
    fn answers_pipelined_requests_and_honours_close() {
        let origin = CountingOrigin::start(Settings::http(2), &[]).expect("the origin starts");
        let mut client = connect(&origin);
        let requests = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody\
                         GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        client.write_all(requests).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, [response(2), response(2)].concat());
        let served = settled(&origin, 1);
        assert_eq!((served.received, served.requests), (2, 2));
        assert_eq!(served.bytes_received, requests.len() as u64);
    }

    /// The answer goes out once the head is in; the request counts as
    /// received once its body is complete.
    #[test]
    fn a_request_counts_as_received_with_its_whole_body() {
        let origin = CountingOrigin::start(Settings::http(0), &[]).expect("the origin starts");
        let mut client = connect(&origin);
        client
            .write_all(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
            .unwrap();
        let mut got = vec![0u8; response(0).len()];
        client.read_exact(&mut got).unwrap();
        // The count follows the write's completion, which the client may
        // see first.
        poll("the answer is counted", SOON, || match origin.served() {
            s if s.requests == 1 => Ok(()),
            s => Err(format!("{s:?}")),
        });
        assert_eq!(origin.served().received, 0);
        client.write_all(b"def").unwrap();
        poll("the body completes the request", SOON, || {
            match origin.served().received {
                1 => Ok(()),
                n => Err(format!("{n} received")),
            }
        });
    }

    #[test]
    fn sinks_and_echoes_tcp_streams_on_two_threads() {
        let sink = CountingOrigin::start(Settings::sink(), &[0, 0]).expect("the sink starts");
        for _ in 0..4 {
            let mut client = connect(&sink);
            client.write_all(&[7u8; 100_000]).unwrap();
        }
        let served = settled(&sink, 4);
        assert_eq!(served.bytes_received, 400_000);
        assert_eq!((served.requests, served.bytes_sent), (0, 0));

        let echo = CountingOrigin::start(Settings::echo(), &[]).expect("the echo starts");
        let mut client = connect(&echo);
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut writer = client.try_clone().unwrap();
        let sent = data.clone();
        let sender = std::thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        sender.join().unwrap();
        assert_eq!(back, data);
        let served = settled(&echo, 1);
        assert_eq!(served.bytes_received, data.len() as u64);
        assert_eq!(served.bytes_sent, data.len() as u64);
    }

    #[test]
    fn the_response_is_framed() {
        let r = response(5);
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(r.ends_with(b"Content-Length: 5\r\n\r\nooooo"));
    }
}
