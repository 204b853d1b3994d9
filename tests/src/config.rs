//! Config files for the proxy under test: one TCP listener in front of one
//! cluster, with the knobs the tests turn.

use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddr};

use crate::ports::free_port;

/// A one-listener, one-cluster configuration; [`ProxyConfig::to_toml`]
/// renders it.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where the listener `ingress` listens.
    pub listen: SocketAddr,
    /// The endpoints of the cluster `app`, in order.
    pub endpoints: Vec<SocketAddr>,
    /// `runtime.worker_cores`.
    pub worker_cores: Vec<usize>,
    /// `runtime.drain_timeout`.
    pub drain_timeout: String,
    /// `listeners[0].idle_timeout`, left to the default when `None`.
    pub idle_timeout: Option<String>,
    /// `clusters[0].connect_timeout`, left to the default when `None`.
    pub connect_timeout: Option<String>,
    /// `admin.address`: a port of its own, so that proxies of parallel tests
    /// never contend for the default one.
    pub admin: SocketAddr,
}

impl ProxyConfig {
    /// A listener on a fresh loopback port forwarding to `endpoints`, one
    /// worker on core 0, a 5 s drain.
    pub fn new(endpoints: &[SocketAddr]) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
            endpoints: endpoints.to_vec(),
            worker_cores: vec![0],
            drain_timeout: "5s".to_owned(),
            idle_timeout: None,
            connect_timeout: None,
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
        }
    }

    /// Sets the worker cores.
    pub fn worker_cores(mut self, cores: &[usize]) -> Self {
        self.worker_cores = cores.to_vec();
        self
    }

    /// Sets the drain timeout, e.g. `"1s"`.
    pub fn drain_timeout(mut self, timeout: &str) -> Self {
        self.drain_timeout = timeout.to_owned();
        self
    }

    /// Sets the listener's idle timeout, e.g. `"500ms"`.
    pub fn idle_timeout(mut self, timeout: &str) -> Self {
        self.idle_timeout = Some(timeout.to_owned());
        self
    }

    /// Sets the cluster's connect timeout, e.g. `"300ms"`.
    pub fn connect_timeout(mut self, timeout: &str) -> Self {
        self.connect_timeout = Some(timeout.to_owned());
        self
    }

    /// The configuration as ringway reads it.
    pub fn to_toml(&self) -> String {
        let cores: Vec<String> = self.worker_cores.iter().map(|c| c.to_string()).collect();
        let endpoints: Vec<String> = self.endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        let mut text = format!(
            "[runtime]\nworker_cores = [{}]\ndrain_timeout = \"{}\"\n\n\
             [admin]\naddress = \"{}\"\n\n\
             [[listeners]]\nname = \"ingress\"\naddress = \"{}\"\nprotocol = \"tcp\"\ncluster = \"app\"\n",
            cores.join(", "),
            self.drain_timeout,
            self.admin,
            self.listen,
        );
        if let Some(idle) = &self.idle_timeout {
            let _ = writeln!(text, "idle_timeout = \"{idle}\"");
        }
        let _ = write!(
            text,
            "\n[[clusters]]\nname = \"app\"\nendpoints = [{}]\n",
            endpoints.join(", ")
        );
        if let Some(connect) = &self.connect_timeout {
            let _ = writeln!(text, "connect_timeout = \"{connect}\"");
        }
        text
    }
}
