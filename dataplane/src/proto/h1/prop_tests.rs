//! A deterministic mutation test: thousands of mangled heads and bodies,
//! derived from a seed corpus by a fixed-seed PRNG, must never panic a
//! parser, and feeding them in pieces must agree with feeding them whole.
//! The same properties are fuzzed without bounds under `fuzz/`; this copy
//! runs in CI in about a second.

use super::chunked::tests::{agree, run};
use super::path::{EncodedSlashes, PathRules};
use super::request::{RequestBody, RequestHead};
use super::response::ResponseHead;
use super::{Limits, Status};
use crate::test_rng::Rng;

/// Bytes that sit on grammar boundaries; mutations favour them.
const INTERESTING: &[u8] = b"\r\n \t:;,=\"\\/?#@0aAfF9-\x00\x7f\xff";

fn mutate(rng: &mut Rng, corpus: &[&[u8]]) -> Vec<u8> {
    let mut v = corpus[rng.below(corpus.len())].to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        let byte = if rng.below(3) == 0 {
            rng.next() as u8
        } else {
            INTERESTING[rng.below(INTERESTING.len())]
        };
        match rng.below(6) {
            0 if at < v.len() => v[at] = byte,
            1 => v.insert(at, byte),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => {
                // Duplicate a slice (repeated lines, fields, chunks).
                let len = rng.below(16).min(v.len() - at.min(v.len()));
                let piece = v[at..at + len].to_vec();
                v.splice(at..at, piece);
            }
            4 => v.truncate(at),
            _ => {
                // Splice in part of another seed.
                let other = corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from + 1);
                v.splice(at..at, other[from..from + len].iter().copied());
            }
        }
    }
    v
}

fn cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut c: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(len + 1)).collect();
    c.sort_unstable();
    c
}

const LIMIT_SETS: [Limits; 2] = [
    Limits {
        max_request_line: 64,
        max_header_bytes: 160,
        max_headers: 4,
        path_rules: PathRules::DEFAULT,
    },
    Limits {
        max_request_line: 1024,
        max_header_bytes: 4096,
        max_headers: 64,
        path_rules: PathRules {
            merge_slashes: false,
            encoded_slashes: EncodedSlashes::Pass,
        },
    },
];

/// A request head's prefixes are Partial or parse exactly as the whole.
pub(crate) fn check_request(buf: &[u8], limits: &Limits, points: &[usize]) {
    let mut whole = RequestHead::new();
    let expect = whole.parse(buf, limits);
    if expect == Ok(Status::Complete) {
        let len = whole.len as u32;
        assert!(whole.len <= buf.len() && whole.len <= limits.max_header_bytes);
        for h in &whole.headers {
            assert!(!h.name.is_empty() && h.name.end <= len && h.value.end <= len);
        }
        assert!(whole.path.start >= whole.target.start && whole.path.end <= whole.target.end);
        if let Some(q) = whole.query_start {
            assert!(whole.path.contains(&q));
        }
        assert!(whole.host.is_some() || whole.version == super::Version::Http10);
        // The path routes see is its own normal form.
        let normal = whole.normal_path(buf);
        if normal.first() == Some(&b'/') {
            let mut again = Vec::new();
            assert_eq!(
                super::path::normalize(normal, &limits.path_rules, &mut again),
                Ok(())
            );
            assert_eq!(again, normal, "{buf:?}");
        }
        if whole.body == RequestBody::Chunked {
            assert_eq!(whole.version, super::Version::Http11);
        }
    }
    let mut h = RequestHead::new();
    for &k in points {
        let got = h.parse(&buf[..k.min(buf.len())], limits);
        match got {
            Ok(Status::Partial) => {}
            Ok(Status::Complete) => assert_eq!(h, whole, "prefix {k} of {buf:?}"),
            Err(_) => assert_eq!(got, expect, "prefix {k} of {buf:?}"),
        }
    }
}

/// A response head's prefixes are Partial or parse exactly as the whole.
pub(crate) fn check_response(
    buf: &[u8],
    max_bytes: usize,
    max_fields: usize,
    head: bool,
    points: &[usize],
) {
    let mut whole = ResponseHead::new();
    let expect = whole.parse(buf, max_bytes, max_fields, head);
    if expect == Ok(Status::Complete) {
        assert!(whole.len <= buf.len() && whole.len <= max_bytes);
        assert!((100..=599).contains(&whole.status) && whole.status != 101);
    }
    let mut h = ResponseHead::new();
    for &k in points {
        let got = h.parse(&buf[..k.min(buf.len())], max_bytes, max_fields, head);
        match got {
            Ok(Status::Partial) => {}
            Ok(Status::Complete) => assert_eq!(h, whole, "prefix {k} of {buf:?}"),
            Err(_) => assert_eq!(got, expect, "prefix {k} of {buf:?}"),
        }
    }
}

#[test]
fn mutated_request_heads() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let corpus = super::request::tests::SPLIT_CASES;
    for i in 0..4000 {
        let buf = mutate(&mut rng, corpus);
        let points = cuts(&mut rng, buf.len());
        check_request(&buf, &LIMIT_SETS[i % 2], &points);
    }
}

#[test]
fn mutated_response_heads() {
    let mut rng = Rng(0xd1b5_4a32_d192_ed03);
    let corpus = super::response::tests::SPLIT_CASES;
    for i in 0..4000 {
        let buf = mutate(&mut rng, corpus);
        let points = cuts(&mut rng, buf.len());
        let (bytes, fields) = if i % 2 == 0 { (120, 3) } else { (4096, 64) };
        check_response(&buf, bytes, fields, i % 3 == 0, &points);
    }
}

#[test]
fn mutated_chunked_bodies() {
    let corpus: &[&[u8]] = &[
        b"5\r\nhello\r\n0\r\n\r\n",
        b"1a;x=y;q=\"a b\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\nNEXT",
        b"3 ; e\r\nabc\r\n000\r\n\r\n",
        b"0\r\nA: 1\r\nB: 2\r\n\r\n",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for i in 0..4000 {
        let input = mutate(&mut rng, corpus);
        let w = run(&input, &[]);
        let split = run(&input, &cuts(&mut rng, input.len()));
        assert_eq!(split.payload, w.payload, "{input:?}");
        assert_eq!((split.done, split.error), (w.done, w.error), "{input:?}");
        if w.error.is_none() {
            assert_eq!(split.consumed, w.consumed, "{input:?}");
        }
        // Now and then, the exhaustive check: every cut and byte by byte.
        if i % 50 == 0 {
            agree(&input);
        }
    }
}
