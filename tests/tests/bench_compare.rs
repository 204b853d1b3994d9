//! Smoke test of `ringway-bench compare`: a short scenario with `direct` and
//! `ringway` only, run end to end (built-in origin, generated ringway config,
//! load runs, memory run, report), then checked against what the origin
//! itself counted.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ringway_tests::bench;
use ringway_tests::proxy;
use serde_json::Value;

/// The whole comparison takes a few seconds; this only guards a hang.
const COMPARE_TIMEOUT: Duration = Duration::from_secs(180);

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

#[test]
fn compare_runs_direct_and_ringway_and_reports_what_the_origin_saw() {
    let work = tempfile::tempdir().unwrap();
    // Two cores on the machines this runs on; with one, everything shares it.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let proxy_core = usize::from(cores > 1);
    let scenario = work.path().join("smoke.toml");
    std::fs::write(
        &scenario,
        format!(
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
"#
        ),
    )
    .unwrap();
    let out_dir = work.path().join("results");
    let mut cmd = Command::new(bench::binary());
    cmd.arg("compare")
        .arg(&scenario)
        .arg("--out")
        .arg(&out_dir)
        .arg("--ringway")
        .arg(proxy::binary());
    let output = proxy::run_command_to_exit(cmd, COMPARE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compare failed: {stderr}\n{stdout}"
    );
    let report = Path::new(stdout.trim());
    assert!(report.ends_with("report.md"), "stdout: {stdout}");
    let dir = report.parent().unwrap();
    assert!(
        dir.starts_with(&out_dir)
            && dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("smoke-")
    );

    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["systems"], serde_json::json!(["direct", "ringway"]));
    assert_eq!(results["problems"], serde_json::json!([]));
    let ceiling = &results["ceiling"];
    assert_eq!(ceiling["system"], "direct");
    assert!(ceiling["rps"].as_f64().unwrap() > 0.0, "{ceiling}");

    // Two systems × (two rates + max throughput).
    let runs = results["runs"].as_array().unwrap();
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
        }
    }

    // The memory run held every idle connection on ringway.
    let memory = results["memory"].as_array().unwrap();
    assert_eq!(memory.len(), 1, "{memory:?}");
    assert_eq!(memory[0]["system"], "ringway");
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
    let check = &results["origin_check"];
    assert_eq!(check["served"].as_u64(), Some(sent + 200), "{check}");
    assert_eq!(check["sent"].as_u64(), Some(sent + 200), "{check}");

    let md = std::fs::read_to_string(report).unwrap();
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
