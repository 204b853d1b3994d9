//! System calls per request (`[syscalls]`, `compare --syscalls`): how
//! often each proxy enters the kernel for the work it does.
//!
//! `perf stat` counts the `raw_syscalls:sys_enter` tracepoint (every
//! system call, whatever its number) and one `syscalls:sys_enter_<name>`
//! tracepoint per call in [`NAMED`] (for the breakdown), on every thread of
//! every process of the system (`-p <pids>`: perf attaches to the threads
//! each process has when it starts). It counts, never samples: each call
//! adds one to a counter in the kernel. perf runs the load command as its
//! workload, so the count covers exactly the load run, warm-up included, as
//! the CPU figures do, and is divided by the same requests (bytes in TCP
//! mode).
//!
//! Counting is not free: while any system-call tracepoint is enabled,
//! every task on the machine enters and leaves the kernel through the
//! slower, traced path. So the counted runs are a round of their own after
//! the measured ones; each records its CPU figure too, which the report
//! sets beside the measured one (what the counting cost).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// Names the `perf` program to run instead of the one in `PATH`.
pub const PERF_ENV: &str = "RINGWAY_BENCH_PERF";

/// The tracepoint every system call passes, whatever its number.
pub const TOTAL_EVENT: &str = "raw_syscalls:sys_enter";

/// The system calls counted by name, for the breakdown: those a proxy's
/// data path makes on either reactor (ring entries, epoll waits and
/// registrations, socket reads and writes, accepts, connects and closes,
/// splices), and the usual others (locks, timers, memory). Every other call
/// is in the report's "other" (the total minus these). Each tracepoint
/// costs perf some 50 ms to set up, before the load starts, so the list
/// stays short.
pub const NAMED: [&str; 44] = [
    "io_uring_enter",
    "io_uring_register",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "read",
    "write",
    "readv",
    "writev",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "recvmmsg",
    "sendmmsg",
    "accept",
    "accept4",
    "connect",
    "close",
    "shutdown",
    "splice",
    "sendfile64",
    "getsockopt",
    "setsockopt",
    "socket",
    "ioctl",
    "fcntl",
    "futex",
    "sched_yield",
    "clock_nanosleep",
    "nanosleep",
    "timerfd_settime",
    "timer_settime",
    "clock_gettime",
    "gettimeofday",
    "getpid",
    "getsockname",
    "getpeername",
    "rt_sigprocmask",
    "openat",
    "mmap",
    "munmap",
    "madvise",
];

/// `perf`, and the tracepoints it can count here.
#[derive(Debug, Clone)]
pub struct Counter {
    perf: PathBuf,
    /// Of [`NAMED`], the calls this kernel has a tracepoint for.
    named: Vec<&'static str>,
}

impl Counter {
    /// Finds `perf` (`$RINGWAY_BENCH_PERF`, else in `PATH`) and tries the
    /// tracepoints on a short command; `Err` says why system calls cannot
    /// be counted here, for the report.
    pub fn find() -> Result<Counter, String> {
        let perf = std::env::var_os(PERF_ENV).map_or_else(|| PathBuf::from("perf"), PathBuf::from);
        Self::find_program(perf)
    }

    /// As [`Counter::find`], with `perf` at `perf`.
    pub fn find_program(perf: PathBuf) -> Result<Counter, String> {
        let runs = Command::new(&perf)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
        if !runs {
            return Err(format!(
                "`{}` does not run (Debian: package linux-perf, which \
                 scripts/install-peers.sh installs)",
                perf.display()
            ));
        }
        let mut counter = Counter {
            perf,
            named: NAMED.to_vec(),
        };
        if counter.try_events(&counter.events()).is_ok() {
            return Ok(counter);
        }
        // Without the breakdown the total still says most; a kernel may
        // lack some of the named calls (an architecture without
        // `epoll_wait`, say): keep those it has.
        counter.try_events(&[TOTAL_EVENT.to_owned()]).map_err(|e| {
            format!("perf cannot count the system-call tracepoint {TOTAL_EVENT} here: {e}")
        })?;
        counter.named = NAMED
            .into_iter()
            .filter(|n| counter.try_events(&[named_event(n)]).is_ok())
            .collect();
        Ok(counter)
    }

    /// The calls counted by name.
    pub fn named(&self) -> &[&'static str] {
        &self.named
    }

    /// Every event counted: the total first.
    fn events(&self) -> Vec<String> {
        std::iter::once(TOTAL_EVENT.to_owned())
            .chain(self.named.iter().map(|n| named_event(n)))
            .collect()
    }

    /// Counts `events` over `true`; `Err` with what perf said.
    fn try_events(&self, events: &[String]) -> Result<(), String> {
        let out = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let result = Command::new(&self.perf)
            .args(["stat", "-x,", "-e", &events.join(",")])
            .arg("-o")
            .arg(out.path())
            .args(["--", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run perf stat: {e}"))?;
        if !result.status.success() {
            return Err(String::from_utf8_lossy(&result.stderr).trim().to_owned());
        }
        let text = fs::read_to_string(out.path()).map_err(|e| e.to_string())?;
        parse(&text).map(|_| ())
    }

    /// `perf stat` counting the system calls of `pids` (every thread of
    /// each) while it runs `load` as its workload, the counts going to
    /// `out`. The workload's standard output and exit status pass through
    /// perf unchanged.
    pub fn wrap(&self, load: &Command, pids: &[u32], out: &Path) -> Command {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut cmd = Command::new(&self.perf);
        cmd.args(["stat", "-x,", "-e", &self.events().join(","), "-p"])
            .arg(pids.join(","))
            .arg("-o")
            .arg(out)
            .arg("--")
            .arg(load.get_program())
            .args(load.get_args());
        cmd
    }
}

/// `syscalls:sys_enter_<name>`.
fn named_event(name: &str) -> String {
    format!("syscalls:sys_enter_{name}")
}

/// What one `perf stat` counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Every system call.
    pub total: u64,
    /// By name, for the calls of [`NAMED`] counted.
    pub named: Vec<(String, u64)>,
}

/// Reads `perf stat -x,` output: `count,unit,event,run time,share,...`
/// lines. The total must be there and counted; a named call perf could
/// not count is left out.
pub fn parse(text: &str) -> Result<Counts, String> {
    let mut total = None;
    let mut named = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(count), Some(event)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let count = count.trim().parse::<u64>().ok();
        if *event == TOTAL_EVENT {
            total = Some(count.ok_or_else(|| format!("{TOTAL_EVENT} was not counted: {line}"))?);
        } else if let (Some(name), Some(n)) = (event.strip_prefix("syscalls:sys_enter_"), count) {
            named.push((name.to_owned(), n));
        }
    }
    let total = total.ok_or_else(|| format!("no {TOTAL_EVENT} count in perf's output"))?;
    Ok(Counts { total, named })
}

/// The system calls of one system in one counted run.
#[derive(Debug, Clone, Serialize)]
pub struct SyscallCount {
    /// The system.
    pub system: String,
    /// Offered rate, or `None` for max throughput.
    pub offered: Option<f64>,
    /// The raw `load --json` file, relative to the results directory.
    pub raw: String,
    /// perf's output, relative to the results directory.
    pub perf: String,
    /// Requests written during the run, warm-up included.
    pub sent: u64,
    /// Bytes written during the run, warm-up included (TCP mode).
    pub bytes_total: u64,
    /// Every system call of the system's processes during the run.
    pub syscalls: Option<u64>,
    /// Per request (HTTP).
    pub per_request: Option<f64>,
    /// Per GB carried (TCP).
    pub per_gb: Option<f64>,
    /// The most frequent named calls, most frequent first, with their
    /// count (only the ones counted at least once).
    pub top: Vec<(String, u64)>,
    /// Calls not among the named ones.
    pub other: Option<u64>,
    /// The system's CPU per request (µs; per GB in TCP mode, s) in this
    /// run, while counted: beside the measured figure, what counting cost.
    pub cpu_while_counted: Option<f64>,
    /// Why the count is missing, if it is.
    pub problem: Option<String>,
}

impl SyscallCount {
    /// The count of `system`'s run at `offered` (`None`: max throughput),
    /// whose load output is `raw` and perf's `perf`, before anything is
    /// counted.
    pub fn new(system: &str, offered: Option<f64>, raw: String, perf: String) -> Self {
        Self {
            system: system.to_owned(),
            offered,
            raw,
            perf,
            sent: 0,
            bytes_total: 0,
            syscalls: None,
            per_request: None,
            per_gb: None,
            top: Vec::new(),
            other: None,
            cpu_while_counted: None,
            problem: None,
        }
    }

    /// Fills the figures from what perf counted over `sent` requests
    /// (HTTP) or `bytes_total` bytes (TCP); `top` calls are named.
    pub fn fill(&mut self, counts: &Counts, top: usize, tcp: bool) {
        let total = counts.total;
        self.syscalls = Some(total);
        self.per_request = self.share(total, false).filter(|_| !tcp);
        self.per_gb = self.share(total, true).filter(|_| tcp);
        let mut named: Vec<(String, u64)> = counts
            .named
            .iter()
            .filter(|(_, n)| *n > 0)
            .cloned()
            .collect();
        named.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let counted: u64 = counts.named.iter().map(|(_, n)| n).sum();
        self.other = Some(total.saturating_sub(counted));
        named.truncate(top);
        self.top = named;
    }

    /// Per request (HTTP) or per GB (TCP).
    pub fn per_unit(&self, tcp: bool) -> Option<f64> {
        if tcp {
            self.per_gb
        } else {
            self.per_request
        }
    }

    /// `n` calls per request (per GB), as [`SyscallCount::per_unit`].
    pub fn share(&self, n: u64, tcp: bool) -> Option<f64> {
        if tcp {
            (self.bytes_total > 0).then(|| n as f64 / (self.bytes_total as f64 / 1e9))
        } else {
            (self.sent > 0).then(|| n as f64 / self.sent as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `perf stat -x, -o FILE` wrote on a 6.1 perf: a header, the
    /// counted events, one it could not count.
    const OUTPUT: &str = "# started on Mon Dec  7 09:05:23 2026\n\n\
        182340,,raw_syscalls:sys_enter,2975663,100.00,,\n\
        90000,,syscalls:sys_enter_io_uring_enter,2975663,100.00,,\n\
        0,,syscalls:sys_enter_epoll_wait,2975663,100.00,,\n\
        2300,,syscalls:sys_enter_futex,2975663,100.00,,\n\
        90010,,syscalls:sys_enter_write,2975663,100.00,,\n\
        <not supported>,,syscalls:sys_enter_splice,0,100.00,,\n";

    #[test]
    fn reads_the_total_and_the_named_counts() {
        let c = parse(OUTPUT).unwrap();
        assert_eq!(c.total, 182_340);
        assert_eq!(
            c.named,
            vec![
                ("io_uring_enter".to_owned(), 90_000),
                ("epoll_wait".to_owned(), 0),
                ("futex".to_owned(), 2_300),
                ("write".to_owned(), 90_010),
            ]
        );
    }

    #[test]
    fn a_total_perf_could_not_count_is_an_error() {
        let text = "<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n";
        let e = parse(text).unwrap_err();
        assert!(e.contains("was not counted"), "{e}");
        let e = parse("# started on ...\n").unwrap_err();
        assert!(e.contains("no raw_syscalls:sys_enter count"), "{e}");
    }

    #[test]
    fn divides_by_requests_or_gigabytes_and_names_the_most_frequent() {
        let counts = parse(OUTPUT).unwrap();
        let mut http = SyscallCount {
            sent: 90_000,
            // The requests' bytes: not the figure of an HTTP run.
            bytes_total: 5_000_000,
            ..SyscallCount::new("ringway", None, String::new(), String::new())
        };
        http.fill(&counts, 2, false);
        assert_eq!(http.syscalls, Some(182_340));
        assert_eq!(http.per_request, Some(182_340.0 / 90_000.0));
        assert_eq!(http.per_gb, None);
        // Most frequent first; calls never made are not named.
        assert_eq!(
            http.top,
            vec![
                ("write".to_owned(), 90_010),
                ("io_uring_enter".to_owned(), 90_000)
            ]
        );
        assert_eq!(http.other, Some(182_340 - 90_000 - 2_300 - 90_010));
        assert_eq!(http.share(90_010, false), Some(90_010.0 / 90_000.0));

        let mut tcp = SyscallCount {
            // Writes, not requests: not the figure of a TCP run.
            sent: 30_000,
            bytes_total: 2_000_000_000,
            ..http.clone()
        };
        tcp.fill(&counts, 5, true);
        assert_eq!(tcp.per_request, None);
        assert_eq!(tcp.per_gb, Some(182_340.0 / 2.0));
        assert_eq!(tcp.per_unit(true), Some(91_170.0));
        assert_eq!(tcp.top.len(), 3);
    }

    #[test]
    fn a_missing_perf_says_what_to_install() {
        let e = Counter::find_program(PathBuf::from("/nonexistent/perf")).unwrap_err();
        assert!(
            e.contains("/nonexistent/perf") && e.contains("linux-perf"),
            "{e}"
        );
    }

    #[test]
    fn wraps_the_load_command_as_perf_stat_s_workload() {
        let counter = Counter {
            perf: PathBuf::from("perf"),
            named: vec!["read", "write"],
        };
        let mut load = Command::new("/bin/ringway-bench");
        load.args(["load", "--json", "--rate", "500"]);
        let cmd = counter.wrap(&load, &[10, 12], Path::new("/r/perf.txt"));
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(cmd.get_program(), "perf");
        assert_eq!(
            args,
            [
                "stat",
                "-x,",
                "-e",
                "raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write",
                "-p",
                "10,12",
                "-o",
                "/r/perf.txt",
                "--",
                "/bin/ringway-bench",
                "load",
                "--json",
                "--rate",
                "500",
            ]
        );
    }
}
