//! A listener's access log settings, as the table carries them: which
//! output its records go to, how they are formatted there, and which
//! requests are logged.

use std::sync::Arc;

/// How an output writes its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// One line of space-separated fields, in the order of the JSON keys.
    Text,
}

impl LogFormat {
    /// Its name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

/// Where records go: a file, or standard output (`"-"`), in a format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogOutput {
    /// A file path, or `-` for standard output.
    pub path: Arc<str>,
    /// How records are written there.
    pub format: LogFormat,
}

impl LogOutput {
    /// Whether it is standard output.
    pub fn is_stdout(&self) -> bool {
        &*self.path == "-"
    }
}

/// A listener's access log.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// The output's number: records carry it, and the writer keeps every
    /// number it was given, so a record finds its output whatever table
    /// it was made on. The agent never gives one number to two outputs.
    pub id: u32,
    /// Where its records go.
    pub output: LogOutput,
    /// The share of requests logged, as a threshold on a 64-bit draw
    /// (`None`: every request).
    pub sample: Option<u64>,
    /// The ratio `sample` was made from (for `GET /config`).
    pub ratio: f64,
    /// Only requests that failed: a status of 500 or more, or any reason
    /// of ringway's own.
    pub errors_only: bool,
}

impl AccessLog {
    /// Whether a request that ended with `status` and `failed` (a ringway
    /// reason) is logged, drawing from `draw` only when sampling.
    #[inline]
    pub fn wants(&self, status: Option<u16>, failed: bool, draw: impl FnOnce() -> u64) -> bool {
        if self.errors_only && !failed && status.is_some_and(|s| s < 500) {
            return false;
        }
        self.sample.is_none_or(|t| draw() < t)
    }

    /// The threshold for `ratio` (0 to 1): `None` for 1 and above.
    pub fn threshold(ratio: f64) -> Option<u64> {
        if ratio >= 1.0 {
            None
        } else if ratio <= 0.0 {
            Some(0)
        } else {
            Some((ratio * 18_446_744_073_709_551_616.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(ratio: f64, errors_only: bool) -> AccessLog {
        AccessLog {
            id: 1,
            output: LogOutput {
                path: "-".into(),
                format: LogFormat::Json,
            },
            sample: AccessLog::threshold(ratio),
            ratio,
            errors_only,
        }
    }

    #[test]
    fn errors_only_keeps_failures_and_server_errors() {
        let l = log(1.0, true);
        assert!(!l.wants(Some(200), false, || 0));
        assert!(!l.wants(Some(404), false, || 0));
        assert!(l.wants(Some(503), false, || 0));
        assert!(l.wants(Some(404), true, || 0));
        assert!(l.wants(None, false, || 0));
    }

    #[test]
    fn sampling_compares_the_draw() {
        let half = log(0.5, false);
        assert!(half.wants(Some(200), false, || 0));
        assert!(half.wants(Some(200), false, || (1 << 63) - 1));
        assert!(!half.wants(Some(200), false, || 1 << 63));
        assert!(!log(0.0, false).wants(Some(200), false, || 0));
        let mut drew = false;
        assert!(log(1.0, false).wants(Some(200), false, || {
            drew = true;
            0
        }));
        assert!(!drew, "logging everything draws nothing");
    }
}
