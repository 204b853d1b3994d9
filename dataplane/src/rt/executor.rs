//! A single-threaded executor for connection tasks.
//!
//! Tasks are `!Send` futures owned by the thread that spawned them. Wakers
//! carry only a task key and generation, packed into the waker's data word
//! (no allocation, no reference count: cloning one copies two words);
//! waking pushes that pair onto this thread's run queue. Cross-thread
//! wake-ups never happen on a worker (the control side reaches a worker
//! through its ring), so a waker used on another thread would only queue a
//! key there that names no task, or polls one for nothing.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use slab::Slab;

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// Identifies a spawned task, for [`abort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskId {
    key: usize,
    generation: u32,
}

struct TaskSlot {
    generation: u32,
    /// `None` while the task is being polled.
    future: Option<BoxFuture>,
    aborted: bool,
}

struct Executor {
    tasks: RefCell<Slab<TaskSlot>>,
    queue: RefCell<VecDeque<(usize, u32)>>,
    next_generation: Cell<u32>,
    main_woken: Cell<bool>,
}

thread_local! {
    static EXECUTOR: Executor = const { Executor {
        tasks: RefCell::new(Slab::new()),
        queue: RefCell::new(VecDeque::new()),
        next_generation: Cell::new(0),
        main_woken: Cell::new(true),
    } };
}

/// Key used by the waker of the future passed to `block_on`.
const MAIN: usize = u32::MAX as usize;

// The waker's data word holds a key and a generation side by side.
const _: () = assert!(usize::BITS == 64, "ringway runs on 64-bit targets");

/// The waker of task `key` in its `generation`.
fn task_waker(key: usize, generation: u32) -> Waker {
    debug_assert!(key <= MAIN);
    let data = std::ptr::without_provenance::<()>((key << 32) | generation as usize);
    // SAFETY: the vtable's functions only read the data word as an integer
    // (it is never dereferenced), hold no resource (drop does nothing, clone
    // copies the word) and are sound on any thread: waking reaches the
    // calling thread's executor through a thread-local, or nothing.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| RawWaker::new(data, &VTABLE),
    wake_word,
    wake_word,
    |_| {},
);

/// Queues the task a waker's data word names.
fn wake_word(data: *const ()) {
    let word = data.addr();
    let (key, generation) = (word >> 32, word as u32);
    let _ = EXECUTOR.try_with(|e| {
        if key == MAIN {
            e.main_woken.set(true);
        } else {
            e.queue.borrow_mut().push_back((key, generation));
        }
    });
}

/// Runs `future` as a task on this thread's executor.
pub fn spawn<F: Future<Output = ()> + 'static>(future: F) -> TaskId {
    EXECUTOR.with(|e| {
        let generation = e.next_generation.get().wrapping_add(1);
        e.next_generation.set(generation);
        let mut tasks = e.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let key = entry.key();
        assert!(key < MAIN, "fewer than 4 billion tasks on one thread");
        entry.insert(TaskSlot {
            generation,
            future: Some(Box::pin(future)),
            aborted: false,
        });
        e.queue.borrow_mut().push_back((key, generation));
        TaskId { key, generation }
    })
}

/// Drops task `id`'s future (cancelling its ops) if it is still running.
pub fn abort(id: TaskId) {
    let dropped = EXECUTOR.with(|e| {
        let mut tasks = e.tasks.borrow_mut();
        match tasks.get_mut(id.key) {
            Some(slot) if slot.generation == id.generation => {
                if slot.future.is_some() {
                    Some(tasks.remove(id.key))
                } else {
                    // Being polled right now: drop it when the poll returns.
                    slot.aborted = true;
                    None
                }
            }
            _ => None,
        }
    });
    drop(dropped);
}

/// Polls task `id` again soon, as if its waker was woken (for tasks that
/// must look at shared state that changed, e.g. a drain beginning).
pub fn wake(id: TaskId) {
    EXECUTOR.with(|e| e.queue.borrow_mut().push_back((id.key, id.generation)));
}

/// Number of live tasks on this thread.
pub fn task_count() -> usize {
    EXECUTOR.with(|e| e.tasks.borrow().len())
}

pub(crate) fn main_waker() -> Waker {
    task_waker(MAIN, 0)
}

/// Marks the main future as woken, so that `block_on` polls it first.
pub(crate) fn wake_main() {
    EXECUTOR.with(|e| e.main_woken.set(true));
}

pub(crate) fn take_main_woken() -> bool {
    EXECUTOR.with(|e| e.main_woken.replace(false))
}

pub(crate) fn has_ready() -> bool {
    EXECUTOR.with(|e| e.main_woken.get() || !e.queue.borrow().is_empty())
}

/// Polls every task queued now (not those woken while doing so; the ring
/// gets a turn first).
pub(crate) fn run_ready() {
    let n = EXECUTOR.with(|e| e.queue.borrow().len());
    for _ in 0..n {
        let Some((key, generation)) = EXECUTOR.with(|e| e.queue.borrow_mut().pop_front()) else {
            break;
        };
        let taken = EXECUTOR.with(|e| {
            let mut tasks = e.tasks.borrow_mut();
            match tasks.get_mut(key) {
                Some(slot) if slot.generation == generation => {
                    slot.future.take().map(|f| (f, task_waker(key, generation)))
                }
                _ => None,
            }
        });
        let Some((mut future, waker)) = taken else {
            continue;
        };
        let mut cx = Context::from_waker(&waker);
        let done = future.as_mut().poll(&mut cx).is_ready();
        let finished = EXECUTOR.with(|e| {
            let mut tasks = e.tasks.borrow_mut();
            let slot = &mut tasks[key];
            if done || slot.aborted {
                Some(tasks.remove(key))
            } else {
                slot.future = Some(future);
                None
            }
        });
        // A finished task's slot (and an aborted one's future) drop here,
        // outside the borrow: their drop may abort or spawn other tasks.
        drop(finished);
    }
}

/// Drops every task (at runtime shutdown).
pub(crate) fn clear() {
    let all: Vec<TaskSlot> = EXECUTOR.with(|e| {
        e.queue.borrow_mut().clear();
        e.tasks.borrow_mut().drain().collect()
    });
    drop(all);
}

/// Polls `future` once with the main waker.
pub(crate) fn poll_main<F: Future>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    let mut cx = Context::from_waker(waker);
    future.poll(&mut cx)
}
