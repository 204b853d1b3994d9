//! Table churn: a churning variant of ringway gets a new routing table
//! through its admin API at a fixed rate during each of its load runs.
//!
//! Two modes (see [`ChurnMode`]): `endpoints` sends
//! `PUT /clusters/origin/endpoints` with a different non-empty subset of
//! the origins each time, so every request keeps finding a live endpoint
//! while every table differs from the one before; `routes` posts the whole
//! configuration (`POST /config`), with one extra route added, then
//! removed, so that every post is parsed, compiled and published.
//!
//! The posts keep an absolute schedule (post `i` is due at
//! `start + i * interval`: a slow post delays itself, not the ones after
//! it) on one keep-alive connection, from a thread pinned to the load core.
//! Every answer must be `200 applied generation N`, sent once every worker
//! runs the table, with N rising. Around the system's round the runner
//! reads `/stats`: the generation before and after (it must have advanced
//! by exactly the posts applied) and ringway's own publish latency, from
//! handing a table to the workers to the last worker's acknowledgement.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use super::scenario::ChurnMode;
use ringway_kit::admin::AdminClient;

/// How long a post may take: the agent answers once every worker runs the
/// table, or after 10 s; wait a little longer than that.
const POST_TIMEOUT: Duration = Duration::from_secs(15);
/// At most this many distinct failures are kept for the report.
const KEPT_FAILURES: usize = 5;
/// Longest sleep of the posting thread between two looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Highest round trip recorded, µs.
const MAX_RTT_US: u64 = 600_000_000;

/// What a churning system gets posted.
#[derive(Debug, Clone)]
pub struct ChurnPlan {
    /// Its admin API.
    pub admin: SocketAddr,
    /// What each post changes.
    pub mode: ChurnMode,
    /// Time between two posts.
    pub interval: Duration,
    /// The configuration it was started with (`routes` mode posts it with
    /// one route more, then as it is).
    pub config: String,
    /// The origins (`endpoints` mode posts subsets of them).
    pub origins: Vec<SocketAddr>,
    /// The core the posting thread runs on.
    pub core: Option<usize>,
}

/// The churn of one system over one round, accumulated over its load runs.
#[derive(Debug)]
pub struct ChurnBook {
    plan: Arc<ChurnPlan>,
    system: String,
    round: usize,
    tally: Tally,
    generation_start: Option<u64>,
    stats_error: Option<String>,
}

/// What the posting thread counted.
#[derive(Debug)]
struct Tally {
    posted: u64,
    applied: u64,
    failed: u64,
    failures: Vec<String>,
    late: u64,
    out_of_order: u64,
    last_generation: u64,
    rtt: Histogram<u64>,
    /// The running number of the next post: it picks the subset or whether
    /// the extra route is there, and carries over from one run to the next
    /// so that no post repeats the table before it.
    next_seq: u64,
}

/// A running posting thread.
#[derive(Debug)]
pub struct Churner {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Tally>,
}

/// Percentiles of a latency, µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// How many were measured.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// The churn of one system in one round, as the results hold it.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnRound {
    /// The churning system.
    pub system: String,
    /// The round (0-based).
    pub round: usize,
    /// `endpoints` or `routes`.
    pub mode: ChurnMode,
    /// Time between two posts, ms.
    pub interval_ms: f64,
    /// Posts sent.
    pub posted: u64,
    /// Posts answered `200 applied generation N`.
    pub applied: u64,
    /// Posts answered anything else, or not at all.
    pub failed: u64,
    /// The first few distinct failures.
    pub failures: Vec<String>,
    /// Posts sent more than one interval after they were due.
    pub late: u64,
    /// Answers whose generation was not above the one before.
    pub out_of_order: u64,
    /// Round trip of each applied post as the poster saw it.
    pub post_rtt_us: Option<Percentiles>,
    /// `/stats` `generation` after the start.
    pub generation_start: Option<u64>,
    /// `/stats` `generation` at the end of the round.
    pub generation_end: Option<u64>,
    /// `/stats` `publish_latency_us` at the end of the round: from handing
    /// a table to the workers to the last acknowledgement, over every table
    /// published since the start (the posts').
    pub publish_latency_us: Option<Percentiles>,
    /// Why `/stats` could not be read, if it could not.
    pub stats_error: Option<String>,
}

impl ChurnBook {
    /// A book for `system`'s round `round`; reads the generation it starts
    /// from.
    pub fn new(plan: ChurnPlan, system: &str, round: usize) -> Self {
        let (generation_start, stats_error) = match stats(plan.admin) {
            Ok(v) => (v["generation"].as_u64(), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            system: system.to_owned(),
            round,
            tally: Tally::new(generation_start.unwrap_or(0)),
            plan: Arc::new(plan),
            generation_start,
            stats_error,
        }
    }

    /// Starts posting; [`Churner::stop`] gives the tally back to
    /// [`ChurnBook::resume`].
    pub fn start(&mut self) -> Churner {
        let plan = Arc::clone(&self.plan);
        let tally = std::mem::replace(&mut self.tally, Tally::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            if let Some(core) = plan.core {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
            post_until_stopped(&plan, tally, &flag)
        });
        Churner { stop, thread }
    }

    /// Takes back the tally of a stopped churner.
    pub fn resume(&mut self, churner: Churner) {
        churner.stop.store(true, Ordering::Relaxed);
        match churner.thread.join() {
            Ok(tally) => self.tally = tally,
            Err(_) => {
                self.tally = Tally::new(0);
                self.tally
                    .fail("the posting thread panicked; its counts are lost".into());
            }
        }
    }

    /// Reads `/stats` once more and closes the book.
    pub fn finish(self) -> ChurnRound {
        let end = stats(self.plan.admin);
        let (generation_end, publish, stats_error) = match &end {
            Ok(v) => {
                let p = &v["publish_latency_us"];
                let publish = (|| {
                    Some(Percentiles {
                        count: p["count"].as_u64()?,
                        p50: p["p50"].as_u64()?,
                        p99: p["p99"].as_u64()?,
                        max: p["max"].as_u64()?,
                    })
                })();
                (v["generation"].as_u64(), publish, self.stats_error)
            }
            Err(e) => (None, None, Some(e.clone())),
        };
        let t = &self.tally;
        ChurnRound {
            system: self.system,
            round: self.round,
            mode: self.plan.mode,
            interval_ms: self.plan.interval.as_secs_f64() * 1e3,
            posted: t.posted,
            applied: t.applied,
            failed: t.failed,
            failures: t.failures.clone(),
            late: t.late,
            out_of_order: t.out_of_order,
            post_rtt_us: (!t.rtt.is_empty()).then(|| percentiles(&t.rtt)),
            generation_start: self.generation_start,
            generation_end,
            publish_latency_us: publish,
            stats_error,
        }
    }
}

impl ChurnRound {
    /// What is wrong with the round, if anything: posts not applied,
    /// answers out of order, a generation that did not advance by exactly
    /// the posts applied, `/stats` unreadable.
    pub fn problems(&self) -> Vec<String> {
        let at = format!("round {}: {}", self.round + 1, self.system);
        let mut why = Vec::new();
        if self.failed > 0 {
            why.push(format!(
                "{at}: {} of {} table posts not applied (first: {})",
                self.failed,
                self.posted,
                self.failures.join(" | ")
            ));
        }
        if self.out_of_order > 0 {
            why.push(format!(
                "{at}: {} post answers named a generation not above the one before",
                self.out_of_order
            ));
        }
        match (self.generation_start, self.generation_end) {
            (Some(start), Some(end)) if end != start + self.applied => why.push(format!(
                "{at}: the generation went from {start} to {end}, but {} tables were applied",
                self.applied
            )),
            _ => {}
        }
        if let Some(e) = &self.stats_error {
            why.push(format!("{at}: cannot read /stats: {e}"));
        }
        why
    }
}

impl Tally {
    fn new(last_generation: u64) -> Self {
        Self {
            posted: 0,
            applied: 0,
            failed: 0,
            failures: Vec::new(),
            late: 0,
            out_of_order: 0,
            last_generation,
            rtt: Histogram::new_with_bounds(1, MAX_RTT_US, 3)
                .expect("static histogram bounds are valid"),
            next_seq: 0,
        }
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.failures.len() < KEPT_FAILURES && !self.failures.contains(&why) {
            self.failures.push(why);
        }
    }
}

/// Posts on the plan's schedule until `stop` is set.
fn post_until_stopped(plan: &ChurnPlan, mut tally: Tally, stop: &AtomicBool) -> Tally {
    let mut client = AdminClient::new(plan.admin, POST_TIMEOUT);
    let start = Instant::now();
    for i in 0u32.. {
        let due = start + plan.interval.saturating_mul(i);
        loop {
            if stop.load(Ordering::Relaxed) {
                return tally;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            thread::sleep((due - now).min(STOP_POLL));
        }
        if due.elapsed() > plan.interval {
            tally.late += 1;
        }
        let seq = tally.next_seq;
        tally.next_seq += 1;
        let (method, path, body) = match plan.mode {
            ChurnMode::Endpoints => (
                "PUT",
                "/clusters/origin/endpoints",
                subset_body(&plan.origins, seq),
            ),
            ChurnMode::Routes => ("POST", "/config", toggled_config(&plan.config, seq)),
        };
        tally.posted += 1;
        let sent = Instant::now();
        let outcome = client.request(method, path, body.as_bytes());
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok(reply) if reply.status == 200 => match applied_generation(&reply.body) {
                Some(generation) => {
                    tally.applied += 1;
                    let _ = tally.rtt.record(micros.clamp(1, MAX_RTT_US));
                    if generation <= tally.last_generation {
                        tally.out_of_order += 1;
                    }
                    tally.last_generation = tally.last_generation.max(generation);
                }
                None => tally.fail(format!("200 but not applied: {}", reply.body.trim_end())),
            },
            Ok(reply) => tally.fail(format!("{} {}", reply.status, reply.body.trim_end())),
            Err(e) => tally.fail(format!("no answer: {e}")),
        }
    }
    tally
}

/// The configuration of post `seq` in `routes` mode: the one ringway was
/// started with, and every other time one route more (a path nobody
/// requests, after every other route), so that each post changes the table.
fn toggled_config(config: &str, seq: u64) -> String {
    let mut text = config.to_owned();
    if seq.is_multiple_of(2) {
        text.push_str(&format!(
            "\n[[listeners.routes]]\nname = \"churn\"\npath = \"/churn/{seq}\"\ndirect = {{ status = 200, body = \"churn\\n\" }}\n"
        ));
    }
    text
}

/// The JSON body of post `seq` in `endpoints` mode: the subset of `origins`
/// whose bits are set in `seq % (2^n - 1) + 1` (never empty, never the same
/// twice in a row, and for 2 origins or more never all of them first, which
/// is what the system starts with).
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
    body.lines()
        .next()?
        .trim()
        .strip_prefix("applied generation ")?
        .parse()
        .ok()
}

/// `GET /stats`, parsed.
pub fn stats(admin: SocketAddr) -> Result<Value, String> {
    let mut client = AdminClient::new(admin, Duration::from_secs(10));
    let reply = client
        .request("GET", "/stats", b"")
        .map_err(|e| format!("GET /stats: {e}"))?;
    if reply.status != 200 {
        return Err(format!(
            "GET /stats answered {}: {}",
            reply.status,
            reply.body.trim_end()
        ));
    }
    serde_json::from_str(&reply.body).map_err(|e| format!("GET /stats: not JSON: {e}"))
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], 7000 + p)))
            .collect()
    }

    #[test]
    fn subsets_are_never_empty_and_change_every_time() {
        let origins = origins(4);
        let bodies: Vec<String> = (0..40).map(|seq| subset_body(&origins, seq)).collect();
        for pair in bodies.windows(2) {
            assert_ne!(pair[0], pair[1]);
        }
        assert!(bodies.iter().all(|b| b.contains("127.0.0.1:")));
        assert_eq!(bodies[0], "[\"127.0.0.1:7001\"]");
        let distinct: std::collections::HashSet<&String> = bodies.iter().collect();
        assert_eq!(distinct.len(), 15);
        // Two origins: never both first, which is what ringway starts with.
        assert_eq!(subset_body(&self::origins(2), 0), "[\"127.0.0.1:7001\"]");
    }

    #[test]
    fn routes_mode_toggles_one_route() {
        let base = "[[listeners]]\nname = \"bench\"\n";
        let with = toggled_config(base, 0);
        assert!(with.starts_with(base) && with.contains("path = \"/churn/0\""));
        assert_eq!(toggled_config(base, 1), base);
        assert!(toggled_config(base, 2).contains("/churn/2"));
    }

    #[test]
    fn reads_the_generation() {
        assert_eq!(applied_generation("applied generation 17\n"), Some(17));
        assert_eq!(
            applied_generation("applied generation 3\nwarning: something\n"),
            Some(3)
        );
        assert_eq!(
            applied_generation("unchanged: generation 17 keeps running\n"),
            None
        );
    }

    #[test]
    fn a_round_with_failures_or_a_wrong_generation_is_a_problem() {
        let mut r = ChurnRound {
            system: "ringway-churn".into(),
            round: 0,
            mode: ChurnMode::Routes,
            interval_ms: 10.0,
            posted: 10,
            applied: 10,
            failed: 0,
            failures: Vec::new(),
            late: 0,
            out_of_order: 0,
            post_rtt_us: None,
            generation_start: Some(1),
            generation_end: Some(11),
            publish_latency_us: None,
            stats_error: None,
        };
        assert!(r.problems().is_empty(), "{:?}", r.problems());
        r.generation_end = Some(12);
        assert!(
            r.problems()[0].contains("from 1 to 12"),
            "{:?}",
            r.problems()
        );
        r.generation_end = Some(11);
        r.failed = 2;
        r.failures = vec!["400 refused".into()];
        assert!(
            r.problems()[0].contains("400 refused"),
            "{:?}",
            r.problems()
        );
    }

    #[test]
    fn a_dead_admin_api_is_counted_not_fatal() {
        // A port of this process's block nothing listens on.
        let admin = ringway_kit::ports::free_addr();
        let plan = ChurnPlan {
            admin,
            mode: ChurnMode::Endpoints,
            interval: Duration::from_millis(5),
            config: String::new(),
            origins: origins(2),
            core: None,
        };
        let mut book = ChurnBook::new(plan, "x", 0);
        let churner = book.start();
        thread::sleep(Duration::from_millis(60));
        book.resume(churner);
        let round = book.finish();
        assert!(
            round.posted > 0 && round.failed == round.posted,
            "{round:?}"
        );
        assert!(round.failures[0].contains("no answer"), "{round:?}");
        assert!(round.stats_error.is_some());
        assert!(!round.problems().is_empty());
    }
}
