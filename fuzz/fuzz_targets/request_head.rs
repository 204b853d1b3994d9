//! The request head parser never panics, and a head parsed from prefixes
//! of the input is Partial or exactly the result of parsing it whole.
#![no_main]

use dataplane::proto::h1::path::{self, EncodedSlashes, PathRules};
use dataplane::proto::h1::request::{RequestBody, RequestHead};
use dataplane::proto::h1::{Limits, Status, Version};
use libfuzzer_sys::fuzz_target;

mod split;

const LIMITS: [Limits; 2] = [
    Limits {
        max_request_line: 64,
        max_header_bytes: 256,
        max_headers: 4,
        path_rules: PathRules::DEFAULT,
    },
    Limits {
        max_request_line: 8192,
        max_header_bytes: 16384,
        max_headers: 100,
        path_rules: PathRules {
            merge_slashes: false,
            encoded_slashes: EncodedSlashes::Pass,
        },
    },
];

fuzz_target!(|data: &[u8]| {
    let seed = split::seed(data);
    let limits = &LIMITS[(seed >> 60) as usize % 2];
    let mut whole = RequestHead::new();
    let expect = whole.parse(data, limits);
    if expect == Ok(Status::Complete) {
        let len = whole.len as u32;
        assert!(whole.len <= data.len() && whole.len <= limits.max_header_bytes);
        for h in &whole.headers {
            assert!(!h.name.is_empty() && h.name.end <= len && h.value.end <= len);
        }
        assert!(whole.path.start >= whole.target.start && whole.path.end <= whole.target.end);
        if let Some(q) = whole.query_start {
            assert!(whole.path.contains(&q));
        }
        assert!(whole.host.is_some() || whole.version == Version::Http10);
        if whole.body == RequestBody::Chunked {
            assert_eq!(whole.version, Version::Http11);
        }
        // The path routes see is its own normal form.
        let normal = whole.normal_path(data);
        if normal.first() == Some(&b'/') {
            let mut again = Vec::new();
            assert_eq!(path::normalize(normal, &limits.path_rules, &mut again), Ok(()));
            assert_eq!(again, normal);
        }
        // Bytes after the head do not change it.
        let mut again = RequestHead::new();
        assert_eq!(
            again.parse(&data[..whole.len], limits),
            Ok(Status::Complete)
        );
        assert_eq!(again, whole);
    }
    // One head reused over growing prefixes, as a session does.
    let mut h = RequestHead::new();
    for k in split::points(seed, data.len()) {
        let got = h.parse(&data[..k], limits);
        match got {
            Ok(Status::Partial) => {}
            Ok(Status::Complete) => assert_eq!(h, whole, "prefix {k}"),
            Err(_) => assert_eq!(got, expect, "prefix {k}"),
        }
    }
});
