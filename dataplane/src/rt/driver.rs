//! The per-thread reactor: owns the ring and the table of in-flight ops.
//!
//! Every op submitted gets a [`Slot`] keyed by its `user_data`. The slot
//! lives until the op's final completion arrives, whatever happens to the
//! future that submitted it, and holds whatever memory the kernel may still
//! touch (see [`super::op`] for the life cycle).

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use io_uring::{cqueue, opcode, squeue, IoUring};
use slab::Slab;

use super::ring::RingFeatures;
use crate::buf::{BufHandle, BufPool};
use crate::counter::Counter;

/// `user_data` of SQEs whose completions nobody waits for (cancels).
const DETACHED: u64 = u64::MAX;

/// One completion of an op.
#[derive(Debug)]
pub struct Completion {
    /// `res` of the CQE: a count, a file descriptor, or `-errno`.
    pub result: i32,
    /// CQE flags.
    pub flags: u32,
    /// The provided buffer the kernel filled, if it picked one.
    pub buf: Option<BufHandle>,
}

impl Completion {
    /// The result as an `io::Result`.
    pub fn io_result(&self) -> io::Result<u32> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }
}

/// Bookkeeping of one in-flight op.
pub(crate) struct Slot {
    generation: u32,
    /// Multishot ops may post many completions; single ones one.
    multishot: bool,
    /// Completions not yet taken by the owner.
    completions: VecDeque<Completion>,
    /// The final completion arrived (no `IORING_CQE_F_MORE`).
    finished: bool,
    /// Who to wake on the next completion.
    waker: Option<Waker>,
    /// Set once the owner was dropped: the resources the kernel may still
    /// use, kept until `finished`.
    orphan: Option<Box<dyn Any>>,
    /// For multishot: stop the op once this many completions are queued, so
    /// that a consumer that does not keep up holds a bounded number of
    /// buffers.
    high_water: usize,
    /// A cancel was already requested.
    cancel_sent: bool,
    /// A successful completion carries a new file descriptor (accept): one
    /// nobody will take must be closed, or the peer waits on a socket that
    /// is never served.
    yields_fds: bool,
}

/// A copy of one ring's counters at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub struct RingStats {
    /// SQEs handed to the kernel.
    pub submitted: u64,
    /// CQEs reaped.
    pub completed: u64,
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// Recv ops that ended with `ENOBUFS` (the buffer ring ran dry).
    pub enobufs: u64,
    /// Multishot ops re-armed after they ended.
    pub rearms: u64,
}

/// The live counters of one ring: written by its thread only, readable from
/// any (see [`Counter`]). Aligned to a cache line pair of its own, so that no
/// other thread's data shares the lines its thread writes.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct RingCounters {
    pub(crate) submitted: Counter,
    pub(crate) completed: Counter,
    pub(crate) enters: Counter,
    pub(crate) enobufs: Counter,
    pub(crate) rearms: Counter,
}

impl RingCounters {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> RingStats {
        RingStats {
            submitted: self.submitted.get(),
            completed: self.completed.get(),
            enters: self.enters.get(),
            enobufs: self.enobufs.get(),
            rearms: self.rearms.get(),
        }
    }
}

/// The reactor of one thread.
pub(crate) struct Driver {
    ring: IoUring,
    slots: Slab<Slot>,
    next_generation: u32,
    features: RingFeatures,
    bufs: Option<Rc<BufPool>>,
    stats: Arc<RingCounters>,
    now: Instant,
    /// Things to drop once the driver is no longer borrowed.
    graveyard: Vec<Box<dyn Any>>,
    /// Buffers reaped for orphaned ops; recycled after the borrow ends.
    spare_bufs: Vec<BufHandle>,
    /// Multishot ops over their high water mark, to cancel.
    to_cancel: Vec<u64>,
}

thread_local! {
    static DRIVER: RefCell<Option<Driver>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's driver.
///
/// Panics if called outside a runtime: every op future is created inside
/// `Runtime::block_on`, so that would be a bug of this crate.
pub(crate) fn with<R>(f: impl FnOnce(&mut Driver) -> R) -> R {
    DRIVER.with(|d| {
        let mut d = d.borrow_mut();
        let driver = d
            .as_mut()
            .expect("io op used outside of a ringway runtime thread");
        f(driver)
    })
}

/// Like [`with`], but `None` when the thread has no driver (any more).
pub(crate) fn try_with<R>(f: impl FnOnce(&mut Driver) -> R) -> Option<R> {
    DRIVER
        .try_with(|d| d.try_borrow_mut().ok().and_then(|mut d| d.as_mut().map(f)))
        .ok()
        .flatten()
}

pub(crate) fn install(driver: Driver) {
    DRIVER.with(|d| *d.borrow_mut() = Some(driver));
}

pub(crate) fn uninstall() -> Option<Driver> {
    DRIVER.with(|d| d.borrow_mut().take())
}

impl Driver {
    pub(crate) fn new(ring: IoUring, features: RingFeatures, bufs: Option<Rc<BufPool>>) -> Self {
        Self {
            ring,
            slots: Slab::with_capacity(1024),
            next_generation: 0,
            features,
            bufs,
            stats: Arc::default(),
            now: Instant::now(),
            graveyard: Vec::new(),
            spare_bufs: Vec::new(),
            to_cancel: Vec::new(),
        }
    }

    pub(crate) fn features(&self) -> RingFeatures {
        self.features
    }

    pub(crate) fn bufs(&self) -> Option<&Rc<BufPool>> {
        self.bufs.as_ref()
    }

    pub(crate) fn stats(&self) -> &Arc<RingCounters> {
        &self.stats
    }

    /// Time of the last reap: a cheap clock good to a loop turn.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Ops not yet finished (including orphans).
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// Registers a slot and returns the `user_data` for its SQE.
    pub(crate) fn register(&mut self, multishot: bool, high_water: usize) -> u64 {
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let key = self.slots.insert(Slot {
            generation,
            multishot,
            completions: VecDeque::new(),
            finished: false,
            waker: None,
            orphan: None,
            high_water,
            cancel_sent: false,
            yields_fds: false,
        });
        encode(key, generation)
    }

    /// Marks the op of `user_data` as one whose successful completions are
    /// new file descriptors (see [`Slot::yields_fds`]).
    pub(crate) fn mark_yields_fds(&mut self, user_data: u64) {
        let (key, generation) = decode(user_data);
        if let Some(slot) = self.slots.get_mut(key) {
            if slot.generation == generation {
                slot.yields_fds = true;
            }
        }
    }

    /// Queues `entry` (already carrying its `user_data`).
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until the op's final
    /// completion: the caller parks the memory in the op's slot (owner or
    /// orphan) for exactly that long.
    pub(crate) unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: forwarded to our caller's contract.
        unsafe { self.push_many(std::slice::from_ref(entry)) }
    }

    /// Queues entries that must reach the kernel together (a linked chain).
    ///
    /// # Safety
    /// As for [`Driver::push`], for every entry.
    pub(crate) unsafe fn push_many(&mut self, entries: &[squeue::Entry]) -> io::Result<()> {
        loop {
            let mut sq = self.ring.submission();
            if sq.capacity() - sq.len() >= entries.len() {
                for e in entries {
                    // SAFETY: room was checked just above, and the entries'
                    // memory is kept alive per our caller's contract.
                    unsafe { sq.push(e) }.map_err(|_| io::Error::other("submission queue full"))?;
                }
                return Ok(());
            }
            drop(sq);
            self.submit()?;
        }
    }

    /// Hands queued SQEs to the kernel without waiting.
    pub(crate) fn submit(&mut self) -> io::Result<()> {
        let queued = self.ring.submission().len();
        if queued == 0 {
            return Ok(());
        }
        self.stats.enters.add(1);
        match self.ring.submit() {
            Ok(n) => {
                self.stats.submitted.add(n as u64);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits, optionally waits for at least one completion, and dispatches
    /// every completion available.
    pub(crate) fn turn(&mut self, wait: bool) -> io::Result<()> {
        let (queued, taskrun) = {
            let sq = self.ring.submission();
            (sq.len(), sq.taskrun() || sq.cq_overflow())
        };
        if wait || queued > 0 || taskrun {
            self.stats.enters.add(1);
            let want = usize::from(wait);
            match self.ring.submit_and_wait(want) {
                Ok(n) => self.stats.submitted.add(n as u64),
                // EINTR: a signal; EBUSY: the CQ is full, reap then retry.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
        }
        self.now = Instant::now();
        self.reap();
        self.issue_cancels()
    }

    fn reap(&mut self) {
        let bufs = self.bufs.clone();
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            self.stats.completed.add(1);
            let user_data = cqe.user_data();
            if user_data == DETACHED {
                continue;
            }
            let flags = cqe.flags();
            let buf = match (cqueue::buffer_select(flags), &bufs) {
                (Some(bid), Some(pool)) => {
                    Some(pool.claim(bid, u32::try_from(cqe.result()).unwrap_or(0)))
                }
                _ => None,
            };
            if cqe.result() == -libc::ENOBUFS {
                self.stats.enobufs.add(1);
            }
            let (key, generation) = decode(user_data);
            let Some(slot) = self.slots.get_mut(key) else {
                continue;
            };
            if slot.generation != generation {
                continue;
            }
            let last = !slot.multishot || !cqueue::more(flags);
            if slot.orphan.is_some() {
                if let Some(buf) = buf {
                    self.spare_bufs.push(buf);
                }
                if slot.yields_fds {
                    close_fd(cqe.result());
                }
                if last {
                    let slot = self.slots.remove(key);
                    if let Some(orphan) = slot.orphan {
                        self.graveyard.push(orphan);
                    }
                    // `self.ring` is borrowed by the completion queue here.
                    for c in slot.completions {
                        if slot.yields_fds {
                            close_fd(c.result);
                        }
                        self.spare_bufs.extend(c.buf);
                    }
                }
                continue;
            }
            slot.completions.push_back(Completion {
                result: cqe.result(),
                flags,
                buf,
            });
            slot.finished = last;
            if slot.multishot
                && !last
                && !slot.cancel_sent
                && slot.completions.len() >= slot.high_water
            {
                slot.cancel_sent = true;
                self.to_cancel.push(user_data);
            }
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    fn issue_cancels(&mut self) -> io::Result<()> {
        while let Some(target) = self.to_cancel.pop() {
            let entry = opcode::AsyncCancel::new(target).build().user_data(DETACHED);
            // SAFETY: a cancel carries no pointer, only the target's id.
            unsafe { self.push(&entry)? };
        }
        Ok(())
    }

    /// Takes what must be dropped outside the driver's borrow.
    pub(crate) fn take_garbage(&mut self) -> (Vec<Box<dyn Any>>, Vec<BufHandle>) {
        (
            std::mem::take(&mut self.graveyard),
            std::mem::take(&mut self.spare_bufs),
        )
    }

    /// Polls slot `user_data` for its next completion; registers `waker`
    /// otherwise. Returns `(completion, finished)`.
    pub(crate) fn poll_slot(
        &mut self,
        user_data: u64,
        waker: &Waker,
    ) -> Option<(Completion, bool)> {
        let (key, generation) = decode(user_data);
        let slot = self
            .slots
            .get_mut(key)
            .filter(|s| s.generation == generation)?;
        match slot.completions.pop_front() {
            Some(c) => {
                let drained = slot.finished && slot.completions.is_empty();
                if drained {
                    self.slots.remove(key);
                }
                Some((c, drained))
            }
            None => {
                match &mut slot.waker {
                    Some(w) if w.will_wake(waker) => {}
                    w => *w = Some(waker.clone()),
                }
                None
            }
        }
    }

    /// The owner of `user_data` went away. If the op is done, its slot is
    /// freed now; otherwise `keep` is parked in it until the final
    /// completion and the op is cancelled.
    pub(crate) fn orphan(&mut self, user_data: u64, keep: Box<dyn Any>) {
        let (key, generation) = decode(user_data);
        let Some(slot) = self.slots.get_mut(key) else {
            self.graveyard.push(keep);
            return;
        };
        if slot.generation != generation {
            self.graveyard.push(keep);
            return;
        }
        if slot.finished {
            let slot = self.slots.remove(key);
            self.drop_completions(slot.completions, slot.yields_fds);
            self.graveyard.push(keep);
            return;
        }
        let (queued, yields_fds) = (std::mem::take(&mut slot.completions), slot.yields_fds);
        slot.orphan = Some(keep);
        slot.waker = None;
        let cancel = !slot.cancel_sent;
        slot.cancel_sent = true;
        self.drop_completions(queued, yields_fds);
        if cancel {
            // Queue the cancel SQE now, so the next enter carries it: a loop
            // that then waits would otherwise wait for a completion that
            // only the cancel produces. Only a broken ring fails to queue,
            // and the loop's next enter reports that.
            self.to_cancel.push(user_data);
            let _ = self.issue_cancels();
        }
    }

    /// Lets go of completions nobody will take: their buffers go back to the
    /// ring, and the descriptors of an fd-yielding op are closed.
    fn drop_completions(&mut self, completions: VecDeque<Completion>, yields_fds: bool) {
        for c in completions {
            if yields_fds {
                close_fd(c.result);
            }
            if let Some(buf) = c.buf {
                self.spare_bufs.push(buf);
            }
        }
    }

    /// Frees the slot of an op that never reached the kernel.
    pub(crate) fn discard(&mut self, user_data: u64) {
        let (key, generation) = decode(user_data);
        if self
            .slots
            .get(key)
            .is_some_and(|s| s.generation == generation)
        {
            let slot = self.slots.remove(key);
            if let Some(orphan) = slot.orphan {
                self.graveyard.push(orphan);
            }
        }
    }

    /// Registers a slot that nobody will ever poll: its completion only frees
    /// `keep` (used for linked timeouts).
    pub(crate) fn register_orphan(&mut self, keep: Box<dyn Any>) -> u64 {
        let user_data = self.register(false, 0);
        let (key, _) = decode(user_data);
        self.slots[key].orphan = Some(keep);
        // A detached slot must not be cancelled by `orphan` bookkeeping.
        self.slots[key].cancel_sent = true;
        user_data
    }

    /// Asks the kernel to cancel every in-flight op (used at shutdown).
    pub(crate) fn cancel_all(&mut self) -> io::Result<()> {
        let targets: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.finished)
            .map(|(k, s)| encode(k, s.generation))
            .collect();
        for t in targets {
            let entry = opcode::AsyncCancel::new(t).build().user_data(DETACHED);
            // SAFETY: a cancel carries no pointer.
            unsafe { self.push(&entry)? };
        }
        Ok(())
    }

    /// Ends the buffer ring's registration; after this the kernel no longer
    /// writes into pool memory.
    pub(crate) fn release_buffers(&mut self) {
        if let Some(pool) = &self.bufs {
            if self.slots.is_empty() {
                let _ = pool.unregister(&self.ring.submitter());
            }
        }
    }
}

/// Closes the descriptor a completion of an fd-yielding op returned, if it
/// succeeded (`result` is then the new descriptor).
fn close_fd(result: i32) {
    if result >= 0 {
        // SAFETY: a non-negative result of an accept is a descriptor the
        // kernel just created for this process; its completion was never
        // handed to anyone, so nothing else owns or will use it.
        unsafe { libc::close(result) };
    }
}

fn encode(key: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | key as u64
}

fn decode(user_data: u64) -> (usize, u32) {
    ((user_data & 0xffff_ffff) as usize, (user_data >> 32) as u32)
}
