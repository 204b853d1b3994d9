//! The report as Markdown: header, summary with ratios, errors, publish
//! latency, one line per phase.

use std::fmt::Write as _;

use super::{error_breakdown, spread_of, thousands, PhaseKind, PhaseResult, RunReport, Spread};

impl RunReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let clk = self.clk_tck;
        let quiet: Vec<&PhaseResult> = self.of_kind(PhaseKind::Quiet);
        let churn: Vec<&PhaseResult> = self.of_kind(PhaseKind::Churn);
        // `write!` into a String cannot fail.
        let _ = writeln!(out, "# Routing-table churn\n");
        for (key, value) in &self.header {
            let _ = writeln!(out, "- {key}: {value}");
        }
        let _ = writeln!(
            out,
            "\n## Summary: median (min–max) over {} quiet and {} churn phases\n",
            quiet.len(),
            churn.len()
        );
        let _ = writeln!(out, "| measure | quiet | churn | churn / quiet |");
        let _ = writeln!(out, "|---|---|---|---|");
        for row in self.summary_rows() {
            let q = spread_of(&quiet, |p| (row.value)(p, clk));
            let c = spread_of(&churn, |p| (row.value)(p, clk));
            let ratio = if row.ratio {
                format!("**{:.3}x**", c.median / q.median)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                row.label,
                q.show(row.decimals),
                c.show(row.decimals),
                ratio
            );
        }
        let paired = self.paired();
        if !paired.is_empty() {
            let rps: Vec<f64> = paired.iter().map(|(q, c)| c.rps() / q.rps()).collect();
            let cpu: Vec<f64> = paired
                .iter()
                .map(|(q, c)| c.worker_us_per_request(clk) / q.worker_us_per_request(clk))
                .collect();
            let (rps, cpu) = (Spread::new(&rps), Spread::new(&cpu));
            let _ = writeln!(
                out,
                "\nPaired within each round (churn / quiet of the same round, {} rounds): \
                 throughput {}, worker CPU per request {}.",
                paired.len(),
                rps.show_with(3, "x"),
                cpu.show_with(3, "x")
            );
        }

        let errors = self.request_errors();
        let failures = self.failures();
        let _ = writeln!(out, "\n## Errors\n");
        if errors.error_total() == 0 {
            let _ = writeln!(
                out,
                "- request errors: **0** over {} requests (PASS)",
                thousands(errors.ok)
            );
        } else {
            let _ = writeln!(
                out,
                "- request errors: **FAIL: {} errors** ({}) over {} requests",
                errors.error_total(),
                error_breakdown(&errors),
                thousands(errors.ok + errors.error_total())
            );
        }
        let put_failed: u64 = self.all_phases().map(|p| p.put_failed).sum();
        let late: u64 = self.all_phases().map(|p| p.late).sum();
        let skipped: u64 = self.all_phases().map(|p| p.skipped).sum();
        let _ = writeln!(
            out,
            "- PUTs: {} applied, {} not applied{}; {} sent more than one period late, \
             {} of the schedule not sent by the end of their phase",
            thousands(self.published()),
            put_failed,
            if self.put_failures.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.put_failures.join(" | "))
            },
            late,
            skipped
        );
        if self.outside.ok + self.outside.error_total() > 0 {
            let _ = writeln!(
                out,
                "- requests outside the measured phases (warm-up, gaps): {} ok, {} errors",
                thousands(self.outside.ok),
                self.outside.error_total()
            );
        }
        if let Some(totals) = &self.ringway_totals {
            let keys = [
                "accepted",
                "connect_failures",
                "connect_timeouts",
                "no_upstream",
                "resets",
                "accept_errors",
                "idle_timeouts",
                "drain_cuts",
            ];
            let shown: Vec<String> = keys
                .iter()
                .filter_map(|k| totals.get(*k).map(|v| format!("{k} {v}")))
                .collect();
            let _ = writeln!(
                out,
                "- ringway's counters (`/stats` totals): {}",
                shown.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "- origin: {} requests echoed, {} errors",
            thousands(self.origin.0),
            self.origin.1
        );
        let _ = writeln!(
            out,
            "- ringway exit: {}",
            match &self.ringway_exit {
                Ok(code) => format!("status {code}"),
                Err(e) => e.clone(),
            }
        );
        if failures.is_empty() {
            let _ = writeln!(out, "- verdict: **PASS**");
        } else {
            let _ = writeln!(out, "- verdict: **FAIL**: {}", failures.join("; "));
        }

        let _ = writeln!(out, "\n## Publish latency\n");
        let _ = writeln!(out, "| what | count | p50 µs | p99 µs | max µs |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        match self.publish {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "| publish until the last worker acknowledged (ringway `/stats`) | {} | {} | {} | {} |",
                    p.count, p.p50, p.p99, p.max
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| publish until the last worker acknowledged | `/stats` unreadable | | | |"
                );
            }
        }
        let h = &self.put_rtt;
        let _ = writeln!(
            out,
            "| PUT round trip seen by the churn client | {} | {} | {} | {} |",
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max()
        );
        if let Some(p) = self.publish {
            if p.count != self.published() {
                let _ = writeln!(
                    out,
                    "\nNote: ringway's histogram holds {} publications, but {} tables were \
                     published and acknowledged (every PUT answered `applied`): its \
                     percentiles cover only those it recorded.",
                    p.count,
                    self.published()
                );
            }
        }
        let _ = writeln!(
            out,
            "\nGenerations: {} before the first phase, {} at the end; {} tables published.",
            self.generations.0,
            self.generations
                .1
                .map_or_else(|| "unknown".to_owned(), |g| g.to_string()),
            thousands(self.published())
        );

        let _ = writeln!(out, "\n## Per phase\n");
        self.phase_table(&mut out, &self.phases);
        if !self.discarded.is_empty() {
            let _ = writeln!(
                out,
                "\nDiscarded and run again (other work above {}% of a core, or more than \
                 {}% of a core's ticks lost):\n",
                self.max_disturbance, self.max_disturbance
            );
            self.phase_table(&mut out, &self.discarded);
        }
        if self.phases.iter().any(|p| p.disturbed) {
            let _ = writeln!(
                out,
                "\nPhases marked `disturbed` stayed above the threshold after every retry; \
                 their figures are kept as measured."
            );
        }
        let _ = writeln!(out, "\nCommand: `{}`", self.command);
        out
    }

    /// One line per phase of `phases`.
    fn phase_table(&self, out: &mut String, phases: &[PhaseResult]) {
        let clk = self.clk_tck;
        let ncores = phases.first().map_or(0, |p| p.cores.len());
        let core_heads: String = phases
            .first()
            .map(|p| {
                p.cores
                    .iter()
                    .map(|c| format!(" core {} busy % |", c.core))
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| round | phase | s | requests/s | errors | p50 µs | p99 µs | worker µs/req | \
             worker CPU % | control CPU % | tables |{core_heads} other work % | ticks lost % |"
        );
        let _ = writeln!(out, "|{}", "---|".repeat(11 + ncores + 2));
        for p in phases {
            let cores: String = p.cores.iter().map(|c| format!(" {:.0} |", c.pct)).collect();
            let mut name = p.kind.name().to_owned();
            if p.attempt > 1 {
                name.push_str(&format!(" (try {})", p.attempt));
            }
            if p.disturbed {
                name.push_str(", disturbed");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {} |{cores} {:.1} | {:.1} |",
                p.round,
                name,
                p.seconds,
                p.rps(),
                p.counts.error_total(),
                p.p50_us,
                p.p99_us,
                p.worker_us_per_request(clk),
                p.pct(p.worker_ticks, clk),
                p.pct(p.control_ticks, clk),
                p.published,
                p.foreign_pct,
                p.lost_pct,
            );
        }
    }

    fn summary_rows(&self) -> Vec<Row> {
        let mut rows = vec![
            Row::new("requests/s", 0, true, |p, _| p.rps()),
            Row::new("worker CPU per request, µs", 2, true, |p, clk| {
                p.worker_us_per_request(clk)
            }),
            Row::new("client latency p50, µs", 0, true, |p, _| p.p50_us as f64),
            Row::new("client latency p99, µs", 0, true, |p, _| p.p99_us as f64),
            Row::new("request errors", 0, false, |p, _| {
                p.counts.error_total() as f64
            }),
            Row::new("tables published per second", 1, false, |p, _| {
                p.tables_per_second()
            }),
            Row::new("worker thread CPU, % of a core", 1, true, |p, clk| {
                p.pct(p.worker_ticks, clk)
            }),
            Row::new("control thread CPU, % of a core", 1, false, |p, clk| {
                p.pct(p.control_ticks, clk)
            }),
            Row::new("other ringway threads CPU, %", 1, false, |p, clk| {
                p.pct(
                    p.process_ticks
                        .saturating_sub(p.worker_ticks + p.control_ticks),
                    clk,
                )
            }),
            Row::new(
                "bench CPU (clients, origin, churn), %",
                1,
                false,
                |p, clk| p.pct(p.bench_ticks, clk),
            ),
        ];
        let cores: Vec<usize> = self
            .phases
            .first()
            .map(|p| p.cores.iter().map(|c| c.core).collect())
            .unwrap_or_default();
        for core in cores {
            rows.push(Row {
                label: format!("core {core} busy, %"),
                decimals: 0,
                ratio: false,
                value: Box::new(move |p, _| {
                    p.cores
                        .iter()
                        .find(|c| c.core == core)
                        .map_or(f64::NAN, |c| c.pct)
                }),
            });
        }
        rows
    }
}

/// How a summary line reads its figure from a phase (given CLK_TCK).
type Measure = Box<dyn Fn(&PhaseResult, u64) -> f64>;

/// A line of the summary table.
struct Row {
    label: String,
    decimals: usize,
    /// Whether the churn / quiet ratio is shown.
    ratio: bool,
    value: Measure,
}

impl Row {
    fn new(
        label: &str,
        decimals: usize,
        ratio: bool,
        value: impl Fn(&PhaseResult, u64) -> f64 + 'static,
    ) -> Self {
        Self {
            label: label.to_owned(),
            decimals,
            ratio,
            value: Box::new(value),
        }
    }
}
