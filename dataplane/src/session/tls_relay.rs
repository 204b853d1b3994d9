//! TCP listeners and clusters with TLS: the relay between two transports,
//! either of which may be TLS (a listener's `tls` terminates, a cluster's
//! originates; both, for a TLS bridge).
//!
//! A plain pair keeps the zero-copy [`Relay`](super::tcp) of `tcp.rs`,
//! which sends from the very buffer the kernel received into; a TLS side
//! decrypts into buffers of its own and seals what it sends, so this
//! relay moves [`BufHandle`](crate::buf::BufHandle)s through the
//! transport's halves instead. It keeps the plain relay's endings: a FIN
//! passed on as a close (close_notify first over TLS), a failure on
//! either side resets both, the idle timeout closes (with resets when a
//! side held bytes its destination would not take). Its task is boxed by
//! the caller, so plain pairs keep their size.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::relay::{Activity, Flow, HIGH_WATER_BUFFERS};
use super::tcp::{reach, Ending, Unreached};
use crate::buf::Group;
use crate::counter::Counter;
use crate::rt;
use crate::rt::net::TcpStream;
use crate::rt::select::{select, Either};
use crate::rt::time::Alarm;
use crate::stats::Counters;
use crate::table::ClusterId;
use crate::transport::{Receiver, Sender, Transport};
use crate::upstream;
use crate::upstream::connect::ConnectError;
use crate::upstream::LocalTable;

/// How long a TCP listener's client has to complete its TLS handshake
/// (an HTTP listener's is its `header_timeout`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Resets the sockets of the senders it holds if dropped with them (a
/// task cut mid-connection: neither peer may take the cut for an orderly
/// end).
struct ResetIfCut(Vec<Sender>);

impl Drop for ResetIfCut {
    fn drop(&mut self) {
        for side in &self.0 {
            let _ = side.reset_on_close();
        }
    }
}

/// Whether a connection of TCP listener `listener`, going to cluster `id`,
/// has a TLS side (and is served here).
pub fn wanted(local: &LocalTable, listener: usize, id: ClusterId) -> bool {
    local.table.listeners[listener].tls().is_some() || local.table.cluster(id).tls.is_some()
}

/// Serves `client` on a TCP listener of `local` whose connections go to
/// cluster `id`, where the listener, the cluster, or both speak TLS.
pub async fn serve(
    local: &LocalTable,
    listener: usize,
    id: ClusterId,
    client: TcpStream,
    worker: usize,
    counters: &Counters,
) -> Ending {
    let _ = client.socket().set_tcp_nodelay(true);
    let tls = local.table.listeners[listener].tls();
    let table = &*local.table;
    let idle_timeout = table.listeners[listener].idle_timeout;
    let cluster = table.cluster(id);
    let client = match tls {
        Some(tls) => {
            let made =
                Transport::tls_server(client, &tls.config, Group::Client, HIGH_WATER_BUFFERS);
            let Ok(mut transport) = made else {
                return Ending::Reset;
            };
            match select(transport.rx.handshake(), rt::time::sleep(HANDSHAKE_TIMEOUT)).await {
                Either::Left(Ok(())) => counters.tls_handshakes.add(1),
                Either::Left(Err(_)) => {
                    counters.tls_handshake_failures.add(1);
                    return Ending::Reset;
                }
                Either::Right(_) => {
                    counters.tls_handshake_timeouts.add(1);
                    return Ending::Reset;
                }
            }
            transport
        }
        None => Transport::plain(client, Group::Client, HIGH_WATER_BUFFERS),
    };
    let mut cut = ResetIfCut(vec![client.tx.clone()]);
    let identity = client.tx.peer_identity();
    if !super::tcp::admit(local, listener, worker, client.tx.stream(), identity) {
        return Ending::Forbidden;
    }
    let (stream, marks) = match reach(local, id, client.tx.stream(), counters).await {
        Ok(reached) => reached,
        Err(Unreached::Overflow) => {
            counters.overflows.add(1);
            return Ending::Overflow;
        }
        Err(Unreached::Connect(ConnectError::Local(_))) => return Ending::LocalShortage,
        Err(Unreached::Connect(_)) => {
            counters.no_upstream.add(1);
            return Ending::NoUpstream;
        }
    };
    let addr = stream.socket().peer_addr().ok().and_then(|a| a.as_socket());
    let recv = stream.recv_stream(Group::Upstream, HIGH_WATER_BUFFERS);
    let upstream = match (&cluster.tls, addr) {
        (Some(tls), Some(addr)) => {
            let made = Transport::tls_client(stream, &tls.config, tls.server_name(addr), recv);
            let Ok(mut transport) = made else {
                counters.upstream_tls_failures.add(1);
                return Ending::UpstreamTls;
            };
            let shaken = select(
                transport.rx.handshake(),
                rt::time::sleep(cluster.connect_timeout),
            )
            .await;
            if !matches!(shaken, Either::Left(Ok(()))) {
                counters.upstream_tls_failures.add(1);
                let health = &local.upstreams.health;
                let now = rt::now();
                health.mark_down(addr, now);
                upstream::connect::gateway_failure(health, addr, cluster, counters, now);
                let _ = transport.tx.reset_on_close();
                return Ending::UpstreamTls;
            }
            transport
        }
        (Some(_), None) => {
            counters.upstream_tls_failures.add(1);
            return Ending::UpstreamTls;
        }
        (None, _) => Transport::from_plain(stream, recv),
    };
    let Transport {
        rx: client_rx,
        tx: client_tx,
    } = client;
    let Transport {
        rx: up_rx,
        tx: up_tx,
    } = upstream;
    cut.0.push(up_tx.clone());
    let ending = relay(
        [client_rx, up_rx],
        [&client_tx, &up_tx],
        idle_timeout,
        counters,
    )
    .await;
    // Ended by itself: the relay chose how each side closes.
    cut.0.clear();
    drop(marks);
    ending
}

/// Copies both ways until both ended, one failed, or nothing moved for
/// `idle_timeout`.
async fn relay(
    [client_rx, up_rx]: [Receiver; 2],
    [client_tx, up_tx]: [&Sender; 2],
    idle_timeout: Duration,
    counters: &Counters,
) -> Ending {
    let activity = Activity::new();
    let holding = [Cell::new(false), Cell::new(false)];
    let mut down = pin!(copy(
        client_rx,
        up_tx,
        &activity,
        &holding[0],
        &counters.bytes_from_clients
    ));
    let mut up = pin!(copy(
        up_rx,
        client_tx,
        &activity,
        &holding[1],
        &counters.bytes_from_upstreams
    ));
    let (mut down_done, mut up_done) = (false, false);
    let mut idle = Alarm::new();
    let reset_both = || {
        let _ = client_tx.reset_on_close();
        let _ = up_tx.reset_on_close();
    };
    poll_fn(|cx| {
        for (fut, done) in [
            (
                down.as_mut() as std::pin::Pin<&mut dyn Future<Output = Flow>>,
                &mut down_done,
            ),
            (up.as_mut(), &mut up_done),
        ] {
            if *done {
                continue;
            }
            if let Poll::Ready(flow) = fut.poll(cx) {
                if flow != Flow::Eof {
                    counters.resets.add(1);
                    reset_both();
                    return Poll::Ready(Ending::Reset);
                }
                *done = true;
            }
        }
        if down_done && up_done {
            return Poll::Ready(Ending::Closed);
        }
        let Some(deadline) = activity.last().checked_add(idle_timeout) else {
            return Poll::Pending;
        };
        if idle.poll_until(deadline, cx).is_ready() {
            counters.idle_timeouts.add(1);
            if holding.iter().any(Cell::get) {
                reset_both();
            }
            return Poll::Ready(Ending::Idle);
        }
        Poll::Pending
    })
    .await
}

/// One direction: what `rx` receives, sent on by `tx`; `holding` is set
/// while bytes received wait for the destination.
async fn copy(
    mut rx: Receiver,
    tx: &Sender,
    activity: &Activity,
    holding: &Cell<bool>,
    bytes: &Counter,
) -> Flow {
    loop {
        let mut buf = match poll_fn(|cx| rx.poll_next(cx)).await {
            Ok(Some(buf)) => buf,
            Ok(None) => {
                let _ = tx.shutdown_write();
                return Flow::Eof;
            }
            Err(_) => return Flow::RecvFailed,
        };
        activity.moved();
        let len = buf.len();
        let mut at = 0;
        holding.set(true);
        while at < len {
            match tx.send_range(buf, at..len, None).await {
                Ok((0, _)) | Err(_) => return Flow::SendFailed,
                Ok((n, back)) => {
                    at += n;
                    buf = back;
                    activity.moved();
                }
            }
        }
        holding.set(false);
        bytes.add(len as u64);
    }
}
