//! Per-core balance: how evenly the workers share the load.
//!
//! The agent samples every worker's request count and busy time once a
//! second into a short window; from its ends it gives each worker's
//! request rate and busy share, and, per quantity, an imbalance: the
//! busiest worker over the mean. 1 is perfectly even; on N workers, N
//! means one worker carries everything. A node gateway whose
//! `SO_REUSEPORT` hashing piles connections onto one core shows it here
//! at once.

use std::collections::VecDeque;
use std::fmt::Write;
use std::time::Instant;

use serde_json::{json, Value};

use super::exposition::WorkerFigures;
use super::families;

/// Samples kept: ten seconds of rates at one sample a second.
const SAMPLES: usize = 11;

/// One worker's cumulative figures at one sample.
#[derive(Debug, Clone, Copy, Default)]
struct Point {
    requests: u64,
    busy_ns: u64,
}

/// The last few seconds of every worker's figures.
#[derive(Debug, Default)]
pub struct BalanceWindow {
    samples: VecDeque<(Instant, Vec<Point>)>,
}

impl BalanceWindow {
    /// Takes a sample of `workers` at `now`.
    pub fn sample(&mut self, now: Instant, workers: &[WorkerFigures]) {
        let points = workers
            .iter()
            .map(|w| Point {
                requests: w.stats.requests,
                busy_ns: w.ring.busy_ns,
            })
            .collect();
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now, points));
    }

    /// The balance over the window, with the connections open now from
    /// `workers`. Before two samples exist, the rates are zero.
    pub fn figures(&self, workers: &[WorkerFigures]) -> BalanceFigures {
        let ends = self.samples.front().zip(self.samples.back());
        let (seconds, rates): (f64, Vec<(f64, f64)>) = match ends {
            Some(((t0, first), (t1, last))) if t1 > t0 => {
                let secs = t1.duration_since(*t0).as_secs_f64();
                let rates = workers
                    .iter()
                    .enumerate()
                    .map(|(i, _)| {
                        let a = first.get(i).copied().unwrap_or_default();
                        let b = last.get(i).copied().unwrap_or_default();
                        let requests = b.requests.saturating_sub(a.requests) as f64 / secs;
                        let busy = b.busy_ns.saturating_sub(a.busy_ns) as f64 / 1e9 / secs;
                        (requests, busy.min(1.0))
                    })
                    .collect();
                (secs, rates)
            }
            _ => (0.0, vec![(0.0, 0.0); workers.len()]),
        };
        let rows: Vec<WorkerBalance> = workers
            .iter()
            .zip(&rates)
            .map(|(w, &(requests_per_second, busy))| WorkerBalance {
                index: w.index,
                requests_per_second,
                busy,
                connections: w.stats.active,
            })
            .collect();
        let imbalance = Imbalance {
            requests: max_over_mean(rows.iter().map(|r| r.requests_per_second)),
            busy: max_over_mean(rows.iter().map(|r| r.busy)),
            connections: max_over_mean(rows.iter().map(|r| r.connections as f64)),
        };
        BalanceFigures {
            window_seconds: seconds,
            workers: rows,
            imbalance,
        }
    }
}

/// The largest value over the mean; 1 when every value is zero (nothing
/// to share is shared evenly).
fn max_over_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut n, mut sum, mut max) = (0usize, 0.0f64, 0.0f64);
    for v in values {
        n += 1;
        sum += v;
        max = max.max(v);
    }
    if n == 0 || sum <= 0.0 {
        return 1.0;
    }
    max / (sum / n as f64)
}

/// The balance of the workers over the window.
#[derive(Debug, Clone, Default)]
pub struct BalanceFigures {
    /// The window the rates are over, in seconds (0 until two samples).
    pub window_seconds: f64,
    /// Each worker's share.
    pub workers: Vec<WorkerBalance>,
    /// Busiest over mean, per quantity.
    pub imbalance: Imbalance,
}

/// One worker's share of the load.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerBalance {
    /// Worker index.
    pub index: usize,
    /// HTTP requests finished per second over the window.
    pub requests_per_second: f64,
    /// The share of the window the worker ran (0 to 1).
    pub busy: f64,
    /// Client connections open now.
    pub connections: u64,
}

/// Busiest worker over the mean, per quantity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Imbalance {
    /// Of request rates.
    pub requests: f64,
    /// Of busy shares.
    pub busy: f64,
    /// Of open connections.
    pub connections: f64,
}

impl Imbalance {
    /// Each quantity with its label value.
    fn each(&self) -> [(&'static str, f64); 3] {
        [
            ("requests", self.requests),
            ("busy", self.busy),
            ("connections", self.connections),
        ]
    }
}

/// The balance families of `/metrics`.
pub fn metrics(out: &mut String, b: &BalanceFigures, workers: &[WorkerFigures]) {
    let name = "ringway_worker_busy_seconds_total";
    families::header(out, name);
    for w in workers {
        let ns = w.ring.busy_ns;
        let _ = writeln!(
            out,
            "{name}{{worker=\"{}\"}} {}.{:09}",
            w.index,
            ns / 1_000_000_000,
            ns % 1_000_000_000
        );
    }
    let name = "ringway_worker_busy_ratio";
    families::header(out, name);
    for w in &b.workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {:.4}", w.index, w.busy);
    }
    let name = "ringway_worker_imbalance";
    families::header(out, name);
    for (of, v) in b.imbalance.each() {
        let _ = writeln!(out, "{name}{{of=\"{of}\"}} {v:.4}");
    }
}

/// The `balance` section of `/stats`.
pub fn json(b: &BalanceFigures) -> Value {
    let workers: Vec<Value> = b
        .workers
        .iter()
        .map(|w| {
            json!({
                "index": w.index,
                "requests_per_second": round(w.requests_per_second),
                "busy": round(w.busy),
                "connections": w.connections,
            })
        })
        .collect();
    let imbalance: serde_json::Map<String, Value> = b
        .imbalance
        .each()
        .iter()
        .map(|(of, v)| ((*of).to_owned(), json!(round(*v))))
        .collect();
    json!({
        "window_seconds": round(b.window_seconds),
        "workers": workers,
        "imbalance": imbalance,
    })
}

/// `v` to four decimals, for JSON that reads well.
fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::exposition::numbered;
    use std::time::Duration;

    fn figures(requests: &[u64], busy_ns: &[u64], active: &[u64]) -> Vec<WorkerFigures> {
        (0..requests.len())
            .map(|i| {
                let mut w = numbered(i);
                w.stats.requests = requests[i];
                w.ring.busy_ns = busy_ns[i];
                w.stats.active = active[i];
                w
            })
            .collect()
    }

    #[test]
    fn rates_and_imbalance_come_from_the_window_ends() {
        let t0 = Instant::now();
        let mut window = BalanceWindow::default();
        window.sample(t0, &figures(&[100, 100], &[0, 0], &[0, 0]));
        let now = figures(&[1100, 400], &[1_500_000_000, 500_000_000], &[3, 1]);
        window.sample(t0 + Duration::from_secs(2), &now);
        let b = window.figures(&now);
        assert_eq!(b.window_seconds, 2.0);
        assert_eq!(b.workers[0].requests_per_second, 500.0);
        assert_eq!(b.workers[1].requests_per_second, 150.0);
        assert_eq!(b.workers[0].busy, 0.75);
        assert_eq!(b.workers[1].busy, 0.25);
        assert!((b.imbalance.requests - 500.0 / 325.0).abs() < 1e-9);
        assert!((b.imbalance.busy - 1.5).abs() < 1e-9);
        assert!((b.imbalance.connections - 1.5).abs() < 1e-9);
    }

    #[test]
    fn the_window_slides_and_idle_workers_are_even() {
        let t0 = Instant::now();
        let mut window = BalanceWindow::default();
        let idle = figures(&[0, 0], &[0, 0], &[0, 0]);
        assert_eq!(window.figures(&idle).imbalance.requests, 1.0);
        for s in 0..30u64 {
            let w = figures(&[s * 10, 0], &[0, 0], &[0, 0]);
            window.sample(t0 + Duration::from_secs(s), &w);
        }
        let b = window.figures(&figures(&[290, 0], &[0, 0], &[0, 0]));
        assert_eq!(b.window_seconds, 10.0);
        assert_eq!(b.workers[0].requests_per_second, 10.0);
        assert_eq!(b.imbalance.requests, 2.0);
        assert_eq!(b.imbalance.busy, 1.0);
    }
}
