//! The L4 relay: move bytes from one socket to another without copying them.

use std::cell::Cell;
use std::time::Instant;

use crate::counter::Counter;
use crate::rt;
use crate::rt::net::{RecvStream, TcpStream};

/// Buffers one direction of a connection may hold in userspace while its
/// destination is slow. 8 x 32 KiB = 256 KiB: enough to keep a loopback or
/// LAN stream saturated across a send, and it bounds a slow reader's cost.
pub const HIGH_WATER_BUFFERS: usize = 8;

/// How one direction of a copy ended.
#[derive(Debug)]
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

/// What the directions of one connection share: when a byte last moved,
/// and how many directions hold received bytes they have not sent yet.
#[derive(Debug)]
pub struct Activity {
    last: Cell<Instant>,
    holding: Cell<u8>,
}

impl Activity {
    /// Activity as of now, nothing held.
    pub fn new() -> Self {
        Self {
            last: Cell::new(rt::now()),
            holding: Cell::new(0),
        }
    }

    /// When a byte last moved either way.
    pub fn last(&self) -> Instant {
        self.last.get()
    }

    /// Whether a direction holds bytes it received and has not sent on (its
    /// destination is not reading): ending the connection now would drop
    /// them.
    pub fn holding(&self) -> bool {
        self.holding.get() > 0
    }

    fn moved(&self) {
        self.last.set(rt::now());
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// Copies everything `from` receives to `to`, sending from the very buffer
/// the kernel received into. Records activity in `activity` and counts
/// bytes in `bytes`.
pub async fn pump(
    from: &mut RecvStream,
    to: &TcpStream,
    activity: &Activity,
    bytes: &Counter,
) -> Flow {
    loop {
        let mut buf = match from.next().await {
            Ok(Some(buf)) => buf,
            Ok(None) => {
                // Half-close: the other direction stays open.
                let _ = to.shutdown_write();
                return Flow::Eof;
            }
            Err(_) => return Flow::RecvFailed,
        };
        activity.moved();
        let _held = Held::new(activity);
        let len = buf.len();
        let mut sent = 0;
        while sent < len {
            match to.send(buf, sent).await {
                Ok((0, _)) => return Flow::SendFailed,
                Ok((n, back)) => {
                    sent += n;
                    buf = back;
                }
                Err(_) => return Flow::SendFailed,
            }
            activity.moved();
        }
        bytes.add(len as u64);
        // `buf` drops here and goes back to the ring.
    }
}

/// Counts a direction as holding unsent bytes for as long as it lives
/// (however the send ends, or if the pump is dropped in the middle).
struct Held<'a>(&'a Activity);

impl<'a> Held<'a> {
    fn new(activity: &'a Activity) -> Self {
        activity.holding.set(activity.holding.get() + 1);
        Self(activity)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.holding.set(self.0.holding.get() - 1);
    }
}
