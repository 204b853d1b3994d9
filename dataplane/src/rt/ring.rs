//! Ring set-up: probe what the kernel offers and pick the best mode.

use std::fmt;
use std::io;

use io_uring::{opcode, IoUring, Probe};

/// What the ring was built with, decided once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFeatures {
    /// `SINGLE_ISSUER` + `DEFER_TASKRUN` (Linux 6.1+): completions are
    /// processed only when we ask, on our thread, in one batch.
    pub defer_taskrun: bool,
    /// `COOP_TASKRUN`, the fallback when deferral is missing.
    pub coop_taskrun: bool,
    /// One accept SQE yields every new connection (Linux 5.19+).
    pub multishot_accept: bool,
    /// One recv SQE yields every received buffer (Linux 6.0+).
    pub multishot_recv: bool,
}

/// Which kernel features to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureMode {
    /// Everything the kernel offers.
    #[default]
    Best,
    /// Only what every supported kernel has: single-shot accept and recv, no
    /// task-run flags. Exercises the fallback paths.
    Basic,
}

/// io_uring cannot be used on this system.
#[derive(Debug)]
pub struct UringUnavailable {
    /// The error `io_uring_setup` returned.
    pub source: io::Error,
    /// Value of `kernel.io_uring_disabled`, if readable.
    pub sysctl: Option<u8>,
}

impl fmt::Display for UringUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.source.raw_os_error();
        match (self.sysctl, code) {
            (Some(2), _) => write!(
                f,
                "io_uring is disabled on this host (sysctl kernel.io_uring_disabled=2); \
                 run `sysctl -w kernel.io_uring_disabled=0` to let ringway run"
            ),
            (Some(1), Some(libc::EPERM)) => write!(
                f,
                "io_uring is restricted to the group in kernel.io_uring_io_uring_group \
                 (sysctl kernel.io_uring_disabled=1); add ringway's user to that group or \
                 set kernel.io_uring_disabled=0"
            ),
            (_, Some(libc::EPERM)) | (_, Some(libc::ENOSYS)) => write!(
                f,
                "io_uring_setup was refused ({}): a seccomp profile blocks io_uring \
                 (the default profiles of Docker 25+ and containerd 2.0 do) or the kernel \
                 lacks it; run with a profile that allows io_uring_setup, io_uring_enter and \
                 io_uring_register, on Linux 6.1 or later",
                self.source
            ),
            _ => write!(f, "io_uring_setup failed: {}", self.source),
        }
    }
}

impl std::error::Error for UringUnavailable {}

impl UringUnavailable {
    /// Whether `runtime.io_backend = "auto"` runs on epoll instead: the
    /// refusals of a security profile, a sysctl or a kernel without
    /// io_uring (`EPERM`, `ENOSYS`, `EACCES`). Other errors (out of memory,
    /// too many rings) are not a policy and are reported.
    pub fn falls_back(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::EPERM | libc::ENOSYS | libc::EACCES)
        )
    }

    /// A short account of the refusal, for the line that says a worker
    /// runs on epoll instead.
    pub fn refusal(&self) -> String {
        let code = self.source.raw_os_error();
        let name = match code {
            Some(libc::EPERM) => "EPERM",
            Some(libc::ENOSYS) => "ENOSYS",
            Some(libc::EACCES) => "EACCES",
            _ => "error",
        };
        match (self.sysctl, code) {
            (Some(2), _) => format!("io_uring disabled by sysctl kernel.io_uring_disabled=2 ({name})"),
            (Some(1), Some(libc::EPERM)) => format!(
                "io_uring restricted to kernel.io_uring_group by kernel.io_uring_disabled=1 ({name})"
            ),
            (_, Some(libc::EPERM)) => format!("io_uring refused by seccomp ({name})"),
            (_, Some(libc::ENOSYS)) => {
                format!("io_uring refused by seccomp or missing from the kernel ({name})")
            }
            (_, Some(libc::EACCES)) => format!("io_uring refused by a security module ({name})"),
            _ => format!("io_uring unavailable ({})", self.source),
        }
    }
}

/// Checks that this process may use what ringway needs of io_uring: a ring
/// built with `features`, its probe, and a provided buffer ring registered
/// and unregistered again. The first refusal is returned.
pub fn probe_needs(features: FeatureMode) -> Result<(), UringUnavailable> {
    let (ring, _) = build(8, features)?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(unavailable)?;
    let counters = std::sync::Arc::new(crate::buf::PoolCounters::default());
    match crate::buf::BufPool::new(&ring.submitter(), 0, 1, 64, counters) {
        Ok(pool) => {
            let _ = pool.unregister(&ring.submitter());
            Ok(())
        }
        Err(crate::buf::BufPoolError::Register(e)) => Err(unavailable(e)),
        Err(e) => Err(unavailable(io::Error::other(e.to_string()))),
    }
}

/// Builds a ring of `entries` submission slots with the best mode the kernel
/// accepts, falling back step by step.
pub fn build(entries: u32, mode: FeatureMode) -> Result<(IoUring, RingFeatures), UringUnavailable> {
    // Multishot recvs and accepts each keep posting completions; size the
    // CQ well above what can be in flight so bursts do not overflow.
    let cq_entries = entries.saturating_mul(16);
    let attempts: &[(bool, bool)] = match mode {
        FeatureMode::Best => &[(true, false), (false, true), (false, false)],
        FeatureMode::Basic => &[(false, false)],
    };
    let mut last_err = None;
    for &(defer, coop) in attempts {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq_entries).setup_clamp();
        if defer {
            // TASKRUN_FLAG: the kernel flags pending completions in the SQ
            // ring, so a busy loop that does not wait still knows to enter.
            builder
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag();
        }
        if coop {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        match builder.build(entries) {
            Ok(ring) => {
                let features = probe(&ring, defer, coop, mode);
                return Ok((ring, features));
            }
            // EINVAL: this kernel does not know a flag; try with fewer.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(unavailable(last_err.unwrap_or_else(|| {
        io::Error::from_raw_os_error(libc::EINVAL)
    })))
}

fn unavailable(source: io::Error) -> UringUnavailable {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    UringUnavailable { source, sysctl }
}

fn probe(ring: &IoUring, defer: bool, coop: bool, mode: FeatureMode) -> RingFeatures {
    let mut probe = Probe::new();
    let have_probe = ring.submitter().register_probe(&mut probe).is_ok();
    let accept = have_probe && probe.is_supported(opcode::Accept::CODE);
    let recv = have_probe && probe.is_supported(opcode::Recv::CODE);
    // Multishot variants share their opcode with the single-shot ones, so the
    // probe cannot tell; the kernel version can.
    let (major, minor) = kernel_version().unwrap_or((0, 0));
    let best = mode == FeatureMode::Best;
    RingFeatures {
        defer_taskrun: defer,
        coop_taskrun: coop,
        multishot_accept: best && accept && (major, minor) >= (5, 19),
        multishot_recv: best && recv && (major, minor) >= (6, 0),
    }
}

/// `(major, minor)` of the running kernel.
pub fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}
