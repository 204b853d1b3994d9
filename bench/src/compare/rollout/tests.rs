//! The API reader, and the sampler against a scripted admin API.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicUsize;

use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

/// The shape docs/admin.md gives, with a start, a step and a hold.
const ANSWER: &str = r#"{
  "listener": "bench", "route": "all", "canary": "canary", "stable": "stable",
  "state": "progressing", "paused": false, "step": 1, "steps": [5, 10, 25, 50, 100],
  "next_step": 25, "canary_weight": 10, "stable_weight": 90, "canary_share": 10.0,
  "interval_ms": 2000, "max_error_rate_delta": 0.01, "max_p99_ratio": 1.5,
  "min_requests": 100, "min_p99_us": 5000, "started_unix_ms": 1765090000000,
  "decisions": { "start": 1, "hold": 1, "step": 1, "complete": 0, "rollback": 0,
                 "pause": 0, "resume": 0, "promote": 0, "abort": 0 },
  "history": [
    { "at_ms": 0, "unix_ms": 1765090000000, "decision": "start", "reason": "configured weights",
      "canary_weight": 5, "stable_weight": 95, "window_ms": null, "generation": 1,
      "canary": null, "stable": null },
    { "at_ms": 2000, "unix_ms": 1765090002000, "decision": "step",
      "reason": "within bounds: canary to 10%", "canary_weight": 10, "stable_weight": 90,
      "window_ms": 2000, "generation": 2,
      "canary": { "requests": 250, "failures": 1, "error_rate": 0.004, "p99_us": 1500 },
      "stable": { "requests": 4750, "failures": 0, "error_rate": 0.0, "p99_us": 1200 } },
    { "at_ms": 4000, "unix_ms": 1765090004000, "decision": "hold", "reason": "too few",
      "canary_weight": 10, "stable_weight": 90, "window_ms": 2000, "generation": null,
      "canary": { "requests": 12, "failures": 0, "p99_us": null },
      "stable": { "requests": 0, "failures": 0, "error_rate": null, "p99_us": null } }
  ]
}"#;

#[test]
fn the_documented_answer_is_read() {
    let s = api::parse(ANSWER).expect("readable");
    assert_eq!(s.canary_weight, 10.0);
    let names: Vec<&str> = s.history.iter().map(|d| d.decision.as_str()).collect();
    assert_eq!(names, ["start", "step", "hold"]);
    let start = &s.history[0];
    assert_eq!(
        (start.unix_ms, start.weight),
        (1_765_090_000_000, Some(5.0))
    );
    assert_eq!(start.canary, Figures::default());
    let step = &s.history[1];
    assert_eq!(step.reason, "within bounds: canary to 10%");
    assert_eq!(
        step.canary,
        Figures {
            requests: Some(250),
            errors: Some(1),
            error_rate: Some(0.004),
            p99_ms: Some(1.5)
        }
    );
    assert_eq!(step.stable.p99_ms, Some(1.2));
    // An absent rate is the failures over the requests; none without any.
    let hold = &s.history[2];
    assert_eq!(hold.canary.error_rate, Some(0.0));
    assert_eq!(hold.canary.p99_ms, None);
    assert_eq!(hold.stable.error_rate, None);

    let empty = api::parse(r#"{"canary_weight": 5, "history": []}"#).expect("readable");
    assert!(empty.history.is_empty());
}

#[test]
fn an_unreadable_answer_says_what_is_missing() {
    for (body, needle) in [
        ("<html>", "not JSON"),
        ("[]", "not a JSON object"),
        (r#"{"history": []}"#, "no canary_weight"),
        (r#"{"canary_weight": 5, "history": {}}"#, "not an array"),
        (
            r#"{"canary_weight": 5, "history": [{"decision": "hold"}]}"#,
            "history[0]: no unix_ms",
        ),
        (
            r#"{"canary_weight": 5, "history": [{"unix_ms": 5}]}"#,
            "history[0]: no decision",
        ),
    ] {
        let e = api::parse(body).unwrap_err();
        assert!(e.contains(needle), "{body}: {e}");
    }
}

#[test]
fn decisions_are_marked_by_what_they_did() {
    let d = |name: &str| Decision {
        at_s: None,
        taken: ApiDecision {
            unix_ms: 0,
            decision: name.into(),
            reason: String::new(),
            weight: None,
            canary: Figures::default(),
            stable: Figures::default(),
        },
    };
    assert_eq!(d("step").kind(), Kind::Step);
    assert_eq!(d("Complete").kind(), Kind::Step);
    assert_eq!(d("hold").kind(), Kind::Hold);
    assert_eq!(d("promote").kind(), Kind::Step);
    assert_eq!(d("abort").kind(), Kind::Rollback);
    assert_eq!(d("pause").kind(), Kind::Hold);
    assert_eq!(d("rollback").kind(), Kind::Rollback);
    assert_eq!(d("rolled_back").kind(), Kind::Rollback);
}

/// An admin API that answers each `GET` with the next of `answers` (the
/// last one again once they run out), a thread per connection; returns
/// its address and the count of answers served.
fn scripted_api(answers: Vec<String>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("an address");
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    let answers = Arc::new(answers);
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let (served, answers) = (Arc::clone(&count), Arc::clone(&answers));
            thread::spawn(move || serve(conn, &answers, &served));
        }
    });
    (addr, served)
}

fn serve(conn: TcpStream, answers: &[String], served: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut writer = conn;
    loop {
        // The head: up to the blank line.
        let mut line = String::new();
        let mut head = 0;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head += 1,
            }
        }
        if head == 0 {
            return;
        }
        let n = served.fetch_add(1, Ordering::SeqCst);
        let body = &answers[n.min(answers.len() - 1)];
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// An answer with the canary at `weight` and `decisions` (milliseconds
/// since 1970, name) in its history.
fn answer(weight: u32, decisions: &[(u64, &str)]) -> String {
    let history: Vec<String> = decisions
        .iter()
        .map(|(unix_ms, what)| {
            format!(
                r#"{{"unix_ms": {unix_ms}, "decision": "{what}", "reason": "r", "canary_weight": {weight},
                    "canary": {{"requests": 300, "failures": 0, "error_rate": 0.0, "p99_us": 1000}},
                    "stable": {{"requests": 2700, "failures": 0, "error_rate": 0.0, "p99_us": 1000}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"canary_weight": {weight}, "history": [{}]}}"#,
        history.join(",")
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

#[test]
fn the_sampler_keeps_each_decision_once_at_the_time_it_was_taken() {
    // One decision an hour before the sampler starts, two a little
    // after: far enough apart that no clock step between the two reads of
    // the wall clock can reorder them.
    let t0 = now_ms();
    let (before, step, rollback) = (t0 - 3_600_000, t0 + 10_000, t0 + 11_000);
    let answers = vec![
        answer(5, &[(before, "start")]),
        answer(5, &[(before, "start")]),
        answer(10, &[(before, "start"), (step, "step")]),
        answer(
            0,
            &[(before, "start"), (step, "step"), (rollback, "rollback")],
        ),
    ];
    let last = answers.len();
    let (admin, served) = scripted_api(answers);
    let scenario = crate::compare::scenario::parse(
        "name = \"r\"\nsystems = [\"ringway\"]\n[origin]\ncount = 2\n\
         [load]\nwarmup = \"1s\"\nduration = \"5s\"\n\
         [sweep]\nrates = [100]\nmax_throughput = false\n[memory]\nidle_connections = 0\n\
         [rollout]\nsteps = [5, 100]\n\
         [[faults]]\norigins = [1]\nat = \"2s\"\nfail_ratio = 0.5\n",
    )
    .expect("a scenario");
    let sampler = Sampler::start(Plan {
        admin,
        every: Duration::from_millis(10),
        core: None,
    });
    // Until the sampler has had the last answer: the counter of the
    // scripted API says when.
    ringway_kit::wait::poll(
        "the sampler polled every answer",
        Duration::from_secs(10),
        || {
            let n = served.load(Ordering::SeqCst);
            if n >= last {
                Ok(())
            } else {
                Err(format!("{n} answers served"))
            }
        },
    );
    let trace = sampler.finish(&scenario, "ringway", 0, 100.0, "r1-ringway-rate100");
    assert!(trace.problems().is_empty(), "{:?}", trace.problems());
    assert!(trace.samples.len() >= 2, "{trace:?}");
    assert_eq!(trace.samples.last().map(|s| s.weight), Some(0.0));
    assert!(trace.samples.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    let names: Vec<&str> = trace
        .decisions
        .iter()
        .map(|d| d.taken.decision.as_str())
        .collect();
    assert_eq!(names, ["start", "step", "rollback"], "{trace:?}");
    // The start came before the load; the others are placed where the
    // agent took them: a second apart, ten and eleven seconds in (less by the time the sampler took to start).
    assert_eq!(trace.decisions[0].at_s, None);
    let at: Vec<f64> = trace.decisions[1..]
        .iter()
        .map(|d| d.at_s.expect("during the load"))
        .collect();
    assert!((at[1] - at[0] - 1.0).abs() < 1e-6, "{at:?}");
    assert!(at[0] > 0.0 && at[0] <= 10.0, "{at:?}");
    assert_eq!(trace.canary_fault_s, Some(3.0));
    assert_eq!(trace.warmup_s, 1.0);
}

#[test]
fn a_sampler_without_an_api_reports_its_failed_polls() {
    let admin = ringway_kit::ports::dead_endpoint();
    let scenario = crate::compare::scenario::parse(
        "name = \"r\"\nsystems = [\"ringway\"]\n[origin]\ncount = 2\n\
         [sweep]\nrates = [100]\nmax_throughput = false\n[memory]\nidle_connections = 0\n\
         [rollout]\n",
    )
    .expect("a scenario");
    let sampler = Sampler::start(Plan {
        admin,
        every: Duration::from_millis(10),
        core: None,
    });
    let trace = sampler.finish(&scenario, "ringway", 0, 100.0, "r1");
    assert!(trace.failed_polls >= 1, "{trace:?}");
    let problems = trace.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[1].contains("no poll"), "{problems:?}");
    assert_eq!(trace.canary_fault_s, None);
}
