//! Worker threads: one per configured core, each with its own ring,
//! listeners, buffers, balancer state and counters.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::rt::net::{read, TcpListener};
use crate::rt::select::{select, Either};
use crate::rt::time::sleep;
use crate::rt::{self, FeatureMode, RingFeatures, RingStats, Runtime, RuntimeConfig, RuntimeError};
use crate::session;
use crate::settings::RuntimeSettings;
use crate::stats::{self, Counters, WorkerStats};
use crate::table::handle::TableHandle;
use crate::table::Table;
use crate::upstream::balance::RoundRobin;

/// Accept backlog of each worker's listener.
const BACKLOG: i32 = 4096;

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
    threads: Vec<WorkerThread>,
}

#[derive(Debug)]
struct WorkerThread {
    handle: JoinHandle<WorkerReport>,
    /// Writing a byte (or closing) asks the worker to drain and stop.
    control: Option<io::PipeWriter>,
}

impl Workers {
    /// Starts one worker per core of `settings`, each running `table`.
    /// Returns once every worker has bound its listeners, or the first error.
    pub fn start(
        settings: &RuntimeSettings,
        table: Arc<Table>,
        mode: FeatureMode,
    ) -> Result<Self, StartError> {
        let mut threads = Vec::new();
        let mut pending = Vec::new();
        for (index, &core) in settings.worker_cores.iter().enumerate() {
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let (control_rx, control_tx) = io::pipe().map_err(|source| StartError::Spawn {
                worker: index,
                source,
            })?;
            let config = WorkerConfig {
                index,
                core,
                runtime: RuntimeConfig {
                    sq_entries: 512,
                    buffer_count: settings.buffer_count,
                    buffer_size: settings.buffer_size,
                    features: mode,
                },
                drain_timeout: settings.drain_timeout,
            };
            let table = Arc::clone(&table);
            let handle = thread::Builder::new()
                .name(format!("ringway-w{index}"))
                .spawn(move || run_worker(config, table, control_rx, ready_tx))
                .map_err(|source| StartError::Spawn {
                    worker: index,
                    source,
                })?;
            threads.push(WorkerThread {
                handle,
                control: Some(control_tx),
            });
            pending.push((index, ready_rx));
        }
        let workers = Self { threads };
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

    /// Asks every worker to stop accepting and drain.
    pub fn shutdown(&mut self) {
        for t in &mut self.threads {
            if let Some(mut control) = t.control.take() {
                let _ = control.write_all(&[1]);
            }
        }
    }

    /// Waits for every worker to exit; returns their reports.
    pub fn join(mut self) -> Vec<WorkerReport> {
        self.shutdown();
        self.threads
            .drain(..)
            .filter_map(|t| t.handle.join().ok())
            .collect()
    }

    /// Thread ids are not exposed; the number of workers is.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether there is no worker.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    fn stop_and_join(self) {
        let _ = self.join();
    }
}

struct WorkerConfig {
    index: usize,
    core: usize,
    runtime: RuntimeConfig,
    drain_timeout: Duration,
}

/// State shared by the tasks of one worker (one thread, no locks).
struct WorkerCtx {
    table: RefCell<TableHandle>,
    balancer: RefCell<Rc<RoundRobin>>,
    counters: Counters,
    /// Woken when `counters.active` drops to zero.
    idle_waker: RefCell<Option<Waker>>,
    draining: Cell<bool>,
}

fn run_worker(
    config: WorkerConfig,
    table: Arc<Table>,
    control: io::PipeReader,
    ready: mpsc::SyncSender<Result<(), StartError>>,
) -> WorkerReport {
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
    let mut listeners = Vec::new();
    for (i, l) in table.listeners.iter().enumerate() {
        match TcpListener::bind(l.address, BACKLOG) {
            Ok(sock) => listeners.push((i, sock)),
            Err(e) => {
                let _ = ready.send(Err(StartError::Bind {
                    listener: l.name.to_string(),
                    address: l.address,
                    reason: bind_reason(&e),
                }));
                return report;
            }
        }
    }
    let ctx = Rc::new(WorkerCtx {
        balancer: RefCell::new(Rc::new(RoundRobin::new(&table, config.index))),
        table: RefCell::new(TableHandle::new(table)),
        counters: Counters::default(),
        idle_waker: RefCell::new(None),
        draining: Cell::new(false),
    });
    let _ = ready.send(Ok(()));
    let main = worker_main(Rc::clone(&ctx), listeners, control, config.drain_timeout);
    match runtime.block_on(main) {
        Ok(cut) => report.cut_at_drain = cut,
        Err(e) => report.failure = Some(e.to_string()),
    }
    report.stats = ctx.counters.snapshot();
    report.ring = runtime.ring_stats();
    drop(runtime);
    report
}

fn bind_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "the address is in use by another process".to_string(),
        Some(libc::EADDRNOTAVAIL) => "no local interface has this address".to_string(),
        Some(libc::EACCES) => "permission denied (ports below 1024 need privileges)".to_string(),
        _ => e.to_string(),
    }
}

/// Accepts on every listener until told to stop, then drains.
/// Returns the number of connections the drain timeout cut.
async fn worker_main(
    ctx: Rc<WorkerCtx>,
    listeners: Vec<(usize, TcpListener)>,
    control: io::PipeReader,
    drain_timeout: Duration,
) -> u64 {
    let acceptors: Vec<_> = listeners
        .into_iter()
        .map(|(i, l)| rt::spawn(accept_loop(Rc::clone(&ctx), i, l)))
        .collect();
    // Any byte, or the write end closing, means: stop.
    let _ = read(Rc::new(control), 1).await;
    ctx.draining.set(true);
    for id in acceptors {
        rt::abort(id);
    }
    let drained = select(wait_idle(&ctx), sleep(drain_timeout)).await;
    match drained {
        Either::Left(()) => 0,
        Either::Right(_) => ctx.counters.active.get(),
    }
}

async fn wait_idle(ctx: &WorkerCtx) {
    poll_fn(|cx| {
        if ctx.counters.active.get() == 0 {
            Poll::Ready(())
        } else {
            *ctx.idle_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}

async fn accept_loop(ctx: Rc<WorkerCtx>, listener: usize, socket: TcpListener) {
    let mut incoming = socket.incoming();
    loop {
        match incoming.next().await {
            Ok(client) => {
                stats::add(&ctx.counters.accepted, 1);
                stats::add(&ctx.counters.active, 1);
                rt::spawn(connection(Rc::clone(&ctx), listener, client));
            }
            Err(e) => {
                stats::add(&ctx.counters.accept_errors, 1);
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS)
                ) {
                    // Out of a resource: accepting again at once would spin.
                    let _ = sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn connection(ctx: Rc<WorkerCtx>, listener: usize, client: rt::net::TcpStream) {
    let _guard = ActiveGuard(Rc::clone(&ctx));
    // A connection runs on the table current when it was accepted.
    let table = Arc::clone(ctx.table.borrow().current());
    let balancer = Rc::clone(&ctx.balancer.borrow());
    session::tcp::serve(table, listener, client, &balancer, &ctx.counters).await;
}

/// Counts a connection as active for as long as it lives.
struct ActiveGuard(Rc<WorkerCtx>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let active = &self.0.counters.active;
        active.set(active.get().saturating_sub(1));
        if active.get() == 0 && self.0.draining.get() {
            if let Some(w) = self.0.idle_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}
