//! The built-in origins behind every system: `ringway-bench origin` child
//! processes, one per port, pinned to the origin cores. Each writes what it
//! served as JSON when stopped (`origin.json`, then `origin-1.json`, ...).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::scenario::{Scenario, ScenarioMode};
use crate::procfs;

/// Longest wait for an origin to accept connections.
const ORIGIN_READY: Duration = Duration::from_secs(10);

/// The running origins.
#[derive(Debug)]
pub struct Origins {
    children: Vec<Child>,
    addrs: Vec<SocketAddr>,
    reports: Vec<PathBuf>,
}

impl Origins {
    /// Starts one origin on each of `addrs`, writing into `dir`.
    pub fn start(
        bench: &Path,
        s: &Scenario,
        addrs: Vec<SocketAddr>,
        dir: &Path,
    ) -> Result<Self, String> {
        let mut origins = Self {
            children: Vec::new(),
            addrs: Vec::new(),
            reports: Vec::new(),
        };
        for (i, &addr) in addrs.iter().enumerate() {
            let stem = if i == 0 {
                "origin".to_owned()
            } else {
                format!("origin-{i}")
            };
            let file = |ext: &str| {
                let path = dir.join(format!("{stem}.{ext}"));
                std::fs::File::create(&path)
                    .map(|f| (f, path.clone()))
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))
            };
            let (json, json_path) = file("json")?;
            let (log, log_path) = file("log")?;
            let mode = match s.mode {
                ScenarioMode::Http => "http",
                ScenarioMode::Tcp => "tcp",
            };
            let mut child = Command::new(bench)
                .arg("origin")
                .arg("--listen")
                .arg(addr.to_string())
                .args(["--mode", mode, "--response-size"])
                .arg(s.origin.response_size.to_string())
                .arg("--cores")
                .arg(&s.cores.origin)
                .stdin(Stdio::null())
                .stdout(json)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start the origin: {e}"))?;
            let since = Instant::now();
            while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
                if let Ok(Some(status)) = child.try_wait() {
                    let said = std::fs::read_to_string(&log_path).unwrap_or_default();
                    return Err(format!("the origin exited ({status}): {}", said.trim()));
                }
                if since.elapsed() > ORIGIN_READY {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the origin did not listen on {addr} in {ORIGIN_READY:?}"
                    ));
                }
                thread::sleep(Duration::from_millis(20));
            }
            origins.children.push(child);
            origins.addrs.push(addr);
            origins.reports.push(json_path);
        }
        Ok(origins)
    }

    /// Their addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// CPU time of every origin so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.children
            .iter()
            .filter_map(|c| procfs::process_ticks(c.id()).ok())
            .sum()
    }

    /// SIGTERM to each, then their reports: the requests they answered in
    /// all, or `None` when one did not report.
    pub fn stop(&mut self) -> Option<u64> {
        for child in &mut self.children {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
                let _ = child.kill();
            }
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        self.children.clear();
        self.reports
            .iter()
            .map(|path| {
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| v.get("requests").and_then(serde_json::Value::as_u64))
            })
            .sum()
    }
}

impl Drop for Origins {
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
