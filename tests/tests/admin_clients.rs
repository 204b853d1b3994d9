//! The admin API against clients that misbehave (docs/admin.md, "Limits"):
//! silent and slow connections, more of them than it keeps open, more
//! configuration changes at once than it takes, and heads that frame a
//! body two ways. Probes (`/ready`, `/healthz`) are answered whatever the
//! others do.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringway_kit::admin::{self, read_response, Response};
use ringway_kit::limits::raise_fd_limit;
use ringway_kit::ports::dead_endpoint;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::{client, ProxyConfig};

/// Bound on waits for the proxy to be ready.
const WAIT: Duration = Duration::from_secs(10);
/// Connections the admin API keeps open (docs/admin.md).
const MAX_OPEN: usize = 256;
/// Configuration changes it serves at once (docs/admin.md).
const MAX_CHANGES: usize = 16;

/// Starts a proxy (its one listener unused) with `config`.
fn start(config: &ProxyConfig) -> Ringway {
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);
    proxy
}

/// A configuration whose admin API waits an hour for a request: within a
/// test, no connection is closed for being silent or slow.
fn patient() -> ProxyConfig {
    ProxyConfig::new(&[dead_endpoint()])
        .admin_key("first_byte_timeout", "\"1h\"")
        .admin_key("head_timeout", "\"1h\"")
}

/// `Ok` while the server has neither closed `stream` nor written to it.
fn still_open(stream: &TcpStream) -> Result<(), String> {
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("cannot make the socket non-blocking: {e}"))?;
    let mut first = [0u8; 200];
    let seen = stream.peek(&mut first);
    stream
        .set_nonblocking(false)
        .map_err(|e| format!("cannot make the socket blocking again: {e}"))?;
    match seen {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Ok(0) => Err("closed by ringway".to_owned()),
        Ok(n) => Err(format!(
            "answered {:?}",
            String::from_utf8_lossy(&first[..n])
        )),
        Err(e) => Err(format!("{e}")),
    }
}

/// Reads one response; panics, naming `what`, on failure.
fn response(reader: &mut impl BufRead, what: &str) -> Response {
    read_response(reader, false).unwrap_or_else(|e| panic!("{what}: no response: {e}"))
}

/// Panics unless the server closes the connection with nothing more sent.
fn assert_ends(reader: &mut impl Read, what: &str) {
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => {}
        Ok(_) => panic!(
            "{what}: more came before the end: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(e) => panic!("{what}: the connection did not end cleanly: {e}"),
    }
}

/// 70 connections that never send a byte and 16 whose heads trickle in
/// and never end do not keep probes out: `/ready` and `/healthz` are
/// answered while every one of them is still open and unanswered. The slow
/// heads, once complete, are answered too.
#[test]
fn probes_are_answered_while_silent_and_slow_connections_are_held() {
    let config = patient();
    let proxy = start(&config);
    let silent: Vec<TcpStream> = (0..70).map(|_| client(config.admin)).collect();
    let mut slow: Vec<TcpStream> = (0..16).map(|_| client(config.admin)).collect();
    for piece in ["GET /stats HTTP/1.1\r\n", "Host: ringway\r\n", "X-Slow: 1"] {
        for stream in &mut slow {
            stream
                .write_all(piece.as_bytes())
                .expect("trickling a head");
        }
    }

    for path in ["/ready", "/healthz"] {
        let answer = admin::get(config.admin, path);
        assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    }
    let closed: Vec<String> = silent
        .iter()
        .chain(&slow)
        .enumerate()
        .filter_map(|(i, s)| still_open(s).err().map(|e| format!("connection {i}: {e}")))
        .collect();
    assert!(
        closed.is_empty(),
        "the probes were answered only after {} of the {} idle connections were dropped: {closed:?}",
        closed.len(),
        silent.len() + slow.len()
    );

    for (i, stream) in slow.iter_mut().enumerate() {
        stream
            .write_all(b"\r\nConnection: close\r\n\r\n")
            .expect("ending a slow head");
        let answer = response(&mut BufReader::new(stream), &format!("slow head {i}"));
        assert_eq!(answer.status, 200, "slow head {i}: {answer:?}");
    }
    drop(silent);
    proxy.stop().assert_clean();
}

/// With every place taken by connections that send nothing, a probe still
/// gets in: the connection that has waited longest is closed with a 408
/// naming the reason, one per newcomer, oldest first; the younger ones are
/// kept.
#[test]
fn a_full_admin_api_makes_room_for_probes_by_closing_the_longest_waiting() {
    raise_fd_limit();
    let config = patient();
    let proxy = start(&config);
    let extra = 20;
    let mut idle: Vec<TcpStream> = (0..MAX_OPEN + extra)
        .map(|_| client(config.admin))
        .collect();

    let ready = admin::get(config.admin, "/ready");
    assert_eq!(ready.status, 200, "GET /ready: {ready:?}");
    // Every newcomer beyond the places, the probe included, made room.
    let evicted = extra + 1;
    for (i, stream) in idle.iter_mut().enumerate() {
        let what = format!("idle connection {i}");
        if i < evicted {
            let mut reader = BufReader::new(stream);
            let answer = response(&mut reader, &what);
            assert_eq!(answer.status, 408, "{what}: {answer:?}");
            assert!(answer.body.contains("waited longest"), "{what}: {answer:?}");
            assert_ends(&mut reader, &what);
        } else {
            still_open(stream).unwrap_or_else(|e| {
                panic!("{what}, younger than the {evicted} closed, should be kept: {e}")
            });
        }
    }
    let healthz = admin::get(config.admin, "/healthz");
    assert_eq!(healthz.status, 200, "GET /healthz: {healthz:?}");
    drop(idle);
    proxy.stop().assert_clean();
}

/// A connection that sends nothing is answered 408 after
/// `admin.first_byte_timeout`; a kept-alive connection that goes quiet
/// after an answer is closed without a word.
#[test]
fn silent_connections_get_408_and_quiet_kept_alive_ones_are_closed() {
    let config = ProxyConfig::new(&[dead_endpoint()])
        .admin_key("first_byte_timeout", "\"300ms\"")
        .admin_key("head_timeout", "\"1h\"");
    let proxy = start(&config);

    let mut silent = BufReader::new(client(config.admin));
    let answer = response(&mut silent, "a silent connection");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(
        answer.body.contains("admin.first_byte_timeout"),
        "{answer:?}"
    );
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert_ends(&mut silent, "a silent connection");

    // A request must get in before the first-byte deadline; a test thread
    // held off the CPU that long gets the 408 instead and tries again.
    poll(
        "a kept-alive connection answered, then closed",
        WAIT,
        || {
            let mut idle = client(config.admin);
            idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: ringway\r\n\r\n")
                .map_err(|e| format!("sending a request: {e}"))?;
            let mut idle = BufReader::new(idle);
            let answer = response(&mut idle, "a kept-alive request");
            if answer.status == 408 {
                return Err(format!("the request came too late: {answer:?}"));
            }
            assert_eq!(answer.status, 200, "{answer:?}");
            assert_ends(&mut idle, "a kept-alive connection gone quiet");
            Ok(())
        },
    );
    proxy.stop().assert_clean();
}

/// A connection whose head stops half-way is answered 408 after
/// `admin.head_timeout`.
#[test]
fn slow_heads_get_408() {
    let config = ProxyConfig::new(&[dead_endpoint()])
        .admin_key("first_byte_timeout", "\"1h\"")
        .admin_key("head_timeout", "\"300ms\"");
    let proxy = start(&config);
    let mut slow = client(config.admin);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: ringway\r\n")
        .expect("sending half a head");
    let mut slow = BufReader::new(slow);
    let answer = response(&mut slow, "a slow head");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.body.contains("admin.head_timeout"), "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert_ends(&mut slow, "a slow head");
    proxy.stop().assert_clean();
}

/// Reads an interim `100 Continue` (status line and blank line).
fn read_continue(reader: &mut impl BufRead, what: &str) {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what}: no 100 Continue: {e}"));
    assert!(line.starts_with("HTTP/1.1 100"), "{what}: {line:?}");
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{what}: the 100 Continue is cut short: {e}"));
        if line == "\r\n" {
            return;
        }
    }
}

/// 16 configuration changes under way (their bodies not sent yet) take
/// every place for changes: a 17th is answered 503 with `retry-after`,
/// while probes and reads are answered as usual. Once they finish, their
/// places are free again.
#[test]
fn configuration_changes_beyond_sixteen_at_once_are_answered_503() {
    let config = ProxyConfig::new(&[dead_endpoint()]);
    let proxy = start(&config);
    let body = config.to_toml();
    let held: Vec<(TcpStream, BufReader<TcpStream>)> = (0..MAX_CHANGES)
        .map(|i| {
            let mut stream = client(config.admin);
            let head = format!(
                "POST /config HTTP/1.1\r\nHost: ringway\r\nExpect: 100-continue\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).expect("sending a head");
            let mut reader = BufReader::new(stream.try_clone().expect("cloning the socket"));
            // The body is asked for once the change holds its place.
            read_continue(&mut reader, &format!("change {i}"));
            (stream, reader)
        })
        .collect();

    let refused = admin::post(config.admin, "/reload", "");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("1"), "{refused:?}");
    assert!(
        refused.body.contains("16 configuration changes"),
        "{refused:?}"
    );
    for path in ["/ready", "/healthz", "/stats"] {
        let answer = admin::get(config.admin, path);
        assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    }

    for (i, (mut stream, mut reader)) in held.into_iter().enumerate() {
        stream.write_all(body.as_bytes()).expect("sending the body");
        let answer = response(&mut reader, &format!("change {i}"));
        assert_eq!(answer.status, 200, "change {i}: {answer:?}");
    }
    let answer = admin::post(config.admin, "/reload", "");
    assert_eq!(answer.status, 200, "after the changes ended: {answer:?}");
    proxy.stop().assert_clean();
}

/// Sends `bytes` on a fresh connection to `admin_addr`; returns a reader
/// of what comes back.
fn raw(admin_addr: SocketAddr, bytes: &[u8]) -> BufReader<TcpStream> {
    let mut stream = client(admin_addr);
    stream.write_all(bytes).expect("sending");
    BufReader::new(stream)
}

/// Panics unless `answer` refuses a head with both framings.
fn assert_refused_framing(answer: &Response, what: &str) {
    assert_eq!(answer.status, 400, "{what}: {answer:?}");
    assert!(
        answer.body.contains("Content-Length") && answer.body.contains("Transfer-Encoding"),
        "{what}: the answer names both headers: {answer:?}"
    );
    assert_eq!(
        answer.header("connection"),
        Some("close"),
        "{what}: {answer:?}"
    );
}

/// A request with both `Content-Length` and `Transfer-Encoding` is answered
/// 400 and its connection closed, in either order, first on a connection or
/// behind a request with a body; nothing is reloaded. A chunked body alone
/// is served, and its connection closed after the answer.
#[test]
fn content_length_with_transfer_encoding_is_refused() {
    let config = ProxyConfig::new(&[dead_endpoint()]);
    let proxy = start(&config);
    for (i, request) in [
        "GET /healthz HTTP/1.1\r\nHost: ringway\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /reload HTTP/1.1\r\nHost: ringway\r\nTransfer-Encoding: chunked\r\n\
         Content-Length: 5\r\n\r\n0\r\n\r\n",
    ]
    .iter()
    .enumerate()
    {
        let what = format!("request {i}");
        let mut reader = raw(config.admin, request.as_bytes());
        assert_refused_framing(&response(&mut reader, &what), &what);
        assert_ends(&mut reader, &what);
    }

    let body = config.to_toml();
    let both = format!(
        "POST /config HTTP/1.1\r\nHost: ringway\r\nContent-Length: {}\r\n\r\n{body}\
         GET /healthz HTTP/1.1\r\nHost: ringway\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        body.len()
    );
    let mut reader = raw(config.admin, both.as_bytes());
    let first = response(&mut reader, "the request before");
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.body.starts_with("unchanged"), "{first:?}");
    assert_refused_framing(&response(&mut reader, "the request behind"), "behind");
    assert_ends(&mut reader, "behind");

    let chunked = format!(
        "POST /config HTTP/1.1\r\nHost: ringway\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let mut reader = raw(config.admin, chunked.as_bytes());
    let answer = response(&mut reader, "a chunked body");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.starts_with("unchanged"), "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert_ends(&mut reader, "a chunked body");

    let stats = admin::stats(config.admin);
    assert_eq!(stats.generation(), 1, "{}", stats.json);
    assert_eq!(stats.u64("/reloads"), 0, "{}", stats.json);
    assert_eq!(stats.u64("/reload_failures"), 0, "{}", stats.json);
    proxy.stop().assert_clean();
}
