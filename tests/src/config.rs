//! Config files for the proxy under test: one TCP listener in front of one
//! cluster, with the knobs the tests turn, plus optional further listeners
//! with clusters of their own; a config file that can be edited the way
//! editors save; and one mounted the way Kubernetes mounts a ConfigMap.

use std::fmt::Write;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use ringway_kit::ports::free_port;

/// The worker cores of a test that wants two workers where the machine has
/// two cores: `[0, 1]`, or `[0]` on one core.
pub fn up_to_two_cores() -> Vec<usize> {
    if ringway_kit::procfs::online_cores() >= 2 {
        vec![0, 1]
    } else {
        vec![0]
    }
}

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
    /// Further listeners, rendered after `ingress`, in order.
    pub extra_listeners: Vec<ExtraListener>,
    /// Further `[admin]` keys and their TOML values, written as given.
    pub admin_keys: Vec<(String, String)>,
}

/// A listener besides `ingress`, with a cluster of its own that bears the
/// listener's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraListener {
    /// The name of both the listener and its cluster.
    pub name: String,
    /// Where it listens.
    pub listen: SocketAddr,
    /// Its cluster's endpoints, in order.
    pub endpoints: Vec<SocketAddr>,
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
            extra_listeners: Vec::new(),
            admin_keys: Vec::new(),
        }
    }

    /// Adds a listener `name` on a fresh loopback port, forwarding to a
    /// cluster `name` of `endpoints`; [`ProxyConfig::listener_addr`] tells
    /// its address.
    pub fn listener(mut self, name: &str, endpoints: &[SocketAddr]) -> Self {
        self.extra_listeners.push(ExtraListener {
            name: name.to_owned(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
            endpoints: endpoints.to_vec(),
        });
        self
    }

    /// Removes the extra listener `name` (and its cluster), if present.
    pub fn without_listener(mut self, name: &str) -> Self {
        self.extra_listeners.retain(|l| l.name != name);
        self
    }

    /// Sets the endpoints of the cluster `app`, behind `ingress`.
    pub fn endpoints(mut self, endpoints: &[SocketAddr]) -> Self {
        self.endpoints = endpoints.to_vec();
        self
    }

    /// The address of the extra listener `name`; panics if there is none.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        self.extra_listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.listen)
            .unwrap_or_else(|| panic!("the config has no extra listener `{name}`"))
    }

    /// Sets an `[admin]` key to a TOML value written as is, e.g.
    /// `("head_timeout", "\"1s\"")`.
    pub fn admin_key(mut self, key: &str, toml_value: &str) -> Self {
        self.admin_keys.retain(|(k, _)| k != key);
        self.admin_keys
            .push((key.to_owned(), toml_value.to_owned()));
        self
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
            "[runtime]\nworker_cores = [{}]\ndrain_timeout = \"{}\"\n\n[admin]\naddress = \"{}\"\n",
            cores.join(", "),
            self.drain_timeout,
            self.admin,
        );
        for (key, value) in &self.admin_keys {
            let _ = writeln!(text, "{key} = {value}");
        }
        let _ = write!(
            text,
            "\n[[listeners]]\nname = \"ingress\"\naddress = \"{}\"\nprotocol = \"tcp\"\ncluster = \"app\"\n",
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
        for extra in &self.extra_listeners {
            let endpoints: Vec<String> =
                extra.endpoints.iter().map(|e| format!("\"{e}\"")).collect();
            let _ = write!(
                text,
                "\n[[listeners]]\nname = \"{name}\"\naddress = \"{listen}\"\nprotocol = \"tcp\"\n\
                 cluster = \"{name}\"\n\n[[clusters]]\nname = \"{name}\"\nendpoints = [{endpoints}]\n",
                name = extra.name,
                listen = extra.listen,
                endpoints = endpoints.join(", "),
            );
        }
        text
    }
}

/// A config file alone in a temporary directory (removed on drop), for a
/// proxy started with `--config` that watches it.
///
/// [`ConfigFile::replace`] saves the way most editors do: it writes a new
/// file beside the old one and renames it over, so the watched path gets a
/// new inode.
#[derive(Debug)]
pub struct ConfigFile {
    dir: TempDir,
    path: PathBuf,
}

impl ConfigFile {
    /// Creates `ringway.toml` holding `text` in a fresh directory.
    pub fn new(text: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ringway-config-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a config directory: {e}"));
        let path = dir.path().join("ringway.toml");
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        Self { dir, path }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a string, as ringway names it in its messages.
    pub fn path_str(&self) -> &str {
        self.path
            .to_str()
            .unwrap_or_else(|| panic!("temp path {} is not UTF-8", self.path.display()))
    }

    /// Replaces the contents with `text`: writes `.ringway.toml.swp` in the
    /// same directory, then renames it over `ringway.toml`.
    pub fn replace(&self, text: &str) {
        let swap = self.dir.path().join(".ringway.toml.swp");
        fs::write(&swap, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", swap.display()));
        fs::rename(&swap, &self.path).unwrap_or_else(|e| {
            panic!(
                "cannot rename {} over {}: {e}",
                swap.display(),
                self.path.display()
            )
        });
    }
}

/// A directory laid out as the kubelet lays out a mounted ConfigMap with one
/// key, `config.toml` (removed on drop):
///
/// ```text
/// config.toml -> ..data/config.toml
/// ..data      -> ..2026_01_01_00_00_01.000000001
/// ..2026_01_01_00_00_01.000000001/config.toml
/// ```
///
/// [`ConfigMapVolume::update`] swaps in new content the way the kubelet
/// does: the name `config.toml` itself is never written, created or
/// renamed.
#[derive(Debug)]
pub struct ConfigMapVolume {
    dir: TempDir,
    /// The timestamped directory `..data` points to now.
    current: String,
    updates: u32,
}

impl ConfigMapVolume {
    /// The key file as mounted.
    pub const KEY: &'static str = "config.toml";

    /// A volume whose `config.toml` reads `text`.
    pub fn new(text: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ringway-configmap-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a volume directory: {e}"));
        let mut volume = Self {
            dir,
            current: String::new(),
            updates: 0,
        };
        volume.update(text);
        let link = volume.path();
        std::os::unix::fs::symlink(format!("..data/{}", Self::KEY), &link)
            .unwrap_or_else(|e| panic!("cannot create the symlink {}: {e}", link.display()));
        volume
    }

    /// The path a pod reads: `<volume>/config.toml`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(Self::KEY)
    }

    /// The volume directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Publishes `text` as the kubelet publishes a ConfigMap update: writes
    /// a new timestamped directory, points a new symlink `..data_tmp` at
    /// it, renames `..data_tmp` over `..data` (the atomic step), then
    /// removes the old timestamped directory.
    pub fn update(&mut self, text: &str) {
        self.updates += 1;
        let stamp = format!(
            "..2026_01_01_00_00_{:02}.{:09}",
            self.updates % 60,
            self.updates
        );
        let root = self.dir.path();
        let fresh = root.join(&stamp);
        fs::create_dir(&fresh).unwrap_or_else(|e| panic!("cannot create {}: {e}", fresh.display()));
        let file = fresh.join(Self::KEY);
        fs::write(&file, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(&stamp, &tmp)
            .unwrap_or_else(|e| panic!("cannot create the symlink {}: {e}", tmp.display()));
        let data = root.join("..data");
        fs::rename(&tmp, &data).unwrap_or_else(|e| {
            panic!(
                "cannot rename {} over {}: {e}",
                tmp.display(),
                data.display()
            )
        });
        let old = std::mem::replace(&mut self.current, stamp);
        if !old.is_empty() {
            let old = root.join(old);
            fs::remove_dir_all(&old)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", old.display()));
        }
    }
}
