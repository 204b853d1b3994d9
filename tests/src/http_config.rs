//! Config files for HTTP listeners: one listener `web` with routes in
//! order, and the clusters they name; [`HttpConfig::to_toml`] renders it.
//!
//! Values are written into the TOML as given (`"\"1s\""`-style quoting is
//! done here for strings), so a test reads as the config it produces:
//!
//! ```text
//! HttpConfig::new()
//!     .request_timeout("1s")
//!     .route(Route::new("api").host("api.example.com").cluster("app"))
//!     .cluster("app", &[origin.addr()]);
//! ```

use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddr};

use ringway_kit::ports::free_port;

/// One HTTP listener (`web`), its routes, and clusters.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where the listener `web` listens.
    pub listen: SocketAddr,
    /// `admin.address`: a port of its own, as in [`crate::ProxyConfig`].
    pub admin: SocketAddr,
    /// `runtime.worker_cores`: one worker by default, so per-worker state
    /// (pools, held-out endpoints) is the whole proxy's.
    pub worker_cores: Vec<usize>,
    /// `runtime.drain_timeout`: 5 s unless set.
    drain_timeout: String,
    /// Further `[runtime]` keys and their TOML values, written as given.
    runtime: Vec<(String, String)>,
    /// The `[tracing]` section, rendered, when set.
    tracing: Option<String>,
    listener: Vec<(String, String)>,
    routes: Vec<Route>,
    clusters: Vec<Cluster>,
}

/// A route: its keys in the order given.
#[derive(Debug, Clone)]
pub struct Route {
    name: String,
    keys: Vec<(String, String)>,
    header_conditions: Vec<String>,
}

/// A cluster: name, endpoints, other keys.
#[derive(Debug, Clone)]
pub struct Cluster {
    name: String,
    endpoints: Vec<SocketAddr>,
    /// One per endpoint, or empty (the file then lists bare addresses).
    weights: Vec<u32>,
    keys: Vec<(String, String)>,
}

impl HttpConfig {
    /// A listener `web` on a fresh loopback port, one worker on core 0, a
    /// 5 s drain, no routes and no clusters.
    pub fn new() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
            worker_cores: vec![0],
            drain_timeout: "5s".to_owned(),
            runtime: Vec::new(),
            tracing: None,
            listener: Vec::new(),
            routes: Vec::new(),
            clusters: Vec::new(),
        }
    }

    /// A listener whose one route `all` forwards everything to cluster `app`
    /// of `endpoints`.
    pub fn forward_all(endpoints: &[SocketAddr]) -> Self {
        Self::new()
            .route(Route::new("all").cluster("app"))
            .cluster("app", endpoints)
    }

    /// Sets a listener key to a TOML value written as is (`"\"1s\""`,
    /// `"1024"`, `"true"`).
    pub fn listener_key(mut self, key: &str, toml_value: &str) -> Self {
        self.listener.retain(|(k, _)| k != key);
        self.listener.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// `idle_timeout`, e.g. `"1s"`.
    pub fn idle_timeout(self, timeout: &str) -> Self {
        self.listener_key("idle_timeout", &quote(timeout))
    }

    /// `header_timeout`.
    pub fn header_timeout(self, timeout: &str) -> Self {
        self.listener_key("header_timeout", &quote(timeout))
    }

    /// `request_timeout`.
    pub fn request_timeout(self, timeout: &str) -> Self {
        self.listener_key("request_timeout", &quote(timeout))
    }

    /// `send_timeout`.
    pub fn send_timeout(self, timeout: &str) -> Self {
        self.listener_key("send_timeout", &quote(timeout))
    }

    /// `runtime.drain_timeout`, e.g. `"1s"`.
    pub fn drain_timeout(mut self, timeout: &str) -> Self {
        self.drain_timeout = timeout.to_owned();
        self
    }

    /// Sets a `[runtime]` key to a TOML value written as is, e.g.
    /// `("access_log_buffer", "14424")`.
    pub fn runtime_key(mut self, key: &str, toml_value: &str) -> Self {
        self.runtime.retain(|(k, _)| k != key);
        self.runtime.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// `access_log = { ... }` on the listener.
    pub fn access_log(self, log: &AccessLog) -> Self {
        self.listener_key("access_log", &log.to_toml())
    }

    /// `max_body`, in bytes.
    pub fn max_body(self, bytes: u64) -> Self {
        self.listener_key("max_body", &bytes.to_string())
    }

    /// `trust_forwarded`.
    pub fn trust_forwarded(self, trust: bool) -> Self {
        self.listener_key("trust_forwarded", &trust.to_string())
    }

    /// Sets the `[tracing]` section: every HTTP listener then traces.
    pub fn tracing(mut self, tracing: &crate::trace::Tracing) -> Self {
        self.tracing = Some(tracing.to_toml());
        self
    }

    /// Appends a route (routes match in order).
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds a cluster with `connect_timeout = "1s"`.
    pub fn cluster(self, name: &str, endpoints: &[SocketAddr]) -> Self {
        self.cluster_with(Cluster::new(name, endpoints))
    }

    /// Adds a cluster built by the test.
    pub fn cluster_with(mut self, cluster: Cluster) -> Self {
        self.clusters.push(cluster);
        self
    }

    /// The configuration as ringway reads it.
    pub fn to_toml(&self) -> String {
        let cores: Vec<String> = self.worker_cores.iter().map(|c| c.to_string()).collect();
        let mut text = format!(
            "[runtime]\nworker_cores = [{}]\ndrain_timeout = {}\n",
            cores.join(", "),
            quote(&self.drain_timeout),
        );
        for (key, value) in &self.runtime {
            let _ = writeln!(text, "{key} = {value}");
        }
        let _ = write!(text, "\n[admin]\naddress = \"{}\"\n\n", self.admin);
        if let Some(tracing) = &self.tracing {
            text.push_str(tracing);
            text.push('\n');
        }
        let _ = write!(
            text,
            "[[listeners]]\nname = \"web\"\naddress = \"{}\"\nprotocol = \"http\"\n",
            self.listen,
        );
        for (key, value) in &self.listener {
            let _ = writeln!(text, "{key} = {value}");
        }
        for route in &self.routes {
            let _ = write!(
                text,
                "\n  [[listeners.routes]]\n  name = {}\n",
                quote(&route.name)
            );
            for (key, value) in &route.keys {
                let _ = writeln!(text, "  {key} = {value}");
            }
            if !route.header_conditions.is_empty() {
                let _ = writeln!(text, "  headers = [{}]", route.header_conditions.join(", "));
            }
        }
        for cluster in &self.clusters {
            let endpoints: Vec<String> = cluster
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| match cluster.weights.get(i) {
                    Some(w) => format!("{{ address = {}, weight = {w} }}", quote(&e.to_string())),
                    None => quote(&e.to_string()),
                })
                .collect();
            let _ = write!(
                text,
                "\n[[clusters]]\nname = {}\nendpoints = [{}]\n",
                quote(&cluster.name),
                endpoints.join(", ")
            );
            for (key, value) in &cluster.keys {
                let _ = writeln!(text, "{key} = {value}");
            }
        }
        text
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl Route {
    /// A route named `name` with no conditions and no action yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            keys: Vec::new(),
            header_conditions: Vec::new(),
        }
    }

    /// Sets a key to a TOML value written as is.
    pub fn key(mut self, key: &str, toml_value: &str) -> Self {
        self.keys.retain(|(k, _)| k != key);
        self.keys.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// `host = "..."` (exact, or `*.suffix`).
    pub fn host(self, host: &str) -> Self {
        self.key("host", &quote(host))
    }

    /// `path = "..."`: exact path.
    pub fn path(self, path: &str) -> Self {
        self.key("path", &quote(path))
    }

    /// `path_prefix = "..."`.
    pub fn path_prefix(self, prefix: &str) -> Self {
        self.key("path_prefix", &quote(prefix))
    }

    /// `methods = [...]`.
    pub fn methods(self, methods: &[&str]) -> Self {
        let list: Vec<String> = methods.iter().map(|m| quote(m)).collect();
        self.key("methods", &format!("[{}]", list.join(", ")))
    }

    /// A header condition: the value is exactly `value`.
    pub fn header_exact(mut self, name: &str, value: &str) -> Self {
        self.header_conditions.push(format!(
            "{{ name = {}, exact = {} }}",
            quote(name),
            quote(value)
        ));
        self
    }

    /// A header condition: the header is present.
    pub fn header_present(mut self, name: &str) -> Self {
        self.header_conditions
            .push(format!("{{ name = {}, present = true }}", quote(name)));
        self
    }

    /// A header condition: the value starts with `prefix`.
    pub fn header_prefix(mut self, name: &str, prefix: &str) -> Self {
        self.header_conditions.push(format!(
            "{{ name = {}, prefix = {} }}",
            quote(name),
            quote(prefix)
        ));
        self
    }

    /// `cluster = "..."`: forward there.
    pub fn cluster(self, cluster: &str) -> Self {
        self.key("cluster", &quote(cluster))
    }

    /// `split = [...]`: forward to clusters by weight.
    pub fn split(self, targets: &[(&str, u32)]) -> Self {
        let list: Vec<String> = targets
            .iter()
            .map(|(c, w)| format!("{{ cluster = {}, weight = {w} }}", quote(c)))
            .collect();
        self.key("split", &format!("[{}]", list.join(", ")))
    }

    /// `redirect = { status, scheme?, host?, path? }`.
    pub fn redirect(
        self,
        status: u16,
        scheme: Option<&str>,
        host: Option<&str>,
        path: Option<&str>,
    ) -> Self {
        let mut parts = vec![format!("status = {status}")];
        for (key, value) in [("scheme", scheme), ("host", host), ("path", path)] {
            if let Some(value) = value {
                parts.push(format!("{key} = {}", quote(value)));
            }
        }
        self.key("redirect", &format!("{{ {} }}", parts.join(", ")))
    }

    /// `direct = { status, body, content_type? }`.
    pub fn direct(self, status: u16, body: &str, content_type: Option<&str>) -> Self {
        let mut value = format!("{{ status = {status}, body = {}", quote(body));
        if let Some(ct) = content_type {
            let _ = write!(value, ", content_type = {}", quote(ct));
        }
        value.push_str(" }");
        self.key("direct", &value)
    }

    /// `rewrite_prefix = "..."`.
    pub fn rewrite_prefix(self, prefix: &str) -> Self {
        self.key("rewrite_prefix", &quote(prefix))
    }

    /// `request_headers = { remove, set, add }`.
    pub fn request_headers(self, edits: &HeaderEdits) -> Self {
        self.key("request_headers", &edits.to_toml())
    }

    /// `response_headers = { remove, set, add }`.
    pub fn response_headers(self, edits: &HeaderEdits) -> Self {
        self.key("response_headers", &edits.to_toml())
    }
}

/// A listener's `access_log`: where, in which format, which requests.
#[derive(Debug, Clone)]
pub struct AccessLog {
    path: String,
    format: Option<String>,
    sample: Option<f64>,
    errors_only: Option<bool>,
}

impl AccessLog {
    /// Every request, to `path` (absolute, or `-` for standard output), in
    /// the default format.
    pub fn to(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            format: None,
            sample: None,
            errors_only: None,
        }
    }

    /// `format = "json"` or `"text"`.
    pub fn format(mut self, format: &str) -> Self {
        self.format = Some(format.to_owned());
        self
    }

    /// `sample`: the share of requests logged.
    pub fn sample(mut self, ratio: f64) -> Self {
        self.sample = Some(ratio);
        self
    }

    /// `errors_only`.
    pub fn errors_only(mut self, only: bool) -> Self {
        self.errors_only = Some(only);
        self
    }

    /// The inline table.
    pub fn to_toml(&self) -> String {
        let mut parts = vec![format!("path = {}", quote(&self.path))];
        if let Some(format) = &self.format {
            parts.push(format!("format = {}", quote(format)));
        }
        if let Some(ratio) = self.sample {
            // `{:?}` keeps the decimal point: TOML reads `0` as an integer.
            parts.push(format!("sample = {ratio:?}"));
        }
        if let Some(only) = self.errors_only {
            parts.push(format!("errors_only = {only}"));
        }
        format!("{{ {} }}", parts.join(", "))
    }
}

/// Header edits of a route.
#[derive(Debug, Clone, Default)]
pub struct HeaderEdits {
    /// Names to remove.
    pub remove: Vec<String>,
    /// Names set to one value.
    pub set: Vec<(String, String)>,
    /// Fields added.
    pub add: Vec<(String, String)>,
}

impl HeaderEdits {
    fn to_toml(&self) -> String {
        let table = |pairs: &[(String, String)]| {
            let items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} = {}", quote(k), quote(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        };
        let remove: Vec<String> = self.remove.iter().map(|n| quote(n)).collect();
        format!(
            "{{ remove = [{}], set = {}, add = {} }}",
            remove.join(", "),
            table(&self.set),
            table(&self.add)
        )
    }
}

impl Cluster {
    /// A cluster of `endpoints` with `connect_timeout = "1s"`.
    pub fn new(name: &str, endpoints: &[SocketAddr]) -> Self {
        Self {
            name: name.to_owned(),
            endpoints: endpoints.to_vec(),
            weights: Vec::new(),
            keys: vec![("connect_timeout".to_owned(), quote("1s"))],
        }
    }

    /// `lb = "..."`.
    pub fn lb(self, policy: &str) -> Self {
        self.key("lb", &quote(policy))
    }

    /// A weight per endpoint: the endpoints are written as
    /// `{ address = "...", weight = N }`.
    pub fn weights(mut self, weights: &[u32]) -> Self {
        assert_eq!(
            weights.len(),
            self.endpoints.len(),
            "one weight per endpoint"
        );
        self.weights = weights.to_vec();
        self
    }

    /// Sets a key to a TOML value written as is.
    pub fn key(mut self, key: &str, toml_value: &str) -> Self {
        self.keys.retain(|(k, _)| k != key);
        self.keys.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// `connect_timeout`, e.g. `"200ms"`.
    pub fn connect_timeout(self, timeout: &str) -> Self {
        self.key("connect_timeout", &quote(timeout))
    }

    /// `pool_idle_timeout`.
    pub fn pool_idle_timeout(self, timeout: &str) -> Self {
        self.key("pool_idle_timeout", &quote(timeout))
    }

    /// `pool_max_idle`.
    pub fn pool_max_idle(self, n: usize) -> Self {
        self.key("pool_max_idle", &n.to_string())
    }
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_routes_and_clusters() {
        let endpoint = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
        let config = HttpConfig::new()
            .idle_timeout("1s")
            .max_body(10)
            .route(
                Route::new("api")
                    .host("*.example.com")
                    .methods(&["GET", "HEAD"])
                    .header_exact("x-canary", "1")
                    .header_present("x-debug")
                    .split(&[("v1", 90), ("v2", 10)]),
            )
            .route(Route::new("ok").direct(200, "ok\n", Some("text/plain")))
            .cluster_with(Cluster::new("v1", &[endpoint]).pool_idle_timeout("30s"));
        let text = config.to_toml();
        assert!(text.contains("protocol = \"http\"\nidle_timeout = \"1s\"\nmax_body = 10\n"));
        assert!(text.contains("  host = \"*.example.com\"\n  methods = [\"GET\", \"HEAD\"]\n"));
        assert!(text.contains(
            "  headers = [{ name = \"x-canary\", exact = \"1\" }, { name = \"x-debug\", present = true }]"
        ));
        assert!(text.contains(
            "split = [{ cluster = \"v1\", weight = 90 }, { cluster = \"v2\", weight = 10 }]"
        ));
        assert!(text.contains(
            "direct = { status = 200, body = \"ok\\n\", content_type = \"text/plain\" }"
        ));
        assert!(text.contains("endpoints = [\"127.0.0.1:9\"]\nconnect_timeout = \"1s\"\npool_idle_timeout = \"30s\"\n"));
    }

    #[test]
    fn renders_runtime_keys_and_the_access_log() {
        let text = HttpConfig::new()
            .runtime_key("access_log_buffer", "14424")
            .access_log(
                &AccessLog::to("/var/log/a.log")
                    .format("text")
                    .sample(0.0)
                    .errors_only(true),
            )
            .to_toml();
        assert!(text.contains("drain_timeout = \"5s\"\naccess_log_buffer = 14424\n\n[admin]"));
        assert!(text.contains(
            "protocol = \"http\"\naccess_log = { path = \"/var/log/a.log\", format = \"text\", \
             sample = 0.0, errors_only = true }\n"
        ));
    }

    #[test]
    fn renders_header_edits() {
        let edits = HeaderEdits {
            remove: vec!["x-internal".into()],
            set: vec![("x-env".into(), "prod".into())],
            add: vec![],
        };
        assert_eq!(
            edits.to_toml(),
            "{ remove = [\"x-internal\"], set = { \"x-env\" = \"prod\" }, add = {  } }"
        );
    }
}
