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
    pub(crate) tracing: Option<Spanned<FileTracing>>,
    pub(crate) metrics: Option<Spanned<FileMetrics>>,
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
    pub(crate) max_connections: Option<Spanned<Int>>,
    pub(crate) access_log_buffer: Option<Spanned<Int>>,
    pub(crate) io_backend: Option<Spanned<String>>,
}

/// `[metrics]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileMetrics {
    pub(crate) endpoint_expiry: Option<Spanned<String>>,
}

/// `[tracing]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileTracing {
    pub(crate) collector: Option<Spanned<String>>,
    pub(crate) sample: Option<Spanned<Ratio>>,
    pub(crate) service_name: Option<Spanned<String>>,
    pub(crate) instance_id: Option<Spanned<String>>,
    pub(crate) batch_delay: Option<Spanned<String>>,
    pub(crate) max_held_spans: Option<Spanned<Int>>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileAdmin {
    pub(crate) address: Option<Spanned<String>>,
    pub(crate) first_byte_timeout: Option<Spanned<String>>,
    pub(crate) head_timeout: Option<Spanned<String>>,
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
    pub(crate) header_timeout: Option<Spanned<String>>,
    pub(crate) request_timeout: Option<Spanned<String>>,
    pub(crate) send_timeout: Option<Spanned<String>>,
    pub(crate) max_request_line: Option<Spanned<Int>>,
    pub(crate) max_header_bytes: Option<Spanned<Int>>,
    pub(crate) max_headers: Option<Spanned<Int>>,
    pub(crate) max_body: Option<Spanned<Int>>,
    pub(crate) trust_forwarded: Option<Spanned<bool>>,
    pub(crate) merge_slashes: Option<Spanned<bool>>,
    pub(crate) encoded_slashes: Option<Spanned<String>>,
    /// `[[listeners.routes]]`; `None` when the key is absent, so that
    /// `routes = []` can be told apart and reported.
    pub(crate) routes: Option<Vec<Spanned<FileRoute>>>,
    pub(crate) tls: Option<Spanned<FileTls>>,
    pub(crate) authorization: Option<Spanned<FileAuthorization>>,
    pub(crate) access_log: Option<Spanned<FileAccessLog>>,
    pub(crate) connection_rate_limit: Option<Spanned<FileConnectionRateLimit>>,
    /// A TCP listener's `fault` (an HTTP listener's faults are its
    /// routes').
    pub(crate) fault: Option<Spanned<FileTcpFault>>,
}

/// A route's `fault = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileFault {
    pub(crate) delay: Option<Spanned<String>>,
    pub(crate) delay_percent: Option<Spanned<Ratio>>,
    pub(crate) abort_status: Option<Spanned<Int>>,
    pub(crate) abort_percent: Option<Spanned<Ratio>>,
    pub(crate) header: Option<Spanned<String>>,
}

/// A TCP listener's `fault = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileTcpFault {
    pub(crate) delay: Option<Spanned<String>>,
    pub(crate) delay_percent: Option<Spanned<Ratio>>,
    pub(crate) abort_percent: Option<Spanned<Ratio>>,
}

/// A listener's `access_log = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileAccessLog {
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) format: Option<Spanned<String>>,
    pub(crate) sample: Option<Spanned<Ratio>>,
    pub(crate) errors_only: Option<Spanned<bool>>,
}

/// A listener's `[listeners.authorization]`: a default and rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileAuthorization {
    pub(crate) default: Option<Spanned<String>>,
    pub(crate) merge_slashes: Option<Spanned<bool>>,
    pub(crate) encoded_slashes: Option<Spanned<String>>,
    pub(crate) rules: Option<Spanned<Vec<Spanned<FileAuthzRule>>>>,
}

/// One `[[listeners.authorization.rules]]` entry: conditions and an action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileAuthzRule {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) action: Option<Spanned<String>>,
    pub(crate) from: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) from_trust_domains: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) from_prefixes: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) unauthenticated: Option<Spanned<bool>>,
    pub(crate) routes: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) paths: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) headers: Option<Spanned<Vec<Spanned<FileHeaderMatch>>>>,
}

/// One `[[listeners.routes]]` entry: conditions, one action, header edits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileRoute {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) path_prefix: Option<Spanned<String>>,
    pub(crate) methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) headers: Option<Spanned<Vec<Spanned<FileHeaderMatch>>>>,
    pub(crate) peer_identity: Option<Spanned<String>>,
    pub(crate) cluster: Option<Spanned<String>>,
    pub(crate) split: Option<Spanned<Vec<Spanned<FileSplit>>>>,
    pub(crate) redirect: Option<Spanned<FileRedirect>>,
    pub(crate) direct: Option<Spanned<FileDirect>>,
    pub(crate) rewrite_prefix: Option<Spanned<String>>,
    pub(crate) request_headers: Option<Spanned<FileHeaderEdits>>,
    pub(crate) response_headers: Option<Spanned<FileHeaderEdits>>,
    pub(crate) retry: Option<Spanned<FileRetry>>,
    pub(crate) rate_limit: Option<Spanned<FileRateLimit>>,
    pub(crate) request_timeout: Option<Spanned<String>>,
    pub(crate) idle_timeout: Option<Spanned<String>>,
    pub(crate) max_body: Option<Spanned<Int>>,
    pub(crate) fault: Option<Spanned<FileFault>>,
    pub(crate) mirror: Option<Spanned<FileMirror>>,
    pub(crate) rollout: Option<Spanned<FileRollout>>,
}

/// A route's `mirror = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileMirror {
    pub(crate) cluster: Option<Spanned<String>>,
    pub(crate) percent: Option<Spanned<Ratio>>,
    pub(crate) host_suffix: Option<Spanned<bool>>,
    pub(crate) max_body: Option<Spanned<Int>>,
    pub(crate) max_in_flight: Option<Spanned<Int>>,
}

/// A route's `rate_limit = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileRateLimit {
    pub(crate) requests_per_second: Option<Spanned<Int>>,
    pub(crate) burst: Option<Spanned<Int>>,
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) max_keys: Option<Spanned<Int>>,
}

/// A listener's `connection_rate_limit = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileConnectionRateLimit {
    pub(crate) connections_per_second: Option<Spanned<Int>>,
    pub(crate) burst: Option<Spanned<Int>>,
}

/// A split route's `rollout = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileRollout {
    pub(crate) canary: Option<Spanned<String>>,
    pub(crate) stable: Option<Spanned<String>>,
    pub(crate) steps: Option<Spanned<Vec<Spanned<Int>>>>,
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) max_error_rate_delta: Option<Spanned<Ratio>>,
    pub(crate) max_p99_ratio: Option<Spanned<Ratio>>,
    pub(crate) min_requests: Option<Spanned<Int>>,
    pub(crate) min_p99: Option<Spanned<String>>,
}

/// One entry of a route's `headers`: a name and one test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileHeaderMatch {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) exact: Option<Spanned<String>>,
    pub(crate) prefix: Option<Spanned<String>>,
    pub(crate) present: Option<Spanned<bool>>,
}

/// One entry of a route's `split`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileSplit {
    pub(crate) cluster: Option<Spanned<String>>,
    pub(crate) weight: Option<Spanned<Int>>,
}

/// A route's `redirect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileRedirect {
    pub(crate) status: Option<Spanned<Int>>,
    pub(crate) scheme: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
}

/// A route's `direct` response.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileDirect {
    pub(crate) status: Option<Spanned<Int>>,
    pub(crate) body: Option<Spanned<String>>,
    pub(crate) content_type: Option<Spanned<String>>,
}

/// A route's `request_headers` or `response_headers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileHeaderEdits {
    pub(crate) remove: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) set: Option<Spanned<FileHeaderFields>>,
    pub(crate) add: Option<Spanned<FileHeaderFields>>,
}

/// A table of header names to values, in the order the file writes them.
///
/// The TOML reader hands a table's keys over sorted by name; each key's span
/// gives the file's order back, which is the order edits are shown in.
#[derive(Debug)]
pub(crate) struct FileHeaderFields(pub(crate) Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for FileHeaderFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = FileHeaderFields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of header names to string values")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields: Vec<(Spanned<String>, Spanned<String>)> = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                fields.sort_by_key(|(name, _)| name.span().start);
                Ok(FileHeaderFields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// One `[[clusters]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileCluster {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) endpoints: Option<Spanned<Vec<Spanned<FileEndpoint>>>>,
    pub(crate) lb: Option<Spanned<String>>,
    pub(crate) hash_on: Option<Spanned<String>>,
    pub(crate) ewma_decay: Option<Spanned<String>>,
    pub(crate) ewma_seed_rtt: Option<Spanned<String>>,
    pub(crate) connect_timeout: Option<Spanned<String>>,
    pub(crate) pool_max_idle: Option<Spanned<Int>>,
    pub(crate) pool_idle_timeout: Option<Spanned<String>>,
    pub(crate) max_connections: Option<Spanned<Int>>,
    pub(crate) max_pending_requests: Option<Spanned<Int>>,
    pub(crate) max_requests: Option<Spanned<Int>>,
    pub(crate) consecutive_gateway_failures: Option<Spanned<Int>>,
    pub(crate) base_ejection_time: Option<Spanned<String>>,
    pub(crate) max_ejection_time: Option<Spanned<String>>,
    pub(crate) max_ejection_percent: Option<Spanned<Int>>,
    pub(crate) health_check: Option<Spanned<FileHealthCheck>>,
    pub(crate) max_retries: Option<Spanned<Int>>,
    pub(crate) retry: Option<Spanned<FileRetry>>,
    pub(crate) retry_budget: Option<Spanned<FileRetryBudget>>,
    pub(crate) tls: Option<Spanned<FileClusterTls>>,
}

/// A cluster's or a route's `retry = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileRetry {
    pub(crate) retries: Option<Spanned<Int>>,
    pub(crate) retry_on: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) retriable_status_codes: Option<Spanned<Vec<Spanned<Int>>>>,
    pub(crate) per_try_timeout: Option<Spanned<String>>,
    pub(crate) retry_non_idempotent: Option<Spanned<bool>>,
    pub(crate) retry_buffer: Option<Spanned<Int>>,
    pub(crate) backoff_base: Option<Spanned<String>>,
    pub(crate) backoff_max: Option<Spanned<String>>,
    pub(crate) leave_to_earlier_hop: Option<Spanned<bool>>,
}

/// A listener's `tls = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileTls {
    pub(crate) cert: Option<Spanned<String>>,
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) sni: Option<Spanned<Vec<Spanned<FileSniCert>>>>,
    pub(crate) versions: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) client_ca: Option<Spanned<String>>,
    pub(crate) require_client_cert: Option<Spanned<bool>>,
    pub(crate) trust_domains: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One entry of a listener's `tls.sni`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileSniCert {
    pub(crate) names: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) cert: Option<Spanned<String>>,
    pub(crate) key: Option<Spanned<String>>,
}

/// A cluster's `tls = { ... }`: TLS to its endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileClusterTls {
    pub(crate) ca: Option<Spanned<String>>,
    pub(crate) sni: Option<Spanned<String>>,
    pub(crate) verify: Option<Spanned<bool>>,
    pub(crate) identities: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) cert: Option<Spanned<String>>,
    pub(crate) key: Option<Spanned<String>>,
}

/// A cluster's `retry_budget = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileRetryBudget {
    pub(crate) percent: Option<Spanned<Int>>,
    pub(crate) min_per_second: Option<Spanned<Int>>,
}

/// A cluster's `health_check = { ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct FileHealthCheck {
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) expected_statuses: Option<Spanned<Vec<Spanned<Int>>>>,
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) healthy_threshold: Option<Spanned<Int>>,
    pub(crate) unhealthy_threshold: Option<Spanned<Int>>,
}

/// One entry of a cluster's `endpoints`: `"ip:port"`, or
/// `{ address = "ip:port", weight = N }`.
#[derive(Debug)]
pub(crate) enum FileEndpoint {
    /// The address alone (weight 1).
    Address(String),
    /// A table; either key may be missing (the builder says which).
    Table {
        address: Option<Spanned<String>>,
        weight: Option<Spanned<Int>>,
    },
}

impl<'de> Deserialize<'de> for FileEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Weighted {
            address: Option<Spanned<String>>,
            weight: Option<Spanned<Int>>,
        }

        struct EndpointVisitor;

        impl<'de> Visitor<'de> for EndpointVisitor {
            type Value = FileEndpoint;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an endpoint: \"ip:port\" or { address = \"ip:port\", weight = N }")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileEndpoint, E> {
                Ok(FileEndpoint::Address(v.to_owned()))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<FileEndpoint, A::Error> {
                let w = Weighted::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(FileEndpoint::Table {
                    address: w.address,
                    weight: w.weight,
                })
            }
        }

        deserializer.deserialize_any(EndpointVisitor)
    }
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

/// A number that may be written as an integer or a float (`sample = 1` or
/// `sample = 0.25`); the builder checks its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ratio(pub(crate) f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RatioVisitor;

        impl Visitor<'_> for RatioVisitor {
            type Value = Ratio;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ratio, E> {
                Ok(Ratio(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ratio, E> {
                Ok(Ratio(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ratio, E> {
                Ok(Ratio(v as f64))
            }
        }

        deserializer.deserialize_f64(RatioVisitor)
    }
}
