//! One HTTP/1.1 client connection: requests read, routed and answered one
//! after another (pipelined ones in order), each proxied upstream or
//! answered here.
//!
//! The data flow is drawn in docs/architecture.md ("Data flow of an HTTP/1.1
//! request"). The pieces, from the connection down:
//!
//! - [`conn`]: the connection driver (wait for a request, read its head,
//!   route, answer or proxy, settle its outcome);
//! - [`exchange`]: one proxied request (target, upstream, both halves),
//!   with its own [`deadline`];
//! - [`respond`]: the response half of an exchange;
//! - [`body`]: forwarding a body from the buffers it arrived in;
//! - [`inbound`]: one side's received bytes, and reading heads;
//! - [`write`]: writing heads; [`send`]: sending them whole;
//! - [`clock`]: the connection's one deadline;
//! - [`mirror`]: copies of a route's requests sent to its mirror cluster,
//!   each as a task of its own;
//! - [`parts`]: what a request needs, lent from the worker's free list;
//! - [`limit`]: a route's rate limit;
//! - [`ctx`]: the connection's state; [`state`]: the worker's.

mod access_log;
mod body;
mod clock;
mod conn;
mod ctx;
mod deadline;
mod digits;
mod exchange;
mod fault;
mod inbound;
mod limit;
mod mirror;
mod parts;
mod respond;
mod retry;
mod send;
mod state;
mod tracing;
mod write;

pub use self::ctx::Worker;
pub use self::state::{Home, WorkerHttp};

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use self::clock::{Clock, Phase};
use self::ctx::{Conn, Site};
use self::inbound::{Inbound, HIGH_WATER_BUFFERS};
use crate::buf::Group;
use crate::rt;
use crate::rt::net::TcpStream;
use crate::rt::reuse::recycled;
use crate::rt::select::{select, Either};
use crate::stats::Counters;
use crate::transport::{Receiver, Sender, Transport};
use crate::upstream::LocalTable;

/// Serves the client connection `client`, accepted on listener `listener`
/// of `local` (an HTTP listener), for `worker`, which the future owns.
/// Between requests it moves to the table the worker says is newer, so a
/// reload reaches keep-alive connections too. If the task is dropped while
/// a request is in hand (the drain deadline, a removed listener's cut), the
/// client connection closes with a reset.
///
/// An idle connection is this future and what it owns (see [`conn`]); its
/// size is bounded by a test (`sizes`).
pub fn serve<W: Worker + 'static>(
    local: Rc<LocalTable>,
    listener: usize,
    client: TcpStream,
    worker: W,
) -> impl Future<Output = ()> + 'static {
    let _ = client.socket().set_tcp_nodelay(true);
    // The client may be gone already.
    let peer = client.socket().peer_addr().ok().and_then(|a| a.as_socket());
    let mut site = peer.map(|peer| Site {
        local,
        listener,
        peer: peer.ip(),
        worker,
    });
    // What the future keeps is made here, outside it: an async fn (or a
    // block using its arguments) would keep the arguments and what they
    // become side by side.
    async move {
        // Borrowed where it lies, not moved into a second place.
        let Some(site) = &mut site else { return };
        let Some(service) = site.service() else {
            return;
        };
        // The request loop sets the first real deadline.
        let clock = Clock::new(service.timeouts.idle);
        let transport = match &service.tls {
            Some(tls) => {
                match Transport::tls_server(client, &tls.config, Group::Client, HIGH_WATER_BUFFERS)
                {
                    Ok(transport) => transport,
                    Err(_) => return,
                }
            }
            None => Transport::plain(client, Group::Client, HIGH_WATER_BUFFERS),
        };
        let Transport { rx, tx } = transport;
        let cut = CutMidRequest {
            client: Some(tx.clone()),
            clock: &clock,
        };
        let mut conn = Conn {
            client: tx,
            inbound: Inbound::new(rx),
            served: false,
            held: None,
        };
        if service.tls.is_some() {
            // Boxed: an idle connection's task keeps nothing of it.
            let counters = site.worker.counters();
            let timeout = service.timeouts.header;
            if !Box::pin(handshake(conn.inbound.receiver(), timeout, counters)).await {
                return cut.disarm();
            }
        }
        let served = conn.serve_requests(site, &clock);
        if let Either::Right(()) = select(served, clock.watchdog()).await {
            recycled(|| async {
                if let Some(ctx) = site.ctx() {
                    conn.timed_out(&ctx, &clock).await;
                }
            })
            .await;
        }
        cut.disarm();
    }
}

/// Completes a client's TLS handshake within `timeout` (the listener's
/// header timeout); counts how it ended. `false` when it failed.
async fn handshake(rx: &mut Receiver, timeout: Duration, counters: &Counters) -> bool {
    match select(rx.handshake(), rt::time::sleep(timeout)).await {
        Either::Left(Ok(())) => {
            counters.tls_handshakes.add(1);
            true
        }
        Either::Left(Err(_)) => {
            counters.tls_handshake_failures.add(1);
            false
        }
        Either::Right(_) => {
            counters.tls_handshake_timeouts.add(1);
            false
        }
    }
}

/// Resets the client connection if dropped (disarmed when the connection
/// ends by itself) while a request is in hand: being read, or in an
/// exchange. A response cut there must not end with a FIN that passes a
/// close-delimited body off as complete, and a request cut there gets no
/// answer. A connection cut while it waits for a request, or while it
/// writes or lingers after an answer of ringway's own (whose length the
/// client knows), closes as usual.
struct CutMidRequest<'a> {
    client: Option<Sender>,
    clock: &'a Clock,
}

impl CutMidRequest<'_> {
    fn disarm(mut self) {
        self.client = None;
    }
}

impl Drop for CutMidRequest<'_> {
    fn drop(&mut self) {
        let Some(client) = &self.client else { return };
        if matches!(self.clock.phase(), Phase::Header | Phase::Exchange) {
            let _ = client.reset_on_close();
        }
    }
}

#[cfg(test)]
mod sizes {
    //! Footprint probes: how many bytes a connection's future takes.

    use std::mem::size_of;

    use crate::upstream::LocalTable;

    /// A worker for the probes.
    struct Probe;

    impl super::Worker for Probe {
        fn counters(&self) -> &crate::stats::Counters {
            unreachable!("a size probe is never run")
        }
        fn http(&self) -> &super::WorkerHttp {
            unreachable!("a size probe is never run")
        }
        fn newer(&self, _: u64) -> Option<(std::rc::Rc<LocalTable>, usize)> {
            None
        }
    }

    fn serve_size() -> usize {
        fn probe<F, Fut>(_: F) -> usize
        where
            F: FnOnce(std::rc::Rc<LocalTable>, usize, crate::rt::net::TcpStream, Probe) -> Fut,
        {
            size_of::<Fut>()
        }
        probe(super::serve::<Probe>)
    }

    fn run_size() -> usize {
        fn probe<'a, F, Fut>(_: F) -> usize
        where
            F: FnOnce(
                &'a mut super::ctx::Conn,
                &'a mut super::ctx::Site<Probe>,
                &'a super::clock::Clock,
            ) -> Fut,
        {
            size_of::<Fut>()
        }
        probe(super::ctx::Conn::serve_requests::<Probe>)
    }

    /// What an idle HTTP connection's future takes, printed (`cargo test
    /// sizes -- --nocapture`) and bounded, so that growth is noticed:
    /// sizes are fixed at compile time, the same in every run. `serve` is
    /// the whole task but for the worker's handle it owns (a zero-sized
    /// probe here, three words in the worker); everything a request needs
    /// comes and goes with the request.
    ///
    /// The TLS transport made each `Sender` a tagged pointer (16 B where a
    /// plain socket's was 8): `Conn` 152 -> 160 B, `serve` 360 -> 384 B.
    #[test]
    fn an_idle_connection_stays_within_its_bounds() {
        let sizes = [
            ("serve", serve_size(), 384),
            ("Conn::serve_requests", run_size(), 64),
            ("Conn", size_of::<super::ctx::Conn>(), 160),
            ("Clock", size_of::<super::clock::Clock>(), 24),
            ("Inbound", size_of::<super::inbound::Inbound>(), 120),
            ("Receiver", size_of::<crate::transport::Receiver>(), 48),
        ];
        for (what, size, bound) in sizes {
            eprintln!("{what}: {size} B (bound {bound} B)");
        }
        for (what, size, bound) in sizes {
            assert!(size <= bound, "{what} grew to {size} B, past {bound} B");
        }
    }
}
