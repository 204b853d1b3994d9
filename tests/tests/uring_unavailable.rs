//! When io_uring is refused, `ringway run` exits at once with one line that
//! names the cause and what to change.

use std::ffi::OsStr;
use std::time::Duration;

use ringway_kit::launcher::{binary, run_program_to_exit, write_config, Program};

fn run_denied(errno: &str) -> (Option<i32>, String) {
    let config = write_config(
        r#"
[runtime]
worker_cores = [0]
[[listeners]]
name = "ingress"
address = "127.0.0.1:1"
protocol = "tcp"
cluster = "app"
[[clusters]]
name = "app"
endpoints = ["127.0.0.1:2"]
"#,
    );
    let denied = Program::new(&binary())
        .wrapped(&[env!("CARGO_BIN_EXE_deny-io-uring"), errno])
        .args(&[
            OsStr::new("run"),
            OsStr::new("--config"),
            config.path().as_os_str(),
        ]);
    // ringway must exit on its own; the bound turns a hang into a failure.
    let output = run_program_to_exit(&denied, Duration::from_secs(20));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn seccomp_eperm_is_named_with_the_fix() {
    let (code, stderr) = run_denied("EPERM");
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].contains("io_uring"), "{stderr}");
    assert!(lines[0].contains("seccomp"), "{stderr}");
    assert!(lines[0].contains("allows io_uring_setup"), "{stderr}");
}

#[test]
fn seccomp_enosys_is_named_with_the_fix() {
    let (code, stderr) = run_denied("ENOSYS");
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line, got:\n{stderr}"
    );
    assert!(stderr.contains("seccomp"), "{stderr}");
    assert!(stderr.contains("Linux 6.1"), "{stderr}");
}
