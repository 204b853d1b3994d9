//! The path form authorization rules are judged on: stricter than the
//! routing form, and taken from it.
//!
//! Routing already brings every request path into its normal form (see
//! [`crate::proto::h1::path`]) and sends that form upstream, so the path an
//! upstream resolves is the routing form, not what the client wrote. What
//! authorization must guard against is an upstream that reads the routing
//! form further: one that merges `//` into `/` (when the listener keeps
//! empty segments), decodes `%2F` into a separator (when the listener
//! passes encoded slashes), or drops `;` parameters (servlet containers).
//! So the authorization form is computed from the routing form, under the
//! listener's authorization options, which may be stricter than its routing
//! ones; it is never sent anywhere.
//!
//! The rules, segment by segment (what lies between two `/`):
//!
//! 1. An escape of an unreserved character (RFC 3986 §2.3: letters,
//!    digits, `-`, `.`, `_`, `~`) is decoded, once: `%61` is `a`, and
//!    `%2561` stays `%2561` (its `%25` is not unreserved), whatever a
//!    server that decodes twice would make of it. Every other escape stays,
//!    its hex upper-cased; hex digits are read in either case. A `%` not
//!    followed by two hex digits is refused.
//! 2. `%2F`, `%5C` and a raw `\` are refused ([`SlashPolicy::Reject`]), or
//!    kept as they are, never a separator ([`SlashPolicy::Keep`]).
//! 3. Dot segments are removed (RFC 3986 §5.2.4) after decoding, so `%2e`
//!    is a `.`; a segment whose part before its first `;` is `.` or `..`
//!    is that dot segment, as routing reads it. A `..` with nothing left to
//!    remove is refused, as routing refuses it.
//! 4. With `merge_slashes`, empty segments before the last are removed.
//! 5. In the [`Params::Strip`] form, every segment loses its `;`
//!    parameters (`/admin;v=1/x` is `/admin/x`), and a segment made only of
//!    them is empty. A path with parameters is judged in both forms, as
//!    written and stripped, because upstreams differ on them (see
//!    [`super::Authorization::check_request`]).
//!
//! Letter case is kept: `/ADMIN` is not `/admin` (RFC 3986 paths are
//! case-sensitive; an upstream that folds case needs rules for each
//! spelling).
//!
//! Nearly every path is its own authorization form, which a quick scan
//! tells ([`is_normal`]); only the others are rewritten, into a buffer the
//! caller keeps from one request to the next.

use crate::proto::h1::path::{self, EncodedSlashes, PathError, PathRules};
pub use crate::table::authz::{AuthzPathRules, SlashPolicy};

/// Whether `;` parameters stay in their segment or are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Params {
    /// Kept as written: `/a;v=1/b` stays.
    Keep,
    /// Removed from every segment: `/a;v=1/b` is `/a/b`.
    Strip,
}

/// Whether `path` (starting with `/`, without its query) is its own
/// authorization form in both [`Params`] forms: no `%`, `;` or `\`, no dot
/// segment, no `//` when slashes are merged. A `false` only means
/// [`normalize`] must look closer.
#[inline]
pub fn is_normal(path: &[u8], rules: &AuthzPathRules) -> bool {
    // The routing scan tests exactly this with encoded slashes refused (a
    // '%', ';' or '\' anywhere sends a path the slow way).
    let routing = PathRules {
        merge_slashes: rules.merge_slashes,
        encoded_slashes: EncodedSlashes::Reject,
    };
    path::is_normal(path, &routing)
}

/// Whether `path` holds a `;` (and so has a second, stripped form).
#[inline]
pub fn has_params(path: &[u8]) -> bool {
    path.contains(&b';')
}

/// Writes the authorization form of `path` (starting with `/`, without its
/// query) to the end of `out` (what `out` held before stays), and returns
/// where it starts.
pub fn normalize(
    path: &[u8],
    rules: &AuthzPathRules,
    params: Params,
    out: &mut Vec<u8>,
) -> Result<usize, PathError> {
    let base = out.len();
    let mut segments = path.split(|&b| b == b'/').skip(1).peekable();
    while let Some(raw) = segments.next() {
        let last = segments.peek().is_none();
        let start = out.len();
        out.push(b'/');
        decode_segment(raw, rules, out)?;
        let segment = &out[start + 1..];
        let name_len = segment
            .iter()
            .position(|&b| b == b';')
            .unwrap_or(segment.len());
        match &segment[..name_len] {
            b"." => {
                out.truncate(start);
                if last {
                    out.push(b'/');
                }
            }
            b".." => {
                out.truncate(start);
                let parent = out[base..]
                    .iter()
                    .rposition(|&b| b == b'/')
                    .ok_or(PathError::AboveRoot)?;
                out.truncate(base + parent);
                if last {
                    out.push(b'/');
                }
            }
            name => {
                if params == Params::Strip {
                    out.truncate(start + 1 + name.len());
                }
                let empty = out.len() == start + 1;
                if empty && rules.merge_slashes && !last {
                    out.truncate(start);
                }
            }
        }
    }
    if out.len() == base {
        // Only for a text that is not a path ("" or no leading '/'): the
        // caller never passes one, but the form still starts with '/'.
        out.push(b'/');
    }
    Ok(base)
}

/// Appends `raw` to `out` with rules 1 and 2 of the module applied (as
/// routing applies them, under the authorization's slash policy).
fn decode_segment(raw: &[u8], rules: &AuthzPathRules, out: &mut Vec<u8>) -> Result<(), PathError> {
    path::decode_escapes(raw, rules.encoded_slashes == SlashPolicy::Reject, out)
}

#[cfg(test)]
mod tests;
