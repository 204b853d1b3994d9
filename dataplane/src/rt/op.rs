//! Op futures that own their resources until the kernel is done with them.
//!
//! Life cycle of every op:
//!
//! 1. **submitted** — the SQE is queued and a slot in the driver is keyed
//!    by its `user_data`; the op future owns the buffers, socket and
//!    addresses the SQE points into.
//! 2. **waiting** — the future was polled and left its waker in the slot.
//! 3. **orphaned** — the future was dropped before the final completion: its
//!    resources move into the slot (`Driver::orphan`) and a cancel is sent.
//!    Nothing is freed; the kernel may still read or write that memory.
//! 4. **completed** — the final completion arrived. An owned op hands the
//!    resources back with the result; an orphan's resources are dropped then,
//!    and any provided buffer the kernel filled meanwhile returns to the ring.
//!
//! Resources must keep the memory the SQE points into at a stable address
//! when moved (heap allocations, `Rc`, mmap'd pool buffers): an op may move
//! into a slot while the kernel holds the pointer.
//!
//! On the epoll backend the same states hold, but no kernel keeps an op's
//! memory between system calls: an orphan is taken out of its descriptor's
//! queue and freed at once (see [`super::driver::epoll`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use super::driver::{self, Completion};
use super::io_op::Io;

/// A single-shot op owning `T` until its completion.
#[derive(Debug)]
pub(crate) struct Op<T: 'static> {
    user_data: u64,
    data: Option<T>,
}

impl<T: 'static> Op<T> {
    /// Starts `io` and takes `data`, which owns whatever memory `io` points
    /// into (as `io`'s constructor required) until the final completion.
    pub(crate) fn submit(io: Io, data: T) -> io::Result<Self> {
        Self::start(io, data, None)
    }

    /// Like [`Op::submit`], with a deadline: if `io` has not completed
    /// within `timeout`, it is cancelled (it completes with `ECANCELED`).
    pub(crate) fn submit_with_timeout(io: Io, data: T, timeout: Duration) -> io::Result<Self> {
        Self::start(io, data, Some(timeout))
    }

    fn start(io: Io, data: T, timeout: Option<Duration>) -> io::Result<Self> {
        let user_data = driver::with(|d| d.submit(io, false, 0, timeout))?;
        Ok(Self {
            user_data,
            data: Some(data),
        })
    }
}

impl<T: Unpin + 'static> Future for Op<T> {
    type Output = (Completion, T);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match driver::with(|d| d.poll_slot(this.user_data, cx.waker())) {
            Some((completion, _)) => {
                let data = this
                    .data
                    .take()
                    .expect("op polled again after it completed");
                Poll::Ready((completion, data))
            }
            None => Poll::Pending,
        }
    }
}

impl<T: 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            orphan(self.user_data, Box::new(data));
        }
    }
}

/// A multishot op: yields completions until the kernel ends it.
#[derive(Debug)]
pub(crate) struct MultiOp<T: 'static> {
    user_data: u64,
    data: Option<T>,
    done: bool,
}

impl<T: 'static> MultiOp<T> {
    /// Starts multishot `io` and takes `data` (as for [`Op::submit`]). The
    /// driver stops the op when `high_water` completions wait unconsumed
    /// (fewer when its buffer pool runs low).
    pub(crate) fn submit(io: Io, data: T, high_water: usize) -> io::Result<Self> {
        let user_data = driver::with(|d| d.submit(io, true, high_water, None))?;
        Ok(Self {
            user_data,
            data: Some(data),
            done: false,
        })
    }

    /// The next completion; `None` once the op has ended and every
    /// completion was taken.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        if self.done {
            return Poll::Ready(None);
        }
        match driver::with(|d| d.poll_slot(self.user_data, cx.waker())) {
            Some((completion, finished)) => {
                if finished {
                    self.done = true;
                    // The kernel is done with our resources.
                    self.data = None;
                }
                Poll::Ready(Some(completion))
            }
            None => Poll::Pending,
        }
    }

    /// Whether the kernel has ended the op and all completions were taken.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Changes the high water of a running op (see [`MultiOp::submit`]).
    pub(crate) fn set_high_water(&self, high_water: usize) {
        if !self.done {
            driver::with(|d| d.set_high_water(self.user_data, high_water));
        }
    }
}

impl<T: 'static> Drop for MultiOp<T> {
    fn drop(&mut self) {
        if !self.done {
            let data: Box<dyn std::any::Any> = match self.data.take() {
                Some(d) => Box::new(d),
                None => Box::new(()),
            };
            orphan(self.user_data, data);
        }
    }
}

fn orphan(user_data: u64, keep: Box<dyn std::any::Any>) {
    let mut keep = Some(keep);
    let garbage = driver::try_with(|d| {
        if let Some(keep) = keep.take() {
            d.orphan(user_data, keep);
        }
        d.take_garbage()
    });
    // Dropped here, outside the driver's borrow.
    drop(garbage);
    if let Some(keep) = keep {
        // No driver to park it in (the thread is tearing down, or the
        // driver is borrowed): the kernel may still write into this memory,
        // so it is leaked rather than freed.
        std::mem::forget(keep);
    }
}
