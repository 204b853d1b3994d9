//! Scenario files (`bench/scenarios/*.toml`): what `compare` runs.
//!
//! Every key has a default except `name`; unknown keys are refused, and an
//! error names the file, the line and the key (the TOML parser's spans).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The systems a scenario may name without declaring them.
pub const BASE_SYSTEMS: [&str; 5] = ["direct", "ringway", "baseline", "nginx", "haproxy"];
/// The systems a variant may derive from.
const VARIANT_BASES: [&str; 4] = ["ringway", "baseline", "haproxy", "nginx"];
/// Keys of ringway's origin cluster that the generated config writes
/// itself and a variant's `cluster` may not set (`tls`: a pair's outbound
/// half's, to its inbound half).
const OWN_CLUSTER_KEYS: [&str; 3] = ["name", "endpoints", "tls"];
/// Keys of ringway's route that the generated config writes itself and a
/// variant's `route` may not set: what the route matches and what it
/// does with them: it forwards to the origins (a `split` and its
/// `rollout` come from the scenario's `[rollout]`).
const OWN_ROUTE_KEYS: [&str; 9] = [
    "name",
    "host",
    "path",
    "path_prefix",
    "cluster",
    "split",
    "redirect",
    "direct",
    "rollout",
];
/// Most origins a scenario may run.
pub const MAX_ORIGINS: usize = 16;

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name: the results directory starts with it.
    pub name: String,
    /// One line for the report.
    #[serde(default)]
    pub description: String,
    /// `http` (requests) or `tcp` (streaming).
    #[serde(default)]
    pub mode: ScenarioMode,
    /// Systems in run order; `direct` is always measured first. Names from
    /// [`BASE_SYSTEMS`] or [`Scenario::variants`].
    #[serde(default = "all_systems")]
    pub systems: Vec<String>,
    /// Interleaved rounds (`direct` first, then the others rotating:
    /// A B C D, A C D B, A D B C, ...).
    #[serde(default = "three")]
    pub runs: usize,
    /// Where everything runs.
    #[serde(default)]
    pub cores: Cores,
    /// The built-in origin.
    #[serde(default)]
    pub origin: Origin,
    /// The load of every run.
    #[serde(default)]
    pub load: Load,
    /// Offered rates and the max-throughput run.
    #[serde(default)]
    pub sweep: Sweep,
    /// The idle-connection memory run.
    #[serde(default)]
    pub memory: Memory,
    /// Systems derived from a base one (`[[variants]]`).
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// CPU ratios the report computes (`[[ratios]]`).
    #[serde(default)]
    pub ratios: Vec<Ratio>,
    /// The quiet-machine guard.
    #[serde(default)]
    pub guard: Guard,
    /// What the origins do wrong during each load run (`[[faults]]`).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Clients speak TLS 1.3 to every proxy (`direct` stays plaintext: the
    /// origin is); the runner mints a CA and a server certificate into the
    /// run's directory and every system presents that certificate.
    #[serde(default)]
    pub tls: bool,
    /// With `tls`: every proxy requires a client certificate signed by the
    /// run's CA, and the generator presents one.
    #[serde(default)]
    pub client_auth: bool,
    /// Every proxy runs as a sidecar pair: two processes of its kind on the
    /// proxy core, the clients speaking plaintext to the outbound half,
    /// which forwards to the inbound half, which forwards to the origins.
    /// With it, `tls` is TLS 1.3 between the halves (the outbound half
    /// originates it, verifying the inbound's certificate against the run's
    /// CA and name), and `client_auth` makes it mutual (the outbound half
    /// presents its own SPIFFE certificate, the inbound one requires it).
    #[serde(default)]
    pub pair: bool,
    /// HTTP: every proxy writes a JSON line per request into an access log
    /// in its run directory (ringway's listener `access_log`, nginx's
    /// buffered `access_log`, HAProxy's `log-format` to a file); a variant's
    /// `access_log` says otherwise for its system. The runner counts the
    /// lines after each round against the requests the system carried.
    #[serde(default)]
    pub access_log: bool,
    /// HTTP: every ringway system traces this share of the requests (which
    /// carry no trace context) and exports the spans to a collector sink
    /// the runner serves; nginx and HAProxy cannot export spans here and
    /// run without. A variant's `tracing_sample` sets its own.
    #[serde(default)]
    pub tracing_sample: Option<f64>,
    /// HTTP, ringway only: the catch-all route splits its requests between
    /// two clusters of one origin each, and a rollout moves the canary's
    /// weight while the load runs; a sampler follows it through the admin
    /// API and the report plots it.
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// Count the system calls of each proxy in a round of their own after
    /// the measured ones (`[syscalls]`).
    #[serde(default)]
    pub syscalls: Syscalls,
}

/// `[syscalls]`: after the measured rounds, every system but `direct` is
/// started once more and run at each offered rate and at max throughput
/// under `perf stat`, which counts the system calls of all its processes
/// and threads; the report divides them by the requests (per GB in TCP
/// mode). The measured rounds never carry the counting's cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Syscalls {
    /// Count them (also `compare --syscalls`).
    #[serde(default)]
    pub count: bool,
    /// The measured window of each counted run; absent: `[load] duration`.
    #[serde(default, deserialize_with = "some_duration")]
    pub duration: Option<Duration>,
    /// The system calls named in the report, most frequent first.
    #[serde(default = "five_usize")]
    pub top: usize,
}

impl Default for Syscalls {
    fn default() -> Self {
        Self {
            count: false,
            duration: None,
            top: five_usize(),
        }
    }
}

/// `io_backend` of a ringway variant: the value of `ringway run
/// --io-backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IoBackend {
    /// io_uring where the kernel allows it, else epoll.
    Auto,
    /// io_uring, or ringway refuses to start.
    IoUring,
    /// epoll, even where io_uring would run.
    Epoll,
}

impl IoBackend {
    /// Its spelling on ringway's command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            IoBackend::Auto => "auto",
            IoBackend::IoUring => "io_uring",
            IoBackend::Epoll => "epoll",
        }
    }
}

/// `[rollout]`: ringway's catch-all route sends its requests to cluster
/// `stable` (one origin) and cluster `canary` (another) by weight, and the
/// route's `rollout` steps the canary's weight up, holds it, or rolls it
/// back, from what each interval's requests met. The scenario's
/// `[[faults]]` make the canary's origin misbehave.
///
/// The section's own keys are the bench's; every other key is one of the
/// route's `rollout` keys (`steps`, `interval`, the bounds), written into
/// ringway's configuration as it is, where ringway checks it.
#[derive(Debug, Clone, Deserialize)]
pub struct Rollout {
    /// The stable cluster's origin, by index.
    #[serde(default)]
    pub stable_origin: usize,
    /// The canary cluster's origin, by index.
    #[serde(default = "one")]
    pub canary_origin: usize,
    /// The canary's weight in the split the route starts with, out of 100
    /// (the stable cluster has the rest).
    #[serde(default = "five_percent")]
    pub canary_weight: u32,
    /// How often the sampler reads the rollout's state during a load run.
    #[serde(default = "quarter_second", deserialize_with = "duration")]
    pub sample_every: Duration,
    /// The route's `rollout` keys, as ringway reads them; the bench adds
    /// `canary` and `stable`, the clusters' names.
    #[serde(flatten)]
    pub settings: toml::Table,
}

/// `[[faults]]`: origins that turn slow, fail a share of their requests,
/// or crash, at a given time of every load run. A scenario with faults
/// starts fresh origins for every system's run, and reports what the
/// clients saw beside what the origins received.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The origins concerned, by index (0 to `[origin] count` - 1); empty
    /// or absent: every origin.
    #[serde(default)]
    pub origins: Vec<usize>,
    /// When it starts, from the start of the measured window (after the
    /// warm-up).
    #[serde(default, deserialize_with = "duration")]
    pub at: Duration,
    /// How long it lasts; absent: to the end of the run.
    #[serde(default, rename = "for", deserialize_with = "some_duration")]
    pub lasting: Option<Duration>,
    /// Added before every answer.
    #[serde(default, deserialize_with = "duration")]
    pub delay: Duration,
    /// Share of the answers that are a `503` instead (0 to 1).
    #[serde(default)]
    pub fail_ratio: f64,
    /// The origin crashes: it stops listening and resets its connections,
    /// for the rest of the run.
    #[serde(default)]
    pub kill: bool,
}

impl Fault {
    /// Whether it concerns origin `i`.
    pub fn hits(&self, i: usize) -> bool {
        self.origins.is_empty() || self.origins.contains(&i)
    }
}

/// `mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioMode {
    /// HTTP/1.1 requests.
    #[default]
    Http,
    /// A TCP byte stream.
    Tcp,
}

/// `[cores]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cores {
    /// The load generator's threads (`"0"`, `"0,1"`).
    #[serde(default = "core_zero")]
    pub load: String,
    /// The origin's threads.
    #[serde(default = "core_zero")]
    pub origin: String,
    /// The one core of the system under test.
    #[serde(default = "one")]
    pub proxy: usize,
    /// ringway's control agent (`runtime.control_core`); unset, it shares
    /// the proxy core, as the peers' master processes do.
    #[serde(default)]
    pub control: Option<usize>,
}

impl Default for Cores {
    fn default() -> Self {
        Self {
            load: core_zero(),
            origin: core_zero(),
            proxy: 1,
            control: None,
        }
    }
}

/// `[origin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// Body bytes of every answer.
    #[serde(default = "two")]
    pub response_size: usize,
    /// Origin processes, each on its own port; every system forwards to
    /// all of them (round robin).
    #[serde(default = "one")]
    pub count: usize,
}

impl Default for Origin {
    fn default() -> Self {
        Self {
            response_size: 2,
            count: 1,
        }
    }
}

/// `[load]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Connections of every run.
    #[serde(default = "thirty_two")]
    pub connections: usize,
    /// A new connection per request instead of keep-alive.
    #[serde(default)]
    pub new_connection: bool,
    /// Request method.
    #[serde(default = "get")]
    pub method: String,
    /// Request path.
    #[serde(default = "slash")]
    pub path: String,
    /// The request's `Host` header.
    #[serde(default = "bench_host")]
    pub host: String,
    /// Extra request header lines.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Request body bytes.
    #[serde(default)]
    pub body_size: usize,
    /// TCP: bytes per write.
    #[serde(default = "chunk")]
    pub chunk: usize,
    /// Load before each measured window.
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub warmup: Duration,
    /// Each measured window.
    #[serde(default = "five_seconds", deserialize_with = "duration")]
    pub duration: Duration,
    /// Longest wait for a connection or a response.
    #[serde(default = "five_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            connections: 32,
            new_connection: false,
            method: get(),
            path: slash(),
            host: bench_host(),
            headers: Vec::new(),
            body_size: 0,
            chunk: chunk(),
            warmup: one_second(),
            duration: five_seconds(),
            timeout: five_seconds(),
        }
    }
}

/// `[sweep]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Offered rates (requests/s) of the open-loop runs, in order.
    #[serde(default)]
    pub rates: Vec<f64>,
    /// Also a closed-loop run as fast as the system goes.
    #[serde(default = "yes")]
    pub max_throughput: bool,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            rates: Vec::new(),
            max_throughput: true,
        }
    }
}

/// `[memory]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Idle connections of the scenario's mode held for the memory reading
    /// (HTTP: keep-alive connections after one request each; TCP: client
    /// -> proxy -> origin pairs); 0 skips it.
    #[serde(default = "ten_thousand")]
    pub idle_connections: usize,
    /// HTTP scenarios: also idle TCP pairs, each proxy started a second
    /// time as an L4 proxy in front of the same origin; 0 skips it.
    #[serde(default)]
    pub idle_tcp_pairs: usize,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            idle_connections: 10_000,
            idle_tcp_pairs: 0,
        }
    }
}

/// `[[variants]]`: a system derived from ringway, the baseline or HAProxy
/// with something changed, measured beside the others under its own name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Its name in `systems` and in the report.
    pub name: String,
    /// `ringway`, `baseline` or `haproxy`.
    pub of: String,
    /// ringway: HTTP routes in the listener, each `host = "h<i>.example.com"`
    /// with `path_prefix = "/r<i>/"`, in file order from `h<routes-1>` down
    /// to `h0`, so that a request for `h0.example.com/r0/` matches the last
    /// one. 0 keeps the one catch-all route.
    #[serde(default)]
    pub routes: usize,
    /// ringway: clusters besides the origin's, each with three endpoints
    /// from a pool of addresses nobody listens on (the routes other than
    /// `h0` spread over them), so that every table is that large.
    #[serde(default)]
    pub clusters: usize,
    /// HAProxy: `option splice-request` and `option splice-response`.
    #[serde(default)]
    pub splice: bool,
    /// ringway: a new table posted to the admin API during every load run.
    #[serde(default)]
    pub churn: Option<Churn>,
    /// ringway: keys added to the origin cluster's `[[clusters]]` entry
    /// as they are (`lb`, ejection, breakers, retries), replacing the
    /// generated ones of the same name.
    #[serde(default)]
    pub cluster: Option<toml::Table>,
    /// ringway: keys added to the route the load's requests match (the
    /// catch-all route, or `r0` of a large table) as they are: a policy
    /// such as `rate_limit`, configured beside the forwarding.
    #[serde(default)]
    pub route: Option<toml::Table>,
    /// HAProxy: lines of its own.
    #[serde(default)]
    pub haproxy: Option<HaproxyLines>,
    /// nginx: lines of its own.
    #[serde(default)]
    pub nginx: Option<NginxLines>,
    /// `false`: the system in plaintext in a TLS scenario (the price of TLS
    /// side by side); unset: as the scenario.
    #[serde(default)]
    pub tls: Option<bool>,
    /// With TLS, `true`: the system requires client certificates and the
    /// generator presents one (the price of verifying the client side by
    /// side); `false`: it does not; unset: as the scenario's `client_auth`.
    #[serde(default)]
    pub client_auth: Option<bool>,
    /// `true`: the system logs every request (see [`Scenario::access_log`]);
    /// `false`: it does not; unset: as the scenario.
    #[serde(default)]
    pub access_log: Option<bool>,
    /// ringway: the share of requests traced, spans exported to the
    /// runner's collector sink; unset: as the scenario's `tracing_sample`.
    #[serde(default)]
    pub tracing_sample: Option<f64>,
    /// ringway: the reactor under its workers, given as `ringway run
    /// --io-backend <value>` (`auto`, `io_uring` or `epoll`); unset: no
    /// flag, ringway's own default.
    #[serde(default)]
    pub io_backend: Option<IoBackend>,
}

/// `[variants.haproxy]`: settings added to the generated `haproxy.cfg`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxyLines {
    /// Lines at the end of the `backend origin` section (`balance
    /// leastconn`, `retry-on ...`, `option redispatch`).
    #[serde(default)]
    pub backend: Vec<String>,
    /// Words appended to every `server` line (`check observe layer7
    /// error-limit 5 on-error mark-down`).
    #[serde(default)]
    pub server: String,
}

/// `[variants.nginx]`: directives added to the generated `nginx.conf`,
/// each without its `;`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxLines {
    /// Directives of the `upstream origin` block (`least_conn`).
    #[serde(default)]
    pub upstream: Vec<String>,
    /// Parameters appended to every `server` line (`max_fails=3
    /// fail_timeout=10s`).
    #[serde(default)]
    pub server: String,
    /// Directives of the `location /` block (`proxy_next_upstream error
    /// timeout http_503`).
    #[serde(default)]
    pub location: Vec<String>,
}

/// `[variants.churn]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// What each post changes.
    pub mode: ChurnMode,
    /// Time between two posts, on an absolute schedule.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
}

/// `churn.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChurnMode {
    /// `PUT /clusters/origin/endpoints`: a different non-empty subset of the
    /// origins each time (needs `[origin] count` of 2 or more).
    Endpoints,
    /// `POST /config`: the whole configuration, one route added, then
    /// removed, so that every post compiles and publishes a new table.
    Routes,
}

impl ChurnMode {
    /// Its name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            ChurnMode::Endpoints => "endpoints",
            ChurnMode::Routes => "routes",
        }
    }
}

/// `[[ratios]]`: a system's CPU per request (per GB in TCP mode) divided by
/// another's, at every offered rate and at max throughput.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    /// The numerator.
    pub system: String,
    /// The denominator.
    pub against: String,
    /// The largest ratio that passes, if there is a bar.
    #[serde(default)]
    pub bar: Option<f64>,
    /// TCP scenarios: the denominator plus what AES-128-GCM alone costs
    /// per GB on the proxy core (measured at the start of the run), so
    /// that a TLS system against its plaintext self shows what its TLS
    /// costs beyond the cipher.
    #[serde(default)]
    pub plus_aes: bool,
}

/// `[guard]`: the quiet-machine guard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Before each load run, wait until every core of the run was less
    /// busy than this, in percent, for a second.
    #[serde(default = "five")]
    pub quiet_pct: f64,
    /// Give up waiting after this long and run anyway (the report says
    /// so); 0 does not look.
    #[serde(default = "ten_minutes", deserialize_with = "duration")]
    pub quiet_wait: Duration,
    /// A run during which other processes used more than this share of the
    /// run's cores (percent of one core) is disturbed.
    #[serde(default = "ten")]
    pub max_foreign_pct: f64,
    /// A max-throughput run during which a core of the run lost more than
    /// this share of its clock ticks (the hypervisor ran something else) is
    /// disturbed.
    #[serde(default = "five")]
    pub max_lost_pct: f64,
    /// A disturbed run is run again up to this many times, then kept and
    /// flagged.
    #[serde(default = "two")]
    pub retries: usize,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            quiet_pct: five(),
            quiet_wait: ten_minutes(),
            max_foreign_pct: ten(),
            max_lost_pct: five(),
            retries: two(),
        }
    }
}

impl Scenario {
    /// The variant named `name`, if it is one.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Whether `name` is a system this scenario can run.
    pub fn knows(&self, name: &str) -> bool {
        BASE_SYSTEMS.contains(&name) || self.variant(name).is_some()
    }
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("scenario {}: {e}", path.display()))
}

/// Parses and checks scenario text.
pub fn parse(text: &str) -> Result<Scenario, String> {
    let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
    check(&s)?;
    Ok(s)
}

/// Checks what the types alone do not (also after command-line overrides).
pub fn check(s: &Scenario) -> Result<(), String> {
    check_name("name", &s.name)?;
    for v in &s.variants {
        check_variant(s, v)?;
    }
    for (i, v) in s.variants.iter().enumerate() {
        if s.variants[..i].iter().any(|w| w.name == v.name) {
            return Err(format!("variants: {:?} is declared twice", v.name));
        }
    }
    for sys in &s.systems {
        if !s.knows(sys) {
            return Err(format!(
                "systems: unknown system {sys:?} ({} or a [[variants]] name)",
                BASE_SYSTEMS.join(", ")
            ));
        }
    }
    if s.runs == 0 {
        return Err("runs: at least 1".into());
    }
    if !(1..=MAX_ORIGINS).contains(&s.origin.count) {
        return Err(format!("origin.count: between 1 and {MAX_ORIGINS}"));
    }
    if s.load.connections == 0 {
        return Err("load.connections: at least 1".into());
    }
    if s.load.duration.is_zero() || s.load.timeout.is_zero() {
        return Err("load.duration and load.timeout: longer than zero".into());
    }
    check_faults(s)?;
    check_tls(s)?;
    check_pair(s)?;
    check_observe(s)?;
    check_rollout(s)?;
    if let Some(r) = s.sweep.rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(format!("sweep.rates: {r} is not a positive rate"));
    }
    let tcp = s.mode == ScenarioMode::Tcp;
    if tcp && !s.sweep.rates.is_empty() {
        return Err("sweep.rates: a TCP stream has no requests to pace; leave it empty".into());
    }
    if tcp && s.memory.idle_tcp_pairs > 0 {
        return Err(
            "memory.idle_tcp_pairs: in a TCP scenario idle_connections are TCP pairs already"
                .into(),
        );
    }
    let memory = s.memory.idle_connections + s.memory.idle_tcp_pairs > 0;
    if s.sweep.rates.is_empty() && !s.sweep.max_throughput && !memory {
        return Err(
            "sweep and memory: no rates, max_throughput = false and no idle connections \
             leave nothing to run"
                .into(),
        );
    }
    for r in &s.ratios {
        for name in [&r.system, &r.against] {
            if !s.knows(name) {
                return Err(format!("ratios: unknown system {name:?}"));
            }
        }
        if r.plus_aes && s.mode != ScenarioMode::Tcp {
            return Err(format!(
                "ratios: plus_aes on {} against {}: a TCP scenario's CPU per GB only",
                r.system, r.against
            ));
        }
        if r.bar.is_some_and(|b| !(b.is_finite() && b > 0.0)) {
            return Err(format!(
                "ratios: bar of {} is not a positive ratio",
                r.system
            ));
        }
    }
    check_syscalls(s)?;
    let g = &s.guard;
    for (key, pct) in [
        ("quiet_pct", g.quiet_pct),
        ("max_foreign_pct", g.max_foreign_pct),
        ("max_lost_pct", g.max_lost_pct),
    ] {
        if !(pct.is_finite() && pct > 0.0) {
            return Err(format!("guard.{key}: a positive percentage"));
        }
    }
    Ok(())
}

fn check_variant(s: &Scenario, v: &Variant) -> Result<(), String> {
    let at = |what: String| Err(format!("variant {:?}: {what}", v.name));
    check_name("variants.name", &v.name)?;
    if BASE_SYSTEMS.contains(&v.name.as_str()) {
        return at("the name of a base system".into());
    }
    if !VARIANT_BASES.contains(&v.of.as_str()) {
        return at(format!(
            "of = {:?}: one of {}",
            v.of,
            VARIANT_BASES.join(", ")
        ));
    }
    let ringway = v.of == "ringway" || v.of == "baseline";
    if !ringway
        && (v.routes > 0
            || v.clusters > 0
            || v.churn.is_some()
            || v.cluster.is_some()
            || v.route.is_some())
    {
        return at("routes, clusters, churn, cluster and route are ringway settings".into());
    }
    if !ringway && v.io_backend.is_some() {
        return at(format!(
            "io_backend is a ringway setting ({} chooses its own event loop)",
            v.of
        ));
    }
    if v.of != "haproxy" && (v.splice || v.haproxy.is_some()) {
        return at("splice and haproxy are HAProxy settings".into());
    }
    if v.of != "nginx" && v.nginx.is_some() {
        return at("nginx is an nginx setting".into());
    }
    if let Some(t) = &v.cluster {
        if let Some(k) = OWN_CLUSTER_KEYS.iter().find(|k| t.contains_key(**k)) {
            return at(format!(
                "cluster.{k}: the bench writes the origin cluster's {k} itself"
            ));
        }
        if s.mode == ScenarioMode::Tcp && t.contains_key("retry") {
            return at("cluster.retry: a TCP listener has no requests to retry".into());
        }
    }
    if let Some(t) = &v.route {
        if s.mode == ScenarioMode::Tcp {
            return at("route: a TCP listener has no routes".into());
        }
        if let Some(k) = OWN_ROUTE_KEYS.iter().find(|k| t.contains_key(**k)) {
            return at(format!(
                "route.{k}: the bench writes the route's {k} itself"
            ));
        }
    }
    let mut lines: Vec<(&str, &str)> = Vec::new();
    if let Some(h) = &v.haproxy {
        lines.extend(h.backend.iter().map(|l| ("haproxy.backend", l.as_str())));
        lines.push(("haproxy.server", &h.server));
    }
    if let Some(n) = &v.nginx {
        lines.extend(n.upstream.iter().map(|l| ("nginx.upstream", l.as_str())));
        lines.extend(n.location.iter().map(|l| ("nginx.location", l.as_str())));
        lines.push(("nginx.server", &n.server));
    }
    for (key, line) in lines {
        // One line each, and nothing that would end or open a block of
        // the generated file.
        let bad: &[char] = if key.starts_with("nginx") {
            &['\n', '\r', '{', '}', ';', '#']
        } else {
            &['\n', '\r', '#']
        };
        if line.contains(bad) {
            return at(format!(
                "{key}: {line:?} must be one line without {}",
                if key.starts_with("nginx") {
                    "braces, `;` (the bench adds it) or comments"
                } else {
                    "comments"
                }
            ));
        }
    }
    if v.routes > 0 && s.mode == ScenarioMode::Tcp {
        return at("routes: a TCP listener has no routes".into());
    }
    if let Some(c) = &v.churn {
        if c.interval.is_zero() {
            return at("churn.interval: longer than zero".into());
        }
        match c.mode {
            ChurnMode::Endpoints if s.origin.count < 2 => {
                return at("churn.mode = \"endpoints\" moves traffic between origins: \
                     set [origin] count = 2 or more"
                    .into())
            }
            ChurnMode::Routes if s.mode == ScenarioMode::Tcp => {
                return at("churn.mode = \"routes\": a TCP listener has no routes".into())
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_syscalls(s: &Scenario) -> Result<(), String> {
    let c = &s.syscalls;
    if !c.count {
        return Ok(());
    }
    if c.duration.is_some_and(|d| d.is_zero()) {
        return Err("syscalls.duration: longer than zero".into());
    }
    if !s.faults.is_empty() || s.rollout.is_some() {
        return Err(
            "syscalls: not in a fault or rollout scenario (each of its runs starts fresh \
             origins); count them in a scenario of their own"
                .into(),
        );
    }
    if s.sweep.rates.is_empty() && !s.sweep.max_throughput {
        return Err(
            "syscalls: the counted runs are the sweep's (its rates and max throughput); \
             the sweep is empty"
                .into(),
        );
    }
    Ok(())
}

fn check_tls(s: &Scenario) -> Result<(), String> {
    if s.client_auth && !s.tls {
        return Err("client_auth: client certificates need tls = true".into());
    }
    if let Some(v) = s
        .variants
        .iter()
        .find(|v| v.client_auth == Some(true) && (!s.tls || v.tls == Some(false)))
    {
        return Err(format!(
            "variant {:?}: client_auth = true needs TLS (tls = true on the scenario, and not \
             tls = false on the variant)",
            v.name
        ));
    }
    if let Some(v) = s.variants.iter().find(|v| v.tls == Some(true) && !s.tls) {
        return Err(format!(
            "variant {:?}: tls = true in a plaintext scenario; set tls = true on the \
             scenario and tls = false on the plaintext variants",
            v.name
        ));
    }
    if s.tls && s.memory.idle_connections + s.memory.idle_tcp_pairs > 0 {
        return Err(
            "memory: the idle connections of the memory run are plaintext; \
             set [memory] idle_connections = 0 in a TLS scenario"
                .into(),
        );
    }
    Ok(())
}

fn check_observe(s: &Scenario) -> Result<(), String> {
    let logs = s.access_log || s.variants.iter().any(|v| v.access_log == Some(true));
    let traces =
        s.tracing_sample.is_some() || s.variants.iter().any(|v| v.tracing_sample.is_some());
    if !(logs || traces) {
        return Ok(());
    }
    let what = "access_log and tracing_sample";
    if s.mode == ScenarioMode::Tcp {
        return Err(format!(
            "{what}: the bench logs and traces HTTP requests; use mode = \"http\""
        ));
    }
    if s.pair {
        return Err(format!("{what}: not in a pair scenario"));
    }
    if !s.faults.is_empty() {
        return Err(format!("{what}: not in a fault scenario"));
    }
    let ratio = |key: String, r: f64| {
        if (0.0..=1.0).contains(&r) {
            Ok(())
        } else {
            Err(format!("{key} = {r}: a share of the requests, from 0 to 1"))
        }
    };
    if let Some(r) = s.tracing_sample {
        ratio("tracing_sample".into(), r)?;
    }
    for v in &s.variants {
        let Some(r) = v.tracing_sample else {
            continue;
        };
        if v.of != "ringway" && v.of != "baseline" {
            return Err(format!(
                "variant {:?}: tracing_sample is a ringway setting ({} exports no spans here)",
                v.name, v.of
            ));
        }
        ratio(format!("variant {:?}: tracing_sample", v.name), r)?;
    }
    Ok(())
}

fn check_pair(s: &Scenario) -> Result<(), String> {
    if !s.pair {
        return Ok(());
    }
    if s.memory.idle_connections + s.memory.idle_tcp_pairs > 0 {
        return Err(
            "memory: the memory run holds idle connections on one process; \
             set [memory] idle_connections = 0 in a pair scenario"
                .into(),
        );
    }
    if !s.faults.is_empty() {
        return Err("faults: not in a pair scenario".into());
    }
    if let Some(v) = s.variants.iter().find(|v| v.churn.is_some()) {
        return Err(format!(
            "variant {:?}: churn posts to one process's admin API, not to a pair",
            v.name
        ));
    }
    Ok(())
}

/// The rollout's keys, and a scenario only ringway can run: every run
/// starts fresh origins and a fresh ringway (a rollout that completed or
/// rolled back in one run must start over in the next), open loop.
fn check_rollout(s: &Scenario) -> Result<(), String> {
    let Some(r) = &s.rollout else {
        return Ok(());
    };
    let count = s.origin.count;
    for (key, o) in [
        ("stable_origin", r.stable_origin),
        ("canary_origin", r.canary_origin),
    ] {
        if o >= count {
            return Err(format!(
                "rollout.{key}: {o} is not an origin (0 to {}, [origin] count)",
                count - 1
            ));
        }
    }
    if r.stable_origin == r.canary_origin {
        return Err("rollout: stable_origin and canary_origin are the same origin".into());
    }
    if r.canary_weight > 100 {
        return Err(format!(
            "rollout.canary_weight = {}: from 0 to 100",
            r.canary_weight
        ));
    }
    if r.sample_every.is_zero() {
        return Err("rollout.sample_every: longer than zero".into());
    }
    if let Some(k) = ["canary", "stable"]
        .iter()
        .find(|k| r.settings.contains_key(**k))
    {
        return Err(format!(
            "rollout.{k}: the bench names the clusters itself (stable_origin and \
             canary_origin choose their origins)"
        ));
    }
    if s.mode == ScenarioMode::Tcp {
        return Err("rollout: a TCP listener has no routes to split; use mode = \"http\"".into());
    }
    if s.pair {
        return Err("rollout: not in a pair scenario".into());
    }
    let fresh = "rollout: every run starts fresh origins and a fresh ringway, whose rollout \
                 starts over";
    if s.sweep.rates.is_empty() || s.sweep.max_throughput {
        return Err(format!(
            "{fresh}, open loop: set [sweep] rates and max_throughput = false"
        ));
    }
    if s.memory.idle_connections + s.memory.idle_tcp_pairs > 0 {
        return Err(format!(
            "{fresh}: set [memory] idle_connections = 0 (no memory run)"
        ));
    }
    for sys in &s.systems {
        let v = s.variant(sys);
        let base = v.map_or(sys.as_str(), |v| v.of.as_str());
        if base != "ringway" && base != "baseline" {
            return Err(format!(
                "rollout: only ringway drives a rollout; {sys:?} cannot run in this scenario"
            ));
        }
        if let Some(v) = v.filter(|v| v.routes > 0 || v.churn.is_some()) {
            return Err(format!(
                "variant {:?}: routes and churn change the table the rollout runs in",
                v.name
            ));
        }
    }
    Ok(())
}

fn check_faults(s: &Scenario) -> Result<(), String> {
    if s.faults.is_empty() {
        return Ok(());
    }
    let all = "faults: every run of a fault scenario starts fresh origins";
    if s.mode == ScenarioMode::Tcp {
        return Err("faults: the origins' faults are HTTP answers; use mode = \"http\"".into());
    }
    if s.sweep.rates.is_empty() || s.sweep.max_throughput {
        return Err(format!(
            "{all} and runs open loop: set [sweep] rates and max_throughput = false"
        ));
    }
    if s.memory.idle_connections + s.memory.idle_tcp_pairs > 0 {
        return Err(format!(
            "{all}: set [memory] idle_connections = 0 (no memory run)"
        ));
    }
    for (i, f) in s.faults.iter().enumerate() {
        let at = |what: String| Err(format!("faults[{i}]: {what}"));
        if let Some(o) = f.origins.iter().find(|&&o| o >= s.origin.count) {
            return at(format!(
                "origins: {o} is not an origin (0 to {}, [origin] count)",
                s.origin.count - 1
            ));
        }
        if f.at >= s.load.duration {
            return at(format!(
                "at = {:?} is not within the measured window of {:?}",
                f.at, s.load.duration
            ));
        }
        if !(0.0..=1.0).contains(&f.fail_ratio) {
            return at(format!("fail_ratio = {}: from 0 to 1", f.fail_ratio));
        }
        if f.lasting.is_some_and(|d| d.is_zero()) {
            return at("for: longer than zero".into());
        }
        let misbehaves = !f.delay.is_zero() || f.fail_ratio > 0.0;
        if f.kill && (misbehaves || f.lasting.is_some()) {
            return at("kill: a crash lasts to the end of the run, and answers nothing".into());
        }
        if !f.kill && !misbehaves {
            return at("nothing happens: set delay, fail_ratio or kill".into());
        }
    }
    Ok(())
}

fn check_name(key: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{key} {name:?}: letters, digits, '-' and '_' only (it names a directory)"
        ));
    }
    Ok(())
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration: {e}")))
}

fn some_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn all_systems() -> Vec<String> {
    ["direct", "ringway", "nginx", "haproxy"]
        .map(String::from)
        .to_vec()
}
fn three() -> usize {
    3
}
fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn five_usize() -> usize {
    5
}
fn five() -> f64 {
    5.0
}
fn ten() -> f64 {
    10.0
}
fn thirty_two() -> usize {
    32
}
fn ten_thousand() -> usize {
    10_000
}
fn chunk() -> usize {
    64 * 1024
}
fn core_zero() -> String {
    "0".into()
}
fn get() -> String {
    "GET".into()
}
fn slash() -> String {
    "/".into()
}
fn bench_host() -> String {
    "bench".into()
}
fn yes() -> bool {
    true
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn quarter_second() -> Duration {
    Duration::from_millis(250)
}
fn five_percent() -> u32 {
    5
}
fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}

#[cfg(test)]
mod tests;
