//! Proxying one request, an exchange: pick the target, connect or reuse an
//! upstream connection, send the rewritten head, relay the request body and
//! the response at the same time, and settle what the client connection and
//! the upstream connection do next. An exchange has its own deadline (see
//! [`Deadline`]) and ends with what its request's outcome records: the
//! target, the upstream, the attempts, the status, the bytes, the times.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use super::access_log::HeadNote;
use super::body::{self, BodyEnd, Delimit, Tally, Watch};
use super::clock::Clock;
use super::ctx::{After, Conn, Ctx, Failure};
use super::deadline::Deadline;
use super::inbound::{Inbound, HIGH_WATER_BUFFERS};
use super::mirror;
use super::parts::Parts;
use super::respond::{respond, Progress, Response, Sides, Terms};
use super::retry::{Keep, Tries};
use super::send::send_all;
use super::tracing::{self, Attempt, SpanMeta};
use super::write::{self, Upward};
use crate::buf::Group;
use crate::proto::h1::request::RequestBody;
use crate::request::{Outcome, Reason};
use crate::rt;
use crate::rt::net::{Outgoing, TcpStream};
use crate::rt::select::{select, Either};
use crate::session::ResetIfCut;
use crate::stats::Counters;
use crate::table::breaker::{Kind, OwnedSlot};
use crate::table::lb::Policy;
use crate::table::retry::Cause;
use crate::table::route::{Forward, HttpLimits, PathMatch, Route, RouteAction, Target};
use crate::table::{Cluster, ClusterId};
use crate::transport::{Sender, Transport};
use crate::upstream;
use crate::upstream::connect::{connect_or_reuse, ConnectError, Reached};
use crate::upstream::health::{Health, HOLD_DOWN};
use crate::upstream::load::InFlight;
use crate::upstream::pool::Upstream;

/// Buffers a client's receive may hold during the exchange of a request
/// without a body. Two, not one: a keep-alive client that got its answer
/// often sends its next request before the worker has seen the answer's
/// send complete, and that one segment must not stop and re-arm the
/// receive (a cancel and a new receive: measured at about 2% of requests
/// under closed-loop load with a high water of one).
const QUIET_HIGH_WATER: usize = 2;

/// What the spans of the request of `outcome` name: its head's fields
/// (from `note`), its listener, route and cluster, the client.
pub(super) fn span_meta<'a>(
    ctx: &Ctx<'a>,
    outcome: &Outcome,
    note: &'a HeadNote,
    client: &Sender,
) -> SpanMeta<'a> {
    let [method, host, target, _] = note.texts();
    SpanMeta {
        method,
        host,
        target,
        tls: tracing::over_tls(client),
        listener: ctx.listener_name,
        route: outcome
            .route
            .and_then(|r| ctx.service.routes.get(r))
            .map(|r| &r.name),
        cluster: picked(ctx, outcome).map(|t| &ctx.table.cluster(t.cluster).name),
        client: ctx.peer,
        fault: outcome.fault,
    }
}

/// The target the request of `outcome` picked, if it picked one of a
/// route that still forwards there.
pub(super) fn picked<'a>(ctx: &Ctx<'a>, outcome: &Outcome) -> Option<&'a Target> {
    match &ctx.service.routes.get(outcome.route?)?.action {
        RouteAction::Forward(f) => f.targets.get(outcome.target?),
        _ => None,
    }
}

/// How the relay of an exchange ended.
enum Relayed {
    /// The response half ended (the request body may still be under way).
    Response(Response),
    /// The client closed or failed in the middle of its request body.
    ClientGone,
    /// The request body is invalid or too large.
    BadBody(Reason, &'static str),
    /// No response head came within the per-try timeout.
    TryTimedOut,
}

/// One exchange's route and target, and what the request decided for it.
struct Plan<'a> {
    route: &'a Route,
    forward: &'a Forward,
    target: &'a Target,
    /// Whether the connection closes after an answer of ringway's own, as
    /// the request loop decided for the request.
    close_on_error: bool,
}

/// Proxies the request whose head is in `parts`, matched by route `index`
/// (`route`), which forwards by `forward`. An `Err` is an answer ringway
/// must write itself; `close_on_error` says whether the connection closes
/// after such an answer. What happened goes into `outcome`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn proxy<'a>(
    conn: &mut Conn,
    parts: &mut Parts,
    ctx: &Ctx<'a>,
    clock: &Clock,
    route: &'a Route,
    forward: &'a Forward,
    close_on_error: bool,
    outcome: &mut Outcome,
) -> Result<After, Failure> {
    let http = ctx.http;
    let (pick, target) = pick_target(forward, http.random());
    target.tally.worker(http.worker).requests.add(1);
    outcome.target = Some(pick);
    let cluster = ctx.table.cluster(target.cluster);
    // Every request counts towards the cluster's retry budget.
    cluster.budget.request(http.worker, rt::now());
    // The cluster's `max_requests`: held until the exchange ends.
    let _request = match &cluster.breaker {
        Some(breaker) => match breaker.enter(Kind::Request) {
            Some(slot) => Some(slot),
            None => {
                let (reason, detail) = overflow(cluster, Kind::Request);
                return Err(Failure {
                    reason,
                    detail: detail.into(),
                    close: close_on_error,
                    retry_after: None,
                });
            }
        },
        None => None,
    };
    // The exchange keeps its own deadline: the connection's has none while
    // it runs. A client that asked `Expect: 100-continue` may hold its body
    // back until it hears from the upstream; until then a wait for its
    // body is not its fault.
    clock.enter_exchange();
    let request_timeout = route.request_timeout(&ctx.service.timeouts);
    let deadline = Deadline::new(request_timeout, !parts.req.expect_continue);
    let progress = Progress::default();
    let plan = Plan {
        route,
        forward,
        target,
        close_on_error,
    };
    let run = exchange(conn, parts, ctx, &plan, &deadline, &progress, outcome);
    let ended = match select(run, deadline.passed()).await {
        Either::Left(ended) => ended,
        Either::Right(()) => expired(&conn.client, &deadline, outcome),
    };
    outcome.received += progress.received.get();
    outcome.sent += progress.sent.get();
    outcome.timings.first_byte = progress.first_byte.get();
    if let (Some(ready), Some(first)) = (outcome.timings.connected, outcome.timings.first_byte) {
        let waited = first.saturating_duration_since(ready);
        cluster.tally.worker(http.worker).first_byte.record(waited);
    }
    if let Some(status) = progress.status.get() {
        outcome.responded(status);
    }
    let said = Said::of(ended.as_ref().err().map(|f| f.reason), outcome);
    settle_health(ctx, cluster, outcome.upstream, said);
    if let Some(in_flight) = progress.in_flight.take() {
        settle_load(&in_flight, cluster, outcome, said, progress.body_done.get());
    }
    ended
}

/// What an exchange says of the endpoint it reached.
#[derive(Debug, Clone, Copy)]
enum Said {
    /// It failed: a reset, a bad or cut response, no answer in time.
    Failed,
    /// It answered with this status.
    Answered(u16),
    /// Nothing: the client was at fault, or no upstream was reached.
    Nothing,
}

impl Said {
    fn of(failure: Option<Reason>, outcome: &Outcome) -> Self {
        match failure.or(outcome.reason) {
            Some(
                Reason::UpstreamReset
                | Reason::UpstreamBadResponse
                | Reason::UpstreamTimeout
                | Reason::UpstreamAbortedBody,
            ) => Said::Failed,
            Some(_) => Said::Nothing,
            None => match outcome.status {
                Some(status) if !outcome.own_answer => Said::Answered(status),
                _ => Said::Nothing,
            },
        }
    }
}

/// What an exchange tells the worker of its endpoint's health: a gateway
/// failure (a reset, a bad or cut response, no answer in time, a
/// 502/503/504 from the upstream) counts towards ejecting it; any other
/// answer from it ends its run of failures (and returns it, if this was
/// its probe); an exchange that failed for the client's sake, or before an
/// upstream was reached (connect failures count where they happen), tells
/// nothing.
fn settle_health(ctx: &Ctx<'_>, cluster: &Cluster, endpoint: Option<SocketAddr>, said: Said) {
    let Some(addr) = endpoint else {
        return;
    };
    let health = &ctx.upstream.upstreams.health;
    let now = rt::now();
    match said {
        Said::Failed | Said::Answered(502..=504) => {
            upstream::connect::gateway_failure(health, addr, cluster, ctx.counters, now);
        }
        Said::Answered(_) => upstream::connect::success(health, addr, cluster, now),
        Said::Nothing => {}
    }
}

/// What an exchange tells its endpoint's load record, under peak-EWMA:
/// the time from the whole request having gone out (`body_done`; the head
/// for a request without a body) to the response's head coming in, so that
/// a client that trickles its body cannot make an endpoint look slow (an
/// answer that came before the body ended gives no sample); for the
/// upstream's failure, or a 429/502/503/504 from it, a penalty; for an
/// exchange that says nothing of the endpoint, nothing. Dropping
/// `in_flight` after this takes the request off the endpoint's count.
fn settle_load(
    in_flight: &InFlight,
    cluster: &Cluster,
    outcome: &Outcome,
    said: Said,
    body_done: Option<Instant>,
) {
    let Policy::PeakEwma(ewma) = &cluster.balance.policy else {
        return;
    };
    let now = rt::now();
    let load = in_flight.load();
    match said {
        Said::Failed | Said::Answered(429 | 502..=504) => load.penalize(ewma, now),
        Said::Answered(_) => {
            if let (Some(done), Some(first)) = (body_done, outcome.timings.first_byte) {
                let sent = outcome.timings.connected.map_or(done, |c| c.max(done));
                if first >= sent {
                    load.observe(ewma, first - sent, now);
                }
            }
        }
        Said::Nothing => {}
    }
}

/// What the exchange's deadline passing means: the client's fault if it
/// was holding things up, else the upstream's; an answer if the client has
/// no part of the response yet, else a reset.
fn expired(client: &Sender, deadline: &Deadline, outcome: &mut Outcome) -> Result<After, Failure> {
    // A client too slow to send its body or to read the response is the
    // client's fault: counted on the listener, never on the upstream's
    // cluster.
    if let Some(reason) = deadline.client_fault() {
        if deadline.started() || reason.status().is_none() {
            outcome.failed(reason);
            let _ = client.reset_on_close();
            return Ok(After::Close);
        }
        return Err(Failure::new(
            reason,
            "the request body did not arrive in time",
            true,
        ));
    }
    if deadline.started() {
        // The client has part of the response: all it can be told is that
        // the response is cut short.
        outcome.failed(Reason::UpstreamTimeout);
        let _ = client.reset_on_close();
        return Ok(After::Close);
    }
    Err(Failure::new(
        Reason::UpstreamTimeout,
        "the upstream did not answer in time",
        true,
    ))
}

/// The exchange, up to its end or its deadline: its attempts, each on an
/// upstream connection, until one ends in an answer for the client or a
/// failure that is not retried.
async fn exchange(
    conn: &mut Conn,
    parts: &mut Parts,
    ctx: &Ctx<'_>,
    plan: &Plan<'_>,
    deadline: &Deadline,
    progress: &Progress,
    outcome: &mut Outcome,
) -> Result<After, Failure> {
    let http = ctx.http;
    let service = ctx.service;
    let (route, forward, target) = (plan.route, plan.forward, plan.target);
    let req = &parts.req;
    let keep_alive = req.keep_alive;
    let request_body = match req.body {
        RequestBody::None => Delimit::Length(0),
        RequestBody::Length(n) => Delimit::Length(n),
        RequestBody::Chunked => Delimit::Chunked,
    };
    let cluster = ctx.table.cluster(target.cluster);
    let policy = forward.retry.as_deref().unwrap_or(&cluster.retry);
    let tries = Tries::new(policy, cluster, req, conn.inbound.head_bytes());
    // A body is kept to be sent again only when the request may be retried
    // after it went, and only up to `retry_buffer`: a longer one is never
    // sent twice.
    let bodiless = request_body == Delimit::Length(0);
    let fits = match request_body {
        Delimit::Length(n) => n <= u64::from(policy.buffer),
        _ => policy.buffer > 0,
    };
    let keep = (!bodiless && fits && tries.marks()).then(|| {
        let head = &conn.inbound.head_bytes()[..req.len];
        Keep::new(
            std::mem::take(&mut parts.kept),
            head,
            policy.buffer as usize,
        )
    });
    let request_done = Cell::new(false);
    // The request as it stands can go again: all of it went and all of it
    // is at hand.
    let replayable =
        || request_done.get() && (bodiless || keep.as_ref().is_some_and(|k| k.whole()));
    let retry_status =
        |status| tries.wants_status(status) && replayable() && tries.take(Cause::Status, rt::now());
    let terms = Terms {
        is_head: req.is_head(conn.inbound.head_bytes()),
        version: req.version,
        keep_alive,
        draining: &http.draining,
        request_done: &request_done,
        edits: route.response_edits(outcome.fault),
        limits: HttpLimits {
            max_body: route.max_body(&service.limits),
            ..service.limits
        },
        send_timeout: service.timeouts.send,
        request_timeout: route.request_timeout(&service.timeouts),
        progress,
        retry_status: &retry_status,
    };
    let rewrite = match (&forward.rewrite_prefix, &route.matcher.path) {
        (Some(to), Some(PathMatch::Prefix(from))) => Some((&**from, &**to)),
        _ => None,
    };
    // The client's verified identity, held by a clone of its TLS sender
    // (the connection is borrowed mutably by each attempt).
    let tls_client = matches!(conn.client, Sender::Tls(_)).then(|| conn.client.clone());
    let mut up = Upward {
        identity: tls_client.as_ref().and_then(Sender::peer_identity),
        edits: &route.request_headers,
        rewrite,
        client: ctx.peer,
        proto: conn.client.scheme().as_str(),
        trust_forwarded: service.trust_forwarded,
        request_id: (u128::from(http.random()) << 64) | u128::from(http.random()),
        attempt: None,
        trace: None,
    };
    outcome.request_id = Some(up.request_id);
    let trace = parts.trace;
    let attempt = Attempt::new();
    // Ends the running attempt's client span (sampled requests only).
    let end_attempt = |parts: &Parts,
                       outcome: &Outcome,
                       conn: &Conn,
                       endpoint: Option<SocketAddr>,
                       status: Option<u16>,
                       error: Option<Reason>| {
        if let Some(t) = &trace {
            let meta = span_meta(ctx, outcome, &parts.note, &conn.client);
            attempt.end(ctx, t, &meta, endpoint, status, error);
        }
    };
    // What a hashing policy hashes, read once: the head is gone from the
    // client's side once a body follows it.
    let key = cluster.balance.policy.hash_on().and_then(|on| {
        let view = crate::routing::h1::view(req, conn.inbound.head_bytes());
        upstream::key::of_request(on, &view, ctx.peer)
    });

    // Whether an attempt has begun relaying: the client's head is then
    // consumed (when a body follows) and its body read, so later attempts
    // send what was kept.
    let mut relayed = false;
    let ended = loop {
        up.attempt = tries.marks().then_some(outcome.retries + 1);
        let client_span = attempt.begin(trace.as_ref(), || http.random());
        up.trace = trace.map(|t| t.outgoing(client_span));
        let replay = relayed.then_some(keep.as_ref()).flatten();
        let opened = open(
            conn,
            parts,
            ctx,
            target.cluster,
            cluster,
            &up,
            key,
            replay,
            outcome,
        );
        let upstream = match opened.await {
            Ok(upstream) => upstream,
            Err(Opening::Refused(reason, detail)) => {
                end_attempt(parts, outcome, conn, None, None, Some(reason));
                break Err(Failure {
                    reason,
                    detail: detail.into(),
                    close: plan.close_on_error,
                    retry_after: None,
                });
            }
            Err(Opening::Broke(cause, addr)) => {
                let error = Some(Reason::UpstreamReset);
                end_attempt(parts, outcome, conn, Some(addr), None, error);
                if tries.wants_failure(cause) && tries.take(cause, rt::now()) {
                    retried(ctx, cluster, addr, Said::Failed, progress, outcome);
                    pause(&tries, ctx).await;
                    continue;
                }
                break Err(Failure::new(
                    Reason::UpstreamReset,
                    "the upstream connection failed while the request was sent",
                    plan.close_on_error,
                ));
            }
        };
        if let (false, Some(mirror)) = (relayed, &forward.mirror) {
            let head = parts.out.bytes();
            let received = conn.inbound.head_bytes();
            mirror::launch(ctx, mirror, outcome.route, &parts.req, head, received);
        }
        progress
            .in_flight
            .set(ctx.upstream.track(target.cluster, upstream.addr));
        let first = !relayed;
        if first && !bodiless {
            conn.inbound.consume_head(parts.req.len);
        }
        relayed = true;

        let Upstream {
            rx,
            tx: up_tx,
            addr,
            scratch,
            slot,
            ..
        } = upstream;
        let mut up_in = Inbound::with_scratch(rx, scratch);
        // A request without a body leaves the client nothing to send until
        // the answer: what it sends anyway (bytes meant to pile up
        // buffers, or a pipelined request) is held to `QUIET_HIGH_WATER`
        // buffers until the request loop reads on, so no set of clients
        // can take the buffers others need.
        if bodiless {
            conn.inbound.set_high_water(QUIET_HIGH_WATER);
        }
        // Dropped in the middle (the deadline, the drain's cut, a retry),
        // the attempt leaves the upstream with a reset: the request was
        // abandoned.
        let abandoned = ResetIfCut::new(up_tx.stream());
        // Later attempts sent the whole body with the head.
        let body = if first {
            request_body
        } else {
            Delimit::Length(0)
        };
        let sides = RelaySides {
            conn,
            parts,
            up_in: &mut up_in,
            up_tx: &up_tx,
            keep: keep.as_ref(),
        };
        let per_try = policy.per_try_timeout;
        let (result, body_done) = relay(sides, body, &terms, deadline, per_try, ctx).await;
        if bodiless {
            conn.inbound.set_high_water(HIGH_WATER_BUFFERS);
        }

        // A failure before the client saw anything of the answer may be
        // worth another attempt.
        let untouched = body_done && progress.sent.get() == 0 && replayable();
        let again = match &result {
            Relayed::Response(Response::Retry(status)) => Some(Said::Answered(*status)),
            Relayed::Response(Response::Before(
                Reason::UpstreamReset | Reason::UpstreamBadResponse,
                _,
            )) if untouched
                && tries.wants_failure(Cause::Reset)
                && tries.take(Cause::Reset, rt::now()) =>
            {
                Some(Said::Failed)
            }
            Relayed::TryTimedOut
                if untouched
                    && tries.wants_failure(Cause::Timeout)
                    && tries.take(Cause::Timeout, rt::now()) =>
            {
                Some(Said::Failed)
            }
            _ => None,
        };
        if let Some(said) = again {
            let (status, error) = match (said, &result) {
                (Said::Answered(status), _) => (Some(status), None),
                (_, Relayed::TryTimedOut) => (None, Some(Reason::UpstreamTimeout)),
                (_, Relayed::Response(Response::Before(reason, _))) => (None, Some(*reason)),
                _ => (None, Some(Reason::UpstreamReset)),
            };
            end_attempt(parts, outcome, conn, Some(addr), status, error);
            retried(ctx, cluster, addr, said, progress, outcome);
            // The attempt's connection goes with a reset.
            drop(abandoned);
            drop((up_in, up_tx, slot));
            pause(&tries, ctx).await;
            continue;
        }
        // An attempt cut by its per-try timeout abandons its request as
        // the exchange's deadline does: a reset. Any other end closes.
        if matches!(result, Relayed::TryTimedOut) {
            drop(abandoned);
        } else {
            abandoned.disarm();
        }
        let settled = settle(
            result,
            body_done,
            keep_alive,
            (up_in, up_tx, addr, slot),
            ctx,
            cluster,
            conn,
            deadline,
            outcome,
        );
        let error = settled.as_ref().err().map(|f| f.reason);
        let status = progress.status.get();
        end_attempt(parts, outcome, conn, Some(addr), status, error);
        break settled;
    };
    if let Some(keep) = keep {
        parts.kept = keep.into_room();
    }
    ended
}

/// What a retry leaves behind of the attempt before it: its endpoint's
/// health and load records told what happened, the endpoint noted as
/// tried, the attempt's first byte forgotten.
fn retried(
    ctx: &Ctx<'_>,
    cluster: &Cluster,
    addr: SocketAddr,
    said: Said,
    progress: &Progress,
    outcome: &mut Outcome,
) {
    settle_health(ctx, cluster, Some(addr), said);
    if let Some(in_flight) = progress.in_flight.take() {
        settle_load(&in_flight, cluster, outcome, said, progress.body_done.get());
    }
    progress.first_byte.set(None);
    outcome.tried.push(addr);
    outcome.retries += 1;
}

/// The pause before the next attempt: jittered, doubling per retry.
async fn pause(tries: &Tries<'_>, ctx: &Ctx<'_>) {
    let wait = tries.policy().backoff(tries.retried(), ctx.http.random());
    if !wait.is_zero() {
        let _ = rt::time::sleep(wait).await;
    }
}

/// What the last attempt's relay means for the client connection and the
/// upstream connection.
#[allow(clippy::too_many_arguments)]
fn settle(
    relayed: Relayed,
    body_done: bool,
    keep_alive: bool,
    (up_in, up_tx, addr, slot): (Inbound, Sender, SocketAddr, Option<OwnedSlot>),
    ctx: &Ctx<'_>,
    cluster: &Cluster,
    conn: &mut Conn,
    deadline: &Deadline,
    outcome: &mut Outcome,
) -> Result<After, Failure> {
    match relayed {
        Relayed::Response(Response::Done { close, reusable }) => {
            if body_done && reusable && !up_in.has_pending() && !up_in.at_eof() {
                let (rx, scratch) = up_in.into_parts();
                let upstream = Upstream {
                    rx,
                    tx: up_tx,
                    addr,
                    scratch,
                    reused: false,
                    slot,
                };
                let pool = &ctx.upstream.upstreams.pool;
                pool.put(upstream, cluster.pool, rt::now());
            }
            Ok(if !body_done {
                After::Linger
            } else if close {
                After::Close
            } else {
                After::Next
            })
        }
        Relayed::Response(Response::Before(reason, detail)) => {
            Err(Failure::new(reason, detail, !body_done || !keep_alive))
        }
        Relayed::TryTimedOut => Err(Failure::new(
            Reason::UpstreamTimeout,
            "the upstream did not answer within the retry policy's per_try_timeout",
            !body_done || !keep_alive,
        )),
        // Only returned when a retry was taken, which the loop acts on.
        Relayed::Response(Response::Retry(_)) => Err(Failure::new(
            Reason::UpstreamBadResponse,
            "a retry was taken but not made",
            true,
        )),
        Relayed::Response(Response::Aborted) => {
            outcome.failed(Reason::UpstreamAbortedBody);
            let _ = conn.client.reset_on_close();
            Ok(After::Close)
        }
        Relayed::Response(Response::Client(e)) => {
            // The client's fault, counted on the listener. The response is
            // cut: a reset, so that a client that reads again later cannot
            // take the bytes it had for the whole (a close-delimited body).
            if e.kind() == io::ErrorKind::TimedOut {
                outcome.failed(Reason::ClientSendTimeout);
            }
            let _ = conn.client.reset_on_close();
            Ok(After::Close)
        }
        Relayed::ClientGone => Ok(After::Close),
        Relayed::BadBody(reason, detail) => {
            if deadline.started() {
                outcome.failed(reason);
                let _ = conn.client.reset_on_close();
                Ok(After::Close)
            } else {
                Err(Failure::new(reason, detail, true))
            }
        }
    }
}

/// The target a weighted roll falls on, with its index.
fn pick_target(forward: &Forward, random: u64) -> (usize, &Target) {
    let pick = if forward.targets.len() == 1 {
        0
    } else {
        forward.pick((random % u64::from(forward.total_weight.max(1))) as u32)
    };
    (pick, &forward.targets[pick])
}

/// Why no upstream connection with the request head on it came of an
/// attempt.
enum Opening {
    /// No connection could be had: ringway answers with this.
    Refused(Reason, String),
    /// The connection to this endpoint failed as the head was sent.
    Broke(Cause, SocketAddr),
}

/// An upstream connection with the request head sent on it (and, on a
/// replay, the body kept from the first attempt). The head is written from
/// the client's (`replay`'s on a replay of a request with a body, the
/// client's side having moved past it).
#[allow(clippy::too_many_arguments)]
async fn open(
    conn: &mut Conn,
    parts: &mut Parts,
    ctx: &Ctx<'_>,
    id: ClusterId,
    cluster: &Cluster,
    up: &Upward<'_>,
    key: Option<u64>,
    replay: Option<&Keep>,
    outcome: &mut Outcome,
) -> Result<Upstream, Opening> {
    let mut upstream = connect(ctx, id, cluster, key, &outcome.tried)
        .await
        .map_err(|(reason, detail)| Opening::Refused(reason, detail))?;
    loop {
        outcome.upstream = Some(upstream.addr);
        outcome.timings.connected = Some(rt::now());
        outcome.attempts += 1;
        let out = parts.out.bytes();
        let mut write = |head: &[u8], body: &[u8]| {
            write::request(out, &parts.req, head, up, upstream.addr);
            out.extend_from_slice(body);
        };
        match replay {
            Some(keep) => keep.with(write),
            None => write(conn.inbound.head_bytes(), &[]),
        }
        match send_head(&upstream, parts.out.take()).await {
            Ok(out) => {
                parts.out.put(out);
                return Ok(upstream);
            }
            // A connection from the pool that the upstream closed an instant
            // ago: no byte of the request reached it, so it is safe to send
            // it again on a new connection (which is not reused: once).
            Err(Unsent::Nothing) if upstream.reused => {
                // The new connection takes the dead one's breaker place.
                let slot = upstream.slot.take();
                upstream = connect_to(ctx, upstream.addr, cluster, slot)
                    .await
                    .map_err(|(reason, detail)| Opening::Refused(reason, detail))?;
            }
            Err(Unsent::Nothing) => return Err(Opening::Broke(Cause::Unsent, upstream.addr)),
            Err(Unsent::Part) => return Err(Opening::Broke(Cause::Reset, upstream.addr)),
        }
    }
}

/// The connections and buffers one attempt's relay uses.
struct RelaySides<'a> {
    conn: &'a mut Conn,
    parts: &'a mut Parts,
    up_in: &'a mut Inbound,
    up_tx: &'a Sender,
    /// Where the request body is kept as it goes, to be sent again.
    keep: Option<&'a Keep>,
}

/// Forwards the request body and the response at the same time. Returns
/// how the attempt ended and whether the whole request body went. With
/// `per_try`, an attempt whose response head has not come that long after
/// the whole request went ends as [`Relayed::TryTimedOut`].
async fn relay(
    sides: RelaySides<'_>,
    request_body: Delimit,
    terms: &Terms<'_>,
    deadline: &Deadline,
    per_try: Option<Duration>,
    ctx: &Ctx<'_>,
) -> (Relayed, bool) {
    let RelaySides {
        conn,
        parts,
        up_in,
        up_tx,
        keep,
    } = sides;
    let Conn {
        client, inbound, ..
    } = conn;
    let sides = Sides {
        upstream: up_in,
        client,
        head: &mut parts.resp,
        out: &mut parts.out,
    };
    let mut response = pin!(respond(sides, terms, deadline, ctx.counters));
    let mut request_body = pin!(body::forward(
        inbound,
        up_tx,
        request_body,
        terms.limits.max_body,
        None,
        Tally {
            worker: &ctx.counters.bytes_from_clients,
            exchange: &terms.progress.received,
            keep,
        },
        Watch::Request(deadline),
    ));
    let mut body_end: Option<BodyEnd> = None;
    let mut timer: Option<rt::time::Sleep> = None;
    let relayed = poll_fn(|cx| {
        if body_end.is_none() {
            if let Poll::Ready(end) = request_body.as_mut().poll(cx) {
                match end {
                    // An upstream that stopped reading may still answer.
                    BodyEnd::Done => {
                        terms.request_done.set(true);
                        terms.progress.body_done.set(Some(rt::now()));
                        timer = per_try.map(rt::time::sleep);
                        body_end = Some(end);
                    }
                    BodyEnd::SinkFailed(_) => body_end = Some(end),
                    BodyEnd::Cut | BodyEnd::SourceFailed => {
                        return Poll::Ready(Relayed::ClientGone)
                    }
                    BodyEnd::Invalid => {
                        return Poll::Ready(Relayed::BadBody(
                            Reason::BadRequest,
                            "the chunked request body is malformed",
                        ))
                    }
                    BodyEnd::TooLarge => return Poll::Ready(Relayed::BadBody(
                        Reason::BodyTooLarge,
                        "the request body is larger than the max_body of its route (or listener)",
                    )),
                }
            }
        }
        if let Poll::Ready(response) = response.as_mut().poll(cx) {
            return Poll::Ready(Relayed::Response(response));
        }
        // The per-try timeout bounds the wait for the response head; once
        // the head is on its way to the client it has no more to say.
        if terms.progress.status.get().is_some() {
            timer = None;
        }
        if let Some(t) = timer.as_mut() {
            if Pin::new(t).poll(cx).is_ready() {
                return Poll::Ready(Relayed::TryTimedOut);
            }
        }
        Poll::Pending
    })
    .await;
    (relayed, matches!(body_end, Some(BodyEnd::Done)))
}

/// How sending a request head failed.
enum Unsent {
    /// The first send failed outright: no byte reached the upstream.
    Nothing,
    /// Part of the head went before the failure.
    Part,
}

/// Sends a request head whole.
async fn send_head(upstream: &Upstream, out: Outgoing) -> Result<Outgoing, Unsent> {
    let len = out.bytes().len();
    let (n, out, _) = upstream
        .tx
        .send_outgoing(out, 0, None, None)
        .await
        .map_err(|_| Unsent::Nothing)?;
    if n == 0 {
        return Err(Unsent::Nothing);
    }
    if n == len {
        return Ok(out);
    }
    send_all(&upstream.tx, out, n, None, None)
        .await
        .map(|(out, _)| out)
        .map_err(|_| Unsent::Part)
}

/// An upstream connection to an endpoint of `cluster`, in the order of the
/// worker's pick (the balancer's choice first, then the others; endpoints
/// whose connect failed lately are skipped): an idle pooled connection to
/// an endpoint before a new one. A local shortage ends the search at once:
/// every other endpoint would meet it too.
async fn connect(
    ctx: &Ctx<'_>,
    id: ClusterId,
    cluster: &Cluster,
    key: Option<u64>,
    avoid: &[SocketAddr],
) -> Result<Upstream, (Reason, String)> {
    let upstreams = &*ctx.upstream.upstreams;
    let now = rt::now();
    let pick = ctx.upstream.pick(id, now, key).avoiding(avoid);
    let reuse = |addr| upstreams.pool.take(addr, now, ctx.counters);
    let Some(breaker) = &cluster.breaker else {
        return match connect_or_reuse(pick, cluster, ctx.counters, reuse).await {
            Ok(Reached::Reused(conn)) => Ok(conn),
            Ok(Reached::New(stream, addr)) => establish(ctx, cluster, stream, addr, None).await,
            Err(e) => Err(failure(e, cluster)),
        };
    };
    // The cluster's breakers: a request waiting for a connection counts
    // under `max_pending_requests`, a new connection under
    // `max_connections` (an idle pooled one already holds its place, so at
    // that limit a request may still take one).
    let Some(_pending) = breaker.enter(Kind::Pending) else {
        return Err(overflow(cluster, Kind::Pending));
    };
    let Some(slot) = breaker.enter_owned(Kind::Connection) else {
        return pick
            .clone()
            .find_map(reuse)
            .ok_or_else(|| overflow(cluster, Kind::Connection));
    };
    match connect_or_reuse(pick, cluster, ctx.counters, reuse).await {
        Ok(Reached::Reused(conn)) => Ok(conn),
        Ok(Reached::New(stream, addr)) => establish(ctx, cluster, stream, addr, Some(slot)).await,
        Err(e) => Err(failure(e, cluster)),
    }
}

/// A new connection to `addr`, an endpoint of `cluster` (counted, and held
/// out on failure, as every connect is).
async fn connect_to(
    ctx: &Ctx<'_>,
    addr: SocketAddr,
    cluster: &Cluster,
    slot: Option<OwnedSlot>,
) -> Result<Upstream, (Reason, String)> {
    let health = &ctx.upstream.upstreams.health;
    match upstream::connect::connect_to(addr, cluster, health, ctx.counters).await {
        Ok(stream) => establish(ctx, cluster, stream, addr, slot).await,
        Err(e) => Err(failure(e, cluster)),
    }
}

/// A new HTTP/1 upstream connection on `stream`, to `addr`: with the
/// cluster's `tls`, once the handshake is over (see [`transport`]).
async fn establish(
    ctx: &Ctx<'_>,
    cluster: &Cluster,
    stream: TcpStream,
    addr: SocketAddr,
    slot: Option<OwnedSlot>,
) -> Result<Upstream, (Reason, String)> {
    let health = &ctx.upstream.upstreams.health;
    let Transport { rx, tx } = transport(ctx.counters, health, cluster, stream, addr).await?;
    Ok(Upstream {
        slot,
        rx,
        tx,
        addr,
        scratch: Vec::new(),
        reused: false,
    })
}

/// The transport of a new connection `stream` to `addr`, an endpoint of
/// `cluster`: with the cluster's `tls`, once the handshake is over (within
/// the cluster's connect timeout). A failed handshake counts against the
/// endpoint as a failed connect does, and answers `upstream_tls`.
pub(super) async fn transport(
    counters: &Counters,
    health: &Health,
    cluster: &Cluster,
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<Transport, (Reason, String)> {
    let recv = stream.recv_stream(Group::Upstream, HIGH_WATER_BUFFERS);
    let Some(tls) = &cluster.tls else {
        return Ok(Transport::from_plain(stream, recv));
    };
    let failed = |e| tls_failure(counters, health, cluster, addr, e);
    let name = tls.server_name(addr);
    let mut transport = Transport::tls_client(stream, &tls.config, name, recv).map_err(failed)?;
    let handshake = transport.rx.handshake();
    match select(handshake, rt::time::sleep(cluster.connect_timeout)).await {
        Either::Left(Ok(())) => Ok(transport),
        Either::Left(Err(e)) => Err(failed(e)),
        Either::Right(_) => Err(failed(io::Error::new(
            io::ErrorKind::TimedOut,
            "the handshake did not finish within the connect timeout",
        ))),
    }
}

/// A failed TLS handshake with `addr`, an endpoint of `cluster`: counted,
/// held against the endpoint, and the answer.
fn tls_failure(
    counters: &Counters,
    health: &Health,
    cluster: &Cluster,
    addr: SocketAddr,
    e: io::Error,
) -> (Reason, String) {
    counters.upstream_tls_failures.add(1);
    let now = rt::now();
    health.mark_down(addr, now);
    upstream::connect::gateway_failure(health, addr, cluster, counters, now);
    (
        Reason::UpstreamTls,
        format!(
            "the TLS handshake with {addr} (cluster `{}`) failed: {e}",
            cluster.name
        ),
    )
}

/// The answer to a request a breaker of `cluster` refused.
fn overflow(cluster: &Cluster, kind: Kind) -> (Reason, String) {
    let limit = cluster
        .breaker
        .as_ref()
        .and_then(|b| match kind {
            Kind::Connection => b.limits.max_connections,
            Kind::Pending => b.limits.max_pending_requests,
            Kind::Request => b.limits.max_requests,
            Kind::Retry => b.limits.max_retries,
        })
        .unwrap_or(0);
    (
        Reason::Overflow,
        format!(
            "cluster `{}` is at its {} ({limit}); refused at once",
            cluster.name,
            kind.key()
        ),
    )
}

/// The answer to a request whose upstream connection could not be made.
fn failure(e: ConnectError, cluster: &Cluster) -> (Reason, String) {
    match e {
        ConnectError::Local(e) => (
            Reason::LocalResources,
            format!("out of a local resource, no upstream connection can be made now ({e})"),
        ),
        ConnectError::Unreachable(e) => (
            Reason::UpstreamRefused,
            format!(
                "no endpoint of cluster `{}` accepted a connection ({e})",
                cluster.name
            ),
        ),
        ConnectError::AllHeldOut => (
            Reason::NoEndpoint,
            format!(
                "no endpoint of cluster `{}` is available: every one failed a connect in the last {} s or is ejected after failures in a row",
                cluster.name,
                HOLD_DOWN.as_secs()
            ),
        ),
    }
}
