//! Equivalent configurations of the proxies under test, as text.
//!
//! One [`Layout`] gives every proxy the same job: listen on one address,
//! forward to one origin, run on one core, hold a given number of client
//! connections. The generated files then make the same choices for each
//! proxy, so that a difference in the figures is a difference between the
//! proxies, not between their settings:
//!
//! * one worker (nginx `worker_processes 1`, HAProxy `nbthread 1`, ringway
//!   `worker_cores = [core]`), pinned to the proxy core by the proxy's own
//!   setting; the runner also confines the whole process there with
//!   `taskset`, so helper threads and the master process count on that core;
//! * HTTP: keep-alive on both sides, no limit on requests per connection,
//!   idle timeouts of [`IDLE_TIMEOUT_SECS`] everywhere, the same number of
//!   idle upstream connections kept ([`idle_pool`]), and the same four
//!   headers added to every request (ringway adds `X-Forwarded-For`,
//!   `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Request-ID` by itself);
//! * no access logs, errors only, unless the layout asks for an access log
//!   line per request ([`Observe`]: the same JSON-shaped line everywhere)
//!   or, for ringway, spans exported to a collector;
//! * the same accept backlog ([`BACKLOG`], as ringway's workers use) and
//!   connection limits sized from [`Layout::max_connections`];
//! * with TLS ([`Layout::tls`]), the same certificate and key, TLS 1.3
//!   only, the same suites in the same order ([`TLS13_SUITES`](tls::TLS13_SUITES)) and key
//!   exchange groups ([`TLS_GROUPS`](tls::TLS_GROUPS)), ALPN `http/1.1` on HTTP listeners,
//!   each system's own defaults for session tickets, and, with client
//!   authentication, client certificates required and verified against the
//!   same CA (chains of depth 2 at most); the origin stays plaintext.
//!
//! Every path a proxy writes (pid file, temporary files) is inside
//! [`Layout::dir`]: the packaged defaults point at directories only root
//! may write.
//!
//! These are pure functions of their inputs; [`super::system`] writes,
//! checks and runs the results.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::scenario::IoBackend;

pub use self::observe::{access_log_path, Observe, Tracing};
pub use self::tls::{ListenerTls, UpstreamTls};

/// Idle timeout, in seconds, of client connections and of pooled upstream
/// connections, for every proxy: far longer than any run, so that no
/// connection of the memory run or of a pause between runs is closed by a
/// timer.
pub const IDLE_TIMEOUT_SECS: u32 = 300;

/// Accept backlog of every proxy's listener: the value ringway's workers
/// use (`dataplane::worker::listeners`), so that a burst of connects meets
/// the same queue everywhere (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: u32 = 4096;

/// Connections granted above [`Layout::max_connections`]: the runner's own
/// readiness probes, and connections of the previous run the kernel has not
/// finished closing.
pub const SPARE_CONNECTIONS: usize = 64;

/// File descriptors a proxy holds besides its connections: listeners, log
/// files, the admin API, eventfds, rings, pipes.
pub const SPARE_FILES: u64 = 256;

/// Largest `pool_max_idle` ringway accepts.
const RINGWAY_MAX_POOL: usize = 4096;

/// What a proxy speaks to its clients and to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// HTTP/1.1 with keep-alive on both sides.
    Http,
    /// Bytes forwarded as they come (L4).
    Tcp,
}

impl Mode {
    /// Both modes.
    #[cfg(test)]
    pub const ALL: [Mode; 2] = [Mode::Http, Mode::Tcp];

    /// `"http"` or `"tcp"`: the name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where and how a proxy under test runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// HTTP or TCP proxying.
    pub mode: Mode,
    /// The one core the proxy runs on.
    pub proxy_core: usize,
    /// ringway's control agent core (`runtime.control_core`); `None`: it
    /// shares the proxy core.
    pub control_core: Option<usize>,
    /// Where the proxy listens.
    pub listen: SocketAddr,
    /// The origins it forwards to (round robin); never empty.
    pub origins: Vec<SocketAddr>,
    /// ringway's admin API address (only ringway uses it).
    pub admin: SocketAddr,
    /// Client connections the proxy must hold at once.
    pub max_connections: usize,
    /// Of those, how many may wait for an answer at the same time (the
    /// load's connections).
    pub concurrent: usize,
    /// The run directory: configs, pid files, temporary files and logs.
    pub dir: PathBuf,
    /// ringway's table beyond the one route to the origins.
    pub table: Table,
    /// HAProxy: move bytes with `splice()` (`option splice-request`,
    /// `option splice-response`).
    pub splice: bool,
    /// A variant's own settings, from the scenario file.
    pub tuning: Tuning,
    /// TLS on the listener (clients speak TLS 1.3 to the proxy); `None`:
    /// plaintext.
    pub tls: Option<ListenerTls>,
    /// TLS to the upstream (the proxy speaks TLS 1.3 to what it forwards
    /// to: the inbound half of a sidecar pair); `None`: plaintext, as to
    /// the origins.
    pub upstream_tls: Option<UpstreamTls>,
    /// Access log and span export; off by default.
    pub observe: Observe,
}

/// Settings the scenario file adds to a system's generated configuration,
/// as it spells them: how the resilience scenarios give each proxy its load
/// balancing, health, retry and ejection settings, in its own terms, and
/// how the traffic-policy scenarios give ringway's route a policy or a
/// rollout. Each system reads only its own part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tuning {
    /// ringway: `key = value` lines of the origin cluster (TOML values,
    /// inline), replacing the generated keys of the same name.
    pub cluster: Vec<(String, String)>,
    /// ringway: `key = value` lines added to the route the load's requests
    /// match (TOML values, inline): a policy such as `rate_limit`.
    pub route: Vec<(String, String)>,
    /// ringway: the route splits its requests between two clusters of one
    /// origin each, driven by a rollout (the scenario's `[rollout]`).
    pub split: Option<Split>,
    /// HAProxy: lines at the end of `backend origin`.
    pub haproxy_backend: Vec<String>,
    /// HAProxy: words appended to every `server` line.
    pub haproxy_server: String,
    /// nginx: directives (without `;`) of `upstream origin`.
    pub nginx_upstream: Vec<String>,
    /// nginx: parameters appended to every `server` line.
    pub nginx_server: String,
    /// nginx: directives (without `;`) of `location /`.
    pub nginx_location: Vec<String>,
    /// ringway: the reactor its workers run on, given on its command line
    /// (`run --io-backend <value>`), not in its configuration file: the
    /// file stays the one every ringway system of the run gets.
    pub io_backend: Option<IoBackend>,
}

impl Tuning {
    /// `table`'s keys as `key = value` lines, the values written inline
    /// (`retry = { retries = 2, retry_on = ["reset"] }`), in key order.
    pub fn cluster_lines(table: &toml::Table) -> Vec<(String, String)> {
        table
            .iter()
            .map(|(k, v)| {
                let bare = !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                let key = if bare {
                    k.clone()
                } else {
                    toml::Value::String(k.clone()).to_string()
                };
                (key, v.to_string())
            })
            .collect()
    }

    /// `table` as one inline TOML value: `{ a = 1, b = "x" }`.
    pub fn inline(table: &toml::Table) -> String {
        let items: Vec<String> = Self::cluster_lines(table)
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        format!("{{ {} }}", items.join(", "))
    }

    /// Whether the variant sets ringway cluster key `key`.
    fn sets(&self, key: &str) -> bool {
        self.cluster.iter().any(|(k, _)| k == key)
    }
}

/// ringway's catch-all route split between cluster [`STABLE`] and cluster
/// [`CANARY`], each with one of the origins as its endpoint, the canary's
/// weight moved by a rollout the agent drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The stable cluster's origin, an index into [`Layout::origins`].
    pub stable: usize,
    /// The canary cluster's origin, an index into [`Layout::origins`].
    pub canary: usize,
    /// The canary's weight in the split the route starts with, out of 100;
    /// the stable cluster has the rest.
    pub canary_weight: u32,
    /// The route's `rollout` table, inline, the clusters' names included.
    pub rollout: String,
}

/// The stable cluster of a [`Split`].
pub const STABLE: &str = "stable";
/// The canary cluster of a [`Split`].
pub const CANARY: &str = "canary";
/// The name of ringway's catch-all route, the one the load's requests
/// match when the table has no other routes.
pub const CATCH_ALL: &str = "all";
/// The name of ringway's listener.
pub const LISTENER: &str = "bench";

/// The size of ringway's routing table (see [`ringway`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Table {
    /// HTTP routes, each with a host and a path prefix, the one every
    /// request matches last; 0 for one catch-all route.
    pub routes: usize,
    /// Clusters besides `origin`, with endpoints nobody listens on.
    pub clusters: usize,
}

impl Layout {
    /// Client connections to allow for: what the run needs plus
    /// [`SPARE_CONNECTIONS`].
    fn clients(&self) -> usize {
        self.max_connections.saturating_add(SPARE_CONNECTIONS)
    }

    /// The cores the whole process is confined to: the proxy core, and
    /// ringway's control core when it has one of its own.
    pub fn cores(&self, ringway: bool) -> Vec<usize> {
        let mut cores = vec![self.proxy_core];
        if let Some(c) = self
            .control_core
            .filter(|&c| ringway && c != self.proxy_core)
        {
            cores.push(c);
        }
        cores
    }
}

/// The host of route `i` of a large table; requests for the last route
/// (`i = 0`) carry `h0.example.com`.
pub fn route_host(i: usize) -> String {
    format!("h{i}.example.com")
}

/// The path prefix of route `i` of a large table.
pub fn route_prefix(i: usize) -> String {
    format!("/r{i}/")
}

/// Ports of the never-connected endpoint pool: each of the pool's IPs
/// appears with each of these ports.
const POOL_PORTS: [u16; 4] = [10001, 10002, 10003, 10004];
/// Distinct addresses of the pool: 254 IPs of 127.0.1.0/24 by
/// [`POOL_PORTS`].
const POOL_SIZE: usize = 254 * POOL_PORTS.len();
/// Distinct addresses the extra clusters draw their endpoints from, and
/// endpoints per extra cluster.
const POOL_USED: usize = 1_000;
const ENDPOINTS_PER_CLUSTER: usize = 3;

/// The `i`th address of the pool nobody listens on: 127.0.1.(1 + i / 4)
/// with one of [`POOL_PORTS`]; distinct for `i` below [`POOL_SIZE`].
pub fn pool_address(i: usize) -> SocketAddr {
    let i = i % POOL_SIZE;
    let host = u8::try_from(1 + i / POOL_PORTS.len()).unwrap_or(u8::MAX);
    SocketAddr::from(([127, 0, 1, host], POOL_PORTS[i % POOL_PORTS.len()]))
}

/// `"a", "b"` for a TOML array.
fn quoted(addrs: &[SocketAddr]) -> String {
    let items: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    items.join(", ")
}

/// Idle upstream connections each proxy keeps for reuse: one per client
/// connection that may be waiting for an answer at once (the load's
/// connections, and [`SPARE_CONNECTIONS`]; the memory run's idle clients
/// send one request at a time), capped at what ringway accepts. nginx
/// (`keepalive`), HAProxy (`pool-max-conn`) and ringway (`pool_max_idle`)
/// all get this number.
pub fn idle_pool(layout: &Layout) -> usize {
    layout
        .concurrent
        .saturating_add(SPARE_CONNECTIONS)
        .min(layout.clients())
        .min(RINGWAY_MAX_POOL)
}

/// Upstream connections a proxy may hold at once: in TCP mode one per
/// client connection; in HTTP mode at most the idle pool (a client
/// connection only holds an upstream one while its request is under way,
/// and those come back to the pool).
pub fn upstreams(layout: &Layout) -> usize {
    match layout.mode {
        Mode::Tcp => layout.clients(),
        Mode::Http => idle_pool(layout),
    }
}

/// Open files a proxy needs for `layout`: its client and upstream sockets,
/// plus [`SPARE_FILES`].
pub fn open_files(layout: &Layout) -> u64 {
    let sockets =
        u64::try_from(layout.clients().saturating_add(upstreams(layout))).unwrap_or(u64::MAX);
    sockets.saturating_add(SPARE_FILES)
}

/// ringway's configuration (TOML) for `layout`.
pub fn ringway(layout: &Layout) -> String {
    let core = layout.proxy_core;
    let control = match layout.control_core {
        Some(c) => format!(
            "# The control agent on core {c}: the process runs under `taskset` on\n\
             # both cores, and its CPU counts in ringway's.\ncontrol_core = {c}\n"
        ),
        None => "\
# No control_core: the whole process runs under `taskset -c {core}`, as the
# peers do, so the control agent (idle during a run) shares the core and its
# CPU counts in ringway's.
"
        .replace("{core}", &core.to_string()),
    };
    let mut text = format!(
        "\
# ringway under `ringway-bench compare` ({mode}): one worker on core {core}.
[runtime]
worker_cores = [{core}]
{control}drain_timeout = \"2s\"
# The clients the run needs, as HAProxy's `maxconn`: ringway would
# otherwise derive its cap from the open-file limit at two files per
# client, fewer than the memory run's idle keep-alive clients.
max_connections = {clients}

[admin]
address = \"{admin}\"
{tracing}
[[listeners]]
name = \"bench\"
address = \"{listen}\"
idle_timeout = \"{IDLE_TIMEOUT_SECS}s\"
",
        mode = layout.mode,
        admin = layout.admin,
        listen = layout.listen,
        clients = layout.clients(),
        tracing = observe::ringway_tracing(layout),
    );
    if let Some(tls) = &layout.tls {
        text.push_str(&tls::ringway_listener(tls));
    }
    text.push_str(&observe::ringway_access_log(layout));
    let table = layout.table;
    let tuning = &layout.tuning;
    match layout.mode {
        Mode::Http if table.routes == 0 => {
            text.push_str(
                "\
protocol = \"http\"

  [[listeners.routes]]
  name = \"all\"
  path_prefix = \"/\"
",
            );
            match &tuning.split {
                Some(split) => text.push_str(&format!(
                    "  # The rollout's split: the agent moves the canary's weight.\n  \
                     split = [{{ cluster = \"{STABLE}\", weight = {stable} }}, \
                     {{ cluster = \"{CANARY}\", weight = {canary} }}]\n  rollout = {rollout}\n",
                    stable = 100u32.saturating_sub(split.canary_weight),
                    canary = split.canary_weight,
                    rollout = split.rollout,
                )),
                None => text.push_str("  cluster = \"origin\"\n"),
            }
            text.push_str(&route_lines(tuning));
        }
        Mode::Http => {
            text.push_str(&format!(
                "protocol = \"http\"\n# {n} routes; requests for {host}{prefix} match the last one.\n",
                n = table.routes,
                host = route_host(0),
                prefix = route_prefix(0),
            ));
            for i in (0..table.routes).rev() {
                // Route 0 carries the traffic; the others point at the extra
                // clusters, when there are any.
                let cluster = match (i, table.clusters) {
                    (0, _) | (_, 0) => "origin".to_owned(),
                    (i, n) => format!("c{}", (i - 1) % n),
                };
                text.push_str(&format!(
                    "\n  [[listeners.routes]]\n  name = \"r{i}\"\n  host = \"{}\"\n  path_prefix = \"{}\"\n  cluster = \"{cluster}\"\n",
                    route_host(i),
                    route_prefix(i)
                ));
                if i == 0 {
                    text.push_str(&route_lines(tuning));
                }
            }
        }
        Mode::Tcp => text.push_str(
            "\
protocol = \"tcp\"
cluster = \"origin\"
",
        ),
    }
    match &tuning.split {
        Some(split) => {
            let origin = |i: usize| -> Vec<SocketAddr> {
                layout.origins.get(i).copied().into_iter().collect()
            };
            text.push_str(&ringway_cluster(layout, STABLE, &origin(split.stable)));
            text.push_str(&ringway_cluster(layout, CANARY, &origin(split.canary)));
        }
        None => text.push_str(&ringway_cluster(layout, "origin", &layout.origins)),
    }
    if table.clusters > 0 {
        text.push_str(&format!(
            "\n# {n} more clusters, {ENDPOINTS_PER_CLUSTER} endpoints each drawn from {POOL_USED} addresses\n\
             # of 127.0.1.0/24 that nothing listens on and nothing connects to.\n",
            n = table.clusters
        ));
    }
    for k in 0..table.clusters {
        let endpoints: Vec<SocketAddr> = (0..ENDPOINTS_PER_CLUSTER)
            .map(|j| pool_address((k * ENDPOINTS_PER_CLUSTER + j) % POOL_USED))
            .collect();
        text.push_str(&format!(
            "\n[[clusters]]\nname = \"c{k}\"\nendpoints = [{}]\nconnect_timeout = \"1s\"\n",
            quoted(&endpoints)
        ));
    }
    text
}

/// One `[[clusters]]` entry of ringway's configuration: `endpoints` with
/// the generated settings, then the variant's own.
fn ringway_cluster(layout: &Layout, name: &str, endpoints: &[SocketAddr]) -> String {
    let tuning = &layout.tuning;
    let mut text = format!(
        "\n[[clusters]]\nname = \"{name}\"\nendpoints = [{}]\n",
        quoted(endpoints)
    );
    if !tuning.sets("connect_timeout") {
        text.push_str("connect_timeout = \"1s\"\n");
    }
    if let Some(tls) = &layout.upstream_tls {
        text.push_str(&tls::ringway_cluster(tls));
    }
    if layout.mode == Mode::Http {
        text.push_str(
            "# Every client connection that may wait for an answer keeps its upstream
# connection, as nginx's `keepalive` and HAProxy's `pool-max-conn` do.
",
        );
        if !tuning.sets("pool_max_idle") {
            text.push_str(&format!("pool_max_idle = {}\n", idle_pool(layout)));
        }
        if !tuning.sets("pool_idle_timeout") {
            text.push_str(&format!("pool_idle_timeout = \"{IDLE_TIMEOUT_SECS}s\"\n"));
        }
    }
    if !tuning.cluster.is_empty() {
        text.push_str("# The variant's own settings (the scenario file's `cluster`).\n");
        for (k, v) in &tuning.cluster {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    text
}

/// The variant's own keys of the route the load's requests match, indented
/// as the route's other keys.
fn route_lines(tuning: &Tuning) -> String {
    if tuning.route.is_empty() {
        return String::new();
    }
    let mut text = String::from("  # The variant's own settings (the scenario file's `route`).\n");
    for (k, v) in &tuning.route {
        text.push_str(&format!("  {k} = {v}\n"));
    }
    text
}

/// What an nginx configuration needs to know beyond the [`Layout`]: facts
/// about the binary and the user running it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxHost {
    /// The dynamic stream module to load in TCP mode; `None` when the
    /// module is built in (or in HTTP mode, where it is not used).
    pub stream_module: Option<PathBuf>,
    /// The `user` of the worker processes. Set it when the master runs as
    /// root: nginx would otherwise run its workers as `nobody`, who cannot
    /// reach temporary files in a private run directory, and the peers run
    /// as the invoking user.
    pub worker_user: Option<String>,
}

/// nginx's configuration (`nginx.conf`) for `layout`, to be run with
/// `nginx -p <dir> -c <file>`.
pub fn nginx(layout: &Layout, host: &NginxHost) -> String {
    let core = layout.proxy_core;
    let mut text = String::new();
    if layout.mode == Mode::Tcp {
        if let Some(module) = &host.stream_module {
            // Must come before the `stream` block that needs it.
            text.push_str(&format!("load_module {};\n", quote(module)));
        }
    }
    text.push_str(&format!(
        "\
# nginx under `ringway-bench compare` ({mode}): one worker pinned to core {core}.
worker_processes 1;
worker_cpu_affinity {mask};
daemon off;
master_process on;
",
        mode = layout.mode,
        mask = affinity_mask(core),
    ));
    if let Some(user) = &host.worker_user {
        text.push_str(&format!("user {user};\n"));
    }
    text.push_str(&format!(
        "\
pid {pid};
# To stderr, which the runner sends to the log file it shows on failure.
error_log stderr warn;
worker_rlimit_nofile {files};

events {{
    # Counts upstream connections too.
    worker_connections {connections};
}}
",
        pid = quote(&layout.dir.join("nginx.pid")),
        files = open_files(layout),
        connections = layout.clients().saturating_add(upstreams(layout)),
    ));
    match layout.mode {
        Mode::Http => text.push_str(&nginx_http(layout)),
        Mode::Tcp => text.push_str(&nginx_stream(layout)),
    }
    text
}

/// The `http {}` block of nginx's configuration.
fn nginx_http(layout: &Layout) -> String {
    let mut temp = String::new();
    for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let path = layout.dir.join(format!("nginx-{kind}-temp"));
        temp.push_str(&format!("    {kind}_temp_path {};\n", quote(&path)));
    }
    format!(
        "
http {{
{log}{temp}    # Keep-alive without a request limit (nginx has no \"unlimited\").
    keepalive_requests 1000000000;
    keepalive_timeout {IDLE_TIMEOUT_SECS}s;

    upstream origin {{
{upstream}{servers}        keepalive {pool};
        keepalive_requests 1000000000;
        keepalive_timeout {IDLE_TIMEOUT_SECS}s;
    }}

    server {{
        listen {listen}{ssl} backlog={BACKLOG};
{tls}        location / {{
            proxy_pass {scheme}://origin;
{origination}            # Upstream keep-alive needs HTTP/1.1 and no `Connection: close`.
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            # The headers ringway adds to every request.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Request-ID $request_id;
{location}        }}
    }}
}}
",
        log = observe::nginx_access_log(layout),
        upstream = directives(&layout.tuning.nginx_upstream, "        "),
        location = directives(&layout.tuning.nginx_location, "            "),
        servers = nginx_servers(layout),
        listen = layout.listen,
        pool = idle_pool(layout),
        ssl = if layout.tls.is_some() { " ssl" } else { "" },
        tls = layout
            .tls
            .as_ref()
            .map(tls::nginx_listener)
            .unwrap_or_default(),
        scheme = if layout.upstream_tls.is_some() {
            "https"
        } else {
            "http"
        },
        origination = layout
            .upstream_tls
            .as_ref()
            .map(|t| tls::nginx_upstream(t, Mode::Http, "            "))
            .unwrap_or_default(),
    )
}

/// The `server` lines of an nginx `upstream` block.
fn nginx_servers(layout: &Layout) -> String {
    let extra = &layout.tuning.nginx_server;
    let sep = if extra.is_empty() { "" } else { " " };
    layout
        .origins
        .iter()
        .map(|o| format!("        server {o}{sep}{extra};\n"))
        .collect()
}

/// A variant's nginx directives, one a line, each ended with `;`.
fn directives(lines: &[String], indent: &str) -> String {
    lines
        .iter()
        .map(|l| format!("{indent}{};\n", l.trim()))
        .collect()
}

/// The `stream {}` block of nginx's configuration.
fn nginx_stream(layout: &Layout) -> String {
    format!(
        "
stream {{
    access_log off;

    upstream origin {{
{servers}    }}

    server {{
        listen {listen}{ssl} backlog={BACKLOG};
{tls}        proxy_pass origin;
        proxy_connect_timeout 1s;
        proxy_timeout {IDLE_TIMEOUT_SECS}s;
{origination}    }}
}}
",
        servers = nginx_servers(layout),
        listen = layout.listen,
        ssl = if layout.tls.is_some() { " ssl" } else { "" },
        tls = layout
            .tls
            .as_ref()
            .map(tls::nginx_listener)
            .unwrap_or_default(),
        origination = layout
            .upstream_tls
            .as_ref()
            .map(|t| tls::nginx_upstream(t, Mode::Tcp, "        "))
            .unwrap_or_default(),
    )
}

/// HAProxy's configuration (`haproxy.cfg`) for `layout`, to be run in the
/// foreground with `haproxy -db -f <file>`.
pub fn haproxy(layout: &Layout) -> String {
    let core = layout.proxy_core;
    let clients = layout.clients();
    let mut text = format!(
        "\
# HAProxy under `ringway-bench compare` ({mode}): one thread pinned to core {core}.
global
    nbthread 1
    cpu-map 1/1 {core}
    maxconn {clients}
    # HAProxy wants two open files per `maxconn` and, by default, refuses
    # to start when the hard limit is lower (20,000 on the machines we run
    # on, for 10,000 idle clients and their one upstream); it needs one
    # per client and one per upstream connection, as the others do.
    no strict-limits
    # Idle server connections are kept up to `pool-max-conn`, as nginx's
    # `keepalive` and ringway's `pool_max_idle` keep theirs. HAProxy would
    # otherwise stop keeping them, and close them, once a fifth and a
    # quarter of its file descriptors (sized from `maxconn`) are in use,
    # which a run without idle clients reaches: 32 keep-alive clients of a
    # sidecar pair's outbound half then cost a new TLS connection to the
    # inbound half per request.
    tune.pool-low-fd-ratio 100
    tune.pool-high-fd-ratio 100
{log}
defaults
    mode {mode}
    maxconn {clients}
    backlog {BACKLOG}
    timeout connect 1s
    timeout client {IDLE_TIMEOUT_SECS}s
    timeout server {IDLE_TIMEOUT_SECS}s
{log_format}",
        mode = layout.mode,
        log = observe::haproxy_global(layout),
        log_format = observe::haproxy_defaults(layout),
    );
    if layout.splice {
        text.push_str(
            "    # Bytes move between the sockets with splice(), never through
    # HAProxy's buffers.
    option splice-request
    option splice-response
",
        );
    }
    let listen = haproxy_address(layout.listen);
    let tuning = &layout.tuning;
    let bind_tls = layout
        .tls
        .as_ref()
        .map(|t| tls::haproxy_bind(t, layout.mode))
        .unwrap_or_default();
    let server_tls = layout
        .upstream_tls
        .as_ref()
        .map(tls::haproxy_server)
        .unwrap_or_default();
    let servers = |extra: &str| -> String {
        let own = &tuning.haproxy_server;
        let sep = if own.is_empty() { "" } else { " " };
        layout
            .origins
            .iter()
            .enumerate()
            .map(|(i, o)| {
                format!(
                    "    server origin{i} {}{server_tls}{extra}{sep}{own}\n",
                    haproxy_address(*o)
                )
            })
            .collect()
    };
    match layout.mode {
        Mode::Http => text.push_str(&format!(
            "    option http-keep-alive
    timeout http-keep-alive {IDLE_TIMEOUT_SECS}s
    # Idle server connections are shared by every client connection.
    http-reuse always

frontend bench
    bind {listen}{bind_tls}
    # The headers ringway adds to every request.
    option forwardfor
    http-request set-header X-Forwarded-Proto {scheme}
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    unique-id-format %{{+X}}o%Ts-%rt
    unique-id-header X-Request-ID
{capture}    default_backend origin

backend origin
    # As many idle connections as ringway and nginx keep, purged no sooner.
{servers}",
            servers = servers(&format!(
                " pool-max-conn {} pool-purge-delay {IDLE_TIMEOUT_SECS}s",
                idle_pool(layout)
            )),
            scheme = if layout.tls.is_some() {
                "https"
            } else {
                "http"
            },
            capture = observe::haproxy_frontend(layout),
        )),
        Mode::Tcp => text.push_str(&format!(
            "
frontend bench
    bind {listen}{bind_tls}
    default_backend origin

backend origin
{servers}",
            servers = servers(""),
        )),
    }
    if !tuning.haproxy_backend.is_empty() {
        text.push_str(
            "    # The variant's own settings (the scenario file's `haproxy.backend`).\n",
        );
        for line in &tuning.haproxy_backend {
            text.push_str(&format!("    {}\n", line.trim()));
        }
    }
    text
}

/// `text` as one HAProxy word: in double quotes, with `"`, `\\`, `$` and
/// `#` escaped.
fn haproxy_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// nginx's `worker_cpu_affinity` mask selecting `core` alone: a `1`
/// followed by one `0` per lower core.
fn affinity_mask(core: usize) -> String {
    let mut mask = String::with_capacity(core + 1);
    mask.push('1');
    mask.extend(std::iter::repeat_n('0', core));
    mask
}

/// `path` as a double-quoted nginx parameter, so that spaces and `;` in a
/// run directory do not end it.
fn quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `addr` as HAProxy spells it: IPv6 with the explicit `ipv6@` prefix, as
/// HAProxy reads the last colon as the port separator.
fn haproxy_address(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("ipv6@{}:{}", v6.ip(), v6.port()),
    }
}

mod observe;
#[cfg(test)]
mod tests;
mod tls;
