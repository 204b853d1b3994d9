//! `ringway run`: start the workers and the control agent, serve until a
//! signal, drain, exit.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Context;
use dataplane::rt::{ring, FeatureMode};
use dataplane::stats::shortage;
use dataplane::worker::{WorkerReport, Workers};
use tokio::task::LocalSet;

use crate::agent::Agent;
use crate::config::{self, Config};
use crate::reload::watch::FileWatch;
use crate::signals::{Request, Signals};
use crate::{admin, reload};

/// What `ringway run` runs on: the checked configuration, the text it was
/// parsed from, and the file it was read from (none for the embedded
/// default).
#[derive(Debug)]
pub struct Start {
    /// The checked configuration.
    pub config: Config,
    /// Its text, to tell a reload that changes nothing.
    pub source: String,
    /// Its file, watched and re-read on SIGHUP.
    pub path: Option<PathBuf>,
}

/// Runs the proxy until SIGTERM or SIGINT, reloading on SIGHUP, file
/// changes and the admin API, ignoring SIGUSR1 and SIGUSR2; then drains open connections (bounded by the
/// drain timeout) and returns.
pub fn run(start: Start, mode: FeatureMode) -> anyhow::Result<()> {
    // Say plainly, before anything else, when io_uring cannot be used.
    ring::build(8, FeatureMode::Basic).map_err(|e| anyhow::anyhow!("{e}"))?;

    // Two descriptors per proxied connection: lift the soft limit to the hard
    // one, as every production proxy does, rather than fail at ~500 clients.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("ringway: warning: cannot raise the open-file limit: {e}");
    }

    // Read before pinning: once pinned, this thread may only use one core,
    // and reloads must check worker cores against the process's.
    let cores = config::available_cores();
    if let Some(core) = start.config.control_core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            anyhow::bail!("cannot pin the control thread to core {core}");
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("ringway-control")
        .build()
        .context("cannot start the control agent's event loop")?;
    LocalSet::new().block_on(&runtime, serve(start, mode, cores))
}

async fn serve(start: Start, mode: FeatureMode, cores: Option<Vec<usize>>) -> anyhow::Result<()> {
    let Start {
        config,
        source,
        path,
    } = start;
    // Register before the workers exist so that no signal is lost.
    let mut signals = Signals::register()?;

    let admin_listener = tokio::net::TcpListener::bind(config.admin.address)
        .await
        .with_context(|| format!("admin.address {}: cannot listen", config.admin.address))?;
    // Without a watch (inotify instances exhausted, say) ringway still runs
    // and reloads on SIGHUP and the admin API; say so rather than refuse.
    let watch = path.as_ref().and_then(|path| match FileWatch::start(path, source.as_bytes()) {
        Ok(watch) => Some(watch),
        Err(e) => {
            eprintln!(
                "ringway: warning: cannot watch {} for changes ({e}); reload with SIGHUP or `ringway reload`",
                path.display()
            );
            None
        }
    });

    let table = Arc::new(config.table.clone());
    let workers = Workers::start(&config.runtime, Arc::clone(&table), mode)?;
    let budget = workers.budget();
    if let Some(warning) = budget.warning() {
        eprintln!("ringway: warning: {warning}");
    }
    eprintln!("ringway: {budget}");
    for l in &config.table.listeners {
        eprintln!(
            "ringway: listener `{}` on {} ({:?}) -> {}",
            l.name,
            l.address,
            l.protocol(),
            crate::config::describe_target(&config.table, l)
        );
    }
    let worker_cores = config.runtime.worker_cores.clone();
    let drain_timeout = config.runtime.drain_timeout;
    let admin_address = config.admin.address;
    let agent = Rc::new(Agent::new(workers, config, table, source, path, cores));
    tokio::task::spawn_local(admin::serve(admin_listener, Rc::clone(&agent)));
    tokio::task::spawn_local(Rc::clone(&agent).collect_acks());
    tokio::task::spawn_local(housekeeping(Rc::clone(&agent)));
    if let Some(watch) = watch {
        tokio::task::spawn_local(watch.follow(Rc::clone(&agent)));
    }
    eprintln!("ringway: admin on http://{admin_address}");
    eprintln!(
        "ringway: {} worker(s) on cores {:?}; ready",
        worker_cores.len(),
        worker_cores
    );

    let name = loop {
        match signals.next().await {
            Request::Stop(name) => break name,
            Request::Reload => {
                let result = agent.reload_file();
                reload::log("SIGHUP", &result);
            }
            Request::Ignore(name) => eprintln!(
                "ringway: received {name}, which ringway gives no meaning; ignored \
                 (SIGHUP reloads, SIGTERM or SIGINT drains and stops)"
            ),
        }
    };
    eprintln!("ringway: received {name}, draining (up to {drain_timeout:?})");
    let reports = agent.stop().await;
    for r in &reports {
        eprintln!("ringway: {}", describe(r));
        if let Some(failure) = &r.failure {
            eprintln!("ringway: worker {} stopped early: {failure}", r.index);
        }
    }
    eprintln!("ringway: stopped");
    Ok(())
}

/// Once a second: frees the old tables whose last connection has ended
/// (publishing frees them too; this covers the quiet times in between),
/// and writes the line about the local shortages workers met, which they
/// only count (a worker never writes to stderr on its own path).
async fn housekeeping(agent: Rc<Agent>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut shortages = shortage::Reporter::default();
    loop {
        tick.tick().await;
        agent.sweep_retired();
        let now = std::time::Instant::now();
        for link in agent.links() {
            if let Some(line) = shortages.line(link.index(), &link.stats(), now) {
                eprintln!("{line}");
            }
        }
    }
}

/// One line per worker, in `key=value` form so that tests and operators can
/// read it.
fn describe(r: &WorkerReport) -> String {
    let s = &r.stats;
    format!(
        "worker {} core={} accepted={} active={} bytes_from_clients={} bytes_from_upstreams={} \
         copied_bytes={} connect_failures={} connect_timeouts={} connect_local_failures={} \
         no_upstream={} resets={} idle_timeouts={} accept_errors={} refused={} pool_unsolicited={} \
         drain_cuts={} cut_at_drain={} sqes={} cqes={} enters={} enobufs={} \
         rearms={} defer_taskrun={} multishot_accept={} multishot_recv={}",
        r.index,
        r.core,
        s.accepted,
        s.active,
        s.bytes_from_clients,
        s.bytes_from_upstreams,
        s.copied_bytes,
        s.connect_failures,
        s.connect_timeouts,
        s.connect_local_failures,
        s.no_upstream,
        s.resets,
        s.idle_timeouts,
        s.accept_errors,
        s.refused,
        s.pool_unsolicited,
        s.drain_cuts,
        r.cut_at_drain,
        r.ring.submitted,
        r.ring.completed,
        r.ring.enters,
        r.ring.enobufs,
        r.ring.rearms,
        r.features.defer_taskrun,
        r.features.multishot_accept,
        r.features.multishot_recv,
    )
}
