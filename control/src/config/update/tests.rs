//! A configuration meant to replace the running one.

use super::{parse_endpoints, parse_update, EndpointSpec};
use crate::config::parse;

const RUNNING: &str = r#"
[runtime]
worker_cores = [0]
drain_timeout = "5s"

[admin]
address = "127.0.0.1:9901"

[[listeners]]
name = "ingress"
address = "127.0.0.1:8080"
protocol = "tcp"
cluster = "app"

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#;

fn running() -> crate::config::Config {
    parse(RUNNING, "running.toml").expect("the running config is valid")
}

/// The cores the process may use, as read before the control thread was
/// pinned.
const CORES: Option<&[usize]> = Some(&[0, 1]);

fn bind_ok(_: std::net::SocketAddr) -> Result<(), String> {
    Ok(())
}

#[test]
fn endpoints_and_listeners_may_change() {
    let next = RUNNING
        .replace("127.0.0.1:8000", "127.0.0.1:8001")
        .replace("name = \"ingress\"", "name = \"front\"");
    let config =
        parse_update(&next, "next.toml", &running(), CORES, bind_ok).expect("allowed change");
    assert_eq!(config.table.clusters[0].endpoints[0].port(), 8001);
    assert_eq!(&*config.table.listeners[0].name, "front");
}

#[test]
fn fixed_keys_are_refused_with_their_line() {
    let next = RUNNING
        .replace(
            "worker_cores = [0]",
            "worker_cores = [0]\nbuffer_count = 512",
        )
        .replace("drain_timeout = \"5s\"", "drain_timeout = \"7s\"")
        .replace("127.0.0.1:9901", "127.0.0.1:9902");
    let errors = parse_update(&next, "next.toml", &running(), CORES, bind_ok)
        .expect_err("fixed keys changed")
        .to_string();
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 3, "{errors}");
    assert!(
        lines[0].starts_with(
            "next.toml:4:16: runtime.buffer_count: cannot change while ringway runs (256 -> 512)"
        ),
        "{errors}"
    );
    assert!(
        lines[1].starts_with("next.toml:5:17: runtime.drain_timeout: cannot change"),
        "{errors}"
    );
    assert!(
        lines[2].starts_with("next.toml:8:11: admin.address: cannot change"),
        "{errors}"
    );
}

#[test]
fn max_connections_is_fixed_while_running() {
    let next = RUNNING.replace(
        "worker_cores = [0]",
        "worker_cores = [0]\nmax_connections = 100",
    );
    let errors = parse_update(&next, "next.toml", &running(), CORES, bind_ok)
        .expect_err("max_connections changed")
        .to_string();
    assert!(
        errors.starts_with(
            "next.toml:4:19: runtime.max_connections: cannot change while ringway runs \
             (derived -> 100)"
        ),
        "{errors}"
    );
}

#[test]
fn a_new_listener_that_cannot_be_bound_is_refused_and_a_kept_one_is_not_probed() {
    let next = format!(
        "{RUNNING}\n[[listeners]]\nname = \"extra\"\naddress = \"127.0.0.1:8081\"\nprotocol = \"tcp\"\ncluster = \"app\"\n"
    );
    let probed = std::cell::RefCell::new(Vec::new());
    let errors = parse_update(&next, "next.toml", &running(), CORES, |addr| {
        probed.borrow_mut().push(addr);
        Err("the address is in use by another process".to_owned())
    })
    .expect_err("the new address cannot be bound")
    .to_string();
    assert_eq!(probed.borrow().len(), 1, "only the new address is probed");
    assert!(
        errors.contains(
            "listeners[1].address: cannot listen on 127.0.0.1:8081: the address is in use"
        ),
        "{errors}"
    );
    let line = 1 + next
        .lines()
        .position(|l| l.contains("127.0.0.1:8081"))
        .expect("the new listener is in the text");
    assert!(
        errors.starts_with(&format!("next.toml:{line}:11:")),
        "{errors}"
    );
}

#[test]
fn ordinary_errors_come_first_and_alone() {
    let next = RUNNING.replace("cluster = \"app\"", "cluster = \"ghost\"");
    let errors = parse_update(&next, "next.toml", &running(), CORES, bind_ok)
        .expect_err("unknown cluster")
        .to_string();
    assert!(errors.contains("listeners[0].cluster"), "{errors}");
}

#[test]
fn endpoint_lists_are_checked_entry_by_entry() {
    assert_eq!(
        parse_endpoints(&["127.0.0.1:1".into(), "[::1]:2".into()])
            .expect("valid")
            .0
            .len(),
        2
    );
    let weighted = EndpointSpec::Weighted {
        address: "127.0.0.1:3".into(),
        weight: 4,
    };
    let (_, weights) = parse_endpoints(&["127.0.0.1:1".into(), weighted]).expect("valid");
    assert_eq!(weights, [1, 4]);
    let heavy = EndpointSpec::Weighted {
        address: "127.0.0.1:3".into(),
        weight: 0,
    };
    let errors = parse_endpoints(&[heavy]).expect_err("weight 0");
    assert!(
        errors[0].starts_with("endpoints[0].weight: weight 0 is out of range"),
        "{errors:?}"
    );
    let errors = parse_endpoints(&["127.0.0.1:1".into(), "nope".into(), "127.0.0.1:0".into()])
        .expect_err("two bad entries");
    assert_eq!(errors.len(), 2);
    assert!(errors[0].starts_with("endpoints[1]: invalid address \"nope\""));
    assert!(errors[1].starts_with("endpoints[2]: invalid address \"127.0.0.1:0\": port 0"));
    assert!(parse_endpoints(&[]).is_err());
}

#[test]
fn cores_are_checked_against_the_process_not_the_pinned_control_thread() {
    // A reload arrives on the control thread, pinned to its one core; the
    // worker cores are still the process's to use.
    let next = RUNNING.replace("127.0.0.1:8000", "127.0.0.1:8001");
    parse_update(&next, "next.toml", &running(), Some(&[0, 1]), bind_ok)
        .expect("core 0 is one of the process's cores");
    let errors = parse_update(&next, "next.toml", &running(), Some(&[1]), bind_ok)
        .expect_err("core 0 is not available")
        .to_string();
    assert!(errors.contains("runtime.worker_cores[0]"), "{errors}");
}
