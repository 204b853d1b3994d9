//! The admin API: health, readiness, configuration, certificates,
//! statistics, metrics.
//! HTTP/1.1 on hyper, served by the agent's single-threaded runtime.
//!
//! Probes (`/healthz`, `/ready`) must be answered whatever other clients
//! do: connections are admitted by [`gate`] (a full gate makes room by
//! closing the connection that has waited longest for a request), each is
//! served by [`conn`] with short deadlines for a request to come, and the
//! requests that may take long (they read a body or wait for the workers)
//! share a few places of their own, [`MAX_CHANGES`].

pub mod client;
mod conn;
mod gate;
mod head;
pub mod push;
mod rollouts;
mod tls;

use std::rc::Rc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::agent::exposition;
use crate::agent::{balance, cert_expiry, endpoint_series};
use crate::agent::{Agent, Applied, ReloadError, ACK_WAIT};

/// Largest request body accepted (a configuration with tens of thousands of
/// clusters fits with room to spare).
const MAX_BODY: usize = 16 << 20;
/// A client has this long to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Admin connections open at once. A waiting connection costs a socket and
/// a few KiB; beyond this many, the one that has waited longest for a
/// request is closed to make room (see [`gate`]).
const MAX_OPEN: usize = 256;
/// Requests that change the configuration (they read a body of up to
/// [`MAX_BODY`] or wait up to [`ACK_WAIT`] for the workers) served at once;
/// more are answered 503. The agent applies changes one at a time anyway,
/// and this bounds the bodies held in memory to 256 MiB.
const MAX_CHANGES: usize = 16;

/// Accepts admin connections until the task is dropped.
pub async fn serve(listener: TcpListener, agent: Rc<Agent>) {
    let gate = gate::Gate::new(MAX_OPEN);
    let changes = Rc::new(Semaphore::new(MAX_CHANGES));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or similar: say so, and do not spin.
                eprintln!("ringway: admin: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match gate.admit() {
            Some(ticket) => {
                let (agent, changes) = (Rc::clone(&agent), Rc::clone(&changes));
                tokio::task::spawn_local(conn::serve(stream, ticket, agent, changes));
            }
            None => {
                let reason = format!(
                    "the admin API has {MAX_OPEN} connections open, every one with a request \
                     under way; retry in a moment"
                );
                tokio::task::spawn_local(async move {
                    conn::refuse(stream, StatusCode::SERVICE_UNAVAILABLE, &reason).await;
                });
            }
        }
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(agent: &Rc<Agent>, req: Request<Incoming>, changes: &Semaphore) -> Reply {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let openmetrics = wants_openmetrics(&req);
    let changing = matches!(
        (path.as_str(), &method),
        ("/config", &Method::POST) | ("/reload", &Method::POST)
    ) || (method == Method::PUT
        && (cluster_endpoints_path(&path).is_some() || tls::target(&path).is_some()))
        || rollouts::is_action(&path, &method);
    // Held until the answer is ready.
    let _place = if changing {
        match changes.try_acquire() {
            Ok(place) => Some(place),
            Err(_) => return busy(),
        }
    } else {
        None
    };
    match (path.as_str(), &method) {
        ("/healthz", &Method::GET) => text(StatusCode::OK, "ok\n".into()),
        ("/ready", &Method::GET) => ready(agent),
        ("/config", &Method::GET) => {
            let (toml, generation) = agent.effective_config();
            let mut reply = text(StatusCode::OK, toml);
            reply.headers_mut().insert(
                "x-ringway-generation",
                HeaderValue::from(generation),
            );
            reply
        }
        ("/config", &Method::POST) => match body_text(req).await {
            Ok(body) => {
                let before = bind_failures(agent);
                let result = agent.apply(&body, "<POST /config>");
                crate::reload::log("POST /config", &result);
                reload_reply(agent, result, before).await
            }
            Err(reply) => reply,
        },
        ("/reload", &Method::POST) => {
            let before = bind_failures(agent);
            let result = agent.reload_file();
            crate::reload::log("POST /reload", &result);
            reload_reply(agent, result, before).await
        }
        (p, &Method::PUT) if cluster_endpoints_path(p).is_some() => {
            let name = cluster_endpoints_path(p).unwrap_or_default().to_owned();
            let body = match body_text(req).await {
                Ok(body) => body,
                Err(reply) => return reply,
            };
            let list: Vec<crate::config::EndpointSpec> = match serde_json::from_str(&body) {
                Ok(list) => list,
                Err(e) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "error: the body must be a JSON array of \"ip:port\" strings or {{\"address\": \"ip:port\", \"weight\": N}} objects, e.g. [\"127.0.0.1:8000\", {{\"address\": \"127.0.0.1:8001\", \"weight\": 2}}]: {e}\n"
                        ),
                    )
                }
            };
            let before = bind_failures(agent);
            let result = agent.set_endpoints(&name, &list);
            if result.is_err() {
                crate::reload::log(&format!("PUT {path}"), &result);
            }
            reload_reply(agent, result, before).await
        }
        (p, &Method::PUT) if tls::target(p).is_some() => tls::push(agent, &path, req).await,
        (p, _) if rollouts::is_rollouts(p) => rollouts::handle(agent, &path, &method).await,
        ("/stats", &Method::GET) => {
            let workers = agent.worker_figures();
            let mut body = exposition::stats_json(&agent.figures(), &workers, &agent.http_figures());
            if let Some(fields) = body.as_object_mut() {
                let balance = balance::json(&agent.balance(&workers));
                fields.insert("balance".to_owned(), balance);
                let certs = cert_expiry::json(&agent.certificates(), cert_expiry::now());
                fields.insert("tls_certificates".to_owned(), certs);
                fields.insert("rollouts".to_owned(), agent.rollouts_json());
            }
            let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
            text.push('\n');
            with_type(StatusCode::OK, text, "application/json")
        }
        ("/metrics", &Method::GET) => {
            let workers = agent.worker_figures();
            let (figures, http) = (agent.figures(), agent.http_figures());
            let mut text = exposition::metrics_text_as(&figures, &workers, &http, openmetrics);
            balance::metrics(&mut text, &agent.balance(&workers), &workers);
            exposition::access_log_metrics(&mut text, agent.access_log_stats());
            endpoint_series::metrics(&mut text, &agent.endpoint_series(), exposition::escape);
            if let Some(counts) = agent.trace_export() {
                exposition::trace_export_metrics(&mut text, &counts);
            }
            let (certs, now) = (agent.certificates(), cert_expiry::now());
            cert_expiry::metrics(&mut text, &certs, now, exposition::escape);
            crate::rollout::metrics::write(&mut text, &agent.rollout_figures(), exposition::escape);
            if openmetrics {
                with_type(
                    StatusCode::OK,
                    exposition::to_openmetrics(&text),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
            } else {
                with_type(
                    StatusCode::OK,
                    text,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
            }
        }
        ("/healthz" | "/ready" | "/stats" | "/metrics", _) => {
            not_allowed(&path, &method, "GET")
        }
        ("/config", _) => not_allowed(&path, &method, "GET, POST"),
        ("/reload", _) => not_allowed(&path, &method, "POST"),
        (p, _) if cluster_endpoints_path(p).is_some() || tls::target(p).is_some() => {
            not_allowed(&path, &method, "PUT")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            format!(
                "no such admin path: {path}; try /healthz, /ready, /config, /reload, /clusters/NAME/endpoints, /tls/listeners/NAME, /tls/clusters/NAME, /rollouts, /stats, /metrics\n"
            ),
        ),
    }
}

/// Whether the scraper asks for OpenMetrics (Prometheus does when it
/// stores exemplars): `application/openmetrics-text` in `Accept`, with a
/// weight above zero.
fn wants_openmetrics<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|choice| {
            let mut parts = choice.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
}

/// The cluster name of `/clusters/{name}/endpoints`.
fn cluster_endpoints_path(path: &str) -> Option<&str> {
    let name = path
        .strip_prefix("/clusters/")?
        .strip_suffix("/endpoints")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Listener binds the workers failed, all told.
fn bind_failures(agent: &Agent) -> u64 {
    agent.links().iter().map(|l| l.stats().bind_failures).sum()
}

fn ready(agent: &Agent) -> Reply {
    let generations: Vec<u64> = agent.links().iter().map(|l| l.acked()).collect();
    let exited: Vec<usize> = agent
        .links()
        .iter()
        .filter(|l| l.exited())
        .map(|l| l.index())
        .collect();
    let running = agent
        .links()
        .iter()
        .filter(|l| !l.exited() && l.acked() >= 1)
        .count();
    let total = generations.len();
    let summary = format!("{running}/{total} workers run a table (generations {generations:?})");
    if agent.ready() {
        return text(StatusCode::OK, format!("ready: {summary}\n"));
    }
    let why = if !exited.is_empty() {
        format!("; worker(s) {exited:?} exited (see ringway's stderr)")
    } else if agent.draining() {
        "; draining".to_owned()
    } else {
        String::new()
    };
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {summary}{why}\n"),
    )
}

async fn reload_reply(
    agent: &Agent,
    result: Result<Applied, ReloadError>,
    bind_failures_before: u64,
) -> Reply {
    match result {
        Ok(Applied::Published(generation)) => {
            if agent.acked(generation, ACK_WAIT).await {
                let mut body = format!("applied generation {generation}\n");
                let failed = bind_failures(agent).saturating_sub(bind_failures_before);
                if failed > 0 {
                    // The agent test-binds new addresses, so this is a race
                    // with another process; the workers' stderr names them.
                    body.push_str(&format!(
                        "warning: {failed} new listener socket(s) could not be bound by the workers; \
                         see bind_failures in /stats and ringway's stderr\n"
                    ));
                }
                text(StatusCode::OK, body)
            } else {
                text(
                    StatusCode::ACCEPTED,
                    format!(
                        "published generation {generation}; not every worker runs it yet (see /stats)\n"
                    ),
                )
            }
        }
        Ok(Applied::Unchanged(generation)) => text(
            StatusCode::OK,
            format!("unchanged: generation {generation} keeps running\n"),
        ),
        Err(ReloadError::Refused(errors)) => {
            let mut body = String::new();
            for e in &errors.errors {
                body.push_str(&format!("error: {e}\n"));
            }
            body.push_str(&format!(
                "configuration refused ({} error{}); generation {} keeps running\n",
                errors.errors.len(),
                if errors.errors.len() == 1 { "" } else { "s" },
                agent.effective_config().1
            ));
            text(StatusCode::BAD_REQUEST, body)
        }
        Err(e @ ReloadError::NoFile) => text(StatusCode::CONFLICT, format!("{e}\n")),
        Err(e @ ReloadError::UnknownCluster(_)) => {
            text(StatusCode::NOT_FOUND, format!("error: {e}\n"))
        }
        Err(ReloadError::BadEndpoints(errors)) => {
            let mut body: String = errors.iter().map(|e| format!("error: {e}\n")).collect();
            body.push_str("endpoints refused; the running configuration keeps serving\n");
            text(StatusCode::BAD_REQUEST, body)
        }
        Err(e @ ReloadError::ShuttingDown) => {
            text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
        }
        Err(e @ ReloadError::Wake { .. }) => {
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
        }
    }
}

async fn body_text(req: Request<Incoming>) -> Result<String, Reply> {
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    let Ok(collected) = tokio::time::timeout(BODY_TIMEOUT, collect).await else {
        return Err(text(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {BODY_TIMEOUT:?}\n"),
        ));
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Err(if e.is::<http_body_util::LengthLimitError>() {
                text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than {MAX_BODY} bytes\n"),
                )
            } else {
                text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}\n"),
                )
            });
        }
    };
    String::from_utf8(body.to_vec())
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("body is not UTF-8: {e}\n")))
}

/// Every place for a configuration change is taken.
fn busy() -> Reply {
    let mut reply = text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "error: {MAX_CHANGES} configuration changes are already under way on the admin API; \
             retry when one has finished\n"
        ),
    );
    reply
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    reply
}

fn not_allowed(path: &str, method: &Method, allowed: &'static str) -> Reply {
    let mut reply = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {path}; use {allowed}\n"),
    );
    reply
        .headers_mut()
        .insert("allow", HeaderValue::from_static(allowed));
    reply
}

/// `value` as pretty JSON.
fn json_reply(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    with_type(status, text, "application/json")
}

fn text(status: StatusCode, body: String) -> Reply {
    with_type(status, body, "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: String, content_type: &'static str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}
