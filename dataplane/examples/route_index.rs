//! What the route index costs and saves, measured on tables of the shape a
//! node gateway has: `host = "hN.example.com"` with `path_prefix = "/svcN"`
//! for N routes, then a catch-all.
//!
//! For 1, 10,000 and 100,000 routes it prints the time to build the index,
//! the bytes it holds (its own count, and the resident set it added), and
//! the time per lookup of an HTTP/1 request (view included) for a request
//! matching the last host route and one reaching the catch-all, by the
//! index and by a scan in file order. Figures only: nothing is asserted.
//!
//! `cargo run --release -p ringway-dataplane --example route_index`
//! (optional arguments: route counts, e.g. `10000 100000`).
//!
//! `route_index lookups N COUNT index|scan last|catch-all` only builds the
//! table of N host routes and makes COUNT lookups of one kind, for
//! `perf stat` (whose instruction and cycle counts, less those of a run
//! with COUNT 0, do not depend on what else the machine runs).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::proto::h1::path::PathRules;
use dataplane::proto::h1::request::RequestHead;
use dataplane::proto::h1::{Limits, Status};
use dataplane::routing::{find, find_linear, h1};
use dataplane::table::route::{
    DirectResponse, HeaderEdits, HostMatch, PathMatch, Route, RouteAction, RouteIndex, RouteMatch,
    Routes,
};
use dataplane::table::tally::HttpTally;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("lookups") {
        return lookups(&args[1..]);
    }
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![0, 10_000, 100_000]
    } else {
        counts
    };
    for n in counts {
        measure(n);
    }
}

/// `lookups N COUNT index|scan last|catch-all`: see the module doc.
fn lookups(args: &[String]) {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let n: usize = arg(0).parse().unwrap_or(0);
    let count: u64 = arg(1).parse().unwrap_or(0);
    let routes = Routes::new(list(n));
    let text = match arg(3) {
        "catch-all" => catch_all(),
        _ => last(n),
    };
    let buf = text.as_bytes();
    let head = head(buf);
    let scan = arg(2) == "scan";
    let mut sum = 0;
    for _ in 0..count {
        let view = h1::view(black_box(&head), black_box(buf));
        let found = if scan {
            find_linear(black_box(&routes), &view)
        } else {
            find(black_box(&routes), &view)
        };
        sum += found.map_or(0, |(i, _)| i);
    }
    println!("{sum}");
}

/// `n` host routes and a catch-all: `n + 1` routes.
fn list(n: usize) -> Vec<Route> {
    let tally = Arc::new(HttpTally::new(1));
    let mut list: Vec<Route> = (0..n)
        .map(|i| {
            route(
                RouteMatch {
                    host: Some(HostMatch::Exact(format!("h{i}.example.com").into())),
                    path: Some(PathMatch::Prefix(format!("/svc{i}").into())),
                    ..RouteMatch::default()
                },
                &tally,
            )
        })
        .collect();
    list.push(route(RouteMatch::default(), &tally));
    list
}

/// A request for the last host route of a table of `n`.
fn last(n: usize) -> String {
    let last = n.saturating_sub(1);
    format!("GET /svc{last}/items HTTP/1.1\r\nHost: h{last}.example.com\r\n\r\n")
}

/// A request no host route takes.
fn catch_all() -> String {
    "GET /other HTTP/1.1\r\nHost: other.example.com\r\n\r\n".to_owned()
}

fn head(buf: &[u8]) -> RequestHead {
    let mut head = RequestHead::new();
    let limits = Limits {
        max_request_line: 8192,
        max_header_bytes: 65536,
        max_headers: 100,
        path_rules: PathRules::DEFAULT,
    };
    assert_eq!(head.parse(buf, &limits).ok(), Some(Status::Complete));
    head
}

/// Measures a table of `n` host routes and a catch-all.
fn measure(n: usize) {
    // Memory first, on a fresh heap: the resident set the first build adds
    // (the build's temporary maps included) and the bytes the index keeps.
    let routes = list(n);
    let rss_before = rss_kib();
    let index = RouteIndex::new(&routes);
    let rss_after = rss_kib();
    let heap = index.heap_bytes();
    drop(index);
    let routes = Routes::new(routes);
    // Build time: the best of a few builds.
    let mut build = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let index = black_box(RouteIndex::new(black_box(&routes)));
        build = build.min(start.elapsed());
        drop(index);
    }

    println!(
        "{} routes: index built in {:.2} ms, {} heap bytes ({:.1} B per route), resident set +{} KiB",
        n + 1,
        build.as_secs_f64() * 1e3,
        heap,
        heap as f64 / (n + 1) as f64,
        rss_after.saturating_sub(rss_before),
    );

    let requests = [
        ("matches the last host route", last(n)),
        ("reaches the catch-all", catch_all()),
    ];
    for (what, text) in &requests {
        let buf = text.as_bytes();
        let head = head(buf);
        let by_index = per_lookup(|| {
            let view = h1::view(black_box(&head), black_box(buf));
            find(black_box(&routes), &view).map(|(i, _)| i)
        });
        let by_scan = per_lookup(|| {
            let view = h1::view(black_box(&head), black_box(buf));
            find_linear(black_box(&routes), &view).map(|(i, _)| i)
        });
        let view = h1::view(&head, buf);
        let found = find(&routes, &view).map(|(i, _)| i);
        assert_eq!(found, find_linear(&routes, &view).map(|(i, _)| i));
        println!(
            "  request that {what} (route {found:?}): index {:.1} ns, scan {:.1} ns per lookup",
            by_index, by_scan
        );
    }
}

/// Nanoseconds per call of `f`, the best of several rounds of a fixed
/// duration's worth of calls.
fn per_lookup(mut f: impl FnMut() -> Option<usize>) -> f64 {
    // Calls per round: enough for about 50 ms.
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_millis(20) {
        black_box(f());
        calls += 1;
    }
    let per_round = (calls * 5 / 2).max(1);
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..per_round {
            black_box(f());
        }
        best = best.min(start.elapsed().as_nanos() as f64 / per_round as f64);
    }
    best
}

fn route(matcher: RouteMatch, tally: &Arc<HttpTally>) -> Route {
    Route {
        name: "r".into(),
        matcher,
        action: RouteAction::Direct(DirectResponse {
            status: 200,
            body: Arc::from(&b""[..]),
            content_type: None,
        }),
        request_headers: HeaderEdits::default(),
        response_headers: HeaderEdits::default(),
        tally: Arc::clone(tally),
        limits: Default::default(),
        fault: None,
        rate_limit: None,
    }
}

/// The resident set of this process, in KiB (0 if /proc cannot say).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
