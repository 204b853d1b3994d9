//! One provided buffer ring: its memory, its entries, and the policy that
//! keeps it from running dry.
//!
//! **Why it cannot be starved.** Two rules bound what any set of
//! connections can hold:
//!
//! - *Fair high water.* A multishot receive stops once it has a number of
//!   completions waiting that its consumer has not taken (its high water).
//!   The reactor asks [`BufPool::share`] for that number at each completion:
//!   the full high water while at least half the ring is free, then
//!   proportionally less, down to two buffers, so the more connections hold
//!   buffers, the fewer each may hold.
//! - *Reserve.* Once fewer than [`BufPool::reserve`] buffers are free, every
//!   buffer the kernel fills is copied out at once into memory of the exact
//!   size received and goes straight back to the ring ([`BufPool::claim`]).
//!   From then on no connection holds a ring buffer for longer than one
//!   completion takes to reap, however slow its reader: ring buffers held
//!   before the reserve was reached can only come back, so the ring never
//!   stays empty and a victim's receive always finds a buffer (at worst
//!   after one `ENOBUFS` re-arm). A client trickling one byte per segment
//!   then costs one byte of heap per segment, not a 32 KiB buffer.
//!
//! Copying is what the proxy otherwise never does; it happens only under
//! that pressure and is counted (`copied`, `copied_bytes`), so an operator
//! sees it and can size the ring (`runtime.buffer_count`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::task::Waker;

use io_uring::types::BufRingEntry;

use super::handle::BufHandle;
use crate::counter::counters;
use crate::counter::vocabulary::Cli::Listed;

/// Why a buffer ring could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BufPoolError {
    /// `mmap` refused the memory.
    #[error("cannot map {bytes} bytes for the buffer ring: {source}")]
    Map {
        /// Bytes asked for.
        bytes: usize,
        /// What the kernel said.
        source: io::Error,
    },
    /// The kernel refused to register the ring.
    #[error("cannot register the provided buffer ring (needs Linux 5.19 or later): {0}")]
    Register(io::Error),
    /// Count or size out of range.
    #[error("buffer ring of {count} buffers of {size} bytes is not valid: {reason}")]
    Shape {
        /// Buffers asked for.
        count: u16,
        /// Bytes per buffer.
        size: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One worker's provided buffer ring and the memory of its buffers.
///
/// Lives on one thread (it is `!Send` through `Rc`/`Cell`); the kernel is
/// the only other party, and it only reads ring entries below the tail we
/// publish and writes into buffers it took from the ring.
pub struct BufPool {
    /// Ring of `count` entries, shared with the kernel.
    ring: NonNull<BufRingEntry>,
    ring_bytes: usize,
    /// `count * size` bytes of buffer memory.
    mem: NonNull<u8>,
    mem_bytes: usize,
    count: u16,
    size: u32,
    group: u16,
    /// Our copy of the tail; the kernel reads the one in the ring.
    tail: Cell<u16>,
    /// The head, when no kernel takes buffers from the ring (epoll): the
    /// next free buffer a receive reads into. (Registered, the kernel
    /// keeps the head.)
    head: Cell<u16>,
    /// Buffers currently in the ring (not lent out).
    available: Cell<u32>,
    /// Below this many free buffers, filled buffers are copied out at once.
    reserve: u32,
    /// Tasks waiting for a buffer to come back after `ENOBUFS`, oldest
    /// first, each once.
    waiters: RefCell<VecDeque<Waker>>,
    /// Whether the kernel may still reference the memory (registered).
    registered: Cell<bool>,
    /// What the control side reads.
    counters: Arc<PoolCounters>,
}

counters! {
    /// A copy of one buffer ring's counters at one moment.
    pub struct PoolStats;
    /// The live counters of one buffer ring: written by its worker only,
    /// readable from any thread (see [`crate::counter::Counter`]).
    /// Declared once, like the worker's (see [`crate::counter::vocabulary`]);
    /// shown per worker and [`Group`](super::Group).
    pub struct PoolCounters;
    exposed {
        /// Buffers lent out now.
        in_use: Gauge, "in_use", "ringway_buffers_in_use", Listed,
            "Receive buffers lent out of the ring now.";
        /// Buffers in the ring (fixed once built).
        capacity: Gauge, "capacity", "ringway_buffers_capacity", Listed,
            "Receive buffers in the ring.";
        /// Receives that found the ring empty (`ENOBUFS`) and were re-armed.
        enobufs: Counter, "enobufs", "ringway_buffer_enobufs_total", Listed,
            "Receives that found the ring empty (ENOBUFS) and were re-armed.";
        /// Buffers copied out because the ring was below its reserve.
        copied: Counter, "copied", "ringway_buffer_copied_total", Listed,
            "Received buffers copied out because the ring was below its reserve.";
        /// Bytes copied out for that reason.
        copied_bytes: Counter, "copied_bytes", "ringway_buffer_copied_bytes_total", Listed,
            "Bytes copied out because the ring was below its reserve.";
    }
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("group", &self.group)
            .field("count", &self.count)
            .field("size", &self.size)
            .field("available", &self.available.get())
            .field("reserve", &self.reserve)
            .finish()
    }
}

impl BufPool {
    /// Maps memory for `count` buffers of `size` bytes, fills the ring with
    /// all of them, and registers it with `submitter` as buffer group `group`.
    /// The pool writes its figures into `counters`.
    pub fn new(
        submitter: &io_uring::Submitter<'_>,
        group: u16,
        count: u16,
        size: u32,
        counters: Arc<PoolCounters>,
    ) -> Result<Rc<Self>, BufPoolError> {
        let pool = Self::map(group, count, size, counters)?;
        // SAFETY: the ring is page-aligned (fresh mmap), `count` entries long,
        // initialised by `map`, and stays mapped until `Drop`, which
        // unregisters it first (or leaks it, see `Drop`).
        let registered = unsafe {
            submitter.register_buf_ring_with_flags(pool.ring.as_ptr() as u64, count, group, 0)
        };
        registered.map_err(BufPoolError::Register)?;
        pool.registered.set(true);
        Ok(Rc::new(pool))
    }

    /// A pool of the same shape that no kernel ring takes buffers from:
    /// receives take them at its head themselves ([`BufPool::head`]), which
    /// is how the epoll backend reads into pool memory.
    pub fn unregistered(
        group: u16,
        count: u16,
        size: u32,
        counters: Arc<PoolCounters>,
    ) -> Result<Rc<Self>, BufPoolError> {
        Ok(Rc::new(Self::map(group, count, size, counters)?))
    }

    /// Maps the memory and fills the ring with every buffer.
    fn map(
        group: u16,
        count: u16,
        size: u32,
        counters: Arc<PoolCounters>,
    ) -> Result<Self, BufPoolError> {
        if count == 0 || !count.is_power_of_two() || count > 32768 {
            return Err(BufPoolError::Shape {
                count,
                size,
                reason: "the count must be a power of two between 1 and 32768",
            });
        }
        if size == 0 {
            return Err(BufPoolError::Shape {
                count,
                size,
                reason: "the size must not be zero",
            });
        }
        let ring_bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        let mem_bytes = usize::from(count) * size as usize;
        let ring = map_anonymous(ring_bytes)?.cast::<BufRingEntry>();
        let mem = match map_anonymous(mem_bytes) {
            Ok(mem) => mem,
            Err(e) => {
                unmap(ring.cast(), ring_bytes);
                return Err(e);
            }
        };
        let pool = Self {
            ring,
            ring_bytes,
            mem,
            mem_bytes,
            count,
            size,
            group,
            tail: Cell::new(0),
            head: Cell::new(0),
            available: Cell::new(0),
            reserve: reserve_of(count),
            waiters: RefCell::new(VecDeque::new()),
            registered: Cell::new(false),
            counters,
        };
        for bid in 0..count {
            pool.push(bid);
        }
        pool.publish_tail();
        pool.available.set(u32::from(count));
        pool.counters.capacity.set(u64::from(count));
        Ok(pool)
    }

    /// The free buffer at the head of an unregistered pool: its id, its
    /// memory and its size; `None` when every buffer is lent out.
    pub(crate) fn head(&self) -> Option<(u16, *mut u8, u32)> {
        debug_assert!(
            !self.registered.get(),
            "the kernel owns a registered ring's head"
        );
        if self.available.get() == 0 {
            return None;
        }
        let index = usize::from(self.head.get() & (self.count - 1));
        // SAFETY: `index < count`, inside the ring mapping; the entry lies
        // between head and tail, written by `push` and not written again
        // until it is taken and given back.
        let bid = unsafe { &*self.ring.as_ptr().add(index) }.bid();
        // SAFETY: `bid < count` (only `push` writes ids), inside `mem`.
        let ptr = unsafe { self.mem.as_ptr().add(usize::from(bid) * self.size as usize) };
        Some((bid, ptr, self.size))
    }

    /// Takes the buffer [`BufPool::head`] named out of the ring; the caller
    /// then [`BufPool::claim`]s it with what it received.
    pub(crate) fn take_head(&self) {
        self.head.set(self.head.get().wrapping_add(1));
    }

    /// The buffer group id to put in recv SQEs.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> u32 {
        self.size
    }

    /// Buffers in the ring right now.
    pub fn available(&self) -> u32 {
        self.available.get()
    }

    /// Total buffers.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Free buffers below which filled ones are copied out (see the module
    /// docs).
    pub fn reserve(&self) -> u32 {
        self.reserve
    }

    /// The high water a multishot receive that asked for `wanted` buffers
    /// may have now: all of them while at least half the ring is free, then
    /// proportionally fewer as it drains, never less than two (or `wanted`,
    /// if less). Not one: a receive stops once that many completions wait,
    /// so a high water of one would stop and re-arm every stream after each
    /// buffer, victims that keep up included, at a cancel, a re-arm and a
    /// loop turn a buffer.
    #[inline]
    pub(crate) fn share(&self, wanted: usize) -> usize {
        let free = self.available.get() as usize;
        let half = usize::from(self.count / 2).max(1);
        if free >= half {
            wanted
        } else {
            (wanted * free / half).max(wanted.min(2))
        }
    }

    /// Takes ownership of buffer `bid` which the kernel filled with `len`
    /// bytes, as reported by a completion. Below the reserve the bytes are
    /// copied out and the buffer goes back to the ring at once.
    ///
    /// Only the completion path of the reactor calls this, once per buffer
    /// id the kernel hands out.
    pub(crate) fn claim(self: &Rc<Self>, bid: u16, len: u32) -> BufHandle {
        debug_assert!(
            bid < self.count,
            "kernel reported buffer id {bid} out of range"
        );
        let len = len.min(self.size);
        self.available.set(self.available.get().saturating_sub(1));
        self.counters.in_use.add(1);
        if self.available.get() < self.reserve {
            let copy: Box<[u8]> = self.bytes(bid, len).into();
            self.counters.copied.add(1);
            self.counters.copied_bytes.add(u64::from(len));
            self.recycle(bid);
            return BufHandle::copied(copy);
        }
        BufHandle::ring(Rc::clone(self), bid, len)
    }

    /// Registers `waker` to be woken when a buffer returns to the ring. A
    /// waker already waiting is not queued twice.
    pub fn wait_for_buffer(&self, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push_back(waker.clone());
        }
    }

    /// Counts a receive that found the ring empty.
    pub(crate) fn count_enobufs(&self) {
        self.counters.enobufs.add(1);
    }

    /// Tasks waiting for a buffer.
    pub fn waiting(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Called by the reactor before it tears the ring down: from now on the
    /// kernel no longer references our memory.
    pub(crate) fn unregister(&self, submitter: &io_uring::Submitter<'_>) -> io::Result<()> {
        if self.registered.get() {
            submitter.unregister_buf_ring(self.group)?;
            self.registered.set(false);
        }
        Ok(())
    }

    /// Puts buffer `bid` back in the ring and wakes as many of the tasks
    /// that have waited longest as there are free buffers: waking them all
    /// would have every one of them re-arm a receive for one buffer, and
    /// waking just one could hand the wake to a task that no longer waits
    /// (dropped, or gone on through a timer), stranding a real waiter while
    /// buffers sit free.
    pub(super) fn recycle(&self, bid: u16) {
        self.push(bid);
        self.publish_tail();
        self.available.set(self.available.get() + 1);
        self.counters.in_use.sub(1);
        for _ in 0..self.available.get() {
            let next = self.waiters.borrow_mut().pop_front();
            let Some(w) = next else { break };
            w.wake();
        }
    }

    /// Writes entry `bid` at our tail without publishing it.
    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        let index = usize::from(tail & (self.count - 1));
        // SAFETY: `index < count`, so the entry lies inside the ring mapping.
        // The kernel only reads entries between its head and the published
        // tail; this slot is past the published tail, so nobody else reads it
        // while we write.
        let entry = unsafe { &mut *self.ring.as_ptr().add(index) };
        // SAFETY: `bid < count`, so the buffer lies inside `mem`.
        let addr = unsafe { self.mem.as_ptr().add(usize::from(bid) * self.size as usize) };
        entry.set_addr(addr as u64);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail.set(tail.wrapping_add(1));
    }

    /// Makes every pushed entry visible to the kernel.
    fn publish_tail(&self) {
        // SAFETY: the ring base is valid and its first entry initialised, so
        // `tail` points at the ring's tail field, a u16 the kernel reads
        // concurrently; we only access it atomically.
        let tail = unsafe { &*BufRingEntry::tail(self.ring.as_ptr()).cast::<AtomicU16>() };
        tail.store(self.tail.get(), Ordering::Release);
    }

    /// The bytes of buffer `bid`, `len` long.
    pub(super) fn bytes(&self, bid: u16, len: u32) -> &[u8] {
        // SAFETY: `bid < count` and `len <= size` (enforced in `claim`), so
        // the slice lies in `mem`. The buffer is lent out through exactly one
        // `BufHandle`, the kernel finished writing it before posting the
        // completion we claimed it from, and it is not in the ring, so no one
        // writes it while the handle lives.
        unsafe {
            std::slice::from_raw_parts(
                self.mem.as_ptr().add(usize::from(bid) * self.size as usize),
                len as usize,
            )
        }
    }

    /// The bytes of buffer `bid`, `len` long, for writing: through the
    /// handle that holds it, and only that one (see [`BufHandle::as_mut_slice`]).
    #[allow(clippy::mut_from_ref)] // exclusive through the one handle, argued below
    pub(super) fn bytes_mut(&self, bid: u16, len: u32) -> &mut [u8] {
        // SAFETY: as in `bytes`; besides, the caller holds the buffer's one
        // `BufHandle` mutably, so no other reference to these bytes exists
        // while the returned slice lives, and the kernel does not write a
        // buffer that is not in the ring.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.mem.as_ptr().add(usize::from(bid) * self.size as usize),
                len as usize,
            )
        }
    }
}

impl Drop for BufPool {
    fn drop(&mut self) {
        if self.registered.get() {
            // The ring is still registered: an op we lost track of could make
            // the kernel write here. Leak the memory rather than risk that;
            // this happens only at worker exit when a drain did not finish.
            return;
        }
        unmap(self.ring.cast(), self.ring_bytes);
        unmap(self.mem, self.mem_bytes);
    }
}

/// The reserve of a ring of `count` buffers: an eighth of it (32 of the
/// default 256), at least one. Enough that the buffers the kernel fills
/// between two reaps rarely empty it; small enough that the copying it
/// triggers starts only when the ring is nearly all lent out.
fn reserve_of(count: u16) -> u32 {
    (u32::from(count) / 8).max(1)
}

fn map_anonymous(bytes: usize) -> Result<NonNull<u8>, BufPoolError> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing aliases nothing; the result is checked before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(BufPoolError::Map {
            bytes,
            source: io::Error::last_os_error(),
        });
    }
    NonNull::new(ptr.cast()).ok_or(BufPoolError::Map {
        bytes,
        source: io::Error::other("mmap returned null"),
    })
}

fn unmap(ptr: NonNull<u8>, bytes: usize) {
    // SAFETY: `ptr`/`bytes` describe a mapping made by `map_anonymous` that
    // nothing references any more (the caller's invariant).
    unsafe {
        libc::munmap(ptr.as_ptr().cast(), bytes);
    }
}
