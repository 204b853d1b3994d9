//! Any program a test or a bench starts and stops: ringway (through
//! [`super::Launch`]), nginx and HAProxy, `ringway-bench origin` and
//! `ringway-bench load`.
//!
//! [`Program`] says how to run it (`[WRAPPER...] PROGRAM ARGS...`, where
//! its output goes, whether it gets a process group of its own);
//! [`Process`] is the running program: its stderr is always read into
//! memory by a thread (and copied into the log file when one is given), so
//! a caller can wait for a line, quote the end, or tell that it exited the
//! moment the pipe closes. A process nobody stopped is killed when its
//! handle drops.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::log::Log;

/// How often [`Process::wait_ready`] probes.
const READY_POLL: Duration = Duration::from_millis(20);
/// How often [`Process::wait_exit`] asks whether the child exited, when
/// its stderr does not close first.
const EXIT_POLL: Duration = Duration::from_millis(20);
/// How long the output of a process that exited may take to drain.
pub(crate) const LAST_WORDS: Duration = Duration::from_secs(5);

/// Where a program's stdout goes.
#[derive(Debug, Clone)]
enum Stdout {
    /// Nowhere.
    Null,
    /// Into this file, alone.
    File(PathBuf),
    /// Read into memory, for [`Process::take_stdout`].
    Capture,
}

/// How to start a program: `[WRAPPER...] PROGRAM ARGS...`.
#[derive(Debug, Clone)]
pub struct Program {
    program: PathBuf,
    args: Vec<OsString>,
    wrapper: Vec<OsString>,
    stdout: Stdout,
    log_file: Option<PathBuf>,
    own_group: bool,
}

impl Program {
    /// Runs `program`, with no arguments, its stdout thrown away.
    pub fn new(program: &Path) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
            wrapper: Vec::new(),
            stdout: Stdout::Null,
            log_file: None,
            own_group: false,
        }
    }

    /// Adds arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Runs the program through `command`, which execs the program named
    /// after it (`["taskset", "-c", "1"]`, `["prlimit", "--nofile=64:64",
    /// "--"]`).
    pub fn wrapped<S: AsRef<OsStr>>(mut self, command: &[S]) -> Self {
        self.wrapper = command.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Also writes its stderr, and its stdout unless it goes elsewhere, to
    /// the file at `path` (created or truncated), for people to read after
    /// the run.
    pub fn log_file(mut self, path: &Path) -> Self {
        self.log_file = Some(path.to_owned());
        self
    }

    /// Writes its stdout to the file at `path` (created or truncated),
    /// apart from the log.
    pub fn stdout_file(mut self, path: &Path) -> Self {
        self.stdout = Stdout::File(path.to_owned());
        self
    }

    /// Keeps its stdout in memory, for [`Process::take_stdout`].
    pub fn capture_stdout(mut self) -> Self {
        self.stdout = Stdout::Capture;
        self
    }

    /// Starts it in a process group of its own: a Ctrl-C meant for the
    /// caller does not reach it (the caller stops it, at the end of a
    /// measurement), and stopping or killing it reaches every process it
    /// forked (nginx's workers).
    pub fn own_process_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// The program that actually starts: the wrapper's, or the program.
    pub fn started(&self) -> PathBuf {
        self.wrapper
            .first()
            .map_or_else(|| self.program.clone(), PathBuf::from)
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        let words = self
            .wrapper
            .iter()
            .map(OsString::as_os_str)
            .chain([self.program.as_os_str()])
            .chain(self.args.iter().map(OsString::as_os_str));
        let words: Vec<_> = words.map(OsStr::to_string_lossy).collect();
        words.join(" ")
    }

    /// Starts it.
    pub fn spawn(&self) -> Result<Process, SpawnError> {
        let create = |path: &Path| {
            File::create(path).map_err(|source| SpawnError::File {
                path: path.to_owned(),
                source,
            })
        };
        let tee = self.log_file.as_deref().map(create).transpose()?;
        let stdout = match (&self.stdout, &tee) {
            (Stdout::File(path), _) => Stdio::from(create(path)?),
            (Stdout::Capture, _) => Stdio::piped(),
            (Stdout::Null, Some(log)) => {
                Stdio::from(log.try_clone().map_err(|source| SpawnError::File {
                    path: self.log_file.clone().unwrap_or_default(),
                    source,
                })?)
            }
            (Stdout::Null, None) => Stdio::null(),
        };
        let mut command = match self.wrapper.split_first() {
            Some((wrapper, wrapper_args)) => {
                let mut command = Command::new(wrapper);
                command.args(wrapper_args).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        if self.own_group {
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|source| SpawnError::Start {
            program: self.started(),
            source,
        })?;
        let stdout = child.stdout.take().map(read_in_background);
        let stderr = child
            .stderr
            .take()
            .unwrap_or_else(|| panic!("the child's stderr is piped: spawn asked for it"));
        Ok(Process {
            child,
            log: Log::capture(stderr, tee),
            stdout,
            own_group: self.own_group,
        })
    }
}

/// Why a program could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Its log or output file could not be created.
    #[error("cannot create {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The program (or its wrapper) could not be started.
    #[error("cannot start {program}: {source}")]
    Start {
        /// What was run.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Why [`Process::wait_ready`] gave up.
#[derive(Debug)]
pub enum NotReady {
    /// The process exited first.
    Exited(ExitStatus),
    /// The probe still failed at the deadline; what it said last.
    TimedOut(String),
    /// Waiting for the process failed.
    Wait(io::Error),
}

/// Why [`Process::stop`] or [`Process::wait_exit`] did not see a clean end.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// The signal could not be sent; the process was killed.
    #[error("cannot send {signal} to pid {pid}: {source}")]
    Signal {
        /// The signal.
        signal: Signal,
        /// The process.
        pid: u32,
        /// Why.
        source: nix::Error,
    },
    /// It did not exit in time, and was killed.
    #[error("did not exit within {0:?}; killed it")]
    NoExit(Duration),
    /// Waiting for it failed.
    #[error("cannot wait for its process: {0}")]
    Wait(io::Error),
}

/// A running program; killed (with its process group, when it has one)
/// when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    log: Log,
    stdout: Option<JoinHandle<Vec<u8>>>,
    own_group: bool,
}

impl Process {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote to stderr so far, each line ended by a newline.
    pub fn stderr(&self) -> String {
        self.log.text()
    }

    /// Waits for a stderr line matching `pred` (lines already written
    /// included); `None` after `timeout`, or once it exited without one.
    pub fn wait_for_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.log.wait_for(timeout, pred)
    }

    /// Whether its stderr has closed: it exited, with whatever it forked.
    pub fn stderr_closed(&self) -> bool {
        self.log.is_closed()
    }

    /// Whether it has exited (its stderr closed, or the kernel says so).
    pub fn has_exited(&mut self) -> bool {
        self.log.is_closed() || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Calls `probe` every 20 ms until it says `Ok`, the process exits, or
    /// `timeout` passes. It is not killed on failure: the caller decides.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut(&Self) -> Result<(), String>,
    ) -> Result<(), NotReady> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Let the reader take in the last words.
                    self.log.wait_closed(LAST_WORDS);
                    return Err(NotReady::Exited(status));
                }
                Ok(None) => {}
                Err(e) => return Err(NotReady::Wait(e)),
            }
            let last = match probe(self) {
                Ok(()) => return Ok(()),
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                return Err(NotReady::TimedOut(last));
            }
            thread::sleep(READY_POLL);
        }
    }

    /// Sends `signal` to it.
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        kill(raw_pid(self.pid()), signal)
    }

    /// Waits up to `timeout` for it to exit by itself (after a signal, say)
    /// and for its stderr to drain; kills it when the time is up.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, StopError> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    self.kill();
                    return Err(StopError::Wait(e));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill();
                self.log.wait_closed(LAST_WORDS);
                return Err(StopError::NoExit(timeout));
            }
            if self.log.is_closed() {
                // It closed stderr and lives on: poll.
                thread::sleep(left.min(EXIT_POLL));
            } else {
                // Its stderr closes when it exits: that wakes this wait early.
                self.log.wait_closed(left.min(EXIT_POLL));
            }
        };
        // What it forked and left behind would hold stderr open.
        self.reap_group();
        self.log.wait_closed(LAST_WORDS);
        Ok(status)
    }

    /// Sends `signal` and waits up to `timeout` for the exit, as
    /// [`Process::wait_exit`] does.
    pub fn stop(&mut self, signal: Signal, timeout: Duration) -> Result<ExitStatus, StopError> {
        if let Err(source) = self.signal(signal) {
            self.kill();
            return Err(StopError::Signal {
                signal,
                pid: self.pid(),
                source,
            });
        }
        self.wait_exit(timeout)
    }

    /// What it wrote to stdout, once it exited, when it was started with
    /// [`Program::capture_stdout`] (empty otherwise, and on a second call).
    pub fn take_stdout(&mut self) -> Vec<u8> {
        self.stdout
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }

    /// Kills it (and its process group) unless it already exited, and
    /// reaps it.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if self.own_group {
                let _ = killpg(raw_pid(self.pid()), Signal::SIGKILL);
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.reap_group();
    }

    /// Kills what is left of its process group (a worker its master did
    /// not wait for must not outlive it).
    fn reap_group(&self) {
        if self.own_group {
            let _ = killpg(raw_pid(self.pid()), Signal::SIGKILL);
        }
    }
}

impl Drop for Process {
    /// A program nobody stopped (a test or a bench failed half-way) is
    /// killed, not left running.
    fn drop(&mut self) {
        self.kill();
    }
}

/// `pid` as nix takes it (`Child::id` is a positive `i32` on Linux).
fn raw_pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_and_stderr_and_reports_the_exit() {
        let mut process = Program::new(Path::new("sh"))
            .args(&["-c", "echo out; echo err >&2; exit 3"])
            .capture_stdout()
            .spawn()
            .expect("sh starts");
        let status = process
            .wait_exit(Duration::from_secs(10))
            .expect("it exits");
        assert_eq!(status.code(), Some(3));
        assert_eq!(process.take_stdout(), b"out\n");
        assert_eq!(process.stderr(), "err\n");
        assert!(process.has_exited());
    }

    #[test]
    fn waits_for_a_probe_and_stops_a_process_group() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("sleeper.log");
        let flag = dir.path().join("ready");
        let script = format!("sleep 60 & echo started; touch {}; wait", flag.display());
        let program = Program::new(Path::new("sh"))
            .args(&["-c", &script])
            .log_file(&log)
            .own_process_group();
        assert_eq!(program.started(), Path::new("sh"));
        let mut process = program.spawn().expect("sh starts");
        process
            .wait_ready(Duration::from_secs(10), |_| {
                if flag.exists() {
                    Ok(())
                } else {
                    Err("no flag yet".to_owned())
                }
            })
            .expect("the flag appears");
        // SIGTERM ends `sh` (its `wait` is interrupted); the `sleep` it
        // forked still holds stderr until the group is killed.
        let status = process
            .stop(Signal::SIGTERM, Duration::from_secs(10))
            .expect("it stops");
        assert!(!status.success());
        let logged = std::fs::read_to_string(&log).expect("the log file");
        assert_eq!(logged, "started\n");
    }

    #[test]
    fn an_exit_before_ready_is_reported_and_a_hang_is_killed() {
        let mut quits = Program::new(Path::new("sh"))
            .args(&["-c", "echo bye >&2; exit 1"])
            .spawn()
            .expect("sh starts");
        let err = quits
            .wait_ready(Duration::from_secs(10), |_| Err("not yet".to_owned()))
            .expect_err("it exits");
        assert!(
            matches!(err, NotReady::Exited(s) if s.code() == Some(1)),
            "{err:?}"
        );
        assert_eq!(quits.stderr(), "bye\n");

        let mut hangs = Program::new(Path::new("sleep"))
            .args(&["60"])
            .spawn()
            .expect("sleep starts");
        let err = hangs
            .wait_ready(Duration::from_millis(100), |_| {
                Err("still asleep".to_owned())
            })
            .expect_err("never ready");
        assert!(matches!(&err, NotReady::TimedOut(last) if last == "still asleep"));
        let err = hangs
            .wait_exit(Duration::from_millis(100))
            .expect_err("it does not exit");
        assert!(matches!(err, StopError::NoExit(_)), "{err}");
        assert!(hangs.has_exited());
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = Program::new(Path::new("/nonexistent/program"))
            .wrapped(&["/nonexistent/wrapper", "-x"])
            .spawn()
            .expect_err("cannot start");
        assert!(
            matches!(&err, SpawnError::Start { program, .. } if program == Path::new("/nonexistent/wrapper")),
            "{err}"
        );
        let line = Program::new(Path::new("/bin/ringway"))
            .wrapped(&["taskset", "-c", "1"])
            .args(&["run"])
            .command_line();
        assert_eq!(line, "taskset -c 1 /bin/ringway run");
    }
}
