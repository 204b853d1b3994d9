//! Proxying one request: pick the target, get an upstream connection, send
//! the rewritten head, then forward the request body and the response at
//! the same time.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;

use super::body::{self, BodyEnd, Delimit};
use super::clock::{Clock, Phase};
use super::inbound::{HeadFailure, Inbound, HIGH_WATER_BUFFERS};
use super::write::{self, Framing, Upward};
use super::{send_all, After, Conn, Ctx};
use crate::proto::h1::request::RequestBody;
use crate::proto::h1::response::ResponseBody;
use crate::proto::h1::Version;
use crate::rt;
use crate::rt::net::{Outgoing, TcpStream};
use crate::stats::http::{HttpCounters, Reason};
use crate::table::route::{Forward, Route, RouteAction};
use crate::table::{Cluster, ClusterId};
use crate::upstream::pool::Upstream;

/// The tally of target `target` of route `route` of the connection's
/// listener, if the route still forwards there.
pub(super) fn target_tally<'a>(
    ctx: &Ctx<'a>,
    route: usize,
    target: usize,
) -> Option<&'a HttpCounters> {
    match &ctx.service.routes.get(route)?.action {
        RouteAction::Forward(f) => Some(f.targets.get(target)?.tally.worker(ctx.http.worker)),
        _ => None,
    }
}

/// How the response side of an exchange ended.
enum Response {
    /// Sent whole; `close` if the client connection must close after it,
    /// `reusable` if the upstream connection may serve another request.
    Done { close: bool, reusable: bool },
    /// Failed before the client got a head: ringway answers instead.
    Before(Reason, &'static str),
    /// The upstream failed after the client got the head.
    Aborted,
    /// Sending to the client failed.
    Client(io::Error),
}

/// How the exchange as a whole ended.
enum Outcome {
    Response(Response),
    /// The client closed or failed in the middle of its request body.
    ClientGone,
    /// The request body is invalid or too large.
    BadBody(Reason, &'static str),
}

/// Proxies the request whose head `conn` just read, matched by route
/// `index` (`route`), which forwards by `forward`.
pub(super) async fn proxy(
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    clock: &Clock,
    index: usize,
    route: &Route,
    forward: &Forward,
) -> After {
    let http = ctx.http;
    let service = ctx.service;
    let pick = if forward.targets.len() == 1 {
        0
    } else {
        forward.pick((http.random() % u64::from(forward.total_weight.max(1))) as u32)
    };
    let target = &forward.targets[pick];
    let tally = target.tally.worker(http.worker);
    tally.requests.add(1);
    clock.enter(
        Phase::Exchange {
            route: index,
            target: pick,
            started: false,
        },
        service.timeouts.request,
    );

    let req = &conn.req;
    let keep_alive = req.keep_alive;
    let has_body = !matches!(req.body, RequestBody::None | RequestBody::Length(0));
    let client_10 = req.version == Version::Http10;
    let is_head = req.is_head(conn.inbound.head_bytes());
    let req_delimit = match req.body {
        RequestBody::None => Delimit::Length(0),
        RequestBody::Length(n) => Delimit::Length(n),
        RequestBody::Chunked => Delimit::Chunked,
    };
    let rewrite = match (&forward.rewrite_prefix, &route.matcher.path) {
        (Some(to), Some(crate::table::route::PathMatch::Prefix(from))) => Some((&**from, &**to)),
        _ => None,
    };
    let up = Upward {
        edits: &route.request_headers,
        rewrite,
        client: ctx.peer,
        trust_forwarded: service.trust_forwarded,
        request_id: (u128::from(http.random()) << 64) | u128::from(http.random()),
    };

    let cluster = ctx.table.cluster(target.cluster);
    let mut upstream = match connect(ctx, target.cluster, cluster).await {
        Ok(u) => u,
        Err((reason, detail)) => {
            return conn
                .answer_error(ctx, tally, reason, &detail, has_body || !keep_alive)
                .await
        }
    };

    write::request(conn.out.bytes(), &conn.req, conn.inbound.head_bytes(), &up);
    let mut sent = send_head(&upstream, conn.out.take()).await;
    if let Err(Unsent::Nothing) = sent {
        if upstream.reused {
            // A connection from the pool that the upstream closed an
            // instant ago: no byte of the request reached it, so it is safe
            // to send it again, once, on a new connection.
            upstream = match connect_to(ctx, upstream.addr, cluster).await {
                Ok(u) => u,
                Err((reason, detail)) => {
                    return conn
                        .answer_error(ctx, tally, reason, &detail, has_body || !keep_alive)
                        .await
                }
            };
            write::request(conn.out.bytes(), &conn.req, conn.inbound.head_bytes(), &up);
            sent = send_head(&upstream, conn.out.take()).await;
        }
    }
    match sent {
        Ok(out) => conn.out.put(out),
        Err(_) => {
            return conn
                .answer_error(
                    ctx,
                    tally,
                    Reason::UpstreamReset,
                    "the upstream connection failed while the request was sent",
                    has_body || !keep_alive,
                )
                .await;
        }
    }
    let head_len = conn.req.len;
    conn.inbound.consume_head(head_len);

    let Upstream {
        stream: up_stream,
        recv: up_recv,
        addr: up_addr,
        ..
    } = upstream;
    let mut up_in = Inbound::new(up_recv);
    let mut body_end: Option<BodyEnd> = None;
    let outcome = {
        let Conn {
            client,
            inbound,
            resp,
            out,
            ..
        } = &mut *conn;
        let limits = service.limits;
        // The head (with the first body bytes) goes out under the request
        // deadline alone; each later send of body data also has the send
        // timeout, a timer per buffer of up to 32 KiB, so small responses
        // cost no timer at all (see clock.rs).
        let send_timeout = Some(service.timeouts.send);
        let counters = ctx.counters;
        let edits = &route.response_headers;
        let up_in = &mut up_in;
        let client = &*client;
        let response = async move {
            loop {
                let read = up_in
                    .read_head(
                        |bytes| {
                            resp.parse(bytes, limits.max_header_bytes, limits.max_headers, is_head)
                        },
                        limits.max_header_bytes,
                        || {},
                    )
                    .await;
                match read {
                    Ok(()) => {}
                    Err(HeadFailure::Invalid(e)) => {
                        return Response::Before(Reason::UpstreamBadResponse, e.detail)
                    }
                    Err(_) => {
                        return Response::Before(
                            Reason::UpstreamReset,
                            "the upstream closed the connection before a complete response head",
                        )
                    }
                }
                if !resp.is_interim() {
                    break;
                }
                if !client_10 {
                    write::interim(out.bytes(), resp, up_in.head_bytes());
                    match send_all(client, out.take(), 0, None, None).await {
                        Ok((head, _)) => out.put(head),
                        Err(e) => return Response::Client(e),
                    }
                }
                up_in.consume_head(resp.len);
            }
            let dechunk = client_10 && resp.body == ResponseBody::Chunked;
            let close = !keep_alive
                || resp.body == ResponseBody::UntilClose
                || dechunk
                || http.draining.get();
            let framing = if dechunk {
                Framing::Dechunked
            } else {
                Framing::Same
            };
            write::response(
                out.bytes(),
                resp,
                up_in.head_bytes(),
                edits,
                framing,
                close,
                client_10 && keep_alive && !close,
            );
            up_in.consume_head(resp.len);
            clock.response_started();
            tally.response(resp.status);
            let mut delimit = match resp.body {
                ResponseBody::None => Delimit::Length(0),
                ResponseBody::Length(n) => Delimit::Length(n),
                ResponseBody::Chunked if dechunk => Delimit::Dechunk,
                ResponseBody::Chunked => Delimit::Chunked,
                ResponseBody::UntilClose => Delimit::UntilClose,
            };
            // A length-delimited body that came in behind the head goes out
            // in the same send as the new head, from its own buffer.
            let mut first = None;
            if let Delimit::Length(n) = delimit {
                if n > 0 {
                    if let Some((buf, range)) = up_in.take_pending() {
                        let take = (range.len() as u64).min(n) as usize;
                        delimit = Delimit::Length(n - take as u64);
                        first = Some((buf, range.start..range.start + take));
                    }
                }
            }
            let first_len = first.as_ref().map_or(0, |(_, r)| r.len());
            let first_end = first.as_ref().map_or(0, |(_, r)| r.end);
            match send_all(client, out.take(), 0, first, None).await {
                Ok((head, buf)) => {
                    out.put(head);
                    counters.bytes_from_upstreams.add(first_len as u64);
                    if let Some(buf) = buf {
                        // Bytes past the body stay for the next read.
                        up_in.unread(buf, first_end);
                    }
                }
                Err(e) => return Response::Client(e),
            }
            let reusable = resp.keep_alive && resp.body != ResponseBody::UntilClose;
            match body::forward(
                up_in,
                client,
                delimit,
                None,
                send_timeout,
                &counters.bytes_from_upstreams,
            )
            .await
            {
                BodyEnd::Done => Response::Done { close, reusable },
                BodyEnd::SinkFailed(e) => Response::Client(e),
                BodyEnd::Cut | BodyEnd::SourceFailed | BodyEnd::Invalid | BodyEnd::TooLarge => {
                    Response::Aborted
                }
            }
        };
        let request_body = body::forward(
            inbound,
            &up_stream,
            req_delimit,
            limits.max_body,
            None,
            &counters.bytes_from_clients,
        );
        let mut response = pin!(response);
        let mut request_body = pin!(request_body);
        poll_fn(|cx| {
            if body_end.is_none() {
                if let Poll::Ready(end) = request_body.as_mut().poll(cx) {
                    match end {
                        BodyEnd::Done | BodyEnd::SinkFailed(_) => body_end = Some(end),
                        BodyEnd::Cut | BodyEnd::SourceFailed => {
                            return Poll::Ready(Outcome::ClientGone)
                        }
                        BodyEnd::Invalid => {
                            return Poll::Ready(Outcome::BadBody(
                                Reason::BadRequest,
                                "the chunked request body is malformed",
                            ))
                        }
                        BodyEnd::TooLarge => {
                            return Poll::Ready(Outcome::BadBody(
                                Reason::BodyTooLarge,
                                "the request body is larger than this listener accepts",
                            ))
                        }
                    }
                }
            }
            match response.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(Outcome::Response(r)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    };
    let body_done = matches!(body_end, Some(BodyEnd::Done));
    match outcome {
        Outcome::Response(Response::Done { close, reusable }) => {
            if body_done && reusable && !up_in.has_pending() && !up_in.at_eof() {
                let upstream = Upstream {
                    stream: up_stream,
                    recv: up_in.into_recv(),
                    addr: up_addr,
                    reused: false,
                };
                http.pool.put(upstream, cluster.pool, rt::now());
            }
            if !body_done {
                After::Linger
            } else if close {
                After::Close
            } else {
                After::Next
            }
        }
        Outcome::Response(Response::Before(reason, detail)) => {
            conn.answer_error(ctx, tally, reason, detail, !body_done || !keep_alive)
                .await
        }
        Outcome::Response(Response::Aborted) => {
            tally.error(Reason::UpstreamAbortedBody);
            let _ = conn.client.reset_on_close();
            After::Close
        }
        Outcome::Response(Response::Client(e)) => {
            if e.kind() == io::ErrorKind::TimedOut {
                tally.error(Reason::ClientSendTimeout);
            }
            After::Close
        }
        Outcome::ClientGone => After::Close,
        Outcome::BadBody(reason, detail) => {
            let started = matches!(clock.phase(), Phase::Exchange { started: true, .. });
            if started {
                tally.error(reason);
                let _ = conn.client.reset_on_close();
                After::Close
            } else {
                conn.answer_error(ctx, tally, reason, detail, true).await
            }
        }
    }
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
        .stream
        .send_outgoing(out, 0, None, None)
        .await
        .map_err(|_| Unsent::Nothing)?;
    if n == 0 {
        return Err(Unsent::Nothing);
    }
    if n == len {
        return Ok(out);
    }
    send_all(&upstream.stream, out, n, None, None)
        .await
        .map(|(out, _)| out)
        .map_err(|_| Unsent::Part)
}

/// An upstream connection to an endpoint of `cluster`: the round-robin pick
/// first, then the others; idle pooled connections before new ones;
/// endpoints whose connect failed lately are skipped.
async fn connect(
    ctx: &Ctx<'_>,
    id: ClusterId,
    cluster: &Cluster,
) -> Result<Upstream, (Reason, String)> {
    let pool = &ctx.http.pool;
    let n = cluster.endpoints.len();
    let first = ctx.balancer.next(id.0 as usize, n);
    let now = rt::now();
    let mut failure: Option<(Reason, String)> = None;
    for attempt in 0..n {
        let addr = cluster.endpoints[(first + attempt) % n];
        if pool.is_down(addr, now) {
            continue;
        }
        if let Some(conn) = pool.take(addr, now) {
            return Ok(conn);
        }
        match connect_to(ctx, addr, cluster).await {
            Ok(conn) => return Ok(conn),
            Err(e) => failure = Some(e),
        }
    }
    Err(failure.unwrap_or_else(|| {
        (
            Reason::NoEndpoint,
            format!(
                "no endpoint of cluster `{}` is available: every one failed a connect in the last {} s",
                cluster.name,
                crate::upstream::pool::HOLD_DOWN.as_secs()
            ),
        )
    }))
}

/// A new connection to `addr`; a failure holds the endpoint out.
async fn connect_to(
    ctx: &Ctx<'_>,
    addr: SocketAddr,
    cluster: &Cluster,
) -> Result<Upstream, (Reason, String)> {
    match TcpStream::connect(addr, cluster.connect_timeout).await {
        Ok(stream) => {
            let _ = stream.socket().set_tcp_nodelay(true);
            ctx.http.pool.mark_up(addr);
            Ok(Upstream {
                recv: stream.recv_stream(HIGH_WATER_BUFFERS),
                stream,
                addr,
                reused: false,
            })
        }
        Err(e) => {
            if e.kind() == io::ErrorKind::TimedOut {
                ctx.counters.connect_timeouts.add(1);
            } else {
                ctx.counters.connect_failures.add(1);
            }
            ctx.http.pool.mark_down(addr, rt::now());
            Err((
                Reason::UpstreamRefused,
                format!(
                    "no endpoint of cluster `{}` accepted a connection ({e})",
                    cluster.name
                ),
            ))
        }
    }
}
