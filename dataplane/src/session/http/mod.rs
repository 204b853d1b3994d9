//! One HTTP/1.1 client connection: requests read, routed and answered one
//! after another (pipelined ones in order), each proxied upstream or
//! answered here.
//!
//! The data flow is drawn in docs/architecture.md ("Data flow of an HTTP/1.1
//! request"). The pieces, from the connection down:
//!
//! - [`conn`]: the request loop (read a head, route, answer or proxy);
//! - [`exchange`]: one proxied request (target, upstream, both halves);
//! - [`respond`]: the response half of an exchange;
//! - [`body`]: forwarding a body from the buffers it arrived in;
//! - [`inbound`]: one side's received bytes, and reading heads;
//! - [`write`]: writing heads; [`send`]: sending them whole;
//! - [`clock`]: the connection's one deadline;
//! - [`ctx`]: the connection's state; [`state`]: the worker's.

mod body;
mod clock;
mod conn;
mod ctx;
mod digits;
mod exchange;
mod inbound;
mod respond;
mod send;
mod state;
mod write;

pub use self::ctx::Newer;
pub use self::state::WorkerHttp;

use std::net::IpAddr;
use std::rc::Rc;

use self::clock::{Clock, Phase};
use self::ctx::{Conn, Ctx, Ended};
use self::inbound::{Inbound, HIGH_WATER_BUFFERS};
use self::send::HeadBuf;
use crate::buf::Group;
use crate::proto::h1::request::RequestHead;
use crate::proto::h1::response::ResponseHead;
use crate::rt::net::TcpStream;
use crate::rt::select::{select, Either};
use crate::stats::Counters;
use crate::table::Service;
use crate::upstream::LocalTable;

/// Serves the client connection `client`, accepted on listener `listener`
/// of `local` (an HTTP listener). Between requests it moves to the table
/// `newer` finds, so a reload reaches keep-alive connections too. If the
/// task is dropped while a request is in hand (the drain deadline, a
/// removed listener's cut), the client connection closes with a reset.
pub async fn serve(
    local: Rc<LocalTable>,
    listener: usize,
    client: TcpStream,
    counters: &Counters,
    http: &WorkerHttp,
    newer: &Newer<'_>,
) {
    let _ = client.socket().set_tcp_nodelay(true);
    let peer = match client.socket().peer_addr().ok().and_then(|a| a.as_socket()) {
        Some(addr) => addr.ip(),
        // The client is already gone.
        None => return,
    };
    let Service::Http(service) = &local.table.listeners[listener].service else {
        return;
    };
    // The request loop sets the first real deadline.
    let clock = Clock::new(service.timeouts.idle);
    let cut = CutMidRequest {
        client: Some(client.clone()),
        clock: &clock,
    };
    let conn = Conn {
        inbound: Inbound::new(client.recv_stream(Group::Client, HIGH_WATER_BUFFERS)),
        client,
        req: RequestHead::new(),
        resp: ResponseHead::new(),
        out: HeadBuf::default(),
        served: false,
    };
    serve_requests(conn, local, listener, &clock, counters, http, newer, peer).await;
    cut.disarm();
}

/// The request loop of [`serve`], on one table after another.
#[allow(clippy::too_many_arguments)]
async fn serve_requests(
    mut conn: Conn,
    mut local: Rc<LocalTable>,
    mut listener: usize,
    clock: &Clock,
    counters: &Counters,
    http: &WorkerHttp,
    newer: &Newer<'_>,
    peer: IpAddr,
) {
    let mut head_ready = false;
    loop {
        let Service::Http(service) = &local.table.listeners[listener].service else {
            return;
        };
        let ctx = Ctx {
            table: &local.table,
            service,
            listener: service.tally.worker(http.worker),
            upstream: &local,
            counters,
            http,
            peer,
        };
        let run = conn.run(&ctx, clock, newer, head_ready);
        let next = match select(run, clock.watchdog()).await {
            Either::Left(Ended::Closed) => return,
            Either::Left(Ended::Newer(next, index)) => (next, index),
            Either::Right(()) => {
                conn.timed_out(&ctx, clock).await;
                return;
            }
        };
        // The head of the next request is read; it is served on the newer
        // table.
        (local, listener) = next;
        head_ready = true;
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
    client: Option<TcpStream>,
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
        if matches!(self.clock.phase(), Phase::Header | Phase::Exchange { .. }) {
            let _ = client.reset_on_close();
        }
    }
}

#[cfg(test)]
mod sizes {
    //! Footprint probes: how many bytes a connection's future takes.

    use std::mem::size_of;

    fn serve_size() -> usize {
        fn probe<'a, F, Fut>(_: F) -> usize
        where
            F: FnOnce(
                std::rc::Rc<crate::upstream::LocalTable>,
                usize,
                crate::rt::net::TcpStream,
                &'a crate::stats::Counters,
                &'a super::WorkerHttp,
                &'a super::Newer<'a>,
            ) -> Fut,
        {
            size_of::<Fut>()
        }
        probe(super::serve)
    }

    fn run_size() -> usize {
        fn probe<'a, F, Fut>(_: F) -> usize
        where
            F: FnOnce(
                &'a mut super::ctx::Conn,
                &'a super::ctx::Ctx<'a>,
                &'a super::clock::Clock,
                &'a super::Newer<'a>,
                bool,
            ) -> Fut,
        {
            size_of::<Fut>()
        }
        probe(super::ctx::Conn::run)
    }

    /// What an HTTP connection's future takes, printed (`cargo test sizes
    /// -- --nocapture`) and bounded, so that growth is noticed: sizes are
    /// fixed at compile time, the same in every run.
    #[test]
    fn a_connection_future_stays_within_its_bounds() {
        let sizes = [
            ("serve", serve_size(), 4_176),
            ("Conn::run", run_size(), 3_040),
            ("Conn", size_of::<super::ctx::Conn>(), 368),
            ("Clock", size_of::<super::clock::Clock>(), 48),
            ("Inbound", size_of::<super::inbound::Inbound>(), 144),
        ];
        for (what, size, bound) in sizes {
            eprintln!("{what}: {size} B (bound {bound} B)");
        }
        for (what, size, bound) in sizes {
            assert!(size <= bound, "{what} grew to {size} B, past {bound} B");
        }
    }
}
