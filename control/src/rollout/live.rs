//! The live rollouts of the running table: their machines, the figures
//! each evaluation window starts from, their decision history, and the
//! weights they write into every table the agent publishes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::table::rollout::{Rollout, WatchTotals};
use dataplane::table::route::{Route, RouteAction};
use dataplane::table::{Service, Table};
use serde_json::{json, Value};

use super::machine::{Decision, Kind, Machine, NotApplicable, Phase, Sample, Side};
use crate::agent::timings::Quantiles;

/// Decisions kept per rollout (the oldest leave first).
pub const HISTORY: usize = 64;

/// Every live rollout, in table order.
#[derive(Debug, Default)]
pub struct Rollouts {
    live: Vec<Live>,
}

/// One rollout.
#[derive(Debug)]
struct Live {
    listener: Arc<str>,
    route: Arc<str>,
    canary: Arc<str>,
    stable: Arc<str>,
    plan: Rollout,
    machine: Machine,
    /// Listener and route index in the running table.
    at: (usize, usize),
    /// The canary's and the stable cluster's cumulative figures when the
    /// current window began.
    baseline: (WatchTotals, WatchTotals),
    window_start: Instant,
    started: Instant,
    started_unix_ms: u64,
    next_evaluation: Instant,
    history: VecDeque<Record>,
    /// Decisions taken, by [`Kind`] (indexed as [`Kind::ALL`]).
    counts: [u64; Kind::ALL.len()],
}

/// A decision and when it was taken.
#[derive(Debug, Clone)]
struct Record {
    /// Milliseconds since the rollout started.
    at_ms: u64,
    /// Unix time, in milliseconds.
    unix_ms: u64,
    /// The window judged, in milliseconds (evaluations only).
    window_ms: Option<u64>,
    /// The generation published with the weights it set (when it changed
    /// them).
    generation: Option<u64>,
    decision: Decision,
}

/// Something that happened to a rollout, for the log.
#[derive(Debug)]
pub struct Event {
    /// `listener/route`.
    pub name: String,
    /// The decision.
    pub decision: Decision,
}

impl Event {
    /// The log line, once the weights it set run as `generation`.
    pub fn line(&self, generation: Option<u64>) -> String {
        let d = &self.decision;
        let mut line = format!(
            "ringway: rollout {}: {} (canary {}, stable {})",
            self.name,
            d.kind.name(),
            d.weights.0,
            d.weights.1
        );
        if let Some(g) = generation {
            line.push_str(&format!(", generation {g}"));
        }
        line.push_str(": ");
        line.push_str(&d.reason);
        if let Some(s) = &d.sample {
            line.push_str(&format!(
                " [canary requests={} failures={} p99_us={}; stable requests={} failures={} p99_us={}]",
                s.canary.requests,
                s.canary.failures,
                s.canary.p99_us.map_or("-".to_owned(), |v| v.to_string()),
                s.stable.requests,
                s.stable.failures,
                s.stable.p99_us.map_or("-".to_owned(), |v| v.to_string()),
            ));
        }
        line
    }
}

/// An operator's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Hold where it is.
    Pause,
    /// Go on.
    Resume,
    /// The canary to 100 now.
    Promote,
    /// The canary to 0 now.
    Abort,
}

impl Action {
    /// The action named `name` in the admin API and the CLI.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "promote" => Action::Promote,
            "abort" => Action::Abort,
            _ => return None,
        })
    }
}

/// Why an operator's action was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No rollout of that name.
    #[error("{0}")]
    Unknown(String),
    /// Shutdown has begun: no weight changes any more.
    #[error("ringway is shutting down; rollouts no longer change")]
    ShuttingDown,
    /// The action does not apply in the rollout's phase.
    #[error("rollout {name}: {error}")]
    NotApplicable {
        /// `listener/route`.
        name: String,
        /// Why.
        error: NotApplicable,
    },
}

impl Rollouts {
    /// Matches the rollouts to `table`, about to be published: a route
    /// whose rollout has the same settings and clusters as a live one keeps
    /// its state, and the live weights are written into its split; any
    /// other rollout starts from its configured weights; live rollouts of
    /// routes no longer there (or no longer with a rollout) end. Returns
    /// what to log.
    pub fn reconcile(&mut self, table: &mut Table, now: Instant, unix_ms: u64) -> Vec<String> {
        let mut lines = Vec::new();
        let mut old = std::mem::take(&mut self.live);
        for (li, listener) in table.listeners.iter().enumerate() {
            let Service::Http(http) = &listener.service else {
                continue;
            };
            for (ri, route) in http.routes.iter().enumerate() {
                let RouteAction::Forward(forward) = &route.action else {
                    continue;
                };
                let Some(plan) = &forward.rollout else {
                    continue;
                };
                let name_of =
                    |i: usize| Arc::clone(&table.cluster(forward.targets[i].cluster).name);
                let (canary, stable) = (name_of(plan.canary), name_of(plan.stable));
                let found = old
                    .iter()
                    .position(|l| l.listener == listener.name && l.route == route.name);
                if let Some(pos) = found {
                    let mut live = old.swap_remove(pos);
                    if live.canary == canary
                        && live.stable == stable
                        && same_settings(&live.plan, plan)
                    {
                        live.at = (li, ri);
                        live.plan = (**plan).clone();
                        self.live.push(live);
                        continue;
                    }
                    lines.push(format!(
                        "ringway: rollout {}/{}: its settings or clusters changed; it starts over from the configured weights",
                        listener.name, route.name
                    ));
                }
                let baseline = totals_of(route, plan);
                let (machine, decision) = Machine::start(plan);
                let mut live = Live {
                    listener: Arc::clone(&listener.name),
                    route: Arc::clone(&route.name),
                    canary,
                    stable,
                    plan: (**plan).clone(),
                    machine,
                    at: (li, ri),
                    baseline,
                    window_start: now,
                    started: now,
                    started_unix_ms: unix_ms,
                    next_evaluation: now + plan.interval,
                    history: VecDeque::new(),
                    counts: [0; Kind::ALL.len()],
                };
                let event = live.record(decision, now, unix_ms, None);
                lines.push(event.line(None));
                self.live.push(live);
            }
        }
        for gone in old {
            lines.push(format!(
                "ringway: rollout {}/{}: the route or its rollout left the configuration; the rollout ends",
                gone.listener, gone.route
            ));
        }
        for live in &self.live {
            set_weights(table, live.at, &live.plan, live.machine.weights());
        }
        lines
    }

    /// Evaluates every progressing rollout whose interval is over, against
    /// the figures of `table` (the running one). Returns what happened
    /// (holds included) and whether any weight changed.
    pub fn evaluate(&mut self, table: &Table, now: Instant, unix_ms: u64) -> (Vec<Event>, bool) {
        let mut events = Vec::new();
        let mut changed = false;
        for live in &mut self.live {
            if live.machine.phase() != Phase::Progressing || now < live.next_evaluation {
                continue;
            }
            let Some(route) = route_at(table, live.at) else {
                continue;
            };
            let current = totals_of(route, &live.plan);
            let sample = Sample {
                canary: side(&live.baseline.0, &current.0),
                stable: side(&live.baseline.1, &current.1),
            };
            let before = live.machine.weights();
            let Some(decision) = live.machine.evaluate(&live.plan, sample) else {
                continue;
            };
            let window = now.saturating_duration_since(live.window_start);
            live.next_evaluation = now + live.plan.interval;
            // A hold lets the window grow until there are enough requests;
            // any other decision starts a new one.
            if decision.kind != Kind::Hold {
                live.baseline = current;
                live.window_start = now;
            }
            changed |= live.machine.weights() != before;
            events.push(live.record(decision, now, unix_ms, Some(window)));
        }
        (events, changed)
    }

    /// Notes the generation that published the weights of the decisions
    /// `events` (the latest of each rollout).
    pub fn published(&mut self, events: &[Event], generation: u64) {
        for event in events {
            if let Some(live) = self.live.iter_mut().find(|l| l.name() == event.name) {
                if let Some(last) = live.history.back_mut() {
                    if last.decision == event.decision {
                        last.generation = Some(generation);
                    }
                }
            }
        }
    }

    /// Takes an operator's action on rollout `key` (`LISTENER/ROUTE`, or
    /// `ROUTE` when only one listener has a rollout route of that name),
    /// with `table` the running one.
    pub fn act(
        &mut self,
        key: &str,
        action: Action,
        table: &Table,
        now: Instant,
        unix_ms: u64,
    ) -> Result<Event, ActionError> {
        let i = self.find(key)?;
        let live = &mut self.live[i];
        let result = match action {
            Action::Pause => live.machine.pause(),
            Action::Resume => live.machine.resume(),
            Action::Promote => live.machine.promote(),
            Action::Abort => live.machine.abort(),
        };
        let decision = result.map_err(|error| ActionError::NotApplicable {
            name: live.name(),
            error,
        })?;
        if action == Action::Resume {
            // The paused time is not judged: a new window begins.
            if let Some(route) = route_at(table, live.at) {
                live.baseline = totals_of(route, &live.plan);
            }
            live.window_start = now;
            live.next_evaluation = now + live.plan.interval;
        }
        Ok(live.record(decision, now, unix_ms, None))
    }

    /// The index of rollout `key`.
    fn find(&self, key: &str) -> Result<usize, ActionError> {
        if let Some((listener, route)) = key.split_once('/') {
            return self
                .live
                .iter()
                .position(|l| &*l.listener == listener && &*l.route == route)
                .ok_or_else(|| {
                    ActionError::Unknown(format!(
                        "no rollout on route `{route}` of listener `{listener}`; {}",
                        self.known()
                    ))
                });
        }
        let matches: Vec<usize> = (0..self.live.len())
            .filter(|&i| &*self.live[i].route == key)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(ActionError::Unknown(format!(
                "no rollout on a route named `{key}`; {}",
                self.known()
            ))),
            many => Err(ActionError::Unknown(format!(
                "routes named `{key}` with a rollout are on several listeners ({}); name one as LISTENER/ROUTE",
                many.iter()
                    .map(|&i| self.live[i].name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn known(&self) -> String {
        if self.live.is_empty() {
            "the running configuration has no rollout".to_owned()
        } else {
            let names: Vec<String> = self.live.iter().map(Live::name).collect();
            format!("rollouts: {}", names.join(", "))
        }
    }

    /// The soonest a progressing rollout is due for evaluation.
    pub fn next_due(&self) -> Option<Instant> {
        self.live
            .iter()
            .filter(|l| l.machine.phase() == Phase::Progressing)
            .map(|l| l.next_evaluation)
            .min()
    }

    /// Every rollout as `/stats` and `GET /rollouts` show it.
    pub fn json(&self) -> Value {
        Value::Array(self.live.iter().map(Live::json).collect())
    }

    /// Rollout `key` as `GET /rollouts/KEY` shows it.
    pub fn json_of(&self, key: &str) -> Result<Value, ActionError> {
        self.find(key).map(|i| self.live[i].json())
    }

    /// Figures for `/metrics`: per rollout, its labels, canary share,
    /// phase and decision counts.
    pub fn figures(&self) -> Vec<RolloutFigures> {
        self.live
            .iter()
            .map(|l| RolloutFigures {
                listener: Arc::clone(&l.listener),
                route: Arc::clone(&l.route),
                canary_share: l.machine.share(),
                phase: l.machine.phase(),
                decisions: l.counts,
            })
            .collect()
    }
}

/// One rollout's figures for `/metrics`.
#[derive(Debug, Clone)]
pub struct RolloutFigures {
    /// Listener name.
    pub listener: Arc<str>,
    /// Route name.
    pub route: Arc<str>,
    /// The canary's share of the route's requests, in percent.
    pub canary_share: f64,
    /// Its phase.
    pub phase: Phase,
    /// Decisions taken, by kind (indexed as [`Kind::ALL`]).
    pub decisions: [u64; Kind::ALL.len()],
}

impl Live {
    fn name(&self) -> String {
        format!("{}/{}", self.listener, self.route)
    }

    fn record(
        &mut self,
        decision: Decision,
        now: Instant,
        unix_ms: u64,
        window: Option<Duration>,
    ) -> Event {
        let kind = Kind::ALL
            .iter()
            .position(|k| *k == decision.kind)
            .unwrap_or(0);
        self.counts[kind] += 1;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Record {
            at_ms: millis(now.saturating_duration_since(self.started)),
            unix_ms,
            window_ms: window.map(millis),
            generation: None,
            decision: decision.clone(),
        });
        Event {
            name: self.name(),
            decision,
        }
    }

    fn json(&self) -> Value {
        let (canary_weight, stable_weight) = self.machine.weights();
        let phase = self.machine.phase();
        let step = self
            .plan
            .steps
            .iter()
            .position(|&s| s == canary_weight && stable_weight == 100 - s)
            .map_or(0, |i| i + 1);
        json!({
            "listener": &*self.listener,
            "route": &*self.route,
            "canary": &*self.canary,
            "stable": &*self.stable,
            "state": phase.name(),
            "paused": phase == Phase::Paused,
            "step": step,
            "steps": &*self.plan.steps,
            "next_step": self.machine.next_step(&self.plan),
            "canary_weight": canary_weight,
            "stable_weight": stable_weight,
            "canary_share": self.machine.share(),
            "interval_ms": millis(self.plan.interval),
            "max_error_rate_delta": self.plan.max_error_rate_delta,
            "max_p99_ratio": self.plan.max_p99_ratio,
            "min_requests": self.plan.min_requests,
            "min_p99_us": u64::try_from(self.plan.min_p99.as_micros()).unwrap_or(u64::MAX),
            "started_unix_ms": self.started_unix_ms,
            "decisions": Kind::ALL.iter().zip(self.counts).map(|(k, n)| (k.name().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "last_decision": self.history.back().map(Record::json),
            "history": self.history.iter().map(Record::json).collect::<Vec<_>>(),
        })
    }
}

impl Record {
    fn json(&self) -> Value {
        let d = &self.decision;
        let side = |s: &Side| {
            json!({
                "requests": s.requests,
                "failures": s.failures,
                "error_rate": s.error_rate(),
                "p99_us": s.p99_us,
            })
        };
        json!({
            "at_ms": self.at_ms,
            "unix_ms": self.unix_ms,
            "decision": d.kind.name(),
            "reason": d.reason,
            "canary_weight": d.weights.0,
            "stable_weight": d.weights.1,
            "window_ms": self.window_ms,
            "generation": self.generation,
            "canary": d.sample.as_ref().map(|s| side(&s.canary)),
            "stable": d.sample.as_ref().map(|s| side(&s.stable)),
        })
    }
}

/// Whether two plans judge and step alike (the configured weights, where
/// a rollout starts, are not compared: the live ones replace them).
fn same_settings(a: &Rollout, b: &Rollout) -> bool {
    a.steps == b.steps
        && a.interval == b.interval
        && a.max_error_rate_delta == b.max_error_rate_delta
        && a.max_p99_ratio == b.max_p99_ratio
        && a.min_requests == b.min_requests
        && a.min_p99 == b.min_p99
}

/// The route at `at` in `table`.
fn route_at(table: &Table, (li, ri): (usize, usize)) -> Option<&Route> {
    let Service::Http(http) = &table.listeners.get(li)?.service else {
        return None;
    };
    http.routes.get(ri)
}

/// The canary's and the stable cluster's cumulative figures on `route`.
fn totals_of(route: &Route, plan: &Rollout) -> (WatchTotals, WatchTotals) {
    let RouteAction::Forward(forward) = &route.action else {
        return Default::default();
    };
    let of = |i: usize| {
        forward
            .targets
            .get(i)
            .and_then(|t| t.watch.as_ref())
            .map(|w| w.totals())
            .unwrap_or_default()
    };
    (of(plan.canary), of(plan.stable))
}

/// One side's figures between `from` and `to`.
fn side(from: &WatchTotals, to: &WatchTotals) -> Side {
    let q = Quantiles::of(&to.duration.since(&from.duration));
    Side {
        requests: to.requests.saturating_sub(from.requests),
        failures: to.failures.saturating_sub(from.failures),
        p99_us: (q.count > 0).then_some(q.p99_us),
    }
}

/// Writes `weights` (canary, stable) into the split of the route at `at`,
/// replacing its listener's service with a copy when they differ; every
/// tally and shared state of the copy is the original's.
fn set_weights(table: &mut Table, (li, ri): (usize, usize), plan: &Rollout, weights: (u32, u32)) {
    let Some(listener) = table.listeners.get_mut(li) else {
        return;
    };
    let Service::Http(http) = &listener.service else {
        return;
    };
    let Some(route) = http.routes.get(ri) else {
        return;
    };
    let RouteAction::Forward(forward) = &route.action else {
        return;
    };
    let (c, s) = (plan.canary, plan.stable);
    if forward.targets.get(c).map(|t| t.weight) == Some(weights.0)
        && forward.targets.get(s).map(|t| t.weight) == Some(weights.1)
    {
        return;
    }
    let mut service = (**http).clone();
    if let Some(forward) = service.routes.forward_mut(ri) {
        forward.targets[c].weight = weights.0;
        forward.targets[s].weight = weights.1;
        forward.total_weight = forward.targets.iter().map(|t| t.weight).sum();
    }
    listener.service = Service::Http(Arc::new(service));
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
