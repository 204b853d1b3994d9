//! `## System calls`: each system's system calls per request (per GB in
//! TCP mode), counted by `perf stat` in a round of their own, with the most
//! frequent calls and what counting cost.

use std::fmt::Write as _;

use super::{runs_of, show, spread};
use crate::compare::results::Results;
use crate::compare::syscalls::SyscallCount;

/// The section, when the scenario counted system calls (or asked to and
/// could not: then every system's figure is n/a, with why).
pub fn section(md: &mut String, r: &Results) {
    let Some(setup) = &r.setup.syscalls else {
        return;
    };
    let tcp = r.mode == "tcp";
    let (unit, cpu_unit, digits) = if tcp {
        ("per GB", "CPU s/GB", 0)
    } else {
        ("per request", "CPU µs/req", 2)
    };
    let _ = writeln!(md, "## System calls\n");
    if let Some(why) = &setup.unavailable {
        let _ = writeln!(
            md,
            "Not counted: {why}.\n\n| system | system calls {unit} |\n|---|---|"
        );
        for sys in r.systems.iter().filter(|s| *s != "direct") {
            let _ = writeln!(md, "| {sys} | n/a |");
        }
        md.push('\n');
        return;
    }
    let _ = writeln!(
        md,
        "Every system call of every thread of the system's processes (`perf stat -e raw_syscalls:sys_enter -p <pids>`, counting, not sampling), over a load run of {:.1} s after the warm-up, divided by its requests (bytes in TCP mode; warm-up included on both sides, as for the CPU figures). The counted runs are a round of their own after the measured ones, each system started fresh: while a system-call tracepoint is enabled every system call on the machine takes the slower traced path, so the measured figures never carry it. {cpu_unit} while counted is the counted run's own figure, beside the median of the measured runs: the difference is what counting cost. The top calls are the most frequent of the {} counted by name (`syscalls:sys_enter_<name>`); other is the total minus those.\n",
        setup.duration_s,
        setup.counted.len()
    );
    let mut offered: Vec<Option<f64>> = r.syscalls.iter().map(|c| c.offered).collect();
    offered.sort_by(|a, b| match (a, b) {
        // Max throughput last, as in the other tables.
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => x.total_cmp(y),
    });
    offered.dedup();
    for at in offered {
        let title = at.map_or_else(
            || "max throughput (closed loop)".to_owned(),
            |r| format!("offered {r:.0} req/s"),
        );
        let _ = writeln!(
            md,
            "### {title}\n\n| system | system calls {unit} | vs ringway | top calls {unit} | other {unit} | {cpu_unit} while counted | {cpu_unit} measured |\n|---|---|---|---|---|---|---|"
        );
        let counts: Vec<&SyscallCount> = r.syscalls.iter().filter(|c| c.offered == at).collect();
        let ringway = counts
            .iter()
            .find(|c| c.system == "ringway")
            .and_then(|c| c.per_unit(tcp));
        for c in &counts {
            let measured = spread(&runs_of(r, &c.system, at), |m| m.cost(tcp));
            let fmt =
                |x: Option<f64>, d: usize| x.map_or_else(|| "–".into(), |v| format!("{v:.d$}"));
            let Some(per) = c.per_unit(tcp) else {
                let why = c.problem.as_deref().unwrap_or("nothing carried");
                let _ = writeln!(
                    md,
                    "| {} | n/a ({}) | – | – | – | {} | {} |",
                    c.system,
                    why.replace('|', "/").replace('\n', " "),
                    fmt(c.cpu_while_counted, if tcp { 3 } else { 2 }),
                    show(measured, if tcp { 3 } else { 2 }),
                );
                continue;
            };
            let top = c
                .top
                .iter()
                .map(|(name, n)| format!("{name} {}", fmt(c.share(*n, tcp), digits)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.system,
                format_args!("{per:.digits$}"),
                ringway
                    .filter(|w| *w > 0.0)
                    .map_or_else(|| "–".into(), |w| format!("{:.2}x", per / w)),
                if top.is_empty() { "–".into() } else { top },
                fmt(c.other.and_then(|n| c.share(n, tcp)), digits),
                fmt(c.cpu_while_counted, if tcp { 3 } else { 2 }),
                show(measured, if tcp { 3 } else { 2 }),
            );
        }
        md.push('\n');
    }
}
