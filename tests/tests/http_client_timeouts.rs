//! Timeouts of an HTTP listener that are about the client or about a
//! response in flight: whose fault a timeout is decides what the client
//! sees and where it is counted; a response ringway cuts ends with a reset.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::Ringway;
use ringway_tests::http_client::{metric_sum, wait_metric, HttpConn, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::http_wire::find;
use ringway_tests::origin::Origin;

/// "Within a few seconds", for timeouts of a second or less.
const PROMPTLY: Duration = Duration::from_secs(10);

/// The error counters of cluster `app` (every route, every reason).
fn cluster_errors(admin: SocketAddr) -> f64 {
    metric_sum(
        &admin::metrics(admin),
        "ringway_http_errors_total",
        &[("cluster", "app")],
    )
}

/// A client sending its body at a few bytes a second has not sent it when
/// `request_timeout` passes: the fault is the client's. It gets 408
/// `client_timeout`, counted on the listener; the cluster's error counters
/// do not move.
#[test]
fn a_slow_uploader_gets_408_client_timeout_and_the_cluster_is_not_blamed() {
    let origin = HttpOrigin::ok("stored");
    let config = HttpConfig::forward_all(&[origin.addr()]).request_timeout("1s");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(PROMPTLY);
    conn.send_raw(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
    // The body trickles in, a byte every 100 ms (the scenario: 10 s for the
    // whole body), until the proxy answers or closes.
    let writer = conn
        .stream()
        .try_clone()
        .expect("cloning the client socket");
    let done = Arc::new(AtomicBool::new(false));
    let trickle = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut writer = writer;
            for _ in 0..100 {
                if done.load(Ordering::Relaxed) || writer.write_all(b"b").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let response = conn
        .try_read(false)
        .unwrap_or_else(|e| panic!("no answer to the slow upload: {e}"));
    done.store(true, Ordering::Relaxed);
    trickle.join().expect("trickle thread");

    response.assert_ringway_error(408, "client_timeout");
    assert_eq!(response.header("connection"), Some("close"));
    wait_metric(
        config.admin,
        "ringway_http_errors_total",
        &[
            ("listener", "web"),
            ("route", ""),
            ("cluster", ""),
            ("reason", "client_timeout"),
        ],
        1.0,
    );
    assert_eq!(cluster_errors(config.admin), 0.0, "the cluster was blamed");
}

/// An upstream that does not read the body it was sent is the upstream's
/// fault, however slowly the body came: the request timeout then stays a
/// 504 `upstream_timeout`, counted on the cluster.
#[test]
fn an_upstream_that_takes_no_body_is_still_504_upstream_timeout() {
    // Reads the head, then nothing: its receive window fills up.
    let origin = Origin::start(|mut stream: TcpStream| -> io::Result<()> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while find(&head, b"\r\n\r\n").is_none() {
            if stream.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        // Wait for the proxy to let go, without reading another byte.
        let _ = stream.set_read_timeout(None);
        let mut probe = [0u8; 1];
        loop {
            match stream.peek(&mut probe) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    let config = HttpConfig::forward_all(&[origin.addr()]).request_timeout("1s");
    let _proxy = Ringway::start(&config.to_toml());

    let body = vec![b'u'; 64 << 20];
    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(PROMPTLY);
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send_raw(head.as_bytes());
    let writer = conn
        .stream()
        .try_clone()
        .expect("cloning the client socket");
    let push = thread::spawn(move || {
        let mut writer = writer;
        let _ = writer.write_all(&body);
    });
    let response = conn
        .try_read(false)
        .unwrap_or_else(|e| panic!("no answer: {e}"));
    response.assert_ringway_error(504, "upstream_timeout");
    drop(conn);
    push.join().expect("writer thread");
    wait_metric(
        config.admin,
        "ringway_http_errors_total",
        &[("cluster", "app"), ("reason", "upstream_timeout")],
        1.0,
    );
}

/// A connection that never sends a byte is closed once `header_timeout`
/// passes, not held for the (long) `idle_timeout`: quietly, with no
/// answer, since no request was begun.
#[test]
fn a_connection_that_never_sends_is_closed_after_the_header_timeout() {
    let origin = HttpOrigin::ok("hi");
    let config = HttpConfig::forward_all(&[origin.addr()])
        .header_timeout("500ms")
        .idle_timeout("1h");
    let proxy = Ringway::start(&config.to_toml());

    let mut silent = HttpConn::open(config.listen);
    silent.assert_closed(PROMPTLY);

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("idle_timeouts"), 1, "{}", exit.stderr);
}

/// After its first request a keep-alive connection waits for the next one
/// under `idle_timeout`: a pause longer than `header_timeout` between
/// requests does not close it.
#[test]
fn a_keep_alive_pause_longer_than_the_header_timeout_is_fine() {
    let origin = HttpOrigin::ok("hi");
    let config = HttpConfig::forward_all(&[origin.addr()])
        .header_timeout("300ms")
        .idle_timeout("1h");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    assert_eq!(conn.exchange(&Req::get("/first")).status, 200);
    // The scenario: a pause three times the header timeout.
    thread::sleep(Duration::from_millis(900));
    assert_eq!(conn.exchange(&Req::get("/second")).status, 200);
}

/// An origin that answers each request with a head announcing `len` body
/// bytes and sends them one every `gap`, then, with `stall_after`, stops
/// sending (holding the connection) after that many.
fn dribbling_origin(len: usize, gap: Duration, stall_after: Option<usize>) -> Origin<()> {
    Origin::start(move |mut stream: TcpStream| -> io::Result<()> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while find(&head, b"\r\n\r\n").is_none() {
            if stream.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n")?;
        for i in 0..len {
            if stall_after == Some(i) {
                // Hold until the proxy lets go.
                let mut rest = [0u8; 64];
                while stream.read(&mut rest)? > 0 {}
                return Ok(());
            }
            stream.write_all(b"d")?;
            thread::sleep(gap);
        }
        Ok(())
    })
}

/// `request_timeout` bounds the wait for the response head and then each
/// wait for more of the body: a response that keeps flowing runs past it
/// (here 3 s of body under a 1 s timeout) and arrives whole.
#[test]
fn a_response_that_keeps_flowing_outlives_the_request_timeout() {
    let origin = dribbling_origin(12, Duration::from_millis(250), None);
    let config = HttpConfig::forward_all(&[origin.addr()]).request_timeout("1s");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(PROMPTLY);
    conn.send(&Req::get("/slowly"));
    let response = conn
        .try_read(false)
        .unwrap_or_else(|e| panic!("the flowing response was cut: {e}"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, vec![b'd'; 12]);
}

/// A response whose body stops coming for `request_timeout` is cut, and the
/// cut is a reset: the client cannot take the bytes it got for the whole.
#[test]
fn a_response_that_stalls_is_reset_after_the_request_timeout() {
    let origin = dribbling_origin(12, Duration::from_millis(10), Some(5));
    let config = HttpConfig::forward_all(&[origin.addr()]).request_timeout("1s");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(PROMPTLY);
    conn.send(&Req::get("/stalls"));
    let head = conn.read_head_only();
    assert_eq!(head.status, 200);
    let (got, reset) = conn.read_until_closed();
    assert_eq!(got, b"ddddd");
    assert!(reset, "the stalled response ended with a FIN");
    wait_metric(
        config.admin,
        "ringway_http_errors_total",
        &[("cluster", "app"), ("reason", "upstream_timeout")],
        1.0,
    );
}

/// A client that stops reading a close-delimited response is dropped after
/// `send_timeout`, with a reset: when it reads again it finds the bytes
/// that were on their way, then the reset, never an orderly end that would
/// pass the cut body for the whole.
#[test]
fn a_response_cut_by_the_send_timeout_ends_with_a_reset() {
    let origin = HttpOrigin::start(|_| Reply::close_delimited(200, &vec![b'z'; 16 << 20]));
    let config = HttpConfig::forward_all(&[origin.addr()]).send_timeout("500ms");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    conn.set_timeouts(PROMPTLY);
    conn.send(&Req::get("/big"));
    let head = conn.read_head_only();
    assert_eq!(head.status, 200);
    // Read nothing more until the proxy has given up on this client.
    wait_metric(
        config.admin,
        "ringway_http_errors_total",
        &[("reason", "client_send_timeout")],
        1.0,
    );
    let (got, reset) = conn.read_until_closed();
    assert!(
        got.len() < 16 << 20,
        "the whole body came: {} bytes",
        got.len()
    );
    assert!(
        reset,
        "the response cut by the send timeout ended with a FIN after {} bytes",
        got.len()
    );
}
