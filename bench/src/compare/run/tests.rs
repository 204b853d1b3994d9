//! The order of the rounds.

use super::*;

fn entry(name: &str, kind: Kind) -> Entry {
    Entry {
        name: name.into(),
        kind,
        table: Table::default(),
        splice: false,
        churn: None,
        tuning: Tuning::default(),
        tls: false,
        client_auth: false,
        listen: "127.0.0.1:1".parse().unwrap(),
        admin: "127.0.0.1:2".parse().unwrap(),
        inbound: None,
        access_log: false,
        tracing: None,
    }
}

fn names(entries: &[Entry], round: usize) -> Vec<&str> {
    round_order(entries, round)
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

#[test]
fn direct_leads_and_the_others_take_every_place_in_turn() {
    let entries = [
        entry("direct", Kind::Direct),
        entry("ringway", Kind::Ringway),
        entry("baseline", Kind::Baseline),
        entry("nginx", Kind::Nginx),
    ];
    assert_eq!(
        names(&entries, 0),
        ["direct", "ringway", "baseline", "nginx"]
    );
    assert_eq!(
        names(&entries, 1),
        ["direct", "baseline", "nginx", "ringway"]
    );
    assert_eq!(
        names(&entries, 2),
        ["direct", "nginx", "ringway", "baseline"]
    );
    assert_eq!(names(&entries, 3), names(&entries, 0));
}

#[test]
fn two_systems_alternate() {
    let entries = [
        entry("ringway", Kind::Ringway),
        entry("baseline", Kind::Baseline),
    ];
    assert_eq!(names(&entries, 0), ["ringway", "baseline"]);
    assert_eq!(names(&entries, 1), ["baseline", "ringway"]);
}

/// Every system "found": this test binary stands in for each program.
fn every_binary() -> Binaries {
    let exe = std::env::current_exe().unwrap();
    Binaries {
        ringway: exe.clone(),
        baseline: Some(exe.clone()),
        nginx: Some(exe.clone()),
        haproxy: Some(exe),
        nginx_stream: crate::compare::system::NginxStream::BuiltIn,
    }
}

#[test]
fn access_logs_and_tracing_reach_the_systems_that_can_have_them() {
    let s = crate::compare::scenario::parse(
        "name = \"o\"\naccess_log = true\ntracing_sample = 0.1\n\
         systems = [\"direct\", \"ringway\", \"nginx\", \"haproxy\", \"baseline\", \"quiet\", \"all\"]\n\
         [memory]\nidle_connections = 0\n\
         [[variants]]\nname = \"quiet\"\nof = \"haproxy\"\naccess_log = false\n\
         [[variants]]\nname = \"all\"\nof = \"ringway\"\ntracing_sample = 1.0\n",
    )
    .unwrap();
    let (entries, skipped) = entries(&s, &every_binary(), Mode::Http).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let got: Vec<(&str, bool, Option<f64>)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.access_log, e.tracing))
        .collect();
    assert_eq!(
        got,
        [
            ("direct", false, None),
            ("ringway", true, Some(0.1)),
            ("nginx", true, None),
            ("haproxy", true, None),
            ("baseline", true, Some(0.1)),
            ("quiet", false, None),
            ("all", true, Some(1.0)),
        ]
    );
    assert!(!entries[0].observed() && entries[2].observed());

    let plain = crate::compare::scenario::parse("name = \"p\"").unwrap();
    let (entries, _) = entries_of(&plain);
    assert!(entries.iter().all(|e| !e.observed()));
}

fn entries_of(s: &Scenario) -> (Vec<Entry>, Vec<(String, String)>) {
    entries(s, &every_binary(), Mode::Http).unwrap()
}
