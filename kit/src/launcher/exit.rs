//! How ringway ended: its exit status, its stderr, and the per-worker exit
//! report it printed.

use std::collections::BTreeMap;
use std::process::ExitStatus;

/// How the proxy ended: its exit status, its stderr and the per-worker
/// report it printed.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// The `ringway: worker N ...` lines, in order.
    pub workers: Vec<WorkerLine>,
}

/// One worker's line of the exit report: `worker N key=value ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLine {
    /// Worker index.
    pub index: usize,
    /// The `key=value` pairs as written.
    pub fields: BTreeMap<String, String>,
}

impl Exit {
    pub(crate) fn new(status: ExitStatus, stderr: String) -> Self {
        let workers = stderr.lines().filter_map(WorkerLine::parse).collect();
        Self {
            status,
            stderr,
            workers,
        }
    }

    /// Sum over every worker of a numeric counter; panics, showing the
    /// report, if a worker line lacks it.
    pub fn total(&self, key: &str) -> u64 {
        assert!(
            !self.workers.is_empty(),
            "no worker lines in the exit report:\n{}",
            self.stderr
        );
        self.workers
            .iter()
            .map(|w| {
                w.counter(key)
                    .unwrap_or_else(|| panic!("no counter {key} in:\n{}", self.stderr))
            })
            .sum()
    }

    /// Panics, showing stderr, unless the proxy exited 0 and said `stopped`.
    pub fn assert_clean(&self) {
        assert!(
            self.status.success(),
            "ringway exited with {}; stderr:\n{}",
            self.status,
            self.stderr
        );
        assert!(
            self.stderr.lines().any(|l| l == "ringway: stopped"),
            "no `ringway: stopped` line; stderr:\n{}",
            self.stderr
        );
    }
}

impl WorkerLine {
    /// Parses `ringway: worker 0 core=0 accepted=2 ...`.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("ringway: worker ")?;
        let mut words = rest.split_whitespace();
        let index = words.next()?.parse().ok()?;
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Self { index, fields })
    }

    /// A numeric counter, if present.
    pub fn counter(&self, key: &str) -> Option<u64> {
        self.fields.get(key)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_worker_line() {
        let line = WorkerLine::parse(
            "ringway: worker 1 core=1 accepted=2 copied_bytes=0 defer_taskrun=true",
        )
        .expect("a worker line");
        assert_eq!(line.index, 1);
        assert_eq!(line.counter("accepted"), Some(2));
        assert_eq!(line.counter("copied_bytes"), Some(0));
        assert_eq!(line.counter("defer_taskrun"), None);
        assert_eq!(line.fields["defer_taskrun"], "true");
        assert_eq!(WorkerLine::parse("ringway: stopped"), None);
    }
}
