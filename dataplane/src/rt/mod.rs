//! The runtime of one worker thread, on io_uring or on epoll.
//!
//! [`Runtime`] owns a ring ([`ring`]) or an epoll set (where io_uring is
//! refused; see [`backend`]), the table of in-flight ops ([`driver`]), two
//! buffer pools ([`crate::buf`], one per [`Group`]), the thread's timers
//! ([`timer`]) and a single-threaded executor ([`executor`]). Each loop turn
//! polls the tasks that were woken, then makes one `io_uring_enter` that
//! submits everything they queued (or one `epoll_wait`) and, when no task is
//! ready, waits, at most until the earliest timer's deadline.

pub mod backend;
mod counters;
pub(crate) mod driver;
pub mod executor;
pub(crate) mod io_op;
pub mod net;
pub(crate) mod op;
pub mod reuse;
pub mod ring;
pub mod select;
pub mod time;
pub(crate) mod timer;
pub mod wake;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

pub use backend::{choose, BackendChoice, Chosen, IoBackend};
pub use driver::epoll::Watched;
pub use driver::{Completion, RingCounters, RingStats};
pub use executor::{abort, spawn, task_count, wake, TaskId};
pub use ring::{FeatureMode, RingFeatures, UringUnavailable};

use crate::buf::{BufPool, BufPoolError, Group};

/// How long a runtime being dropped waits for the kernel to finish the ops
/// it cancelled. Cancelled ops complete within a loop turn; the bound only
/// keeps a kernel that never answers from hanging the thread (the memory
/// those ops use is then leaked, never freed).
const DROP_WAIT: Duration = Duration::from_secs(2);

/// How to build a runtime.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    /// Submission queue entries.
    pub sq_entries: u32,
    /// Buffers in each provided buffer ring (a power of two); there is one
    /// ring per [`Group`].
    pub buffer_count: u16,
    /// Bytes per buffer.
    pub buffer_size: u32,
    /// Kernel features to use (io_uring).
    pub features: FeatureMode,
    /// The reactor: io_uring, or epoll where io_uring is refused.
    pub backend: IoBackend,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            sq_entries: 512,
            buffer_count: 256,
            buffer_size: 32 * 1024,
            features: FeatureMode::Best,
            backend: IoBackend::IoUring,
        }
    }
}

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The kernel will not give us a ring.
    #[error(transparent)]
    Unavailable(#[from] UringUnavailable),
    /// The buffer ring could not be set up.
    #[error(transparent)]
    Buffers(#[from] BufPoolError),
    /// `io_uring_enter` (or `epoll_wait`) failed for a reason that is not
    /// the input's fault.
    #[error("io_uring_enter failed: {0}")]
    Enter(io::Error),
    /// The epoll set could not be made.
    #[error("cannot create the worker's epoll set: {0}")]
    Epoll(io::Error),
    /// This thread runs a runtime already; a second would replace its
    /// reactor under the ops in flight.
    #[error("this thread already runs a ringway runtime")]
    AlreadyRunning,
}

/// One thread's reactor and executor. Not `Send`: it lives and dies on the
/// thread that built it.
#[derive(Debug)]
pub struct Runtime {
    _not_send: std::marker::PhantomData<Rc<()>>,
}

impl Runtime {
    /// Builds the ring and buffer pool and installs them on this thread.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        if driver::installed() {
            return Err(RuntimeError::AlreadyRunning);
        }
        if config.backend == IoBackend::Epoll {
            return Self::new_epoll(config);
        }
        let (ring, features) = ring::build(config.sq_entries, config.features)?;
        let stats = Arc::new(RingCounters::default());
        let mut pools = Vec::with_capacity(Group::ALL.len());
        for group in Group::ALL {
            let pool = BufPool::new(
                &ring.submitter(),
                group.id(),
                config.buffer_count,
                config.buffer_size,
                Arc::clone(&stats.pools[usize::from(group.id())]),
            );
            match pool {
                Ok(pool) => pools.push(pool),
                Err(e) => {
                    for pool in &pools {
                        let _ = pool.unregister(&ring.submitter());
                    }
                    return Err(e.into());
                }
            }
        }
        driver::install(driver::Driver::new(ring, features, pools, stats));
        Ok(Self {
            _not_send: std::marker::PhantomData,
        })
    }

    /// The epoll runtime: an epoll set, and pools that no kernel ring takes
    /// buffers from. Multishot receives are emulated, so the features say
    /// what the ops above may use, as on io_uring.
    fn new_epoll(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let epoll = driver::epoll::Epoll::new().map_err(RuntimeError::Epoll)?;
        let stats = Arc::new(RingCounters::default());
        let mut pools = Vec::with_capacity(Group::ALL.len());
        for group in Group::ALL {
            pools.push(BufPool::unregistered(
                group.id(),
                config.buffer_count,
                config.buffer_size,
                Arc::clone(&stats.pools[usize::from(group.id())]),
            )?);
        }
        let best = config.features == FeatureMode::Best;
        let features = RingFeatures {
            defer_taskrun: false,
            coop_taskrun: false,
            multishot_accept: false,
            multishot_recv: best,
        };
        driver::install(driver::Driver::new_epoll(epoll, features, pools, stats));
        Ok(Self {
            _not_send: std::marker::PhantomData,
        })
    }

    /// Runs `future` and every task it spawns until `future` completes.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output, RuntimeError> {
        let mut future = pin!(future);
        let waker = executor::main_waker();
        executor::wake_main();
        loop {
            if executor::take_main_woken() {
                if let Poll::Ready(out) = executor::poll_main(future.as_mut(), &waker) {
                    return Ok(out);
                }
            }
            executor::run_ready();
            let wait = !executor::has_ready();
            let garbage = driver::with(|d| {
                let r = d.turn(wait);
                (r, d.take_garbage())
            });
            let (result, garbage) = garbage;
            drop(garbage);
            result.map_err(RuntimeError::Enter)?;
        }
    }

    /// What the ring was built with.
    pub fn features(&self) -> RingFeatures {
        driver::with(|d| d.features())
    }

    /// Counters of this thread's ring.
    pub fn ring_stats(&self) -> RingStats {
        driver::with(|d| d.stats().snapshot())
    }

    /// The live counters of this thread's ring, for readers on other threads.
    pub fn ring_counters(&self) -> std::sync::Arc<RingCounters> {
        driver::with(|d| std::sync::Arc::clone(d.stats()))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Drop every task: their ops become orphans and are cancelled.
        executor::clear();
        // Wait for the kernel to finish with every op before the buffers and
        // the ring go away, for at most `DROP_WAIT`.
        let _ = driver::with(|d| d.cancel_all());
        let deadline = Instant::now() + DROP_WAIT;
        loop {
            let (left, garbage) = driver::with(|d| {
                let left = d.in_flight();
                let now = Instant::now();
                let r = if left > 0 && now < deadline {
                    d.turn_for(deadline - now).map(|_| d.in_flight())
                } else {
                    Ok(left)
                };
                (r, d.take_garbage())
            });
            drop(garbage);
            match left {
                Ok(0) | Err(_) => break,
                Ok(_) if Instant::now() >= deadline => break,
                Ok(_) => {}
            }
        }
        if let Some(mut d) = driver::uninstall() {
            d.release_buffers();
            if d.in_flight() > 0 {
                // The kernel may still touch memory owned by these ops:
                // leak the driver (ring, slots, buffers) instead of freeing it.
                std::mem::forget(d);
            }
        }
    }
}

/// The buffer ring of `group` of this thread's runtime.
pub fn buffers(group: Group) -> Rc<BufPool> {
    driver::with(|d| {
        Rc::clone(
            d.pool(group.id())
                .expect("a runtime has a buffer ring for every group once built"),
        )
    })
}

/// What this thread's ring was built with.
pub fn features() -> RingFeatures {
    driver::with(|d| d.features())
}

/// A clock updated once per loop turn.
pub fn now() -> std::time::Instant {
    driver::with(|d| d.now())
}

/// Counters of this thread's ring.
pub fn ring_stats() -> RingStats {
    driver::with(|d| d.stats().snapshot())
}

/// Number of ops the kernel has not finished (including orphaned ones).
pub fn ops_in_flight() -> usize {
    driver::with(|d| d.in_flight())
}

/// Number of timers waiting for their deadline on this thread.
pub fn timers_armed() -> usize {
    driver::with(|d| d.timers().armed())
}

/// Lets every other ready task and the ring run once before continuing.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
