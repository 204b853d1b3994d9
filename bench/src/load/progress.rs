//! The live progress line of a load run: elapsed time, a bar, the rate and
//! the p99 of the last quarter second, the error count.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::record::new_histogram;
use super::thread::Progress;

/// Width of the bar in characters.
const BAR: usize = 24;

/// When to draw the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Show {
    /// When stderr is a terminal.
    Auto,
    /// Always (one line per update when stderr is not a terminal).
    Always,
    /// Never.
    Never,
}

/// Accumulates thread reports and draws the line on stderr.
#[derive(Debug)]
pub struct Line {
    draw: bool,
    terminal: bool,
    started: Instant,
    total: Duration,
    last_draw: Instant,
    last_ok: u64,
    totals: Vec<(u64, u64, u64)>,
    interval: Histogram<u64>,
    drawn: bool,
}

impl Line {
    /// A line for `threads` threads over a run of `total` (warm-up included).
    pub fn new(show: Show, threads: usize, total: Duration) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let now = Instant::now();
        Self {
            draw: match show {
                Show::Auto => terminal,
                Show::Always => true,
                Show::Never => false,
            },
            terminal,
            started: now,
            total,
            last_draw: now,
            last_ok: 0,
            totals: vec![(0, 0, 0); threads],
            interval: new_histogram(),
            drawn: false,
        }
    }

    /// Takes a report from thread `t`.
    pub fn add(&mut self, t: usize, p: &Progress) {
        if let Some(slot) = self.totals.get_mut(t) {
            *slot = (p.ok, p.errors, p.bytes_sent);
        }
        // Same bounds: adding cannot fail.
        let _ = self.interval.add(&p.interval);
    }

    /// Draws the line if a quarter second has passed since the last one.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let since = now.duration_since(self.last_draw);
        if !self.draw || since < Duration::from_millis(250) {
            return;
        }
        let ok: u64 = self.totals.iter().map(|t| t.0).sum();
        let errors: u64 = self.totals.iter().map(|t| t.1).sum();
        let bytes: u64 = self.totals.iter().map(|t| t.2).sum();
        let rate = (ok.saturating_sub(self.last_ok)) as f64 / since.as_secs_f64();
        let p99 = if self.interval.is_empty() {
            "-".to_string()
        } else {
            fmt_us(self.interval.value_at_quantile(0.99))
        };
        let elapsed = now.duration_since(self.started);
        let frac = (elapsed.as_secs_f64() / self.total.as_secs_f64().max(1e-9)).min(1.0);
        let filled = (frac * BAR as f64) as usize;
        let bar: String = (0..BAR)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let traffic = if ok == 0 && bytes > 0 {
            format!("{:.1} MB written", bytes as f64 / 1e6)
        } else {
            format!("{rate:>9.0} req/s  p99 {p99:>8}")
        };
        let line = format!(
            "{:>6.1}/{:.1} s [{bar}] {traffic}  errors {errors}",
            elapsed.as_secs_f64(),
            self.total.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        // The progress line is a courtesy: a failed write to stderr must not
        // end the run.
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.drawn = true;
        self.last_draw = now;
        self.last_ok = ok;
        self.interval.reset();
    }

    /// Ends the line so the summary starts on its own.
    pub fn finish(&mut self) {
        if self.drawn && self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// A latency in µs as a person reads it: `850 µs`, `12.3 ms`, `1.20 s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}
