//! `/rollouts`: the progressive rollouts of the running table, and the
//! operator's actions on them.
//!
//! - `GET /rollouts`: every rollout (JSON array);
//! - `GET /rollouts/KEY`: one, with its decision history;
//! - `POST /rollouts/KEY/{pause,resume,promote,abort}`: an action; the
//!   answer is the rollout after it.
//!
//! `KEY` is `LISTENER/ROUTE`, or `ROUTE` when only one listener has a
//! rollout route of that name.

use std::rc::Rc;

use hyper::{Method, StatusCode};
use serde_json::Value;

use super::{json_reply, not_allowed, text, Reply};
use crate::agent::{Agent, ACK_WAIT};
use crate::rollout::{Action, ActionError};

/// Whether `path` is under `/rollouts`.
pub(super) fn is_rollouts(path: &str) -> bool {
    path == "/rollouts" || path.starts_with("/rollouts/")
}

/// Whether `method path` is an action (which changes the configuration
/// and goes through the same gate as `POST /config`).
pub(super) fn is_action(path: &str, method: &Method) -> bool {
    *method == Method::POST && is_rollouts(path)
}

/// Answers a request under `/rollouts`.
pub(super) async fn handle(agent: &Rc<Agent>, path: &str, method: &Method) -> Reply {
    let rest = path.strip_prefix("/rollouts").unwrap_or_default();
    let key = rest.strip_prefix('/').unwrap_or_default();
    match *method {
        Method::GET if key.is_empty() => json_reply(StatusCode::OK, &agent.rollouts_json()),
        Method::GET => match agent.rollout_json(key) {
            Ok(v) => json_reply(StatusCode::OK, &v),
            Err(e) => refused(&e),
        },
        Method::POST => {
            let Some((key, action)) = key
                .rsplit_once('/')
                .and_then(|(k, a)| Some((k, Action::parse(a)?)))
                .filter(|(k, _)| !k.is_empty())
            else {
                return text(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no such admin action: POST {path}; use POST /rollouts/LISTENER/ROUTE/ACTION (or /rollouts/ROUTE/ACTION), ACTION one of pause, resume, promote, abort\n"
                    ),
                );
            };
            match agent.rollout_action(key, action) {
                Ok(generation) => {
                    let acked = match generation {
                        Some(g) => agent.acked(g, ACK_WAIT).await,
                        None => true,
                    };
                    let mut v = agent.rollout_json(key).unwrap_or(Value::Null);
                    if let Some(fields) = v.as_object_mut() {
                        fields.insert("generation".to_owned(), generation.into());
                        fields.insert("acked".to_owned(), acked.into());
                    }
                    let status = if acked {
                        StatusCode::OK
                    } else {
                        StatusCode::ACCEPTED
                    };
                    json_reply(status, &v)
                }
                Err(e) => refused(&e),
            }
        }
        _ if key.is_empty() => not_allowed(path, method, "GET"),
        _ => not_allowed(path, method, "GET, POST"),
    }
}

fn refused(e: &ActionError) -> Reply {
    let status = match e {
        ActionError::Unknown(_) => StatusCode::NOT_FOUND,
        ActionError::NotApplicable { .. } => StatusCode::CONFLICT,
        ActionError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    };
    text(status, format!("error: {e}\n"))
}
