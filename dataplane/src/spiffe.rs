//! SPIFFE IDs (`spiffe://example.org/ns/default/sa/web`) checked against
//! the rules of the SPIFFE ID standard, for workload identities.
//!
//! The rules are strict on purpose: an ID is compared as a string
//! (authorization rules, `peer_identity` route conditions, expected
//! upstream identities), so any spelling that could make two strings name
//! one workload (case, percent-encoding, dot segments, doubled or trailing
//! slashes) is refused instead of normalised. The same function checks the
//! IDs `ringway ca issue` mints and the IDs peers present in handshakes.
//!
//! Checking allocates nothing: a [`SpiffeId`] borrows the text it was
//! parsed from.

use std::fmt;

/// The scheme and authority separator every SPIFFE ID starts with.
pub const SCHEME_PREFIX: &str = "spiffe://";
/// Longest SPIFFE ID, in bytes (the standard's limit, which X509-SVID
/// verifiers are required to accept).
pub const MAX_ID_LEN: usize = 2048;
/// Longest trust domain name, in bytes (the standard's limit).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// A workload's SPIFFE ID: a trust domain and a non-empty path, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpiffeId<'a> {
    id: &'a str,
    /// Byte offset in `id` where the path (its first `/`) starts.
    path_start: usize,
}

impl<'a> SpiffeId<'a> {
    /// Checks `id` as a workload's SPIFFE ID: the `spiffe` scheme, a
    /// trust domain of lowercase letters, digits, `.`, `-` and `_` (at most
    /// 255 bytes), and a path of one or more non-empty segments of letters,
    /// digits, `.`, `-` and `_`, none of them `.` or `..`, not ending in
    /// `/`; 2048 bytes at most in all.
    pub fn parse(id: &'a str) -> Result<Self, SpiffeIdError> {
        if id.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        if id.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong { len: id.len() });
        }
        let rest = strip_scheme(id)?;
        let offset = SCHEME_PREFIX.len();
        let td_len = rest.find('/').unwrap_or(rest.len());
        check_trust_domain_at(&rest[..td_len], offset)?;
        let path = &rest[td_len..];
        if path.is_empty() {
            return Err(SpiffeIdError::NoPath);
        }
        check_path(path, offset + td_len)?;
        Ok(Self {
            id,
            path_start: offset + td_len,
        })
    }

    /// The whole ID, as given.
    pub fn as_str(&self) -> &'a str {
        self.id
    }

    /// The trust domain: `example.org` in `spiffe://example.org/ns/a`.
    pub fn trust_domain(&self) -> &'a str {
        &self.id[SCHEME_PREFIX.len()..self.path_start]
    }

    /// The path, with its leading `/`: `/ns/a` in `spiffe://example.org/ns/a`.
    pub fn path(&self) -> &'a str {
        &self.id[self.path_start..]
    }

    /// Whether the ID belongs to `trust_domain` (a bare name, compared
    /// exactly: trust domains are lowercase by rule).
    pub fn is_member_of(&self, trust_domain: &str) -> bool {
        self.trust_domain() == trust_domain
    }
}

impl fmt::Display for SpiffeId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// Checks a trust domain given as a bare name (`example.org`) or as its
/// own ID (`spiffe://example.org`), and returns the bare name.
pub fn parse_trust_domain(text: &str) -> Result<&str, SpiffeIdError> {
    let (name, offset) = match text.get(..SCHEME_PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(SCHEME_PREFIX) => {
            let rest = strip_scheme(text)?;
            if let Some(slash) = rest.find('/') {
                return Err(SpiffeIdError::TrustDomainHasPath {
                    at: SCHEME_PREFIX.len() + slash,
                });
            }
            (rest, SCHEME_PREFIX.len())
        }
        _ => (text, 0),
    };
    check_trust_domain_at(name, offset)?;
    Ok(name)
}

/// Why a text is not a valid SPIFFE ID. Byte offsets count from the start
/// of the text that was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    /// Nothing was given.
    #[error("it is empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("it is {len} bytes long, more than the {MAX_ID_LEN} a SPIFFE ID may have")]
    TooLong {
        /// The length given.
        len: usize,
    },
    /// Not `spiffe://` at the start.
    #[error("it does not start with `spiffe://`{hint}")]
    Scheme {
        /// Why, when it can be told (the scheme is spelt in capitals).
        hint: &'static str,
    },
    /// Nothing between `spiffe://` and the path.
    #[error("the trust domain (after `spiffe://`) is empty")]
    NoTrustDomain,
    /// A trust domain longer than [`MAX_TRUST_DOMAIN_LEN`].
    #[error(
        "the trust domain is {len} bytes long, more than the {MAX_TRUST_DOMAIN_LEN} it may have"
    )]
    TrustDomainTooLong {
        /// The length given.
        len: usize,
    },
    /// A character a trust domain may not have.
    #[error(
        "the trust domain has {ch:?} at byte {at}: only a-z, 0-9, '.', '-' and '_' are allowed{hint}"
    )]
    TrustDomainChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
        /// What it probably meant (a port, user info, capitals).
        hint: &'static str,
    },
    /// A trust domain that was given with a path.
    #[error("a trust domain has no path, but one starts at byte {at}")]
    TrustDomainHasPath {
        /// Byte offset of the path's `/`.
        at: usize,
    },
    /// Only a trust domain: that names the trust domain, not a workload.
    #[error(
        "it has no path: `spiffe://<trust domain>` alone names a trust domain, not a workload"
    )]
    NoPath,
    /// The path ends with `/`.
    #[error("the path ends with '/'")]
    TrailingSlash,
    /// Two slashes in a row.
    #[error("the path has an empty segment ('//') at byte {at}")]
    EmptySegment {
        /// Byte offset of the second slash.
        at: usize,
    },
    /// A `.` or `..` segment.
    #[error("the path has a '{segment}' segment at byte {at}: '.' and '..' are not allowed")]
    DotSegment {
        /// `.` or `..`.
        segment: &'static str,
        /// Byte offset of the segment.
        at: usize,
    },
    /// A character a path segment may not have.
    #[error(
        "the path has {ch:?} at byte {at}: only A-Z, a-z, 0-9, '.', '-' and '_' are allowed in a segment{hint}"
    )]
    PathChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
        /// What it probably meant (a query, a fragment, percent-encoding).
        hint: &'static str,
    },
}

/// `text` after its `spiffe://`.
fn strip_scheme(text: &str) -> Result<&str, SpiffeIdError> {
    if let Some(rest) = text.strip_prefix(SCHEME_PREFIX) {
        return Ok(rest);
    }
    let hint = match text.get(..SCHEME_PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(SCHEME_PREFIX) => " (the scheme is lowercase)",
        _ if !text.contains("://") => {
            " (a SPIFFE ID looks like spiffe://example.org/ns/default/sa/web)"
        }
        _ => "",
    };
    Err(SpiffeIdError::Scheme { hint })
}

/// Checks the trust domain `name`, found at byte `offset` of the text.
fn check_trust_domain_at(name: &str, offset: usize) -> Result<(), SpiffeIdError> {
    if name.is_empty() {
        return Err(SpiffeIdError::NoTrustDomain);
    }
    if let Some((i, ch)) = name.char_indices().find(|&(_, c)| !is_trust_domain_char(c)) {
        let hint = match ch {
            ':' => " (a port is not allowed)",
            '@' => " (user info is not allowed)",
            '?' => " (a query is not allowed)",
            '#' => " (a fragment is not allowed)",
            '%' => " (percent-encoding is not allowed)",
            c if c.is_ascii_uppercase() => " (trust domains are lowercase)",
            _ => "",
        };
        return Err(SpiffeIdError::TrustDomainChar {
            ch,
            at: offset + i,
            hint,
        });
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong { len: name.len() });
    }
    Ok(())
}

/// Checks a non-empty `path` (starting with `/`) found at byte `offset`.
fn check_path(path: &str, offset: usize) -> Result<(), SpiffeIdError> {
    if path.ends_with('/') {
        return Err(SpiffeIdError::TrailingSlash);
    }
    // Each segment follows a '/'; `start` is the offset of its first byte.
    let mut start = offset + 1;
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err(SpiffeIdError::EmptySegment { at: start }),
            "." | ".." => {
                return Err(SpiffeIdError::DotSegment {
                    segment: if segment == "." { "." } else { ".." },
                    at: start,
                })
            }
            _ => {}
        }
        if let Some((i, ch)) = segment.char_indices().find(|&(_, c)| !is_segment_char(c)) {
            let hint = match ch {
                '?' => " (a query is not allowed)",
                '#' => " (a fragment is not allowed)",
                '%' => " (percent-encoding is not allowed)",
                _ => "",
            };
            return Err(SpiffeIdError::PathChar {
                ch,
                at: start + i,
                hint,
            });
        }
        start += segment.len() + 1;
    }
    Ok(())
}

fn is_trust_domain_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(id: &str) -> SpiffeIdError {
        match SpiffeId::parse(id) {
            Ok(ok) => panic!("{id:?} was accepted as {ok:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_workload_id_splits_into_trust_domain_and_path() {
        let id = SpiffeId::parse("spiffe://example.org/ns/default/sa/web").expect("valid");
        assert_eq!(id.trust_domain(), "example.org");
        assert_eq!(id.path(), "/ns/default/sa/web");
        assert_eq!(id.as_str(), "spiffe://example.org/ns/default/sa/web");
        assert_eq!(id.to_string(), id.as_str());
        assert!(id.is_member_of("example.org"));
        assert!(!id.is_member_of("example.com"));
        assert!(!id.is_member_of("example.or"));
    }

    #[test]
    fn every_allowed_character_is_accepted() {
        let id = SpiffeId::parse("spiffe://a-b_c.0123456789/AZaz09.-_/x.y/..a/a..").expect("valid");
        assert_eq!(id.trust_domain(), "a-b_c.0123456789");
        assert_eq!(id.path(), "/AZaz09.-_/x.y/..a/a..");
        // One segment of one character is enough.
        assert!(SpiffeId::parse("spiffe://t/a").is_ok());
        // Segments that merely contain dots are not dot segments.
        assert!(SpiffeId::parse("spiffe://t/.../.a/a.").is_ok());
    }

    #[test]
    fn empty_and_wrong_scheme_are_refused() {
        assert_eq!(err(""), SpiffeIdError::Empty);
        assert!(
            matches!(err("SPIFFE://example.org/a"), SpiffeIdError::Scheme { hint } if hint.contains("lowercase"))
        );
        assert!(matches!(
            err("Spiffe://example.org/a"),
            SpiffeIdError::Scheme { .. }
        ));
        assert!(matches!(
            err("https://example.org/a"),
            SpiffeIdError::Scheme { hint: "" }
        ));
        assert!(matches!(
            err("spiffe:/example.org/a"),
            SpiffeIdError::Scheme { .. }
        ));
        assert!(
            matches!(err("example.org/ns/a"), SpiffeIdError::Scheme { hint } if hint.contains("looks like"))
        );
    }

    #[test]
    fn the_length_limits_are_inclusive() {
        let prefix = "spiffe://example.org/";
        let fits = format!("{prefix}{}", "a".repeat(MAX_ID_LEN - prefix.len()));
        assert_eq!(fits.len(), MAX_ID_LEN);
        assert!(SpiffeId::parse(&fits).is_ok());
        let over = format!("{fits}a");
        assert_eq!(
            err(&over),
            SpiffeIdError::TooLong {
                len: MAX_ID_LEN + 1
            }
        );

        let td = "a".repeat(MAX_TRUST_DOMAIN_LEN);
        assert!(SpiffeId::parse(&format!("spiffe://{td}/x")).is_ok());
        assert_eq!(parse_trust_domain(&td), Ok(td.as_str()));
        let long = format!("{td}a");
        assert_eq!(
            err(&format!("spiffe://{long}/x")),
            SpiffeIdError::TrustDomainTooLong {
                len: MAX_TRUST_DOMAIN_LEN + 1
            }
        );
        assert!(matches!(
            parse_trust_domain(&long),
            Err(SpiffeIdError::TrustDomainTooLong { .. })
        ));
    }

    #[test]
    fn the_trust_domain_is_lowercase_letters_digits_dot_dash_underscore() {
        assert_eq!(err("spiffe:///ns/a"), SpiffeIdError::NoTrustDomain);
        assert_eq!(err("spiffe://"), SpiffeIdError::NoTrustDomain);
        let cases = [
            ("spiffe://Example.org/a", 'E', 9, "lowercase"),
            ("spiffe://example.org:8443/a", ':', 20, "port"),
            ("spiffe://user@example.org/a", '@', 13, "user info"),
            ("spiffe://exa%41mple.org/a", '%', 12, "percent"),
            ("spiffe://example.org?x=1", '?', 20, "query"),
            ("spiffe://example.org#frag", '#', 20, "fragment"),
            ("spiffe://exa mple/a", ' ', 12, ""),
            ("spiffe://exämple/a", 'ä', 11, ""),
            ("spiffe://example+org/a", '+', 16, ""),
        ];
        for (id, ch, at, hint) in cases {
            match err(id) {
                SpiffeIdError::TrustDomainChar {
                    ch: c,
                    at: a,
                    hint: h,
                } => {
                    assert_eq!((c, a), (ch, at), "{id}");
                    assert!(h.contains(hint), "{id}: {h:?}");
                }
                other => panic!("{id}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_workload_id_needs_a_path() {
        assert_eq!(err("spiffe://example.org"), SpiffeIdError::NoPath);
        assert_eq!(err("spiffe://example.org/"), SpiffeIdError::TrailingSlash);
    }

    #[test]
    fn the_path_has_no_trailing_slash_empty_or_dot_segments() {
        assert_eq!(
            err("spiffe://example.org/ns/a/"),
            SpiffeIdError::TrailingSlash
        );
        assert_eq!(
            err("spiffe://example.org//ns"),
            SpiffeIdError::EmptySegment { at: 21 }
        );
        assert_eq!(
            err("spiffe://example.org/ns//a"),
            SpiffeIdError::EmptySegment { at: 24 }
        );
        assert_eq!(
            err("spiffe://example.org/ns/a//"),
            SpiffeIdError::TrailingSlash
        );
        assert_eq!(
            err("spiffe://example.org/./a"),
            SpiffeIdError::DotSegment {
                segment: ".",
                at: 21
            }
        );
        assert_eq!(
            err("spiffe://example.org/ns/.."),
            SpiffeIdError::DotSegment {
                segment: "..",
                at: 24
            }
        );
        assert_eq!(
            err("spiffe://example.org/ns/../admin"),
            SpiffeIdError::DotSegment {
                segment: "..",
                at: 24
            }
        );
    }

    #[test]
    fn path_segments_are_letters_digits_dot_dash_underscore() {
        let cases = [
            ("spiffe://example.org/ns/a%2Fb", '%', 25, "percent"),
            ("spiffe://example.org/ns/a?x", '?', 25, "query"),
            ("spiffe://example.org/ns/a#x", '#', 25, "fragment"),
            ("spiffe://example.org/ns/a b", ' ', 25, ""),
            ("spiffe://example.org/ns/a:b", ':', 25, ""),
            ("spiffe://example.org/ns/a~b", '~', 25, ""),
            ("spiffe://example.org/ns/a+b", '+', 25, ""),
            ("spiffe://example.org/ns/a@b", '@', 25, ""),
            ("spiffe://example.org/ns/é", 'é', 24, ""),
            ("spiffe://example.org/ns/a\\b", '\\', 25, ""),
        ];
        for (id, ch, at, hint) in cases {
            match err(id) {
                SpiffeIdError::PathChar {
                    ch: c,
                    at: a,
                    hint: h,
                } => {
                    assert_eq!((c, a), (ch, at), "{id}");
                    assert!(h.contains(hint), "{id}: {h:?}");
                }
                other => panic!("{id}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_trust_domain_is_given_bare_or_as_its_own_id() {
        assert_eq!(parse_trust_domain("example.org"), Ok("example.org"));
        assert_eq!(
            parse_trust_domain("spiffe://example.org"),
            Ok("example.org")
        );
        assert_eq!(parse_trust_domain(""), Err(SpiffeIdError::NoTrustDomain));
        assert_eq!(
            parse_trust_domain("spiffe://"),
            Err(SpiffeIdError::NoTrustDomain)
        );
        assert!(matches!(
            parse_trust_domain("SPIFFE://example.org"),
            Err(SpiffeIdError::Scheme { .. })
        ));
        assert_eq!(
            parse_trust_domain("spiffe://example.org/ns"),
            Err(SpiffeIdError::TrustDomainHasPath { at: 20 })
        );
        assert!(matches!(
            parse_trust_domain("Example.org"),
            Err(SpiffeIdError::TrustDomainChar { ch: 'E', at: 0, .. })
        ));
        assert!(matches!(
            parse_trust_domain("example.org/ns"),
            Err(SpiffeIdError::TrustDomainChar {
                ch: '/',
                at: 11,
                ..
            })
        ));
    }

    #[test]
    fn messages_name_what_is_wrong() {
        assert_eq!(
            err("spiffe://example.org/ns/a%2Fb").to_string(),
            "the path has '%' at byte 25: only A-Z, a-z, 0-9, '.', '-' and '_' are allowed in a segment (percent-encoding is not allowed)"
        );
        assert_eq!(
            err("spiffe://Example.org/a").to_string(),
            "the trust domain has 'E' at byte 9: only a-z, 0-9, '.', '-' and '_' are allowed (trust domains are lowercase)"
        );
        assert_eq!(
            err("spiffe://example.org/ns/../a").to_string(),
            "the path has a '..' segment at byte 24: '.' and '..' are not allowed"
        );
    }
}
