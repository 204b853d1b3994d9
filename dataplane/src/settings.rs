//! Settings of the worker runtime that are fixed for the life of a process.

use std::time::Duration;

use crate::rt::BackendChoice;

/// How the workers are laid out and sized.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// One pinned worker thread per listed core id.
    pub worker_cores: Vec<usize>,
    /// Size in bytes of each buffer of a worker's provided buffer ring.
    pub buffer_size: u32,
    /// Number of buffers in each worker's ring; a power of two.
    pub buffer_count: u16,
    /// How long open connections may keep going after shutdown begins.
    pub drain_timeout: std::time::Duration,
    /// Most client connections open at once over all workers, each worker
    /// taking an equal share; `None` derives it from the open-file limit
    /// at start-up (see `worker::budget`).
    pub max_connections: Option<usize>,
    /// Bytes of each worker's access log ring (see `access`).
    pub access_log_buffer: usize,
    /// The reactor asked for (`runtime.io_backend`); what runs is decided
    /// once at start-up by [`crate::rt::choose`].
    pub io_backend: BackendChoice,
}

/// Finished spans each worker's queue holds for the exporter: at 10%
/// sampling, a second of a worker serving 40,000 requests a second.
pub const SPAN_QUEUE: usize = 4096;

/// Each worker's access log ring by default: about 5,000 records of a
/// typical request, several hundred milliseconds of a busy worker's.
pub const ACCESS_LOG_BUFFER: usize = 1024 * 1024;

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            worker_cores: vec![0],
            // 32 KiB: large enough that a bulk transfer costs few ops per MiB,
            // small enough that 256 of them (8 MiB of address space, touched
            // only as traffic needs it) serve hundreds of busy connections.
            buffer_size: 32 * 1024,
            buffer_count: 256,
            drain_timeout: Duration::from_secs(30),
            max_connections: None,
            access_log_buffer: ACCESS_LOG_BUFFER,
            io_backend: BackendChoice::Auto,
        }
    }
}
