//! Scenario files (`bench/scenarios/*.toml`): what `compare` runs.
//!
//! Every key has a default except `name`; unknown keys are refused, and an
//! error names the file, the line and the key (the TOML parser's spans).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
    /// Systems in run order; `direct` is always measured first.
    #[serde(default = "all_systems")]
    pub systems: Vec<String>,
    /// Interleaved rounds (A B C D, A B C D, ...).
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
    /// Routing-table churn during ringway's runs.
    #[serde(default)]
    pub churn: Option<Churn>,
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
}

impl Default for Cores {
    fn default() -> Self {
        Self {
            load: core_zero(),
            origin: core_zero(),
            proxy: 1,
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
}

impl Default for Origin {
    fn default() -> Self {
        Self { response_size: 2 }
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
    /// Idle keep-alive connections held for the memory reading; 0 skips it.
    #[serde(default = "ten_thousand")]
    pub idle_connections: usize,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            idle_connections: 10_000,
        }
    }
}

/// `[churn]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Time between two new configs posted to ringway's admin API.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
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
    if s.name.is_empty()
        || !s
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "name {:?}: letters, digits, '-' and '_' only (it names a directory)",
            s.name
        ));
    }
    for sys in &s.systems {
        if !matches!(sys.as_str(), "direct" | "ringway" | "nginx" | "haproxy") {
            return Err(format!(
                "systems: unknown system {sys:?} (direct, ringway, nginx, haproxy)"
            ));
        }
    }
    if s.runs == 0 {
        return Err("runs: at least 1".into());
    }
    if s.load.connections == 0 {
        return Err("load.connections: at least 1".into());
    }
    if s.load.duration.is_zero() || s.load.timeout.is_zero() {
        return Err("load.duration and load.timeout: longer than zero".into());
    }
    if let Some(r) = s.sweep.rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(format!("sweep.rates: {r} is not a positive rate"));
    }
    if s.mode == ScenarioMode::Tcp && !s.sweep.rates.is_empty() {
        return Err("sweep.rates: a TCP stream has no requests to pace; leave it empty".into());
    }
    if s.sweep.rates.is_empty() && !s.sweep.max_throughput {
        return Err("sweep: no rates and max_throughput = false leaves nothing to run".into());
    }
    Ok(())
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration: {e}")))
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
fn yes() -> bool {
    true
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_minimal_scenario() {
        let s = parse("name = \"x\"").unwrap();
        assert_eq!(s.systems, all_systems());
        assert_eq!((s.runs, s.cores.proxy, s.load.connections), (3, 1, 32));
        assert_eq!(s.load.duration, Duration::from_secs(5));
        assert!(s.sweep.max_throughput && s.churn.is_none());
        assert_eq!(s.memory.idle_connections, 10_000);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = parse("name = \"x\"\n[load]\nduration = \"soon\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("soon"), "{e}");
        let e = parse("name = \"x\"\n[load]\nconections = 3\n").unwrap_err();
        assert!(e.contains("conections") && e.contains("line 3"), "{e}");
        let e = parse("name = \"x\"\nsystems = [\"envoy\"]").unwrap_err();
        assert!(e.contains("envoy"), "{e}");
        let e = parse("name = \"x\"\nmode = \"tcp\"\n[sweep]\nrates = [10]").unwrap_err();
        assert!(e.contains("sweep.rates"), "{e}");
        assert!(parse("name = \"a b\"").unwrap_err().contains("name"));
    }

    #[test]
    fn the_shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                load(&path).unwrap();
                n += 1;
            }
        }
        assert!(n >= 6, "{n} scenarios in {}", dir.display());
    }
}
