//! Rate limits as the node sees them, for `/stats` and `/metrics`: every
//! route limit with its settings and how full its key table is, and every
//! listener connection limit with its settings and the connections it
//! turned away. (A route's refusals are its
//! `ringway_http_errors_total{reason="rate_limited"}`, counted with its
//! other errors.)

use std::fmt::Write;
use std::sync::Arc;

use dataplane::table::rate::RateSettings;
use dataplane::table::{Service, Table};
use serde_json::{json, Value};

use super::families;

/// The name of the connection family.
const CONNECTIONS_LIMITED: &str = "ringway_connections_rate_limited_total";

/// Every limit of one table.
#[derive(Debug, Clone, Default)]
pub struct RateLimitFigures {
    /// Route limits, in table order.
    pub routes: Vec<RouteLimitFigures>,
    /// Listener connection limits, in table order.
    pub connections: Vec<ConnectionLimitFigures>,
}

/// One route's limit.
#[derive(Debug, Clone)]
pub struct RouteLimitFigures {
    /// Its listener.
    pub listener: Arc<str>,
    /// The route.
    pub route: Arc<str>,
    /// Its settings.
    pub settings: RateSettings,
    /// Keys held and slots in all, for a keyed limit.
    pub keys: Option<(usize, usize)>,
}

/// One listener's connection limit.
#[derive(Debug, Clone)]
pub struct ConnectionLimitFigures {
    /// The listener.
    pub listener: Arc<str>,
    /// Its settings.
    pub settings: RateSettings,
    /// Connections turned away, every worker's.
    pub limited: u64,
}

impl RateLimitFigures {
    /// Reads every limit of `table`.
    pub fn read(table: &Table) -> Self {
        let mut figures = Self::default();
        for listener in &table.listeners {
            if let Some(c) = &listener.connection_rate_limit {
                figures.connections.push(ConnectionLimitFigures {
                    listener: Arc::clone(&listener.name),
                    settings: c.limit.settings.clone(),
                    limited: c.limited.total(),
                });
            }
            let Service::Http(http) = &listener.service else {
                continue;
            };
            for route in &http.routes {
                if let Some(limit) = &route.rate_limit {
                    figures.routes.push(RouteLimitFigures {
                        listener: Arc::clone(&listener.name),
                        route: Arc::clone(&route.name),
                        settings: limit.settings.clone(),
                        keys: limit.occupancy(),
                    });
                }
            }
        }
        figures
    }
}

/// The `rate_limits` section of `/stats`.
pub fn json(figures: &RateLimitFigures) -> Value {
    let routes: Vec<Value> = figures
        .routes
        .iter()
        .map(|r| {
            json!({
                "listener": &*r.listener,
                "route": &*r.route,
                "requests_per_second": r.settings.per_second,
                "burst": r.settings.burst,
                "key": r.settings.key.config_name(),
                "keys_held": r.keys.map(|(held, _)| held),
                "key_slots": r.keys.map(|(_, slots)| slots),
            })
        })
        .collect();
    let connections: Vec<Value> = figures
        .connections
        .iter()
        .map(|c| {
            json!({
                "listener": &*c.listener,
                "connections_per_second": c.settings.per_second,
                "burst": c.settings.burst,
                "limited": c.limited,
            })
        })
        .collect();
    json!({ "routes": routes, "connections": connections })
}

/// The `/metrics` family, with `escape` for label values.
pub fn metrics(out: &mut String, figures: &RateLimitFigures, escape: fn(&str) -> String) {
    families::header(out, CONNECTIONS_LIMITED);
    for c in &figures.connections {
        let _ = writeln!(
            out,
            "{CONNECTIONS_LIMITED}{{listener=\"{}\"}} {}",
            escape(&c.listener),
            c.limited
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::table::rate::RateKey;

    fn figures() -> RateLimitFigures {
        RateLimitFigures {
            routes: vec![RouteLimitFigures {
                listener: "web".into(),
                route: "api".into(),
                settings: RateSettings {
                    per_second: 10,
                    burst: 2,
                    key: RateKey::Header("x-api-key".into()),
                    max_keys: 64,
                },
                keys: Some((3, 64)),
            }],
            connections: vec![ConnectionLimitFigures {
                listener: "db".into(),
                settings: RateSettings {
                    per_second: 5,
                    burst: 1,
                    key: RateKey::Route,
                    max_keys: 0,
                },
                limited: 7,
            }],
        }
    }

    #[test]
    fn stats_and_metrics_show_every_limit() {
        let v = json(&figures());
        assert_eq!(v["routes"][0]["key"], "header:x-api-key");
        assert_eq!(v["routes"][0]["keys_held"], 3);
        assert_eq!(v["routes"][0]["key_slots"], 64);
        assert_eq!(v["connections"][0]["limited"], 7);
        let mut text = String::new();
        metrics(&mut text, &figures(), super::super::exposition::escape);
        assert!(text.contains("# TYPE ringway_connections_rate_limited_total counter\n"));
        assert!(text.contains("ringway_connections_rate_limited_total{listener=\"db\"} 7\n"));
    }
}
