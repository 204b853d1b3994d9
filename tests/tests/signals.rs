//! Signals that must not stop ringway (docs/admin.md, "Signals"): SIGUSR1
//! reopens the access logs and SIGUSR2 is logged and ignored, where their
//! default action would end the process with no drain.

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;
use ringway_kit::admin;
use ringway_kit::origin::CountingOrigin;
use ringway_kit::Ringway;
use ringway_tests::net::ping;
use ringway_tests::{client, ProxyConfig};

/// Bound on waits for things the proxy does at once.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A fresh connection through the proxy echoes.
fn serves(listen: SocketAddr) {
    ping(&mut client(listen), b"a new connection");
}

/// SIGUSR1 and SIGUSR2 each leave one line on stderr and change nothing
/// else (SIGUSR1 reopens access logs, and this proxy has none):
/// open and new connections carry on, `/ready` says 200; SIGTERM then
/// drains as usual, letting the open connection finish.
#[test]
fn sigusr1_and_sigusr2_are_logged_and_ignored() {
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).drain_timeout("30s");
    let proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, PROMPTLY);
    let mut held = client(config.listen);
    ping(&mut held, b"before the signals");

    for (signal, name) in [(Signal::SIGUSR1, "SIGUSR1"), (Signal::SIGUSR2, "SIGUSR2")] {
        proxy.signal(signal);
        let line = proxy.wait_for_stderr(&format!("received {name}"), PROMPTLY);
        let said = if signal == Signal::SIGUSR1 {
            "reopening the access log files"
        } else {
            "ignored"
        };
        assert!(line.contains(said), "{line}");
        ping(&mut held, format!("after {name}").as_bytes());
        serves(config.listen);
        let ready = admin::get(config.admin, "/ready");
        assert_eq!(ready.status, 200, "after {name}: {ready:?}");
    }

    proxy.terminate();
    proxy.wait_for_stderr("received SIGTERM, draining", PROMPTLY);
    ping(&mut held, b"during the drain");
    drop(held);
    let exit = proxy.wait(Duration::from_secs(40));
    exit.assert_clean();
    assert_eq!(exit.total("cut_at_drain"), 0, "{}", exit.stderr);
    assert_eq!(exit.total("accepted"), 3, "{}", exit.stderr);
}
