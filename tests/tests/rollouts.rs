//! Progressive rollouts end to end: a split route's canary moved step by
//! step by the agent from the workers' own figures, rolled back when it
//! fails or slows down, and steered by the operator through the admin API
//! and `ringway rollout`.
//!
//! Every wait is on the admin API's `/rollouts` (a state, a decision
//! count) or on the client's own counts, never on time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringway_kit::admin;
use ringway_kit::launcher::run_to_exit;
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::rollout::{decisions, rollout, wait_rollout, Load};
use ringway_tests::up_to_two_cores;
use serde_json::Value;

/// Longest wait for a whole rollout (several intervals of a debug build
/// under a loaded machine).
const LONG: Duration = Duration::from_secs(120);
/// Longest wait for something that happens at once.
const SOON: Duration = Duration::from_secs(10);

/// A listener whose route `api` splits between `v1` (stable) and `v2`
/// (canary) at `weights` (stable, canary), with `rollout` keys added to
/// `canary = "v2", stable = "v1"`.
fn config(v1: SocketAddr, v2: SocketAddr, weights: (u32, u32), rollout: &str) -> HttpConfig {
    let mut config = HttpConfig::new()
        .route(
            Route::new("api")
                .split(&[("v1", weights.0), ("v2", weights.1)])
                .key(
                    "rollout",
                    &format!("{{ canary = \"v2\", stable = \"v1\", {rollout} }}"),
                ),
        )
        .cluster("v1", &[v1])
        .cluster("v2", &[v2]);
    config.worker_cores = up_to_two_cores();
    config
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn state_is(r: &Value, state: &str) -> Result<(), String> {
    if r["state"] == state {
        Ok(())
    } else {
        Err(format!("not {state}"))
    }
}

fn history(r: &Value) -> Vec<Value> {
    r["history"].as_array().cloned().unwrap_or_default()
}

/// Waits until every worker runs generation `g` or a later one.
fn wait_acked(admin_addr: SocketAddr, g: u64) {
    poll(&format!("every worker runs generation {g}"), SOON, || {
        let gens = admin::stats(admin_addr).worker_generations();
        if gens.iter().all(|&w| w >= g) {
            Ok(())
        } else {
            Err(format!("{gens:?}"))
        }
    });
}

/// `ringway rollout ARGS --admin ADDR`: exit code, stdout, stderr.
fn cli(admin_addr: SocketAddr, args: &[&str]) -> (i32, String, String) {
    let addr = admin_addr.to_string();
    let mut all = vec!["rollout"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--admin", &addr]);
    let out = run_to_exit(&all, SOON);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_healthy_canary_is_promoted_through_every_step() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    // min_p99 well above what two idle origins take: scheduling noise on a
    // busy machine must not fail a canary that is as fast as stable.
    let config = config(
        v1.addr(),
        v2.addr(),
        (100, 0),
        "steps = [5, 10, 25, 50, 100], interval = \"500ms\", min_requests = 50, min_p99 = \"500ms\"",
    );
    let proxy = Ringway::start(&config.to_toml());
    let publications_before = admin::stats(config.admin).u64("/publish_latency_us/count");
    let first = rollout(config.admin, "web/api");
    assert_eq!(first["state"], "progressing", "{first}");
    assert_eq!(
        (
            first["canary_weight"].as_u64(),
            first["stable_weight"].as_u64()
        ),
        (Some(0), Some(100))
    );
    assert_eq!(decisions(&first), ["start"]);

    let load = Load::start(config.listen, 2);
    let done = wait_rollout(
        config.admin,
        "web/api",
        "the rollout completes",
        LONG,
        |r| state_is(r, "complete"),
    );
    let history = history(&done);
    // Start, then steps (and holds while a window had too few requests),
    // ending with the step to 100.
    let moves: Vec<&Value> = history.iter().filter(|d| d["decision"] != "hold").collect();
    let kinds: Vec<&str> = moves
        .iter()
        .map(|d| d["decision"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        ["start", "step", "step", "step", "step", "complete"],
        "{done}"
    );
    let weights: Vec<u64> = moves[1..]
        .iter()
        .map(|d| d["canary_weight"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(weights, [5, 10, 25, 50, 100]);
    assert_eq!(done["canary_weight"], 100);
    assert_eq!(done["stable_weight"], 0);

    // Each move was published as its own generation, one after another.
    let generations: Vec<u64> = moves[1..]
        .iter()
        .map(|d| {
            d["generation"]
                .as_u64()
                .expect("a step names its generation")
        })
        .collect();
    assert!(
        generations.windows(2).all(|w| w[0] < w[1]),
        "{generations:?}"
    );
    let last = *generations.last().expect("five moves");
    wait_acked(config.admin, last);
    let stats = admin::stats(config.admin);
    assert!(stats.generation() >= last);
    let publications = stats.u64("/publish_latency_us/count") - publications_before;
    assert!(publications >= 5, "{publications} publications timed");

    // Each window after a step judged requests the way the step split
    // them: the canary's share of the window is within a factor of two of
    // its weight. With at least 50 canary requests expected per window,
    // a binomial count outside [half, double] has a probability below
    // 1e-5 per window.
    for pair in history.windows(2) {
        let (before, judged) = (&pair[0], &pair[1]);
        let weight = before["canary_weight"].as_u64().unwrap_or(0);
        if before["decision"] != "step" || judged["canary"].is_null() {
            continue;
        }
        let c = judged["canary"]["requests"].as_u64().unwrap_or(0) as f64;
        let s = judged["stable"]["requests"].as_u64().unwrap_or(0) as f64;
        let share = 100.0 * c / (c + s);
        assert!(
            share >= weight as f64 / 2.0 && share <= weight as f64 * 2.0,
            "at weight {weight}: canary share {share:.1}% ({judged})"
        );
    }

    // At 100, every request goes to the canary.
    let before = load.tally();
    let after = load.wait_more(&before, 200, SOON).since(&before);
    assert_eq!(after.from("v1"), 0, "{after:?}");
    assert_eq!(after.from("v2"), after.done);
    let tally = load.stop();
    assert!(tally.from("v1") > 0 && tally.from("v2") > 0);

    // Visible in /stats and /metrics.
    let stats = admin::stats(config.admin);
    let listed = &stats.json["rollouts"][0];
    assert_eq!(listed["state"], "complete");
    assert_eq!(listed["last_decision"]["decision"], "complete");
    let metrics = admin::metrics(config.admin);
    assert_eq!(metrics.sum("ringway_rollout_canary_weight"), 100.0);
    let states = metrics.of("ringway_rollout_state");
    let current: Vec<_> = states
        .iter()
        .filter(|s| admin::scalar(&s.value) == Some(1.0))
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].labels.get("state"), Some("complete"));
    let steps: f64 = metrics
        .of("ringway_rollout_decisions_total")
        .iter()
        .filter(|s| s.labels.get("decision") == Some("step"))
        .filter_map(|s| admin::scalar(&s.value))
        .sum();
    assert_eq!(steps, 4.0);
    let log = proxy.stderr();
    assert!(
        log.contains("ringway: rollout web/api: complete (canary 100, stable 0), generation"),
        "{log}"
    );
    proxy.stop().assert_clean();
}

#[test]
fn a_canary_that_starts_failing_is_rolled_back_within_one_interval() {
    let v1 = HttpOrigin::ok("v1");
    let failing = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let v2 = {
        let (failing, seen) = (Arc::clone(&failing), Arc::clone(&seen));
        // Once failing, exactly one request in 20 (5%) gets a 500.
        HttpOrigin::start(move |_| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if failing.load(Ordering::SeqCst) && n % 20 == 19 {
                Reply::status(500, b"v2")
            } else {
                Reply::ok(b"v2")
            }
        })
    };
    let config = config(
        v1.addr(),
        v2.addr(),
        (100, 0),
        "steps = [25, 50, 100], interval = \"500ms\", min_requests = 50, min_p99 = \"500ms\"",
    );
    let proxy = Ringway::start(&config.to_toml());
    let load = Load::start(config.listen, 2);
    // The next step is at least an interval (500 ms) after this one.
    wait_rollout(config.admin, "web/api", "the first step", LONG, |r| {
        if r["canary_weight"].as_u64() >= Some(25) {
            Ok(())
        } else {
            Err("below 25".into())
        }
    });
    failing.store(true, Ordering::SeqCst);
    let began = unix_ms();

    let r = wait_rollout(config.admin, "web/api", "the rollback", LONG, |r| {
        if r["state"] == "complete" {
            panic!("a failing canary completed: {r}");
        }
        state_is(r, "rolled_back")
    });
    assert_eq!(
        (r["canary_weight"].as_u64(), r["stable_weight"].as_u64()),
        (Some(0), Some(100))
    );
    // "Within one interval": a decision whose window lies wholly after the
    // failures began is a hold (too few requests) or the rollback, never a
    // step; only the one window under way when they began may have
    // stepped.
    let after: Vec<Value> = history(&r)
        .into_iter()
        .filter(|d| d["unix_ms"].as_u64().unwrap_or(0) >= began)
        .collect();
    let mut straddling_moves = 0;
    for d in &after {
        let end = d["unix_ms"].as_u64().unwrap_or(0);
        let start = end - d["window_ms"].as_u64().unwrap_or(0);
        let kind = d["decision"].as_str().unwrap_or("?");
        if start >= began {
            assert!(
                matches!(kind, "hold" | "rollback"),
                "{kind} after failures: {r}"
            );
        } else if kind != "hold" && kind != "rollback" {
            straddling_moves += 1;
        }
    }
    assert!(straddling_moves <= 1, "{r}");
    let rollback = after.last().expect("the rollback is after the failures");
    assert_eq!(rollback["decision"], "rollback");
    let reason = rollback["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("error rate "), "{reason}");
    assert!(
        rollback["canary"]["failures"].as_u64().unwrap_or(0) >= 2,
        "{rollback}"
    );
    assert_eq!(rollback["stable"]["failures"], 0);

    // Once the rollback runs everywhere, all traffic goes to stable.
    wait_acked(
        config.admin,
        rollback["generation"].as_u64().expect("published"),
    );
    let before = load.tally();
    let after = load.wait_more(&before, 200, SOON).since(&before);
    assert_eq!(after.from("v2"), 0, "{after:?}");
    drop(load);
    let log = proxy.stderr();
    assert!(
        log.contains("ringway: rollout web/api: rollback (canary 0, stable 100)"),
        "{log}"
    );
    proxy.stop().assert_clean();
}

#[test]
fn a_canary_three_times_slower_at_p99_is_rolled_back() {
    let v1 = HttpOrigin::start(|_| Reply::ok(b"v1").delay(Duration::from_millis(10)));
    let v2 = HttpOrigin::start(|_| Reply::ok(b"v2").delay(Duration::from_millis(30)));
    let config = config(
        v1.addr(),
        v2.addr(),
        (90, 10),
        "steps = [25, 50, 100], interval = \"500ms\", min_requests = 20, min_p99 = \"1ms\"",
    );
    let proxy = Ringway::start(&config.to_toml());
    let load = Load::start(config.listen, 8);
    let r = wait_rollout(config.admin, "web/api", "the rollback", LONG, |r| {
        if r["state"] == "complete" {
            panic!("a slow canary completed: {r}");
        }
        state_is(r, "rolled_back")
    });
    drop(load);
    let rollback = history(&r).pop().expect("a history");
    assert_eq!(rollback["decision"], "rollback");
    let reason = rollback["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("p99 "), "{reason}");
    // The figures behind it: the origins' own delays are floors.
    assert!(
        rollback["canary"]["p99_us"].as_u64().unwrap_or(0) >= 30_000,
        "{rollback}"
    );
    assert!(
        rollback["stable"]["p99_us"].as_u64().unwrap_or(0) >= 10_000,
        "{rollback}"
    );
    assert_eq!(rollback["canary"]["failures"], 0);
    proxy.stop().assert_clean();
}

#[test]
fn no_step_is_taken_without_min_requests() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    let config = config(
        v1.addr(),
        v2.addr(),
        (90, 10),
        "interval = \"200ms\", min_requests = 1000",
    );
    let proxy = Ringway::start(&config.to_toml());
    let holds = |r: &Value| r["decisions"]["hold"].as_u64().unwrap_or(0);
    // No traffic at all: holds, nothing else.
    let r = wait_rollout(config.admin, "web/api", "three holds", SOON, |r| {
        if holds(r) >= 3 {
            Ok(())
        } else {
            Err("fewer holds".into())
        }
    });
    assert_eq!(r["canary_weight"], 10);
    // A little traffic, far below min_requests.
    let mut client = ringway_tests::http_client::HttpConn::open(config.listen);
    for _ in 0..30 {
        let response = client.exchange(&ringway_tests::http_client::Req::get("/"));
        assert_eq!(response.status, 200);
    }
    let seen = holds(&r);
    let r = wait_rollout(config.admin, "web/api", "three more holds", SOON, |r| {
        if holds(r) >= seen + 3 {
            Ok(())
        } else {
            Err("fewer holds".into())
        }
    });
    assert_eq!(r["state"], "progressing");
    assert_eq!(
        (r["canary_weight"].as_u64(), r["stable_weight"].as_u64()),
        (Some(90 - 80), Some(90))
    );
    // 10% is the plan's second step: where it was configured.
    assert_eq!(r["step"], 2);
    assert!(
        decisions(&r).iter().all(|d| matches!(*d, "start" | "hold")),
        "{r}"
    );
    // The window grows over holds: the last one judged every request.
    let last = &r["last_decision"];
    let judged = last["canary"]["requests"].as_u64().unwrap_or(0)
        + last["stable"]["requests"].as_u64().unwrap_or(0);
    assert_eq!(judged, 30, "{last}");
    assert!(
        last["reason"].as_str().unwrap_or("").contains("needs 1000"),
        "{last}"
    );
    // Holds change nothing: no publication, no log line.
    assert_eq!(admin::stats(config.admin).generation(), 1);
    assert!(!proxy.stderr().contains("rollout web/api: hold"));
    proxy.stop().assert_clean();
}

/// Sends `n` requests to `listen`, one after another; returns how many
/// each origin answered (v1, v2).
fn send(listen: SocketAddr, n: usize) -> (usize, usize) {
    let mut client = ringway_tests::http_client::HttpConn::open(listen);
    let mut answered = (0, 0);
    for _ in 0..n {
        let response = client.exchange(&ringway_tests::http_client::Req::get("/"));
        assert_eq!(response.status, 200);
        match response.body_text().as_str() {
            "v1" => answered.0 += 1,
            "v2" => answered.1 += 1,
            other => panic!("answered by {other:?}"),
        }
    }
    answered
}

/// Sends exactly `min_requests` (20) requests, all to stable, and waits
/// for the step they allow: with no more traffic, the rollout then holds
/// where it is, whatever the test does next.
fn one_step(config: &HttpConfig) {
    assert_eq!(send(config.listen, 20), (20, 0));
    wait_rollout(config.admin, "web/api", "the first step", SOON, |r| {
        if r["canary_weight"] == 25 {
            Ok(())
        } else {
            Err("not at 25".into())
        }
    });
}

#[test]
fn pause_resume_abort_and_promote_through_the_cli() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    let settings =
        "steps = [25, 50, 100], interval = \"200ms\", min_requests = 20, min_p99 = \"500ms\"";
    let config = config(v1.addr(), v2.addr(), (100, 0), settings);
    let proxy = Ringway::start(&config.to_toml());
    let admin_addr = config.admin;

    let (code, out, _) = cli(admin_addr, &["status", "web/api"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "rollout web/api: progressing, canary v2 0% / stable v1 100%, step 0 of 3 (next 25%)"
        ),
        "{out}"
    );
    assert!(out.contains("history:") && out.contains(" start "), "{out}");

    // Paused: it stays at 0 whatever comes.
    let (code, out, _) = cli(admin_addr, &["pause", "web/api"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("web/api: paused"), "{out}");
    let (code, _, err) = cli(admin_addr, &["pause", "api"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot pause a rollout that is paused"),
        "{err}"
    );
    assert_eq!(send(config.listen, 300), (300, 0));
    let r = rollout(admin_addr, "web/api");
    assert_eq!(
        (r["state"].as_str(), r["canary_weight"].as_u64()),
        (Some("paused"), Some(0))
    );
    assert_eq!(r["paused"], true);
    assert_eq!(decisions(&r), ["start", "pause"]);

    // Resumed: the paused time's 300 requests are not judged; 20 new ones
    // make the first step.
    let (code, out, _) = cli(admin_addr, &["resume", "api"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("web/api: progressing"), "{out}");
    one_step(&config);

    let (code, out, err) = cli(admin_addr, &["abort", "api"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published generation"), "{out}");
    assert!(
        out.contains("web/api: aborted, canary v2 0% / stable v1 100%"),
        "{out}"
    );
    let r = rollout(admin_addr, "web/api");
    let abort = history(&r).pop().expect("history");
    assert_eq!(abort["decision"], "abort");
    wait_acked(admin_addr, abort["generation"].as_u64().expect("published"));
    assert_eq!(send(config.listen, 100), (100, 0));
    // Final: nothing more applies.
    let (code, _, err) = cli(admin_addr, &["resume", "api"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot resume a rollout that is aborted"),
        "{err}"
    );
    let (code, _, err) = cli(admin_addr, &["promote", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no rollout on a route named `nope`; rollouts: web/api"),
        "{err}"
    );

    // A changed rollout starts over; promoted, the canary takes all.
    let changed = config_with(
        &config,
        v1.addr(),
        v2.addr(),
        "steps = [50, 100], interval = \"200ms\", min_requests = 20, min_p99 = \"500ms\"",
    );
    let reply = admin::post(admin_addr, "/config", &changed.to_toml());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let r = rollout(admin_addr, "web/api");
    assert_eq!(decisions(&r), ["start"]);
    let (code, out, err) = cli(admin_addr, &["promote", "web/api"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("web/api: complete, canary v2 100% / stable v1 0%"),
        "{out}"
    );
    let r = rollout(admin_addr, "web/api");
    let promote = history(&r).pop().expect("history");
    assert_eq!(promote["decision"], "promote");
    wait_acked(
        admin_addr,
        promote["generation"].as_u64().expect("published"),
    );
    assert_eq!(send(config.listen, 100), (0, 100));

    // Every rollout, and `ringway stats`.
    let (code, out, _) = cli(admin_addr, &["status"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("rollout web/api: complete"), "{out}");
    let stats = run_to_exit(&["stats", "--admin", &admin_addr.to_string()], SOON);
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(
        text.contains("rollout web/api: complete, canary v2 100% / stable v1 0%"),
        "{text}"
    );
    let log = proxy.stderr();
    for line in [
        "rollout web/api: pause (canary 0, stable 100): paused by the operator",
        "rollout web/api: resume (canary 0, stable 100): resumed by the operator",
        "rollout web/api: abort (canary 0, stable 100), generation",
        "rollout web/api: its settings or clusters changed; it starts over",
        "rollout web/api: promote (canary 100, stable 0), generation",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
    proxy.stop().assert_clean();
}

/// `config`'s listener and admin ports with other rollout settings.
fn config_with(base: &HttpConfig, v1: SocketAddr, v2: SocketAddr, rollout: &str) -> HttpConfig {
    let mut next = config(v1, v2, (100, 0), rollout);
    next.listen = base.listen;
    next.admin = base.admin;
    next.worker_cores = base.worker_cores.clone();
    next
}

#[test]
fn a_reload_keeps_an_unchanged_rollout_and_restarts_a_changed_one() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    let settings =
        "steps = [25, 50, 100], interval = \"200ms\", min_requests = 20, min_p99 = \"500ms\"";
    let base = config(v1.addr(), v2.addr(), (100, 0), settings);
    let proxy = Ringway::start(&base.to_toml());
    one_step(&base);
    let reply = admin::post(base.admin, "/rollouts/web/api/pause", "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let paused = rollout(base.admin, "web/api");
    let weight = paused["canary_weight"].as_u64().expect("a weight");

    // Another route added: the rollout keeps its state and its weights in
    // the new table.
    let with_other = base.clone().route(
        Route::new("other")
            .path("/other")
            .direct(200, "other", None),
    );
    let reply = admin::post(base.admin, "/config", &with_other.to_toml());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let kept = rollout(base.admin, "web/api");
    assert_eq!(kept["state"], "paused");
    assert_eq!(kept["canary_weight"].as_u64(), Some(weight));
    assert_eq!(kept["history"], paused["history"]);
    let effective = admin::get(base.admin, "/config").body;
    assert!(
        effective.contains(&format!("cluster = \"v2\"\nweight = {weight}\n")),
        "{effective}"
    );
    let (_, to_canary) = send(base.listen, 200);
    assert!(
        to_canary > 0,
        "{to_canary} of 200 to the canary at {weight}%"
    );

    // An endpoint update keeps it too.
    let body = format!("[\"{}\"]", v2.addr());
    let put = admin::Connection::open(base.admin)
        .expect("admin")
        .send("PUT", "/clusters/v2/endpoints", Some(&body), true)
        .expect("an answer");
    assert_eq!(put.status, 200, "{}", put.body);
    let kept = rollout(base.admin, "web/api");
    assert_eq!(kept["state"], "paused");
    assert_eq!(kept["canary_weight"].as_u64(), Some(weight));
    assert_eq!(kept["history"], paused["history"]);
    let effective = admin::get(base.admin, "/config").body;
    assert!(
        effective.contains(&format!("cluster = \"v2\"\nweight = {weight}\n")),
        "{effective}"
    );

    // Its settings changed: it starts over from the configured weights.
    let changed = config_with(
        &base,
        v1.addr(),
        v2.addr(),
        "steps = [25, 50, 100], interval = \"300ms\", min_requests = 21, min_p99 = \"500ms\"",
    );
    let reply = admin::post(base.admin, "/config", &changed.to_toml());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let restarted = rollout(base.admin, "web/api");
    assert_eq!(decisions(&restarted)[0], "start", "{restarted}");
    assert_eq!(restarted["history"][0]["canary_weight"], 0);
    assert_eq!(restarted["min_requests"], 21);

    // Without the rollout key: no rollout, the split as written.
    let toml = base.to_toml();
    let start = toml.find("rollout = ").expect("a rollout key");
    let end = start + toml[start..].find('\n').expect("a line");
    let without = format!("{}{}", &toml[..start], &toml[end + 1..]);
    let reply = admin::post(base.admin, "/config", &without);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let all = admin::get(base.admin, "/rollouts");
    assert_eq!(all.body.trim(), "[]");
    let gone = admin::get(base.admin, "/rollouts/web/api");
    assert_eq!(gone.status, 404);
    assert!(
        gone.body
            .contains("the running configuration has no rollout"),
        "{}",
        gone.body
    );
    let log = proxy.stderr();
    assert!(
        log.contains("rollout web/api: its settings or clusters changed; it starts over"),
        "{log}"
    );
    assert!(
        log.contains("rollout web/api: the route or its rollout left the configuration"),
        "{log}"
    );
    proxy.stop().assert_clean();
}

#[test]
fn a_restart_starts_from_the_configured_weights() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    let config = config(
        v1.addr(),
        v2.addr(),
        (100, 0),
        "steps = [25, 50, 100], interval = \"300ms\", min_requests = 20, min_p99 = \"500ms\"",
    );
    let proxy = Ringway::start(&config.to_toml());
    one_step(&config);
    proxy.stop().assert_clean();

    let again = Ringway::start(&config.to_toml());
    let r = rollout(config.admin, "web/api");
    assert_eq!(r["state"], "progressing");
    assert_eq!(
        (r["canary_weight"].as_u64(), r["stable_weight"].as_u64()),
        (Some(0), Some(100))
    );
    assert_eq!(decisions(&r), ["start"]);
    // And the table runs them: no request reaches the canary (fewer than
    // min_requests, so these requests cannot make it step either).
    assert_eq!(send(config.listen, 19), (19, 0));
    again.stop().assert_clean();
}

#[test]
fn a_bad_rollout_is_refused_with_its_key_and_line() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    let good = config(v1.addr(), v2.addr(), (100, 0), "interval = \"1s\"");
    let proxy = Ringway::start(&good.to_toml());
    let cases = [
        (
            "interval = \"1s\", steps = [5, 50]",
            "listeners[0].routes[0].rollout.steps",
            "the last step must be 100",
        ),
        (
            "interval = \"1s\", steps = [50, 25, 100]",
            "listeners[0].routes[0].rollout.steps[1]",
            "step 25 does not follow 50",
        ),
        (
            "interval = \"10ms\"",
            "listeners[0].routes[0].rollout.interval",
            "shorter than 100ms",
        ),
        (
            "interval = \"1s\", max_p99_ratio = 0.5",
            "listeners[0].routes[0].rollout.max_p99_ratio",
            "out of range",
        ),
    ];
    for (settings, key, reason) in cases {
        let bad = config_with(&good, v1.addr(), v2.addr(), settings);
        let reply = admin::post(good.admin, "/config", &bad.to_toml());
        assert_eq!(reply.status, 400, "{settings}: {}", reply.body);
        assert!(
            reply.body.contains(key) && reply.body.contains(reason),
            "{settings}: {}",
            reply.body
        );
        let line = bad
            .to_toml()
            .lines()
            .position(|l| l.trim_start().starts_with("rollout = "))
            .expect("a rollout line")
            + 1;
        assert!(
            reply.body.contains(&format!(":{line}:")),
            "line {line}: {}",
            reply.body
        );
    }
    // The running rollout is untouched by refused configurations.
    let r = rollout(good.admin, "web/api");
    assert_eq!(decisions(&r), ["start"]);
    proxy.stop().assert_clean();
}

#[test]
fn the_admin_api_names_unknown_rollouts_and_refuses_actions_that_do_not_apply() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    let config = config(v1.addr(), v2.addr(), (100, 0), "interval = \"1s\"");
    let proxy = Ringway::start(&config.to_toml());
    let a = config.admin;
    let all = admin::get(a, "/rollouts");
    assert_eq!(all.status, 200);
    let list: Value = serde_json::from_str(&all.body).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["route"], "api");
    // By route name alone, as it is unique.
    assert_eq!(admin::get(a, "/rollouts/api").status, 200);

    let unknown = admin::get(a, "/rollouts/web/nope");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .body
            .contains("no rollout on route `nope` of listener `web`; rollouts: web/api"),
        "{}",
        unknown.body
    );
    let action = admin::post(a, "/rollouts/web/api/faster", "");
    assert_eq!(action.status, 404);
    assert!(
        action
            .body
            .contains("ACTION one of pause, resume, promote, abort"),
        "{}",
        action.body
    );
    let resume = admin::post(a, "/rollouts/web/api/resume", "");
    assert_eq!(resume.status, 409);
    assert!(
        resume
            .body
            .contains("cannot resume a rollout that is progressing"),
        "{}",
        resume.body
    );
    let put = ringway_kit::admin::Connection::open(a)
        .expect("admin")
        .send("PUT", "/rollouts/web/api", Some(""), true)
        .expect("an answer");
    assert_eq!(put.status, 405);
    // Nothing of this changed the rollout or published anything.
    let r = rollout(a, "web/api");
    assert_eq!(decisions(&r), ["start"]);
    assert_eq!(admin::stats(a).generation(), 1);
    proxy.stop().assert_clean();
}

/// A client that stalls its request body until ringway gives up on it
/// (`client_timeout`, the client's fault) tells nothing of the canary:
/// otherwise any client could roll a healthy canary back by sending slow
/// bodies (as failures, or as durations that push its p99 up). Such
/// requests are left out of the rollout's figures: with them mixed into
/// normal traffic the rollout steps on the normal requests alone.
#[test]
fn clients_that_stall_their_bodies_are_left_out_of_the_figures() {
    let (v1, v2) = (HttpOrigin::ok("v1"), HttpOrigin::ok("v2"));
    let config = config(
        v1.addr(),
        v2.addr(),
        (50, 50),
        "steps = [75, 100], interval = \"200ms\", min_requests = 10, min_p99 = \"0s\", max_p99_ratio = 1000",
    )
    .listener_key("request_timeout", "\"1s\"");
    let proxy = Ringway::start(&config.to_toml());
    let mut normal = 0;
    let r = poll("a decision", LONG, || {
        // A batch of clients that send 10 of the 100 body bytes they
        // announce, then wait for ringway's answer; after them, normal
        // requests.
        let stalled: Vec<_> = (0..20)
            .map(|_| {
                let listen = config.listen;
                std::thread::spawn(move || {
                    let mut client = ringway_tests::http_client::HttpConn::open(listen);
                    client.send_raw(
                        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789",
                    );
                    client.try_read(false).map(|r| r.status).ok()
                })
            })
            .collect();
        // Until they are answered nothing reaches min_requests (the
        // rollout holds), so the window judged first holds them all.
        let statuses: Vec<Option<u16>> = stalled
            .into_iter()
            .map(|t| t.join().ok().flatten())
            .collect();
        let mut client = ringway_tests::http_client::HttpConn::open(config.listen);
        for _ in 0..30 {
            let response = client.exchange(&ringway_tests::http_client::Req::get("/"));
            assert_eq!(response.status, 200);
            normal += 1;
        }
        let r = rollout(config.admin, "web/api");
        if r["decisions"]["step"].as_u64() >= Some(1)
            || r["decisions"]["rollback"].as_u64() >= Some(1)
        {
            Ok(r)
        } else {
            Err(format!(
                "stalled answered {statuses:?}; {}",
                r["last_decision"]
            ))
        }
    });
    let judged = history(&r)
        .into_iter()
        .find(|d| d["decision"] == "step" || d["decision"] == "rollback")
        .expect("a decision");
    assert_eq!(judged["decision"], "step", "{judged}");
    for side in ["canary", "stable"] {
        assert_eq!(judged[side]["failures"], 0, "{judged}");
        // A stalled request lasts the whole 1 s request_timeout.
        assert!(
            judged[side]["p99_us"].as_u64().unwrap_or(0) < 1_000_000,
            "{judged}"
        );
    }
    let judged_requests = judged["canary"]["requests"].as_u64().unwrap_or(0)
        + judged["stable"]["requests"].as_u64().unwrap_or(0);
    assert!(
        judged_requests <= normal,
        "{judged_requests} judged of {normal} normal requests"
    );
    // They were timed out as the clients' doing.
    let timeouts = admin::metrics(config.admin)
        .of("ringway_http_errors_total")
        .iter()
        .filter(|s| s.labels.get("reason") == Some("client_timeout"))
        .filter_map(|s| admin::scalar(&s.value))
        .sum::<f64>();
    assert!(timeouts >= 20.0, "{timeouts} client timeouts");
    proxy.stop().assert_clean();
}
