//! A storm of clients never takes the descriptors ringway keeps for its
//! control thread: while a worker works through a backlog far larger than
//! its open-file limit, and then turns away every client past its share of
//! connections, the admin API keeps answering and a reload can still bind a
//! new listener; the worker's accepts never run out of descriptors, and
//! every connection it accepted gets its upstream connection.
//!
//! The backlog is filled while ringway is stopped (`SIGSTOP`), as a worker
//! that the scheduler leaves off its core for a while under load finds it:
//! every wave of clients is waiting when the worker runs again.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use nix::sys::signal::Signal;
use ringway_kit::admin;
use ringway_kit::launcher::READY_TIMEOUT;
use ringway_kit::limits::raise_fd_limit;
use ringway_kit::Ringway;
use ringway_tests::net::try_client;
use ringway_tests::origin::{self, Origin};
use ringway_tests::ProxyConfig;

/// The proxy's open-file limit, soft and hard (so it cannot raise it).
const FD_LIMIT: u64 = 128;
/// Clients of one wave: more than the proxy may open in all, so a worker
/// that accepted a whole waiting wave at once would run out of descriptors.
const WAVE: usize = 160;
/// Waves: the first finds the worker with room, the others find it holding
/// its share of connections.
const WAVES: usize = 3;

/// What one client of a wave got.
#[derive(Debug)]
enum Outcome {
    /// Its line came back: the proxy serves it.
    Served(TcpStream),
    /// Reset or closed before any echo: the proxy turned it away.
    Refused,
    /// Anything else (a timeout: neither served nor turned away).
    Failed(String),
}

fn turned_away(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Sends a line on `stream` and waits for its echo.
fn outcome(mut stream: TcpStream, i: usize) -> Outcome {
    let line = format!("client {i}\n");
    let mut echo = vec![0u8; line.len()];
    let result = stream
        .write_all(line.as_bytes())
        .and_then(|()| stream.read_exact(&mut echo));
    match result {
        Ok(()) if echo == line.as_bytes() => Outcome::Served(stream),
        Ok(()) => Outcome::Failed(format!("echo {:?}", String::from_utf8_lossy(&echo))),
        Err(e) if turned_away(&e) => Outcome::Refused,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// The per-worker share of connections the start-up line announces.
fn share(proxy: &Ringway) -> usize {
    let line = proxy.wait_for_stderr("client connections at once", READY_TIMEOUT);
    line.split(" per worker")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no per-worker share in {line:?}"))
}

/// The admin calls of one wave: a look at the stats, a reload that binds a
/// new listener, another look, a reload that removes it. Returns what went
/// wrong.
fn use_the_admin_api(config: &ProxyConfig, with: &ProxyConfig, wave: usize) -> Vec<String> {
    let calls = [
        ("GET", "/stats", None),
        ("POST", "/config", Some(with.to_toml())),
        ("GET", "/stats", None),
        ("POST", "/config", Some(config.to_toml())),
    ];
    let mut failures = Vec::new();
    for (method, path, body) in calls {
        match admin::request(config.admin, method, path, body.as_deref()) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => failures.push(format!(
                "wave {wave}: {method} {path}: {} {}",
                r.status,
                r.body.trim_end()
            )),
            Err(e) => failures.push(format!("wave {wave}: {method} {path}: {e}")),
        }
    }
    failures
}

#[test]
fn a_storm_of_clients_leaves_the_control_thread_its_descriptors() {
    raise_fd_limit();
    let origin = Origin::start(origin::echo);
    let config = ProxyConfig::new(&[origin.addr()]);
    let with = config.clone().listener("extra", &[origin.addr()]);
    let proxy = Ringway::start_with_fd_limits(&config.to_toml(), FD_LIMIT, FD_LIMIT);
    let share = share(&proxy);
    assert!(
        share < WAVE,
        "a share of {share} takes a whole wave: the test tests nothing"
    );

    let listen: SocketAddr = config.listen;
    let mut served = Vec::new();
    let mut refused = 0;
    let mut failures = Vec::new();
    for wave in 0..WAVES {
        proxy.signal(Signal::SIGSTOP);
        // The kernel completes these connects into the listener's backlog.
        let clients: Vec<io::Result<TcpStream>> = (0..WAVE).map(|_| try_client(listen)).collect();
        proxy.signal(Signal::SIGCONT);
        failures.extend(use_the_admin_api(&config, &with, wave));
        for (i, client) in clients.into_iter().enumerate() {
            let outcome = match client {
                Ok(stream) => outcome(stream, i),
                // `SIGSTOP` takes a moment to stop every thread: the worker
                // may turn a client away while its connect returns.
                Err(e) if turned_away(&e) => Outcome::Refused,
                Err(e) => Outcome::Failed(format!("connect: {e}")),
            };
            match outcome {
                Outcome::Served(stream) => served.push(stream),
                Outcome::Refused => refused += 1,
                Outcome::Failed(e) => failures.push(format!("wave {wave}, client {i}: {e}")),
            }
        }
    }

    assert!(
        failures.is_empty(),
        "{failures:#?}\nringway's stderr:\n{}",
        proxy.stderr()
    );
    let stats = admin::stats(config.admin);
    for counter in ["accept_errors", "connect_local_failures"] {
        assert_eq!(
            stats.sum(counter),
            0,
            "{counter}: the worker ran out of descriptors: {}\nringway's stderr:\n{}",
            stats.json,
            proxy.stderr()
        );
    }
    // Every client past the share was turned away, none before it.
    assert_eq!(
        (served.len(), refused),
        (share, WAVES * WAVE - share),
        "served, refused; stats: {}",
        stats.json
    );
    assert_eq!(stats.sum("refused"), (WAVES * WAVE - share) as u64);
    eprintln!(
        "{WAVES} waves of {WAVE}: {} served, {refused} refused",
        served.len()
    );
    drop(served);
    proxy.stop().assert_clean();
}
