//! The churn: `PUT /clusters/app/endpoints` at a fixed rate on an absolute
//! schedule, each one a new generation of the whole table.
//!
//! Each PUT names a different non-empty subset of the origins (all 15 of
//! them for 4 origins, in turn), so every request keeps finding a live
//! endpoint while every table differs from the one before.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::load::new_histogram;
use crate::admin::AdminClient;

/// At most this many distinct failure messages are kept for the report.
const KEPT_FAILURES: usize = 5;

/// What to publish, how fast and until when.
#[derive(Debug, Clone)]
pub struct ChurnPlan {
    /// The admin API.
    pub admin: SocketAddr,
    /// The cluster whose endpoints are rewritten.
    pub cluster: String,
    /// Its possible endpoints; each PUT sends a non-empty subset.
    pub origins: Vec<SocketAddr>,
    /// Tables per second.
    pub rate: f64,
    /// The schedule's origin: PUT `i` is due at `start + i / rate`.
    pub start: Instant,
    /// No PUT is sent at or after this instant.
    pub until: Instant,
    /// The running number of the first PUT of this phase, which picks its
    /// subset (so consecutive phases go on where the last one stopped).
    pub first_seq: u64,
    /// Timeout of each PUT.
    pub timeout: Duration,
}

/// What one churn phase did.
#[derive(Debug, Clone)]
pub struct ChurnReport {
    /// PUTs answered `200 applied generation N`.
    pub published: u64,
    /// PUTs answered anything else, or not at all.
    pub failed: u64,
    /// The first few distinct failures, for the report.
    pub failures: Vec<String>,
    /// PUTs sent more than one period after they were due (the rate could
    /// not be held).
    pub late: u64,
    /// Round trip of each answered PUT, µs.
    pub rtt: Histogram<u64>,
    /// The newest generation a PUT was answered with.
    pub last_generation: u64,
    /// Answers whose generation was not above the previous one.
    pub out_of_order: u64,
    /// PUTs of the schedule never sent because the phase ended first (the
    /// rate could not be held).
    pub skipped: u64,
    /// The running number after the last PUT.
    pub next_seq: u64,
}

/// Runs one churn phase on the calling thread.
pub fn run(plan: &ChurnPlan) -> ChurnReport {
    let mut report = ChurnReport {
        published: 0,
        failed: 0,
        failures: Vec::new(),
        late: 0,
        rtt: new_histogram(),
        last_generation: 0,
        out_of_order: 0,
        skipped: 0,
        next_seq: plan.first_seq,
    };
    let mut client = AdminClient::new(plan.admin, plan.timeout);
    let path = format!("/clusters/{}/endpoints", plan.cluster);
    let period = Duration::from_secs_f64(1.0 / plan.rate);
    for i in 0u64.. {
        // Absolute schedule: a slow PUT delays the next one, never the
        // whole sequence.
        let due = plan.start + Duration::from_secs_f64(i as f64 / plan.rate);
        let now = Instant::now();
        // PUTs that could not be sent by the end of the phase are dropped,
        // not sent into the next one.
        if due >= plan.until || now >= plan.until {
            report.skipped = schedule_len(plan).saturating_sub(i);
            break;
        }
        if now < due {
            thread::sleep(due - now);
        } else if now - due > period {
            report.late += 1;
        }
        let body = subset_body(&plan.origins, report.next_seq);
        report.next_seq += 1;
        let sent = Instant::now();
        let outcome = client.request("PUT", &path, body.as_bytes());
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok(reply) if reply.status == 200 => match applied_generation(&reply.body) {
                Some(generation) => {
                    report.published += 1;
                    let _ = report.rtt.record(micros.max(1));
                    if generation <= report.last_generation {
                        report.out_of_order += 1;
                    }
                    report.last_generation = report.last_generation.max(generation);
                }
                None => report.fail(format!("200 but not applied: {}", reply.body.trim_end())),
            },
            Ok(reply) => report.fail(format!("{} {}", reply.status, reply.body.trim_end())),
            Err(e) => report.fail(format!("no answer: {e}")),
        }
    }
    report
}

/// PUTs the schedule holds between `start` and `until`.
fn schedule_len(plan: &ChurnPlan) -> u64 {
    let span = plan
        .until
        .saturating_duration_since(plan.start)
        .as_secs_f64();
    (span * plan.rate).ceil() as u64
}

impl ChurnReport {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.failures.len() < KEPT_FAILURES && !self.failures.contains(&why) {
            self.failures.push(why);
        }
    }
}

/// The JSON body of PUT number `seq`: the subset of `origins` whose bits are
/// set in `seq % (2^n - 1) + 1` (never empty, never the same twice in a row).
pub fn subset_body(origins: &[SocketAddr], seq: u64) -> String {
    let n = origins.len().min(16) as u32;
    let subsets = (1u64 << n) - 1;
    let mask = if subsets == 0 { 0 } else { seq % subsets + 1 };
    let chosen: Vec<String> = origins
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, a)| a.to_string())
        .collect();
    serde_json::Value::from(chosen).to_string()
}

/// N of `applied generation N`.
fn applied_generation(body: &str) -> Option<u64> {
    body.trim()
        .strip_prefix("applied generation ")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Vec<SocketAddr> {
        (1..=4)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], 7000 + p)))
            .collect()
    }

    #[test]
    fn subsets_are_never_empty_and_change_every_time() {
        let origins = origins();
        let bodies: Vec<String> = (0..40).map(|seq| subset_body(&origins, seq)).collect();
        for pair in bodies.windows(2) {
            assert_ne!(pair[0], pair[1]);
        }
        assert!(bodies.iter().all(|b| b.contains("127.0.0.1:")));
        assert_eq!(bodies[0], "[\"127.0.0.1:7001\"]");
        let distinct: std::collections::HashSet<&String> = bodies.iter().collect();
        assert_eq!(distinct.len(), 15);
    }

    #[test]
    fn reads_the_generation() {
        assert_eq!(applied_generation("applied generation 17\n"), Some(17));
        assert_eq!(
            applied_generation("unchanged: generation 17 keeps running\n"),
            None
        );
    }
}
