//! One side's received bytes: the recv stream, what was received but not yet
//! used, and the head being gathered.
//!
//! A head that fits in the buffer it arrived in is parsed where it lies. One
//! that spans buffers is gathered into `scratch` (head bytes only: the body
//! bytes behind it are used from the last buffer, which is kept).

use std::future::poll_fn;
use std::io;
use std::ops::Range;
use std::task::{Context, Poll};

use crate::buf::BufHandle;
use crate::counter::Counter;
use crate::proto::h1::{HeadError, Status};
use crate::transport::Receiver;

/// High water of a side's multishot recv: 8 x 32 KiB buffers held while the
/// other side is slow, as for TCP (see `session::relay::HIGH_WATER_BUFFERS`).
pub(super) use crate::session::relay::HIGH_WATER_BUFFERS;

/// Whether `bytes` hold a line break followed by an empty line (`\n\r\n`,
/// or `\n\n`, which the parser rejects but must get to see).
fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || (w[1] == b'\r' && bytes.get(i + 2) == Some(&b'\n')))
    })
}

/// Received bytes of one side of an HTTP exchange.
#[derive(Debug)]
pub(super) struct Inbound {
    rx: Receiver,
    /// A received buffer and the offset of its first unused byte.
    pending: Option<(BufHandle, usize)>,
    /// A head gathered across buffers.
    scratch: Vec<u8>,
    /// Where the last head read lies.
    head: HeadAt,
    /// Whether the peer ended its stream.
    eof: bool,
}

/// Where the head last read lies, and where the bytes after it start.
#[derive(Debug, Clone, Copy)]
enum HeadAt {
    /// No head read.
    Nowhere,
    /// In `pending`'s buffer from `start`, `len` bytes long (a buffer is
    /// far shorter than 4 GiB).
    InPlace { start: u32, len: u32 },
    /// In `scratch`, whose last part is all of `pending` from its offset.
    Gathered,
}

/// Why no head was read.
#[derive(Debug)]
pub(super) enum HeadFailure {
    /// The peer closed cleanly before sending a byte of a new head.
    Closed,
    /// The peer closed, or reset, in the middle of a head.
    Cut,
    /// Receiving failed before any byte of the head.
    Failed,
    /// The head is invalid or over a limit.
    Invalid(HeadError),
}

impl Inbound {
    /// Wraps a transport's receiving half.
    pub(super) fn new(rx: Receiver) -> Self {
        Self::with_scratch(rx, Vec::new())
    }

    /// Wraps a transport's receiving half, gathering heads in `scratch` (a
    /// buffer kept from earlier use).
    pub(super) fn with_scratch(rx: Receiver, scratch: Vec<u8>) -> Self {
        Self {
            rx,
            pending: None,
            scratch,
            head: HeadAt::Nowhere,
            eof: false,
        }
    }

    /// Gives the receiving half and the head buffer back (to pool the
    /// connection).
    pub(super) fn into_parts(self) -> (Receiver, Vec<u8>) {
        (self.rx, self.scratch)
    }

    /// Exchanges the buffer heads are gathered in with `scratch`: a
    /// connection lends its request's buffer while the request lasts and
    /// takes it back after, so that an idle connection holds none.
    pub(super) fn swap_scratch(&mut self, scratch: &mut Vec<u8>) {
        debug_assert!(
            !matches!(self.head, HeadAt::Gathered),
            "a gathered head moves"
        );
        std::mem::swap(&mut self.scratch, scratch);
    }

    /// Frees the head buffer, if one is held (a request cut while its head
    /// was gathered left it here).
    pub(super) fn release_scratch(&mut self) {
        if self.scratch.capacity() > 0 && !matches!(self.head, HeadAt::Gathered) {
            self.scratch = Vec::new();
        }
    }

    /// The receiving half (for the TLS handshake, before any request).
    pub(super) fn receiver(&mut self) -> &mut Receiver {
        &mut self.rx
    }

    /// Sets how many buffers the receiving half may hold unread (see
    /// [`Receiver::set_high_water`]).
    pub(super) fn set_high_water(&mut self, high_water: usize) {
        self.rx.set_high_water(high_water);
    }

    /// Ready once there is something to look at: received bytes not yet
    /// used, or the end of the stream; `Err` if receiving failed.
    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        if self.pending.is_some() || self.eof {
            return Poll::Ready(Ok(()));
        }
        match self.rx.poll_next(cx) {
            Poll::Ready(Ok(Some(buf))) => {
                self.pending = Some((buf, 0));
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(None)) => {
                self.eof = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The next buffer the receiving half delivers.
    async fn receive(&mut self) -> io::Result<Option<BufHandle>> {
        poll_fn(|cx| self.rx.poll_next(cx)).await
    }

    /// Whether received bytes are waiting to be used.
    pub(super) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether the peer ended its stream.
    pub(super) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads a head with `parse`, which is called on the bytes received so
    /// far (the head starts at their first byte) until it says `Complete`.
    /// `on_first_byte` runs when the first byte of the head is there and it
    /// did not complete at once (the header timeout starts then).
    ///
    /// A head arriving in many small pieces is not parsed again from its
    /// start for each piece (that would cost time quadratic in its length, a
    /// gift to a client trickling bytes): once gathering, `parse` runs only
    /// when a piece could hold the end of the head (a line break followed by
    /// an empty line) or when the gathered bytes pass `max_len`, where
    /// `parse` reports the limit.
    ///
    /// Gathering copies the pieces into one buffer, the one userspace copy
    /// of received bytes outside the buffer rings' own: each is counted in
    /// `copied` (the worker's `copied_bytes`) as it is made.
    pub(super) async fn read_head(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> Result<Status, HeadError>,
        max_len: usize,
        mut on_first_byte: impl FnMut(),
        copied: &Counter,
    ) -> Result<(), HeadFailure> {
        self.head = HeadAt::Nowhere;
        self.scratch.clear();
        let mut gathered = false;
        let mut waited = false;
        loop {
            if let Some((buf, start)) = &self.pending {
                let bytes = &buf.as_slice()[*start..];
                if !gathered {
                    match parse(bytes).map_err(HeadFailure::Invalid)? {
                        Status::Complete => {
                            // `parse` filled in the head's length; the caller
                            // tells us through `consume_head`.
                            self.head = HeadAt::InPlace {
                                start: *start as u32,
                                len: bytes.len() as u32,
                            };
                            return Ok(());
                        }
                        Status::Partial => {
                            self.scratch.extend_from_slice(bytes);
                            copied.add(bytes.len() as u64);
                            gathered = true;
                        }
                    }
                } else {
                    let before = self.scratch.len();
                    self.scratch.extend_from_slice(bytes);
                    copied.add(bytes.len() as u64);
                    // The end may straddle the pieces: look from a little
                    // before the new bytes.
                    let tail = &self.scratch[before.saturating_sub(2)..];
                    if (ends_head(tail) || self.scratch.len() > max_len)
                        && parse(&self.scratch).map_err(HeadFailure::Invalid)? == Status::Complete
                    {
                        self.head = HeadAt::Gathered;
                        return Ok(());
                    }
                }
                if !waited {
                    waited = true;
                    on_first_byte();
                }
                self.pending = None;
            }
            if self.eof {
                return Err(if gathered {
                    HeadFailure::Cut
                } else {
                    HeadFailure::Closed
                });
            }
            match self.receive().await {
                Ok(Some(buf)) => self.pending = Some((buf, 0)),
                Ok(None) => self.eof = true,
                Err(_) if gathered => return Err(HeadFailure::Cut),
                Err(_) => return Err(HeadFailure::Failed),
            }
        }
    }

    /// The bytes of the head just read, from its first byte (they may run
    /// past its end: the head's own length says where it stops).
    pub(super) fn head_bytes(&self) -> &[u8] {
        match (self.head, &self.pending) {
            (HeadAt::InPlace { start, len }, Some((buf, _))) => {
                let start = start as usize;
                &buf.as_slice()[start..start + len as usize]
            }
            (HeadAt::Gathered, _) => &self.scratch,
            _ => &[],
        }
    }

    /// Bytes of a head that failed to parse received so far (what was
    /// gathered, or what waits in the buffer at hand).
    pub(super) fn unparsed_len(&self) -> usize {
        if !self.scratch.is_empty() {
            return self.scratch.len();
        }
        self.pending
            .as_ref()
            .map_or(0, |(buf, start)| buf.len().saturating_sub(*start))
    }

    /// Marks the head just read, `len` bytes long, as used: what follows it
    /// is the next thing to read. Once done, later calls do nothing.
    pub(super) fn consume_head(&mut self, len: usize) {
        let Some((buf, start)) = &mut self.pending else {
            return;
        };
        let next = match self.head {
            HeadAt::InPlace { start: s, .. } => s as usize + len,
            HeadAt::Gathered => {
                // The head ends in the last buffer gathered, which is
                // `pending`, appended in full from `start`.
                let before_last = self.scratch.len() - (buf.len() - *start);
                *start + (len - before_last)
            }
            HeadAt::Nowhere => *start,
        };
        self.head = HeadAt::Nowhere;
        if next >= buf.len() {
            self.pending = None;
        } else {
            *start = next;
        }
    }

    /// The next received bytes: the unused part of a buffer already here, or
    /// a new buffer. `Ok(None)` at end of stream.
    pub(super) async fn next(&mut self) -> io::Result<Option<(BufHandle, Range<usize>)>> {
        if let Some((buf, start)) = self.pending.take() {
            let end = buf.len();
            return Ok(Some((buf, start..end)));
        }
        if self.eof {
            return Ok(None);
        }
        match self.receive().await? {
            Some(buf) => {
                let end = buf.len();
                Ok(Some((buf, 0..end)))
            }
            None => {
                self.eof = true;
                Ok(None)
            }
        }
    }

    /// The unused part of a buffer already received, if any, without
    /// waiting for more.
    pub(super) fn take_pending(&mut self) -> Option<(BufHandle, Range<usize>)> {
        let (buf, start) = self.pending.take()?;
        let end = buf.len();
        Some((buf, start..end))
    }

    /// Puts back the unused tail of a buffer `next` returned, from `start`:
    /// it is the first thing read next.
    pub(super) fn unread(&mut self, buf: BufHandle, start: usize) {
        if start < buf.len() {
            debug_assert!(self.pending.is_none(), "unread over unused bytes");
            self.pending = Some((buf, start));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ends_head;

    #[test]
    fn a_piece_may_end_a_head_only_with_an_empty_line() {
        assert!(ends_head(b"x: y\r\n\r\n"));
        assert!(ends_head(b"\n\r\n"));
        assert!(ends_head(b"x\n\n"));
        assert!(!ends_head(b"x: y\r\n"));
        assert!(!ends_head(b"\r\n\r"));
        assert!(!ends_head(b"GET / HTTP/1.1\r\nHost: a\r"));
    }
}
