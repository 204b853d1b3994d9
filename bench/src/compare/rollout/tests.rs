//! The API reader, and the sampler against a scripted admin API.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicUsize;

use super::*;

const NESTED: &str = r#"{
  "listener": "bench", "route": "all", "state": "progressing", "canary_weight": 10,
  "history": [
    { "time": "2026-12-07T08:00:02Z", "decision": "step", "reason": "within bounds",
      "canary_weight": 10,
      "canary": { "requests": 250, "errors": 1, "error_rate": 0.004, "p99_ms": 1.5 },
      "stable": { "requests": 4750, "errors": 0, "p99_us": 1200 } },
    { "time": 1765094404.5, "decision": "hold", "reason": "too few canary requests",
      "canary": { "requests": 12, "errors": 0, "p99": "3ms" },
      "stable": null }
  ]
}"#;

#[test]
fn the_answer_is_read_in_either_shape() {
    let s = api::parse(NESTED).expect("readable");
    assert_eq!(s.canary_weight, 10.0);
    assert_eq!(s.history.len(), 2);
    let step = &s.history[0];
    assert_eq!(
        (step.at.as_str(), step.decision.as_str(), step.weight),
        ("2026-12-07T08:00:02Z", "step", Some(10.0))
    );
    assert_eq!(
        step.canary,
        Figures {
            requests: Some(250),
            errors: Some(1),
            error_rate: Some(0.004),
            p99_ms: Some(1.5)
        }
    );
    // The rate from the counts, the p99 from µs.
    assert_eq!(step.stable.error_rate, Some(0.0));
    assert_eq!(step.stable.p99_ms, Some(1.2));
    let hold = &s.history[1];
    assert_eq!(hold.at, "1765094404.5");
    assert_eq!(hold.canary.p99_ms, Some(3.0));
    assert_eq!(hold.stable, Figures::default());

    let flat = api::parse(
        r#"{"weight": 0, "decisions": [{"at": "t1", "decision": "rollback",
            "reason": "error rate delta 0.05 > 0.01", "canary_requests": 400,
            "canary_errors": 20, "canary_p99_seconds": 0.004, "stable_requests": 3600,
            "stable_errors": 0, "stable_error_rate": 0.0, "stable_p99_ms": 2}]}"#,
    )
    .expect("readable");
    assert_eq!(flat.canary_weight, 0.0);
    let d = &flat.history[0];
    assert_eq!(d.canary.error_rate, Some(0.05));
    assert_eq!(d.canary.p99_ms, Some(4.0));
    assert_eq!(d.stable.p99_ms, Some(2.0));

    let empty = api::parse(r#"{"canary_weight": 5}"#).expect("readable");
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
            "history[0]: no time",
        ),
    ] {
        let e = api::parse(body).unwrap_err();
        assert!(e.contains(needle), "{body}: {e}");
    }
}

#[test]
fn decisions_are_marked_by_what_they_did() {
    let d = |name: &str| Decision {
        seen_s: None,
        at: String::new(),
        decision: name.into(),
        reason: String::new(),
        weight: None,
        canary: Figures::default(),
        stable: Figures::default(),
    };
    assert_eq!(d("step").kind(), Kind::Step);
    assert_eq!(d("Complete").kind(), Kind::Step);
    assert_eq!(d("hold").kind(), Kind::Hold);
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

fn answer(weight: u32, decisions: &[(&str, &str)]) -> String {
    let history: Vec<String> = decisions
        .iter()
        .map(|(at, what)| {
            format!(
                r#"{{"time": "{at}", "decision": "{what}", "reason": "r",
                    "canary": {{"requests": 300, "errors": 0, "p99_ms": 1.0}},
                    "stable": {{"requests": 2700, "errors": 0, "p99_ms": 1.0}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"canary_weight": {weight}, "history": [{}]}}"#,
        history.join(",")
    )
}

#[test]
fn the_sampler_stamps_each_decision_once_with_the_poll_that_saw_it() {
    let answers = vec![
        answer(5, &[("t0", "hold")]),
        answer(5, &[("t0", "hold")]),
        answer(10, &[("t0", "hold"), ("t1", "step")]),
        answer(0, &[("t0", "hold"), ("t1", "step"), ("t2", "rollback")]),
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
        .map(|d| d.decision.as_str())
        .collect();
    assert_eq!(names, ["hold", "step", "rollback"], "{trace:?}");
    // The first answer's decision came before the load; the others were
    // stamped by a later poll, in order.
    assert_eq!(trace.decisions[0].seen_s, None);
    let seen: Vec<f64> = trace.decisions[1..]
        .iter()
        .map(|d| d.seen_s.expect("stamped"))
        .collect();
    assert!(seen[0] <= seen[1] && seen[1] <= trace.end_s, "{seen:?}");
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
