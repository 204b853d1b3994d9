//! Looking at a running proxy from outside: its threads, their cores, its
//! memory, all through `/proc`.

use std::fs;

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

/// The threads of process `pid`.
pub fn threads(pid: u32) -> Vec<ThreadInfo> {
    let dir = format!("/proc/{pid}/task");
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {dir}: {e}"));
    let mut threads: Vec<ThreadInfo> = entries
        .filter_map(|entry| {
            let tid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            // A thread may end between the listing and the reads.
            let name = fs::read_to_string(format!("{dir}/{tid}/comm")).ok()?;
            let status = fs::read_to_string(format!("{dir}/{tid}/status")).ok()?;
            Some(ThreadInfo {
                tid,
                name: name.trim_end().to_owned(),
                cpus_allowed: status_field(&status, "Cpus_allowed_list")?.to_owned(),
            })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    threads
}

/// Resident memory of process `pid`, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let field = status_field(&status, "VmRSS").unwrap_or_else(|| panic!("no VmRSS in {path}"));
    let kib: u64 = field
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad VmRSS {field:?}: {e}"));
    kib * 1024
}

/// Number of cores the kernel reports online.
pub fn online_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}
