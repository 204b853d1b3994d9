//! What is wrong with a configuration, and where.

use std::fmt;

/// Everything found wrong with one configuration file; never empty.
///
/// Semantic problems (bad values, dangling references, duplicates) are all
/// collected, so an operator fixes a file in one pass. A TOML syntax or type
/// error stops parsing, so it comes alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The problems, in the order they appear in the file.
    pub errors: Vec<ConfigError>,
}

/// One problem in a configuration file.
///
/// Displays as `origin:line:column: key: reason`, leaving out the parts that
/// are `None`, e.g.
/// `ringway.toml:12:19: clusters[0].connect_timeout: invalid duration "1 fortnight": ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in, or a name such as `<embedded default>`.
    pub origin: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column in characters, when the problem has a place in the file.
    pub column: Option<usize>,
    /// Dotted path of the offending key, e.g. `listeners[1].cluster`.
    pub key: Option<String>,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl ConfigErrors {
    /// Orders the errors by their place in the file, placeless ones first.
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        // Stable, so errors at one place keep the order they were found in.
        errors.sort_by_key(|e| (e.line, e.column));
        Self { errors }
    }

    /// A single error that has no place in the file (an unreadable file).
    pub(crate) fn single(origin: &str, reason: String) -> Self {
        Self {
            errors: vec![ConfigError {
                origin: origin.to_owned(),
                line: None,
                column: None,
                key: None,
                reason,
            }],
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: Option<usize>, column: Option<usize>, key: Option<&str>) -> ConfigError {
        ConfigError {
            origin: "ringway.toml".into(),
            line,
            column,
            key: key.map(Into::into),
            reason: "bad".into(),
        }
    }

    #[test]
    fn display_leaves_out_missing_parts() {
        let full = error(Some(12), Some(5), Some("clusters[0].connect_timeout"));
        assert_eq!(
            full.to_string(),
            "ringway.toml:12:5: clusters[0].connect_timeout: bad"
        );
        assert_eq!(
            error(Some(3), None, None).to_string(),
            "ringway.toml:3: bad"
        );
        assert_eq!(
            error(None, None, Some("runtime")).to_string(),
            "ringway.toml: runtime: bad"
        );
    }

    #[test]
    fn errors_sort_by_place_and_print_one_per_line() {
        let errors = ConfigErrors::new(vec![
            error(Some(9), Some(1), None),
            error(None, None, Some("runtime")),
            error(Some(2), Some(7), None),
        ]);
        assert_eq!(
            errors.to_string(),
            "ringway.toml: runtime: bad\nringway.toml:2:7: bad\nringway.toml:9:1: bad"
        );
    }
}
