//! Worker threads: one per configured core, each with its own ring,
//! listeners, buffers, balancer state and counters.
//!
//! A worker waits on its eventfd between everything else it does; the
//! control agent writes it after putting a table in the worker's handoff
//! slot or raising its stop flag (see [`crate::link::WorkerLink`]).

mod budget;
mod listeners;

pub use self::budget::ConnectionBudget;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::{Rc, Weak};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use self::listeners::ListenerSet;
use crate::access::{self, AccessReader, AccessRing};
use crate::link::log::{Line, WorkerLogs};
use crate::link::WorkerLink;
use crate::rt::select::{select, Either};
use crate::rt::time::sleep;
use crate::rt::wake::{eventfd, signal_pipe, Wakeup, WakeupFd};
use crate::rt::{
    self, FeatureMode, IoBackend, RingFeatures, RingStats, Runtime, RuntimeConfig, RuntimeError,
};
use crate::session::http::WorkerHttp;
use crate::settings::RuntimeSettings;
use crate::stats::{Counters, WorkerStats};
use crate::table::Table;
use crate::trace::span::Span;
use crate::upstream::{TableHandle, Upstreams};
use crossbeam::queue::ArrayQueue;

/// Why the workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// io_uring or the buffer ring is not usable.
    #[error("worker {worker} (core {core}): {source}")]
    Runtime {
        /// Worker index.
        worker: usize,
        /// Its core.
        core: usize,
        /// What failed.
        source: RuntimeError,
    },
    /// The thread could not be pinned.
    #[error("worker {worker}: cannot pin the thread to core {core}")]
    Pin {
        /// Worker index.
        worker: usize,
        /// Core asked for.
        core: usize,
    },
    /// A listener could not be bound.
    #[error("listener `{listener}`: cannot bind {address}: {reason}")]
    Bind {
        /// Listener name.
        listener: String,
        /// Its address.
        address: SocketAddr,
        /// A sentence saying why.
        reason: String,
    },
    /// The OS would not start a thread.
    #[error("cannot start worker thread {worker}: {source}")]
    Spawn {
        /// Worker index.
        worker: usize,
        /// What the OS said.
        source: io::Error,
    },
    /// A worker died during start-up.
    #[error("worker {worker} exited during start-up")]
    Died {
        /// Worker index.
        worker: usize,
    },
}

/// What a worker reports when it exits.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// Worker index.
    pub index: usize,
    /// Core it ran on.
    pub core: usize,
    /// Its counters at exit.
    pub stats: WorkerStats,
    /// Its ring's counters at exit.
    pub ring: RingStats,
    /// What its ring was built with.
    pub features: RingFeatures,
    /// Connections still open when the drain timeout ended them.
    pub cut_at_drain: u64,
    /// Why the worker stopped early, if its ring failed.
    pub failure: Option<String>,
}

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    /// The reactor every worker runs on.
    backend: IoBackend,
    threads: Vec<JoinHandle<WorkerReport>>,
    links: Vec<Arc<WorkerLink>>,
    /// The reading end of the pipe every worker notifies when it
    /// acknowledges a table or exits; the agent takes it.
    acks: Option<OwnedFd>,
    /// The client connections the workers take.
    budget: ConnectionBudget,
    /// The writer's ends of the workers' access log rings, until the
    /// agent takes them.
    access: Vec<AccessReader>,
    /// Each worker's queue of finished spans (the exporter pops them).
    spans: Vec<Arc<ArrayQueue<Span>>>,
}

impl Workers {
    /// Starts one worker per core of `settings`, each running `table` and
    /// queueing its log lines in a queue it adds to `logs` (empty: worker
    /// `i` gets queue `i`; the caller drains them, also after an error). Returns once every worker has bound its
    /// listeners and acknowledged `table`, or the first error.
    pub fn start(
        settings: &RuntimeSettings,
        table: Arc<Table>,
        mode: FeatureMode,
        backend: IoBackend,
        logs: &mut WorkerLogs,
    ) -> Result<Self, StartError> {
        // Counted before the workers open anything: the budget adds what
        // each of them will.
        let budget = ConnectionBudget::plan(
            settings.max_connections,
            settings.worker_cores.len(),
            table.listeners.len(),
        );
        let (ack_notify, acks) =
            signal_pipe().map_err(|source| StartError::Spawn { worker: 0, source })?;
        let mut workers = Self {
            backend,
            threads: Vec::new(),
            links: Vec::new(),
            acks: Some(acks),
            budget,
            access: Vec::new(),
            spans: Vec::new(),
        };
        let mut pending = Vec::new();
        for (index, &core) in settings.worker_cores.iter().enumerate() {
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let pair = eventfd().and_then(|(n, w)| Ok((n, w, ack_notify.try_clone()?)));
            let (notifier, wakeup, ack) = match pair {
                Ok(pair) => pair,
                Err(source) => {
                    workers.stop_and_join();
                    return Err(StartError::Spawn {
                        worker: index,
                        source,
                    });
                }
            };
            let link = Arc::new(WorkerLink::new(index, core, notifier, ack, logs.open()));
            let (access, access_reader) = access::ring(settings.access_log_buffer);
            workers.access.push(access_reader);
            let spans = Arc::new(ArrayQueue::new(crate::settings::SPAN_QUEUE));
            workers.spans.push(Arc::clone(&spans));
            let config = WorkerConfig {
                access,
                spans,
                index,
                core,
                runtime: RuntimeConfig {
                    sq_entries: 512,
                    buffer_count: settings.buffer_count,
                    buffer_size: settings.buffer_size,
                    features: mode,
                    backend,
                },
                drain_timeout: settings.drain_timeout,
                max_connections: budget.per_worker,
            };
            let table = Arc::clone(&table);
            let worker_link = Arc::clone(&link);
            let spawned = thread::Builder::new()
                .name(format!("ringway-w{index}"))
                .spawn(move || run_worker(config, table, worker_link, wakeup, ready_tx));
            match spawned {
                Ok(handle) => {
                    workers.threads.push(handle);
                    workers.links.push(link);
                }
                Err(source) => {
                    workers.stop_and_join();
                    return Err(StartError::Spawn {
                        worker: index,
                        source,
                    });
                }
            }
            pending.push((index, ready_rx));
        }
        for (index, rx) in pending {
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    workers.stop_and_join();
                    return Err(e);
                }
                Err(_) => {
                    workers.stop_and_join();
                    return Err(StartError::Died { worker: index });
                }
            }
        }
        Ok(workers)
    }

    /// The reading end of the pipe the workers notify at each
    /// acknowledgement and when they exit, for the one reader that follows
    /// them. `None` once taken.
    pub fn take_acks(&mut self) -> Option<OwnedFd> {
        self.acks.take()
    }

    /// The writer's ends of the workers' access log rings, in worker order
    /// (empty once taken).
    pub fn take_access_readers(&mut self) -> Vec<AccessReader> {
        std::mem::take(&mut self.access)
    }

    /// Each worker's queue of finished spans, in worker order.
    pub fn span_queues(&self) -> Vec<Arc<ArrayQueue<Span>>> {
        self.spans.clone()
    }

    /// The reactor every worker runs on.
    pub fn backend(&self) -> IoBackend {
        self.backend
    }

    /// The client connections the workers take, and where that came from.
    pub fn budget(&self) -> ConnectionBudget {
        self.budget
    }

    /// What the agent shares with each worker, in worker order.
    pub fn links(&self) -> &[Arc<WorkerLink>] {
        &self.links
    }

    /// Asks every worker to stop accepting and drain.
    pub fn shutdown(&self) {
        for link in &self.links {
            let _ = link.request_stop();
        }
    }

    /// Waits for every worker to exit; returns their reports.
    pub fn join(mut self) -> Vec<WorkerReport> {
        self.shutdown();
        self.threads
            .drain(..)
            .filter_map(|t| t.join().ok())
            .collect()
    }

    fn stop_and_join(&mut self) {
        self.shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct WorkerConfig {
    /// The worker's end of its access log ring.
    access: AccessRing,
    /// Where the worker queues finished spans.
    spans: Arc<ArrayQueue<Span>>,
    index: usize,
    core: usize,
    runtime: RuntimeConfig,
    drain_timeout: Duration,
    max_connections: usize,
}

/// State shared by the tasks of one worker (one thread, no locks).
struct WorkerCtx {
    index: usize,
    link: Arc<WorkerLink>,
    table: RefCell<TableHandle>,
    drain_timeout: Duration,
    /// Client connections this worker holds at most; past it, new ones are
    /// closed on accept.
    max_connections: usize,
    /// Woken when the active connection count drops to zero.
    idle_waker: RefCell<Option<Waker>>,
    draining: Cell<bool>,
    /// The drain flag and the random source of HTTP listeners.
    http: WorkerHttp,
}

impl WorkerCtx {
    fn counters(&self) -> &Counters {
        self.link.counters()
    }
}

impl crate::session::http::Home for WorkerCtx {
    fn counters(&self) -> &Counters {
        self.link.counters()
    }

    fn http(&self) -> &WorkerHttp {
        &self.http
    }
}

fn run_worker(
    config: WorkerConfig,
    table: Arc<Table>,
    link: Arc<WorkerLink>,
    wakeup: WakeupFd,
    ready: mpsc::SyncSender<Result<(), StartError>>,
) -> WorkerReport {
    // However the thread ends (returning, or unwinding from a panic), the
    // agent learns of it.
    let _exit = ExitGuard(Arc::clone(&link));
    let mut report = WorkerReport {
        index: config.index,
        core: config.core,
        stats: WorkerStats::default(),
        ring: RingStats::default(),
        features: RingFeatures {
            defer_taskrun: false,
            coop_taskrun: false,
            multishot_accept: false,
            multishot_recv: false,
        },
        cut_at_drain: 0,
        failure: None,
    };
    let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: config.core });
    if !pinned {
        let _ = ready.send(Err(StartError::Pin {
            worker: config.index,
            core: config.core,
        }));
        return report;
    }
    let runtime = match Runtime::new(config.runtime) {
        Ok(rt) => rt,
        Err(source) => {
            let _ = ready.send(Err(StartError::Runtime {
                worker: config.index,
                core: config.core,
                source,
            }));
            return report;
        }
    };
    report.features = runtime.features();
    link.attach_ring(runtime.ring_counters());
    // Cyclic: the HTTP state keeps a weak handle on the whole, for the
    // tasks that outlive a request (mirrored requests' shadow exchanges).
    let ctx = Rc::new_cyclic(|home: &Weak<WorkerCtx>| WorkerCtx {
        index: config.index,
        table: RefCell::new(TableHandle::new(
            Arc::clone(&table),
            config.index,
            Rc::new(Upstreams::for_worker(config.index)),
        )),
        link: Arc::clone(&link),
        drain_timeout: config.drain_timeout,
        max_connections: config.max_connections,
        idle_waker: RefCell::new(None),
        draining: Cell::new(false),
        http: WorkerHttp::new(
            config.index,
            random_seed(config.index),
            config.access,
            config.spans,
            home.clone(),
        ),
    });
    let mut listeners = ListenerSet::default();
    if let Err(e) = listeners.bind_all(&table) {
        let _ = ready.send(Err(e));
        return report;
    }
    let main = worker_main(Rc::clone(&ctx), listeners, wakeup.into_wakeup());
    link.ack(table.generation);
    let _ = ready.send(Ok(()));
    match runtime.block_on(main) {
        Ok(cut) => report.cut_at_drain = cut,
        Err(e) => report.failure = Some(e.to_string()),
    }
    report.stats = ctx.counters().snapshot();
    report.ring = runtime.ring_stats();
    // Worker state may own ring ops outside any task (idle pooled upstream
    // connections keep a receive armed): let it go before the runtime, so
    // the runtime's drop cancels those ops and waits for them with the
    // tasks' (the tasks hold the last references).
    drop(ctx);
    drop(runtime);
    report
}

/// A seed for a worker's random source: differs between workers and runs.
fn random_seed(worker: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos
        ^ ((worker as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        ^ u64::from(std::process::id())
}

/// Marks the worker's link exited when the thread ends.
struct ExitGuard(Arc<WorkerLink>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.mark_exited();
    }
}

/// Accepts on every listener and adopts new tables until told to stop, then
/// drains. Returns the number of connections the drain timeout cut.
async fn worker_main(ctx: Rc<WorkerCtx>, mut listeners: ListenerSet, wakeup: Wakeup) -> u64 {
    listeners.start_accepting(&ctx);
    let upstreams = Rc::clone(&ctx.table.borrow().current().upstreams);
    rt::spawn(sweep_upstreams(upstreams, Arc::clone(&ctx.link)));
    loop {
        if let Err(e) = wakeup.wait().await {
            // Without its eventfd the worker can no longer hear the agent:
            // stop as if asked, rather than run on deaf.
            ctx.link.log(Line::WakeupFailed(e));
            break;
        }
        if ctx.link.stop_requested() {
            break;
        }
        if let Some(table) = ctx.link.take_table() {
            adopt(&ctx, &mut listeners, table);
        }
    }
    ctx.draining.set(true);
    // Listeners stop first, all of them, before any connection learns of
    // the drain: an answer saying `connection: close` must never send a
    // client back to a listener that still completes connects it will not
    // serve (see `Running::stop`).
    listeners.stop_accepting(&ctx);
    ctx.http.draining.set(true);
    listeners.wake_connections();
    let drained = select(wait_idle(&ctx), sleep(ctx.drain_timeout)).await;
    match drained {
        Either::Left(()) => 0,
        Either::Right(_) => ctx.counters().active.get(),
    }
}

/// Switches new connections to `table`: listeners first (so that the new
/// table's indices are right the moment it is current), then the handle (with
/// fresh balancer cursors), then the acknowledgement.
fn adopt(ctx: &Rc<WorkerCtx>, listeners: &mut ListenerSet, table: Arc<Table>) {
    if table.generation <= ctx.table.borrow().generation() {
        return;
    }
    listeners.reconcile(ctx, &table);
    let generation = table.generation;
    ctx.table.borrow_mut().adopt(table, ctx.index);
    ctx.link.ack(generation);
}

/// Closes the worker's idle upstream connections that expired, that the
/// upstream closed or that heard bytes, and forgets endpoint holds that
/// ended, once a second, for as long as the worker runs.
async fn sweep_upstreams(upstreams: Rc<Upstreams>, link: Arc<WorkerLink>) {
    loop {
        if sleep(Duration::from_secs(1)).await.is_err() {
            return;
        }
        upstreams.sweep(rt::now(), link.counters());
    }
}

async fn wait_idle(ctx: &WorkerCtx) {
    poll_fn(|cx| {
        if ctx.counters().active.get() == 0 {
            Poll::Ready(())
        } else {
            *ctx.idle_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}
