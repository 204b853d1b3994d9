//! How many admin connections are open at once, and which one leaves when
//! one too many arrives.
//!
//! A connection waiting for a request costs next to nothing, so many may be
//! open; but not without bound. When every place is taken, the connection
//! that has waited longest for its request is asked to leave (it gets a
//! 408), so that clients doing nothing can never keep out one that asks
//! something, such as a kubelet's `/ready`. Connections being answered are
//! never asked to leave; only when every one is, is a newcomer turned away.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::conn::ConnState;

/// The places of a [`Gate`], and the connections holding them.
#[derive(Debug)]
pub(super) struct Gate {
    capacity: usize,
    open: RefCell<Vec<Rc<ConnState>>>,
    admitted: Cell<u64>,
}

/// A connection's place; given back when dropped.
#[derive(Debug)]
pub(super) struct Ticket {
    gate: Rc<Gate>,
    state: Rc<ConnState>,
}

impl Gate {
    /// A gate of `capacity` places.
    pub(super) fn new(capacity: usize) -> Rc<Self> {
        Rc::new(Self {
            capacity,
            open: RefCell::new(Vec::new()),
            admitted: Cell::new(0),
        })
    }

    /// A place for a connection just accepted, if one is free or can be
    /// freed; `None` when every place is held by a connection being
    /// answered.
    pub(super) fn admit(self: &Rc<Self>) -> Option<Ticket> {
        let mut open = self.open.borrow_mut();
        // Evicted connections are on their way out and hold no place.
        let held = open.iter().filter(|c| !c.is_evicted()).count();
        if held >= self.capacity {
            let oldest = open
                .iter()
                .filter_map(|c| Some((c.waiting_since()?, c)))
                .min_by_key(|(since, _)| *since)?;
            oldest.1.evict();
        }
        let seq = self.admitted.get();
        self.admitted.set(seq + 1);
        let state = Rc::new(ConnState::new(seq));
        open.push(Rc::clone(&state));
        Some(Ticket {
            gate: Rc::clone(self),
            state,
        })
    }
}

impl Ticket {
    /// The state of the connection holding the place.
    pub(super) fn state(&self) -> &Rc<ConnState> {
        &self.state
    }

    /// How many places the gate has.
    pub(super) fn capacity(&self) -> usize {
        self.gate.capacity
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate
            .open
            .borrow_mut()
            .retain(|c| !Rc::ptr_eq(c, &self.state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gate_evicts_the_longest_waiting_connection() {
        let gate = Gate::new(3);
        let tickets: Vec<Ticket> = (0..3)
            .map(|_| gate.admit().expect("a free place"))
            .collect();
        // The oldest is being answered: the next oldest leaves.
        let _ = tickets[0].state().request();
        let fourth = gate.admit().expect("a place freed");
        assert!(!tickets[0].state().is_evicted());
        assert!(tickets[1].state().is_evicted());
        assert!(!tickets[2].state().is_evicted());
        // An evicted connection holds no place and is not evicted twice.
        let _fifth = gate.admit().expect("a place freed");
        assert!(tickets[2].state().is_evicted());
        assert!(!fourth.state().is_evicted());
    }

    #[test]
    fn a_gate_full_of_answered_connections_turns_newcomers_away() {
        let gate = Gate::new(2);
        let tickets: Vec<Ticket> = (0..2)
            .map(|_| gate.admit().expect("a free place"))
            .collect();
        for t in &tickets {
            let _ = t.state().request();
        }
        assert!(gate.admit().is_none());
        drop(tickets);
        assert!(gate.admit().is_some(), "places are given back");
    }
}
