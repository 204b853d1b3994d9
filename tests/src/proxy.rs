//! The proxy under test: start `ringway run`, watch its stderr, stop it and
//! read its exit report.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::NamedTempFile;

/// How long the proxy may take to say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Ringway::stop`] waits for the proxy to exit after SIGTERM:
/// more than the 5 s drain the tests' configs ask for.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

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
    let stderr = Log::capture(child.stderr.take());
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

/// A running `ringway run`; killed when dropped.
#[derive(Debug)]
pub struct Ringway {
    child: Child,
    log: Log,
    /// The config file the harness wrote, if it wrote one.
    _config: Option<NamedTempFile>,
}

/// Whether [`Ringway::launch`] waits for the proxy to say it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Await {
    Ready,
    Nothing,
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
        let file = write_config(config);
        Self::launch(
            Command::new(binary()),
            file.path().to_owned(),
            Some(file),
            args,
            Await::Ready,
        )
    }

    /// Starts `ringway run --config PATH` on a file the test owns (and may
    /// edit while the proxy runs); waits until the proxy says it is ready.
    pub fn start_file(path: &Path) -> Self {
        Self::launch(
            Command::new(binary()),
            path.to_owned(),
            None,
            &[],
            Await::Ready,
        )
    }

    /// Starts `ringway run` on `config` and returns at once, without waiting
    /// for it to be ready: for tests that watch the start-up themselves.
    pub fn spawn(config: &str) -> Self {
        let file = write_config(config);
        Self::launch(
            Command::new(binary()),
            file.path().to_owned(),
            Some(file),
            &[],
            Await::Nothing,
        )
    }

    /// Like [`Ringway::start`], with the proxy's soft limit on open files
    /// set to `soft` (through `prlimit`, which then runs the proxy itself).
    pub fn start_with_fd_limit(config: &str, soft: u64) -> Self {
        Self::start_with_fd_limits(config, soft, crate::net::fd_hard_limit())
    }

    /// Like [`Ringway::start`], with the proxy's soft and hard limits on
    /// open files set (through `prlimit`). With `hard` low too, the proxy
    /// cannot raise its limit: it has to live with `soft` descriptors.
    pub fn start_with_fd_limits(config: &str, soft: u64, hard: u64) -> Self {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={soft}:{hard}"))
            .arg("--")
            .arg(binary());
        let file = write_config(config);
        Self::launch(
            command,
            file.path().to_owned(),
            Some(file),
            &[],
            Await::Ready,
        )
    }

    /// Runs `COMMAND run --config PATH ARGS`, keeping `file` (the config at
    /// `path`, if the harness wrote it) alive as long as the proxy.
    fn launch(
        mut command: Command,
        path: PathBuf,
        file: Option<NamedTempFile>,
        args: &[&str],
        wait: Await,
    ) -> Self {
        let mut child = command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ringway: {e}"));
        let log = Log::capture(child.stderr.take());
        let mut ringway = Self {
            child,
            log,
            _config: file,
        };
        if wait == Await::Ready
            && ringway
                .log
                .wait_for(READY_TIMEOUT, |line| line.ends_with("; ready"))
                .is_none()
        {
            let config = std::fs::read_to_string(&path).unwrap_or_default();
            let _ = ringway.child.kill();
            let _ = ringway.child.wait();
            // Let the reader thread take in the last words.
            ringway.log.wait_closed(Duration::from_secs(5));
            panic!(
                "ringway did not become ready within {READY_TIMEOUT:?}; stderr:\n{}\nconfig:\n{config}",
                ringway.log.text()
            );
        }
        ringway
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.text()
    }

    /// Sends SIGTERM: the proxy stops accepting and drains.
    pub fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Sends `signal` to the proxy.
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.pid()).unwrap_or_else(|_| panic!("pid out of range"));
        kill(Pid::from_raw(pid), signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to ringway ({pid}): {e}"));
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

/// How the proxy ended: its exit status, its stderr and the per-worker
/// report it printed.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// The `ringway: worker N ...` lines, in order.
    pub workers: Vec<WorkerLine>,
}

/// One worker's line of the exit report: `worker N key=value ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLine {
    /// Worker index.
    pub index: usize,
    /// The `key=value` pairs as written.
    pub fields: BTreeMap<String, String>,
}

impl Exit {
    fn new(status: ExitStatus, stderr: String) -> Self {
        let workers = stderr.lines().filter_map(WorkerLine::parse).collect();
        Self {
            status,
            stderr,
            workers,
        }
    }

    /// Sum over every worker of a numeric counter; panics, showing the
    /// report, if a worker line lacks it.
    pub fn total(&self, key: &str) -> u64 {
        assert!(
            !self.workers.is_empty(),
            "no worker lines in the exit report:\n{}",
            self.stderr
        );
        self.workers
            .iter()
            .map(|w| {
                w.counter(key)
                    .unwrap_or_else(|| panic!("no counter {key} in:\n{}", self.stderr))
            })
            .sum()
    }

    /// Panics, showing stderr, unless the proxy exited 0 and said `stopped`.
    pub fn assert_clean(&self) {
        assert!(
            self.status.success(),
            "ringway exited with {}; stderr:\n{}",
            self.status,
            self.stderr
        );
        assert!(
            self.stderr.lines().any(|l| l == "ringway: stopped"),
            "no `ringway: stopped` line; stderr:\n{}",
            self.stderr
        );
    }
}

impl WorkerLine {
    /// Parses `ringway: worker 0 core=0 accepted=2 ...`.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("ringway: worker ")?;
        let mut words = rest.split_whitespace();
        let index = words.next()?.parse().ok()?;
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Self { index, fields })
    }

    /// A numeric counter, if present.
    pub fn counter(&self, key: &str) -> Option<u64> {
        self.fields.get(key)?.parse().ok()
    }
}

/// Lines a child writes to a pipe, collected by a thread; waiters are woken
/// on every line and when the pipe closes.
#[derive(Debug, Clone)]
struct Log {
    shared: Arc<(Mutex<LogState>, Condvar)>,
}

#[derive(Debug, Default)]
struct LogState {
    lines: Vec<String>,
    closed: bool,
}

impl Log {
    fn capture(pipe: Option<impl Read + Send + 'static>) -> Self {
        let log = Self {
            shared: Arc::new((Mutex::new(LogState::default()), Condvar::new())),
        };
        let writer = log.clone();
        let pipe = pipe.unwrap_or_else(|| panic!("the child's stderr was not piped"));
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                writer.update(|state| state.lines.push(line));
            }
            writer.update(|state| state.closed = true);
        });
        log
    }

    fn update(&self, change: impl FnOnce(&mut LogState)) {
        let (lock, wake) = &*self.shared;
        change(&mut lock.lock().unwrap_or_else(|e| e.into_inner()));
        wake.notify_all();
    }

    /// Waits for a line matching `pred` (including lines already there).
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let mut found = None;
        self.wait_until(timeout, |state| {
            found = state.lines.iter().find(|l| pred(l)).cloned();
            found.is_some() || state.closed
        });
        found
    }

    /// Whether the pipe has closed (the child exited).
    fn is_closed(&self) -> bool {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Waits for the pipe to close (the child exited); false on timeout.
    fn wait_closed(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |state| state.closed)
    }

    /// Waits until `done` holds; false if `timeout` passes first.
    fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&LogState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, wake) = &*self.shared;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if done(&state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn text(&self) -> String {
        let (lock, _) = &*self.shared;
        let state = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = state.lines.join("\n");
        text.push('\n');
        text
    }
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    let mut pipe = pipe.unwrap_or_else(|| panic!("the child's stdout was not piped"));
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

/// Writes a config to a temporary file, removed when the handle drops.
pub fn write_config(config: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("ringway-")
        .suffix(".toml")
        .tempfile()
        .unwrap_or_else(|e| panic!("cannot create a config file: {e}"));
    std::io::Write::write_all(&mut file, config.as_bytes())
        .unwrap_or_else(|e| panic!("cannot write the config file: {e}"));
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_worker_line() {
        let line = WorkerLine::parse(
            "ringway: worker 1 core=1 accepted=2 copied_bytes=0 defer_taskrun=true",
        )
        .expect("a worker line");
        assert_eq!(line.index, 1);
        assert_eq!(line.counter("accepted"), Some(2));
        assert_eq!(line.counter("copied_bytes"), Some(0));
        assert_eq!(line.counter("defer_taskrun"), None);
        assert_eq!(line.fields["defer_taskrun"], "true");
        assert_eq!(WorkerLine::parse("ringway: stopped"), None);
    }
}
