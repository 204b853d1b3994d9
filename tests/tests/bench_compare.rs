//! End-to-end tests of `ringway-bench compare`, the one bench harness:
//! short scenarios run whole (built-in origins, generated configs, load
//! runs, memory runs, report), then checked against what the origins
//! themselves counted, what ringway's `/stats` says, and the scenario's
//! own arithmetic.
//!
//! The guard's wait for a quiet machine is off (`quiet_wait = "0s"`) or
//! short: these tests run while the rest of the suite keeps the cores busy,
//! which is what the guard exists to refuse. Comparisons take turns
//! ([`bench::turn`]): each one loads both cores.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ringway_tests::bench;
use ringway_tests::proxy::{self, Program};
use serde_json::Value;

/// The whole comparison takes a few seconds; this only guards a hang.
const COMPARE_TIMEOUT: Duration = Duration::from_secs(300);

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The core of the systems under test: the second one when there are two.
fn proxy_core() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    usize::from(cores > 1)
}

/// A finished comparison.
struct Compared {
    output: Output,
    /// The results directory (from the report path it printed).
    dir: PathBuf,
    results: Value,
    report: String,
}

/// Runs `ringway-bench compare` on `scenario` (TOML text) with `args`
/// after the usual ones; panics unless it printed a report path.
fn compare(work: &Path, scenario: &str, args: &[&str]) -> Compared {
    let file = work.join("scenario.toml");
    std::fs::write(&file, scenario).expect("write the scenario");
    let out_dir = work.join("results");
    let run = Program::new(&bench::binary())
        .args(&[OsStr::new("compare"), file.as_os_str()])
        .args(&[OsStr::new("--out"), out_dir.as_os_str()])
        .args(&[OsStr::new("--ringway"), proxy::binary().as_os_str()])
        .args(args);
    let output = {
        let _turn = bench::turn();
        proxy::run_program_to_exit(&run, COMPARE_TIMEOUT)
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = Path::new(stdout.trim());
    assert!(
        report.ends_with("report.md"),
        "no report (exit {}): {}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = report
        .parent()
        .expect("report.md is in a directory")
        .to_owned();
    assert!(dir.starts_with(&out_dir), "{}", dir.display());
    Compared {
        results: read_json(&dir.join("results.json")),
        report: std::fs::read_to_string(report).expect("read report.md"),
        dir,
        output,
    }
}

impl Compared {
    fn assert_success(&self) {
        assert!(
            self.output.status.success(),
            "compare failed: {}\nproblems: {}",
            String::from_utf8_lossy(&self.output.stderr),
            self.results["problems"]
        );
        assert_eq!(self.results["problems"], serde_json::json!([]));
    }

    fn array(&self, key: &str) -> &Vec<Value> {
        self.results[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not an array: {}", self.results))
    }

    /// Every request the load runs (discarded ones too) wrote, plus one per
    /// idle connection and one per admission check a TLS listener answered
    /// with a 2xx, reached the origins exactly once.
    fn assert_origins_saw_every_request(&self) {
        let mut sent = 0;
        for entry in std::fs::read_dir(self.dir.join("raw")).expect("raw/") {
            let doc = read_json(&entry.expect("a raw file").path());
            assert_eq!(doc["schema"], "ringway-bench.load/1");
            sent += doc["requests"]["sent"].as_u64().expect("requests.sent");
        }
        let held: u64 = self
            .array("memory")
            .iter()
            .map(|m| m["held"].as_u64().expect("held"))
            .sum();
        let admitted = self
            .array("admissions")
            .iter()
            .flat_map(|a| [&a["with_certificate"], &a["without_certificate"]])
            .filter(|o| {
                o["kind"] == "answered" && (200..300).contains(&o["detail"].as_u64().unwrap_or(0))
            })
            .count() as u64;
        let check = &self.results["origin_check"];
        assert_eq!(
            check["served"].as_u64(),
            Some(sent + held + admitted),
            "{check}"
        );
        assert_eq!(
            check["sent"].as_u64(),
            Some(sent + held + admitted),
            "{check}"
        );
    }
}

#[test]
fn compare_runs_direct_and_ringway_and_reports_what_the_origin_saw() {
    let work = tempfile::tempdir().unwrap();
    // Two cores on the machines this runs on; with one, everything shares it.
    let proxy_core = proxy_core();
    let c = compare(
        work.path(),
        &format!(
            r#"
name = "smoke"
description = "compare smoke test"
systems = ["direct", "ringway"]
runs = 1

[cores]
load = "0"
origin = "0"
proxy = {proxy_core}

[origin]
# More than one read's worth: answers are framed across reads.
response_size = 70000

[load]
connections = 4
warmup = "0s"
duration = "500ms"

[sweep]
rates = [400, 800]
max_throughput = true

[memory]
idle_connections = 200

[guard]
quiet_wait = "0s"
retries = 0
"#
        ),
        &[],
    );
    c.assert_success();
    let dir = &c.dir;
    assert!(dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("smoke-"));

    let results = &c.results;
    assert_eq!(results["systems"], serde_json::json!(["direct", "ringway"]));
    let ceiling = &results["ceiling"];
    assert_eq!(ceiling["system"], "direct");
    assert!(ceiling["rps"].as_f64().unwrap() > 0.0, "{ceiling}");

    // Two systems × (two rates + max throughput).
    let runs = c.array("runs");
    assert_eq!(runs.len(), 6, "{runs:?}");
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["ok"].as_u64().unwrap() > 0, "{run}");
        match run["offered"].as_f64() {
            // The open-loop schedule is exact: rate × window requests were
            // due, each answered or (if the machine stalled right at the
            // end) counted as never sent.
            Some(rate) => {
                let due = run["ok"].as_u64().unwrap() + run["unsent"].as_u64().unwrap();
                assert_eq!(due as f64, rate * 0.5, "{run}");
            }
            None => assert!(run["latency"]["p50"].as_u64().unwrap() > 0, "{run}"),
        }
        if run["system"] == "ringway" && run["offered"].is_null() {
            // A saturating half second costs ringway some CPU: the /proc
            // sampling saw its process.
            assert!(run["cpu_s"].as_f64().unwrap() > 0.0, "{run}");
        }
        if run["system"] == "direct" {
            assert_eq!(
                run["cpu_s"].as_f64().unwrap(),
                0.0,
                "direct runs no proxy: {run}"
            );
            assert!(run["worker_cpu_s"].is_null(), "{run}");
        }
        // The guard judged every run, and it was off before them.
        assert!(
            run["disturbance"]["foreign_pct"].as_f64().is_some(),
            "{run}"
        );
        assert!(run["quiet"].is_null(), "{run}");
        assert!(run["wall_s"].as_f64().unwrap() > 0.0, "{run}");
    }

    // The memory run held every idle connection on ringway.
    let memory = c.array("memory");
    assert_eq!(memory.len(), 1, "{memory:?}");
    assert_eq!(memory[0]["system"], "ringway");
    assert_eq!(memory[0]["mode"], "http");
    assert_eq!(memory[0]["held"], 200);
    assert!(memory[0]["rss_idle_kib"].as_u64().unwrap() > 0);

    // Every request the load runs wrote, plus one per idle connection,
    // reached the origin exactly once: nothing lost, nothing repeated.
    let mut sent = 0;
    let mut raw_files = 0;
    for entry in std::fs::read_dir(dir.join("raw")).unwrap() {
        let doc = read_json(&entry.unwrap().path());
        assert_eq!(doc["schema"], "ringway-bench.load/1");
        sent += doc["requests"]["sent"].as_u64().unwrap();
        raw_files += 1;
    }
    assert_eq!(raw_files, 7, "the ceiling run and six rounds' runs");
    let origin = read_json(&dir.join("origin.json"));
    assert_eq!(origin["requests"].as_u64().unwrap(), sent + 200, "{origin}");
    c.assert_origins_saw_every_request();

    let md = &c.report;
    for needle in [
        "# smoke",
        "Load-side ceiling",
        "## Max throughput",
        "## Offered 400 req/s",
        "## Offered 800 req/s",
        "| ringway |",
        "added p50",
        "## Memory",
        "latency-vs-load.svg",
        "spectrum.svg",
        "every request reached it exactly once",
        "## Quiet-machine guard",
        "The wait for quiet cores before each run was off.",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    for svg in ["latency-vs-load.svg", "spectrum.svg"] {
        let text = std::fs::read_to_string(dir.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        assert!(text.contains("ringway") && text.contains("direct"), "{svg}");
    }
    assert!(dir.join("systems/ringway/ringway.toml").is_file());
}

/// A ringway variant with a large table and a baseline build, side by side
/// with ringway in the same rounds, their CPU ratios, and both kinds of idle
/// connections of the memory run.
#[test]
fn compare_sets_variants_and_a_baseline_beside_ringway_with_their_ratios() {
    let work = tempfile::tempdir().unwrap();
    let proxy_core = proxy_core();
    let c = compare(
        work.path(),
        &format!(
            r#"
name = "variants"
systems = ["direct", "ringway", "ringway-50-routes"]
runs = 2

[cores]
proxy = {proxy_core}

[load]
connections = 2
# The last of the variant's routes; ringway's catch-all takes it too.
host = "h0.example.com"
path = "/r0/"
warmup = "0s"
duration = "300ms"

[sweep]
rates = [200]

[memory]
idle_connections = 30
idle_tcp_pairs = 20

[guard]
quiet_wait = "0s"
retries = 0

[[variants]]
name = "ringway-50-routes"
of = "ringway"
routes = 50

[[ratios]]
system = "ringway-50-routes"
against = "ringway"
bar = 1.05
"#
        ),
        // The baseline is the same binary: what matters here is that it
        // runs in the same rounds and that the ratios are computed.
        &["--baseline", proxy::binary().to_str().unwrap()],
    );
    c.assert_success();
    let r = &c.results;
    assert_eq!(
        r["systems"],
        serde_json::json!(["direct", "ringway", "baseline", "ringway-50-routes"])
    );
    // Four systems × two rounds × (one rate + max throughput), no error:
    // every request of the variant found the last of its 50 routes.
    let runs = c.array("runs");
    assert_eq!(runs.len(), 16, "{runs:?}");
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["ok"].as_u64().unwrap() > 0, "{run}");
        let ringway = run["system"] != "direct";
        assert_eq!(run["worker_cpu_s"].is_number(), ringway, "{run}");
    }
    let config =
        std::fs::read_to_string(c.dir.join("systems/ringway-50-routes/ringway.toml")).unwrap();
    assert_eq!(config.matches("[[listeners.routes]]").count(), 50);
    assert!(c.dir.join("systems/baseline/baseline.toml").is_file());

    // The scenario's ratio, and ringway against the baseline (bar 1.02).
    let ratios = c.array("ratios");
    assert_eq!(ratios.len(), 2, "{ratios:?}");
    assert_eq!(ratios[0]["system"], "ringway-50-routes");
    assert_eq!(ratios[0]["bar"], 1.05);
    assert_eq!(
        (
            &ratios[1]["system"],
            &ratios[1]["against"],
            &ratios[1]["bar"]
        ),
        (
            &serde_json::json!("ringway"),
            &serde_json::json!("baseline"),
            &serde_json::json!(1.02)
        )
    );
    for table in ratios {
        let rows = table["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "the rate and max throughput: {table}");
        assert_eq!(rows[0]["offered"], 200.0);
        assert!(rows[1]["offered"].is_null());
        for row in rows {
            let (a, b) = (
                row["system"].as_f64().unwrap(),
                row["against"].as_f64().unwrap(),
            );
            let ratio = row["ratio"].as_f64().unwrap();
            assert!((ratio - a / b).abs() < 1e-9, "{row}");
            let [median, min, max] = [0, 1, 2].map(|i| row["per_round"][i].as_f64().unwrap());
            assert!(min <= median && median <= max, "{row}");
            assert_eq!(row["within_bar"], ratio <= table["bar"].as_f64().unwrap());
        }
    }

    // Idle HTTP connections and idle TCP pairs of each ringway, each round.
    let memory = c.array("memory");
    assert_eq!(memory.len(), 3 * 2 * 2, "{memory:?}");
    for m in memory {
        let want = if m["mode"] == "http" { 30 } else { 20 };
        assert_eq!(m["held"], want, "{m}");
        assert_eq!(m["asked"], want, "{m}");
        assert!(m["shortfall"].is_null(), "{m}");
    }
    assert!(c
        .dir
        .join("systems/ringway-50-routes-tcp/ringway.toml")
        .is_file());
    c.assert_origins_saw_every_request();
    for needle in [
        "## CPU ratios",
        "### ringway-50-routes / ringway (bar: at most 1.05x)",
        "### ringway / baseline (bar: at most 1.02x)",
        "| ringway-50-routes | HTTP keep-alive connections |",
        "| baseline | TCP pairs |",
        "- versions: ringway",
        "baseline ",
    ] {
        assert!(
            c.report.contains(needle),
            "report.md lacks {needle:?}:\n{}",
            c.report
        );
    }
}

/// Both churn modes: the endpoints of the origin cluster, and whole
/// configurations, posted while requests flow; every post applied, the
/// generation advanced by exactly as many, no request failed, and ringway's
/// own publish latency read from `/stats`.
#[test]
fn compare_churns_endpoints_and_routes_while_requests_flow() {
    let work = tempfile::tempdir().unwrap();
    let proxy_core = proxy_core();
    let c = compare(
        work.path(),
        &format!(
            r#"
name = "churn"
systems = ["ringway", "endpoints-churn", "routes-churn"]
runs = 1

[cores]
proxy = {proxy_core}

[origin]
count = 2

[load]
connections = 2
# The last route of routes-churn's table.
host = "h0.example.com"
path = "/r0/"
warmup = "0s"
duration = "600ms"

[sweep]
rates = [300]
max_throughput = false

[memory]
idle_connections = 0

[[variants]]
name = "endpoints-churn"
of = "ringway"
clusters = 30

[variants.churn]
mode = "endpoints"
interval = "20ms"

[[variants]]
name = "routes-churn"
of = "ringway"
routes = 20
clusters = 10

[variants.churn]
mode = "routes"
interval = "40ms"
"#
        ),
        &["--quiet-wait", "1s", "--quiet-pct", "100", "--retries", "0"],
    );
    c.assert_success();
    let runs = c.array("runs");
    assert_eq!(runs.len(), 3, "{runs:?}");
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        let due = run["ok"].as_u64().unwrap() + run["unsent"].as_u64().unwrap();
        assert_eq!(due, 180, "{run}");
        // The guard looked at the cores before the run.
        assert!(run["quiet"]["waited_s"].as_f64().is_some(), "{run}");
    }
    let churn = c.array("churn");
    assert_eq!(churn.len(), 2, "{churn:?}");
    for (round, mode) in churn.iter().zip(["endpoints", "routes"]) {
        assert_eq!(round["mode"], mode, "{round}");
        let posted = round["posted"].as_u64().unwrap();
        assert!(posted > 0, "{round}");
        assert_eq!(round["applied"].as_u64(), Some(posted), "{round}");
        assert_eq!(round["failed"], 0, "{round}");
        assert_eq!(round["out_of_order"], 0, "{round}");
        let start = round["generation_start"].as_u64().unwrap();
        assert_eq!(
            round["generation_end"].as_u64(),
            Some(start + posted),
            "{round}"
        );
        assert_eq!(
            round["post_rtt_us"]["count"].as_u64(),
            Some(posted),
            "{round}"
        );
        // Every table published since the start: each post's.
        let publish = &round["publish_latency_us"];
        assert_eq!(publish["count"].as_u64(), Some(posted), "{round}");
        assert!(publish["p99"].as_u64().unwrap() <= publish["max"].as_u64().unwrap());
    }
    // The origins served the requests between them, as the endpoints moved.
    c.assert_origins_saw_every_request();
    assert!(c.dir.join("origin-1.json").is_file());
    for needle in [
        "## Table churn",
        "| endpoints-churn | 1 | endpoints | 20 ms |",
        "| routes-churn | 1 | routes | 40 ms |",
        "worker CPU µs/req",
        "2 origins",
    ] {
        assert!(
            c.report.contains(needle),
            "report.md lacks {needle:?}:\n{}",
            c.report
        );
    }
}

/// A system that cannot run is skipped with the reason, the others run.
#[test]
fn compare_skips_a_baseline_it_was_not_given() {
    let work = tempfile::tempdir().unwrap();
    let c = compare(
        work.path(),
        "name = \"skip\"\nsystems = [\"direct\", \"baseline\"]\nruns = 1\n\
         [load]\nconnections = 1\nwarmup = \"0s\"\nduration = \"200ms\"\n\
         [memory]\nidle_connections = 5\n[guard]\nquiet_wait = \"0s\"\n",
        &[],
    );
    c.assert_success();
    assert_eq!(c.results["systems"], serde_json::json!(["direct"]));
    let skipped = c.array("skipped");
    assert_eq!(skipped[0][0], "baseline");
    assert!(
        skipped[0][1].as_str().unwrap().contains("--baseline PATH"),
        "{skipped:?}"
    );
    assert!(c.report.contains("**skipped baseline**"), "{}", c.report);
}

/// `--profile`: one more max-throughput run under `perf`, summed by thread,
/// object and symbol; without `perf` the option is refused up front.
#[test]
fn compare_profiles_with_perf_or_says_what_is_missing() {
    let work = tempfile::tempdir().unwrap();
    let scenario = format!(
        "name = \"prof\"\nsystems = [\"ringway\"]\nruns = 1\n[cores]\nproxy = {}\n\
         [load]\nconnections = 2\nwarmup = \"0s\"\nduration = \"500ms\"\n\
         [memory]\nidle_connections = 0\n[guard]\nquiet_wait = \"0s\"\n",
        proxy_core()
    );
    let has_perf = Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_perf {
        let file = work.path().join("scenario.toml");
        std::fs::write(&file, scenario).unwrap();
        let out = Command::new(bench::binary())
            .arg("compare")
            .arg(&file)
            .arg("--profile")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("linux-perf"), "{stderr}");
        return;
    }
    let c = compare(work.path(), &scenario, &["--profile"]);
    c.assert_success();
    let profiles = c.array("profiles");
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let p = &profiles[0];
    assert_eq!(p["system"], "ringway");
    // The profile run is not a measured one, but its requests count at the
    // origin.
    assert!(c.dir.join("raw/profile-ringway.json").is_file());
    c.assert_origins_saw_every_request();
    match p["problem"].as_str() {
        // perf could not sample here (a container without perf events):
        // the report says why instead of a table.
        Some(why) => assert!(
            c.report.contains(&format!("No profile: {why}")),
            "{}",
            c.report
        ),
        None => {
            let objects = p["objects"].as_array().unwrap();
            assert!(!objects.is_empty(), "{p}");
            let total: f64 = objects.iter().map(|o| o["pct"].as_f64().unwrap()).sum();
            assert!(total > 0.0 && total <= 100.5, "{p}");
            assert!(c.dir.join("systems/ringway/perf.txt").is_file());
            assert!(c.report.contains("## Profiles"), "{}", c.report);
            assert!(c.report.contains("| by object | share |"), "{}", c.report);
        }
    }
}

/// A fault scenario: every run gets origins of its own, one answering
/// every request with a 503, one crashing mid-run, and the report's error
/// and amplification figures are the load's and the origins' own counts.
#[test]
fn compare_runs_a_fault_scenario_and_reports_the_origins_counts() {
    let work = tempfile::tempdir().unwrap();
    let proxy_core = proxy_core();
    let c = compare(
        work.path(),
        &format!(
            r#"
name = "faults"
systems = ["ringway", "ringway-ewma"]
runs = 1

[cores]
load = "0"
origin = "0"
proxy = {proxy_core}

[origin]
count = 3

[load]
connections = 4
warmup = "200ms"
duration = "1500ms"
timeout = "2s"

[sweep]
rates = [200]
max_throughput = false

[memory]
idle_connections = 0

[guard]
quiet_wait = "0s"
retries = 0

[[faults]]
origins = [1]
fail_ratio = 1.0

[[faults]]
origins = [2]
at = "500ms"
kill = true

[[variants]]
name = "ringway-ewma"
of = "ringway"

[variants.cluster]
lb = "peak_ewma"
consecutive_gateway_failures = 2
"#
        ),
        &[],
    );
    // Errors the clients saw are the point here, not a failure of the run.
    assert_eq!(
        c.results["problems"],
        serde_json::json!([]),
        "{}",
        c.results
    );
    let config = std::fs::read_to_string(c.dir.join("systems/ringway-ewma/ringway.toml")).unwrap();
    assert!(
        config.lines().any(|l| l == "lb = \"peak_ewma\""),
        "{config}"
    );
    assert!(
        config
            .lines()
            .any(|l| l == "consecutive_gateway_failures = 2"),
        "{config}"
    );

    let runs = c.array("runs");
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in runs {
        let system = run["system"].as_str().unwrap();
        let label = format!("r1-{system}-rate200");
        // The client side: the load's own file.
        let raw = read_json(&c.dir.join(format!("raw/{label}.json")));
        let sent = raw["requests"]["sent"].as_u64().unwrap();
        assert_eq!(run["sent"].as_u64(), Some(sent), "{run}");
        assert_eq!(run["errors"], raw["errors"]["total"], "{run}");
        // The upstream side: each origin's own report.
        let origins = run["upstream"]["origins"].as_array().unwrap();
        assert_eq!(origins.len(), 3, "{run}");
        let mut upstream = 0;
        for (i, o) in origins.iter().enumerate() {
            let stem = if i == 0 {
                "origin".to_owned()
            } else {
                format!("origin-{i}")
            };
            let own = read_json(&c.dir.join(format!("origins/{label}/{stem}.json")));
            for key in ["received", "requests", "faulted", "checks"] {
                assert_eq!(o[key], own[key], "{system} origin {i} {key}: {o} {own}");
            }
            assert_eq!(o["killed"], own["killed"], "{o} {own}");
            upstream += own["received"].as_u64().unwrap() - own["checks"].as_u64().unwrap();
        }
        // Origin 0 is healthy; origin 1 answers every request of the
        // measured window with a 503 (the warm-up's are answered well);
        // origin 2 crashed on schedule.
        assert_eq!(origins[0]["faulted"], 0, "{run}");
        assert_eq!(origins[0]["killed"], false, "{run}");
        let failing = &origins[1];
        let faulted = failing["faulted"].as_u64().unwrap();
        assert!(faulted > 0, "{run}");
        assert!(faulted <= failing["requests"].as_u64().unwrap(), "{run}");
        assert_eq!(origins[2]["killed"], true, "{run}");
        // No retry of a 5xx is configured: what origin 1 answered reached
        // the clients as errors.
        let errors = run["errors"].as_u64().unwrap();
        let non_2xx = raw["errors"]["non_2xx"].as_u64().unwrap();
        assert!(non_2xx > 0 && non_2xx <= errors, "{run}");
        assert!(errors <= sent, "{run}");

        // The report's row says the same.
        let row = c
            .report
            .lines()
            .find(|l| l.starts_with(&format!("| {system} | 1 | 200 |")))
            .unwrap_or_else(|| panic!("no Faults row for {system}:\n{}", c.report));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[4], sent.to_string(), "{row}");
        assert_eq!(cells[6], errors.to_string(), "{row}");
        assert_eq!(cells[7], raw["requests"]["unsent"].to_string(), "{row}");
        assert_eq!(cells[14], upstream.to_string(), "{row}");
        let amplification = format!("{:.3}x", upstream as f64 / sent as f64);
        assert_eq!(cells[15], amplification, "{row}");
        assert_eq!(cells[16], failing["faulted"].to_string(), "{row}");
        assert!(cells[17].ends_with("(crashed)"), "{row}");
    }
    for needle in [
        "## Faults",
        "- origin 1: 100% of answers a 503 from 0s into the measured window, to the end",
        "- origin 2: crashes 500ms into the measured window",
    ] {
        assert!(
            c.report.contains(needle),
            "report.md lacks {needle:?}:\n{}",
            c.report
        );
    }
}

/// The shipped scenario `name` (bench/scenarios), run briefly by
/// `compare` with every system it names that is installed: one round, a
/// short window, one offered rate (HTTP; a stream has none) and max
/// throughput.
fn compare_shipped(work: &Path, name: &str, extra: &[&str]) -> Compared {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bench/scenarios")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let text = text.replace("proxy = 1", &format!("proxy = {}", proxy_core()));
    let mut args = vec![
        "--runs",
        "1",
        "--warmup",
        "0s",
        "--duration",
        "300ms",
        "--quiet-wait",
        "0s",
        "--retries",
        "0",
    ];
    if !text.lines().any(|l| l.trim() == "mode = \"tcp\"") {
        args.extend(["--rates", "200"]);
    }
    args.extend_from_slice(extra);
    compare(work, &text, &args)
}

/// What a TLS run must show: every system that speaks TLS made a full
/// handshake on every connection it opened and resumed none, all with the
/// same suite and group; the plaintext ones made none; every request
/// reached the origin once. Returns the systems that spoke TLS.
fn assert_tls_runs(c: &Compared, plaintext: &[&str]) -> Vec<String> {
    c.assert_success();
    let mut tls_systems = Vec::new();
    for run in c.array("runs") {
        let system = run["system"].as_str().expect("a system").to_owned();
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["ok"].as_u64().expect("ok") > 0, "{run}");
        let raw = read_json(&c.dir.join(run["raw"].as_str().expect("raw")));
        if plaintext.contains(&system.as_str()) {
            assert!(raw["tls"].is_null(), "{system} is plaintext: {raw}");
            assert!(run["tls"].is_null(), "{run}");
            continue;
        }
        let tls = &raw["tls"];
        let full = tls["handshakes"]["full"].as_u64().expect("full handshakes");
        assert!(full > 0, "{system}: {tls}");
        assert_eq!(Some(full), raw["connects"].as_u64(), "{system}: {raw}");
        assert_eq!(tls["handshakes"]["resumed"], 0, "{system}: {tls}");
        assert_eq!(tls["handshakes"]["hello_retries"], 0, "{system}: {tls}");
        assert_eq!(tls["suite"], "TLS13_AES_128_GCM_SHA256", "{system}: {tls}");
        assert_eq!(tls["group"], "X25519", "{system}: {tls}");
        assert_eq!(run["tls"]["full"].as_u64(), Some(full), "{run}");
        if !tls_systems.contains(&system) {
            tls_systems.push(system);
        }
    }
    c.assert_origins_saw_every_request();
    for file in ["tls/ca.pem", "tls/server.pem", "tls/server.key"] {
        assert!(c.dir.join(file).is_file(), "{file}");
    }
    assert!(c.report.contains("## TLS"), "{}", c.report);
    tls_systems
}

/// The admission checks of a TLS run (`results.admissions`): each system of
/// `tls_systems` had its `listener` tried once with the generator's client
/// certificate and once without; those of `requiring` refused the second
/// (a TLS alert, a close, or an HTTP error status) and admitted the first,
/// the others admitted both. Over HTTP, admitted is a `200`; over TCP, a
/// connection left open after the handshake (`open`).
fn assert_admissions(c: &Compared, listener: &str, tls_systems: &[String], requiring: &[String]) {
    let admissions = c.array("admissions");
    let admitted = |outcome: &Value| match outcome["kind"].as_str() {
        Some("answered") => outcome["detail"] == 200,
        Some("open") => true,
        Some("refused") => false,
        _ => panic!("an outcome: {outcome}"),
    };
    for system in tls_systems {
        let mine: Vec<&Value> = admissions
            .iter()
            .filter(|a| a["system"] == system.as_str() && a["listener"] == listener)
            .collect();
        assert_eq!(mine.len(), 1, "{system}: {admissions:?}");
        let a = mine[0];
        let requires = requiring.contains(system);
        assert_eq!(a["requires"], requires, "{a}");
        assert!(
            admitted(&a["with_certificate"]),
            "{system} refused the generator's certificate: {a}"
        );
        assert_eq!(
            admitted(&a["without_certificate"]),
            !requires,
            "{system}, {}: {a}",
            if requires {
                "which requires client certificates, let a client without one in"
            } else {
                "which asks for none, refused a client without one"
            }
        );
    }
    assert_eq!(
        admissions.len(),
        tls_systems.len(),
        "one check per TLS listener: {admissions:?}"
    );
    assert!(
        c.report
            .contains("| system | listener | client certificates |"),
        "{}",
        c.report
    );
}

/// The systems of a shipped scenario that are installed here: ringway
/// always; nginx and HAProxy (and their variants) when found.
fn expected_tls_systems(c: &Compared, names: &[&str]) -> Vec<String> {
    let skipped: Vec<&str> = c
        .array("skipped")
        .iter()
        .map(|s| s[0].as_str().expect("a name"))
        .collect();
    assert!(!skipped.contains(&"ringway"), "{skipped:?}");
    names
        .iter()
        .filter(|n| !skipped.contains(n))
        .map(|n| n.to_string())
        .collect()
}

#[test]
fn compare_runs_full_tls_handshakes_against_every_proxy() {
    let work = tempfile::tempdir().unwrap();
    let c = compare_shipped(work.path(), "tls-handshakes", &[]);
    let tls = assert_tls_runs(&c, &["direct"]);
    let mtls = expected_tls_systems(&c, &["ringway-mtls", "nginx-mtls", "haproxy-mtls"]);
    let mut all = expected_tls_systems(&c, &["ringway", "nginx", "haproxy"]);
    all.extend(mtls.iter().cloned());
    assert_eq!(tls, all);
    // Every full handshake of the -mtls systems verified the generator's
    // certificate (none failed), and without one they refuse.
    assert_admissions(&c, "listener", &tls, &mtls);
    assert_eq!(
        c.results["setup"]["tls"]["client_auth"],
        serde_json::json!(mtls)
    );
    let ratios = c.array("ratios");
    assert_eq!(ratios.len(), 3, "{ratios:?}");
    assert_eq!(
        (&ratios[0]["system"], &ratios[0]["against"]),
        (
            &serde_json::json!("ringway-mtls"),
            &serde_json::json!("ringway")
        )
    );
    // One connection, one handshake and one request each.
    for run in c.array("runs").iter().filter(|r| r["system"] != "direct") {
        let raw = read_json(&c.dir.join(run["raw"].as_str().unwrap()));
        assert_eq!(raw["keep_alive"], false, "{raw}");
        assert_eq!(raw["connects"], raw["requests"]["sent"], "{raw}");
    }
    assert!(
        c.report.contains("req/s are handshakes per second"),
        "{}",
        c.report
    );
    let config = std::fs::read_to_string(c.dir.join("systems/ringway/ringway.toml")).unwrap();
    assert!(config.contains("tls = { cert = "), "{config}");
    assert!(!config.contains("client_ca"), "{config}");
    let config = std::fs::read_to_string(c.dir.join("systems/ringway-mtls/ringway.toml")).unwrap();
    assert!(config.contains("client_ca = "), "{config}");
    assert!(config.contains("require_client_cert = true"), "{config}");
}

#[test]
fn compare_runs_keep_alive_requests_over_tls_beside_plaintext() {
    let work = tempfile::tempdir().unwrap();
    let c = compare_shipped(work.path(), "tls-keepalive", &[]);
    let plain = ["direct", "ringway-plain", "nginx-plain", "haproxy-plain"];
    let tls = assert_tls_runs(&c, &plain);
    let mtls = expected_tls_systems(&c, &["ringway-mtls", "nginx-mtls", "haproxy-mtls"]);
    let mut all = expected_tls_systems(&c, &["ringway", "nginx", "haproxy"]);
    all.extend(mtls.iter().cloned());
    assert_eq!(tls, all);
    assert_admissions(&c, "listener", &tls, &mtls);
    // Keep-alive: the connections were opened, and shook hands, once.
    for run in c.array("runs").iter().filter(|r| r["tls"].is_object()) {
        let raw = read_json(&c.dir.join(run["raw"].as_str().unwrap()));
        assert_eq!(raw["connects"], 32, "{raw}");
        assert!(raw["requests"]["sent"].as_u64().unwrap() > 32, "{raw}");
    }
    // TLS against plaintext, and mTLS against TLS, per system.
    let ratios = c.array("ratios");
    for (system, against) in [("ringway", "ringway-plain"), ("ringway-mtls", "ringway")] {
        assert!(
            ratios
                .iter()
                .any(|t| t["system"] == system && t["against"] == against),
            "{ratios:?}"
        );
    }
    let plain_config =
        std::fs::read_to_string(c.dir.join("systems/ringway-plain/ringway.toml")).unwrap();
    assert!(!plain_config.contains("tls ="), "{plain_config}");
}

#[test]
fn compare_runs_bulk_answers_over_tls_and_reports_cpu_per_gb() {
    let work = tempfile::tempdir().unwrap();
    let c = compare_shipped(work.path(), "tls-bulk", &[]);
    let plain = ["direct", "ringway-plain", "nginx-plain", "haproxy-plain"];
    let tls = assert_tls_runs(&c, &plain);
    assert_eq!(
        tls,
        expected_tls_systems(&c, &["ringway", "nginx", "haproxy"])
    );
    // Whole 64 KiB answers, counted as plaintext on both sides.
    for run in c.array("runs").iter().filter(|r| r["system"] != "direct") {
        let sent = run["sent"].as_u64().unwrap();
        let received = run["received_total"].as_u64().unwrap();
        assert!(received >= sent * 65_536, "{run}");
    }
    assert!(
        c.report.contains("## CPU per GB of answers"),
        "{}",
        c.report
    );
    assert!(
        c.report.contains("| ringway | max throughput |"),
        "{}",
        c.report
    );
}

/// Client certificates asked of every system by the scenario's own
/// `client_auth = true` (not a variant's): each requires and verifies them
/// (ringway `client_ca` + `require_client_cert`, nginx `ssl_verify_client
/// on`, HAProxy `verify required`), the generator presents the one minted
/// for the run, and a client without one is refused by every one.
#[test]
fn compare_presents_client_certificates_every_proxy_requires() {
    let work = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/scenarios/tls-keepalive.toml");
    let scenario = std::fs::read_to_string(file)
        .unwrap()
        .replace("client_auth = false", "client_auth = true")
        .replace("proxy = 1", &format!("proxy = {}", proxy_core()));
    let c = compare(
        work.path(),
        &scenario,
        &[
            "--systems",
            "direct,ringway,nginx,haproxy",
            "--runs",
            "1",
            "--warmup",
            "0s",
            "--duration",
            "300ms",
            "--rates",
            "200",
            "--quiet-wait",
            "0s",
            "--retries",
            "0",
        ],
    );
    let tls = assert_tls_runs(&c, &["direct"]);
    assert_eq!(
        tls,
        expected_tls_systems(&c, &["ringway", "nginx", "haproxy"])
    );
    assert_eq!(
        c.results["setup"]["tls"]["client_auth"],
        serde_json::json!(tls)
    );
    assert_admissions(&c, "listener", &tls, &tls);
    assert!(c.dir.join("tls/client.pem").is_file());
    let config = std::fs::read_to_string(c.dir.join("systems/ringway/ringway.toml")).unwrap();
    assert!(config.contains("require_client_cert = true"), "{config}");
    if tls.iter().any(|s| s == "haproxy") {
        let cfg = std::fs::read_to_string(c.dir.join("systems/haproxy/haproxy.cfg")).unwrap();
        assert!(cfg.contains("verify required"), "{cfg}");
    }
    if tls.iter().any(|s| s == "nginx") {
        let cfg = std::fs::read_to_string(c.dir.join("systems/nginx/nginx.conf")).unwrap();
        assert!(cfg.contains("ssl_verify_client on;"), "{cfg}");
    }
}

#[test]
fn compare_streams_tcp_over_tls_beside_plaintext_and_reports_cpu_per_gb() {
    let work = tempfile::tempdir().unwrap();
    let c = compare_shipped(work.path(), "tls-tcp-bulk", &[]);
    c.assert_success();
    let plain = ["direct", "ringway-plain", "nginx-plain", "haproxy-plain"];
    let expected = expected_tls_systems(&c, &["ringway", "nginx", "haproxy"]);
    let mut tls = Vec::new();
    for run in c.array("runs") {
        let system = run["system"].as_str().unwrap().to_owned();
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["offered"].is_null(), "a stream runs at max only: {run}");
        assert!(run["bytes_total"].as_u64().unwrap() > 0, "{run}");
        if system != "direct" {
            // The proxy's own CPU, per GB carried.
            assert!(run["cpu_s"].as_f64().unwrap() > 0.0, "{run}");
        }
        let raw = read_json(&c.dir.join(run["raw"].as_str().unwrap()));
        assert_eq!(raw["mode"], "tcp", "{raw}");
        if plain.contains(&system.as_str()) {
            assert!(raw["tls"].is_null(), "{system} is plaintext: {raw}");
            continue;
        }
        // The stream's 4 connections each made one full handshake, with
        // what every TLS run negotiates, and no ALPN on an L4 listener.
        let t = &raw["tls"];
        assert_eq!(t["handshakes"]["full"], 4, "{system}: {t}");
        assert_eq!(raw["connects"], 4, "{system}: {raw}");
        assert_eq!(t["handshakes"]["resumed"], 0, "{system}: {t}");
        assert_eq!(t["handshakes"]["hello_retries"], 0, "{system}: {t}");
        assert_eq!(t["suite"], "TLS13_AES_128_GCM_SHA256", "{system}: {t}");
        assert_eq!(t["group"], "X25519", "{system}: {t}");
        assert_eq!(run["tls"]["full"], 4, "{run}");
        tls.push(system);
    }
    assert_eq!(tls, expected);
    // The TCP listeners took TLS, and let a client in with and without a
    // certificate (none is asked for).
    assert_admissions(&c, "listener", &tls, &[]);
    let config = std::fs::read_to_string(c.dir.join("systems/ringway/ringway.toml")).unwrap();
    assert!(config.contains("protocol = \"tcp\""), "{config}");
    assert!(config.contains("tls = { cert = "), "{config}");
    // TLS against plaintext, CPU per GB, per proxy; and against plaintext
    // plus what AES-128-GCM alone costs per GB, measured on the proxy core.
    let aes = c.results["setup"]["aes_s_per_gb"]
        .as_f64()
        .expect("the AES-GCM figure");
    assert!(aes > 0.0, "{aes}");
    let ratios = c.array("ratios");
    for system in &tls {
        let of = |plus: bool| {
            ratios
                .iter()
                .find(|t| t["system"] == system.as_str() && t["plus"].is_f64() == plus)
                .unwrap_or_else(|| panic!("no ratio for {system} (plus AES: {plus}): {ratios:?}"))
        };
        let (plain, plus_aes) = (of(false), of(true));
        for table in [plain, plus_aes] {
            assert_eq!(table["against"], format!("{system}-plain"));
            assert_eq!(table["figure"], "CPU s/GB (process)");
            assert!(table["rows"][0]["offered"].is_null(), "{table}");
        }
        assert_eq!(plus_aes["plus"].as_f64(), Some(aes));
        let (a, b) = (&plain["rows"][0], &plus_aes["rows"][0]);
        assert_eq!(a["system"], b["system"], "the same numerator");
        let against = a["against"].as_f64().unwrap();
        let with_aes = b["against"].as_f64().unwrap();
        assert!((with_aes - (against + aes)).abs() < 1e-9, "{a} {b}");
        let ratio = b["ratio"].as_f64().unwrap();
        assert!(
            (ratio - a["system"].as_f64().unwrap() / with_aes).abs() < 1e-9,
            "{b}"
        );
    }
    assert!(
        c.report
            .contains("### ringway / (ringway-plain + AES-128-GCM) (bar: at most 1.10x)"),
        "{}",
        c.report
    );
    assert!(
        c.report.contains("| ringway | 1 | 4 | 0 | 0 |"),
        "{}",
        c.report
    );
}

/// What a sidecar-pair run must show: no problem (every inbound half that
/// requires client certificates refused a client without one and admitted
/// one with), no error on any run, the generator in plaintext, each pair's
/// CPU split by half with both halves charged at max throughput, an
/// admission check of each TLS pair's inbound half and none of the
/// plaintext ones, and the setup saying which pairs spoke what. Returns
/// the pairs whose halves spoke mutual TLS.
///
/// Every inbound half of a TLS pair requires a client certificate (its
/// admission check proves it can refuse), and every request through the
/// pair was answered: so every outbound half spoke TLS and presented its
/// certificate. The unit tests of `compare::system` also see the inbound
/// half tell the origin `x-forwarded-proto: https`.
fn assert_pair_runs(c: &Compared, plain: &[&str]) -> Vec<String> {
    c.assert_success();
    let tls = expected_tls_systems(c, &["ringway", "nginx", "haproxy"]);
    let plain: Vec<String> = expected_tls_systems(c, plain);
    let tcp = c.results["mode"] == "tcp";
    for run in c.array("runs") {
        let system = run["system"].as_str().expect("a system");
        assert_eq!(run["errors"], 0, "{run}");
        let raw = read_json(&c.dir.join(run["raw"].as_str().expect("a raw file")));
        assert!(raw["tls"].is_null(), "the clients speak plaintext: {raw}");
        if tcp {
            assert!(
                run["bytes_total"].as_u64().expect("bytes_total") > 0,
                "{run}"
            );
        } else {
            assert!(run["ok"].as_u64().expect("ok") > 0, "{run}");
        }
        if system == "direct" {
            assert!(run["halves"].is_null(), "{run}");
            continue;
        }
        let halves = &run["halves"];
        let (out, inb) = (
            halves["outbound_cpu_s"]
                .as_f64()
                .expect("the outbound half's CPU"),
            halves["inbound_cpu_s"]
                .as_f64()
                .expect("the inbound half's CPU"),
        );
        let cpu = run["cpu_s"].as_f64().expect("cpu_s");
        assert!((out + inb - cpu).abs() < 1e-9, "the halves add up: {run}");
        if run["offered"].is_null() {
            // A saturating run charges both processes.
            assert!(out > 0.0 && inb > 0.0, "{system}: {halves}");
        }
    }
    assert_admissions(c, "inbound", &tls, &tls);
    let pair = &c.results["setup"]["pair"];
    assert_eq!(pair["tls"], serde_json::json!(tls), "{pair}");
    assert_eq!(pair["client_auth"], serde_json::json!(tls), "{pair}");
    assert_eq!(pair["plaintext"], serde_json::json!(plain), "{pair}");
    assert!(
        c.results["setup"]["tls"].is_null(),
        "the clients speak plaintext"
    );
    for system in tls.iter().chain(&plain) {
        let files = c.dir.join("systems").join(system);
        assert!(files.join("outbound").is_dir() && files.join("inbound").is_dir());
    }
    for needle in ["## Sidecar pairs", "| system | run | CPU ", "outbound half"] {
        assert!(
            c.report.contains(needle),
            "report.md lacks {needle:?}:\n{}",
            c.report
        );
    }
    tls
}

/// The generated configs of a TLS pair of `kind`: the outbound half
/// originates mutual TLS to the inbound half's listener, verifying the CA
/// and the name; the inbound half requires the client certificate.
fn assert_pair_configs(c: &Compared, tls: &[String]) {
    let read = |system: &str, half: &str, file: &str| {
        std::fs::read_to_string(c.dir.join("systems").join(system).join(half).join(file))
            .unwrap_or_else(|e| panic!("{system} {half} {file}: {e}"))
    };
    let has = |text: &str, line: &str| text.lines().any(|l| l.trim() == line);
    for system in tls {
        match system.as_str() {
            "ringway" => {
                let out = read(system, "outbound", "ringway.toml");
                assert!(out.contains("sni = \"localhost\""), "{out}");
                assert!(out.contains("tls/outbound.pem\""), "{out}");
                assert!(!out.contains("client_ca"), "{out}");
                let inb = read(system, "inbound", "ringway.toml");
                assert!(inb.contains("require_client_cert = true"), "{inb}");
            }
            "nginx" => {
                let out = read(system, "outbound", "nginx.conf");
                for line in [
                    "proxy_ssl_verify on;",
                    "proxy_ssl_protocols TLSv1.3;",
                    "proxy_ssl_verify_depth 2;",
                    "proxy_ssl_name localhost;",
                ] {
                    assert!(has(&out, line), "{line}: {out}");
                }
                if c.results["mode"] == "http" {
                    assert!(has(&out, "proxy_pass https://origin;"), "{out}");
                    assert!(has(&out, "proxy_http_version 1.1;"), "{out}");
                } else {
                    assert!(has(&out, "proxy_ssl on;"), "{out}");
                }
                let inb = read(system, "inbound", "nginx.conf");
                assert!(has(&inb, "ssl_verify_client on;"), "{inb}");
            }
            "haproxy" => {
                let out = read(system, "outbound", "haproxy.cfg");
                assert!(
                    out.contains(" ssl verify required ca-file ")
                        && out.contains("sni str(localhost)"),
                    "{out}"
                );
                assert!(out.contains("outbound-bundle.pem\""), "{out}");
                let inb = read(system, "inbound", "haproxy.cfg");
                assert!(inb.contains("verify required"), "{inb}");
            }
            other => panic!("unexpected pair {other}"),
        }
    }
}

#[test]
fn compare_runs_sidecar_pairs_with_mutual_tls_between_their_halves() {
    let work = tempfile::tempdir().unwrap();
    let c = compare_shipped(work.path(), "sidecar-pair", &[]);
    let tls = assert_pair_runs(&c, &["ringway-plain", "nginx-plain", "haproxy-plain"]);
    assert_pair_configs(&c, &tls);
    // Every request through a pair, and every one the admission checks got
    // answered, reached the origin once.
    c.assert_origins_saw_every_request();
    // Latency added through the pair, against the origin alone.
    assert!(c.report.contains("added p50"), "{}", c.report);
    let row = c
        .report
        .lines()
        .find(|l| l.starts_with("| ringway | 200 req/s |"))
        .unwrap_or_else(|| panic!("no pair row at 200 req/s:\n{}", c.report));
    assert!(row.contains('%'), "{row}");
}

#[test]
fn compare_streams_tcp_through_sidecar_pairs_with_mutual_tls() {
    let work = tempfile::tempdir().unwrap();
    let c = compare_shipped(work.path(), "sidecar-pair-tcp", &[]);
    let tls = assert_pair_runs(&c, &["ringway-plain", "nginx-plain", "haproxy-plain"]);
    assert_pair_configs(&c, &tls);
    for a in c.array("admissions") {
        assert_eq!(a["with_certificate"]["kind"], "open", "{a}");
    }
    assert!(
        c.report.contains("| ringway | max throughput |"),
        "{}",
        c.report
    );
}

/// The access log scenario, briefly: every system that logs wrote one
/// JSON line per request it carried in each turn (the runner's count,
/// checked here against the raw load outputs), ringway queued a record per
/// request and dropped none, and the systems without a log wrote none.
#[test]
fn compare_logs_every_request_of_each_proxy_beside_it_without() {
    let work = tempfile::tempdir().unwrap();
    let c = compare_shipped(work.path(), "small-keepalive-access-log", &[]);
    c.assert_success();
    c.assert_origins_saw_every_request();
    let logging = expected_tls_systems(&c, &["ringway-log", "nginx-log", "haproxy-log"]);
    assert_eq!(
        c.results["setup"]["observe"]["access_log"],
        serde_json::json!(logging)
    );
    let observed = c.array("observed");
    assert_eq!(observed.len(), logging.len(), "{observed:?}");
    for o in observed {
        let system = o["system"].as_str().expect("a system");
        assert!(logging.iter().any(|l| l == system), "{o}");
        // What the raw outputs of its runs say it sent.
        let sent: u64 = c
            .array("runs")
            .iter()
            .filter(|r| r["system"] == system)
            .map(|r| r["sent"].as_u64().expect("sent"))
            .sum();
        assert_eq!(o["requests"].as_u64(), Some(sent), "{o}");
        let log = &o["access_log"];
        assert_eq!(log["lines"].as_u64(), Some(sent), "{system}: {o}");
        assert_eq!(log["json"], true, "{o}");
        let head = c.dir.join("systems").join(system).join("access.head.log");
        let first = std::fs::read_to_string(&head).unwrap();
        let line: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        assert_eq!(line["status"], 200, "{system}: {line}");
        assert!(!c
            .dir
            .join("systems")
            .join(system)
            .join("access.log")
            .exists());
        if system == "ringway-log" {
            assert_eq!(log["ringway"]["records"].as_f64(), Some(sent as f64), "{o}");
            assert_eq!(log["ringway"]["dropped"].as_f64(), Some(0.0), "{o}");
        }
    }
    for quiet in ["ringway", "nginx", "haproxy"] {
        assert!(!c
            .dir
            .join("systems")
            .join(quiet)
            .join("access.head.log")
            .exists());
    }
    let config = std::fs::read_to_string(c.dir.join("systems/ringway-log/ringway.toml")).unwrap();
    assert!(config.contains("format = \"json\""), "{config}");
    assert!(
        c.report.contains("## Access logs and traces"),
        "{}",
        c.report
    );
    let ratios = c.array("ratios");
    assert!(ratios
        .iter()
        .any(|t| t["system"] == "ringway-log" && t["against"] == "ringway" && t["bar"] == 1.15));
}

/// The tracing scenario, briefly: ringway traced about a tenth of the
/// requests, its spans reached the runner's collector sink, none were
/// dropped, and ringway without tracing has no `[tracing]`.
#[test]
fn compare_exports_the_spans_of_a_tenth_of_the_requests_to_its_collector() {
    let work = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bench/scenarios/small-keepalive-tracing.toml");
    let scenario = std::fs::read_to_string(file)
        .unwrap()
        .replace("proxy = 1", &format!("proxy = {}", proxy_core()));
    // Windows long enough for batches of spans to go out within the turn.
    let c = compare(
        work.path(),
        &scenario,
        &[
            "--runs",
            "1",
            "--warmup",
            "0s",
            "--duration",
            "2s",
            "--rates",
            "500",
            "--quiet-wait",
            "0s",
            "--retries",
            "0",
        ],
    );
    c.assert_success();
    let observed = c.array("observed");
    assert_eq!(observed.len(), 1, "{observed:?}");
    let o = &observed[0];
    assert_eq!(o["system"], "ringway-traced");
    let t = &o["tracing"];
    let requests = o["requests"].as_u64().unwrap() as f64;
    let traced = t["traced"].as_f64().unwrap();
    assert!(
        traced > 0.05 * requests && traced < 0.15 * requests,
        "{traced} of {requests}: {o}"
    );
    assert_eq!(t["spans_dropped"].as_f64(), Some(0.0), "{o}");
    assert!(t["collector_posts"].as_u64().unwrap() >= 1, "{o}");
    assert!(t["exported"].as_f64().unwrap() > 0.0, "{o}");
    let traced_config =
        std::fs::read_to_string(c.dir.join("systems/ringway-traced/ringway.toml")).unwrap();
    assert!(traced_config.contains("sample = 0.1"), "{traced_config}");
    let plain = std::fs::read_to_string(c.dir.join("systems/ringway/ringway.toml")).unwrap();
    assert!(!plain.contains("[tracing]"), "{plain}");
}

/// The shipped scenario `name`, with its cores for this machine and the
/// replacements `edits` (old, new) made to its text.
fn shipped_text(name: &str, edits: &[(&str, &str)]) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bench/scenarios")
        .join(format!("{name}.toml"));
    let mut text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    for (old, new) in [("proxy = 1", format!("proxy = {}", proxy_core()))]
        .into_iter()
        .chain(edits.iter().map(|(o, n)| (*o, n.to_string())))
    {
        assert!(text.contains(old), "{name}.toml has no {old:?}");
        text = text.replace(old, &new);
    }
    text
}

/// The idle-policy scenario: ringway with a route rate limit far above the
/// offered load beside ringway without; the limit is in the variant's
/// route and nowhere else, its counters say it refused nothing, and the
/// report prices it against ringway with the 1.03x bar.
#[test]
fn compare_prices_a_rate_limit_that_is_never_reached() {
    let work = tempfile::tempdir().unwrap();
    let scenario = shipped_text("small-keepalive-rate-limit", &[]);
    let c = compare(
        work.path(),
        &scenario,
        &[
            "--runs",
            "1",
            "--warmup",
            "0s",
            "--duration",
            "300ms",
            "--rates",
            "500",
            "--systems",
            "direct,ringway,ringway-rate-limit",
            "--quiet-wait",
            "0s",
            "--retries",
            "0",
        ],
    );
    c.assert_success();
    let config =
        std::fs::read_to_string(c.dir.join("systems/ringway-rate-limit/ringway.toml")).unwrap();
    // On the catch-all route, after its forward: the route's last keys
    // before the clusters.
    let route = &config[config.find("[[listeners.routes]]").expect("a route")
        ..config.find("[[clusters]]").expect("a cluster")];
    assert!(route.contains("cluster = \"origin\""), "{route}");
    let limit = route
        .lines()
        .find(|l| l.trim_start().starts_with("rate_limit = {"))
        .unwrap_or_else(|| panic!("no rate_limit in the route:\n{config}"));
    for key in ["requests_per_second = 10000000", "burst = 1000000"] {
        assert!(limit.contains(key), "{limit}");
    }
    let plain = std::fs::read_to_string(c.dir.join("systems/ringway/ringway.toml")).unwrap();
    assert!(!plain.contains("rate_limit"), "{plain}");

    // The limiter was consulted and refused nothing: every request of the
    // variant's runs was answered well, and its counters say so.
    let refusals = c.array("refusals");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["system"], "ringway-rate-limit");
    assert_eq!(refusals[0]["answered_4xx"], 0, "{refusals:?}");
    assert_eq!(refusals[0]["rate_limited"], 0, "{refusals:?}");
    for run in c.array("runs") {
        assert_eq!(run["errors"], 0, "{run}");
    }
    c.assert_origins_saw_every_request();
    let ratios = c.array("ratios");
    let priced = ratios
        .iter()
        .find(|t| t["system"] == "ringway-rate-limit" && t["against"] == "ringway")
        .unwrap_or_else(|| panic!("no ratio of the limit: {ratios:?}"));
    assert_eq!(priced["bar"].as_f64(), Some(1.03), "{priced}");
    for needle in ["## Idle policy", "| ringway-rate-limit | 1 | 0 | 0 |"] {
        assert!(c.report.contains(needle), "no {needle:?}:\n{}", c.report);
    }
}

/// The rollout demo, shortened: ringway alone, its route split between the
/// stable and the canary origin with a rollout, the canary's origin
/// failing a share of its requests part way. The plot is a whole SVG
/// document with its three panels and both clusters' series, the decisions
/// of the run are in the results and the report, and the sampler's last
/// reading agrees with the last decision it saw. Whether the canary climbs,
/// holds or rolls back within the short window is left to the machine's
/// pace: nothing here depends on it.
#[test]
fn compare_plots_a_rollout_with_its_decisions() {
    let work = tempfile::tempdir().unwrap();
    let scenario = shipped_text(
        "rollout-demo",
        &[
            ("interval = \"2s\"", "interval = \"300ms\""),
            ("min_requests = 100", "min_requests = 20"),
            ("sample_every = \"250ms\"", "sample_every = \"50ms\""),
            ("at = \"5s\"", "at = \"1s\""),
            ("connections = 32", "connections = 8"),
        ],
    );
    let c = compare(
        work.path(),
        &scenario,
        &[
            "--warmup",
            "200ms",
            "--duration",
            "2s",
            "--rates",
            "1000",
            "--quiet-wait",
            "0s",
            "--retries",
            "0",
        ],
    );
    c.assert_success();
    let config = std::fs::read_to_string(c.dir.join("systems/ringway/ringway.toml")).unwrap();
    let line = |start: &str| {
        config
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} in:\n{config}"))
    };
    assert_eq!(
        line("split = "),
        "split = [{ cluster = \"stable\", weight = 95 }, { cluster = \"canary\", weight = 5 }]"
    );
    let rollout = line("rollout = {");
    for key in [
        "canary = \"canary\"",
        "stable = \"stable\"",
        "interval = \"300ms\"",
        "min_requests = 20",
    ] {
        assert!(rollout.contains(key), "{rollout}");
    }

    // One run; both origins got requests (the canary from its first 5%).
    let runs = c.array("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    let origins = runs[0]["upstream"]["origins"].as_array().unwrap();
    for o in origins {
        assert!(o["requests"].as_u64().unwrap() > 0, "{runs:?}");
    }
    let traces = c.array("rollouts");
    assert_eq!(traces.len(), 1, "{traces:?}");
    let t = &traces[0];
    assert_eq!(t["failed_polls"], 0, "{t}");
    let samples = t["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{t}");
    let decisions = t["decisions"].as_array().unwrap();
    assert_eq!(decisions[0]["decision"], "start", "{t}");
    // The last poll read the weight the last decision left.
    let last = decisions.last().unwrap();
    assert_eq!(
        samples.last().unwrap()["weight"].as_f64(),
        last["weight"].as_f64(),
        "{t}"
    );
    // The canary's fault, on the trace's clock: warm-up plus its `at`.
    assert_eq!(t["canary_fault_s"].as_f64(), Some(1.2), "{t}");

    let label = t["label"].as_str().unwrap();
    let svg = std::fs::read_to_string(c.dir.join(format!("rollout-{label}.svg"))).unwrap();
    let doc = ringway_tests::xml::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg:.400}"));
    assert_eq!(doc.root, "svg");
    for wanted in [
        "canary weight (%)",
        "error rate per interval (%)",
        "p99 per interval (ms, log scale)",
        "canary weight",
        "canary origin misbehaves",
    ] {
        assert!(
            doc.texts.iter().any(|x| x == wanted),
            "no {wanted:?}: {:?}",
            doc.texts
        );
    }
    // Each panel with figures has both clusters' series, when a decision
    // of the load judged them.
    let judged = decisions
        .iter()
        .any(|d| d["at_s"].is_number() && d["canary"]["error_rate"].is_number());
    if judged {
        for side in ["canary", "stable"] {
            let n = doc.texts.iter().filter(|x| *x == side).count();
            assert_eq!(n, 2, "{side} in both figure panels: {:?}", doc.texts);
        }
    }
    for needle in [
        "## Rollout",
        "Only ringway runs here",
        &format!("![rollout of {label}](rollout-{label}.svg)"),
        "| at (s) | decision |",
        "| before the load | start |",
    ] {
        assert!(c.report.contains(needle), "no {needle:?}:\n{}", c.report);
    }
}

/// Whether `perf` runs here (the system-call round needs it).
fn has_perf() -> bool {
    Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The reactor `system` said it ran on (`setup.reactors`).
fn reactor_said<'a>(c: &'a Compared, system: &str) -> Option<&'a str> {
    c.results["setup"]["reactors"]
        .as_array()
        .expect("setup.reactors")
        .iter()
        .find(|r| r["system"] == system)
        .unwrap_or_else(|| panic!("no reactor of {system}: {}", c.results["setup"]))["said"]
        .as_str()
}

/// The system-call counts of `system`, one per counted run, each checked:
/// a positive total, divided by the run's requests (HTTP) or GB (TCP) and
/// by nothing else, its most frequent calls counted and in order, and
/// perf's output and the run's raw file kept. Returns the named calls of
/// each count.
fn checked_syscalls(c: &Compared, system: &str, tcp: bool) -> Vec<Vec<String>> {
    let counts: Vec<&Value> = c
        .array("syscalls")
        .iter()
        .filter(|x| x["system"] == system)
        .collect();
    let runs = if tcp { 1 } else { 2 };
    assert_eq!(counts.len(), runs, "a count per rate and max: {counts:?}");
    let mut named = Vec::new();
    for x in counts {
        assert!(x["problem"].is_null(), "{x}");
        let total = x["syscalls"].as_u64().expect("a count");
        assert!(total > 0, "{x}");
        let (per, unused, over) = if tcp {
            let gb = x["bytes_total"].as_u64().expect("bytes") as f64 / 1e9;
            ("per_gb", "per_request", gb)
        } else {
            let sent = x["sent"].as_u64().expect("sent") as f64;
            ("per_request", "per_gb", sent)
        };
        assert!(over > 0.0, "the run carried something: {x}");
        let per = x[per].as_f64().unwrap_or_else(|| panic!("no {per}: {x}"));
        assert!((per - total as f64 / over).abs() <= 1e-9 * per, "{x}");
        assert!(x[unused].is_null(), "{x}");
        let top = x["top"].as_array().expect("top");
        assert!(!top.is_empty() && top.len() <= 5, "{x}");
        let top_counts: Vec<u64> = top
            .iter()
            .map(|t| t[1].as_u64().expect("a count"))
            .collect();
        assert!(top_counts.iter().all(|n| *n > 0), "{x}");
        assert!(top_counts.windows(2).all(|w| w[0] >= w[1]), "{x}");
        let other = x["other"].as_u64().expect("other");
        assert!(top_counts.iter().sum::<u64>() + other <= total, "{x}");
        assert!(
            c.dir
                .join(x["perf"].as_str().expect("perf's file"))
                .is_file(),
            "{x}"
        );
        assert!(
            c.dir
                .join(x["raw"].as_str().expect("the raw file"))
                .is_file(),
            "{x}"
        );
        // A saturating run costs the system some CPU (a slow one may take
        // less than a clock tick: no figure).
        let cpu = x["cpu_while_counted"].as_f64();
        if x["offered"].is_null() {
            assert!(cpu.is_some_and(|v| v > 0.0), "{x}");
        } else {
            assert!(cpu.is_none_or(|v| v > 0.0), "{x}");
        }
        named.push(
            top.iter()
                .map(|t| t[0].as_str().expect("a call's name").to_owned())
                .collect(),
        );
    }
    named
}

/// The calls a reactor cannot run without: the ring's entry, or an epoll
/// wait.
fn reactor_calls(said: Option<&str>) -> &'static [&'static str] {
    if said == Some("epoll") {
        &["epoll_wait", "epoll_pwait", "epoll_pwait2"]
    } else {
        &["io_uring_enter"]
    }
}

/// The epoll scenarios' system-call round, with ringway as it comes
/// (io_uring here): after the measured runs, a counted run at the offered
/// rate and at max throughput (max only in TCP mode), each a positive
/// count of ringway's system calls per request (per GB), its reactor's own
/// call among the most frequent; the counted runs' requests reached the
/// origin too. Without perf the report says n/a and the run succeeds.
#[test]
fn compare_counts_ringways_system_calls_per_request_and_per_gb() {
    for (name, tcp) in [("epoll-keepalive", false), ("epoll-tcp", true)] {
        let work = tempfile::tempdir().unwrap();
        let c = compare_shipped(work.path(), name, &["--systems", "direct,ringway"]);
        c.assert_success();
        assert!(
            c.report.contains("## System calls"),
            "{name}:\n{}",
            c.report
        );
        if !has_perf() {
            let notes = c.results["notes"].to_string();
            assert!(notes.contains("system calls were not counted"), "{notes}");
            assert!(c.report.contains("| ringway | n/a |"), "{}", c.report);
            continue;
        }
        assert!(c.results["setup"]["syscalls"]["unavailable"].is_null());
        let said = reactor_said(&c, "ringway");
        assert_ne!(
            said,
            Some("epoll"),
            "ringway as it comes runs on io_uring here"
        );
        for top in checked_syscalls(&c, "ringway", tcp) {
            assert!(
                reactor_calls(said)
                    .iter()
                    .any(|r| top.iter().any(|t| t == r)),
                "{name}: no {:?} among {top:?}",
                reactor_calls(said)
            );
        }
        if !tcp {
            c.assert_origins_saw_every_request();
        }
        let unit = if tcp { "per GB" } else { "per request" };
        for needle in [
            format!("| system | system calls {unit} | vs ringway |"),
            "| ringway | ".to_owned(),
        ] {
            let section = &c.report[c.report.find("## System calls").unwrap()..];
            assert!(section.contains(&needle), "no {needle:?}:\n{section}");
        }
    }
}

/// `127.0.0.1:<port>` with the port left out: two systems' generated
/// configurations differ in their own listener and admin ports only.
fn without_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("127.0.0.1:") {
        let (head, tail) = rest.split_at(at + "127.0.0.1:".len());
        out.push_str(head);
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Issue 17's comparison, briefly: `ringway-epoll` is ringway's own
/// configuration (ports aside) started with `--io-backend epoll`; it says
/// it runs on epoll, carries every request without an error, and its
/// system calls are epoll's (waits, no ring entries) while ringway's are
/// the ring's; its CPU is set against ringway's (bar 1.15), nginx's and
/// HAProxy's (bar 1), whichever of those are installed.
///
/// Needs the epoll reactor and `ringway run --io-backend` (issue 17).
#[test]
fn compare_runs_ringway_on_epoll_beside_io_uring_and_the_peers() {
    for (name, tcp) in [("epoll-keepalive", false), ("epoll-tcp", true)] {
        let work = tempfile::tempdir().unwrap();
        let c = compare_shipped(work.path(), name, &[]);
        c.assert_success();
        let config = |system: &str| {
            let path = c.dir.join(format!("systems/{system}/ringway.toml"));
            without_ports(&std::fs::read_to_string(&path).unwrap())
        };
        assert_eq!(config("ringway-epoll"), config("ringway"), "{name}");
        assert_eq!(reactor_said(&c, "ringway-epoll"), Some("epoll"), "{name}");
        assert_ne!(reactor_said(&c, "ringway"), Some("epoll"), "{name}");
        let reactors = c.results["setup"]["reactors"].to_string();
        assert!(reactors.contains("\"asked\":\"epoll\""), "{reactors}");
        assert!(
            c.report
                .contains("ringway-epoll on epoll (`--io-backend epoll`)"),
            "{}",
            c.report
        );
        let runs: Vec<&Value> = c
            .array("runs")
            .iter()
            .filter(|m| m["system"] == "ringway-epoll")
            .collect();
        assert_eq!(runs.len(), if tcp { 1 } else { 2 }, "{runs:?}");
        for m in &runs {
            assert_eq!(m["errors"], 0, "{m}");
            if m["offered"].is_null() {
                // Measured as ringway is: its processes' CPU over a
                // saturating run.
                assert!(m["cpu_s"].as_f64().is_some_and(|s| s > 0.0), "{m}");
            }
        }
        if !tcp {
            c.assert_origins_saw_every_request();
        }
        let ratios = c.array("ratios");
        for (against, bar) in [("ringway", 1.15), ("nginx", 1.0), ("haproxy", 1.0)] {
            let table = ratios
                .iter()
                .find(|t| t["system"] == "ringway-epoll" && t["against"] == against)
                .unwrap_or_else(|| panic!("no ratio against {against}: {ratios:?}"));
            assert_eq!(table["bar"].as_f64(), Some(bar), "{table}");
            let ran = c.array("systems").iter().any(|s| s == against);
            let rows = table["rows"].as_array().expect("rows");
            assert_eq!(rows.len(), if tcp { 1 } else { 2 }, "{table}");
            if ran {
                // At max throughput both systems spent CPU (a slow run may
                // spend less than a clock tick, and have no ratio).
                let max = rows.iter().find(|r| r["offered"].is_null());
                let max = max.unwrap_or_else(|| panic!("no max row: {table}"));
                assert!(max["ratio"].as_f64().is_some_and(|r| r > 0.0), "{max}");
            }
        }
        if !has_perf() {
            continue;
        }
        for top in checked_syscalls(&c, "ringway-epoll", tcp) {
            assert!(
                !top.iter().any(|t| t == "io_uring_enter"),
                "{name}: ring entries on epoll: {top:?}"
            );
            assert!(
                reactor_calls(Some("epoll"))
                    .iter()
                    .any(|r| top.iter().any(|t| t == r)),
                "{name}: no epoll wait among {top:?}"
            );
        }
        for top in checked_syscalls(&c, "ringway", tcp) {
            assert!(top.iter().any(|t| t == "io_uring_enter"), "{top:?}");
        }
    }
}

/// Without a `perf` that runs, a comparison asked to count system calls
/// (`--syscalls`, on a scenario that does not itself) still runs whole: the
/// report says why they were not counted and shows n/a for each proxy, and
/// nothing is a problem.
#[test]
fn compare_without_perf_says_the_system_calls_are_not_counted() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("scenario.toml");
    let scenario = shipped_text("small-keepalive", &[]);
    assert!(!scenario.contains("[syscalls]"), "{scenario}");
    std::fs::write(&file, scenario).unwrap();
    let out_dir = work.path().join("results");
    let output = {
        let _turn = bench::turn();
        Command::new(bench::binary())
            .arg("compare")
            .arg(&file)
            .arg("--out")
            .arg(&out_dir)
            .arg("--ringway")
            .arg(proxy::binary())
            .args([
                "--systems",
                "direct,ringway",
                "--runs",
                "1",
                "--rates",
                "200",
            ])
            .args([
                "--warmup",
                "0s",
                "--duration",
                "300ms",
                "--quiet-wait",
                "0s",
            ])
            .args(["--retries", "0", "--idle-connections", "0", "--syscalls"])
            .env("RINGWAY_BENCH_PERF", work.path().join("no-perf-here"))
            .output()
            .expect("run ringway-bench compare")
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = Path::new(stdout.trim())
        .parent()
        .expect("the report's directory");
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["problems"], serde_json::json!([]));
    assert_eq!(results["syscalls"], serde_json::json!([]));
    let why = results["setup"]["syscalls"]["unavailable"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {}", results["setup"]));
    assert!(
        why.contains("no-perf-here") && why.contains("linux-perf"),
        "{why}"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for needle in [
        "system calls were not counted (n/a in the report)",
        "## System calls\n\nNot counted: ",
        "| ringway | n/a |",
    ] {
        assert!(report.contains(needle), "no {needle:?}:\n{report}");
    }
}
