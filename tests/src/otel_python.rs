//! The OpenTelemetry Python SDK as the tests run it: the reference
//! implementation that ringway's OTLP export and trace headers are checked
//! against, through the small scripts in `tests/scripts`.
//!
//! The SDK lives in the virtual environment `otel-venv` of cargo's target
//! directory: `scripts/install-otel-python.sh` puts it there, and
//! `scripts/test.sh` runs that before the tests.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The venv's python: `otel-venv/bin/python` in an ancestor of the test
/// binary (the target directory); panics, saying how to install it, when
/// there is none.
pub fn python() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .map(|dir| dir.join("otel-venv/bin/python"))
        .find(|python| python.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the OpenTelemetry Python SDK is not installed beside {}: run \
                 scripts/install-otel-python.sh (with the same CARGO_TARGET_DIR) before the \
                 tests; scripts/test.sh does",
                exe.display()
            )
        })
}

/// `tests/scripts/NAME`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// Runs the script `NAME` of `tests/scripts` with the venv's python, an
/// empty environment (no OTEL_* or proxy variables leak in) and `input` on
/// its standard input; returns its standard output. Panics, showing its
/// standard error, when it fails.
pub fn run(name: &str, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new(python())
        .arg(script(name))
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    child
        .stdin
        .take()
        .expect("a stdin pipe")
        .write_all(input)
        .expect("the input is written");
    let output = child.wait_with_output().expect("the script ends");
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("text output")
}
