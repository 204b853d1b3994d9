//! What tests and benches read from `/proc`: CPU time of threads,
//! processes and cores, resident memory, threads and the cores they may
//! run on, and the processes of a system under test.
//!
//! The `io::Result` readers are for the benches, which report a process
//! that went away; the panicking ones ([`threads`], [`rss_bytes`],
//! [`peak_rss_bytes`]) are the tests' shorthands.

use std::fs;
use std::io;
use std::process::Command;

/// Clock ticks per second of `/proc`'s time fields, as `getconf CLK_TCK`
/// says; `(ticks, true)` when measured, `(100, false)` when `getconf` could
/// not answer (100 is what Linux uses on every common architecture).
pub fn clock_ticks() -> (u64, bool) {
    let measured = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ticks| ticks > 0);
    match measured {
        Some(ticks) => (ticks, true),
        None => (100, false),
    }
}

/// `utime + stime` of one thread of `pid`, in clock ticks.
pub fn thread_ticks(pid: u32, tid: u32) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))?;
    parse_stat_ticks(&text)
}

/// `utime + stime` of the whole process `pid` (every thread, live or
/// exited), in clock ticks.
pub fn process_ticks(pid: u32) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_ticks(&text)
}

/// The threads of `pid` and their names (`comm`), in `/proc` order.
/// A thread that exits between the listing and the read is left out.
pub fn thread_names(pid: u32) -> io::Result<Vec<(u32, String)>> {
    let mut threads = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Ok(comm) = fs::read_to_string(entry.path().join("comm")) {
            threads.push((tid, comm.trim_end().to_owned()));
        }
    }
    Ok(threads)
}

/// The id of the thread of `pid` whose name (`comm`) is `name`, if any.
pub fn find_thread(pid: u32, name: &str) -> io::Result<Option<u32>> {
    Ok(thread_names(pid)?
        .into_iter()
        .find_map(|(tid, comm)| (comm == name).then_some(tid)))
}

/// One thread of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Thread id.
    pub tid: u32,
    /// Its name (`comm`).
    pub name: String,
    /// The cores it may run on, as the kernel writes them (`0-1`, `1`).
    pub cpus_allowed: String,
}

/// The threads of process `pid`, by thread id, with the cores each may run
/// on; panics if the process is gone.
pub fn threads(pid: u32) -> Vec<ThreadInfo> {
    let listed = thread_names(pid).unwrap_or_else(|e| panic!("cannot list /proc/{pid}/task: {e}"));
    let mut threads: Vec<ThreadInfo> = listed
        .into_iter()
        .filter_map(|(tid, name)| {
            // A thread may end between the listing and the read.
            let status = fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
            Some(ThreadInfo {
                tid,
                name,
                cpus_allowed: status_field(&status, "Cpus_allowed_list")?.to_owned(),
            })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    threads
}

/// Number of cores the kernel reports online.
pub fn online_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where one core's time went, in clock ticks since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreTimes {
    /// user + nice + system + irq + softirq.
    pub busy: u64,
    /// busy + idle + iowait + steal.
    pub total: u64,
}

impl CoreTimes {
    /// Busy share of the time between `earlier` and `self`, in percent.
    pub fn busy_pct_since(self, earlier: CoreTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        100.0 * self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

/// The times of core `core` from `/proc/stat`.
pub fn core_times(core: usize) -> io::Result<CoreTimes> {
    let text = fs::read_to_string("/proc/stat")?;
    parse_core_times(&text, core).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("/proc/stat has no line for cpu{core}"),
        )
    })
}

/// `utime + stime` from the text of a `/proc/.../stat` file.
fn parse_stat_ticks(text: &str) -> io::Result<u64> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc stat format");
    // The name (field 2) is in parentheses and may hold spaces or ')':
    // fields are counted from the last ')'.
    let rest = &text[text.rfind(')').ok_or_else(bad)? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields
        .get(11)
        .and_then(|f| f.parse().ok())
        .ok_or_else(bad)?;
    let stime: u64 = fields
        .get(12)
        .and_then(|f| f.parse().ok())
        .ok_or_else(bad)?;
    Ok(utime + stime)
}

/// The `cpuN` line of `/proc/stat`, summed into busy and total ticks.
fn parse_core_times(text: &str, core: usize) -> Option<CoreTimes> {
    let label = format!("cpu{core}");
    let line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some(label.as_str()))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq;
    Some(CoreTimes {
        busy,
        total: busy + idle + iowait + steal,
    })
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_kib(&text, field).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("/proc/{pid}/status has no {field} (has the process exited?)"),
        )
    })
}

/// Resident memory of process `pid`, in bytes (`VmRSS`); panics if the
/// process is gone.
pub fn rss_bytes(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

/// Peak resident memory of process `pid`, in bytes (`VmHWM`); panics if
/// the process is gone.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM")
}

fn status_bytes(pid: u32, field: &str) -> u64 {
    status_kib(pid, field).unwrap_or_else(|e| panic!("cannot read {field} of {pid}: {e}")) * 1024
}

/// `pid` and every live process descended from it, parents before
/// children. Empty when `pid` is gone.
pub fn process_tree(pid: u32) -> Vec<u32> {
    if !is_running(pid) {
        return Vec::new();
    }
    let mut tree = vec![pid];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        next += 1;
        for child in children(parent) {
            // A pid seen twice would mean a cycle, which /proc cannot show,
            // but a reused pid between two reads could.
            if !tree.contains(&child) && is_running(child) {
                tree.push(child);
            }
        }
    }
    tree
}

/// Whether `pid` exists and is neither a zombie nor dead: a process that
/// exited but was not reaped yet is gone for the bench's purposes.
pub fn is_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => !matches!(parse_state(&text), Some('Z' | 'X' | 'x') | None),
        Err(_) => false,
    }
}

/// The children of `pid`, from `/proc/<pid>/task/<tid>/children` of each
/// of its threads (a child belongs to the thread that forked it). Empty
/// when the kernel lacks `CONFIG_PROC_CHILDREN` or the process is gone.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for task in tasks.flatten() {
        // A thread may exit between the listing and the read.
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            found.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    found
}

/// The state letter (field 3) of a `/proc/<pid>/stat` text.
fn parse_state(text: &str) -> Option<char> {
    // The name (field 2) is in parentheses and may hold spaces or ')'.
    text[text.rfind(')')? + 1..].trim_start().chars().next()
}

/// The value of `field` (`VmRSS: 1234 kB`) in a `/proc/<pid>/status` text.
fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    status_field(text, field)?
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// The value of `key` in a `/proc/.../status` text, trimmed.
fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == key).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_past_a_tricky_name() {
        let line = "4242 (ringway-w0) x) S 1 4242 4242 0 -1 4194368 100 0 0 0 \
                    250 75 0 0 20 0 3 0 123 0 0";
        assert_eq!(parse_stat_ticks(line).expect("a valid line"), 325);
    }

    #[test]
    fn refuses_a_truncated_stat() {
        assert!(parse_stat_ticks("1 (x) S 1 2").is_err());
    }

    #[test]
    fn sums_one_core_line() {
        let text = "cpu  10 0 10 100 0 0 0 0 0 0\n\
                    cpu0 1 2 3 40 5 6 7 8 0 0\n\
                    cpu1 100 0 50 10 0 0 20 0 0 0\n";
        let c1 = parse_core_times(text, 1).expect("cpu1 is there");
        assert_eq!(c1.busy, 170);
        assert_eq!(c1.total, 180);
        let c0 = parse_core_times(text, 0).expect("cpu0 is there");
        assert_eq!(c0.busy, 1 + 2 + 3 + 6 + 7);
        assert!(parse_core_times(text, 2).is_none());
        let half = CoreTimes {
            busy: 50,
            total: 100,
        }
        .busy_pct_since(CoreTimes::default());
        assert!((half - 50.0).abs() < 1e-9);
    }

    #[test]
    fn reads_memory_fields() {
        let text = "Name:\tnginx\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\nThreads:\t1\n";
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(4096));
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(5120));
        assert_eq!(parse_status_kib(text, "Threads"), None);
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
        assert_eq!(status_field(text, "Name"), Some("nginx"));
    }

    #[test]
    fn reads_the_state_past_a_tricky_name() {
        assert_eq!(parse_state("42 (a) Z) Z 1 2"), Some('Z'));
        assert_eq!(parse_state("42 (nginx) S 1 2"), Some('S'));
        assert_eq!(parse_state("garbage"), None);
    }

    #[test]
    fn sees_this_process_and_its_child() {
        let me = std::process::id();
        assert!(is_running(me));
        assert!(status_kib(me, "VmRSS").expect("own status") > 0);
        assert!(peak_rss_bytes(me) >= rss_bytes(me));
        let mine = threads(me);
        assert!(mine.iter().any(|t| t.tid == me), "{mine:?}");
        assert!(mine.iter().all(|t| !t.cpus_allowed.is_empty()), "{mine:?}");
        assert!(online_cores() >= 1);
        let (tid, name) = thread_names(me)
            .expect("own threads")
            .into_iter()
            .find(|(tid, _)| *tid == me)
            .expect("the main thread");
        assert_eq!(find_thread(me, &name).expect("own threads"), Some(tid));
        assert!(thread_ticks(me, tid).is_ok());
        assert!(clock_ticks().0 > 0);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let tree = process_tree(me);
        assert_eq!(tree.first(), Some(&me));
        assert!(tree.contains(&child.id()), "{tree:?}");
        child.kill().expect("kill sleep");
        child.wait().expect("reap sleep");
        assert!(!is_running(child.id()));
    }
}
