//! Which reactor the suite runs ringway on: `RINGWAY_TEST_IO_BACKEND`.
//!
//! Unset or `io_uring`, ringway starts as it is. `epoll` runs every
//! `ringway run` the kit starts under `deny-io-uring EPERM` (built beside
//! the ringway binary by `cargo build --workspace --bins`), the seccomp
//! refusal of Docker's and containerd's default profiles, with the
//! configuration left on `auto`: ringway falls back to epoll as it would in
//! such a container, so the whole suite runs on the fallback
//! (`scripts/test.sh` runs it a second time so). `epoll-enosys` does the
//! same with `ENOSYS`, the answer of Podman's profile and of kernels built
//! without io_uring (`scripts/test.sh` runs the must-work subset so).

use std::ffi::OsString;

use super::sibling_binary;

/// The environment variable that chooses.
pub const ENV: &str = "RINGWAY_TEST_IO_BACKEND";

/// The reactor the tests' ringway processes run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// As the machine allows: io_uring where the suite normally runs.
    IoUring,
    /// io_uring refused by seccomp (`EPERM`); ringway falls back to epoll.
    Epoll,
    /// io_uring refused with `ENOSYS`; ringway falls back to epoll.
    EpollNosys,
}

impl TestBackend {
    /// The backend's name as ringway spells it (`/stats`, `/metrics`).
    pub fn name(self) -> &'static str {
        match self {
            Self::IoUring => "io_uring",
            Self::Epoll | Self::EpollNosys => "epoll",
        }
    }

    /// The line ringway writes at start-up, on `auto`, for this backend.
    pub fn auto_line(self) -> &'static str {
        match self {
            Self::IoUring => "ringway: running on io_uring",
            Self::Epoll => "ringway: io_uring refused by seccomp (EPERM); running on epoll",
            Self::EpollNosys => {
                "ringway: io_uring refused by seccomp or missing from the kernel (ENOSYS); \
                 running on epoll"
            }
        }
    }
}

/// What `RINGWAY_TEST_IO_BACKEND` asks for; panics on a value it does not
/// know, so that a typo never runs the suite on the wrong backend.
pub fn test_backend() -> TestBackend {
    match std::env::var(ENV) {
        Err(std::env::VarError::NotPresent) => TestBackend::IoUring,
        Ok(v) if v == "io_uring" => TestBackend::IoUring,
        Ok(v) if v == "epoll" => TestBackend::Epoll,
        Ok(v) if v == "epoll-enosys" => TestBackend::EpollNosys,
        Ok(other) => panic!(
            "{ENV}={other:?}: expected `io_uring`, `epoll` or `epoll-enosys`, or leave it unset"
        ),
        Err(e @ std::env::VarError::NotUnicode(_)) => {
            panic!("{ENV}: {e}; expected `io_uring`, `epoll` or `epoll-enosys`, or leave it unset")
        }
    }
}

/// The wrapper a `ringway run` goes through for [`test_backend`]; empty
/// when ringway runs as it is.
pub(super) fn run_wrapper() -> Vec<OsString> {
    match test_backend() {
        TestBackend::IoUring => Vec::new(),
        TestBackend::Epoll => vec![
            sibling_binary("deny-io-uring").into_os_string(),
            OsString::from("EPERM"),
        ],
        TestBackend::EpollNosys => vec![
            sibling_binary("deny-io-uring").into_os_string(),
            OsString::from("ENOSYS"),
        ],
    }
}
