//! Tests of the trace context reader and writers: the W3C Trace Context
//! cases (valid and invalid `traceparent`, `tracestate` rules), B3 in
//! both forms, precedence, repeated fields, the writers' exact output,
//! round trips, and a seeded property test (random and mangled headers
//! never panic the reader; whatever it accepts is well-formed and writes
//! back to the same context; `traceparent` and `tracestate` verdicts
//! agree with plain reference checks written independently here).

use std::collections::HashSet;

use super::*;
use crate::test_rng::Rng;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn read(fields: &[(&str, &str)]) -> Extracted {
    let mut reader = Reader::new();
    for (name, value) in fields {
        reader.field(name.as_bytes(), value.as_bytes());
    }
    reader.finish()
}

fn trace_id(hex: &str) -> TraceId {
    parse_hex::<16>(hex.as_bytes()).expect("test trace ids are 32 lowercase hex digits")
}

fn span_id(hex: &str) -> SpanId {
    parse_hex::<8>(hex.as_bytes()).expect("test span ids are 16 lowercase hex digits")
}

/// A 64-bit B3 trace id as ringway keeps it: in the last 8 bytes.
fn short_trace_id(hex: &str) -> TraceId {
    let mut id = [0; 16];
    id[8..].copy_from_slice(&span_id(hex));
    id
}

fn ids(trace: &str, parent: &str) -> Option<Ids> {
    Some(Ids {
        trace_id: trace_id(trace),
        parent_id: span_id(parent),
    })
}

/// The traceparent `value` read alone.
fn traceparent(value: &str) -> Option<Incoming> {
    let found = read(&[("traceparent", value)]);
    let valid = found.report.traceparent == Seen::Valid;
    assert_eq!(valid, found.incoming.is_some(), "{value:?}");
    found.incoming
}

// --- traceparent -------------------------------------------------------

#[test]
fn traceparent_examples_of_the_spec_are_read() {
    let sampled = traceparent(TP).expect("the spec's sampled example is valid");
    assert_eq!(
        sampled,
        Incoming {
            format: Format::W3c,
            ids: ids(TRACE, PARENT),
            sampled: Sampled::Yes,
            flags: 0x01,
            debug: false,
            short_trace_id: false,
        }
    );
    let not = traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        .expect("the spec's unsampled example is valid");
    assert_eq!(not.sampled, Sampled::No);
    assert_eq!(not.flags, 0);
}

#[test]
fn traceparent_flags_are_kept_and_only_the_low_bit_means_sampled() {
    let tp = |flags: &str| traceparent(&format!("00-{TRACE}-{PARENT}-{flags}"));
    let three = tp("03").expect("flags 03 are valid");
    assert_eq!((three.flags, three.sampled), (0x03, Sampled::Yes));
    let two = tp("02").expect("flags 02 are valid");
    assert_eq!((two.flags, two.sampled), (0x02, Sampled::No));
    let all = tp("ff").expect("flags ff are valid");
    assert_eq!((all.flags, all.sampled), (0xff, Sampled::Yes));
    let nine = tp("09").expect("flags 09 are valid");
    assert_eq!(nine.sampled, Sampled::Yes);
}

#[test]
fn traceparent_of_a_later_version_is_read_by_its_first_four_fields() {
    let ids12 = ids("12345678901234567890123456789012", "1234567890123456");
    for value in [
        "cc-12345678901234567890123456789012-1234567890123456-01",
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        "01-12345678901234567890123456789012-1234567890123456-01-",
        "fe-12345678901234567890123456789012-1234567890123456-01-x",
    ] {
        let found = traceparent(value).unwrap_or_else(|| panic!("{value:?} is valid"));
        assert_eq!(found.ids, ids12, "{value:?}");
        assert_eq!(found.sampled, Sampled::Yes);
    }
    // Only the sampled bit is read from a version this reader does not
    // know.
    let masked = traceparent("cc-12345678901234567890123456789012-1234567890123456-0b")
        .expect("a later version with other flags is valid");
    assert_eq!((masked.flags, masked.sampled), (0x01, Sampled::Yes));
    let masked = traceparent("cc-12345678901234567890123456789012-1234567890123456-fe")
        .expect("a later version with other flags is valid");
    assert_eq!((masked.flags, masked.sampled), (0x00, Sampled::No));
}

#[test]
fn traceparent_optional_whitespace_around_the_value_is_ignored() {
    for value in [
        " 00-12345678901234567890123456789012-1234567890123456-01",
        "\t00-12345678901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456-01 ",
        "00-12345678901234567890123456789012-1234567890123456-01\t",
        "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
    ] {
        let found = traceparent(value).unwrap_or_else(|| panic!("{value:?} is valid"));
        assert_eq!(
            found.ids,
            ids("12345678901234567890123456789012", "1234567890123456")
        );
    }
}

#[test]
fn traceparent_that_breaks_a_rule_is_invalid() {
    let cases = [
        // Version 00 is exactly 55 characters.
        "00-12345678901234567890123456789012-1234567890123456-01.",
        "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        "00-12345678901234567890123456789012-1234567890123456-01-",
        // A later version's extra fields follow a dash.
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
        "cc-12345678901234567890123456789012-1234567890123456-1",
        "cc-1234567890123456789012345678901-1234567890123456-01",
        // Version ff is forbidden; versions are two lowercase hex digits.
        "ff-12345678901234567890123456789012-1234567890123456-01",
        ".0-12345678901234567890123456789012-1234567890123456-01",
        "0.-12345678901234567890123456789012-1234567890123456-01",
        "000-12345678901234567890123456789012-1234567890123456-01",
        "0000-12345678901234567890123456789012-1234567890123456-01",
        "0-12345678901234567890123456789012-1234567890123456-01",
        "0A-12345678901234567890123456789012-1234567890123456-01",
        "CC-12345678901234567890123456789012-1234567890123456-01",
        // Trace id: 32 lowercase hex digits, not all zero.
        "00-00000000000000000000000000000000-1234567890123456-01",
        "00-.2345678901234567890123456789012-1234567890123456-01",
        "00-1234567890123456789012345678901.-1234567890123456-01",
        "00-123456789012345678901234567890123-1234567890123456-01",
        "00-1234567890123456789012345678901-1234567890123456-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473G-00f067aa0ba902b7-01",
        // Parent id: 16 lowercase hex digits, not all zero.
        "00-12345678901234567890123456789012-0000000000000000-01",
        "00-12345678901234567890123456789012-.234567890123456-01",
        "00-12345678901234567890123456789012-123456789012345.-01",
        "00-12345678901234567890123456789012-12345678901234567-01",
        "00-12345678901234567890123456789012-123456789012345-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        // Flags: two lowercase hex digits.
        "00-12345678901234567890123456789012-1234567890123456-.0",
        "00-12345678901234567890123456789012-1234567890123456-0.",
        "00-12345678901234567890123456789012-1234567890123456-001",
        "00-12345678901234567890123456789012-1234567890123456-1",
        "00-12345678901234567890123456789012-1234567890123456-0A",
        // Separators, sizes, whitespace inside, stray bytes.
        "00_12345678901234567890123456789012_1234567890123456_01",
        "00-12345678901234567890123456789012-1234567890123456_01",
        "00-12345678901234567890123456789012 -1234567890123456-01",
        "00 -12345678901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456- 01",
        "00-12345678901234567890123456789012-1234567890123456-01, 00-12345678901234567890123456789012-1234567890123456-01",
        "",
        " ",
        "00",
        "00-",
        "00-12345678901234567890123456789012-1234567890123456-é",
    ];
    for value in cases {
        assert_eq!(traceparent(value), None, "{value:?} must be invalid");
        let found = read(&[("traceparent", value)]);
        assert_eq!(found.report.traceparent, Seen::Invalid, "{value:?}");
        assert_eq!(found.report.fate(Header::Traceparent), Fate::Drop);
    }
}

#[test]
fn traceparent_names_are_matched_in_any_case_and_near_misses_are_ignored() {
    for name in ["traceparent", "TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        assert!(read(&[(name, TP)]).incoming.is_some(), "{name}");
    }
    for name in ["trace-parent", "trace.parent", "traceparent2", "tracepar"] {
        let found = read(&[(name, TP)]);
        assert_eq!(found.incoming, None, "{name}");
        assert_eq!(found.report, Report::default(), "{name}");
    }
}

#[test]
fn two_traceparent_fields_are_invalid_even_when_equal() {
    let other = "00-12345678901234567890123456789012-1234567890123456-01";
    for pair in [[TP, other], [TP, TP]] {
        let found = read(&[("traceparent", pair[0]), ("TraceParent", pair[1])]);
        assert_eq!(found.incoming, None);
        assert_eq!(found.report.traceparent, Seen::Invalid);
    }
    // A third does not revive it.
    let found = read(&[
        ("traceparent", TP),
        ("traceparent", TP),
        ("traceparent", TP),
    ]);
    assert_eq!(found.report.traceparent, Seen::Invalid);
}

// --- tracestate ----------------------------------------------------------

/// The report for a valid traceparent and these tracestate fields.
fn tracestate(fields: &[&str]) -> Report {
    let mut reader = Reader::new();
    reader.field(b"traceparent", TP.as_bytes());
    for value in fields {
        reader.field(b"tracestate", value.as_bytes());
    }
    let report = reader.finish().report;
    assert_eq!(report.tracestate_fields as usize, fields.len());
    report
}

fn forwarded(fields: &[&str]) -> bool {
    let report = tracestate(fields);
    let forward = report.forward_tracestate();
    let fate = report.fate(Header::Tracestate);
    assert_eq!(fate == Fate::Forward, forward);
    assert_eq!(fate == Fate::Drop, !forward);
    forward
}

#[test]
fn tracestate_goes_on_only_with_a_valid_traceparent() {
    assert!(forwarded(&["foo=1,bar=2"]));
    // Absent, invalid or repeated traceparent: dropped, though well-formed.
    for head in [
        vec![("tracestate", "foo=1")],
        vec![("traceparent", "ff-bad"), ("tracestate", "foo=1")],
        vec![
            ("traceparent", TP),
            ("traceparent", TP),
            ("tracestate", "foo=1"),
        ],
        vec![
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
            ("tracestate", "foo=1"),
        ],
    ] {
        let found = read(&head);
        assert_eq!(found.report.tracestate, Seen::Valid, "{head:?}");
        assert!(!found.report.forward_tracestate(), "{head:?}");
        assert_eq!(found.report.fate(Header::Tracestate), Fate::Drop);
    }
    // Order does not matter: tracestate may come before traceparent.
    let found = read(&[("tracestate", "foo=1"), ("traceparent", TP)]);
    assert!(found.report.forward_tracestate());
}

#[test]
fn an_invalid_tracestate_does_not_spoil_the_traceparent() {
    let found = read(&[("traceparent", TP), ("tracestate", "FOO=1")]);
    assert_eq!(found.incoming.map(|i| i.ids), Some(ids(TRACE, PARENT)));
    assert_eq!(found.report.tracestate, Seen::Invalid);
    assert_eq!(found.report.fate(Header::Tracestate), Fate::Drop);
    assert_eq!(found.report.fate(Header::Traceparent), Fate::Replace);
    assert!(found.report.any_invalid());
}

#[test]
fn tracestate_fields_combine_in_order_and_empty_ones_are_accepted() {
    assert!(forwarded(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]));
    assert!(forwarded(&["foo=1", ""]));
    assert!(forwarded(&["", "foo=1"]));
    assert!(forwarded(&["foo=1,,bar=2", " , "]));
    // Nothing but empty members: accepted, but nothing worth sending on.
    let empty = tracestate(&[""]);
    assert_eq!(empty.tracestate, Seen::Valid);
    assert_eq!(empty.tracestate_members, 0);
    assert!(!forwarded(&["", " ,\t, "]));
}

#[test]
fn tracestate_keys_may_not_repeat_within_or_across_fields() {
    for fields in [
        &["foo=1,foo=1"][..],
        &["foo=1,foo=2"],
        &["foo=1", "foo=1"],
        &["foo=1", "foo=2"],
        &["a=1,b=2", "c=3,a=4"],
        &["t@s=1", "t@s=1"],
    ] {
        assert_eq!(tracestate(fields).tracestate, Seen::Invalid, "{fields:?}");
    }
    // Keys that differ only by the vendor part are different keys.
    assert!(forwarded(&["foo@a=1,foo@b=2,foo=3"]));
}

#[test]
fn tracestate_allows_every_character_the_grammar_allows() {
    let key: String = ('a'..='z').chain('0'..='9').chain("_-*/".chars()).collect();
    let value: String = (0x20u8..=0x7e)
        .filter(|b| *b != b',' && *b != b'=')
        .map(char::from)
        .collect();
    assert!(forwarded(&[&format!("{key}={value}")]));
    assert!(forwarded(&[&format!("{key}@a-z0-9_-*/={value}")]));
    // A tenant may start with a digit; a simple key may not.
    assert!(forwarded(&["0tenant@vendor=1"]));
    // Leading spaces belong to the value.
    assert!(forwarded(&["foo=  1"]));
}

#[test]
fn tracestate_whitespace_around_members_is_ignored() {
    for field in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
        " foo=1",
        "\tfoo=1",
        "foo=1 ",
        "foo=1\t",
        "\t foo=1 \t",
    ] {
        assert!(forwarded(&[field]), "{field:?}");
    }
}

#[test]
fn tracestate_members_must_be_key_equals_value() {
    for field in [
        "foo =1",
        "FOO=1",
        "foo.bar=1",
        "1foo=1",
        "=1",
        "foo",
        "foo=",
        "foo==1",
        "foo=1=2",
        "foo=a\tb",
        "foo=\u{7f}",
        "foo=é",
        "foo@=1,bar=2",
        "@foo=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
        "foo@1bar=1",
        "foo@BAR=1",
        "bar=2,foo",
    ] {
        assert_eq!(tracestate(&[field]).tracestate, Seen::Invalid, "{field:?}");
    }
}

#[test]
fn tracestate_key_and_value_lengths_are_bounded() {
    let at = |n: usize, c: char| c.to_string().repeat(n);
    let ok = |field: String| tracestate(&[&field]).tracestate == Seen::Valid;
    assert!(ok(format!("{}=1", at(256, 'k'))));
    assert!(!ok(format!("{}=1", at(257, 'k'))));
    assert!(ok(format!("{}@v=1", at(241, 't'))));
    assert!(!ok(format!("{}@v=1", at(242, 't'))));
    assert!(ok(format!("t@{}=1", at(14, 'v'))));
    assert!(!ok(format!("t@{}=1", at(15, 'v'))));
    assert!(ok(format!("k={}", at(256, 'v'))));
    assert!(!ok(format!("k={}", at(257, 'v'))));
}

#[test]
fn tracestate_holds_at_most_32_members() {
    let members = |from: usize, to: usize| {
        (from..=to)
            .map(|i| format!("bar{i:02}={i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (a, b, c) = (members(1, 10), members(11, 20), members(21, 30));
    let report = tracestate(&[&a, &b, &c, &members(31, 32)]);
    assert_eq!(
        (report.tracestate, report.tracestate_members),
        (Seen::Valid, 32)
    );
    let report = tracestate(&[&a, &b, &c, &members(31, 33)]);
    assert_eq!(report.tracestate, Seen::Invalid);
    assert!(!report.forward_tracestate());
}

#[test]
fn tracestate_combined_is_at_most_512_bytes() {
    let ok = |fields: &[&str]| tracestate(fields).tracestate == Seen::Valid;
    // `key=value` of `len` bytes in all (values are capped at 256).
    let member = |key: &str, len: usize| format!("{key}={}", "v".repeat(len - key.len() - 1));
    // One field: 257 + 1 + 254 bytes, then one more.
    let one = |len: usize| format!("{},{}", member("a", 257), member("b", len - 258));
    assert_eq!(one(512).len(), 512);
    assert!(ok(&[&one(512)]));
    assert!(!ok(&[&one(513)]));
    // Across fields, each join counts one comma.
    assert!(ok(&[&member("a", 255), &member("b", 256)]));
    assert!(!ok(&[&member("a", 256), &member("b", 256)]));
    let big = one(511);
    assert!(ok(&[&big, ""]), "511 + 1 comma is not over");
    assert!(!ok(&[&big, "c=1"]), "511 + 1 + 3 bytes is over");
    // Whitespace around a field does not count.
    assert!(ok(&[&format!("  {}\t ", one(512))]));
    // A huge field is refused without being scanned, and stays refused.
    let huge = "x=1,".repeat(10_000);
    assert_eq!(tracestate(&[&huge, "foo=1"]).tracestate, Seen::Invalid);
}

// --- B3 single -----------------------------------------------------------

const B3_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const B3_SPAN: &str = "e457b5a2e4d86bd1";
const B3_PARENT: &str = "05e3ac9a4f6e3b90";

fn b3(value: &str) -> Option<Incoming> {
    let found = read(&[("b3", value)]);
    assert_eq!(
        found.report.b3 == Seen::Valid,
        found.incoming.is_some(),
        "{value:?}"
    );
    found.incoming
}

#[test]
fn b3_single_with_ids_is_read() {
    let full = |sampled, debug| Incoming {
        format: Format::B3Single,
        ids: ids(B3_TRACE, B3_SPAN),
        sampled,
        flags: 0,
        debug,
        short_trace_id: false,
    };
    let with = |rest: &str| b3(&format!("{B3_TRACE}-{B3_SPAN}{rest}"));
    assert_eq!(
        with(&format!("-1-{B3_PARENT}")),
        Some(full(Sampled::Yes, false))
    );
    assert_eq!(with("-1"), Some(full(Sampled::Yes, false)));
    assert_eq!(with("-0"), Some(full(Sampled::No, false)));
    assert_eq!(with("-d"), Some(full(Sampled::Yes, true)));
    assert_eq!(
        with(&format!("-d-{B3_PARENT}")),
        Some(full(Sampled::Yes, true))
    );
    assert_eq!(with(""), Some(full(Sampled::Deferred, false)));
    assert_eq!(
        b3(&format!(" {B3_TRACE}-{B3_SPAN}-1\t")),
        Some(full(Sampled::Yes, false))
    );
    for name in ["B3", "b3"] {
        assert!(read(&[(name, "1")]).incoming.is_some());
    }
}

#[test]
fn b3_single_with_a_64_bit_trace_id_is_padded_and_marked_short() {
    let found = b3(&format!("64fe8b2a57d3eff7-{B3_SPAN}-1")).expect("16 hex digits are valid");
    assert_eq!(
        found.ids,
        Some(Ids {
            trace_id: short_trace_id("64fe8b2a57d3eff7"),
            parent_id: span_id(B3_SPAN),
        })
    );
    assert!(found.short_trace_id);
    // 32 digits whose first half is zero are not short: the width is kept.
    let long = b3(&format!("000000000000000064fe8b2a57d3eff7-{B3_SPAN}-1"))
        .expect("a 128-bit id with a zero high half is valid");
    assert_eq!(
        long.ids.map(|i| i.trace_id),
        Some(short_trace_id("64fe8b2a57d3eff7"))
    );
    assert!(!long.short_trace_id);
}

#[test]
fn b3_single_lone_decisions_are_kept_without_ids() {
    let lone = |sampled, debug| Incoming {
        format: Format::B3Single,
        ids: None,
        sampled,
        flags: 0,
        debug,
        short_trace_id: false,
    };
    assert_eq!(b3("0"), Some(lone(Sampled::No, false)));
    assert_eq!(b3("1"), Some(lone(Sampled::Yes, false)));
    assert_eq!(b3("d"), Some(lone(Sampled::Yes, true)));
    assert_eq!(b3(" 0 "), Some(lone(Sampled::No, false)));
    let found = read(&[("b3", "0")]);
    assert_eq!(found.report.used, Some(Format::B3Single));
    assert_eq!(found.report.fate(Header::B3), Fate::Replace);
}

#[test]
fn b3_single_that_breaks_a_rule_is_invalid() {
    let t = B3_TRACE;
    let s = B3_SPAN;
    let p = B3_PARENT;
    let cases = [
        String::new(),
        " ".into(),
        "2".into(),
        "D".into(),
        "true".into(),
        "00".into(),
        "-".into(),
        t.into(),
        format!("{t}-"),
        format!("{t}-{s}-"),
        format!("{t}-{s}-1-"),
        format!("{t}-{s}-2"),
        format!("{t}-{s}-true"),
        format!("{t}-{s}-01"),
        format!("{t}-{s}-D"),
        // A parent needs the sampling state before it.
        format!("{t}-{s}-{p}"),
        format!("{t}-{s}-1-{p}-1"),
        format!("{t}-{s}-1-{}", &p[1..]),
        format!("{t}-{s}-1-{p}0"),
        format!("{t}-{s}-1-0000000000000000"),
        format!("{t}--1"),
        format!("-{s}-1"),
        format!("{}-{s}-1", t.to_uppercase()),
        format!("{t}-{}-1", s.to_uppercase()),
        format!("{}-{s}-1", &t[1..]),
        format!("{t}0-{s}-1"),
        format!("{}-{s}-1", &t[..15]),
        format!("{}0-{s}-1", &t[..16]),
        format!("{t}-{}-1", &s[1..]),
        format!("{t}-{s}0-1"),
        format!("00000000000000000000000000000000-{s}-1"),
        format!("0000000000000000-{s}-1"),
        format!("{t}-0000000000000000-1"),
        format!("{t}_{s}_1"),
        format!("{t}-{s}-1, {t}-{s}-1"),
    ];
    for value in &cases {
        assert_eq!(b3(value), None, "{value:?} must be invalid");
        let found = read(&[("b3", value)]);
        assert_eq!(found.report.b3, Seen::Invalid, "{value:?}");
        assert_eq!(found.report.fate(Header::B3), Fate::Drop);
    }
}

#[test]
fn b3_single_repeated_is_fine_when_equal_and_invalid_when_not() {
    let value = format!("{B3_TRACE}-{B3_SPAN}-1");
    assert!(read(&[("b3", &value), ("B3", &value)]).incoming.is_some());
    for other in [
        "0",
        &format!("{B3_TRACE}-{B3_SPAN}-0"),
        &format!("{B3_TRACE}-{B3_SPAN}-1-{B3_PARENT}"),
        "junk",
    ] {
        let found = read(&[("b3", &value), ("b3", other)]);
        assert_eq!(found.incoming, None, "{other:?}");
        assert_eq!(found.report.b3, Seen::Invalid);
    }
}

// --- B3 multi ------------------------------------------------------------

fn multi(fields: &[(&str, &str)]) -> Option<Incoming> {
    let found = read(fields);
    if found.incoming.is_some() {
        assert_eq!(found.report.x_b3, Seen::Valid);
        assert_eq!(found.report.used, Some(Format::B3Multi));
    }
    found.incoming
}

#[test]
fn b3_multi_with_ids_is_read() {
    let base = [
        ("X-B3-TraceId", B3_TRACE),
        ("X-B3-SpanId", B3_SPAN),
        ("X-B3-ParentSpanId", B3_PARENT),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut fields = base.to_vec();
        fields.extend_from_slice(extra);
        multi(&fields)
    };
    let expect = |sampled, debug| Incoming {
        format: Format::B3Multi,
        ids: ids(B3_TRACE, B3_SPAN),
        sampled,
        flags: 0,
        debug,
        short_trace_id: false,
    };
    assert_eq!(
        with(&[("x-b3-sampled", "1")]),
        Some(expect(Sampled::Yes, false))
    );
    assert_eq!(
        with(&[("x-b3-sampled", "0")]),
        Some(expect(Sampled::No, false))
    );
    assert_eq!(
        with(&[("x-b3-sampled", "true")]),
        Some(expect(Sampled::Yes, false))
    );
    assert_eq!(
        with(&[("x-b3-sampled", "False")]),
        Some(expect(Sampled::No, false))
    );
    assert_eq!(with(&[]), Some(expect(Sampled::Deferred, false)));
    assert_eq!(
        with(&[("x-b3-flags", "1")]),
        Some(expect(Sampled::Yes, true))
    );
    assert_eq!(
        with(&[("x-b3-flags", "0")]),
        Some(expect(Sampled::Deferred, false))
    );
    // Debug is an accept even beside a contrary x-b3-sampled.
    assert_eq!(
        with(&[("x-b3-flags", "1"), ("x-b3-sampled", "0")]),
        Some(expect(Sampled::Yes, true))
    );
    // The parent span is optional.
    assert_eq!(
        multi(&[("x-b3-traceid", B3_TRACE), ("x-b3-spanid", B3_SPAN)]),
        Some(expect(Sampled::Deferred, false))
    );
}

#[test]
fn b3_multi_with_a_64_bit_trace_id_is_marked_short() {
    let found = multi(&[
        ("x-b3-traceid", "64fe8b2a57d3eff7"),
        ("x-b3-spanid", B3_SPAN),
    ])
    .expect("16 hex digits are valid");
    assert_eq!(
        found.ids.map(|i| i.trace_id),
        Some(short_trace_id("64fe8b2a57d3eff7"))
    );
    assert!(found.short_trace_id);
}

#[test]
fn b3_multi_decisions_alone_are_kept_without_ids() {
    let lone = multi(&[("x-b3-sampled", "0")]).expect("a lone decision is valid");
    assert_eq!(
        (lone.ids, lone.sampled, lone.debug),
        (None, Sampled::No, false)
    );
    let lone = multi(&[("x-b3-sampled", "1")]).expect("a lone decision is valid");
    assert_eq!((lone.ids, lone.sampled), (None, Sampled::Yes));
    let lone = multi(&[("x-b3-flags", "1")]).expect("a lone debug flag is valid");
    assert_eq!(
        (lone.ids, lone.sampled, lone.debug),
        (None, Sampled::Yes, true)
    );
    // x-b3-flags: 0 alone says nothing: no context, and nothing wrong.
    let found = read(&[("x-b3-flags", "0")]);
    assert_eq!(found.incoming, None);
    assert_eq!(found.report.x_b3, Seen::Valid);
    assert_eq!(found.report.fate(Header::XB3Flags), Fate::Forward);
}

#[test]
fn b3_multi_with_half_the_ids_or_a_bad_field_is_invalid() {
    let cases: &[&[(&str, &str)]] = &[
        &[("x-b3-traceid", B3_TRACE)],
        &[("x-b3-spanid", B3_SPAN)],
        &[("x-b3-traceid", B3_TRACE), ("x-b3-sampled", "1")],
        &[("x-b3-spanid", B3_SPAN), ("x-b3-parentspanid", B3_PARENT)],
        &[("x-b3-parentspanid", B3_PARENT)],
        &[("x-b3-parentspanid", B3_PARENT), ("x-b3-sampled", "1")],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-sampled", "yes"),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-sampled", "d"),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-sampled", ""),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-flags", "2"),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-flags", "true"),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-parentspanid", "0000000000000000"),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-parentspanid", ""),
        ],
        &[
            ("x-b3-traceid", "80F198EE56343BA864FE8B2A57D3EFF7"),
            ("x-b3-spanid", B3_SPAN),
        ],
        &[
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff"),
            ("x-b3-spanid", B3_SPAN),
        ],
        &[
            ("x-b3-traceid", "00000000000000000000000000000000"),
            ("x-b3-spanid", B3_SPAN),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", "0000000000000000"),
        ],
        &[
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", "e457b5a2e4d86bd"),
        ],
        &[("x-b3-traceid", B3_TRACE), ("x-b3-spanid", "")],
        &[("x-b3-sampled", "1, 1")],
    ];
    for fields in cases {
        let found = read(fields);
        assert_eq!(found.incoming, None, "{fields:?}");
        assert_eq!(found.report.x_b3, Seen::Invalid, "{fields:?}");
        for header in [
            Header::XB3TraceId,
            Header::XB3SpanId,
            Header::XB3ParentSpanId,
            Header::XB3Sampled,
            Header::XB3Flags,
        ] {
            assert_eq!(found.report.fate(header), Fate::Drop);
        }
    }
}

#[test]
fn b3_multi_repeated_fields_must_agree() {
    let same = multi(&[
        ("x-b3-traceid", B3_TRACE),
        ("x-b3-traceid", B3_TRACE),
        ("x-b3-spanid", B3_SPAN),
        ("x-b3-sampled", "1"),
        ("x-b3-sampled", "true"),
    ]);
    assert_eq!(same.map(|i| i.sampled), Some(Sampled::Yes));
    for fields in [
        [
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff8"),
        ],
        [
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-traceid", "64fe8b2a57d3eff7"),
        ],
        [("x-b3-spanid", B3_SPAN), ("x-b3-spanid", B3_PARENT)],
        [("x-b3-sampled", "1"), ("x-b3-sampled", "0")],
        [("x-b3-flags", "1"), ("x-b3-flags", "0")],
    ] {
        let mut all = vec![("x-b3-traceid", B3_TRACE), ("x-b3-spanid", B3_SPAN)];
        all.extend_from_slice(&fields);
        let found = read(&all);
        assert_eq!(found.incoming, None, "{fields:?}");
        assert_eq!(found.report.x_b3, Seen::Invalid);
    }
}

// --- precedence and fates --------------------------------------------------

/// Every order of `fields` gives the same result.
fn read_any_order(fields: &[(&str, &str)]) -> Extracted {
    let first = read(fields);
    let mut order: Vec<usize> = (0..fields.len()).collect();
    let mut rng = Rng(0x5eed);
    for _ in 0..24 {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let shuffled: Vec<_> = order.iter().map(|&i| fields[i]).collect();
        assert_eq!(read(&shuffled), first, "{shuffled:?}");
    }
    first
}

#[test]
fn a_valid_traceparent_wins_then_b3_then_the_multi_headers() {
    let single = format!("{B3_TRACE}-{B3_SPAN}-0");
    let all = [
        ("traceparent", TP),
        ("b3", single.as_str()),
        ("x-b3-traceid", "64fe8b2a57d3eff7"),
        ("x-b3-spanid", B3_PARENT),
        ("tracestate", "foo=1"),
    ];
    let found = read_any_order(&all);
    let incoming = found.incoming.expect("a valid traceparent makes a context");
    assert_eq!(
        (incoming.format, incoming.ids),
        (Format::W3c, ids(TRACE, PARENT))
    );
    let report = found.report;
    assert_eq!(report.fate(Header::Traceparent), Fate::Replace);
    assert_eq!(report.fate(Header::Tracestate), Fate::Forward);
    assert_eq!(report.fate(Header::B3), Fate::Forward);
    assert_eq!(report.fate(Header::XB3TraceId), Fate::Forward);

    // An invalid traceparent gives way to b3, and is dropped.
    let mut rest = all;
    rest[0].1 = "00-bad";
    let found = read_any_order(&rest);
    let incoming = found.incoming.expect("b3 makes a context");
    assert_eq!(
        (incoming.format, incoming.ids),
        (Format::B3Single, ids(B3_TRACE, B3_SPAN))
    );
    assert_eq!(incoming.sampled, Sampled::No);
    let report = found.report;
    assert_eq!(report.fate(Header::Traceparent), Fate::Drop);
    assert_eq!(report.fate(Header::Tracestate), Fate::Drop);
    assert_eq!(report.fate(Header::B3), Fate::Replace);
    assert_eq!(report.fate(Header::XB3SpanId), Fate::Forward);

    // Then the multi headers.
    rest[1].1 = "-";
    let found = read_any_order(&rest);
    let incoming = found.incoming.expect("the multi headers make a context");
    assert_eq!(incoming.format, Format::B3Multi);
    assert_eq!(
        incoming.ids.map(|i| i.trace_id),
        Some(short_trace_id("64fe8b2a57d3eff7"))
    );
    assert_eq!(found.report.fate(Header::B3), Fate::Drop);
    assert_eq!(found.report.fate(Header::XB3TraceId), Fate::Replace);
    assert!(found.report.any_invalid());

    // Then nothing.
    rest[2].1 = "nope";
    let found = read_any_order(&rest);
    assert_eq!(found.incoming, None);
    assert_eq!(found.report.used, None);
    assert_eq!(found.report.fate(Header::XB3SpanId), Fate::Drop);
}

#[test]
fn a_lone_b3_decision_still_wins_over_multi_headers_with_ids() {
    let found = read_any_order(&[
        ("b3", "0"),
        ("x-b3-traceid", B3_TRACE),
        ("x-b3-spanid", B3_SPAN),
    ]);
    let incoming = found.incoming.expect("b3: 0 is a context");
    assert_eq!(
        (incoming.format, incoming.ids, incoming.sampled),
        (Format::B3Single, None, Sampled::No)
    );
    assert_eq!(found.report.fate(Header::XB3TraceId), Fate::Forward);
}

#[test]
fn a_head_without_trace_headers_reports_nothing() {
    let found = read(&[
        ("host", "example.com"),
        ("x-b3", "1"),
        ("b33", "1"),
        ("accept", "*/*"),
    ]);
    assert_eq!(found.incoming, None);
    assert_eq!(found.report, Report::default());
    assert!(!found.report.any_invalid());
    assert_eq!(Reader::default().finish(), Reader::new().finish());
}

#[test]
fn header_names_are_classified_in_any_case() {
    let all = [
        Header::Traceparent,
        Header::Tracestate,
        Header::B3,
        Header::XB3TraceId,
        Header::XB3SpanId,
        Header::XB3ParentSpanId,
        Header::XB3Sampled,
        Header::XB3Flags,
    ];
    for header in all {
        let name = header.name();
        assert_eq!(Header::classify(name.as_bytes()), Some(header));
        assert_eq!(
            Header::classify(name.to_uppercase().as_bytes()),
            Some(header)
        );
        assert_eq!(Header::classify(format!("{name}x").as_bytes()), None);
        assert_eq!(Header::classify(&name.as_bytes()[1..]), None);
    }
    for name in [
        "",
        "b",
        "b4",
        "x-b3-traceix",
        "tracestatf",
        "x-b3-parentspan-d",
    ] {
        assert_eq!(Header::classify(name.as_bytes()), None, "{name}");
    }
}

#[test]
fn the_reader_stays_small_enough_for_the_stack() {
    assert!(
        std::mem::size_of::<Reader>() <= 512,
        "{}",
        std::mem::size_of::<Reader>()
    );
}

// --- writers -------------------------------------------------------------

const SPAN: &str = "b9c7c989f97918e1";
const SERVER: &str = "53995c3f42cd8ad8";

fn text(v: Value) -> String {
    String::from_utf8(v.as_bytes().to_vec()).expect("written values are ASCII")
}

#[test]
fn traceparent_is_written_with_the_decision_in_the_flags() {
    let root = |sampled| Outgoing::new(trace_id(TRACE), span_id(SPAN), None, sampled, None);
    assert_eq!(
        text(root(true).traceparent()),
        format!("00-{TRACE}-{SPAN}-01")
    );
    assert_eq!(
        text(root(false).traceparent()),
        format!("00-{TRACE}-{SPAN}-00")
    );
    assert_eq!(root(true).traceparent().as_bytes().len(), TRACEPARENT_LEN);

    // The caller's other flags are kept; the sampled bit is ringway's.
    let incoming = traceparent(&format!("00-{TRACE}-{PARENT}-03")).expect("valid");
    let out = |sampled| {
        Outgoing::new(
            trace_id(TRACE),
            span_id(SPAN),
            None,
            sampled,
            Some(&incoming),
        )
    };
    assert_eq!(
        text(out(false).traceparent()),
        format!("00-{TRACE}-{SPAN}-02")
    );
    assert_eq!(
        text(out(true).traceparent()),
        format!("00-{TRACE}-{SPAN}-03")
    );
    let incoming = traceparent(&format!("00-{TRACE}-{PARENT}-fe")).expect("valid");
    let out = Outgoing::new(trace_id(TRACE), span_id(SPAN), None, true, Some(&incoming));
    assert_eq!(text(out.traceparent()), format!("00-{TRACE}-{SPAN}-ff"));
    // A later version is written back as 00.
    let later = traceparent(&format!("cc-{TRACE}-{PARENT}-01-extra")).expect("valid");
    let out = Outgoing::new(trace_id(TRACE), span_id(SPAN), None, true, Some(&later));
    assert_eq!(text(out.traceparent()), format!("00-{TRACE}-{SPAN}-01"));
}

#[test]
fn b3_is_written_in_the_width_the_caller_used() {
    let root = |sampled| Outgoing::new(trace_id(B3_TRACE), span_id(SPAN), None, sampled, None);
    assert_eq!(text(root(true).b3()), format!("{B3_TRACE}-{SPAN}-1"));
    assert_eq!(text(root(false).b3()), format!("{B3_TRACE}-{SPAN}-0"));

    let short = b3(&format!("64fe8b2a57d3eff7-{B3_SPAN}-1")).expect("valid");
    let trace = short.ids.expect("has ids").trace_id;
    let out = Outgoing::new(trace, span_id(SPAN), None, true, Some(&short));
    assert_eq!(text(out.b3()), format!("64fe8b2a57d3eff7-{SPAN}-1"));
    assert_eq!(text(out.x_b3_trace_id()), "64fe8b2a57d3eff7");
    // In W3C the same id is 32 digits, zero-padded.
    assert_eq!(
        text(out.traceparent()),
        format!("00-000000000000000064fe8b2a57d3eff7-{SPAN}-01")
    );
    // A full-width id cannot be written short, whatever the flag says.
    let mut forced = out;
    forced.trace_id = trace_id(B3_TRACE);
    assert_eq!(text(forced.x_b3_trace_id()), B3_TRACE);
    // A short caller with a new trace (it sent a decision alone) gets
    // the full width: Outgoing::new only keeps short for a short id.
    let new = Outgoing::new(trace_id(B3_TRACE), span_id(SPAN), None, true, Some(&short));
    assert!(!new.short_trace_id);
}

#[test]
fn b3_debug_is_written_as_d_or_as_the_flags_header() {
    let debug = b3(&format!("{B3_TRACE}-{B3_SPAN}-d")).expect("valid");
    let out = |sampled| {
        Outgoing::new(
            trace_id(B3_TRACE),
            span_id(SPAN),
            Some(span_id(SERVER)),
            sampled,
            Some(&debug),
        )
    };
    assert_eq!(text(out(true).b3()), format!("{B3_TRACE}-{SPAN}-d"));
    assert_eq!(out(true).x_b3_decision(), (Header::XB3Flags, &b"1"[..]));
    // Overruled (the proxy may refuse a caller's debug): no debug either.
    assert_eq!(text(out(false).b3()), format!("{B3_TRACE}-{SPAN}-0"));
    assert_eq!(out(false).x_b3_decision(), (Header::XB3Sampled, &b"0"[..]));
}

#[test]
fn header_lines_are_written_for_each_format() {
    let out = Outgoing::new(
        trace_id(B3_TRACE),
        span_id(SPAN),
        Some(span_id(SERVER)),
        true,
        None,
    );
    let lines = |format| {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        out.write_headers(format, &mut buf);
        String::from_utf8(buf).expect("ASCII")
    };
    assert_eq!(
        lines(Format::W3c),
        format!("GET / HTTP/1.1\r\ntraceparent: 00-{B3_TRACE}-{SPAN}-01\r\n")
    );
    assert_eq!(
        lines(Format::B3Single),
        format!("GET / HTTP/1.1\r\nb3: {B3_TRACE}-{SPAN}-1\r\n")
    );
    assert_eq!(
        lines(Format::B3Multi),
        format!(
            "GET / HTTP/1.1\r\nx-b3-traceid: {B3_TRACE}\r\nx-b3-spanid: {SPAN}\r\n\
             x-b3-parentspanid: {SERVER}\r\nx-b3-sampled: 1\r\n"
        )
    );
    let mut no_parent = out;
    no_parent.parent_id = None;
    no_parent.sampled = false;
    let mut buf = Vec::new();
    no_parent.write_headers(Format::B3Multi, &mut buf);
    assert_eq!(
        String::from_utf8(buf).expect("ASCII"),
        format!("x-b3-traceid: {B3_TRACE}\r\nx-b3-spanid: {SPAN}\r\nx-b3-sampled: 0\r\n")
    );
    assert_eq!(format!("{:?}", out.x_b3_span_id()), format!("{SPAN:?}"));
    assert_eq!(out.x_b3_span_id().as_ref(), SPAN.as_bytes());
}

/// Reads back header lines written by [`Outgoing::write_headers`].
fn reread(lines: &[u8]) -> Extracted {
    let mut reader = Reader::new();
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .expect("a written line has a colon");
        reader.field(&line[..colon], &line[colon + 1..]);
    }
    reader.finish()
}

/// Writes `incoming` back as the proxy would, with `span` as the new
/// parent, reads it again, and checks that nothing was lost.
fn assert_round_trip(incoming: &Incoming, span: SpanId, new_trace: TraceId) {
    let decision = incoming.sampled.decide(Threshold::ALWAYS, || 0);
    let trace = incoming.ids.map_or(new_trace, |ids| ids.trace_id);
    let server = new_span_id(|| 7);
    let out = Outgoing::new(trace, span, Some(server), decision, Some(incoming));
    let mut buf = Vec::new();
    out.write_headers(incoming.format, &mut buf);
    let again = reread(&buf);
    let back = again.incoming.unwrap_or_else(|| {
        panic!(
            "{incoming:?} wrote {:?}, which did not read back",
            String::from_utf8_lossy(&buf)
        )
    });
    assert_eq!(back.format, incoming.format);
    assert_eq!(
        back.ids,
        Some(Ids {
            trace_id: trace,
            parent_id: span,
        })
    );
    let expected = if decision { Sampled::Yes } else { Sampled::No };
    assert_eq!(back.sampled, expected, "{incoming:?}");
    assert_eq!(back.debug, incoming.debug);
    assert_eq!(
        back.short_trace_id,
        incoming.short_trace_id && incoming.ids.is_some()
    );
    if incoming.format == Format::W3c {
        assert_eq!(back.flags, incoming.flags);
    }
    assert!(!again.report.any_invalid());
}

#[test]
fn every_format_round_trips() {
    let span = span_id(SPAN);
    let new = trace_id(B3_TRACE);
    let heads: Vec<Vec<(&str, String)>> = vec![
        vec![("traceparent", TP.into())],
        vec![("traceparent", format!("00-{TRACE}-{PARENT}-00"))],
        vec![("traceparent", format!("00-{TRACE}-{PARENT}-02"))],
        vec![("traceparent", format!("cc-{TRACE}-{PARENT}-01-future"))],
        vec![("b3", format!("{B3_TRACE}-{B3_SPAN}-1-{B3_PARENT}"))],
        vec![("b3", format!("{B3_TRACE}-{B3_SPAN}-d"))],
        vec![("b3", format!("64fe8b2a57d3eff7-{B3_SPAN}-0"))],
        vec![("b3", format!("64fe8b2a57d3eff7-{B3_SPAN}"))],
        vec![("b3", "0".into())],
        vec![("b3", "d".into())],
        vec![
            ("x-b3-traceid", B3_TRACE.into()),
            ("x-b3-spanid", B3_SPAN.into()),
        ],
        vec![
            ("x-b3-traceid", "64fe8b2a57d3eff7".into()),
            ("x-b3-spanid", B3_SPAN.into()),
            ("x-b3-flags", "1".into()),
        ],
        vec![("x-b3-sampled", "0".into())],
    ];
    for head in heads {
        let fields: Vec<(&str, &str)> = head.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let incoming = read(&fields)
            .incoming
            .unwrap_or_else(|| panic!("{fields:?} is valid"));
        assert_round_trip(&incoming, span, new);
    }
}

// --- ids and sampling ------------------------------------------------------

#[test]
fn new_ids_take_their_bits_from_the_source_and_are_never_zero() {
    let mut draws = [0x0102_0304_0506_0708u64, 0x090a_0b0c_0d0e_0f10].into_iter();
    let id = new_trace_id(|| draws.next().unwrap_or(0));
    assert_eq!(id, trace_id("0102030405060708090a0b0c0d0e0f10"));
    assert_eq!(new_span_id(|| 0xfeed_beef), span_id("00000000feedbeef"));
    // A source stuck at zero still gives valid ids.
    assert_ne!(new_trace_id(|| 0), [0; 16]);
    assert_ne!(new_span_id(|| 0), [0; 8]);
    // One zero half is fine.
    let mut halves = [0u64, 5].into_iter();
    assert_eq!(
        new_trace_id(|| halves.next().unwrap_or(0)),
        trace_id("00000000000000000000000000000005")
    );
    // The worker's own generator.
    let random = crate::random::Random::new(42);
    for _ in 0..1000 {
        assert_ne!(new_trace_id(|| random.next()), [0; 16]);
        assert_ne!(new_span_id(|| random.next()), [0; 8]);
    }
}

#[test]
fn head_sampling_follows_the_ratio_at_its_ends() {
    assert_eq!(Threshold::from_ratio(0.0), Threshold::NEVER);
    assert_eq!(Threshold::from_ratio(-1.0), Threshold::NEVER);
    assert_eq!(Threshold::from_ratio(f64::NAN), Threshold::NEVER);
    assert_eq!(Threshold::from_ratio(1.0), Threshold::ALWAYS);
    assert_eq!(Threshold::from_ratio(7.5), Threshold::ALWAYS);
    assert_eq!(Threshold::from_ratio(f64::INFINITY), Threshold::ALWAYS);
    for draw in [0, 1, 2, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
        assert!(!head_sample(Threshold::NEVER, draw));
        assert!(head_sample(Threshold::ALWAYS, draw));
    }
    let half = Threshold::from_ratio(0.5);
    assert_eq!(half.ratio(), 0.5);
    assert!(head_sample(half, (1 << 63) - 1));
    assert!(!head_sample(half, 1 << 63));
    assert_eq!(Threshold::from_ratio(0.25).ratio(), 0.25);
    // The smallest ratios round down to never, never up.
    assert_eq!(Threshold::from_ratio(1e-30), Threshold::NEVER);
}

#[test]
fn head_sampling_keeps_about_the_ratio() {
    let random = crate::random::Random::new(0x7261_6e64);
    for ratio in [0.01, 0.1, 0.5, 0.9] {
        let threshold = Threshold::from_ratio(ratio);
        let n = 100_000;
        let kept = (0..n)
            .filter(|_| head_sample(threshold, random.next()))
            .count();
        let got = kept as f64 / n as f64;
        assert!((got - ratio).abs() < 0.01, "ratio {ratio}: kept {got}");
    }
}

#[test]
fn a_caller_decision_is_kept_and_only_a_deferred_one_draws() {
    let never_drawn = || -> u64 { panic!("a decided request takes no draw") };
    assert!(Sampled::Yes.decide(Threshold::NEVER, never_drawn));
    assert!(!Sampled::No.decide(Threshold::ALWAYS, never_drawn));
    assert!(Sampled::Deferred.decide(Threshold::ALWAYS, || 0));
    assert!(!Sampled::Deferred.decide(Threshold::NEVER, || 0));
}

// --- property tests ----------------------------------------------------------

const NAMES: [&str; 8] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// Bytes that sit on the grammars' edges; mutations favour them.
const INTERESTING: &[u8] = b"-=,@ \t0019afgAFdD*/_.\x00\x7f\xff";

fn hex(rng: &mut Rng, digits: usize) -> String {
    (0..digits)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16)]))
        .collect()
}

/// Random ids are all zero too rarely to matter; these tests want valid
/// ones every time.
fn nonzero_hex(rng: &mut Rng, digits: usize) -> String {
    loop {
        let h = hex(rng, digits);
        if h.bytes().any(|b| b != b'0') {
            return h;
        }
    }
}

fn ows(rng: &mut Rng) -> &'static str {
    const OWS: [&str; 6] = ["", "", "", " ", "\t", " \t "];
    OWS[rng.below(OWS.len())]
}

/// A valid head in one of the formats, with the context it must give.
fn valid_head(rng: &mut Rng) -> (Vec<(String, String)>, Incoming) {
    let sampled_of = |s: u8| match s {
        0 => (Sampled::No, false),
        1 => (Sampled::Yes, false),
        2 => (Sampled::Yes, true),
        _ => (Sampled::Deferred, false),
    };
    match rng.below(3) {
        0 => {
            let version = rng.below(255) as u8;
            let (trace, parent) = (nonzero_hex(rng, 32), nonzero_hex(rng, 16));
            let flags = rng.next() as u8;
            let tail = if version != 0 && rng.one_in(2) {
                "-more-fields"
            } else {
                ""
            };
            let value = format!(
                "{}{version:02x}-{trace}-{parent}-{flags:02x}{tail}{}",
                ows(rng),
                ows(rng)
            );
            let flags = if version == 0 { flags } else { flags & 1 };
            let incoming = Incoming {
                format: Format::W3c,
                ids: ids(&trace, &parent),
                sampled: if flags & 1 == 1 {
                    Sampled::Yes
                } else {
                    Sampled::No
                },
                flags,
                debug: false,
                short_trace_id: false,
            };
            (vec![("traceparent".into(), value)], incoming)
        }
        1 => {
            let short = rng.one_in(2);
            let trace = nonzero_hex(rng, if short { 16 } else { 32 });
            let span = nonzero_hex(rng, 16);
            let state = rng.below(4) as u8;
            let (sampled, debug) = sampled_of(state);
            let lone = state < 3 && rng.one_in(4);
            let value = match (lone, state) {
                (true, _) => ["0", "1", "d"][usize::from(state)].to_string(),
                (false, 3) => format!("{trace}-{span}"),
                (false, _) => {
                    let parent = if rng.one_in(2) {
                        format!("-{}", nonzero_hex(rng, 16))
                    } else {
                        String::new()
                    };
                    format!(
                        "{trace}-{span}-{}{parent}",
                        ["0", "1", "d"][usize::from(state)]
                    )
                }
            };
            let trace_id = if short {
                short_trace_id(&trace)
            } else {
                trace_id(&trace)
            };
            let incoming = Incoming {
                format: Format::B3Single,
                ids: (!lone).then(|| Ids {
                    trace_id,
                    parent_id: span_id(&span),
                }),
                sampled,
                flags: 0,
                debug,
                short_trace_id: short && !lone,
            };
            (
                vec![("b3".into(), format!("{}{value}{}", ows(rng), ows(rng)))],
                incoming,
            )
        }
        _ => {
            let short = rng.one_in(2);
            let trace = nonzero_hex(rng, if short { 16 } else { 32 });
            let span = nonzero_hex(rng, 16);
            let mut fields = vec![
                ("x-b3-traceid".to_string(), trace.clone()),
                ("x-b3-spanid".to_string(), span.clone()),
            ];
            if rng.one_in(2) {
                fields.push(("x-b3-parentspanid".into(), nonzero_hex(rng, 16)));
            }
            let (sampled, debug) = sampled_of(rng.below(4) as u8);
            match (sampled, debug) {
                (_, true) => fields.push(("x-b3-flags".into(), "1".into())),
                (Sampled::Yes, _) => fields.push((
                    "x-b3-sampled".into(),
                    (*rng.pick(&["1", "true", "TRUE"])).into(),
                )),
                (Sampled::No, _) => {
                    fields.push(("x-b3-sampled".into(), (*rng.pick(&["0", "false"])).into()))
                }
                (Sampled::Deferred, _) => {}
            }
            let trace_id = if short {
                short_trace_id(&trace)
            } else {
                trace_id(&trace)
            };
            let incoming = Incoming {
                format: Format::B3Multi,
                ids: Some(Ids {
                    trace_id,
                    parent_id: span_id(&span),
                }),
                sampled,
                flags: 0,
                debug,
                short_trace_id: short,
            };
            // Order within the set does not matter.
            for i in (1..fields.len()).rev() {
                fields.swap(i, rng.below(i + 1));
            }
            (fields, incoming)
        }
    }
}

fn mutate(rng: &mut Rng, value: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(value.len() + 1);
        let byte = if rng.one_in(3) {
            rng.next() as u8
        } else {
            *rng.pick(INTERESTING)
        };
        match rng.below(5) {
            0 if at < value.len() => value[at] = byte,
            1 => value.insert(at, byte),
            2 if at < value.len() => {
                value.remove(at);
            }
            3 => value.truncate(at),
            _ if at < value.len() => value[at] = value[at].to_ascii_uppercase(),
            _ => {}
        }
    }
}

fn feed(fields: &[(String, Vec<u8>)]) -> Extracted {
    let mut reader = Reader::new();
    for (name, value) in fields {
        reader.field(name.as_bytes(), value);
    }
    reader.finish()
}

/// What holds of anything the reader says, whatever it was fed.
fn assert_sound(found: &Extracted) {
    let report = found.report;
    assert_eq!(report.used, found.incoming.map(|i| i.format));
    if let Some(incoming) = found.incoming {
        if let Some(ids) = incoming.ids {
            assert_ne!(ids.trace_id, [0; 16]);
            assert_ne!(ids.parent_id, [0; 8]);
            if incoming.short_trace_id {
                assert_eq!(ids.trace_id[..8], [0; 8]);
            }
        }
        let seen = match incoming.format {
            Format::W3c => report.traceparent,
            Format::B3Single => report.b3,
            Format::B3Multi => report.x_b3,
        };
        assert_eq!(seen, Seen::Valid);
        if incoming.format != Format::W3c {
            assert_ne!(report.traceparent, Seen::Valid);
            assert_eq!(incoming.flags, 0);
        }
        if incoming.format == Format::B3Multi {
            assert_ne!(report.b3, Seen::Valid);
        }
        assert!(incoming.sampled == Sampled::Yes || !incoming.debug);
    }
    if report.forward_tracestate() {
        assert_eq!(report.traceparent, Seen::Valid);
        assert_eq!(report.tracestate, Seen::Valid);
    }
    assert!(usize::from(report.tracestate_members) <= TRACESTATE_MAX_MEMBERS + 1);
}

#[test]
fn property_valid_heads_read_exactly_and_round_trip() {
    let mut rng = Rng(0x7261_6365);
    for _ in 0..5_000 {
        let (fields, expected) = valid_head(&mut rng);
        let fields: Vec<(String, Vec<u8>)> = fields
            .into_iter()
            .map(|(name, value)| {
                // Any case for names.
                let name = name
                    .chars()
                    .map(|c| {
                        if rng.one_in(3) {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                (name, value.into_bytes())
            })
            .collect();
        let found = feed(&fields);
        assert_sound(&found);
        assert_eq!(found.incoming, Some(expected), "{fields:?}");
        let span = new_span_id(|| rng.next());
        let new = new_trace_id(|| rng.next());
        assert_round_trip(&expected, span, new);
    }
}

#[test]
fn property_mangled_and_random_heads_never_panic_and_stay_sound() {
    let mut rng = Rng(0x6d61_6e67);
    for _ in 0..20_000 {
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                // A valid head, mangled.
                0 | 1 => {
                    let (head, _) = valid_head(&mut rng);
                    for (name, value) in head {
                        let mut value = value.into_bytes();
                        if rng.one_in(2) {
                            mutate(&mut rng, &mut value);
                        }
                        fields.push((name, value));
                    }
                }
                // Random bytes under a trace header's name.
                2 => {
                    let len = rng.below(80);
                    let value = (0..len)
                        .map(|_| {
                            if rng.one_in(2) {
                                rng.next() as u8
                            } else {
                                *rng.pick(INTERESTING)
                            }
                        })
                        .collect();
                    fields.push(((*rng.pick(&NAMES)).into(), value));
                }
                // A tracestate, maybe mangled.
                _ => {
                    let mut value = tracestate_value(&mut rng).into_bytes();
                    if rng.one_in(2) {
                        mutate(&mut rng, &mut value);
                    }
                    fields.push(("tracestate".into(), value));
                }
            }
        }
        let found = feed(&fields);
        assert_sound(&found);
        // Whatever it accepted writes back to the same context.
        if let Some(incoming) = found.incoming {
            assert_round_trip(
                &incoming,
                new_span_id(|| rng.next()),
                new_trace_id(|| rng.next()),
            );
        }
    }
}

/// A plain reading of the W3C traceparent rules, by splitting on dashes,
/// to check the reader's fixed-offset one against: the ids and flags, or
/// none.
fn reference_traceparent(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>, u8)> {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b))?;
    let end = value.iter().rposition(|b| !is_ows(b))? + 1;
    let parts: Vec<&[u8]> = value[start..end].split(|&b| b == b'-').collect();
    let lower_hex = |s: &[u8], n: usize| {
        s.len() == n
            && s.iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    if parts.len() < 4 || !lower_hex(parts[0], 2) || parts[0] == b"ff" {
        return None;
    }
    if parts[0] == b"00" && parts.len() != 4 {
        return None;
    }
    if !lower_hex(parts[1], 32) || !lower_hex(parts[2], 16) || !lower_hex(parts[3], 2) {
        return None;
    }
    if parts[1].iter().all(|&b| b == b'0') || parts[2].iter().all(|&b| b == b'0') {
        return None;
    }
    let flags = u8::from_str_radix(std::str::from_utf8(parts[3]).ok()?, 16).ok()?;
    let flags = if parts[0] == b"00" { flags } else { flags & 1 };
    Some((parts[1].to_vec(), parts[2].to_vec(), flags))
}

#[test]
fn property_traceparent_agrees_with_a_plain_reading_of_the_rules() {
    let mut rng = Rng(0x7472_6163);
    let mut accepted = 0;
    for _ in 0..50_000 {
        let (head, _) = valid_head(&mut rng);
        let mut value = match head.into_iter().find(|(n, _)| n == "traceparent") {
            Some((_, value)) => value.into_bytes(),
            None => format!("00-{}-{}-01", hex(&mut rng, 32), hex(&mut rng, 16)).into_bytes(),
        };
        if !rng.one_in(4) {
            mutate(&mut rng, &mut value);
        }
        let found = feed(&[("traceparent".into(), value.clone())]);
        let expected = reference_traceparent(&value);
        let got = found.incoming.map(|i| {
            let ids = i.ids.expect("a traceparent has ids");
            let to_hex = |b: &[u8]| {
                b.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .into_bytes()
            };
            (to_hex(&ids.trace_id), to_hex(&ids.parent_id), i.flags)
        });
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(&value));
        accepted += usize::from(got.is_some());
    }
    // The mix exercises both sides.
    assert!(accepted > 10_000 && accepted < 45_000, "{accepted}");
}

/// A tracestate value of a few members, mostly valid.
fn tracestate_value(rng: &mut Rng) -> String {
    const KEYS: [&str; 8] = [
        "rojo",
        "congo",
        "a",
        "t0@v",
        "0t@vendor",
        "k_-*/9",
        "foo",
        "bar",
    ];
    (0..rng.below(6))
        .map(|_| {
            let key = *rng.pick(&KEYS);
            let value = *rng.pick(&["1", "00f067aa0ba902b7", "t61rcWkgMzE", " lead", "a b"]);
            format!("{}{key}={value}{}", ows(rng), ows(rng))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A plain reading of the tracestate rules over the combined value, with
/// exact duplicate detection.
fn reference_tracestate(fields: &[Vec<u8>]) -> Seen {
    if fields.is_empty() {
        return Seen::Absent;
    }
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let trim = |s: &[u8]| -> Vec<u8> {
        let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
        let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
        s[start..end].to_vec()
    };
    let combined = fields
        .iter()
        .map(|f| trim(f))
        .collect::<Vec<_>>()
        .join(&b","[..]);
    if combined.len() > TRACESTATE_MAX_LEN {
        return Seen::Invalid;
    }
    let key_part = |s: &[u8], max: usize, digit_first: bool| {
        !s.is_empty()
            && s.len() <= max
            && (s[0].is_ascii_lowercase() || (digit_first && s[0].is_ascii_digit()))
            && s[1..]
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(b))
    };
    let mut keys = HashSet::new();
    for member in combined.split(|&b| b == b',') {
        let member = trim(member);
        if member.is_empty() {
            continue;
        }
        let Some(eq) = member.iter().position(|&b| b == b'=') else {
            return Seen::Invalid;
        };
        let (key, value) = (&member[..eq], &member[eq + 1..]);
        let key_ok = match key.iter().filter(|&&b| b == b'@').count() {
            0 => key_part(key, 256, false),
            1 => {
                let at = key.iter().position(|&b| b == b'@').unwrap_or(0);
                key_part(&key[..at], 241, true) && key_part(&key[at + 1..], 14, false)
            }
            _ => false,
        };
        let value_ok = !value.is_empty()
            && value.len() <= 256
            && value
                .iter()
                .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
            && value.last() != Some(&b' ');
        if !key_ok || !value_ok || !keys.insert(key.to_vec()) || keys.len() > TRACESTATE_MAX_MEMBERS
        {
            return Seen::Invalid;
        }
    }
    Seen::Valid
}

#[test]
fn property_tracestate_agrees_with_a_plain_reading_of_the_rules() {
    let mut rng = Rng(0x7374_6174);
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..20_000 {
        let fields: Vec<Vec<u8>> = (0..rng.below(4))
            .map(|_| {
                let mut value = tracestate_value(&mut rng).into_bytes();
                if rng.one_in(3) {
                    mutate(&mut rng, &mut value);
                }
                if rng.one_in(20) {
                    // Long ones, near the length limit.
                    value.extend_from_slice(
                        format!(",long={}", "v".repeat(200 + rng.below(100))).as_bytes(),
                    );
                }
                value
            })
            .collect();
        let mut reader = Reader::new();
        for value in &fields {
            reader.field(b"tracestate", value);
        }
        let got = reader.finish().report.tracestate;
        let expected = reference_tracestate(&fields);
        assert_eq!(
            got,
            expected,
            "{:?}",
            fields
                .iter()
                .map(|f| String::from_utf8_lossy(f))
                .collect::<Vec<_>>()
        );
        valid += usize::from(got == Seen::Valid);
        invalid += usize::from(got == Seen::Invalid);
    }
    assert!(
        valid > 2_000 && invalid > 2_000,
        "{valid} valid, {invalid} invalid"
    );
}
