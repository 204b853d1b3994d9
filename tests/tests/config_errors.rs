//! `ringway check` and `ringway run` on configuration files: every kind of
//! mistake is refused with exit code 2 and a message naming the file, the
//! line and the key.

use std::process::Output;
use std::time::Duration;

use ringway_kit::launcher::{run_to_exit, write_config};

/// A valid file to make broken variants of. Nothing binds these ports:
/// `check` only reads, and `run` stops at the bad config.
const VALID: &str = r#"[runtime]
worker_cores = [0]
drain_timeout = "5s"

[[listeners]]
name = "ingress"
address = "127.0.0.1:18080"
protocol = "tcp"
cluster = "app"
idle_timeout = "10m"

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:18000", "127.0.0.1:18001"]
connect_timeout = "1s"
"#;

/// A second listener with the same name as the first.
const DUPLICATE_LISTENER: &str = r#"
[[listeners]]
name = "ingress"
address = "127.0.0.1:18081"
protocol = "tcp"
cluster = "app"
"#;

/// Runs `ringway ARGS`; `check` and a refused `run` finish at once.
fn ringway(args: &[&str]) -> Output {
    run_to_exit(args, Duration::from_secs(20))
}

/// One expected error: where it is and what it says.
struct Expected<'a> {
    /// Text of the offending line (its first occurrence after `skip`).
    line_with: &'a str,
    /// How many earlier lines containing `line_with` to skip.
    skip: usize,
    /// The key the message names.
    key: &'a str,
    /// A part of the reason.
    reason: &'a str,
}

/// Checks `ringway ARGS FILE` on `text`: exit code 2 and one error line
/// `error: FILE:LINE:COL: KEY: REASON` as `expected` says.
fn assert_rejected(command: &[&str], text: &str, expected: &Expected<'_>) {
    let file = write_config(text);
    let path = file.path().to_str().expect("a UTF-8 temp path");
    let mut args = command.to_vec();
    args.push(path);
    let output = ringway(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(
        output.status.code(),
        Some(2),
        "ringway {command:?} on a bad file; stderr:\n{stderr}\nfile:\n{text}"
    );
    let line = 1 + text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(expected.line_with))
        .nth(expected.skip)
        .unwrap_or_else(|| panic!("{:?} is not in the file", expected.line_with))
        .0;
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error expected; stderr:\n{stderr}");
    let error = errors[0];
    let place = format!("error: {path}:{line}:");
    assert!(
        error.starts_with(&place),
        "the error names the file and line {line}: {error}"
    );
    assert!(
        error.contains(&format!(": {}: ", expected.key)),
        "the error names the key `{}`: {error}",
        expected.key
    );
    assert!(
        error.contains(expected.reason),
        "the error says {:?}: {error}",
        expected.reason
    );
    assert!(
        stderr.contains("ringway: configuration rejected (1 error)"),
        "{stderr}"
    );
}

fn assert_check_rejects(text: &str, expected: Expected<'_>) {
    assert_rejected(&["check"], text, &expected);
}

#[test]
fn valid_file_passes_the_check() {
    let file = write_config(VALID);
    let path = file.path().to_str().expect("a UTF-8 temp path");
    let output = ringway(&["check", path]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {}; stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.lines().next() == Some("configuration is valid"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ingress"),
        "the summary names the listener: {stdout}"
    );
}

#[test]
fn unknown_key() {
    let text = VALID.replace(
        "idle_timeout = \"10m\"",
        "idle_timeout = \"10m\"\nretries = 3",
    );
    assert_check_rejects(
        &text,
        Expected {
            line_with: "retries",
            skip: 0,
            key: "listeners[0].retries",
            reason: "unknown field `retries`",
        },
    );
}

#[test]
fn duplicate_listener_name() {
    let text = format!("{VALID}{DUPLICATE_LISTENER}");
    assert_check_rejects(
        &text,
        Expected {
            line_with: "name = \"ingress\"",
            skip: 1,
            key: "listeners[1].name",
            reason: "duplicate listener name `ingress`",
        },
    );
}

#[test]
fn listener_names_a_missing_cluster() {
    let text = VALID.replace("cluster = \"app\"", "cluster = \"backend\"");
    assert_check_rejects(
        &text,
        Expected {
            line_with: "cluster = \"backend\"",
            skip: 0,
            key: "listeners[0].cluster",
            reason: "no cluster named `backend`",
        },
    );
}

#[test]
fn worker_core_that_does_not_exist() {
    let text = VALID.replace("worker_cores = [0]", "worker_cores = [0, 64]");
    assert_check_rejects(
        &text,
        Expected {
            line_with: "worker_cores",
            skip: 0,
            key: "runtime.worker_cores[1]",
            reason: "core 64 does not exist on this machine",
        },
    );
}

#[test]
fn bad_duration() {
    let text = VALID.replace(
        "connect_timeout = \"1s\"",
        "connect_timeout = \"1 fortnight\"",
    );
    assert_check_rejects(
        &text,
        Expected {
            line_with: "fortnight",
            skip: 0,
            key: "clusters[0].connect_timeout",
            reason: "invalid duration \"1 fortnight\"",
        },
    );
}

#[test]
fn bad_address() {
    let text = VALID.replace("\"127.0.0.1:18080\"", "\"127.0.0.1\"");
    assert_check_rejects(
        &text,
        Expected {
            line_with: "address = \"127.0.0.1\"",
            skip: 0,
            key: "listeners[0].address",
            reason: "invalid address \"127.0.0.1\"",
        },
    );
}

#[test]
fn bad_endpoint_address() {
    let text = VALID.replace("\"127.0.0.1:18001\"", "\"127.0.0.1:99999\"");
    assert_check_rejects(
        &text,
        Expected {
            line_with: "99999",
            skip: 0,
            key: "clusters[0].endpoints[1]",
            reason: "127.0.0.1:99999",
        },
    );
}

#[test]
fn bad_protocol() {
    let text = VALID.replace("protocol = \"tcp\"", "protocol = \"udp\"");
    assert_check_rejects(
        &text,
        Expected {
            line_with: "udp",
            skip: 0,
            key: "listeners[0].protocol",
            reason: "unknown protocol \"udp\"",
        },
    );
}

#[test]
fn run_refuses_a_bad_file_with_the_same_message() {
    let text = VALID.replace("protocol = \"tcp\"", "protocol = \"udp\"");
    let expected = Expected {
        line_with: "udp",
        skip: 0,
        key: "listeners[0].protocol",
        reason: "unknown protocol \"udp\"",
    };
    assert_rejected(&["check"], &text, &expected);
    assert_rejected(&["run", "--config"], &text, &expected);
}

#[test]
fn missing_file_is_refused() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("absent.toml");
    let path = path.to_str().expect("a UTF-8 temp path");
    let output = ringway(&["check", path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {path}: cannot read the file")),
        "{stderr}"
    );
}
