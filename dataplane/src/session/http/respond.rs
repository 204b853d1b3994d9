//! The response half of an exchange: read the upstream's head (passing
//! interim answers on), write the client's, and forward the body.

use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use super::body::{self, BodyEnd, Delimit, Tally, Watch};
use super::deadline::Deadline;
use super::inbound::{HeadFailure, Inbound};
use super::send::{send_all, HeadBuf};
use super::write::{self, Framing, Persist};
use crate::counter::Counter;
use crate::proto::h1::response::{ResponseBody, ResponseHead};
use crate::proto::h1::Version;
use crate::request::Reason;
use crate::rt;
use crate::stats::Counters;
use crate::table::route::{HeaderEdits, HttpLimits};
use crate::transport::Sender;

/// How the response half ended.
#[derive(Debug)]
pub(super) enum Response {
    /// Sent whole; `close` if the client connection must close after it,
    /// `reusable` if the upstream connection may serve another request.
    Done { close: bool, reusable: bool },
    /// Failed before the client got a head: ringway answers instead.
    Before(Reason, &'static str),
    /// The upstream failed after the client got the head.
    Aborted,
    /// Sending to the client failed.
    Client(io::Error),
    /// The upstream answered with this status and the request is to be
    /// retried: nothing of the answer went to the client, and its head is
    /// left unread on the upstream connection (which is not reused).
    Retry(u16),
}

/// The sockets and buffers the response half uses.
pub(super) struct Sides<'a> {
    /// What the upstream sent.
    pub(super) upstream: &'a mut Inbound,
    /// The client connection's sending half.
    pub(super) client: &'a Sender,
    /// The response head, reused.
    pub(super) head: &'a mut ResponseHead,
    /// The head buffer, reused.
    pub(super) out: &'a mut HeadBuf,
}

/// What the request decided about its response.
pub(super) struct Terms<'a> {
    /// The request was HEAD: no body whatever the headers say.
    pub(super) is_head: bool,
    /// The client's HTTP version: no interim answers and no chunked framing
    /// for 1.0.
    pub(super) version: Version,
    /// The client keeps the connection open after this exchange.
    pub(super) keep_alive: bool,
    /// Set once the worker drains: the client connection then closes after
    /// this response (read when its head is written).
    pub(super) draining: &'a Cell<bool>,
    /// Set once the whole request body went upstream. A response that
    /// starts before then closes the connection after it (what is left of
    /// the request cannot be told from the next one), and says so.
    pub(super) request_done: &'a Cell<bool>,
    /// The route's response edits.
    pub(super) edits: &'a HeaderEdits,
    /// Limits on the response head (the listener's head limits).
    pub(super) limits: HttpLimits,
    /// Bounds each send of body data after the first buffer.
    pub(super) send_timeout: Duration,
    /// Once the response head went, bounds each wait for more of the
    /// upstream's body (before it, the exchange's deadline bounds the
    /// wait for the head).
    pub(super) request_timeout: Duration,
    /// What the exchange's outcome will say of the response.
    pub(super) progress: &'a Progress,
    /// Asked with the status of a final head before any of it goes to
    /// the client: `true` takes a retry instead ([`Response::Retry`]).
    pub(super) retry_status: &'a dyn Fn(u16) -> bool,
}

/// What the response half has done so far, for the exchange's outcome
/// (cells: the request half runs at the same time), and the request's
/// place in its endpoint's in-flight count.
#[derive(Default)]
pub(super) struct Progress {
    /// The status of the final response head, once it is committed to go.
    pub(super) status: Cell<Option<u16>>,
    /// When the upstream's first response head arrived.
    pub(super) first_byte: Cell<Option<Instant>>,
    /// Bytes sent to the client.
    pub(super) sent: Cell<u64>,
    /// Bytes of the request body sent upstream.
    pub(super) received: Cell<u64>,
    /// When the whole request body had gone upstream (at once for a
    /// request without one).
    pub(super) body_done: Cell<Option<Instant>>,
    /// The request counted in flight on its endpoint's load record, once
    /// its upstream connection is made (clusters that balance by load).
    pub(super) in_flight: Cell<Option<crate::upstream::load::InFlight>>,
}

/// Reads the upstream's response and sends it on to the client.
pub(super) async fn respond(
    sides: Sides<'_>,
    terms: &Terms<'_>,
    deadline: &Deadline,
    counters: &Counters,
) -> Response {
    let Sides {
        upstream,
        client,
        head,
        out,
    } = sides;
    let copied = &counters.copied_bytes;
    if let Err(failed) = read_final_head(upstream, client, head, out, terms, deadline, copied).await
    {
        return failed;
    }
    // A retry is only for an answer the client has seen nothing of (no
    // interim answer either).
    if terms.progress.sent.get() == 0 && (terms.retry_status)(head.status) {
        return Response::Retry(head.status);
    }
    let dechunk = terms.version == Version::Http10 && head.body == ResponseBody::Chunked;
    let close = head.body == ResponseBody::UntilClose
        || dechunk
        || terms.draining.get()
        || !terms.request_done.get();
    let persist = Persist::of(close, terms.version, terms.keep_alive);
    let framing = if dechunk {
        Framing::Dechunked
    } else {
        Framing::Same
    };
    write::response(
        out.bytes(),
        head,
        upstream.head_bytes(),
        terms.edits,
        framing,
        persist,
    );
    upstream.consume_head(head.len);
    deadline.response_started();
    terms.progress.status.set(Some(head.status));
    let mut delimit = match head.body {
        ResponseBody::None => Delimit::Length(0),
        ResponseBody::Length(n) => Delimit::Length(n),
        ResponseBody::Chunked if dechunk => Delimit::Dechunk,
        ResponseBody::Chunked => Delimit::Chunked,
        ResponseBody::UntilClose => Delimit::UntilClose,
    };

    // A length-delimited body that came in behind the head goes out in the
    // same send as the new head, from its own buffer. This send and the
    // head go out under the request deadline alone; each later send of body
    // data also has the send timeout, a timer per buffer of up to 32 KiB,
    // so a small response costs no timer at all.
    let mut first = None;
    if let Delimit::Length(n @ 1..) = delimit {
        // (Bytes behind a bodiless response stay unread: they mark the
        // upstream connection as not reusable.)
        if let Some((buf, range)) = upstream.take_pending() {
            let take = (range.len() as u64).min(n) as usize;
            delimit = Delimit::Length(n - take as u64);
            first = Some((buf, range.start..range.start + take));
        }
    }
    let (first_len, first_end) = first.as_ref().map_or((0, 0), |(_, r)| (r.len(), r.end));
    let tally = Tally {
        worker: &counters.bytes_from_upstreams,
        exchange: &terms.progress.sent,
        keep: None,
    };
    let head_len = out.bytes().len() as u64;
    deadline.sending(true);
    let sent = send_all(client, out.take(), 0, first, None).await;
    deadline.sending(false);
    match sent {
        Ok((head_buf, buf)) => {
            out.put(head_buf);
            tally.add(first_len as u64);
            let progress = &terms.progress.sent;
            progress.set(progress.get() + head_len);
            if let Some(buf) = buf {
                // Bytes past the body stay for the next read.
                upstream.unread(buf, first_end);
            }
        }
        Err(e) => return Response::Client(e),
    }

    let reusable = head.keep_alive && head.body != ResponseBody::UntilClose;
    let sent = body::forward(
        upstream,
        client,
        delimit,
        None,
        Some(terms.send_timeout),
        tally,
        Watch::Response(deadline, terms.request_timeout),
    )
    .await;
    match sent {
        BodyEnd::Done => Response::Done {
            close: persist.closes(),
            reusable,
        },
        BodyEnd::SinkFailed(e) => Response::Client(e),
        BodyEnd::Cut | BodyEnd::SourceFailed | BodyEnd::Invalid | BodyEnd::TooLarge => {
            Response::Aborted
        }
    }
}

/// Reads response heads until a final one; interim (1xx) ones go on to an
/// HTTP/1.1 client as they come.
async fn read_final_head(
    upstream: &mut Inbound,
    client: &Sender,
    head: &mut ResponseHead,
    out: &mut HeadBuf,
    terms: &Terms<'_>,
    deadline: &Deadline,
    copied: &Counter,
) -> Result<(), Response> {
    let limits = terms.limits;
    loop {
        let read = upstream
            .read_head(
                |bytes| {
                    head.parse(
                        bytes,
                        limits.max_header_bytes,
                        limits.max_headers,
                        terms.is_head,
                    )
                },
                limits.max_header_bytes,
                || {},
                copied,
            )
            .await;
        match read {
            Ok(()) => {
                if terms.progress.first_byte.get().is_none() {
                    terms.progress.first_byte.set(Some(rt::now()));
                }
            }
            Err(HeadFailure::Invalid(e)) => {
                return Err(Response::Before(Reason::UpstreamBadResponse, e.detail))
            }
            Err(_) => {
                return Err(Response::Before(
                    Reason::UpstreamReset,
                    "the upstream closed the connection before a complete response head",
                ))
            }
        }
        if !head.is_interim() {
            return Ok(());
        }
        if terms.version == Version::Http11 {
            write::interim(out.bytes(), head, upstream.head_bytes());
            let head_len = out.bytes().len() as u64;
            deadline.sending(true);
            let sent = send_all(client, out.take(), 0, None, None).await;
            deadline.sending(false);
            match sent {
                Ok((head_buf, _)) => {
                    out.put(head_buf);
                    let sent = &terms.progress.sent;
                    sent.set(sent.get() + head_len);
                }
                Err(e) => return Err(Response::Client(e)),
            }
            // A client that waited for a `100 Continue` has it now.
            deadline.body_now_due();
        }
        upstream.consume_head(head.len);
    }
}
