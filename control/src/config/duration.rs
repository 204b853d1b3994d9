//! Durations as written in the file: `"250ms"`, `"1s"`, `"1m30s"`.

use std::time::Duration;

/// Parses a human duration; the error quotes the value and says why it is
/// not one.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?}: {e}; write a number and a unit, e.g. \"1s\", \"250ms\" or \"1m30s\"")
    })
}

/// Parses a duration that must be longer than zero, such as a timeout.
pub(crate) fn parse_nonzero(text: &str) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {text:?}: must be longer than zero"
        ));
    }
    Ok(duration)
}

/// Renders a duration so that [`parse`] reads it back exactly, e.g. `1m 30s`.
pub(crate) fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn errors_quote_the_value() {
        let error = parse("1 fortnight").unwrap_err();
        assert!(
            error.starts_with("invalid duration \"1 fortnight\": "),
            "{error}"
        );
        assert!(error.contains("fortnight"), "{error}");
        let error = parse_nonzero("0s").unwrap_err();
        assert_eq!(error, "invalid duration \"0s\": must be longer than zero");
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(90),
            Duration::from_secs(30),
            Duration::from_nanos(1_500_000_001),
            Duration::from_secs(86_400 * 40 + 7),
        ] {
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
    }
}
