//! One generator thread: pinned to its core, its own tokio-uring runtime
//! (its own io_uring), its share of the connections and of the rate.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use core_affinity::CoreId;

use super::ctx::{Ctx, Window};
use super::pace::{self, Schedule};
use super::plan::{Mode, Plan};
use super::record::Record;
use super::{http, tcp};

/// How often a thread looks at the Ctrl-C flag.
const STOP_POLL: Duration = Duration::from_millis(10);
/// How often a thread reports progress (every this many polls: 250 ms).
const PROGRESS_EVERY: u32 = 25;

/// What a thread tells the progress line.
#[derive(Debug)]
pub struct Progress {
    /// The reporting thread.
    pub thread: usize,
    /// Ok requests so far (warm-up excluded).
    pub ok: u64,
    /// Failures so far.
    pub errors: u64,
    /// Bytes written so far.
    pub bytes_sent: u64,
    /// Latencies since the thread's previous report.
    pub interval: hdrhistogram::Histogram<u64>,
}

/// What a thread measured.
#[derive(Debug)]
pub struct Finished {
    /// Its record.
    pub record: Record,
    /// Its measured window as it ran (shorter when stopped early).
    pub elapsed: Duration,
    /// Why it could not run at all or stopped early, if it did.
    pub fatal: Option<String>,
}

/// Everything a thread needs from the main thread.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The plan.
    pub plan: Arc<Plan>,
    /// Every thread waits here with its connections open, so that all
    /// windows start together.
    pub ready: Arc<Barrier>,
    /// Set by Ctrl-C.
    pub interrupt: Arc<AtomicBool>,
    /// Progress reports.
    pub progress: Sender<Progress>,
}

/// Runs thread `t`'s share of the plan on the calling thread.
pub fn run(t: usize, shared: &Shared) -> Finished {
    if let Some(&core) = shared.plan.cores.get(t) {
        if !core_affinity::set_for_current(CoreId { id: core }) {
            shared.ready.wait();
            return failed(format!("cannot pin a generator thread to core {core}"));
        }
    }
    let connections = shared.plan.connections_of(t);
    // Every connection has at most one op in flight; the completion queue
    // is twice the submission queue.
    let entries = connections.next_power_of_two().clamp(64, 4096) as u32;
    let runtime = match tokio_uring::Runtime::new(tokio_uring::builder().entries(entries)) {
        Ok(rt) => rt,
        Err(e) => {
            shared.ready.wait();
            return failed(format!("cannot set up an io_uring: {e}"));
        }
    };
    runtime.block_on(thread_main(t, shared.clone(), connections))
}

fn failed(why: String) -> Finished {
    Finished {
        record: Record::new(),
        elapsed: Duration::ZERO,
        fatal: Some(why),
    }
}

async fn thread_main(t: usize, shared: Shared, connections: usize) -> Finished {
    let plan = shared.plan.clone();
    let open_loop = plan.rate.is_some();
    // Connections that live for the run are opened before the clock starts:
    // the run measures requests, not handshakes.
    let mut streams = Vec::new();
    let mut setup_error = None;
    // What the connections opened before the run counted (their TLS
    // handshakes).
    let mut probe_record = None;
    if plan.mode == Mode::Tcp || plan.keep_alive {
        let probe = Ctx::new(plan.clone(), never(), false);
        for _ in 0..connections {
            match http::connect(&probe).await {
                Ok(s) => streams.push(s),
                Err(e) => {
                    setup_error = Some(format!("connecting to {}: {e}", plan.target));
                    break;
                }
            }
        }
        probe_record = Some(probe.record.into_inner());
    }
    // Wait for the others even after a failure, or they would wait forever.
    // Blocking here is fine: this thread's connections are idle until then.
    shared.ready.wait();
    if let Some(why) = setup_error {
        return failed(why);
    }
    let now = Instant::now();
    let window = Window {
        start: now + plan.warmup,
        end: now + plan.warmup + plan.duration,
    };
    let ctx = Rc::new(Ctx::new(plan.clone(), window, open_loop));
    {
        let mut record = ctx.record.borrow_mut();
        record.connects = streams.len() as u64;
        let mut opened = probe_record.take().unwrap_or_default();
        record.handshakes = opened.handshakes;
        record.negotiated = opened.negotiated.take();
    }

    let mut tasks = Vec::with_capacity(connections);
    match (plan.mode, plan.keep_alive) {
        (Mode::Tcp, _) => {
            for s in streams {
                tasks.push(tokio_uring::spawn(tcp::stream(ctx.clone(), s)));
            }
        }
        (Mode::Http, true) => {
            for s in streams {
                tasks.push(tokio_uring::spawn(http::keep_alive(ctx.clone(), s)));
            }
        }
        (Mode::Http, false) => {
            for _ in 0..connections {
                tasks.push(tokio_uring::spawn(http::one_shot(ctx.clone())));
            }
        }
    }
    if let (Some(rate), Mode::Http) = (plan.rate_of(t), plan.mode) {
        // Threads interleave their slots rather than all sending at once.
        let phase = Duration::from_secs_f64(t as f64 / rate / plan.threads() as f64);
        let schedule = Schedule {
            first: now + phase,
            end: window.end,
            rate,
        };
        tokio_uring::spawn(pacer(ctx.clone(), schedule));
    }
    tokio_uring::spawn(watch(t, ctx.clone(), shared.clone()));
    for task in tasks {
        // A connection task does not panic; if one did, the rest of the
        // run still counts.
        let _ = task.await;
    }
    let ended = Instant::now();
    let elapsed = if ctx.stopping() {
        ended.saturating_duration_since(window.start)
    } else {
        window.end.duration_since(window.start)
    };
    let record = ctx.record.borrow().clone();
    let fatal = ctx.fatal.borrow().clone();
    Finished {
        record,
        elapsed: elapsed.min(plan.duration),
        fatal,
    }
}

/// Runs the schedule, then closes it at the end of the window: slots still
/// queued then were never sent.
async fn pacer(ctx: Rc<Ctx>, schedule: Schedule) {
    let Some(tickets) = &ctx.tickets else { return };
    if let Err(e) = pace::run(schedule, tickets).await {
        *ctx.fatal.borrow_mut() = Some(format!("the pacer's timer failed: {e}"));
        ctx.stop();
        return;
    }
    tokio::time::sleep_until(ctx.window.end.into()).await;
    let unsent = tickets.close();
    ctx.record.borrow_mut().unsent += unsent;
}

/// Stops the thread on Ctrl-C and reports progress four times a second.
async fn watch(t: usize, ctx: Rc<Ctx>, shared: Shared) {
    let mut tick = tokio::time::interval(STOP_POLL);
    let mut polls = 0u32;
    loop {
        tick.tick().await;
        if shared.interrupt.load(Ordering::Relaxed) && !ctx.stopping() {
            ctx.stop();
        }
        polls += 1;
        if polls.is_multiple_of(PROGRESS_EVERY) {
            let interval = {
                let mut h = ctx.interval.borrow_mut();
                let copy = h.clone();
                h.reset();
                copy
            };
            let r = ctx.record.borrow();
            let report = Progress {
                thread: t,
                ok: r.ok,
                errors: r.error_total(),
                bytes_sent: r.bytes_sent,
                interval,
            };
            drop(r);
            // The main thread stops listening only once the run is over.
            let _ = shared.progress.send(report);
        }
    }
}

/// A window that never starts, for connecting before the run.
fn never() -> Window {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    Window {
        start: far,
        end: far,
    }
}
