//! A filled buffer lent out of a ring, or the copy of one.

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
}

impl BufHandle {
    pub(super) fn ring(pool: Rc<BufPool>, bid: u16, len: u32) -> Self {
        Self(Held::Ring { pool, bid, len })
    }

    pub(super) fn copied(bytes: Box<[u8]>) -> Self {
        Self(Held::Copied(bytes))
    }

    /// A handle that owns `bytes` (plaintext a transport decrypted, say).
    pub fn owned(bytes: Box<[u8]>) -> Self {
        Self(Held::Copied(bytes))
    }

    /// The received bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Held::Ring { pool, bid, len } => pool.bytes(*bid, *len),
            Held::Copied(bytes) => bytes,
        }
    }

    /// Number of received bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.0 {
            Held::Ring { len, .. } => *len as usize,
            Held::Copied(bytes) => bytes.len(),
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
        }
    }
}

impl Drop for BufHandle {
    fn drop(&mut self) {
        if let Held::Ring { pool, bid, .. } = &self.0 {
            pool.recycle(*bid);
        }
    }
}
