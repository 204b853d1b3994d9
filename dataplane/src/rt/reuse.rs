//! Futures kept in memory blocks that this thread's free lists hand out and
//! take back.
//!
//! A connection waiting for its next request needs little; a connection
//! handling one needs the futures of every step of it, the proxied exchange
//! above all (kilobytes). Inline in the connection's future, that largest
//! state sizes every connection, idle or not. Boxed per request, it costs an
//! allocation per request. [`Recycled`] puts the per-request future in a
//! block from a free list of blocks of its exact layout, and gives the
//! block back when the future is dropped: the blocks in use are the
//! requests in flight, and a worker in steady state allocates none.
//!
//! The lists are per thread (a worker is one thread), so taking and giving
//! back is a vector pop and push, with no lock and no atomic.

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Spare blocks kept per layout; past it a block is freed. Free blocks are
/// the peak of requests in flight minus those in flight now: this bounds
/// what a past burst keeps (256 exchanges of a few KiB: about a MiB).
const MAX_SPARE: usize = 256;

/// The spare blocks of one layout.
struct Bin {
    layout: Layout,
    free: Vec<NonNull<u8>>,
}

impl Drop for Bin {
    fn drop(&mut self) {
        for block in self.free.drain(..) {
            // SAFETY: every block in the list was allocated with
            // `self.layout` (see `take`) and is owned by the list alone.
            unsafe { alloc::dealloc(block.as_ptr(), self.layout) };
        }
    }
}

thread_local! {
    /// The free lists, one per layout in use (a handful).
    static BINS: RefCell<Vec<Bin>> = const { RefCell::new(Vec::new()) };
}

/// A block for `layout` (non-zero size): a spare one, or a new one.
fn take(layout: Layout) -> NonNull<u8> {
    let spare = BINS
        .try_with(|bins| {
            let mut bins = bins.borrow_mut();
            bins.iter_mut()
                .find(|b| b.layout == layout)
                .and_then(|b| b.free.pop())
        })
        .ok()
        .flatten();
    if let Some(block) = spare {
        return block;
    }
    // SAFETY: `layout` has a non-zero size (checked by the caller).
    let block = unsafe { alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Gives `block`, allocated for `layout`, back to the free list (or frees
/// it when the list is full or the thread is ending).
///
/// # Safety
/// `block` must come from [`take`] with the same `layout`, hold no live
/// value, and not be used again by the caller.
unsafe fn give_back(block: NonNull<u8>, layout: Layout) {
    let kept = BINS
        .try_with(|bins| {
            let mut bins = bins.borrow_mut();
            let index = match bins.iter().position(|b| b.layout == layout) {
                Some(i) => i,
                None => {
                    bins.push(Bin {
                        layout,
                        free: Vec::new(),
                    });
                    bins.len() - 1
                }
            };
            let bin = &mut bins[index];
            if bin.free.len() < MAX_SPARE {
                bin.free.push(block);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: per this function's contract, `block` was allocated for
        // `layout` and is no longer used.
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
    }
}

/// Runs `make` and keeps the future it returns in a block from this
/// thread's free list for its layout (see the module docs). Building the
/// future in a closure, once the block is at hand, lets the compiler write
/// it there directly rather than building it aside and copying it in.
pub fn recycled<F: Future>(make: impl FnOnce() -> F) -> Recycled<F> {
    let layout = Layout::new::<F>();
    if layout.size() == 0 {
        let ptr = NonNull::<F>::dangling();
        // SAFETY: a zero-sized value may be written through a dangling,
        // aligned pointer.
        unsafe { ptr.as_ptr().write(make()) };
        return Recycled {
            ptr,
            _owns: PhantomData,
        };
    }
    let ptr = take(layout).cast::<F>();
    // SAFETY: the block was allocated for `F`'s layout and holds no value.
    unsafe { ptr.as_ptr().write(make()) };
    Recycled {
        ptr,
        _owns: PhantomData,
    }
}

/// A future in a recycled block: see [`recycled`]. Dropping it drops the
/// future and returns the block.
#[must_use = "futures do nothing unless polled"]
pub struct Recycled<F> {
    /// The future, pinned in its block for as long as this handle lives.
    ptr: NonNull<F>,
    _owns: PhantomData<F>,
}

impl<F> fmt::Debug for Recycled<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recycled")
            .field("bytes", &std::mem::size_of::<F>())
            .finish()
    }
}

// The handle can move freely: the future it points at does not.
impl<F> Unpin for Recycled<F> {}

impl<F: Future> Future for Recycled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `ptr` points at a live `F` owned by this handle; it never
        // moves until it is dropped in place (see `Drop`), so it is pinned.
        let future = unsafe { Pin::new_unchecked(&mut *self.get_mut().ptr.as_ptr()) };
        future.poll(cx)
    }
}

impl<F> Drop for Recycled<F> {
    fn drop(&mut self) {
        // SAFETY: `ptr` points at a live `F` that this handle owns; it is
        // dropped here, once, in place.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
        let layout = Layout::new::<F>();
        if layout.size() > 0 {
            // SAFETY: the block came from `take` for this layout, and its
            // value was just dropped; the handle is going away.
            unsafe { give_back(self.ptr.cast(), layout) };
        }
    }
}

/// Spare blocks this thread keeps for futures of `F`'s layout.
#[cfg(test)]
fn spare_for<F>() -> usize {
    let layout = Layout::new::<F>();
    BINS.with(|bins| {
        bins.borrow()
            .iter()
            .find(|b| b.layout == layout)
            .map_or(0, |b| b.free.len())
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::{poll_fn, Future};
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Counts its drops.
    struct Dropped(Rc<Cell<u32>>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    fn step<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_block_is_reused_for_the_next_future_of_its_layout() {
        let drops = Rc::new(Cell::new(0));
        let make = |n: u64| {
            let guard = Dropped(Rc::clone(&drops));
            async move {
                let big = [n; 64];
                poll_fn(|_| Poll::<()>::Pending).await;
                drop(guard);
                big[0]
            }
        };
        let first = recycled(|| make(1));
        let addr = first.ptr.as_ptr() as usize;
        drop(first);
        assert_eq!(drops.get(), 1, "the future is dropped with its handle");
        let mut second = recycled(|| make(2));
        assert_eq!(second.ptr.as_ptr() as usize, addr, "the block is reused");
        assert!(step(Pin::new(&mut second)).is_pending());
        drop(second);
        assert_eq!(drops.get(), 2);
    }

    #[test]
    fn spare_blocks_are_bounded() {
        type Big = [u64; 33];
        let make = || async {
            let big: Big = [0; 33];
            poll_fn(|_| Poll::<()>::Pending).await;
            big[0]
        };
        let held: Vec<_> = (0..MAX_SPARE + 10).map(|_| recycled(make)).collect();
        drop(held);
        fn spare_like<F: Future>(_: &Recycled<F>) -> usize {
            spare_for::<F>()
        }
        let probe = recycled(make);
        assert_eq!(spare_like(&probe), MAX_SPARE - 1);
    }

    #[test]
    fn a_recycled_future_runs_to_its_output_and_can_move() {
        let value = Rc::new(Cell::new(0));
        let seen = Rc::clone(&value);
        let mut turns = 0;
        let r = recycled(|| async move {
            poll_fn(|_| {
                turns += 1;
                if turns < 2 {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            seen.set(7);
            "done"
        });
        let mut r = r;
        assert!(step(Pin::new(&mut r)).is_pending());
        // Moving the handle does not move the future.
        let mut moved = pin!(r);
        assert!(matches!(step(moved.as_mut()), Poll::Ready("done")));
        assert_eq!(value.get(), 7);
    }

    #[test]
    fn zero_sized_futures_take_no_block() {
        let r = recycled(|| poll_fn(|_| Poll::Ready(())));
        assert_eq!(std::mem::size_of_val(&r), std::mem::size_of::<usize>());
        let mut r = r;
        assert!(step(Pin::new(&mut r)).is_ready());
    }
}
