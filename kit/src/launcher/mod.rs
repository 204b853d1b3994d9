//! The one launcher: ringway on a config, and any other program a test
//! or a bench runs beside it.
//!
//! [`Program`] and [`Process`] start, watch and stop any program (nginx,
//! HAProxy, the bench's origins and load generator): a wrapper such as
//! `taskset`, stderr read into memory and teed to a log file, a process
//! group of its own when asked, a readiness probe, a stop signal. [`Launch`]
//! is ringway's way in on top of them: `ringway run --config PATH` on a
//! config text or file, waited for until it is ready (its `; ready` line,
//! or `/ready` on the admin API), with its exit report parsed when it
//! stops ([`Exit`]). `Launch` returns errors as values, for the benches;
//! [`Ringway::start`] and its siblings are the tests' shorthands, which
//! panic with ringway's stderr and config when the proxy does not come up.

mod backend;
mod exit;
mod log;
mod process;

use std::ffi::{OsStr, OsString};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::NamedTempFile;

pub use self::backend::{test_backend, TestBackend};
pub use self::exit::{Exit, WorkerLine};
use self::process::LAST_WORDS;
pub use self::process::{NotReady, Process, Program, SpawnError, StopError};
use crate::admin::AdminClient;

/// How long the proxy may take to be ready, unless the launch says.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Ringway::stop`] waits for the proxy to exit after SIGTERM:
/// more than the 5 s drain the tests' configs ask for.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one `/ready` probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Path of the `ringway` binary built beside this test executable.
pub fn binary() -> PathBuf {
    sibling_binary("ringway")
}

/// Path of the workspace binary `name` built beside this test executable.
///
/// Test executables live in `target/<profile>/deps/`; the binaries are in
/// `target/<profile>/`. Panics, saying how to build it, when it is missing.
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe =
        std::env::current_exe().unwrap_or_else(|e| panic!("cannot find the test executable: {e}"));
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("test executable {} has no target dir", exe.display()));
    let binary = profile_dir.join(name);
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        binary.display()
    );
    binary
}

/// Runs `ringway ARGS` to completion and returns its output; panics if it
/// runs longer than `timeout`. A `ringway run` goes through the wrapper of
/// the suite's backend ([`test_backend`]).
pub fn run_to_exit(args: &[&str], timeout: Duration) -> Output {
    let mut program = Program::new(&binary()).args(args);
    if args.first() == Some(&"run") {
        program = program.wrapped(&backend::run_wrapper());
    }
    run_program_to_exit(&program, timeout)
}

/// Runs `program` (ringway, a launcher that execs it, a bench) to
/// completion and returns its output; panics if it cannot start or runs
/// longer than `timeout`.
pub fn run_program_to_exit(program: &Program, timeout: Duration) -> Output {
    let line = program.command_line();
    let mut process = program
        .clone()
        .capture_stdout()
        .spawn()
        .unwrap_or_else(|e| panic!("`{line}`: {e}"));
    let status = process.wait_exit(timeout).unwrap_or_else(|e| {
        panic!(
            "`{line}`: {e} (after {timeout:?}); stderr:\n{}",
            process.stderr()
        )
    });
    Output {
        status,
        stdout: process.take_stdout(),
        stderr: process.stderr().into_bytes(),
    }
}

/// Writes a config to a temporary file, removed when the handle drops.
pub fn write_config(config: &str) -> NamedTempFile {
    try_write_config(config).unwrap_or_else(|e| panic!("cannot write a config file: {e}"))
}

fn try_write_config(config: &str) -> io::Result<NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("ringway-")
        .suffix(".toml")
        .tempfile()?;
    io::Write::write_all(&mut file, config.as_bytes())?;
    Ok(file)
}

/// How [`Launch::spawn`] tells that the proxy is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// It wrote its `...; ready` line on stderr (every listener bound, the
    /// first table running on every worker).
    Line,
    /// `GET /ready` on this admin address answers 200.
    Admin(SocketAddr),
    /// Do not wait: the caller watches the start-up itself.
    Nothing,
}

/// Where the config comes from.
#[derive(Debug, Clone)]
enum ConfigSource {
    /// TOML text, written to a temporary file that lives as long as the
    /// proxy.
    Text(String),
    /// A file the caller owns (and may edit while the proxy runs).
    File(PathBuf),
}

/// How to start ringway: `[WRAPPER...] BINARY run --config PATH [ARGS...]`.
#[derive(Debug, Clone)]
pub struct Launch {
    program: Option<PathBuf>,
    wrapper: Vec<OsString>,
    config: ConfigSource,
    args: Vec<OsString>,
    ready: Ready,
    ready_timeout: Duration,
    log_file: Option<PathBuf>,
    own_group: bool,
}

impl Launch {
    /// Runs on the config `text` (TOML), written to a temporary file.
    pub fn text(config: &str) -> Self {
        Self::new(ConfigSource::Text(config.to_owned()))
    }

    /// Runs on the config file at `path`, which the caller keeps.
    pub fn file(path: &Path) -> Self {
        Self::new(ConfigSource::File(path.to_owned()))
    }

    fn new(config: ConfigSource) -> Self {
        Self {
            program: None,
            wrapper: Vec::new(),
            config,
            args: Vec::new(),
            ready: Ready::Line,
            ready_timeout: READY_TIMEOUT,
            log_file: None,
            own_group: false,
        }
    }

    /// The ringway binary to run; by default the one built beside the
    /// running test executable ([`binary`]).
    pub fn binary(mut self, program: &Path) -> Self {
        self.program = Some(program.to_owned());
        self
    }

    /// Runs ringway through `command`, which execs the binary named after
    /// it (`["prlimit", "--nofile=64:64", "--"]`, `["taskset", "-c", "1"]`).
    /// Without one, ringway runs through the wrapper of the suite's backend
    /// ([`test_backend`]); a launch that brings its own is left as it is.
    pub fn wrapped<S: AsRef<OsStr>>(mut self, command: &[S]) -> Self {
        self.wrapper = command.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Adds arguments after `run --config PATH` (`["--io-uring", "basic"]`).
    pub fn args<S: AsRef<OsStr>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// How to tell it is ready; [`Ready::Line`] unless said.
    pub fn ready(mut self, ready: Ready) -> Self {
        self.ready = ready;
        self
    }

    /// How long it may take to be ready; [`READY_TIMEOUT`] unless said.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Also writes its stdout and stderr to the file at `path` (created or
    /// truncated), for people to read after the run.
    pub fn log_file(mut self, path: &Path) -> Self {
        self.log_file = Some(path.to_owned());
        self
    }

    /// Runs it in a process group of its own ([`Program::own_process_group`]).
    pub fn own_process_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// Starts it and waits as [`Launch::ready`] says. On failure, the
    /// process is killed and the error carries its stderr and config.
    pub fn spawn(self) -> Result<Ringway, LaunchError> {
        let program = self.program.clone().unwrap_or_else(binary);
        let (path, file) = match &self.config {
            ConfigSource::Text(text) => {
                let file = try_write_config(text).map_err(LaunchError::Config)?;
                (file.path().to_owned(), Some(file))
            }
            ConfigSource::File(path) => (path.clone(), None),
        };
        let wrapper = if self.wrapper.is_empty() {
            backend::run_wrapper()
        } else {
            self.wrapper.clone()
        };
        let mut run = Program::new(&program)
            .wrapped(&wrapper)
            .args(&[OsStr::new("run"), OsStr::new("--config"), path.as_os_str()])
            .args(&self.args);
        if let Some(log) = &self.log_file {
            run = run.log_file(log);
        }
        if self.own_group {
            run = run.own_process_group();
        }
        let process = run.spawn().map_err(|e| match e {
            SpawnError::File { path, source } => LaunchError::Log { path, source },
            SpawnError::Start { program, source } => LaunchError::Spawn { program, source },
        })?;
        let mut ringway = Ringway {
            process,
            config_path: path,
            _config: file,
        };
        ringway.wait_ready(self.ready, self.ready_timeout)?;
        Ok(ringway)
    }
}

/// Why ringway could not be run as asked.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The temporary config file could not be written.
    #[error("cannot write ringway's config file: {0}")]
    Config(io::Error),
    /// The log file could not be created.
    #[error("cannot create {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The binary (or its wrapper) could not be started.
    #[error("cannot start {program}: {source} (build it with `cargo build --workspace --bins`)")]
    Spawn {
        /// What was run.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It exited while starting.
    #[error("ringway exited at start ({status}); stderr:\n{stderr}\nconfig:\n{config}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// Everything it wrote to stderr.
        stderr: String,
        /// The config it ran on.
        config: String,
    },
    /// It was not ready in time.
    #[error(
        "ringway did not become ready within {waited:?} (last: {last}); \
         stderr:\n{stderr}\nconfig:\n{config}"
    )]
    NotReady {
        /// How long the launch waited.
        waited: Duration,
        /// The last outcome of the readiness check.
        last: String,
        /// Everything it wrote to stderr.
        stderr: String,
        /// The config it ran on.
        config: String,
    },
    /// A signal could not be sent.
    #[error("cannot send {signal} to ringway (pid {pid}): {source}")]
    Signal {
        /// The signal.
        signal: Signal,
        /// Its process id.
        pid: u32,
        /// Why.
        source: nix::Error,
    },
    /// It did not exit in time after SIGTERM, and was killed.
    #[error("ringway did not exit within {timeout:?} of SIGTERM; killed it; stderr:\n{stderr}")]
    NoExit {
        /// How long it had.
        timeout: Duration,
        /// Everything it wrote to stderr.
        stderr: String,
    },
    /// Waiting for it failed.
    #[error("cannot wait for ringway: {0}")]
    Wait(io::Error),
}

/// A running `ringway run`; killed when dropped.
#[derive(Debug)]
pub struct Ringway {
    process: Process,
    config_path: PathBuf,
    /// The config file the launcher wrote, if it wrote one.
    _config: Option<NamedTempFile>,
}

impl Ringway {
    /// Starts `ringway run` on `config` (TOML text) and waits until it says
    /// it is ready; panics, showing its stderr, if it exits or is not ready
    /// within 20 s.
    pub fn start(config: &str) -> Self {
        Self::start_with(config, &[])
    }

    /// Like [`Ringway::start`], with extra arguments to `ringway run`, e.g.
    /// `["--io-uring", "basic"]`.
    pub fn start_with(config: &str, args: &[&str]) -> Self {
        expect_started(Launch::text(config).args(args).spawn())
    }

    /// Starts `ringway run --config PATH` on a file the test owns (and may
    /// edit while the proxy runs); waits until the proxy says it is ready.
    pub fn start_file(path: &Path) -> Self {
        expect_started(Launch::file(path).spawn())
    }

    /// Starts `ringway run` on `config` and returns at once, without waiting
    /// for it to be ready: for tests that watch the start-up themselves.
    pub fn spawn(config: &str) -> Self {
        expect_started(Launch::text(config).ready(Ready::Nothing).spawn())
    }

    /// Like [`Ringway::start`], with the proxy's soft limit on open files
    /// set to `soft` (through `prlimit`, which then runs the proxy itself).
    pub fn start_with_fd_limit(config: &str, soft: u64) -> Self {
        Self::start_with_fd_limits(config, soft, crate::limits::fd_hard_limit())
    }

    /// Like [`Ringway::start`], with the proxy's soft and hard limits on
    /// open files set (through `prlimit`). With `hard` low too, the proxy
    /// cannot raise its limit: it has to live with `soft` descriptors.
    /// Under the suite's backend wrapper too ([`test_backend`]), which
    /// execs `prlimit` with its filter in place.
    pub fn start_with_fd_limits(config: &str, soft: u64, hard: u64) -> Self {
        let mut wrapper = backend::run_wrapper();
        wrapper.extend(["prlimit", &format!("--nofile={soft}:{hard}"), "--"].map(OsString::from));
        expect_started(Launch::text(config).wrapped(&wrapper).spawn())
    }

    /// Waits as `ready` says; on failure kills the proxy and returns what
    /// it said.
    fn wait_ready(&mut self, ready: Ready, timeout: Duration) -> Result<(), LaunchError> {
        let failed = match ready {
            Ready::Nothing => return Ok(()),
            Ready::Line => {
                let line = self
                    .process
                    .wait_for_line(timeout, |line| line.ends_with("; ready"));
                match line {
                    Some(_) => return Ok(()),
                    // stderr closes when the process exits.
                    None if self.process.has_exited() => match self.process.wait_exit(LAST_WORDS) {
                        Ok(status) => NotReady::Exited(status),
                        Err(e) => NotReady::Wait(io::Error::other(e)),
                    },
                    None => NotReady::TimedOut("no `; ready` line on stderr".to_owned()),
                }
            }
            Ready::Admin(addr) => {
                let mut client = AdminClient::new(addr, PROBE_TIMEOUT);
                let polled = self.process.wait_ready(timeout, |_| {
                    match client.request("GET", "/ready", b"") {
                        Ok(reply) if reply.status == 200 => Ok(()),
                        Ok(reply) => Err(format!("{} {}", reply.status, reply.body.trim_end())),
                        Err(e) => Err(e.to_string()),
                    }
                });
                match polled {
                    Ok(()) => return Ok(()),
                    Err(NotReady::TimedOut(last)) => {
                        NotReady::TimedOut(format!("GET /ready on {addr}: {last}"))
                    }
                    Err(other) => other,
                }
            }
        };
        self.process.kill();
        let stderr = self.process.stderr();
        let config = std::fs::read_to_string(&self.config_path).unwrap_or_default();
        Err(match failed {
            NotReady::Exited(status) => LaunchError::Exited {
                status,
                stderr,
                config,
            },
            NotReady::TimedOut(last) => LaunchError::NotReady {
                waited: timeout,
                last,
                stderr,
                config,
            },
            NotReady::Wait(e) => LaunchError::Wait(e),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its process, for what the tests and benches read of any program.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Its process, for what the tests and benches do with any program
    /// (wait for one more condition, say).
    pub fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }

    /// The config file it runs on.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Sends SIGTERM: the proxy stops accepting and drains.
    pub fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Sends `signal` to the proxy; panics if it cannot.
    pub fn signal(&self, signal: Signal) {
        self.try_signal(signal).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends `signal` to the proxy.
    pub fn try_signal(&self, signal: Signal) -> Result<(), LaunchError> {
        self.process
            .signal(signal)
            .map_err(|source| LaunchError::Signal {
                signal,
                pid: self.pid(),
                source,
            })
    }

    /// Waits until a stderr line contains `needle`; returns that line, or
    /// panics after `timeout` or as soon as the proxy exits without it.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> String {
        self.process
            .wait_for_line(timeout, |line| line.contains(needle))
            .unwrap_or_else(|| {
                let when = if self.process.stderr_closed() {
                    "before it exited".to_owned()
                } else {
                    format!("within {timeout:?}")
                };
                panic!(
                    "ringway wrote no line containing {needle:?} {when}; stderr:\n{}",
                    self.stderr()
                )
            })
    }

    /// Sends SIGTERM and waits (up to 30 s) for the proxy to exit.
    pub fn stop(self) -> Exit {
        self.terminate();
        self.wait(STOP_TIMEOUT)
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit (draining
    /// included); kills the proxy if it does not exit in time.
    pub fn try_stop(mut self, timeout: Duration) -> Result<Exit, LaunchError> {
        let pid = self.pid();
        match self.process.stop(Signal::SIGTERM, timeout) {
            Ok(status) => Ok(Exit::new(status, self.process.stderr())),
            Err(StopError::Signal { signal, source, .. }) => Err(LaunchError::Signal {
                signal,
                pid,
                source,
            }),
            Err(StopError::NoExit(timeout)) => Err(LaunchError::NoExit {
                timeout,
                stderr: self.process.stderr(),
            }),
            Err(StopError::Wait(e)) => Err(LaunchError::Wait(e)),
        }
    }

    /// Waits for the proxy to exit by itself (after [`Ringway::terminate`]);
    /// panics after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Exit {
        match self.process.wait_exit(timeout) {
            Ok(status) => Exit::new(status, self.process.stderr()),
            Err(e) => panic!("ringway {e}; stderr:\n{}", self.process.stderr()),
        }
    }
}

impl Drop for Ringway {
    /// A ringway nobody stopped (a test or a bench failed half-way) is
    /// killed, not left running; in a panicking thread its stderr is shown.
    fn drop(&mut self) {
        self.process.kill();
        if thread::panicking() {
            eprintln!("--- ringway stderr ---\n{}", self.process.stderr());
        }
    }
}

/// The tests' way with a launch error: panic with all it says.
fn expect_started(launched: Result<Ringway, LaunchError>) -> Ringway {
    launched.unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for ringway: a shell script that prints what ringway
    /// prints at start and at exit, and exits on SIGTERM. It runs through
    /// `sh` (see [`Launch::wrapped`]): executing a file this multi-threaded
    /// process just wrote may fail with ETXTBSY, when a parallel test forks
    /// while the file is open for writing.
    fn fake_ringway(dir: &Path, ready: bool) -> PathBuf {
        let script = dir.join("fake-ringway");
        let ready_line = if ready {
            "echo 'ringway: 1 worker; ready' >&2"
        } else {
            ""
        };
        // The trap comes first: the test sends SIGTERM as soon as it reads
        // the first lines.
        let text = format!(
            "trap 'echo \"ringway: worker 0 core=0 accepted=3\" >&2; echo \"ringway: stopped\" >&2; exit 0' TERM\n\
             echo \"ringway: args $*\" >&2\n\
             {ready_line}\n\
             while :; do sleep 0.05; done\n"
        );
        std::fs::write(&script, text).expect("the script is written");
        script
    }

    #[test]
    fn starts_waits_for_the_ready_line_and_stops() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("ringway.log");
        let ringway = Launch::text("# empty\n")
            .binary(&fake_ringway(dir.path(), true))
            .wrapped(&["sh"])
            .args(&["--io-uring", "basic"])
            .log_file(&log)
            .spawn()
            .expect("the fake starts");
        let args = ringway.wait_for_stderr("ringway: args", Duration::from_secs(10));
        assert!(args.contains("run --config"), "{args}");
        assert!(args.ends_with("--io-uring basic"), "{args}");
        let exit = ringway.try_stop(Duration::from_secs(10)).expect("it stops");
        exit.assert_clean();
        assert_eq!(exit.total("accepted"), 3);
        let teed = std::fs::read_to_string(&log).expect("the log file");
        assert!(teed.contains("; ready"), "{teed}");
    }

    #[test]
    fn waits_for_the_admin_api_to_say_ready() {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let listener = crate::ports::loopback_listener(16).expect("a loopback listener");
        let admin = listener.local_addr().expect("its address");
        // `/ready` answers 503 once, then 200.
        let api = thread::spawn(move || {
            for status in ["503 Service Unavailable", "200 OK"] {
                let (stream, _) = listener.accept().expect("a probe");
                let mut conn = BufReader::new(stream);
                let mut line = String::new();
                while conn.read_line(&mut line).expect("a request line") > 2 {
                    line.clear();
                }
                let answer =
                    format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
                conn.get_mut()
                    .write_all(answer.as_bytes())
                    .expect("answered");
            }
        });
        let ringway = Launch::text("")
            .binary(&fake_ringway(dir.path(), false))
            .wrapped(&["sh"])
            .ready(Ready::Admin(admin))
            .spawn()
            .expect("ready once /ready says 200");
        api.join().expect("the fake API ends");
        let exit = ringway.try_stop(Duration::from_secs(10)).expect("it stops");
        exit.assert_clean();
    }

    #[test]
    fn a_proxy_that_never_says_ready_is_killed_and_reported() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let err = Launch::text("# the config\n")
            .binary(&fake_ringway(dir.path(), false))
            .wrapped(&["sh"])
            .ready_timeout(Duration::from_millis(300))
            .spawn()
            .expect_err("never ready");
        let LaunchError::NotReady { stderr, config, .. } = err else {
            panic!("not a NotReady error: {err}");
        };
        assert!(stderr.contains("ringway: args"), "{stderr}");
        assert_eq!(config, "# the config\n");
    }

    #[test]
    fn a_proxy_that_exits_at_start_is_reported() {
        let err = Launch::text("")
            .binary(Path::new("/bin/false"))
            .spawn()
            .expect_err("exits at once");
        assert!(matches!(err, LaunchError::Exited { .. }), "{err}");
        let err = Launch::text("")
            .binary(Path::new("/nonexistent/ringway"))
            .spawn()
            .expect_err("cannot start");
        assert!(matches!(err, LaunchError::Spawn { .. }), "{err}");
    }
}
