use super::*;

const MERGE: PathRules = PathRules {
    merge_slashes: true,
    encoded_slashes: EncodedSlashes::Reject,
};
const KEEP: PathRules = PathRules {
    merge_slashes: false,
    encoded_slashes: EncodedSlashes::Reject,
};
const PASS: PathRules = PathRules {
    merge_slashes: true,
    encoded_slashes: EncodedSlashes::Pass,
};

fn normal(path: &str, rules: &PathRules) -> Result<String, PathError> {
    let mut out = Vec::new();
    normalize(path.as_bytes(), rules, &mut out)?;
    Ok(String::from_utf8(out).expect("ASCII in, ASCII out"))
}

fn check(rules: &PathRules, cases: &[(&str, &str)]) {
    for &(path, want) in cases {
        assert_eq!(normal(path, rules).as_deref(), Ok(want), "{path:?}");
        // The fast check may send a normal path the slow way (a ';', an
        // escape), never a path that changes the fast way.
        if path != want {
            assert!(!is_normal(path.as_bytes(), rules), "is_normal({path:?})");
        }
    }
}

#[test]
fn paths_already_normal_take_the_fast_path() {
    for path in [
        "/",
        "/a",
        "/a/",
        "/a/b/c",
        "/.well-known/x",
        "/a.b/..c/...",
        "/a-_~/Z9",
        "/caf\u{e9}",
    ] {
        assert!(is_normal(path.as_bytes(), &MERGE), "{path:?}");
        assert_eq!(normal(path, &MERGE).as_deref(), Ok(path));
    }
    assert!(is_normal(b"/a//b", &KEEP));
    assert!(!is_normal(b"/a//b", &MERGE));
    // Not paths, never handed over by the parser: no panic either way.
    assert!(is_normal(b"", &MERGE));
    assert!(is_normal(b"x", &MERGE));
    assert_eq!(normal("", &MERGE).as_deref(), Ok("/"));
}

#[test]
fn unreserved_escapes_are_decoded_and_the_others_upper_cased() {
    check(
        &MERGE,
        &[
            ("/%61dmin", "/admin"),
            ("/%41%5a%30%39%2D%2e%5F%7e", "/AZ09-._~"),
            ("/a%3ab", "/a%3Ab"),
            ("/%25%32%66", "/%252f"),
            ("/%c3%a9", "/%C3%A9"),
            ("/%20", "/%20"),
            ("/%3B/x", "/%3B/x"),
            ("/%00", "/%00"),
        ],
    );
}

#[test]
fn dot_segments_go_after_decoding() {
    check(
        &MERGE,
        &[
            ("/./a", "/a"),
            ("/a/.", "/a/"),
            ("/a/./", "/a/"),
            ("/a/b/..", "/a/"),
            ("/a/b/../", "/a/"),
            ("/a/..", "/"),
            ("/x/../admin", "/admin"),
            ("/a/b/c/./../../g", "/a/g"),
            ("/%2e/admin", "/admin"),
            ("/x/%2E%2e/admin", "/admin"),
            ("/x/.%2e/admin", "/admin"),
            ("/a/..b/c", "/a/..b/c"),
            ("/a/.../c", "/a/.../c"),
        ],
    );
}

#[test]
fn dot_segments_with_parameters_are_dot_segments() {
    check(
        &MERGE,
        &[
            ("/x/..;/admin", "/admin"),
            ("/x/..;a=b/admin", "/admin"),
            ("/x/.;y/admin", "/x/admin"),
            ("/x/%2e%2e;/admin", "/admin"),
            ("/a;v=1/b", "/a;v=1/b"),
            ("/a/b;..", "/a/b;.."),
        ],
    );
}

#[test]
fn merged_slashes_drop_empty_and_parameter_only_segments() {
    check(
        &MERGE,
        &[
            ("//admin", "/admin"),
            ("///a//b/", "/a/b/"),
            ("/a//", "/a/"),
            ("/;/admin", "/admin"),
            ("/;jsessionid=1/admin", "/admin"),
            ("/admin/;", "/admin/"),
            ("/a//..", "/"),
        ],
    );
    check(
        &KEEP,
        &[
            ("//admin", "//admin"),
            ("/;/admin", "/;/admin"),
            ("/a//./b", "/a//b"),
            ("/a//..", "/a/"),
            ("/a/;x/../b", "/a/b"),
        ],
    );
}

#[test]
fn encoded_slashes_are_refused_or_kept() {
    for path in ["/a%2Fb", "/a%2fb", "/x/..%2f..%2fadmin", "/a%5cb", "/a%5C"] {
        assert_eq!(normal(path, &MERGE), Err(PathError::EncodedSlash), "{path}");
        assert!(!is_normal(path.as_bytes(), &PASS));
    }
    assert_eq!(normal("/a\\b", &MERGE), Err(PathError::Backslash));
    check(
        &PASS,
        &[
            ("/a%2fb", "/a%2Fb"),
            ("/x/..%2F..%2Fadmin", "/x/..%2F..%2Fadmin"),
            ("/a%5cb/./c", "/a%5Cb/c"),
            ("/a\\b", "/a\\b"),
        ],
    );
}

#[test]
fn refusals() {
    for path in [
        "/..",
        "/../x",
        "/a/../../x",
        "/%2e%2e",
        "/a/..;/..;/x",
        "//..",
    ] {
        assert_eq!(normal(path, &MERGE), Err(PathError::AboveRoot), "{path}");
    }
    assert_eq!(normal("//..", &KEEP).as_deref(), Ok("/"));
    for path in ["/%", "/a%4", "/a%zz", "/%g0", "/%%41"] {
        assert_eq!(normal(path, &MERGE), Err(PathError::BadEscape), "{path}");
    }
}

#[test]
fn the_buffer_is_reused() {
    let mut out = Vec::with_capacity(64);
    normalize(b"/a/../b//c", &MERGE, &mut out).expect("normal");
    assert_eq!(out, b"/b/c");
    let ptr = out.as_ptr();
    normalize(b"/%7e", &MERGE, &mut out).expect("normal");
    assert_eq!(out, b"/~");
    assert_eq!(out.as_ptr(), ptr, "no new allocation");
}

/// xorshift64, for the property test below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Pieces paths are made of, weighted toward the ones that matter.
const PIECES: &[&str] = &[
    "/", "/", "/", "a", "b", ".", "..", "%2e", "%2E", "%2f", "%5c", "\\", ";", ";x=1", "%61",
    "%3a", "%3A", "%", "%4", "~", "%7E", "//", "/./", "/../", "x",
];

/// Deterministic random paths: normalizing twice changes nothing, the fast
/// check never says "normal" of a path that normalizing would change, and
/// the result has none of the spellings the rules remove.
#[test]
fn properties_hold_for_random_paths() {
    let mut rng = Rng(0x51f1_5eed_0bad_cafe);
    let rule_sets = [MERGE, KEEP, PASS];
    for i in 0..20_000 {
        let rules = &rule_sets[i % rule_sets.len()];
        let mut path = String::from("/");
        for _ in 0..rng.next() % 10 {
            path.push_str(PIECES[(rng.next() % PIECES.len() as u64) as usize]);
        }
        let fast = is_normal(path.as_bytes(), rules);
        let Ok(once) = normal(&path, rules) else {
            assert!(!fast, "{path:?} is refused yet passed the fast check");
            continue;
        };
        if fast {
            assert_eq!(once, path, "fast check let a change through");
        }
        assert_eq!(
            normal(&once, rules).as_deref(),
            Ok(once.as_str()),
            "{path:?}"
        );
        assert!(is_normal(once.as_bytes(), rules) || once.contains(['%', ';', '\\']));
        assert!(once.starts_with('/'), "{path:?} -> {once:?}");
        let segments: Vec<&str> = once.split('/').skip(1).collect();
        for (k, s) in segments.iter().enumerate() {
            let name = s.split(';').next().unwrap_or_default();
            assert!(name != "." && name != "..", "{path:?} -> {once:?}");
            if rules.merge_slashes && k + 1 < segments.len() {
                assert!(!name.is_empty(), "{path:?} -> {once:?}");
            }
        }
        let bytes = once.as_bytes();
        for (k, _) in once.match_indices('%') {
            let escape = &bytes[k + 1..k + 3];
            assert!(
                escape
                    .iter()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
                "{path:?} -> {once:?}"
            );
            let byte = u8::from_str_radix(std::str::from_utf8(escape).unwrap_or("zz"), 16);
            assert!(!byte.is_ok_and(is_unreserved), "{path:?} -> {once:?}");
        }
    }
}

/// What the fast path and a rewrite cost, in nanoseconds per path (the
/// best of 20 batches, so that other load on the machine counts least).
/// Not a test of speed (no threshold): run it to measure, in release mode,
/// with `request::tests::parse_cost` to compare against:
/// `cargo test --release -p ringway-dataplane --lib cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn normalize_cost() {
    use std::hint::black_box;
    let mut out = Vec::with_capacity(64);
    for path in [
        &b"/"[..],
        b"/api/v1/users/12345/orders",
        b"/static/css/site.min.css",
        b"/api/v1/../v2/users//12345/%7Eorders",
    ] {
        let rules = PathRules::default();
        let mut fast = false;
        let ns = best_of_batches(|| {
            if is_normal(black_box(path), &rules) {
                fast = true;
            } else {
                let _ = normalize(black_box(path), &rules, &mut out);
            }
        });
        println!(
            "{:>40}: {ns:6.1} ns ({})",
            String::from_utf8_lossy(path),
            if fast { "fast path" } else { "rewritten" }
        );
    }
}

/// Nanoseconds per call of `f`: the best of 20 batches of 100,000.
pub(crate) fn best_of_batches(mut f: impl FnMut()) -> f64 {
    const BATCH: u32 = 100_000;
    (0..20)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .fold(f64::INFINITY, f64::min)
}
