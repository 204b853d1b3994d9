//! The rollout state machine, without clocks or network: it takes the
//! figures of an interval (or an operator's action) and says what happens
//! to the canary's weight.
//!
//! ```text
//!                 evaluation: within bounds, enough requests
//!                 +------+
//!                 |      v
//!   start --> Progressing --(last step, 100)--> Complete
//!              |  ^   |  \
//!   evaluation:|  |   |   +--(operator promote: 100)--> Complete
//!   not enough |  |   +--(bound passed: 0, reason)--> RolledBack
//!   requests:  |  |   +--(operator abort: 0)--> Aborted
//!   hold       v  |
//!   (pause) Paused --(resume)--> Progressing
//!             |--(promote)--> Complete   |--(abort)--> Aborted
//! ```
//!
//! Complete, RolledBack and Aborted are final for this rollout; a reload
//! that changes the rollout, or a restart, begins a new one from the
//! configured weights.

use std::fmt::Write as _;

use dataplane::table::rollout::Rollout;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Evaluated every interval; the canary's weight moves up a step at a
    /// time.
    Progressing,
    /// Held by the operator: no evaluation, weights unchanged.
    Paused,
    /// The canary takes every request.
    Complete,
    /// A bound was passed: the canary takes none.
    RolledBack,
    /// The operator stopped it: the canary takes none.
    Aborted,
}

impl Phase {
    /// Every phase, in the order `/metrics` writes them.
    pub const ALL: [Phase; 5] = [
        Phase::Progressing,
        Phase::Paused,
        Phase::Complete,
        Phase::RolledBack,
        Phase::Aborted,
    ];

    /// Its name in `/stats`, `/metrics` and the log.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::Complete => "complete",
            Phase::RolledBack => "rolled_back",
            Phase::Aborted => "aborted",
        }
    }

    /// Whether nothing more happens to this rollout.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Complete | Phase::RolledBack | Phase::Aborted)
    }
}

/// What a decision was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The rollout began (at the configured weights).
    Start,
    /// Too few requests to judge: nothing changes, the window goes on.
    Hold,
    /// Within bounds: the canary moved up a step.
    Step,
    /// Within bounds at the step before 100: the canary takes everything.
    Complete,
    /// Past a bound: the canary takes nothing.
    Rollback,
    /// The operator paused it.
    Pause,
    /// The operator resumed it.
    Resume,
    /// The operator promoted the canary to 100.
    Promote,
    /// The operator aborted it.
    Abort,
}

impl Kind {
    /// Every kind, in the order `/metrics` writes them.
    pub const ALL: [Kind; 9] = [
        Kind::Start,
        Kind::Hold,
        Kind::Step,
        Kind::Complete,
        Kind::Rollback,
        Kind::Pause,
        Kind::Resume,
        Kind::Promote,
        Kind::Abort,
    ];

    /// Its name in `/stats`, `/metrics` and the log.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Hold => "hold",
            Kind::Step => "step",
            Kind::Complete => "complete",
            Kind::Rollback => "rollback",
            Kind::Pause => "pause",
            Kind::Resume => "resume",
            Kind::Promote => "promote",
            Kind::Abort => "abort",
        }
    }
}

/// One side's figures over an evaluation window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Side {
    /// Requests the route sent it.
    pub requests: u64,
    /// Those that failed (a 5xx from upstream, or a reason not the
    /// client's).
    pub failures: u64,
    /// Their 99th percentile duration, in microseconds (`None`: no
    /// requests).
    pub p99_us: Option<u64>,
}

impl Side {
    /// Failures over requests (0 without requests).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }
}

/// Both sides' figures over an evaluation window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// The canary's.
    pub canary: Side,
    /// The stable cluster's.
    pub stable: Side,
}

/// What happened, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What it was.
    pub kind: Kind,
    /// Why, in words.
    pub reason: String,
    /// The canary's and the stable cluster's weights after it.
    pub weights: (u32, u32),
    /// The figures judged (evaluations only).
    pub sample: Option<Sample>,
}

/// An operator's action that does not apply in the current phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a rollout that is {phase}", phase = .phase.name())]
pub struct NotApplicable {
    /// The action asked for.
    pub action: &'static str,
    /// The phase the rollout is in.
    pub phase: Phase,
}

/// One rollout's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    phase: Phase,
    /// Canary and stable weights now.
    weights: (u32, u32),
    /// Index in the plan's steps of the next step.
    next: usize,
}

impl Machine {
    /// A rollout of `plan` starting at its configured weights; its next
    /// step is the first above the canary's configured share. A canary
    /// configured at 100% is complete at once.
    pub fn start(plan: &Rollout) -> (Self, Decision) {
        let weights = plan.configured;
        let share = share(weights);
        let next = plan
            .steps
            .iter()
            .position(|&s| f64::from(s) > share)
            .unwrap_or(plan.steps.len());
        let phase = if next == plan.steps.len() {
            Phase::Complete
        } else {
            Phase::Progressing
        };
        let reason = match phase {
            Phase::Complete => format!(
                "the canary is configured at {}% already; nothing to roll out",
                percent(share)
            ),
            _ => format!(
                "from the configured weights (canary {}%), next step {}%",
                percent(share),
                plan.steps[next]
            ),
        };
        let machine = Self {
            phase,
            weights,
            next,
        };
        (
            machine,
            Decision {
                kind: Kind::Start,
                reason,
                weights,
                sample: None,
            },
        )
    }

    /// Where the rollout stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The canary's and the stable cluster's weights now.
    pub fn weights(&self) -> (u32, u32) {
        self.weights
    }

    /// The canary's share now, in percent.
    pub fn share(&self) -> f64 {
        share(self.weights)
    }

    /// The next step's share, while there is one to take.
    pub fn next_step(&self, plan: &Rollout) -> Option<u32> {
        (!self.phase.is_final())
            .then(|| plan.steps.get(self.next).copied())
            .flatten()
    }

    /// Judges one window's figures (only while progressing: `None`
    /// otherwise). Each side that had weight must have had `min_requests`
    /// requests, or the decision is a hold; then a bound passed is a
    /// rollback, and otherwise the canary moves up a step.
    pub fn evaluate(&mut self, plan: &Rollout, sample: Sample) -> Option<Decision> {
        if self.phase != Phase::Progressing {
            return None;
        }
        let (canary_weight, stable_weight) = self.weights;
        let short = |side: &Side, weight: u32| weight > 0 && side.requests < plan.min_requests;
        if short(&sample.canary, canary_weight) || short(&sample.stable, stable_weight) {
            return Some(self.decide(
                Kind::Hold,
                format!(
                    "too few requests to judge: canary {}, stable {}; each side with weight needs {}",
                    sample.canary.requests, sample.stable.requests, plan.min_requests
                ),
                Some(sample),
            ));
        }
        if canary_weight > 0 {
            if let Some(reason) = breach(plan, &sample) {
                self.phase = Phase::RolledBack;
                self.weights = (0, 100);
                return Some(self.decide(Kind::Rollback, reason, Some(sample)));
            }
        }
        let step = plan.steps[self.next];
        self.next += 1;
        self.weights = (step, 100 - step);
        let within = if canary_weight > 0 {
            format!(
                "within bounds (error rate {} vs {}, p99 {} vs {})",
                rate(sample.canary.error_rate()),
                rate(sample.stable.error_rate()),
                micros(sample.canary.p99_us),
                micros(sample.stable.p99_us)
            )
        } else {
            format!(
                "stable had {} requests with the canary at 0",
                sample.stable.requests
            )
        };
        if step == 100 {
            self.phase = Phase::Complete;
            Some(self.decide(
                Kind::Complete,
                format!("{within}: the canary takes every request"),
                Some(sample),
            ))
        } else {
            Some(self.decide(
                Kind::Step,
                format!("{within}: canary to {step}%"),
                Some(sample),
            ))
        }
    }

    /// Holds the rollout where it is.
    pub fn pause(&mut self) -> Result<Decision, NotApplicable> {
        self.only(&[Phase::Progressing], "pause")?;
        self.phase = Phase::Paused;
        Ok(self.decide(Kind::Pause, "paused by the operator".to_owned(), None))
    }

    /// Lets a paused rollout go on.
    pub fn resume(&mut self) -> Result<Decision, NotApplicable> {
        self.only(&[Phase::Paused], "resume")?;
        self.phase = Phase::Progressing;
        Ok(self.decide(Kind::Resume, "resumed by the operator".to_owned(), None))
    }

    /// Gives the canary every request now.
    pub fn promote(&mut self) -> Result<Decision, NotApplicable> {
        self.only(&[Phase::Progressing, Phase::Paused], "promote")?;
        self.phase = Phase::Complete;
        self.weights = (100, 0);
        Ok(self.decide(
            Kind::Promote,
            "promoted by the operator: the canary takes every request".to_owned(),
            None,
        ))
    }

    /// Gives the canary no request from now on.
    pub fn abort(&mut self) -> Result<Decision, NotApplicable> {
        self.only(&[Phase::Progressing, Phase::Paused], "abort")?;
        self.phase = Phase::Aborted;
        self.weights = (0, 100);
        Ok(self.decide(
            Kind::Abort,
            "aborted by the operator: the canary takes no request".to_owned(),
            None,
        ))
    }

    fn only(&self, phases: &[Phase], action: &'static str) -> Result<(), NotApplicable> {
        if phases.contains(&self.phase) {
            Ok(())
        } else {
            Err(NotApplicable {
                action,
                phase: self.phase,
            })
        }
    }

    fn decide(&self, kind: Kind, reason: String, sample: Option<Sample>) -> Decision {
        Decision {
            kind,
            reason,
            weights: self.weights,
            sample,
        }
    }
}

/// The bound `sample` passes, if any, in words.
fn breach(plan: &Rollout, sample: &Sample) -> Option<String> {
    let (canary, stable) = (&sample.canary, &sample.stable);
    let delta = canary.error_rate() - stable.error_rate();
    if delta > plan.max_error_rate_delta {
        return Some(format!(
            "error rate {} ({} of {}) is {} above stable's {} ({} of {}); the most allowed is {}",
            rate(canary.error_rate()),
            canary.failures,
            canary.requests,
            rate(delta),
            rate(stable.error_rate()),
            stable.failures,
            stable.requests,
            rate(plan.max_error_rate_delta)
        ));
    }
    if let (Some(c), Some(s)) = (canary.p99_us, stable.p99_us) {
        let min_p99 = u64::try_from(plan.min_p99.as_micros()).unwrap_or(u64::MAX);
        if c as f64 > plan.max_p99_ratio * s as f64 && c >= min_p99 {
            let mut text = format!(
                "p99 {} is {:.2}x stable's {}; the most allowed is {}x",
                micros(Some(c)),
                c as f64 / s.max(1) as f64,
                micros(Some(s)),
                plan.max_p99_ratio
            );
            if min_p99 > 0 {
                let _ = write!(text, " (above min_p99 {})", micros(Some(min_p99)));
            }
            return Some(text);
        }
    }
    None
}

/// The canary's share of `weights`, in percent.
fn share((canary, stable): (u32, u32)) -> f64 {
    let total = u64::from(canary) + u64::from(stable);
    if total == 0 {
        0.0
    } else {
        u64::from(canary) as f64 * 100.0 / total as f64
    }
}

/// A share in percent, without needless decimals.
fn percent(share: f64) -> String {
    if share.fract() == 0.0 {
        format!("{share:.0}")
    } else {
        format!("{share:.2}")
    }
}

/// A rate as a percentage with two decimals.
fn rate(r: f64) -> String {
    format!("{:.2}%", r * 100.0)
}

/// A duration in microseconds, for a person.
fn micros(us: Option<u64>) -> String {
    match us {
        None => "none".to_owned(),
        Some(us) if us >= 1000 => format!("{:.1}ms", us as f64 / 1000.0),
        Some(us) => format!("{us}us"),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
