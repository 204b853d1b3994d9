//! Prometheus's own tools against ringway's `/metrics`: `promtool check
//! metrics` run on an exposition ([`check_metrics`]), and a real Prometheus
//! server that scrapes the admin API and answers PromQL queries through its
//! HTTP API ([`PrometheusServer`]).
//!
//! Both programs come from Debian's `prometheus` package, which
//! `scripts/install-prometheus.sh` installs (`scripts/test.sh` runs it). As
//! with `curl` and `openssl`, a missing program fails the test and says
//! where to get it: a test that passed without its tool would vouch for
//! nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ringway_kit::admin::{request, Response};
use ringway_kit::launcher::{NotReady, Process, Program};
use ringway_kit::ports::free_port;
use tempfile::TempDir;

/// How long Prometheus may take to start serving its API: its start-up
/// (opening an empty TSDB) takes about a second; the bound is generous for
/// two cores busy with other tests.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What `promtool check metrics` said.
#[derive(Debug)]
pub struct Promtool {
    /// Its exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error: where it lists the problems it found.
    pub stderr: String,
}

impl Promtool {
    /// Every problem line it printed, from either stream.
    pub fn problems(&self) -> Vec<String> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Runs `promtool check metrics` with `exposition` on its standard input.
pub fn check_metrics(exposition: &str) -> Promtool {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): scripts/install-prometheus.sh installs it")
        });
    // Written from a thread: promtool may answer before it read it all,
    // and a full pipe each way would hold both sides.
    let mut stdin = child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("promtool's stdin is piped: spawn asked for it"));
    let text = exposition.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for promtool: {e}"));
    writer
        .join()
        .unwrap_or_else(|_| panic!("the thread feeding promtool panicked"))
        .unwrap_or_else(|e| panic!("cannot write the exposition to promtool: {e}"));
    Promtool {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A Prometheus server scraping one target, with its own config, storage
/// (a temporary directory) and web port; killed when dropped, before its
/// storage is removed.
pub struct PrometheusServer {
    process: Process,
    web: SocketAddr,
    _dir: TempDir,
}

impl std::fmt::Debug for PrometheusServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusServer")
            .field("pid", &self.process.pid())
            .field("web", &self.web)
            .finish()
    }
}

/// One element of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// The series' labels (`__name__` included when the query kept it).
    pub labels: BTreeMap<String, String>,
    /// Its value (`NaN` and the infinities as Prometheus writes them).
    pub value: f64,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `target`'s `/metrics` as job `job` every
    /// `interval` (a Prometheus duration, `"1s"`), and waits until it is
    /// ready to answer queries.
    ///
    /// Its web port comes from the test ports block of this process
    /// ([`free_port`]): Prometheus binds its listener by number, and a
    /// number from that block is below the ephemeral range and owned by
    /// this process, so no parallel test or outgoing connection holds it.
    pub fn start(job: &str, target: SocketAddr, interval: &str) -> Self {
        Self::start_with(job, target, interval, &[])
    }

    /// [`PrometheusServer::start`] with `flags` added to its command line
    /// (`--enable-feature=exemplar-storage`, say).
    pub fn start_with(job: &str, target: SocketAddr, interval: &str, flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let web = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let config = dir.path().join("prometheus.yml");
        // The timeout may not exceed the interval; the scrape of a local
        // admin API takes milliseconds.
        let text = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  \
             evaluation_interval: {interval}\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      \
             - targets: ['{target}']\n"
        );
        std::fs::write(&config, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let storage = dir.path().join("data");
        let mut args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", storage.display()),
            format!("--web.listen-address={web}"),
        ];
        args.extend(flags.iter().map(|f| (*f).to_owned()));
        let program = Program::new(Path::new("prometheus")).args(&args);
        let mut process = program
            .spawn()
            .unwrap_or_else(|e| panic!("{e}: scripts/install-prometheus.sh installs prometheus"));
        let ready = process.wait_ready(START_TIMEOUT, |_| {
            match request(web, "GET", "/-/ready", None) {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("{} {}", r.status, r.body.trim())),
                Err(e) => Err(e.to_string()),
            }
        });
        if let Err(why) = ready {
            let why = match why {
                NotReady::Exited(status) => format!("it exited ({status})"),
                NotReady::TimedOut(last) => format!("not ready in {START_TIMEOUT:?}: {last}"),
                NotReady::Wait(e) => format!("cannot wait for it: {e}"),
            };
            panic!(
                "Prometheus on {web}: {why}; its stderr:\n{}",
                process.stderr()
            );
        }
        Self {
            process,
            web,
            _dir: dir,
        }
    }

    /// Where its web listener (UI and API) is.
    pub fn addr(&self) -> SocketAddr {
        self.web
    }

    /// What it wrote to stderr so far (its log).
    pub fn log(&self) -> String {
        self.process.stderr()
    }

    /// `GET path` on its web listener; panics when the request fails.
    pub fn get(&self, path: &str) -> Response {
        request(self.web, "GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path} from Prometheus at {}: {e}", self.web))
    }

    /// Evaluates `promql` as an instant query now and returns the vector it
    /// gives (a scalar is returned as one sample without labels); `Err`
    /// with the reason when the API refuses the query.
    pub fn query(&self, promql: &str) -> Result<Vec<VectorSample>, String> {
        let response = self.get(&format!("/api/v1/query?query={}", encode(promql)));
        let json: serde_json::Value = serde_json::from_str(&response.body)
            .map_err(|e| format!("{promql}: not JSON ({e}): {}", response.body))?;
        if json["status"] != "success" {
            return Err(format!("{promql}: {} {}", response.status, response.body));
        }
        let data = &json["data"];
        let value = |pair: &serde_json::Value| -> Result<f64, String> {
            pair[1]
                .as_str()
                .and_then(|v| match v {
                    "NaN" => Some(f64::NAN),
                    "+Inf" => Some(f64::INFINITY),
                    "-Inf" => Some(f64::NEG_INFINITY),
                    v => v.parse().ok(),
                })
                .ok_or_else(|| format!("{promql}: no value in {pair}"))
        };
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or_else(|| format!("{promql}: no result in {data}"))?
                .iter()
                .map(|r| {
                    let labels = r["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                                .collect()
                        })
                        .unwrap_or_default();
                    Ok(VectorSample {
                        labels,
                        value: value(&r["value"])?,
                    })
                })
                .collect(),
            Some("scalar") => Ok(vec![VectorSample {
                labels: BTreeMap::new(),
                value: value(&data["result"])?,
            }]),
            other => Err(format!("{promql}: result type {other:?}: {data}")),
        }
    }

    /// The value of a query that gives exactly one sample; `Err` saying
    /// what it gave otherwise.
    pub fn query_one(&self, promql: &str) -> Result<f64, String> {
        match self.query(promql)?.as_slice() {
            [one] => Ok(one.value),
            other => Err(format!("{promql}: {} samples: {other:?}", other.len())),
        }
    }
}

impl Drop for PrometheusServer {
    /// Kills the server (and reaps it) before its storage directory goes.
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// `text` percent-encoded for a query string: everything but the
/// unreserved characters of RFC 3986.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_promql_for_a_query_string() {
        assert_eq!(
            encode("up{job=\"ringway\"} == 1"),
            "up%7Bjob%3D%22ringway%22%7D%20%3D%3D%201"
        );
        assert_eq!(encode("a_b-c.d~"), "a_b-c.d~");
    }
}
