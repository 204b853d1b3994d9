//! A client connection's state, what it shares with the rest of the worker,
//! and how handling one request ends.

use std::borrow::Cow;
use std::net::IpAddr;
use std::rc::Rc;

use super::inbound::Inbound;
use super::send::HeadBuf;
use super::state::WorkerHttp;
use crate::proto::h1::request::RequestHead;
use crate::proto::h1::response::ResponseHead;
use crate::request::Reason;
use crate::rt::net::TcpStream;
use crate::stats::Counters;
use crate::table::route::HttpService;
use crate::table::tally::HttpCounters;
use crate::table::Table;
use crate::upstream::LocalTable;

/// What a connection shares with the rest of its worker, for its life.
pub(super) struct Ctx<'a> {
    /// The table generation the connection was accepted on.
    pub(super) table: &'a Table,
    /// Its listener's settings and routes.
    pub(super) service: &'a HttpService,
    /// The listener's counters (this worker's block).
    pub(super) listener: &'a HttpCounters,
    /// `table` as the worker runs it: its balancer, endpoint health and
    /// idle upstream connections.
    pub(super) upstream: &'a LocalTable,
    /// The worker's connection counters.
    pub(super) counters: &'a Counters,
    /// The worker's HTTP state.
    pub(super) http: &'a WorkerHttp,
    /// The client's address.
    pub(super) peer: IpAddr,
}

/// A client connection's own state, reused from request to request.
pub(super) struct Conn {
    /// The client socket.
    pub(super) client: TcpStream,
    /// What the client sent and was not used yet.
    pub(super) inbound: Inbound,
    /// The request head being handled.
    pub(super) req: RequestHead,
    /// The response head being forwarded.
    pub(super) resp: ResponseHead,
    /// Heads being written.
    pub(super) out: HeadBuf,
    /// Whether a request head was read on this connection: until then the
    /// wait for one is bounded by the header timeout, after it by the idle
    /// timeout.
    pub(super) served: bool,
}

/// What the connection does after a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum After {
    /// Read the next request.
    Next,
    /// Close the connection (what had to be sent was sent).
    Close,
    /// Close after reading and dropping what the client still sends.
    Linger,
}

/// Finds a table newer than the generation given, with the connection's
/// listener's index in it; `None` while there is none (or the listener was
/// dropped, and its connections stay on the table they run).
pub type Newer<'a> = dyn Fn(u64) -> Option<(Rc<LocalTable>, usize)> + 'a;

/// How a connection's request loop ended.
pub(super) enum Ended {
    /// The connection is done.
    Closed,
    /// A newer table came; the head of the next request is read, to be
    /// served on it (at this index of its listener).
    Newer(Rc<LocalTable>, usize),
}

/// An answer ringway must write itself instead of a proxied one.
#[derive(Debug)]
pub(super) struct Answer<'a> {
    /// Where it is counted.
    pub(super) tally: &'a HttpCounters,
    /// Why.
    pub(super) reason: Reason,
    /// The one line the client reads.
    pub(super) detail: Cow<'static, str>,
    /// Whether the connection closes after it.
    pub(super) close: bool,
}

impl<'a> Answer<'a> {
    /// An answer with a fixed explanation.
    pub(super) fn new(
        tally: &'a HttpCounters,
        reason: Reason,
        detail: &'static str,
        close: bool,
    ) -> Self {
        Self {
            tally,
            reason,
            detail: Cow::Borrowed(detail),
            close,
        }
    }
}
