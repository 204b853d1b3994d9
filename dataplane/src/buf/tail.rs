//! Room at the end of a vector for a writer that wants `&mut [u8]` (rustls
//! writing TLS records, say), so the room must be initialized bytes.
//!
//! Zeroing it before every write would cost a pass over every byte, as
//! much as a copy. A buffer reused send after send (the TLS transport's
//! sealing buffers) still holds the bytes of earlier sends after it was
//! cleared: [`Tail`] remembers how far its allocation has been written
//! (`inited`), and lengthens the vector over those bytes without writing
//! them again; only room never written before is zeroed. Here, in `buf`,
//! because that takes `unsafe` (see the crate's rule).

use std::fmt::Display;
use std::io;

/// The end of `vec`, for writing.
#[derive(Debug)]
pub struct Tail<'a> {
    vec: &'a mut Vec<u8>,
    /// How many bytes from the start of `vec`'s allocation have been
    /// written (at least `vec.len()`, at most its capacity).
    inited: &'a mut usize,
}

impl<'a> Tail<'a> {
    /// The end of `vec`, whose allocation is written up to `inited` (the
    /// vector's own length, for a vector this module has not grown).
    pub fn new(vec: &'a mut Vec<u8>, inited: &'a mut usize) -> Self {
        *inited = (*inited).clamp(vec.len(), vec.capacity());
        Self { vec, inited }
    }

    /// Appends `bytes`.
    pub fn extend(&mut self, bytes: &[u8]) {
        let at = self.vec.len();
        self.grow(at + bytes.len());
        self.vec[at..].copy_from_slice(bytes);
    }

    /// Runs `write` on `room` bytes past the end (on as many as it says it
    /// needs through `needs`, if `room` was short), keeping what it wrote.
    pub fn write<E: Display>(
        &mut self,
        room: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
        needs: impl Fn(&E) -> Option<usize>,
    ) -> io::Result<()> {
        let at = self.vec.len();
        self.grow(at + room);
        let n = match write(&mut self.vec[at..]) {
            Err(e) => match needs(&e) {
                Some(required) => {
                    self.grow(at + required);
                    write(&mut self.vec[at..])
                }
                None => Err(e),
            },
            done => done,
        };
        match n {
            Ok(n) => {
                self.vec.truncate(at + n);
                Ok(())
            }
            Err(e) => {
                self.vec.truncate(at);
                Err(io::Error::other(e.to_string()))
            }
        }
    }

    /// Makes the vector `len` long, writing only bytes its allocation never
    /// held.
    fn grow(&mut self, len: usize) {
        if self.vec.len() >= len {
            return;
        }
        if len <= *self.inited {
            // SAFETY: `len <= inited <= capacity`, and every byte of the
            // allocation below `inited` has been written: by an earlier
            // `resize` or write through this type, into this same
            // allocation (`inited` is reset below whenever the vector
            // moves). Truncating a `Vec<u8>` never un-writes bytes, and any
            // byte value is a valid `u8`.
            unsafe { self.vec.set_len(len) };
            return;
        }
        let before = self.vec.as_ptr();
        self.vec.resize(len, 0);
        *self.inited = if self.vec.as_ptr() == before {
            (*self.inited).max(len)
        } else {
            // Reallocated: only what `resize` copied and wrote is known.
            len
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_room_keeps_its_bytes_and_new_room_is_zeroed() {
        let mut vec = Vec::with_capacity(64);
        let mut inited = 0;
        let mut tail = Tail::new(&mut vec, &mut inited);
        tail.write(
            32,
            |room| {
                room[..8].copy_from_slice(b"abcdefgh");
                Ok::<_, io::Error>(8)
            },
            |_| None,
        )
        .expect("a write");
        assert_eq!(vec, b"abcdefgh");
        assert_eq!(inited, 32, "the room offered was written (zeroed)");
        vec.clear();
        let mut tail = Tail::new(&mut vec, &mut inited);
        tail.write(
            16,
            |room| {
                assert_eq!(&room[..8], b"abcdefgh", "old bytes, not zeroed again");
                assert_eq!(&room[8..16], &[0; 8]);
                Ok::<_, io::Error>(2)
            },
            |_| None,
        )
        .expect("a write");
        assert_eq!(vec, b"ab");
    }

    #[test]
    fn a_short_room_is_grown_to_what_the_writer_needs() {
        let mut vec = Vec::new();
        let mut inited = 0;
        let mut tail = Tail::new(&mut vec, &mut inited);
        tail.extend(b"head");
        tail.write(
            2,
            |room| {
                if room.len() < 100 {
                    Err(100usize)
                } else {
                    Ok(100)
                }
            },
            |needed| Some(*needed),
        )
        .expect("the second try fits");
        assert_eq!(vec.len(), 104);
        assert_eq!(&vec[..4], b"head");
        assert!(inited >= 104);
    }
}
