//! Reloads that do not come through the admin API: the config file or a
//! TLS file changing on disk ([`follow`], on [`watch`]); TLS material
//! checked and written by ringway itself ([`material`]); and how every
//! reload is reported on stderr.

pub mod follow;
pub mod material;
pub mod watch;

use crate::agent::{Applied, ReloadError};

/// Reports the outcome of a reload triggered by `trigger` on stderr.
pub fn log(trigger: &str, result: &Result<Applied, ReloadError>) {
    match result {
        Ok(Applied::Published(generation)) => {
            eprintln!("ringway: reload ({trigger}): applied generation {generation}");
        }
        Ok(Applied::Unchanged(generation)) => {
            eprintln!(
                "ringway: reload ({trigger}): configuration unchanged; generation {generation} keeps running"
            );
        }
        Err(ReloadError::Refused(errors)) => {
            for e in &errors.errors {
                eprintln!("ringway: reload ({trigger}): error: {e}");
            }
            eprintln!(
                "ringway: reload ({trigger}): configuration refused ({} error{}); the running one keeps serving",
                errors.errors.len(),
                if errors.errors.len() == 1 { "" } else { "s" }
            );
        }
        Err(e) => eprintln!("ringway: reload ({trigger}): {e}"),
    }
}
