//! When io_uring is forced (`--io-backend io_uring`, or `[runtime]
//! io_backend = "io_uring"`) and refused, `ringway run` exits at once with
//! one line that names the cause and what to change. (`auto` runs on epoll
//! instead: see io_backend.rs.)

use std::ffi::OsStr;
use std::time::Duration;

use ringway_kit::launcher::{binary, run_program_to_exit, write_config, Program};

/// How io_uring is forced.
#[derive(Debug, Clone, Copy)]
enum Forced {
    /// `--io-backend io_uring`, the file on `auto`.
    Flag,
    /// `io_backend = "io_uring"` in the file.
    File,
}

fn run_denied(errno: &str, forced: Forced) -> (Option<i32>, String) {
    let key = match forced {
        Forced::Flag => "",
        Forced::File => "io_backend = \"io_uring\"",
    };
    let config = write_config(&format!(
        r#"
[runtime]
worker_cores = [0]
{key}
[[listeners]]
name = "ingress"
address = "127.0.0.1:1"
protocol = "tcp"
cluster = "app"
[[clusters]]
name = "app"
endpoints = ["127.0.0.1:2"]
"#
    ));
    let mut args = vec![
        OsStr::new("run"),
        OsStr::new("--config"),
        config.path().as_os_str(),
    ];
    if let Forced::Flag = forced {
        args.extend([OsStr::new("--io-backend"), OsStr::new("io_uring")]);
    }
    let denied = Program::new(&binary())
        .wrapped(&[env!("CARGO_BIN_EXE_deny-io-uring"), errno])
        .args(&args);
    // ringway must exit on its own; the bound turns a hang into a failure.
    let output = run_program_to_exit(&denied, Duration::from_secs(20));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn seccomp_eperm_is_named_with_the_fix() {
    for forced in [Forced::Flag, Forced::File] {
        let (code, stderr) = run_denied("EPERM", forced);
        assert_eq!(code, Some(1), "{forced:?}; stderr:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{forced:?}: expected one line, got:\n{stderr}"
        );
        assert!(lines[0].starts_with("ringway: "), "{stderr}");
        assert!(lines[0].contains("io_uring"), "{stderr}");
        assert!(lines[0].contains("seccomp"), "{stderr}");
        assert!(lines[0].contains("allows io_uring_setup"), "{stderr}");
    }
}

#[test]
fn seccomp_enosys_is_named_with_the_fix() {
    for forced in [Forced::Flag, Forced::File] {
        let (code, stderr) = run_denied("ENOSYS", forced);
        assert_eq!(code, Some(1), "{forced:?}; stderr:\n{stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{forced:?}: expected one line, got:\n{stderr}"
        );
        assert!(stderr.contains("seccomp"), "{stderr}");
        assert!(stderr.contains("Linux 6.1"), "{stderr}");
    }
}
