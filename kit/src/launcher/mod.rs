//! The one ringway launcher: start `ringway run` on a config, wait until it
//! is ready, watch its stderr, stop it with SIGTERM and read its exit
//! report.
//!
//! [`Launch`] says how (binary, config text or file, extra arguments, a
//! wrapper such as `prlimit`, how to tell it is ready, a log file) and
//! returns errors as values, for the benches; [`Ringway::start`] and its
//! siblings are the tests' shorthands, which panic with ringway's stderr
//! and config when the proxy does not come up. stderr is always read
//! through a pipe into memory (and copied into the log file when one is
//! given), so a test can wait for a line and a bench can quote the end.

mod exit;
mod log;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::NamedTempFile;

pub use self::exit::{Exit, WorkerLine};
use self::log::Log;
use crate::admin::AdminClient;

/// How long the proxy may take to be ready, unless the launch says.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Ringway::stop`] waits for the proxy to exit after SIGTERM:
/// more than the 5 s drain the tests' configs ask for.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`Ready::Admin`] asks `/ready`.
const READY_POLL: Duration = Duration::from_millis(20);
/// Timeout of one `/ready` probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a launch that failed waits for the last words on stderr.
const LAST_WORDS: Duration = Duration::from_secs(5);

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
/// runs longer than `timeout`.
pub fn run_to_exit(args: &[&str], timeout: Duration) -> Output {
    let mut command = Command::new(binary());
    command.args(args);
    run_command_to_exit(command, timeout)
}

/// Runs `command` (ringway, or a launcher that execs it) to completion and
/// returns its output; panics if it runs longer than `timeout`.
pub fn run_command_to_exit(mut command: Command, timeout: Duration) -> Output {
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start ringway {args:?}: {e}"));
    let stdout = read_in_background(child.stdout.take());
    let stderr = Log::capture(piped(child.stderr.take()), None);
    if !stderr.wait_closed(timeout) {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "ringway {args:?} still running after {timeout:?}; stderr:\n{}",
            stderr.text()
        );
    }
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("cannot wait for ringway: {e}"));
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.text().into_bytes(),
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
        }
    }

    /// The ringway binary to run; by default the one built beside the
    /// running test executable ([`binary`]).
    pub fn binary(mut self, program: &Path) -> Self {
        self.program = Some(program.to_owned());
        self
    }

    /// Runs ringway through `command`, which execs the binary named after
    /// it (`["prlimit", "--nofile=64:64", "--"]`).
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
        let (stdout, tee) = match &self.log_file {
            Some(log) => {
                let error = |source| LaunchError::Log {
                    path: log.clone(),
                    source,
                };
                let out = File::create(log).map_err(error)?;
                let tee = out.try_clone().map_err(error)?;
                (Stdio::from(out), Some(tee))
            }
            None => (Stdio::null(), None),
        };
        let mut command = match self.wrapper.split_first() {
            Some((wrapper, wrapper_args)) => {
                let mut command = Command::new(wrapper);
                command.args(wrapper_args).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        let mut child = command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                program: self.wrapper.first().map_or(program, PathBuf::from),
                source,
            })?;
        let log = Log::capture(piped(child.stderr.take()), tee);
        let mut ringway = Ringway {
            child,
            log,
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
    child: Child,
    log: Log,
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
    pub fn start_with_fd_limits(config: &str, soft: u64, hard: u64) -> Self {
        let nofile = format!("--nofile={soft}:{hard}");
        expect_started(
            Launch::text(config)
                .wrapped(&["prlimit", nofile.as_str(), "--"])
                .spawn(),
        )
    }

    /// Waits as `ready` says; on failure kills the proxy and returns what
    /// it said.
    fn wait_ready(&mut self, ready: Ready, timeout: Duration) -> Result<(), LaunchError> {
        let last = match ready {
            Ready::Nothing => return Ok(()),
            Ready::Line => match self.log.wait_for(timeout, |line| line.ends_with("; ready")) {
                Some(_) => return Ok(()),
                None => "no `; ready` line on stderr".to_owned(),
            },
            Ready::Admin(addr) => match self.poll_admin(addr, timeout) {
                Ok(()) => return Ok(()),
                Err(last) => last,
            },
        };
        // stderr closes when the process exits.
        let exited = self.log.is_closed() || matches!(self.child.try_wait(), Ok(Some(_)));
        let _ = self.child.kill();
        let status = self.child.wait().map_err(LaunchError::Wait)?;
        // Let the reader thread take in the last words.
        self.log.wait_closed(LAST_WORDS);
        let stderr = self.log.text();
        let config = std::fs::read_to_string(&self.config_path).unwrap_or_default();
        Err(if exited {
            LaunchError::Exited {
                status,
                stderr,
                config,
            }
        } else {
            LaunchError::NotReady {
                waited: timeout,
                last,
                stderr,
                config,
            }
        })
    }

    /// Asks `GET /ready` until it answers 200, the process exits, or
    /// `timeout` passes; the `Err` says what the last try saw.
    fn poll_admin(&mut self, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut client = AdminClient::new(addr, PROBE_TIMEOUT);
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if self.log.is_closed() || matches!(self.child.try_wait(), Ok(Some(_))) {
                return Err("it exited".to_owned());
            }
            match client.request("GET", "/ready", b"") {
                Ok(reply) if reply.status == 200 => return Ok(()),
                Ok(reply) => last = format!("{} {}", reply.status, reply.body.trim_end()),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(READY_POLL);
        }
        Err(format!("GET /ready on {addr}: {last}"))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config file it runs on.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.text()
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
        let pid = self.pid();
        let raw = i32::try_from(pid).unwrap_or(i32::MAX);
        kill(Pid::from_raw(raw), signal).map_err(|source| LaunchError::Signal {
            signal,
            pid,
            source,
        })
    }

    /// Waits until a stderr line contains `needle`; returns that line, or
    /// panics after `timeout` or as soon as the proxy exits without it.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> String {
        self.log
            .wait_for(timeout, |line| line.contains(needle))
            .unwrap_or_else(|| {
                let when = if self.log.is_closed() {
                    "before it exited".to_owned()
                } else {
                    format!("within {timeout:?}")
                };
                panic!(
                    "ringway wrote no line containing {needle:?} {when}; stderr:\n{}",
                    self.log.text()
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
        if let Err(e) = self.try_signal(Signal::SIGTERM) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return Err(e);
        }
        if !self.log.wait_closed(timeout) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.log.wait_closed(LAST_WORDS);
            return Err(LaunchError::NoExit {
                timeout,
                stderr: self.log.text(),
            });
        }
        let status = self.child.wait().map_err(LaunchError::Wait)?;
        Ok(Exit::new(status, self.log.text()))
    }

    /// Waits for the proxy to exit by itself (after [`Ringway::terminate`]);
    /// panics after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Exit {
        if !self.log.wait_closed(timeout) {
            panic!(
                "ringway did not exit within {timeout:?}; stderr:\n{}",
                self.log.text()
            );
        }
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("cannot wait for ringway: {e}"));
        Exit::new(status, self.log.text())
    }
}

impl Drop for Ringway {
    /// A ringway nobody stopped (a test or a bench failed half-way) is
    /// killed, not left running; in a panicking thread its stderr is shown.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- ringway stderr ---\n{}", self.log.text());
        }
    }
}

/// The tests' way with a launch error: panic with all it says.
fn expect_started(launched: Result<Ringway, LaunchError>) -> Ringway {
    launched.unwrap_or_else(|e| panic!("{e}"))
}

fn piped<R: Read + Send + 'static>(pipe: Option<R>) -> R {
    pipe.unwrap_or_else(|| panic!("the child's output was not piped"))
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    let mut pipe = piped(pipe);
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
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
