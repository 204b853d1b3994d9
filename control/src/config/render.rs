//! A checked [`Config`] shown back to people: the `ringway check` summary
//! and the effective configuration as TOML.

use std::fmt::Write as _;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use dataplane::proto::h1::path::EncodedSlashes;
use dataplane::table::authz::{Authorization, PathCondition, SlashPolicy};
use dataplane::table::fault::{RouteFault, Shares, TcpFault};
use dataplane::table::lb::{Balance, Policy};
use dataplane::table::route::{
    ClusterTls, HeaderEdits, HeaderMatch, HeaderTest, HostMatch, HttpService, ListenerTls,
    PathMatch, Route, RouteAction,
};
use dataplane::table::{Listener, Service, Table};

use super::{duration, Config};

impl Config {
    /// A multi-line summary for `ringway check`: workers and their cores, the
    /// control core, the admin address, and each listener and cluster.
    pub fn summary(&self) -> String {
        let runtime = &self.runtime;
        let mut out = String::new();
        // Writing to a String cannot fail, so the results are ignored.
        let _ = writeln!(
            out,
            "workers: {} (cores {})",
            runtime.worker_cores.len(),
            core_list(&runtime.worker_cores)
        );
        let _ = match self.control_core {
            Some(core) => writeln!(out, "control core: {core}"),
            None => writeln!(out, "control core: not pinned"),
        };
        let _ = writeln!(out, "admin: {}", self.admin.address);
        let _ = writeln!(
            out,
            "buffers: {} x {} bytes per worker",
            runtime.buffer_count, runtime.buffer_size
        );
        let _ = writeln!(
            out,
            "drain timeout: {}",
            duration::format(runtime.drain_timeout)
        );
        let _ = match runtime.max_connections {
            Some(n) => writeln!(out, "max connections: {n}"),
            None => writeln!(out, "max connections: from the open-file limit at start-up"),
        };
        let _ = writeln!(out, "io backend: {}", runtime.io_backend);

        let table = &self.table;
        let _ = writeln!(out, "listeners: {}", table.listeners.len());
        for listener in &table.listeners {
            let _ = writeln!(
                out,
                "  {} {} {} -> {} (idle timeout {})",
                listener.name,
                listener.address,
                protocol_name(listener.protocol()),
                short_target(table, listener),
                duration::format(listener.idle_timeout)
            );
            if let Service::Tcp { tls: Some(tls), .. } = &listener.service {
                let _ = writeln!(out, "    tls: {}", describe_tls(tls));
            }
            if let Service::Tcp { fault: Some(f), .. } = &listener.service {
                let _ = writeln!(
                    out,
                    "    {}",
                    describe_faults(&f.shares, f.delay, None, None)
                );
            }
            if let Service::Http(http) = &listener.service {
                if let Some(tls) = &http.tls {
                    let _ = writeln!(out, "    tls: {}", describe_tls(tls));
                }
                for route in &http.routes {
                    let _ = writeln!(out, "    {}", describe_route(table, route));
                }
            }
            if let Some(authz) = &listener.authorization {
                describe_authz(&mut out, listener, authz);
            }
        }
        let _ = writeln!(out, "clusters: {}", table.clusters.len());
        for cluster in &table.clusters {
            let endpoints: Vec<String> = cluster
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| match cluster.balance.weights().get(i) {
                    Some(w) => format!("{e} weight {w}"),
                    None => e.to_string(),
                })
                .collect();
            let _ = writeln!(
                out,
                "  {} [{}] ({}, connect timeout {}, pool {} idle for {}{})",
                cluster.name,
                endpoints.join(", "),
                describe_balance(&cluster.balance),
                duration::format(cluster.connect_timeout),
                cluster.pool.max_idle,
                duration::format(cluster.pool.idle_timeout),
                describe_limits(cluster.breaker.as_ref())
            );
        }
        out
    }

    /// The effective configuration as TOML, every default filled in; parsing
    /// it gives back this same configuration.
    pub fn to_toml(&self) -> String {
        let table = &self.table;
        let file = OutConfig {
            runtime: OutRuntime {
                worker_cores: &self.runtime.worker_cores,
                control_core: self.control_core,
                drain_timeout: duration::format(self.runtime.drain_timeout),
                buffer_size: self.runtime.buffer_size,
                buffer_count: self.runtime.buffer_count,
                max_connections: self.runtime.max_connections,
                access_log_buffer: self.runtime.access_log_buffer,
                io_backend: self.runtime.io_backend.name(),
            },
            admin: OutAdmin {
                address: self.admin.address.to_string(),
                first_byte_timeout: duration::format(self.admin.first_byte_timeout),
                head_timeout: duration::format(self.admin.head_timeout),
            },
            metrics: OutMetrics {
                endpoint_expiry: duration::format(self.metrics.endpoint_expiry),
            },
            tracing: self.tracing.as_ref().map(|t| OutTracing {
                collector: t.otlp.endpoint.to_string(),
                sample: t.sample,
                service_name: &t.otlp.service_name,
                instance_id: t.otlp.instance_id.as_deref(),
                batch_delay: duration::format(t.otlp.batch_delay),
                max_held_spans: t.otlp.max_held_spans,
            }),
            listeners: table
                .listeners
                .iter()
                .map(|l| OutListener {
                    name: &l.name,
                    address: l.address.to_string(),
                    protocol: protocol_name(l.protocol()),
                    cluster: match l.service {
                        Service::Tcp { cluster, .. } => Some(&table.cluster(cluster).name),
                        Service::Http(_) => None,
                    },
                    idle_timeout: duration::format(l.idle_timeout),
                    http: match &l.service {
                        Service::Tcp { .. } => None,
                        Service::Http(http) => Some(OutHttp::new(table, http)),
                    },
                    tls: match &l.service {
                        Service::Tcp { tls, .. } => tls.as_deref().map(OutTls::new),
                        Service::Http(_) => None,
                    },
                    authorization: l
                        .authorization
                        .as_deref()
                        .map(|a| OutAuthz::new(a, &l.service)),
                    fault: match &l.service {
                        Service::Tcp { fault, .. } => fault.as_deref().map(OutFault::tcp),
                        Service::Http(_) => None,
                    },
                    connection_rate_limit: l.connection_rate_limit.as_ref().map(|c| {
                        OutConnectionRateLimit {
                            connections_per_second: c.limit.settings.per_second,
                            burst: c.limit.settings.burst,
                        }
                    }),
                })
                .collect(),
            clusters: table
                .clusters
                .iter()
                .map(|c| OutCluster {
                    name: &c.name,
                    endpoints: c
                        .endpoints
                        .iter()
                        .enumerate()
                        .map(|(i, e)| match c.balance.weights().get(i) {
                            Some(&weight) => OutEndpoint::Weighted {
                                address: e.to_string(),
                                weight,
                            },
                            None => OutEndpoint::Address(e.to_string()),
                        })
                        .collect(),
                    lb: c.balance.policy.name(),
                    hash_on: c.balance.policy.hash_on().map(ToString::to_string),
                    ewma_decay: match &c.balance.policy {
                        Policy::PeakEwma(e) => Some(duration::format(e.decay)),
                        _ => None,
                    },
                    ewma_seed_rtt: match &c.balance.policy {
                        Policy::PeakEwma(e) => Some(duration::format(e.seed)),
                        _ => None,
                    },
                    connect_timeout: duration::format(c.connect_timeout),
                    pool_max_idle: c.pool.max_idle,
                    pool_idle_timeout: duration::format(c.pool.idle_timeout),
                    max_connections: c.breaker.as_ref().and_then(|b| b.limits.max_connections),
                    max_pending_requests: c
                        .breaker
                        .as_ref()
                        .and_then(|b| b.limits.max_pending_requests),
                    max_requests: c.breaker.as_ref().and_then(|b| b.limits.max_requests),
                    max_retries: c.breaker.as_ref().and_then(|b| b.limits.max_retries),
                    consecutive_gateway_failures: c.outlier.consecutive_failures,
                    base_ejection_time: duration::format(c.outlier.base_ejection),
                    max_ejection_time: duration::format(c.outlier.max_ejection),
                    max_ejection_percent: c.outlier.max_ejection_percent,
                    health_check: c.checks.as_ref().map(|c| OutHealthCheck::new(&c.settings)),
                    retry: OutRetry::new(&c.retry),
                    retry_budget: OutBudget {
                        percent: c.budget.settings.percent,
                        min_per_second: c.budget.settings.min_per_second,
                    },
                    tls: c.tls.as_ref().map(OutClusterTls::new),
                })
                .collect(),
        };
        let body = toml::to_string(&file).expect(
            "the effective config holds only strings, booleans and integers below i64::MAX, \
             which TOML can always represent",
        );
        format!("# ringway effective configuration (defaults filled in)\n\n{body}")
    }
}

/// Where a listener sends its traffic, in words: `cluster `app`` or
/// `3 routes`.
pub fn describe_target(table: &Table, listener: &Listener) -> String {
    match &listener.service {
        Service::Tcp { cluster, .. } => format!("cluster `{}`", table.cluster(*cluster).name),
        Service::Http(http) => format!("{} routes", http.routes.len()),
    }
}

/// Where a listener sends its traffic, tersely: the cluster's name, or
/// `N routes`.
fn short_target(table: &Table, listener: &Listener) -> String {
    match &listener.service {
        Service::Tcp { cluster, .. } => table.cluster(*cluster).name.to_string(),
        Service::Http(http) => format!("{} routes", http.routes.len()),
    }
}

/// One route in words, for the summary:
/// `route api: host api.example.com, path prefix /api/ -> split v1 90, v2 10`.
fn describe_route(table: &Table, route: &Route) -> String {
    let m = &route.matcher;
    let mut conditions = Vec::new();
    match &m.host {
        Some(HostMatch::Exact(host)) => conditions.push(format!("host {host}")),
        Some(HostMatch::Suffix(suffix)) => conditions.push(format!("host *{suffix}")),
        None => {}
    }
    match &m.path {
        Some(PathMatch::Exact(path)) => conditions.push(format!("path {path}")),
        Some(PathMatch::Prefix(prefix)) => conditions.push(format!("path prefix {prefix}")),
        None => {}
    }
    if !m.methods.is_empty() {
        let methods: Vec<_> = m
            .methods
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        conditions.push(format!("methods {}", methods.join(" ")));
    }
    for h in &m.headers {
        conditions.push(describe_header(h));
    }
    if let Some(id) = &m.peer_identity {
        conditions.push(format!("peer identity {id}"));
    }
    let conditions = if conditions.is_empty() {
        "any request".to_owned()
    } else {
        conditions.join(", ")
    };
    let action = match &route.action {
        RouteAction::Forward(f) => {
            let mut text = match f.targets.as_slice() {
                [one] if f.total_weight == one.weight => {
                    format!("cluster {}", table.cluster(one.cluster).name)
                }
                targets => {
                    let parts: Vec<String> = targets
                        .iter()
                        .map(|t| format!("{} {}", table.cluster(t.cluster).name, t.weight))
                        .collect();
                    format!("split {}", parts.join(", "))
                }
            };
            if let Some(rewrite) = &f.rewrite_prefix {
                let _ = write!(text, " (prefix rewritten to {rewrite})");
            }
            if let Some(plan) = &f.rollout {
                let name = |i: usize| &table.cluster(f.targets[i].cluster).name;
                let steps: Vec<String> = plan.steps.iter().map(u32::to_string).collect();
                let _ = write!(
                    text,
                    " (rollout of {} over {}: steps {} every {})",
                    name(plan.canary),
                    name(plan.stable),
                    steps.join(" "),
                    duration::format(plan.interval)
                );
            }
            text
        }
        RouteAction::Redirect(r) => {
            let mut parts = Vec::new();
            if let Some(scheme) = &r.scheme {
                parts.push(format!("scheme {scheme}"));
            }
            if let Some(host) = &r.host {
                parts.push(format!("host {host}"));
            }
            if let Some(path) = &r.path {
                parts.push(format!("path {path}"));
            }
            format!("redirect {} ({})", r.status, parts.join(", "))
        }
        RouteAction::Direct(d) => format!("direct {} ({} bytes)", d.status, d.body.len()),
    };
    let mut line = format!("route {}: {conditions} -> {action}", route.name);
    for (what, edits) in [
        ("request", &route.request_headers),
        ("response", &route.response_headers),
    ] {
        if !edits.is_empty() {
            let _ = write!(
                line,
                "; {what} headers: {} removed, {} set, {} added",
                edits.remove.len(),
                edits.set.len(),
                edits.add.len()
            );
        }
    }
    if let Some(f) = &route.fault {
        let faults = describe_faults(
            &f.shares,
            f.delay,
            Some(f.abort_status),
            f.header.as_deref(),
        );
        let _ = write!(line, "; {faults}");
    }
    line
}

/// A fault injection in words: `injects faults: abort 503 to 5% delay
/// 200ms to 10%`. Said in the summary: a fault left in a production file
/// is the kind of thing `ringway check` should make plain.
fn describe_faults(
    shares: &Shares,
    delay: Option<std::time::Duration>,
    status: Option<u16>,
    header: Option<&str>,
) -> String {
    let mut text = "injects faults:".to_owned();
    if shares.abort_percent > 0.0 {
        let _ = write!(text, " abort");
        if let Some(status) = status {
            let _ = write!(text, " {status}");
        }
        let _ = write!(text, " to {}%", shares.abort_percent);
    }
    if let Some(delay) = delay.filter(|_| shares.delay_percent > 0.0) {
        let _ = write!(
            text,
            " delay {} to {}%",
            duration::format(delay),
            shares.delay_percent
        );
    }
    if let Some(header) = header {
        let _ = write!(text, " (requests with {header} only)");
    }
    text
}

/// A header condition in words.
fn describe_header(h: &HeaderMatch) -> String {
    match &h.test {
        HeaderTest::Present => format!("header {} present", h.name),
        HeaderTest::Exact(v) => format!("header {} = {}", h.name, String::from_utf8_lossy(v)),
        HeaderTest::Prefix(v) => {
            format!("header {} prefix {}", h.name, String::from_utf8_lossy(v))
        }
    }
}

/// The name of a protocol as written in the file.
fn protocol_name(protocol: dataplane::table::Protocol) -> &'static str {
    match protocol {
        dataplane::table::Protocol::Tcp => "tcp",
        dataplane::table::Protocol::Http => "http",
    }
}

/// Core ids for messages, runs of three or more shortened: `0-15, 32`.
pub(crate) fn core_list(cores: &[usize]) -> String {
    let mut sorted = cores.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut rest = sorted.as_slice();
    while let Some(&first) = rest.first() {
        let run = rest
            .iter()
            .enumerate()
            .take_while(|&(i, &core)| core == first + i)
            .count();
        let last = first + run - 1;
        match run {
            1 => parts.push(first.to_string()),
            2 => parts.push(format!("{first}, {last}")),
            _ => parts.push(format!("{first}-{last}")),
        }
        rest = &rest[run..];
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

#[derive(Serialize)]
struct OutConfig<'a> {
    runtime: OutRuntime<'a>,
    admin: OutAdmin,
    metrics: OutMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracing: Option<OutTracing<'a>>,
    // An empty list is left out: `listeners = []` may not follow a table,
    // and a missing list reads back as empty anyway.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    listeners: Vec<OutListener<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    clusters: Vec<OutCluster<'a>>,
}

/// `[metrics]`.
#[derive(Serialize)]
struct OutMetrics {
    endpoint_expiry: String,
}

/// `[tracing]`, every default filled in.
#[derive(Serialize)]
struct OutTracing<'a> {
    collector: String,
    sample: f64,
    service_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance_id: Option<&'a str>,
    batch_delay: String,
    max_held_spans: usize,
}

#[derive(Serialize)]
struct OutRuntime<'a> {
    worker_cores: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    control_core: Option<usize>,
    drain_timeout: String,
    buffer_size: u32,
    buffer_count: u16,
    // Left out when derived: it is a figure of the running process, not of
    // the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<usize>,
    access_log_buffer: usize,
    io_backend: &'static str,
}

#[derive(Serialize)]
struct OutAdmin {
    address: String,
    first_byte_timeout: String,
    head_timeout: String,
}

#[derive(Serialize)]
struct OutListener<'a> {
    name: &'a str,
    address: String,
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    idle_timeout: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    http: Option<OutHttp<'a>>,
    /// A TCP listener's `tls` (an HTTP listener's is among its own keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<OutTls<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<OutAuthz<'a>>,
    /// A TCP listener's `fault`.
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<OutFault<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_rate_limit: Option<OutConnectionRateLimit>,
}

/// A listener's `connection_rate_limit`, its burst filled in.
#[derive(Serialize)]
struct OutConnectionRateLimit {
    connections_per_second: u32,
    burst: u32,
}

/// A route's `rate_limit`, every default filled in (`max_keys` only for a
/// keyed one, where it means something).
#[derive(Serialize)]
struct OutRateLimit {
    requests_per_second: u32,
    burst: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_keys: Option<u32>,
}

impl OutRateLimit {
    fn new(limit: &dataplane::table::rate::RateLimit) -> Self {
        let s = &limit.settings;
        let key = s.key.config_name();
        Self {
            requests_per_second: s.per_second,
            burst: s.burst,
            max_keys: key.is_some().then_some(s.max_keys),
            key,
        }
    }
}

/// A listener's `authorization`, every default filled in (a rule's
/// `unauthenticated` included).
#[derive(Serialize)]
struct OutAuthz<'a> {
    default: &'static str,
    merge_slashes: bool,
    encoded_slashes: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<OutAuthzRule<'a>>,
}

#[derive(Serialize)]
struct OutAuthzRule<'a> {
    name: &'a str,
    action: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    from: &'a [Box<str>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    from_trust_domains: &'a [Box<str>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    from_prefixes: &'a [Box<str>],
    unauthenticated: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    methods: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<OutHeaderMatch<'a>>,
}

impl<'a> OutAuthz<'a> {
    fn new(authz: &'a Authorization, service: &'a Service) -> Self {
        let route_names: &[Route] = match service {
            Service::Http(http) => &http.routes,
            Service::Tcp { .. } => &[],
        };
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Self {
            default: authz.default.name(),
            merge_slashes: authz.path_rules.merge_slashes,
            encoded_slashes: match authz.path_rules.encoded_slashes {
                SlashPolicy::Reject => "reject",
                SlashPolicy::Keep => "keep",
            },
            rules: authz
                .rules
                .iter()
                .map(|r| OutAuthzRule {
                    name: &r.name,
                    action: r.action.name(),
                    from: &r.source.ids,
                    from_trust_domains: &r.source.trust_domains,
                    from_prefixes: &r.source.prefixes,
                    unauthenticated: r.source.unauthenticated,
                    routes: r
                        .routes
                        .iter()
                        .filter_map(|&i| route_names.get(i as usize).map(|r| &*r.name))
                        .collect(),
                    paths: r.paths.iter().map(path_text).collect(),
                    methods: r.methods.iter().map(|m| text(m)).collect(),
                    headers: r.headers.iter().map(OutHeaderMatch::new).collect(),
                })
                .collect(),
        }
    }
}

/// A rule path as written: a prefix ends in `*`.
fn path_text(p: &PathCondition) -> String {
    match p {
        PathCondition::Exact(p) => p.to_string(),
        PathCondition::Prefix(p) => format!("{p}*"),
    }
}

/// What `ringway check` says of a listener's authorization: the default,
/// then one line per rule.
fn describe_authz(out: &mut String, listener: &Listener, authz: &Authorization) {
    let _ = writeln!(
        out,
        "    authorization: default {}, {} rules (paths: slashes {}, encoded slashes {})",
        authz.default.name(),
        authz.rules.len(),
        if authz.path_rules.merge_slashes {
            "merged"
        } else {
            "kept"
        },
        match authz.path_rules.encoded_slashes {
            SlashPolicy::Reject => "refused",
            SlashPolicy::Keep => "kept",
        }
    );
    let routes: &[Route] = match &listener.service {
        Service::Http(http) => &http.routes,
        Service::Tcp { .. } => &[],
    };
    for rule in authz.rules.iter() {
        let mut conditions = Vec::new();
        let source = &rule.source;
        for (what, list) in [
            ("from", &source.ids),
            ("from trust domains", &source.trust_domains),
            ("from prefixes", &source.prefixes),
        ] {
            if !list.is_empty() {
                conditions.push(format!("{what} {}", list.join(" ")));
            }
        }
        if source.unauthenticated {
            conditions.push(if source.names_identities() {
                "or without identity".to_owned()
            } else {
                "anyone".to_owned()
            });
        } else if !source.names_identities() {
            conditions.push("any identity".to_owned());
        }
        if !rule.routes.is_empty() {
            let names: Vec<&str> = rule
                .routes
                .iter()
                .filter_map(|&i| routes.get(i as usize).map(|r| &*r.name))
                .collect();
            conditions.push(format!("routes {}", names.join(" ")));
        }
        if !rule.paths.is_empty() {
            let paths: Vec<String> = rule.paths.iter().map(path_text).collect();
            conditions.push(format!("paths {}", paths.join(" ")));
        }
        if !rule.methods.is_empty() {
            let methods: Vec<_> = rule
                .methods
                .iter()
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect();
            conditions.push(format!("methods {}", methods.join(" ")));
        }
        for h in rule.headers.iter() {
            conditions.push(describe_header(h));
        }
        let _ = writeln!(
            out,
            "      rule {}: {} -> {}",
            rule.name,
            conditions.join(", "),
            rule.action.name()
        );
    }
}

/// An HTTP listener's own keys.
#[derive(Serialize)]
struct OutHttp<'a> {
    header_timeout: String,
    request_timeout: String,
    send_timeout: String,
    max_request_line: usize,
    max_header_bytes: usize,
    max_headers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body: Option<u64>,
    trust_forwarded: bool,
    merge_slashes: bool,
    encoded_slashes: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<OutTls<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_log: Option<OutAccessLog<'a>>,
    routes: Vec<OutRoute<'a>>,
}

/// A listener's `access_log`.
#[derive(Serialize)]
struct OutAccessLog<'a> {
    path: &'a str,
    format: &'static str,
    sample: f64,
    errors_only: bool,
}

/// A listener's `tls`: the files, never their contents.
#[derive(Serialize)]
struct OutTls<'a> {
    cert: &'a str,
    key: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sni: Vec<OutSniCert<'a>>,
    versions: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ca: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_client_cert: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_domains: Option<&'a [Box<str>]>,
}

/// One entry of a listener's `tls.sni`.
#[derive(Serialize)]
struct OutSniCert<'a> {
    names: &'a [Box<str>],
    cert: &'a str,
    key: &'a str,
}

impl<'a> OutTls<'a> {
    fn new(tls: &'a ListenerTls) -> Self {
        let (default, sni) = tls
            .certs
            .split_first()
            .expect("a listener has its default certificate");
        Self {
            cert: &default.cert,
            key: &default.key,
            sni: sni
                .iter()
                .map(|c| OutSniCert {
                    names: &c.names,
                    cert: &c.cert,
                    key: &c.key,
                })
                .collect(),
            versions: if tls.tls12 { &["1.2", "1.3"] } else { &["1.3"] },
            client_ca: tls.clients.as_ref().map(|c| &*c.ca),
            require_client_cert: tls.clients.as_ref().map(|c| c.required),
            trust_domains: tls
                .clients
                .as_ref()
                .filter(|c| !c.trust_domains.is_empty())
                .map(|c| &*c.trust_domains),
        }
    }
}

/// A cluster's `tls`: the files and checks, never the material.
#[derive(Serialize)]
struct OutClusterTls<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<String>,
    verify: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    identities: &'a [Box<str>],
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
}

impl<'a> OutClusterTls<'a> {
    fn new(tls: &'a ClusterTls) -> Self {
        Self {
            ca: tls.ca.as_deref(),
            sni: tls.sni.as_ref().map(|n| n.to_str().into_owned()),
            verify: tls.verify,
            identities: &tls.identities,
            cert: tls.cert.as_ref().map(|c| &*c.cert),
            key: tls.cert.as_ref().map(|c| &*c.key),
        }
    }
}

/// What `ringway check` says of a listener's TLS.
fn describe_tls(tls: &ListenerTls) -> String {
    let mut text = String::from(if tls.tls12 {
        "TLS 1.2 and 1.3"
    } else {
        "TLS 1.3"
    });
    for (i, cert) in tls.certs.iter().enumerate() {
        if i == 0 {
            let _ = write!(text, ", certificate {}, key {}", cert.cert, cert.key);
        } else {
            let _ = write!(
                text,
                "; for {}: certificate {}, key {}",
                cert.names.join(", "),
                cert.cert,
                cert.key
            );
        }
    }
    if let Some(clients) = &tls.clients {
        let _ = write!(
            text,
            "; client certificates {} ({})",
            if clients.required {
                "required"
            } else {
                "optional"
            },
            clients.ca
        );
        if !clients.trust_domains.is_empty() {
            let _ = write!(text, " from {}", clients.trust_domains.join(", "));
        }
    }
    text
}

impl<'a> OutHttp<'a> {
    fn new(table: &'a Table, http: &'a HttpService) -> Self {
        let t = &http.timeouts;
        let l = &http.limits;
        Self {
            header_timeout: duration::format(t.header),
            request_timeout: duration::format(t.request),
            send_timeout: duration::format(t.send),
            max_request_line: l.max_request_line,
            max_header_bytes: l.max_header_bytes,
            max_headers: l.max_headers,
            max_body: l.max_body,
            trust_forwarded: http.trust_forwarded,
            merge_slashes: http.path_rules.merge_slashes,
            encoded_slashes: match http.path_rules.encoded_slashes {
                EncodedSlashes::Reject => "reject",
                EncodedSlashes::Pass => "pass",
            },
            tls: http.tls.as_ref().map(OutTls::new),
            access_log: http.access_log.as_ref().map(|a| OutAccessLog {
                path: &a.output.path,
                format: a.output.format.name(),
                sample: a.ratio,
                errors_only: a.errors_only,
            }),
            routes: http
                .routes
                .iter()
                .map(|r| OutRoute::new(table, r))
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct OutRoute<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<OutHeaderMatch<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_identity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<Vec<OutSplit<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<OutRedirect<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct: Option<OutDirect<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rewrite_prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_headers: Option<OutEdits<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_headers: Option<OutEdits<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<OutRetry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<OutRateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<OutFault<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror: Option<OutMirror<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<OutRollout<'a>>,
}

/// A route's or a TCP listener's `fault`: the keys it was given (an
/// abort's status only with an abort share, a delay only with its share).
#[derive(Serialize)]
struct OutFault<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abort_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abort_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<&'a str>,
}

impl<'a> OutFault<'a> {
    fn route(f: &'a RouteFault) -> Self {
        let aborts = f.shares.abort_percent > 0.0;
        Self {
            abort_status: aborts.then_some(f.abort_status),
            header: f.header.as_deref(),
            ..Self::shares(&f.shares, f.delay)
        }
    }

    fn tcp(f: &TcpFault) -> Self {
        Self::shares(&f.shares, f.delay)
    }

    fn shares(shares: &Shares, delay: Option<std::time::Duration>) -> Self {
        let aborts = shares.abort_percent > 0.0;
        Self {
            delay: delay.map(duration::format),
            delay_percent: delay.map(|_| shares.delay_percent),
            abort_status: None,
            abort_percent: aborts.then_some(shares.abort_percent),
            header: None,
        }
    }
}

/// A route's `mirror`, every key written (defaults included).
#[derive(Serialize)]
struct OutMirror<'a> {
    cluster: &'a str,
    percent: f64,
    host_suffix: bool,
    max_body: u64,
    max_in_flight: u32,
}

impl<'a> OutMirror<'a> {
    fn new(table: &'a Table, m: &dataplane::table::mirror::Mirror) -> Self {
        Self {
            cluster: &table.cluster(m.cluster).name,
            percent: f64::from(m.ppm) / 10_000.0,
            host_suffix: m.host_suffix,
            max_body: m.max_body,
            max_in_flight: m.max_in_flight,
        }
    }
}

/// A route's `rollout`, every default filled in.
#[derive(Serialize)]
struct OutRollout<'a> {
    canary: &'a str,
    stable: &'a str,
    steps: &'a [u32],
    interval: String,
    max_error_rate_delta: f64,
    max_p99_ratio: f64,
    min_requests: u64,
    min_p99: String,
}

impl<'a> OutRollout<'a> {
    fn new(
        table: &'a Table,
        forward: &'a dataplane::table::route::Forward,
        plan: &'a dataplane::table::rollout::Rollout,
    ) -> Self {
        let name = |i: usize| &*table.cluster(forward.targets[i].cluster).name;
        Self {
            canary: name(plan.canary),
            stable: name(plan.stable),
            steps: &plan.steps,
            interval: duration::format(plan.interval),
            max_error_rate_delta: plan.max_error_rate_delta,
            max_p99_ratio: plan.max_p99_ratio,
            min_requests: plan.min_requests,
            min_p99: duration::format(plan.min_p99),
        }
    }
}

impl<'a> OutRoute<'a> {
    fn new(table: &'a Table, route: &'a Route) -> Self {
        let m = &route.matcher;
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let mut out = OutRoute {
            name: &route.name,
            host: m.host.as_ref().map(|h| match h {
                HostMatch::Exact(host) => host.to_string(),
                HostMatch::Suffix(suffix) => format!("*{suffix}"),
            }),
            path: match &m.path {
                Some(PathMatch::Exact(p)) => Some(p),
                _ => None,
            },
            path_prefix: match &m.path {
                Some(PathMatch::Prefix(p)) => Some(p),
                _ => None,
            },
            methods: (!m.methods.is_empty()).then(|| m.methods.iter().map(|b| text(b)).collect()),
            headers: (!m.headers.is_empty())
                .then(|| m.headers.iter().map(OutHeaderMatch::new).collect()),
            peer_identity: m.peer_identity.as_deref(),
            cluster: None,
            split: None,
            redirect: None,
            direct: None,
            rewrite_prefix: None,
            request_headers: OutEdits::new(&route.request_headers),
            response_headers: OutEdits::new(&route.response_headers),
            retry: None,
            request_timeout: route.limits.request_timeout.map(duration::format),
            idle_timeout: route.limits.idle_timeout.map(duration::format),
            max_body: route.limits.max_body,
            fault: route.fault.as_deref().map(OutFault::route),
            mirror: None,
            rate_limit: route.rate_limit.as_ref().map(OutRateLimit::new),
            rollout: None,
        };
        match &route.action {
            RouteAction::Forward(f) => {
                match f.targets.as_slice() {
                    // A plain `cluster` builds one target of weight 1; a
                    // one-entry split of another weight is shown as written.
                    [one] if one.weight == 1 => {
                        out.cluster = Some(&table.cluster(one.cluster).name)
                    }
                    targets => {
                        out.split = Some(
                            targets
                                .iter()
                                .map(|t| OutSplit {
                                    cluster: &table.cluster(t.cluster).name,
                                    weight: t.weight,
                                })
                                .collect(),
                        )
                    }
                }
                out.rewrite_prefix = f.rewrite_prefix.as_deref();
                out.retry = f.retry.as_deref().map(OutRetry::new);
                out.mirror = f.mirror.as_ref().map(|m| OutMirror::new(table, m));
                out.rollout = f.rollout.as_deref().map(|p| OutRollout::new(table, f, p));
            }
            RouteAction::Redirect(r) => {
                out.redirect = Some(OutRedirect {
                    status: r.status,
                    scheme: r.scheme.as_deref(),
                    host: r.host.as_deref(),
                    path: r.path.as_deref(),
                })
            }
            RouteAction::Direct(d) => {
                out.direct = Some(OutDirect {
                    status: d.status,
                    body: String::from_utf8_lossy(&d.body).into_owned(),
                    content_type: d.content_type.as_deref(),
                })
            }
        }
        out
    }
}

#[derive(Serialize)]
struct OutHeaderMatch<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    present: Option<bool>,
}

impl<'a> OutHeaderMatch<'a> {
    fn new(h: &'a HeaderMatch) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let (exact, prefix, present) = match &h.test {
            HeaderTest::Exact(v) => (Some(text(v)), None, None),
            HeaderTest::Prefix(v) => (None, Some(text(v)), None),
            HeaderTest::Present => (None, None, Some(true)),
        };
        OutHeaderMatch {
            name: &h.name,
            exact,
            prefix,
            present,
        }
    }
}

#[derive(Serialize)]
struct OutSplit<'a> {
    cluster: &'a str,
    weight: u32,
}

#[derive(Serialize)]
struct OutRedirect<'a> {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
}

#[derive(Serialize)]
struct OutDirect<'a> {
    status: u16,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
}

#[derive(Serialize)]
struct OutEdits<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    remove: &'a [Box<str>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    set: Fields<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    add: Fields<'a>,
}

impl<'a> OutEdits<'a> {
    fn new(edits: &'a HeaderEdits) -> Option<Self> {
        (!edits.is_empty()).then_some(OutEdits {
            remove: &edits.remove,
            set: Fields(&edits.set),
            add: Fields(&edits.add),
        })
    }
}

/// Header fields as a TOML table, in their order.
struct Fields<'a>(&'a [(Box<str>, Box<str>)]);

impl std::ops::Deref for Fields<'_> {
    type Target = [(Box<str>, Box<str>)];

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct OutCluster<'a> {
    name: &'a str,
    endpoints: Vec<OutEndpoint>,
    lb: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ewma_decay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ewma_seed_rtt: Option<String>,
    connect_timeout: String,
    pool_max_idle: usize,
    pool_idle_timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_pending_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    consecutive_gateway_failures: u32,
    base_ejection_time: String,
    max_ejection_time: String,
    max_ejection_percent: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_check: Option<OutHealthCheck>,
    retry: OutRetry,
    retry_budget: OutBudget,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<OutClusterTls<'a>>,
}

#[derive(Serialize)]
struct OutRetry {
    retries: u32,
    retry_on: Vec<&'static str>,
    retriable_status_codes: Vec<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_try_timeout: Option<String>,
    retry_non_idempotent: bool,
    retry_buffer: u32,
    backoff_base: String,
    backoff_max: String,
    leave_to_earlier_hop: bool,
}

impl OutRetry {
    fn new(p: &dataplane::table::retry::RetryPolicy) -> Self {
        Self {
            retries: p.retries,
            retry_on: p.on.names().collect(),
            retriable_status_codes: p.statuses.to_vec(),
            per_try_timeout: p.per_try_timeout.map(duration::format),
            retry_non_idempotent: p.non_idempotent,
            retry_buffer: p.buffer,
            backoff_base: duration::format(p.backoff_base),
            backoff_max: duration::format(p.backoff_max),
            leave_to_earlier_hop: p.leave_to_earlier_hop,
        }
    }
}

#[derive(Serialize)]
struct OutBudget {
    percent: u32,
    min_per_second: u32,
}

#[derive(Serialize)]
struct OutHealthCheck {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_statuses: Option<Vec<u16>>,
    interval: String,
    timeout: String,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl OutHealthCheck {
    fn new(s: &dataplane::table::checks::CheckSettings) -> Self {
        use dataplane::table::checks::Probe;
        let (kind, path, host, expected_statuses) = match &s.probe {
            Probe::Tcp => ("tcp", None, None, None),
            Probe::Http {
                path,
                host,
                statuses,
            } => (
                "http",
                Some(path.to_string()),
                host.as_ref().map(ToString::to_string),
                // The default (200-399) is left out; a list is written as
                // it was given.
                (statuses[..] != [(200, 399)])
                    .then(|| statuses.iter().map(|&(lo, _)| lo).collect()),
            ),
        };
        Self {
            kind,
            path,
            host,
            expected_statuses,
            interval: duration::format(s.interval),
            timeout: duration::format(s.timeout),
            healthy_threshold: s.healthy_threshold,
            unhealthy_threshold: s.unhealthy_threshold,
        }
    }
}

/// The policy and what tunes it, as `ringway check` prints it.
fn describe_balance(balance: &Balance) -> String {
    match &balance.policy {
        Policy::RingHash(on) | Policy::Maglev(on) => {
            format!("{} on {on}", balance.policy.name())
        }
        Policy::PeakEwma(e) => format!(
            "peak_ewma, decay {}, seed {}",
            duration::format(e.decay),
            duration::format(e.seed)
        ),
        other => other.name().to_owned(),
    }
}

/// The breakers' limits, as `, max_requests 50` and so on.
fn describe_limits(breaker: Option<&dataplane::table::breaker::Breaker>) -> String {
    let Some(limits) = breaker.map(|b| b.limits) else {
        return String::new();
    };
    [
        ("max_connections", limits.max_connections),
        ("max_pending_requests", limits.max_pending_requests),
        ("max_requests", limits.max_requests),
        ("max_retries", limits.max_retries),
    ]
    .iter()
    .filter_map(|(key, max)| max.map(|m| format!(", {key} {m}")))
    .collect()
}

/// An endpoint as the file writes it: the address alone when every
/// endpoint of the cluster weighs 1.
#[derive(Serialize)]
#[serde(untagged)]
enum OutEndpoint {
    Address(String),
    Weighted { address: String, weight: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_shortens_runs() {
        assert_eq!(core_list(&[]), "none");
        assert_eq!(core_list(&[0]), "0");
        assert_eq!(core_list(&[1, 0]), "0, 1");
        assert_eq!(core_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3, 8, 10, 11");
    }
}
