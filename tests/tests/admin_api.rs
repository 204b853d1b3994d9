//! The admin API (docs/admin.md): its routes and status codes, `/ready`,
//! `/config`, `/stats` and `/metrics` against the traffic sent, and
//! `ringway stats`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use prometheus_parse::Value;
use ringway_kit::admin::{self, Connection, Metrics};
use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::origin::CountingOrigin;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::data;
use ringway_tests::net::set_timeouts;
use ringway_tests::up_to_two_cores as cores;
use ringway_tests::{client, ProxyConfig};

const MIB: u64 = 1024 * 1024;
/// Bound on waits for things the proxy does soon.
const WAIT: Duration = Duration::from_secs(10);
/// How long the proxy may take to start: a debug build on a busy machine.
const START: Duration = Duration::from_secs(20);
/// Bound on a run of `ringway stats` or `ringway check`: more than the
/// stats client's own 30 s wait for an answer.
const CLI_WAIT: Duration = Duration::from_secs(40);

/// An echoing origin and a proxy in front of it whose admin API answers.
fn start() -> (CountingOrigin, ProxyConfig, Ringway) {
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).worker_cores(&cores());
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);
    (origin, config, proxy)
}

/// Echoes `len` bytes through the proxy; panics unless all come back.
fn echo(listen: SocketAddr, len: u64) {
    let stream = client(listen);
    let (sent, echoed) = data::round_trip(&stream, len);
    let sent = sent.expect("sending");
    assert_eq!(sent.bytes, len);
    assert_eq!(echoed.expect("reading the echo"), sent);
}

/// Whether `text` has `number` as a whole word, e.g. "2" in "2/2 workers".
fn has_number(text: &str, number: usize) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|word| word == number.to_string())
}

#[test]
fn routes_answer_with_their_status_codes() {
    let (_origin, config, proxy) = start();
    let cases = [
        ("GET", "/healthz", 200),
        ("GET", "/ready", 200),
        ("GET", "/config", 200),
        ("GET", "/stats", 200),
        ("GET", "/metrics", 200),
        ("GET", "/nothing-here", 404),
        ("POST", "/nothing-here", 404),
        ("GET", "/", 404),
        ("POST", "/healthz", 405),
        ("POST", "/ready", 405),
        ("PUT", "/config", 405),
        ("DELETE", "/config", 405),
        ("GET", "/reload", 405),
        ("POST", "/stats", 405),
        ("POST", "/metrics", 405),
        ("GET", "/clusters/app/endpoints", 405),
    ];
    for (method, path, status) in cases {
        let body = (method != "GET").then_some("");
        let response = admin::request(config.admin, method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(response.status, status, "{method} {path}: {response:?}");
        assert!(
            response.header("content-type").is_some(),
            "{method} {path} has a content-type: {response:?}"
        );
    }
    let health = admin::get(config.admin, "/healthz");
    assert_eq!(health.body.trim(), "ok", "{health:?}");
    proxy.stop().assert_clean();
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let (_origin, config, proxy) = start();
    let mut connection = Connection::open(config.admin).expect("connecting to the admin API");
    for (path, status) in [
        ("/healthz", 200),
        ("/stats", 200),
        ("/nothing-here", 404),
        ("/metrics", 200),
        ("/config", 200),
    ] {
        let response = connection
            .send("GET", path, None, false)
            .unwrap_or_else(|e| panic!("GET {path} on a kept-alive connection: {e}"));
        assert_eq!(response.status, status, "GET {path}: {response:?}");
    }
    let last = connection
        .send("GET", "/healthz", None, true)
        .expect("a last request on the same connection");
    assert_eq!(last.status, 200, "{last:?}");
    proxy.stop().assert_clean();
}

/// `GET /config` is the effective configuration: what `ringway check
/// --effective` prints for the file, and itself a valid file.
#[test]
fn config_is_the_effective_configuration() {
    let (_origin, config, proxy) = start();
    let response = admin::get(config.admin, "/config");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("x-ringway-generation"),
        Some("1"),
        "{response:?}"
    );

    let served = write_config(&response.body);
    let served_path = served.path().to_str().expect("a UTF-8 temp path");
    let check = run_to_exit(&["check", served_path], CLI_WAIT);
    assert!(
        check.status.success(),
        "ringway check on GET /config's answer: {check:?}\n{}",
        response.body
    );

    let original = write_config(&config.to_toml());
    let original_path = original.path().to_str().expect("a UTF-8 temp path");
    let effective = run_to_exit(&["check", "--effective", original_path], CLI_WAIT);
    assert!(effective.status.success(), "{effective:?}");
    assert_eq!(
        response.body,
        String::from_utf8_lossy(&effective.stdout),
        "GET /config and `ringway check --effective` of the file"
    );
    proxy.stop().assert_clean();
}

/// From the moment the process starts, whenever `/ready` says 200 the
/// workers serve: a connection through the listener round-trips.
#[test]
fn ready_means_the_workers_serve() {
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).worker_cores(&cores());
    let proxy = Ringway::spawn(&config.to_toml());

    let deadline = Instant::now() + START;
    let mut answers = BTreeMap::<u16, usize>::new();
    let ready = loop {
        match admin::request(config.admin, "GET", "/ready", None) {
            Ok(response) if response.status == 200 => break response,
            Ok(response) => {
                assert_eq!(response.status, 503, "GET /ready: {response:?}");
                *answers.entry(response.status).or_default() += 1;
            }
            // Not listening yet.
            Err(_) => *answers.entry(0).or_default() += 1,
        }
        assert!(
            Instant::now() < deadline,
            "GET /ready never answered 200 within {START:?} ({answers:?}); stderr:\n{}",
            proxy.stderr()
        );
        thread::sleep(Duration::from_millis(5));
    };
    // At once, before anything else: the listener must serve.
    echo(config.listen, MIB);
    assert!(
        has_number(&ready.body, cores().len()),
        "the /ready body names the {} workers: {:?}",
        cores().len(),
        ready.body
    );
    proxy.wait_for_stderr("; ready", WAIT);
    proxy.stop().assert_clean();
}

/// Every metric docs/admin.md lists: its type, and whether it has one
/// sample per worker.
const DOCUMENTED: &[(&str, &str, bool)] = &[
    ("ringway_config_generation", "gauge", false),
    ("ringway_config_reloads_total", "counter", false),
    ("ringway_config_reload_failures_total", "counter", false),
    ("ringway_ready", "gauge", false),
    ("ringway_publish_latency_seconds", "summary", false),
    ("ringway_worker_generation", "gauge", true),
    ("ringway_connections_accepted_total", "counter", true),
    ("ringway_connections_active", "gauge", true),
    ("ringway_bytes_from_clients_total", "counter", true),
    ("ringway_bytes_from_upstreams_total", "counter", true),
    ("ringway_copied_bytes_total", "counter", true),
    ("ringway_accept_errors_total", "counter", true),
    ("ringway_upstream_connect_failures_total", "counter", true),
    ("ringway_upstream_connect_timeouts_total", "counter", true),
    ("ringway_no_upstream_total", "counter", true),
    ("ringway_resets_total", "counter", true),
    ("ringway_idle_timeouts_total", "counter", true),
    ("ringway_drain_cuts_total", "counter", true),
    ("ringway_ring_sqes_total", "counter", true),
    ("ringway_ring_cqes_total", "counter", true),
    ("ringway_ring_enters_total", "counter", true),
    ("ringway_ring_enobufs_total", "counter", true),
    ("ringway_ring_rearms_total", "counter", true),
];

/// The `# TYPE` of every family, and the families with a `# HELP`, read
/// from the raw exposition.
fn declared(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut types = BTreeMap::new();
    let mut helps = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("#"), Some("TYPE"), Some(name), Some(kind)) => {
                types.insert(name.to_owned(), kind.to_owned());
            }
            (Some("#"), Some("HELP"), Some(name), Some(_)) => {
                helps.insert(name.to_owned());
            }
            _ => {}
        }
    }
    (types, helps)
}

/// Checks that every sample in the exposition belongs to a family with
/// `# HELP` and `# TYPE` lines, and that every documented metric is there
/// with its type and, where per worker, one sample per worker.
fn assert_well_formed(metrics: &Metrics, workers: usize) {
    let (types, helps) = declared(&metrics.text);
    for line in metrics.text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(['{', ' '])
            .next()
            .unwrap_or_else(|| panic!("an empty sample line"));
        let family = ["_sum", "_count", "_bucket"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| {
                types
                    .get(*base)
                    .is_some_and(|t| t == "summary" || t == "histogram")
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family) && helps.contains(family),
            "sample {line:?}: family {family} lacks # HELP or # TYPE:\n{}",
            metrics.text
        );
    }
    let indexes: BTreeSet<String> = (0..workers).map(|i| i.to_string()).collect();
    for &(name, kind, per_worker) in DOCUMENTED {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(kind),
            "# TYPE of {name}:\n{}",
            metrics.text
        );
        let samples = metrics.of(name);
        if per_worker {
            let labels: BTreeSet<String> = samples
                .iter()
                .filter_map(|s| s.labels.get("worker").map(str::to_owned))
                .collect();
            assert_eq!(labels, indexes, "{name}: one sample per worker");
            assert_eq!(samples.len(), workers, "{name}: one sample per worker");
        } else if kind != "summary" {
            assert_eq!(samples.len(), 1, "{name}: one sample:\n{}", metrics.text);
        }
    }
    let summary = metrics.of("ringway_publish_latency_seconds");
    let quantiles: Vec<f64> = match summary.as_slice() {
        [sample] => match &sample.value {
            Value::Summary(q) => q.iter().map(|q| q.quantile).collect(),
            other => panic!("ringway_publish_latency_seconds is {other:?}"),
        },
        other => panic!("ringway_publish_latency_seconds: {other:?}"),
    };
    assert_eq!(quantiles, [0.5, 0.99, 1.0], "{}", metrics.text);
    metrics.sum("ringway_publish_latency_seconds_sum");
    metrics.sum("ringway_publish_latency_seconds_count");
}

/// Known traffic through the proxy shows up in `/metrics`, exactly.
#[test]
fn metrics_match_the_traffic() {
    let (_origin, config, proxy) = start();
    let sizes = [1, 10, 4096, 100_000, MIB, 3 * MIB + 5, 17, 65_536];
    for &len in &sizes {
        echo(config.listen, len);
    }
    let connections = sizes.len() as f64;
    let bytes = sizes.iter().sum::<u64>() as f64;

    // The workers' counters may be a few increments behind for a moment.
    let metrics = poll("the counters catch up with the traffic", WAIT, || {
        let metrics = admin::metrics(config.admin);
        let seen = (
            metrics.sum("ringway_connections_accepted_total"),
            metrics.sum("ringway_bytes_from_clients_total"),
            metrics.sum("ringway_bytes_from_upstreams_total"),
            metrics.sum("ringway_connections_active"),
        );
        if seen == (connections, bytes, bytes, 0.0) {
            Ok(metrics)
        } else {
            Err(format!(
                "(accepted, from clients, from upstreams, active) {seen:?}"
            ))
        }
    });
    let response = admin::get(config.admin, "/metrics");
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        response.headers
    );
    assert_well_formed(&metrics, cores().len());
    assert_eq!(
        metrics.sum("ringway_connections_accepted_total"),
        connections
    );
    assert_eq!(metrics.sum("ringway_bytes_from_clients_total"), bytes);
    assert_eq!(metrics.sum("ringway_bytes_from_upstreams_total"), bytes);
    assert_eq!(metrics.sum("ringway_copied_bytes_total"), 0.0);
    for name in [
        "ringway_accept_errors_total",
        "ringway_upstream_connect_failures_total",
        "ringway_no_upstream_total",
        "ringway_resets_total",
        "ringway_drain_cuts_total",
    ] {
        assert_eq!(metrics.sum(name), 0.0, "{name}");
    }
    assert_eq!(metrics.sum("ringway_config_generation"), 1.0);
    assert_eq!(metrics.sum("ringway_ready"), 1.0);
    assert_eq!(metrics.sum("ringway_config_reloads_total"), 0.0);
    assert_eq!(metrics.sum("ringway_config_reload_failures_total"), 0.0);
    assert_eq!(
        metrics.sum("ringway_worker_generation"),
        cores().len() as f64
    );
    assert!(metrics.sum("ringway_ring_sqes_total") > 0.0);

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("accepted") as f64, connections);
}

/// The counters of a worker entry of `/stats` (and of `totals`).
const WORKER_COUNTERS: &[&str] = &[
    "accepted",
    "active",
    "bytes_from_clients",
    "bytes_from_upstreams",
    "copied_bytes",
    "accept_errors",
    "connect_failures",
    "connect_timeouts",
    "no_upstream",
    "resets",
    "idle_timeouts",
    "drain_cuts",
];

/// `/stats` has every field docs/admin.md shows, consistent with itself
/// and with the traffic and the reload that happened.
#[test]
fn stats_have_the_documented_fields() {
    let (_origin, config, proxy) = start();
    let sizes = [5, MIB + 1, 77_777];
    for &len in &sizes {
        echo(config.listen, len);
    }
    // A reload that changes nothing but the text still publishes a table.
    let applied = admin::post(
        config.admin,
        "/config",
        &format!("# reloaded\n{}", config.to_toml()),
    );
    // And a refused one: the text changes a fixed key.
    let refused = admin::post(
        config.admin,
        "/config",
        &config.to_toml().replace("5s", "6s"),
    );
    assert_eq!(applied.status, 200, "{applied:?}");
    assert_eq!(refused.status, 400, "{refused:?}");

    let bytes: u64 = sizes.iter().sum();
    let stats = poll("the counters catch up", WAIT, || {
        let stats = admin::stats(config.admin);
        let caught_up = stats.sum("accepted") == sizes.len() as u64
            && stats.sum("bytes_from_upstreams") == bytes
            && stats.sum("active") == 0
            // Every reload's publication is measured (docs/admin.md's
            // example counts the first table's too; either is accepted).
            && stats.u64("/publish_latency_us/count") >= stats.u64("/reloads");
        if caught_up {
            Ok(stats)
        } else {
            Err(stats.json.to_string())
        }
    });
    let json = &stats.json;
    assert_eq!(stats.generation(), 2, "{json}");
    assert_eq!(json["ready"], serde_json::Value::Bool(true), "{json}");
    assert_eq!(stats.u64("/reloads"), 1, "{json}");
    assert_eq!(stats.u64("/reload_failures"), 1, "{json}");
    let count = stats.u64("/publish_latency_us/count");
    assert!((1..=2).contains(&count), "publications measured: {json}");
    let (p50, p99, max) = (
        stats.u64("/publish_latency_us/p50"),
        stats.u64("/publish_latency_us/p99"),
        stats.u64("/publish_latency_us/max"),
    );
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{json}");

    let workers = stats.workers();
    assert_eq!(workers.len(), cores().len(), "{json}");
    for (i, &core) in cores().iter().enumerate() {
        assert_eq!(
            stats.u64(&format!("/workers/{i}/index")),
            i as u64,
            "{json}"
        );
        assert_eq!(
            stats.u64(&format!("/workers/{i}/core")),
            core as u64,
            "{json}"
        );
        assert_eq!(stats.u64(&format!("/workers/{i}/generation")), 2, "{json}");
        for ring in ["sqes", "cqes", "enters", "enobufs", "rearms"] {
            stats.u64(&format!("/workers/{i}/ring/{ring}"));
        }
        assert!(stats.u64(&format!("/workers/{i}/ring/sqes")) > 0, "{json}");
    }
    for counter in WORKER_COUNTERS {
        assert_eq!(
            stats.u64(&format!("/totals/{counter}")),
            stats.sum(counter),
            "totals.{counter} is the sum over the workers: {json}"
        );
    }
    assert_eq!(stats.sum("bytes_from_clients"), bytes, "{json}");
    assert_eq!(stats.sum("copied_bytes"), 0, "{json}");
    proxy.stop().assert_clean();
}

/// `ringway stats` prints `/stats` as a table, or as JSON with `--json`.
#[test]
fn stats_command_prints_a_table_or_the_json() {
    let (_origin, config, proxy) = start();
    echo(config.listen, 4096);
    let admin_arg = config.admin.to_string();

    let table = run_to_exit(&["stats", "--admin", &admin_arg], CLI_WAIT);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "ringway stats: {table:?}");
    assert!(text.contains("generation"), "ringway stats:\n{text}");
    // One row per worker: a line that starts with the worker's index.
    for i in 0..cores().len() {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(&i.to_string())),
            "ringway stats has a row for worker {i}:\n{text}"
        );
    }

    let json = run_to_exit(&["stats", "--admin", &admin_arg, "--json"], CLI_WAIT);
    assert!(json.status.success(), "ringway stats --json: {json:?}");
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| {
        panic!(
            "ringway stats --json is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&json.stdout)
        )
    });
    assert_eq!(parsed["generation"], 1, "{parsed}");
    assert_eq!(
        parsed["workers"].as_array().map(Vec::len),
        Some(cores().len()),
        "{parsed}"
    );
    proxy.stop().assert_clean();
}

/// A body over 16 MiB is refused with 413, and nothing changes.
#[test]
fn oversized_body_is_refused() {
    let (_origin, config, proxy) = start();
    let len = (16 << 20) + 1;
    let mut stream = TcpStream::connect(config.admin).expect("connecting");
    set_timeouts(&stream, WAIT);
    let mut writer = stream.try_clone().expect("cloning the socket");
    // The server may answer before it has read everything, and close: the
    // rest of the body then fails to go out, which is fine.
    let sender = thread::spawn(move || {
        let head = format!(
            "POST /config HTTP/1.1\r\nHost: ringway\r\nConnection: close\r\n\
             Content-Length: {len}\r\n\r\n"
        );
        writer.write_all(head.as_bytes())?;
        writer.write_all(&vec![b'#'; len])
    });
    let response = admin::read_response(&mut BufReader::new(&mut stream), false)
        .expect("an answer to the oversized POST");
    let _ = sender.join().expect("the sending thread panicked");
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(admin::stats(config.admin).generation(), 1);
    echo(config.listen, 1000);
    proxy.stop().assert_clean();
}
