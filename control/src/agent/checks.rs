//! Active health checks, run on the control core: one task per endpoint of
//! every cluster that has `health_check`, writing the endpoint's verdict
//! into the cluster's shared cell (the one writer), which workers read as
//! they pick.
//!
//! Once per node, not once per worker. After each publication the agent
//! reconciles: a cluster whose verdict cells are the ones its tasks already
//! write keeps them; otherwise (new cluster, changed endpoints or settings)
//! its tasks are replaced by tasks on the new cells, which start from the
//! verdicts carried over by address.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use dataplane::table::checks::{CheckSettings, Probe, Verdicts};
use dataplane::table::Table;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

/// The running checks, by cluster name.
#[derive(Debug, Default)]
pub struct Checkers {
    running: RefCell<HashMap<Arc<str>, Running>>,
}

#[derive(Debug)]
struct Running {
    verdicts: Arc<Verdicts>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Checkers {
    /// Makes the running checks those of `table`.
    pub fn reconcile(&self, table: &Table) {
        let mut running = self.running.borrow_mut();
        let mut next = HashMap::new();
        for cluster in &table.clusters {
            let Some(checks) = &cluster.checks else {
                continue;
            };
            let name = Arc::clone(&cluster.name);
            match running.remove(&name) {
                Some(r) if Arc::ptr_eq(&r.verdicts, &checks.verdicts) => {
                    next.insert(name, r);
                }
                _ => {
                    let tasks = checks
                        .verdicts
                        .addrs()
                        .enumerate()
                        .map(|(i, addr)| {
                            tokio::task::spawn_local(check_endpoint(
                                Arc::clone(&name),
                                checks.settings.clone(),
                                Arc::clone(&checks.verdicts),
                                i,
                                addr,
                            ))
                            .abort_handle()
                        })
                        .collect();
                    next.insert(
                        name,
                        Running {
                            verdicts: Arc::clone(&checks.verdicts),
                            tasks,
                        },
                    );
                }
            }
        }
        // What is left ran for clusters that are gone or changed: dropped,
        // its tasks aborted.
        *running = next;
    }

    /// Stops every check (shutdown).
    pub fn stop(&self) {
        self.running.borrow_mut().clear();
    }
}

/// Checks endpoint `i` (at `addr`) of cluster `cluster` every interval,
/// for as long as the task runs, and sets its verdict after
/// `healthy_threshold` passes or `unhealthy_threshold` failures in a row.
async fn check_endpoint(
    cluster: Arc<str>,
    settings: CheckSettings,
    verdicts: Arc<Verdicts>,
    i: usize,
    addr: SocketAddr,
) {
    // Spread the endpoints' checks over the interval.
    let n = verdicts.addrs().count().max(1) as u32;
    tokio::time::sleep(settings.interval / n * i as u32).await;
    let mut ticker = tokio::time::interval(settings.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut passes, mut failures) = (0u32, 0u32);
    loop {
        ticker.tick().await;
        let outcome = tokio::time::timeout(settings.timeout, check(&settings.probe, addr))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", settings.timeout)));
        match outcome {
            Ok(()) => {
                passes += 1;
                failures = 0;
                if passes >= settings.healthy_threshold && verdicts.set(i, true) {
                    eprintln!(
                        "ringway: cluster `{cluster}`: endpoint {addr} passes its health check ({passes} in a row): back in"
                    );
                }
            }
            Err(why) => {
                failures += 1;
                passes = 0;
                if failures >= settings.unhealthy_threshold && verdicts.set(i, false) {
                    eprintln!(
                        "ringway: cluster `{cluster}`: endpoint {addr} fails its health check ({failures} in a row, last: {why}): taken out"
                    );
                }
            }
        }
    }
}

/// One check of `addr`.
async fn check(probe: &Probe, addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let Probe::Http {
        path,
        host,
        statuses,
    } = probe
    else {
        return Ok(());
    };
    let host = host
        .as_deref()
        .map_or_else(|| addr.to_string(), str::to_owned);
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: ringway-health-check\r\nconnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    // The status line is all a check reads.
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before a status line".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {:?}", line.lines().next()))?;
    if statuses.iter().any(|&(lo, hi)| (lo..=hi).contains(&status)) {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn an_http_check_reads_the_status_line() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let probe = Probe::Http {
            path: "/healthz".into(),
            host: None,
            statuses: vec![(200, 299)],
        };
        assert_eq!(check(&probe, addr).await, Ok(()));
        assert_eq!(check(&probe, addr).await, Err("status 503".into()));
        assert!(
            check(&Probe::Tcp, addr).await.is_err(),
            "nobody listens any more"
        );
    }
}
