//! The load generator under test: run `ringway-bench load` and read its
//! JSON, and the servers it loads.
//!
//! [`load`] runs the generator to its end; [`Load`] starts it and lets the
//! test signal it first. The servers are the kit's counting origin
//! ([`CountingOrigin`]), which keeps counts (connections, requests, bytes,
//! distinct request heads, body lengths), not the requests themselves:
//! [`counting_origin`] answers every request alike ([`Answer`]),
//! [`stalling_origin`] holds every answer during a time window ([`Stall`]),
//! and [`sink`] reads TCP streams to their end and counts their bytes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::Signal;
use ringway_kit::launcher::{Process, Program};
use ringway_kit::origin::{self, Settings};
pub use ringway_kit::origin::{CountingOrigin, Served, Stall, BODY_BYTE};
use serde_json::Value;

/// Longest run of the generator the harness waits for: the tests' runs last
/// a few seconds; a debug build on two busy cores gets far more.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of every response body a [`counting_origin`] sends.
pub const BODY_LEN: usize = 100;
/// Body bytes a [`Answer::CutShort`] response sends of the [`BODY_LEN`] it
/// announces.
const CUT_AT: usize = 10;

/// Runs of the generator in one test process take turns: the machine may
/// have two cores, a closed loop takes both, and runs that overlapped would
/// measure each other.
static TURN: Mutex<()> = Mutex::new(());

/// Waits for this test's turn to load; the turn lasts as long as the guard.
pub fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Path of the `ringway-bench` binary built beside this test executable.
pub fn binary() -> PathBuf {
    crate::proxy::sibling_binary("ringway-bench")
}

/// Runs `ringway-bench load --target TARGET ARGS --json --progress never`
/// to its end; panics if it runs longer than [`RUN_TIMEOUT`].
pub fn load(target: SocketAddr, args: &[&str]) -> LoadRun {
    Load::spawn(target, args).finish(RUN_TIMEOUT)
}

/// A running `ringway-bench load`; killed if dropped before it finished.
#[derive(Debug)]
pub struct Load {
    process: Process,
    args: Vec<String>,
}

impl Load {
    /// Starts `ringway-bench load --target TARGET ARGS --json`, with
    /// `--progress never` unless ARGS says otherwise.
    pub fn spawn(target: SocketAddr, args: &[&str]) -> Self {
        let mut all = vec![
            "load".to_string(),
            "--target".to_string(),
            target.to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all.push("--json".to_string());
        if !args.contains(&"--progress") {
            all.extend(["--progress", "never"].map(String::from));
        }
        let process = Program::new(&binary())
            .args(&all)
            .capture_stdout()
            .spawn()
            .unwrap_or_else(|e| panic!("ringway-bench {all:?}: {e}"));
        Self { process, args: all }
    }

    /// Sends `signal` to the generator.
    pub fn signal(&self, signal: Signal) {
        self.process
            .signal(signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to ringway-bench: {e}"));
    }

    /// Waits for the generator to exit and returns what it printed; kills
    /// it and panics after `timeout`.
    pub fn finish(mut self, timeout: Duration) -> LoadRun {
        let status = self.process.wait_exit(timeout).unwrap_or_else(|e| {
            panic!(
                "ringway-bench {:?}: {e}; stderr:\n{}",
                self.args,
                self.process.stderr()
            )
        });
        let stdout = String::from_utf8_lossy(&self.process.take_stdout()).into_owned();
        LoadRun {
            args: self.args.clone(),
            code: status.code(),
            json: serde_json::from_str(&stdout).ok(),
            stdout,
            stderr: self.process.stderr(),
        }
    }
}

/// What a finished `ringway-bench load` printed.
#[derive(Debug)]
pub struct LoadRun {
    /// The arguments it ran with.
    pub args: Vec<String>,
    /// Its exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Its stdout parsed as JSON, if it was JSON.
    pub json: Option<Value>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr (the human summary, or why it refused the options).
    pub stderr: String,
}

impl LoadRun {
    /// The JSON document; panics, showing stderr, when there is none.
    pub fn doc(&self) -> &Value {
        self.json.as_ref().unwrap_or_else(|| {
            panic!(
                "ringway-bench {:?} printed no JSON document (exit {:?}); stdout:\n{}\nstderr:\n{}",
                self.args, self.code, self.stdout, self.stderr
            )
        })
    }

    /// The field at JSON pointer `ptr` (`/requests/ok`); panics when absent.
    pub fn field(&self, ptr: &str) -> &Value {
        self.doc()
            .pointer(ptr)
            .unwrap_or_else(|| panic!("no {ptr} in the JSON document:\n{}", self.doc()))
    }

    /// The unsigned integer at `ptr`; panics when absent or of another type.
    pub fn count(&self, ptr: &str) -> u64 {
        self.field(ptr)
            .as_u64()
            .unwrap_or_else(|| panic!("{ptr} is not an unsigned integer in:\n{}", self.doc()))
    }

    /// The number at `ptr`; panics when absent or not a number.
    pub fn number(&self, ptr: &str) -> f64 {
        self.field(ptr)
            .as_f64()
            .unwrap_or_else(|| panic!("{ptr} is not a number in:\n{}", self.doc()))
    }

    /// The latency spectrum as (quantile, µs) pairs.
    pub fn spectrum(&self) -> Vec<(f64, u64)> {
        let points = self
            .field("/spectrum")
            .as_array()
            .unwrap_or_else(|| panic!("/spectrum is not an array in:\n{}", self.doc()));
        points
            .iter()
            .map(|p| {
                let q = p.get("quantile").and_then(Value::as_f64);
                let us = p.get("latency_us").and_then(Value::as_u64);
                match (q, us) {
                    (Some(q), Some(us)) => (q, us),
                    _ => panic!("spectrum point {p} is not {{quantile, latency_us}}"),
                }
            })
            .collect()
    }

    /// The `first_errors` strings.
    pub fn first_errors(&self) -> Vec<String> {
        strings(self.field("/first_errors"))
    }

    /// The `fatal` strings.
    pub fn fatal(&self) -> Vec<String> {
        strings(self.field("/fatal"))
    }

    /// Panics, showing the summary, unless the generator exited with `code`.
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "ringway-bench {:?}: unexpected exit; stderr:\n{}",
            self.args,
            self.stderr
        );
    }
}

fn strings(v: &Value) -> Vec<String> {
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"));
    items
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{s} is not a string"))
                .to_owned()
        })
        .collect()
}

/// How a [`counting_origin`] answers every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A whole response with this status and a [`BODY_LEN`]-byte body.
    Status(u16),
    /// The head and the first bytes of the announced body, then a close.
    CutShort,
    /// Nothing: the request is read and left unanswered.
    Never,
}

/// The bytes of a [`counting_origin`] response with `status`.
pub fn response(status: u16) -> &'static [u8] {
    origin::response_with(status, BODY_LEN)
}

/// A counting origin on a loopback port that answers every request with
/// `answer` and records every distinct request head and body length.
pub fn counting_origin(answer: Answer) -> CountingOrigin {
    CountingOrigin::serving(settings(answer))
}

/// A counting origin that answers 200, except that it holds every answer
/// due during `stall` until the stall ends.
pub fn stalling_origin(stall: Stall) -> CountingOrigin {
    CountingOrigin::serving(settings(Answer::Status(200)).stalling(stall))
}

/// A TCP sink on a loopback port: reads every connection to its end and
/// counts the bytes.
pub fn sink() -> CountingOrigin {
    CountingOrigin::serving(Settings::sink())
}

fn settings(answer: Answer) -> Settings {
    let answer = match answer {
        Answer::Status(status) => origin::Answer::Whole(response(status)),
        Answer::CutShort => {
            let whole = response(200);
            origin::Answer::Cut(&whole[..whole.len() - (BODY_LEN - CUT_AT)])
        }
        Answer::Never => origin::Answer::Never,
    };
    Settings::answering(answer).recording()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_carry_their_announced_body() {
        let r = response(503);
        let text = String::from_utf8_lossy(r);
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("Content-Length: {BODY_LEN}")));
        assert_eq!(body.as_bytes(), [BODY_BYTE; BODY_LEN]);
    }

    #[test]
    fn a_cut_answer_keeps_its_head_and_the_first_body_bytes() {
        let origin::Answer::Cut(cut) = settings(Answer::CutShort).answer else {
            panic!("not a cut answer");
        };
        assert_eq!(
            cut,
            &response(200)[..response(200).len() - BODY_LEN + CUT_AT]
        );
    }
}
