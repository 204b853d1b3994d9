//! An idle pooled upstream connection that hears anything is never reused:
//! bytes an origin writes after a complete response must never reach the
//! next client as its response.
//!
//! Bytes that came while the idle connection's receive had ended (its
//! buffer ring was empty at that instant) sit in the socket with no
//! completion; the pool's check asks the socket then. The upstream ring
//! can no longer be held empty from outside (clients draw from their own
//! ring, and below its reserve the ring copies out), so that case is shown
//! by the reactor's unit test
//! `an_idle_receive_that_met_an_empty_ring_still_hears_what_came`, which
//! empties the ring from inside the worker.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::Ringway;
use ringway_tests::http_client::{metric_sum, HttpConn, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::net::set_timeouts;

/// Longest wait for something the proxy does at once.
const SOON: Duration = Duration::from_secs(10);
/// What the origin writes, on its first connection, once the test says so:
/// a complete response that no request asked for.
const STRAY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray";

/// The test's word to the origin, and the origin's word back once it wrote
/// [`STRAY`].
type Words = (mpsc::Receiver<()>, mpsc::Sender<()>);

/// An HTTP origin on its own threads: answers each request on connection
/// `c` (from 1) with `conn<c>-req<r>`; on connection 1, after its first
/// answer, it waits for the test's word, writes [`STRAY`] and says so.
fn stray_origin(write_stray: Words) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("origin bind");
    let addr = listener.local_addr().expect("origin address");
    thread::spawn(move || {
        let mut write_stray = Some(write_stray);
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let stray = if i == 0 { write_stray.take() } else { None };
            thread::spawn(move || serve(stream, i + 1, stray));
        }
    });
    addr
}

fn serve(mut stream: TcpStream, conn: usize, mut stray: Option<Words>) {
    set_timeouts(&stream, Duration::from_secs(60));
    let _ = stream.set_nodelay(true);
    let mut request = 0;
    while read_head(&mut stream).is_ok() {
        request += 1;
        let body = format!("conn{conn}-req{request}");
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
        if let Some((word, written)) = stray.take() {
            if word.recv_timeout(Duration::from_secs(60)).is_err()
                || stream.write_all(STRAY).is_err()
            {
                return;
            }
            let _ = written.send(());
        }
    }
}

/// Reads one request head (the test sends no bodies).
fn read_head(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(())
}

/// The plain case: the origin writes a complete response nobody asked for
/// after a complete one; the next request, sent after those bytes came,
/// goes on a new connection and the connection that spoke is counted.
#[test]
fn a_pooled_connection_that_spoke_is_dropped_and_counted() {
    let (say, word) = mpsc::channel();
    let (written_tx, written) = mpsc::channel();
    let origin = stray_origin((word, written_tx));
    let config = HttpConfig::forward_all(&[origin]);
    let proxy = Ringway::start(&config.to_toml());

    let first = HttpConn::open(config.listen).exchange(&Req::get("/first"));
    assert_eq!(first.body_text(), "conn1-req1");
    say.send(()).expect("the origin is waiting for the word");
    written
        .recv_timeout(SOON)
        .expect("the origin wrote the stray bytes");

    let next = HttpConn::open(config.listen).exchange(&Req::get("/next"));
    assert_eq!(
        next.body_text(),
        "conn2-req1",
        "the next client's answer: {next:?}\nringway's stderr:\n{}",
        proxy.stderr()
    );
    let metrics = admin::metrics(config.admin);
    assert_eq!(
        metric_sum(&metrics, "ringway_upstream_pool_unsolicited_total", &[]),
        1.0,
        "{}",
        metrics.text
    );
}
