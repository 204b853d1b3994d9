//! `ringway run`: start the workers, wait for a signal, drain, exit.

use std::sync::Arc;

use anyhow::Context;
use dataplane::rt::{ring, FeatureMode};
use dataplane::worker::{WorkerReport, Workers};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Config;

/// Runs the proxy on `config` until SIGTERM or SIGINT, then drains open
/// connections (bounded by the drain timeout) and returns.
pub fn run(config: Config, mode: FeatureMode) -> anyhow::Result<()> {
    // Say plainly, before anything else, when io_uring cannot be used.
    ring::build(8, FeatureMode::Basic).map_err(|e| anyhow::anyhow!("{e}"))?;

    // Two descriptors per proxied connection: lift the soft limit to the hard
    // one, as every production proxy does, rather than fail at ~500 clients.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("ringway: warning: cannot raise the open-file limit: {e}");
    }

    if let Some(core) = config.control_core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            anyhow::bail!("cannot pin the control thread to core {core}");
        }
    }
    // Register before the workers exist so that no signal is lost.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("cannot install signal handlers")?;

    let table = Arc::new(config.table);
    let workers = Workers::start(&config.runtime, Arc::clone(&table), mode)?;
    for l in &table.listeners {
        eprintln!(
            "ringway: listener `{}` on {} ({:?}) -> cluster `{}`",
            l.name,
            l.address,
            l.protocol,
            table.cluster(l.cluster).name
        );
    }
    eprintln!(
        "ringway: {} worker(s) on cores {:?}; ready",
        workers.len(),
        config.runtime.worker_cores
    );

    let signal = signals.forever().next();
    eprintln!(
        "ringway: received {}, draining (up to {:?})",
        signal_name(signal),
        config.runtime.drain_timeout
    );
    let reports = workers.join();
    for r in &reports {
        eprintln!("ringway: {}", describe(r));
        if let Some(failure) = &r.failure {
            eprintln!("ringway: worker {} stopped early: {failure}", r.index);
        }
    }
    eprintln!("ringway: stopped");
    Ok(())
}

fn signal_name(signal: Option<i32>) -> &'static str {
    match signal {
        Some(SIGTERM) => "SIGTERM",
        Some(SIGINT) => "SIGINT",
        _ => "a signal",
    }
}

/// One line per worker, in `key=value` form so that tests and operators can
/// read it.
fn describe(r: &WorkerReport) -> String {
    let s = &r.stats;
    format!(
        "worker {} core={} accepted={} active={} bytes_from_clients={} bytes_from_upstreams={} \
         copied_bytes={} connect_failures={} connect_timeouts={} no_upstream={} resets={} \
         idle_timeouts={} accept_errors={} cut_at_drain={} sqes={} cqes={} enters={} enobufs={} \
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
        s.no_upstream,
        s.resets,
        s.idle_timeouts,
        s.accept_errors,
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
