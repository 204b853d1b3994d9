//! The response head parser never panics, and a head parsed from prefixes
//! of the input is Partial or exactly the result of parsing it whole.
#![no_main]

use dataplane::proto::h1::response::{ResponseBody, ResponseHead};
use dataplane::proto::h1::Status;
use libfuzzer_sys::fuzz_target;

mod split;

fuzz_target!(|data: &[u8]| {
    let seed = split::seed(data);
    let (max_bytes, max_fields) = if seed >> 63 == 0 {
        (256, 4)
    } else {
        (16384, 100)
    };
    let head = seed & 4 != 0;
    let mut whole = ResponseHead::new();
    let expect = whole.parse(data, max_bytes, max_fields, head);
    if expect == Ok(Status::Complete) {
        assert!(whole.len <= data.len() && whole.len <= max_bytes);
        assert!((100..=599).contains(&whole.status) && whole.status != 101);
        if head || whole.is_interim() {
            assert_eq!(whole.body, ResponseBody::None);
        }
        if whole.body == ResponseBody::UntilClose {
            assert!(!whole.keep_alive);
        }
        let mut again = ResponseHead::new();
        assert_eq!(
            again.parse(&data[..whole.len], max_bytes, max_fields, head),
            Ok(Status::Complete)
        );
        assert_eq!(again, whole);
    }
    let mut h = ResponseHead::new();
    for k in split::points(seed, data.len()) {
        let got = h.parse(&data[..k], max_bytes, max_fields, head);
        match got {
            Ok(Status::Partial) => {}
            Ok(Status::Complete) => assert_eq!(h, whole, "prefix {k}"),
            Err(_) => assert_eq!(got, expect, "prefix {k}"),
        }
    }
});
