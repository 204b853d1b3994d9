//! Running short of file descriptors is ringway's own trouble, never the
//! upstream's: under a low open-file limit and a burst of clients, every
//! client gets an answer, the `local_resources` error or a refused
//! connection; no endpoint is counted as failed or held out, and the admin
//! API keeps answering while the clients hold every connection they got.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use ringway_kit::admin::{self, read_response};
use ringway_kit::limits::raise_fd_limit;
use ringway_kit::origin::CountingOrigin;
use ringway_kit::{wait, Ringway};
use ringway_tests::http_client::{HttpConn, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::http_wire::WireError;
use ringway_tests::net::{set_timeouts, try_client};
use ringway_tests::ProxyConfig;

/// The proxy's open-file limit, soft and hard (so it cannot raise it):
/// about twenty go to its rings, eventfds, listeners, admin API and stdio,
/// which leaves far fewer than two per client of the burst.
const FD_LIMIT: u64 = 64;
/// Clients that connect at once and keep their connection until the test
/// has looked at the admin API.
const CLIENTS: usize = 60;
/// How long a client waits for its answer. A client left in the accept
/// queue of a proxy that cannot accept never gets one: this bounds that.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the admin API may take to answer during the burst.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole burst may take to play out.
const BURST_TIMEOUT: Duration = Duration::from_secs(60);

/// What one client of the burst got.
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "the texts are read through Debug, in failure messages"
)]
enum Outcome {
    /// A complete response: status, `x-ringway-error`, body.
    Answered(u16, Option<String>, String),
    /// The connection was refused, reset or closed before any byte of an
    /// answer: the proxy turned the client away.
    Refused(String),
    /// Anything else (a timeout: the client was neither served nor
    /// refused).
    Failed(String),
}

impl Outcome {
    /// An answer from the origin, or one of the two ways ringway may turn
    /// a client away when it is short of descriptors.
    fn acceptable(&self) -> bool {
        match self {
            Outcome::Answered(200, None, body) => body == "fine",
            Outcome::Answered(503, Some(reason), _) => reason == "local_resources",
            Outcome::Refused(_) => true,
            _ => false,
        }
    }
}

fn refused(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// One client of the HTTP burst: connects, asks, reads the answer. Returns
/// the connection too, so that the caller holds it open.
fn http_client(listen: SocketAddr) -> (Outcome, Option<HttpConn>) {
    match HttpConn::try_open(listen) {
        Ok(conn) => ask(conn),
        Err(e) if refused(&e) => (Outcome::Refused(e.to_string()), None),
        Err(e) => (Outcome::Failed(format!("connect: {e}")), None),
    }
}

/// Asks for `/burst` on `conn` and reads the answer.
fn ask(mut conn: HttpConn) -> (Outcome, Option<HttpConn>) {
    conn.set_timeouts(ANSWER_TIMEOUT);
    if let Err(e) = conn.try_send_raw(&Req::get("/burst").to_bytes()) {
        let outcome = if refused(&e) {
            Outcome::Refused(e.to_string())
        } else {
            Outcome::Failed(format!("send: {e}"))
        };
        return (outcome, None);
    }
    let outcome = match conn.try_read(false) {
        Ok(r) => Outcome::Answered(
            r.status,
            r.header("x-ringway-error").map(str::to_owned),
            r.body_text(),
        ),
        Err(WireError::Eof) => Outcome::Refused("closed before an answer".to_owned()),
        Err(WireError::Io(e)) if refused(&e) => Outcome::Refused(e.to_string()),
        Err(e) => Outcome::Failed(format!("read: {e}")),
    };
    (outcome, Some(conn))
}

/// One client of the TCP burst: connects, sends a line, reads its echo.
fn tcp_client(listen: SocketAddr, i: usize) -> (Outcome, Option<TcpStream>) {
    let mut stream = match try_client(listen) {
        Ok(stream) => stream,
        Err(e) if refused(&e) => return (Outcome::Refused(e.to_string()), None),
        Err(e) => return (Outcome::Failed(format!("connect: {e}")), None),
    };
    set_timeouts(&stream, ANSWER_TIMEOUT);
    let line = format!("client {i}\n");
    let mut echo = vec![0u8; line.len()];
    let result = stream
        .write_all(line.as_bytes())
        .and_then(|()| stream.read_exact(&mut echo));
    let outcome = match result {
        Ok(()) if echo == line.as_bytes() => Outcome::Answered(200, None, "fine".to_owned()),
        Ok(()) => Outcome::Failed(format!("echo {:?}", String::from_utf8_lossy(&echo))),
        Err(e) if refused(&e) || e.kind() == io::ErrorKind::UnexpectedEof => {
            Outcome::Refused(e.to_string())
        }
        Err(e) => Outcome::Failed(e.to_string()),
    };
    (outcome, Some(stream))
}

/// `GET /ready` with every wait bounded by [`ADMIN_TIMEOUT`].
fn ready(admin: SocketAddr) -> Result<u16, String> {
    let stream = TcpStream::connect_timeout(&admin, ADMIN_TIMEOUT).map_err(|e| e.to_string())?;
    set_timeouts(&stream, ADMIN_TIMEOUT);
    let request = format!("GET /ready HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    read_response(&mut BufReader::new(stream), false)
        .map(|r| r.status)
        .map_err(|e| e.to_string())
}

/// Runs `CLIENTS` clients at once; each keeps whatever connection it got
/// until every one has its outcome and `/ready` was asked. Returns the
/// outcomes and what `/ready` said meanwhile.
fn burst<C: Send + 'static>(
    admin: SocketAddr,
    client: impl Fn(usize) -> (Outcome, Option<C>) + Send + Sync + 'static,
) -> (Vec<Outcome>, Result<u16, String>) {
    burst_holding(admin, true, client)
}

/// [`burst`]; with `hold` false, each client closes as soon as it has its
/// outcome, and `/ready` is asked once they all have.
fn burst_holding<C: Send + 'static>(
    admin: SocketAddr,
    hold_connections: bool,
    client: impl Fn(usize) -> (Outcome, Option<C>) + Send + Sync + 'static,
) -> (Vec<Outcome>, Result<u16, String>) {
    let client = Arc::new(client);
    let start = Arc::new(Barrier::new(CLIENTS));
    let hold = Arc::new(Barrier::new(CLIENTS + 1));
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (client, start, hold, tx) = (
                Arc::clone(&client),
                Arc::clone(&start),
                Arc::clone(&hold),
                tx.clone(),
            );
            thread::spawn(move || {
                start.wait();
                let (outcome, conn) = client(i);
                if !hold_connections {
                    drop(conn);
                    let _ = tx.send(outcome);
                    hold.wait();
                    return;
                }
                let _ = tx.send(outcome);
                hold.wait();
                drop(conn);
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = (0..CLIENTS)
        .map(|i| {
            rx.recv_timeout(BURST_TIMEOUT)
                .unwrap_or_else(|_| panic!("only {i} of {CLIENTS} clients finished"))
        })
        .collect();
    let during = ready(admin);
    hold.wait();
    for t in threads {
        t.join().expect("a client thread panicked");
    }
    (outcomes, during)
}

fn assert_burst(outcomes: &[Outcome], during: &Result<u16, String>, proxy: &Ringway) {
    let bad: Vec<&Outcome> = outcomes.iter().filter(|o| !o.acceptable()).collect();
    assert!(
        bad.is_empty(),
        "{} of {CLIENTS} clients got neither an answer nor a clear refusal: {bad:?}\n\
         all outcomes: {outcomes:?}\nringway's stderr:\n{}",
        bad.len(),
        proxy.stderr()
    );
    assert_eq!(
        during,
        &Ok(200),
        "GET /ready during the burst; ringway's stderr:\n{}",
        proxy.stderr()
    );
    let turned_away = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Answered(200, None, _)))
        .count();
    assert!(
        turned_away > 0,
        "every client was served: the burst never met the limit, so it tests nothing"
    );
}

/// Waits until the proxy has let go of every client connection of the burst.
fn wait_idle(admin: SocketAddr) {
    wait::poll(
        "every client connection of the burst closed",
        Duration::from_secs(10),
        || match admin::stats(admin).sum("active") {
            0 => Ok(()),
            n => Err(format!("{n} still open")),
        },
    );
}

/// Once every connection of the burst has ended, the endpoint is not held
/// out: the first request after the burst is served by it.
fn http_served_after_the_burst(config: &HttpConfig, proxy: &Ringway) {
    wait_idle(config.admin);
    let after = HttpConn::open(config.listen).exchange(&Req::get("/after"));
    assert_eq!(
        (after.status, after.body_text().as_str()),
        (200, "fine"),
        "the first request after the burst: {after:?}\nringway's stderr:\n{}",
        proxy.stderr()
    );
}

#[test]
fn http_fd_shortage_is_not_blamed_on_the_upstream() {
    raise_fd_limit();
    let origin = HttpOrigin::ok("fine");
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let proxy = Ringway::start_with_fd_limits(&config.to_toml(), FD_LIMIT, FD_LIMIT);

    let listen = config.listen;
    let (outcomes, during) = burst(config.admin, move |_| http_client(listen));
    assert_burst(&outcomes, &during, &proxy);

    http_served_after_the_burst(&config, &proxy);
    let stats = admin::stats(config.admin);
    assert_eq!(
        stats.sum("connect_failures"),
        0,
        "connect failures counted against a healthy endpoint: {}",
        stats.json
    );
}

#[test]
fn tcp_fd_shortage_is_not_blamed_on_the_upstream() {
    raise_fd_limit();
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]);
    let proxy = Ringway::start_with_fd_limits(&config.to_toml(), FD_LIMIT, FD_LIMIT);

    let listen = config.listen;
    let (outcomes, during) = burst(config.admin, move |i| tcp_client(listen, i));
    assert_burst(&outcomes, &during, &proxy);

    wait_idle(config.admin);
    let (after, _) = tcp_client(config.listen, CLIENTS);
    assert!(
        matches!(after, Outcome::Answered(200, None, _)),
        "the first connection after the burst: {after:?}"
    );
    let stats = admin::stats(config.admin);
    for counter in ["connect_failures", "no_upstream"] {
        assert_eq!(
            stats.sum(counter),
            0,
            "{counter}: a healthy endpoint was blamed: {}",
            stats.json
        );
    }
}

/// With `runtime.max_connections` set past what the descriptors allow, the
/// cap no longer shields the upstream connects: clients that connect first
/// and ask afterwards take every descriptor, and the connects for their
/// requests fail. Those requests get `503 local_resources`, the endpoint is
/// neither counted as failed nor held out, and the shortage is one line on
/// stderr, not one per request.
#[test]
fn connects_short_of_descriptors_answer_local_resources() {
    raise_fd_limit();
    let origin = HttpOrigin::ok("fine");
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let toml = config.to_toml().replacen(
        "[runtime]\n",
        &format!("[runtime]\nmax_connections = {CLIENTS}\n"),
        1,
    );
    let proxy = Ringway::start_with_fd_limits(&toml, FD_LIMIT, FD_LIMIT);
    proxy.wait_for_stderr("may need", Duration::from_secs(5));

    let listen = config.listen;
    let connected = Arc::new(Barrier::new(CLIENTS));
    let (outcomes, _) = burst_holding(config.admin, false, move |_| {
        // Every client connects before any asks, so that the proxy has
        // accepted all it can when the first request needs a descriptor.
        let conn = HttpConn::try_open(listen);
        connected.wait();
        match conn {
            Ok(conn) => ask(conn),
            Err(e) => (Outcome::Failed(format!("connect: {e}")), None),
        }
    });
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Answered(..)) || !o.acceptable())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {CLIENTS} clients got neither the origin's answer nor 503 local_resources: \
         {bad:?}\nall outcomes: {outcomes:?}\nringway's stderr:\n{}",
        bad.len(),
        proxy.stderr()
    );

    http_served_after_the_burst(&config, &proxy);
    let stats = admin::stats(config.admin);
    assert_eq!(stats.sum("connect_failures"), 0, "{}", stats.json);
    let local = stats.sum("connect_local_failures");
    let answered = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Answered(503, ..)))
        .count();
    assert_eq!(
        local as usize, answered,
        "every 503 local_resources is a connect that met the shortage: {}",
        stats.json
    );
    assert!(
        local > 0,
        "no connect met the shortage: the test tests nothing; outcomes: {outcomes:?}"
    );
    // The control thread writes the line within a second of the burst.
    proxy.wait_for_stderr("out of a local resource", Duration::from_secs(10));
    let lines = proxy
        .stderr()
        .lines()
        .filter(|l| l.contains("out of a local resource"))
        .count();
    assert_eq!(
        lines,
        1,
        "one line for the whole burst; stderr:\n{}",
        proxy.stderr()
    );
}
