//! The handoff under contention: a publisher thread puts an increasing
//! sequence as fast as it can while a consumer thread takes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use super::Handoff;

/// A value that counts its drops, to catch double frees and leaks.
struct Tracked {
    generation: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_slot_is_a_lock_free_atomic() {
    assert!(Handoff::<u64>::is_lock_free());
    assert!(Handoff::<crate::table::Table>::is_lock_free());
}

#[test]
fn take_on_an_empty_slot_returns_nothing() {
    let slot = Handoff::<u64>::new();
    assert!(slot.take().is_none());
    assert!(slot.put(Arc::new(1)).is_none());
    assert_eq!(slot.take().as_deref(), Some(&1));
    assert!(slot.take().is_none());
}

#[test]
fn the_latest_put_wins_and_the_displaced_one_is_returned() {
    let slot = Handoff::new();
    assert!(slot.put(Arc::new(1)).is_none());
    let displaced = slot
        .put(Arc::new(2))
        .expect("the first value was never taken");
    assert_eq!(*displaced, 1);
    assert_eq!(slot.take().as_deref(), Some(&2));
}

#[test]
fn no_update_is_lost_none_is_freed_twice_and_the_last_always_wins() {
    const PUTS: u64 = 200_000;
    let slot = Arc::new(Handoff::<Tracked>::new());
    let drops = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let consumer = {
        let slot = Arc::clone(&slot);
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut last = 0;
            let mut taken = 0u64;
            // What the consumer holds stays valid while it holds it, even as
            // the publisher keeps putting.
            let mut held: Option<Arc<Tracked>> = None;
            loop {
                let finished = done.load(Ordering::Acquire);
                if let Some(value) = slot.take() {
                    assert!(
                        value.generation > last,
                        "generation went backwards: {} after {last}",
                        value.generation
                    );
                    last = value.generation;
                    taken += 1;
                    if let Some(old) = &held {
                        assert!(old.generation < value.generation);
                    }
                    held = Some(value);
                } else if finished {
                    break;
                }
            }
            (last, taken)
        })
    };

    let mut displaced = 0u64;
    for generation in 1..=PUTS {
        let value = Arc::new(Tracked {
            generation,
            drops: Arc::clone(&drops),
        });
        if slot.put(value).is_some() {
            displaced += 1;
        }
    }
    done.store(true, Ordering::Release);
    let (last, taken) = consumer.join().expect("consumer panicked");

    // Once the publisher stops, the consumer ends on the last generation:
    // a later value is never hidden behind an earlier one.
    assert_eq!(last, PUTS);
    // Every value was either taken or displaced, exactly once.
    assert_eq!(taken + displaced, PUTS);
    assert!(slot.take().is_none());
    // ...and every value was freed exactly once.
    assert_eq!(drops.load(Ordering::SeqCst), PUTS as usize);
}
