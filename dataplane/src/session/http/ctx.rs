//! A client connection's state, what it shares with the rest of the worker,
//! and how handling one request ends.

use std::borrow::Cow;
use std::net::IpAddr;
use std::rc::Rc;

use super::inbound::Inbound;
use super::parts::Lent;
use super::state::WorkerHttp;
use crate::request::Reason;
use crate::stats::Counters;
use crate::table::route::HttpService;
use crate::table::tally::HttpCounters;
use crate::table::{Service, Table};
use crate::transport::Sender;
use crate::upstream::LocalTable;

/// What a connection shares with the rest of its worker, for its life.
pub(super) struct Ctx<'a> {
    /// The table generation the connection was accepted on.
    pub(super) table: &'a Table,
    /// Its listener's settings and routes.
    pub(super) service: &'a HttpService,
    /// The listener's counters (this worker's block).
    pub(super) listener: &'a HttpCounters,
    /// The listener's name.
    pub(super) listener_name: &'a std::sync::Arc<str>,
    /// `table` as the worker runs it: its balancer, endpoint health and
    /// idle upstream connections.
    pub(super) upstream: &'a Rc<LocalTable>,
    /// The listener's index in `table`.
    pub(super) listener_index: usize,
    /// The worker's connection counters.
    pub(super) counters: &'a Counters,
    /// The worker's HTTP state.
    pub(super) http: &'a WorkerHttp,
    /// The client's address.
    pub(super) peer: IpAddr,
    /// The listener's authorization, if it has one.
    pub(super) authz: Option<&'a crate::table::authz::Authorization>,
}

/// What an HTTP connection needs of the worker that runs it. The worker's
/// handle on the connection (which keeps it counted and reachable for a
/// drain) implements it, and the connection's task owns it: no other
/// future wraps the connection's.
pub trait Worker {
    /// The worker's connection counters.
    fn counters(&self) -> &Counters;
    /// The worker's HTTP state.
    fn http(&self) -> &WorkerHttp;
    /// A table newer than `generation`, with the connection's listener's
    /// index in it; `None` while there is none (or the listener was
    /// dropped, and its connections stay on the table they run).
    fn newer(&self, generation: u64) -> Option<(Rc<LocalTable>, usize)>;
}

/// Where a connection stands: the table and the listener it runs on, the
/// client's address, the worker. Each request's [`Ctx`] is made from it,
/// for that request only, so an idle connection keeps just this.
pub(super) struct Site<W> {
    /// The table the connection runs on (a newer one once it moved).
    pub(super) local: Rc<LocalTable>,
    /// The index of its listener in that table.
    pub(super) listener: usize,
    /// The client's address.
    pub(super) peer: IpAddr,
    /// The worker.
    pub(super) worker: W,
}

impl<W: Worker> Site<W> {
    /// The listener's settings and routes, if it is an HTTP listener in
    /// the table (a connection moves only to tables where it is).
    pub(super) fn service(&self) -> Option<&HttpService> {
        match &self.local.table.listeners[self.listener].service {
            Service::Http(service) => Some(service),
            Service::Tcp { .. } => None,
        }
    }

    /// The context of a request on this site.
    pub(super) fn ctx(&self) -> Option<Ctx<'_>> {
        let service = self.service()?;
        let http = self.worker.http();
        Some(Ctx {
            table: &self.local.table,
            service,
            listener: service.tally.worker(http.worker),
            listener_name: &self.local.table.listeners[self.listener].name,
            upstream: &self.local,
            listener_index: self.listener,
            counters: self.worker.counters(),
            http,
            peer: self.peer,
            authz: self.local.table.listeners[self.listener]
                .authorization
                .as_deref(),
        })
    }
}

/// A client connection's own state: what it keeps between requests.
pub(super) struct Conn {
    /// The client connection's sending half.
    pub(super) client: Sender,
    /// What the client sent and was not used yet.
    pub(super) inbound: Inbound,
    /// Whether a request head was read on this connection: until then the
    /// wait for one is bounded by the header timeout, after it by the idle
    /// timeout.
    pub(super) served: bool,
    /// The parts of a request whose head is read but which is to be served
    /// on a newer table (the connection moves to it first); otherwise a
    /// request's parts live with the request.
    pub(super) held: Option<Lent>,
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

/// Finds a table newer than the generation given (see [`Worker::newer`]).
pub(super) type Newer<'a> = dyn Fn(u64) -> Option<(Rc<LocalTable>, usize)> + 'a;

/// Why a request gets an answer of ringway's own instead of a proxied one.
#[derive(Debug)]
pub(super) struct Failure {
    /// Why.
    pub(super) reason: Reason,
    /// The one line the client reads.
    pub(super) detail: Cow<'static, str>,
    /// Whether the connection closes after the answer.
    pub(super) close: bool,
    /// The `retry-after` seconds of the answer, if it has one.
    pub(super) retry_after: Option<u64>,
}

impl Failure {
    /// A failure with a fixed explanation.
    pub(super) fn new(reason: Reason, detail: &'static str, close: bool) -> Self {
        Self {
            reason,
            detail: Cow::Borrowed(detail),
            close,
            retry_after: None,
        }
    }
}
