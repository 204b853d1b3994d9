//! The route index against the scan in file order: random tables (exact,
//! wildcard and no hosts; exact, prefix and no paths; methods; header
//! conditions; peer identities) and random requests, drawn by a fixed-seed PRNG from small
//! pools so that conditions overlap often, must get the same route from
//! both, under every index shape. Deterministic, so a failure reproduces;
//! the message prints the table and the request.

use super::tests::{route, List, SHAPES};
use super::*;
use crate::test_rng::Rng;

/// Host names routes and requests share (one mixed-case, which a file
/// never stores but the data plane must still match alike).
const HOSTS: &[&str] = &[
    "a.example.com",
    "b.a.example.com",
    "example.com",
    "api.example.com",
    "com",
    "localhost",
    "[::1]",
    "x-1.b.a.example.com",
    "Mixed.Example.com",
];
/// Wildcard suffixes; the last two start with no dot, which no file
/// produces, and the index keeps them aside.
const SUFFIXES: &[&str] = &[
    ".example.com",
    ".a.example.com",
    ".b.a.example.com",
    ".com",
    ".",
    "example.com",
    "",
];
const PATHS: &[&str] = &[
    "", "/", "/a", "/a/", "/a/b", "/ab", "/api", "/api/", "/api/v1", "/b", "*",
];
/// What request paths may add to a pool path.
const TAILS: &[&str] = &["", "", "c", "/c", "/v1/x", "b", "/"];
const METHODS: &[&[u8]] = &[b"GET", b"POST", b"HEAD", b"get", b"PUT"];
const NAMES: &[&str] = &["x-a", "x-b"];
const REQUEST_NAMES: &[&[u8]] = &[b"x-a", b"X-A", b"x-b", b"x-c"];
const VALUES: &[&[u8]] = &[b"1", b"10", b"2", b""];
/// Peer identities routes name and connections prove.
const IDS: &[&str] = &[
    "spiffe://example.org/ns/a/sa/web",
    "spiffe://example.org/ns/a/sa/api",
];

fn random_match(rng: &mut Rng) -> RouteMatch {
    let host = match rng.below(10) {
        0..=2 => None,
        3..=6 => Some(HostMatch::Exact((*rng.pick(HOSTS)).into())),
        _ => Some(HostMatch::Suffix((*rng.pick(SUFFIXES)).into())),
    };
    let path = match rng.below(3) {
        0 => None,
        1 => Some(PathMatch::Exact((*rng.pick(PATHS)).into())),
        _ => Some(PathMatch::Prefix((*rng.pick(PATHS)).into())),
    };
    let mut methods: Vec<Box<[u8]>> = Vec::new();
    if rng.one_in(4) {
        for _ in 0..1 + rng.below(2) {
            let m: Box<[u8]> = (*rng.pick(METHODS)).into();
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
    }
    let mut headers = Vec::new();
    if rng.one_in(4) {
        for _ in 0..1 + rng.below(2) {
            let value: Box<[u8]> = (*rng.pick(VALUES)).into();
            let test = match rng.below(3) {
                0 => HeaderTest::Present,
                1 => HeaderTest::Exact(value),
                _ => HeaderTest::Prefix(value),
            };
            headers.push(HeaderMatch {
                name: (*rng.pick(NAMES)).into(),
                test,
            });
        }
    }
    let peer_identity = rng.one_in(5).then(|| (*rng.pick(IDS)).into());
    RouteMatch {
        host,
        path,
        methods,
        headers,
        peer_identity,
    }
}

/// A request authority: a pool host or one under a suffix, in random case,
/// sometimes with trailing dots and a port, or something odd.
fn random_authority(rng: &mut Rng) -> Option<String> {
    let base = match rng.below(12) {
        0 => return None,
        1 => (*rng.pick(&["", ".", "..", ":80", ".example.com", "a..example.com"])).to_owned(),
        2..=4 => {
            let label = rng.pick(&["z", "a", "b", "x-1", ""]);
            format!("{label}{}", rng.pick(SUFFIXES))
        }
        _ => (*rng.pick(HOSTS)).to_owned(),
    };
    let mut host: String = base
        .chars()
        .map(|c| {
            if rng.one_in(3) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    if rng.one_in(4) {
        host.push('.');
        if rng.one_in(4) {
            host.push('.');
        }
    }
    if rng.one_in(4) {
        host.push_str(":8080");
    }
    Some(host)
}

fn random_path(rng: &mut Rng) -> String {
    format!("{}{}", rng.pick(PATHS), rng.pick(TAILS))
}

#[test]
fn the_index_finds_what_the_scan_finds() {
    let mut rng = Rng(0x5eed_1dea_c0ff_ee01);
    let mut indexed = 0usize;
    let mut found = 0usize;
    for case in 0..3000 {
        let size = match rng.below(10) {
            0 => rng.below(200),
            _ => rng.below(30),
        };
        let matchers: Vec<RouteMatch> = (0..size).map(|_| random_match(&mut rng)).collect();
        let tables: Vec<Routes> = SHAPES
            .iter()
            .map(|&(linear_max, few_max)| {
                let list = matchers.iter().map(|m| route(m.clone())).collect();
                Routes::with_limits(list, linear_max, few_max)
            })
            .collect();
        indexed += tables.iter().filter(|t| !t.index().is_linear()).count();
        for _ in 0..40 {
            let authority = random_authority(&mut rng);
            let path = random_path(&mut rng);
            let method = *rng.pick(METHODS);
            let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
            for _ in 0..rng.below(4) {
                fields.push((*rng.pick(REQUEST_NAMES), *rng.pick(VALUES)));
            }
            let identity = match rng.below(3) {
                0 => None,
                _ => Some(*rng.pick(IDS)),
            };
            let req = RequestView::new(
                method,
                authority.as_deref().map(str::as_bytes),
                path.as_bytes(),
                List(&fields),
            )
            .with_peer_identity(identity);
            let want = find_linear(&tables[0], &req).map(|(i, _)| i);
            found += usize::from(want.is_some());
            for (routes, shape) in tables.iter().zip(SHAPES) {
                let got = find(routes, &req).map(|(i, _)| i);
                assert_eq!(
                    got, want,
                    "case {case}, shape {shape:?}: {} {authority:?} {path:?} {fields:?} {identity:?}\nroutes: {matchers:#?}",
                    String::from_utf8_lossy(method),
                );
            }
        }
    }
    // The draw must reach the index and must find routes often enough for
    // the agreement to mean something.
    assert!(indexed > 5000, "only {indexed} indexed tables");
    assert!(found > 3000 * 40 / 4, "only {found} requests found a route");
}
