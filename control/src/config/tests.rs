//! Whole-pipeline tests: text in, `Config` or errors out.

use std::time::Duration;

use dataplane::table::{ClusterId, Protocol};

use super::*;

/// The cores the tests pretend this machine has, so results do not depend
/// on the machine running them.
const CORES: &[usize] = &[0, 1, 2, 3];

const FULL: &str = r#"
[runtime]
worker_cores = [1, 2, 3]
control_core = 0
drain_timeout = "1m30s"
buffer_size = 65536
buffer_count = 1024

[admin]
address = "127.0.0.1:9000"

[[listeners]]
name = "ingress"
address = "0.0.0.0:8080"
protocol = "tcp"
cluster = "app"
idle_timeout = "5m"

[[listeners]]
name = "db.proxy"
address = "[::1]:5433"
protocol = "tcp"
cluster = "db"

[[clusters]]
name = "db"
endpoints = ["10.0.0.5:5432"]

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000", "[::1]:8001"]
connect_timeout = "250ms"

[[clusters]]
name = "unused"
endpoints = ["127.0.0.1:9999"]
"#;

/// The cluster a TCP listener sends to.
fn tcp_cluster(listener: &dataplane::table::Listener) -> dataplane::table::ClusterId {
    match listener.service {
        dataplane::table::Service::Tcp { cluster, .. } => cluster,
        dataplane::table::Service::Http(_) => panic!("listener `{}` is not TCP", listener.name),
    }
}

fn parse_ok(text: &str) -> Config {
    match parse_with_cores(text, "ringway.toml", Some(CORES)) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

/// A file with an HTTP listener `web` (request timeout 10 s) whose one
/// route `all` goes to cluster `app` with these extra lines (`route`), and
/// a TCP listener `db` to `app` with these (`tcp`): where the route and
/// listener keys of traffic policy are tried.
pub(super) fn route_and_tcp_file(route: &str, tcp: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"
request_timeout = "10s"

  [[listeners.routes]]
  name = "all"
  cluster = "app"
  {route}

[[listeners]]
name = "db"
address = "127.0.0.1:8081"
protocol = "tcp"
cluster = "app"
{tcp}

[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
"#
    )
}

pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    match parse_with_cores(text, "ringway.toml", Some(CORES)) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(errors) => {
            assert!(!errors.errors.is_empty());
            errors.errors
        }
    }
}

/// The one error a text yields.
pub(super) fn only_error(text: &str) -> ConfigError {
    let mut errors = errors(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.remove(0)
}

/// 1-based line of the `nth` (0-based) line containing `needle`.
pub(super) fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(needle))
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not found {nth} times"))
}

/// A small valid file to make broken variants of.
fn minimal(extra_listener: &str, extra_cluster: &str) -> String {
    format!(
        r#"[runtime]
worker_cores = [0]

[[listeners]]
name = "ingress"
address = "127.0.0.1:8080"
protocol = "tcp"
cluster = "app"
{extra_listener}
[[clusters]]
name = "app"
endpoints = ["127.0.0.1:8000"]
{extra_cluster}"#
    )
}

pub(super) fn assert_error(error: &ConfigError, line: usize, key: &str, reason_contains: &str) {
    assert_eq!(error.origin, "ringway.toml");
    assert_eq!(error.line, Some(line), "{error}");
    assert_eq!(error.key.as_deref(), Some(key), "{error}");
    assert!(
        error.reason.contains(reason_contains),
        "reason {:?} lacks {reason_contains:?}",
        error.reason
    );
}

#[test]
fn default_config_parses() {
    let config = match parse(DEFAULT_CONFIG, "<embedded default>") {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    assert_eq!(config.runtime.worker_cores, vec![0]);
    assert_eq!(config.control_core, None);
    assert_eq!(config.admin, AdminSettings::default());
    let table = &config.table;
    assert_eq!(table.generation, 1);
    assert_eq!(table.listeners.len(), 2);
    let ingress = &table.listeners[0];
    assert_eq!(&*ingress.name, "ingress");
    assert_eq!(ingress.address, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(ingress.protocol(), Protocol::Tcp);
    assert_eq!(&*table.cluster(tcp_cluster(ingress)).name, "app");
    let web = &table.listeners[1];
    assert_eq!(&*web.name, "web");
    assert_eq!(web.address, "127.0.0.1:8081".parse().unwrap());
    assert_eq!(web.protocol(), Protocol::Http);
    assert_eq!(
        table.clusters[0].endpoints,
        vec!["127.0.0.1:8000".parse().unwrap()]
    );
}

#[test]
fn full_example_parses_to_expected_values() {
    let config = parse_ok(FULL);
    assert_eq!(config.runtime.worker_cores, vec![1, 2, 3]);
    assert_eq!(config.control_core, Some(0));
    assert_eq!(config.runtime.drain_timeout, Duration::from_secs(90));
    assert_eq!(config.runtime.buffer_size, 65536);
    assert_eq!(config.runtime.buffer_count, 1024);
    assert_eq!(config.admin.address, "127.0.0.1:9000".parse().unwrap());

    let table = &config.table;
    assert_eq!(table.generation, 1);
    let names: Vec<&str> = table.clusters.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["db", "app", "unused"]);
    assert_eq!(
        table.clusters[1].endpoints,
        vec![
            "127.0.0.1:8000".parse().unwrap(),
            "[::1]:8001".parse().unwrap()
        ]
    );
    assert_eq!(
        table.clusters[1].connect_timeout,
        Duration::from_millis(250)
    );
    assert_eq!(table.clusters[0].connect_timeout, Duration::from_secs(1));

    let [ingress, db] = &table.listeners[..] else {
        panic!("expected two listeners: {:?}", table.listeners)
    };
    assert_eq!(&*ingress.name, "ingress");
    assert_eq!(ingress.address, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(tcp_cluster(ingress), ClusterId(1));
    assert_eq!(ingress.idle_timeout, Duration::from_secs(300));
    assert_eq!(&*db.name, "db.proxy");
    assert_eq!(db.address, "[::1]:5433".parse().unwrap());
    assert_eq!(tcp_cluster(db), ClusterId(0));
    assert_eq!(db.idle_timeout, Duration::from_secs(600));
}

#[test]
fn admin_timeouts_parse_default_and_refuse_zero() {
    let config = parse_ok(&minimal("", ""));
    assert_eq!(config.admin, AdminSettings::default());
    assert_eq!(config.admin.first_byte_timeout, Duration::from_secs(2));
    assert_eq!(config.admin.head_timeout, Duration::from_secs(10));

    let text = format!(
        "{}\n[admin]\nfirst_byte_timeout = \"500ms\"\nhead_timeout = \"1m\"\n",
        minimal("", "")
    );
    let config = parse_ok(&text);
    assert_eq!(config.admin.address, AdminSettings::default().address);
    assert_eq!(config.admin.first_byte_timeout, Duration::from_millis(500));
    assert_eq!(config.admin.head_timeout, Duration::from_secs(60));
    assert_eq!(parse_ok(&config.to_toml()).admin, config.admin);

    let text = format!(
        "{}\n[admin]\nfirst_byte_timeout = \"0s\"\nhead_timeout = \"soon\"\n",
        minimal("", "")
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let line = line_of(&text, "first_byte_timeout", 0);
    assert_error(
        &errors[0],
        line,
        "admin.first_byte_timeout",
        "longer than zero",
    );
    assert_error(
        &errors[1],
        line + 1,
        "admin.head_timeout",
        "invalid duration \"soon\"",
    );
}

#[test]
fn defaults_fill_in_optional_keys() {
    let config = parse_ok(&minimal("", ""));
    let defaults = RuntimeSettings::default();
    assert_eq!(config.runtime.buffer_size, defaults.buffer_size);
    assert_eq!(config.runtime.buffer_count, defaults.buffer_count);
    assert_eq!(config.runtime.drain_timeout, Duration::from_secs(30));
    assert_eq!(config.admin.address, "127.0.0.1:9901".parse().unwrap());
    assert_eq!(
        config.table.listeners[0].idle_timeout,
        Duration::from_secs(600)
    );
    assert_eq!(
        config.table.clusters[0].connect_timeout,
        Duration::from_secs(1)
    );
}

#[test]
fn unknown_top_level_key() {
    let text = format!("{}\nbogus = 1\n", "# comment\n");
    let text = format!("{text}{}", minimal("", ""));
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "bogus", 0),
        "bogus",
        "unknown field `bogus`",
    );
    assert_eq!(error.column, Some(1));
}

#[test]
fn unknown_key_inside_a_listener() {
    let text = minimal("", "") + "\n[[listeners]]\nname = \"b\"\nprotocl = \"tcp\"\n";
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "protocl", 0),
        "listeners[1].protocl",
        "unknown field `protocl`",
    );
    // The reason lists what is accepted.
    assert!(error.reason.contains("`protocol`"), "{error}");
}

#[test]
fn unknown_table() {
    let text = minimal("", "") + "\n[listener]\nname = \"x\"\n";
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "[listener]", 0),
        "listener",
        "unknown field `listener`",
    );
}

#[test]
fn duplicate_listener_name() {
    let text = minimal("", "")
        + "\n[[listeners]]\nname = \"ingress\"\naddress = \"127.0.0.1:8081\"\nprotocol = \"tcp\"\ncluster = \"app\"\n";
    let error = only_error(&text);
    let first = line_of(&text, "name = \"ingress\"", 0);
    assert_error(
        &error,
        line_of(&text, "name = \"ingress\"", 1),
        "listeners[1].name",
        &format!("duplicate listener name `ingress`; first defined on line {first}"),
    );
}

#[test]
fn duplicate_cluster_name() {
    let text =
        minimal("", "") + "\n[[clusters]]\nname = \"app\"\nendpoints = [\"127.0.0.1:8001\"]\n";
    let error = only_error(&text);
    let first = line_of(&text, "name = \"app\"", 0);
    assert_error(
        &error,
        line_of(&text, "name = \"app\"", 1),
        "clusters[1].name",
        &format!("duplicate cluster name `app`; first defined on line {first}"),
    );
}

#[test]
fn missing_cluster_reference() {
    let text = minimal("", "").replace("cluster = \"app\"", "cluster = \"apq\"")
        + "\n[[clusters]]\nname = \"db\"\nendpoints = [\"127.0.0.1:5432\"]\n";
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "cluster = \"apq\"", 0),
        "listeners[0].cluster",
        "no cluster named `apq` (clusters: app, db)",
    );
}

#[test]
fn core_that_does_not_exist() {
    let text = minimal("", "").replace("worker_cores = [0]", "worker_cores = [0, 4096]");
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "worker_cores", 0),
        "runtime.worker_cores[1]",
        "core 4096 does not exist on this machine (cores: 0-3)",
    );
    assert_eq!(error.column, Some("worker_cores = [0, ".len() + 1));

    // Against the real machine, too.
    let Err(errors) = parse(&text, "ringway.toml") else {
        panic!("core 4096 accepted")
    };
    assert!(
        errors.errors[0]
            .reason
            .starts_with("core 4096 does not exist on this machine (cores: "),
        "{errors}"
    );
}

#[test]
fn control_core_must_exist_and_cores_not_repeat() {
    let text = minimal("", "").replace(
        "worker_cores = [0]",
        "worker_cores = [1, 1, -1]\ncontrol_core = 9",
    );
    let errors = errors(&text);
    let line = line_of(&text, "worker_cores", 0);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_error(
        &errors[0],
        line,
        "runtime.worker_cores[1]",
        "core 1 is listed twice",
    );
    assert_error(
        &errors[1],
        line,
        "runtime.worker_cores[2]",
        "core -1 does not exist",
    );
    assert_error(
        &errors[2],
        line + 1,
        "runtime.control_core",
        "core 9 does not exist on this machine (cores: 0-3)",
    );
}

#[test]
fn bad_duration() {
    let text = minimal("", "connect_timeout = \"1 fortnight\"\n");
    let error = only_error(&text);
    let line = line_of(&text, "fortnight", 0);
    assert_error(
        &error,
        line,
        "clusters[0].connect_timeout",
        "invalid duration \"1 fortnight\": ",
    );
    assert!(
        error.to_string().starts_with(&format!(
            "ringway.toml:{line}:19: clusters[0].connect_timeout: invalid duration \"1 fortnight\": "
        )),
        "{error}"
    );
}

#[test]
fn zero_timeouts_are_refused() {
    let text = minimal("idle_timeout = \"0s\"\n", "connect_timeout = \"0ms\"\n");
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_error(
        &errors[0],
        line_of(&text, "idle_timeout", 0),
        "listeners[0].idle_timeout",
        "invalid duration \"0s\": must be longer than zero",
    );
    assert_error(
        &errors[1],
        line_of(&text, "connect_timeout", 0),
        "clusters[0].connect_timeout",
        "invalid duration \"0ms\": must be longer than zero",
    );
}

#[test]
fn bad_address() {
    let text = minimal("", "").replace("\"127.0.0.1:8080\"", "\"127.0.0.1\"");
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "address = \"127.0.0.1\"", 0),
        "listeners[0].address",
        "invalid address \"127.0.0.1\": it has no port",
    );
}

#[test]
fn host_name_endpoint_says_dns_is_not_supported() {
    let text = minimal("", "").replace("\"127.0.0.1:8000\"", "\"db.internal:5432\"");
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "db.internal", 0),
        "clusters[0].endpoints[0]",
        "host names (DNS) are not supported yet",
    );
}

#[test]
fn bad_protocol() {
    let text = minimal("", "").replace("\"tcp\"", "\"udp\"");
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "udp", 0),
        "listeners[0].protocol",
        "unknown protocol \"udp\" (accepted: tcp, http)",
    );
}

#[test]
fn empty_endpoints() {
    let text = minimal("", "").replace("[\"127.0.0.1:8000\"]", "[]");
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "endpoints", 0),
        "clusters[0].endpoints",
        "no endpoints listed",
    );
}

#[test]
fn buffer_count_not_power_of_two() {
    let text = minimal("", "").replace(
        "worker_cores = [0]",
        "worker_cores = [0]\nbuffer_count = 300",
    );
    let error = only_error(&text);
    assert_error(
        &error,
        line_of(&text, "buffer_count", 0),
        "runtime.buffer_count",
        "buffer count 300 is not a power of two from 1 to 32768",
    );
}

#[test]
fn max_connections_is_optional_and_positive() {
    assert_eq!(parse_ok(&minimal("", "")).runtime.max_connections, None);
    let text = minimal("", "").replace(
        "worker_cores = [0]",
        "worker_cores = [0]\nmax_connections = 5000",
    );
    let config = parse_ok(&text);
    assert_eq!(config.runtime.max_connections, Some(5000));
    assert!(config.to_toml().contains("max_connections = 5000"));
    for bad in ["0", "-1", "1073741824"] {
        let text = minimal("", "").replace(
            "worker_cores = [0]",
            &format!("worker_cores = [0]\nmax_connections = {bad}"),
        );
        let error = only_error(&text);
        assert_error(
            &error,
            line_of(&text, "max_connections", 0),
            "runtime.max_connections",
            &format!("max connections {bad} is not from 1 to 536870912"),
        );
    }
}

#[test]
fn buffer_size_range_and_step() {
    for bad in ["4095", "5000", "0", "-4096", "2097152"] {
        let text = minimal("", "").replace(
            "worker_cores = [0]",
            &format!("worker_cores = [0]\nbuffer_size = {bad}"),
        );
        let error = only_error(&text);
        assert_error(
            &error,
            3,
            "runtime.buffer_size",
            "not a multiple of 4096 from 4096",
        );
    }
    let text = minimal("", "").replace(
        "worker_cores = [0]",
        "worker_cores = [0]\nbuffer_size = 1048576",
    );
    assert_eq!(parse_ok(&text).runtime.buffer_size, 1 << 20);
}

#[test]
fn toml_syntax_error() {
    let text = minimal("", "").replace(
        "endpoints = [\"127.0.0.1:8000\"]",
        "endpoints = [\"127.0.0.1:8000\"",
    );
    let error = only_error(&text);
    assert_eq!(error.line, Some(line_of(&text, "endpoints", 0)), "{error}");
    assert!(!error.reason.contains('\n'), "{error}");
    assert!(!error.reason.contains('^'), "{error}");
    assert!(error.reason.contains("array"), "{error}");
}

#[test]
fn duplicate_key_is_named() {
    let text = minimal("", "").replace(
        "worker_cores = [0]",
        "worker_cores = [0]\nworker_cores = [1]",
    );
    let error = only_error(&text);
    assert_eq!(error.line, Some(3), "{error}");
    assert_eq!(error.reason, "duplicate key `worker_cores`");
}

#[test]
fn type_error_names_the_key() {
    let text = minimal("", "").replace(
        "worker_cores = [0]",
        "worker_cores = [0]\nbuffer_size = \"big\"",
    );
    let error = only_error(&text);
    assert_error(&error, 3, "runtime.buffer_size", "expected an integer");
}

#[test]
fn missing_runtime_and_required_keys() {
    let text = "[[listeners]]\nname = \"a\"\n\n[[clusters]]\nendpoints = [\"127.0.0.1:1\"]\n";
    let errors = errors(text);
    let found: Vec<(Option<usize>, Option<&str>)> =
        errors.iter().map(|e| (e.line, e.key.as_deref())).collect();
    assert_eq!(
        found,
        [
            (None, Some("runtime")),
            (Some(1), Some("listeners[0].address")),
            (Some(1), Some("listeners[0].protocol")),
            (Some(1), Some("listeners[0].cluster")),
            (Some(4), Some("clusters[0].name")),
        ]
    );
    assert!(errors[1]
        .reason
        .starts_with("missing required key `address`"));

    let error = only_error("[runtime]\ndrain_timeout = \"1s\"\n");
    assert_error(&error, 1, "runtime.worker_cores", "missing required key");
}

#[test]
fn empty_worker_cores() {
    let error = only_error("[runtime]\nworker_cores = []\n");
    assert_error(&error, 2, "runtime.worker_cores", "no cores listed");
}

#[test]
fn overlapping_listener_addresses() {
    let text = minimal("", "")
        + "\n[[listeners]]\nname = \"all\"\naddress = \"0.0.0.0:8080\"\nprotocol = \"tcp\"\ncluster = \"app\"\n"
        + "\n[[listeners]]\nname = \"admin\"\naddress = \"127.0.0.1:9901\"\nprotocol = \"tcp\"\ncluster = \"app\"\n";
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let first = line_of(&text, "127.0.0.1:8080", 0);
    assert_error(
        &errors[0],
        line_of(&text, "0.0.0.0:8080", 0),
        "listeners[1].address",
        &format!("overlaps listener `ingress` on 127.0.0.1:8080 (line {first})"),
    );
    assert_error(
        &errors[1],
        line_of(&text, "9901", 0),
        "listeners[2].address",
        "overlaps the admin address 127.0.0.1:9901",
    );
}

#[test]
fn invalid_names() {
    let text = minimal("", "").replace("name = \"ingress\"", "name = \"in gress\"");
    let error = only_error(&text);
    assert_error(&error, 5, "listeners[0].name", "invalid name \"in gress\"");
    let text = minimal("", "").replace("name = \"ingress\"", "name = \"\"");
    assert_error(&only_error(&text), 5, "listeners[0].name", "name is empty");
}

#[test]
fn all_semantic_errors_are_reported_in_file_order() {
    let text = r#"[runtime]
worker_cores = [7]
buffer_count = 3

[[listeners]]
name = "ingress"
address = "127.0.0.1"
protocol = "udp"
cluster = "nope"
idle_timeout = "soon"

[[clusters]]
name = "app"
endpoints = []
connect_timeout = "0s"
"#;
    let errors = errors(text);
    let found: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.line.unwrap(), e.key.as_deref().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "runtime.worker_cores[0]"),
            (3, "runtime.buffer_count"),
            (7, "listeners[0].address"),
            (8, "listeners[0].protocol"),
            (9, "listeners[0].cluster"),
            (10, "listeners[0].idle_timeout"),
            (14, "clusters[0].endpoints"),
            (15, "clusters[0].connect_timeout"),
        ]
    );
    let shown = ConfigErrors { errors }.to_string();
    assert_eq!(shown.lines().count(), 8, "{shown}");
    assert!(shown.starts_with("ringway.toml:2:17: runtime.worker_cores[0]: core 7 does not exist"));
}

#[test]
fn to_toml_round_trips() {
    for text in [
        FULL,
        DEFAULT_CONFIG,
        &minimal("", ""),
        super::http_tests::HTTP_FULL,
    ] {
        let config = parse_ok(text);
        let dumped = config.to_toml();
        let again = parse_ok(&dumped);
        assert_eq!(again.to_toml(), dumped);
        assert_eq!(again.runtime.worker_cores, config.runtime.worker_cores);
        assert_eq!(again.runtime.drain_timeout, config.runtime.drain_timeout);
        assert_eq!(again.runtime.buffer_size, config.runtime.buffer_size);
        assert_eq!(again.runtime.buffer_count, config.runtime.buffer_count);
        assert_eq!(again.control_core, config.control_core);
        assert_eq!(again.admin, config.admin);
        let (a, b) = (&again.table, &config.table);
        assert_eq!(a.listeners.len(), b.listeners.len());
        for (x, y) in a.listeners.iter().zip(&b.listeners) {
            assert_eq!(
                (&x.name, x.address, x.protocol(), x.idle_timeout),
                (&y.name, y.address, y.protocol(), y.idle_timeout)
            );
            // The service whole: cluster ids, HTTP settings and every route
            // (tallies are fresh and zero in both).
            assert_eq!(format!("{:?}", x.service), format!("{:?}", y.service));
        }
        assert_eq!(a.clusters.len(), b.clusters.len());
        for (x, y) in a.clusters.iter().zip(&b.clusters) {
            assert_eq!(
                (&x.name, &x.endpoints, x.connect_timeout, x.pool),
                (&y.name, &y.endpoints, y.connect_timeout, y.pool)
            );
        }
    }
}

#[test]
fn to_toml_fills_in_defaults() {
    let dumped = parse_ok(&minimal("", "")).to_toml();
    for expected in [
        "buffer_size = 32768",
        "buffer_count = 256",
        "drain_timeout = \"30s\"",
        "address = \"127.0.0.1:9901\"",
        "idle_timeout = \"10m\"",
        "connect_timeout = \"1s\"",
    ] {
        assert!(
            dumped.contains(expected),
            "{expected:?} missing from\n{dumped}"
        );
    }
    assert!(!dumped.contains("control_core"), "{dumped}");
    // Derived from the open-file limit of the process that runs it.
    assert!(!dumped.contains("max_connections"), "{dumped}");
}

#[test]
fn summary_names_everything() {
    let summary = parse_ok(FULL).summary();
    for expected in [
        "workers: 3 (cores 1-3)",
        "control core: 0",
        "admin: 127.0.0.1:9000",
        "ingress 0.0.0.0:8080 tcp -> app (idle timeout 5m)",
        "db.proxy [::1]:5433 tcp -> db",
        "app [127.0.0.1:8000, [::1]:8001] (round_robin, connect timeout 250ms, pool 64 idle for 30s)",
        "unused [127.0.0.1:9999] (peak_ewma, decay 10s, seed 30ms, connect timeout 1s, pool 64 idle for 30s)",
    ] {
        assert!(
            summary.contains(expected),
            "{expected:?} missing from\n{summary}"
        );
    }
}

#[test]
fn load_names_the_path_and_os_reason() {
    let path = std::env::temp_dir().join("ringway-config-test-does-not-exist.toml");
    let Err(errors) = load(&path) else {
        panic!("loaded a missing file")
    };
    let shown = errors.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read the file: ", path.display())),
        "{shown}"
    );
    assert!(shown.contains("os error"), "{shown}");
}

#[test]
fn load_reads_a_file() {
    let path =
        std::env::temp_dir().join(format!("ringway-config-test-{}.toml", std::process::id()));
    std::fs::write(&path, DEFAULT_CONFIG).unwrap();
    let loaded = load(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.unwrap().table.listeners.len(), 2);
}

#[test]
fn unknown_cores_are_an_error_not_a_panic() {
    let Err(errors) = parse_with_cores(&minimal("", ""), "x.toml", None) else {
        panic!("accepted cores it could not check")
    };
    assert!(errors.errors[0]
        .reason
        .contains("does not report its cores"));
}
