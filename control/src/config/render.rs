//! A checked [`Config`] shown back to people: the `ringway check` summary
//! and the effective configuration as TOML.

use std::fmt::Write as _;

use serde::Serialize;

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
        }
        let _ = writeln!(out, "clusters: {}", table.clusters.len());
        for cluster in &table.clusters {
            let endpoints: Vec<String> = cluster.endpoints.iter().map(|e| e.to_string()).collect();
            let _ = writeln!(
                out,
                "  {} [{}] (connect timeout {})",
                cluster.name,
                endpoints.join(", "),
                duration::format(cluster.connect_timeout)
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
            },
            admin: OutAdmin {
                address: self.admin.address.to_string(),
            },
            listeners: table
                .listeners
                .iter()
                .map(|l| OutListener {
                    name: &l.name,
                    address: l.address.to_string(),
                    protocol: protocol_name(l.protocol()),
                    cluster: match l.service {
                        Service::Tcp { cluster } => Some(&table.cluster(cluster).name),
                        Service::Http(_) => None,
                    },
                    idle_timeout: duration::format(l.idle_timeout),
                })
                .collect(),
            clusters: table
                .clusters
                .iter()
                .map(|c| OutCluster {
                    name: &c.name,
                    endpoints: c.endpoints.iter().map(|e| e.to_string()).collect(),
                    connect_timeout: duration::format(c.connect_timeout),
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
        Service::Tcp { cluster } => format!("cluster `{}`", table.cluster(*cluster).name),
        Service::Http(http) => format!("{} routes", http.routes.len()),
    }
}

/// Where a listener sends its traffic, tersely: the cluster's name, or
/// `N routes`.
fn short_target(table: &Table, listener: &Listener) -> String {
    match &listener.service {
        Service::Tcp { cluster } => table.cluster(*cluster).name.to_string(),
        Service::Http(http) => format!("{} routes", http.routes.len()),
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
    // An empty list is left out: `listeners = []` may not follow a table,
    // and a missing list reads back as empty anyway.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    listeners: Vec<OutListener<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    clusters: Vec<OutCluster<'a>>,
}

#[derive(Serialize)]
struct OutRuntime<'a> {
    worker_cores: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    control_core: Option<usize>,
    drain_timeout: String,
    buffer_size: u32,
    buffer_count: u16,
}

#[derive(Serialize)]
struct OutAdmin {
    address: String,
}

#[derive(Serialize)]
struct OutListener<'a> {
    name: &'a str,
    address: String,
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    idle_timeout: String,
}

#[derive(Serialize)]
struct OutCluster<'a> {
    name: &'a str,
    endpoints: Vec<String>,
    connect_timeout: String,
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
