//! A fault schedule: what an HTTP origin does wrong, and when.
//!
//! A schedule is a list of [`Phase`]s, each a window of time in which every
//! answer is delayed by some amount and a share of them replaced by a `503`.
//! The windows count from the moment the schedule's clock starts
//! ([`super::CountingOrigin::start_faults`]; `ringway-bench origin` starts it
//! on `SIGUSR1`), so that a runner can line them up with its load run; until
//! then the origin answers as if it had no schedule. The origin itself adds
//! the delay and picks the failures: nothing between the proxy and the origin
//! is slowed down or dropped, so what a proxy sees is what a slow or
//! failing instance looks like from the outside.

use std::time::Duration;

use super::response_with;

/// One window of misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Start of the window, after the clock started.
    pub from: Duration,
    /// End of the window; `None`: until the origin stops.
    pub until: Option<Duration>,
    /// Added before every answer due in the window.
    pub delay: Duration,
    /// Share of the answers due in the window that are a `503` instead
    /// (0 to 1).
    pub fail_ratio: f64,
}

impl Phase {
    /// Whether the window holds `t`.
    fn holds(&self, t: Duration) -> bool {
        t >= self.from && self.until.is_none_or(|u| t < u)
    }
}

/// What the schedule does to one answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// Wait this long before answering.
    pub delay: Duration,
    /// The chance of a `503` instead of the usual answer.
    pub fail_ratio: f64,
}

impl Effect {
    /// No delay, no failure.
    pub const NONE: Effect = Effect {
        delay: Duration::ZERO,
        fail_ratio: 0.0,
    };

    /// Whether this answer fails, given a uniform random `draw`.
    pub fn fails(&self, draw: u64) -> bool {
        // The top 53 bits as a fraction of one: every ratio a f64 holds is
        // reachable, and 0 never fails.
        let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
        unit < self.fail_ratio
    }
}

/// A whole schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    phases: Vec<Phase>,
    failure: &'static [u8],
}

impl Faults {
    /// A schedule of `phases`; the failed answers are a `503` with an
    /// empty body.
    pub fn new(phases: Vec<Phase>) -> Self {
        Self {
            phases,
            failure: response_with(503, 0),
        }
    }

    /// Kept for the life of the process, so that [`super::Settings`] stays
    /// `Copy`.
    pub fn leak(self) -> &'static Faults {
        Box::leak(Box::new(self))
    }

    /// Its phases.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The answer a failed request gets.
    pub fn failure(&self) -> &'static [u8] {
        self.failure
    }

    /// What the schedule does at `t` after the clock started: the delays of
    /// every window that holds `t` add up; the highest failure ratio wins.
    pub fn at(&self, t: Duration) -> Effect {
        self.phases
            .iter()
            .filter(|p| p.holds(t))
            .fold(Effect::NONE, |e, p| Effect {
                delay: e.delay + p.delay,
                fail_ratio: e.fail_ratio.max(p.fail_ratio),
            })
    }
}

/// A small, fast random source for the failure draws (xorshift64*): one per
/// serving thread, no lock, and good enough to spread failures evenly.
#[derive(Debug, Clone, Copy)]
pub struct Draws(u64);

impl Draws {
    /// Seeded with `seed` (any value; 0 is replaced).
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 { 1 } else { seed })
    }

    /// The next draw.
    pub fn draw(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn windows_open_and_close_on_time_and_add_up() {
        let f = Faults::new(vec![
            Phase {
                from: ms(100),
                until: Some(ms(200)),
                delay: ms(50),
                fail_ratio: 0.0,
            },
            Phase {
                from: ms(150),
                until: None,
                delay: ms(5),
                fail_ratio: 0.3,
            },
        ]);
        assert_eq!(f.at(ms(0)), Effect::NONE);
        assert_eq!(f.at(ms(99)), Effect::NONE);
        assert_eq!(f.at(ms(100)).delay, ms(50));
        assert_eq!(f.at(ms(100)).fail_ratio, 0.0);
        assert_eq!(f.at(ms(150)).delay, ms(55));
        assert_eq!(f.at(ms(150)).fail_ratio, 0.3);
        assert_eq!(f.at(ms(200)).delay, ms(5), "the first window is over");
        assert_eq!(f.at(Duration::from_secs(3600)).fail_ratio, 0.3);
        assert!(f.failure().starts_with(b"HTTP/1.1 503 "));
        assert!(f.failure().ends_with(b"Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn failures_follow_the_ratio() {
        let mut draws = Draws::new(42);
        for ratio in [0.0, 0.3, 1.0] {
            let e = Effect {
                delay: Duration::ZERO,
                fail_ratio: ratio,
            };
            let n = 100_000;
            let failed = (0..n).filter(|_| e.fails(draws.draw())).count();
            let share = failed as f64 / n as f64;
            assert!((share - ratio).abs() < 0.01, "{ratio}: {share}");
        }
        assert!(!Effect::NONE.fails(0));
        assert!(!Effect::NONE.fails(u64::MAX));
    }
}
