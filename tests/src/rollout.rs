//! Helpers for the rollout tests: a steady client load that counts who
//! answered, and reads of the admin API's `/rollouts`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::wait::poll;
use serde_json::Value;

use crate::http_client::{HttpConn, Req};

/// Requests sent by a [`Load`] and who answered them.
#[derive(Debug, Default)]
struct Counts {
    /// Responses by body (each origin answers its own name) and status.
    by_answer: Mutex<HashMap<(String, u16), u64>>,
    /// Requests that got no response (the connection is then reopened).
    failed: AtomicU64,
    /// Responses, all told.
    done: AtomicU64,
}

/// Client threads sending `GET /` to the proxy one after another on
/// keep-alive connections, until dropped.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    threads: Vec<JoinHandle<()>>,
}

/// Responses counted between two reads of a [`Load`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// By body and status.
    pub by_answer: HashMap<(String, u16), u64>,
    /// Responses.
    pub done: u64,
}

impl Tally {
    /// Responses with body `body`, any status.
    pub fn from(&self, body: &str) -> u64 {
        self.by_answer
            .iter()
            .filter(|((b, _), _)| b == body)
            .map(|(_, n)| n)
            .sum()
    }

    /// What came in since `before`.
    pub fn since(&self, before: &Tally) -> Tally {
        let mut by_answer = self.by_answer.clone();
        for (k, n) in &before.by_answer {
            if let Some(v) = by_answer.get_mut(k) {
                *v -= n;
            }
        }
        Tally {
            by_answer,
            done: self.done - before.done,
        }
    }
}

impl Load {
    /// `clients` threads against `addr`.
    pub fn start(addr: SocketAddr, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let threads = (0..clients)
            .map(|_| {
                let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
                thread::spawn(move || run(addr, &stop, &counts))
            })
            .collect();
        Self {
            stop,
            counts,
            threads,
        }
    }

    /// Responses so far.
    pub fn tally(&self) -> Tally {
        Tally {
            by_answer: self
                .counts
                .by_answer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            done: self.counts.done.load(Ordering::SeqCst),
        }
    }

    /// Requests that got no response.
    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::SeqCst)
    }

    /// Waits until `n` more responses came in than in `before`.
    pub fn wait_more(&self, before: &Tally, n: u64, timeout: Duration) -> Tally {
        poll("client responses", timeout, || {
            let now = self.tally();
            let more = now.done - before.done;
            if more >= n {
                Ok(now)
            } else {
                Err(format!("{more} of {n}"))
            }
        })
    }

    /// Stops the threads and waits for them.
    pub fn stop(mut self) -> Tally {
        self.halt();
        self.tally()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(addr: SocketAddr, stop: &AtomicBool, counts: &Counts) {
    let request = Req::get("/");
    let mut conn: Option<HttpConn> = None;
    while !stop.load(Ordering::SeqCst) {
        let c = match &mut conn {
            Some(c) => c,
            None => match HttpConn::try_open(addr) {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    counts.failed.fetch_add(1, Ordering::SeqCst);
                    // A refused connect returns at once: do not spin.
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let answer = c
            .try_send_raw(&request.to_bytes())
            .map_err(|e| e.to_string())
            .and_then(|()| c.try_read(false).map_err(|e| e.to_string()));
        match answer {
            Ok(response) => {
                let close = response
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                *counts
                    .by_answer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry((response.body_text(), response.status))
                    .or_default() += 1;
                counts.done.fetch_add(1, Ordering::SeqCst);
                if close {
                    conn = None;
                }
            }
            Err(_) => {
                counts.failed.fetch_add(1, Ordering::SeqCst);
                conn = None;
            }
        }
    }
}

/// `GET /rollouts/KEY` as JSON; panics unless it answers 200.
pub fn rollout(admin_addr: SocketAddr, key: &str) -> Value {
    let reply = admin::get(admin_addr, &format!("/rollouts/{key}"));
    assert_eq!(reply.status, 200, "GET /rollouts/{key}: {}", reply.body);
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

/// Polls rollout `key` until `done` says it is where the test wants it;
/// returns it then. `done` returns `Err` with what it saw otherwise.
pub fn wait_rollout(
    admin_addr: SocketAddr,
    key: &str,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&Value) -> Result<(), String>,
) -> Value {
    poll(what, timeout, || {
        let r = rollout(admin_addr, key);
        done(&r).map(|()| r.clone()).map_err(|e| {
            format!(
                "{e}; state {} canary_weight {} decisions {}",
                r["state"], r["canary_weight"], r["decisions"]
            )
        })
    })
}

/// The decisions of rollout `r`'s history, by name.
pub fn decisions(r: &Value) -> Vec<&str> {
    r["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["decision"].as_str().unwrap_or("?"))
        .collect()
}
