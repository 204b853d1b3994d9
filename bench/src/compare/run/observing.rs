//! The end of a turn of a system that logs or traces: what the turn
//! carried, ringway's counters, the access log's lines and what the
//! collector sink received (see [`crate::compare::observe`]).

use super::{stop, Ctx, Entry};
use crate::compare::observe::{self, Collector, Observed, Received};
use crate::compare::results::Results;
use crate::compare::system::Running;

/// Where the results stood when a system's turn began, so that its end
/// can tell what the turn added.
pub(super) struct Turn {
    runs: usize,
    discarded: usize,
    memory: usize,
    collector: Option<Received>,
}

impl Turn {
    pub(super) fn begin(ctx: &Ctx<'_>, results: &Results) -> Self {
        Self {
            runs: results.runs.len(),
            discarded: results.discarded.len(),
            memory: results.memory.len(),
            collector: ctx.collector.as_ref().map(Collector::received),
        }
    }

    /// Ends the turn of a system that logs or traces: reads ringway's
    /// counters, stops it (so that its last lines and spans go out),
    /// counts its access log and what the collector received, and records
    /// it all with what is wrong with it. `unmeasured` is the requests of
    /// the turn's runs that are not in the results.
    pub(super) fn observe(
        self,
        ctx: &Ctx<'_>,
        entry: &Entry,
        system: Running,
        round: usize,
        unmeasured: u64,
        results: &mut Results,
    ) {
        let requests = results.runs[self.runs..]
            .iter()
            .chain(&results.discarded[self.discarded..])
            .map(|m| m.sent)
            .sum::<u64>()
            + unmeasured
            + results.memory[self.memory..]
                .iter()
                .map(|m| m.held as u64)
                .sum::<u64>();
        let metrics = entry
            .kind
            .is_ringway()
            .then(|| observe::read_metrics(entry.admin));
        let log = system.access_log().map(ToOwned::to_owned);
        stop(system, &entry.name, round, results);
        let mut o = Observed {
            system: entry.name.clone(),
            round,
            requests,
            ..Observed::default()
        };
        let exposition = match metrics {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                o.metrics_problem = Some(e);
                None
            }
            None => None,
        };
        if let Some(path) = log {
            let mut check = observe::count_log(&path);
            check.ringway = exposition.as_ref().map(observe::Exposition::access_log);
            o.access_log = Some(check);
        }
        if let Some(sample) = entry.tracing {
            let mut t = exposition
                .as_ref()
                .map(|m| m.tracing(sample))
                .unwrap_or_default();
            t.sample = sample;
            if let (Some(c), Some(before)) = (&ctx.collector, self.collector) {
                let after = c.received();
                t.collector_posts = after.posts - before.posts;
                t.collector_bytes = after.bytes - before.bytes;
            }
            o.tracing = Some(t);
        }
        results.problems.extend(observe::problems(&o));
        results.observed.push(o);
    }
}
