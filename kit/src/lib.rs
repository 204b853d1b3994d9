//! The shared kit of ringway's end-to-end tests (`tests/`) and benches
//! (`ringway-bench`): one of each piece of machinery both need.
//!
//! - [`admin`]: the client of the admin API (one request per connection, a
//!   kept-alive [`admin::Connection`], a reconnecting [`admin::AdminClient`]),
//!   with readers of `/stats` and `/metrics`.
//! - [`launcher`]: starts the real `ringway` binary on a config, waits until
//!   it is ready, collects its stderr (and tees it to a log file when asked),
//!   stops it with SIGTERM and parses its exit report.
//! - [`procfs`]: what `/proc` tells about a process: CPU time of a process
//!   or thread, resident memory, threads and their cores, per-core busy
//!   time, process trees.
//! - [`origin`]: the counting origin, an HTTP/1.1 keep-alive, TCP sink or
//!   TCP echo server on io_uring threads that counts connections, requests
//!   and bytes.
//! - [`ports`]: how a test gives a server its port without a race: bind and
//!   hand over, or a port from a block this process owns, outside the
//!   kernel's ephemeral range.
//!
//! Small helpers they share: [`wait`] (bounded polling), [`limits`] (the
//! open-file limit), [`logfile`] (the end of a log) and [`ring_io`] (reads
//! on tokio-uring sockets).
//!
//! Functions named like the tests use them (`get`, `start`, `stats`) panic
//! with a message that says what went wrong; the `try_`/`Result` forms are
//! for the benches, which report errors instead.
#![forbid(unsafe_code)]
#![allow(
    clippy::disallowed_types,
    reason = "the workspace bans std::sync::Mutex to keep locks off worker cores; \
              the kit runs on test and bench threads, where a lock is the simple tool"
)]

pub mod admin;
pub mod launcher;
pub mod limits;
pub mod logfile;
pub mod origin;
pub mod ports;
pub mod procfs;
pub mod ring_io;
pub mod wait;

pub use launcher::{Exit, Launch, Ringway, WorkerLine};
pub use origin::CountingOrigin;
