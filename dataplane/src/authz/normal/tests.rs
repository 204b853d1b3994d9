//! The authorization form by hand-picked spellings, then by properties over
//! random paths: idempotence, no dot or (merged) empty segment left, no
//! double decoding, and agreement with the routing form it is taken from.

use super::*;
use crate::test_rng::Rng;

const STRICT: AuthzPathRules = AuthzPathRules::DEFAULT;
const KEEP_SLASHES: AuthzPathRules = AuthzPathRules {
    merge_slashes: true,
    encoded_slashes: SlashPolicy::Keep,
};
const NO_MERGE: AuthzPathRules = AuthzPathRules {
    merge_slashes: false,
    encoded_slashes: SlashPolicy::Reject,
};

fn form(path: &str, rules: &AuthzPathRules, params: Params) -> Result<String, PathError> {
    // Something before, to show that it stays and is not part of the form.
    let mut out = b"held".to_vec();
    let at = normalize(path.as_bytes(), rules, params, &mut out)?;
    assert_eq!(&out[..4], b"held");
    Ok(String::from_utf8(out[at..].to_vec()).expect("ASCII in, ASCII out"))
}

fn both(path: &str, rules: &AuthzPathRules) -> Result<String, PathError> {
    let kept = form(path, rules, Params::Keep)?;
    let stripped = form(path, rules, Params::Strip)?;
    if !path.contains(';') {
        assert_eq!(kept, stripped, "{path:?}: no parameters, one form");
    }
    Ok(kept)
}

#[test]
fn every_spelling_of_admin_is_admin() {
    for path in [
        "/admin",
        "/api/../admin",
        "/api/%2e%2e/admin",
        "/api/%2E%2E/admin",
        "/api/.%2e/admin",
        "/./admin",
        "/%2e/admin",
        "//admin",
        "///admin",
        "/%61dmin",
        "/%61%64%6D%69%6e",
        "/x/y/../../admin",
        "/api/..;x/admin",
    ] {
        assert_eq!(both(path, &STRICT).as_deref(), Ok("/admin"), "{path:?}");
        assert!(
            path == "/admin" || !is_normal(path.as_bytes(), &STRICT),
            "is_normal({path:?})"
        );
    }
}

#[test]
fn a_trailing_slash_and_letter_case_stay() {
    assert_eq!(both("/admin/", &STRICT).as_deref(), Ok("/admin/"));
    assert_eq!(both("/admin/x/..", &STRICT).as_deref(), Ok("/admin/"));
    assert_eq!(both("/admin/.", &STRICT).as_deref(), Ok("/admin/"));
    assert_eq!(both("/ADMIN", &STRICT).as_deref(), Ok("/ADMIN"));
    assert_eq!(both("/%41DMIN", &STRICT).as_deref(), Ok("/ADMIN"));
    assert!(is_normal(b"/ADMIN", &STRICT));
}

#[test]
fn encoded_slashes_are_refused_or_kept_never_separators() {
    for path in ["/x/..%2Fadmin", "/x/..%2fadmin", "/a%5Cb", "/a%5cb", "/%2F"] {
        assert_eq!(
            both(path, &STRICT),
            Err(PathError::EncodedSlash),
            "{path:?}"
        );
    }
    assert_eq!(both("/a\\b", &STRICT), Err(PathError::Backslash));
    // Kept: upper-cased, and one segment (the `..` is not a dot segment).
    assert_eq!(
        both("/x/..%2fadmin", &KEEP_SLASHES).as_deref(),
        Ok("/x/..%2Fadmin")
    );
    assert_eq!(both("/a%5cb", &KEEP_SLASHES).as_deref(), Ok("/a%5Cb"));
    assert_eq!(both("/a\\b", &KEEP_SLASHES).as_deref(), Ok("/a\\b"));
}

#[test]
fn escapes_are_decoded_once() {
    // `%25` is '%', not unreserved: it stays, so `%252F` is not a slash and
    // `%2561` is not an `a`, whatever a second decoding would make of them.
    assert_eq!(both("/a%252Fb", &STRICT).as_deref(), Ok("/a%252Fb"));
    assert_eq!(both("/a%252fb", &STRICT).as_deref(), Ok("/a%252fb"));
    assert_eq!(both("/%2561dmin", &STRICT).as_deref(), Ok("/%2561dmin"));
    assert_eq!(
        both("/%252e%252e/x", &STRICT).as_deref(),
        Ok("/%252e%252e/x")
    );
    // Other escapes stay, their hex upper-cased.
    assert_eq!(both("/caf%c3%a9", &STRICT).as_deref(), Ok("/caf%C3%A9"));
    assert_eq!(both("/a%3bb", &STRICT).as_deref(), Ok("/a%3Bb"));
    for bad in ["/%", "/%4", "/%zz", "/a%2"] {
        assert_eq!(both(bad, &STRICT), Err(PathError::BadEscape), "{bad:?}");
    }
}

#[test]
fn above_the_root_is_refused() {
    for path in ["/..", "/../admin", "/a/../../admin", "/%2e%2e/"] {
        assert_eq!(both(path, &STRICT), Err(PathError::AboveRoot), "{path:?}");
    }
}

#[test]
fn slashes_merge_by_option() {
    assert_eq!(both("/a//b", &STRICT).as_deref(), Ok("/a/b"));
    assert_eq!(both("/a//b", &NO_MERGE).as_deref(), Ok("/a//b"));
    assert_eq!(both("//admin", &NO_MERGE).as_deref(), Ok("//admin"));
    // A `..` takes the empty segment before it when they are kept.
    assert_eq!(both("/a//../b", &NO_MERGE).as_deref(), Ok("/a/b"));
    assert_eq!(both("/a//../b", &STRICT).as_deref(), Ok("/b"));
    assert!(is_normal(b"/a//b", &NO_MERGE));
    assert!(!is_normal(b"/a//b", &STRICT));
}

#[test]
fn parameters_are_kept_or_stripped() {
    let cases = [
        ("/admin;v=1", "/admin;v=1", "/admin"),
        ("/admin;v=1/x", "/admin;v=1/x", "/admin/x"),
        ("/;x/admin", "/;x/admin", "/admin"),
        ("/a/..;x/admin", "/admin", "/admin"),
        ("/a/.;x/b", "/a/b", "/a/b"),
        ("/a;b;c/d", "/a;b;c/d", "/a/d"),
    ];
    for (path, kept, stripped) in cases {
        assert_eq!(
            form(path, &STRICT, Params::Keep).as_deref(),
            Ok(kept),
            "{path:?}"
        );
        assert_eq!(
            form(path, &STRICT, Params::Strip).as_deref(),
            Ok(stripped),
            "{path:?}"
        );
        assert!(has_params(path.as_bytes()));
        assert!(!is_normal(path.as_bytes(), &STRICT));
    }
}

/// Bytes paths are drawn from: separators, dots, escapes' pieces, `;`.
const PIECES: &[&str] = &[
    "/", "/", "/", ".", "..", "a", "B", "admin", "%", "%2", "%2e", "%2E", "%2f", "%2F", "%5c",
    "%25", "%61", "%3b", ";", ";x", "\\", "~", "-", "_", "%41", "%c3",
];

fn random_path(rng: &mut Rng) -> String {
    let mut p = String::from("/");
    for _ in 0..rng.below(10) {
        p.push_str(PIECES[rng.below(PIECES.len())]);
    }
    p
}

const ALL_RULES: [AuthzPathRules; 4] = [
    STRICT,
    KEEP_SLASHES,
    NO_MERGE,
    AuthzPathRules {
        merge_slashes: false,
        encoded_slashes: SlashPolicy::Keep,
    },
];

#[test]
fn the_form_is_a_fixed_point_with_no_dot_segment_left() {
    let mut rng = Rng(0xa07b_2a11_5eed_0001);
    let mut formed = 0;
    for _ in 0..20_000 {
        let path = random_path(&mut rng);
        for rules in &ALL_RULES {
            for params in [Params::Keep, Params::Strip] {
                let Ok(once) = form(&path, rules, params) else {
                    continue;
                };
                formed += 1;
                let twice = form(&once, rules, params);
                assert_eq!(
                    twice.as_deref(),
                    Ok(once.as_str()),
                    "{path:?} {rules:?} {params:?}"
                );
                assert!(once.starts_with('/'), "{path:?} -> {once:?}");
                let segments: Vec<&str> = once[1..].split('/').collect();
                for (i, s) in segments.iter().enumerate() {
                    let name = s.split(';').next().unwrap_or_default();
                    assert!(
                        name != "." && name != "..",
                        "{path:?} -> {once:?}: dot segment"
                    );
                    if rules.merge_slashes && i + 1 < segments.len() {
                        assert!(!s.is_empty(), "{path:?} -> {once:?}: empty segment");
                    }
                    if params == Params::Strip {
                        assert!(!s.contains(';'), "{path:?} -> {once:?}: parameter");
                    }
                }
                if rules.encoded_slashes == SlashPolicy::Reject {
                    let upper = once.to_ascii_uppercase();
                    assert!(
                        !upper.contains("%2F") && !upper.contains("%5C") && !once.contains('\\'),
                        "{path:?} -> {once:?}: slash kept"
                    );
                }
                if is_normal(path.as_bytes(), rules) {
                    assert_eq!(once, path, "is_normal({path:?}) but it changed");
                }
            }
        }
    }
    assert!(formed > 40_000, "only {formed} paths had a form");
}

/// The routing form goes upstream; the authorization form is taken from it.
/// Under the same rules (encoded slashes refused or passed alike), the
/// routing form is already its own authorization form as written: nothing
/// drifts between what is judged and what is sent.
#[test]
fn the_routing_form_is_its_own_authorization_form() {
    use crate::proto::h1::path::{normalize as routing, EncodedSlashes, PathRules};
    let mut rng = Rng(0xa07b_2a11_5eed_0002);
    let mut compared = 0;
    for _ in 0..20_000 {
        let raw = random_path(&mut rng);
        for rules in &ALL_RULES {
            let routing_rules = PathRules {
                merge_slashes: rules.merge_slashes,
                encoded_slashes: match rules.encoded_slashes {
                    SlashPolicy::Reject => EncodedSlashes::Reject,
                    SlashPolicy::Keep => EncodedSlashes::Pass,
                },
            };
            let mut sent = Vec::new();
            if routing(raw.as_bytes(), &routing_rules, &mut sent).is_err() {
                continue;
            }
            let sent = String::from_utf8(sent).expect("ASCII");
            compared += 1;
            assert_eq!(
                form(&sent, rules, Params::Keep).as_deref(),
                Ok(sent.as_str()),
                "{raw:?} went upstream as {sent:?}"
            );
            // Judged straight from the raw path, under the same rules, the
            // form is the one that went (routing merges segments made only
            // of parameters, which the kept form leaves: compare stripped).
            assert_eq!(
                form(&raw, rules, Params::Strip),
                form(&sent, rules, Params::Strip),
                "{raw:?} / {sent:?}"
            );
        }
    }
    assert!(compared > 20_000, "only {compared} paths compared");
}
