//! This worker's spare buffers for TLS: sealing buffers (an `Outgoing`
//! per send in flight) and receive stages (a record split between two
//! ring buffers). Taken and given back per send or per split record; a
//! pop and a push on the thread's own lists.

use std::cell::RefCell;

use crate::rt::net::Outgoing;

/// Spare buffers kept per list.
const MAX_SPARE: usize = 64;

/// A buffer that grew past this is freed rather than kept: one large send
/// does not pin its size for good.
const MAX_KEPT: usize = 256 * 1024;

thread_local! {
    static SEALS: RefCell<Vec<(Outgoing, usize)>> = const { RefCell::new(Vec::new()) };
    static STAGES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A sealing buffer, and how far its allocation has been written (see
/// [`crate::buf::Tail`]): a spare one, or a new one.
pub(super) fn take() -> (Outgoing, usize) {
    SEALS
        .try_with(|s| s.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| (Outgoing::with_capacity(16 * 1024), 0))
}

/// Gives a sealing buffer back, with how far its allocation was written.
pub(super) fn give_back(mut out: Outgoing, inited: usize) {
    if out.bytes_mut().capacity() > MAX_KEPT {
        return;
    }
    let _ = SEALS.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < MAX_SPARE {
            s.push((out, inited));
        }
    });
}

/// An empty stage: a spare one, or a new one.
pub(super) fn stage() -> Vec<u8> {
    STAGES
        .try_with(|s| s.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Gives an emptied stage back.
pub(super) fn give_back_stage(mut stage: Vec<u8>) {
    if stage.capacity() == 0 || stage.capacity() > MAX_KEPT {
        return;
    }
    stage.clear();
    let _ = STAGES.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < MAX_SPARE {
            s.push(stage);
        }
    });
}
