//! SPIFFE IDs: `spiffe://trust-domain/path`, checked by the rules of the
//! SPIFFE ID standard.

use std::fmt;

/// The longest SPIFFE ID accepted, in bytes.
pub const MAX_ID_LEN: usize = 2048;
/// The longest trust domain name accepted, in bytes.
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

const SCHEME: &str = "spiffe://";

/// A checked SPIFFE ID, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    text: &'a str,
    /// Where the path starts in `text` (its length when there is none).
    path_at: usize,
}

impl<'a> SpiffeId<'a> {
    /// The whole ID.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The trust domain: what follows `spiffe://` up to the path.
    pub fn trust_domain(&self) -> &'a str {
        &self.text[SCHEME.len()..self.path_at]
    }

    /// The path, with its leading `/`; empty for a trust domain's own ID.
    pub fn path(&self) -> &'a str {
        &self.text[self.path_at..]
    }
}

impl fmt::Display for SpiffeId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

/// Why a text is not a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Longer than [`MAX_ID_LEN`].
    #[error("longer than {MAX_ID_LEN} bytes")]
    TooLong,
    /// Not `spiffe://` (the scheme is lowercase).
    #[error("does not start with spiffe://")]
    Scheme,
    /// Nothing between `spiffe://` and the path.
    #[error("has no trust domain")]
    NoTrustDomain,
    /// A trust domain longer than [`MAX_TRUST_DOMAIN_LEN`].
    #[error("has a trust domain longer than {MAX_TRUST_DOMAIN_LEN} bytes")]
    TrustDomainTooLong,
    /// A trust domain character other than lowercase letters, digits,
    /// `.`, `-` and `_` (ports, user info and uppercase are all refused).
    #[error("has a trust domain with {0:?}, outside a-z 0-9 . - _")]
    TrustDomainChar(char),
    /// A workload ID needs a path; this one names the trust domain alone.
    #[error("has no path (it names a trust domain, not a workload)")]
    NoPath,
    /// A path ending in `/`, or with `//`.
    #[error("has an empty path segment")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("has a . or .. path segment")]
    DotSegment,
    /// A path character other than letters, digits, `.`, `-` and `_`
    /// (percent-encoding, queries and fragments are all refused).
    #[error("has a path with {0:?}, outside a-z A-Z 0-9 . - _")]
    PathChar(char),
}

/// Checks `text` as the SPIFFE ID of a workload (a path is required).
pub fn check_id(text: &str) -> Result<SpiffeId<'_>, IdError> {
    let id = parse(text)?;
    if id.path().is_empty() {
        return Err(IdError::NoPath);
    }
    Ok(id)
}

/// Checks `text` as a trust domain name (no scheme, no path).
pub fn check_trust_domain(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::NoTrustDomain);
    }
    if text.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(IdError::TrustDomainTooLong);
    }
    match text
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')))
    {
        Some(c) => Err(IdError::TrustDomainChar(c)),
        None => Ok(()),
    }
}

/// Checks `text` as a SPIFFE ID, a path or none.
pub fn parse(text: &str) -> Result<SpiffeId<'_>, IdError> {
    if text.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    let rest = text.strip_prefix(SCHEME).ok_or(IdError::Scheme)?;
    let domain_len = rest.find('/').unwrap_or(rest.len());
    check_trust_domain(&rest[..domain_len])?;
    let path_at = SCHEME.len() + domain_len;
    let path = &text[path_at..];
    if !path.is_empty() {
        for segment in path[1..].split('/') {
            if segment.is_empty() {
                return Err(IdError::EmptySegment);
            }
            if segment == "." || segment == ".." {
                return Err(IdError::DotSegment);
            }
            if let Some(c) = segment
                .chars()
                .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            {
                return Err(IdError::PathChar(c));
            }
        }
    }
    Ok(SpiffeId { text, path_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_ids_are_taken_apart() {
        let id = check_id("spiffe://example.org/ns/default/sa/web").expect("valid");
        assert_eq!(id.trust_domain(), "example.org");
        assert_eq!(id.path(), "/ns/default/sa/web");
        assert!(check_id("spiffe://a-b_c.9/x.y-z_0").is_ok());
    }

    #[test]
    fn every_rule_refuses_its_break() {
        let cases: &[(&str, IdError)] = &[
            ("http://example.org/web", IdError::Scheme),
            ("SPIFFE://example.org/web", IdError::Scheme),
            ("spiffe:///web", IdError::NoTrustDomain),
            ("spiffe://Example.org/web", IdError::TrustDomainChar('E')),
            (
                "spiffe://example.org:8443/web",
                IdError::TrustDomainChar(':'),
            ),
            (
                "spiffe://user@example.org/web",
                IdError::TrustDomainChar('@'),
            ),
            ("spiffe://example.org", IdError::NoPath),
            ("spiffe://example.org/", IdError::EmptySegment),
            ("spiffe://example.org/ns//web", IdError::EmptySegment),
            ("spiffe://example.org/web/", IdError::EmptySegment),
            ("spiffe://example.org/ns/../web", IdError::DotSegment),
            ("spiffe://example.org/./web", IdError::DotSegment),
            ("spiffe://example.org/w%2Feb", IdError::PathChar('%')),
            ("spiffe://example.org/web?x=1", IdError::PathChar('?')),
            ("spiffe://example.org/web#x", IdError::PathChar('#')),
        ];
        for (text, want) in cases {
            assert_eq!(check_id(text).err().as_ref(), Some(want), "{text}");
        }
        let long_domain = format!("spiffe://{}/web", "a".repeat(MAX_TRUST_DOMAIN_LEN + 1));
        assert_eq!(check_id(&long_domain), Err(IdError::TrustDomainTooLong));
        let long = format!("spiffe://example.org/{}", "a".repeat(MAX_ID_LEN));
        assert_eq!(check_id(&long), Err(IdError::TooLong));
        let longest = format!("spiffe://example.org/{}", "a".repeat(MAX_ID_LEN - 21));
        assert_eq!(longest.len(), MAX_ID_LEN);
        assert!(check_id(&longest).is_ok());
    }
}
