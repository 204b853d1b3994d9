//! Graceful drain on SIGTERM, seen from the clients: what ringway cuts at
//! the drain deadline ends with a reset (never a FIN that would make a cut
//! body or stream look complete), and a drain under keep-alive load loses
//! no request a client sent.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use ringway_kit::wait;
use ringway_kit::Ringway;
use ringway_tests::bench::{counting_origin, Answer, BODY_BYTE, BODY_LEN};
use ringway_tests::http_client::{curl, HttpConn, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::http_wire::find;
use ringway_tests::net::{read_until_closed, set_timeouts, Ended};
use ringway_tests::origin::Origin;
use ringway_tests::{client, ProxyConfig};

/// "Promptly", for a 1 s drain deadline on a debug build.
const PROMPTLY: Duration = Duration::from_secs(15);
/// Body bytes the origin sends of a response it never finishes.
const SENT: usize = 60;

/// An origin that answers every request with a close-delimited 200 (no
/// length, no chunks: the end of the body is the close), sends `SENT`
/// bytes of it and then neither sends nor closes: only a cut can end the
/// response. Each connection reports on `started` once its bytes went, and
/// its handler returns how its connection ended.
fn endless_origin(started: mpsc::Sender<()>) -> Origin<io::Result<usize>> {
    Origin::start(move |mut stream: TcpStream| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while find(&head, b"\r\n\r\n").is_none() {
            if stream.read(&mut byte)? == 0 {
                return Ok(Ok(0));
            }
            head.push(byte[0]);
        }
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")?;
        stream.write_all(&[b'x'; SENT])?;
        let _ = started.send(());
        // Hold the response open until the proxy lets go of the connection.
        let mut rest = [0u8; 64];
        Ok(loop {
            match stream.read(&mut rest) {
                Ok(0) => break Ok(0),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        })
    })
}

/// A close-delimited response still under way at the drain deadline is cut
/// with a reset: curl reports the transfer failed (it got 60 bytes of a
/// body whose end only the close could mark), and a raw client reads
/// ECONNRESET, not an orderly end of stream.
#[test]
fn a_close_delimited_response_cut_at_the_drain_deadline_ends_with_a_reset() {
    let (started, started_rx) = mpsc::channel();
    let origin = endless_origin(started);
    let config = HttpConfig::forward_all(&[origin.addr()]).drain_timeout("1s");
    let proxy = Ringway::start(&config.to_toml());

    let url = format!("http://{}/stream", config.listen);
    let curl_run =
        thread::spawn(move || curl(&["-sS", "-o", "/dev/null", "-w", "%{size_download}", &url]));
    let mut raw = HttpConn::open(config.listen);
    raw.send(&Req::get("/stream"));
    let head = raw.read_head_only();
    assert_eq!(head.status, 200);
    for _ in 0..2 {
        started_rx
            .recv_timeout(PROMPTLY)
            .expect("the origin sent the first bytes of both responses");
    }

    proxy.terminate();
    let exit = proxy.wait(PROMPTLY);
    exit.assert_clean();
    assert_eq!(exit.total("cut_at_drain"), 2, "{}", exit.stderr);

    let run = curl_run.join().expect("curl thread");
    assert!(
        !run.success,
        "curl took a body cut at the drain deadline for a complete one: downloaded {} bytes, stderr {:?}",
        run.stdout, run.stderr
    );
    assert_eq!(run.stdout, SENT.to_string(), "curl: {}", run.stderr);
    raw.set_timeouts(PROMPTLY);
    let (body, reset) = raw.read_until_closed();
    assert_eq!(body.len(), SENT);
    assert!(
        reset,
        "the raw client read an orderly end of stream after {} bytes",
        body.len()
    );
}

/// A TCP listener's stream still open at the drain deadline is cut with a
/// reset on both sides: neither the client nor the upstream may take the
/// cut for the other side's orderly end.
#[test]
fn a_tcp_stream_cut_at_the_drain_deadline_is_reset_on_both_sides() {
    let origin = Origin::start(ringway_tests::origin::echo);
    let config = ProxyConfig::new(&[origin.addr()]).drain_timeout("1s");
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    stream.write_all(b"still here").expect("sending");
    let mut echo = [0u8; 10];
    stream.read_exact(&mut echo).expect("reading the echo");

    proxy.terminate();
    let exit = proxy.wait(PROMPTLY);
    exit.assert_clean();
    assert_eq!(exit.total("cut_at_drain"), 1, "{}", exit.stderr);

    set_timeouts(&stream, PROMPTLY);
    let ended = read_until_closed(&mut stream);
    assert!(
        matches!(ended, Ok(Ended::Reset(0))),
        "the client's stream cut at the drain deadline ended with {ended:?}, not a reset"
    );
    let upstream = origin.next_result(PROMPTLY);
    assert!(
        matches!(&upstream, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
        "the upstream's stream cut at the drain deadline ended with {upstream:?}, not a reset"
    );
}

/// Client threads of the load test.
const LOAD_CLIENTS: usize = 16;
/// Requests answered before SIGTERM: the drain starts under full load.
const BEFORE_TERM: u64 = 3000;

/// What one client thread of the load test saw.
#[derive(Debug, Default)]
struct Seen {
    /// Requests answered with a complete 200.
    answered: u64,
    /// Answers that said `connection: close` (the drain's way to end a
    /// keep-alive connection).
    told_to_close: u64,
    /// Connections found closed before the next request was written: the
    /// only closes a client may retry on without knowing more.
    closed_before_write: u64,
    /// Requests written that got no complete answer: each is a lost
    /// request.
    lost: Vec<String>,
}

/// Sends requests back to back on keep-alive connections until a connect
/// is refused (the proxy stopped listening). Before each request it looks
/// whether the proxy closed the connection (an orderly close that arrived
/// before the request was written may be retried on a new connection);
/// a request written and then left without a complete answer is lost.
fn keep_alive_client(id: usize, proxy: std::net::SocketAddr, answered: &AtomicU64) -> Seen {
    let mut seen = Seen::default();
    let mut conn: Option<HttpConn> = None;
    let mut n = 0u64;
    loop {
        let mut open = match conn.take() {
            Some(open) => open,
            None => match HttpConn::try_open(proxy) {
                Ok(open) => open,
                // Refused (the listener is gone), or reset at once: no
                // request was written.
                Err(_) => return seen,
            },
        };
        if closed_by_peer(open.stream()) {
            seen.closed_before_write += 1;
            continue;
        }
        n += 1;
        let target = format!("/c{id}/r{n}");
        if let Err(e) = open.try_send_raw(&Req::get(&target).to_bytes()) {
            seen.lost.push(format!("{target}: writing failed: {e}"));
            continue;
        }
        match open.try_read(false) {
            Ok(response) if response.status == 200 && response.body == [BODY_BYTE; BODY_LEN] => {
                seen.answered += 1;
                answered.fetch_add(1, Ordering::Relaxed);
                if response.header("connection") == Some("close") {
                    seen.told_to_close += 1;
                } else {
                    conn = Some(open);
                }
            }
            Ok(response) => seen.lost.push(format!(
                "{target}: answered {} {:?}",
                response.status,
                response.body_text()
            )),
            Err(e) => seen.lost.push(format!("{target}: no complete answer: {e}")),
        }
    }
}

/// Whether the peer already closed `stream` (FIN or reset), without
/// waiting: a non-blocking peek.
fn closed_by_peer(stream: &TcpStream) -> bool {
    stream
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("cannot make the socket non-blocking: {e}"));
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("bytes arrived before a request was sent"),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    stream
        .set_nonblocking(false)
        .unwrap_or_else(|e| panic!("cannot make the socket blocking: {e}"));
    closed
}

/// SIGTERM under keep-alive load: every request a client wrote gets its
/// complete answer. The drain may end a keep-alive connection only by
/// saying `connection: close` on an answer, or by a close that reaches the
/// client before it writes its next request; a client that reconnects
/// then finds the listener gone (refused), never a connect that completes
/// and is then dropped.
#[test]
fn a_drain_under_keep_alive_load_loses_no_request() {
    drain_under_load(&[0], &[]);
}

/// The same with two workers (each stops its own listener of the
/// `SO_REUSEPORT` group) and the ring's fallbacks (single-shot accept and
/// receive, no deferred task running).
#[test]
fn a_drain_under_keep_alive_load_loses_no_request_on_two_basic_workers() {
    drain_under_load(&[0, 1], &["--io-uring", "basic"]);
}

fn drain_under_load(cores: &[usize], args: &[&str]) {
    let origin = counting_origin(Answer::Status(200));
    let mut config = HttpConfig::forward_all(&[origin.addr()]).drain_timeout("20s");
    config.worker_cores = cores.to_vec();
    let proxy = Ringway::start_with(&config.to_toml(), args);

    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..LOAD_CLIENTS)
        .map(|id| {
            let answered = Arc::clone(&answered);
            let listen = config.listen;
            thread::spawn(move || keep_alive_client(id, listen, &answered))
        })
        .collect();
    wait::poll(
        "requests answered before the drain",
        Duration::from_secs(60),
        || {
            let n = answered.load(Ordering::Relaxed);
            if n >= BEFORE_TERM {
                Ok(())
            } else {
                Err(format!("{n} answered"))
            }
        },
    );
    proxy.terminate();
    let seen: Vec<Seen> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    let exit = proxy.wait(Duration::from_secs(40));
    exit.assert_clean();

    let lost: Vec<&String> = seen.iter().flat_map(|s| &s.lost).collect();
    let total: u64 = seen.iter().map(|s| s.answered).sum();
    let told: u64 = seen.iter().map(|s| s.told_to_close).sum();
    let closed_first: u64 = seen.iter().map(|s| s.closed_before_write).sum();
    assert!(
        lost.is_empty(),
        "{} requests lost during the drain ({total} answered, {told} told to close, \
         {closed_first} connections closed before a write): {lost:#?}\nringway:\n{}",
        lost.len(),
        exit.stderr
    );
    assert!(
        told > 0,
        "no answer said `connection: close`: the drain began after the load ended?"
    );
    assert_eq!(exit.total("cut_at_drain"), 0, "{}", exit.stderr);
    let tally = origin.served();
    assert_eq!(
        tally.received, total,
        "the origin saw {} requests, the clients got {total} answers",
        tally.received
    );
}
