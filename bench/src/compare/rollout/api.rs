//! What `GET /rollouts/LISTENER/ROUTE` answers (docs/admin.md, "Rollouts":
//! a format kept stable for tools such as this one), read into the
//! sampler's terms. The one place that knows the answer's shape: the
//! canary's weight now (`canary_weight`, percent) and the decision history
//! (`history`, oldest first), each decision with its wall-clock time
//! (`unix_ms`), its name (`decision`), its `reason`, the canary's weight
//! after it (`canary_weight`) and the figures of the window it judged, an
//! object per side (`canary`, `stable`: `requests`, `failures`,
//! `error_rate`, `p99_us`), `null` for decisions that judged none.

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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiDecision {
    /// When the agent took it, wall-clock milliseconds since 1970.
    pub unix_ms: u64,
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
    let history = match top.get("history") {
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
        unix_ms: d
            .get("unix_ms")
            .and_then(Value::as_u64)
            .ok_or("no unix_ms")?,
        decision: text(&["decision"]).ok_or("no decision")?,
        reason: text(&["reason"]).unwrap_or_default(),
        weight: weight(d),
        canary: figures(d, "canary"),
        stable: figures(d, "stable"),
    })
}

/// The canary's weight of an object.
fn weight(o: &Map<String, Value>) -> Option<f64> {
    o.get("canary_weight").and_then(Value::as_f64)
}

/// One side's figures, from the object named `side` (`null` or absent:
/// none).
fn figures(d: &Map<String, Value>, side: &str) -> Figures {
    let Some(o) = d.get(side).and_then(Value::as_object) else {
        return Figures::default();
    };
    let requests = o.get("requests").and_then(Value::as_u64);
    let errors = o.get("failures").and_then(Value::as_u64);
    let error_rate = o.get("error_rate").and_then(Value::as_f64).or_else(|| {
        let (r, e) = (requests?, errors?);
        (r > 0).then(|| e as f64 / r as f64)
    });
    Figures {
        requests,
        errors,
        error_rate,
        p99_ms: o.get("p99_us").and_then(Value::as_f64).map(|us| us / 1e3),
    }
}
