//! The profile run of a system (`--profile`): its max-throughput run once
//! more in the last round, unmeasured, under `perf`.

use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use super::{Ctx, Entry};
use crate::compare::churn::ChurnBook;
use crate::compare::guard;
use crate::compare::measure::Runner;
use crate::compare::profile::{self, Profile};
use crate::compare::system::Running;

/// The profile of `entry`: its max-throughput run once more, unmeasured,
/// with `perf` sampling the proxy core (and the table churning, for a
/// churning system). Returns it and the requests the run sent.
pub(super) fn profile_run(
    ctx: &Ctx<'_>,
    runner: &Runner<'_>,
    system: &Running,
    entry: &Entry,
    perf: &Path,
    mut book: Option<&mut ChurnBook>,
) -> (Profile, u64) {
    let sys_dir = ctx.dir.join("systems").join(&entry.name);
    let rel = |p: &Path| p.strip_prefix(&ctx.dir).unwrap_or(p).display().to_string();
    let data = sys_dir.join("perf.data");
    let text = sys_dir.join("perf.txt");
    let raw = ctx
        .dir
        .join("raw")
        .join(format!("profile-{}.json", entry.name));
    let mut profile = Profile {
        system: entry.name.clone(),
        data: rel(&data),
        text: rel(&text),
        threads: Vec::new(),
        objects: Vec::new(),
        symbols: Vec::new(),
        problem: None,
    };
    eprintln!("compare: profiling {} (perf, max throughput)", entry.name);
    let _ = guard::wait_quiet(&ctx.run_cores, &ctx.opts.guard);
    let out = match std::fs::File::create(&raw) {
        Ok(f) => f,
        Err(e) => {
            profile.problem = Some(format!("cannot create {}: {e}", raw.display()));
            return (profile, 0);
        }
    };
    let mut cmd = runner.load_command(system, None);
    let churner = book.as_mut().map(|b| b.start());
    let child = cmd.stdout(out).stderr(Stdio::null()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if let (Some(b), Some(c)) = (book, churner) {
                b.resume(c);
            }
            profile.problem = Some(format!("cannot start the load: {e}"));
            return (profile, 0);
        }
    };
    // The connections are open and the warm-up is over before perf starts.
    thread::sleep(ctx.s.load.warmup + Duration::from_millis(100));
    let length = ctx.s.load.duration.mul_f64(profile::SHARE);
    let recorded = profile::record(
        perf,
        ctx.s.cores.proxy,
        length,
        &data,
        &sys_dir.join("perf.log"),
    );
    let _ = child.wait();
    if let (Some(b), Some(c)) = (book, churner) {
        b.resume(c);
    }
    let sent = super::requests_sent(&raw);
    match recorded.and_then(|()| profile::summarize(perf, &data, &text)) {
        Ok([threads, objects, symbols]) => {
            profile.threads = threads;
            profile.objects = objects;
            profile.symbols = symbols;
        }
        Err(e) => profile.problem = Some(e),
    }
    (profile, sent)
}
