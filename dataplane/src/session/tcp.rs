//! One proxied TCP connection: connect upstream, copy both ways, end cleanly.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::ResetIfCut;
use crate::buf::Group;
use crate::rt;
use crate::rt::net::TcpStream;
use crate::rt::time::sleep;
use crate::session::relay::{pump, Activity, Flow, HIGH_WATER_BUFFERS};
use crate::stats::Counters;
use crate::table::ClusterId;
use crate::upstream::connect::{connect, ConnectError};
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
}

/// Serves `client`, accepted on listener `listener` of `local`, which sends
/// to cluster `id`: the worker's pick of its endpoints, tried in turn (see
/// `upstream::connect`). If the task is dropped before the connection ended
/// (the drain deadline, a removed listener's cut), both sockets close with a
/// reset: neither peer may take the cut for the other's orderly end.
pub async fn serve(
    local: &LocalTable,
    listener: usize,
    id: ClusterId,
    client: TcpStream,
    counters: &Counters,
) -> Ending {
    let _ = client.socket().set_tcp_nodelay(true);
    let table = &*local.table;
    let listener = &table.listeners[listener];
    let cluster = table.cluster(id);
    let client_cut = ResetIfCut::new(&client);
    let pick = local.pick(id, rt::now());
    let upstream = match connect(pick, cluster, counters).await {
        Ok((stream, _)) => stream,
        Err(e) => {
            // A reset, not a FIN: an empty but orderly stream would look
            // like a successful exchange to the client (the guard does it).
            // A local shortage is counted where it was met, not as a
            // cluster out of reach.
            return match e {
                ConnectError::Local(_) => Ending::LocalShortage,
                ConnectError::Unreachable(_) | ConnectError::AllHeldOut => {
                    counters.no_upstream.add(1);
                    Ending::NoUpstream
                }
            };
        }
    };
    let upstream_cut = ResetIfCut::new(&upstream);
    let ending = relay(&client, &upstream, listener.idle_timeout, counters).await;
    client_cut.disarm();
    upstream_cut.disarm();
    ending
}

/// Copies both directions until both ended, one failed, or the connection
/// sat idle for `idle_timeout`.
async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    idle_timeout: Duration,
    counters: &Counters,
) -> Ending {
    let activity = Activity::new();
    let mut from_client = client.recv_stream(Group::Client, HIGH_WATER_BUFFERS);
    let mut from_upstream = upstream.recv_stream(Group::Upstream, HIGH_WATER_BUFFERS);
    let mut down = pin!(pump(
        &mut from_client,
        upstream,
        &activity,
        &counters.bytes_from_clients
    ));
    let mut up = pin!(pump(
        &mut from_upstream,
        client,
        &activity,
        &counters.bytes_from_upstreams
    ));
    let mut idle = pin!(idle_watch(&activity, idle_timeout));
    let mut down_done = false;
    let mut up_done = false;
    let ending = poll_fn(|cx| {
        if !down_done {
            if let Poll::Ready(flow) = down.as_mut().poll(cx) {
                if let Some(ending) = failed(flow, client, upstream, counters) {
                    return Poll::Ready(ending);
                }
                down_done = true;
            }
        }
        if !up_done {
            if let Poll::Ready(flow) = up.as_mut().poll(cx) {
                if let Some(ending) = failed(flow, upstream, client, counters) {
                    return Poll::Ready(ending);
                }
                up_done = true;
            }
        }
        if down_done && up_done {
            return Poll::Ready(Ending::Closed);
        }
        if idle.as_mut().poll(cx).is_ready() {
            counters.idle_timeouts.add(1);
            if activity.holding() {
                // A destination stopped reading with bytes still to go: a
                // FIN would let it take what it got for the whole stream.
                let _ = client.reset_on_close();
                let _ = upstream.reset_on_close();
            }
            return Poll::Ready(Ending::Idle);
        }
        Poll::Pending
    })
    .await;
    // Dropping the pumps cancels their ops; the sockets close when the last
    // op holding them completes.
    ending
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

/// Completes once nothing moved for `idle_timeout`.
async fn idle_watch(activity: &Activity, idle_timeout: Duration) {
    loop {
        let deadline = activity.last() + idle_timeout;
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        if sleep(deadline - now).await.is_err() {
            return;
        }
    }
}
