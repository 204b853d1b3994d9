//! The built-in origins behind every system: `ringway-bench origin` child
//! processes, one per port, pinned to the origin cores. Each writes what it
//! served as JSON when stopped (`origin.json`, then `origin-1.json`, ...).
//! In a fault scenario each origin also gets its part of the schedule as
//! arguments, and its clock starts when the load run does
//! ([`Origins::start_faults`]).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use ringway_kit::launcher::{NotReady, Process, Program};
use ringway_kit::procfs;
use serde::Serialize;

use super::scenario::{Scenario, ScenarioMode};

/// Longest wait for an origin to accept connections.
const ORIGIN_READY: Duration = Duration::from_secs(10);
/// Longest wait for an origin to exit and report once asked to.
const ORIGIN_STOP: Duration = Duration::from_secs(10);

/// The running origins.
#[derive(Debug)]
pub struct Origins {
    processes: Vec<Process>,
    addrs: Vec<SocketAddr>,
    reports: Vec<PathBuf>,
}

impl Origins {
    /// Starts one origin on each of `addrs`, writing into `dir`; origin `i`
    /// gets the arguments `extra[i]` too, when there are any.
    pub fn start(
        bench: &Path,
        s: &Scenario,
        addrs: Vec<SocketAddr>,
        dir: &Path,
        extra: &[Vec<String>],
    ) -> Result<Self, String> {
        let mut origins = Self {
            processes: Vec::new(),
            addrs: Vec::new(),
            reports: Vec::new(),
        };
        let mode = match s.mode {
            ScenarioMode::Http => "http",
            ScenarioMode::Tcp => "tcp",
        };
        let size = s.origin.response_size.to_string();
        for (i, &addr) in addrs.iter().enumerate() {
            let stem = if i == 0 {
                "origin".to_owned()
            } else {
                format!("origin-{i}")
            };
            let json = dir.join(format!("{stem}.json"));
            let listen = addr.to_string();
            let own: Vec<&str> = extra
                .get(i)
                .map(|a| a.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let mut process = Program::new(bench)
                .args(&["origin", "--listen", &listen, "--mode", mode])
                .args(&["--response-size", &size, "--cores", &s.cores.origin])
                .args(&own)
                .stdout_file(&json)
                .log_file(&dir.join(format!("{stem}.log")))
                .spawn()
                .map_err(|e| format!("the origin: {e}"))?;
            let listening = process.wait_ready(ORIGIN_READY, |_| {
                TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
            match listening {
                Ok(()) => {}
                Err(NotReady::Exited(status)) => {
                    let said = process.stderr();
                    return Err(format!("the origin exited ({status}): {}", said.trim()));
                }
                Err(NotReady::TimedOut(_)) => {
                    return Err(format!(
                        "the origin did not listen on {addr} in {ORIGIN_READY:?}"
                    ))
                }
                Err(NotReady::Wait(e)) => return Err(format!("cannot wait for the origin: {e}")),
            }
            origins.processes.push(process);
            origins.addrs.push(addr);
            origins.reports.push(json);
        }
        Ok(origins)
    }

    /// Their addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// CPU time of every origin so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.processes
            .iter()
            .filter_map(|p| procfs::process_ticks(p.pid()).ok())
            .sum()
    }

    /// Starts the fault schedule's clock of every origin still running
    /// (SIGUSR1).
    pub fn start_faults(&self) {
        for process in &self.processes {
            let _ = process.signal(Signal::SIGUSR1);
        }
    }

    /// SIGTERM to each, then their reports: the requests they answered in
    /// all, or `None` when one did not report.
    pub fn stop(&mut self) -> Option<u64> {
        self.stop_each()
            .into_iter()
            .map(|r| r.map(|r| r.requests))
            .sum()
    }

    /// SIGTERM to each (one that crashed on schedule has exited already),
    /// then each one's report, in order; `None` for one that did not
    /// report.
    pub fn stop_each(&mut self) -> Vec<Option<OriginReport>> {
        for process in &mut self.processes {
            if process.signal(Signal::SIGTERM).is_err() {
                process.kill();
            }
        }
        for process in &mut self.processes {
            // One that does not exit in time is killed, and its report
            // is missing.
            let _ = process.wait_exit(ORIGIN_STOP);
        }
        self.processes.clear();
        self.reports
            .iter()
            .map(|path| {
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| OriginReport::from_json(&v))
            })
            .collect()
    }
}

/// What one origin says it served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OriginReport {
    /// Requests received whole (health checks included).
    pub received: u64,
    /// Requests answered.
    pub requests: u64,
    /// Answers its fault schedule made a `503`.
    pub faulted: u64,
    /// Answers its fault schedule delayed.
    pub delayed: u64,
    /// Requests for the health-check path.
    pub checks: u64,
    /// Whether it crashed on schedule (its figures are those of the crash).
    pub killed: bool,
}

impl OriginReport {
    /// From the origin's JSON line; `None` without its `requests`.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let u = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        Some(Self {
            requests: v.get("requests")?.as_u64()?,
            received: u("received"),
            faulted: u("faulted"),
            delayed: u("delayed"),
            checks: u("checks"),
            killed: v
                .get("killed")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        })
    }
}
