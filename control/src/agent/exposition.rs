//! The exposition of the agent's figures: `/stats` (JSON) and `/metrics`
//! (Prometheus text format 0.0.4), from copies of every worker's counters
//! and the sums of the HTTP tallies of the agent's current table.
//!
//! Every per-worker series (the worker's, its ring's, its buffer pools')
//! is written from its declaration ([`dataplane::counter::vocabulary`]): its
//! names, help and type are never spelled out here.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::endpoints::{self, EndpointFigures};
use super::families;
use super::timings::{self, TimingFigures};
use dataplane::buf::Group;
use dataplane::counter::vocabulary::Declared;
use dataplane::link::WorkerLink;
use dataplane::request::{Fault, Reason};
use dataplane::rt::{IoBackend, RingStats};
use dataplane::stats::WorkerStats;
use dataplane::table::authz::Action;
use dataplane::table::mirror::MirrorOutcome;
use dataplane::table::retry::Cause;
use dataplane::table::route::RouteAction;
use dataplane::table::tally::{AuthzTotals, HttpTotals};
use dataplane::table::{Cluster, Listener, Service, Table};
use serde_json::{json, Map, Value};

/// The agent's own figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentFigures {
    /// The reactor every worker runs on.
    pub io_backend: IoBackend,
    /// Newest published generation.
    pub generation: u64,
    /// Every worker runs the first table.
    pub ready: bool,
    /// Reloads applied.
    pub reloads: u64,
    /// Reloads refused.
    pub reload_failures: u64,
    /// Publications measured.
    pub publish_count: u64,
    /// Publish latency percentiles and total, in microseconds.
    pub publish_p50_us: u64,
    /// 99th percentile.
    pub publish_p99_us: u64,
    /// Largest.
    pub publish_max_us: u64,
    /// Sum of all.
    pub publish_sum_us: u64,
}

/// One worker's counters, copied once so that `/stats` and `/metrics` each
/// show one consistent read per worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerFigures {
    /// Worker index.
    pub index: usize,
    /// Its core.
    pub core: usize,
    /// The generation it runs.
    pub generation: u64,
    /// Its counters.
    pub stats: WorkerStats,
    /// Its ring's counters.
    pub ring: RingStats,
}

impl WorkerFigures {
    /// Reads a worker's counters through its link.
    pub fn read(link: &WorkerLink) -> Self {
        Self {
            index: link.index(),
            core: link.core(),
            generation: link.acked(),
            stats: link.stats(),
            ring: link.ring_stats(),
        }
    }
}

/// The HTTP counters of one table, summed over workers: per listener, per
/// route and per route target, in table order. Read once, so that `/stats`
/// and `/metrics` each show one consistent read per tally.
#[derive(Debug, Clone, Default)]
pub struct HttpFigures {
    /// HTTP listeners, in table order.
    pub listeners: Vec<HttpListenerFigures>,
    /// The retries of each cluster an HTTP route forwards to, in the order
    /// the routes first name them.
    pub retries: Vec<RetryFigures>,
    /// Every endpoint (of any cluster) with something to say of its
    /// health: ejections, or active checks.
    pub endpoints: Vec<EndpointFigures>,
    /// The authorization decisions of every listener (HTTP or TCP) that
    /// has authorization, in table order.
    pub authz: Vec<AuthzFigures>,
    /// Connection durations per listener, and the clusters' timings.
    pub timings: TimingFigures,
    /// The faults each TCP listener with a `fault` injected, indexed as
    /// [`Fault::ALL`], in table order.
    pub tcp_faults: Vec<(Arc<str>, [u64; Fault::ALL.len()])>,
    /// Route and connection rate limits.
    pub rate_limits: super::rate_limits::RateLimitFigures,
}

/// One listener's authorization decisions.
#[derive(Debug, Clone)]
pub struct AuthzFigures {
    /// Listener name.
    pub listener: Arc<str>,
    /// The default's action and decisions.
    pub default: (Action, AuthzTotals),
    /// Each rule's name, action and decisions, in match order.
    pub rules: Vec<(Arc<str>, Action, AuthzTotals)>,
}

impl AuthzFigures {
    fn read(listener: &Listener) -> Option<Self> {
        let authz = listener.authorization.as_deref()?;
        Some(Self {
            listener: Arc::clone(&listener.name),
            default: (authz.default, authz.default_tally.totals()),
            rules: authz
                .rules
                .iter()
                .map(|r| (Arc::clone(&r.name), r.action, r.tally.totals()))
                .collect(),
        })
    }

    /// Every tally with its rule label (empty for the default).
    fn series(&self) -> impl Iterator<Item = (&str, Action, &AuthzTotals)> {
        std::iter::once(("", self.default.0, &self.default.1))
            .chain(self.rules.iter().map(|(n, a, t)| (&**n, *a, t)))
    }
}

/// What one cluster's retries did, node-wide.
#[derive(Debug, Clone)]
pub struct RetryFigures {
    /// Cluster name.
    pub cluster: Arc<str>,
    /// Retries sent, by cause (indexed as [`Cause::ALL`]).
    pub sent: [u64; 4],
    /// Retries not sent: the budget was spent.
    pub budget_exhausted: u64,
    /// Retries not sent: the cluster was at its `max_retries`.
    pub overflows: u64,
}

impl RetryFigures {
    fn read(cluster: &Cluster) -> Self {
        let counts = cluster.budget.counts();
        Self {
            cluster: Arc::clone(&cluster.name),
            sent: std::array::from_fn(|i| counts.by_cause[i].load(Ordering::Relaxed)),
            budget_exhausted: counts.budget_exhausted.load(Ordering::Relaxed),
            overflows: counts.overflows.load(Ordering::Relaxed),
        }
    }
}

/// One HTTP listener's counters.
#[derive(Debug, Clone)]
pub struct HttpListenerFigures {
    /// Listener name.
    pub name: Arc<str>,
    /// Requests that reached the listener, and responses and errors counted
    /// before a route was chosen.
    pub totals: HttpTotals,
    /// Its routes, in match order.
    pub routes: Vec<HttpRouteFigures>,
}

/// One route's counters.
#[derive(Debug, Clone)]
pub struct HttpRouteFigures {
    /// Route name.
    pub name: Arc<str>,
    /// Requests the route matched, and responses and errors counted at the
    /// route (redirects, direct answers, failures before a cluster was
    /// picked).
    pub totals: HttpTotals,
    /// Clusters the route forwards to, with their counters.
    pub upstreams: Vec<(Arc<str>, HttpTotals)>,
    /// Whether the route has a `fault` (its fault counts are written).
    pub faulted: bool,
    /// The route's mirror, when it mirrors.
    pub mirror: Option<MirrorFigures>,
}

/// A route's mirror: where the copies go and what became of them.
#[derive(Debug, Clone)]
pub struct MirrorFigures {
    /// The mirror cluster's name.
    pub cluster: Arc<str>,
    /// Copies by outcome, indexed as [`MirrorOutcome::ALL`].
    pub outcomes: [u64; 4],
    /// Copies under way now, over every worker.
    pub in_flight: u64,
}

impl HttpFigures {
    /// Sums every HTTP tally of `table`.
    pub fn read(table: &Table) -> Self {
        let listeners = table
            .listeners
            .iter()
            .filter_map(|l| match &l.service {
                Service::Http(http) => Some(HttpListenerFigures {
                    name: Arc::clone(&l.name),
                    totals: http.tally.totals(),
                    routes: http
                        .routes
                        .iter()
                        .map(|r| HttpRouteFigures {
                            name: Arc::clone(&r.name),
                            totals: r.tally.totals(),
                            faulted: r.fault.is_some(),
                            upstreams: match &r.action {
                                RouteAction::Forward(f) => f
                                    .targets
                                    .iter()
                                    .map(|t| {
                                        (
                                            Arc::clone(&table.cluster(t.cluster).name),
                                            t.tally.totals(),
                                        )
                                    })
                                    .collect(),
                                RouteAction::Redirect(_) | RouteAction::Direct(_) => Vec::new(),
                            },
                            mirror: match &r.action {
                                RouteAction::Forward(f) => {
                                    f.mirror.as_ref().map(|m| MirrorFigures {
                                        cluster: Arc::clone(&table.cluster(m.cluster).name),
                                        outcomes: m.tally.totals(),
                                        in_flight: m.tally.in_flight_total(),
                                    })
                                }
                                RouteAction::Redirect(_) | RouteAction::Direct(_) => None,
                            },
                        })
                        .collect(),
                }),
                Service::Tcp { .. } => None,
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        let retries = table
            .listeners
            .iter()
            .filter_map(|l| match &l.service {
                Service::Http(http) => Some(http.routes.iter()),
                Service::Tcp { .. } => None,
            })
            .flatten()
            .filter_map(|r| match &r.action {
                RouteAction::Forward(f) => Some(f.targets.iter()),
                _ => None,
            })
            .flatten()
            .filter(|t| seen.insert(t.cluster))
            .map(|t| RetryFigures::read(table.cluster(t.cluster)))
            .collect();
        Self {
            listeners,
            retries,
            endpoints: EndpointFigures::read(table),
            authz: table
                .listeners
                .iter()
                .filter_map(AuthzFigures::read)
                .collect(),
            timings: TimingFigures::read(table),
            tcp_faults: table
                .listeners
                .iter()
                .filter_map(|l| match &l.service {
                    Service::Tcp {
                        fault: Some(fault), ..
                    } => Some((Arc::clone(&l.name), fault.tally.totals())),
                    _ => None,
                })
                .collect(),
            rate_limits: super::rate_limits::RateLimitFigures::read(table),
        }
    }

    /// Every tally with its labels (listener, route, cluster; empty where
    /// the tally is above that level), in table order.
    fn series(&self) -> Vec<([&str; 3], &HttpTotals)> {
        let mut out = Vec::new();
        for l in &self.listeners {
            out.push(([&*l.name, "", ""], &l.totals));
            for r in &l.routes {
                out.push(([&*l.name, &*r.name, ""], &r.totals));
                for (cluster, totals) in &r.upstreams {
                    out.push(([&*l.name, &*r.name, &**cluster], totals));
                }
            }
        }
        out
    }
}

/// Label values of `HttpTotals::responses`, in index order.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// `/stats` as JSON.
pub fn stats_json(agent: &AgentFigures, workers: &[WorkerFigures], http: &HttpFigures) -> Value {
    let mut totals = Map::new();
    for f in WorkerStats::FIELDS {
        let sum: u64 = workers.iter().map(|w| f.read(&w.stats)).sum();
        totals.insert(f.json.to_owned(), json!(sum));
    }
    let workers: Vec<Value> = workers
        .iter()
        .map(|w| {
            let mut obj = Map::new();
            obj.insert("index".into(), json!(w.index));
            obj.insert("core".into(), json!(w.core));
            obj.insert("generation".into(), json!(w.generation));
            obj.extend(fields_json(&w.stats));
            obj.insert("ring".into(), Value::Object(fields_json(&w.ring)));
            let buffers: Map<String, Value> = Group::ALL
                .iter()
                .map(|g| {
                    let pool = &w.ring.pools[usize::from(g.id())];
                    (g.name().to_owned(), Value::Object(fields_json(pool)))
                })
                .collect();
            obj.insert("buffers".into(), Value::Object(buffers));
            Value::Object(obj)
        })
        .collect();
    json!({
        "io_backend": agent.io_backend.name(),
        "generation": agent.generation,
        "ready": agent.ready,
        "reloads": agent.reloads,
        "reload_failures": agent.reload_failures,
        "publish_latency_us": {
            "count": agent.publish_count,
            "p50": agent.publish_p50_us,
            "p99": agent.publish_p99_us,
            "max": agent.publish_max_us,
        },
        "totals": totals,
        "workers": workers,
        "http": http_json(http),
        "endpoints": endpoints::json(&http.endpoints),
        "authorization": authz_json(&http.authz),
        "latency": timings::json(&http.timings),
        "rate_limits": super::rate_limits::json(&http.rate_limits),
    })
}

/// The `authorization` section of `/stats`: per listener with
/// authorization, its default's and each rule's action and decisions.
fn authz_json(authz: &[AuthzFigures]) -> Value {
    let counts = |key: (&str, &str), action: Action, t: &AuthzTotals| {
        json!({
            key.0: key.1,
            "action": action.name(),
            "allowed": t.allowed,
            "denied": t.denied,
        })
    };
    let listeners: Vec<Value> = authz
        .iter()
        .map(|a| {
            let (action, totals) = &a.default;
            let mut default = counts(("listener", &a.listener), *action, totals);
            if let Value::Object(obj) = &mut default {
                obj.remove("listener");
            }
            let rules: Vec<Value> = a
                .rules
                .iter()
                .map(|(name, action, t)| counts(("name", name), *action, t))
                .collect();
            json!({ "listener": &*a.listener, "default": default, "rules": rules })
        })
        .collect();
    json!({ "listeners": listeners })
}

/// Every declared series of `stats`, by JSON name.
fn fields_json<S: Declared>(stats: &S) -> Map<String, Value> {
    S::FIELDS
        .iter()
        .map(|f| (f.json.to_owned(), json!(f.read(stats))))
        .collect()
}

/// The `http` section of `/stats`: listeners, their routes and each
/// route's upstream clusters, each with its requests, responses by class
/// and errors by reason.
fn http_json(http: &HttpFigures) -> Value {
    let listeners: Vec<Value> = http
        .listeners
        .iter()
        .map(|l| {
            let routes: Vec<Value> = l
                .routes
                .iter()
                .map(|r| {
                    let upstreams: Vec<Value> = r
                        .upstreams
                        .iter()
                        .map(|(cluster, t)| tally_json("cluster", cluster, t, None))
                        .collect();
                    let mut route =
                        tally_json("name", &r.name, &r.totals, Some(("upstreams", upstreams)));
                    if let (true, Value::Object(obj)) = (r.faulted, &mut route) {
                        obj.insert("faults_injected".into(), faults_json(&r.totals.faults));
                    }
                    if let (Some(mirror), Value::Object(obj)) = (&r.mirror, &mut route) {
                        obj.insert("mirror".into(), mirror_json(mirror));
                    }
                    route
                })
                .collect();
            tally_json("name", &l.name, &l.totals, Some(("routes", routes)))
        })
        .collect();
    let tcp_faults: Vec<Value> = http
        .tcp_faults
        .iter()
        .map(|(listener, counts)| {
            json!({ "listener": &**listener, "faults_injected": faults_json(counts) })
        })
        .collect();
    let clusters: Vec<Value> = http
        .retries
        .iter()
        .map(|r| {
            let sent: Map<String, Value> = Cause::ALL
                .iter()
                .zip(r.sent)
                .map(|(cause, n)| (cause.name().to_owned(), json!(n)))
                .collect();
            json!({
                "cluster": &*r.cluster,
                "retries": sent,
                "retry_budget_exhausted": r.budget_exhausted,
                "retry_overflows": r.overflows,
            })
        })
        .collect();
    json!({ "listeners": listeners, "clusters": clusters, "tcp_faults": tcp_faults })
}

/// Fault counts by name.
fn faults_json(counts: &[u64; Fault::ALL.len()]) -> Value {
    Value::Object(
        Fault::ALL
            .iter()
            .zip(counts)
            .map(|(f, n)| (f.name().to_owned(), json!(n)))
            .collect(),
    )
}

/// A route's mirror in `/stats`: its cluster, the count of each outcome,
/// and the copies under way.
fn mirror_json(mirror: &MirrorFigures) -> Value {
    let mut obj = Map::new();
    obj.insert("cluster".into(), json!(&*mirror.cluster));
    for (outcome, n) in MirrorOutcome::ALL.iter().zip(mirror.outcomes) {
        obj.insert(outcome.name().into(), json!(n));
    }
    obj.insert("in_flight".into(), json!(mirror.in_flight));
    Value::Object(obj)
}

fn tally_json(
    key: &str,
    name: &str,
    totals: &HttpTotals,
    children: Option<(&str, Vec<Value>)>,
) -> Value {
    let mut obj = Map::new();
    obj.insert(key.into(), json!(name));
    obj.insert("requests".into(), json!(totals.requests));
    let responses: Map<String, Value> = CLASSES
        .iter()
        .zip(totals.responses)
        .map(|(class, n)| ((*class).to_owned(), json!(n)))
        .collect();
    obj.insert("responses".into(), Value::Object(responses));
    let errors: Map<String, Value> = Reason::ALL
        .iter()
        .zip(totals.errors)
        .map(|(reason, n)| (reason.name().to_owned(), json!(n)))
        .collect();
    obj.insert("errors".into(), Value::Object(errors));
    if let Some((key, children)) = children {
        obj.insert(key.into(), Value::Array(children));
    }
    Value::Object(obj)
}

/// `/metrics` in the Prometheus text exposition format.
pub fn metrics_text(agent: &AgentFigures, workers: &[WorkerFigures], http: &HttpFigures) -> String {
    metrics_text_as(agent, workers, http, false)
}

/// `/metrics` in the Prometheus text format, or, with `openmetrics`, the
/// body of an OpenMetrics exposition (exemplars on the request duration
/// buckets; [`to_openmetrics`] finishes it once every family is in).
pub fn metrics_text_as(
    agent: &AgentFigures,
    workers: &[WorkerFigures],
    http: &HttpFigures,
    openmetrics: bool,
) -> String {
    let mut out = String::with_capacity(4096);
    let mut scalar = |name: &str, value: u64| {
        families::header(&mut out, name);
        let _ = writeln!(out, "{name} {value}");
    };
    scalar("ringway_config_generation", agent.generation);
    scalar("ringway_config_reloads_total", agent.reloads);
    scalar(
        "ringway_config_reload_failures_total",
        agent.reload_failures,
    );
    scalar("ringway_ready", u64::from(agent.ready));

    // One series, for the backend in use: a query joins on it or counts by
    // it (`count by (backend) (ringway_io_backend_info)`).
    let name = "ringway_io_backend_info";
    families::header(&mut out, name);
    let _ = writeln!(out, "{name}{{backend=\"{}\"}} 1", agent.io_backend.name());

    let name = "ringway_publish_latency_seconds";
    families::header(&mut out, name);
    for (q, us) in [
        ("0.5", agent.publish_p50_us),
        ("0.99", agent.publish_p99_us),
        ("1", agent.publish_max_us),
    ] {
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", seconds(us));
    }
    let _ = writeln!(out, "{name}_sum {}", seconds(agent.publish_sum_us));
    let _ = writeln!(out, "{name}_count {}", agent.publish_count);

    let name = "ringway_worker_generation";
    families::header(&mut out, name);
    for w in workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.index, w.generation);
    }
    declared_per_worker(&mut out, workers, |w| &w.stats);
    declared_per_worker(&mut out, workers, |w| &w.ring);
    for f in dataplane::buf::PoolStats::FIELDS {
        help_and_type(&mut out, f.metric, f.kind.name(), f.help);
        for w in workers {
            for g in Group::ALL {
                let value = f.read(&w.ring.pools[usize::from(g.id())]);
                let _ = writeln!(
                    out,
                    "{}{{worker=\"{}\",group=\"{}\"}} {value}",
                    f.metric,
                    w.index,
                    g.name()
                );
            }
        }
    }
    http_metrics(&mut out, http, openmetrics);
    endpoints::metrics(&mut out, &http.endpoints, escape);
    authz_metrics(&mut out, &http.authz);
    timings::metrics(&mut out, &http.timings, escape);
    super::rate_limits::metrics(&mut out, &http.rate_limits, escape);
    out
}

/// The authorization family: every rule's (and default's) decisions, both
/// decisions written, zeros included.
fn authz_metrics(out: &mut String, authz: &[AuthzFigures]) {
    let name = "ringway_authz_decisions_total";
    families::header(out, name);
    for a in authz {
        for (rule, _, totals) in a.series() {
            for (decision, n) in [("allow", totals.allowed), ("deny", totals.denied)] {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{}\",rule=\"{}\",decision=\"{decision}\"}} {n}",
                    escape(&a.listener),
                    escape(rule)
                );
            }
        }
    }
}

/// The HTTP families. Every series of every tally is written, zeros
/// included, as the per-worker families are: a series that appears only
/// once it is non-zero breaks `rate()` over its first increment.
fn http_metrics(out: &mut String, http: &HttpFigures, openmetrics: bool) {
    let series = http.series();

    let name = "ringway_http_requests_total";
    families::header(out, name);
    for l in &http.listeners {
        let _ = writeln!(
            out,
            "{name}{{listener=\"{}\"}} {}",
            escape(&l.name),
            l.totals.requests
        );
    }

    let name = "ringway_http_route_requests_total";
    families::header(out, name);
    for ([listener, route, _], totals) in series.iter().filter(|(l, _)| is_route(l)) {
        let _ = writeln!(
            out,
            "{name}{{listener=\"{}\",route=\"{}\"}} {}",
            escape(listener),
            escape(route),
            totals.requests
        );
    }

    let name = "ringway_http_upstream_requests_total";
    families::header(out, name);
    for ([listener, route, cluster], totals) in series.iter().filter(|(l, _)| !l[2].is_empty()) {
        let _ = writeln!(
            out,
            "{name}{{listener=\"{}\",route=\"{}\",cluster=\"{}\"}} {}",
            escape(listener),
            escape(route),
            escape(cluster),
            totals.requests
        );
    }

    let name = "ringway_http_responses_total";
    families::header(out, name);
    for (labels, totals) in &series {
        for (class, n) in CLASSES.iter().zip(totals.responses) {
            let _ = writeln!(
                out,
                "{name}{{{},class=\"{class}\"}} {n}",
                labels_text(labels)
            );
        }
    }

    let name = "ringway_http_request_duration_seconds";
    families::header(out, name);
    for (labels, totals) in &series {
        let exemplars = openmetrics.then_some(&totals.exemplars);
        timings::series_with(out, name, &labels_text(labels), &totals.duration, exemplars);
    }

    let name = "ringway_http_retries_total";
    families::header(out, name);
    for r in &http.retries {
        for (cause, n) in Cause::ALL.iter().zip(r.sent) {
            let _ = writeln!(
                out,
                "{name}{{cluster=\"{}\",reason=\"{}\"}} {n}",
                escape(&r.cluster),
                cause.name()
            );
        }
    }
    for (name, value) in [
        (
            "ringway_http_retry_budget_exhausted_total",
            (|r: &RetryFigures| r.budget_exhausted) as fn(&RetryFigures) -> u64,
        ),
        ("ringway_http_retry_overflows_total", |r: &RetryFigures| {
            r.overflows
        }),
    ] {
        families::header(out, name);
        for r in &http.retries {
            let _ = writeln!(
                out,
                "{name}{{cluster=\"{}\"}} {}",
                escape(&r.cluster),
                value(r)
            );
        }
    }

    let name = "ringway_http_faults_injected_total";
    families::header(out, name);
    for l in &http.listeners {
        for r in l.routes.iter().filter(|r| r.faulted) {
            for (fault, n) in Fault::ALL.iter().zip(r.totals.faults) {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{}\",route=\"{}\",fault=\"{}\"}} {n}",
                    escape(&l.name),
                    escape(&r.name),
                    fault.name()
                );
            }
        }
    }

    let name = "ringway_tcp_faults_injected_total";
    families::header(out, name);
    for (listener, counts) in &http.tcp_faults {
        for (fault, n) in Fault::ALL.iter().zip(counts) {
            let _ = writeln!(
                out,
                "{name}{{listener=\"{}\",fault=\"{}\"}} {n}",
                escape(listener),
                fault.name()
            );
        }
    }

    let name = "ringway_http_mirror_requests_total";
    families::header(out, name);
    for l in &http.listeners {
        for r in &l.routes {
            let Some(mirror) = &r.mirror else {
                continue;
            };
            for (outcome, n) in MirrorOutcome::ALL.iter().zip(mirror.outcomes) {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{}\",route=\"{}\",cluster=\"{}\",outcome=\"{}\"}} {n}",
                    escape(&l.name),
                    escape(&r.name),
                    escape(&mirror.cluster),
                    outcome.name()
                );
            }
        }
    }

    let name = "ringway_http_mirror_in_flight";
    families::header(out, name);
    for l in &http.listeners {
        for r in &l.routes {
            if let Some(mirror) = &r.mirror {
                let _ = writeln!(
                    out,
                    "{name}{{listener=\"{}\",route=\"{}\",cluster=\"{}\"}} {}",
                    escape(&l.name),
                    escape(&r.name),
                    escape(&mirror.cluster),
                    mirror.in_flight
                );
            }
        }
    }

    let name = "ringway_http_errors_total";
    families::header(out, name);
    for (labels, totals) in &series {
        for (reason, n) in Reason::ALL.iter().zip(totals.errors) {
            let _ = writeln!(
                out,
                "{name}{{{},reason=\"{}\"}} {n}",
                labels_text(labels),
                reason.name()
            );
        }
    }
}

/// A route-level series: a route, no cluster.
fn is_route(labels: &[&str; 3]) -> bool {
    !labels[1].is_empty() && labels[2].is_empty()
}

fn labels_text([listener, route, cluster]: &[&str; 3]) -> String {
    format!(
        "listener=\"{}\",route=\"{}\",cluster=\"{}\"",
        escape(listener),
        escape(route),
        escape(cluster)
    )
}

/// A label value escaped as the text format requires: backslash, double
/// quote and line feed. Names in a checked configuration never hold them;
/// this keeps the output well-formed should that rule ever loosen.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Turns a whole exposition written in the text format (with exemplars)
/// into OpenMetrics: a counter family is named without its `_total` in
/// `# HELP` and `# TYPE` (its samples keep it), and `# EOF` ends it.
pub fn to_openmetrics(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut counters = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.insert(name.to_owned());
            }
        }
    }
    for line in text.lines() {
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = match name.strip_suffix("_total") {
                    Some(base) if counters.contains(name) => base,
                    _ => name,
                };
                let _ = writeln!(out, "{prefix}{name} {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The access log writer's families.
pub fn access_log_metrics(out: &mut String, (written, failed): (u64, u64)) {
    for (name, value) in [
        ("ringway_access_log_written_total", written),
        ("ringway_access_log_write_failures_total", failed),
    ] {
        families::header(out, name);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The span exporter's families (every exporter this process ran).
pub fn trace_export_metrics(out: &mut String, c: &crate::telemetry::otlp::ExportCounts) {
    for (name, value) in [
        ("ringway_trace_spans_exported_total", c.exported),
        ("ringway_trace_batches_exported_total", c.batches),
        ("ringway_trace_spans_rejected_total", c.rejected),
        (
            "ringway_trace_spans_backlog_dropped_total",
            c.dropped_backlog,
        ),
        ("ringway_trace_spans_abandoned_total", c.abandoned),
        ("ringway_trace_export_failures_total", c.failed_posts),
        ("ringway_trace_spans_held", c.held),
    ] {
        families::header(out, name);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The `# HELP` and `# TYPE` lines of a family declared with the
/// per-worker counters (the rest are in [`families`]).
fn help_and_type(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

fn per_worker(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    workers: &[WorkerFigures],
    value: impl Fn(&WorkerFigures) -> u64,
) {
    help_and_type(out, name, kind, help);
    for w in workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.index, value(w));
    }
}

/// One family per declared series of the copy `pick` takes from each
/// worker's figures, one sample per worker.
fn declared_per_worker<S: Declared>(
    out: &mut String,
    workers: &[WorkerFigures],
    pick: impl Fn(&WorkerFigures) -> &S,
) {
    for f in S::FIELDS {
        per_worker(out, f.metric, f.kind.name(), f.help, workers, |w| {
            f.read(pick(w))
        });
    }
}

/// Microseconds as seconds, exactly (no float rounding in the text).
fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Figures of worker `index` in which every declared series holds a value
/// of its own (worker `i`'s `k`-th series of the worker, the ring and the
/// client and upstream pools: `(i + 1) * 1_000_000 + {1, 2, 3, 4} * 1000
/// + k`), so that a view showing the wrong series, or none, is caught.
#[cfg(test)]
pub(crate) fn numbered(index: usize) -> WorkerFigures {
    use dataplane::buf::PoolStats;
    use dataplane::counter::vocabulary::Field;

    fn counting<S>(base: u64, block: u64) -> impl FnMut(&Field<S>) -> u64 {
        let mut k = 0;
        move |_| {
            k += 1;
            base + block * 1000 + k
        }
    }
    let base = (index as u64 + 1) * 1_000_000;
    let mut ring = RingStats::from_values(counting(base, 2));
    for g in Group::ALL {
        ring.pools[usize::from(g.id())] =
            PoolStats::from_values(counting(base, 3 + u64::from(g.id())));
    }
    WorkerFigures {
        index,
        core: index + 10,
        generation: 3,
        stats: WorkerStats::from_values(counting(base, 1)),
        ring,
    }
}

#[cfg(test)]
mod tests {
    use dataplane::buf::PoolStats;
    use dataplane::counter::vocabulary::{Cli, Kind};

    use super::*;

    /// Every declared series, in `/metrics` and `/stats` (per worker, and
    /// the worker's in the totals) and in `ringway stats`, with its value:
    /// a counter declared once cannot be missing from one of them.
    #[test]
    fn every_declared_series_is_in_every_view() {
        let workers = [numbered(0), numbered(1)];
        let text = metrics_text(&AgentFigures::default(), &workers, &HttpFigures::default());
        let json = stats_json(&AgentFigures::default(), &workers, &HttpFigures::default());
        let table = crate::stats_table::render(&json);
        let family = |metric: &str, kind: Kind, help: &str| {
            let head = format!("# HELP {metric} {help}\n# TYPE {metric} {}\n", kind.name());
            assert!(text.contains(&head), "{head:?} missing from\n{text}");
        };
        for f in WorkerStats::FIELDS {
            family(f.metric, f.kind, f.help);
            let mut total = 0;
            for w in &workers {
                let value = f.read(&w.stats);
                total += value;
                let sample = format!("{}{{worker=\"{}\"}} {value}\n", f.metric, w.index);
                assert!(text.contains(&sample), "{sample:?} missing from\n{text}");
                assert_eq!(json["workers"][w.index][f.json], value, "{}", f.json);
                if let Cli::Column(header) = f.cli {
                    assert!(table.contains(header), "{header} missing from\n{table}");
                    assert!(
                        table.contains(&value.to_string()),
                        "{value} missing from\n{table}"
                    );
                }
            }
            assert_eq!(json["totals"][f.json], total, "{}", f.json);
            match f.cli {
                Cli::Column(_) => assert!(
                    table.contains(&total.to_string()),
                    "{total} missing from\n{table}"
                ),
                Cli::Listed => assert!(
                    table.contains(&format!(" {}={total}", f.json)),
                    "{}={total} missing from\n{table}",
                    f.json
                ),
            }
        }
        for f in RingStats::FIELDS {
            family(f.metric, f.kind, f.help);
            for w in &workers {
                let value = f.read(&w.ring);
                let sample = format!("{}{{worker=\"{}\"}} {value}\n", f.metric, w.index);
                assert!(text.contains(&sample), "{sample:?} missing from\n{text}");
                assert_eq!(
                    json["workers"][w.index]["ring"][f.json], value,
                    "{}",
                    f.json
                );
                let listed = format!(" {}={value}", f.json);
                assert!(table.contains(&listed), "{listed} missing from\n{table}");
            }
        }
        for f in PoolStats::FIELDS {
            family(f.metric, f.kind, f.help);
            for w in &workers {
                for g in Group::ALL {
                    let value = f.read(&w.ring.pools[usize::from(g.id())]);
                    let sample = format!(
                        "{}{{worker=\"{}\",group=\"{}\"}} {value}\n",
                        f.metric,
                        w.index,
                        g.name()
                    );
                    assert!(text.contains(&sample), "{sample:?} missing from\n{text}");
                    assert_eq!(
                        json["workers"][w.index]["buffers"][g.name()][f.json],
                        value,
                        "{}",
                        f.json
                    );
                    let listed = format!(" {}={value}", f.json);
                    assert!(table.contains(&listed), "{listed} missing from\n{table}");
                }
            }
        }
    }

    fn worker(index: usize, accepted: u64) -> WorkerFigures {
        WorkerFigures {
            index,
            core: index,
            generation: 3,
            stats: WorkerStats {
                accepted,
                ..WorkerStats::default()
            },
            ring: RingStats::default(),
        }
    }

    #[test]
    fn every_metric_family_has_help_and_type_once() {
        let text = metrics_text(
            &AgentFigures::default(),
            &[worker(0, 1), worker(1, 2)],
            &HttpFigures::default(),
        );
        let mut families = std::collections::HashSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().expect("a sample has a name");
            let family = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            families.insert(family.to_owned());
        }
        for family in families {
            assert_eq!(
                text.matches(&format!("# HELP {family} ")).count(),
                1,
                "{family}"
            );
            assert_eq!(
                text.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family}"
            );
        }
        assert!(text.contains("ringway_connections_accepted_total{worker=\"1\"} 2\n"));
    }

    #[test]
    fn totals_sum_the_workers() {
        let v = stats_json(
            &AgentFigures::default(),
            &[worker(0, 1), worker(1, 2)],
            &HttpFigures::default(),
        );
        assert_eq!(v["totals"]["accepted"], 3);
        assert_eq!(v["workers"][1]["accepted"], 2);
        assert_eq!(v["workers"][0]["ring"]["sqes"], 0);
    }

    /// One HTTP listener `web` with a route `api` splitting to `v1` and
    /// `v2`, and a route `health` answering directly.
    fn http() -> HttpFigures {
        let totals = |requests: u64| HttpTotals {
            requests,
            ..HttpTotals::default()
        };
        let mut api = totals(10);
        api.errors[Reason::NoEndpoint as usize] = 1;
        let mut v1 = totals(9);
        v1.responses[1] = 8;
        v1.errors[Reason::UpstreamTimeout as usize] = 1;
        let mut web = totals(12);
        web.errors[Reason::NoRoute as usize] = 1;
        web.responses[3] = 1;
        HttpFigures {
            listeners: vec![HttpListenerFigures {
                name: "web".into(),
                totals: web,
                routes: vec![
                    HttpRouteFigures {
                        name: "api".into(),
                        totals: api,
                        upstreams: vec![("v1".into(), v1), ("v2".into(), totals(0))],
                        faulted: false,
                        mirror: Some(MirrorFigures {
                            cluster: "v2".into(),
                            outcomes: [5, 1, 2, 0],
                            in_flight: 3,
                        }),
                    },
                    HttpRouteFigures {
                        name: "health".into(),
                        totals: totals(1),
                        upstreams: Vec::new(),
                        faulted: false,
                        mirror: None,
                    },
                ],
            }],
            retries: vec![RetryFigures {
                cluster: "v1".into(),
                sent: [0, 3, 1, 2],
                budget_exhausted: 4,
                overflows: 5,
            }],
            endpoints: Vec::new(),
            authz: Vec::new(),
            timings: TimingFigures::default(),
            tcp_faults: Vec::new(),
            rate_limits: Default::default(),
        }
    }

    #[test]
    fn authorization_decisions_are_in_metrics_and_stats() {
        let counts = |allowed, denied| AuthzTotals { allowed, denied };
        let figures = HttpFigures {
            authz: vec![
                AuthzFigures {
                    listener: "web".into(),
                    default: (Action::Deny, counts(0, 7)),
                    rules: vec![
                        ("reads".into(), Action::Allow, counts(5, 0)),
                        ("admin".into(), Action::Deny, counts(0, 2)),
                    ],
                },
                AuthzFigures {
                    listener: "db".into(),
                    default: (Action::Allow, counts(3, 0)),
                    rules: Vec::new(),
                },
            ],
            ..HttpFigures::default()
        };
        let text = metrics_text(&AgentFigures::default(), &[], &figures);
        let family = "ringway_authz_decisions_total";
        assert_eq!(text.matches(&format!("# HELP {family} ")).count(), 1);
        assert_eq!(
            text.matches(&format!("# TYPE {family} counter\n")).count(),
            1
        );
        for line in [
            "{listener=\"web\",rule=\"\",decision=\"deny\"} 7\n",
            "{listener=\"web\",rule=\"\",decision=\"allow\"} 0\n",
            "{listener=\"web\",rule=\"reads\",decision=\"allow\"} 5\n",
            "{listener=\"web\",rule=\"admin\",decision=\"deny\"} 2\n",
            "{listener=\"db\",rule=\"\",decision=\"allow\"} 3\n",
        ] {
            let line = format!("{family}{line}");
            assert!(text.contains(&line), "{line:?} missing from\n{text}");
        }
        // Both decisions of every tally: 3 on web, 1 on db.
        let series = text
            .lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .count();
        assert_eq!(series, 4 * 2);

        let json = stats_json(&AgentFigures::default(), &[], &figures);
        let web = &json["authorization"]["listeners"][0];
        assert_eq!(web["listener"], "web");
        assert_eq!(web["default"]["action"], "deny");
        assert_eq!(web["default"]["denied"], 7);
        assert_eq!(web["rules"][0]["name"], "reads");
        assert_eq!(web["rules"][0]["allowed"], 5);
        assert_eq!(web["rules"][1]["action"], "deny");
        assert_eq!(web["rules"][1]["denied"], 2);
        assert_eq!(
            json["authorization"]["listeners"][1]["default"]["allowed"],
            3
        );
    }

    #[test]
    fn http_families_have_help_and_type_once_and_every_series() {
        let text = metrics_text(&AgentFigures::default(), &[worker(0, 1)], &http());
        for family in [
            "ringway_http_requests_total",
            "ringway_http_route_requests_total",
            "ringway_http_upstream_requests_total",
            "ringway_http_responses_total",
            "ringway_http_errors_total",
            "ringway_http_retries_total",
            "ringway_http_retry_budget_exhausted_total",
            "ringway_http_retry_overflows_total",
            "ringway_http_mirror_requests_total",
        ] {
            assert_eq!(
                text.matches(&format!("# HELP {family} ")).count(),
                1,
                "{family}"
            );
            assert_eq!(
                text.matches(&format!("# TYPE {family} counter\n")).count(),
                1,
                "{family}"
            );
        }
        for line in [
            "ringway_http_requests_total{listener=\"web\"} 12\n",
            "ringway_http_route_requests_total{listener=\"web\",route=\"api\"} 10\n",
            "ringway_http_route_requests_total{listener=\"web\",route=\"health\"} 1\n",
            "ringway_http_upstream_requests_total{listener=\"web\",route=\"api\",cluster=\"v1\"} 9\n",
            "ringway_http_upstream_requests_total{listener=\"web\",route=\"api\",cluster=\"v2\"} 0\n",
            "ringway_http_responses_total{listener=\"web\",route=\"\",cluster=\"\",class=\"4xx\"} 1\n",
            "ringway_http_responses_total{listener=\"web\",route=\"api\",cluster=\"v1\",class=\"2xx\"} 8\n",
            "ringway_http_errors_total{listener=\"web\",route=\"\",cluster=\"\",reason=\"no_route\"} 1\n",
            "ringway_http_errors_total{listener=\"web\",route=\"api\",cluster=\"\",reason=\"no_endpoint\"} 1\n",
            "ringway_http_errors_total{listener=\"web\",route=\"api\",cluster=\"v1\",reason=\"upstream_timeout\"} 1\n",
            "ringway_http_retries_total{cluster=\"v1\",reason=\"unsent\"} 0\n",
            "ringway_http_retries_total{cluster=\"v1\",reason=\"reset\"} 3\n",
            "ringway_http_retries_total{cluster=\"v1\",reason=\"timeout\"} 1\n",
            "ringway_http_retries_total{cluster=\"v1\",reason=\"status\"} 2\n",
            "ringway_http_retry_budget_exhausted_total{cluster=\"v1\"} 4\n",
            "ringway_http_retry_overflows_total{cluster=\"v1\"} 5\n",
            "ringway_http_mirror_requests_total{listener=\"web\",route=\"api\",cluster=\"v2\",outcome=\"answered\"} 5\n",
            "ringway_http_mirror_requests_total{listener=\"web\",route=\"api\",cluster=\"v2\",outcome=\"failed\"} 1\n",
            "ringway_http_mirror_requests_total{listener=\"web\",route=\"api\",cluster=\"v2\",outcome=\"dropped\"} 2\n",
            "ringway_http_mirror_requests_total{listener=\"web\",route=\"api\",cluster=\"v2\",outcome=\"skipped_body\"} 0\n",
            "ringway_http_mirror_in_flight{listener=\"web\",route=\"api\",cluster=\"v2\"} 3\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        // Zeros are written too: 5 tallies (the listener, 2 routes, 2
        // targets) times every class and every reason.
        let tallies = 5;
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("ringway_http_responses_total{"))
                .count(),
            tallies * 5
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("ringway_http_errors_total{"))
                .count(),
            tallies * Reason::ALL.len()
        );
        // A route with no cluster has no upstream series, and one without
        // a mirror no mirror series.
        assert!(!text.contains("route=\"health\",cluster=\"v"), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("ringway_http_mirror_requests_total{"))
                .count(),
            4
        );
    }

    #[test]
    fn http_families_are_declared_without_http_listeners() {
        let text = metrics_text(&AgentFigures::default(), &[], &HttpFigures::default());
        assert!(text.contains("# TYPE ringway_http_requests_total counter\n"));
        assert!(!text.contains("ringway_http_requests_total{"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
        let mut figures = http();
        figures.listeners[0].name = "we\"b".into();
        let text = metrics_text(&AgentFigures::default(), &[], &figures);
        assert!(
            text.contains("ringway_http_requests_total{listener=\"we\\\"b\"} 12\n"),
            "{text}"
        );
    }

    #[test]
    fn stats_has_the_http_section() {
        let v = stats_json(&AgentFigures::default(), &[worker(0, 1)], &http());
        let web = &v["http"]["listeners"][0];
        assert_eq!(web["name"], "web");
        assert_eq!(web["requests"], 12);
        assert_eq!(web["errors"]["no_route"], 1);
        assert_eq!(web["responses"]["4xx"], 1);
        let api = &web["routes"][0];
        assert_eq!(api["name"], "api");
        assert_eq!(api["errors"]["no_endpoint"], 1);
        assert_eq!(api["upstreams"][0]["cluster"], "v1");
        assert_eq!(api["upstreams"][0]["responses"]["2xx"], 8);
        assert_eq!(api["upstreams"][1]["requests"], 0);
        assert_eq!(api["mirror"]["cluster"], "v2");
        assert_eq!(api["mirror"]["answered"], 5);
        assert_eq!(api["mirror"]["dropped"], 2);
        assert_eq!(api["mirror"]["skipped_body"], 0);
        assert_eq!(api["mirror"]["in_flight"], 3);
        assert!(web["routes"][1].get("mirror").is_none());
        assert_eq!(
            api["errors"].as_object().map(Map::len),
            Some(Reason::ALL.len())
        );
        assert_eq!(web["routes"][1]["upstreams"], json!([]));
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends() {
        let workers = [numbered(0)];
        let text = metrics_text_as(&AgentFigures::default(), &workers, &http(), true);
        // Every counter family ends in _total, as OpenMetrics wants of
        // its samples.
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            if let Some(name) = line.strip_suffix(" counter") {
                assert!(name.ends_with("_total"), "{line}");
            }
        }
        let om = to_openmetrics(&text);
        assert!(om.ends_with("# EOF\n"));
        assert!(
            om.contains("# TYPE ringway_connections_accepted counter\n"),
            "{om}"
        );
        assert!(
            om.contains("\nringway_connections_accepted_total{worker=\"0\"} "),
            "{om}"
        );
        assert!(
            om.contains("# TYPE ringway_connections_active gauge\n"),
            "{om}"
        );
    }

    /// Every family any part of `/metrics` writes, with figures in every
    /// section, is declared with the type it is written with, and every
    /// declared family is written.
    #[test]
    fn every_family_written_is_declared_and_every_declared_one_written() {
        use super::super::{balance, endpoint_series, families};
        let workers = [numbered(0), numbered(1)];
        let mut text = metrics_text_as(&AgentFigures::default(), &workers, &http(), false);
        let window = balance::BalanceWindow::default();
        balance::metrics(&mut text, &window.figures(&workers), &workers);
        access_log_metrics(&mut text, (1, 2));
        endpoint_series::metrics(&mut text, &[], escape);
        trace_export_metrics(&mut text, &crate::telemetry::otlp::ExportCounts::default());
        super::super::cert_expiry::metrics(&mut text, &[], 0, escape);
        crate::rollout::metrics::write(&mut text, &[], escape);
        let written: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        let declared = families::all();
        for (name, kind) in &written {
            let d = declared.iter().find(|f| f.name == *name);
            assert_eq!(
                d.map(|f| f.kind.name()),
                Some(*kind),
                "{name} is written as {kind}"
            );
        }
        for f in &declared {
            assert!(
                written.iter().any(|(n, _)| *n == f.name),
                "{} is never written",
                f.name
            );
        }
    }

    #[test]
    fn the_io_backend_is_one_field_and_one_series() {
        for backend in [IoBackend::IoUring, IoBackend::Epoll] {
            let agent = AgentFigures {
                io_backend: backend,
                ..AgentFigures::default()
            };
            let workers = [numbered(0)];
            let stats = stats_json(&agent, &workers, &http());
            assert_eq!(stats["io_backend"], backend.name());
            let text = metrics_text(&agent, &workers, &http());
            let series: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("ringway_io_backend_info"))
                .collect();
            assert_eq!(
                series,
                [format!(
                    "ringway_io_backend_info{{backend=\"{backend}\"}} 1"
                )]
            );
        }
    }

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(1), "0.000001");
        assert_eq!(seconds(2_500_000), "2.500000");
    }
}
