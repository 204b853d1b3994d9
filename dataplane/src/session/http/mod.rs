//! One HTTP/1.1 client connection: requests read, routed and answered one
//! after another (pipelined ones in order), each proxied upstream or
//! answered here.
//!
//! The data flow is drawn in docs/architecture.md ("Data flow of an HTTP/1.1
//! request"). The pieces: [`inbound`] holds each side's received bytes and
//! reads heads; [`exchange`] proxies one request; [`body`] forwards bodies;
//! [`write`] writes heads; [`clock`] holds the connection's one deadline.

mod body;
mod clock;
mod exchange;
mod inbound;
mod write;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::IpAddr;
use std::ops::Range;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use self::clock::{Clock, Phase};
use self::inbound::{HeadFailure, Inbound, HIGH_WATER_BUFFERS};
use crate::buf::BufHandle;
use crate::proto::h1::request::{RequestBody, RequestHead};
use crate::proto::h1::response::ResponseHead;
use crate::proto::h1::Limits;
use crate::rt::net::{Outgoing, TcpStream};
use crate::rt::select::{select, Either};
use crate::rt::{self, time::sleep};
use crate::stats::http::{HttpCounters, Reason};
use crate::stats::Counters;
use crate::table::route::{HttpService, RouteAction};
use crate::table::{Service, Table};
use crate::upstream::balance::RoundRobin;
use crate::upstream::pool::Pool;

/// How long a connection closed after an error answer keeps reading (and
/// dropping) what the client still sends, so that closing with unread bytes
/// does not reset the connection before the client read the answer.
const LINGER: Duration = Duration::from_secs(2);
/// The most a lingering close reads before giving up: 1 MiB.
const LINGER_BYTES: usize = 1 << 20;
/// Starting size of a connection's head buffer: a typical rewritten head
/// fits; a bigger one grows it once and it stays grown.
const HEAD_CAPACITY: usize = 1024;

/// A worker's HTTP state: its upstream pools and its random source.
#[derive(Debug)]
pub struct WorkerHttp {
    /// The worker's index (selects its counters in every tally).
    pub worker: usize,
    /// Idle upstream connections.
    pub pool: Pool,
    /// Set when the worker begins to drain: idle client connections close,
    /// busy ones close after their current response.
    pub draining: Cell<bool>,
    rng: Cell<u64>,
}

impl WorkerHttp {
    /// State for worker `worker`; `seed` starts its random source.
    pub fn new(worker: usize, seed: u64) -> Self {
        Self {
            worker,
            pool: Pool::default(),
            draining: Cell::new(false),
            // xorshift must not start at 0.
            rng: Cell::new(seed | 1),
        }
    }

    /// A pseudo-random number (xorshift64*): for weighted picks and request
    /// ids. Not for secrets.
    pub fn random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Closes the worker's idle upstream connections that expired or that the
/// upstream closed, once a second, for as long as the worker runs.
pub async fn sweep_pool(http: std::rc::Rc<WorkerHttp>) {
    loop {
        if sleep(Duration::from_secs(1)).await.is_err() {
            return;
        }
        http.pool.sweep(rt::now());
    }
}

/// What a connection shares with its exchanges.
struct Ctx<'a> {
    table: &'a Table,
    service: &'a HttpService,
    listener: &'a HttpCounters,
    balancer: &'a RoundRobin,
    counters: &'a Counters,
    http: &'a WorkerHttp,
    peer: IpAddr,
}

/// Serves the client connection `client`, accepted on listener `listener`
/// of `table` (an HTTP listener).
pub async fn serve(
    table: &Table,
    listener: usize,
    client: TcpStream,
    balancer: &RoundRobin,
    counters: &Counters,
    http: &WorkerHttp,
) {
    let Service::Http(service) = &table.listeners[listener].service else {
        return;
    };
    let _ = client.socket().set_tcp_nodelay(true);
    let peer = match client.socket().peer_addr().ok().and_then(|a| a.as_socket()) {
        Some(addr) => addr.ip(),
        // The client is already gone.
        None => return,
    };
    let ctx = Ctx {
        table,
        service,
        listener: service.tally.worker(http.worker),
        balancer,
        counters,
        http,
        peer,
    };
    let mut conn = Conn {
        inbound: Inbound::new(client.recv_stream(HIGH_WATER_BUFFERS)),
        client,
        req: RequestHead::new(),
        resp: ResponseHead::new(),
        out: HeadBuf::default(),
    };
    let clock = Clock::new(service.timeouts.idle);
    let timed_out = match select(conn.run(&ctx, &clock), clock.watchdog()).await {
        Either::Left(()) => false,
        Either::Right(()) => true,
    };
    if timed_out {
        conn.timed_out(&ctx, &clock).await;
    }
}

/// A client connection's own state.
struct Conn {
    client: TcpStream,
    inbound: Inbound,
    req: RequestHead,
    resp: ResponseHead,
    /// Heads being written (reused for every request).
    out: HeadBuf,
}

/// What happens after a request.
#[derive(Debug, PartialEq, Eq)]
enum After {
    /// Read the next request.
    Next,
    /// Close the connection (what had to be sent was sent).
    Close,
    /// Close after reading and dropping what the client still sends.
    Linger,
}

impl Conn {
    async fn run(&mut self, ctx: &Ctx<'_>, clock: &Clock) {
        let limits = Limits {
            max_request_line: ctx.service.limits.max_request_line,
            max_header_bytes: ctx.service.limits.max_header_bytes,
            max_headers: ctx.service.limits.max_headers,
        };
        let timeouts = ctx.service.timeouts;
        let draining = &ctx.http.draining;
        loop {
            clock.enter(Phase::Idle, timeouts.idle);
            let read = {
                let req = &mut self.req;
                let read = self.inbound.read_head(
                    |bytes| req.parse(bytes, &limits),
                    limits.max_header_bytes,
                    || clock.enter(Phase::Header, timeouts.header),
                );
                let mut read = pin!(read);
                // A drain closes a connection waiting for its next request;
                // one that has begun sending a request gets its answer first.
                poll_fn(|cx| {
                    if draining.get() && clock.phase() == Phase::Idle {
                        return Poll::Ready(Err(HeadFailure::Closed));
                    }
                    read.as_mut().poll(cx)
                })
                .await
            };
            let after = match read {
                Ok(()) => {
                    ctx.listener.requests.add(1);
                    let after = self.request(ctx, clock).await;
                    // Answers written here leave the head unread; the next
                    // request starts after it either way.
                    self.inbound.consume_head(self.req.len);
                    after
                }
                Err(HeadFailure::Closed) => After::Close,
                Err(HeadFailure::Cut | HeadFailure::Failed) => After::Close,
                Err(HeadFailure::Invalid(e)) => {
                    ctx.listener.requests.add(1);
                    self.answer_error(ctx, ctx.listener, e.reason, e.detail, true)
                        .await
                }
            };
            match after {
                After::Next => {}
                After::Close => return,
                After::Linger => {
                    self.linger().await;
                    return;
                }
            }
        }
    }

    /// Handles one request whose head was just read.
    async fn request(&mut self, ctx: &Ctx<'_>, clock: &Clock) -> After {
        let service = ctx.service;
        let has_body = !matches!(self.req.body, RequestBody::None | RequestBody::Length(0));
        if self.req.upgrade {
            return self
                .answer_error(
                    ctx,
                    ctx.listener,
                    Reason::NotImplemented,
                    "protocol upgrades and CONNECT are not supported",
                    true,
                )
                .await;
        }
        if let (RequestBody::Length(n), Some(max)) = (self.req.body, service.limits.max_body) {
            if n > max {
                return self
                    .answer_error(
                        ctx,
                        ctx.listener,
                        Reason::BodyTooLarge,
                        "the request body is larger than this listener accepts",
                        true,
                    )
                    .await;
            }
        }
        let found = crate::route::find(&service.routes, &self.req, self.inbound.head_bytes());
        let Some((index, route)) = found else {
            return self
                .answer_error(
                    ctx,
                    ctx.listener,
                    Reason::NoRoute,
                    "no route matches this request",
                    has_body || !self.req.keep_alive,
                )
                .await;
        };
        let tally = route.tally.worker(ctx.http.worker);
        tally.requests.add(1);
        let close = has_body || !self.req.keep_alive;
        match &route.action {
            RouteAction::Forward(forward) => {
                exchange::proxy(self, ctx, clock, index, route, forward).await
            }
            RouteAction::Redirect(to) => {
                let bytes = self.inbound.head_bytes();
                write::redirect(
                    self.out.bytes(),
                    to,
                    &self.req,
                    bytes,
                    &route.response_headers,
                    close,
                );
                self.inbound.consume_head(self.req.len);
                tally.response(to.status);
                self.send_own(ctx, close).await
            }
            RouteAction::Direct(answer) => {
                let head_only = self.req.is_head(self.inbound.head_bytes());
                write::direct(
                    self.out.bytes(),
                    answer,
                    &route.response_headers,
                    close,
                    head_only,
                );
                self.inbound.consume_head(self.req.len);
                tally.response(answer.status);
                self.send_own(ctx, close).await
            }
        }
    }

    /// Answers with ringway's own error for `reason`, counted in `tally`.
    async fn answer_error(
        &mut self,
        ctx: &Ctx<'_>,
        tally: &HttpCounters,
        reason: Reason,
        detail: &str,
        close: bool,
    ) -> After {
        let Some(status) = reason.status() else {
            return After::Close;
        };
        tally.error(reason);
        tally.response(status);
        write::error(self.out.bytes(), reason, status, detail, close);
        self.send_own(ctx, close).await
    }

    /// Sends the answer in `out`; then reads on, or closes.
    async fn send_own(&mut self, ctx: &Ctx<'_>, close: bool) -> After {
        let out = self.out.take();
        match send_all(&self.client, out, 0, None, Some(ctx.service.timeouts.send)).await {
            Ok((out, _)) => {
                self.out.put(out);
                if close {
                    After::Linger
                } else {
                    After::Next
                }
            }
            Err(_) => After::Close,
        }
    }

    /// Ends a connection whose deadline passed.
    async fn timed_out(&mut self, ctx: &Ctx<'_>, clock: &Clock) {
        match clock.phase() {
            Phase::Idle => ctx.counters.idle_timeouts.add(1),
            Phase::Header => {
                ctx.listener.requests.add(1);
                let _ = self
                    .answer_error(
                        ctx,
                        ctx.listener,
                        Reason::HeaderTimeout,
                        "the request head did not arrive in time",
                        true,
                    )
                    .await;
                self.linger().await;
            }
            Phase::Exchange {
                route,
                target,
                started,
            } => {
                let tally = exchange::target_tally(ctx, route, target);
                if started {
                    if let Some(tally) = tally {
                        tally.error(Reason::UpstreamTimeout);
                    }
                    let _ = self.client.reset_on_close();
                } else if let Some(tally) = tally {
                    let _ = self
                        .answer_error(
                            ctx,
                            tally,
                            Reason::UpstreamTimeout,
                            "the upstream did not answer in time",
                            true,
                        )
                        .await;
                }
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

/// A connection's head buffer, lent to each send and given back after it.
/// Only a failed send loses it; the next use then allocates a new one.
#[derive(Debug, Default)]
struct HeadBuf(Option<Outgoing>);

impl HeadBuf {
    /// The buffer, to write a head into.
    fn bytes(&mut self) -> &mut Vec<u8> {
        self.0
            .get_or_insert_with(|| Outgoing::with_capacity(HEAD_CAPACITY))
            .bytes_mut()
    }

    /// Lends the buffer to a send.
    fn take(&mut self) -> Outgoing {
        self.0
            .take()
            .unwrap_or_else(|| Outgoing::with_capacity(HEAD_CAPACITY))
    }

    /// Takes the buffer back after a send.
    fn put(&mut self, out: Outgoing) {
        self.0 = Some(out);
    }
}

/// Sends `out` from byte `from`, then all of `body`'s range (the first part
/// of a body, from the buffer it arrived in), continuing after partial
/// sends. Gives both buffers back.
async fn send_all(
    to: &TcpStream,
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
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "send accepted no byte",
            ));
        }
        if at + n < head_len {
            at += n;
            body = buf.zip(range.clone());
            continue;
        }
        let body_sent = at + n - head_len;
        return match (buf, range) {
            (Some(buf), Some(range)) if range.start + body_sent < range.end => {
                let (rest, buf) = (range.start + body_sent..range.end, buf);
                let buf = body::send_quiet(to, buf, rest, timeout).await?;
                Ok((out, Some(buf)))
            }
            (buf, _) => Ok((out, buf)),
        };
    }
}
