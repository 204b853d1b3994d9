//! What to do after a request to the collector ([`judge`]), and how long to
//! wait before trying again ([`Backoff`]).
//!
//! OTLP/HTTP says which answers are worth a retry: 429, 502, 503 and 504,
//! and failures to get an answer at all. Every other status is final: a
//! 2xx is a success, anything else refuses the batch for good (sending it
//! again would get the same answer).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// What an answer means for the batch it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted (2xx).
    Accepted,
    /// Keep it and try again later, after the wait the collector asked for
    /// if it did.
    Retry(Option<Duration>),
    /// Refused for good: drop it.
    Refused,
}

/// The verdict on an answer of `status`, with the collector's
/// `Retry-After`, if any.
pub fn judge(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Accepted,
        429 | 502 | 503 | 504 => Verdict::Retry(retry_after),
        _ => Verdict::Refused,
    }
}

/// A `Retry-After` value in seconds. The other form, an HTTP date, is not
/// read: the backoff's own wait applies then.
pub fn parse_retry_after(value: &[u8]) -> Option<Duration> {
    let value = std::str::from_utf8(value).ok()?.trim();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().map(Duration::from_secs)
}

/// Capped exponential backoff with jitter: the n-th wait in a row is drawn
/// from the upper half of `first * 2^n`, capped at `max`, so that
/// ringways that lost the same collector at the same moment do not come
/// back in step.
#[derive(Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// The next wait before jitter.
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff that starts at `first` and never waits longer than `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        // A random seed without a dependency: std's per-process hash keys.
        let seed = RandomState::new().build_hasher().finish();
        Self {
            first,
            max,
            next: first,
            rng: seed | 1,
        }
    }

    /// The wait after one more failure: the collector's `Retry-After` when
    /// it gave one, kept between `first` (a `Retry-After: 0` must not turn
    /// into a busy loop) and `max`; else the jittered backoff.
    pub fn wait(&mut self, retry_after: Option<Duration>) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        if let Some(asked) = retry_after {
            return asked.clamp(self.first, self.max);
        }
        let half = base / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.random() % nanos.saturating_add(1))
    }

    /// After a success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// xorshift64: plenty for spreading retries.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_otlps_retryable_answers_are_retried() {
        for status in [200, 202, 204] {
            assert_eq!(judge(status, None), Verdict::Accepted, "{status}");
        }
        for status in [429, 502, 503, 504] {
            assert_eq!(judge(status, None), Verdict::Retry(None), "{status}");
        }
        let asked = Some(Duration::from_secs(7));
        assert_eq!(judge(503, asked), Verdict::Retry(asked));
        for status in [100, 301, 400, 401, 403, 404, 408, 413, 415, 500, 501, 505] {
            assert_eq!(judge(status, None), Verdict::Refused, "{status}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_only() {
        assert_eq!(parse_retry_after(b"5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(b" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(b"0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after(b"-1"), None);
        assert_eq!(parse_retry_after(b"1.5"), None);
        assert_eq!(parse_retry_after(b""), None);
        assert_eq!(parse_retry_after(b"99999999999"), None);
    }

    #[test]
    fn waits_double_with_jitter_up_to_the_cap() {
        let first = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        let mut backoff = Backoff::new(first, max);
        let mut base = first;
        for _ in 0..12 {
            let wait = backoff.wait(None);
            assert!(wait >= base / 2 && wait <= base, "{wait:?} for {base:?}");
            base = (base * 2).min(max);
        }
        assert_eq!(base, max, "capped after enough failures");
        backoff.reset();
        let wait = backoff.wait(None);
        assert!(wait <= first, "back to the first wait: {wait:?}");
    }

    #[test]
    fn a_collectors_wait_is_honoured_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(
            backoff.wait(Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff.wait(Some(Duration::from_secs(3_600))),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff.wait(Some(Duration::ZERO)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn the_jitter_spreads_the_waits() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let waits: std::collections::HashSet<Duration> =
            (0..32).map(|_| backoff.wait(None)).collect();
        assert!(waits.len() > 1, "{waits:?}");
    }
}
