//! One admin connection. hyper answers its requests; around hyper, this
//! module keeps what the connection is doing ([`Phase`]), closes it when a
//! request does not come in time, and gives the answers hyper does not give
//! itself: 408 for a request that did not come in time (hyper just closes),
//! 400 for a head with both `Content-Length` and `Transfer-Encoding` (hyper
//! quietly drops the length; see [`super::head`]).

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONNECTION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::gate::Ticket;
use super::head::{Check, Heads};
use super::{text, Reply};
use crate::agent::Agent;
use crate::config::AdminSettings;

/// How long writing a refusal (a few hundred bytes, into an empty socket
/// buffer) may take before the connection is simply closed.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// What a connection is doing, shared by its reader, its service and the
/// task that serves it.
#[derive(Debug)]
pub(super) struct ConnState {
    /// Order of admission: breaks ties between equal instants.
    seq: u64,
    phase: Cell<Phase>,
    heads: RefCell<Heads>,
    /// Asked to leave to make room (see [`super::gate`]).
    evicted: Cell<bool>,
    /// Woken on every change of phase and on eviction.
    changed: Notify,
}

/// Where a connection is between two requests, or in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte of the next request yet, since `since`; `first` while no
    /// request has come on the connection.
    Silent { since: Instant, first: bool },
    /// Part of a request head has come, the first byte at `since`.
    Head { since: Instant },
    /// A request is being answered.
    Serving,
}

/// Why a connection is closed before hyper is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Silent for `admin.first_byte_timeout`; `first` as in [`Phase`].
    Silent { first: bool },
    /// A head not complete within `admin.head_timeout`.
    SlowHead,
    /// Asked to leave; `quiet` when it was between requests on a
    /// kept-alive connection.
    Evicted { quiet: bool },
}

impl ConnState {
    /// A connection just accepted, the `seq`-th.
    pub(super) fn new(seq: u64) -> Self {
        Self {
            seq,
            phase: Cell::new(Phase::Silent {
                since: Instant::now(),
                first: true,
            }),
            heads: RefCell::new(Heads::default()),
            evicted: Cell::new(false),
            changed: Notify::new(),
        }
    }

    /// Since when, and in which order, the connection has been waiting for
    /// a request; `None` while one is answered, or once it was evicted.
    pub(super) fn waiting_since(&self) -> Option<(Instant, u64)> {
        match self.phase.get() {
            _ if self.evicted.get() => None,
            Phase::Silent { since, .. } | Phase::Head { since } => Some((since, self.seq)),
            Phase::Serving => None,
        }
    }

    /// Asks the connection to leave.
    pub(super) fn evict(&self) {
        self.evicted.set(true);
        self.changed.notify_one();
    }

    /// Whether it was asked to leave.
    pub(super) fn is_evicted(&self) -> bool {
        self.evicted.get()
    }

    /// Bytes came from the client.
    fn read(&self, bytes: &[u8]) {
        let mut heads = self.heads.borrow_mut();
        heads.feed(bytes);
        if matches!(self.phase.get(), Phase::Silent { .. }) && heads.started() {
            self.set(Phase::Head {
                since: Instant::now(),
            });
        }
    }

    /// hyper hands over a request: checks its head as sent.
    pub(super) fn request(&self) -> Check {
        self.set(Phase::Serving);
        self.heads.borrow_mut().next()
    }

    /// hyper is done with the answer: the next request is due.
    fn answered(&self) {
        let now = Instant::now();
        self.set(if self.heads.borrow().started() {
            Phase::Head { since: now }
        } else {
            Phase::Silent {
                since: now,
                first: false,
            }
        });
    }

    fn set(&self, phase: Phase) {
        self.phase.set(phase);
        self.changed.notify_one();
    }

    /// Waits until the connection must be closed: a timeout of `limits`
    /// passed, or it was evicted. Never returns while a request is answered.
    async fn ending(&self, limits: AdminSettings) -> Ending {
        loop {
            let phase = self.phase.get();
            let due = match phase {
                // A request that got in before the eviction is answered.
                Phase::Serving => None,
                _ if self.evicted.get() => {
                    return Ending::Evicted {
                        quiet: matches!(phase, Phase::Silent { first: false, .. }),
                    }
                }
                Phase::Silent { since, first } => {
                    Some((since + limits.first_byte_timeout, Ending::Silent { first }))
                }
                Phase::Head { since } => Some((since + limits.head_timeout, Ending::SlowHead)),
            };
            match due {
                Some((at, ending)) if Instant::now() >= at => return ending,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

impl Ending {
    /// What the client is told, or `None` to close without a word (a
    /// kept-alive connection with no request under way: an answer there
    /// could be taken for the answer to a request crossing it).
    fn answer(self, limits: AdminSettings, capacity: usize) -> Option<String> {
        let format = |d: Duration| humantime::format_duration(d).to_string();
        match self {
            Ending::Silent { first: true } => Some(format!(
                "no request came within {} of connecting (admin.first_byte_timeout)",
                format(limits.first_byte_timeout)
            )),
            Ending::SlowHead => Some(format!(
                "the request head was not complete within {} of its first byte (admin.head_timeout)",
                format(limits.head_timeout)
            )),
            Ending::Evicted { quiet: false } => Some(format!(
                "the admin API keeps at most {capacity} connections open, and this one had \
                 waited longest for its request; connect again"
            )),
            Ending::Silent { first: false } | Ending::Evicted { quiet: true } => None,
        }
    }
}

/// Serves one admitted connection until it ends.
pub(super) async fn serve(
    stream: TcpStream,
    ticket: Ticket,
    agent: Rc<Agent>,
    changes: Rc<Semaphore>,
) {
    let state = Rc::clone(ticket.state());
    let limits = agent.admin_settings();
    let stream = Rc::new(RefCell::new(stream));
    let io = TokioIo::new(Tapped {
        stream: Rc::clone(&stream),
        state: Rc::clone(&state),
    });
    let service = {
        let state = Rc::clone(&state);
        service_fn(move |req: Request<Incoming>| {
            let check = state.request();
            let (agent, state, changes) =
                (Rc::clone(&agent), Rc::clone(&state), Rc::clone(&changes));
            async move {
                let reply = match check {
                    Check::Clean => super::handle(&agent, req, &changes).await,
                    Check::CloseAfter => closing(super::handle(&agent, req, &changes).await),
                    Check::Conflict => closing(text(
                        StatusCode::BAD_REQUEST,
                        "error: the request has both Content-Length and Transfer-Encoding, \
                         which could frame its body two ways; send only one of them\n"
                            .to_owned(),
                    )),
                    Check::Unreadable(why) => closing(text(
                        StatusCode::BAD_REQUEST,
                        format!("error: the request head cannot be checked: {why}\n"),
                    )),
                };
                Ok::<_, Infallible>(reply.map(|body| Answered { body, state }))
            }
        })
    };
    let mut builder = http1::Builder::new();
    // The deadlines are kept here, where an expired one can be answered.
    builder.header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    let ending = tokio::select! {
        biased;
        // Served to the end, or failed: hyper has closed it.
        _ = connection => return,
        ending = state.ending(limits) => ending,
    };
    let answer = ending.answer(limits, ticket.capacity());
    drop(ticket);
    // hyper's future, and with it its handle on the socket, is gone.
    let Ok(stream) = Rc::try_unwrap(stream).map(RefCell::into_inner) else {
        return;
    };
    if let Some(reason) = answer {
        refuse(stream, StatusCode::REQUEST_TIMEOUT, &reason).await;
    }
}

/// Answers `status` with `reason` on a connection hyper does not serve,
/// then closes it.
pub(super) async fn refuse(mut stream: TcpStream, status: StatusCode, reason: &str) {
    let body = format!("error: {reason}\n");
    let message = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_str(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    );
    let sent = async {
        stream.write_all(message.as_bytes()).await?;
        stream.shutdown().await
    };
    if tokio::time::timeout(REFUSAL_WRITE, sent).await.is_err() {
        return;
    }
    // Closing a socket with unread bytes sends a reset, which may destroy
    // the answer before the client reads it: take in what is there now.
    // Waiting for more would let a client that never stops hold the socket.
    let mut sink = [0u8; 4096];
    while matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {}
}

/// `reply` with `connection: close`: hyper closes after sending it.
fn closing(mut reply: Reply) -> Reply {
    reply
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    reply
}

/// The socket as hyper sees it; every byte read is shown to the
/// connection's [`ConnState`] on the way.
struct Tapped {
    /// Shared with the serving task, which answers on it once hyper is gone.
    stream: Rc<RefCell<TcpStream>>,
    state: Rc<ConnState>,
}

impl AsyncRead for Tapped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut *self.stream.borrow_mut()).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for Tapped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream.borrow_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.borrow().is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream.borrow_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream.borrow_mut()).poll_shutdown(cx)
    }
}

/// A response body that tells the connection when hyper is done with it:
/// hyper drops a body once it has taken its last byte (or given up).
struct Answered {
    body: Full<Bytes>,
    state: Rc<ConnState>,
}

impl Body for Answered {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.state.answered();
    }
}
