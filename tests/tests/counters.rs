//! The per-worker counters as declared (`dataplane::counter::vocabulary`):
//! every declared series is served by `/metrics` and `/stats`, shown by
//! `ringway stats` and written in the exit report, under its declared
//! names; and `copied_bytes` counts what is copied.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dataplane::buf::{Group, PoolStats};
use dataplane::counter::vocabulary::{Cli, Declared, Field};
use dataplane::rt::RingStats;
use dataplane::stats::WorkerStats;
use ringway_kit::admin::{self, Metrics};
use ringway_kit::launcher::run_to_exit;
use ringway_kit::origin::CountingOrigin;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::data;
use ringway_tests::http_client::{HttpConn, Req};
use ringway_tests::http_config::HttpConfig;
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::up_to_two_cores as cores;
use ringway_tests::{client, ProxyConfig};

/// Bound on waits for things the proxy does soon.
const WAIT: Duration = Duration::from_secs(10);
/// Bound on a run of `ringway stats`: more than the stats client's own
/// 30 s wait for an answer.
const CLI_WAIT: Duration = Duration::from_secs(40);

/// The `# HELP` text and `# TYPE` of every family of an exposition.
fn families(text: &str) -> BTreeMap<String, (String, String)> {
    let mut help = BTreeMap::new();
    let mut kind = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, text)) = rest.split_once(' ') {
                help.insert(name.to_owned(), text.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, k)) = rest.split_once(' ') {
                kind.insert(name.to_owned(), k.to_owned());
            }
        }
    }
    help.into_iter()
        .filter_map(|(name, h)| Some((name.clone(), (h, kind.get(&name)?.clone()))))
        .collect()
}

/// Checks that family `f` is declared as declared and has a sample for
/// each of `labels` (label sets, as sorted `name=value` lists).
fn assert_family<S>(metrics: &Metrics, f: &Field<S>, labels: &BTreeSet<Vec<String>>) {
    let declared = families(&metrics.text);
    assert_eq!(
        declared.get(f.metric),
        Some(&(f.help.to_owned(), f.kind.name().to_owned())),
        "{}: # HELP and # TYPE:\n{}",
        f.metric,
        metrics.text
    );
    let seen: BTreeSet<Vec<String>> = metrics
        .of(f.metric)
        .iter()
        .map(|s| {
            let mut pairs: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.sort();
            pairs
        })
        .collect();
    assert_eq!(&seen, labels, "{}: one sample per label set", f.metric);
}

/// Every declared series of the worker, its ring and its buffer pools is
/// in `/metrics` (help, type, one sample per worker and group), in
/// `/stats` (per worker; the worker's also in `totals`, as the sum), in
/// `ringway stats` and in the exit report.
#[test]
fn every_declared_series_is_in_every_view() {
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).worker_cores(&cores());
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);
    let stream = client(config.listen);
    let (sent, echoed) = data::round_trip(&stream, 10_000);
    assert_eq!(echoed.expect("reading the echo"), sent.expect("sending"));
    drop(stream);
    let workers = cores().len();

    let per_worker: BTreeSet<Vec<String>> =
        (0..workers).map(|i| vec![format!("worker={i}")]).collect();
    let per_group: BTreeSet<Vec<String>> = (0..workers)
        .flat_map(|i| {
            Group::ALL
                .iter()
                .map(move |g| vec![format!("group={}", g.name()), format!("worker={i}")])
        })
        .collect();
    let metrics = admin::metrics(config.admin);
    for f in WorkerStats::FIELDS {
        assert_family(&metrics, f, &per_worker);
    }
    for f in RingStats::FIELDS {
        assert_family(&metrics, f, &per_worker);
    }
    for f in PoolStats::FIELDS {
        assert_family(&metrics, f, &per_group);
    }

    // Counters only grow and the connection above has ended: once `active`
    // is 0 everywhere, the totals are read in the same answer as the
    // workers' entries.
    let stats = poll("the connection has ended", WAIT, || {
        let stats = admin::stats(config.admin);
        if stats.sum("active") == 0 {
            Ok(stats)
        } else {
            Err(stats.json.to_string())
        }
    });
    for f in WorkerStats::FIELDS {
        assert_eq!(
            stats.u64(&format!("/totals/{}", f.json)),
            stats.sum(f.json),
            "totals.{} is the sum over the workers",
            f.json
        );
    }
    for i in 0..workers {
        for f in RingStats::FIELDS {
            stats.u64(&format!("/workers/{i}/ring/{}", f.json));
        }
        for g in Group::ALL {
            for f in PoolStats::FIELDS {
                stats.u64(&format!("/workers/{i}/buffers/{}/{}", g.name(), f.json));
            }
        }
    }

    let admin_arg = config.admin.to_string();
    let table = run_to_exit(&["stats", "--admin", &admin_arg], CLI_WAIT);
    assert!(table.status.success(), "ringway stats: {table:?}");
    let text = String::from_utf8_lossy(&table.stdout);
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("worker "))
        .unwrap_or_else(|| panic!("no header row:\n{text}"));
    for f in WorkerStats::FIELDS {
        // The listed ones are on the `errors:` line only once not zero.
        if let Cli::Column(name) = f.cli {
            assert!(
                header.split_whitespace().any(|h| h == name),
                "column {name} of {}:\n{text}",
                f.json
            );
        }
    }
    for i in 0..workers {
        let ring = text
            .lines()
            .find(|l| l.starts_with(&format!("ring of worker {i}:")))
            .unwrap_or_else(|| panic!("no ring line for worker {i}:\n{text}"));
        for f in RingStats::FIELDS {
            assert!(
                ring.contains(&format!(" {}=", f.json)),
                "{}: {ring}",
                f.json
            );
        }
        for g in Group::ALL {
            let buffers = text
                .lines()
                .find(|l| l.starts_with(&format!("buffers of worker {i} ({}):", g.name())))
                .unwrap_or_else(|| panic!("no {} buffers line for worker {i}:\n{text}", g.name()));
            for f in PoolStats::FIELDS {
                assert!(
                    buffers.contains(&format!(" {}=", f.json)),
                    "{}: {buffers}",
                    f.json
                );
            }
        }
    }

    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.workers.len(), workers, "{}", exit.stderr);
    for line in &exit.workers {
        let mut keys: Vec<String> = WorkerStats::FIELDS
            .iter()
            .map(|f| f.json.to_owned())
            .collect();
        keys.extend(RingStats::FIELDS.iter().map(|f| f.json.to_owned()));
        for g in Group::ALL {
            keys.extend(
                PoolStats::FIELDS
                    .iter()
                    .map(|f| format!("{}_{}", g.name(), f.json)),
            );
        }
        for key in keys {
            assert!(
                line.counter(&key).is_some(),
                "worker {}: no {key} in the exit report:\n{}",
                line.index,
                exit.stderr
            );
        }
    }
}

/// A padding header of `len` bytes' worth of `x`.
fn padding(len: usize) -> String {
    "x".repeat(len)
}

/// An HTTP head longer than a receive buffer (32 KiB by default) arrives
/// in more than one and is gathered into one to be parsed: those bytes are
/// the worker's `copied_bytes`, the request's and the response's alike.
/// Bodies are sent from the buffers they arrived in, and add nothing.
#[test]
fn copied_bytes_counts_heads_gathered_from_pieces() {
    let response_head = format!(
        "HTTP/1.1 200 OK\r\nx-pad: {}\r\ncontent-length: 0\r\n\r\n",
        padding(40_000)
    );
    let origin = {
        let raw = response_head.clone().into_bytes();
        HttpOrigin::start(move |request| {
            if request.path() == "/large" {
                Reply::raw(&raw)
            } else {
                Reply::ok(b"fine")
            }
        })
    };
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);

    let request = Req::get("/large").header("x-pad", &padding(40_000));
    let request_head = request.to_bytes().len() as u64;
    let mut conn = HttpConn::open(config.listen);
    let response = conn.exchange(&request);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-pad").map(str::len), Some(40_000));
    // A small request with a body: neither head needs gathering.
    let small = conn.exchange(&Req::post("/small").body(&[b'b'; 100_000]));
    assert_eq!(small.status, 200);
    assert_eq!(small.body, b"fine");

    let expected = request_head + response_head.len() as u64;
    poll("copied_bytes counts both heads", WAIT, || {
        let copied = admin::stats(config.admin).sum("copied_bytes");
        if copied == expected {
            Ok(())
        } else {
            Err(format!("copied_bytes {copied}, expected {expected}"))
        }
    });
    drop(conn);
    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.total("copied_bytes"), expected, "{}", exit.stderr);
}
