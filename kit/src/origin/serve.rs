//! The origin's threads and connections.

use std::io;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use super::{Answer, Counts, Draws, Effect, Mode, Shared};
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
/// Longest request head: a client that sends more without ending it is
/// not speaking HTTP.
const MAX_HEAD: usize = 64 * 1024;

thread_local! {
    /// This serving thread's failure draws (each thread its own: no lock,
    /// no shared cache line).
    static DRAWS: std::cell::Cell<Draws> = const { std::cell::Cell::new(Draws::new(1)) };
}

/// Serves `listeners`, one thread each, until `stop` is set; thread `t`
/// counts into `shared.counts[t]` and is pinned to `cores[t]` when there
/// is one.
pub(super) fn run(
    listeners: Vec<StdListener>,
    shared: &Arc<Shared>,
    cores: &[usize],
    stop: &Arc<AtomicBool>,
) -> io::Result<()> {
    let handles: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(t, listener)| {
            let core = cores.get(t).copied();
            let (stop, shared) = (stop.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("origin-{t}"))
                .spawn(move || serve_thread(Thread { shared, index: t }, core, listener, &stop))
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

/// One serving thread's view of the origin: everything shared, and its
/// own counters.
#[derive(Clone)]
struct Thread {
    shared: Arc<Shared>,
    index: usize,
}

impl Thread {
    fn counts(&self) -> &Counts {
        &self.shared.counts[self.index]
    }

    fn add(&self, counter: fn(&Counts) -> &std::sync::atomic::AtomicU64, n: u64) {
        Counts::add(counter(self.counts()), n);
    }
}

fn serve_thread(
    thread: Thread,
    core: Option<usize>,
    listener: StdListener,
    stop: &AtomicBool,
) -> io::Result<()> {
    if let Some(core) = core {
        if !core_affinity::set_for_current(CoreId { id: core }) {
            return Err(io::Error::other(format!("cannot pin to core {core}")));
        }
    }
    // Different per thread and per process, so that two origins do not
    // fail the same requests in step.
    let seed = u64::from(std::process::id()) << 32
        ^ (thread.index as u64) << 16
        ^ listener.local_addr().map_or(0, |a| u64::from(a.port()));
    DRAWS.set(Draws::new(seed));
    tokio_uring::start(async move {
        let listener = Rc::new(TcpListener::from_std(listener));
        let accepting = tokio_uring::spawn(accept_loop(listener, thread));
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(STOP_POLL).await;
        }
        accepting.abort();
    });
    Ok(())
}

async fn accept_loop(listener: Rc<TcpListener>, thread: Thread) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                thread.add(|c| &c.connections, 1);
                let thread = thread.clone();
                tokio_uring::spawn(async move {
                    let end = match thread.shared.settings.mode {
                        Mode::Http => {
                            let _ = stream.set_nodelay(true);
                            http_conn(&stream, &thread).await
                        }
                        Mode::Sink => sink(&stream, &thread).await,
                        Mode::Echo => echo(&stream, &thread).await,
                    };
                    drop(stream);
                    if end.is_err() {
                        thread.add(|c| &c.failed, 1);
                    }
                    thread.add(|c| &c.ended, 1);
                });
            }
            // Out of descriptors or a connection reset before it was
            // taken: keep serving the others.
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// Reads and counts until the peer closes; `Err` when an error ended it.
async fn sink(stream: &TcpStream, thread: &Thread) -> io::Result<()> {
    let mut buf = vec![0u8; STREAM_READ_SIZE];
    loop {
        let (got, back) = stream.read(buf).await;
        buf = back;
        match got? {
            0 => return Ok(()),
            n => thread.add(|c| &c.bytes_received, n as u64),
        }
    }
}

/// Sends back what it reads, until the peer closes; `Err` when an error
/// ended it.
async fn echo(stream: &TcpStream, thread: &Thread) -> io::Result<()> {
    let mut buf = vec![0u8; STREAM_READ_SIZE];
    loop {
        let (got, back) = stream.read(buf).await;
        buf = back;
        let n = match got? {
            0 => return Ok(()),
            n => n,
        };
        thread.add(|c| &c.bytes_received, n as u64);
        let (written, back) = stream.write_all(buf.slice(..n)).await;
        buf = back.into_inner();
        written?;
        thread.add(|c| &c.bytes_sent, n as u64);
    }
}

/// Answers every request on the connection, in order, until the client
/// closes, asks to close, or sends something that is not HTTP/1.1, or the
/// answer is cut short; `Err` when a read or write error ended it.
async fn http_conn(stream: &TcpStream, thread: &Thread) -> io::Result<()> {
    let shared = &*thread.shared;
    let answer = shared.settings.answer;
    let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
    // Body bytes of the current request still to be read and dropped.
    let mut body_left = 0usize;
    loop {
        if buf.capacity() - buf.len() < READ_SIZE / 4 {
            buf.reserve(READ_SIZE);
        }
        let (got, back) = read_more(stream, buf).await;
        buf = back;
        match got? {
            0 => return Ok(()),
            n => thread.add(|c| &c.bytes_received, n as u64),
        }
        let mut at = 0;
        let mut answers = 0usize;
        let mut close = false;
        let mut malformed = false;
        loop {
            if body_left > 0 {
                let take = body_left.min(buf.len() - at);
                body_left -= take;
                at += take;
                if body_left > 0 {
                    break;
                }
                received(thread);
            }
            if close {
                break;
            }
            match parse_request(&buf[at..]) {
                Ok(Some(req)) => {
                    record(shared, &buf[at..at + req.head_len], req.body_len);
                    if shared
                        .settings
                        .check_path
                        .is_some_and(|p| is_check(&buf[at..at + req.head_len], p))
                    {
                        thread.add(|c| &c.checks, 1);
                    }
                    at += req.head_len;
                    answers += 1;
                    close = req.close;
                    if req.body_len == 0 {
                        received(thread);
                    } else {
                        body_left = req.body_len;
                    }
                }
                Ok(None) if buf.len() - at <= MAX_HEAD => break,
                Ok(None) | Err(()) => {
                    thread.add(|c| &c.malformed, (buf.len() - at) as u64);
                    malformed = true;
                    break;
                }
            }
        }
        buf.drain(..at);
        let arrived = Instant::now();
        for _ in 0..answers {
            hold(thread, arrived).await;
            let bytes = match answer {
                Answer::Whole(bytes) | Answer::Cut(bytes) => bytes,
                Answer::Never => continue,
            };
            let bytes = match fault(thread, bytes) {
                Some(failure) => failure.await,
                None => bytes,
            };
            let (written, _) = stream.write_all(bytes).await;
            written?;
            thread.add(|c| &c.requests, 1);
            thread.add(|c| &c.bytes_sent, bytes.len() as u64);
            if matches!(answer, Answer::Cut(_)) {
                return Ok(());
            }
        }
        if close || malformed {
            return Ok(());
        }
    }
}

/// What the fault schedule does to the answer due now: `None` when it
/// does nothing; otherwise a future that waits out the delay and returns
/// the answer to send (the failure, or the usual one when this request is
/// not among the failed).
fn fault<'a>(
    thread: &'a Thread,
    usual: &'static [u8],
) -> Option<impl std::future::Future<Output = &'static [u8]> + 'a> {
    let shared = &*thread.shared;
    let faults = shared.settings.faults?;
    let started = *shared.fault_clock.get()?;
    let effect = faults.at(started.elapsed());
    if effect == Effect::NONE {
        return None;
    }
    let fails = effect.fails(DRAWS.with(|d| {
        let mut draws = d.get();
        let draw = draws.draw();
        d.set(draws);
        draw
    }));
    Some(async move {
        if !effect.delay.is_zero() {
            thread.add(|c| &c.delayed, 1);
            // The delay is the scenario itself: this answer is due later.
            tokio::time::sleep(effect.delay).await;
        }
        if fails {
            thread.add(|c| &c.faulted, 1);
            faults.failure()
        } else {
            usual
        }
    })
}

/// Whether the request head asks for `path` (its request target, the query
/// included, is exactly `path`).
fn is_check(head: &[u8], path: &str) -> bool {
    let mut parts = head.splitn(3, |&b| b == b' ');
    parts.next();
    parts.next() == Some(path.as_bytes())
}

/// Counts a request received whole; the first one starts the stall's
/// clock.
fn received(thread: &Thread) {
    thread.shared.first_request.get_or_init(Instant::now);
    thread.add(|c| &c.received, 1);
}

/// Keeps the head and body length of a request, when recording.
fn record(shared: &Shared, head: &[u8], body_len: usize) {
    if !shared.settings.record {
        return;
    }
    let head = String::from_utf8_lossy(head).into_owned();
    let mut records = shared.records.lock().unwrap_or_else(|e| e.into_inner());
    *records.heads.entry(head).or_default() += 1;
    *records.body_lens.entry(body_len as u64).or_default() += 1;
}

/// Waits for the end of the stall when one is on now, for an answer to a
/// request that arrived at `arrived`.
async fn hold(thread: &Thread, arrived: Instant) {
    let shared = &*thread.shared;
    let (Some(stall), Some(&first)) = (shared.settings.stall, shared.first_request.get()) else {
        return;
    };
    let start = first + stall.after;
    let end = start + stall.length;
    let now = Instant::now();
    if now < start || now >= end {
        return;
    }
    let counts = thread.counts();
    Counts::add(&counts.held, 1);
    let waited = u64::try_from((end - arrived).as_micros()).unwrap_or(u64::MAX);
    Counts::raise(&counts.longest_hold_us, waited);
    // The stall is the scenario itself: the answer is due at its end.
    tokio::time::sleep(end - now).await;
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

    use super::super::{response, response_with, CountingOrigin, Served, Settings, Stall};
    use super::*;

    const SOON: Duration = Duration::from_secs(10);

    fn connect(origin: &CountingOrigin) -> StdStream {
        let client = StdStream::connect(origin.addr()).expect("the origin listens");
        client.set_nodelay(true).expect("nodelay");
        client.set_read_timeout(Some(SOON)).expect("a read timeout");
        client
    }

    /// Waits until every connection the origin accepted has ended.
    fn settled(origin: &CountingOrigin, connections: u64) -> Served {
        let served = origin.wait_ended(connections, SOON);
        assert_eq!(served.connections, connections, "{served:?}");
        served
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
        let first = b"GET /a HTTP/1.1\r\nHo";
        client.write_all(first).unwrap();
        // The second piece goes only once the origin has read the first, so
        // it reads the head in two pieces.
        origin.wait_until("the first piece read", Duration::from_secs(10), |s| {
            s.bytes_received >= first.len() as u64
        });
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
        origin.wait_until("the answer is counted", SOON, |s| s.requests == 1);
        assert_eq!(origin.served().received, 0);
        client.write_all(b"def").unwrap();
        origin.wait_received(1, SOON);
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
    fn records_heads_and_body_lengths_and_counts_what_does_not_frame() {
        let settings = Settings::answering(Answer::Whole(response_with(503, 1))).recording();
        let origin = CountingOrigin::serving(settings);
        let mut client = connect(&origin);
        let get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let post = "POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
        client
            .write_all(format!("{get}{get}{post}").as_bytes())
            .unwrap();
        let want = response_with(503, 1);
        assert!(want.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"));
        let mut got = vec![0u8; 3 * want.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, [want, want, want].concat());
        client.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "no answer to what is not HTTP");
        let served = settled(&origin, 1);
        assert_eq!((served.received, served.requests), (3, 3));
        assert_eq!(served.malformed, 16);
        assert_eq!(served.failed, 0);
        let post_head = post.trim_end_matches("hi");
        assert_eq!(served.heads.len(), 2);
        assert_eq!(served.heads[get], 2);
        assert_eq!(served.heads[post_head], 1);
        assert_eq!(
            served.body_lens.iter().collect::<Vec<_>>(),
            [(&0, &2), (&2, &1)]
        );
    }

    #[test]
    fn cuts_answers_short_or_never_answers() {
        let whole = response(10);
        let cut = &whole[..whole.len() - 5];
        let origin = CountingOrigin::serving(Settings::answering(Answer::Cut(cut)));
        let mut client = connect(&origin);
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, cut, "one cut answer, then the close");
        let served = settled(&origin, 1);
        assert_eq!((served.requests, served.bytes_sent), (1, cut.len() as u64));

        let origin = CountingOrigin::serving(Settings::answering(Answer::Never));
        let mut client = connect(&origin);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        origin.wait_received(1, SOON);
        drop(client);
        let served = settled(&origin, 1);
        assert_eq!((served.requests, served.bytes_sent), (0, 0));
    }

    /// An answer due in the window waits for its end; one due after it
    /// does not. (The window opens with the first request, so the first
    /// answer is due in it, and the next request can only come after the
    /// held answer, at the window's end.)
    #[test]
    fn holds_the_answers_due_during_a_stall() {
        let stall = Stall {
            after: Duration::ZERO,
            length: Duration::from_millis(200),
        };
        let origin = CountingOrigin::serving(Settings::http(1).stalling(stall));
        let mut client = connect(&origin);
        let mut ask = || {
            let sent = std::time::Instant::now();
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            let mut got = vec![0u8; response(1).len()];
            client.read_exact(&mut got).unwrap();
            sent.elapsed()
        };
        let waited = ask();
        let served = origin.served();
        assert_eq!(served.held, 1);
        assert!(served.longest_hold > Duration::ZERO, "{served:?}");
        assert!(waited >= served.longest_hold, "{waited:?} {served:?}");
        ask();
        assert_eq!(origin.served().held, 1, "the window is over");
    }

    /// The schedule does nothing until its clock starts; then each window
    /// delays or fails the answers due in it, and checks count apart.
    #[test]
    fn follows_the_fault_schedule_once_started() {
        use super::super::{Faults, Phase};
        let faults = Faults::new(vec![
            Phase {
                from: Duration::ZERO,
                until: None,
                delay: Duration::from_millis(30),
                fail_ratio: 0.0,
            },
            Phase {
                from: Duration::ZERO,
                until: None,
                delay: Duration::ZERO,
                fail_ratio: 1.0,
            },
        ])
        .leak();
        let settings = Settings::http(1).with_faults(faults).checked_at("/healthz");
        let origin = CountingOrigin::serving(settings);
        let mut client = connect(&origin);
        let mut ask = |path: &str, want: &[u8]| {
            let sent = std::time::Instant::now();
            client
                .write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
                .unwrap();
            let mut got = vec![0u8; want.len()];
            client.read_exact(&mut got).unwrap();
            assert_eq!(got, want);
            sent.elapsed()
        };
        ask("/", response(1));
        ask("/healthz", response(1));
        assert_eq!((origin.served().faulted, origin.served().delayed), (0, 0));
        origin.start_faults();
        let waited = ask("/", faults.failure());
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        ask("/healthz?x", faults.failure());
        // The count follows the write's completion, which the client may
        // see first.
        let served = origin.wait_until("four answers", SOON, |s| s.requests == 4);
        assert_eq!(served.received, 4);
        assert_eq!((served.faulted, served.delayed, served.checks), (2, 2, 1));
    }

    /// A stream the peer resets counts as failed, not as ended in order.
    #[test]
    fn a_reset_stream_counts_as_failed() {
        let sink = CountingOrigin::serving(Settings::sink());
        let mut client = connect(&sink);
        client.write_all(b"some bytes").unwrap();
        sink.wait_until("the bytes arrive", SOON, |s| s.bytes_received == 10);
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        let served = sink.wait_ended(1, SOON);
        assert_eq!(served.failed, 1);
        assert_eq!(sink.served().connections, 1);
    }

    #[test]
    fn the_response_is_framed() {
        let r = response(5);
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(r.ends_with(b"Content-Length: 5\r\n\r\nooooo"));
    }
}
