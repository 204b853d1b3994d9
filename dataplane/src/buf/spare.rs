//! Buffers a worker fills itself, from its own free list: the plaintext a
//! TLS receiver opens, handed on as a [`BufHandle`] like a ring buffer.
//!
//! The kernel fills ring buffers; what a transport produces (decrypted
//! bytes) needs memory of its own. Allocating it per record would put the
//! allocator on every TLS read. Instead each worker thread keeps a free
//! list of fixed-size blocks: a [`Filling`] takes one (a spare, or a new
//! one the first time), the handle it becomes gives it back when dropped.
//! The blocks in use are the plaintext buffers in flight; the list keeps
//! at most [`MAX_SPARE`] of the rest, so a past burst keeps at most
//! `MAX_SPARE * SIZE` (4 MiB) per worker. A pop and a push per buffer, no
//! lock, no atomic: the list is the thread's.

use std::cell::RefCell;

use super::handle::BufHandle;

/// Bytes per block: four TLS records' plaintext (16 KiB each), what two
/// ring buffers of the default size hold: a bulk stream's plaintext goes on
/// in sends at least as large as the plain transport's.
pub const SIZE: usize = 64 * 1024;

/// Spare blocks kept per worker; past it a block returned is freed.
const MAX_SPARE: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A block from this thread's free list, or a new one.
fn take() -> Box<[u8]> {
    SPARE
        .try_with(|s| s.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0; SIZE].into_boxed_slice())
}

/// Gives `block` back to this thread's free list (or frees it).
pub(super) fn give_back(block: Box<[u8]>) {
    if block.len() != SIZE {
        return;
    }
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < MAX_SPARE {
            s.push(block);
        }
    });
}

/// A block being filled, front to back; it becomes a [`BufHandle`] of the
/// bytes written.
#[derive(Debug)]
pub struct Filling {
    block: Box<[u8]>,
    len: usize,
}

impl Filling {
    /// An empty block.
    pub fn new() -> Self {
        Self {
            block: take(),
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that still fit.
    pub fn room(&self) -> usize {
        self.block.len() - self.len
    }

    /// Appends as much of `bytes` as fits; returns how many did.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.room());
        self.block[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    /// The bytes written, as a handle that gives the block back when
    /// dropped.
    pub fn into_handle(mut self) -> BufHandle {
        let block = std::mem::take(&mut self.block);
        // SIZE fits a u32 by construction.
        BufHandle::pooled(block, self.len as u32)
    }
}

impl Default for Filling {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Filling {
    fn drop(&mut self) {
        if !self.block.is_empty() {
            give_back(std::mem::take(&mut self.block));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_reused_once_its_handle_is_dropped() {
        let mut f = Filling::new();
        assert_eq!(f.push(b"hello"), 5);
        let first = f.into_handle();
        assert_eq!(first.as_slice(), b"hello");
        let at = first.as_slice().as_ptr();
        drop(first);
        let mut g = Filling::new();
        g.push(b"x");
        let second = g.into_handle();
        assert_eq!(second.as_slice(), b"x");
        assert_eq!(second.as_slice().as_ptr(), at, "the spare block came back");
    }

    #[test]
    fn push_stops_at_the_end_of_the_block() {
        let mut f = Filling::new();
        let big = vec![7u8; SIZE + 10];
        assert_eq!(f.push(&big), SIZE);
        assert_eq!(f.room(), 0);
        assert_eq!(f.push(b"more"), 0);
        assert_eq!(f.into_handle().len(), SIZE);
    }
}
