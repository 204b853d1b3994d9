//! HTTP/1.1 connections of the generator: keep-alive (one request in flight
//! per connection, the next sent when the answer is complete) or a new
//! connection per request.
//!
//! Buffers are owned and handed to each ring op (tokio-uring's model): the
//! request bytes and the read buffer go in with the op and come back with its
//! result, so a warm connection allocates nothing per request.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio_uring::net::TcpStream;

use super::ctx::Ctx;
use super::record::ErrorKind;
use super::response::{self, Head};
use ringway_kit::ring_io::read_more;

/// Free room kept in the read buffer before each read: a small answer fits
/// in one read; a large one grows the buffer to its whole length once.
const READ_ROOM: usize = 16 * 1024;
/// Closed loop: pause after a failed connect, so that a dead target is not
/// hammered in a tight loop (the count of failures matters, not their rate).
/// An open loop needs none: its schedule paces the attempts.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A connection's owned buffers, lent to each op.
#[derive(Debug)]
struct Bufs {
    request: Vec<u8>,
    read: Vec<u8>,
}

impl Bufs {
    fn new(request: &[u8]) -> Self {
        Self {
            request: request.to_vec(),
            read: Vec::with_capacity(READ_ROOM),
        }
    }
}

/// How an exchange failed.
type Failure = (ErrorKind, String);

/// Opens a connection to the target within the plan's timeout.
pub async fn connect(ctx: &Ctx) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(ctx.plan.timeout, TcpStream::connect(ctx.plan.target))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    // Requests are single writes: never hold one back.
    stream.set_nodelay(true)?;
    ctx.record.borrow_mut().connects += 1;
    Ok(stream)
}

/// One keep-alive connection's loop, `first` opened before the run began.
/// Reconnects after the server closes or an error broke the connection.
pub async fn keep_alive(ctx: Rc<Ctx>, first: TcpStream) {
    let mut conn = Some(first);
    let mut bufs = Bufs::new(&ctx.plan.request);
    let open_loop = ctx.tickets.is_some();
    while let Some(intended) = ctx.next_request().await {
        let stream = match conn.take() {
            Some(s) => s,
            None => match connect(&ctx).await {
                Ok(s) => s,
                Err(e) => {
                    ctx.fail(intended, ErrorKind::Connect, || e.to_string());
                    if !open_loop {
                        tokio::time::sleep(ERROR_PAUSE).await;
                    }
                    continue;
                }
            },
        };
        let at = if open_loop { intended } else { Instant::now() };
        let Some((back, answer)) = settle(&ctx, at, exchange(&ctx, &stream, bufs)).await else {
            return;
        };
        bufs = back;
        if answer.is_ok_and(|head| !head.close) {
            conn = Some(stream);
        }
    }
}

/// One request per connection: connect, send, read the whole answer, close.
/// The connect is part of the request's latency.
pub async fn one_shot(ctx: Rc<Ctx>) {
    let mut bufs = Bufs::new(&ctx.plan.request);
    let open_loop = ctx.tickets.is_some();
    while let Some(intended) = ctx.next_request().await {
        let at = if open_loop { intended } else { Instant::now() };
        let attempt = async {
            match connect(&ctx).await {
                Ok(stream) => exchange(&ctx, &stream, bufs).await,
                Err(e) => (Err((ErrorKind::Connect, e.to_string())), bufs),
            }
        };
        let Some((back, answer)) = settle(&ctx, at, attempt).await else {
            return;
        };
        bufs = back;
        if answer.is_err_and(|kind| kind == ErrorKind::Connect) && !open_loop {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
}

/// Runs one request `attempt` under the timeout, against the run's stop,
/// and counts what came of it. `None` when the run stopped; otherwise the
/// buffers (new ones after a timeout) and the answer's head, or the kind of
/// failure.
async fn settle(
    ctx: &Ctx,
    at: Instant,
    attempt: impl Future<Output = (Result<Head, Failure>, Bufs)>,
) -> Option<(Bufs, Result<Head, ErrorKind>)> {
    let outcome = tokio::select! {
        r = tokio::time::timeout(ctx.plan.timeout, attempt) => r,
        () = ctx.until_stopped() => return None,
    };
    let done = Instant::now();
    Some(match outcome {
        Ok((Ok(head), bufs)) => {
            answered(ctx, at, done, head.status);
            (bufs, Ok(head))
        }
        Ok((Err((kind, detail)), bufs)) => {
            ctx.fail(at, kind, || detail);
            (bufs, Err(kind))
        }
        Err(_) => (timed_out(ctx, at), Err(ErrorKind::Timeout)),
    })
}

/// Counts a request that got no whole answer within the timeout, and
/// gives new buffers: the op futures were dropped with the ones they held.
fn timed_out(ctx: &Ctx, at: Instant) -> Bufs {
    ctx.fail(at, ErrorKind::Timeout, || {
        format!("no whole response within {:?}", ctx.plan.timeout)
    });
    Bufs::new(&ctx.plan.request)
}

/// Counts a complete response: 2xx is a success, anything else an error.
fn answered(ctx: &Ctx, at: Instant, done: Instant, status: u16) {
    if (200..300).contains(&status) {
        ctx.ok(at, done);
    } else {
        ctx.fail(at, ErrorKind::Non2xx, || format!("status {status}"));
    }
}

/// Sends the request and reads one whole response; gives the buffers back.
async fn exchange(ctx: &Ctx, stream: &TcpStream, mut bufs: Bufs) -> (Result<Head, Failure>, Bufs) {
    let (written, request) = stream.write_all(bufs.request).await;
    bufs.request = request;
    if let Err(e) = written {
        return (Err((ErrorKind::of_io(&e), e.to_string())), bufs);
    }
    ctx.record.borrow_mut().sent += 1;
    ctx.wrote(bufs.request.len(), Instant::now());
    bufs.read.clear();
    let mut head: Option<Head> = None;
    loop {
        let want = head.map_or(READ_ROOM, |h| h.total_len().saturating_sub(bufs.read.len()));
        if bufs.read.capacity() - bufs.read.len() < want.min(READ_ROOM) {
            bufs.read.reserve(want.max(READ_ROOM));
        }
        let (got, read) = read_more(stream, bufs.read).await;
        bufs.read = read;
        let n = match got {
            Ok(0) => {
                let detail = format!(
                    "the server closed the connection after {} bytes of a response",
                    bufs.read.len()
                );
                return (Err((ErrorKind::Closed, detail)), bufs);
            }
            Ok(n) => n,
            Err(e) => return (Err((ErrorKind::of_io(&e), e.to_string())), bufs),
        };
        ctx.record.borrow_mut().bytes_received += n as u64;
        if head.is_none() {
            match response::parse_head(&bufs.read) {
                Ok(h) => head = h,
                Err(e) => return (Err((ErrorKind::Protocol, e.to_string())), bufs),
            }
        }
        if let Some(h) = head {
            let total = h.total_len();
            if bufs.read.len() > total {
                let detail = format!(
                    "{} bytes after a {total}-byte response",
                    bufs.read.len() - total
                );
                return (Err((ErrorKind::Protocol, detail)), bufs);
            }
            if bufs.read.len() == total {
                return (Ok(h), bufs);
            }
        }
    }
}
