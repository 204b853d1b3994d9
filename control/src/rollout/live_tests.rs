use std::time::{Duration, Instant};

use dataplane::table::route::{Route, RouteAction};
use dataplane::table::{Service, Table};

use super::*;
use crate::config::parse_with_cores;

/// A table whose route `api` splits `weights` (v1, v2) with a rollout of
/// `settings`, and a second route `other`.
fn table(weights: (u32, u32), settings: &str) -> Table {
    let text = format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"

  [[listeners.routes]]
  name = "other"
  path = "/other"
  cluster = "v1"

  [[listeners.routes]]
  name = "api"
  split = [{{ cluster = "v1", weight = {} }}, {{ cluster = "v2", weight = {} }}]
  {settings}

[[clusters]]
name = "v1"
endpoints = ["127.0.0.1:8000"]

[[clusters]]
name = "v2"
endpoints = ["127.0.0.1:8001"]
"#,
        weights.0, weights.1
    );
    match parse_with_cores(&text, "ringway.toml", Some(&[0])) {
        Ok(config) => config.table,
        Err(e) => panic!("{e}"),
    }
}

const PLAN: &str = r#"rollout = { canary = "v2", stable = "v1", steps = [25, 100], interval = "1s", min_requests = 10 }"#;

fn route<'t>(table: &'t Table, name: &str) -> &'t Route {
    let Service::Http(http) = &table.listeners[0].service else {
        panic!("http");
    };
    http.routes
        .iter()
        .find(|r| &*r.name == name)
        .expect("the route")
}

/// (v1, v2) weights of route `api`.
fn weights(table: &Table) -> (u32, u32) {
    let RouteAction::Forward(f) = &route(table, "api").action else {
        panic!("forward");
    };
    (f.targets[0].weight, f.targets[1].weight)
}

/// Records `n` requests of `ms` on target `i` of route `api`, `failed` of
/// them failures.
fn record(table: &Table, i: usize, n: u64, failed: u64, ms: u64) {
    let RouteAction::Forward(f) = &route(table, "api").action else {
        panic!("forward");
    };
    let cells = f.targets[i].watch.as_ref().expect("watched").worker(0);
    for k in 0..n {
        cells.record(k < failed, Duration::from_millis(ms));
    }
}

#[test]
fn a_step_writes_the_weights_into_the_next_table_and_shares_the_rest() {
    let mut rollouts = Rollouts::default();
    let t0 = Instant::now();
    let mut running = table((90, 10), PLAN);
    let lines = rollouts.reconcile(&mut running, t0, 0);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ringway: rollout web/api: start (canary 10, stable 90)"));
    assert_eq!(weights(&running), (90, 10));

    // Not due before the interval.
    record(&running, 0, 90, 0, 1);
    record(&running, 1, 10, 0, 1);
    let (events, changed) = rollouts.evaluate(&running, t0 + Duration::from_millis(999), 0);
    assert!(events.is_empty() && !changed);
    let (events, changed) = rollouts.evaluate(&running, t0 + Duration::from_secs(1), 1000);
    assert!(changed);
    assert_eq!(events[0].decision.weights, (25, 75));

    // The next table: this route's weights change, the other route and
    // every tally are the same objects.
    let mut next = running.clone();
    rollouts.reconcile(&mut next, t0 + Duration::from_secs(1), 1000);
    assert_eq!(weights(&next), (75, 25));
    let RouteAction::Forward(f) = &route(&next, "api").action else {
        panic!("forward");
    };
    assert_eq!(f.total_weight, 100);
    let RouteAction::Forward(before) = &route(&running, "api").action else {
        panic!("forward");
    };
    for (a, b) in f.targets.iter().zip(&before.targets) {
        assert!(Arc::ptr_eq(&a.tally, &b.tally));
        assert!(Arc::ptr_eq(
            a.watch.as_ref().expect("watched"),
            b.watch.as_ref().expect("watched")
        ));
    }
    assert!(Arc::ptr_eq(
        &route(&next, "other").tally,
        &route(&running, "other").tally
    ));
    assert_eq!(
        weights(&running),
        (90, 10),
        "the running table is untouched"
    );
}

#[test]
fn holds_let_the_window_grow() {
    let mut rollouts = Rollouts::default();
    let t0 = Instant::now();
    let mut running = table((90, 10), PLAN);
    rollouts.reconcile(&mut running, t0, 0);
    record(&running, 0, 50, 0, 1);
    record(&running, 1, 5, 0, 1);
    let (events, changed) = rollouts.evaluate(&running, t0 + Duration::from_secs(1), 0);
    assert_eq!(events[0].decision.kind, Kind::Hold);
    assert!(!changed);
    // Five more canary requests: the window since the start has ten.
    record(&running, 1, 5, 0, 1);
    let (events, _) = rollouts.evaluate(&running, t0 + Duration::from_secs(2), 0);
    let d = &events[0].decision;
    assert_eq!(d.kind, Kind::Step);
    let sample = d.sample.expect("figures");
    assert_eq!((sample.canary.requests, sample.stable.requests), (10, 50));
    // A decision that is not a hold starts a new window.
    record(&running, 1, 1, 0, 1);
    let (events, _) = rollouts.evaluate(&running, t0 + Duration::from_secs(3), 0);
    assert_eq!(
        events[0].decision.sample.expect("figures").canary.requests,
        1
    );
}

#[test]
fn a_failing_canary_is_rolled_back_on_its_window_only() {
    let mut rollouts = Rollouts::default();
    let t0 = Instant::now();
    let mut running = table((90, 10), PLAN);
    // What the canary did before the rollout began is not judged.
    record(&running, 1, 100, 100, 900);
    rollouts.reconcile(&mut running, t0, 0);
    record(&running, 0, 100, 0, 1);
    record(&running, 1, 20, 0, 1);
    let (events, _) = rollouts.evaluate(&running, t0 + Duration::from_secs(1), 0);
    let d = &events[0].decision;
    assert_eq!(d.kind, Kind::Step, "{}", d.reason);
    let mut running = running.clone();
    rollouts.reconcile(&mut running, t0, 0);
    // Two failures in twenty: 10 points above stable.
    record(&running, 0, 100, 0, 1);
    record(&running, 1, 20, 2, 1);
    let (events, changed) = rollouts.evaluate(&running, t0 + Duration::from_secs(2), 0);
    assert!(changed);
    let d = &events[0].decision;
    assert_eq!((d.kind, d.weights), (Kind::Rollback, (0, 100)));
    let mut next = running.clone();
    rollouts.reconcile(&mut next, t0, 0);
    assert_eq!(weights(&next), (100, 0));
    // Final: nothing more is evaluated.
    let (events, _) = rollouts.evaluate(&next, t0 + Duration::from_secs(5), 0);
    assert!(events.is_empty());
    assert_eq!(rollouts.next_due(), None);
}

#[test]
fn a_reload_keeps_the_same_rollout_restarts_a_changed_one_and_drops_a_removed_one() {
    let mut rollouts = Rollouts::default();
    let t0 = Instant::now();
    let mut running = table((100, 0), PLAN);
    rollouts.reconcile(&mut running, t0, 0);
    rollouts
        .act("api", Action::Promote, &running, t0, 0)
        .expect("progressing");

    // Same settings, other configured weights: kept, live weights win.
    let mut same = table((50, 50), PLAN);
    let lines = rollouts.reconcile(&mut same, t0, 0);
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(weights(&same), (0, 100));
    assert_eq!(rollouts.json()[0]["state"], "complete");

    // Another interval: it starts over from the file's weights.
    let changed_plan = PLAN.replace("\"1s\"", "\"2s\"");
    let mut changed = table((50, 50), &changed_plan);
    let lines = rollouts.reconcile(&mut changed, t0, 0);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("its settings or clusters changed; it starts over"));
    assert_eq!(weights(&changed), (50, 50));
    assert_eq!(rollouts.json()[0]["state"], "progressing");

    // No rollout key: the rollout ends.
    let mut plain = table((50, 50), "");
    let lines = rollouts.reconcile(&mut plain, t0, 0);
    assert!(
        lines[0].contains("left the configuration; the rollout ends"),
        "{lines:?}"
    );
    assert_eq!(rollouts.json(), serde_json::json!([]));
}

#[test]
fn actions_name_their_rollout_and_refuse_what_does_not_apply() {
    let mut rollouts = Rollouts::default();
    let t0 = Instant::now();
    let mut running = table((100, 0), PLAN);
    rollouts.reconcile(&mut running, t0, 0);
    let e = rollouts
        .act("web/nope", Action::Pause, &running, t0, 0)
        .expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "no rollout on route `nope` of listener `web`; rollouts: web/api"
    );
    let e = rollouts
        .act("api", Action::Resume, &running, t0, 0)
        .expect_err("not paused");
    assert_eq!(
        e.to_string(),
        "rollout web/api: cannot resume a rollout that is progressing"
    );
    rollouts
        .act("web/api", Action::Pause, &running, t0, 0)
        .expect("progressing");
    assert_eq!(rollouts.next_due(), None, "a paused rollout is not due");
    let later = t0 + Duration::from_secs(10);
    rollouts
        .act("api", Action::Resume, &running, later, 0)
        .expect("paused");
    // Resumed: a whole interval from now.
    assert_eq!(rollouts.next_due(), Some(later + Duration::from_secs(1)));
    let history = rollouts.json_of("api").expect("known");
    let kinds: Vec<&str> = history["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|d| d["decision"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, ["start", "pause", "resume"]);
    assert_eq!(history["decisions"]["pause"], 1);
}

#[test]
fn the_history_keeps_the_newest_decisions() {
    let mut rollouts = Rollouts::default();
    let t0 = Instant::now();
    let mut running = table(
        (100, 0),
        &PLAN.replace("min_requests = 10", "min_requests = 1000"),
    );
    rollouts.reconcile(&mut running, t0, 0);
    for i in 1..=(HISTORY as u64 + 10) {
        rollouts.evaluate(&running, t0 + Duration::from_secs(i), 0);
    }
    let r = &rollouts.json()[0];
    let history = r["history"].as_array().expect("history");
    assert_eq!(history.len(), HISTORY);
    assert_eq!(r["decisions"]["hold"], HISTORY as u64 + 10);
    assert_eq!(
        history.last().expect("one")["at_ms"],
        (HISTORY as u64 + 10) * 1000
    );
}
