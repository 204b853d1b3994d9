//! From the file as written to a checked [`Config`]: ranges, references,
//! duplicates, and the machine's cores.
//!
//! Every check reports into one list and carries on, so a file with five
//! mistakes yields five errors. Only when the list stays empty are the
//! runtime types assembled.
//!
//! HTTP listeners' settings are checked in `http`, their routes in `route`.

mod access_log;
pub(crate) use self::access_log::new_output_id;
mod authz;
mod fault;
mod http;
pub(super) mod mirror;
mod rate;
mod retry;
mod rollout;
mod route;
mod tls;
mod tracing;
pub use self::tracing::TracingSettings;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use dataplane::rt::BackendChoice;
use dataplane::settings::RuntimeSettings;
use dataplane::table::breaker::{Breaker, Limits};
use dataplane::table::checks::{self, CheckSettings, Checks, Probe, Verdicts};
use dataplane::table::lb::{self, Balance, Ewma, HashOn, Policy};
use dataplane::table::outlier::{EndpointEvents, Outlier};
use dataplane::table::retry::{Budget, BudgetSettings, RetryPolicy};
use dataplane::table::route::PoolSettings;
use dataplane::table::tally::{ClusterTally, EndpointTallies};
use dataplane::table::{Cluster, ClusterId, Listener, Protocol, Service, Table};
use toml::Spanned;

use super::error::{ConfigError, ConfigErrors};
use super::file::{
    FileAdmin, FileCluster, FileConfig, FileEndpoint, FileHealthCheck, FileListener, FileRuntime,
    Int,
};
use super::source::Source;
use super::tally::Tallies;
use super::{address, duration, render, AdminSettings, Config, MetricsSettings};

/// Default `idle_timeout` of a listener: long enough for a quiet database
/// session, short enough that abandoned connections do not pile up.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default `connect_timeout` of a cluster: a local or same-datacenter
/// endpoint answers a SYN in well under this.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default idle HTTP connections kept per endpoint per worker.
const DEFAULT_POOL_MAX_IDLE: usize = 64;
/// Default time an idle pooled HTTP connection is kept.
const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest breaker limit (`max_connections`, `max_pending_requests`,
/// `max_requests`).
const MAX_BREAKER_LIMIT: u32 = 1_000_000;

/// Largest `pool_max_idle`: each idle connection holds a file descriptor
/// per worker per endpoint, so more than this is a descriptor leak in
/// waiting rather than a useful pool.
const POOL_MAX_IDLE_MAX: i64 = 4096;

/// Smallest `buffer_size`, and the step it must be a multiple of: one page,
/// so that every buffer of a contiguous pool starts on a page boundary.
const BUFFER_SIZE_MIN: i64 = 4096;
/// Largest `buffer_size`: 1 MiB; bigger buffers only waste memory on
/// connections that move little data.
const BUFFER_SIZE_MAX: i64 = 1 << 20;
/// Largest `buffer_count`: the kernel's limit on entries in one provided
/// buffer ring.
const BUFFER_COUNT_MAX: i64 = 32768;
/// Largest `max_connections`: the kernel's own ceiling on open files per
/// process (`fs.nr_open` cannot go past 2^30), two per connection.
const MAX_CONNECTIONS_MAX: i64 = 1 << 29;
/// `runtime.access_log_buffer` range: from room for a few of the largest
/// records to 1 GiB per worker.
const ACCESS_LOG_BUFFER_MIN: usize = dataplane::access::MIN_RING;
const ACCESS_LOG_BUFFER_MAX: usize = 1 << 30;

/// Checks a parsed file. `cores` are the core ids this process may run on,
/// or `None` where the platform cannot tell. `previous` is the running table
/// when the file is to replace it (its HTTP tallies are carried over, see
/// [`Tallies`]), `None` for a fresh start.
pub(crate) fn compile(
    file: &FileConfig,
    source: &Source<'_>,
    cores: Option<&[usize]>,
    previous: Option<&Table>,
) -> Result<Config, ConfigErrors> {
    let mut builder = Builder {
        source,
        cores,
        errors: Vec::new(),
        identities: tls::running_identities(previous),
        trace_sample: None,
        key_tables_over: false,
    };
    let tracing = match &file.tracing {
        None => Some(None),
        Some(table) => builder.tracing(table).map(Some),
    };
    let metrics = match file
        .metrics
        .as_ref()
        .and_then(|m| m.get_ref().endpoint_expiry.as_ref())
    {
        None => Some(MetricsSettings::default()),
        Some(text) => builder
            .check(text, "metrics.endpoint_expiry", |t| {
                duration::parse_nonzero(t)
            })
            .map(|endpoint_expiry| MetricsSettings { endpoint_expiry }),
    };
    builder.trace_sample = tracing
        .as_ref()
        .and_then(|t| t.as_ref().map(TracingSettings::threshold));
    let runtime = builder.runtime(file.runtime.as_ref());
    let admin = builder.admin(file.admin.as_ref());
    // Without a valid runtime the table is not built at all; one block is
    // as good a guess as any for the tallies of routes still being checked.
    let workers = runtime.as_ref().map_or(1, |(r, _)| r.worker_cores.len());
    let tallies = Tallies::new(previous, workers);
    // A cluster a TCP listener sends to keeps round robin as its default
    // policy; every other one balances by peak-EWMA unless it says.
    let tcp_clusters: HashSet<&str> = file
        .listeners
        .iter()
        .map(Spanned::get_ref)
        .filter(|l| l.protocol.as_ref().is_some_and(|p| p.get_ref() == "tcp"))
        .filter_map(|l| l.cluster.as_ref().map(|c| c.get_ref().as_str()))
        .collect();
    let clusters = builder.clusters(&file.clusters, previous, workers, &tcp_clusters);
    builder.key_table_budget(&file.listeners);
    let listeners = builder.listeners(&file.listeners, &clusters, admin, &tallies);

    match (runtime, admin) {
        (Some((runtime, control_core)), Some(admin)) if builder.errors.is_empty() => Ok(Config {
            runtime,
            control_core,
            admin,
            tracing: tracing.flatten(),
            metrics: metrics.unwrap_or_default(),
            table: Table {
                generation: 1,
                listeners,
                clusters: clusters.built,
            },
        }),
        _ => {
            debug_assert!(!builder.errors.is_empty(), "a part failed without an error");
            Err(ConfigErrors::new(builder.errors))
        }
    }
}

/// The clusters that passed their checks, and every name given in the file
/// (first use wins) so listeners can refer to them by index.
struct Clusters<'f> {
    built: Vec<Arc<Cluster>>,
    names: Vec<&'f str>,
    index: HashMap<&'f str, usize>,
}

struct Builder<'a> {
    source: &'a Source<'a>,
    cores: Option<&'a [usize]>,
    errors: Vec<ConfigError>,
    /// The SPIFFE ID each certificate file of the running table names: a
    /// certificate re-read from the same file must keep it.
    identities: HashMap<Box<str>, Box<str>>,
    /// The sampling threshold of every HTTP listener, when `[tracing]` is
    /// set and valid.
    trace_sample: Option<dataplane::trace::context::Threshold>,
    /// The keyed rate limits of the file would take more memory together
    /// than a configuration may: none of their tables is allocated.
    key_tables_over: bool,
}

impl Builder<'_> {
    fn runtime(
        &mut self,
        runtime: Option<&Spanned<FileRuntime>>,
    ) -> Option<(RuntimeSettings, Option<usize>)> {
        let Some(table) = runtime else {
            self.report(
                None,
                "runtime",
                "missing [runtime] table; it must at least list the worker cores, e.g. worker_cores = [0]",
            );
            return None;
        };
        let file = table.get_ref();
        let defaults = RuntimeSettings::default();

        let worker_cores = match &file.worker_cores {
            None => {
                self.report(
                    Some(table.span()),
                    "runtime.worker_cores",
                    "missing required key; list the cores to run one worker each on, e.g. worker_cores = [0]",
                );
                None
            }
            Some(list) => self.worker_cores(list),
        };
        let control_core = match &file.control_core {
            None => Some(None),
            Some(core) => self.core(core, "runtime.control_core".to_owned()).map(Some),
        };
        let drain_timeout = match &file.drain_timeout {
            None => Some(defaults.drain_timeout),
            Some(text) => self.check(text, "runtime.drain_timeout", |t| duration::parse(t)),
        };
        let buffer_size = match &file.buffer_size {
            None => Some(defaults.buffer_size),
            Some(size) => self.check(size, "runtime.buffer_size", |&Int(n)| {
                match u32::try_from(n) {
                    Ok(size)
                        if (BUFFER_SIZE_MIN..=BUFFER_SIZE_MAX).contains(&n)
                            && n % BUFFER_SIZE_MIN == 0 =>
                    {
                        Ok(size)
                    }
                    _ => Err(format!(
                        "buffer size {n} is not a multiple of 4096 from 4096 to 1048576 (1 MiB)"
                    )),
                }
            }),
        };
        let buffer_count = match &file.buffer_count {
            None => Some(defaults.buffer_count),
            Some(count) => self.check(
                count,
                "runtime.buffer_count",
                |&Int(n)| match u16::try_from(n) {
                    Ok(count) if n <= BUFFER_COUNT_MAX && count.is_power_of_two() => Ok(count),
                    _ => Err(format!(
                        "buffer count {n} is not a power of two from 1 to 32768"
                    )),
                },
            ),
        };
        let max_connections = match &file.max_connections {
            None => Some(None),
            Some(count) => self
                .check(
                    count,
                    "runtime.max_connections",
                    |&Int(n)| match usize::try_from(n) {
                        Ok(count) if (1..=MAX_CONNECTIONS_MAX).contains(&n) => Ok(count),
                        _ => Err(format!(
                            "max connections {n} is not from 1 to {MAX_CONNECTIONS_MAX}"
                        )),
                    },
                )
                .map(Some),
        };

        let access_log_buffer = match &file.access_log_buffer {
            None => Some(defaults.access_log_buffer),
            Some(bytes) => self.check(bytes, "runtime.access_log_buffer", |&Int(n)| {
                match usize::try_from(n) {
                    Ok(b) if (ACCESS_LOG_BUFFER_MIN..=ACCESS_LOG_BUFFER_MAX).contains(&b) => Ok(b),
                    _ => Err(format!(
                        "access log buffer {n} is not from {ACCESS_LOG_BUFFER_MIN} to {ACCESS_LOG_BUFFER_MAX} bytes"
                    )),
                }
            }),
        };

        let io_backend = match &file.io_backend {
            None => Some(defaults.io_backend),
            Some(name) => self.check(name, "runtime.io_backend", |n| n.parse::<BackendChoice>()),
        };

        Some((
            RuntimeSettings {
                worker_cores: worker_cores?,
                buffer_size: buffer_size?,
                buffer_count: buffer_count?,
                drain_timeout: drain_timeout?,
                max_connections: max_connections?,
                access_log_buffer: access_log_buffer?,
                io_backend: io_backend?,
            },
            control_core?,
        ))
    }

    fn worker_cores(&mut self, list: &Spanned<Vec<Spanned<Int>>>) -> Option<Vec<usize>> {
        if list.get_ref().is_empty() {
            self.report(
                Some(list.span()),
                "runtime.worker_cores",
                "no cores listed; list at least one, e.g. worker_cores = [0]",
            );
            return None;
        }
        let mut cores = Vec::with_capacity(list.get_ref().len());
        let mut ok = true;
        for (i, entry) in list.get_ref().iter().enumerate() {
            let key = format!("runtime.worker_cores[{i}]");
            match self.core(entry, key.clone()) {
                Some(core) if cores.contains(&core) => {
                    self.report(
                        Some(entry.span()),
                        key,
                        format!("core {core} is listed twice; each worker needs a core of its own"),
                    );
                    ok = false;
                }
                Some(core) => cores.push(core),
                None => ok = false,
            }
        }
        ok.then_some(cores)
    }

    fn core(&mut self, value: &Spanned<Int>, key: String) -> Option<usize> {
        let Int(n) = *value.get_ref();
        let reason = match (usize::try_from(n), self.cores) {
            (Err(_), _) => format!("core {n} does not exist: core ids start at 0"),
            (Ok(core), Some(cores)) if cores.contains(&core) => return Some(core),
            (Ok(core), Some(cores)) => format!(
                "core {core} does not exist on this machine (cores: {})",
                render::core_list(cores)
            ),
            (Ok(core), None) => {
                format!("cannot pin to core {core}: this platform does not report its cores")
            }
        };
        self.report(Some(value.span()), key, reason);
        None
    }

    fn admin(&mut self, admin: Option<&Spanned<FileAdmin>>) -> Option<AdminSettings> {
        let defaults = AdminSettings::default();
        let Some(file) = admin.map(Spanned::get_ref) else {
            return Some(defaults);
        };
        let address = match &file.address {
            None => Some(defaults.address),
            Some(text) => self.check(text, "admin.address", |t| address::parse(t)),
        };
        let first_byte_timeout = match &file.first_byte_timeout {
            None => Some(defaults.first_byte_timeout),
            Some(text) => self.check(text, "admin.first_byte_timeout", |t| {
                duration::parse_nonzero(t)
            }),
        };
        let head_timeout = match &file.head_timeout {
            None => Some(defaults.head_timeout),
            Some(text) => self.check(text, "admin.head_timeout", |t| duration::parse_nonzero(t)),
        };
        Some(AdminSettings {
            address: address?,
            first_byte_timeout: first_byte_timeout?,
            head_timeout: head_timeout?,
        })
    }

    fn clusters<'f>(
        &mut self,
        files: &'f [Spanned<FileCluster>],
        previous: Option<&Table>,
        workers: usize,
        tcp_clusters: &HashSet<&str>,
    ) -> Clusters<'f> {
        let mut clusters = Clusters {
            built: Vec::with_capacity(files.len()),
            names: Vec::with_capacity(files.len()),
            index: HashMap::new(),
        };
        let mut first_use: HashMap<&str, Range<usize>> = HashMap::new();
        for (i, table) in files.iter().enumerate() {
            let prefix = format!("clusters[{i}]");
            let file = table.get_ref();

            let name = self.name(
                table,
                file.name.as_ref(),
                &prefix,
                "cluster",
                &mut first_use,
            );
            if let Some(name) = &file.name {
                if !clusters.index.contains_key(name.get_ref().as_str()) {
                    clusters.index.insert(name.get_ref(), i);
                    clusters.names.push(name.get_ref());
                }
            }

            let endpoints = match &file.endpoints {
                None => {
                    self.missing(
                        table,
                        &prefix,
                        "endpoints",
                        "e.g. endpoints = [\"127.0.0.1:8000\"]",
                    );
                    None
                }
                Some(list) if list.get_ref().is_empty() => {
                    self.report(
                        Some(list.span()),
                        format!("{prefix}.endpoints"),
                        "no endpoints listed; list at least one ip:port, e.g. [\"127.0.0.1:8000\"]",
                    );
                    None
                }
                Some(list) => {
                    let mut endpoints = Vec::with_capacity(list.get_ref().len());
                    let mut weights = Vec::with_capacity(list.get_ref().len());
                    for (j, entry) in list.get_ref().iter().enumerate() {
                        let key = format!("{prefix}.endpoints[{j}]");
                        let parsed = match entry.get_ref() {
                            FileEndpoint::Address(text) => {
                                self.check(entry, &key, |_| endpoint(text)).map(|a| (a, 1))
                            }
                            FileEndpoint::Table { address, weight } => {
                                let address = match address {
                                    Some(text) => {
                                        self.check(text, format!("{key}.address"), |t| endpoint(t))
                                    }
                                    None => {
                                        self.missing(
                                            entry,
                                            &key,
                                            "address",
                                            "e.g. { address = \"127.0.0.1:8000\", weight = 2 }",
                                        );
                                        None
                                    }
                                };
                                let weight = match weight {
                                    None => Some(1),
                                    Some(w) => self.check(w, format!("{key}.weight"), |&Int(n)| {
                                        match u32::try_from(n) {
                                            Ok(w) if (1..=lb::MAX_WEIGHT).contains(&w) => Ok(w),
                                            _ => Err(format!(
                                                "weight {n} is out of range: from 1 to {}",
                                                lb::MAX_WEIGHT
                                            )),
                                        }
                                    }),
                                };
                                address.zip(weight)
                            }
                        };
                        if let Some((address, weight)) = parsed {
                            endpoints.push(address);
                            weights.push(weight);
                        }
                    }
                    (endpoints.len() == list.get_ref().len()).then_some((endpoints, weights))
                }
            };

            let tcp = file
                .name
                .as_ref()
                .is_some_and(|n| tcp_clusters.contains(n.get_ref().as_str()));
            let policy = self.policy(file, &prefix, tcp);
            let mut balanced = false;
            if let (Some(policy), Some((endpoints, weights)), Some(list)) =
                (&policy, &endpoints, &file.endpoints)
            {
                let weighted = weights.iter().any(|&w| w != 1);
                if weighted && *policy == Policy::RoundRobin {
                    self.report(
                        Some(list.span()),
                        format!("{prefix}.endpoints"),
                        "endpoint weights need a policy that reads them: lb = \"weighted_round_robin\" (or least_request, peak_ewma, ring_hash, maglev); round_robin takes every endpoint in turn",
                    );
                } else if let Err(reason) = Balance::check(policy, weights) {
                    self.report(Some(list.span()), format!("{prefix}.endpoints"), reason);
                } else {
                    balanced = true;
                }
                let _ = endpoints;
            }
            // Nothing is built from a refused combination (a ring too big
            // to hold must not be computed before it is refused).
            let policy = policy.filter(|_| balanced);

            let connect_timeout = match &file.connect_timeout {
                None => Some(DEFAULT_CONNECT_TIMEOUT),
                Some(text) => self.check(text, format!("{prefix}.connect_timeout"), |t| {
                    duration::parse_nonzero(t)
                }),
            };

            let pool_max_idle = match &file.pool_max_idle {
                None => Some(DEFAULT_POOL_MAX_IDLE),
                Some(count) => self.check(count, format!("{prefix}.pool_max_idle"), |&Int(n)| {
                    match usize::try_from(n) {
                        Ok(count) if n <= POOL_MAX_IDLE_MAX => Ok(count),
                        _ => Err(format!(
                            "pool_max_idle {n} is out of range: from 0 (no reuse) to {POOL_MAX_IDLE_MAX} idle connections per endpoint per worker"
                        )),
                    }
                }),
            };
            let pool_idle_timeout = match &file.pool_idle_timeout {
                None => Some(DEFAULT_POOL_IDLE_TIMEOUT),
                Some(text) => self.check(text, format!("{prefix}.pool_idle_timeout"), |t| {
                    duration::parse_nonzero(t)
                }),
            };

            let mut limits = Some(Limits::default());
            for (key, value, slot) in [
                ("max_connections", &file.max_connections, 0),
                ("max_pending_requests", &file.max_pending_requests, 1),
                ("max_requests", &file.max_requests, 2),
                ("max_retries", &file.max_retries, 3),
            ] {
                let Some(value) = value else { continue };
                let parsed = self.check(value, format!("{prefix}.{key}"), |&Int(n)| {
                    match u32::try_from(n) {
                        Ok(max) if (1..=MAX_BREAKER_LIMIT).contains(&max) => Ok(max),
                        _ => Err(format!(
                            "{key} {n} is out of range: from 1 to {MAX_BREAKER_LIMIT} (leave it out for no limit)"
                        )),
                    }
                });
                match (parsed, limits.as_mut()) {
                    (Some(max), Some(l)) => match slot {
                        0 => l.max_connections = Some(max),
                        1 => l.max_pending_requests = Some(max),
                        2 => l.max_requests = Some(max),
                        _ => l.max_retries = Some(max),
                    },
                    _ => limits = None,
                }
            }

            let outlier = self.outlier(file, &prefix);
            let retry = match &file.retry {
                None => Some(RetryPolicy::default()),
                Some(table) => self.retry_policy(table, &format!("{prefix}.retry")),
            };
            let budget_settings = match &file.retry_budget {
                None => Some(BudgetSettings::default()),
                Some(table) => self.retry_budget(table, &format!("{prefix}.retry_budget")),
            };
            let tls = match &file.tls {
                None => Some(None),
                Some(table) => self.cluster_tls(table, &format!("{prefix}.tls")).map(Some),
            };
            let check_settings = match &file.health_check {
                None => Some(None),
                Some(table) => self.health_check(table, &prefix).map(Some),
            };

            if let (
                Some(name),
                Some((endpoints, weights)),
                Some(policy),
                Some(outlier),
                Some(check_settings),
                Some(connect_timeout),
                Some(max_idle),
                Some(idle_timeout),
                Some(retry),
                Some(budget_settings),
                Some(tls),
            ) = (
                name,
                endpoints,
                policy,
                outlier,
                check_settings,
                connect_timeout,
                pool_max_idle,
                pool_idle_timeout,
                retry,
                budget_settings,
                tls,
            ) {
                let limits = limits.unwrap_or_default();
                // The counts of the same cluster in the running table carry
                // on, so what its connections and requests hold stays
                // counted across the reload.
                let running = previous.and_then(|t| t.clusters.iter().find(|c| c.name == name));
                let before = running.and_then(|c| c.breaker.as_ref());
                // So does the retry budget: its window and its counts.
                let budget = Budget::new(budget_settings, workers, running.map(|c| &c.budget));
                let events = EndpointEvents::new(&endpoints, running.map(|c| &c.events));
                // And its endpoints' figures, by address.
                let endpoint_tallies =
                    EndpointTallies::new(&endpoints, workers, running.map(|c| &c.endpoint_tallies));
                // And its timings.
                let tally = running.map_or_else(
                    || Arc::new(ClusterTally::new(workers)),
                    |c| Arc::clone(&c.tally),
                );
                let breaker = limits.any().then(|| Breaker::new(limits, before));
                // Verdicts carry over by address from the same cluster in
                // the running table, so a reload does not bring a failing
                // endpoint back before its checks do.
                let checks = check_settings.map(|settings| {
                    let previous = previous
                        .and_then(|t| t.clusters.iter().find(|c| c.name == name))
                        .and_then(|c| c.checks.as_ref());
                    Checks {
                        settings,
                        verdicts: Arc::new(Verdicts::new(
                            &endpoints,
                            previous.map(|c| &*c.verdicts),
                        )),
                    }
                });
                let balance = Balance::new(policy, &endpoints, &weights);
                clusters.built.push(Arc::new(Cluster {
                    name,
                    endpoints,
                    balance,
                    connect_timeout,
                    pool: PoolSettings {
                        max_idle,
                        idle_timeout,
                    },
                    breaker,
                    outlier,
                    events,
                    checks,
                    retry: Arc::new(retry),
                    budget,
                    tls,
                    tally,
                    endpoint_tallies,
                }));
            }
        }
        clusters
    }

    /// A cluster's `health_check = { ... }`.
    fn health_check(
        &mut self,
        table: &Spanned<FileHealthCheck>,
        prefix: &str,
    ) -> Option<CheckSettings> {
        let file = table.get_ref();
        let key = |k: &str| format!("{prefix}.health_check.{k}");
        let kind = file.kind.as_ref().map_or("http", |k| k.get_ref().as_str());
        let mut ok = true;
        let probe = match kind {
            "tcp" => {
                for (name, present) in [
                    ("path", file.path.is_some()),
                    ("host", file.host.is_some()),
                    ("expected_statuses", file.expected_statuses.is_some()),
                ] {
                    if present {
                        self.report(
                            Some(table.span()),
                            key(name),
                            format!("{name} applies only to kind = \"http\" checks"),
                        );
                        ok = false;
                    }
                }
                Probe::Tcp
            }
            "http" => {
                let path = match &file.path {
                    None => Some(Arc::from("/")),
                    Some(p) => self.check(p, key("path"), |t| {
                        if t.starts_with('/') && t.bytes().all(|b| b.is_ascii_graphic()) {
                            Ok(Arc::from(t.as_str()))
                        } else {
                            Err(format!("invalid path {t:?}: it must start with `/` and hold no spaces or control characters"))
                        }
                    }),
                };
                let host = match &file.host {
                    None => Some(None),
                    Some(h) => self.check(h, key("host"), |t| {
                        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()) {
                            Ok(Some(Arc::from(t.as_str())))
                        } else {
                            Err(format!("invalid host {t:?}"))
                        }
                    }),
                };
                let statuses = match &file.expected_statuses {
                    None => Some(vec![(200, 399)]),
                    Some(list) if list.get_ref().is_empty() => {
                        self.report(
                            Some(list.span()),
                            key("expected_statuses"),
                            "no statuses listed; e.g. [200, 204]",
                        );
                        None
                    }
                    Some(list) => {
                        let mut statuses = Vec::new();
                        for s in list.get_ref() {
                            if let Some(code) =
                                self.check(s, key("expected_statuses"), |&Int(n)| {
                                    match u16::try_from(n) {
                                        Ok(c) if (100..=599).contains(&c) => Ok(c),
                                        _ => Err(format!(
                                            "status {n} is out of range: from 100 to 599"
                                        )),
                                    }
                                })
                            {
                                statuses.push((code, code));
                            }
                        }
                        (statuses.len() == list.get_ref().len()).then_some(statuses)
                    }
                };
                match (path, host, statuses) {
                    (Some(path), Some(host), Some(statuses)) => Probe::Http {
                        path,
                        host,
                        statuses,
                    },
                    _ => return None,
                }
            }
            other => {
                let span = file.kind.as_ref().map(Spanned::span);
                self.report(
                    span,
                    key("kind"),
                    format!("unknown check kind {other:?} (accepted: http, tcp)"),
                );
                return None;
            }
        };
        let duration_of = |this: &mut Self, v: &Option<Spanned<String>>, k: &str, default| match v {
            None => Some(default),
            Some(text) => this.check(text, key(k), |t| duration::parse_nonzero(t)),
        };
        let interval = duration_of(self, &file.interval, "interval", checks::DEFAULT_INTERVAL);
        let timeout = duration_of(self, &file.timeout, "timeout", checks::DEFAULT_TIMEOUT);
        let count = |this: &mut Self, v: &Option<Spanned<Int>>, k: &str, default| match v {
            None => Some(default),
            Some(n) => this.check(n, key(k), |&Int(n)| match u32::try_from(n) {
                Ok(c) if (1..=100).contains(&c) => Ok(c),
                _ => Err(format!("{k} {n} is out of range: from 1 to 100")),
            }),
        };
        let healthy = count(
            self,
            &file.healthy_threshold,
            "healthy_threshold",
            checks::DEFAULT_HEALTHY_THRESHOLD,
        );
        let unhealthy = count(
            self,
            &file.unhealthy_threshold,
            "unhealthy_threshold",
            checks::DEFAULT_UNHEALTHY_THRESHOLD,
        );
        let (interval, timeout, healthy_threshold, unhealthy_threshold) =
            (interval?, timeout?, healthy?, unhealthy?);
        if !ok {
            return None;
        }
        Some(CheckSettings {
            probe,
            interval,
            timeout,
            healthy_threshold,
            unhealthy_threshold,
        })
    }

    /// A cluster's outlier detection: `consecutive_gateway_failures`,
    /// `base_ejection_time`, `max_ejection_time`, `max_ejection_percent`.
    fn outlier(&mut self, file: &FileCluster, prefix: &str) -> Option<Outlier> {
        let mut outlier = Some(Outlier::default());
        if let Some(n) = &file.consecutive_gateway_failures {
            let parsed = self.check(n, format!("{prefix}.consecutive_gateway_failures"), |&Int(n)| {
                match u32::try_from(n) {
                    Ok(v) if v <= 1000 => Ok(v),
                    _ => Err(format!("consecutive_gateway_failures {n} is out of range: from 0 (no ejection) to 1000")),
                }
            });
            match (parsed, outlier.as_mut()) {
                (Some(v), Some(o)) => o.consecutive_failures = v,
                _ => outlier = None,
            }
        }
        for (key, value, slot) in [
            ("base_ejection_time", &file.base_ejection_time, 0),
            ("max_ejection_time", &file.max_ejection_time, 1),
        ] {
            let Some(text) = value else { continue };
            let parsed = self.check(text, format!("{prefix}.{key}"), |t| {
                duration::parse_nonzero(t)
            });
            match (parsed, outlier.as_mut()) {
                (Some(d), Some(o)) if slot == 0 => o.base_ejection = d,
                (Some(d), Some(o)) => o.max_ejection = d,
                _ => outlier = None,
            }
        }
        if let Some(p) = &file.max_ejection_percent {
            let parsed = self.check(p, format!("{prefix}.max_ejection_percent"), |&Int(n)| {
                match u32::try_from(n) {
                    Ok(v) if v <= 100 => Ok(v),
                    _ => Err(format!(
                        "max_ejection_percent {n} is out of range: from 0 to 100"
                    )),
                }
            });
            match (parsed, outlier.as_mut()) {
                (Some(v), Some(o)) => o.max_ejection_percent = v,
                _ => outlier = None,
            }
        }
        if let (Some(o), Some(text)) = (&outlier, &file.max_ejection_time) {
            if o.max_ejection < o.base_ejection {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.max_ejection_time"),
                    format!(
                        "max_ejection_time {} is shorter than base_ejection_time {}",
                        duration::format(o.max_ejection),
                        duration::format(o.base_ejection)
                    ),
                );
                return None;
            }
        }
        outlier
    }

    /// The balancing policy of a cluster: `lb` and the keys that tune it,
    /// each refused where the policy does not read it.
    fn policy(&mut self, file: &FileCluster, prefix: &str, tcp: bool) -> Option<Policy> {
        let name = match &file.lb {
            None if tcp => "round_robin",
            None => "peak_ewma",
            Some(text) => text.get_ref().as_str(),
        };
        let hashing = matches!(name, "ring_hash" | "maglev");
        let hash_on = match &file.hash_on {
            None => Some(HashOn::ClientAddress),
            Some(text) if !hashing => {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.hash_on"),
                    format!("hash_on applies only to lb = \"ring_hash\" or \"maglev\" (this cluster's lb is {name})"),
                );
                None
            }
            Some(text) => self.check(text, format!("{prefix}.hash_on"), |t| hash_on(t)),
        };
        let mut ewma = Some(Ewma::default());
        for (key, value, slot) in [
            ("ewma_decay", &file.ewma_decay, 0),
            ("ewma_seed_rtt", &file.ewma_seed_rtt, 1),
        ] {
            let Some(text) = value else { continue };
            if name != "peak_ewma" {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.{key}"),
                    format!(
                        "{key} applies only to lb = \"peak_ewma\" (this cluster's lb is {name})"
                    ),
                );
                ewma = None;
                continue;
            }
            match self.check(text, format!("{prefix}.{key}"), |t| {
                duration::parse_nonzero(t)
            }) {
                Some(d) => {
                    if let Some(e) = ewma.as_mut() {
                        if slot == 0 {
                            e.decay = d;
                        } else {
                            e.seed = d;
                        }
                    }
                }
                None => ewma = None,
            }
        }
        const NAMES: [&str; 6] = [
            "round_robin",
            "weighted_round_robin",
            "least_request",
            "peak_ewma",
            "ring_hash",
            "maglev",
        ];
        if !NAMES.contains(&name) {
            if let Some(text) = &file.lb {
                self.report(
                    Some(text.span()),
                    format!("{prefix}.lb"),
                    format!(
                        "unknown load balancing policy {name:?} (accepted: {})",
                        NAMES.join(", ")
                    ),
                );
            }
            return None;
        }
        let (hash_on, ewma) = (hash_on?, ewma?);
        Some(match name {
            "weighted_round_robin" => Policy::WeightedRoundRobin,
            "least_request" => Policy::LeastRequest,
            "peak_ewma" => Policy::PeakEwma(ewma),
            "ring_hash" => Policy::RingHash(hash_on),
            "maglev" => Policy::Maglev(hash_on),
            _ => Policy::RoundRobin,
        })
    }

    fn listeners(
        &mut self,
        files: &[Spanned<FileListener>],
        clusters: &Clusters<'_>,
        admin: Option<AdminSettings>,
        tallies: &Tallies,
    ) -> Vec<Listener> {
        let mut listeners = Vec::with_capacity(files.len());
        let mut first_use: HashMap<&str, Range<usize>> = HashMap::new();
        // Addresses of earlier listeners, with how to name them in a message.
        let mut bound: Vec<(SocketAddr, String, usize)> = Vec::new();
        for (i, table) in files.iter().enumerate() {
            let prefix = format!("listeners[{i}]");
            let file = table.get_ref();

            let name = self.name(
                table,
                file.name.as_ref(),
                &prefix,
                "listener",
                &mut first_use,
            );

            let address = match &file.address {
                None => {
                    self.missing(
                        table,
                        &prefix,
                        "address",
                        "e.g. address = \"127.0.0.1:8080\"",
                    );
                    None
                }
                Some(text) => {
                    let key = format!("{prefix}.address");
                    self.check(text, &key, |t| listen_address(t))
                        .and_then(|address| {
                            let label = match &file.name {
                                Some(name) => format!("`{}`", name.get_ref()),
                                None => prefix.clone(),
                            };
                            self.check_overlap(text, &key, address, admin, &bound)?;
                            bound.push((address, label, self.source.line(&text.span())));
                            Some(address)
                        })
                }
            };

            let protocol = match &file.protocol {
                None => {
                    self.missing(
                        table,
                        &prefix,
                        "protocol",
                        "e.g. protocol = \"tcp\" or protocol = \"http\"",
                    );
                    None
                }
                Some(text) => self.check(text, format!("{prefix}.protocol"), |t| protocol(t)),
            };

            let idle_timeout = match &file.idle_timeout {
                None => Some(DEFAULT_IDLE_TIMEOUT),
                Some(text) => self.check(text, format!("{prefix}.idle_timeout"), |t| {
                    duration::parse_nonzero(t)
                }),
            };

            // A listener without a valid name is not built; its routes are
            // still checked, under a name no listener can have, and the
            // tallies they get are dropped with them.
            let key = name.clone().unwrap_or_else(|| Arc::from(""));
            let service = match protocol {
                Some(Protocol::Tcp) => self.tcp_service(table, &prefix, &key, clusters, tallies),
                Some(Protocol::Http) => {
                    let http = self.http_service(table, &prefix, &key, clusters, tallies);
                    idle_timeout.zip(http).map(|(idle, http)| http.finish(idle))
                }
                None => {
                    // Unknown protocol: check whatever the listener names,
                    // so that its other mistakes are not hidden.
                    match (&file.cluster, &file.routes) {
                        (None, None) => {
                            self.missing(table, &prefix, "cluster", "name one of the [[clusters]]")
                        }
                        (cluster, routes) => {
                            if let Some(text) = cluster {
                                self.check(text, format!("{prefix}.cluster"), |t| {
                                    cluster_id(t.as_str(), clusters)
                                });
                            }
                            if let Some(routes) = routes {
                                self.routes(routes, &prefix, &key, clusters, tallies);
                            }
                        }
                    }
                    None
                }
            };

            let authorization = self.authorization(table, &prefix, protocol, &key, tallies);
            let connection_rate_limit = match &file.connection_rate_limit {
                None => Some(None),
                Some(t) => {
                    let prefix = format!("{prefix}.connection_rate_limit");
                    self.connection_rate_limit(t, &prefix, &key, tallies)
                        .map(Some)
                }
            };

            if let (
                Some(name),
                Some(address),
                Some(service),
                Some(idle_timeout),
                Some(authorization),
                Some(connection_rate_limit),
            ) = (
                name,
                address,
                service,
                idle_timeout,
                authorization,
                connection_rate_limit,
            ) {
                let connections = tallies.connections(&name);
                listeners.push(Listener {
                    name,
                    address,
                    service,
                    idle_timeout,
                    authorization,
                    connections,
                    connection_rate_limit,
                });
            }
        }
        listeners
    }

    /// A TCP listener's service: its `cluster`, and none of the HTTP keys.
    fn tcp_service(
        &mut self,
        table: &Spanned<FileListener>,
        prefix: &str,
        listener: &Arc<str>,
        clusters: &Clusters<'_>,
        tallies: &Tallies,
    ) -> Option<Service> {
        let file = table.get_ref();
        self.refuse_http_keys(file, prefix);
        let cluster = match &file.cluster {
            None => {
                self.missing(table, prefix, "cluster", "name one of the [[clusters]]");
                None
            }
            Some(text) => self.check(text, format!("{prefix}.cluster"), |t| {
                cluster_id(t.as_str(), clusters)
            }),
        };
        let tls = match &file.tls {
            None => Some(None),
            Some(t) => self
                .tls(t, &format!("{prefix}.tls"), false)
                .map(|t| Some(Arc::new(t))),
        };
        let fault = match &file.fault {
            None => Some(None),
            Some(f) => self
                .tcp_fault(f, prefix, tallies.tcp_faults(listener))
                .map(|f| Some(Arc::new(f))),
        };
        Some(Service::Tcp {
            cluster: cluster?,
            tls: tls?,
            fault: fault?,
        })
    }

    /// Checks that a listener's address takes no connections meant for an
    /// earlier listener or for the admin endpoint.
    fn check_overlap(
        &mut self,
        text: &Spanned<String>,
        key: &str,
        address: SocketAddr,
        admin: Option<AdminSettings>,
        bound: &[(SocketAddr, String, usize)],
    ) -> Option<()> {
        let reason = if let Some((other, label, line)) = bound
            .iter()
            .find(|(other, _, _)| address::overlaps(address, *other))
        {
            if *other == address {
                format!("address {address} is already used by listener {label} (line {line})")
            } else {
                format!("address {address} overlaps listener {label} on {other} (line {line})")
            }
        } else if let Some(admin) = admin.filter(|a| address::overlaps(address, a.address)) {
            format!(
                "address {address} overlaps the admin address {}",
                admin.address
            )
        } else {
            return Some(());
        };
        self.report(Some(text.span()), key, reason);
        None
    }

    /// Checks the name of a listener or cluster: present, well-formed and
    /// not used by an earlier one of its kind.
    fn name<'f, T>(
        &mut self,
        table: &Spanned<T>,
        name: Option<&'f Spanned<String>>,
        prefix: &str,
        kind: &str,
        first_use: &mut HashMap<&'f str, Range<usize>>,
    ) -> Option<Arc<str>> {
        let Some(name) = name else {
            self.missing(table, prefix, "name", "e.g. name = \"app\"");
            return None;
        };
        let key = format!("{prefix}.name");
        let text = name.get_ref().as_str();
        if let Some(first) = first_use.get(text) {
            let line = self.source.line(first);
            self.report(
                Some(name.span()),
                key,
                format!("duplicate {kind} name `{text}`; first defined on line {line}"),
            );
            return None;
        }
        first_use.insert(text, name.span());
        self.check(name, &key, |t| valid_name(t))
    }

    /// Runs `parse` on a value, reporting its error at the value's place.
    fn check<T, U>(
        &mut self,
        value: &Spanned<T>,
        key: impl Into<String>,
        parse: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        match parse(value.get_ref()) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                self.report(Some(value.span()), key, reason);
                None
            }
        }
    }

    /// Reports a required key missing from a table, at the table's header.
    fn missing<T>(&mut self, table: &Spanned<T>, prefix: &str, key: &str, hint: &str) {
        self.report(
            Some(table.span()),
            format!("{prefix}.{key}"),
            format!("missing required key `{key}`; {hint}"),
        );
    }

    fn report(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.errors
            .push(self.source.error(span, Some(key.into()), reason.into()));
    }
}

fn valid_name(name: &str) -> Result<Arc<str>, String> {
    if name.is_empty() {
        return Err("name is empty".to_owned());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if !name.chars().all(allowed) {
        return Err(format!(
            "invalid name {name:?}: use only letters, digits, `_`, `.` and `-`"
        ));
    }
    Ok(Arc::from(name))
}

fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let address = address::parse(text)?;
    if address.port() == 0 {
        // Each worker binds the listener itself; port 0 would hand every
        // worker a different port.
        return Err(format!(
            "invalid address {text:?}: a listener needs a fixed port, not 0"
        ));
    }
    Ok(address)
}

/// An upstream endpoint: an `ip:port` that can be connected to.
pub(crate) fn endpoint(text: &str) -> Result<SocketAddr, String> {
    let address = address::parse(text)?;
    if address.port() == 0 {
        return Err(format!(
            "invalid address {text:?}: port 0 cannot be connected to"
        ));
    }
    Ok(address)
}

/// `hash_on`: `client_address`, `header:NAME` or `cookie:NAME`.
fn hash_on(text: &str) -> Result<HashOn, String> {
    let token = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    match text.split_once(':') {
        None if text == "client_address" => Ok(HashOn::ClientAddress),
        Some(("header", name)) if token(name) => {
            Ok(HashOn::Header(name.to_ascii_lowercase().into()))
        }
        Some(("cookie", name)) if token(name) => Ok(HashOn::Cookie(name.into())),
        _ => Err(format!(
            "invalid hash_on {text:?} (accepted: \"client_address\", \"header:NAME\", \"cookie:NAME\" with NAME a header or cookie name)"
        )),
    }
}

fn protocol(text: &str) -> Result<Protocol, String> {
    match text {
        "tcp" => Ok(Protocol::Tcp),
        "http" => Ok(Protocol::Http),
        other => Err(format!("unknown protocol {other:?} (accepted: tcp, http)")),
    }
}

fn cluster_id(name: &str, clusters: &Clusters<'_>) -> Result<ClusterId, String> {
    let Some(&index) = clusters.index.get(name) else {
        return Err(if clusters.names.is_empty() {
            format!("no cluster named `{name}` (no [[clusters]] are defined)")
        } else {
            format!(
                "no cluster named `{name}` (clusters: {})",
                clusters.names.join(", ")
            )
        });
    };
    u32::try_from(index).map(ClusterId).map_err(|_| {
        format!(
            "cluster `{name}` is past the limit of {} clusters",
            u32::MAX
        )
    })
}
