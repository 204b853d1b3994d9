//! The normal form of a request path: the one spelling that routes are
//! matched against and that goes upstream.
//!
//! A path has many spellings that a server reads as the same resource:
//! `/admin`, `/%61dmin`, `//admin`, `/x/../admin`, `/%2e/admin`, and for
//! servers that drop `;` parameters, `/;/admin`. If ringway matched routes on
//! one spelling and the upstream resolved another, a route meant to guard
//! `/admin` would guard nothing. So the path is rewritten into its normal
//! form before routing, and that form is what the upstream receives; the
//! query is not touched.
//!
//! The rules, applied segment by segment (a segment is what lies between
//! two `/`):
//!
//! 1. Escapes of unreserved characters (RFC 3986 §2.3: letters, digits,
//!    `-`, `.`, `_`, `~`) are decoded; every other escape stays, its hex
//!    upper-cased (`%3a` becomes `%3A`). A `%` not followed by two hex
//!    digits is refused.
//! 2. An escaped slash or backslash (`%2F`, `%5C`) and a raw backslash are
//!    refused, or kept as they are ([`EncodedSlashes`]): some servers decode
//!    them into separators after routing, so `/x/..%2Fadmin` would reach
//!    `/admin`.
//! 3. Dot segments are removed (RFC 3986 §5.2.4), after decoding, so `%2e`
//!    counts as `.`: `.` goes, `..` takes the segment before it with it. A
//!    segment whose part before its first `;` is `.` or `..` (`..;x`) is
//!    that dot segment (servers that drop parameters read it so). A `..`
//!    with nothing left to remove goes above the root and is refused.
//! 4. With [`PathRules::merge_slashes`], empty segments are removed (`//`
//!    becomes `/`), and so are segments made only of parameters (`/;x/`),
//!    which servers that drop parameters read as empty. A last empty
//!    segment stays: it is the trailing slash (`/a/` is not `/a`).
//!
//! Most paths need none of this, and pay for a quick scan: [`is_normal`]
//! tells them apart without copying; only the others are rewritten, into a
//! buffer the request head keeps from one request to the next.

/// What to do with an escaped slash (`%2F`), an escaped backslash (`%5C`)
/// and a raw backslash in a path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncodedSlashes {
    /// Refuse the request with 400.
    #[default]
    Reject,
    /// Keep them as they are (escapes with their hex upper-cased); they
    /// are not separators for normalization or for routes.
    Pass,
}

/// How a listener normalizes request paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathRules {
    /// Remove empty segments and segments made only of `;` parameters.
    pub merge_slashes: bool,
    /// What to do with `%2F`, `%5C` and `\`.
    pub encoded_slashes: EncodedSlashes,
}

impl PathRules {
    /// Merge slashes, refuse encoded slashes: the settings under which no
    /// spelling of a path can reach a different resource than the one
    /// routed.
    pub const DEFAULT: PathRules = PathRules {
        merge_slashes: true,
        encoded_slashes: EncodedSlashes::Reject,
    };
}

impl Default for PathRules {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a path has no normal form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// A `..` segment with no segment left to remove.
    AboveRoot,
    /// `%2F` or `%5C`, refused by the rules.
    EncodedSlash,
    /// A raw `\`, refused by the rules.
    Backslash,
    /// A `%` not followed by two hex digits.
    BadEscape,
}

impl PathError {
    /// A one-line explanation for the client.
    pub fn detail(self) -> &'static str {
        match self {
            PathError::AboveRoot => "the path goes above the root (a '..' segment with nothing before it to remove)",
            PathError::EncodedSlash => "encoded slash (%2F) or backslash (%5C) in the path, refused on this listener (encoded_slashes)",
            PathError::Backslash => "backslash in the path, refused on this listener (encoded_slashes)",
            PathError::BadEscape => "invalid percent-encoding in the path ('%' not followed by two hex digits)",
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for PathError {}

/// Whether `path` (starting with `/`, without its query) is its own normal
/// form: no `%`, no `;`, no `\`, no `.` or `..` segment, and no empty
/// segment before the last when slashes are merged. This is the fast path,
/// taken by nearly every request: two branch-free passes over the bytes
/// and no copy (about 12 ns for a 26-byte path, against some 300 ns for
/// parsing the head it came in; see `tests::normalize_cost`). A `false`
/// only means [`normalize`] must look closer.
pub fn is_normal(path: &[u8], rules: &PathRules) -> bool {
    // Both loops run to the end without branching on the bytes, which lets
    // the compiler compare many bytes at once: this runs on every request.
    let mut special = false;
    for &b in path {
        special |= (b == b'%') | (b == b';') | (b == b'\\');
    }
    let (mut slash_slash, mut slash_dot) = (false, false);
    let pairs = path.len().saturating_sub(1);
    let next = path.get(1..).unwrap_or_default();
    for (&a, &b) in path[..pairs].iter().zip(next) {
        let slash = a == b'/';
        slash_slash |= slash & (b == b'/');
        slash_dot |= slash & (b == b'.');
    }
    if special || (slash_slash && rules.merge_slashes) {
        return false;
    }
    // A segment starting with '.' (`/.well-known`) is rare: only then are
    // the segments looked at one by one.
    !slash_dot || !path.split(|&b| b == b'/').any(|s| s == b"." || s == b"..")
}

/// Writes the normal form of `path` (starting with `/`, without its
/// query) into `out`, which is cleared first.
pub fn normalize(path: &[u8], rules: &PathRules, out: &mut Vec<u8>) -> Result<(), PathError> {
    out.clear();
    let mut segments = path.split(|&b| b == b'/').skip(1).peekable();
    while let Some(raw) = segments.next() {
        let last = segments.peek().is_none();
        let start = out.len();
        out.push(b'/');
        decode_segment(raw, rules, out)?;
        match kind(&out[start + 1..], rules) {
            Kind::Plain => {}
            Kind::Empty if last || !rules.merge_slashes => out.truncate(start + 1),
            Kind::Empty => out.truncate(start),
            Kind::Dot => {
                out.truncate(start);
                if last {
                    out.push(b'/');
                }
            }
            Kind::DotDot => {
                out.truncate(start);
                let parent = out
                    .iter()
                    .rposition(|&b| b == b'/')
                    .ok_or(PathError::AboveRoot)?;
                out.truncate(parent);
                if last {
                    out.push(b'/');
                }
            }
        }
    }
    if out.is_empty() {
        // Only for a path that is not a path ("" or no leading '/'): the
        // caller never passes one, but the result still starts with '/'.
        out.push(b'/');
    }
    Ok(())
}

/// What a decoded segment does to the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Stays as it is.
    Plain,
    /// Empty, or (slashes merged) only parameters.
    Empty,
    /// `.`, with or without parameters.
    Dot,
    /// `..`, with or without parameters.
    DotDot,
}

fn kind(segment: &[u8], rules: &PathRules) -> Kind {
    let name = segment.split(|&b| b == b';').next().unwrap_or_default();
    match name {
        b"." => Kind::Dot,
        b".." => Kind::DotDot,
        b"" if segment.is_empty() || rules.merge_slashes => Kind::Empty,
        _ => Kind::Plain,
    }
}

/// Appends `raw` to `out` with rules 1 and 2 of the module applied.
fn decode_segment(raw: &[u8], rules: &PathRules, out: &mut Vec<u8>) -> Result<(), PathError> {
    decode_escapes(raw, rules.encoded_slashes == EncodedSlashes::Reject, out)
}

/// Appends the segment `raw` to `out` with its escapes of unreserved
/// characters decoded and every other escape's hex upper-cased; escaped
/// slashes and backslashes (and a raw backslash) are refused when
/// `reject_slashes`, kept as written otherwise. Rules 1 and 2 of this
/// module, shared with authorization's stricter form
/// ([`crate::authz::normal`]).
pub(crate) fn decode_escapes(
    raw: &[u8],
    reject_slashes: bool,
    out: &mut Vec<u8>,
) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (hex(raw.get(i + 1)), hex(raw.get(i + 2))) else {
                    return Err(PathError::BadEscape);
                };
                let byte = hi << 4 | lo;
                if is_unreserved(byte) {
                    out.push(byte);
                } else if matches!(byte, b'/' | b'\\') && reject_slashes {
                    return Err(PathError::EncodedSlash);
                } else {
                    out.extend_from_slice(&[
                        b'%',
                        HEX_UPPER[usize::from(hi)],
                        HEX_UPPER[usize::from(lo)],
                    ]);
                }
                i += 3;
            }
            b'\\' if reject_slashes => return Err(PathError::Backslash),
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(())
}

const HEX_UPPER: [u8; 16] = *b"0123456789ABCDEF";

fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
pub(crate) mod tests;
