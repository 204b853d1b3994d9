//! The text being parsed, and turning byte spans in it into lines, columns
//! and key paths.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::ConfigError;

/// A configuration text and the name its errors are reported under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    /// File name used in messages.
    pub(crate) origin: &'a str,
    /// The TOML text.
    pub(crate) text: &'a str,
}

impl<'a> Source<'a> {
    /// An error at `span` (or placeless, with `None`) about `key`.
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        reason: String,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = self.position(span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        ConfigError {
            origin: self.origin.to_owned(),
            line,
            column,
            key,
            reason,
        }
    }

    /// Turns an error of the TOML parser or of serde into a [`ConfigError`]
    /// with one line of reason and, where the span falls on a key or value,
    /// that key's dotted path.
    pub(crate) fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let span = error.span();
        let mut reason = error.message().trim().replace('\n', "; ");
        let key = span.as_ref().and_then(|span| {
            match DeTable::parse(self.text) {
                Ok(root) => key_path_at(root.get_ref(), span.start),
                // The document does not parse, so there is no tree to find
                // the path in; a duplicate key still has a name worth giving.
                Err(_) => {
                    let text = self.text.get(span.clone())?;
                    let bare = !text.is_empty()
                        && text
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare && reason == "duplicate key" {
                        reason = format!("duplicate key `{text}`");
                    }
                    None
                }
            }
        });
        self.error(span, key, reason)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The line a span starts on, for messages such as "first defined on
    /// line 4".
    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }
}

/// The dotted path (`listeners[1].address`) of the innermost key or value
/// whose span holds `offset`.
///
/// A table opened by a `[header]` has the header as its span, and its keys
/// lie outside it, so every entry of the tree is searched rather than only
/// the ones whose span encloses the offset.
fn key_path_at(root: &DeTable<'_>, offset: usize) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    visit_table(root, "", offset, &mut best);
    best.map(|(_, path)| path)
}

/// Keeps in `best` the smallest span holding `offset`; on a tie the path seen
/// later wins, which is the deeper one because children are visited after
/// their parent.
fn consider(span: Range<usize>, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
    let holds = span.contains(&offset) || (span.is_empty() && span.start == offset);
    if !holds {
        return;
    }
    let width = span.len();
    if best.as_ref().is_none_or(|(w, _)| width <= *w) {
        *best = Some((width, path.to_owned()));
    }
}

fn visit_table(
    table: &DeTable<'_>,
    prefix: &str,
    offset: usize,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        consider(key.span(), &path, offset, best);
        visit_value(value, &path, offset, best);
    }
}

fn visit_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    offset: usize,
    best: &mut Option<(usize, String)>,
) {
    consider(value.span(), path, offset, best);
    match value.get_ref() {
        DeValue::Table(table) => visit_table(table, path, offset, best),
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                visit_value(item, &format!("{path}[{i}]"), offset, best);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source<'_> {
        Source {
            origin: "t.toml",
            text,
        }
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let s = source("ab\nµc = 1\n");
        assert_eq!(s.position(0), (1, 1));
        assert_eq!(s.position(2), (1, 3));
        assert_eq!(s.position(3), (2, 1));
        // `µ` is two bytes but one column.
        assert_eq!(s.position(5), (2, 2));
        assert_eq!(s.position(1000), (3, 1));
    }

    #[test]
    fn key_path_finds_keys_under_headers_and_in_arrays() {
        let text = "[a]\nx = 1\n[[b]]\ny = 2\n[[b]]\nz = [1, 2]\n";
        let root = DeTable::parse(text).unwrap();
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(key_path_at(root.get_ref(), at("x")).as_deref(), Some("a.x"));
        assert_eq!(
            key_path_at(root.get_ref(), at("y")).as_deref(),
            Some("b[0].y")
        );
        assert_eq!(
            key_path_at(root.get_ref(), at("2]")).as_deref(),
            Some("b[1].z[1]")
        );
        assert_eq!(key_path_at(root.get_ref(), 0).as_deref(), Some("a"));
    }
}
