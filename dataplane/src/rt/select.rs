//! Waiting on two futures at once.
//!
//! [`Select`] and [`Join`] are written as structs rather than `async fn`s:
//! an `async fn` keeps its arguments in its state and then the pinned
//! copies it polls, so each future passed in would be stored twice
//! (rust-lang/rust#62958). A connection's future is mostly the futures it
//! waits on, so that doubling was most of its size. Here each future is
//! stored once, in place.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Which of two futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    /// The first one.
    Left(A),
    /// The second one.
    Right(B),
}

/// Polls both futures; completes with the output of the first to finish.
/// The other is dropped with the `Select` (which cancels its ops). The first
/// is polled first, so it wins when both are ready.
pub fn select<A: Future, B: Future>(a: A, b: B) -> Select<A, B> {
    Select { a, b }
}

/// See [`select`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Select<A, B> {
    a: A,
    b: B,
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `a` and `b` are structurally pinned: they are never moved
        // out of `self` (no method hands them out by value, and `Select`
        // has no `Drop` that could move them), so pinning `self` pins them.
        let (a, b) = unsafe {
            let this = self.get_unchecked_mut();
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
            )
        };
        if let Poll::Ready(x) = a.poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(x) = b.poll(cx) {
            return Poll::Ready(Either::Right(x));
        }
        Poll::Pending
    }
}

/// Runs both futures to completion, concurrently; completes with both
/// outputs.
pub fn join<A: Future, B: Future>(a: A, b: B) -> Join<A, B> {
    Join {
        a: Slot::Running(a),
        b: Slot::Running(b),
    }
}

/// See [`join`].
#[must_use = "futures do nothing unless polled"]
pub struct Join<A: Future, B: Future> {
    a: Slot<A>,
    b: Slot<B>,
}

/// One side of a [`Join`]: still running, finished (its output kept until
/// the other side finishes), or handed out.
enum Slot<F: Future> {
    Running(F),
    Done(F::Output),
    Taken,
}

impl<F: Future> Slot<F> {
    /// Polls the future if it still runs; whether the output is here.
    ///
    /// # Safety
    /// `self` must be pinned: a `Running` future is never moved until it is
    /// replaced, in place, by its output.
    unsafe fn poll_pinned(&mut self, cx: &mut Context<'_>) -> bool {
        if let Slot::Running(f) = self {
            // SAFETY: the caller keeps `self` pinned, and the future is
            // dropped in place (by the assignment below) rather than moved.
            let f = unsafe { Pin::new_unchecked(f) };
            match f.poll(cx) {
                Poll::Ready(out) => *self = Slot::Done(out),
                Poll::Pending => return false,
            }
        }
        true
    }

    fn state(&self) -> &'static str {
        match self {
            Slot::Running(_) => "running",
            Slot::Done(_) => "done",
            Slot::Taken => "taken",
        }
    }

    fn take(&mut self) -> Option<F::Output> {
        match std::mem::replace(self, Slot::Taken) {
            Slot::Done(out) => Some(out),
            _ => None,
        }
    }
}

impl<A: Future, B: Future> std::fmt::Debug for Join<A, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join")
            .field("a", &self.a.state())
            .field("b", &self.b.state())
            .finish()
    }
}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the slots are structurally pinned: a running future is
        // only ever polled in place or dropped in place (see
        // `Slot::poll_pinned`); only outputs, which need no pinning, are
        // moved out.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `this` is pinned (above).
        let a = unsafe { this.a.poll_pinned(cx) };
        // SAFETY: as above.
        let b = unsafe { this.b.poll_pinned(cx) };
        if !(a && b) {
            return Poll::Pending;
        }
        match (this.a.take(), this.b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            _ => panic!("a join polled again after it completed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::{poll_fn, ready, Future};
    use std::mem::size_of_val;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_first_ready_side_wins_and_the_left_one_on_a_tie() {
        let pending = poll_fn(|_| Poll::<u8>::Pending);
        let s = pin!(select(pending, ready(2u16)));
        assert!(matches!(poll_once(s), Poll::Ready(Either::Right(2))));
        let s = pin!(select(ready(1u8), ready(2u16)));
        assert!(matches!(poll_once(s), Poll::Ready(Either::Left(1))));
    }

    #[test]
    fn a_join_waits_for_both_and_polls_a_finished_side_no_more() {
        let mut polls = 0;
        let mut turns = 0;
        let slow = poll_fn(|_| {
            turns += 1;
            if turns < 3 {
                Poll::Pending
            } else {
                Poll::Ready("slow")
            }
        });
        let fast = poll_fn(|_| {
            polls += 1;
            Poll::Ready(7)
        });
        {
            let mut j = pin!(join(slow, fast));
            assert!(poll_once(j.as_mut()).is_pending());
            assert!(poll_once(j.as_mut()).is_pending());
            assert!(matches!(poll_once(j.as_mut()), Poll::Ready(("slow", 7))));
        }
        assert_eq!(polls, 1);
    }

    #[test]
    fn each_future_is_stored_once() {
        let big = async {
            let buf = [0u8; 1000];
            std::future::ready(()).await;
            buf.len()
        };
        let one = size_of_val(&big);
        let s = select(big, ready(()));
        assert!(size_of_val(&s) < one + 16, "{} for {one}", size_of_val(&s));
    }
}
