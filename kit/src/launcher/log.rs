//! The lines a child writes to a pipe, collected by a thread, kept in
//! memory and, when asked, appended to a log file as they come.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Lines a child writes to a pipe; waiters are woken on every line and when
/// the pipe closes.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    shared: Arc<(Mutex<LogState>, Condvar)>,
}

#[derive(Debug, Default)]
struct LogState {
    lines: Vec<String>,
    closed: bool,
}

impl Log {
    /// Starts the thread that reads `pipe` to its end; every line also goes
    /// to `tee` when given.
    pub(crate) fn capture(pipe: impl Read + Send + 'static, mut tee: Option<File>) -> Self {
        let log = Self {
            shared: Arc::new((Mutex::new(LogState::default()), Condvar::new())),
        };
        let writer = log.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut raw = Vec::new();
            // Lines are read as bytes: a child that writes something that
            // is not UTF-8 must still have its pipe drained to the end.
            while matches!(reader.read_until(b'\n', &mut raw), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&raw);
                let line = text.strip_suffix('\n').unwrap_or(&text);
                let line = line.strip_suffix('\r').unwrap_or(line).to_owned();
                raw.clear();
                if let Some(file) = &mut tee {
                    // The log file is a copy for people; the lines in
                    // memory are what the harness reads.
                    if writeln!(file, "{line}").is_err() {
                        tee = None;
                    }
                }
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

    /// Waits for a line matching `pred` (including lines already there);
    /// `None` after `timeout` or once the pipe closed without one.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let mut found = None;
        self.wait_until(timeout, |state| {
            found = state.lines.iter().find(|l| pred(l)).cloned();
            found.is_some() || state.closed
        });
        found
    }

    /// Whether the pipe has closed (the child exited).
    pub(crate) fn is_closed(&self) -> bool {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Waits for the pipe to close (the child exited); false on timeout.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
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

    /// Every line so far, each ended by a newline.
    pub(crate) fn text(&self) -> String {
        let (lock, _) = &*self.shared;
        let state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.lines.iter().map(|line| format!("{line}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_and_tees_lines_until_the_pipe_closes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("child.log");
        let file = File::create(&path).expect("the log file");
        let log = Log::capture(&b"one\ntwo; ready\nthree\n"[..], Some(file));
        assert!(log.wait_closed(Duration::from_secs(10)));
        assert!(log.is_closed());
        assert_eq!(
            log.wait_for(Duration::ZERO, |l| l.ends_with("; ready")),
            Some("two; ready".to_owned())
        );
        assert_eq!(log.wait_for(Duration::from_secs(10), |l| l == "four"), None);
        assert_eq!(log.text(), "one\ntwo; ready\nthree\n");
        let teed = std::fs::read_to_string(&path).expect("the log file reads");
        assert_eq!(teed, "one\ntwo; ready\nthree\n");
    }

    #[test]
    fn reads_past_bytes_that_are_not_text() {
        let log = Log::capture(&b"a\xff\r\nb"[..], None);
        assert!(log.wait_closed(Duration::from_secs(10)));
        assert_eq!(log.text(), "a\u{fffd}\nb\n");
        assert_eq!(Log::capture(&b""[..], None).text(), "");
    }
}
