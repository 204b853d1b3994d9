//! `ringway run`: start the workers and the control agent, serve until a
//! signal, drain, exit.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Context;
use dataplane::buf::Group;
use dataplane::counter::vocabulary::Declared;
use dataplane::link::log::WorkerLogs;
use dataplane::rt::{self, BackendChoice, FeatureMode, IoBackend};
use dataplane::stats::shortage;
use dataplane::worker::{WorkerReport, Workers};
use tokio::task::LocalSet;

use crate::agent::worker_log::LogTail;
use crate::agent::Agent;
use crate::config::{self, Config};
use crate::reload::follow::Follower;
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
pub fn run(start: Start, mode: FeatureMode, choice: BackendChoice) -> anyhow::Result<()> {
    // Decided once, before anything else: io_uring refused when it was
    // forced (or failing for a reason that is not a policy) is said plainly
    // in one line; otherwise one line says which reactor runs and why.
    let chosen = rt::choose(choice, mode).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("ringway: {}", chosen.reason);

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
    LocalSet::new().block_on(&runtime, serve(start, mode, chosen.backend, cores))
}

async fn serve(
    start: Start,
    mode: FeatureMode,
    backend: IoBackend,
    cores: Option<Vec<usize>>,
) -> anyhow::Result<()> {
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
    // Following the files from here on catches a change made since they
    // were read.
    let files: crate::agent::FilesRead = crate::agent::tls_files(&config.table)
        .into_iter()
        .map(|path| (path, None))
        .collect();
    let follower = Follower::start(path.as_deref(), &source, &files);

    let table = Arc::new(config.table.clone());
    let mut logs = WorkerLogs::default();
    let workers = match Workers::start(
        &config.runtime,
        Arc::clone(&table),
        mode,
        backend,
        &mut logs,
    ) {
        Ok(workers) => workers,
        Err(e) => {
            // The workers that started may have queued lines before they
            // were stopped: they go out before the error.
            let _ = LogTail::default().write(&logs, &[], &mut std::io::stderr().lock());
            return Err(e.into());
        }
    };
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
    let agent = Rc::new(Agent::new(
        workers, logs, config, table, source, path, cores,
    ));
    tokio::task::spawn_local(admin::serve(admin_listener, Rc::clone(&agent)));
    tokio::task::spawn_local(Rc::clone(&agent).collect_acks());
    tokio::task::spawn_local(housekeeping(Rc::clone(&agent)));
    tokio::task::spawn_local(Rc::clone(&agent).run_rollouts());
    agent.start_checks();
    tokio::task::spawn_local(follower.run(Rc::clone(&agent)));
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
            Request::Reopen => {
                eprintln!("ringway: received SIGUSR1, reopening the access log files");
                agent.reopen_access_logs();
            }
            Request::Ignore(name) => eprintln!(
                "ringway: received {name}, which ringway gives no meaning; ignored \
                 (SIGHUP reloads, SIGUSR1 reopens the access logs, SIGTERM or SIGINT drains and stops)"
            ),
        }
    };
    eprintln!("ringway: received {name}, draining (up to {drain_timeout:?})");
    let reports = agent.stop().await;
    // The workers have exited: what they queued last goes out before the
    // report.
    agent.write_worker_logs();
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
/// writes the lines the workers queued and the line about the local
/// shortages they met, which they only count (a worker never writes to
/// stderr on its own path).
async fn housekeeping(agent: Rc<Agent>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut shortages = shortage::Reporter::default();
    loop {
        tick.tick().await;
        agent.sweep_retired();
        agent.sample_balance();
        agent.write_worker_logs();
        agent.write_endpoint_log();
        let now = std::time::Instant::now();
        for link in agent.links() {
            if let Some(line) = shortages.line(link.index(), &link.stats(), now) {
                eprintln!("{line}");
            }
        }
    }
}

/// One line per worker, in `key=value` form so that tests and operators can
/// read it: every declared series of the worker, its ring and its buffer
/// pools (these as `<group>_<name>`), and what the drain cut and the ring
/// was built with.
fn describe(r: &WorkerReport) -> String {
    let mut line = format!("worker {} core={}", r.index, r.core);
    pairs(&mut line, "", &r.stats);
    line.push_str(&format!(" cut_at_drain={}", r.cut_at_drain));
    pairs(&mut line, "", &r.ring);
    for g in Group::ALL {
        pairs(
            &mut line,
            &format!("{}_", g.name()),
            &r.ring.pools[usize::from(g.id())],
        );
    }
    line.push_str(&format!(
        " defer_taskrun={} multishot_accept={} multishot_recv={}",
        r.features.defer_taskrun, r.features.multishot_accept, r.features.multishot_recv,
    ));
    line
}

/// Appends ` <prefix><name>=<value>` for every declared series of `stats`.
fn pairs<S: Declared>(line: &mut String, prefix: &str, stats: &S) {
    for f in S::FIELDS {
        line.push_str(&format!(" {prefix}{}={}", f.json, f.read(stats)));
    }
}

#[cfg(test)]
mod tests {
    use dataplane::buf::PoolStats;
    use dataplane::rt::{RingFeatures, RingStats};
    use dataplane::stats::WorkerStats;

    use super::*;
    use crate::agent::exposition::{numbered, WorkerFigures};

    #[test]
    fn the_exit_report_has_every_declared_series() {
        let WorkerFigures { stats, ring, .. } = numbered(1);
        let report = WorkerReport {
            index: 1,
            core: 3,
            stats,
            ring,
            features: RingFeatures {
                defer_taskrun: true,
                coop_taskrun: false,
                multishot_accept: true,
                multishot_recv: false,
            },
            cut_at_drain: 7,
            failure: None,
        };
        let line = describe(&report);
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words[..3], ["worker", "1", "core=3"], "{line}");
        let mut expected = Vec::new();
        for f in WorkerStats::FIELDS {
            expected.push(format!("{}={}", f.json, f.read(&stats)));
        }
        for f in RingStats::FIELDS {
            expected.push(format!("{}={}", f.json, f.read(&ring)));
        }
        for g in Group::ALL {
            for f in PoolStats::FIELDS {
                let value = f.read(&ring.pools[usize::from(g.id())]);
                expected.push(format!("{}_{}={value}", g.name(), f.json));
            }
        }
        expected.push("cut_at_drain=7".to_owned());
        expected.push("multishot_recv=false".to_owned());
        for pair in &expected {
            assert!(words.contains(&pair.as_str()), "{pair} missing from {line}");
        }
        // The one the hand-written report lacked.
        assert!(
            words.iter().any(|w| w.starts_with("bind_failures=")),
            "{line}"
        );
        // Each key once: the prefixes keep the pools' names apart from the
        // worker's and the ring's.
        let keys: Vec<&str> = words[2..]
            .iter()
            .filter_map(|w| w.split_once('=').map(|(k, _)| k))
            .collect();
        let unique: std::collections::BTreeSet<&&str> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{line}");
    }
}
