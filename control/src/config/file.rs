//! The configuration file as written: serde structs that mirror the TOML.
//!
//! Nothing here is checked beyond its TOML type. Keys the builder must still
//! check are `Option` (so a missing one is reported with the others rather
//! than stopping serde) and `Spanned` (so the report can name the line).
//! Unknown keys are refused everywhere.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a TOML document")]
pub(crate) struct FileConfig {
    pub(crate) runtime: Option<Spanned<FileRuntime>>,
    pub(crate) admin: Option<Spanned<FileAdmin>>,
    #[serde(default)]
    pub(crate) listeners: Vec<Spanned<FileListener>>,
    #[serde(default)]
    pub(crate) clusters: Vec<Spanned<FileCluster>>,
}

/// `[runtime]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileRuntime {
    pub(crate) worker_cores: Option<Spanned<Vec<Spanned<Int>>>>,
    pub(crate) control_core: Option<Spanned<Int>>,
    pub(crate) drain_timeout: Option<Spanned<String>>,
    pub(crate) buffer_size: Option<Spanned<Int>>,
    pub(crate) buffer_count: Option<Spanned<Int>>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileAdmin {
    pub(crate) address: Option<Spanned<String>>,
}

/// One `[[listeners]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileListener {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) address: Option<Spanned<String>>,
    pub(crate) protocol: Option<Spanned<String>>,
    pub(crate) cluster: Option<Spanned<String>>,
    pub(crate) idle_timeout: Option<Spanned<String>>,
}

/// One `[[clusters]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileCluster {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) endpoints: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) connect_timeout: Option<Spanned<String>>,
}

/// A TOML integer, range-checked later by the builder.
///
/// A plain `i64` would make a type error read "expected i64"; this one says
/// "expected an integer".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int(pub(crate) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;

        impl Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
        }

        deserializer.deserialize_i64(IntVisitor)
    }
}
