//! The rollout scenarios (`[rollout]`): while the load runs, a sampler
//! follows the rollout of ringway's catch-all route through the admin API
//! (`GET /rollouts/LISTENER/ROUTE`), from a thread on the load core, off
//! the proxy's: the canary's weight at every poll, and every decision the
//! agent took (step, hold, rollback, complete) with the figures behind it.
//!
//! Every figure of the trace is on one clock: seconds from the load's
//! start (warm-up included), the start the fault schedules count from. The
//! weight is placed at the poll that read it; a decision at the wall-clock
//! time the agent gives it (`unix_ms`), against the wall-clock time the
//! sampler started, so a decision is placed where it was taken, not where
//! a poll saw it. What the API answers is read in one place, [`api`], so
//! that a change of its shape is a change there.

mod api;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::configs::{CATCH_ALL, LISTENER};
use super::scenario::Scenario;
use ringway_kit::admin::AdminClient;

pub use self::api::{ApiDecision, Figures};

/// How long one poll may take before it counts as failed.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest sleep of the sampler between two looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Distinct poll failures kept for the report.
const KEPT_FAILURES: usize = 3;

/// The rollout of one load run, as the sampler saw it.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutTrace {
    /// The system.
    pub system: String,
    /// The round (0-based).
    pub round: usize,
    /// Offered rate, requests/s.
    pub offered: f64,
    /// The run's label (its raw file's name).
    pub label: String,
    /// Seconds of warm-up before the measured window, on the trace's clock.
    pub warmup_s: f64,
    /// When the load ended, seconds from its start.
    pub end_s: f64,
    /// When the canary's origin began to misbehave, seconds from the
    /// load's start, if a fault concerns it.
    pub canary_fault_s: Option<f64>,
    /// The canary's weight at each poll.
    pub samples: Vec<WeightSample>,
    /// Every decision in the rollout's history, in order.
    pub decisions: Vec<Decision>,
    /// Polls that failed (no answer, a status other than 200, a body that
    /// could not be read).
    pub failed_polls: u64,
    /// The first few distinct failures.
    pub failures: Vec<String>,
}

/// The canary's weight at one poll.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WeightSample {
    /// Seconds from the load's start.
    pub t_s: f64,
    /// The canary's share of the requests, percent.
    pub weight: f64,
}

/// One decision of the agent, as the API gave it, placed on the load's
/// time axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// When the agent took it, seconds from the load's start; `None` for
    /// decisions taken before the load began (the rollout's start, holds
    /// while no request came).
    pub at_s: Option<f64>,
    /// The decision itself: its time, name, reason, weight and figures.
    #[serde(flatten)]
    pub taken: ApiDecision,
}

/// What a decision did to the canary, for the plot's marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The weight went up (or reached 100: complete).
    Step,
    /// The weight stayed.
    Hold,
    /// The weight went to 0.
    Rollback,
}

impl Decision {
    /// What the decision did, from its name.
    pub fn kind(&self) -> Kind {
        let name = self.taken.decision.to_ascii_lowercase();
        if name.contains("roll") || name.contains("abort") {
            Kind::Rollback
        } else if name.contains("step") || name.contains("promot") || name.contains("complete") {
            Kind::Step
        } else {
            Kind::Hold
        }
    }
}

/// A running sampler.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
    started: Instant,
}

/// The load's start on both clocks: the monotonic one the polls are
/// placed on, and the wall clock the agent's decisions are dated on.
#[derive(Debug, Clone, Copy)]
struct Start {
    at: Instant,
    unix_ms: f64,
}

/// What the sampling thread gathered.
#[derive(Debug, Default)]
struct Seen {
    samples: Vec<WeightSample>,
    decisions: Vec<Decision>,
    polls: u64,
    failed: u64,
    failures: Vec<String>,
}

/// Where and how often to poll.
#[derive(Debug, Clone)]
pub struct Plan {
    /// ringway's admin API.
    pub admin: SocketAddr,
    /// Time between two polls, on an absolute schedule.
    pub every: Duration,
    /// The core the sampling thread runs on.
    pub core: Option<usize>,
}

impl Sampler {
    /// Starts polling now: time 0 of the trace. Start it right before the
    /// load, whose start the fault schedules count from too.
    pub fn start(plan: Plan) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let started = Instant::now();
        let start = Start {
            at: started,
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1e3),
        };
        let thread = thread::spawn(move || {
            if let Some(core) = plan.core {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
            sample_until_stopped(&plan, start, &flag)
        });
        Self {
            stop,
            thread,
            started,
        }
    }

    /// Stops polling after one last poll, and gives the run's trace.
    pub fn finish(
        self,
        s: &Scenario,
        system: &str,
        round: usize,
        offered: f64,
        label: &str,
    ) -> RolloutTrace {
        let end_s = self.started.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.thread.join().unwrap_or_else(|_| Seen {
            failed: 1,
            failures: vec!["the sampling thread panicked; what it saw is lost".into()],
            ..Seen::default()
        });
        let warmup = s.load.warmup;
        let canary_fault_s = s.rollout.as_ref().and_then(|r| {
            s.faults
                .iter()
                .filter(|f| f.hits(r.canary_origin))
                .map(|f| (warmup + f.at).as_secs_f64())
                .reduce(f64::min)
        });
        RolloutTrace {
            system: system.to_owned(),
            round,
            offered,
            label: label.to_owned(),
            warmup_s: warmup.as_secs_f64(),
            end_s,
            canary_fault_s,
            samples: seen.samples,
            decisions: seen.decisions,
            failed_polls: seen.failed,
            failures: seen.failures,
        }
    }
}

impl RolloutTrace {
    /// What is wrong with the trace: polls that failed, or none that
    /// succeeded.
    pub fn problems(&self) -> Vec<String> {
        let at = format!("{}: rollout", self.label);
        let mut why = Vec::new();
        if self.failed_polls > 0 {
            why.push(format!(
                "{at}: {} polls of {} failed (first: {})",
                self.failed_polls,
                path(),
                self.failures.join(" | ")
            ));
        }
        if self.samples.is_empty() {
            why.push(format!("{at}: no poll of {} succeeded", path()));
        }
        why
    }
}

/// The admin API path of the catch-all route's rollout.
pub fn path() -> String {
    format!("/rollouts/{LISTENER}/{CATCH_ALL}")
}

/// Polls on the plan's schedule until `stop` is set, then once more.
fn sample_until_stopped(plan: &Plan, start: Start, stop: &AtomicBool) -> Seen {
    let mut client = AdminClient::new(plan.admin, POLL_TIMEOUT);
    let mut seen = Seen::default();
    let path = path();
    for i in 0u32.. {
        let due = start.at + plan.every.saturating_mul(i);
        let last = loop {
            if stop.load(Ordering::Relaxed) {
                break true;
            }
            let now = Instant::now();
            if now >= due {
                break false;
            }
            thread::sleep((due - now).min(STOP_POLL));
        };
        poll(&mut client, &path, start, &mut seen);
        if last {
            break;
        }
    }
    seen
}

/// One poll: the weight now, and the decisions not seen before (the
/// history keeps the last 64: a decision is new by its time, name and
/// reason).
fn poll(client: &mut AdminClient, path: &str, start: Start, seen: &mut Seen) {
    let outcome = client
        .request("GET", path, b"")
        .map_err(|e| format!("GET {path}: {e}"))
        .and_then(|reply| {
            if reply.status == 200 {
                api::parse(&reply.body).map_err(|e| format!("GET {path}: {e}"))
            } else {
                Err(format!(
                    "GET {path} answered {}: {}",
                    reply.status,
                    reply.body.trim()
                ))
            }
        });
    let t_s = start.at.elapsed().as_secs_f64();
    seen.polls += 1;
    match outcome {
        Ok(status) => {
            seen.samples.push(WeightSample {
                t_s,
                weight: status.canary_weight,
            });
            for d in status.history {
                let known = seen.decisions.iter().any(|k| {
                    let k = &k.taken;
                    k.unix_ms == d.unix_ms && k.decision == d.decision && k.reason == d.reason
                });
                if !known {
                    let at_s = (d.unix_ms as f64 - start.unix_ms) / 1e3;
                    seen.decisions.push(Decision {
                        at_s: (at_s >= 0.0).then_some(at_s),
                        taken: d,
                    });
                }
            }
        }
        Err(why) => {
            seen.failed += 1;
            if seen.failures.len() < KEPT_FAILURES && !seen.failures.contains(&why) {
                seen.failures.push(why);
            }
        }
    }
}

#[cfg(test)]
mod tests;
