//! Tests of `runtime.io_backend`: the reactor asked for, parsed, shown back
//! and fixed for the life of the process.

use dataplane::rt::BackendChoice;

use super::http_tests::parse_ok;
use super::parse_update;
use super::tests::{assert_error, line_of, only_error};

/// A small valid file with these extra `[runtime]` lines.
fn file(runtime: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]
{runtime}

[[listeners]]
name = "ingress"
address = "127.0.0.1:8080"
protocol = "tcp"
cluster = "app"

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#
    )
}

#[test]
fn auto_unless_asked() {
    let config = parse_ok(&file(""));
    assert_eq!(config.runtime.io_backend, BackendChoice::Auto);
    let dumped = config.to_toml();
    assert!(dumped.contains("io_backend = \"auto\""), "{dumped}");
    assert!(config.summary().contains("io backend: auto\n"));
}

#[test]
fn every_value_parses_and_round_trips() {
    for (text, expected) in [
        ("auto", BackendChoice::Auto),
        ("io_uring", BackendChoice::IoUring),
        ("epoll", BackendChoice::Epoll),
    ] {
        let config = parse_ok(&file(&format!("io_backend = \"{text}\"")));
        assert_eq!(config.runtime.io_backend, expected, "{text}");
        let dumped = config.to_toml();
        assert!(
            dumped.contains(&format!("io_backend = \"{text}\"")),
            "{dumped}"
        );
        let again = parse_ok(&dumped);
        assert_eq!(again.runtime.io_backend, expected, "{dumped}");
        assert_eq!(again.to_toml(), dumped);
        assert!(
            config.summary().contains(&format!("io backend: {text}\n")),
            "{}",
            config.summary()
        );
    }
}

#[test]
fn an_unknown_value_is_refused_with_its_line_and_the_three_names() {
    for bad in ["uring", "EPOLL", "io-uring", ""] {
        let text = file(&format!("io_backend = \"{bad}\""));
        let error = only_error(&text);
        assert_error(
            &error,
            line_of(&text, "io_backend", 0),
            "runtime.io_backend",
            &format!("`{bad}`"),
        );
        for name in ["\"auto\"", "\"io_uring\"", "\"epoll\""] {
            assert!(error.reason.contains(name), "{error}");
        }
    }
}

#[test]
fn a_value_that_is_not_a_string_is_refused() {
    let text = file("io_backend = 1");
    let shown = only_error(&text).to_string();
    assert!(shown.contains("io_backend"), "{shown}");
    assert!(
        shown.contains(&format!(":{}:", line_of(&text, "io_backend", 0))),
        "{shown}"
    );
}

#[test]
fn a_reload_may_not_change_it() {
    let running = parse_ok(&file(""));
    let bind_ok = |_| Ok(());
    for next in ["io_backend = \"epoll\"", "io_backend = \"io_uring\""] {
        let text = file(next);
        let errors = parse_update(&text, "next.toml", &running, Some(&[0]), bind_ok)
            .expect_err("the backend changed");
        assert_eq!(errors.errors.len(), 1, "{errors}");
        let shown = errors.to_string();
        let expected = format!(
            "next.toml:{}:14: runtime.io_backend: cannot change while ringway runs (auto -> {}); \
             restart to apply it",
            line_of(&text, "io_backend", 0),
            next.trim_start_matches("io_backend = ").trim_matches('"'),
        );
        assert_eq!(shown.trim_end(), expected, "{shown}");
    }
    // Writing the default out changes nothing.
    let same = file("io_backend = \"auto\"");
    let config =
        parse_update(&same, "next.toml", &running, Some(&[0]), bind_ok).expect("the same backend");
    assert_eq!(config.runtime.io_backend, BackendChoice::Auto);
    // And a file that drops the key goes back to auto, which a process
    // started on `epoll` refuses at the runtime table.
    let on_epoll = parse_ok(&file("io_backend = \"epoll\""));
    let errors = parse_update(&file(""), "next.toml", &on_epoll, Some(&[0]), bind_ok)
        .expect_err("back to auto")
        .to_string();
    assert!(
        errors.starts_with(
            "next.toml:1:1: runtime.io_backend: cannot change while ringway runs (epoll -> auto)"
        ),
        "{errors}"
    );
}
