//! The epoll backend: the same ops, run by their own system calls when
//! their descriptor is ready.
//!
//! Each descriptor an op uses is added to the worker's epoll set once,
//! edge-triggered for input and output. An op joins its descriptor's read
//! or write queue, behind any op queued there before it (so sends never
//! overtake each other). The queues that got a new op at their front in a
//! loop turn are run just before the turn's wait, together, as the ring's
//! one enter carries a turn's entries; a readiness event runs its queue
//! again. A queue runs its ops in order until one would block. What an
//! attempt returns goes into the op's slot as a completion would, so the op
//! futures and everything above them cannot tell the backends apart.
//!
//! * A multishot receive is emulated by reading into pool buffers until
//!   the call would block, one completion per buffer; it ends with
//!   `ECANCELED` at the slot's fair high water and with `ENOBUFS` when the
//!   pool is empty, exactly where the kernel's would end.
//! * A linked timeout is a timer of the worker's ([`Timers::insert_op`]);
//!   when it passes first, the op ends with `ECANCELED`.
//! * Descriptors leave the set when closed; the number is forgotten then
//!   ([`Watched`]), so a new socket that gets the same number is added
//!   afresh.
//!
//! [`Timers::insert_op`]: super::super::timer::Timers::insert_op

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::{decode, Completion, Driver, Reactor};
use crate::rt::io_op::{Attempt, Io};
use crate::rt::timer::TimerKey;

/// `IORING_CQE_F_MORE`: set on every completion of a multishot op but its
/// last, as the kernel sets it.
const CQE_F_MORE: u32 = 1 << 1;

/// Events one `epoll_wait` reports at most.
const EVENTS: usize = 256;

/// The epoll set of one worker and the ops waiting on its descriptors.
pub(crate) struct Epoll {
    fd: OwnedFd,
    /// By descriptor number.
    fds: Vec<Waits>,
    /// Queues with a new op at their front, to run before the next wait.
    pending: Vec<(usize, bool)>,
    events: Vec<libc::epoll_event>,
}

/// What waits on one descriptor.
#[derive(Default)]
struct Waits {
    /// In the epoll set.
    added: bool,
    /// Made non-blocking (listeners, connecting sockets, eventfds).
    nonblocking: bool,
    /// Ops waiting for input, oldest first.
    read: VecDeque<Waiter>,
    /// Ops waiting for room to write (or a connect to end), oldest first.
    write: VecDeque<Waiter>,
}

impl Waits {
    fn queue(&mut self, writes: bool) -> &mut VecDeque<Waiter> {
        if writes {
            &mut self.write
        } else {
            &mut self.read
        }
    }
}

/// An op waiting for its descriptor.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    user_data: u64,
    io: Io,
    /// Its deadline's timer, if it has one.
    timer: Option<TimerKey>,
    /// How long it may wait, from when it first has to.
    timeout: Option<Duration>,
}

impl Epoll {
    /// A new epoll set.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: no pointers; a negative result is an error.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        CLOSED.with(|c| c.watching.set(true));
        Ok(Self {
            // SAFETY: just created, owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            fds: Vec::new(),
            pending: Vec::new(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS],
        })
    }

    /// Forgets the descriptors closed since the last call: the kernel took
    /// them out of the set, and their numbers may come back as new ones.
    fn forget_closed(&mut self) {
        CLOSED.with(|c| {
            for fd in c.fds.borrow_mut().drain(..) {
                if let Some(w) = usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)) {
                    debug_assert!(
                        w.read.is_empty() && w.write.is_empty(),
                        "descriptor {fd} closed with ops waiting"
                    );
                    w.added = false;
                    w.nonblocking = false;
                }
            }
        });
    }

    /// The waits of `fd`, added to the set first if it is not yet (and made
    /// non-blocking if `nonblocking`).
    fn watch(&mut self, fd: RawFd, nonblocking: bool) -> io::Result<&mut Waits> {
        self.forget_closed();
        let index = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if index >= self.fds.len() {
            self.fds.resize_with(index + 1, Waits::default);
        }
        let epfd = self.fd.as_raw_fd();
        let w = &mut self.fds[index];
        if nonblocking && !w.nonblocking {
            let mut on: libc::c_int = 1;
            // SAFETY: FIONBIO reads one int from the pointer, valid here.
            if unsafe { libc::ioctl(fd, libc::FIONBIO, &mut on) } < 0 {
                return Err(io::Error::last_os_error());
            }
            w.nonblocking = true;
        }
        if !w.added {
            let mut event = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
                u64: index as u64,
            };
            // SAFETY: the event is read by the call, valid here.
            let r = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
            w.added = true;
        }
        Ok(w)
    }

    fn waits(&mut self, fd: RawFd) -> Option<&mut Waits> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i))
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // The numbers closed from now on concern no set of this thread.
        let _ = CLOSED.try_with(|c| {
            c.watching.set(false);
            c.fds.borrow_mut().clear();
        });
    }
}

/// Descriptors closed on this thread since the epoll set last looked.
struct Closed {
    /// Whether this thread runs an epoll set at all (else nothing is kept).
    watching: Cell<bool>,
    fds: RefCell<Vec<RawFd>>,
}

thread_local! {
    static CLOSED: Closed = const {
        Closed {
            watching: Cell::new(false),
            fds: RefCell::new(Vec::new()),
        }
    };
}

/// A descriptor ops run on: when it is dropped, and before it closes, its
/// number is given to the epoll set to forget (a no-op on io_uring).
#[derive(Debug)]
pub struct Watched<T: AsRawFd>(T);

impl<T: AsRawFd> Watched<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self(inner)
    }
}

impl<T: AsRawFd> Deref for Watched<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: AsRawFd> AsRawFd for Watched<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl<T: AsRawFd> Drop for Watched<T> {
    fn drop(&mut self) {
        let fd = self.0.as_raw_fd();
        let _ = CLOSED.try_with(|c| {
            if c.watching.get() {
                c.fds.borrow_mut().push(fd);
            }
        });
    }
}

impl Driver {
    fn epoll(&mut self) -> &mut Epoll {
        match &mut self.reactor {
            Reactor::Epoll(e) => e,
            Reactor::Uring(_) => unreachable!("an epoll op on the io_uring backend"),
        }
    }

    /// Starts `io` (slot `user_data`) under epoll: queues it on its
    /// descriptor, behind the ops waiting there. If none is, its queue is
    /// run just before the loop's next wait, with every other op submitted
    /// in the turn and in the order they were submitted: the turn's system
    /// calls go back to back, as the ring's one enter carries a turn's
    /// entries, and work is done in the order it came. An op that has to
    /// wait gets its deadline, `timeout` from when it first would block.
    pub(super) fn start_epoll(
        &mut self,
        user_data: u64,
        io: Io,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let fd = io.fd();
        let queued = {
            let w = self.epoll().watch(fd, io.needs_nonblocking())?;
            !w.queue(io.writes()).is_empty()
        };
        self.stats.submitted.add(1);
        let waiter = Waiter {
            user_data,
            io,
            timer: None,
            timeout,
        };
        let e = self.epoll();
        if let Some(w) = e.waits(fd) {
            w.queue(io.writes()).push_back(waiter);
            if !queued {
                e.pending.push((fd as usize, io.writes()));
            }
        }
        Ok(())
    }

    /// Attempts op `user_data` until it ends or would block; returns whether
    /// it still waits. A multishot receive delivers a completion per buffer
    /// and goes on reading until the call would block or its high water or
    /// the pool ends it; with `short_read_drains` (run for an input event
    /// that reported no hang-up or error), a read shorter than its buffer
    /// ends the round instead: the socket was emptied, and anything that
    /// arrives after it raises a new edge, so the read that would only
    /// return `EAGAIN` is spared. (Without an event, or after a hang-up,
    /// the end of stream may already be queued behind the bytes with no
    /// edge to come for it: those rounds read until `EAGAIN`.)
    fn run(&mut self, user_data: u64, io: Io, short_read_drains: bool) -> bool {
        let group = io.group().map(usize::from);
        let buffer_size = group
            .and_then(|g| self.pools.get(g))
            .map_or(0, |p| p.buffer_size() as usize);
        loop {
            let attempt = io.attempt(group.and_then(|g| self.pools.get(g)));
            let (result, buf) = match attempt {
                Attempt::WouldBlock => return true,
                Attempt::Done(result, buf) => (result, buf),
            };
            if result == -libc::ENOBUFS {
                self.stats.enobufs.add(1);
            }
            let more = matches!(io, Io::RecvMulti { .. }) && result > 0;
            let short = buf.as_ref().is_some_and(|b| b.len() < buffer_size);
            let Some((waiting, high_water)) = self.deliver(user_data, result, buf, !more) else {
                return false;
            };
            if !more {
                return false;
            }
            let high_water = match group.and_then(|g| self.pools.get(g)) {
                Some(pool) => pool.share(high_water),
                None => high_water,
            };
            if waiting >= high_water {
                // Where the kernel's receive would be cancelled: it ends,
                // and the stream re-arms once its consumer caught up.
                self.deliver(user_data, -libc::ECANCELED, None, true);
                return false;
            }
            if short_read_drains && short {
                return true;
            }
        }
    }

    /// Puts a completion in slot `user_data` and wakes its owner; `last`
    /// ends the op. Returns how many completions now wait there and the
    /// slot's high water, or `None` if the slot is gone (its buffer goes
    /// back to the pool).
    fn deliver(
        &mut self,
        user_data: u64,
        result: i32,
        buf: Option<crate::buf::BufHandle>,
        last: bool,
    ) -> Option<(usize, usize)> {
        self.stats.completed.add(1);
        let (key, _, generation) = decode(user_data);
        let Some(slot) = self
            .slots
            .get_mut(key)
            .filter(|s| s.generation == generation)
        else {
            self.spare_bufs.extend(buf);
            return None;
        };
        let flags = if last { 0 } else { CQE_F_MORE };
        slot.completions
            .push_back(Completion { result, flags, buf });
        slot.finished = last;
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
        Some((slot.completions.len(), slot.high_water))
    }

    /// Takes op `user_data` out of its descriptor's queue, and its deadline
    /// out of the timers. Returns whether it was waiting.
    pub(super) fn withdraw(&mut self, user_data: u64) -> bool {
        match self.take_waiter(user_data) {
            Some(waiter) => {
                if let Some(timer) = waiter.timer {
                    self.timers.remove(timer);
                }
                true
            }
            None => false,
        }
    }

    /// Takes op `user_data` out of its descriptor's queue, if it waits
    /// there (a finished op waits nowhere).
    fn take_waiter(&mut self, user_data: u64) -> Option<Waiter> {
        let (key, _, generation) = decode(user_data);
        let fd = match self.slots.get(key) {
            Some(s) if s.generation == generation && !s.finished => s.fd,
            _ => return None,
        };
        let w = self.epoll().waits(fd)?;
        [false, true].into_iter().find_map(|writes| {
            let queue = w.queue(writes);
            let i = queue.iter().position(|x| x.user_data == user_data)?;
            queue.remove(i)
        })
    }

    /// Ends op `user_data` now with `ECANCELED`, as a cancel would (a
    /// lowered high water, shutdown).
    pub(super) fn stop_waiting(&mut self, user_data: u64) {
        if self.withdraw(user_data) {
            self.deliver(user_data, -libc::ECANCELED, None, true);
        }
    }

    /// Runs the ops waiting on the descriptor of one event, in order, while
    /// they can run.
    fn ready(&mut self, index: usize, writes: bool, short_read_drains: bool) {
        loop {
            let front = match self.epoll().fds.get_mut(index) {
                Some(w) => w.queue(writes).front().copied(),
                None => None,
            };
            let Some(waiter) = front else { return };
            if self.run(waiter.user_data, waiter.io, short_read_drains) {
                if let (None, Some(t)) = (waiter.timer, waiter.timeout) {
                    let key = self.timers.insert_op(self.now + t, waiter.user_data);
                    if let Some(front) = self
                        .epoll()
                        .fds
                        .get_mut(index)
                        .and_then(|w| w.queue(writes).front_mut())
                    {
                        front.timer = Some(key);
                    }
                }
                return;
            }
            // It ended: out of the queue (nothing else touched the queue
            // meanwhile), and its deadline with it.
            if let Some(w) = self.epoll().fds.get_mut(index) {
                w.queue(writes).pop_front();
            }
            if let Some(timer) = waiter.timer {
                self.timers.remove(timer);
            }
        }
    }

    /// One turn on epoll: waits for readiness (if `wait`, until the
    /// earliest timer or `limit`), runs the ops their events let run, ends
    /// the ops whose deadline passed and wakes the tasks whose timers are
    /// due.
    pub(super) fn turn_epoll(&mut self, wait: bool, limit: Option<Duration>) -> io::Result<()> {
        // Running a queue wakes tasks but submits nothing, so no queue is
        // added meanwhile; the list goes back empty, its capacity kept.
        let mut pending = std::mem::take(&mut self.epoll().pending);
        for &(index, writes) in &pending {
            self.ready(index, writes, false);
        }
        pending.clear();
        debug_assert!(
            self.epoll().pending.is_empty(),
            "a queue added while queues ran"
        );
        self.epoll().pending = pending;
        let wait = wait && !crate::rt::executor::has_ready();
        let timeout_ms = if wait {
            let until_timer = self
                .timers
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            match (until_timer, limit) {
                (Some(a), Some(b)) => millis_up(a.min(b)),
                (Some(a), None) | (None, Some(a)) => millis_up(a),
                (None, None) => -1,
            }
        } else {
            0
        };
        if wait {
            let ran = Instant::now().saturating_duration_since(self.awake_since);
            self.stats
                .busy_ns
                .add(u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX));
        }
        self.stats.enters.add(1);
        let n = {
            let e = self.epoll();
            // SAFETY: the buffer holds `events.len()` entries the call may
            // write.
            let n = unsafe {
                libc::epoll_wait(
                    e.fd.as_raw_fd(),
                    e.events.as_mut_ptr(),
                    e.events.len() as libc::c_int,
                    timeout_ms,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(err);
                }
                self.stats.enter_retries.add(1);
                0
            } else {
                n as usize
            }
        };
        self.now = Instant::now();
        if wait {
            self.awake_since = self.now;
        }
        for i in 0..n {
            let (bits, index) = {
                let ev = self.epoll().events[i];
                (ev.events, ev.u64 as usize)
            };
            let input = (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as u32;
            let output = (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32;
            let closing = (libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as u32;
            if bits & input != 0 {
                self.ready(index, false, bits & closing == 0);
            }
            if bits & output != 0 {
                self.ready(index, true, false);
            }
        }
        self.expire_due();
        Ok(())
    }

    /// Wakes the tasks whose timers are due and ends the ops whose
    /// deadline passed.
    fn expire_due(&mut self) {
        self.timers.expire(self.now);
        let mut due = std::mem::take(&mut self.expired_ops);
        self.timers.take_due_ops(&mut due);
        for user_data in due.drain(..) {
            self.expire_op(user_data);
        }
        self.expired_ops = due;
    }

    /// Ends op `user_data`, whose deadline passed, with `ECANCELED` (its
    /// timer is gone already).
    fn expire_op(&mut self, user_data: u64) {
        if self.take_waiter(user_data).is_some() {
            self.deliver(user_data, -libc::ECANCELED, None, true);
        }
    }
}

/// `d` in whole milliseconds, rounded up so that a deadline is never
/// early, as `epoll_wait` takes it.
fn millis_up(d: Duration) -> libc::c_int {
    let ms = d.as_nanos().div_ceil(1_000_000);
    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
}
