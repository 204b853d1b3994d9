//! What a request needs and an idle connection does not: the request and
//! response heads (each with its field vector), the buffer heads are
//! written into, and room to gather a head that spans reads. A connection
//! takes a set from its worker's free list when a request begins and gives
//! it back when the request is over, so the sets in use are the requests in
//! flight, not the connections open, and a set keeps the capacity it grew
//! to: in steady state a request allocates none of it.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use super::access_log::HeadNote;
use super::send::HeadBuf;
use super::tracing::Trace;
use crate::proto::h1::request::RequestHead;
use crate::proto::h1::response::ResponseHead;

/// Spare sets kept per worker; past it a set given back is freed. Spares
/// are the peak of requests in flight minus those in flight now: this
/// bounds what a past burst keeps (256 sets of about 3 KiB).
const MAX_SPARE: usize = 256;
/// The most room for a replay a spare set keeps.
const MAX_KEPT_ROOM: usize = 16 * 1024;

/// One request's parts.
#[derive(Debug)]
pub(super) struct Parts {
    /// The request head being handled.
    pub(super) req: RequestHead,
    /// The response head being forwarded.
    pub(super) resp: ResponseHead,
    /// Heads being written.
    pub(super) out: HeadBuf,
    /// Room to gather a request head that spans reads, lent to the
    /// client's receive side while the head is read.
    pub(super) scratch: Vec<u8>,
    /// Room to keep a request's head and body for a retry.
    pub(super) kept: Vec<u8>,
    /// Room for a path rewritten into its authorization form (listeners
    /// with authorization, paths not already in that form).
    pub(super) authz_path: Vec<u8>,
    /// The head's fields an access log record or a span needs (listeners
    /// with an access log, sampled requests).
    pub(super) note: HeadNote,
    /// The request's trace, on listeners with tracing.
    pub(super) trace: Option<Trace>,
}

thread_local! {
    /// The worker's spare sets. Boxed: a set is lent as one pointer (a
    /// connection holds a `Lent` between a head and a newer table), and
    /// lending and giving back move no more than that.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<Parts>>> = const { RefCell::new(Vec::new()) };
}

/// A set of parts lent from the free list; dropping it gives it back.
#[derive(Debug)]
pub(super) struct Lent(Option<Box<Parts>>);

impl Lent {
    /// A spare set, or a new one.
    pub(super) fn take() -> Self {
        let spare = SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten();
        Self(Some(spare.unwrap_or_else(|| {
            Box::new(Parts {
                req: RequestHead::new(),
                resp: ResponseHead::new(),
                out: HeadBuf::default(),
                scratch: Vec::new(),
                kept: Vec::new(),
                authz_path: Vec::new(),
                note: HeadNote::default(),
                trace: None,
            })
        })))
    }
}

impl Deref for Lent {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        self.0
            .as_deref()
            .expect("a lent set is there until dropped")
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut Parts {
        self.0
            .as_deref_mut()
            .expect("a lent set is there until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(mut parts) = self.0.take() else {
            return;
        };
        // A spare set does not keep a large body's room or a replay's head
        // buffer: 256 spares of 64 KiB would be 16 MiB a past burst holds.
        if parts.kept.capacity() > MAX_KEPT_ROOM {
            parts.kept = Vec::new();
        }
        if parts.authz_path.capacity() > MAX_KEPT_ROOM {
            parts.authz_path = Vec::new();
        }
        parts.out.shrink(MAX_KEPT_ROOM);
        let _ = SPARE.try_with(|s| {
            let mut spare = s.borrow_mut();
            if spare.len() < MAX_SPARE {
                spare.push(parts);
            }
        });
    }
}

/// Spare sets on this thread.
#[cfg(test)]
pub(super) fn spare() -> usize {
    SPARE.with(|s| s.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_given_back_is_the_next_one_lent() {
        let before = spare();
        let mut a = Lent::take();
        a.scratch.reserve(100);
        let addr = &*a as *const Parts as usize;
        drop(a);
        assert_eq!(spare(), before + 1);
        let b = Lent::take();
        assert_eq!(&*b as *const Parts as usize, addr);
        assert!(b.scratch.capacity() >= 100, "a set keeps what it grew to");
        assert_eq!(spare(), before);
    }
}
