//! HTTP/1.1 connections of the generator: keep-alive (one request in flight
//! per connection, the next sent when the answer is complete) or a new
//! connection per request.
//!
//! Buffers are owned and handed to each ring op (tokio-uring's model): the
//! request bytes and the read buffer go in with the op and come back with its
//! result, so a warm connection allocates nothing per request. Over TLS
//! ([`super::tls`]) the ciphertext buffers are the connection's own, and a
//! connection used once hands them to the next.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio_uring::net::TcpStream;

use super::ctx::Ctx;
use super::plan::Plan;
use super::record::ErrorKind;
use super::response::{self, Head};
use super::tls::{CipherBufs, TlsConn, TlsError};
use ringway_kit::ring_io::read_more;

/// Free room kept in the read buffer before each read: a small answer fits
/// in one read; a large one grows the buffer to its whole length once.
const READ_ROOM: usize = 16 * 1024;
/// Closed loop: pause after a failed connect, so that a dead target is not
/// hammered in a tight loop (the count of failures matters, not their rate).
/// An open loop needs none: its schedule paces the attempts.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A connection of the generator: plaintext, or TLS over the same kind of
/// socket.
pub enum Conn {
    /// Bytes as they are.
    Plain(TcpStream),
    /// TLS 1.3.
    Tls(Box<TlsConn>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Conn::Plain",
            Conn::Tls(_) => "Conn::Tls",
        })
    }
}

/// A connection's owned buffers, lent to each op.
#[derive(Debug)]
struct Bufs {
    request: Vec<u8>,
    read: Vec<u8>,
    /// Over TLS, the ciphertext buffers of a connection used once, kept for
    /// the next one.
    spare: Option<CipherBufs>,
}

impl Bufs {
    fn new(plan: &Plan) -> Self {
        Self {
            request: plan.request.clone(),
            read: Vec::with_capacity(READ_ROOM),
            spare: plan
                .tls
                .as_ref()
                .map(|_| CipherBufs::new(plan.request.len())),
        }
    }
}

/// How an exchange failed.
type Failure = (ErrorKind, String);

/// Opens a connection to the target within the plan's timeout, and runs
/// its TLS handshake when the plan has TLS.
pub async fn connect(ctx: &Ctx) -> io::Result<Conn> {
    let mut plain = Vec::new();
    open(ctx, CipherBufs::default(), None, &mut plain).await
}

/// [`connect`] with the ciphertext buffers to use (TLS), and `first`
/// bytes sealed after the client's last handshake flight, in the same
/// write (TLS; ignored in plaintext).
async fn open(
    ctx: &Ctx,
    bufs: CipherBufs,
    first: Option<&[u8]>,
    plain: &mut Vec<u8>,
) -> io::Result<Conn> {
    let plan = &ctx.plan;
    let opened = async {
        let stream = TcpStream::connect(plan.target).await?;
        // Requests are single writes: never hold one back.
        stream.set_nodelay(true)?;
        ctx.record.borrow_mut().connects += 1;
        let Some(tls) = &plan.tls else {
            return Ok(Conn::Plain(stream));
        };
        let (conn, kind) = TlsConn::handshake(stream, tls, bufs, first, plain)
            .await
            .map_err(|e| match e {
                TlsError::Io(e) => e,
                e => io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()),
            })?;
        let mut record = ctx.record.borrow_mut();
        record.handshakes.count(kind);
        if record.negotiated.is_none() {
            record.negotiated = Some(conn.negotiated());
        }
        Ok(Conn::Tls(Box::new(conn)))
    };
    tokio::time::timeout(plan.timeout, opened)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// One keep-alive connection's loop, `first` opened before the run began.
/// Reconnects after the server closes or an error broke the connection.
pub async fn keep_alive(ctx: Rc<Ctx>, first: Conn) {
    let mut conn = Some(first);
    let mut bufs = Bufs::new(&ctx.plan);
    let open_loop = ctx.tickets.is_some();
    while let Some(intended) = ctx.next_request().await {
        let mut stream = match conn.take() {
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
        let attempt = exchange(&ctx, &mut stream, bufs, false);
        let Some((back, answer)) = settle(&ctx, at, attempt).await else {
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
    let mut bufs = Bufs::new(&ctx.plan);
    let open_loop = ctx.tickets.is_some();
    while let Some(intended) = ctx.next_request().await {
        let at = if open_loop { intended } else { Instant::now() };
        let attempt = async {
            // Over TLS the request leaves with the client's Finished.
            let tls = bufs.spare.take();
            let sealed = tls.is_some();
            let first = sealed.then_some(bufs.request.as_slice());
            bufs.read.clear();
            let opened = open(&ctx, tls.unwrap_or_default(), first, &mut bufs.read).await;
            match opened {
                Ok(mut conn) => {
                    let (answer, mut back) = exchange(&ctx, &mut conn, bufs, sealed).await;
                    if let Conn::Tls(t) = conn {
                        back.spare = Some(t.into_bufs());
                    }
                    (answer, back)
                }
                Err(e) => {
                    if sealed {
                        bufs.spare = Some(CipherBufs::new(bufs.request.len()));
                    }
                    (Err((ErrorKind::Connect, e.to_string())), bufs)
                }
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
    Bufs::new(&ctx.plan)
}

/// Counts a complete response: 2xx is a success, anything else an error.
fn answered(ctx: &Ctx, at: Instant, done: Instant, status: u16) {
    if (200..300).contains(&status) {
        ctx.ok(at, done);
    } else {
        ctx.fail(at, ErrorKind::Non2xx, || format!("status {status}"));
    }
}

/// Sends the request (unless `sent`: it left with the TLS handshake) and
/// reads one whole response; gives the buffers back.
async fn exchange(
    ctx: &Ctx,
    conn: &mut Conn,
    mut bufs: Bufs,
    sent: bool,
) -> (Result<Head, Failure>, Bufs) {
    if !sent {
        bufs.read.clear();
        let written = match conn {
            Conn::Plain(stream) => {
                let (written, request) = stream.write_all(bufs.request).await;
                bufs.request = request;
                written.map_err(|e| (ErrorKind::of_io(&e), e.to_string()))
            }
            Conn::Tls(tls) => tls
                .send(&bufs.request, &mut bufs.read)
                .await
                .map_err(tls_failure),
        };
        if let Err(failure) = written {
            return (Err(failure), bufs);
        }
    }
    ctx.record.borrow_mut().sent += 1;
    ctx.wrote(bufs.request.len(), Instant::now());
    let mut head: Option<Head> = None;
    let mut fresh = bufs.read.len();
    loop {
        if fresh > 0 {
            ctx.record.borrow_mut().bytes_received += fresh as u64;
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
        let want = head.map_or(READ_ROOM, |h| h.total_len().saturating_sub(bufs.read.len()));
        let got = match conn {
            Conn::Plain(stream) => {
                if bufs.read.capacity() - bufs.read.len() < want.min(READ_ROOM) {
                    bufs.read.reserve(want.max(READ_ROOM));
                }
                let (got, read) = read_more(stream, bufs.read).await;
                bufs.read = read;
                got.map_err(|e| (ErrorKind::of_io(&e), e.to_string()))
            }
            Conn::Tls(tls) => tls.recv(&mut bufs.read, want).await.map_err(tls_failure),
        };
        fresh = match got {
            Ok(0) => {
                let detail = format!(
                    "the server closed the connection after {} bytes of a response",
                    bufs.read.len()
                );
                return (Err((ErrorKind::Closed, detail)), bufs);
            }
            Ok(n) => n,
            Err(failure) => return (Err(failure), bufs),
        };
    }
}

/// The kind of a failed TLS exchange.
fn tls_failure(e: TlsError) -> Failure {
    let kind = match &e {
        TlsError::Io(io) => ErrorKind::of_io(io),
        TlsError::Closed => ErrorKind::Closed,
        TlsError::Tls(_) => ErrorKind::Protocol,
    };
    (kind, e.to_string())
}
