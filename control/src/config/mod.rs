//! ringway's configuration file: TOML in, a checked [`Config`] out.
//!
//! The pipeline is parse, don't validate:
//!
//! 1. TOML text -> `File*` serde structs (module `file`) that refuse unknown keys
//!    and keep the byte span of every value that needs a later check;
//! 2. a builder (module `build`) checks ranges, references, duplicates and the
//!    machine's cores, collecting every problem rather than stopping at the
//!    first;
//! 3. out come the runtime types the data plane consumes:
//!    [`RuntimeSettings`] and a generation-1 [`Table`].
//!
//! Errors ([`ConfigError`]) name the file, line, column and key, e.g.
//! `ringway.toml:12:19: clusters[0].connect_timeout: invalid duration "1 fortnight": ...`.
//! A checked configuration can be shown back as a summary
//! ([`Config::summary`]) or as the effective TOML with every default filled
//! in ([`Config::to_toml`]).

mod address;
mod compile;
mod duration;
mod error;
mod file;
mod render;
mod source;
mod tally;
mod update;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use dataplane::settings::RuntimeSettings;
use dataplane::table::Table;

pub use self::compile::TracingSettings;
pub use self::error::{ConfigError, ConfigErrors};
use self::file::FileConfig;
pub use self::render::describe_target;
use self::source::Source;
pub use self::update::{parse_endpoints, parse_update, EndpointSpec};

/// The configuration the product runs on when started without a file: one
/// TCP listener `ingress` on 127.0.0.1:8080 in front of a cluster `app` at
/// 127.0.0.1:8000, one worker on core 0, admin on 127.0.0.1:9901. Every key
/// is commented, so it doubles as a template.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// A checked configuration, ready to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker layout and sizing, fixed for the life of the process.
    pub runtime: RuntimeSettings,
    /// The core the control thread is pinned to; `None` leaves it unpinned.
    pub control_core: Option<usize>,
    /// The admin endpoint.
    pub admin: AdminSettings,
    /// Tracing, when `[tracing]` is set.
    pub tracing: Option<compile::TracingSettings>,
    /// What `/metrics` writes.
    pub metrics: MetricsSettings,
    /// Listeners and clusters, as generation 1.
    pub table: Table,
}

/// What `/metrics` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// How long the series of an endpoint that left its cluster are still
    /// written.
    pub endpoint_expiry: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            endpoint_expiry: crate::agent::endpoint_series::DEFAULT_EXPIRY,
        }
    }
}

/// Settings of the admin endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminSettings {
    /// Address the admin endpoint listens on.
    pub address: SocketAddr,
    /// How long a connection may stay silent when a request is due: after it
    /// opens, and between requests when kept alive.
    pub first_byte_timeout: Duration,
    /// How long a request head may take from its first byte to its end.
    pub head_timeout: Duration,
}

impl Default for AdminSettings {
    /// Loopback port 9901: reachable from the host only. Probes and
    /// scrapers send their request the moment they connect, so 2 s of
    /// silence is far more than any of them takes; 10 s for a head leaves
    /// room for a person typing one.
    fn default() -> Self {
        Self {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 9901)),
            first_byte_timeout: Duration::from_secs(2),
            head_timeout: Duration::from_secs(10),
        }
    }
}

/// Parses and checks a configuration text; `origin` names it in errors
/// (a file name, or e.g. `<embedded default>`).
///
/// Cores are checked against the ones this process may run on.
pub fn parse(source: &str, origin: &str) -> Result<Config, ConfigErrors> {
    parse_with_cores(source, origin, available_cores().as_deref())
}

/// The cores the calling thread may run on (`None` where the platform cannot
/// tell). Ask before pinning the thread: afterwards the answer is its one
/// core.
pub fn available_cores() -> Option<Vec<usize>> {
    core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|core| core.id).collect())
}

/// Reads, parses and checks a configuration file; errors are reported under
/// the path as given.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = read(path)?;
    parse(&text, &path.display().to_string())
}

/// Reads a configuration file's text; a failure is a configuration error
/// under the path as given.
pub fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            &path.display().to_string(),
            format!("cannot read the file: {e}"),
        )
    })
}

/// [`parse`] against a given set of available cores (`None`: unknown), so
/// the result does not depend on the machine running it.
pub(crate) fn parse_with_cores(
    text: &str,
    origin: &str,
    cores: Option<&[usize]>,
) -> Result<Config, ConfigErrors> {
    let source = Source { origin, text };
    let file: FileConfig = toml::from_str(text).map_err(|e| ConfigErrors {
        errors: vec![source.toml_error(&e)],
    })?;
    compile::compile(&file, &source, cores, None)
}

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod lb_tests;
#[cfg(test)]
mod mirror_tests;
#[cfg(test)]
mod rate_tests;
#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod rollout_tests;
#[cfg(test)]
mod tests;
