//! Buffers the kernel fills for us: one provided buffer ring per worker.
//!
//! Received data lands in a buffer the kernel picks from the ring; the proxy
//! sends it onward from that same buffer and the buffer returns to the ring
//! when the [`BufHandle`] is dropped. Buffer memory therefore follows active
//! traffic, not the number of open connections.

mod pool;

pub use pool::{BufHandle, BufPool, BufPoolError};
