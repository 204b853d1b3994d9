//! ringway's data plane: the hot path.
//!
//! One worker thread per configured core, each with its own io_uring, its own
//! listeners, buffers and statistics; nothing on the forwarding path is
//! shared between cores.
//!
//! `unsafe` is denied crate-wide and allowed only in [`rt`] (the ring, op
//! life cycle and sockets built from kernel-returned fds) and [`buf`] (the
//! provided buffer ring shared with the kernel): talking to io_uring means
//! handing the kernel raw pointers, and those two modules are where the
//! invariants that make it sound are kept. Every block there carries a
//! `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod access;
pub mod authz;
#[allow(unsafe_code)]
pub mod buf;
pub mod counter;
pub(crate) mod handoff;
pub mod identity;
pub mod latency;
pub mod link;
pub mod proto;
pub mod random;
pub mod request;
pub mod routing;
#[allow(unsafe_code)]
pub mod rt;
pub(crate) mod session;
pub mod settings;
pub mod spiffe;
pub mod stats;
pub mod table;
#[cfg(test)]
mod test_rng;
pub mod trace;
pub(crate) mod transport;
pub(crate) mod upstream;
pub mod worker;
