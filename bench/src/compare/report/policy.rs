//! The traffic-policy sections: the idle policy's refusals (none, for the
//! figures to stand), and each run of a rollout scenario, plotted over
//! time with its decisions in a table.

use std::fmt::Write as _;
use std::path::Path;

use crate::compare::plot::{self, Mark, MarkKind, Side};
use crate::compare::results::Results;
use crate::compare::rollout::{self, Decision, Figures, Kind, RolloutTrace};

/// The rollout plots written, by run label.
pub type RolloutPlots = Vec<(String, String)>;

/// Writes one rollout plot per run of a rollout scenario.
pub fn plots(r: &Results, dir: &Path) -> Result<RolloutPlots, String> {
    let mut out = Vec::new();
    for t in &r.rollouts {
        let name = format!("rollout-{}.svg", t.label);
        plot::rollout(
            &dir.join(&name),
            &format!(
                "{}: {} at {:.0} req/s, round {}",
                r.scenario,
                t.system,
                t.offered,
                t.round + 1
            ),
            &series(t),
        )
        .map_err(|e| e.to_string())?;
        out.push((t.label.clone(), name));
    }
    Ok(out)
}

/// The plot's view of a trace: the decisions taken during the load.
fn series(t: &RolloutTrace) -> plot::Rollout {
    let side = |f: &Figures| Side {
        error_pct: f.error_rate.map(|e| e * 100.0),
        p99_ms: f.p99_ms,
    };
    // A decision that does not say its weight left the one the next poll
    // read.
    let weight_at = |d: &Decision, seen: f64| {
        d.taken.weight.unwrap_or_else(|| {
            t.samples
                .iter()
                .find(|s| s.t_s >= seen)
                .or(t.samples.last())
                .map_or(0.0, |s| s.weight)
        })
    };
    // The weight as the polls read it, and as each decision set it at the
    // moment it was taken: the line steps where the agent stepped, not at
    // the next poll.
    let mut weight: Vec<(f64, f64)> = t.samples.iter().map(|s| (s.t_s, s.weight)).collect();
    weight.extend(
        t.decisions
            .iter()
            .filter_map(|d| Some((d.at_s?, d.taken.weight?))),
    );
    weight.sort_by(|a, b| a.0.total_cmp(&b.0));
    plot::Rollout {
        weight,
        marks: t
            .decisions
            .iter()
            .filter_map(|d| {
                let seen = d.at_s?;
                Some(Mark {
                    t: seen,
                    kind: match d.kind() {
                        Kind::Step => MarkKind::Step,
                        Kind::Hold => MarkKind::Hold,
                        Kind::Rollback => MarkKind::Rollback,
                    },
                    weight: weight_at(d, seen),
                    canary: side(&d.taken.canary),
                    stable: side(&d.taken.stable),
                })
            })
            .collect(),
        fault_at: t.canary_fault_s,
        window_at: Some(t.warmup_s),
        end: t.end_s,
    }
}

/// `## Rollout`: each run's plot and decisions.
pub fn rollouts(md: &mut String, r: &Results, plots: &RolloutPlots) {
    if r.rollouts.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Rollout\n\nringway's catch-all route splits the requests between cluster `stable` and cluster `canary` (one origin each), and its rollout moves the canary's weight by what each interval's requests met. Only ringway runs here: nginx and HAProxy have weighted upstreams but nothing that steps a canary's weight, holds it or rolls it back by the canary's own error rate and latency, so there is nothing of theirs to set beside it. The sampler read `GET {}` at every poll, from the load core: the weight is the one each poll read; each decision is placed at the time the agent took it (seconds from the load's start, warm-up included), and decisions taken before the load began are listed, not plotted. The figures are the agent's own, over the window each decision judged.\n",
        rollout::path()
    );
    for t in &r.rollouts {
        let _ = writeln!(
            md,
            "### {} at {:.0} req/s, round {}\n",
            t.system,
            t.offered,
            t.round + 1
        );
        if let Some((_, file)) = plots.iter().find(|(label, _)| *label == t.label) {
            let _ = writeln!(md, "![rollout of {}]({file})\n", t.label);
        }
        let last = t
            .samples
            .last()
            .map_or("–".to_owned(), |s| format!("{}%", s.weight));
        let _ = writeln!(
            md,
            "{} polls, {} failed; the canary's weight at the end: {last}; {} decisions{}.\n",
            t.samples.len() as u64 + t.failed_polls,
            t.failed_polls,
            t.decisions.len(),
            t.canary_fault_s.map_or(String::new(), |f| format!(
                "; the canary's origin misbehaves from {f:.1} s"
            )),
        );
        if t.decisions.is_empty() {
            continue;
        }
        md.push_str("| at (s) | decision | reason | weight after | canary requests | canary errors | canary error rate | canary p99 ms | stable requests | stable errors | stable error rate | stable p99 ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for decision in &t.decisions {
            let seen = decision
                .at_s
                .map_or("before the load".to_owned(), |s| format!("{s:.2}"));
            let _ = writeln!(
                md,
                "| {seen} | {} | {} | {} | {} | {} |",
                decision.taken.decision,
                decision.taken.reason.replace('|', "/"),
                decision
                    .taken
                    .weight
                    .map_or("–".to_owned(), |w| format!("{w}%")),
                figures(&decision.taken.canary),
                figures(&decision.taken.stable),
            );
        }
        md.push('\n');
    }
}

/// One side's four cells.
fn figures(f: &Figures) -> String {
    let count = |n: Option<u64>| n.map_or("–".to_owned(), |n| n.to_string());
    format!(
        "{} | {} | {} | {}",
        count(f.requests),
        count(f.errors),
        f.error_rate
            .map_or("–".to_owned(), |e| format!("{:.2}%", e * 100.0)),
        f.p99_ms.map_or("–".to_owned(), |p| format!("{p:.2}")),
    )
}

/// `## Idle policy`: what each system with a route policy refused, round
/// by round.
pub fn refusals(md: &mut String, r: &Results) {
    if r.refusals.is_empty() {
        return;
    }
    md.push_str("## Idle policy\n\nA route policy configured far above the offered load is consulted on every request and never acts; ringway's own counters at the end of each round say whether it did. Any request answered with a 4xx, or rate limited, means the round measured refusals (listed under Problems).\n\n| system | round | answered 4xx | rate limited |\n|---|---|---|---|\n");
    for x in &r.refusals {
        let n = |v: Option<u64>| v.map_or("unread".to_owned(), |v| v.to_string());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            x.system,
            x.round + 1,
            n(x.answered_4xx),
            n(x.rate_limited)
        );
    }
    md.push('\n');
}
