//! The shared kit of ringway's end-to-end tests (`tests/`) and benches
//! (`ringway-bench`): one of each piece of machinery both need.
//!
//! - [`admin`]: the client of the admin API (one request per connection, a
//!   kept-alive [`admin::Connection`], a reconnecting [`admin::AdminClient`]),
//!   with readers of `/stats` and `/metrics`.
//! - [`launcher`]: starts, watches and stops programs — any program
//!   ([`launcher::Program`]: a wrapper such as `taskset` or `prlimit`, stderr
//!   kept in memory and teed to a log file, its own process group, a
//!   readiness probe, a stop signal), and the real `ringway` binary on a
//!   config on top of it ([`Launch`]: ready on its `; ready` line or on
//!   `/ready`, its exit report parsed). The benches start ringway, the
//!   baseline, nginx, HAProxy, their origins and the load generator with it.
//! - [`procfs`]: what `/proc` tells about a process: CPU time of a process
//!   or thread, resident memory, threads and their cores, per-core busy
//!   time, process trees.
//! - [`origin`]: the counting origin, an HTTP/1.1 keep-alive, TCP sink or
//!   TCP echo server on io_uring threads that counts connections, requests
//!   and bytes; for tests of clients, it can also cut answers short, never
//!   answer, hold answers during a stall, and record request heads. The
//!   end-to-end tests keep two scripted peers of their own, which are a
//!   different tool: `ringway_tests::http_origin`, an HTTP origin that
//!   records every request whole and misbehaves on purpose (bad framing,
//!   resets, partial bodies) for the error tests, and
//!   `ringway_tests::origin`, TCP peers whose handlers return what each
//!   connection carried (digests, half-closes).
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
