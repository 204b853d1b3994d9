//! Fault injection settings: what share of a route's requests (or of a
//! TCP listener's connections) ringway aborts or delays on purpose, to
//! test how clients and services cope.
//!
//! One roll of the worker's random source decides each request: the
//! first `abort_percent` of the roll's range aborts, the next
//! `delay_percent` delays, the rest goes as usual. Both percentages are
//! then shares of all the requests the fault applies to (the builder
//! keeps their sum at most 100), and no request is both aborted and
//! delayed.

use std::time::Duration;

use super::route::HeaderEdits;
use crate::request::answer::Field;
use crate::request::Fault;

/// The name of the response field an injected abort carries.
pub const FAULT_HEADER: &str = "x-ringway-fault";

/// The shares of requests or connections to abort and to delay, as
/// thresholds on a 64-bit roll.
#[derive(Debug, Clone, PartialEq)]
pub struct Shares {
    /// The percentage aborted, as configured.
    pub abort_percent: f64,
    /// The percentage delayed, as configured.
    pub delay_percent: f64,
    /// Rolls below this abort.
    abort_below: u128,
    /// Rolls from `abort_below` up to below this delay.
    delay_below: u128,
}

impl Shares {
    /// `abort_percent` and `delay_percent` of the rolls, each in [0, 100]
    /// and together at most 100 (the builder checks; values past the
    /// range are clamped).
    pub fn new(abort_percent: f64, delay_percent: f64) -> Self {
        let abort = cut(abort_percent);
        let delay = cut(delay_percent);
        Self {
            abort_percent,
            delay_percent,
            abort_below: abort,
            delay_below: abort.saturating_add(delay),
        }
    }

    /// What `roll` (64 uniform bits) decides.
    #[inline]
    pub fn decide(&self, roll: u64) -> Option<Fault> {
        let roll = u128::from(roll);
        if roll < self.abort_below {
            Some(Fault::Abort)
        } else if roll < self.delay_below {
            Some(Fault::Delay)
        } else {
            None
        }
    }
}

/// `percent` of the 2^64 rolls: 100 is every roll.
fn cut(percent: f64) -> u128 {
    const ROLLS: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if percent.is_nan() || percent <= 0.0 {
        return 0;
    }
    (percent.min(100.0) / 100.0 * ROLLS) as u128
}

/// A route's `fault`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteFault {
    /// The shares aborted and delayed.
    pub shares: Shares,
    /// The status of an injected abort (4xx or 5xx).
    pub abort_status: u16,
    /// How long a delayed request is held before it is sent on; `None`
    /// when the route delays nothing.
    pub delay: Option<Duration>,
    /// Only requests that carry this header (any value; the name is
    /// lower-case) are subject to the fault; `None`: every request.
    pub header: Option<Box<str>>,
    /// The field an abort answer carries (`x-ringway-fault: abort`).
    pub abort_fields: [Field; 1],
    /// The route's response edits with `x-ringway-fault: delay` added:
    /// what the answer to a delayed request gets (see
    /// [`RouteFault::marking_delays`]).
    pub delay_edits: HeaderEdits,
}

impl RouteFault {
    /// A route's fault: an abort with `abort_status` for `abort_percent`
    /// of its requests, a wait of `delay` for `delay_percent` of them,
    /// only for requests with `header` when one is given.
    pub fn new(
        abort_status: u16,
        abort_percent: f64,
        delay: Option<Duration>,
        delay_percent: f64,
        header: Option<Box<str>>,
    ) -> Self {
        Self {
            shares: Shares::new(abort_percent, delay_percent),
            abort_status,
            delay,
            header,
            abort_fields: [(FAULT_HEADER.into(), Fault::Abort.name().into())],
            delay_edits: HeaderEdits {
                add: vec![(FAULT_HEADER.into(), Fault::Delay.name().into())],
                ..HeaderEdits::default()
            },
        }
    }

    /// This fault on a route whose response edits are `edits`: a delayed
    /// request's answer gets them, and `x-ringway-fault: delay` added
    /// (added, not set: a field of the same name from a hop further on
    /// stays).
    pub fn marking_delays(mut self, edits: &HeaderEdits) -> Self {
        let mut delay_edits = edits.clone();
        delay_edits.add.append(&mut self.delay_edits.add);
        self.delay_edits = delay_edits;
        self
    }
}

/// A TCP listener's `fault`: an abort resets an accepted connection at
/// once, a delay holds its upstream connect back.
#[derive(Debug, Clone)]
pub struct TcpFault {
    /// The shares aborted and delayed.
    pub shares: Shares,
    /// How long a delayed connection waits before its upstream connect;
    /// `None` when the listener delays nothing.
    pub delay: Option<Duration>,
    /// The faults injected, per worker.
    pub tally: std::sync::Arc<super::tally::FaultTally>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_split_the_rolls_in_order() {
        let s = Shares::new(25.0, 50.0);
        let quarter = 1u64 << 62;
        assert_eq!(s.decide(0), Some(Fault::Abort));
        assert_eq!(s.decide(quarter - 1), Some(Fault::Abort));
        assert_eq!(s.decide(quarter), Some(Fault::Delay));
        assert_eq!(s.decide(3 * quarter - 1), Some(Fault::Delay));
        assert_eq!(s.decide(3 * quarter), None);
        assert_eq!(s.decide(u64::MAX), None);
    }

    #[test]
    fn zero_is_never_and_a_hundred_is_always() {
        let never = Shares::new(0.0, 0.0);
        let abort = Shares::new(100.0, 0.0);
        let delay = Shares::new(0.0, 100.0);
        for roll in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            assert_eq!(never.decide(roll), None);
            assert_eq!(abort.decide(roll), Some(Fault::Abort));
            assert_eq!(delay.decide(roll), Some(Fault::Delay));
        }
    }

    #[test]
    fn a_delay_is_marked_beside_the_routes_own_edits() {
        let edits = HeaderEdits {
            remove: vec!["server".into()],
            set: vec![("x-env".into(), "prod".into())],
            add: vec![("x-added".into(), "1".into())],
        };
        let fault = RouteFault::new(503, 0.0, Some(Duration::from_millis(5)), 10.0, None)
            .marking_delays(&edits);
        assert_eq!(fault.delay_edits.remove, edits.remove);
        assert_eq!(fault.delay_edits.set, edits.set);
        assert_eq!(
            fault.delay_edits.add,
            [
                ("x-added".into(), "1".into()),
                (FAULT_HEADER.into(), "delay".into())
            ]
        );
    }

    #[test]
    fn a_share_holds_over_many_rolls() {
        // 100,000 rolls at 5% and 10%: the counts are binomial; a
        // correct split strays 6 sigma (about 415 and 570) with a
        // probability below 1e-8 each.
        let mut random = crate::test_rng::Rng(42);
        let s = Shares::new(5.0, 10.0);
        let (mut aborts, mut delays) = (0u32, 0u32);
        for _ in 0..100_000 {
            match s.decide(random.next()) {
                Some(Fault::Abort) => aborts += 1,
                Some(Fault::Delay) => delays += 1,
                None => {}
            }
        }
        assert!((4_585..=5_415).contains(&aborts), "{aborts} aborts");
        assert!((9_430..=10_570).contains(&delays), "{delays} delays");
    }
}
