//! The path normalizer never panics; its result is its own normal form,
//! starts with '/', has no dot segment (nor, with slashes merged, an empty
//! one before the last); and the fast check never passes a path that
//! normalizing would change.
#![no_main]

use dataplane::proto::h1::path::{self, EncodedSlashes, PathRules};
use libfuzzer_sys::fuzz_target;

// Only its seed is used here, not its cut points.
#[allow(dead_code)]
mod split;

const RULES: [PathRules; 3] = [
    PathRules::DEFAULT,
    PathRules {
        merge_slashes: false,
        encoded_slashes: EncodedSlashes::Reject,
    },
    PathRules {
        merge_slashes: true,
        encoded_slashes: EncodedSlashes::Pass,
    },
];

fuzz_target!(|data: &[u8]| {
    // The parser hands over paths that start with '/' and hold no '?'.
    let mut input = Vec::with_capacity(data.len() + 1);
    input.push(b'/');
    input.extend(data.iter().copied().filter(|&b| b != b'?'));
    let rules = &RULES[(split::seed(data) % 3) as usize];

    let fast = path::is_normal(&input, rules);
    let mut once = Vec::new();
    if path::normalize(&input, rules, &mut once).is_err() {
        assert!(!fast, "a refused path passed the fast check");
        return;
    }
    if fast {
        assert_eq!(once, input, "the fast check passed a path that changes");
    }
    let mut twice = Vec::new();
    assert_eq!(path::normalize(&once, rules, &mut twice), Ok(()));
    assert_eq!(twice, once, "normalizing twice changed the path");
    assert_eq!(once.first(), Some(&b'/'));
    let segments: Vec<&[u8]> = once.split(|&b| b == b'/').skip(1).collect();
    for (k, segment) in segments.iter().enumerate() {
        let name = segment.split(|&b| b == b';').next().unwrap_or_default();
        assert!(name != b"." && name != b"..", "a dot segment is left");
        if rules.merge_slashes && k + 1 < segments.len() {
            assert!(!name.is_empty(), "an empty segment is left");
        }
    }
});
