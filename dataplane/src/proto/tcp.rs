//! L4 copy: move bytes from one socket to another without copying them.

use std::cell::Cell;
use std::io;
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
    /// Receiving from the source failed (typically a reset).
    RecvFailed(io::Error),
    /// Sending to the destination failed (it reset or went away).
    SendFailed(io::Error),
}

/// Copies everything `from` receives to `to`, sending from the very buffer
/// the kernel received into. Records activity in `last_activity` and counts
/// bytes in `bytes`.
pub async fn pump(
    from: &mut RecvStream,
    to: &TcpStream,
    last_activity: &Cell<Instant>,
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
            Err(e) => return Flow::RecvFailed(e),
        };
        last_activity.set(rt::now());
        let len = buf.len();
        let mut sent = 0;
        while sent < len {
            match to.send(buf, sent).await {
                Ok((0, _)) => {
                    return Flow::SendFailed(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "send accepted no byte",
                    ))
                }
                Ok((n, back)) => {
                    sent += n;
                    buf = back;
                }
                Err(e) => return Flow::SendFailed(e),
            }
            last_activity.set(rt::now());
        }
        bytes.add(len as u64);
        // `buf` drops here and goes back to the ring.
    }
}
