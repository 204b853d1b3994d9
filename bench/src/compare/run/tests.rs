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
