//! The observability part of each proxy's configuration: an access log
//! line for every request, and (ringway only) the spans of sampled
//! requests exported to an OTLP/HTTP collector.
//!
//! The access logs are as alike as the systems let them be: one JSON
//! object per line with the same kind of fields (when, method, authority,
//! path, protocol, TLS, status, bytes each way, durations, the upstream
//! endpoint, the listener, the request id, the client), into a file of the
//! run directory ([`access_log_path`]), and each system's own way of
//! writing it in the background of a request:
//!
//! * ringway: the listener's `access_log = { path, format = "json" }`: the
//!   worker queues a compact record, a writer thread on the control core
//!   (here the proxy core) formats the lines and writes at 64 KiB or once a
//!   second;
//! * nginx: `log_format ... escape=json` and `access_log ... buffer=64k
//!   flush=1s`, written by the worker itself when the buffer fills;
//! * HAProxy: a JSON-shaped `log-format` sent to `log stdout format raw`,
//!   which the runner points at the file: HAProxy has no buffered file log
//!   of its own, and writes every line as it is made (its usual target, a
//!   syslog socket, costs it the same one write per line, and the reader's
//!   work would run outside the process and not be counted).
//!
//! nginx (no OpenTelemetry module in Debian's packages) and HAProxy 2.6
//! (an OpenTracing filter that needs a tracer plugin, none of which speaks
//! OTLP) export no spans here: a scenario that traces runs them without.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{haproxy_quote, quote, Layout, Mode};

/// The name of the access log file in a system's run directory.
pub const ACCESS_LOG_FILE: &str = "access.log";

/// The path of the OTLP/HTTP trace export on the collector.
pub const TRACES_PATH: &str = "/v1/traces";

/// What a proxy records of the traffic besides its counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Observe {
    /// Every request logged as a JSON line into [`access_log_path`].
    pub access_log: bool,
    /// ringway: the spans of sampled requests sent to a collector.
    pub tracing: Option<Tracing>,
}

/// ringway's `[tracing]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracing {
    /// The collector's address (OTLP/HTTP, plaintext, [`TRACES_PATH`]).
    pub collector: SocketAddr,
    /// The share of requests without a sampling decision that are traced
    /// (the load's requests carry none).
    pub sample: f64,
}

/// Whether `layout`'s proxy logs every request: HTTP listeners only (a
/// scenario refuses an access log in TCP mode).
fn logs(layout: &Layout) -> bool {
    layout.observe.access_log && layout.mode == Mode::Http
}

/// Where `layout`'s proxy writes its access log.
pub fn access_log_path(layout: &Layout) -> PathBuf {
    layout.dir.join(ACCESS_LOG_FILE)
}

/// `path` as a TOML string.
fn toml_path(path: &Path) -> String {
    toml::Value::String(path.to_string_lossy().into_owned()).to_string()
}

/// ringway: the `[tracing]` table, or nothing (HTTP listeners only trace).
pub(super) fn ringway_tracing(layout: &Layout) -> String {
    let Some(t) = layout.observe.tracing.filter(|_| layout.mode == Mode::Http) else {
        return String::new();
    };
    format!(
        "
# Spans of sampled requests to the runner's collector sink (OTLP/HTTP),
# exported by a thread on the control core.
[tracing]
collector = \"http://{collector}{TRACES_PATH}\"
sample = {sample:?}
",
        collector = t.collector,
        sample = t.sample,
    )
}

/// ringway: the listener's `access_log` line, or nothing.
pub(super) fn ringway_access_log(layout: &Layout) -> String {
    if !logs(layout) {
        return String::new();
    }
    format!(
        "# Every request, one JSON line each.\naccess_log = {{ path = {}, format = \"json\" }}\n",
        toml_path(&access_log_path(layout))
    )
}

/// nginx: the `http {}` block's logging directives (indented for it):
/// `access_log off`, or a JSON line per request, buffered.
pub(super) fn nginx_access_log(layout: &Layout) -> String {
    if !logs(layout) {
        return "    access_log off;\n".to_owned();
    }
    // `$request_time` and `$upstream_header_time` are seconds with
    // millisecond resolution, hence the keys' unit.
    let format = concat!(
        "'{\"start_time\":\"$time_iso8601\",\"method\":\"$request_method\",",
        "\"authority\":\"$http_host\",\"path\":\"$request_uri\",",
        "\"protocol\":\"$server_protocol\",\"tls\":\"$https\",\"status\":$status,",
        "\"bytes_received\":$request_length,\"bytes_sent\":$bytes_sent,",
        "\"duration_s\":$request_time,\"upstream_s\":\"$upstream_header_time\",",
        "\"upstream\":\"$upstream_addr\",\"listener\":\"$server_addr:$server_port\",",
        "\"request_id\":\"$request_id\",\"client\":\"$remote_addr:$remote_port\"}'"
    );
    format!(
        "    # Every request, one JSON line each, written 64 KiB at a time (or
    # after a second).
    log_format bench escape=json {format};
    access_log {} bench buffer=64k flush=1s;
",
        quote(&access_log_path(layout))
    )
}

/// HAProxy: the `global` section's log target (indented for it), or
/// nothing.
pub(super) fn haproxy_global(layout: &Layout) -> String {
    if !logs(layout) {
        return "    # No `log` line: logging off.\n".to_owned();
    }
    "    # Every request's line to standard output, which the runner sends to
    # the access log file.
    log stdout format raw local0 info
"
    .to_owned()
}

/// HAProxy: the `defaults` section's logging (indented for it), or
/// nothing.
pub(super) fn haproxy_defaults(layout: &Layout) -> String {
    if !logs(layout) {
        return String::new();
    }
    // `%Ta` and `%Tr` are milliseconds; `capture.req.hdr(0)` is the Host
    // header, captured by the frontend (request headers are gone by the
    // time the line is made).
    let format = concat!(
        "{\"start_time\":\"%tr\",\"method\":\"%HM\",",
        "\"authority\":\"%[capture.req.hdr(0)]\",\"path\":\"%HU\",",
        "\"protocol\":\"%HV\",\"tls\":%[ssl_fc],\"status\":%ST,",
        "\"bytes_received\":%U,\"bytes_sent\":%B,",
        "\"duration_ms\":%Ta,\"upstream_ms\":%Tr,",
        "\"upstream\":\"%si:%sp\",\"listener\":\"%fi:%fp\",",
        "\"request_id\":\"%ID\",\"client\":\"%ci:%cp\"}"
    );
    // In double quotes, the inner ones escaped (it has no `$` or `#`).
    format!(
        "    # Every request, one JSON line each; not a connection that carried
    # none (the runner's readiness probes), which the others do not log.
    log global
    option dontlognull
    log-format {}
",
        haproxy_quote(format)
    )
}

/// HAProxy: the frontend's capture of the Host header for the log line
/// (indented for it), or nothing.
pub(super) fn haproxy_frontend(layout: &Layout) -> String {
    if !logs(layout) {
        return String::new();
    }
    "    http-request capture req.hdr(host) len 128\n".to_owned()
}
