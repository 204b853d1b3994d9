//! Live reconfiguration (docs/admin.md, "Reloading"): `POST /config`,
//! `POST /reload`, SIGHUP, the file watch and `ringway reload`. A reload
//! under traffic loses no connection and no byte; a refused one changes
//! nothing; a removed listener drains; a kept one keeps its connections.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ringway_kit::admin;
use ringway_kit::launcher::run_to_exit;
use ringway_kit::ports::free_port;
use ringway_kit::procfs::online_cores;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::config::ExtraListener;
use ringway_tests::data::{self, Transfer};
use ringway_tests::net::{
    ping, read_until_closed, set_timeouts, try_client, wait_until_refused, Ended,
};
use ringway_tests::origin::{self, Origin};
use ringway_tests::up_to_two_cores as cores;
use ringway_tests::{client, ConfigFile, ProxyConfig};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// Bound on waits for things the proxy does soon: a reload applied, a
/// listener closed, a counter caught up.
const WAIT: Duration = Duration::from_secs(10);
/// Bound on a drain: the 1 s drain timeout of the test that cuts, with a
/// wide margin for a busy machine.
const DRAIN_WAIT: Duration = Duration::from_secs(20);
/// Bound on a run of `ringway reload`: more than its own 30 s wait for an
/// answer, which may come only after the agent's 10 s wait for the workers.
const CLI_WAIT: Duration = Duration::from_secs(40);

/// An echoing origin and the number of connections it got.
struct Counted {
    origin: Origin<Transfer>,
}

impl Counted {
    fn start() -> Self {
        Self {
            origin: Origin::start(origin::echo),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.origin.addr()
    }

    fn served(&self) -> u64 {
        self.origin.accepted()
    }
}

/// Opens a connection to `addr` and echoes `len` bytes of the test stream
/// through it; returns what was sent, or what went wrong.
fn echo_once(addr: SocketAddr, len: u64) -> Result<Transfer, String> {
    let stream = try_client(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    let (sent, echoed) = data::round_trip(&stream, len);
    let sent = sent.map_err(|e| format!("sending {len} bytes: {e}"))?;
    let echoed = echoed.map_err(|e| format!("reading the echo of {len} bytes: {e}"))?;
    if sent.bytes != len {
        return Err(format!("sent {} of {len} bytes", sent.bytes));
    }
    if echoed != sent {
        return Err(format!("sent {sent:?}, echoed {echoed:?}"));
    }
    Ok(sent)
}

/// Like [`echo_once`], and checks that the connection reached `to` (and
/// not `not_to`): each origin's count of connections goes up by one and
/// zero.
fn echo_via(addr: SocketAddr, to: &Counted, not_to: &Counted) {
    let (to_before, not_to_before) = (to.served(), not_to.served());
    echo_once(addr, 64 * KIB + 1).unwrap_or_else(|e| panic!("echo through {addr}: {e}"));
    assert_eq!(
        (to.served() - to_before, not_to.served() - not_to_before),
        (1, 0),
        "the connection goes to {} and not to {}",
        to.addr(),
        not_to.addr()
    );
}

/// `POST /config` with `config`; checks it is applied as `generation`.
fn apply(admin_addr: SocketAddr, config: &str, generation: u64) {
    let response = admin::post(admin_addr, "/config", config);
    assert_eq!(
        response.status, 200,
        "POST /config: {response:?}\nconfig:\n{config}"
    );
    assert!(
        response.body.contains(&format!("generation {generation}")),
        "POST /config answers with the generation {generation}: {:?}",
        response.body
    );
}

/// Waits until `/stats` shows `generation` published and run by every
/// worker.
fn wait_generation(admin_addr: SocketAddr, generation: u64) {
    admin::wait_generation(admin_addr, generation, WAIT);
}

/// `GET /config`: its status, the generation header and the body (not the
/// whole response: a `date` header may differ from one second to the next).
fn effective_config(admin_addr: SocketAddr) -> (u16, Option<String>, String) {
    let response = admin::get(admin_addr, "/config");
    let generation = response.header("x-ringway-generation").map(str::to_owned);
    (response.status, generation, response.body)
}

/// What one client thread of [`reload_under_traffic_loses_nothing`] did.
#[derive(Debug, Default)]
struct ClientReport {
    connections: u64,
    bytes: u64,
    failures: Vec<String>,
}

/// Sizes the client threads cycle through: from one byte to over a MiB,
/// none a multiple of a page.
const SIZES: [u64; 5] = [1, 4 * KIB + 1, 300_007, MIB + 3, 64 * KIB - 5];

/// 50 reloads, each changing the endpoints of the listener in use and every
/// other one adding or removing a second listener, while four clients keep
/// echoing streams through the first: no connection fails, every byte
/// comes back, every reload is acknowledged by every worker.
#[test]
fn reload_under_traffic_loses_nothing() {
    const RELOADS: u64 = 50;
    const CLIENTS: usize = 4;
    let a = Counted::start();
    let b = Counted::start();
    let mut config = ProxyConfig::new(&[a.addr()]).worker_cores(&cores());
    let extra = ExtraListener {
        name: "extra".to_owned(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
        endpoints: vec![a.addr()],
    };
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);

    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (stop, started, listen) = (Arc::clone(&stop), Arc::clone(&started), config.listen);
            thread::spawn(move || {
                let mut report = ClientReport::default();
                while report.connections == 0 || !stop.load(Ordering::SeqCst) {
                    let len = SIZES[(i + report.connections as usize) % SIZES.len()];
                    match echo_once(listen, len) {
                        Ok(sent) => report.bytes += sent.bytes,
                        Err(e) => report.failures.push(format!(
                            "client {i}, connection {}: {e}",
                            report.connections
                        )),
                    }
                    report.connections += 1;
                    if report.connections == 1 {
                        started.fetch_add(1, Ordering::SeqCst);
                    }
                }
                report
            })
        })
        .collect();
    // Reload only once every client is under way.
    poll("every client made a connection", WAIT * 6, || {
        let n = started.load(Ordering::SeqCst);
        (n == CLIENTS as u64)
            .then_some(())
            .ok_or(format!("{n} of {CLIENTS}"))
    });

    let mut own = ClientReport::default();
    for i in 1..=RELOADS {
        config.endpoints = match i % 3 {
            1 => vec![b.addr()],
            2 => vec![a.addr(), b.addr()],
            _ => vec![a.addr()],
        };
        if i % 2 == 1 {
            if config.extra_listeners.is_empty() {
                config.extra_listeners.push(extra.clone());
            } else {
                config = config.without_listener("extra");
            }
        }
        apply(config.admin, &config.to_toml(), i + 1);
        // One connection of our own on each listener after every reload:
        // the table just published serves (and both origins get some).
        let mut listeners = vec![config.listen];
        listeners.extend(config.extra_listeners.iter().map(|l| l.listen));
        for listen in listeners {
            let sent = echo_once(listen, 16 * KIB + 7)
                .unwrap_or_else(|e| panic!("after reload {i}, through {listen}: {e}"));
            own.connections += 1;
            own.bytes += sent.bytes;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let reports: Vec<ClientReport> = clients
        .into_iter()
        .map(|c| c.join().expect("a client thread panicked"))
        .collect();

    let failures: Vec<&String> = reports.iter().flat_map(|r| &r.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failed connections:\n{failures:#?}\nringway's stderr:\n{}",
        failures.len(),
        proxy.stderr()
    );
    let stats = admin::stats(config.admin);
    assert_eq!(stats.generation(), RELOADS + 1, "{}", stats.json);
    assert_eq!(
        stats.worker_generations(),
        vec![RELOADS + 1; cores().len()],
        "{}",
        stats.json
    );
    assert_eq!(stats.u64("/reloads"), RELOADS, "{}", stats.json);
    assert_eq!(stats.u64("/reload_failures"), 0, "{}", stats.json);
    assert!(a.served() > 0 && b.served() > 0, "both origins served");
    // Every publication's latency is measured (the measurement ends when
    // the last worker acknowledges; it may trail the answer a little).
    poll("every publication measured", WAIT, || {
        let latency = admin::stats(config.admin).json["publish_latency_us"].clone();
        match latency["count"].as_u64() {
            Some(count) if count >= RELOADS => Ok(()),
            _ => Err(latency.to_string()),
        }
    });

    let exit = proxy.stop();
    exit.assert_clean();
    let connections = own.connections + reports.iter().map(|r| r.connections).sum::<u64>();
    let bytes = own.bytes + reports.iter().map(|r| r.bytes).sum::<u64>();
    assert_eq!(exit.total("accepted"), connections, "{}", exit.stderr);
    assert_eq!(exit.total("bytes_from_clients"), bytes, "{}", exit.stderr);
    assert_eq!(exit.total("bytes_from_upstreams"), bytes, "{}", exit.stderr);
}

/// Editing the file (a new file renamed over it, as editors save) reloads
/// it, every time.
#[test]
fn file_watch_follows_editor_saves() {
    let a = Counted::start();
    let b = Counted::start();
    let config = ProxyConfig::new(&[a.addr()]);
    let file = ConfigFile::new(&config.to_toml());
    let proxy = Ringway::start_file(file.path());
    admin::wait_ready(config.admin, WAIT);
    echo_via(config.listen, &a, &b);

    file.replace(&config.clone().endpoints(&[b.addr()]).to_toml());
    wait_generation(config.admin, 2);
    echo_via(config.listen, &b, &a);

    file.replace(&config.to_toml());
    wait_generation(config.admin, 3);
    echo_via(config.listen, &a, &b);

    let stats = admin::stats(config.admin);
    assert_eq!(stats.u64("/reloads"), 2, "{}", stats.json);
    assert_eq!(stats.u64("/reload_failures"), 0, "{}", stats.json);
    proxy.stop().assert_clean();
}

/// SIGHUP, `POST /reload` and `ringway reload` re-read the file. The file
/// is never edited here, so that the file watch cannot do what the signal
/// should: each reload follows a `POST /config` that made the running
/// configuration differ from the file.
#[test]
fn sighup_and_reload_reread_the_file() {
    let a = Counted::start();
    let b = Counted::start();
    let config = ProxyConfig::new(&[a.addr()]);
    let to_b = config.clone().endpoints(&[b.addr()]).to_toml();
    let file = ConfigFile::new(&config.to_toml());
    let proxy = Ringway::start_file(file.path());
    let admin_addr = config.admin;
    admin::wait_ready(admin_addr, WAIT);
    let pid = Pid::from_raw(i32::try_from(proxy.pid()).expect("pid fits an i32"));

    // SIGHUP brings the file's configuration back.
    apply(admin_addr, &to_b, 2);
    echo_via(config.listen, &b, &a);
    kill(pid, Signal::SIGHUP).expect("sending SIGHUP");
    wait_generation(admin_addr, 3);
    echo_via(config.listen, &a, &b);

    // The file is what runs now: POST /reload has nothing to do.
    let response = admin::post(admin_addr, "/reload", "");
    assert_eq!(response.status, 200, "POST /reload: {response:?}");
    assert!(
        response.body.contains("generation 3"),
        "POST /reload of an unchanged file: {response:?}"
    );
    let stats = admin::stats(admin_addr);
    assert_eq!(stats.generation(), 3, "{}", stats.json);
    assert_eq!(stats.u64("/reloads"), 2, "{}", stats.json);

    // POST /reload after a POST /config.
    apply(admin_addr, &to_b, 4);
    let response = admin::post(admin_addr, "/reload", "");
    assert_eq!(response.status, 200, "POST /reload: {response:?}");
    assert!(response.body.contains("generation 5"), "{response:?}");
    echo_via(config.listen, &a, &b);

    // `ringway reload --admin ADDR` calls POST /reload.
    apply(admin_addr, &to_b, 6);
    let admin_arg = admin_addr.to_string();
    let output = run_to_exit(&["reload", "--admin", &admin_arg], CLI_WAIT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "ringway reload --admin: {output:?}"
    );
    assert!(stdout.contains("generation"), "ringway reload: {stdout:?}");
    assert_eq!(admin::stats(admin_addr).generation(), 7);
    echo_via(config.listen, &a, &b);

    // `ringway reload --pid PID` sends SIGHUP.
    apply(admin_addr, &to_b, 8);
    let pid_arg = proxy.pid().to_string();
    let output = run_to_exit(&["reload", "--pid", &pid_arg], CLI_WAIT);
    assert_eq!(
        output.status.code(),
        Some(0),
        "ringway reload --pid: {output:?}"
    );
    wait_generation(admin_addr, 9);
    echo_via(config.listen, &a, &b);

    // Nobody at the address: exit 1.
    let nobody = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())).to_string();
    let output = run_to_exit(&["reload", "--admin", &nobody], CLI_WAIT);
    assert_eq!(
        output.status.code(),
        Some(1),
        "ringway reload with nothing at the address: {output:?}"
    );

    let stats = admin::stats(admin_addr);
    assert_eq!(stats.u64("/reloads"), 8, "{}", stats.json);
    assert_eq!(stats.u64("/reload_failures"), 0, "{}", stats.json);
    proxy.stop().assert_clean();
}

/// A configuration with two mistakes: a listener naming a missing cluster
/// and a bad duration; returns it and the lines (1-based) of the two.
fn broken(config: &ProxyConfig) -> (String, usize, usize) {
    let text = config
        .clone()
        .connect_timeout("fast")
        .to_toml()
        .replace("cluster = \"app\"", "cluster = \"nope\"");
    let line_of = |needle: &str| {
        1 + text
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} is not in:\n{text}"))
    };
    let (cluster, duration) = (line_of("cluster = \"nope\""), line_of("\"fast\""));
    (text, cluster, duration)
}

/// The line of `text` that starts with `error: ORIGIN:LINE:` and names
/// `key`; panics, showing `text`, when there is none.
fn error_line<'a>(text: &'a str, origin: &str, line: usize, key: &str) -> &'a str {
    let prefix = format!("error: {origin}:{line}:");
    text.lines()
        .find(|l| l.starts_with(&prefix) && l.contains(key))
        .unwrap_or_else(|| panic!("no line `{prefix}...{key}...` in:\n{text}"))
}

/// A refused `POST /config` or file edit: 400 naming file, line and key
/// (or the error on stderr), the failure counted, and the running
/// configuration untouched and serving.
#[test]
fn invalid_reload_keeps_the_old_config() {
    let a = Counted::start();
    let b = Counted::start();
    let config = ProxyConfig::new(&[a.addr()]);
    let file = ConfigFile::new(&config.to_toml());
    let proxy = Ringway::start_file(file.path());
    let admin_addr = config.admin;
    admin::wait_ready(admin_addr, WAIT);
    let before = effective_config(admin_addr);
    assert_eq!(before.0, 200, "GET /config: {before:?}");
    assert_eq!(before.1.as_deref(), Some("1"), "GET /config: {before:?}");
    let (text, cluster_line, duration_line) = broken(&config);

    let response = admin::post(admin_addr, "/config", &text);
    assert_eq!(
        response.status, 400,
        "POST /config of:\n{text}\n{response:?}"
    );
    let origin = "<POST /config>";
    let cluster = error_line(&response.body, origin, cluster_line, "listeners[0].cluster");
    assert!(cluster.contains("nope"), "{cluster}");
    let duration = error_line(
        &response.body,
        origin,
        duration_line,
        "clusters[0].connect_timeout",
    );
    assert!(duration.contains("fast"), "{duration}");
    assert_eq!(
        effective_config(admin_addr),
        before,
        "GET /config after a refused POST"
    );
    echo_via(config.listen, &a, &b);
    assert_eq!(
        admin::metrics(admin_addr).sum("ringway_config_reload_failures_total"),
        1.0
    );

    // The same mistakes saved to the file: refused, and said on stderr.
    file.replace(&text);
    poll("the bad file edit is counted", WAIT, || {
        let failures = admin::metrics(admin_addr).sum("ringway_config_reload_failures_total");
        (failures >= 2.0)
            .then_some(())
            .ok_or(format!("{failures} failures"))
    });
    let path = file.path_str();
    let cluster = proxy.wait_for_stderr(&format!("{path}:{cluster_line}:"), WAIT);
    assert!(cluster.contains("listeners[0].cluster"), "{cluster}");
    let duration = proxy.wait_for_stderr(&format!("{path}:{duration_line}:"), WAIT);
    assert!(
        duration.contains("clusters[0].connect_timeout"),
        "{duration}"
    );
    assert_eq!(
        effective_config(admin_addr),
        before,
        "GET /config after a refused file edit"
    );
    echo_via(config.listen, &a, &b);

    // `ringway reload` of the bad file: exit 2, the errors printed.
    let admin_arg = admin_addr.to_string();
    let output = run_to_exit(&["reload", "--admin", &admin_arg], CLI_WAIT);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(2), "ringway reload: {printed}");
    error_line(&printed, path, cluster_line, "listeners[0].cluster");

    // A good edit after the bad one applies.
    file.replace(&config.clone().endpoints(&[b.addr()]).to_toml());
    wait_generation(admin_addr, 2);
    echo_via(config.listen, &b, &a);

    let stats = admin::stats(admin_addr);
    assert_eq!(stats.u64("/reload_failures"), 3, "{}", stats.json);
    assert_eq!(stats.u64("/reloads"), 1, "{}", stats.json);
    assert_eq!(
        admin::metrics(admin_addr).sum("ringway_config_reload_failures_total"),
        3.0
    );
    proxy.stop().assert_clean();
}

/// Settings the workers were started with cannot change while running:
/// each such change is refused, naming the key on its line.
#[test]
fn fixed_settings_cannot_be_reloaded() {
    let a = Counted::start();
    let b = Counted::start();
    let config = ProxyConfig::new(&[a.addr()]);
    let proxy = Ringway::start(&config.to_toml());
    let admin_addr = config.admin;
    admin::wait_ready(admin_addr, WAIT);
    let good = config.to_toml();

    // (changed text, text of the changed line, key named)
    let mut changes = vec![
        (
            config.clone().drain_timeout("7s").to_toml(),
            "drain_timeout = \"7s\"".to_owned(),
            "runtime.drain_timeout",
        ),
        (
            good.replace("[runtime]\n", "[runtime]\nbuffer_size = 65536\n"),
            "buffer_size = 65536".to_owned(),
            "runtime.buffer_size",
        ),
        (
            good.replace("[runtime]\n", "[runtime]\ncontrol_core = 0\n"),
            "control_core = 0".to_owned(),
            "control_core",
        ),
    ];
    let moved_admin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let mut moved = config.clone();
    moved.admin = moved_admin;
    changes.push((
        moved.to_toml(),
        format!("address = \"{moved_admin}\""),
        "admin.address",
    ));
    if online_cores() >= 2 {
        changes.push((
            config.clone().worker_cores(&[0, 1]).to_toml(),
            "worker_cores = [0, 1]".to_owned(),
            "runtime.worker_cores",
        ));
    }

    for (text, changed, key) in &changes {
        let line = 1 + text
            .lines()
            .position(|l| l == changed)
            .unwrap_or_else(|| panic!("{changed:?} is not a line of:\n{text}"));
        let response = admin::post(admin_addr, "/config", text);
        assert_eq!(
            response.status, 400,
            "POST /config of:\n{text}\n{response:?}"
        );
        error_line(&response.body, "<POST /config>", line, key);
    }

    let stats = admin::stats(admin_addr);
    assert_eq!(stats.generation(), 1, "{}", stats.json);
    assert_eq!(
        stats.u64("/reload_failures"),
        changes.len() as u64,
        "{}",
        stats.json
    );
    echo_via(config.listen, &a, &b);
    // The admin API stayed where it was, and nothing listens on the address
    // a refused reload asked for.
    assert!(TcpStream::connect_timeout(&moved_admin, Duration::from_secs(1)).is_err());
    proxy.stop().assert_clean();
}

/// A proxy whose listener `extra` was removed by a reload while `open`, a
/// connection it had accepted (and echoed through), stayed open.
struct Removed {
    /// The echo origin behind both listeners.
    origin: Counted,
    /// The configuration before the reload (it still has `extra`).
    config: ProxyConfig,
    /// Where `extra` listened.
    extra: SocketAddr,
    proxy: Ringway,
    open: TcpStream,
}

/// Starts a proxy with listeners `ingress` and `extra` and the given drain
/// timeout, opens a connection on `extra`, then reloads without `extra`
/// (generation 2).
fn remove_extra_with_a_connection_open(drain_timeout: &str) -> Removed {
    let origin = Counted::start();
    let config = ProxyConfig::new(&[origin.addr()])
        .listener("extra", &[origin.addr()])
        .drain_timeout(drain_timeout);
    let extra = config.listener_addr("extra");
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);
    let mut open = client(extra);
    ping(&mut open, b"before the reload");
    apply(
        config.admin,
        &config.clone().without_listener("extra").to_toml(),
        2,
    );
    Removed {
        origin,
        config,
        extra,
        proxy,
        open,
    }
}

/// A removed listener stops accepting at once, and a connection it had
/// accepted goes on to its natural end.
#[test]
fn removed_listener_stops_accepting_and_lets_open_connections_finish() {
    let Removed {
        origin: _origin,
        config,
        extra,
        proxy,
        mut open,
    } = remove_extra_with_a_connection_open("60s");
    let admin_addr = config.admin;
    wait_until_refused(extra, WAIT).unwrap_or_else(|last| panic!("{extra} still accepts: {last}"));
    echo_once(config.listen, MIB).expect("the kept listener serves");

    // The connection accepted before goes on, and ends cleanly.
    ping(&mut open, b"after the reload");
    let (sent, echoed) = data::round_trip(&open, 3 * MIB + 1);
    let sent = sent.expect("sending on the drained connection");
    assert_eq!(echoed.expect("reading its echo"), sent);

    poll("no connection active", WAIT, || {
        let stats = admin::stats(admin_addr);
        (stats.sum("active") == 0)
            .then_some(())
            .ok_or(stats.json.to_string())
    });
    let stats = admin::stats(admin_addr);
    assert_eq!(stats.sum("drain_cuts"), 0, "{}", stats.json);
    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("cut_at_drain"), 0);
}

/// A connection still open on a removed listener when
/// `runtime.drain_timeout` runs out is closed by the proxy, and counted.
#[test]
fn removed_listener_cuts_connections_after_the_drain_timeout() {
    let Removed {
        origin: _origin,
        config,
        proxy,
        mut open,
        ..
    } = remove_extra_with_a_connection_open("1s");
    let admin_addr = config.admin;
    set_timeouts(&open, DRAIN_WAIT);
    let ended = read_until_closed(&mut open);
    assert!(
        matches!(ended, Ok(Ended::Eof(0) | Ended::Reset(0))),
        "the proxy closes the connection within {DRAIN_WAIT:?}: {ended:?}"
    );
    let cuts = poll("the cut is counted", WAIT, || {
        let stats = admin::stats(admin_addr);
        let cuts = stats.sum("drain_cuts");
        (cuts >= 1).then_some(cuts).ok_or(stats.json.to_string())
    });
    assert_eq!(cuts, 1);
    echo_once(config.listen, MIB).expect("the kept listener serves");
    proxy.stop().assert_clean();
}

/// A listener kept across a reload keeps its open connections on the table
/// they started with (the old endpoint); new connections use the new one.
#[test]
fn kept_listener_keeps_open_connections_on_their_endpoint() {
    let a = Counted::start();
    let b = Counted::start();
    let config = ProxyConfig::new(&[a.addr()]);
    let proxy = Ringway::start(&config.to_toml());
    let admin_addr = config.admin;
    admin::wait_ready(admin_addr, WAIT);
    let mut open = client(config.listen);
    let hello = b"opened before the reload";
    ping(&mut open, hello);
    assert_eq!((a.served(), b.served()), (1, 0));

    apply(
        admin_addr,
        &config.clone().endpoints(&[b.addr()]).to_toml(),
        2,
    );
    let (sent, echoed) = data::round_trip(&open, 2 * MIB + 3);
    let sent = sent.expect("sending on the open connection");
    assert_eq!(echoed.expect("reading its echo"), sent);
    assert_eq!(
        (a.served(), b.served()),
        (1, 0),
        "the open connection stayed on its origin"
    );
    let got = a.origin.next_ok(WAIT);
    assert_eq!(got.bytes, hello.len() as u64 + sent.bytes);

    let sent = echo_once(config.listen, MIB + 1).expect("a new connection");
    assert_eq!(
        (a.served(), b.served()),
        (1, 1),
        "a new connection goes to B"
    );
    assert_eq!(b.origin.next_ok(WAIT), sent);
    proxy.stop().assert_clean();
}

/// `PUT /clusters/{name}/endpoints` (`body`, a JSON array); returns the
/// response.
fn put_endpoints(admin_addr: SocketAddr, cluster: &str, body: &str) -> admin::Response {
    let path = format!("/clusters/{cluster}/endpoints");
    admin::request(admin_addr, "PUT", &path, Some(body))
        .unwrap_or_else(|e| panic!("PUT {path}: {e}"))
}

/// Endpoint updates through `PUT /clusters/{name}/endpoints` apply to new
/// connections; bad ones are refused entry by entry, an unknown cluster is
/// 404; and since the running configuration then differs from the file,
/// `POST /reload` of the unchanged file applies it again.
#[test]
fn endpoint_update_applies_and_a_reload_restores_the_file() {
    let a = Counted::start();
    let b = Counted::start();
    let config = ProxyConfig::new(&[a.addr()]);
    let file = ConfigFile::new(&config.to_toml());
    let proxy = Ringway::start_file(file.path());
    let admin_addr = config.admin;
    admin::wait_ready(admin_addr, WAIT);

    let response = put_endpoints(admin_addr, "app", &format!("[\"{}\"]", b.addr()));
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.body.contains("generation 2"), "{response:?}");
    echo_via(config.listen, &b, &a);
    let (status, generation, effective) = effective_config(admin_addr);
    assert_eq!((status, generation.as_deref()), (200, Some("2")));
    assert!(
        effective.contains(&b.addr().to_string()) && !effective.contains(&a.addr().to_string()),
        "GET /config shows the new endpoint only:\n{effective}"
    );

    let response = put_endpoints(admin_addr, "nope", &format!("[\"{}\"]", a.addr()));
    assert_eq!(response.status, 404, "unknown cluster: {response:?}");
    let response = put_endpoints(
        admin_addr,
        "app",
        &format!("[\"localhost:80\", \"{}\", \"127.0.0.1\"]", a.addr()),
    );
    assert_eq!(response.status, 400, "bad entries: {response:?}");
    let errors: Vec<&str> = response
        .body
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 2, "one line per bad entry: {response:?}");
    assert!(errors[0].starts_with("error: endpoints[0]: "), "{errors:?}");
    assert!(errors[1].starts_with("error: endpoints[2]: "), "{errors:?}");
    for body in ["[]", "127.0.0.1:80", "{\"endpoints\": []}"] {
        let response = put_endpoints(admin_addr, "app", body);
        assert_eq!(response.status, 400, "PUT of {body:?}: {response:?}");
    }
    // Nothing refused changed anything.
    assert_eq!(admin::stats(admin_addr).generation(), 2);
    echo_via(config.listen, &b, &a);

    // The file still says A, and no longer matches what runs.
    let response = admin::post(admin_addr, "/reload", "");
    assert_eq!(response.status, 200, "POST /reload: {response:?}");
    assert!(response.body.contains("generation 3"), "{response:?}");
    echo_via(config.listen, &a, &b);

    let exit = proxy.stop();
    exit.assert_clean();
    // Refused updates are logged, successful ones are not.
    assert!(
        exit.stderr
            .lines()
            .any(|l| l.contains("PUT /clusters/app/endpoints") && l.contains("endpoints[0]")),
        "{}",
        exit.stderr
    );
    assert!(
        !exit.stderr.lines().any(|l| l.contains("generation 2")),
        "{}",
        exit.stderr
    );
}

/// With the control thread pinned to a core of its own, reloads still see
/// every core the workers may use (the pinned thread alone sees one).
#[test]
fn reloads_work_with_a_pinned_control_core() {
    if online_cores() < 2 {
        eprintln!("skipped: needs 2 cores (workers on core 1, control on core 0)");
        return;
    }
    let a = Counted::start();
    let b = Counted::start();
    let mut config = ProxyConfig::new(&[a.addr()]).worker_cores(&[1]);
    let pinned = |c: &ProxyConfig| {
        c.to_toml()
            .replacen("[runtime]\n", "[runtime]\ncontrol_core = 0\n", 1)
    };
    let proxy = Ringway::start(&pinned(&config));
    admin::wait_ready(config.admin, WAIT);
    config.endpoints = vec![b.addr()];
    apply(config.admin, &pinned(&config), 2);
    echo_once(config.listen, 4 * KIB).expect("through the new endpoint");
    assert!(b.served() > 0, "the reloaded endpoint serves");
    proxy.stop().assert_clean();
}

/// Frequent endpoint updates must not make round robin restart at the same
/// endpoint each time: after a publication before every connection, the
/// endpoints still share the connections evenly.
#[test]
fn round_robin_carries_on_across_publications() {
    let origins = [Counted::start(), Counted::start(), Counted::start()];
    let endpoints: Vec<SocketAddr> = origins.iter().map(Counted::addr).collect();
    let config = ProxyConfig::new(&endpoints);
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);
    let body = format!(
        "[{}]",
        endpoints
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for i in 0..30u64 {
        // The same endpoints each time: every PUT is still a new generation.
        let response = admin::request(config.admin, "PUT", "/clusters/app/endpoints", Some(&body))
            .expect("PUT /clusters/app/endpoints");
        assert_eq!(response.status, 200, "{response:?}");
        assert!(response.body.contains(&format!("generation {}", i + 2)));
        echo_once(config.listen, KIB).expect("a connection through the cluster");
    }
    let served: Vec<u64> = origins.iter().map(Counted::served).collect();
    assert_eq!(served, vec![10, 10, 10], "connections per endpoint");
    proxy.stop().assert_clean();
}
