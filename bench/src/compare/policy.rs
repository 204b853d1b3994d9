//! Idle policies: a ringway variant whose route carries a policy (the
//! scenario's `route` table, say a `rate_limit` far above any offered
//! rate) prices the policy configured and consulted on every request but
//! never triggered. A run in which the policy did act measured something
//! else (429s answered without a trip to the origin cost less than
//! forwarding), so at the end of such a system's round the runner reads
//! ringway's `/metrics`: any request answered with a 4xx (the bench sends
//! only requests the origin answers with a 200), or counted as rate
//! limited, makes the round a problem of the run.

use std::net::SocketAddr;

use serde::Serialize;

use super::observe::{self, Exposition};

/// Final answers by status class, per listener, route and cluster.
const RESPONSES: &str = "ringway_http_responses_total";
/// Requests that did not get an ordinary proxied answer, by reason.
const ERRORS: &str = "ringway_http_errors_total";
/// The reason (`x-ringway-error`) of a request a rate limit refused.
const RATE_LIMITED: &str = "rate_limited";

/// What one round of a system with an idle policy refused.
#[derive(Debug, Clone, Serialize)]
pub struct Refusals {
    /// The system.
    pub system: String,
    /// The round (0-based).
    pub round: usize,
    /// Requests ringway answered with a 4xx over the round; `None` when
    /// `/metrics` could not be read.
    pub answered_4xx: Option<u64>,
    /// Of the requests that got no proxied answer, the ones a rate limit
    /// refused.
    pub rate_limited: Option<u64>,
    /// Why `/metrics` could not be read, if it could not.
    pub metrics_problem: Option<String>,
}

impl Refusals {
    /// Reads a running ringway's counters at the end of its round.
    pub fn read(admin: SocketAddr, system: &str, round: usize) -> Self {
        match observe::read_metrics(admin) {
            Ok(m) => Self::from_exposition(&m, system, round),
            Err(e) => Self {
                system: system.to_owned(),
                round,
                answered_4xx: None,
                rate_limited: None,
                metrics_problem: Some(e),
            },
        }
    }

    /// The refusals an exposition counts.
    pub fn from_exposition(m: &Exposition, system: &str, round: usize) -> Self {
        // Counters: whole numbers, far below 2^53.
        let count = |v: f64| v.max(0.0).round() as u64;
        Self {
            system: system.to_owned(),
            round,
            answered_4xx: Some(count(m.sum_where(RESPONSES, "class", "4xx"))),
            rate_limited: Some(count(m.sum_where(ERRORS, "reason", RATE_LIMITED))),
            metrics_problem: None,
        }
    }

    /// What is wrong with the round, if anything: refusals, or counters
    /// that could not be read (then nothing shows the policy stayed idle).
    pub fn problem(&self) -> Option<String> {
        let at = format!("round {}: {}", self.round + 1, self.system);
        if let Some(why) = &self.metrics_problem {
            return Some(format!(
                "{at}: cannot read its counters, so nothing shows its route's policy stayed \
                 idle: {why}"
            ));
        }
        let (answered, limited) = (
            self.answered_4xx.unwrap_or(0),
            self.rate_limited.unwrap_or(0),
        );
        (answered > 0 || limited > 0).then(|| {
            format!(
                "{at}: its route's policy acted ({answered} requests answered with a 4xx, \
                 {limited} rate limited): its runs measured refusals, not an idle policy"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "\
# HELP ringway_http_responses_total Final HTTP responses.
# TYPE ringway_http_responses_total counter
ringway_http_responses_total{listener=\"bench\",route=\"all\",cluster=\"origin\",class=\"2xx\"} 52000
ringway_http_responses_total{listener=\"bench\",route=\"all\",cluster=\"\",class=\"4xx\"} 0
ringway_http_responses_total{listener=\"bench\",route=\"\",cluster=\"\",class=\"4xx\"} 0
ringway_http_errors_total{listener=\"bench\",route=\"all\",cluster=\"\",reason=\"no_route\"} 0
";

    #[test]
    fn a_policy_that_answered_nothing_itself_is_idle() {
        let r = Refusals::from_exposition(&Exposition(EXPOSITION.into()), "rl", 0);
        assert_eq!((r.answered_4xx, r.rate_limited), (Some(0), Some(0)));
        assert_eq!(r.problem(), None);
    }

    #[test]
    fn refusals_make_the_round_a_problem() {
        let text = format!(
            "{EXPOSITION}\
ringway_http_responses_total{{listener=\"bench\",route=\"all\",cluster=\"\",class=\"4xx\"}} 17
ringway_http_errors_total{{listener=\"bench\",route=\"all\",cluster=\"\",reason=\"rate_limited\"}} 17
ringway_http_errors_total{{listener=\"bench\",route=\"all\",cluster=\"\",reason=\"rate_limited_x\"}} 5
"
        );
        let r = Refusals::from_exposition(&Exposition(text), "rl", 1);
        assert_eq!((r.answered_4xx, r.rate_limited), (Some(17), Some(17)));
        let why = r.problem().expect("a problem");
        assert!(why.starts_with("round 2: rl:"), "{why}");
        assert!(why.contains("17 requests answered with a 4xx"), "{why}");
        assert!(why.contains("not an idle policy"), "{why}");
    }

    #[test]
    fn unreadable_counters_are_a_problem() {
        let r = Refusals::read("127.0.0.1:1".parse().expect("an address"), "rl", 0);
        assert!(r.metrics_problem.is_some(), "{r:?}");
        let why = r.problem().expect("a problem");
        assert!(why.contains("cannot read its counters"), "{why}");
    }
}
