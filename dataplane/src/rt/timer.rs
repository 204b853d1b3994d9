//! A worker's timers: every deadline its tasks wait for, in one min-heap,
//! enforced by the timeout of the ring's own wait.
//!
//! A timer per connection used to be a ring timeout op: a boxed timespec, a
//! slot in the driver and two completions (its expiry or its cancel) each
//! time one was armed. Here a timer is two small records in this thread's
//! memory, and the loop's one `io_uring_enter` waits at most until the
//! earliest deadline: no op, no completion, no allocation in steady state
//! (the heap and the slab keep their capacity).
//!
//! Why a heap and not a timing wheel: timers here are re-armed lazily (see
//! [`super::time::Alarm`]): a deadline that moves later costs nothing until
//! the earlier one passes, so a keep-alive connection touches the heap about
//! once per timeout period, not once per request, and `O(log n)` on that is
//! noise. What the heap gives in exchange is the exact next deadline, so an
//! idle worker sleeps until something is due, where a wheel's ticks would
//! wake it for slots whose timers belong to later rounds.

use std::task::Waker;
use std::time::Instant;

use slab::Slab;

/// Identifies one timer.
pub(crate) type TimerKey = u32;

/// Not in the heap: fired (or never pushed).
const OFF_HEAP: u32 = u32::MAX;

/// A deadline in the heap.
#[derive(Debug, Clone, Copy)]
struct Node {
    at: Instant,
    key: TimerKey,
}

/// One timer's record.
#[derive(Debug)]
struct Entry {
    /// Woken when the deadline passes.
    waker: Option<Waker>,
    /// Or, for the deadline of an op under epoll (its linked timeout), the
    /// op's `user_data`, handed to the driver when it passes (0: none).
    op: u64,
    /// Its node's index in the heap, or [`OFF_HEAP`] once fired.
    pos: u32,
}

/// The timers of one thread.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: Vec<Node>,
    entries: Slab<Entry>,
    /// Ops whose deadline passed, for the driver to end.
    due_ops: Vec<u64>,
}

impl Timers {
    /// The earliest deadline, if any timer is armed.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        Some(self.heap.first()?.at)
    }

    /// Timers waiting for their deadline.
    pub(crate) fn armed(&self) -> usize {
        self.heap.len()
    }

    /// Arms a new timer for `at`.
    pub(crate) fn insert(&mut self, at: Instant, waker: &Waker) -> TimerKey {
        let key = self.entries.insert(Entry {
            waker: Some(waker.clone()),
            op: 0,
            pos: OFF_HEAP,
        });
        let key = TimerKey::try_from(key).expect("fewer than 4 billion timers on one thread");
        self.push(Node { at, key });
        key
    }

    /// Arms a timer that, at `at`, hands op `user_data` to the driver
    /// ([`Timers::take_due_ops`]) instead of waking a task: how epoll gives
    /// an op a linked timeout. Removed with [`Timers::remove`] when the op
    /// ends first.
    pub(crate) fn insert_op(&mut self, at: Instant, user_data: u64) -> TimerKey {
        let key = self.entries.insert(Entry {
            waker: None,
            op: user_data,
            pos: OFF_HEAP,
        });
        let key = TimerKey::try_from(key).expect("fewer than 4 billion timers on one thread");
        self.push(Node { at, key });
        key
    }

    /// The ops whose deadline passed since the last call, oldest first;
    /// their timers are gone.
    pub(crate) fn take_due_ops(&mut self, into: &mut Vec<u64>) {
        into.append(&mut self.due_ops);
    }

    /// Makes sure timer `key` wakes `waker` no later than `at`: re-arms a
    /// fired timer, brings an armed one forward if it was set later, and
    /// leaves one set earlier as it is (it wakes early; the owner then arms
    /// it again). Returns `false` if `key` names no timer.
    pub(crate) fn arm(&mut self, key: TimerKey, at: Instant, waker: &Waker) -> bool {
        let Some(entry) = self.entries.get_mut(key as usize) else {
            return false;
        };
        match &mut entry.waker {
            Some(w) if w.will_wake(waker) => {}
            w => *w = Some(waker.clone()),
        }
        let pos = entry.pos;
        if pos == OFF_HEAP {
            self.push(Node { at, key });
        } else if self.heap[pos as usize].at > at {
            self.heap[pos as usize].at = at;
            self.sift_up(pos as usize);
        }
        true
    }

    /// Whether timer `key` is in the heap (armed and not fired).
    #[cfg(test)]
    pub(crate) fn is_armed(&self, key: TimerKey) -> bool {
        self.entries
            .get(key as usize)
            .is_some_and(|e| e.pos != OFF_HEAP)
    }

    /// Removes timer `key`, fired or not.
    pub(crate) fn remove(&mut self, key: TimerKey) {
        let Some(entry) = self.entries.try_remove(key as usize) else {
            return;
        };
        if entry.pos != OFF_HEAP {
            self.take_node(entry.pos as usize);
        }
    }

    /// Fires every timer whose deadline is `now` or earlier: wakes its
    /// owner and takes it out of the heap (its record stays, for the owner
    /// to re-arm or remove).
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(first) = self.heap.first() {
            if first.at > now {
                break;
            }
            let key = first.key;
            self.take_node(0);
            let entry = &self.entries[key as usize];
            if entry.op != 0 {
                self.due_ops.push(entry.op);
                self.entries.remove(key as usize);
            } else if let Some(waker) = entry.waker.as_ref() {
                waker.wake_by_ref();
            }
        }
    }

    fn push(&mut self, node: Node) {
        let pos = self.heap.len();
        self.heap.push(node);
        self.entries[node.key as usize].pos = pos as u32;
        self.sift_up(pos);
    }

    /// Takes the node at `pos` out of the heap and marks its timer fired.
    fn take_node(&mut self, pos: usize) {
        let node = self.heap.swap_remove(pos);
        if let Some(entry) = self.entries.get_mut(node.key as usize) {
            entry.pos = OFF_HEAP;
        }
        if pos < self.heap.len() {
            // The last node moved into the hole: it may belong above or
            // below it.
            self.place(pos);
            let pos = self.sift_up(pos);
            self.sift_down(pos);
        }
    }

    /// Moves the node at `pos` up while it is earlier than its parent;
    /// returns where it ends.
    fn sift_up(&mut self, mut pos: usize) -> usize {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.heap[parent].at <= self.heap[pos].at {
                break;
            }
            self.heap.swap(parent, pos);
            self.place(pos);
            pos = parent;
        }
        self.place(pos);
        pos
    }

    /// Moves the node at `pos` down while a child is earlier.
    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].at < self.heap[left].at {
                right
            } else {
                left
            };
            if self.heap[pos].at <= self.heap[child].at {
                break;
            }
            self.heap.swap(pos, child);
            self.place(pos);
            pos = child;
        }
        self.place(pos);
    }

    /// Records in its entry where the node at `pos` now is.
    fn place(&mut self, pos: usize) {
        let key = self.heap[pos].key;
        self.entries[key as usize].pos = pos as u32;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&count), Waker::from(Arc::clone(&count)))
    }

    /// Checks the heap order and that every entry knows its place.
    fn check(t: &Timers) {
        for (i, node) in t.heap.iter().enumerate() {
            if i > 0 {
                assert!(t.heap[(i - 1) / 2].at <= node.at, "heap order at {i}");
            }
            assert_eq!(t.entries[node.key as usize].pos as usize, i);
        }
    }

    fn at(epoch: Instant, nanos: u64) -> Instant {
        epoch + Duration::from_nanos(nanos)
    }

    #[test]
    fn timers_fire_in_deadline_order_whatever_the_order_armed() {
        let epoch = Instant::now();
        let mut t = Timers::default();
        let (count, waker) = counter();
        // A scrambled order of 200 deadlines, some equal.
        let keys: Vec<_> = (0..200u64)
            .map(|i| t.insert(at(epoch, (i * 7919) % 101), &waker))
            .collect();
        check(&t);
        let mut last = 0;
        for step in 0..=101 {
            t.expire(epoch + Duration::from_nanos(step));
            check(&t);
            let fired = keys.iter().filter(|k| !t.is_armed(**k)).count();
            assert!(fired >= last);
            last = fired;
            if let Some(next) = t.next_deadline() {
                assert!(next > at(epoch, step));
            }
        }
        assert_eq!(last, 200);
        assert_eq!(count.0.load(Ordering::Relaxed), 200);
        assert_eq!(t.armed(), 0);
    }

    #[test]
    fn removal_and_rearming_keep_the_heap_whole() {
        let epoch = Instant::now();
        let mut t = Timers::default();
        let (count, waker) = counter();
        let keys: Vec<_> = (0..64u64)
            .map(|i| t.insert(at(epoch, 1000 + i * 3), &waker))
            .collect();
        for k in keys.iter().step_by(3) {
            t.remove(*k);
            check(&t);
        }
        // Later deadlines leave an armed timer where it is; an earlier one
        // brings it forward.
        assert!(t.arm(keys[1], at(epoch, 5000), &waker));
        assert!(t.arm(keys[2], at(epoch, 10), &waker));
        check(&t);
        assert_eq!(t.next_deadline(), Some(at(epoch, 10)));
        t.expire(epoch + Duration::from_nanos(10));
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(!t.is_armed(keys[2]));
        // A fired timer is armed again by `arm`.
        assert!(t.arm(keys[2], at(epoch, 20_000), &waker));
        assert!(t.is_armed(keys[2]));
        check(&t);
        t.remove(keys[2]);
        assert!(!t.arm(keys[2], at(epoch, 1), &waker));
        check(&t);
        assert_eq!(t.armed(), 64 - 22 - 1);
    }
}
