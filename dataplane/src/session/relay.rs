//! The L4 relay: move bytes from one socket to another without copying them.
//!
//! A [`Pump`] is one direction, kept as a struct that is polled rather than
//! an async fn's future: an idle TCP pair holds two of them for as long as
//! it is open, and a struct holds only its receive stream and the send in
//! flight, where a future would also keep room for every local of its
//! largest state.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use crate::counter::Counter;
use crate::rt;
use crate::rt::net::{RecvStream, Sending, TcpStream};

/// Buffers one direction of a connection may hold in userspace while its
/// destination is slow. 8 x 32 KiB = 256 KiB: enough to keep a loopback or
/// LAN stream saturated across a send, and it bounds a slow reader's cost.
pub const HIGH_WATER_BUFFERS: usize = 8;

/// How one direction of a copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The source sent FIN; it was passed on as a FIN to the destination.
    Eof,
    /// Receiving from the source failed (typically a reset). Which error
    /// it was changes nothing: the connection is reset either way.
    RecvFailed,
    /// Sending to the destination failed (it reset or went away, or a send
    /// accepted no byte).
    SendFailed,
}

/// When a byte last moved either way on a connection, shared by its
/// directions.
#[derive(Debug)]
pub struct Activity {
    last: Cell<Instant>,
}

impl Activity {
    /// Activity as of now.
    pub fn new() -> Self {
        Self {
            last: Cell::new(rt::now()),
        }
    }

    /// When a byte last moved either way.
    pub fn last(&self) -> Instant {
        self.last.get()
    }

    pub(crate) fn moved(&self) {
        self.last.set(rt::now());
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// One direction of a relay: copies everything its receive stream gets to
/// a destination, sending from the very buffer the kernel received into.
///
/// Dropping it cancels its receive, and its send in flight (which keeps
/// the buffer until the kernel is done with it).
#[derive(Debug)]
pub struct Pump {
    from: RecvStream,
    /// The send of the buffer received last, while it is in flight.
    sending: Option<Sending>,
    /// Bytes of that buffer sent by the sends before it.
    sent: usize,
}

impl Pump {
    /// A pump of what `from` receives.
    pub fn new(from: RecvStream) -> Self {
        Self {
            from,
            sending: None,
            sent: 0,
        }
    }

    /// Whether it holds bytes it received and has not sent on (its
    /// destination is not reading): ending the connection now would drop
    /// them.
    pub fn holding(&self) -> bool {
        self.sending.is_some()
    }

    /// Copies to `to` until the source ends or a side fails; records
    /// activity in `activity` and counts the bytes sent on in `bytes`.
    /// Not to be polled again once it returned `Ready`.
    pub fn poll_copy(
        &mut self,
        to: &TcpStream,
        activity: &Activity,
        bytes: &Counter,
        cx: &mut Context<'_>,
    ) -> Poll<Flow> {
        loop {
            if let Some(sending) = &mut self.sending {
                let done = ready!(Pin::new(sending).poll(cx));
                self.sending = None;
                let buf = match done {
                    Ok((0, _)) | Err(_) => return Poll::Ready(Flow::SendFailed),
                    Ok((n, buf)) => {
                        activity.moved();
                        self.sent += n;
                        buf
                    }
                };
                let len = buf.len();
                if self.sent < len {
                    match to.start_send(buf, self.sent) {
                        Ok(sending) => self.sending = Some(sending),
                        Err(_) => return Poll::Ready(Flow::SendFailed),
                    }
                    continue;
                }
                bytes.add(len as u64);
                // `buf` drops here and goes back to the ring.
            }
            let buf = match ready!(self.from.poll_next(cx)) {
                Ok(Some(buf)) => buf,
                Ok(None) => {
                    // Half-close: the other direction stays open.
                    let _ = to.shutdown_write();
                    return Poll::Ready(Flow::Eof);
                }
                Err(_) => return Poll::Ready(Flow::RecvFailed),
            };
            activity.moved();
            self.sent = 0;
            match to.start_send(buf, 0) {
                Ok(sending) => self.sending = Some(sending),
                Err(_) => return Poll::Ready(Flow::SendFailed),
            }
        }
    }
}
