//! The process around the proxy: workers pinned to their cores, graceful
//! drain on SIGTERM, the exit report's counters, start-up failures.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::origin::CountingOrigin;
use ringway_kit::ports::free_port;
use ringway_kit::procfs::{online_cores, threads};
use ringway_kit::Ringway;
use ringway_tests::data::{self, StreamReader};
use ringway_tests::net::{read_until_closed, set_timeouts, wait_until_refused, Ended};
use ringway_tests::origin::{self, Origin};
use ringway_tests::{client, ProxyConfig};

const MIB: u64 = 1024 * 1024;
/// "Promptly", for things the proxy must do at once.
const PROMPTLY: Duration = Duration::from_secs(5);

/// The worker threads of a running proxy, as (name, allowed cores).
fn worker_threads(proxy: &Ringway) -> Vec<(String, String)> {
    let mut workers: Vec<_> = threads(proxy.pid())
        .into_iter()
        .filter(|t| t.name.starts_with("ringway-w"))
        .map(|t| (t.name, t.cpus_allowed))
        .collect();
    workers.sort();
    workers
}

#[test]
fn workers_are_pinned_to_their_cores() {
    assert!(
        online_cores() >= 2,
        "this test needs two cores; the machine has {}",
        online_cores()
    );
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).worker_cores(&[0, 1]);
    let proxy = Ringway::start(&config.to_toml());

    let workers = worker_threads(&proxy);
    assert_eq!(
        workers,
        [
            ("ringway-w0".to_owned(), "0".to_owned()),
            ("ringway-w1".to_owned(), "1".to_owned())
        ]
    );
    proxy.stop().assert_clean();
}

#[test]
fn a_single_worker_is_pinned_to_the_core_named() {
    assert!(
        online_cores() >= 2,
        "this test needs two cores; the machine has {}",
        online_cores()
    );
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).worker_cores(&[1]);
    let proxy = Ringway::start(&config.to_toml());

    let workers = worker_threads(&proxy);
    assert_eq!(workers, [("ringway-w0".to_owned(), "1".to_owned())]);
    let exit = proxy.stop();
    exit.assert_clean();
    assert_eq!(exit.workers.len(), 1);
    assert_eq!(exit.workers[0].counter("core"), Some(1));
}

#[test]
fn drain_lets_an_open_connection_finish_and_refuses_new_ones() {
    let origin = Origin::start(origin::echo);
    let config = ProxyConfig::new(&[origin.addr()])
        .worker_cores(&[0, 1])
        .drain_timeout("20s");
    let proxy = Ringway::start(&config.to_toml());

    let len = 16 * MIB;
    let stream = client(config.listen);
    let mut writer = stream.try_clone().expect("cloning the client socket");
    // The sender stops half-way until the signal has been sent.
    let (go_on, paused) = mpsc::channel::<()>();
    let sender = thread::spawn(move || {
        let mut waited = false;
        let sent = data::write_stream(&mut writer, len, |n| {
            if n >= len / 2 && !waited {
                waited = true;
                let _ = paused.recv();
            }
        });
        let _ = writer.shutdown(Shutdown::Write);
        sent
    });
    let mut echoed = StreamReader::default();
    let first = echoed
        .read(&mut &stream, len / 2)
        .expect("echo of the first half");
    assert_eq!(first, len / 2);

    proxy.terminate();
    proxy.wait_for_stderr("draining", PROMPTLY);
    // Its listeners close shortly after the signal, and nothing tells the
    // outside when.
    let refused = wait_until_refused(config.listen, PROMPTLY);

    // The open connection goes on: the second half, and the end.
    go_on.send(()).expect("sender thread");
    echoed
        .read(&mut &stream, u64::MAX)
        .expect("echo of the second half");
    let sent = sender.join().expect("sender thread").expect("sending");
    // Probes that got in before the listeners closed end empty; skip them.
    let received = loop {
        let transfer = origin.next_ok(PROMPTLY);
        if transfer.bytes > 0 {
            break transfer;
        }
    };

    let exit = proxy.wait(Duration::from_secs(30));
    assert!(
        refused.is_ok(),
        "new connections are refused during the drain: {refused:?}; stderr:\n{}",
        exit.stderr
    );
    assert_eq!(sent.bytes, len);
    assert_eq!(received, sent, "what the origin got");
    assert_eq!(echoed.finish(), sent, "what came back to the client");
    exit.assert_clean();
    assert_eq!(exit.total("cut_at_drain"), 0);
}

#[test]
fn drain_timeout_cuts_a_connection_that_stays_open() {
    let origin = CountingOrigin::echo();
    let config = ProxyConfig::new(&[origin.addr()]).drain_timeout("1s");
    let proxy = Ringway::start(&config.to_toml());

    let mut stream = client(config.listen);
    stream.write_all(b"still here").expect("sending");
    let mut echo = [0u8; 10];
    stream.read_exact(&mut echo).expect("reading the echo");

    proxy.terminate();
    let exit = proxy.wait(Duration::from_secs(15));
    exit.assert_clean();
    assert_eq!(exit.total("cut_at_drain"), 1);

    set_timeouts(&stream, PROMPTLY);
    let ended = read_until_closed(&mut stream);
    assert!(
        matches!(ended, Ok(Ended::Eof(0) | Ended::Reset(0))),
        "the cut connection is closed: {ended:?}"
    );
}

/// Traffic of known sizes through two workers: every worker reports zero
/// bytes copied in userspace, and the byte counters add up to what was
/// sent and received.
#[test]
fn exit_report_counts_bytes_and_copies_none() {
    let origin = Origin::start(origin::echo);
    let config = ProxyConfig::new(&[origin.addr()]).worker_cores(&[0, 1]);
    let proxy = Ringway::start(&config.to_toml());

    let sizes = [1, 10, 4096, 100_000, MIB, 3 * MIB + 5, 17, 65_536];
    for (i, &len) in sizes.iter().enumerate() {
        let stream = client(config.listen);
        let (sent, echoed) = data::round_trip(&stream, len);
        let sent = sent.expect("sending");
        let echoed = echoed.expect("reading the echo");
        assert_eq!(echoed, sent, "connection {i}");
        assert_eq!(origin.next_ok(PROMPTLY), sent, "connection {i}");
    }

    let exit = proxy.stop();
    exit.assert_clean();
    let total: u64 = sizes.iter().sum();
    assert_eq!(exit.workers.len(), 2, "{}", exit.stderr);
    for worker in &exit.workers {
        assert_eq!(
            worker.counter("copied_bytes"),
            Some(0),
            "worker {}: {}",
            worker.index,
            exit.stderr
        );
        assert_eq!(worker.counter("active"), Some(0), "worker {}", worker.index);
        assert_eq!(worker.counter("core"), Some(worker.index as u64));
    }
    assert_eq!(exit.total("accepted"), sizes.len() as u64);
    assert_eq!(exit.total("bytes_from_clients"), total);
    assert_eq!(exit.total("bytes_from_upstreams"), total);
    assert_eq!(exit.total("resets"), 0);
    assert_eq!(exit.total("no_upstream"), 0);
}

#[test]
fn listener_address_in_use_fails_the_start() {
    // Bound without SO_REUSEPORT: the proxy's workers cannot share it.
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, free_port())).expect("binding a port");
    let mut config = ProxyConfig::new(&[ringway_kit::ports::dead_endpoint()]);
    config.listen = taken.local_addr().expect("bound address");
    let file = write_config(&config.to_toml());
    let path = file.path().to_str().expect("a UTF-8 temp path");

    let output = run_to_exit(&["run", "--config", path], Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "ringway started on a taken address; stderr:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("listener `ingress`"))
        .unwrap_or_else(|| panic!("no line names the listener; stderr:\n{stderr}"));
    assert!(line.contains("in use"), "{line}");
    assert!(line.contains(&config.listen.to_string()), "{line}");
    drop(taken);
}
