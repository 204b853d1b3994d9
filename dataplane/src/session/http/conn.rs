//! The HTTP/1 connection driver: wait for a request, read its head, route
//! it, answer it here or hand it to an exchange, settle its outcome, and go
//! on, close, or linger.
//!
//! A connection between requests holds only its transport, its unread
//! bytes and a few cells. Everything a request needs comes when its first
//! byte does and goes back when it is over: the heads and head buffers
//! from the worker's free list ([`Lent`]), and the futures of every step,
//! the exchange's included, in a block of the worker's
//! ([`crate::rt::reuse`]).

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::access_log;
use super::clock::{Clock, Phase};
use super::ctx::{After, Conn, Ctx, Failure, Newer, Site, Worker};
use super::exchange;
use super::fault;
use super::inbound::HeadFailure;
use super::parts::{Lent, Parts};
use super::send::{send_all, HeadBuf};
use super::tracing::{self, Trace};
use super::write::{self, Persist};
use crate::proto::h1::request::{RequestBody, RequestHead};
use crate::proto::h1::Limits;
use crate::request::answer::{Answer, Location};
use crate::request::{Fault, Outcome, Reason};
use crate::rt;
use crate::rt::reuse::recycled;
use crate::rt::select::select;
use crate::rt::time::{sleep, Sleep};
use crate::table::route::{HeaderEdits, Redirect, RouteAction};
use crate::table::tally::HttpCounters;
use crate::table::Cluster;
use crate::transport::{Scheme, Sender};

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

/// How one request's turn on the connection ended.
enum Turn {
    /// Wait for the next request.
    Next,
    /// The connection is done.
    Closed,
    /// A newer table came: the head just read is to be served on it.
    Newer(std::rc::Rc<crate::upstream::LocalTable>, usize),
}

impl Conn {
    /// Serves requests until the connection ends. Between requests it moves
    /// to the table `newer` finds: a request that arrives once there is a
    /// newer table is served on it.
    // Not an async fn: that would keep the arguments twice (rust#62958),
    // and this future is in every connection's, idle or not.
    #[allow(clippy::manual_async_fn)]
    pub(super) fn serve_requests<'a, W: Worker>(
        &'a mut self,
        site: &'a mut Site<W>,
        clock: &'a Clock,
    ) -> impl Future<Output = ()> + 'a {
        async move {
            loop {
                if self.held.is_none() {
                    let Some(service) = site.service() else {
                        return;
                    };
                    // The first request must begin within the header
                    // timeout: a connection that never sends a byte is not
                    // held for the idle timeout (minutes) meant for
                    // keep-alive clients.
                    let timeouts = &service.timeouts;
                    let wait = if self.served {
                        timeouts.idle
                    } else {
                        timeouts.header.min(timeouts.idle)
                    };
                    // A served request whose route has its own idle
                    // timeout left the clock idle with that wait (see
                    // `turn`); nothing else leaves it idle after a request.
                    if !(self.served && clock.phase() == Phase::Idle) {
                        clock.enter(Phase::Idle, wait);
                    }
                    if !self.await_request(&site.worker.http().draining).await {
                        return;
                    }
                }
                // From the first byte of a request to its end, everything
                // (the request's context included) lives in a block of the
                // worker's, not in this future.
                let turn = recycled(|| async {
                    let worker = &site.worker;
                    let newer = |generation| worker.newer(generation);
                    match site.ctx() {
                        Some(ctx) => self.turn(&ctx, clock, &newer).await,
                        None => Turn::Closed,
                    }
                })
                .await;
                match turn {
                    Turn::Next => {}
                    Turn::Closed => return,
                    // The head of the next request is read; it is served on
                    // the newer table.
                    Turn::Newer(table, index) => (site.local, site.listener) = (table, index),
                }
            }
        }
    }

    /// Waits until the client sends something (or closes). Once the worker
    /// drains, a connection that has received no byte of a request is
    /// closed after [`DRAIN_GRACE`] of quiet, never while one is arriving
    /// or already here. Completes with whether to read a request.
    fn await_request<'a>(
        &'a mut self,
        draining: &'a Cell<bool>,
    ) -> impl Future<Output = bool> + 'a {
        self.inbound.release_scratch();
        let client = &self.client;
        let inbound = &mut self.inbound;
        // Boxed: made only once a drain begins, and kept out of every idle
        // connection's future.
        let mut grace: Option<Box<Sleep>> = None;
        poll_fn(move |cx| {
            // What was received already is read first: a request that
            // arrived as the drain began is served, not dropped.
            match inbound.poll_ready(cx) {
                Poll::Ready(ready) => return Poll::Ready(ready.is_ok()),
                Poll::Pending if !draining.get() => return Poll::Pending,
                Poll::Pending => {}
            }
            loop {
                let timer = grace.get_or_insert_with(|| Box::new(sleep(DRAIN_GRACE)));
                if Pin::new(&mut **timer).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                grace = None;
                // Bytes the kernel holds that no receive has delivered yet
                // would turn the close into a reset and lose a request:
                // wait for them instead (the armed receive brings them).
                if !client.bytes_waiting() {
                    return Poll::Ready(false);
                }
            }
        })
    }

    /// One request, from its first byte (or its held head) to its end.
    async fn turn(&mut self, ctx: &Ctx<'_>, clock: &Clock, newer: &Newer<'_>) -> Turn {
        let (mut parts, read) = match self.held.take() {
            Some(parts) => (parts, Ok(())),
            None => {
                let mut parts = Lent::take();
                self.inbound.swap_scratch(&mut parts.scratch);
                let read = self.read_head(ctx, clock, &mut parts.req).await;
                (parts, read)
            }
        };
        let mut idle = None;
        let after = match read {
            Ok(()) => {
                self.served = true;
                if let Some((table, index)) = newer(ctx.table.generation) {
                    self.held = Some(parts);
                    return Turn::Newer(table, index);
                }
                ctx.listener.requests.add(1);
                let mut outcome = Outcome::new(rt::now());
                outcome.received = parts.req.len as u64;
                let after = match self.request(ctx, clock, &mut parts, &mut outcome).await {
                    Ok(after) => after,
                    Err(failure) => {
                        self.answer(ctx, clock, &mut parts, &mut outcome, failure)
                            .await
                    }
                };
                // Answers written here leave the head unread; the next
                // request starts after it either way.
                self.inbound.consume_head(parts.req.len);
                settle(ctx, &mut outcome, &mut parts, &self.client);
                idle = outcome
                    .route
                    .and_then(|r| ctx.service.routes.get(r))
                    .and_then(|r| r.limits.idle_timeout);
                after
            }
            Err(HeadFailure::Closed | HeadFailure::Cut | HeadFailure::Failed) => After::Close,
            Err(HeadFailure::Invalid(e)) => {
                ctx.listener.requests.add(1);
                let mut outcome = Outcome::new(rt::now());
                outcome.received = self.inbound.unparsed_len() as u64;
                let failure = Failure::new(Reason::of_request_head(e.kind), e.detail, true);
                let after = self
                    .answer(ctx, clock, &mut parts, &mut outcome, failure)
                    .await;
                settle(ctx, &mut outcome, &mut parts, &self.client);
                after
            }
        };
        self.inbound.swap_scratch(&mut parts.scratch);
        drop(parts);
        if self.next(clock, after).await {
            // The route's own idle timeout, in place of the listener's,
            // for the wait for the next request.
            if let Some(idle) = idle {
                clock.enter(Phase::Idle, idle);
            }
            Turn::Next
        } else {
            Turn::Closed
        }
    }

    /// Reads the next request head into `req`; the header timeout runs from
    /// its first byte if it does not arrive whole at once.
    async fn read_head(
        &mut self,
        ctx: &Ctx<'_>,
        clock: &Clock,
        req: &mut RequestHead,
    ) -> Result<(), HeadFailure> {
        let service = ctx.service;
        let limits = Limits {
            max_request_line: service.limits.max_request_line,
            max_header_bytes: service.limits.max_header_bytes,
            max_headers: service.limits.max_headers,
            path_rules: service.path_rules,
        };
        let header_timeout = service.timeouts.header;
        self.inbound
            .read_head(
                |bytes| req.parse(bytes, &limits),
                limits.max_header_bytes,
                || clock.enter(Phase::Header, header_timeout),
                &ctx.counters.copied_bytes,
            )
            .await
    }

    /// Handles one request whose head was just read. An `Err` is an answer
    /// ringway must write itself.
    async fn request(
        &mut self,
        ctx: &Ctx<'_>,
        clock: &Clock,
        parts: &mut Parts,
        outcome: &mut Outcome,
    ) -> Result<After, Failure> {
        let service = ctx.service;
        let req = &parts.req;
        // An answer ringway writes closes the connection when the request
        // has a body (it is left unread) or the client does not keep it.
        let has_body = !matches!(req.body, RequestBody::None | RequestBody::Length(0));
        // A draining worker ends each keep-alive connection by saying so on
        // its next answer (proxied answers look at the flag themselves).
        let close = has_body || !req.keep_alive || ctx.http.draining.get();
        // Noted first: a request refused below is logged and traced with
        // its request line too.
        let trace = service.tracing.map(|t| {
            Trace::read(&parts.req, self.inbound.head_bytes(), t, || {
                ctx.http.random()
            })
        });
        if let Some(t) = &trace {
            if t.report.any_invalid() {
                ctx.counters.trace_invalid.add(1);
            }
            if t.sampled {
                outcome.trace_id = Some(t.trace_id);
            }
        }
        parts.trace = trace;
        if service.access_log.is_some() || trace.is_some_and(|t| t.sampled) {
            parts.note.note(&parts.req, self.inbound.head_bytes());
        }
        if req.upgrade {
            return Err(Failure::new(
                Reason::NotImplemented,
                "protocol upgrades and CONNECT are not supported",
                true,
            ));
        }
        let view = crate::routing::h1::view(&parts.req, self.inbound.head_bytes())
            .with_peer_identity(self.client.peer_identity());
        let found = crate::routing::find(&service.routes, &view);
        // The route's body limit, where it has one, replaces the
        // listener's.
        let max_body = match found {
            Some((_, route)) => route.max_body(&service.limits),
            None => service.limits.max_body,
        };
        if let (RequestBody::Length(n), Some(max)) = (req.body, max_body) {
            if n > max {
                return Err(Failure::new(
                    Reason::BodyTooLarge,
                    "the request body is larger than the max_body of its route (or listener)",
                    true,
                ));
            }
        }
        // Authorization comes before the route is taken (and before "no
        // route"): a refused client learns nothing of the routes.
        if let Some(authz) = ctx.authz {
            let route = found.map(|(index, _)| index);
            let scratch = &mut parts.authz_path;
            if let Some((reason, detail)) = authz.refusal(&view, route, ctx.http.worker, scratch) {
                return Err(Failure::new(reason, detail, close));
            }
        }
        let Some((index, route)) = found else {
            return Err(Failure::new(
                Reason::NoRoute,
                "no route matches this request",
                close,
            ));
        };
        outcome.route = Some(index);
        route.tally.worker(ctx.http.worker).requests.add(1);
        super::limit::check(route, &view, ctx.peer, close)?;
        match (fault::decide(ctx, route, &view, outcome), &route.fault) {
            (Some(Fault::Abort), Some(f)) => {
                return Ok(self.abort(ctx, clock, parts, f, close, outcome).await)
            }
            (Some(Fault::Delay), Some(f)) => fault::delay(clock, f).await,
            _ => {}
        }
        let req = &parts.req;
        let persist = Persist::of(close, req.version, req.keep_alive);
        let fields = fields(route.response_edits(outcome.fault));
        let answer = match &route.action {
            RouteAction::Forward(forward) => {
                return exchange::proxy(self, parts, ctx, clock, route, forward, close, outcome)
                    .await;
            }
            RouteAction::Redirect(to) => {
                let bytes = self.inbound.head_bytes();
                let location = location(to, self.client.scheme(), req, bytes);
                Answer::redirect(to.status, location, fields)
            }
            RouteAction::Direct(direct) => {
                let head_only = req.is_head(self.inbound.head_bytes());
                let content_type = direct.content_type.as_deref();
                Answer::direct(direct.status, content_type, &direct.body, fields, head_only)
            }
        };
        outcome.answered(answer.status);
        write::answer(parts.out.bytes(), &answer, persist);
        Ok(self
            .send_own(ctx, clock, &mut parts.out, persist.closes(), outcome)
            .await)
    }

    /// Writes ringway's own answer to a request that failed. (The request
    /// head, if one was parsed, says whether the client keeps the
    /// connection; answers to heads that failed to parse always close.)
    async fn answer(
        &mut self,
        ctx: &Ctx<'_>,
        clock: &Clock,
        parts: &mut Parts,
        outcome: &mut Outcome,
        failure: Failure,
    ) -> After {
        let Some(mut answer) = Answer::failure(failure.reason, &failure.detail) else {
            return After::Close;
        };
        answer.retry_after = failure.retry_after;
        outcome.failed(failure.reason);
        outcome.answered(answer.status);
        let persist = Persist::of(failure.close, parts.req.version, parts.req.keep_alive);
        write::answer(parts.out.bytes(), &answer, persist);
        self.send_own(ctx, clock, &mut parts.out, persist.closes(), outcome)
            .await
    }

    /// Sends the answer in the head buffer; then reads on, or closes.
    pub(super) async fn send_own(
        &mut self,
        ctx: &Ctx<'_>,
        clock: &Clock,
        out: &mut HeadBuf,
        close: bool,
        outcome: &mut Outcome,
    ) -> After {
        let timeout = ctx.service.timeouts.send;
        // The send has its own timeout and a linger its own bound: the
        // request's deadline no longer applies.
        clock.enter(Phase::Answering, timeout + LINGER);
        let len = out.bytes().len() as u64;
        match send_all(&self.client, out.take(), 0, None, Some(timeout)).await {
            Ok((sent, _)) => {
                out.put(sent);
                outcome.sent += len;
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

    /// Ends a connection whose deadline passed (an exchange keeps its own).
    pub(super) async fn timed_out(&mut self, ctx: &Ctx<'_>, clock: &Clock) {
        match clock.phase() {
            Phase::Idle => ctx.counters.idle_timeouts.add(1),
            // Writing an answer of its own, or lingering: nothing more to
            // say, the connection just closes.
            Phase::Answering | Phase::Exchange => {}
            Phase::Header => {
                ctx.listener.requests.add(1);
                let mut parts = Lent::take();
                let mut outcome = Outcome::new(rt::now());
                let failure = Failure::new(
                    Reason::HeaderTimeout,
                    "the request head did not arrive in time",
                    true,
                );
                let after = self
                    .answer(ctx, clock, &mut parts, &mut outcome, failure)
                    .await;
                settle(ctx, &mut outcome, &mut parts, &self.client);
                drop(parts);
                self.next(clock, after).await;
            }
        }
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

/// Counts a request that is over from its outcome: its error on the
/// target's tally (on the listener's when the client held things up, or
/// when no target was picked; on the route's when the route's own policy
/// refused it, as its rate limit does), the final status on the target's tally for
/// a proxied response, on the error's for ringway's own answer to a failed
/// request, on the route's for a redirect or a direct response. Its
/// duration is timed at the level its status is counted at (where its
/// error is, when no answer went out), and on its cluster when it had one.
fn settle(ctx: &Ctx<'_>, outcome: &mut Outcome, parts: &mut Parts, client: &Sender) {
    outcome.end(rt::now());
    ctx.counters.requests.add(1);
    access_log::log(ctx, outcome, &parts.note, client);
    if let Some(trace) = parts.trace.filter(|t| t.sampled) {
        let meta = exchange::span_meta(ctx, outcome, &parts.note, client);
        tracing::end_request(ctx, &trace, &meta, outcome);
    }
    // A set of parts serves many requests: what was noted of this one
    // must not be logged or traced for the next.
    parts.note.clear();
    parts.trace = None;
    let listener = ctx.listener;
    let picked = exchange::picked(ctx, outcome);
    let target = picked.map(|t| t.tally.worker(ctx.http.worker));
    let route = outcome
        .route
        .and_then(|r| ctx.service.routes.get(r))
        .map(|r| r.tally.worker(ctx.http.worker));
    let blamed = match (outcome.reason, target, route) {
        (Some(reason), Some(target), _) if !reason.is_clients() => target,
        (Some(reason), None, Some(route)) if reason.is_routes() => route,
        _ => listener,
    };
    if let Some(reason) = outcome.reason {
        blamed.error(reason);
    }
    let duration = outcome.duration();
    if let Some(t) = picked {
        let cluster = ctx.table.cluster(t.cluster);
        cluster
            .tally
            .worker(ctx.http.worker)
            .duration
            .record(duration);
        endpoint_figures(ctx, cluster, outcome, duration);
        if let Some(watch) = &t.watch {
            // A request the client spoiled (a stalled body, an answer not
            // read) tells nothing of the cluster: a rollout never judges it.
            if !outcome.reason.is_some_and(|r| r.is_clients()) {
                watch
                    .worker(ctx.http.worker)
                    .record(failed(outcome), duration);
            }
        }
    }
    let Some(status) = outcome.status else {
        // No answer went out: timed where the error was counted.
        time(blamed, outcome, duration);
        return;
    };
    let tally = if !outcome.own_answer {
        target.unwrap_or(listener)
    } else if outcome.reason.is_some() {
        blamed
    } else {
        route.unwrap_or(listener)
    };
    tally.response(status);
    time(tally, outcome, duration);
}

/// Times the request of `outcome` on `tally`, a traced one as the
/// exemplar of the bucket it fell in.
fn time(tally: &HttpCounters, outcome: &Outcome, duration: Duration) {
    let bucket = tally.duration.record(duration);
    if let Some(trace_id) = outcome.trace_id {
        let unix_ms = crate::latency::unix_ns() / 1_000_000;
        let value_ns = crate::latency::nanos(duration);
        tally.exemplar.set(trace_id, value_ns, bucket, unix_ms);
    }
}

/// Counts the request of `outcome` on the endpoint of `cluster` its last
/// attempt went to: a request, a failure when the endpoint answered 5xx
/// or the exchange broke for a reason not the client's, and its duration.
fn endpoint_figures(ctx: &Ctx<'_>, cluster: &Cluster, outcome: &Outcome, duration: Duration) {
    let Some(tally) = outcome
        .upstream
        .and_then(|a| cluster.endpoint_tallies.of(a))
    else {
        return;
    };
    let cells = tally.worker(ctx.http.worker);
    cells.requests.add(1);
    if failed(outcome) {
        cells.failures.add(1);
    }
    cells.duration.record(duration);
}

/// Whether the request of `outcome` failed upstream: the upstream answered
/// 5xx, or the exchange ended for a reason that is not the client's.
fn failed(outcome: &Outcome) -> bool {
    let answered_5xx = !outcome.own_answer && outcome.status.is_some_and(|s| s >= 500);
    answered_5xx || outcome.reason.is_some_and(|r| !r.is_clients())
}

/// The fields a route sets and adds on the answers it gives.
fn fields(edits: &HeaderEdits) -> [&[crate::request::answer::Field]; 2] {
    [&edits.set, &edits.add]
}

/// Where redirect `to` sends the request `req` (parsed from `buf`), which
/// arrived with `scheme`: what the route names, the request's own scheme,
/// host and normal path otherwise, and its query as sent.
fn location<'a>(
    to: &'a Redirect,
    scheme: Scheme,
    req: &'a RequestHead,
    buf: &'a [u8],
) -> Location<'a> {
    let host: &[u8] = match (&to.host, &req.host) {
        (Some(host), _) => host.as_bytes(),
        (None, Some(r)) => buf.get(r.start as usize..r.end as usize).unwrap_or(&[]),
        (None, None) => &[],
    };
    Location {
        scheme: to.scheme.as_deref().unwrap_or(scheme.as_str()),
        host,
        path: to
            .path
            .as_deref()
            .map_or_else(|| req.normal_path(buf), str::as_bytes),
        query: req.query(buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::h1::path::PathRules;
    use crate::proto::h1::Status;

    fn redirected(raw: &[u8], to: &Redirect, scheme: Scheme) -> String {
        let limits = Limits {
            max_request_line: 8192,
            max_header_bytes: 65536,
            max_headers: 100,
            path_rules: PathRules::DEFAULT,
        };
        let mut head = RequestHead::new();
        let parsed = head.parse(raw, &limits).expect("a valid head");
        assert_eq!(parsed, Status::Complete);
        let answer = Answer::redirect(to.status, location(to, scheme, &head, raw), [&[], &[]]);
        let mut out = Vec::new();
        write::answer(&mut out, &answer, Persist::Default);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn a_redirect_keeps_the_normal_path_and_the_query() {
        let raw = b"GET /a/./%62?q=1 HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut to = Redirect {
            status: 308,
            scheme: Some("https".into()),
            host: None,
            path: None,
        };
        let text = redirected(raw, &to, Scheme::Http);
        assert!(
            text.contains("\r\nlocation: https://h/a/b?q=1\r\n"),
            "{text}"
        );
        to.path = Some("/new".into());
        let text = redirected(raw, &to, Scheme::Http);
        assert!(
            text.contains("\r\nlocation: https://h/new?q=1\r\n"),
            "{text}"
        );
    }

    #[test]
    fn a_redirect_without_a_scheme_keeps_the_transports() {
        let raw = b"GET /x HTTP/1.1\r\nHost: h:8080\r\n\r\n";
        let to = Redirect {
            status: 301,
            scheme: None,
            host: None,
            path: None,
        };
        let text = redirected(raw, &to, Scheme::Http);
        assert!(text.contains("\r\nlocation: http://h:8080/x\r\n"), "{text}");
        let text = redirected(raw, &to, Scheme::Https);
        assert!(
            text.contains("\r\nlocation: https://h:8080/x\r\n"),
            "{text}"
        );
    }
}
