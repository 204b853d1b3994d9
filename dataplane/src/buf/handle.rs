//! A filled buffer lent out of a ring, the copy of one, or a block of the
//! worker's own that a transport filled.

use std::fmt;
use std::rc::Rc;

use super::pool::BufPool;

/// Received bytes: a ring buffer lent out (it returns to its ring when the
/// handle is dropped), or, when the ring was running low, a copy of what the
/// kernel wrote, the ring buffer having gone back at once.
pub struct BufHandle(Held);

enum Held {
    Ring {
        pool: Rc<BufPool>,
        bid: u16,
        len: u32,
    },
    Copied(Box<[u8]>),
    /// A block of this worker's free list (see [`super::spare`]), `len`
    /// bytes of it written; it goes back to the list when dropped.
    Pooled {
        block: Box<[u8]>,
        len: u32,
    },
}

impl BufHandle {
    pub(super) fn ring(pool: Rc<BufPool>, bid: u16, len: u32) -> Self {
        Self(Held::Ring { pool, bid, len })
    }

    pub(super) fn copied(bytes: Box<[u8]>) -> Self {
        Self(Held::Copied(bytes))
    }

    /// A handle that owns `bytes`.
    pub fn owned(bytes: Box<[u8]>) -> Self {
        Self(Held::Copied(bytes))
    }

    pub(super) fn pooled(block: Box<[u8]>, len: u32) -> Self {
        Self(Held::Pooled { block, len })
    }

    /// The received bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Held::Ring { pool, bid, len } => pool.bytes(*bid, *len),
            Held::Copied(bytes) => bytes,
            Held::Pooled { block, len } => &block[..*len as usize],
        }
    }

    /// The received bytes, for changing in place (a TLS record opened
    /// where it arrived). The handle is the buffer's only holder.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Held::Ring { pool, bid, len } => pool.bytes_mut(*bid, *len),
            Held::Copied(bytes) => bytes,
            Held::Pooled { block, len } => &mut block[..*len as usize],
        }
    }

    /// Number of received bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.0 {
            Held::Ring { len, .. } => *len as usize,
            Held::Copied(bytes) => bytes.len(),
            Held::Pooled { len, .. } => *len as usize,
        }
    }

    /// Whether no byte was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this handle holds a ring buffer (rather than a copy).
    pub fn holds_ring_buffer(&self) -> bool {
        matches!(self.0, Held::Ring { .. })
    }
}

impl fmt::Debug for BufHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Held::Ring { bid, len, .. } => f
                .debug_struct("BufHandle")
                .field("bid", bid)
                .field("len", len)
                .finish(),
            Held::Copied(bytes) => f
                .debug_struct("BufHandle")
                .field("copied", &bytes.len())
                .finish(),
            Held::Pooled { len, .. } => f.debug_struct("BufHandle").field("pooled", len).finish(),
        }
    }
}

impl Drop for BufHandle {
    fn drop(&mut self) {
        match &mut self.0 {
            Held::Ring { pool, bid, .. } => pool.recycle(*bid),
            Held::Pooled { block, .. } => super::spare::give_back(std::mem::take(block)),
            Held::Copied(_) => {}
        }
    }
}
