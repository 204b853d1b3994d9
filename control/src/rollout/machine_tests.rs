use std::sync::Arc;
use std::time::Duration;

use super::*;

fn plan(configured: (u32, u32)) -> Rollout {
    Rollout {
        canary: 1,
        stable: 0,
        steps: Arc::from([5u32, 10, 25, 50, 100].as_slice()),
        interval: Duration::from_secs(1),
        max_error_rate_delta: 0.01,
        max_p99_ratio: 1.5,
        min_requests: 100,
        min_p99: Duration::from_millis(5),
        configured,
    }
}

fn side(requests: u64, failures: u64, p99_ms: u64) -> Side {
    Side {
        requests,
        failures,
        p99_us: (requests > 0).then_some(p99_ms * 1000),
    }
}

/// A window where both sides had `n` requests, no failures, a p99 of 10 ms.
fn healthy(n: u64) -> Sample {
    Sample {
        canary: side(n, 0, 10),
        stable: side(n, 0, 10),
    }
}

#[test]
fn starts_from_the_configured_share() {
    let (m, d) = Machine::start(&plan((0, 100)));
    assert_eq!(
        (m.phase(), m.weights(), d.kind),
        (Phase::Progressing, (0, 100), Kind::Start)
    );
    assert_eq!(m.next_step(&plan((0, 100))), Some(5));
    // 10% configured: the next step is the first above it.
    let (m, _) = Machine::start(&plan((10, 90)));
    assert_eq!(m.next_step(&plan((10, 90))), Some(25));
    // 1 in 8 is 12.5%: 25 is the next.
    let (m, _) = Machine::start(&plan((1, 7)));
    assert_eq!(m.next_step(&plan((1, 7))), Some(25));
    // Already all on the canary.
    let (m, d) = Machine::start(&plan((100, 0)));
    assert_eq!((m.phase(), d.kind), (Phase::Complete, Kind::Start));
    assert_eq!(m.next_step(&plan((100, 0))), None);
}

#[test]
fn a_healthy_canary_steps_through_every_step_to_complete() {
    let p = plan((0, 100));
    let (mut m, _) = Machine::start(&p);
    // At 0 the canary has no requests: only the stable side is counted.
    let first = Sample {
        canary: Side::default(),
        stable: side(200, 0, 10),
    };
    let d = m.evaluate(&p, first).expect("progressing");
    assert_eq!((d.kind, d.weights), (Kind::Step, (5, 95)));
    let mut seen = vec![d.weights.0];
    loop {
        let d = m.evaluate(&p, healthy(100)).expect("progressing");
        seen.push(d.weights.0);
        if d.kind == Kind::Complete {
            break;
        }
        assert_eq!(d.kind, Kind::Step);
    }
    assert_eq!(seen, [5, 10, 25, 50, 100]);
    assert_eq!((m.phase(), m.weights()), (Phase::Complete, (100, 0)));
    // Nothing is evaluated any more.
    assert_eq!(m.evaluate(&p, healthy(100)), None);
}

#[test]
fn too_few_requests_hold() {
    let p = plan((10, 90));
    let (mut m, _) = Machine::start(&p);
    for sample in [
        healthy(99),
        Sample {
            canary: side(100, 0, 10),
            stable: side(99, 0, 10),
        },
        Sample {
            canary: side(99, 50, 900),
            stable: side(1000, 0, 10),
        },
    ] {
        let d = m.evaluate(&p, sample).expect("progressing");
        assert_eq!((d.kind, d.weights), (Kind::Hold, (10, 90)), "{}", d.reason);
        assert!(d.reason.contains("needs 100"), "{}", d.reason);
    }
    assert_eq!(m.phase(), Phase::Progressing);
    // At 0 the canary needs none.
    let p = plan((0, 100));
    let (mut m, _) = Machine::start(&p);
    let d = m.evaluate(&p, healthy(0)).expect("progressing");
    assert_eq!((d.kind, d.weights), (Kind::Hold, (0, 100)));
}

#[test]
fn an_error_rate_above_the_bound_rolls_back() {
    let p = plan((10, 90));
    let (mut m, _) = Machine::start(&p);
    // 2% against 0.5%: 1.5 points above, the bound is 1.
    let sample = Sample {
        canary: side(1000, 20, 10),
        stable: side(1000, 5, 10),
    };
    let d = m.evaluate(&p, sample).expect("progressing");
    assert_eq!((d.kind, d.weights), (Kind::Rollback, (0, 100)));
    assert!(
        d.reason.starts_with("error rate 2.00% (20 of 1000)"),
        "{}",
        d.reason
    );
    assert_eq!(m.phase(), Phase::RolledBack);
    assert_eq!(m.evaluate(&p, healthy(1000)), None);
}

#[test]
fn an_error_rate_at_the_bound_is_within() {
    let p = plan((10, 90));
    let (mut m, _) = Machine::start(&p);
    let sample = Sample {
        canary: side(1000, 10, 10),
        stable: side(1000, 0, 10),
    };
    let d = m.evaluate(&p, sample).expect("progressing");
    assert_eq!((d.kind, d.weights), (Kind::Step, (25, 75)), "{}", d.reason);
}

#[test]
fn a_slow_canary_rolls_back_above_min_p99_only() {
    let p = plan((10, 90));
    let (mut m, _) = Machine::start(&p);
    let slow = Sample {
        canary: side(100, 0, 30),
        stable: side(100, 0, 10),
    };
    let d = m.evaluate(&p, slow).expect("progressing");
    assert_eq!(d.kind, Kind::Rollback);
    assert!(
        d.reason.starts_with("p99 30.0ms is 3.00x stable's 10.0ms"),
        "{}",
        d.reason
    );

    // 3x slower, but 3 ms is below min_p99 (5 ms): not a reason.
    let (mut m, _) = Machine::start(&p);
    let fast = Sample {
        canary: Side {
            requests: 100,
            failures: 0,
            p99_us: Some(3000),
        },
        stable: Side {
            requests: 100,
            failures: 0,
            p99_us: Some(1000),
        },
    };
    assert_eq!(m.evaluate(&p, fast).expect("progressing").kind, Kind::Step);
    // 1.5x exactly is within.
    let (mut m, _) = Machine::start(&p);
    let even = Sample {
        canary: side(100, 0, 15),
        stable: side(100, 0, 10),
    };
    assert_eq!(m.evaluate(&p, even).expect("progressing").kind, Kind::Step);
}

#[test]
fn pause_and_resume() {
    let p = plan((10, 90));
    let (mut m, _) = Machine::start(&p);
    let d = m.pause().expect("progressing");
    assert_eq!(
        (d.kind, m.phase(), m.weights()),
        (Kind::Pause, Phase::Paused, (10, 90))
    );
    // Paused: no evaluation, and no second pause.
    assert_eq!(m.evaluate(&p, healthy(1000)), None);
    assert_eq!(
        m.pause(),
        Err(NotApplicable {
            action: "pause",
            phase: Phase::Paused
        })
    );
    let d = m.resume().expect("paused");
    assert_eq!((d.kind, m.phase()), (Kind::Resume, Phase::Progressing));
    assert!(m.resume().is_err());
    assert_eq!(
        m.evaluate(&p, healthy(100)).expect("progressing").weights,
        (25, 75)
    );
}

#[test]
fn promote_and_abort_from_progressing_or_paused() {
    let p = plan((10, 90));
    for paused in [false, true] {
        let (mut m, _) = Machine::start(&p);
        if paused {
            m.pause().expect("progressing");
        }
        let d = m.promote().expect("not final");
        assert_eq!(
            (d.kind, d.weights, m.phase()),
            (Kind::Promote, (100, 0), Phase::Complete)
        );
        let (mut m, _) = Machine::start(&p);
        if paused {
            m.pause().expect("progressing");
        }
        let d = m.abort().expect("not final");
        assert_eq!(
            (d.kind, d.weights, m.phase()),
            (Kind::Abort, (0, 100), Phase::Aborted)
        );
    }
}

#[test]
fn final_phases_take_no_action() {
    let p = plan((10, 90));
    let (mut rolled_back, _) = Machine::start(&p);
    rolled_back.evaluate(
        &p,
        Sample {
            canary: side(100, 100, 10),
            stable: side(100, 0, 10),
        },
    );
    let (mut aborted, _) = Machine::start(&p);
    aborted.abort().expect("progressing");
    let (mut complete, _) = Machine::start(&p);
    complete.promote().expect("progressing");
    for mut m in [rolled_back, aborted, complete] {
        let phase = m.phase();
        let weights = m.weights();
        assert!(phase.is_final());
        assert!(m.pause().is_err());
        assert!(m.resume().is_err());
        let e = m.promote().expect_err("final");
        assert_eq!(
            e.to_string(),
            format!("cannot promote a rollout that is {}", phase.name())
        );
        assert!(m.abort().is_err());
        assert_eq!((m.phase(), m.weights()), (phase, weights));
    }
}
