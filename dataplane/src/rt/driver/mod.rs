//! The per-thread reactor: owns the ring (or the epoll set, see [`epoll`])
//! and the table of in-flight ops.
//!
//! Every op submitted gets a [`Slot`] keyed by its `user_data`. The slot
//! lives until the op's final completion arrives, whatever happens to the
//! future that submitted it, and holds whatever memory the kernel may still
//! touch (see [`super::op`] for the life cycle). The slots, their
//! completions, wakers and high-water rule are the same on both backends;
//! only how an op reaches the kernel differs ([`Driver::submit`]).

pub(crate) mod epoll;

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;

pub use super::counters::{RingCounters, RingStats};
use super::io_op::Io;
use super::ring::RingFeatures;
use super::timer::Timers;
use crate::buf::{BufHandle, BufPool};

/// The group byte of a `user_data` whose op selects no provided buffer.
pub(crate) const NO_GROUP: u8 = 0xff;
/// The group byte of a cancel's `user_data`: the rest names its target.
const CANCEL: u8 = 0xfe;
/// The group byte of the worker's timer op (the ring timeout set for the
/// earliest timer) and of the updates that move it.
const TIMER_OP: u8 = 0xfd;
/// The `user_data` of the timer op.
const TIMER_FIRES: u64 = (TIMER_OP as u64) << KEY_BITS;
/// The `user_data` of an update that moves the timer op.
const TIMER_MOVES: u64 = TIMER_FIRES | 1;
/// Slot keys fit in 24 bits of `user_data` (16 million ops in flight).
const KEY_BITS: u32 = 24;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;

/// How often in a row a submission may meet a transient error (`EAGAIN`,
/// `ENOMEM`, `EBUSY`) before the op being submitted is failed: each try
/// reaps completions first, which is what frees the kernel's resources.
const SUBMIT_TRIES: u32 = 64;

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
    /// The buffer group it selects from (`NO_GROUP` if none).
    group: u8,
    /// The descriptor the op works on (-1: none). Under epoll, the one
    /// whose queue it waits in; on io_uring, a multishot receive's socket
    /// is shut down as a last resort if the op is orphaned and its cancel
    /// fails, so the socket cannot stay open forever behind an op nobody
    /// ends.
    fd: RawFd,
    /// Multishot ops may post many completions; single ones one.
    multishot: bool,
    /// Completions not yet taken by the owner.
    completions: Queue,
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

/// How ops reach the kernel.
// One per worker thread, so the smaller variant's unused bytes cost
// nothing, and the ring stays inline on the path every turn takes.
#[allow(clippy::large_enum_variant)]
enum Reactor {
    /// Submission and completion queues shared with the kernel.
    Uring(IoUring),
    /// An edge-triggered epoll set; ops run their system calls when ready.
    Epoll(epoll::Epoll),
}

/// The reactor of one thread.
pub(crate) struct Driver {
    reactor: Reactor,
    slots: Slab<Slot>,
    next_generation: u32,
    features: RingFeatures,
    /// The provided buffer rings, by group id.
    pools: Vec<Rc<BufPool>>,
    stats: Arc<RingCounters>,
    now: Instant,
    /// When the thread last came back from waiting in the kernel: the time
    /// from it to the next wait is time the thread ran (`busy_ns`).
    awake_since: Instant,
    /// The deadlines tasks wait for.
    timers: Timers,
    /// When the timer op is set to fire, while it is in flight: one ring
    /// timeout for the earliest timer, so that a wait ends in time. It is
    /// set anew only when a timer earlier than it appears or when it
    /// fired: in steady state, not once per request nor per wait.
    timer_op_at: Option<Instant>,
    /// The timespec the timer op's SQE (or its update's) points at; the
    /// kernel copies it when it takes the SQE, at the next enter.
    timer_spec: Box<types::Timespec>,
    /// Things to drop once the driver is no longer borrowed.
    graveyard: Vec<Box<dyn Any>>,
    /// Buffers reaped for orphaned ops; recycled after the borrow ends.
    spare_bufs: Vec<BufHandle>,
    /// Multishot ops over their high water mark, to cancel.
    to_cancel: Vec<u64>,
    /// Targets of cancels that failed in the last reap.
    failed_cancels: Vec<u64>,
    /// The kernel's count of dropped completions, last seen.
    cq_dropped_seen: u32,
    /// Ops whose epoll deadline passed, to complete with `ECANCELED`.
    expired_ops: Vec<u64>,
    /// Errors to return from the next `io_uring_enter` calls instead of
    /// entering (tests only).
    #[cfg(test)]
    pub(crate) faults: Faults,
}

/// Faults a test can inject into the driver.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// `errno`s the next enters fail with, in order.
    pub(crate) enter: VecDeque<i32>,
    /// Cancels are aimed at no op, so they fail with `ENOENT`.
    pub(crate) break_cancels: bool,
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

/// Whether this thread has a driver installed.
pub(crate) fn installed() -> bool {
    DRIVER.with(|d| d.borrow().is_some())
}

impl Driver {
    /// A driver for `ring`, whose provided buffer rings are `pools` (by
    /// group id) and whose figures go to `stats`.
    pub(crate) fn new(
        ring: IoUring,
        features: RingFeatures,
        pools: Vec<Rc<BufPool>>,
        stats: Arc<RingCounters>,
    ) -> Self {
        Self::with_reactor(Reactor::Uring(ring), features, pools, stats)
    }

    /// A driver on epoll set `epoll`, whose pools are unregistered.
    pub(crate) fn new_epoll(
        epoll: epoll::Epoll,
        features: RingFeatures,
        pools: Vec<Rc<BufPool>>,
        stats: Arc<RingCounters>,
    ) -> Self {
        Self::with_reactor(Reactor::Epoll(epoll), features, pools, stats)
    }

    fn with_reactor(
        reactor: Reactor,
        features: RingFeatures,
        pools: Vec<Rc<BufPool>>,
        stats: Arc<RingCounters>,
    ) -> Self {
        let now = Instant::now();
        Self {
            reactor,
            slots: Slab::with_capacity(1024),
            next_generation: 0,
            features,
            pools,
            stats,
            now,
            awake_since: now,
            timers: Timers::default(),
            timer_op_at: None,
            timer_spec: Box::new(types::Timespec::new()),
            graveyard: Vec::new(),
            spare_bufs: Vec::new(),
            to_cancel: Vec::new(),
            failed_cancels: Vec::new(),
            cq_dropped_seen: 0,
            expired_ops: Vec::new(),
            #[cfg(test)]
            faults: Faults::default(),
        }
    }

    /// The ring, on the io_uring backend; the epoll backend never reaches
    /// the code that asks for it.
    fn ring(&mut self) -> &mut IoUring {
        match &mut self.reactor {
            Reactor::Uring(ring) => ring,
            Reactor::Epoll(_) => unreachable!("a ring op on the epoll backend"),
        }
    }

    /// Whether ops run on epoll.
    pub(crate) fn on_epoll(&self) -> bool {
        matches!(self.reactor, Reactor::Epoll(_))
    }

    pub(crate) fn features(&self) -> RingFeatures {
        self.features
    }

    /// The buffer ring of group `group`.
    pub(crate) fn pool(&self, group: u16) -> Option<&Rc<BufPool>> {
        self.pools.get(usize::from(group))
    }

    pub(crate) fn stats(&self) -> &Arc<RingCounters> {
        &self.stats
    }

    /// Time of the last reap: a cheap clock good to a loop turn.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// This thread's timers.
    pub(crate) fn timers(&mut self) -> &mut Timers {
        &mut self.timers
    }

    /// Ops the kernel has not finished (including orphans). Finished ops
    /// whose completions wait to be taken do not count: the kernel is done
    /// with their memory.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.iter().filter(|(_, s)| !s.finished).count()
    }

    /// Entries waiting in the submission queue.
    #[cfg(test)]
    pub(crate) fn queued(&mut self) -> usize {
        self.ring().submission().len()
    }

    /// Starts `io`: registers its slot and hands it to the kernel (io_uring:
    /// queues its entry, linked to a timeout of `timeout` if given; epoll:
    /// runs it now or queues it on its descriptor). A multishot op is
    /// stopped once `high_water` completions wait unconsumed. Returns the
    /// slot's `user_data`.
    ///
    /// The caller keeps the memory `io` points into alive, at its address,
    /// until the op's final completion (what `Io`'s constructors require).
    pub(crate) fn submit(
        &mut self,
        io: Io,
        multishot: bool,
        high_water: usize,
        timeout: Option<Duration>,
    ) -> io::Result<u64> {
        let group = io
            .group()
            .map_or(NO_GROUP, |g| u8::try_from(g).unwrap_or(NO_GROUP));
        let user_data = self.register(multishot, high_water, group, io.fd());
        if io.yields_fd() {
            self.mark_yields_fds(user_data);
        }
        if self.on_epoll() {
            if let Err(e) = self.start_epoll(user_data, io, timeout) {
                self.discard(user_data);
                return Err(e);
            }
            return Ok(user_data);
        }
        let entry = io.entry().user_data(user_data);
        let pushed = match timeout {
            // SAFETY: the memory `entry` points into is kept by the caller
            // until the final completion (this method's contract).
            None => unsafe { self.push(&entry) },
            Some(timeout) => {
                let ts = Box::new(
                    types::Timespec::new()
                        .sec(timeout.as_secs())
                        .nsec(timeout.subsec_nanos()),
                );
                let ts_ptr: *const types::Timespec = &*ts;
                let timer_data = self.register_orphan(Box::new(ts));
                let first = entry.flags(squeue::Flags::IO_LINK);
                let timer = opcode::LinkTimeout::new(ts_ptr)
                    .build()
                    .user_data(timer_data);
                // SAFETY: `entry`'s memory as above; the timespec lives in
                // the timer's orphan slot until its own completion.
                let pushed = unsafe { self.push_many(&[first, timer]) };
                if pushed.is_err() {
                    self.discard(timer_data);
                }
                pushed
            }
        };
        if let Err(e) = pushed {
            // Never reached the kernel: nothing to wait for.
            self.discard(user_data);
            return Err(e);
        }
        Ok(user_data)
    }

    /// Registers a slot and returns the `user_data` for its SQE. `group` is
    /// the buffer group the op selects from (`NO_GROUP` if none), `fd` the
    /// descriptor the op works on (-1 if none).
    pub(crate) fn register(
        &mut self,
        multishot: bool,
        high_water: usize,
        group: u8,
        fd: RawFd,
    ) -> u64 {
        // Generation 0 is never given out, so no live op's `user_data` is
        // 0 (what a test aims a broken cancel at).
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let generation = self.next_generation;
        let key = self.slots.insert(Slot {
            generation,
            group,
            fd,
            multishot,
            completions: Queue::default(),
            finished: false,
            waker: None,
            orphan: None,
            high_water,
            cancel_sent: false,
            yields_fds: false,
        });
        assert!(
            (key as u64) < KEY_MASK,
            "more than 16 million io_uring ops in flight on one thread"
        );
        encode(key, group, generation)
    }

    /// Marks the op of `user_data` as one whose successful completions are
    /// new file descriptors (see [`Slot::yields_fds`]).
    pub(crate) fn mark_yields_fds(&mut self, user_data: u64) {
        let (key, _, generation) = decode(user_data);
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

    /// Queues entries that must reach the kernel together (a linked chain):
    /// all of them go into the submission queue in one go, or none, so a
    /// linked op is never submitted in one batch and its timeout in the
    /// next (the op would then run without it).
    ///
    /// # Safety
    /// As for [`Driver::push`], for every entry.
    pub(crate) unsafe fn push_many(&mut self, entries: &[squeue::Entry]) -> io::Result<()> {
        let mut tries = 0;
        loop {
            let mut sq = self.ring().submission();
            if sq.capacity() - sq.len() >= entries.len() {
                for e in entries {
                    // SAFETY: room was checked just above, and the entries'
                    // memory is kept alive per our caller's contract.
                    unsafe { sq.push(e) }.map_err(|_| io::Error::other("submission queue full"))?;
                }
                return Ok(());
            }
            drop(sq);
            tries += 1;
            self.make_room(tries)?;
        }
    }

    /// Hands queued SQEs to the kernel to free room in the submission
    /// queue. A transient refusal reaps completions (which is what the
    /// kernel waits for on `EBUSY`) and lets the caller try again, up to
    /// [`SUBMIT_TRIES`] times.
    fn make_room(&mut self, tries: u32) -> io::Result<()> {
        match self.enter(0) {
            Ok(()) => Ok(()),
            Err(e) if is_transient(&e) && tries < SUBMIT_TRIES => {
                self.reap();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// One `io_uring_enter`: submits what is queued and waits for `want`
    /// completions.
    fn enter(&mut self, want: usize) -> io::Result<()> {
        self.stats.enters.add(1);
        #[cfg(test)]
        if let Some(errno) = self.faults.enter.pop_front() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let n = self.ring().submit_and_wait(want)?;
        self.stats.submitted.add(n as u64);
        Ok(())
    }

    /// Submits, optionally waits for at least one completion, and dispatches
    /// every completion available; then wakes the tasks whose timers are
    /// due.
    ///
    /// `EINTR`, `EAGAIN`, `ENOMEM` and `EBUSY` from the kernel are transient
    /// (a signal, a momentary shortage of kernel memory, a full completion
    /// queue): the completions already posted are reaped, which frees what
    /// the kernel waits for, and the next turn tries again. Only other
    /// errors end the loop.
    pub(crate) fn turn(&mut self, wait: bool) -> io::Result<()> {
        if self.on_epoll() {
            return self.turn_epoll(wait, None);
        }
        self.set_timer_op()?;
        let (queued, taskrun) = {
            let sq = self.ring().submission();
            (sq.len(), sq.taskrun() || sq.cq_overflow())
        };
        if wait || queued > 0 || taskrun {
            if wait {
                // One clock read per wait: the thread ran from when it last
                // woke until now.
                let ran = Instant::now().saturating_duration_since(self.awake_since);
                self.stats
                    .busy_ns
                    .add(u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX));
            }
            match self.enter(usize::from(wait)) {
                Ok(()) => {}
                Err(e) if is_transient(&e) => self.stats.enter_retries.add(1),
                Err(e) => return Err(e),
            }
        }
        self.now = Instant::now();
        if wait {
            self.awake_since = self.now;
        }
        self.reap();
        self.timers.expire(self.now);
        self.issue_cancels()
    }

    /// Makes sure the timer op fires no later than the earliest timer: sets
    /// it if none is in flight, moves it if a timer earlier than it came.
    ///
    /// A wait could instead carry a timeout of its own
    /// (`IORING_ENTER_EXT_ARG`), but the kernel then arms and cancels a
    /// high-resolution timer at every wait, which cost several percent of
    /// a small request's CPU in a profile; this op is set about once per
    /// timeout period.
    fn set_timer_op(&mut self) -> io::Result<()> {
        let Some(deadline) = self.timers.next_deadline() else {
            return Ok(());
        };
        if self.timer_op_at.is_some_and(|at| at <= deadline) {
            return Ok(());
        }
        // From the clock of this turn (no second clock read): a timer may
        // fire a turn's length late, never early.
        *self.timer_spec = types::Timespec::from(deadline.saturating_duration_since(self.now));
        let spec: *const types::Timespec = &*self.timer_spec;
        let entry = match self.timer_op_at {
            None => opcode::Timeout::new(spec).build().user_data(TIMER_FIRES),
            Some(_) => opcode::TimeoutUpdate::new(TIMER_FIRES, spec)
                .build()
                .user_data(TIMER_MOVES),
        };
        // SAFETY: the SQE points at `timer_spec`, a box the driver owns
        // for its life; the kernel reads it when it takes the SQE (both
        // ops copy their timespec as they are prepared), and it is written
        // again only for the next SQE, after this one was handed over (one
        // per turn, before the turn's enter).
        unsafe { self.push(&entry)? };
        self.timer_op_at = Some(deadline);
        Ok(())
    }

    /// Like [`Driver::turn`] with a wait, but gives up waiting after
    /// `timeout` (used at shutdown, where a kernel that never answers must
    /// not hang the thread).
    pub(crate) fn turn_for(&mut self, timeout: Duration) -> io::Result<()> {
        if self.on_epoll() {
            return self.turn_epoll(true, Some(timeout));
        }
        let ts = types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        self.stats.enters.add(1);
        match self.ring().submitter().submit_with_args(1, &args) {
            Ok(n) => self.stats.submitted.add(n as u64),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        self.now = Instant::now();
        self.reap();
        self.timers.expire(self.now);
        self.issue_cancels()
    }

    fn reap(&mut self) {
        let Reactor::Uring(ring) = &mut self.reactor else {
            return;
        };
        let mut cq = ring.completion();
        cq.sync();
        let dropped = cq.overflow();
        for cqe in &mut cq {
            self.stats.completed.add(1);
            let user_data = cqe.user_data();
            let (key, group, generation) = decode(user_data);
            if group == TIMER_OP {
                // The timer op fired (or ended some other way: it is set
                // again at the next turn if a timer still waits). A failed
                // move means it had fired already; its own completion says
                // so.
                if user_data == TIMER_FIRES {
                    self.timer_op_at = None;
                }
                continue;
            }
            if group == CANCEL {
                // A failed cancel whose target is still running: checked
                // once every completion of this batch is in.
                if cqe.result() < 0 && cqe.result() != -libc::EALREADY {
                    self.failed_cancels.push(user_data);
                }
                continue;
            }
            let flags = cqe.flags();
            let pool = self.pools.get(usize::from(group));
            let buf = match (cqueue::buffer_select(flags), pool) {
                (Some(bid), Some(pool)) => {
                    Some(pool.claim(bid, u32::try_from(cqe.result()).unwrap_or(0)))
                }
                _ => None,
            };
            if cqe.result() == -libc::ENOBUFS {
                self.stats.enobufs.add(1);
            }
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
            if slot.multishot && !last && !slot.cancel_sent {
                // The pool lowers every stream's high water as it drains.
                let high_water = match pool {
                    Some(pool) => pool.share(slot.high_water),
                    None => slot.high_water,
                };
                if slot.completions.len() >= high_water {
                    slot.cancel_sent = true;
                    self.to_cancel.push(user_data);
                }
            }
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
        drop(cq);
        if dropped != self.cq_dropped_seen {
            // Completions lost for good: their ops' slots never finish.
            // Counted so an operator sees it; the CQ is sized well above
            // the ops in flight, so this should never move.
            let lost = dropped.wrapping_sub(self.cq_dropped_seen);
            self.cq_dropped_seen = dropped;
            self.stats.cq_dropped.add(u64::from(lost));
        }
        self.unstick_failed_cancels();
    }

    /// For each cancel that failed in the last reap: if its target is an
    /// orphaned multishot receive that is still running (no final
    /// completion came in the same batch), shut its socket's reading side
    /// down. Its stream is gone, and a stream is dropped only when its
    /// socket is done being read (a connection's end, a pool dropping a
    /// connection); one-shot receives, which a dropped `next` future can
    /// orphan on a live connection, register no socket here. The shutdown
    /// is what makes the kernel end the receive, so the op completes and
    /// the socket closes instead of staying open forever.
    fn unstick_failed_cancels(&mut self) {
        while let Some(target) = self.failed_cancels.pop() {
            let (key, _, generation) = decode(target);
            let Some(slot) = self.slots.get(key) else {
                continue;
            };
            if slot.generation != generation || slot.finished || slot.orphan.is_none() {
                continue;
            }
            self.stats.cancel_failures.add(1);
            // Only a multishot receive's socket: a one-shot receive is
            // orphaned with its stream, whose owner decides what becomes
            // of the socket.
            if slot.multishot && slot.group != NO_GROUP && slot.fd >= 0 {
                // SAFETY: not memory-related; `fd` is the socket the
                // orphan keeps open (it owns an `Rc` of it), so it is
                // still this socket and not a reused number. Only the
                // reading side: it ends the receive, and sends nothing, so
                // a reset the owner asked for on close still goes out.
                unsafe { libc::shutdown(slot.fd, libc::SHUT_RD) };
            }
        }
    }

    fn issue_cancels(&mut self) -> io::Result<()> {
        while let Some(target) = self.to_cancel.pop() {
            let entry = self.cancel_entry(target);
            // SAFETY: a cancel carries no pointer, only the target's id.
            unsafe { self.push(&entry)? };
        }
        Ok(())
    }

    /// A cancel of `target`, whose completion names it (see `reap`).
    fn cancel_entry(&self, target: u64) -> squeue::Entry {
        #[allow(unused_mut)]
        let mut aim = target;
        #[cfg(test)]
        if self.faults.break_cancels {
            aim = 0;
        }
        let (key, _, generation) = decode(target);
        opcode::AsyncCancel::new(aim)
            .build()
            .user_data(encode(key, CANCEL, generation))
    }

    /// Takes what must be dropped outside the driver's borrow.
    pub(crate) fn take_garbage(&mut self) -> (Vec<Box<dyn Any>>, Vec<BufHandle>) {
        (
            std::mem::take(&mut self.graveyard),
            std::mem::take(&mut self.spare_bufs),
        )
    }

    /// Sets the high water of multishot op `user_data`; cancels it at once
    /// if more completions than that wait already.
    pub(crate) fn set_high_water(&mut self, user_data: u64, high_water: usize) {
        let epoll = self.on_epoll();
        let (key, _, generation) = decode(user_data);
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        if slot.generation != generation || slot.high_water == high_water {
            return;
        }
        slot.high_water = high_water;
        if slot.multishot
            && !slot.finished
            && !slot.cancel_sent
            && slot.completions.len() >= high_water
        {
            if epoll {
                self.stop_waiting(user_data);
                return;
            }
            slot.cancel_sent = true;
            self.to_cancel.push(user_data);
        }
    }

    /// Polls slot `user_data` for its next completion; registers `waker`
    /// otherwise. Returns `(completion, finished)`.
    pub(crate) fn poll_slot(
        &mut self,
        user_data: u64,
        waker: &Waker,
    ) -> Option<(Completion, bool)> {
        let (key, _, generation) = decode(user_data);
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
        let epoll = self.on_epoll();
        let (key, _, generation) = decode(user_data);
        let Some(slot) = self.slots.get_mut(key) else {
            self.graveyard.push(keep);
            return;
        };
        if slot.generation != generation {
            self.graveyard.push(keep);
            return;
        }
        if slot.finished || epoll {
            // Under epoll no kernel holds the op's memory: taking it out of
            // its queue ends it, and the slot goes now.
            if !slot.finished {
                self.withdraw(user_data);
            }
            let slot = self.slots.remove(key);
            self.drop_completions(slot.completions, slot.yields_fds);
            self.graveyard.push(keep);
            return;
        }
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
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
    fn drop_completions(&mut self, completions: Queue, yields_fds: bool) {
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
        let (key, _, generation) = decode(user_data);
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
        let user_data = self.register(false, 0, NO_GROUP, -1);
        let (key, _, _) = decode(user_data);
        self.slots[key].orphan = Some(keep);
        // A detached slot must not be cancelled by `orphan` bookkeeping.
        self.slots[key].cancel_sent = true;
        user_data
    }

    /// Asks the kernel to cancel every in-flight op (used at shutdown).
    pub(crate) fn cancel_all(&mut self) -> io::Result<()> {
        if self.on_epoll() {
            let waiting: Vec<u64> = self
                .slots
                .iter()
                .filter(|(_, s)| !s.finished)
                .map(|(k, s)| encode(k, s.group, s.generation))
                .collect();
            for user_data in waiting {
                self.stop_waiting(user_data);
            }
            return Ok(());
        }
        let targets: Vec<u64> = self
            .slots
            .iter()
            // Not those cancelled already (high-water stops, orphans) nor
            // linked timeouts (a cancel cannot find them; their op's end
            // ends them).
            .filter(|(_, s)| !s.finished && !s.cancel_sent)
            .map(|(k, s)| encode(k, s.group, s.generation))
            .collect();
        for t in targets {
            let entry = self.cancel_entry(t);
            // SAFETY: a cancel carries no pointer.
            unsafe { self.push(&entry)? };
        }
        Ok(())
    }

    /// Ends the buffer ring's registration; after this the kernel no longer
    /// writes into pool memory.
    pub(crate) fn release_buffers(&mut self) {
        if self.in_flight() > 0 {
            return;
        }
        if let Reactor::Uring(ring) = &self.reactor {
            for pool in &self.pools {
                let _ = pool.unregister(&ring.submitter());
            }
        }
    }
}

/// An op's completions not yet taken. Most ops have one at a time (a
/// single-shot op's only one, a receive whose consumer keeps up), kept in
/// place; more (a consumer behind a multishot op) go in a deque made only
/// then and freed once it is emptied, so an op that once had a burst does
/// not keep the deque's memory for the rest of its life (a keep-alive
/// connection's receive lives as long as the connection).
#[derive(Default)]
struct Queue {
    first: Option<Completion>,
    // Boxed: a pointer in every slot instead of an empty deque's four words
    // (a slot per open connection); the box is made only with the deque.
    #[allow(clippy::box_collection)]
    more: Option<Box<VecDeque<Completion>>>,
}

impl Queue {
    fn push_back(&mut self, c: Completion) {
        if self.first.is_none() {
            self.first = Some(c);
        } else {
            self.more.get_or_insert_default().push_back(c);
        }
    }

    fn pop_front(&mut self) -> Option<Completion> {
        let first = self.first.take()?;
        if let Some(more) = &mut self.more {
            self.first = more.pop_front();
            if more.is_empty() {
                self.more = None;
            }
        }
        Some(first)
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.as_ref().map_or(0, |m| m.len())
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl IntoIterator for Queue {
    type Item = Completion;
    type IntoIter = std::iter::Chain<
        std::option::IntoIter<Completion>,
        std::iter::Flatten<std::option::IntoIter<VecDeque<Completion>>>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.first
            .into_iter()
            .chain(self.more.map(|m| *m).into_iter().flatten())
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

/// Whether an `io_uring_enter` error is one to reap and retry after.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::ENOMEM | libc::EBUSY)
    )
}

/// `user_data`: generation (32 bits), buffer group (8), slot key (24).
fn encode(key: usize, group: u8, generation: u32) -> u64 {
    (u64::from(generation) << 32) | (u64::from(group) << KEY_BITS) | (key as u64 & KEY_MASK)
}

fn decode(user_data: u64) -> (usize, u8, u32) {
    (
        (user_data & KEY_MASK) as usize,
        (user_data >> KEY_BITS) as u8,
        (user_data >> 32) as u32,
    )
}
