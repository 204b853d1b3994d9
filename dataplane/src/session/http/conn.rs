//! The request loop of a client connection: read a head, route it, proxy
//! it or answer it here, and go on, close, or linger.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::mem::MaybeUninit;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use super::clock::{Clock, Phase};
use super::ctx::{After, Answer, Conn, Ctx, Ended, Newer};
use super::exchange;
use super::inbound::HeadFailure;
use super::send::send_all;
use super::write::{self, Persist};
use crate::counter::Counter;
use crate::proto::h1::request::RequestBody;
use crate::proto::h1::Limits;
use crate::request::Reason;
use crate::rt::select::select;
use crate::rt::time::{sleep, Sleep};
use crate::table::route::RouteAction;

/// How long a connection closed after an error answer keeps reading (and
/// dropping) what the client still sends, so that closing with unread bytes
/// does not reset the connection before the client read the answer.
const LINGER: Duration = Duration::from_secs(2);
/// The most a lingering close reads before giving up: 1 MiB.
const LINGER_BYTES: usize = 1 << 20;
/// How long a drain keeps a connection that waits for its next request.
/// A client sending requests back to back has the next one on its way (or
/// written a moment ago) when the drain begins: closing at once would
/// lose it. Kept open, the connection gets that request, answers it with
/// `connection: close` and ends cleanly. One that stays quiet this long
/// is between bursts; closing it then is the ordinary idle close, which
/// clients handle (they see the FIN before their next use). A second is
/// hundreds of round trips on any network ringway serves, and short
/// beside the drain timeout (30 s by default).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

impl Conn {
    /// Serves requests until the connection ends, or until a request
    /// arrives once `newer` has a newer table. `head_ready`: the head of the
    /// first request is read already.
    pub(super) async fn run(
        &mut self,
        ctx: &Ctx<'_>,
        clock: &Clock,
        newer: &Newer<'_>,
        mut head_ready: bool,
    ) -> Ended {
        let limits = Limits {
            max_request_line: ctx.service.limits.max_request_line,
            max_header_bytes: ctx.service.limits.max_header_bytes,
            max_headers: ctx.service.limits.max_headers,
            path_rules: ctx.service.path_rules,
        };
        let timeouts = ctx.service.timeouts;
        let draining = &ctx.http.draining;
        loop {
            let read = if std::mem::take(&mut head_ready) {
                Ok(())
            } else {
                // The first request must begin within the header timeout: a
                // connection that never sends a byte is not held for the
                // idle timeout (minutes) meant for keep-alive clients.
                let wait = if self.served {
                    timeouts.idle
                } else {
                    timeouts.header.min(timeouts.idle)
                };
                clock.enter(Phase::Idle, wait);
                let copied = &ctx.counters.copied_bytes;
                self.read_head(&limits, timeouts.header, clock, draining, copied)
                    .await
            };
            let after = match read {
                Ok(()) => {
                    self.served = true;
                    if let Some((table, index)) = newer(ctx.table.generation) {
                        return Ended::Newer(table, index);
                    }
                    ctx.listener.requests.add(1);
                    let after = match self.request(ctx, clock).await {
                        Ok(after) => after,
                        Err(answer) => self.answer(ctx, clock, answer).await,
                    };
                    // Answers written here leave the head unread; the next
                    // request starts after it either way.
                    self.inbound.consume_head(self.req.len);
                    after
                }
                Err(HeadFailure::Closed | HeadFailure::Cut | HeadFailure::Failed) => After::Close,
                Err(HeadFailure::Invalid(e)) => {
                    ctx.listener.requests.add(1);
                    let answer = Answer::new(
                        ctx.listener,
                        Reason::of_request_head(e.kind),
                        e.detail,
                        true,
                    );
                    self.answer(ctx, clock, answer).await
                }
            };
            if !self.next(clock, after).await {
                return Ended::Closed;
            }
        }
    }

    /// Reads the next request head. Once the worker drains, a connection
    /// that has received no byte of one is closed after [`DRAIN_GRACE`] of
    /// quiet, never while a request is arriving or already here.
    async fn read_head(
        &mut self,
        limits: &Limits,
        header_timeout: Duration,
        clock: &Clock,
        draining: &Cell<bool>,
        copied: &Counter,
    ) -> Result<(), HeadFailure> {
        let req = &mut self.req;
        let client = &self.client;
        let read = self.inbound.read_head(
            |bytes| req.parse(bytes, limits),
            limits.max_header_bytes,
            || clock.enter(Phase::Header, header_timeout),
            copied,
        );
        let mut read = pin!(read);
        let mut grace: Option<Sleep> = None;
        poll_fn(|cx| {
            // What was received already is read first: a request that
            // arrived as the drain began is served, not dropped.
            if let Poll::Ready(read) = read.as_mut().poll(cx) {
                return Poll::Ready(read);
            }
            if !draining.get() || clock.phase() != Phase::Idle {
                return Poll::Pending;
            }
            loop {
                let timer = grace.get_or_insert_with(|| sleep(DRAIN_GRACE));
                if Pin::new(timer).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                grace = None;
                // Bytes the kernel holds that no receive has delivered yet
                // would turn the close into a reset and lose a request:
                // wait for them instead (the armed receive brings them).
                if !bytes_waiting(client) {
                    return Poll::Ready(Err(HeadFailure::Closed));
                }
            }
        })
        .await
    }

    /// Handles one request whose head was just read. An `Err` is an answer
    /// ringway must write itself.
    async fn request<'a>(&mut self, ctx: &Ctx<'a>, clock: &Clock) -> Result<After, Answer<'a>> {
        let service = ctx.service;
        // An answer ringway writes closes the connection when the request
        // has a body (it is left unread) or the client does not keep it.
        let has_body = !matches!(self.req.body, RequestBody::None | RequestBody::Length(0));
        // A draining worker ends each keep-alive connection by saying so on
        // its next answer (proxied answers look at the flag themselves).
        let close = has_body || !self.req.keep_alive || ctx.http.draining.get();
        if self.req.upgrade {
            return Err(Answer::new(
                ctx.listener,
                Reason::NotImplemented,
                "protocol upgrades and CONNECT are not supported",
                true,
            ));
        }
        if let (RequestBody::Length(n), Some(max)) = (self.req.body, service.limits.max_body) {
            if n > max {
                return Err(Answer::new(
                    ctx.listener,
                    Reason::BodyTooLarge,
                    "the request body is larger than this listener accepts",
                    true,
                ));
            }
        }
        let view = crate::routing::h1::view(&self.req, self.inbound.head_bytes());
        let found = crate::routing::find(&service.routes, &view);
        let Some((index, route)) = found else {
            return Err(Answer::new(
                ctx.listener,
                Reason::NoRoute,
                "no route matches this request",
                close,
            ));
        };
        let tally = route.tally.worker(ctx.http.worker);
        tally.requests.add(1);
        match &route.action {
            RouteAction::Forward(forward) => {
                exchange::proxy(self, ctx, clock, index, route, forward, close).await
            }
            RouteAction::Redirect(to) => {
                let bytes = self.inbound.head_bytes();
                let edits = &route.response_headers;
                let persist = Persist::of(close, self.req.version, self.req.keep_alive);
                write::redirect(self.out.bytes(), to, &self.req, bytes, edits, persist);
                tally.response(to.status);
                Ok(self.send_own(ctx, clock, persist.closes()).await)
            }
            RouteAction::Direct(answer) => {
                let head_only = self.req.is_head(self.inbound.head_bytes());
                let edits = &route.response_headers;
                let persist = Persist::of(close, self.req.version, self.req.keep_alive);
                write::direct(self.out.bytes(), answer, edits, persist, head_only);
                tally.response(answer.status);
                Ok(self.send_own(ctx, clock, persist.closes()).await)
            }
        }
    }

    /// Writes ringway's own answer, counted in its tally. (The request
    /// head, if one was parsed, says whether the client keeps the
    /// connection; answers to heads that failed to parse always close.)
    async fn answer(&mut self, ctx: &Ctx<'_>, clock: &Clock, answer: Answer<'_>) -> After {
        let Some(status) = answer.reason.status() else {
            return After::Close;
        };
        answer.tally.error(answer.reason);
        answer.tally.response(status);
        let persist = Persist::of(answer.close, self.req.version, self.req.keep_alive);
        write::error(
            self.out.bytes(),
            answer.reason,
            status,
            &answer.detail,
            persist,
        );
        self.send_own(ctx, clock, persist.closes()).await
    }

    /// Sends the answer in the head buffer; then reads on, or closes.
    async fn send_own(&mut self, ctx: &Ctx<'_>, clock: &Clock, close: bool) -> After {
        let timeout = ctx.service.timeouts.send;
        // The send has its own timeout and a linger its own bound: the
        // request's deadline no longer applies.
        clock.enter(Phase::Answering, timeout + LINGER);
        let timeout = Some(timeout);
        match send_all(&self.client, self.out.take(), 0, None, timeout).await {
            Ok((out, _)) => {
                self.out.put(out);
                if close {
                    After::Linger
                } else {
                    After::Next
                }
            }
            Err(_) => {
                // The answer is cut: say so with a reset.
                let _ = self.client.reset_on_close();
                After::Close
            }
        }
    }

    /// Acts on `after`; returns whether to read the next request.
    async fn next(&mut self, clock: &Clock, after: After) -> bool {
        match after {
            After::Next => true,
            After::Close => false,
            After::Linger => {
                clock.enter(Phase::Answering, LINGER * 2);
                self.linger().await;
                false
            }
        }
    }

    /// Ends a connection whose deadline passed.
    pub(super) async fn timed_out(&mut self, ctx: &Ctx<'_>, clock: &Clock) {
        let answer = match clock.phase() {
            Phase::Idle => {
                ctx.counters.idle_timeouts.add(1);
                return;
            }
            // Writing an answer of its own, or lingering: nothing more to
            // say, the connection just closes.
            Phase::Answering => return,
            Phase::Header => {
                ctx.listener.requests.add(1);
                Answer::new(
                    ctx.listener,
                    Reason::HeaderTimeout,
                    "the request head did not arrive in time",
                    true,
                )
            }
            Phase::Exchange {
                route,
                target,
                started,
            } => {
                // A client too slow to send its body or to read the response
                // is the client's fault: counted on the listener, never on
                // the upstream's cluster.
                if let Some(reason) = clock.client_fault() {
                    if started || reason.status().is_none() {
                        ctx.listener.error(reason);
                        let _ = self.client.reset_on_close();
                        return;
                    }
                    Answer::new(
                        ctx.listener,
                        reason,
                        "the request body did not arrive in time",
                        true,
                    )
                } else {
                    let Some(tally) = exchange::target_tally(ctx, route, target) else {
                        return;
                    };
                    if started {
                        // The client has part of the response: all it can be
                        // told is that the response is cut short.
                        tally.error(Reason::UpstreamTimeout);
                        let _ = self.client.reset_on_close();
                        return;
                    }
                    Answer::new(
                        tally,
                        Reason::UpstreamTimeout,
                        "the upstream did not answer in time",
                        true,
                    )
                }
            }
        };
        let after = self.answer(ctx, clock, answer).await;
        self.next(clock, after).await;
    }

    /// Sends our FIN, then reads and drops what the client still sends for a
    /// while, so unread bytes do not turn the close into a reset that could
    /// destroy the answer before the client read it.
    async fn linger(&mut self) {
        let _ = self.client.shutdown_write();
        let drain = async {
            let mut read = 0;
            while read < LINGER_BYTES {
                match self.inbound.next().await {
                    Ok(Some((_, range))) => read += range.len(),
                    _ => return,
                }
            }
        };
        let _ = select(drain, sleep(LINGER)).await;
    }
}

/// Whether the client has sent bytes that no receive has delivered yet: a
/// non-blocking peek, one syscall, made only when a drain closes an idle
/// connection.
fn bytes_waiting(client: &crate::rt::net::TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit()];
    matches!(
        client
            .socket()
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT),
        Ok(n) if n > 0
    )
}
