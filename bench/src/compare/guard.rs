//! The quiet-machine guard: figures taken while other work runs on the
//! same cores (a build, a test suite) or while the hypervisor runs
//! something else on them measure that work, not the systems.
//!
//! Before each load run the runner waits until every core of the run was
//! less busy than `quiet_pct` for a second ([`wait_quiet`]); it gives up
//! after `quiet_wait`, runs anyway and says so. After each run it judges
//! what the run's CPU counters show ([`judge`]): CPU time on the run's
//! cores that none of the run's own processes was charged (other
//! processes), and, for a max-throughput run, clock ticks a core never
//! got (this guest reports no steal time, but while the host deschedules a
//! busy vCPU it receives no tick, so the window's ticks fall short of its
//! wall time). A disturbed run is kept aside and run again, up to
//! `retries` times; the last one is kept and flagged.

use std::thread;
use std::time::Duration;

use serde::Serialize;

use super::results::GuardSettings;
use ringway_kit::procfs::{self, CoreTimes};

/// How long one look at the cores lasts.
const SAMPLE: Duration = Duration::from_secs(1);

/// What the wait before a run found.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Quiet {
    /// Seconds spent waiting (a second per look).
    pub waited_s: f64,
    /// Whether the cores were quiet when the run started; `false` means
    /// the guard gave up waiting.
    pub quiet: bool,
    /// The busiest core at the last look, and its busy share in percent.
    pub busiest: (usize, f64),
}

/// Waits until every core of `cores` was under `quiet_pct` busy for a
/// second, at most `quiet_wait`; `None` when the guard is off
/// (`quiet_wait` of 0).
pub fn wait_quiet(cores: &[usize], g: &GuardSettings) -> Option<Quiet> {
    if g.quiet_wait_s <= 0.0 {
        return None;
    }
    wait_with(cores, g, &mut |cores| {
        let before: Vec<CoreTimes> = cores.iter().map(|&c| read(c)).collect();
        thread::sleep(SAMPLE);
        cores
            .iter()
            .zip(before)
            .map(|(&c, b)| read(c).busy_pct_since(b))
            .collect()
    })
}

/// [`wait_quiet`] with the look at the cores (busy percent per core over
/// one [`SAMPLE`]) given.
fn wait_with(
    cores: &[usize],
    g: &GuardSettings,
    look: &mut dyn FnMut(&[usize]) -> Vec<f64>,
) -> Option<Quiet> {
    let mut looks = 0u32;
    loop {
        let busy = look(cores);
        looks += 1;
        let (busiest, pct) = cores
            .iter()
            .copied()
            .zip(busy.iter().copied())
            .fold((0, 0.0), |m, (c, p)| if p > m.1 { (c, p) } else { m });
        let waited_s = SAMPLE.as_secs_f64() * f64::from(looks - 1);
        if pct < g.quiet_pct {
            return Some(Quiet {
                waited_s,
                quiet: true,
                busiest: (busiest, pct),
            });
        }
        if looks == 1 {
            eprintln!(
                "compare: machine busy (core {busiest} {pct:.0}%): waiting up to {:.0} s for quiet",
                g.quiet_wait_s
            );
        }
        let waited_s = waited_s + SAMPLE.as_secs_f64();
        if waited_s >= g.quiet_wait_s {
            eprintln!("compare: still busy after {waited_s:.0} s: running anyway");
            return Some(Quiet {
                waited_s,
                quiet: false,
                busiest: (busiest, pct),
            });
        }
    }
}

fn read(core: usize) -> CoreTimes {
    // A core that cannot be read counts as idle.
    procfs::core_times(core).unwrap_or_default()
}

/// What a run's counters say about other work during it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Disturbance {
    /// CPU time on the run's cores charged to none of the run's processes
    /// (system, origins, generator, this runner), percent of one core over
    /// the run.
    pub foreign_pct: f64,
    /// The largest share of a core's clock ticks that never came, percent.
    pub lost_pct: f64,
}

/// The counters of a run that [`judge`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// Busy seconds of all the run's cores together.
    pub cores_busy_s: f64,
    /// CPU seconds of the run's own processes together.
    pub own_s: f64,
    /// The largest shortfall of one core's ticks against the wall time,
    /// seconds.
    pub most_lost_s: f64,
}

/// Judges a run's counters.
pub fn judge(c: Counters) -> Disturbance {
    if c.wall_s <= 0.0 {
        return Disturbance::default();
    }
    Disturbance {
        foreign_pct: (100.0 * (c.cores_busy_s - c.own_s) / c.wall_s).max(0.0),
        lost_pct: (100.0 * c.most_lost_s / c.wall_s).max(0.0),
    }
}

/// Why `d` makes a run disturbed under `g`, if it does. Lost ticks count
/// for max-throughput runs only: in an open-loop run the cores idle between
/// requests, and an idle vCPU that the host parks misses ticks too, with
/// no harm to the figures (latency is timed by the clock, CPU is charged
/// by the scheduler).
pub fn verdict(d: Disturbance, g: &GuardSettings, max_run: bool) -> Option<String> {
    if d.foreign_pct > g.max_foreign_pct {
        return Some(format!(
            "other processes used {:.0}% of a core on the run's cores (limit {:.0}%)",
            d.foreign_pct, g.max_foreign_pct
        ));
    }
    if max_run && d.lost_pct > g.max_lost_pct {
        return Some(format!(
            "a core lost {:.0}% of its clock ticks to the hypervisor (limit {:.0}%)",
            d.lost_pct, g.max_lost_pct
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(wait_s: f64) -> GuardSettings {
        GuardSettings {
            quiet_pct: 5.0,
            quiet_wait_s: wait_s,
            max_foreign_pct: 10.0,
            max_lost_pct: 5.0,
            retries: 2,
        }
    }

    #[test]
    fn waits_until_every_core_is_quiet() {
        let mut looks = vec![vec![50.0, 1.0], vec![2.0, 30.0], vec![1.0, 4.0]].into_iter();
        let q = wait_with(&[0, 1], &settings(600.0), &mut |_| looks.next().unwrap())
            .expect("the guard is on");
        assert!(q.quiet);
        assert_eq!(q.waited_s, 2.0);
        assert_eq!(q.busiest, (1, 4.0));
    }

    #[test]
    fn gives_up_after_the_wait_and_says_so() {
        let mut n = 0;
        let q = wait_with(&[0, 1], &settings(3.0), &mut |_| {
            n += 1;
            vec![10.0, 80.0]
        })
        .expect("the guard is on");
        assert!(!q.quiet);
        assert_eq!(n, 3, "three one-second looks fit in three seconds");
        assert_eq!(q.busiest, (1, 80.0));
        assert!(wait_quiet(&[0], &settings(0.0)).is_none(), "0 s: off");
    }

    #[test]
    fn other_work_and_lost_ticks_disturb_a_run() {
        let g = settings(600.0);
        let clean = judge(Counters {
            wall_s: 10.0,
            cores_busy_s: 15.0,
            own_s: 14.5,
            most_lost_s: 0.2,
        });
        assert!((clean.foreign_pct - 5.0).abs() < 1e-9);
        assert_eq!(verdict(clean, &g, true), None);
        let busy = judge(Counters {
            wall_s: 10.0,
            cores_busy_s: 15.0,
            own_s: 12.0,
            most_lost_s: 0.0,
        });
        assert!(verdict(busy, &g, false).unwrap().contains("30%"));
        let stolen = judge(Counters {
            wall_s: 10.0,
            cores_busy_s: 15.0,
            own_s: 15.0,
            most_lost_s: 1.0,
        });
        assert!(verdict(stolen, &g, true).unwrap().contains("10%"));
        assert_eq!(
            verdict(stolen, &g, false),
            None,
            "open loop: ticks not judged"
        );
        // Charged more than the cores show (coarse ticks): nothing foreign.
        let over = judge(Counters {
            wall_s: 1.0,
            cores_busy_s: 1.0,
            own_s: 1.2,
            most_lost_s: -0.1,
        });
        assert_eq!(over, Disturbance::default());
    }
}
