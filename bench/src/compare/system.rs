//! The systems under test: started with a generated configuration on the
//! proxy core, measured through `/proc`, stopped.
//!
//! A system is `direct` (no proxy: the load goes to the origin), `ringway`,
//! `baseline` (a second ringway binary, say the tree before a change),
//! `nginx` or `haproxy`. Each proxy runs as `taskset -c <core> <binary>`
//! in a process group of its own, so that stopping it reaches every process
//! it forked (nginx's workers) and a Ctrl-C meant for the runner does not
//! stop it half-way through a measurement: the runner stops it. The kit's
//! launcher starts them all: ringway and the baseline through
//! [`Launch`] (ready once `/ready` answers 200), nginx and HAProxy as
//! plain [`Program`]s (ready once they accept connections).

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::geteuid;
use ringway_kit::launcher::{
    Launch, LaunchError, NotReady, Process, Program, Ready, Ringway, SpawnError, StopError,
};
use ringway_kit::logfile::tail;
use ringway_kit::procfs;

use super::configs::{self, Layout, ListenerTls, Mode, NginxHost};

pub use self::error::SystemError;

/// How long a system may take to accept connections after it was started:
/// a debug-built ringway compiling a table of 10,000 routes and clusters
/// takes seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a system may take to exit after it was asked to.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of one readiness probe (a connect).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The name of ringway's first worker thread.
const WORKER_THREAD: &str = "ringway-w0";
/// Lines of a system's log quoted in an error.
const TAIL_LINES: usize = 20;
/// Directories searched for nginx and HAProxy besides `PATH`: Debian puts
/// them in `/usr/sbin`, which is not in a normal user's `PATH`.
const SBIN_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// No proxy: the load goes straight to the origin (the baseline).
    Direct,
    /// ringway.
    Ringway,
    /// A second ringway binary, run with the same configs as `ringway`.
    Baseline,
    /// nginx, one worker.
    Nginx,
    /// HAProxy, one thread.
    Haproxy,
}

impl Kind {
    /// Every system, in the order a round runs them.
    pub const ALL: [Kind; 5] = [
        Kind::Direct,
        Kind::Ringway,
        Kind::Baseline,
        Kind::Nginx,
        Kind::Haproxy,
    ];

    /// Its name in scenario files, reports and file names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Ringway => "ringway",
            Kind::Baseline => "baseline",
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
        }
    }

    /// Whether it is a ringway binary (admin API, worker threads).
    pub fn is_ringway(self) -> bool {
        matches!(self, Kind::Ringway | Kind::Baseline)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// A system name that is not one of [`Kind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown system `{0}`: expected direct, ringway, baseline, nginx or haproxy")]
pub struct UnknownKind(pub String);

/// Whether nginx can proxy TCP (its `stream` module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NginxStream {
    /// Compiled in (`--with-stream`): nothing to load.
    BuiltIn,
    /// A dynamic module (`--with-stream=dynamic`), loaded from this path.
    Module(PathBuf),
    /// Not available; the reason, with what to do about it.
    Missing(String),
}

/// The programs the systems run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The ringway binary (it may not exist: see [`missing`]).
    pub ringway: PathBuf,
    /// The baseline's ringway binary (`--baseline`), if given.
    pub baseline: Option<PathBuf>,
    /// nginx, if found.
    pub nginx: Option<PathBuf>,
    /// HAProxy, if found.
    pub haproxy: Option<PathBuf>,
    /// Whether nginx can run in TCP mode.
    pub nginx_stream: NginxStream,
}

impl Binaries {
    /// Looks nginx and HAProxy up in `PATH`, `/usr/sbin` and
    /// `/usr/local/sbin`, and asks nginx (`nginx -V`) how it was built.
    pub fn find(ringway: PathBuf, baseline: Option<PathBuf>) -> Self {
        let nginx = find_program("nginx");
        let nginx_stream = match &nginx {
            Some(path) => nginx_stream(path),
            None => NginxStream::Missing(NGINX_ABSENT.to_owned()),
        };
        Self {
            ringway,
            baseline,
            nginx,
            haproxy: find_program("haproxy"),
            nginx_stream,
        }
    }

    /// The program of `kind` (`None` for `direct`, or when not found).
    fn program(&self, kind: Kind) -> Option<&Path> {
        match kind {
            Kind::Direct => None,
            Kind::Ringway => Some(&self.ringway),
            Kind::Baseline => self.baseline.as_deref(),
            Kind::Nginx => self.nginx.as_deref(),
            Kind::Haproxy => self.haproxy.as_deref(),
        }
    }
}

/// Why nginx cannot run when it was not found.
const NGINX_ABSENT: &str =
    "nginx not found in PATH, /usr/sbin or /usr/local/sbin: run scripts/install-peers.sh";
/// Why HAProxy cannot run when it was not found.
const HAPROXY_ABSENT: &str =
    "haproxy not found in PATH, /usr/sbin or /usr/local/sbin: run scripts/install-peers.sh";

/// Why `kind` cannot run in `mode` with `bins`, or `None` if it can, so
/// that the runner can report a peer it skips.
pub fn missing(kind: Kind, bins: &Binaries, mode: Mode) -> Option<String> {
    match kind {
        Kind::Direct => None,
        Kind::Ringway if !is_executable(&bins.ringway) => Some(format!(
            "ringway binary {} not found: build it with \
             `cargo build --release -p ringway-control`",
            bins.ringway.display()
        )),
        Kind::Ringway => None,
        Kind::Baseline => match &bins.baseline {
            None => Some(
                "no baseline binary: give one with `--baseline PATH` (a ringway built from \
                 the tree to compare against, in its own target directory)"
                    .to_owned(),
            ),
            Some(path) if !is_executable(path) => Some(format!(
                "baseline binary {} not found or not executable",
                path.display()
            )),
            Some(_) => None,
        },
        Kind::Nginx if bins.nginx.is_none() => Some(NGINX_ABSENT.to_owned()),
        Kind::Nginx => match (mode, &bins.nginx_stream) {
            (Mode::Tcp, NginxStream::Missing(why)) => Some(why.clone()),
            _ => None,
        },
        Kind::Haproxy if bins.haproxy.is_none() => Some(HAPROXY_ABSENT.to_owned()),
        Kind::Haproxy => None,
    }
}

/// A started system. Dropping it kills the process group.
#[derive(Debug)]
pub struct Running {
    kind: Kind,
    target: SocketAddr,
    /// `None` for `direct`, and once stopped.
    started: Option<Started>,
    config: Option<PathBuf>,
    log: Option<PathBuf>,
    /// TLS on its listener (never for `direct`).
    tls: Option<ListenerTls>,
    /// A sidecar pair's inbound half (this is then the outbound one).
    inbound: Option<Box<Running>>,
    /// The access log it writes, when it logs every request.
    access_log: Option<PathBuf>,
}

/// A started proxy.
#[derive(Debug)]
enum Started {
    /// ringway or the baseline, through the kit's ringway launcher.
    Ringway(Ringway),
    /// nginx or HAProxy.
    Program(Process),
}

impl Started {
    fn process(&self) -> &Process {
        match self {
            Started::Ringway(ringway) => ringway.process(),
            Started::Program(process) => process,
        }
    }

    fn process_mut(&mut self) -> &mut Process {
        match self {
            Started::Ringway(ringway) => ringway.process_mut(),
            Started::Program(process) => process,
        }
    }
}

impl Running {
    /// Starts `kind` for `layout`: writes its configuration into
    /// `layout.dir`, has the system check it, starts it under
    /// `taskset -c <proxy_core>` with its output going to `<kind>.log` in
    /// the same directory, and waits until it accepts connections
    /// (ringway: once `/ready` answers 200). `direct` starts nothing.
    ///
    /// Raises this process's open-file limit, which the system inherits,
    /// to what `layout.max_connections` needs.
    pub fn start(kind: Kind, layout: &Layout, bins: &Binaries) -> Result<Running, SystemError> {
        if let Some(reason) = missing(kind, bins, layout.mode) {
            return Err(SystemError::Unavailable { kind, reason });
        }
        let Some(spec) = Spec::new(kind, layout, bins) else {
            // Only `direct` has nothing to run: the load goes to the origin.
            return Ok(Running {
                kind,
                target: layout.origins[0],
                started: None,
                config: None,
                log: None,
                tls: None,
                inbound: None,
                access_log: None,
            });
        };
        let dir = &layout.dir;
        if dir.to_str().is_none() {
            return Err(SystemError::DirNotUtf8(dir.clone()));
        }
        fs::create_dir_all(dir).map_err(|source| SystemError::Write {
            kind,
            path: dir.clone(),
            source,
        })?;
        ensure_free(kind, layout.listen)?;
        if kind.is_ringway() {
            ensure_free(kind, layout.admin)?;
        }
        raise_open_files(kind, layout)?;
        // A log of an earlier turn would add to this one's count.
        let access_log = (layout.observe.access_log && layout.mode == Mode::Http)
            .then(|| configs::access_log_path(layout));
        if let Some(path) = &access_log {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(SystemError::Write {
                        kind,
                        path: path.clone(),
                        source: e,
                    })
                }
                _ => {}
            }
        }
        fs::write(&spec.config, &spec.text).map_err(|source| SystemError::Write {
            kind,
            path: spec.config.clone(),
            source,
        })?;
        spec.check()?;
        let log = dir.join(format!("{kind}.log"));
        let started = spec.spawn(layout, &log)?;
        let mut running = Running {
            kind,
            target: layout.listen,
            started: Some(started),
            config: Some(spec.config),
            log: Some(log),
            tls: layout.tls.clone(),
            inbound: None,
            access_log,
        };
        running.wait_ready(layout)?;
        Ok(running)
    }

    /// Where the load goes: the proxy's listener, or the origin for
    /// `direct`.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// TLS on the listener the load goes to, if the clients speak it.
    pub fn tls(&self) -> Option<&ListenerTls> {
        self.tls.as_ref()
    }

    /// The access log file it writes every request into, if it does.
    pub fn access_log(&self) -> Option<&Path> {
        self.access_log.as_deref()
    }

    /// Its log (a pair's outbound half's); none for `direct`.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The generated configuration files and the logs (a pair's outbound
    /// half first); none for `direct`.
    pub fn files(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = [self.config.as_deref(), self.log.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if let Some(inbound) = &self.inbound {
            files.extend(inbound.files());
        }
        files
    }

    /// Every live process of the system now, the started one first (nginx:
    /// master, then workers; a pair: the outbound half's, then the
    /// inbound's); empty for `direct`.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = self.own_pids();
        if let Some(inbound) = &self.inbound {
            pids.extend(inbound.own_pids());
        }
        pids
    }

    /// CPU time (`utime + stime`, all threads) of [`Running::pids`], in
    /// clock ticks ([`procfs::clock_ticks`] a second). A process that
    /// exits between the listing and the read counts 0.
    pub fn cpu_ticks(&self) -> u64 {
        ticks_of(self.pids())
    }

    /// CPU time of ringway's first worker thread (`ringway-w0`; a pair:
    /// both halves' summed), in clock ticks; `None` for other systems or
    /// when the thread is not found.
    pub fn worker_ticks(&self) -> Option<u64> {
        let own = self.own_worker_ticks()?;
        match &self.inbound {
            None => Some(own),
            Some(inbound) => Some(own + inbound.own_worker_ticks()?),
        }
    }

    /// The processes of this system alone (not a pair's inbound half).
    fn own_pids(&self) -> Vec<u32> {
        self.started
            .as_ref()
            .map(|started| procfs::process_tree(started.process().pid()))
            .unwrap_or_default()
    }

    /// CPU time of [`Running::own_pids`], in clock ticks.
    fn own_ticks(&self) -> u64 {
        ticks_of(self.own_pids())
    }

    /// CPU time of this ringway's first worker thread, in clock ticks.
    fn own_worker_ticks(&self) -> Option<u64> {
        if !self.kind.is_ringway() {
            return None;
        }
        let pid = self.started.as_ref()?.process().pid();
        let tid = procfs::find_thread(pid, WORKER_THREAD).ok()??;
        procfs::thread_ticks(pid, tid).ok()
    }

    /// Resident memory (`VmRSS`) of [`Running::pids`], in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_sum("VmRSS")
    }

    /// Peak resident memory (`VmHWM`) of [`Running::pids`], in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_sum("VmHWM")
    }

    /// Asks the system to exit (SIGTERM: nginx's master then stops its
    /// workers, ringway drains), waits up to 5 s, then kills its process
    /// group. An exit with a failure status is an error, with the log's
    /// tail. A pair stops its outbound half first, then the inbound one.
    pub fn stop(mut self) -> Result<(), SystemError> {
        let Some(inbound) = self.inbound.take() else {
            return self.stop_own();
        };
        let outbound = self.stop_own();
        let inbound = inbound.stop_own();
        let half = |half, source| SystemError::Half {
            half,
            source: Box::new(source),
        };
        match (outbound, inbound) {
            (Err(e), _) => Err(half("outbound", e)),
            (Ok(()), Err(e)) => Err(half("inbound", e)),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// Stops this system alone (not a pair's inbound half).
    fn stop_own(mut self) -> Result<(), SystemError> {
        let kind = self.kind;
        let signal = Signal::SIGTERM;
        let status = match self.started.take() {
            None => return Ok(()),
            Some(Started::Ringway(ringway)) => ringway
                .try_stop(STOP_TIMEOUT)
                .map(|exit| exit.status)
                .map_err(|e| launch_error(kind, e))?,
            Some(Started::Program(mut process)) => process
                .stop(signal, STOP_TIMEOUT)
                .map_err(|source| SystemError::Stop { kind, source })?,
        };
        if status.success() || status.signal() == Some(signal as i32) {
            Ok(())
        } else {
            let log = self.log.clone().unwrap_or_default();
            Err(SystemError::BadExit {
                kind,
                status,
                tail: tail(&log, TAIL_LINES),
                log,
            })
        }
    }

    /// Waits until the system accepts connections (after ringway's
    /// `/ready`, which the launcher waited for, this confirms its
    /// listener), it exits, or [`READY_TIMEOUT`] passes.
    fn wait_ready(&mut self, layout: &Layout) -> Result<(), SystemError> {
        let kind = self.kind;
        let Some(started) = self.started.as_mut() else {
            return Ok(());
        };
        let ready = started
            .process_mut()
            .wait_ready(READY_TIMEOUT, |process| probe(kind, layout, process));
        ready.map_err(|e| not_ready(kind, self.log.as_deref().unwrap_or(Path::new("")), e))
    }

    /// The sum of a `kB` field of `/proc/<pid>/status` over the processes.
    fn status_sum(&self, field: &str) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|pid| procfs::status_kib(pid, field).ok())
            .sum()
    }
}

/// CPU time (`utime + stime`, all threads) of `pids`, in clock ticks; a
/// process that exits between the listing and the read counts 0.
fn ticks_of(pids: Vec<u32>) -> u64 {
    pids.into_iter()
        .filter_map(|pid| procfs::process_ticks(pid).ok())
        .sum()
}

/// `Ok` when `kind`, running as `process`, accepts connections on
/// `layout.listen`; else what the probe saw.
fn probe(kind: Kind, layout: &Layout, process: &Process) -> Result<(), String> {
    TcpStream::connect_timeout(&layout.listen, PROBE_TIMEOUT)
        .map_err(|e| format!("connect to {}: {e}", layout.listen))?;
    // nginx's master binds the listener before it forks the worker:
    // until the worker exists, `pids()` would miss it.
    if kind == Kind::Nginx && procfs::process_tree(process.pid()).len() < 2 {
        return Err("nginx's master has not started its worker yet".to_owned());
    }
    Ok(())
}

/// A system that did not become ready, as the runner says it; `log` is its
/// log file.
fn not_ready(kind: Kind, log: &Path, e: NotReady) -> SystemError {
    let tail = tail(log, TAIL_LINES);
    let log = log.to_owned();
    match e {
        NotReady::Exited(status) => SystemError::Exited {
            kind,
            status,
            log,
            tail,
        },
        NotReady::TimedOut(last) => SystemError::NotReady {
            kind,
            waited: READY_TIMEOUT,
            last,
            log,
            tail,
        },
        NotReady::Wait(source) => SystemError::Stop {
            kind,
            source: StopError::Wait(source),
        },
    }
}

/// A failed stop of ringway or the baseline, as the runner says it.
fn launch_error(kind: Kind, e: LaunchError) -> SystemError {
    let source = match e {
        LaunchError::Signal {
            signal,
            pid,
            source,
        } => StopError::Signal {
            signal,
            pid,
            source,
        },
        LaunchError::NoExit { timeout, .. } => StopError::NoExit(timeout),
        LaunchError::Wait(source) => StopError::Wait(source),
        // Only a start fails otherwise; `Spec::spawn` says those.
        other => StopError::Wait(std::io::Error::other(other.to_string())),
    };
    SystemError::Stop { kind, source }
}

/// How one proxy is configured, checked and run.
struct Spec {
    kind: Kind,
    program: PathBuf,
    config: PathBuf,
    text: String,
    check_args: Vec<OsString>,
    run_args: Vec<OsString>,
    /// Where its standard output goes instead of its log: HAProxy's access
    /// log (`log stdout`).
    stdout: Option<PathBuf>,
}

impl Spec {
    /// The spec of `kind`; `None` for `direct`, which runs nothing, and
    /// for a proxy whose binary was not found.
    fn new(kind: Kind, layout: &Layout, bins: &Binaries) -> Option<Self> {
        let program = bins.program(kind)?;
        let dir = &layout.dir;
        let os = |s: &str| OsString::from(s);
        let (file, text, check_args, run_args) = match kind {
            Kind::Direct => return None,
            Kind::Ringway | Kind::Baseline => {
                let config = dir.join(format!("{kind}.toml"));
                (
                    config.clone(),
                    configs::ringway(layout),
                    vec![os("check"), config.into()],
                    // The launcher adds `run --config PATH`; these follow.
                    ringway_run_args(layout),
                )
            }
            Kind::Nginx => {
                let config = dir.join("nginx.conf");
                let host = NginxHost {
                    stream_module: match &bins.nginx_stream {
                        NginxStream::Module(path) => Some(path.clone()),
                        NginxStream::BuiltIn | NginxStream::Missing(_) => None,
                    },
                    worker_user: geteuid().is_root().then(|| "root".to_owned()),
                };
                // `-e stderr`: messages from before the config is read go
                // to the log too, not to the packaged error log path.
                let common = vec![
                    os("-e"),
                    os("stderr"),
                    os("-p"),
                    dir.clone().into(),
                    os("-c"),
                    config.clone().into(),
                ];
                let mut check = vec![os("-t"), os("-q")];
                check.extend(common.iter().cloned());
                (config, configs::nginx(layout, &host), check, common)
            }
            Kind::Haproxy => {
                let config = dir.join("haproxy.cfg");
                // No `-q` on the check: it would hide the alerts that say
                // what is wrong.
                (
                    config.clone(),
                    configs::haproxy(layout),
                    vec![os("-c"), os("-f"), config.clone().into()],
                    // `-db`: stay in the foreground, one process.
                    vec![os("-db"), os("-f"), config.into()],
                )
            }
        };
        let logs = layout.observe.access_log && layout.mode == Mode::Http;
        Some(Self {
            kind,
            program: program.to_owned(),
            config: file,
            text,
            check_args,
            run_args,
            stdout: (kind == Kind::Haproxy && logs).then(|| configs::access_log_path(layout)),
        })
    }

    /// Runs the system's own config check.
    fn check(&self) -> Result<(), SystemError> {
        let command = command_line(&self.program, &self.check_args);
        let out = Command::new(&self.program)
            .args(&self.check_args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| SystemError::CheckRun {
                kind: self.kind,
                command: command.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Err(SystemError::Rejected {
            kind: self.kind,
            config: self.config.clone(),
            command,
            output: output.trim_end().to_owned(),
        })
    }

    /// Starts the system under `taskset` on the layout's cores, in a
    /// process group of its own, its output going to `log`; ringway and
    /// the baseline are waited for until `/ready` answers 200.
    fn spawn(&self, layout: &Layout, log: &Path) -> Result<Started, SystemError> {
        let kind = self.kind;
        let cores: Vec<String> = layout
            .cores(kind.is_ringway())
            .iter()
            .map(ToString::to_string)
            .collect();
        let cores = cores.join(",");
        let taskset = ["taskset", "-c", cores.as_str()];
        let spawn_error = |e| match e {
            SpawnError::File { path, source } => SystemError::Write { kind, path, source },
            SpawnError::Start { source, .. } => SystemError::Spawn {
                kind,
                cores: cores.clone(),
                program: self.program.clone(),
                source,
            },
        };
        if !kind.is_ringway() {
            let mut program = Program::new(&self.program)
                .args(&self.run_args)
                .wrapped(&taskset)
                .log_file(log)
                .own_process_group();
            if let Some(path) = &self.stdout {
                program = program.stdout_file(path);
            }
            return program.spawn().map(Started::Program).map_err(spawn_error);
        }
        let launched = Launch::file(&self.config)
            .binary(&self.program)
            .args(&self.run_args)
            .wrapped(&taskset)
            .log_file(log)
            .own_process_group()
            .ready(Ready::Admin(layout.admin))
            .ready_timeout(READY_TIMEOUT)
            .spawn();
        launched.map(Started::Ringway).map_err(|e| match e {
            LaunchError::Log { path, source } => spawn_error(SpawnError::File { path, source }),
            LaunchError::Spawn { program, source } => {
                spawn_error(SpawnError::Start { program, source })
            }
            LaunchError::Exited { status, .. } => not_ready(kind, log, NotReady::Exited(status)),
            LaunchError::NotReady { last, .. } => not_ready(kind, log, NotReady::TimedOut(last)),
            other => launch_error(kind, other),
        })
    }
}

/// What ringway and the baseline get after `run --config PATH`: the
/// variant's `--io-backend`, if it has one. Only the command line differs
/// between such a variant and `ringway`: the same generated file, the same
/// processes measured.
fn ringway_run_args(layout: &Layout) -> Vec<OsString> {
    layout
        .tuning
        .io_backend
        .map(|b| vec![OsString::from("--io-backend"), OsString::from(b.name())])
        .unwrap_or_default()
}

/// Fails if something already accepts connections on `addr`: the readiness
/// probe would take it for the system.
fn ensure_free(kind: Kind, addr: SocketAddr) -> Result<(), SystemError> {
    match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
        Ok(_) => Err(SystemError::AddressInUse { kind, addr }),
        Err(_) => Ok(()),
    }
}

/// Raises this process's open-file limit (soft, and hard when it is lower)
/// to what `layout` needs; children inherit it. ringway only lifts its soft
/// limit to the hard one, so for it the hard limit must be high enough
/// before it starts; nginx and HAProxy raise their own, which needs root
/// above the hard limit, so checking here gives every system the same
/// clear error.
fn raise_open_files(kind: Kind, layout: &Layout) -> Result<(), SystemError> {
    let needed = configs::open_files(layout);
    let error = |soft, hard, source| SystemError::OpenFiles {
        kind,
        needed,
        connections: layout.max_connections,
        soft,
        hard,
        source,
    };
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| error(0, 0, e))?;
    if soft >= needed {
        return Ok(());
    }
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard.max(needed)).map_err(|e| error(soft, hard, e))
}

/// `program args...` for messages.
fn command_line(program: &Path, args: &[OsString]) -> String {
    let mut line = program.display().to_string();
    for arg in args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// The first executable file named `name` in `PATH` or [`SBIN_DIRS`].
fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// How `nginx` (the binary at this path) gets its stream module.
fn nginx_stream(nginx: &Path) -> NginxStream {
    // nginx prints its version and configure arguments on stderr.
    match Command::new(nginx).arg("-V").stdin(Stdio::null()).output() {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            parse_nginx_stream(&text, |path| path.is_file())
        }
        Err(e) => NginxStream::Missing(format!(
            "cannot ask {} how it was built (`nginx -V`): {e}",
            nginx.display()
        )),
    }
}

/// How an nginx whose `nginx -V` printed `text` gets its stream module;
/// `exists` says whether a module file is there.
fn parse_nginx_stream(text: &str, exists: impl Fn(&Path) -> bool) -> NginxStream {
    let args: Vec<&str> = text.split_whitespace().collect();
    let value = |key: &str| args.iter().find_map(|arg| arg.strip_prefix(key));
    if args.contains(&"--with-stream") {
        return NginxStream::BuiltIn;
    }
    if !args.contains(&"--with-stream=dynamic") {
        return NginxStream::Missing(
            "this nginx was built without the stream module (no --with-stream), \
             which TCP mode needs"
                .to_owned(),
        );
    }
    // Without `--modules-path`, nginx looks in `<prefix>/modules`.
    let dir = match (value("--modules-path="), value("--prefix=")) {
        (Some(path), _) => PathBuf::from(path),
        (None, Some(prefix)) => Path::new(prefix).join("modules"),
        (None, None) => PathBuf::from("/usr/local/nginx/modules"),
    };
    let module = dir.join("ngx_stream_module.so");
    if exists(&module) {
        NginxStream::Module(module)
    } else {
        NginxStream::Missing(format!(
            "nginx's stream module, which TCP mode needs, is not installed ({} is absent): \
             install package libnginx-mod-stream (scripts/install-peers.sh does)",
            module.display()
        ))
    }
}

mod error;
mod pair;
#[cfg(test)]
mod tests;
