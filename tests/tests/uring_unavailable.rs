//! When io_uring is refused, `ringway run` exits at once with one line that
//! names the cause and what to change.

use std::process::{Command, Stdio};
use std::time::Duration;

use ringway_tests::proxy::{binary, write_config};

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_deny-io-uring"))
        .arg(errno)
        .arg(binary())
        .args(["run", "--config"])
        .arg(config.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringway under the filter");
    // ringway must exit on its own; bound the wait so a hang fails the test.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringway kept running although io_uring is refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
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
