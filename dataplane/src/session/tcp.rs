//! One proxied TCP connection: connect upstream, copy both ways, end cleanly.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::ResetIfCut;
use crate::buf::Group;
use crate::request::Fault;
use crate::rt;
use crate::rt::net::TcpStream;
use crate::rt::reuse::recycled;
use crate::rt::time::Alarm;
use crate::session::relay::{Activity, Flow, Pump, HIGH_WATER_BUFFERS};
use crate::stats::Counters;
use crate::table::breaker::{Kind, OwnedSlot};
use crate::table::lb::Policy;
use crate::table::{ClusterId, Service};
use crate::upstream;
use crate::upstream::connect::{connect, ConnectError};
use crate::upstream::load::InFlight;
use crate::upstream::LocalTable;

/// How a proxied connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Both sides closed their sending direction.
    Closed,
    /// One side reset or failed; the other was reset too.
    Reset,
    /// Nothing moved for the listener's idle timeout. Closed with a FIN
    /// when neither direction held bytes (nothing was lost), with a reset
    /// on both sides when one did (its destination had stopped reading).
    Idle,
    /// No endpoint of the cluster accepted a connection, or every one was
    /// held out after a failed connect (none was tried).
    NoUpstream,
    /// This host ran short of a resource of its own (descriptors, memory)
    /// before an upstream connection could be made.
    LocalShortage,
    /// The cluster was at its `max_connections`: reset at once.
    Overflow,
    /// The TLS handshake with the upstream failed (the cluster's `tls`).
    UpstreamTls,
    /// The listener's authorization refused the client: reset.
    Forbidden,
}

/// Serves `client`, accepted on listener `listener` of `local`, which sends
/// to cluster `id`: the worker's pick of its endpoints, tried in turn (see
/// `upstream::connect`). If the task is dropped before the connection ended
/// (the drain deadline, a removed listener's cut), both sockets close with a
/// reset: neither peer may take the cut for the other's orderly end.
// Not an async fn: that would keep the arguments twice (rust#62958), for
// as long as the connection is open.
#[allow(clippy::manual_async_fn)]
pub fn serve<'a>(
    local: &'a LocalTable,
    listener: usize,
    id: ClusterId,
    client: TcpStream,
    counters: &'a Counters,
) -> impl Future<Output = Ending> + 'a {
    async move {
        let _ = client.socket().set_tcp_nodelay(true);
        let table = &*local.table;
        let idle_timeout = table.listeners[listener].idle_timeout;
        let client_cut = ResetIfCut::new(&client);
        // In a recycled block: the connect's state (hundreds of bytes) is
        // held by connections connecting, not by every open one.
        let (upstream, marks) = match recycled(|| reach(local, id, &client, counters)).await {
            Ok(reached) => reached,
            Err(Unreached::Overflow) => {
                // Reset (the guard does it), counted.
                counters.overflows.add(1);
                return Ending::Overflow;
            }
            Err(Unreached::Connect(e)) => {
                // A reset, not a FIN: an empty but orderly stream would look
                // like a successful exchange to the client (the guard does
                // it). A local shortage is counted where it was met, not as
                // a cluster out of reach.
                return match e {
                    ConnectError::Local(_) => Ending::LocalShortage,
                    ConnectError::Unreachable(_) | ConnectError::AllHeldOut => {
                        counters.no_upstream.add(1);
                        Ending::NoUpstream
                    }
                };
            }
        };
        // The relay guards both sockets from here.
        client_cut.disarm();
        Relay::new(client, upstream, marks, idle_timeout, counters).await
    }
}

/// What a TCP listener's `fault` decided for a connection just accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Nothing: serve it as usual.
    Nothing,
    /// Reset at once (done): serve nothing.
    Abort,
    /// Hold it this long (see [`hold`]), then serve it.
    Delay(Duration),
}

/// What the `fault` of listener `listener` of `local`, if it has one,
/// decides for `client`, just accepted on worker `worker`, by a roll of
/// `random` (drawn only then). An abort resets the connection at once,
/// before any upstream connect. Both kinds are counted on the listener's
/// fault tally, never as a failure of any kind.
pub fn inject_fault(
    local: &LocalTable,
    listener: usize,
    worker: usize,
    client: &TcpStream,
    random: impl FnOnce() -> u64,
) -> Injected {
    let Service::Tcp {
        fault: Some(fault), ..
    } = &local.table.listeners[listener].service
    else {
        return Injected::Nothing;
    };
    let Some(decided) = fault.shares.decide(random()) else {
        return Injected::Nothing;
    };
    fault.tally.add(worker, decided);
    match decided {
        Fault::Abort => {
            let _ = client.reset_on_close();
            Injected::Abort
        }
        Fault::Delay => Injected::Delay(fault.delay.unwrap_or_default()),
    }
}

/// Holds a connection a listener's fault delays for `delay`, before
/// anything else (its upstream connect, or a TLS handshake). Cut in the
/// wait (a drain's deadline), the client is reset, as a pair cut later
/// is.
pub async fn hold(client: &TcpStream, delay: Duration) {
    let cut = ResetIfCut::new(client);
    let _ = rt::time::sleep(delay).await;
    cut.disarm();
}

/// Whether listener `listener` of `local` lets `client` through, judged
/// by its authorization (if it has one) on worker `worker`, which counts
/// the decision. Called once a connection is accepted, before [`serve`]
/// and so before any upstream connect; a refused client is closed with a
/// reset, so that it cannot take the close for an orderly, empty stream.
///
/// `identity` is the client's SPIFFE ID as its TLS handshake proved it
/// (a TLS listener with `client_ca` checks after the handshake); `None`
/// for a plain connection, which only rules that take `unauthenticated`
/// connections (and the default) can decide for.
pub fn admit(
    local: &LocalTable,
    listener: usize,
    worker: usize,
    client: &TcpStream,
    identity: Option<&str>,
) -> bool {
    let Some(authz) = &local.table.listeners[listener].authorization else {
        return true;
    };
    if authz.check_connection(identity, worker) {
        return true;
    }
    let _ = client.reset_on_close();
    false
}

/// What an open TCP pair holds on behalf of its cluster while it lasts:
/// its in-flight mark on the endpoint's load record (clusters that balance
/// by load) and its place under `max_connections` (clusters with
/// breakers). Boxed, and only when there is either: a pair of a plain
/// cluster pays one null pointer.
#[derive(Debug)]
pub(super) struct Marks {
    _in_flight: Option<InFlight>,
    _slot: Option<OwnedSlot>,
}

/// Why no upstream connection was made for a TCP client.
pub(super) enum Unreached {
    Overflow,
    Connect(ConnectError),
}

/// A connection to an endpoint of cluster `id` for `client`, in the order
/// of the worker's pick; with the connection counted in flight on the
/// endpoint for a cluster that balances by load (peak-EWMA takes the
/// connect's time as its latency sample), and under the cluster's
/// `max_connections`.
pub(super) async fn reach(
    local: &LocalTable,
    id: ClusterId,
    client: &TcpStream,
    counters: &Counters,
) -> Result<(TcpStream, Option<Box<Marks>>), Unreached> {
    let cluster = local.table.cluster(id);
    let slot = match &cluster.breaker {
        Some(breaker) => Some(
            breaker
                .enter_owned(Kind::Connection)
                .ok_or(Unreached::Overflow)?,
        ),
        None => None,
    };
    let key = cluster.balance.policy.hash_on().and_then(|on| {
        let peer = client.socket().peer_addr().ok()?.as_socket()?;
        upstream::key::of_connection(on, peer.ip())
    });
    let started = rt::now();
    let pick = local.pick(id, started, key);
    let (stream, addr) = connect(pick, cluster, counters)
        .await
        .map_err(Unreached::Connect)?;
    // A TCP endpoint that took the connection is well, as far as this
    // worker can tell (it ends a run of failed connects, and a probe).
    upstream::connect::success(&local.upstreams.health, addr, cluster, rt::now());
    let in_flight = local.track(id, addr);
    if let (Some(f), Policy::PeakEwma(ewma)) = (&in_flight, &cluster.balance.policy) {
        let now = rt::now();
        f.load()
            .observe(ewma, now.saturating_duration_since(started), now);
    }
    let marks = (in_flight.is_some() || slot.is_some()).then(|| {
        Box::new(Marks {
            _in_flight: in_flight,
            _slot: slot,
        })
    });
    Ok((stream, marks))
}

/// Copies both directions until both ended, one failed, or the connection
/// sat idle for `idle_timeout`; owns both sockets.
///
/// A struct polled by hand rather than an async fn: it is what an idle
/// pair holds for as long as it is open, and a struct holds each field
/// once, where an async fn keeps its arguments twice and room for the
/// futures of its largest state.
///
/// Dropped before it ended (the task cut), it closes both sockets with a
/// reset; either way its pumps' ops are cancelled as it goes, and each
/// socket closes when the last op holding it completes.
struct Relay<'a> {
    client: TcpStream,
    upstream: TcpStream,
    counters: &'a Counters,
    idle_timeout: Duration,
    activity: Activity,
    /// Client to upstream, until it ended.
    down: Option<Pump>,
    /// Upstream to client, until it ended.
    up: Option<Pump>,
    /// Wakes the task once nothing may have moved for `idle_timeout`.
    idle: Alarm,
    /// It returned how the connection ended.
    ended: bool,
    /// What the pair holds for its cluster until the relay is dropped.
    _marks: Option<Box<Marks>>,
}

impl<'a> Relay<'a> {
    fn new(
        client: TcpStream,
        upstream: TcpStream,
        marks: Option<Box<Marks>>,
        idle_timeout: Duration,
        counters: &'a Counters,
    ) -> Self {
        let down = Pump::new(client.recv_stream(Group::Client, HIGH_WATER_BUFFERS));
        let up = Pump::new(upstream.recv_stream(Group::Upstream, HIGH_WATER_BUFFERS));
        Self {
            client,
            upstream,
            counters,
            idle_timeout,
            activity: Activity::new(),
            down: Some(down),
            up: Some(up),
            idle: Alarm::new(),
            ended: false,
            _marks: marks,
        }
    }

    fn poll_ending(&mut self, cx: &mut Context<'_>) -> Poll<Ending> {
        let (client, upstream, counters) = (&self.client, &self.upstream, self.counters);
        if let Some(down) = &mut self.down {
            let bytes = &counters.bytes_from_clients;
            if let Poll::Ready(flow) = down.poll_copy(upstream, &self.activity, bytes, cx) {
                if let Some(ending) = failed(flow, client, upstream, counters) {
                    return Poll::Ready(ending);
                }
                self.down = None;
            }
        }
        if let Some(up) = &mut self.up {
            let bytes = &counters.bytes_from_upstreams;
            if let Poll::Ready(flow) = up.poll_copy(client, &self.activity, bytes, cx) {
                if let Some(ending) = failed(flow, upstream, client, counters) {
                    return Poll::Ready(ending);
                }
                self.up = None;
            }
        }
        if self.down.is_none() && self.up.is_none() {
            return Poll::Ready(Ending::Closed);
        }
        // A timeout too long to add up never comes.
        let Some(deadline) = self.activity.last().checked_add(self.idle_timeout) else {
            return Poll::Pending;
        };
        if self.idle.poll_until(deadline, cx).is_ready() {
            counters.idle_timeouts.add(1);
            let holding = [&self.down, &self.up]
                .into_iter()
                .any(|pump| pump.as_ref().is_some_and(Pump::holding));
            if holding {
                // A destination stopped reading with bytes still to go: a
                // FIN would let it take what it got for the whole stream.
                let _ = client.reset_on_close();
                let _ = upstream.reset_on_close();
            }
            return Poll::Ready(Ending::Idle);
        }
        Poll::Pending
    }
}

impl Future for Relay<'_> {
    type Output = Ending;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ending> {
        let this = self.get_mut();
        let ending = std::task::ready!(this.poll_ending(cx));
        this.ended = true;
        Poll::Ready(ending)
    }
}

impl Drop for Relay<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.client.reset_on_close();
            let _ = self.upstream.reset_on_close();
        }
    }
}

/// Maps a finished direction to the connection's ending if it failed,
/// arranging for both sockets to close with a reset.
fn failed(flow: Flow, source: &TcpStream, dest: &TcpStream, counters: &Counters) -> Option<Ending> {
    match flow {
        Flow::Eof => None,
        Flow::RecvFailed | Flow::SendFailed => {
            counters.resets.add(1);
            let _ = source.reset_on_close();
            let _ = dest.reset_on_close();
            Some(Ending::Reset)
        }
    }
}

#[cfg(test)]
mod sizes {
    //! Footprint probes: how many bytes an open TCP pair's future takes.

    use std::mem::size_of;

    fn serve_size() -> usize {
        fn probe<'a, F, Fut>(_: F) -> usize
        where
            F: FnOnce(
                &'a crate::upstream::LocalTable,
                usize,
                crate::table::ClusterId,
                crate::rt::net::TcpStream,
                &'a crate::stats::Counters,
            ) -> Fut,
        {
            size_of::<Fut>()
        }
        probe(super::serve)
    }

    /// What an open pair's future takes, printed (`cargo test sizes --
    /// --nocapture`) and bounded, so that growth is noticed: sizes are
    /// fixed at compile time, the same in every run. (`serve` is the relay
    /// and the arguments; the connect is in a recycled block, held only
    /// while connecting. The task adds the worker's guard and the table:
    /// see `worker::listeners`. The relay's in-flight mark on its
    /// endpoint's load record, for clusters that balance by load, is 8 B of
    /// the 344.)
    #[test]
    fn an_idle_pair_stays_within_its_bounds() {
        let sizes = [
            ("serve", serve_size(), 344),
            ("Relay", size_of::<super::Relay<'_>>(), 288),
            ("Pump", size_of::<crate::session::relay::Pump>(), 96),
            ("RecvStream", size_of::<crate::rt::net::RecvStream>(), 48),
            ("Sending", size_of::<crate::rt::net::Sending>(), 40),
        ];
        for (what, size, bound) in sizes {
            eprintln!("{what}: {size} B (bound {bound} B)");
        }
        for (what, size, bound) in sizes {
            assert!(size <= bound, "{what} grew to {size} B, past {bound} B");
        }
    }
}
