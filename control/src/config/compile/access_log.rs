//! A listener's `access_log = { path, format, sample, errors_only }`, and
//! the numbers of the outputs records are sent to.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dataplane::table::access::{AccessLog, LogFormat, LogOutput};
use toml::Spanned;

use super::Builder;
use crate::config::file::FileAccessLog;
use crate::config::tally::Tallies;

/// The next output number never given in this process: numbers are never
/// reused, so a record made on an old table cannot reach an output that a
/// newer table gave its number to.
static NEXT_OUTPUT: AtomicU32 = AtomicU32::new(1);

/// A number for an output no running table has.
pub(crate) fn new_output_id() -> u32 {
    NEXT_OUTPUT.fetch_add(1, Ordering::Relaxed)
}

impl Builder<'_> {
    /// Checks an HTTP listener's `access_log`.
    pub(super) fn access_log(
        &mut self,
        table: &Spanned<FileAccessLog>,
        prefix: &str,
        tallies: &Tallies,
    ) -> Option<AccessLog> {
        let file = table.get_ref();
        let prefix = format!("{prefix}.access_log");
        let path = match &file.path {
            None => {
                self.missing(
                    table,
                    &prefix,
                    "path",
                    "name the file to write to, or \"-\" for standard output",
                );
                None
            }
            Some(path) => self.check(path, format!("{prefix}.path"), |p| {
                if p == "-" {
                    return Ok(Arc::from("-"));
                }
                if p.is_empty() {
                    return Err("the path is empty; name a file, or \"-\" for standard output".into());
                }
                if !Path::new(p).is_absolute() {
                    return Err(format!(
                        "`{p}` is not an absolute path; a relative one would depend on the directory ringway was started in"
                    ));
                }
                Ok(Arc::from(p.as_str()))
            }),
        };
        let format = match &file.format {
            None => Some(LogFormat::Json),
            Some(f) => self.check(f, format!("{prefix}.format"), |f| match f.as_str() {
                "json" => Ok(LogFormat::Json),
                "text" => Ok(LogFormat::Text),
                other => Err(format!(
                    "unknown format `{other}`; use \"json\" (one object per line) or \"text\""
                )),
            }),
        };
        let ratio = match &file.sample {
            None => Some(1.0),
            Some(r) => self.check(r, format!("{prefix}.sample"), |r| {
                if (0.0..=1.0).contains(&r.0) {
                    Ok(r.0)
                } else {
                    Err(format!(
                        "sample {} is not from 0 to 1 (the share of requests logged)",
                        r.0
                    ))
                }
            }),
        };
        let errors_only = file.errors_only.as_ref().is_some_and(|e| *e.get_ref());
        let output = LogOutput {
            path: path?,
            format: format?,
        };
        let ratio = ratio?;
        Some(AccessLog {
            id: tallies.output_id(&output),
            output,
            sample: AccessLog::threshold(ratio),
            ratio,
            errors_only,
        })
    }
}
