//! Forwarding a message body from one side to the other, from the buffers
//! it was received into.

use std::cell::Cell;
use std::io;
use std::time::Duration;

use super::deadline::Deadline;
use super::inbound::Inbound;
use super::retry::Keep;
use super::send::send_range;
use crate::buf::BufHandle;
use crate::counter::Counter;
use crate::proto::h1::chunked::ChunkedDecoder;
use crate::transport::Sender;

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delimit {
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked; forwarded chunk for chunk as received.
    Chunked,
    /// Chunked at the source, sent without its chunk framing (to an HTTP/1.0
    /// client, which reads to the close).
    Dechunk,
    /// Everything until the source closes.
    UntilClose,
}

/// What forwarding a body tells the exchange's deadline, so that a deadline
/// passing in the middle is put down to the right side (a few cell writes
/// per buffer, no timer).
#[derive(Debug, Clone, Copy)]
pub(super) enum Watch<'a> {
    /// The request body: its waits for the client's bytes are noted.
    Request(&'a Deadline),
    /// The response body: each wait for the upstream's next bytes may take
    /// this long from when it begins (the response keeps going as long as
    /// it keeps flowing), and sends to the client are noted.
    Response(&'a Deadline, Duration),
}

/// Where the bytes a body moves are counted: the worker's counter and the
/// exchange's own.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tally<'a> {
    /// The worker's counter of this direction.
    pub(super) worker: &'a Counter,
    /// The exchange's count of this direction.
    pub(super) exchange: &'a Cell<u64>,
    /// Where the bytes sent are kept to be sent again (a request body that
    /// may be retried).
    pub(super) keep: Option<&'a Keep>,
}

impl Tally<'_> {
    /// Counts `n` bytes moved.
    #[inline]
    pub(super) fn add(&self, n: u64) {
        self.worker.add(n);
        self.exchange.set(self.exchange.get() + n);
    }
}

/// How forwarding a body ended.
#[derive(Debug)]
pub(super) enum BodyEnd {
    /// The whole body went.
    Done,
    /// The source closed before the end of the body.
    Cut,
    /// Receiving from the source failed.
    SourceFailed,
    /// Sending to the destination failed (or timed out).
    SinkFailed(io::Error),
    /// The chunk framing is invalid.
    Invalid,
    /// The body grew past the limit.
    TooLarge,
}

/// Forwards a body delimited by `delimit` from `from` to `to`. Bytes after
/// the body stay in `from` for the next message. `limit` bounds a chunked
/// payload (a length is checked against it before forwarding starts);
/// `timeout` bounds each send; `watch` says what to tell the deadline.
pub(super) async fn forward(
    from: &mut Inbound,
    to: &Sender,
    delimit: Delimit,
    limit: Option<u64>,
    timeout: Option<Duration>,
    bytes: Tally<'_>,
    watch: Watch<'_>,
) -> BodyEnd {
    let mut left = match delimit {
        Delimit::Length(0) => return BodyEnd::Done,
        Delimit::Length(n) => n,
        _ => u64::MAX,
    };
    let mut decoder = ChunkedDecoder::new();
    loop {
        let next = match watch {
            Watch::Request(deadline) => {
                deadline.waiting_for_body(true);
                let next = from.next().await;
                deadline.waiting_for_body(false);
                next
            }
            Watch::Response(deadline, wait) => {
                deadline.extend(wait);
                from.next().await
            }
        };
        let (buf, range) = match next {
            Ok(Some(next)) => next,
            Ok(None) if delimit == Delimit::UntilClose => return BodyEnd::Done,
            Ok(None) => return BodyEnd::Cut,
            Err(_) => return BodyEnd::SourceFailed,
        };
        match delimit {
            Delimit::Length(_) | Delimit::UntilClose => {
                let take = (range.len() as u64).min(left) as usize;
                let end = range.start + take;
                left -= take as u64;
                let buf = match send(to, buf, range.start..end, timeout, bytes, watch).await {
                    Ok(buf) => buf,
                    Err(e) => return BodyEnd::SinkFailed(e),
                };
                if left == 0 {
                    from.unread(buf, end);
                    return BodyEnd::Done;
                }
            }
            Delimit::Chunked | Delimit::Dechunk => {
                // Walk the chunk framing to find where the body ends; send
                // the framing too (Chunked) or only the payload (Dechunk).
                let mut at = range.start;
                let mut buf = buf;
                let mut done = false;
                while at < range.end && !done {
                    let step = match decoder.feed(&buf.as_slice()[at..range.end]) {
                        Ok(step) => step,
                        Err(_) => return BodyEnd::Invalid,
                    };
                    if limit.is_some_and(|l| decoder.payload_bytes() > l) {
                        return BodyEnd::TooLarge;
                    }
                    if delimit == Delimit::Dechunk {
                        if let Some(data) = step.data.clone() {
                            let data = at + data.start..at + data.end;
                            buf = match send(to, buf, data, timeout, bytes, watch).await {
                                Ok(buf) => buf,
                                Err(e) => return BodyEnd::SinkFailed(e),
                            };
                        }
                    }
                    at += step.consumed;
                    done = step.done;
                }
                if delimit == Delimit::Chunked && at > range.start {
                    buf = match send(to, buf, range.start..at, timeout, bytes, watch).await {
                        Ok(buf) => buf,
                        Err(e) => return BodyEnd::SinkFailed(e),
                    };
                }
                if done {
                    from.unread(buf, at);
                    return BodyEnd::Done;
                }
            }
        }
    }
}

/// Sends all of `buf[range]` and counts the bytes.
async fn send(
    to: &Sender,
    buf: BufHandle,
    range: std::ops::Range<usize>,
    timeout: Option<Duration>,
    bytes: Tally<'_>,
    watch: Watch<'_>,
) -> io::Result<BufHandle> {
    let len = range.len();
    let client = match watch {
        Watch::Response(deadline, _) => Some(deadline),
        Watch::Request(_) => None,
    };
    if let Some(deadline) = client {
        deadline.sending(true);
    }
    if let Some(keep) = bytes.keep {
        keep.add(&buf.as_slice()[range.clone()]);
    }
    let buf = send_range(to, buf, range, timeout).await;
    if let Some(deadline) = client {
        deadline.sending(false);
    }
    let buf = buf?;
    bytes.add(len as u64);
    Ok(buf)
}
