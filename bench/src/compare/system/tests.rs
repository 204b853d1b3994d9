//! Starting, measuring and stopping the real systems.
//!
//! A proxy whose binary is absent (nginx and HAProxy on CI, ringway when it
//! was not built with `cargo build -p ringway-control --bin ringway`) is not
//! run; its test then checks that [`missing`] says why, so that every test
//! checks something on every machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Instant;

use ringway_kit::origin::{CountingOrigin, Settings};

use super::*;
use crate::compare::admission;
use crate::compare::observe::{self, Collector};
use crate::compare::pki::Pki;
use crate::compare::scenario::IoBackend;
use crate::compare::sidecar::{self, Ends};

/// How long a test client waits for an answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The headers every proxy must add to a request (see `configs`).
const ADDED_HEADERS: [&str; 4] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
];

/// The ringway binary next to the test binary's directory
/// (`<target>/debug/deps/..`), or `$RINGWAY_BIN`.
fn ringway_binary() -> PathBuf {
    if let Some(path) = env::var_os("RINGWAY_BIN") {
        return PathBuf::from(path);
    }
    let exe = env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .map(|debug| debug.join("ringway"))
        .expect("the test binary lives in <target>/<profile>/deps")
}

fn binaries() -> Binaries {
    // The baseline is ringway itself: the same code under a second name.
    Binaries::find(ringway_binary(), Some(ringway_binary()))
}

/// The last core this process may run on.
fn proxy_core() -> usize {
    core_affinity::get_core_ids()
        .and_then(|ids| ids.last().map(|id| id.id))
        .unwrap_or(0)
}

/// A loopback address for a system to listen on: from this process's
/// block of ports, off the ephemeral range, so that no test's connection
/// and no `bind(:0)` can take it before the system binds it.
fn free_addr() -> SocketAddr {
    ringway_kit::ports::free_addr()
}

fn layout(mode: Mode, origin: SocketAddr, dir: &Path) -> Layout {
    Layout {
        mode,
        proxy_core: proxy_core(),
        control_core: None,
        listen: free_addr(),
        origins: vec![origin],
        admin: free_addr(),
        max_connections: 100,
        concurrent: 4,
        dir: dir.to_owned(),
        table: configs::Table::default(),
        splice: false,
        tuning: configs::Tuning::default(),
        tls: None,
        upstream_tls: None,
        observe: configs::Observe::default(),
    }
}

/// An HTTP/1.1 keep-alive origin on a loopback port that records the
/// head of every request it gets.
fn http_origin() -> CountingOrigin {
    CountingOrigin::serving(Settings::http(2).recording())
}

/// The names of the header fields of the one request `origin` recorded,
/// lower-case.
fn header_names(origin: &CountingOrigin) -> Vec<String> {
    let heads = origin.served().heads;
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads.keys().next().expect("one head");
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect()
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let conn = TcpStream::connect(addr).expect("connect to the system");
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("set a read timeout");
    BufReader::new(conn)
}

/// Sends `GET /` on `conn` and reads the answer: `(status, body)`.
fn get(conn: &mut BufReader<TcpStream>) -> (u16, String) {
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n")
        .expect("send a request");
    let mut line = String::new();
    conn.read_line(&mut line).expect("read the status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line, got {line:?}"));
    let mut length = 0;
    loop {
        line.clear();
        conn.read_line(&mut line).expect("read a header line");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("a numeric content-length");
            }
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).expect("read the body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Sends `data` on `conn` and reads as many bytes back.
fn echo(conn: &mut BufReader<TcpStream>, data: &[u8]) -> Vec<u8> {
    conn.get_mut().write_all(data).expect("send to the echo");
    let mut back = vec![0; data.len()];
    conn.read_exact(&mut back).expect("read the echo");
    back
}

/// Keeps `work` going until `running` has been charged CPU time (ticks are
/// coarse: a freshly started proxy may show none yet), then checks the
/// measurements.
fn check_measures(running: &Running, expected_processes: usize, mut work: impl FnMut()) {
    let pids = running.pids();
    assert_eq!(pids.len(), expected_processes, "pids: {pids:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while running.cpu_ticks() == 0 && Instant::now() < deadline {
        for _ in 0..200 {
            work();
        }
    }
    assert!(running.cpu_ticks() > 0, "no CPU time charged to {pids:?}");
    let rss = running.rss_kib();
    assert!(rss > 0);
    assert!(running.peak_rss_kib() >= rss);
}

/// Stops `running` and checks none of its processes is left.
fn stop_and_check_gone(running: Running) {
    let pids = running.pids();
    assert!(!pids.is_empty());
    running.stop().expect("the system stops cleanly");
    for pid in pids {
        assert!(!procfs::is_running(pid), "process {pid} survived stop()");
    }
}

/// If `kind` cannot run here, checks that [`missing`] agrees with what
/// [`Binaries::find`] found and returns `true` (the caller skips the rest).
fn absent(kind: Kind, bins: &Binaries, mode: Mode) -> bool {
    let Some(reason) = missing(kind, bins, mode) else {
        return false;
    };
    match kind {
        Kind::Direct => panic!("direct always runs, got {reason}"),
        Kind::Ringway => {
            assert!(!bins.ringway.exists(), "{reason}");
            assert!(reason.contains("cargo build"), "{reason}");
        }
        Kind::Baseline => assert!(reason.contains("baseline"), "{reason}"),
        Kind::Nginx if bins.nginx.is_some() => {
            assert_eq!(mode, Mode::Tcp, "{reason}");
            assert!(
                matches!(bins.nginx_stream, NginxStream::Missing(_)),
                "{reason}"
            );
        }
        Kind::Nginx => assert!(reason.contains("install-peers.sh"), "{reason}"),
        Kind::Haproxy => {
            assert!(bins.haproxy.is_none(), "{reason}");
            assert!(reason.contains("install-peers.sh"), "{reason}");
        }
    }
    let err = Running::start(
        kind,
        &layout(mode, free_addr(), Path::new("/nonexistent")),
        bins,
    )
    .expect_err("an absent system does not start");
    assert!(matches!(err, SystemError::Unavailable { .. }), "{err}");
    eprintln!("{kind} ({mode}) not run: {reason}");
    true
}

/// Runs `kind` in HTTP mode in front of a test origin.
fn http_round_trip(kind: Kind, expected_processes: usize) {
    let bins = binaries();
    if absent(kind, &bins, Mode::Http) {
        return;
    }
    let dir = tempfile::tempdir().expect("a run directory");
    let origin = http_origin();
    let layout = layout(Mode::Http, origin.addr(), dir.path());
    let running = Running::start(kind, &layout, &bins).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(running.target(), layout.listen);
    let files = running.files();
    assert_eq!(files.len(), 2, "a config and a log: {files:?}");
    let config = files[0];
    assert!(config.starts_with(dir.path()) && config.is_file());
    let mut conn = connect(running.target());
    let (status, body) = get(&mut conn);
    assert_eq!(status, 200, "body: {body}");
    // The origin recorded the head before it answered.
    let names = header_names(&origin);
    for header in ADDED_HEADERS {
        assert!(
            names.iter().any(|name| name == header),
            "{kind} did not add {header}: {names:?}"
        );
    }
    check_measures(&running, expected_processes, || {
        assert_eq!(get(&mut conn).0, 200);
    });
    drop(conn);
    stop_and_check_gone(running);
}

/// Runs `kind` in TCP mode in front of an echo origin.
fn tcp_round_trip(kind: Kind, expected_processes: usize) {
    let bins = binaries();
    if absent(kind, &bins, Mode::Tcp) {
        return;
    }
    let dir = tempfile::tempdir().expect("a run directory");
    let origin = CountingOrigin::echo();
    let layout = layout(Mode::Tcp, origin.addr(), dir.path());
    let running = Running::start(kind, &layout, &bins).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(running.target(), layout.listen);
    let mut conn = connect(running.target());
    assert_eq!(echo(&mut conn, b"ping"), b"ping");
    let chunk = vec![0x5a; 64 * 1024];
    check_measures(&running, expected_processes, || {
        assert_eq!(echo(&mut conn, &chunk).len(), chunk.len());
    });
    drop(conn);
    stop_and_check_gone(running);
}

/// Runs `kind` as a sidecar pair with mutual TLS between its halves, in
/// front of a test origin (HTTP: one that records heads; TCP: an echo),
/// each half with `processes` processes.
fn pair_round_trip(kind: Kind, mode: Mode, processes: usize) {
    let bins = binaries();
    if absent(kind, &bins, mode) {
        return;
    }
    let dir = tempfile::tempdir().expect("a run directory");
    let origin = match mode {
        Mode::Http => http_origin(),
        Mode::Tcp => CountingOrigin::echo(),
    };
    let tls = ListenerTls {
        pki: Pki::mint(&dir.path().join("tls")).expect("the run's certificates"),
        client_auth: true,
    };
    let single = Layout {
        tls: Some(tls.clone()),
        ..layout(mode, origin.addr(), dir.path())
    };
    let ends = Ends {
        listen: free_addr(),
        admin: free_addr(),
    };
    let (outbound, inbound) = sidecar::split(single, ends);
    let running =
        Running::start_pair(kind, &outbound, &inbound, &bins).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(running.target(), outbound.listen);
    assert_eq!(running.tls(), None, "the clients speak plaintext");
    assert_eq!(running.inbound(), Some((ends.listen, Some(&tls))));
    let files = running.files();
    assert_eq!(files.len(), 4, "two configs, two logs: {files:?}");
    assert!(files.iter().all(|f| f.is_file()), "{files:?}");
    let mut conn = connect(running.target());
    match mode {
        Mode::Http => {
            assert_eq!(get(&mut conn).0, 200);
            // The inbound half terminated TLS, and says so upstream.
            let heads = origin.served().heads;
            let head = heads.keys().next().expect("one request");
            assert!(
                head.lines()
                    .any(|l| l.eq_ignore_ascii_case("x-forwarded-proto: https")),
                "{head}"
            );
        }
        Mode::Tcp => assert_eq!(echo(&mut conn, b"ping"), b"ping"),
    }
    // The inbound half requires the client certificate the outbound one
    // presents.
    let probe: &[u8] = match mode {
        Mode::Http => b"GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n",
        Mode::Tcp => b"probe",
    };
    let admission = admission::check("pair", "inbound", ends.listen, &tls, mode, probe)
        .expect("the admission check runs");
    assert!(admission.as_configured(), "{admission:?}");
    // Both halves' processes count, and each half's CPU apart.
    let chunk = vec![0x5a; 64 * 1024];
    check_measures(&running, 2 * processes, || match mode {
        Mode::Http => assert_eq!(get(&mut conn).0, 200),
        Mode::Tcp => assert_eq!(echo(&mut conn, &chunk).len(), chunk.len()),
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let both = |r: &Running| r.half_ticks().is_some_and(|[a, b]| a > 0 && b > 0);
    while !both(&running) && Instant::now() < deadline {
        match mode {
            Mode::Http => assert_eq!(get(&mut conn).0, 200),
            Mode::Tcp => assert_eq!(echo(&mut conn, &chunk).len(), chunk.len()),
        }
    }
    let [out, inb] = running.half_ticks().expect("a pair");
    assert!(out > 0 && inb > 0, "{out} {inb}");
    assert_eq!(running.worker_ticks().is_some(), kind.is_ringway());
    drop(conn);
    stop_and_check_gone(running);
}

#[test]
fn ringway_pair_http() {
    pair_round_trip(Kind::Ringway, Mode::Http, 1);
}

#[test]
fn ringway_pair_tcp() {
    pair_round_trip(Kind::Ringway, Mode::Tcp, 1);
}

#[test]
fn nginx_pair_http() {
    pair_round_trip(Kind::Nginx, Mode::Http, 2);
}

#[test]
fn nginx_pair_tcp() {
    pair_round_trip(Kind::Nginx, Mode::Tcp, 2);
}

#[test]
fn haproxy_pair_http() {
    pair_round_trip(Kind::Haproxy, Mode::Http, 1);
}

#[test]
fn haproxy_pair_tcp() {
    pair_round_trip(Kind::Haproxy, Mode::Tcp, 1);
}

#[test]
fn direct_starts_nothing_and_targets_the_origin() {
    let bins = binaries();
    let dir = tempfile::tempdir().expect("a run directory");
    let origin = http_origin();
    let layout = layout(Mode::Http, origin.addr(), dir.path());
    let running = Running::start(Kind::Direct, &layout, &bins).expect("direct always starts");
    assert_eq!(running.target(), origin.addr());
    assert!(running.pids().is_empty());
    assert_eq!(running.cpu_ticks(), 0);
    assert_eq!(running.rss_kib(), 0);
    assert_eq!(running.peak_rss_kib(), 0);
    assert!(running.files().is_empty());
    let mut conn = connect(running.target());
    assert_eq!(get(&mut conn).0, 200);
    running.stop().expect("nothing to stop");
    assert_eq!(
        fs::read_dir(dir.path()).expect("the run directory").count(),
        0,
        "direct writes nothing"
    );
}

#[test]
fn ringway_http() {
    http_round_trip(Kind::Ringway, 1);
}

#[test]
fn ringway_tcp() {
    tcp_round_trip(Kind::Ringway, 1);
}

#[test]
fn baseline_http() {
    http_round_trip(Kind::Baseline, 1);
}

#[test]
fn ringway_with_its_own_control_core_and_a_large_table() {
    let bins = binaries();
    if absent(Kind::Ringway, &bins, Mode::Http) {
        return;
    }
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    let dir = tempfile::tempdir().expect("a run directory");
    let origin = http_origin();
    let mut layout = layout(Mode::Http, origin.addr(), dir.path());
    layout.control_core = cores.first().copied();
    layout.table = configs::Table {
        routes: 50,
        clusters: 10,
    };
    let running = Running::start(Kind::Ringway, &layout, &bins).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = connect(running.target());
    // Only the last route matches this request.
    conn.get_mut()
        .write_all(b"GET /r0/x HTTP/1.1\r\nHost: h0.example.com\r\n\r\n")
        .expect("send a request");
    let mut status = String::new();
    conn.read_line(&mut status).expect("read the status line");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut other = connect(running.target());
    other
        .get_mut()
        .write_all(b"GET /r0/x HTTP/1.1\r\nHost: h1.example.com\r\n\r\n")
        .expect("send a request");
    status.clear();
    other.read_line(&mut status).expect("read the status line");
    // h1's route goes to a cluster whose endpoints nobody listens on.
    assert!(!status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(running.worker_ticks().is_some(), "ringway-w0 was found");
    drop((conn, other));
    stop_and_check_gone(running);
}

#[test]
fn nginx_http() {
    // The master and its one worker.
    http_round_trip(Kind::Nginx, 2);
}

#[test]
fn nginx_tcp() {
    tcp_round_trip(Kind::Nginx, 2);
}

#[test]
fn haproxy_http() {
    http_round_trip(Kind::Haproxy, 1);
}

#[test]
fn haproxy_tcp() {
    tcp_round_trip(Kind::Haproxy, 1);
}

/// Requests sent through a system that logs every request.
const LOGGED_REQUESTS: u64 = 25;

/// Runs `kind` logging every request (ringway also tracing every one into
/// a collector sink): each request is one JSON line once it has stopped,
/// and ringway's spans reach the collector.
fn logged_round_trip(kind: Kind) {
    let bins = binaries();
    if absent(kind, &bins, Mode::Http) {
        return;
    }
    let dir = tempfile::tempdir().expect("a run directory");
    let origin = CountingOrigin::serving(Settings::http(2));
    let collector = Collector::start(None).expect("a collector sink");
    let layout = Layout {
        observe: configs::Observe {
            access_log: true,
            tracing: kind.is_ringway().then(|| configs::Tracing {
                collector: collector.addr(),
                sample: 1.0,
            }),
        },
        ..layout(Mode::Http, origin.addr(), dir.path())
    };
    // A log of an earlier run in the same directory is not counted.
    let log = configs::access_log_path(&layout);
    std::fs::write(&log, "stale\n").expect("write a stale log");
    let running = Running::start(kind, &layout, &bins).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(running.access_log(), Some(log.as_path()));
    let mut conn = connect(running.target());
    for _ in 0..LOGGED_REQUESTS {
        assert_eq!(get(&mut conn).0, 200);
    }
    drop(conn);
    if kind.is_ringway() {
        // A server and a client span per request, exported within the
        // exporter's batch delay.
        let deadline = Instant::now() + Duration::from_secs(15);
        let tracing = loop {
            let metrics = observe::read_metrics(layout.admin).expect("/metrics");
            let t = metrics.tracing(1.0);
            if t.exported >= 2.0 * LOGGED_REQUESTS as f64 || Instant::now() > deadline {
                assert_eq!(metrics.access_log().dropped, 0.0);
                break t;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(tracing.traced, LOGGED_REQUESTS as f64, "{tracing:?}");
        assert_eq!(
            tracing.exported,
            2.0 * LOGGED_REQUESTS as f64,
            "{tracing:?}"
        );
        assert!(collector.received().posts >= 1);
    } else {
        assert_eq!(collector.received().posts, 0, "only ringway exports spans");
    }
    stop_and_check_gone(running);
    let check = observe::count_log(&log);
    assert_eq!(check.lines, LOGGED_REQUESTS, "{kind}: {check:?}");
    assert!(check.json, "{kind}: the first line is not JSON");
    let head = std::fs::read_to_string(dir.path().join(observe::HEAD_FILE)).expect("the head");
    let first: serde_json::Value =
        serde_json::from_str(head.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["method"], "GET", "{kind}: {first}");
    assert_eq!(first["path"], "/", "{kind}: {first}");
    assert_eq!(first["status"], 200, "{kind}: {first}");
}

#[test]
fn ringway_logs_and_traces_every_request() {
    logged_round_trip(Kind::Ringway);
}

#[test]
fn nginx_logs_every_request() {
    logged_round_trip(Kind::Nginx);
}

#[test]
fn haproxy_logs_every_request() {
    logged_round_trip(Kind::Haproxy);
}

#[test]
fn a_taken_address_is_refused_before_starting() {
    let bins = binaries();
    if absent(Kind::Ringway, &bins, Mode::Tcp) {
        return;
    }
    let dir = tempfile::tempdir().expect("a run directory");
    let taken = TcpListener::bind(free_addr()).expect("bind");
    let origin = CountingOrigin::echo();
    let mut layout = layout(Mode::Tcp, origin.addr(), dir.path());
    layout.listen = taken.local_addr().expect("an address");
    let err = Running::start(Kind::Ringway, &layout, &bins).expect_err("the port is taken");
    assert!(
        matches!(err, SystemError::AddressInUse { addr, .. } if addr == layout.listen),
        "{err}"
    );
}

#[test]
fn a_rejected_config_shows_the_checker_output() {
    let bins = binaries();
    if absent(Kind::Ringway, &bins, Mode::Http) {
        return;
    }
    let dir = tempfile::tempdir().expect("a run directory");
    let origin = http_origin();
    let mut layout = layout(Mode::Http, origin.addr(), dir.path());
    // No machine has this core: `ringway check` refuses it.
    layout.proxy_core = 100_000;
    let err = Running::start(Kind::Ringway, &layout, &bins).expect_err("no such core");
    match &err {
        SystemError::Rejected { output, config, .. } => {
            assert!(output.contains("100000"), "{output}");
            assert!(config.is_file());
        }
        other => panic!("expected a rejection, got {other}"),
    }
}

#[test]
fn kinds_have_names() {
    for kind in Kind::ALL {
        assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    let err = "envoy".parse::<Kind>().expect_err("not a system");
    assert!(err.to_string().contains("envoy"));
}

#[test]
fn missing_names_the_fix() {
    let bins = Binaries {
        ringway: PathBuf::from("/nonexistent/ringway"),
        baseline: None,
        nginx: None,
        haproxy: None,
        nginx_stream: NginxStream::Missing(NGINX_ABSENT.to_owned()),
    };
    for mode in Mode::ALL {
        assert_eq!(missing(Kind::Direct, &bins, mode), None);
        let ringway = missing(Kind::Ringway, &bins, mode).expect("no ringway");
        assert!(ringway.contains("/nonexistent/ringway") && ringway.contains("cargo build"));
        let nginx = missing(Kind::Nginx, &bins, mode).expect("no nginx");
        assert!(nginx.contains("install-peers.sh"), "{nginx}");
        let haproxy = missing(Kind::Haproxy, &bins, mode).expect("no haproxy");
        assert!(haproxy.contains("install-peers.sh"), "{haproxy}");
        let baseline = missing(Kind::Baseline, &bins, mode).expect("no baseline");
        assert!(baseline.contains("--baseline PATH"), "{baseline}");
    }
    let absent_baseline = Binaries {
        baseline: Some(PathBuf::from("/nonexistent/old-ringway")),
        ..bins.clone()
    };
    let why = missing(Kind::Baseline, &absent_baseline, Mode::Http).expect("not there");
    assert!(why.contains("/nonexistent/old-ringway"), "{why}");
    let no_stream = Binaries {
        nginx: Some(PathBuf::from("/usr/sbin/nginx")),
        nginx_stream: NginxStream::Missing("no stream module".into()),
        ..bins
    };
    assert_eq!(missing(Kind::Nginx, &no_stream, Mode::Http), None);
    assert_eq!(
        missing(Kind::Nginx, &no_stream, Mode::Tcp).as_deref(),
        Some("no stream module")
    );
}

#[test]
fn reads_how_nginx_was_built() {
    let debian = "nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx \
                  --modules-path=/usr/lib/nginx/modules --with-stream=dynamic --with-http_ssl_module";
    let module = PathBuf::from("/usr/lib/nginx/modules/ngx_stream_module.so");
    assert_eq!(
        parse_nginx_stream(debian, |_| true),
        NginxStream::Module(module)
    );
    match parse_nginx_stream(debian, |_| false) {
        NginxStream::Missing(why) => {
            assert!(why.contains("libnginx-mod-stream"), "{why}");
            assert!(why.contains("/usr/lib/nginx/modules/ngx_stream_module.so"));
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    let prefix_only = "configure arguments: --prefix=/opt/nginx --with-stream=dynamic";
    assert_eq!(
        parse_nginx_stream(prefix_only, |_| true),
        NginxStream::Module(PathBuf::from("/opt/nginx/modules/ngx_stream_module.so"))
    );
    let built_in = "configure arguments: --with-stream --with-stream_ssl_module";
    assert_eq!(
        parse_nginx_stream(built_in, |_| false),
        NginxStream::BuiltIn
    );
    let without = "configure arguments: --with-stream_ssl_module";
    assert!(matches!(
        parse_nginx_stream(without, |_| true),
        NginxStream::Missing(_)
    ));
}

/// A variant with an `io_backend` gets the same configuration file and the
/// same check as `ringway`, and `--io-backend <value>` after `run --config
/// PATH`; `ringway` itself gets no flag (its own default).
#[test]
fn an_io_backend_is_a_run_argument_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let bins = binaries();
    let origin = SocketAddr::from(([127, 0, 0, 1], 9));
    let plain = layout(Mode::Http, origin, dir.path());
    let spec = |kind: Kind, backend: Option<IoBackend>| {
        let l = Layout {
            tuning: configs::Tuning {
                io_backend: backend,
                ..configs::Tuning::default()
            },
            ..plain.clone()
        };
        Spec::new(kind, &l, &bins).expect("a ringway spec")
    };
    let words = |args: &[OsString]| -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    let ringway = spec(Kind::Ringway, None);
    assert!(ringway.run_args.is_empty(), "{:?}", ringway.run_args);
    for (kind, backend, word) in [
        (Kind::Ringway, IoBackend::Epoll, "epoll"),
        (Kind::Ringway, IoBackend::Auto, "auto"),
        (Kind::Baseline, IoBackend::IoUring, "io_uring"),
    ] {
        let variant = spec(kind, Some(backend));
        assert_eq!(words(&variant.run_args), ["--io-backend", word]);
        assert_eq!(variant.text, ringway.text, "the same configuration");
        assert_eq!(
            words(&variant.check_args)[0],
            "check",
            "{:?}",
            variant.check_args
        );
    }
    // Other systems never get it.
    for kind in [Kind::Nginx, Kind::Haproxy] {
        let l = Layout {
            tuning: configs::Tuning {
                io_backend: Some(IoBackend::Epoll),
                ..configs::Tuning::default()
            },
            ..plain.clone()
        };
        if let Some(s) = Spec::new(kind, &l, &bins) {
            assert!(
                !words(&s.run_args).contains(&"--io-backend".to_owned()),
                "{kind}: {:?}",
                s.run_args
            );
        }
    }
}
