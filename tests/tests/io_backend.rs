//! The reactor ringway runs on (`runtime.io_backend`, `--io-backend`):
//! chosen once at start-up and said in one line before the listeners'; shown
//! in `/stats`, `/metrics` and `ringway stats`; fixed while it runs. Where
//! seccomp refuses io_uring (the `deny-io-uring` launcher: `EPERM` as
//! Docker's and containerd's default profiles answer, `ENOSYS` as Podman's),
//! `auto` runs on epoll and serves.
//!
//! The suite's own backend ([`test_backend`], `RINGWAY_TEST_IO_BACKEND`)
//! decides what a start without a wrapper of its own runs on: io_uring, or
//! epoll under `deny-io-uring EPERM` in the suite's second run.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::launcher::{run_to_exit, test_backend, LaunchError, TestBackend};
use ringway_kit::ports::free_port;
use ringway_kit::{Launch, Ringway};
use ringway_tests::config::ConfigFile;
use ringway_tests::data;
use ringway_tests::http_client::{HttpConn, Req};
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::http_origin::HttpOrigin;
use ringway_tests::origin::{self, Origin};
use ringway_tests::{client, Transfer};

/// The seccomp launcher built beside ringway.
const DENY: &str = env!("CARGO_BIN_EXE_deny-io-uring");
/// Bytes echoed through the TCP listener: many buffers of a worker's pool.
const ECHOED: u64 = 4 * 1024 * 1024;
/// Long enough for a few MiB through a debug build on a busy machine.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);
const CLI_WAIT: Duration = Duration::from_secs(20);
/// How long a change of the file may take to be seen and reloaded.
const RELOAD_WAIT: Duration = Duration::from_secs(20);

/// An HTTP listener `web` whose route `all` forwards to an origin, a TCP
/// listener `echo` to an echoing origin, and the origins.
struct Site {
    http: HttpConfig,
    origin: HttpOrigin,
    echo: Origin<Transfer>,
    echo_listen: SocketAddr,
}

impl Site {
    fn new() -> Self {
        let origin = HttpOrigin::ok("from the origin");
        let http = HttpConfig::new()
            .route(Route::new("all").cluster("app"))
            .cluster("app", &[origin.addr()]);
        Self {
            http,
            origin,
            echo: Origin::start(origin::echo),
            echo_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
        }
    }

    /// The configuration, with `runtime` lines added to `[runtime]`.
    fn toml(&self, runtime: &[(&str, &str)]) -> String {
        let mut http = self.http.clone();
        for (key, value) in runtime {
            http = http.runtime_key(key, value);
        }
        format!(
            "{}\n[[listeners]]\nname = \"echo\"\naddress = \"{}\"\nprotocol = \"tcp\"\n\
             cluster = \"echoing\"\n\n[[clusters]]\nname = \"echoing\"\nendpoints = [\"{}\"]\n",
            http.to_toml(),
            self.echo_listen,
            self.echo.addr()
        )
    }

    fn admin(&self) -> SocketAddr {
        self.http.admin
    }

    /// One request through the route to the origin, and a few MiB through
    /// the TCP listener and back, checked byte for byte.
    fn assert_serves(&self) {
        let response = HttpConn::open(self.http.listen).exchange(&Req::get("/backend"));
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.body_text(), "from the origin");
        let got = self
            .origin
            .wait_requests(1, TRANSFER_TIMEOUT)
            .into_iter()
            .last()
            .expect("the origin saw the request");
        assert_eq!(got.path(), "/backend");

        // The client's reads and writes time out after a minute.
        let stream = client(self.echo_listen);
        let (sent, echoed) = data::round_trip(&stream, ECHOED);
        let sent = sent.expect("sending through the TCP listener");
        assert_eq!(sent.bytes, ECHOED);
        assert_eq!(echoed.expect("reading the echo"), sent, "the echo");
        assert_eq!(self.echo.next_ok(TRANSFER_TIMEOUT), sent, "the origin's");
    }
}

/// Starts ringway on `config` through `wrapper` (none: the suite's own)
/// with `args`; panics with its stderr if it does not come up.
fn start(config: &str, wrapper: &[&str], args: &[&str]) -> Ringway {
    let mut launch = Launch::text(config).args(args);
    if !wrapper.is_empty() {
        launch = launch.wrapped(wrapper);
    }
    launch.spawn().unwrap_or_else(|e| panic!("{e}"))
}

/// The start-up line that names the backend: exactly one, and before the
/// first listener's line.
fn backend_line(proxy: &Ringway) -> String {
    let stderr = proxy.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    let said: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("running on"))
        .collect();
    assert_eq!(said.len(), 1, "one line names the backend:\n{stderr}");
    let listener = lines
        .iter()
        .position(|l| l.starts_with("ringway: listener "))
        .unwrap_or_else(|| panic!("no listener line:\n{stderr}"));
    assert!(
        said[0] < listener,
        "the backend line comes first:\n{stderr}"
    );
    lines[said[0]].to_owned()
}

/// `/stats`, `/metrics` and `ringway stats` all name `backend`.
fn assert_shows(admin_addr: SocketAddr, backend: &str) {
    let stats = admin::stats(admin_addr);
    assert_eq!(stats.json["io_backend"], backend, "{}", stats.json);

    let metrics = admin::metrics(admin_addr);
    let series = metrics.of("ringway_io_backend_info");
    assert_eq!(series.len(), 1, "one series:\n{}", metrics.text);
    assert_eq!(
        series[0].labels.get("backend"),
        Some(backend),
        "{}",
        metrics.text
    );
    assert_eq!(metrics.sum("ringway_io_backend_info"), 1.0);
    assert!(
        metrics
            .text
            .contains("# TYPE ringway_io_backend_info gauge\n"),
        "{}",
        metrics.text
    );

    let out = run_to_exit(&["stats", "--admin", &admin_addr.to_string()], CLI_WAIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ringway stats: {out:?}");
    assert!(
        text.lines().any(|l| l == format!("io backend: {backend}")),
        "{text}"
    );
}

/// What the process's descriptors say it runs on: on io_uring, a ring per
/// worker; on epoll, no ring at all (the control thread's event loop is an
/// epoll set either way, so only the rings tell).
fn assert_runs_on(proxy: &Ringway, backend: &str) {
    let dir = format!("/proc/{}/fd", proxy.pid());
    let rings = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.as_os_str() == "anon_inode:[io_uring]")
        .count();
    match backend {
        // One worker in these configurations.
        "io_uring" => assert_eq!(rings, 1, "rings open on io_uring"),
        _ => assert_eq!(rings, 0, "rings open on {backend}"),
    }
}

#[test]
fn auto_runs_on_the_suites_backend_and_says_which() {
    let site = Site::new();
    let backend = test_backend();
    let proxy = start(&site.toml(&[]), &[], &[]);
    assert_eq!(backend_line(&proxy), backend.auto_line());
    assert_shows(site.admin(), backend.name());
    assert_runs_on(&proxy, backend.name());
    site.assert_serves();
    proxy.stop().assert_clean();
}

#[test]
fn epoll_asked_on_the_command_line_runs_on_epoll() {
    let site = Site::new();
    let proxy = start(&site.toml(&[]), &[], &["--io-backend", "epoll"]);
    assert_eq!(
        backend_line(&proxy),
        "ringway: running on epoll (runtime.io_backend = \"epoll\")"
    );
    assert_shows(site.admin(), "epoll");
    assert_runs_on(&proxy, "epoll");
    site.assert_serves();
    proxy.stop().assert_clean();
}

/// Under `deny-io-uring ERRNO`, `auto` says why io_uring is not used, runs
/// on epoll and serves HTTP through a route and TCP both ways.
fn falls_back(errno: &str, line: &str) {
    let site = Site::new();
    let proxy = start(&site.toml(&[]), &[DENY, errno], &[]);
    assert_eq!(backend_line(&proxy), line);
    assert_shows(site.admin(), "epoll");
    assert_runs_on(&proxy, "epoll");
    site.assert_serves();
    proxy.stop().assert_clean();
}

#[test]
fn auto_falls_back_to_epoll_when_seccomp_answers_eperm() {
    falls_back(
        "EPERM",
        "ringway: io_uring refused by seccomp (EPERM); running on epoll",
    );
}

#[test]
fn auto_falls_back_to_epoll_when_seccomp_answers_enosys() {
    falls_back(
        "ENOSYS",
        "ringway: io_uring refused by seccomp or missing from the kernel (ENOSYS); running on epoll",
    );
}

#[test]
fn a_reload_cannot_change_the_backend_and_the_old_configuration_keeps_serving() {
    let site = Site::new();
    let file = ConfigFile::new(&site.toml(&[("io_backend", "\"auto\"")]));
    let proxy = start_file(&file, &[]);
    let backend = test_backend();
    assert_eq!(backend_line(&proxy), backend.auto_line());

    // The file changes (ringway follows it), then the same file is asked
    // for through the admin API, then the text is posted: refused each time.
    let refusal =
        "runtime.io_backend: cannot change while ringway runs (auto -> epoll); restart to apply it";
    let on_epoll = site.toml(&[("io_backend", "\"epoll\"")]);
    file.replace(&on_epoll);
    let logged = proxy.wait_for_stderr(refusal, RELOAD_WAIT);
    assert!(
        logged.starts_with("ringway: reload (file change): error: "),
        "{logged}"
    );
    for refused in [
        admin::post(site.admin(), "/reload", ""),
        admin::post(site.admin(), "/config", &on_epoll),
    ] {
        assert_eq!(refused.status, 400, "{refused:?}");
        assert!(refused.body.contains(refusal), "{refused:?}");
    }
    let stats = admin::stats(site.admin());
    // Three refusals at least (a change on disk may be seen twice).
    assert!(stats.u64("/reload_failures") >= 3, "{}", stats.json);
    assert_eq!(stats.u64("/reloads"), 0, "{}", stats.json);
    assert_eq!(stats.generation(), 1, "{}", stats.json);
    assert_shows(site.admin(), backend.name());
    site.assert_serves();
    proxy.stop().assert_clean();
}

#[test]
fn the_command_line_wins_over_the_file_and_reloads_of_that_file_apply() {
    let site = Site::new();
    let file = ConfigFile::new(&site.toml(&[("io_backend", "\"epoll\"")]));
    let proxy = start_file(&file, &["--io-backend", "auto"]);
    let backend = test_backend();
    assert_eq!(backend_line(&proxy), backend.auto_line());
    assert_shows(site.admin(), backend.name());

    // The running configuration is the file's (`epoll`): a change
    // elsewhere in it applies, and the backend stays the one running.
    let edited = site.toml(&[("io_backend", "\"epoll\"")]).replace(
        "cluster = \"echoing\"\n",
        "cluster = \"echoing\"\nidle_timeout = \"1m\"\n",
    );
    file.replace(&edited);
    proxy.wait_for_stderr(
        "ringway: reload (file change): applied generation 2",
        RELOAD_WAIT,
    );
    let stats = admin::stats(site.admin());
    assert_eq!(stats.u64("/reload_failures"), 0, "{}", stats.json);
    assert_shows(site.admin(), backend.name());
    site.assert_serves();
    proxy.stop().assert_clean();
}

/// Starts ringway on the file the test owns, with `args`, through the
/// suite's own wrapper.
fn start_file(file: &ConfigFile, args: &[&str]) -> Ringway {
    Launch::file(file.path())
        .args(args)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn an_unknown_backend_is_refused_with_its_line_and_the_three_names() {
    let site = Site::new();
    let text = site.toml(&[("io_backend", "\"uring\"")]);
    let line = text
        .lines()
        .position(|l| l.starts_with("io_backend"))
        .expect("the key is written")
        + 1;
    let file = ConfigFile::new(&text);
    for args in [
        vec!["check", file.path_str()],
        vec!["run", "--config", file.path_str()],
    ] {
        let out = run_to_exit(&args, CLI_WAIT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "error: {}:{line}:14: runtime.io_backend: unknown io backend `uring`: \
                 expected \"auto\", \"io_uring\" or \"epoll\"",
                file.path_str()
            )),
            "{args:?}: {stderr}"
        );
    }
    // And a flag ringway does not know is refused by the command line.
    let out = run_to_exit(
        &["run", "--config", file.path_str(), "--io-backend", "uring"],
        CLI_WAIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("'uring'"), "{stderr}");
    assert!(
        stderr.contains("[possible values: auto, io_uring, epoll]"),
        "{stderr}"
    );
}

/// `ringway check --effective` writes the key back, the default too.
#[test]
fn check_shows_the_key() {
    let site = Site::new();
    for (runtime, shown) in [
        (vec![], "auto"),
        (vec![("io_backend", "\"epoll\"")], "epoll"),
        (vec![("io_backend", "\"io_uring\"")], "io_uring"),
    ] {
        let file = ConfigFile::new(&site.toml(&runtime));
        let out = run_to_exit(&["check", "--effective", file.path_str()], CLI_WAIT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            stdout
                .lines()
                .any(|l| l == format!("io_backend = \"{shown}\"")),
            "{stdout}"
        );
        let out = run_to_exit(&["check", file.path_str()], CLI_WAIT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.lines().any(|l| l == format!("io backend: {shown}")),
            "{stdout}"
        );
    }
}

/// Forced io_uring runs on io_uring where the machine allows it; in the
/// suite's run with io_uring refused, it exits with the one clear line
/// (`uring_unavailable.rs` has the other refusals).
#[test]
fn io_uring_forced_on_the_command_line_runs_on_io_uring_or_exits() {
    let site = Site::new();
    let launched = Launch::text(&site.toml(&[]))
        .args(&["--io-backend", "io_uring"])
        .spawn();
    match test_backend() {
        TestBackend::IoUring => {
            let proxy = launched.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                backend_line(&proxy),
                "ringway: running on io_uring (runtime.io_backend = \"io_uring\")"
            );
            assert_shows(site.admin(), "io_uring");
            assert_runs_on(&proxy, "io_uring");
            site.assert_serves();
            proxy.stop().assert_clean();
        }
        TestBackend::Epoll | TestBackend::EpollNosys => {
            let Err(LaunchError::Exited { status, stderr, .. }) = launched else {
                panic!("forced io_uring started under the seccomp refusal: {launched:?}");
            };
            assert_eq!(status.code(), Some(1), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("allows io_uring_setup"), "{stderr}");
        }
    }
}
