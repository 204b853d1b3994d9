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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::os::fd::RawFd;

use io_uring::squeue;

use super::driver::{self, Completion, NO_GROUP};

/// What the reactor must know of an op that receives into provided
/// buffers: the group it selects from and the socket it reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selects {
    /// The buffer group id.
    pub(crate) group: u16,
    /// The socket read.
    pub(crate) fd: RawFd,
}

impl Selects {
    fn parts(selects: Option<Selects>) -> (u8, RawFd) {
        match selects {
            Some(s) => (u8::try_from(s.group).unwrap_or(NO_GROUP), s.fd),
            None => (NO_GROUP, -1),
        }
    }
}

/// A single-shot op owning `T` until its completion.
#[derive(Debug)]
pub(crate) struct Op<T: 'static> {
    user_data: u64,
    data: Option<T>,
}

impl<T: 'static> Op<T> {
    /// Declares that a successful completion is a new descriptor, to be
    /// closed if it is never taken (accept).
    pub(crate) fn yields_fds(self) -> Self {
        driver::with(|d| d.mark_yields_fds(self.user_data));
        self
    }

    /// Queues `entry` (its `user_data` is set here) and takes `data`.
    ///
    /// # Safety
    /// Every pointer in `entry` must point into memory owned by `data` that
    /// does not move when `data` moves, or into memory that outlives the op.
    pub(crate) unsafe fn submit(entry: squeue::Entry, data: T) -> io::Result<Self> {
        // SAFETY: forwarded to the caller's contract.
        unsafe { Self::submit_selecting(entry, data, None) }
    }

    /// Like [`Op::submit`] for an op that receives into a provided buffer
    /// (`selects` names the group and the socket).
    ///
    /// # Safety
    /// As for [`Op::submit`].
    pub(crate) unsafe fn submit_selecting(
        entry: squeue::Entry,
        data: T,
        selects: Option<Selects>,
    ) -> io::Result<Self> {
        let (group, fd) = Selects::parts(selects);
        driver::with(|d| {
            let user_data = d.register(false, 0, group, fd);
            let entry = entry.user_data(user_data);
            // SAFETY: the memory `entry` points into is owned by `data`, which
            // this op keeps until the final completion (orphaned or not).
            match unsafe { d.push(&entry) } {
                Ok(()) => Ok(Self {
                    user_data,
                    data: Some(data),
                }),
                Err(e) => {
                    // Never reached the kernel: nothing to wait for.
                    d.discard(user_data);
                    Err(e)
                }
            }
        })
    }

    /// Queues `entry` linked to a timeout: if `entry` has not completed within
    /// `timeout`, the kernel cancels it (it completes with `ECANCELED`).
    ///
    /// # Safety
    /// As for [`Op::submit`].
    pub(crate) unsafe fn submit_with_timeout(
        entry: squeue::Entry,
        data: T,
        timeout: std::time::Duration,
    ) -> io::Result<Self> {
        let ts = Box::new(
            io_uring::types::Timespec::new()
                .sec(timeout.as_secs())
                .nsec(timeout.subsec_nanos()),
        );
        let ts_ptr: *const io_uring::types::Timespec = &*ts;
        driver::with(|d| {
            let user_data = d.register(false, 0, NO_GROUP, -1);
            let timer_data = d.register_orphan(Box::new(ts));
            let first = entry.user_data(user_data).flags(squeue::Flags::IO_LINK);
            let timer = io_uring::opcode::LinkTimeout::new(ts_ptr)
                .build()
                .user_data(timer_data);
            // SAFETY: `entry`'s memory is owned by `data` (caller's
            // contract); the timespec lives in the timer's orphan slot until
            // its own completion.
            if let Err(e) = unsafe { d.push_many(&[first, timer]) } {
                d.discard(user_data);
                d.discard(timer_data);
                return Err(e);
            }
            Ok(Self {
                user_data,
                data: Some(data),
            })
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
    /// Queues multishot `entry` and takes `data`. The driver cancels the op
    /// when `high_water` completions wait unconsumed (fewer when its buffer
    /// ring runs low). `selects` names the buffer group and socket of a
    /// receive.
    ///
    /// # Safety
    /// As for [`Op::submit`].
    pub(crate) unsafe fn submit(
        entry: squeue::Entry,
        data: T,
        high_water: usize,
        selects: Option<Selects>,
    ) -> io::Result<Self> {
        let (group, fd) = Selects::parts(selects);
        driver::with(|d| {
            let user_data = d.register(true, high_water, group, fd);
            let entry = entry.user_data(user_data);
            // SAFETY: forwarded to the caller's contract.
            match unsafe { d.push(&entry) } {
                Ok(()) => Ok(Self {
                    user_data,
                    data: Some(data),
                    done: false,
                }),
                Err(e) => {
                    d.discard(user_data);
                    Err(e)
                }
            }
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
