//! What `GET /rollouts/LISTENER/ROUTE` answers, read into the sampler's
//! terms. The one place that knows the answer's shape: a JSON object with
//! the canary's weight now (`canary_weight`, percent) and the decision
//! history (`history`), each decision with its time (`time`), its name
//! (`decision`), its `reason`, the weight after it (`canary_weight`, if
//! given) and the interval's figures of each side, as an object per side
//! (`canary` and `stable`: `requests`, `errors`, `error_rate`, `p99_ms`) or
//! as flat keys with the side as prefix (`canary_requests`, ...). The p99
//! may be given in ms (`p99_ms`), µs (`p99_us`), seconds (`p99_seconds`)
//! or as a duration string (`p99 = "3.2ms"`); an absent error rate is the
//! errors over the requests.

use serde::Serialize;
use serde_json::{Map, Value};

/// The rollout now.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The canary's weight, percent.
    pub canary_weight: f64,
    /// Every decision of the history, oldest first.
    pub history: Vec<ApiDecision>,
}

/// One decision as the API gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiDecision {
    /// The agent's time of the decision, as written.
    pub at: String,
    /// Its name: `step`, `hold`, `rollback`, ...
    pub decision: String,
    /// Why.
    pub reason: String,
    /// The canary's weight after it, percent, if given.
    pub weight: Option<f64>,
    /// The canary's figures over the interval.
    pub canary: Figures,
    /// The stable cluster's.
    pub stable: Figures,
}

/// One side's figures over a decision's interval; each `None` when the API
/// did not give it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Requests.
    pub requests: Option<u64>,
    /// Of those, errors.
    pub errors: Option<u64>,
    /// Errors over requests (0 to 1).
    pub error_rate: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

/// Reads the answer's body.
pub fn parse(body: &str) -> Result<Status, String> {
    let doc: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let top = doc.as_object().ok_or("not a JSON object")?;
    let canary_weight = weight(top).ok_or("no canary_weight")?;
    let history = match top.get("history").or_else(|| top.get("decisions")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, d)| decision(d).map_err(|e| format!("history[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("history is not an array: {other}")),
    };
    Ok(Status {
        canary_weight,
        history,
    })
}

fn decision(d: &Value) -> Result<ApiDecision, String> {
    let d = d.as_object().ok_or("not an object")?;
    let text = |keys: &[&str]| {
        keys.iter().find_map(|k| match d.get(*k)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    Ok(ApiDecision {
        at: text(&["time", "at"]).ok_or("no time")?,
        decision: text(&["decision", "action"]).ok_or("no decision")?,
        reason: text(&["reason"]).unwrap_or_default(),
        weight: weight(d),
        canary: figures(d, "canary"),
        stable: figures(d, "stable"),
    })
}

/// The canary's weight of an object: `canary_weight`, else `weight`.
fn weight(o: &Map<String, Value>) -> Option<f64> {
    o.get("canary_weight")
        .or_else(|| o.get("weight"))
        .and_then(Value::as_f64)
}

/// One side's figures: from the object named `side`, else from the keys
/// prefixed `side_`.
fn figures(d: &Map<String, Value>, side: &str) -> Figures {
    let nested = d.get(side).and_then(Value::as_object);
    let get = |key: &str| -> Option<&Value> {
        match nested {
            Some(o) => o.get(key),
            None => d.get(&format!("{side}_{key}")),
        }
        .filter(|v| !v.is_null())
    };
    let requests = get("requests").and_then(Value::as_u64);
    let errors = get("errors").and_then(Value::as_u64);
    let error_rate = get("error_rate").and_then(Value::as_f64).or_else(|| {
        let (r, e) = (requests?, errors?);
        (r > 0).then(|| e as f64 / r as f64)
    });
    let p99_ms = get("p99_ms")
        .and_then(Value::as_f64)
        .or_else(|| get("p99_us").and_then(Value::as_f64).map(|us| us / 1e3))
        .or_else(|| {
            get("p99_seconds")
                .or_else(|| get("p99_s"))
                .and_then(Value::as_f64)
                .map(|s| s * 1e3)
        })
        .or_else(|| {
            let text = get("p99")?.as_str()?;
            humantime::parse_duration(text)
                .ok()
                .map(|d| d.as_secs_f64() * 1e3)
        });
    Figures {
        requests,
        errors,
        error_rate,
        p99_ms,
    }
}
