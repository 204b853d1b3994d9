//! A slow-loris on the TLS handshake: many connections send a real
//! ClientHello one byte every 100 ms. A normal client is served meanwhile,
//! and the listener's header timeout, which bounds the handshake, closes
//! every trickling connection before its hello is whole, sending it
//! nothing, and counts each one as a handshake timeout.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringway_kit::{admin, wait, Ringway};
use ringway_tests::http_client::Req;
use ringway_tests::http_config::{quote, HttpConfig};
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::net::client;
use ringway_tests::pki::Ca;
use ringway_tests::tls_client::{TlsClient, Transport};

/// Connections trickling their hello at once.
const TRICKLERS: usize = 50;
/// The pause between two bytes of a trickled hello.
const PACE: Duration = Duration::from_millis(100);
/// The listener's header timeout, which bounds a handshake: long beside
/// the normal client's five requests (which must be served before any
/// trickling connection is closed), short beside the trickled hello.
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests of the normal client, each on a connection of its own.
const NORMAL_REQUESTS: usize = 5;
/// The longest the trickle, or a wait on the counters, may go on.
const WAIT: Duration = Duration::from_secs(60);

/// How a trickling connection ended.
#[derive(Debug)]
struct Ended {
    /// Bytes of the hello sent before the close was seen.
    sent: usize,
    /// What the server sent (nothing, for a timed-out handshake).
    received: Vec<u8>,
    /// A reset rather than a FIN.
    reset: bool,
}

/// One trickling connection.
struct Trickler {
    stream: TcpStream,
    sent: usize,
    received: Vec<u8>,
}

impl Trickler {
    fn connect(addr: SocketAddr) -> Self {
        let stream = client(addr);
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream.set_nonblocking(true).expect("a non-blocking socket");
        Self {
            stream,
            sent: 0,
            received: Vec::new(),
        }
    }

    /// Reads what came without waiting: `Some(reset)` once the server has
    /// closed the connection.
    fn closed(&mut self) -> Option<bool> {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(false),
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(true),
            }
        }
    }

    /// Sends the next byte of `hello`; `false` when the server is gone.
    fn send_next(&mut self, hello: &[u8]) -> bool {
        match self.stream.write(&hello[self.sent..=self.sent]) {
            Ok(1) => {
                self.sent += 1;
                true
            }
            // A full send buffer cannot happen at one byte per pace; a
            // failed send means the server closed.
            _ => false,
        }
    }

    fn ended(self, reset: bool) -> Ended {
        Ended {
            sent: self.sent,
            received: self.received,
            reset,
        }
    }
}

/// Opens [`TRICKLERS`] connections and trickles `hello` on all of them
/// until the server has closed each, or a hello was sent whole (then the
/// server waited too long), or [`WAIT`] passed. `started` is set once
/// every connection sent its first byte; `closed` counts the closes seen.
fn trickle(
    addr: SocketAddr,
    hello: &[u8],
    started: &AtomicBool,
    closed: &AtomicUsize,
) -> Result<Vec<Ended>, String> {
    let mut open: Vec<Trickler> = (0..TRICKLERS).map(|_| Trickler::connect(addr)).collect();
    let mut ended = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !open.is_empty() {
        let mut still = Vec::with_capacity(open.len());
        for mut t in open {
            match t.closed() {
                Some(reset) => ended.push(t.ended(reset)),
                None if t.sent == hello.len() => {
                    return Err(format!(
                        "a trickling connection was still open after its whole hello of {} bytes",
                        hello.len()
                    ))
                }
                None if !t.send_next(hello) => {
                    let reset = t.closed().unwrap_or(true);
                    ended.push(t.ended(reset));
                }
                None => still.push(t),
            }
        }
        closed.store(ended.len(), Ordering::SeqCst);
        started.store(true, Ordering::SeqCst);
        open = still;
        if Instant::now() > deadline {
            return Err(format!(
                "{} trickling connections still open after {WAIT:?}",
                open.len()
            ));
        }
        thread::sleep(PACE);
    }
    Ok(ended)
}

#[test]
fn trickled_hellos_time_out_counted_while_a_normal_client_is_served() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = Ca::new(dir.path(), "trickle");
    let server = ca.server("server", &["localhost"]);
    let origin = HttpOrigin::ok("served");
    let tls = format!(
        "{{ cert = {}, key = {} }}",
        quote(&server.cert_str()),
        quote(&server.key_str())
    );
    let config = HttpConfig::forward_all(&[origin.addr()])
        .listener_key("tls", &tls)
        .header_timeout(&format!("{}s", HEADER_TIMEOUT.as_secs()));
    let proxy = Ringway::start(&config.to_toml());
    let client = TlsClient::new(&[&ca.pem]);
    let hello = client.client_hello();
    // The trickle must outlast the timeout by far, or a close could come
    // from the hello being complete (and refused) rather than from it.
    let bytes_in_timeout = (HEADER_TIMEOUT.as_millis() / PACE.as_millis()) as usize;
    assert!(
        hello.len() > 2 * bytes_in_timeout,
        "a hello of {} bytes trickles in less than twice the header timeout",
        hello.len()
    );

    let hello_len = hello.len();
    let started = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let trickling = {
        let (started, closed) = (Arc::clone(&started), Arc::clone(&closed));
        let addr = config.listen;
        thread::Builder::new()
            .name("trickle".to_owned())
            .spawn(move || trickle(addr, &hello, &started, &closed))
            .expect("the trickle thread")
    };
    wait::poll("every trickling connection sent a byte", WAIT, || {
        if started.load(Ordering::SeqCst) || trickling.is_finished() {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    });

    // A normal client, on new connections, while the hellos trickle.
    let transport = Transport::Tls(client);
    for i in 0..NORMAL_REQUESTS {
        let mut conn = transport.open(config.listen);
        let response = conn.exchange(&Req::get(&format!("/normal/{i}")));
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.body, b"served");
    }
    let closed_while_served = closed.load(Ordering::SeqCst);

    let ended = trickling
        .join()
        .expect("the trickle thread panicked")
        .unwrap_or_else(|why| panic!("{why}"));
    // Served before the header timeout closed any trickling connection:
    // they did not hold the normal client up.
    assert_eq!(
        closed_while_served, 0,
        "the normal client was served only after trickling connections were closed"
    );
    assert_eq!(ended.len(), TRICKLERS);
    for end in &ended {
        assert!(
            end.received.is_empty(),
            "a trickling connection was sent {:?} ({end:?})",
            String::from_utf8_lossy(&end.received)
        );
    }
    let resets = ended.iter().filter(|e| e.reset).count();
    let sent: Vec<usize> = ended.iter().map(|e| e.sent).collect();
    println!(
        "{TRICKLERS} trickled hellos of {} bytes closed after {}..={} bytes each ({resets} by reset); \
         {NORMAL_REQUESTS} normal requests served meanwhile",
        hello_len,
        sent.iter().min().expect("50 ends"),
        sent.iter().max().expect("50 ends"),
    );

    // Each trickler counted once as a timeout; the normal handshakes as
    // handshakes; nothing as a failure.
    let want = (NORMAL_REQUESTS as u64, 0, TRICKLERS as u64);
    wait::poll("the handshake counters settle", WAIT, || {
        let stats = admin::stats(config.admin);
        let counted = (
            stats.sum("tls_handshakes"),
            stats.sum("tls_handshake_failures"),
            stats.sum("tls_handshake_timeouts"),
        );
        if counted == want {
            Ok(())
        } else {
            Err(format!(
                "(handshakes, failures, timeouts) = {counted:?}, want {want:?}"
            ))
        }
    });
    assert_eq!(origin.requests().len(), NORMAL_REQUESTS);
    proxy.stop().assert_clean();
}
