//! The churn run's results: per-phase figures, their summary (medians, the
//! churn / quiet ratios) and the checks; [`markdown`] and [`json`] render
//! them.

mod json;
mod markdown;

use hdrhistogram::Histogram;
use serde_json::Value;

use super::load::{Counts, ErrorKind};
pub(super) use crate::spread::Spread;

/// Whether a phase publishes tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    /// No table is published.
    Quiet,
    /// Tables are published at the configured rate.
    Churn,
}

impl PhaseKind {
    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            PhaseKind::Quiet => "quiet",
            PhaseKind::Churn => "churn",
        }
    }
}

/// Busy share of one core during a phase.
#[derive(Debug, Clone, Copy)]
pub struct CoreBusy {
    /// The core.
    pub core: usize,
    /// Busy (user + nice + system + irq + softirq) share, in percent.
    pub pct: f64,
}

/// Everything measured in one phase.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// Round number, from 1.
    pub round: usize,
    /// Quiet or churn.
    pub kind: PhaseKind,
    /// Attempt number, from 1 (a disturbed phase is run again).
    pub attempt: usize,
    /// Its measured length.
    pub seconds: f64,
    /// Requests by outcome.
    pub counts: Counts,
    /// Client latency percentiles of the successful requests, µs.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// CPU time of the worker thread `ringway-w0`, clock ticks.
    pub worker_ticks: u64,
    /// CPU time of ringway's main thread (the control agent), clock ticks.
    pub control_ticks: u64,
    /// CPU time of the whole ringway process, clock ticks.
    pub process_ticks: u64,
    /// Busy share of each core of the layout.
    pub cores: Vec<CoreBusy>,
    /// CPU that neither ringway nor the bench used on the layout's cores,
    /// percent of one core.
    pub foreign_pct: f64,
    /// Largest share of a layout core's clock ticks that never came (the
    /// hypervisor ran something else), percent.
    pub lost_pct: f64,
    /// Kept although disturbed (no retry left).
    pub disturbed: bool,
    /// Tables published (PUTs answered `applied generation N`).
    pub published: u64,
    /// PUTs not answered 200 `applied`.
    pub put_failed: u64,
    /// PUTs sent more than one period late.
    pub late: u64,
    /// PUTs of the schedule not sent before the phase ended.
    pub skipped: u64,
    /// CPU time of the bench itself (clients, origin, churn client), clock
    /// ticks.
    pub bench_ticks: u64,
}

impl PhaseResult {
    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        self.counts.ok as f64 / self.seconds
    }

    /// Worker CPU per successful request, µs.
    pub fn worker_us_per_request(&self, clk_tck: u64) -> f64 {
        if self.counts.ok == 0 {
            return f64::NAN;
        }
        self.worker_ticks as f64 * 1e6 / clk_tck as f64 / self.counts.ok as f64
    }

    /// CPU share of `ticks` over the phase, in percent of one core.
    pub(super) fn pct(&self, ticks: u64, clk_tck: u64) -> f64 {
        100.0 * ticks as f64 / clk_tck as f64 / self.seconds
    }

    /// Tables published per second.
    pub(super) fn tables_per_second(&self) -> f64 {
        self.published as f64 / self.seconds
    }
}

/// Publish latency as `/stats` reports it (`publish_latency_us`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishLatency {
    /// Publications measured.
    pub count: u64,
    /// Percentiles, µs.
    pub p50: u64,
    /// See `p50`.
    pub p99: u64,
    /// See `p50`.
    pub max: u64,
}

/// The whole run.
#[derive(Debug)]
pub struct RunReport {
    /// Header lines: machine, binary, table, layout, phases, CPU accounting.
    pub header: Vec<(String, String)>,
    /// The command that reproduces the run.
    pub command: String,
    /// Clock ticks per second of the CPU figures.
    pub clk_tck: u64,
    /// The disturbance threshold, percent (see [`PhaseResult::foreign_pct`]
    /// and [`PhaseResult::lost_pct`]).
    pub max_disturbance: f64,
    /// The measured phases in the order run.
    pub phases: Vec<PhaseResult>,
    /// Phases that were disturbed and run again.
    pub discarded: Vec<PhaseResult>,
    /// Requests finished outside any measured phase (warm-up, gaps).
    pub outside: Counts,
    /// Round trip of every answered PUT, µs.
    pub put_rtt: Histogram<u64>,
    /// The first few PUT failures.
    pub put_failures: Vec<String>,
    /// PUT answers whose generation was not above the previous one.
    pub out_of_order: u64,
    /// `/stats` `publish_latency_us` at the end, if it could be read.
    pub publish: Option<PublishLatency>,
    /// `/stats` `generation` before the first phase and at the end.
    pub generations: (u64, Option<u64>),
    /// ringway's summed worker counters at the end (`/stats` `totals`).
    pub ringway_totals: Option<Value>,
    /// Requests the origin echoed, and its errors.
    pub origin: (u64, u64),
    /// How ringway ended: its exit status, or why it could not be stopped.
    pub ringway_exit: Result<i32, String>,
}

impl RunReport {
    /// Every request error of the run, measured phases and gaps alike.
    pub fn request_errors(&self) -> Counts {
        let mut all = self.outside;
        for p in self.all_phases() {
            all.add(&p.counts);
        }
        all
    }

    /// Tables published over the run, discarded phases included.
    pub fn published(&self) -> u64 {
        self.all_phases().map(|p| p.published).sum()
    }

    /// Measured and discarded phases.
    pub(super) fn all_phases(&self) -> impl Iterator<Item = &PhaseResult> {
        self.phases.iter().chain(&self.discarded)
    }

    /// Why the run fails, if it does: request errors, refused PUTs, a
    /// ringway that did not exit 0, or a generation count that does not add
    /// up.
    pub fn failures(&self) -> Vec<String> {
        let mut why = Vec::new();
        let errors = self.request_errors();
        if errors.error_total() > 0 {
            why.push(format!(
                "{} request errors ({})",
                errors.error_total(),
                error_breakdown(&errors)
            ));
        }
        let put_failed: u64 = self.all_phases().map(|p| p.put_failed).sum();
        if put_failed > 0 {
            why.push(format!(
                "{put_failed} PUTs not applied (first: {})",
                self.put_failures.join(" | ")
            ));
        }
        match &self.ringway_exit {
            Ok(0) => {}
            Ok(code) => why.push(format!("ringway exited with status {code}")),
            Err(e) => why.push(format!("ringway did not stop cleanly: {e}")),
        }
        if let (start, Some(end)) = self.generations {
            if end != start + self.published() {
                why.push(format!(
                    "generation went from {start} to {end}, but {} tables were published",
                    self.published()
                ));
            }
        }
        if self.out_of_order > 0 {
            why.push(format!(
                "{} PUT answers named a generation not above the previous one",
                self.out_of_order
            ));
        }
        why
    }

    /// The phases of one kind.
    pub(super) fn of_kind(&self, kind: PhaseKind) -> Vec<&PhaseResult> {
        self.phases.iter().filter(|p| p.kind == kind).collect()
    }

    /// (quiet, churn) of each round that has both.
    pub(super) fn paired(&self) -> Vec<(&PhaseResult, &PhaseResult)> {
        let rounds = self.phases.iter().map(|p| p.round).max().unwrap_or(0);
        (1..=rounds)
            .filter_map(|r| {
                let find = |k| self.phases.iter().find(|p| p.round == r && p.kind == k);
                Some((find(PhaseKind::Quiet)?, find(PhaseKind::Churn)?))
            })
            .collect()
    }
}

/// The spread of `value` over `phases`.
pub(super) fn spread_of(phases: &[&PhaseResult], value: impl Fn(&PhaseResult) -> f64) -> Spread {
    let values: Vec<f64> = phases.iter().map(|p| value(p)).collect();
    Spread::new(&values)
}

/// `connect 1, reset 2` for the kinds that occurred.
pub(super) fn error_breakdown(counts: &Counts) -> String {
    let parts: Vec<String> = ErrorKind::ALL
        .iter()
        .filter(|k| counts.of(**k) > 0)
        .map(|k| format!("{} {}", k.name(), counts.of(*k)))
        .collect();
    parts.join(", ")
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let head = digits.len() % 3;
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        // A comma before every group of three counted from the right.
        if i > 0 && i % 3 == head {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::churn::load::new_histogram;

    fn phase(round: usize, kind: PhaseKind, ok: u64, worker_ticks: u64) -> PhaseResult {
        PhaseResult {
            round,
            kind,
            attempt: 1,
            seconds: 10.0,
            counts: Counts { ok, errors: [0; 6] },
            p50_us: 100,
            p99_us: 400,
            worker_ticks,
            control_ticks: 10,
            process_ticks: worker_ticks + 20,
            cores: vec![
                CoreBusy { core: 0, pct: 90.0 },
                CoreBusy { core: 1, pct: 50.0 },
            ],
            foreign_pct: 1.0,
            lost_pct: 0.0,
            disturbed: false,
            published: if kind == PhaseKind::Churn { 1000 } else { 0 },
            put_failed: 0,
            late: 0,
            skipped: 0,
            bench_ticks: 0,
        }
    }

    fn report(phases: Vec<PhaseResult>) -> RunReport {
        RunReport {
            header: vec![("table".into(), "test".into())],
            command: "ringway-bench churn".into(),
            clk_tck: 100,
            max_disturbance: 10.0,
            phases,
            discarded: Vec::new(),
            outside: Counts::default(),
            put_rtt: new_histogram(),
            put_failures: Vec::new(),
            out_of_order: 0,
            publish: Some(PublishLatency {
                count: 2000,
                p50: 300,
                p99: 900,
                max: 2000,
            }),
            generations: (1, Some(2001)),
            ringway_totals: None,
            origin: (0, 0),
            ringway_exit: Ok(0),
        }
    }

    #[test]
    fn medians_and_ratios() {
        let r = report(vec![
            phase(1, PhaseKind::Quiet, 100_000, 100),
            phase(1, PhaseKind::Churn, 90_000, 100),
            phase(2, PhaseKind::Churn, 90_000, 100),
            phase(2, PhaseKind::Quiet, 100_000, 100),
        ]);
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        let text = r.markdown();
        assert!(text.contains("**0.900x**"), "{text}");
        assert!(text.contains("verdict: **PASS**"));
        assert_eq!(r.json()["pass"], serde_json::json!(true));
    }

    #[test]
    fn errors_fail_the_run_loudly() {
        let mut broken = phase(1, PhaseKind::Churn, 10, 1);
        broken.counts.errors[1] = 3;
        let mut r = report(vec![phase(1, PhaseKind::Quiet, 10, 1), broken]);
        r.generations = (1, Some(1001));
        assert_eq!(r.failures().len(), 1);
        let text = r.markdown();
        assert!(text.contains("FAIL: 3 errors"), "{text}");
        assert!(text.contains("reset 3"));
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
