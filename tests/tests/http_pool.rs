//! An idle pooled upstream connection that hears anything is never reused:
//! bytes an origin writes after a complete response must never reach the
//! next client as its response, even when they came while the worker's
//! buffer ring was empty, so that no receive took them in.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use ringway_tests::admin;
use ringway_tests::http_client::{metric_sum, HttpConn, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::net::{reset, set_timeouts};
use ringway_tests::{free_port, wait, Ringway};
use socket2::{Domain, Socket, Type};

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

/// Flooding connections: each ends up holding one buffer of the ring (its
/// send to the sink stalled) once its receive has met the empty ring, so
/// as many as there are buffers leave the ring empty for good.
const FLOODS: usize = 2;

/// A TCP origin that accepts [`FLOODS`] connections and reads nothing
/// until `release`, so that what the clients send piles up in the proxy;
/// then reads every connection to its end.
fn sink(release: mpsc::Receiver<()>) -> SocketAddr {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("sink socket");
    // A small window: the proxy's sends to it stall early.
    socket.set_recv_buffer_size(4096).expect("sink SO_RCVBUF");
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("sink bind");
    socket.listen(16).expect("sink listen");
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().expect("sink address");
    thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..FLOODS {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            held.push(stream);
        }
        if release.recv_timeout(Duration::from_secs(60)).is_ok() {
            for mut stream in held {
                thread::spawn(move || {
                    set_timeouts(&stream, Duration::from_secs(60));
                    let _ = io::copy(&mut stream, &mut io::sink());
                });
            }
        }
    });
    addr
}

/// Writes to `addr` until `stop`, then resets the connection. Says on
/// `blocked` once a write has waited 50 ms with nothing taken: the proxy
/// has stopped reading this connection.
fn flood(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    blocked: mpsc::Sender<()>,
) -> thread::JoinHandle<()> {
    let stream = TcpStream::connect(addr).expect("connect to the TCP listener");
    thread::spawn(move || {
        set_timeouts(&stream, Duration::from_millis(50));
        let chunk = vec![b'x'; 64 * 1024];
        let mut said = false;
        while !stop.load(Ordering::Relaxed) {
            match (&stream).write(&chunk) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !said {
                        said = true;
                        let _ = blocked.send(());
                    }
                }
                Err(_) => break,
            }
        }
        reset(stream);
    })
}

fn enobufs(admin: SocketAddr) -> u64 {
    admin::stats(admin).u64("/workers/0/ring/enobufs")
}

#[test]
fn bytes_heard_while_pooled_never_reach_the_next_client() {
    let (say, word) = mpsc::channel();
    let (written, _) = mpsc::channel();
    let origin = stray_origin((word, written));
    let (release, released) = mpsc::channel();
    let tcp_listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = HttpConfig::forward_all(&[origin]);
    // A ring of two small buffers, and a TCP listener to a sink that does
    // not read: two clients flooding it hold both buffers.
    let toml = config.to_toml().replacen(
        "[runtime]\n",
        "[runtime]\nbuffer_count = 2\nbuffer_size = 4096\n",
        1,
    ) + &format!(
        "\n[[listeners]]\nname = \"flood\"\naddress = \"{tcp_listen}\"\nprotocol = \"tcp\"\n\
         cluster = \"sink\"\n\n[[clusters]]\nname = \"sink\"\nendpoints = [\"{}\"]\n",
        sink(released)
    );
    let proxy = Ringway::start(&toml);

    // One exchange leaves the upstream connection idle in the pool.
    let first = HttpConn::open(config.listen).exchange(&Req::get("/first"));
    assert_eq!(first.body_text(), "conn1-req1");

    // Empty the buffer ring, then have the origin write on the idle
    // connection: its receive meets the empty ring and ends, leaving the
    // bytes in the socket.
    let stop = Arc::new(AtomicBool::new(false));
    let (blocked_tx, blocked) = mpsc::channel();
    let floods: Vec<_> = (0..FLOODS)
        .map(|_| flood(tcp_listen, Arc::clone(&stop), blocked_tx.clone()))
        .collect();
    for _ in 0..FLOODS {
        blocked
            .recv_timeout(SOON)
            .expect("a flood never filled the proxy's buffers");
    }
    let dry = enobufs(config.admin);
    say.send(()).expect("the origin is waiting for the word");
    wait::poll(
        "the idle connection's receive met the empty ring",
        SOON,
        || match enobufs(config.admin) {
            n if n > dry => Ok(()),
            n => Err(format!("{n} ENOBUFS")),
        },
    );

    // Buffers back (the floods end), then the next client: it must get the
    // origin's answer to its own request, on a new connection, never the
    // stray bytes.
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.join().expect("a flood thread panicked");
    }
    release.send(()).expect("the sink is waiting");
    wait::poll(
        "the floods' connections closed",
        SOON,
        || match admin::stats(config.admin).sum("active") {
            0 => Ok(()),
            n => Err(format!("{n} open")),
        },
    );
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
