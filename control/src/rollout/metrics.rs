//! The rollouts' `/metrics` families (declared in
//! `crate::agent::families`).

use std::fmt::Write as _;

use super::machine::{Kind, Phase};
use super::RolloutFigures;
use crate::agent::families::header;

const WEIGHT: &str = "ringway_rollout_canary_weight";
const STATE: &str = "ringway_rollout_state";
const DECISIONS: &str = "ringway_rollout_decisions_total";

/// Writes the rollout families: the canary's share, one state series per
/// state (1 for the current one, the way Prometheus users read an enum),
/// and the decisions by kind. The headers are written even without
/// rollouts, as every other agent family's are.
pub fn write(out: &mut String, rollouts: &[RolloutFigures], escape: fn(&str) -> String) {
    let labels = |r: &RolloutFigures| {
        format!(
            "listener=\"{}\",route=\"{}\"",
            escape(&r.listener),
            escape(&r.route)
        )
    };
    header(out, WEIGHT);
    for r in rollouts {
        let _ = writeln!(out, "{WEIGHT}{{{}}} {}", labels(r), r.canary_share);
    }
    header(out, STATE);
    for r in rollouts {
        for phase in Phase::ALL {
            let _ = writeln!(
                out,
                "{STATE}{{{},state=\"{}\"}} {}",
                labels(r),
                phase.name(),
                u8::from(phase == r.phase)
            );
        }
    }
    header(out, DECISIONS);
    for r in rollouts {
        for (kind, n) in Kind::ALL.iter().zip(r.decisions) {
            let _ = writeln!(
                out,
                "{DECISIONS}{{{},decision=\"{}\"}} {n}",
                labels(r),
                kind.name()
            );
        }
    }
}
