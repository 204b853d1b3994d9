//! Buffer starvation: clients of one listener that make ringway hold their
//! bytes never take the buffers that another listener's clients, or the
//! responses those wait for, need.
//!
//! The attacks are the ones that froze a worker before receive buffers were
//! split by side and held fairly: HTTP clients that trickle one-byte
//! segments while their exchange waits on a slow upstream, and TCP clients
//! that stream into an upstream that never reads. Each runs with twice the
//! clients that used to empty the default ring (256 buffers, 8 held per
//! connection: 32 clients). A victim on another listener must be served
//! while the attack still holds on; the attack's own requests complete.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ringway_kit::admin;
use ringway_kit::origin::CountingOrigin;
use ringway_kit::ports::free_port;
use ringway_kit::Ringway;
use ringway_tests::http_client::{HttpConn, Req};
use ringway_tests::http_origin::{HttpOrigin, Reply};

/// Twice the clients that emptied the default ring.
const ATTACKERS: usize = 64;
/// How long the victim may wait before the test calls it starved: far
/// longer than any answer takes, far shorter than the attack lasts (the
/// attack holds until the test ends it).
const VICTIM_PATIENCE: Duration = Duration::from_secs(20);

/// A gate the slow origin's answers wait behind, opened by the test.
#[derive(Clone, Default)]
struct Gate(Arc<AtomicBool>);

impl Gate {
    fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Waits until the gate opens (or two minutes pass, so a failed test
    /// does not leave the origin's threads behind forever).
    fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.0.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn listener(name: &str, port: u16, protocol: &str, cluster: &str) -> String {
    let body = if protocol == "http" {
        format!(
            "request_timeout = \"120s\"\n\n  [[listeners.routes]]\n  name = \"all\"\n  cluster = \"{cluster}\"\n"
        )
    } else {
        format!("cluster = \"{cluster}\"\n")
    };
    format!(
        "\n[[listeners]]\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\nprotocol = \"{protocol}\"\n{body}"
    )
}

fn config(admin: u16, listeners: &[String], clusters: &[(&str, SocketAddr)]) -> String {
    let mut text = format!(
        "[runtime]\nworker_cores = [0]\ndrain_timeout = \"2s\"\n\n[admin]\naddress = \"127.0.0.1:{admin}\"\n"
    );
    for l in listeners {
        text.push_str(l);
    }
    for (name, addr) in clusters {
        text.push_str(&format!(
            "\n[[clusters]]\nname = \"{name}\"\nendpoints = [\"{addr}\"]\n"
        ));
    }
    text
}

/// Sends a request, then nine one-byte segments 30 ms apart while the
/// answer is held back (the pace is the attack's), counting itself in
/// `trickled` once the last is sent; returns the answer's status.
fn http_attacker(addr: SocketAddr, trickled: Arc<AtomicU64>) -> JoinHandle<u16> {
    thread::spawn(move || {
        let mut conn = HttpConn::open(addr);
        conn.set_timeouts(Duration::from_secs(120));
        conn.stream().set_nodelay(true).expect("nodelay");
        conn.send(&Req::get("/").host("slow.test"));
        for _ in 0..9 {
            thread::sleep(Duration::from_millis(30));
            conn.send_raw(b"x");
        }
        trickled.fetch_add(1, Ordering::SeqCst);
        conn.read().status
    })
}

/// Waits until `count` reaches `want`, for at most a minute.
fn wait_count(count: &AtomicU64, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < want as u64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {want} {what}",
            count.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn trickling_http_clients_of_one_listener_do_not_starve_another() {
    let gate = Gate::default();
    let held = gate.clone();
    let arrived = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&arrived);
    let slow = HttpOrigin::start(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        held.wait();
        Reply::ok(b"slow")
    });
    let fast = HttpOrigin::ok("fast");
    let (admin_port, slow_port, fast_port) = (free_port(), free_port(), free_port());
    let text = config(
        admin_port,
        &[
            listener("slow", slow_port, "http", "slow"),
            listener("fast", fast_port, "http", "fast"),
        ],
        &[("slow", slow.addr()), ("fast", fast.addr())],
    );
    let proxy = Ringway::start(&text);
    let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let slow_addr = SocketAddr::from(([127, 0, 0, 1], slow_port));
    let fast_addr = SocketAddr::from(([127, 0, 0, 1], fast_port));

    let trickled = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| http_attacker(slow_addr, Arc::clone(&trickled)))
        .collect();
    // Every attacker's request reached the slow origin, which holds them,
    // and every attacker has sent its whole trickle.
    wait_count(
        &arrived,
        ATTACKERS,
        "attackers' requests reached the origin",
    );
    wait_count(&trickled, ATTACKERS, "attackers sent their trickle");

    let mut victim = HttpConn::open(fast_addr);
    victim.set_timeouts(VICTIM_PATIENCE);
    victim.send(&Req::get("/").host("fast.test"));
    let answer = victim.try_read(false).unwrap_or_else(|e| {
        panic!("the victim on the other listener got no answer while the attack held on: {e}")
    });
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body_text(), "fast");

    // The attack is still holding: the slow origin has answered nobody.
    let metrics = admin::metrics(admin_addr);
    let client_in_use = metric_of(&metrics, "ringway_buffers_in_use", "client");
    eprintln!("client buffers in use during the attack: {client_in_use}");
    // Usually one per attacker (each is quiet while its exchange waits),
    // but segments that came before its exchange began are held too. What
    // holds always: the ring never goes below its reserve (an eighth of
    // the 256 buffers), counting one buffer being copied out right now.
    let capacity = metric_of(&metrics, "ringway_buffers_capacity", "client");
    assert_eq!(capacity, 256.0);
    assert!(
        client_in_use <= capacity - capacity / 8.0 + 1.0,
        "the client ring went below its reserve: {client_in_use} of {capacity} lent out"
    );

    gate.open();
    for a in attackers {
        assert_eq!(
            a.join().expect("attacker"),
            200,
            "an attacker's own request"
        );
    }
    drop(proxy);
}

/// The sum of `name` over the workers, for buffer group `group`.
fn metric_of(metrics: &admin::Metrics, name: &str, group: &str) -> f64 {
    metrics
        .of(name)
        .iter()
        .filter(|s| s.labels.get("group") == Some(group))
        .filter_map(|s| admin::scalar(&s.value))
        .sum()
}

/// A TCP upstream that accepts and never reads, with a small receive
/// window so that ringway's sends stall early.
struct Blackhole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<TcpStream>>>,
}

impl Blackhole {
    fn start() -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        socket.listen(1024).expect("listen");
        let listener = TcpListener::from(socket);
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            held
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn tcp_clients_streaming_into_a_stalled_upstream_do_not_starve_another_listener() {
    let sink = Blackhole::start();
    let echo = CountingOrigin::echo();
    let (admin_port, sink_port, echo_port) = (free_port(), free_port(), free_port());
    let text = config(
        admin_port,
        &[
            listener("sink", sink_port, "tcp", "sink"),
            listener("echo", echo_port, "tcp", "echo"),
        ],
        &[("sink", sink.addr), ("echo", echo.addr())],
    );
    let proxy = Ringway::start(&text);
    let sink_addr = SocketAddr::from(([127, 0, 0, 1], sink_port));
    let echo_addr = SocketAddr::from(([127, 0, 0, 1], echo_port));

    // Each attacker streams until its writes stall (ringway stopped taking
    // its bytes) or the test ends the attack.
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        let (written, stop) = (Arc::clone(&written), Arc::clone(&stop));
        attackers.push(thread::spawn(move || {
            let mut s = TcpStream::connect(sink_addr).expect("connect");
            s.set_write_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let chunk = vec![0x5au8; 64 * 1024];
            while !stop.load(Ordering::SeqCst) {
                match s.write(&chunk) {
                    Ok(n) => {
                        written.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) => panic!("attacker write failed: {e}"),
                }
            }
            s
        }));
    }
    // Wait until the attack is saturated: nothing more is taken for a
    // while (every path from the attackers to the blackhole is full).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = u64::MAX;
    let mut still = 0;
    while still < 5 {
        assert!(Instant::now() < deadline, "the attack never stalled");
        thread::sleep(Duration::from_millis(200));
        let now = written.load(Ordering::SeqCst);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    eprintln!("the attackers stalled after {} MiB", last >> 20);

    let mut victim = TcpStream::connect(echo_addr).expect("connect");
    victim
        .set_read_timeout(Some(VICTIM_PATIENCE))
        .expect("timeout");
    let message = b"the victim's bytes come back";
    victim.write_all(message).expect("victim write");
    let mut back = vec![0u8; message.len()];
    victim
        .read_exact(&mut back)
        .unwrap_or_else(|e| panic!("the victim on the other listener was starved: {e}"));
    assert_eq!(&back, message);

    let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let stats = admin::stats(admin_addr);
    eprintln!(
        "buffers during the attack: {}",
        stats.workers()[0]["buffers"]
    );
    stop.store(true, Ordering::SeqCst);
    for a in attackers {
        drop(a.join().expect("attacker"));
    }
    drop(victim);
    drop(proxy);
}
