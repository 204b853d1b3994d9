//! Which reactor a worker runs on, decided once per process at start-up.
//!
//! io_uring is the fast path. Where it is refused (a seccomp profile that
//! blocks its system calls, a kernel built without it, the
//! `kernel.io_uring_disabled` sysctl), the same ops run on epoll: see
//! [`super::driver`] for the two reactors behind one op API.

use std::fmt;
use std::str::FromStr;

use super::ring::{self, FeatureMode, UringUnavailable};

/// The reactor under every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoBackend {
    /// A ring per worker: ops are submitted, the kernel completes them.
    #[default]
    IoUring,
    /// Edge-triggered epoll per worker: each op runs its system call when
    /// its socket is ready.
    Epoll,
}

impl IoBackend {
    /// The name used in configuration, logs, `/stats` and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Self::IoUring => "io_uring",
            Self::Epoll => "epoll",
        }
    }
}

impl fmt::Display for IoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the operator asked for (`runtime.io_backend`, `--io-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// io_uring if the kernel and the security profile allow it, else epoll.
    #[default]
    Auto,
    /// io_uring or nothing: refused, ringway exits with the reason.
    IoUring,
    /// epoll, even where io_uring would run.
    Epoll,
}

impl BackendChoice {
    /// The accepted spellings, for error messages.
    pub const NAMES: &'static str = "\"auto\", \"io_uring\" or \"epoll\"";

    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::IoUring => "io_uring",
            Self::Epoll => "epoll",
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "io_uring" => Ok(Self::IoUring),
            "epoll" => Ok(Self::Epoll),
            other => Err(format!(
                "unknown io backend `{other}`: expected {}",
                Self::NAMES
            )),
        }
    }
}

/// The backend chosen, and the line that says why.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// What the workers run on.
    pub backend: IoBackend,
    /// One line for the log: which backend runs and why.
    pub reason: String,
}

/// Decides the backend for `choice`: with `Auto`, builds a small ring and
/// probes what ringway needs of it (its ops, a provided buffer ring); a
/// refusal by `EPERM`, `ENOSYS` or `EACCES` falls back to epoll. Any other
/// failure, and any refusal when io_uring is forced, is returned.
pub fn choose(choice: BackendChoice, features: FeatureMode) -> Result<Chosen, UringUnavailable> {
    match choice {
        BackendChoice::Epoll => Ok(Chosen {
            backend: IoBackend::Epoll,
            reason: "running on epoll (runtime.io_backend = \"epoll\")".to_owned(),
        }),
        BackendChoice::IoUring => {
            ring::probe_needs(features)?;
            Ok(Chosen {
                backend: IoBackend::IoUring,
                reason: "running on io_uring (runtime.io_backend = \"io_uring\")".to_owned(),
            })
        }
        BackendChoice::Auto => match ring::probe_needs(features) {
            Ok(()) => Ok(Chosen {
                backend: IoBackend::IoUring,
                reason: "running on io_uring".to_owned(),
            }),
            Err(e) if e.falls_back() => Ok(Chosen {
                backend: IoBackend::Epoll,
                reason: format!("{}; running on epoll", e.refusal()),
            }),
            Err(e) => Err(e),
        },
    }
}
