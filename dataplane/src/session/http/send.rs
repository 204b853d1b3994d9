//! Sending whole heads and buffer ranges, continuing after partial sends.

use std::io;
use std::ops::Range;
use std::time::Duration;

use crate::buf::BufHandle;
use crate::rt::net::Outgoing;
use crate::transport::Sender;

/// Starting size of a connection's head buffer: a typical rewritten head
/// fits; a bigger one grows it once and it stays grown.
const HEAD_CAPACITY: usize = 1024;

/// A connection's head buffer, lent to each send and given back after it.
/// Only a failed send loses it; the next use then allocates a new one.
#[derive(Debug, Default)]
pub(super) struct HeadBuf(Option<Outgoing>);

impl HeadBuf {
    /// The buffer, to write a head into.
    pub(super) fn bytes(&mut self) -> &mut Vec<u8> {
        self.0
            .get_or_insert_with(|| Outgoing::with_capacity(HEAD_CAPACITY))
            .bytes_mut()
    }

    /// Lends the buffer to a send.
    pub(super) fn take(&mut self) -> Outgoing {
        self.0
            .take()
            .unwrap_or_else(|| Outgoing::with_capacity(HEAD_CAPACITY))
    }

    /// Takes the buffer back after a send.
    pub(super) fn put(&mut self, out: Outgoing) {
        self.0 = Some(out);
    }

    /// Drops the buffer if it grew past `max` bytes (a replayed body
    /// went in it); the next use starts a new one.
    pub(super) fn shrink(&mut self, max: usize) {
        if let Some(out) = &mut self.0 {
            if out.bytes_mut().capacity() > max {
                self.0 = None;
            }
        }
    }
}

/// Sends `out` from byte `from`, then all of `body`'s range (the first part
/// of a body, from the buffer it arrived in), continuing after partial
/// sends. Gives both buffers back.
pub(super) async fn send_all(
    to: &Sender,
    mut out: Outgoing,
    from: usize,
    body: Option<(BufHandle, Range<usize>)>,
    timeout: Option<Duration>,
) -> io::Result<(Outgoing, Option<BufHandle>)> {
    let head_len = out.bytes().len();
    let range = body.as_ref().map(|(_, r)| r.clone());
    let mut body = body;
    let mut at = from;
    loop {
        let (n, back, buf) = to.send_outgoing(out, at, body.take(), timeout).await?;
        out = back;
        if n == 0 {
            return Err(write_zero());
        }
        if at + n < head_len {
            at += n;
            body = buf.zip(range.clone());
            continue;
        }
        let body_sent = at + n - head_len;
        return match (buf, range) {
            (Some(buf), Some(range)) if range.start + body_sent < range.end => {
                let rest = range.start + body_sent..range.end;
                let buf = send_range(to, buf, rest, timeout).await?;
                Ok((out, Some(buf)))
            }
            (buf, _) => Ok((out, buf)),
        };
    }
}

/// Sends all of `buf[range]`, continuing after partial sends.
pub(super) async fn send_range(
    to: &Sender,
    mut buf: BufHandle,
    range: Range<usize>,
    timeout: Option<Duration>,
) -> io::Result<BufHandle> {
    let mut at = range.start;
    while at < range.end {
        let (n, back) = to.send_range(buf, at..range.end, timeout).await?;
        if n == 0 {
            return Err(write_zero());
        }
        at += n;
        buf = back;
    }
    Ok(buf)
}

fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "send accepted no byte")
}
