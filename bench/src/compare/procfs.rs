//! What `compare` reads from `/proc`: the processes of a system under test,
//! their CPU time and memory, and how busy a core was.
//!
//! CPU time of a process and of a core come from [`crate::churn::procstat`],
//! which the churn bench reads the same way.

use std::fs;
use std::io;

use crate::churn::procstat;

/// Clock ticks per second of `/proc`'s time fields (`getconf CLK_TCK`, or
/// 100, the value of every common Linux architecture, when `getconf` cannot
/// answer).
pub fn clock_ticks() -> u64 {
    procstat::clock_ticks().0
}

/// `utime + stime` of process `pid` (all its threads), in clock ticks.
pub fn process_ticks(pid: u32) -> io::Result<u64> {
    procstat::process_ticks(pid)
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
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name != field {
            return None;
        }
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_fields() {
        let text = "Name:\tnginx\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\nThreads:\t1\n";
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(4096));
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(5120));
        assert_eq!(parse_status_kib(text, "Threads"), None);
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
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
        assert!(clock_ticks() > 0);
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
