//! The ringway process under test: started from its binary, waited for
//! until ready, stopped with SIGTERM.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::admin::AdminClient;
use crate::logfile::tail;

/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(50);

/// Why ringway could not be run as the bench needs it.
#[derive(Debug, thiserror::Error)]
pub enum RingwayError {
    /// The binary could not be started.
    #[error("cannot start {binary}: {source} (build it with `cargo build --release -p ringway-control`)")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Its log file could not be created.
    #[error("cannot create {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It exited while starting.
    #[error("ringway exited at start ({status}); its log ({log}) ends with:\n{tail}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// `/ready` did not answer 200 in time.
    #[error("ringway not ready after {waited:?} (last answer: {last}); see {log}")]
    NotReady {
        /// How long the bench waited.
        waited: Duration,
        /// The last answer or error of `/ready`.
        last: String,
        /// Its log file.
        log: PathBuf,
    },
    /// SIGTERM could not be sent.
    #[error("cannot send SIGTERM to ringway (pid {pid}): {source}")]
    Signal {
        /// Its process id.
        pid: u32,
        /// Why.
        source: nix::Error,
    },
    /// It did not exit after SIGTERM.
    #[error("ringway did not exit within {0:?} of SIGTERM; killed it")]
    NoExit(Duration),
    /// Waiting for it failed.
    #[error("cannot wait for ringway: {0}")]
    Wait(io::Error),
}

/// A running ringway.
#[derive(Debug)]
pub struct Ringway {
    child: Option<Child>,
    admin: SocketAddr,
    log: PathBuf,
}

impl Ringway {
    /// Runs `binary run --config config`, its stdout and stderr going to
    /// `log`, and waits until `/ready` on `admin` answers 200, up to
    /// `ready_timeout`.
    pub fn start(
        binary: &Path,
        config: &Path,
        log: &Path,
        admin: SocketAddr,
        ready_timeout: Duration,
    ) -> Result<Self, RingwayError> {
        let log_error = |source| RingwayError::Log {
            path: log.to_owned(),
            source,
        };
        let out = File::create(log).map_err(log_error)?;
        let err = out.try_clone().map_err(log_error)?;
        let child = Command::new(binary)
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| RingwayError::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
        let mut ringway = Self {
            child: Some(child),
            admin,
            log: log.to_owned(),
        };
        ringway.wait_ready(ready_timeout)?;
        Ok(ringway)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its admin address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// `GET /stats`, parsed.
    pub fn stats(&self) -> io::Result<serde_json::Value> {
        let mut client = AdminClient::new(self.admin, Duration::from_secs(10));
        let reply = client.request("GET", "/stats", b"")?;
        if reply.status != 200 {
            return Err(io::Error::other(format!(
                "GET /stats answered {}: {}",
                reply.status,
                reply.body.trim_end()
            )));
        }
        serde_json::from_str(&reply.body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit (draining
    /// included); kills it if it does not exit.
    pub fn stop(mut self, timeout: Duration) -> Result<ExitStatus, RingwayError> {
        let Some(mut child) = self.child.take() else {
            return Err(RingwayError::Wait(io::Error::other(
                "ringway was already stopped",
            )));
        };
        let pid = child.id();
        let raw = i32::try_from(pid).unwrap_or(i32::MAX);
        if let Err(source) = kill(Pid::from_raw(raw), Signal::SIGTERM) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RingwayError::Signal { pid, source });
        }
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RingwayError::NoExit(timeout));
                }
                Err(e) => return Err(RingwayError::Wait(e)),
            }
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), RingwayError> {
        let started = Instant::now();
        let mut client = AdminClient::new(self.admin, Duration::from_secs(2));
        let mut last = String::from("no answer yet");
        while started.elapsed() < timeout {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(RingwayError::Exited {
                            status,
                            log: self.log.clone(),
                            tail: tail(&self.log, 20),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => return Err(RingwayError::Wait(e)),
                }
            }
            match client.request("GET", "/ready", b"") {
                Ok(reply) if reply.status == 200 => return Ok(()),
                Ok(reply) => last = format!("{} {}", reply.status, reply.body.trim_end()),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(POLL);
        }
        Err(RingwayError::NotReady {
            waited: timeout,
            last,
            log: self.log.clone(),
        })
    }
}

impl Drop for Ringway {
    /// A ringway the bench did not stop (it failed half-way) is killed, not
    /// left running.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
