//! A worker's listening sockets, kept in step with the table it runs.
//!
//! Listeners are matched across tables by address and protocol. A match keeps
//! its socket, accept ops and open connections; only its index into the new
//! table changes. New ones are bound; removed ones stop accepting at once and
//! their open connections get the drain timeout to finish.
//!
//! A listener stops without leaving a client in between: every connection
//! whose handshake the kernel completed is served, and no new one completes.
//! See [`Running::stop`].

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use slab::Slab;

use super::{StartError, WorkerCtx};
use crate::link::log::bind_reason;
use crate::link::log::Line;
use crate::rt::net::{Incoming, TcpListener, TcpStream};
use crate::rt::time::sleep;
use crate::rt::{self, TaskId};
use crate::session;
use crate::session::tcp::Injected;
use crate::stats::shortage;
use crate::table::{ClusterId, Protocol, Service, Table};
use crate::upstream::LocalTable;

/// Accept backlog of each worker's listening sockets.
const BACKLOG: i32 = 4096;

/// What identifies a listener across tables.
type ListenerKey = (SocketAddr, Protocol);

/// The listeners of one worker.
#[derive(Default)]
pub(super) struct ListenerSet {
    running: Vec<Running>,
    /// Listeners a newer table dropped whose connections are still open.
    retired: Vec<Rc<ListenerState>>,
    /// The accepts in flight beyond one per listener, shared by the
    /// listeners' accept tasks.
    spare: Rc<SpareAccepts>,
}

/// Accepts a worker may have in flight beyond the one each listener keeps
/// armed, shared among its listeners.
///
/// Every accept in flight may turn into a descriptor before the worker
/// looks at it (and then turns it away if it holds its share of
/// connections): this bounds those descriptors at one per listener plus
/// this many, which the connection budget sets aside. More than one per
/// listener lets a burst of clients in at more than one per loop turn;
/// sixteen lets in (or turns away) thousands per second even when each
/// turn is long with the work of the connections it serves.
pub(super) const SPARE_ACCEPTS: usize = 16;

/// How many of [`SPARE_ACCEPTS`] are in flight.
#[derive(Debug, Default)]
struct SpareAccepts {
    in_flight: Cell<usize>,
}

/// A bound listener and, once accepting, its accept task.
struct Running {
    key: ListenerKey,
    state: Rc<ListenerState>,
    /// The socket closes when this, the accept task and its accepts in
    /// flight have let go of it.
    socket: TcpListener,
    acceptor: Option<TaskId>,
}

/// What a listener's accept task and connections share.
struct ListenerState {
    /// The listener's index in the worker's current table.
    index: Cell<usize>,
    /// Set when a newer table dropped the listener: its connections stay on
    /// the table they run until they end.
    retired: Cell<bool>,
    /// The last table that had this listener, set when it was retired:
    /// connections its accept task still hands out (the kernel accepted
    /// them before the listener stopped) run on it, since the worker's
    /// current table no longer has the listener at `index`.
    last_table: RefCell<Option<Rc<LocalTable>>>,
    /// Set once the listener stopped listening: its accept task takes what
    /// the kernel accepted already and ends.
    stopped: Cell<bool>,
    /// The connection tasks it accepted that are still running.
    connections: RefCell<Slab<Option<TaskId>>>,
}

impl ListenerSet {
    /// Binds every listener of `table` (start-up: a failure stops the start).
    pub(super) fn bind_all(&mut self, table: &Table) -> Result<(), StartError> {
        for (index, l) in table.listeners.iter().enumerate() {
            let socket = TcpListener::bind(l.address, BACKLOG).map_err(|e| StartError::Bind {
                listener: l.name.to_string(),
                address: l.address,
                reason: bind_reason(&e),
            })?;
            self.running
                .push(Running::new((l.address, l.protocol()), index, socket));
        }
        Ok(())
    }

    /// Spawns the accept task of every listener that has none yet.
    pub(super) fn start_accepting(&mut self, ctx: &Rc<WorkerCtx>) {
        for running in &mut self.running {
            if running.acceptor.is_none() && !running.state.stopped.get() {
                let acceptor = Acceptor {
                    incoming: running.socket.incoming(),
                    spare: Rc::clone(&self.spare),
                };
                let task = accept_loop(Rc::clone(ctx), Rc::clone(&running.state), acceptor);
                running.acceptor = Some(rt::spawn(task));
            }
        }
    }

    /// Makes the running listeners those of `table`: keeps matches, binds and
    /// starts new ones, stops removed ones (their connections drain).
    pub(super) fn reconcile(&mut self, ctx: &Rc<WorkerCtx>, table: &Table) {
        let mut kept = Vec::with_capacity(table.listeners.len());
        for (index, l) in table.listeners.iter().enumerate() {
            let key = (l.address, l.protocol());
            if let Some(pos) = self.running.iter().position(|r| r.key == key) {
                let running = self.running.swap_remove(pos);
                running.state.index.set(index);
                kept.push(running);
                continue;
            }
            match TcpListener::bind(l.address, BACKLOG) {
                Ok(socket) => kept.push(Running::new(key, index, socket)),
                Err(e) => {
                    // The agent test-binds new addresses before publishing,
                    // so this is a race with another process; the other
                    // workers and listeners carry on.
                    ctx.counters().bind_failures.add(1);
                    ctx.link.log(Line::BindFailed {
                        listener: Arc::clone(&l.name),
                        address: l.address,
                        error: e,
                    });
                }
            }
        }
        for removed in std::mem::replace(&mut self.running, kept) {
            if let Some(state) = removed.retire(ctx) {
                self.retired.push(state);
            }
        }
        self.retired
            .retain(|state| !state.connections.borrow().is_empty());
        self.start_accepting(ctx);
    }

    /// Wakes every connection task, so each can look at a change of worker
    /// state (a drain beginning: idle HTTP keep-alive connections close).
    pub(super) fn wake_connections(&self) {
        let states = self.running.iter().map(|r| &r.state).chain(&self.retired);
        for state in states {
            for (_, task) in state.connections.borrow().iter() {
                if let Some(task) = task {
                    rt::wake(*task);
                }
            }
        }
    }

    /// Stops every listener (shutdown); connections keep running, and
    /// those the kernel had accepted already are served too.
    pub(super) fn stop_accepting(&mut self, ctx: &Rc<WorkerCtx>) {
        for running in &mut self.running {
            running.stop(ctx);
        }
    }
}

impl Running {
    fn new(key: ListenerKey, index: usize, socket: TcpListener) -> Self {
        Self {
            key,
            state: Rc::new(ListenerState {
                index: Cell::new(index),
                retired: Cell::new(false),
                last_table: RefCell::new(None),
                stopped: Cell::new(false),
                connections: RefCell::new(Slab::new()),
            }),
            socket,
            acceptor: None,
        }
    }

    /// Stops listening now, without dropping a client whose connect the
    /// kernel completed. Closing the socket (or cancelling the accept ops
    /// and letting the socket close when the cancels complete) would reset
    /// every connection still in the accept queue, and some of those
    /// clients have written a request already: lost requests. So, in one
    /// go, before anything else runs on this worker:
    ///
    /// 1. accept what waits in the queue (non-blocking) and serve it;
    /// 2. `shutdown(SHUT_RD)` the listening socket: Linux takes it out of
    ///    the listening state at once, so from here a connect to this
    ///    socket is refused (a client that never wrote a byte), and the
    ///    accepts armed on it end;
    /// 3. wake the accept task, which takes the connections the ring
    ///    accepted before the shutdown and then ends.
    ///
    /// The drain sets the connections' drain flag only after this, so a
    /// client that reconnects because an answer said `connection: close`
    /// finds the listener gone rather than a half-open accept queue.
    fn stop(&mut self, ctx: &Rc<WorkerCtx>) {
        if self.state.stopped.replace(true) {
            return;
        }
        let socket = self.socket.socket();
        if socket.set_nonblocking(true).is_ok() {
            // The queue holds at most the backlog.
            for _ in 0..BACKLOG {
                match socket.accept() {
                    Ok((client, _)) => {
                        let client = TcpStream::from_std(client.into());
                        start_connection(ctx, &self.state, client);
                    }
                    Err(_) => break,
                }
            }
        }
        let _ = socket.shutdown(Shutdown::Read);
        if let Some(task) = self.acceptor.take() {
            rt::wake(task);
        }
    }

    /// Stops listening (as [`Running::stop`]); cuts the connections still
    /// open after the drain timeout. Returns the listener's state while it
    /// has connections, so a worker drain can still reach them.
    fn retire(mut self, ctx: &Rc<WorkerCtx>) -> Option<Rc<ListenerState>> {
        self.state.retired.set(true);
        // The worker still runs the table that has this listener (it adopts
        // the new one after reconciling).
        *self.state.last_table.borrow_mut() = Some(Rc::clone(ctx.table.borrow().current()));
        self.stop(ctx);
        if self.state.connections.borrow().is_empty() {
            return None;
        }
        rt::spawn(cut_after(
            Rc::clone(ctx),
            Rc::clone(&self.state),
            ctx.drain_timeout,
        ));
        Some(self.state)
    }
}

/// Aborts whatever connections of a removed listener outlive `timeout`.
async fn cut_after(ctx: Rc<WorkerCtx>, state: Rc<ListenerState>, timeout: Duration) {
    let _ = sleep(timeout).await;
    let tasks: Vec<TaskId> = state
        .connections
        .borrow()
        .iter()
        .filter_map(|(_, task)| *task)
        .collect();
    for task in tasks {
        ctx.counters().drain_cuts.add(1);
        // Dropping the task drops its sockets (closing them) and its
        // `ConnectionGuard`, which updates the counts.
        rt::abort(task);
    }
}

/// How long an accept loop pauses after a shortage (out of descriptors or
/// memory) or a refused accept op: accepting again at once would fail again
/// at once, spinning the worker, while the connection waits in the backlog
/// either way. Short enough that a descriptor freed is used within a blink.
const SHORTAGE_PAUSE: Duration = Duration::from_millis(50);

async fn accept_loop(ctx: Rc<WorkerCtx>, state: Rc<ListenerState>, mut acceptor: Acceptor) {
    loop {
        let next = poll_fn(|cx| {
            // Once the listener stopped nothing is armed any more, but what
            // the ring accepted already is still served: those clients'
            // connects completed. A stopped listener's remaining accepts
            // end with an error.
            if !state.stopped.get() {
                if let Err(e) = acceptor.arm() {
                    return Poll::Ready(Err(e));
                }
            }
            // `Running::stop` wakes this task, so that it stops arming.
            acceptor.poll_accepted(cx).map(Ok)
        });
        let pause = match next.await {
            Ok(Some(Ok(client))) => {
                start_connection(&ctx, &state, client);
                false
            }
            Ok(Some(Err(_))) if state.stopped.get() => false,
            Ok(Some(Err(e))) => {
                ctx.counters().accept_errors.add(1);
                note_shortage(&ctx, &e)
            }
            // The ring refused the accept op: arming again at once would
            // most likely fail again at once.
            Err(e) => {
                ctx.counters().accept_errors.add(1);
                note_shortage(&ctx, &e);
                true
            }
            // Stopped, and every accept in flight came back.
            Ok(None) => return,
        };
        if pause {
            let _ = sleep(SHORTAGE_PAUSE).await;
        }
    }
}

/// Notes `e` if it is a shortage of a local resource; returns whether it
/// was.
fn note_shortage(ctx: &WorkerCtx, e: &io::Error) -> bool {
    let local = shortage::is_local(e);
    if local {
        shortage::note(ctx.counters(), shortage::Doing::Accepting, e);
    }
    local
}

/// A listener's accepts in flight: one always armed while it listens, and
/// more while the worker's [`SPARE_ACCEPTS`] allow.
///
/// Whether a connection is served or turned away is decided when its accept
/// completes ([`start_connection`]); what bounds the descriptors accepted
/// meanwhile is how many accepts are in flight.
struct Acceptor {
    incoming: Incoming,
    spare: Rc<SpareAccepts>,
}

impl Acceptor {
    /// Arms accepts up to the listener's one and the worker's spare ones.
    fn arm(&mut self) -> io::Result<()> {
        while self.incoming.in_flight() == 0 || self.spare.in_flight.get() < SPARE_ACCEPTS {
            let spare = self.incoming.in_flight() > 0;
            self.incoming.arm()?;
            if spare {
                self.spare.in_flight.set(self.spare.in_flight.get() + 1);
            }
        }
        Ok(())
    }

    /// An accept that completed; `Ready(None)` when none is in flight.
    fn poll_accepted(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<TcpStream>>> {
        let accepted = ready!(self.incoming.poll_accepted(cx));
        if accepted.is_some() && self.incoming.in_flight() > 0 {
            // The listener still has one armed: the one that came back
            // counts as a spare one.
            self.spare.in_flight.set(self.spare.in_flight.get() - 1);
        }
        Poll::Ready(accepted)
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        // The accepts still in flight (the runtime is going away) are
        // cancelled, and any connection they accept is closed, by the ring.
        let spare = self.incoming.in_flight().saturating_sub(1);
        self.spare.in_flight.set(self.spare.in_flight.get() - spare);
    }
}

/// Counts an accepted connection and spawns its task, or turns it away when
/// this worker holds its share of `runtime.max_connections`.
fn start_connection(ctx: &Rc<WorkerCtx>, state: &Rc<ListenerState>, client: TcpStream) {
    let counters = ctx.counters();
    let cap = u64::try_from(ctx.max_connections).unwrap_or(u64::MAX);
    if counters.active.get() >= cap {
        // The descriptors left are for the connections this worker serves
        // (their upstream sockets) and the admin API. Closed with a reset,
        // so the client learns at once that it was turned away rather than
        // waiting for an answer.
        counters.refused.add(1);
        let _ = client.reset_on_close();
        return;
    }
    // The table and the listener's index in it are taken now, at accept:
    // the connection runs on them to its end, even if the worker adopts a
    // newer table (or drops this listener) meanwhile.
    let local = match &*state.last_table.borrow() {
        Some(table) => Rc::clone(table),
        None => Rc::clone(ctx.table.borrow().current()),
    };
    let listener = state.index.get();
    // Over the listener's connection rate: reset at once, before anything
    // is spent on the connection (counted on the listener's tally).
    if let Some(limit) = &local.table.listeners[listener].connection_rate_limit {
        if !limit.admit(ctx.http.worker, rt::now()) {
            let _ = client.reset_on_close();
            return;
        }
    }
    counters.accepted.add(1);
    counters.active.add(1);
    let slot = state.connections.borrow_mut().insert(None);
    let guard = ConnectionGuard {
        ctx: Rc::clone(ctx),
        state: Rc::clone(state),
        slot,
        opened: rt::now(),
    };
    // One task type per protocol: a task's future is as large as its
    // largest state, and an idle HTTP keep-alive connection must not be
    // sized by the TCP relay's (nor a TCP pair by an HTTP exchange's).
    let id = match local.table.listeners[listener].service {
        Service::Tcp { cluster, .. } => {
            rt::spawn(tcp_connection(guard, local, listener, cluster, client))
        }
        Service::Http(_) => rt::spawn(session::http::serve(local, listener, client, guard)),
    };
    if let Some(entry) = state.connections.borrow_mut().get_mut(slot) {
        *entry = Some(id);
    }
}

/// The task of one accepted TCP connection (written as a block, not an
/// async fn: an async fn would keep its arguments twice).
// Not an async fn: that would keep the arguments twice (rust#62958).
#[allow(clippy::manual_async_fn)]
fn tcp_connection(
    guard: ConnectionGuard,
    local: Rc<LocalTable>,
    listener: usize,
    cluster: ClusterId,
    client: TcpStream,
) -> impl std::future::Future<Output = ()> + 'static {
    async move {
        let http = &guard.ctx.http;
        match session::tcp::inject_fault(&local, listener, http.worker, &client, || http.random()) {
            Injected::Nothing => {}
            Injected::Abort => return,
            // Boxed: only a delayed connection holds the timer.
            Injected::Delay(delay) => Box::pin(session::tcp::hold(&client, delay)).await,
        }
        let counters = guard.ctx.counters();
        let worker = guard.ctx.http.worker;
        if session::tls_relay::wanted(&local, listener, cluster) {
            // Boxed: a plain pair's task stays its size. A TLS client is
            // authorized after its handshake, by the identity it proved.
            let serve =
                session::tls_relay::serve(&local, listener, cluster, client, worker, counters);
            Box::pin(serve).await;
        } else if session::tcp::admit(&local, listener, worker, &client, None) {
            session::tcp::serve(&local, listener, cluster, client, counters).await;
        }
        drop(guard);
    }
}

/// An HTTP connection's task owns its guard, which gives it the worker's
/// state; it moves to a newer table between requests, so route and weight
/// changes reach keep-alive clients too.
impl session::http::Worker for ConnectionGuard {
    fn counters(&self) -> &crate::stats::Counters {
        self.ctx.counters()
    }

    fn http(&self) -> &session::http::WorkerHttp {
        &self.ctx.http
    }

    fn newer(&self, generation: u64) -> Option<(Rc<LocalTable>, usize)> {
        if self.state.retired.get() {
            return None;
        }
        let handle = self.ctx.table.borrow();
        (handle.generation() > generation)
            .then(|| (Rc::clone(handle.current()), self.state.index.get()))
    }
}

/// Counts a connection as active, and known to its listener, for as long as
/// its task lives (it ends, or is aborted).
struct ConnectionGuard {
    ctx: Rc<WorkerCtx>,
    state: Rc<ListenerState>,
    slot: usize,
    /// When the connection was accepted.
    opened: std::time::Instant,
}

impl ConnectionGuard {
    /// Times the connection, on its listener's histogram: the listener is
    /// at its index in the worker's current table, or, once retired, in
    /// the last table that had it (its tally is carried over by name, so
    /// either is the one the connection was accepted on).
    fn record_duration(&self) {
        let lived = rt::now().saturating_duration_since(self.opened);
        let index = self.state.index.get();
        let worker = self.ctx.http.worker;
        let record = |local: &LocalTable| {
            if let Some(l) = local.table.listeners.get(index) {
                l.connections.worker(worker).record(lived);
            }
        };
        // A connection dropped while the worker holds its table handle
        // (it never does across an await, but a drop can run anywhere)
        // goes untimed rather than panic.
        match self.state.last_table.try_borrow().as_deref() {
            Ok(Some(last)) => record(last),
            Ok(None) => {
                if let Ok(handle) = self.ctx.table.try_borrow() {
                    record(handle.current());
                }
            }
            Err(_) => {}
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.record_duration();
        self.state.connections.borrow_mut().try_remove(self.slot);
        let active = &self.ctx.counters().active;
        active.sub(1);
        if active.get() == 0 && self.ctx.draining.get() {
            if let Some(w) = self.ctx.idle_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

#[cfg(test)]
mod sizes {
    /// What an idle TCP pair's task holds, printed (`cargo test sizes --
    /// --nocapture`) and bounded, so that growth is noticed: the session's
    /// future (see `session::tcp`'s probes) and what the task keeps beside
    /// it.
    #[test]
    fn a_tcp_task_stays_within_its_bound() {
        fn probe<F, Fut>(_: F) -> usize
        where
            F: FnOnce(
                super::ConnectionGuard,
                std::rc::Rc<crate::upstream::LocalTable>,
                usize,
                crate::table::ClusterId,
                crate::rt::net::TcpStream,
            ) -> Fut,
        {
            std::mem::size_of::<Fut>()
        }
        // 400 B until the guard took the accept time (16 B), which times
        // the connection for its listener's duration histogram.
        let (size, bound) = (probe(super::tcp_connection), 416);
        eprintln!("tcp_connection: {size} B (bound {bound} B)");
        assert!(
            size <= bound,
            "the TCP task grew to {size} B, past {bound} B"
        );
    }
}
