//! `--profile`: where each system's core goes, from `perf`.
//!
//! In the last round, after a system's measured max-throughput run, the
//! runner repeats that run once, unmeasured, under `perf record -e
//! cpu-clock -C <proxy core> -g` (the whole core, softirq included; a
//! guest without hardware counters only has software sampling). The
//! measured figures never carry perf's own cost. The samples are then
//! summed by thread (`comm`), by object (`dso`: the system's binary, the
//! kernel, libc) and by symbol, kept whole in `systems/<name>/perf.txt`,
//! and the first lines of each go into the report.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

/// Share of the measured window the profile records (it starts after the
/// warm-up and ends before the run does).
pub const SHARE: f64 = 0.8;
/// Shares shown per view in the report.
const SHOWN: usize = 12;
/// Entries below this share (percent) are left out of the summaries.
const PERCENT_LIMIT: &str = "0.5";

/// One system's profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The system.
    pub system: String,
    /// `perf.data`, relative to the results directory.
    pub data: String,
    /// The text summary, relative to the results directory.
    pub text: String,
    /// Share of the core's samples by thread name, percent.
    pub threads: Vec<Share>,
    /// By object (the binary, `[kernel.kallsyms]`, libc ...).
    pub objects: Vec<Share>,
    /// By object and symbol, self time.
    pub symbols: Vec<Share>,
    /// Why the profile is missing or partial, if it is.
    pub problem: Option<String>,
}

/// A share of the samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// Percent of the core's samples.
    pub pct: f64,
    /// What took them (columns joined by two spaces).
    pub what: String,
}

/// The `perf` program, or why `--profile` cannot run.
pub fn find_perf() -> Result<PathBuf, String> {
    let ok = Command::new("perf")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(PathBuf::from("perf"))
    } else {
        Err(
            "--profile needs `perf` (Debian: linux-perf; scripts/install-peers.sh installs it)"
                .into(),
        )
    }
}

/// Records `core` for `length` into `data` (perf's chatter into `log`).
pub fn record(
    perf: &Path,
    core: usize,
    length: Duration,
    data: &Path,
    log: &Path,
) -> Result<(), String> {
    let log_file =
        fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let status = Command::new(perf)
        .args(["record", "-q", "-e", "cpu-clock", "-g", "-C"])
        .arg(core.to_string())
        .arg("-o")
        .arg(data)
        .arg("--")
        .arg("sleep")
        .arg(format!("{:.3}", length.as_secs_f64()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot run perf record: {e}"))?;
    if status.success() && data.is_file() {
        Ok(())
    } else {
        let said = fs::read_to_string(log).unwrap_or_default();
        Err(format!("perf record failed ({status}): {}", said.trim()))
    }
}

/// Summarizes `data` into `text` and the shares of the report.
pub fn summarize(perf: &Path, data: &Path, text: &Path) -> Result<[Vec<Share>; 3], String> {
    let views: [(&str, &[&str]); 4] = [
        ("by thread", &["--no-children", "--sort", "comm"]),
        ("by object", &["--no-children", "--sort", "dso"]),
        (
            "by object and symbol, self time",
            &["--no-children", "--sort", "dso,sym"],
        ),
        (
            "by symbol, with callees (children)",
            &["--children", "--sort", "sym"],
        ),
    ];
    let mut whole = String::new();
    let mut shares = Vec::new();
    for (title, args) in views {
        let out = Command::new(perf)
            .args([
                "report",
                "--stdio",
                "-g",
                "none",
                "--percent-limit",
                PERCENT_LIMIT,
                "-i",
            ])
            .arg(data)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run perf report: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "perf report {title} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let report = String::from_utf8_lossy(&out.stdout);
        whole.push_str(&format!("## {title}\n\n{report}\n"));
        shares.push(parse_shares(&report));
    }
    fs::write(text, whole).map_err(|e| format!("cannot write {}: {e}", text.display()))?;
    let mut it = shares.into_iter();
    let mut next = || it.next().unwrap_or_default();
    Ok([next(), next(), next()])
}

/// The `NN.NN%  what` lines of a `perf report --stdio`, in order.
pub fn parse_shares(report: &str) -> Vec<Share> {
    report
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (pct, rest) = l.trim().split_once('%')?;
            let pct: f64 = pct.trim().parse().ok()?;
            let what = rest.split_whitespace().collect::<Vec<_>>().join("  ");
            (!what.is_empty()).then_some(Share { pct, what })
        })
        .collect()
}

/// The first [`SHOWN`] shares.
pub fn top(shares: &[Share]) -> &[Share] {
    &shares[..shares.len().min(SHOWN)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_perf_report_lines() {
        let report = "# Samples: 4K of event 'cpu-clock'\n#\n# Overhead  Shared Object  Symbol\n\
                      # ........  ...\n#\n    31.03%  ringway        [.] dataplane::routing::find\n\
                      \x20    4.72%  [kernel.kallsyms]  [k] pv_native_safe_halt\n\n\
                      # comment 3.0% ignored\n";
        let shares = parse_shares(report);
        assert_eq!(
            shares,
            vec![
                Share {
                    pct: 31.03,
                    what: "ringway  [.]  dataplane::routing::find".into()
                },
                Share {
                    pct: 4.72,
                    what: "[kernel.kallsyms]  [k]  pv_native_safe_halt".into()
                },
            ]
        );
        assert_eq!(top(&shares).len(), 2);
    }
}
