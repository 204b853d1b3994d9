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
mod exchange;
mod inbound;
mod respond;
mod send;
mod state;
mod write;

pub use self::state::{sweep_pool, WorkerHttp};

use self::clock::Clock;
use self::ctx::{Conn, Ctx};
use self::inbound::{Inbound, HIGH_WATER_BUFFERS};
use self::send::HeadBuf;
use crate::proto::h1::request::RequestHead;
use crate::proto::h1::response::ResponseHead;
use crate::rt::net::TcpStream;
use crate::rt::select::{select, Either};
use crate::stats::Counters;
use crate::table::{Service, Table};
use crate::upstream::balance::RoundRobin;

/// Serves the client connection `client`, accepted on listener `listener`
/// of `table` (an HTTP listener).
pub async fn serve(
    table: &Table,
    listener: usize,
    client: TcpStream,
    balancer: &RoundRobin,
    counters: &Counters,
    http: &WorkerHttp,
) {
    let Service::Http(service) = &table.listeners[listener].service else {
        return;
    };
    let _ = client.socket().set_tcp_nodelay(true);
    let peer = match client.socket().peer_addr().ok().and_then(|a| a.as_socket()) {
        Some(addr) => addr.ip(),
        // The client is already gone.
        None => return,
    };
    let ctx = Ctx {
        table,
        service,
        listener: service.tally.worker(http.worker),
        balancer,
        counters,
        http,
        peer,
    };
    let mut conn = Conn {
        inbound: Inbound::new(client.recv_stream(HIGH_WATER_BUFFERS)),
        client,
        req: RequestHead::new(),
        resp: ResponseHead::new(),
        out: HeadBuf::default(),
    };
    let clock = Clock::new(service.timeouts.idle);
    if let Either::Right(()) = select(conn.run(&ctx, &clock), clock.watchdog()).await {
        conn.timed_out(&ctx, &clock).await;
    }
}
