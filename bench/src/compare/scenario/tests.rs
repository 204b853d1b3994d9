//! Scenario files: defaults, checks and the shipped ones.

use super::*;

#[test]
fn defaults_fill_a_minimal_scenario() {
    let s = parse("name = \"x\"").unwrap();
    assert_eq!(s.systems, all_systems());
    assert_eq!((s.runs, s.cores.proxy, s.load.connections), (3, 1, 32));
    assert_eq!(s.load.duration, Duration::from_secs(5));
    assert_eq!(s.load.host, "bench");
    assert!(s.sweep.max_throughput && s.variants.is_empty() && s.ratios.is_empty());
    assert_eq!(s.memory.idle_connections, 10_000);
    assert_eq!((s.memory.idle_tcp_pairs, s.origin.count), (0, 1));
    assert_eq!(s.cores.control, None);
    assert_eq!(s.guard.quiet_wait, Duration::from_secs(600));
    assert_eq!((s.guard.quiet_pct, s.guard.retries), (5.0, 2));
}

#[test]
fn errors_name_the_key_and_line() {
    let e = parse("name = \"x\"\n[load]\nduration = \"soon\"\n").unwrap_err();
    assert!(e.contains("line 3") && e.contains("soon"), "{e}");
    let e = parse("name = \"x\"\n[load]\nconections = 3\n").unwrap_err();
    assert!(e.contains("conections") && e.contains("line 3"), "{e}");
    let e = parse("name = \"x\"\nsystems = [\"envoy\"]").unwrap_err();
    assert!(e.contains("envoy"), "{e}");
    let e = parse("name = \"x\"\nmode = \"tcp\"\n[sweep]\nrates = [10]").unwrap_err();
    assert!(e.contains("sweep.rates"), "{e}");
    assert!(parse("name = \"a b\"").unwrap_err().contains("name"));
    let e = parse("name = \"x\"\n[churn]\ninterval = \"1s\"\n").unwrap_err();
    assert!(e.contains("churn"), "the old top-level churn is gone: {e}");
}

#[test]
fn variants_are_systems_with_their_own_checks() {
    let s = parse(
        "name = \"x\"\nsystems = [\"ringway\", \"many\", \"hot\"]\n\
         [origin]\ncount = 2\n\
         [[variants]]\nname = \"many\"\nof = \"ringway\"\nroutes = 10000\nclusters = 5\n\
         [[variants]]\nname = \"hot\"\nof = \"baseline\"\n\
         [variants.churn]\nmode = \"endpoints\"\ninterval = \"10ms\"\n\
         [[ratios]]\nsystem = \"many\"\nagainst = \"ringway\"\nbar = 1.05\n",
    )
    .unwrap();
    assert_eq!(s.variant("many").unwrap().routes, 10_000);
    let churn = s.variant("hot").unwrap().churn.as_ref().unwrap();
    assert_eq!(churn.mode, ChurnMode::Endpoints);
    assert_eq!(churn.interval, Duration::from_millis(10));
    assert_eq!(s.ratios[0].bar, Some(1.05));
    assert!(s.knows("baseline") && !s.knows("envoy"));

    let bad = |body: &str, needle: &str| {
        let text = format!("name = \"x\"\nsystems = [\"v\"]\n{body}");
        let e = parse(&text).unwrap_err();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    bad(
        "[[variants]]\nname = \"v\"\nof = \"envoy\"\n",
        "of = \"envoy\"",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"nginx\"\n[variants.haproxy]\nserver = \"check\"\n",
        "HAProxy settings",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"haproxy\"\n[variants.cluster]\nlb = \"peak_ewma\"\n",
        "ringway settings",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"ringway\"\n[variants.cluster]\nendpoints = []\n",
        "cluster.endpoints",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"nginx\"\n[variants.nginx]\nlocation = [\"a; b\"]\n",
        "without braces",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"haproxy\"\n[variants.haproxy]\nbackend = [\"a\\nb\"]\n",
        "one line",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"haproxy\"\nroutes = 3\n",
        "ringway settings",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"ringway\"\nsplice = true\n",
        "HAProxy setting",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"ringway\"\n[variants.churn]\nmode = \"endpoints\"\ninterval = \"1s\"\n",
        "count = 2",
    );
    bad(
        "mode = \"tcp\"\n[[variants]]\nname = \"v\"\nof = \"ringway\"\nroutes = 2\n",
        "no routes",
    );
    bad(
        "[[variants]]\nname = \"ringway\"\nof = \"ringway\"\n",
        "base system",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"ringway\"\n[[variants]]\nname = \"v\"\nof = \"ringway\"\n",
        "twice",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"ringway\"\n[[ratios]]\nsystem = \"v\"\nagainst = \"w\"\n",
        "\"w\"",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"ringway\"\n[memory]\nidle_connections = 0\n\
         [sweep]\nmax_throughput = false\n",
        "nothing to run",
    );
}

#[test]
fn tls_scenarios_and_their_plaintext_variants() {
    let s = parse(
        "name = \"t\"\ntls = true\nclient_auth = true\n[memory]\nidle_connections = 0\n\
         [[variants]]\nname = \"plain\"\nof = \"haproxy\"\ntls = false\n",
    )
    .unwrap();
    assert!(s.tls && s.client_auth);
    assert_eq!(s.variant("plain").unwrap().tls, Some(false));
    assert!(!parse("name = \"t\"").unwrap().tls);
    let e =
        parse("name = \"t\"\nclient_auth = true\n[memory]\nidle_connections = 0\n").unwrap_err();
    assert!(e.contains("client_auth"), "{e}");
    let e = parse("name = \"t\"\ntls = true\n").unwrap_err();
    assert!(e.contains("idle_connections = 0"), "{e}");
    let e = parse("name = \"t\"\n[[variants]]\nname = \"v\"\nof = \"nginx\"\ntls = true\n")
        .unwrap_err();
    assert!(e.contains("plaintext scenario"), "{e}");
    let s = parse(
        "name = \"t\"\ntls = true\n[memory]\nidle_connections = 0\n\
         [[variants]]\nname = \"m\"\nof = \"nginx\"\nclient_auth = true\n",
    )
    .unwrap();
    assert!(!s.client_auth);
    assert_eq!(s.variant("m").unwrap().client_auth, Some(true));
    let e = parse(
        "name = \"t\"\ntls = true\n[memory]\nidle_connections = 0\n\
         [[variants]]\nname = \"m\"\nof = \"nginx\"\ntls = false\nclient_auth = true\n",
    )
    .unwrap_err();
    assert!(e.contains("client_auth = true needs TLS"), "{e}");
    let e =
        parse("name = \"t\"\n[[variants]]\nname = \"m\"\nof = \"haproxy\"\nclient_auth = true\n")
            .unwrap_err();
    assert!(e.contains("client_auth = true needs TLS"), "{e}");
}

#[test]
fn pair_scenarios_hold_no_idle_connections_and_do_not_churn() {
    let s = parse(
        "name = \"p\"\npair = true\ntls = true\nclient_auth = true\n\
         [memory]\nidle_connections = 0\n\
         [[variants]]\nname = \"plain\"\nof = \"ringway\"\ntls = false\n",
    )
    .unwrap();
    assert!(s.pair && s.tls && s.client_auth);
    assert!(!parse("name = \"t\"").unwrap().pair);
    let e = parse("name = \"p\"\npair = true\n").unwrap_err();
    assert!(e.contains("idle_connections = 0"), "{e}");
    let e = parse(
        "name = \"p\"\npair = true\n[memory]\nidle_connections = 0\n\
         [[variants]]\nname = \"c\"\nof = \"ringway\"\n\
         [variants.churn]\nmode = \"routes\"\ninterval = \"1s\"\n",
    )
    .unwrap_err();
    assert!(e.contains("churn"), "{e}");
    let e = parse(
        "name = \"p\"\n[[variants]]\nname = \"v\"\nof = \"ringway\"\n\
         [variants.cluster]\ntls = { verify = false }\n",
    )
    .unwrap_err();
    assert!(e.contains("cluster.tls"), "{e}");
}

#[test]
fn plus_aes_ratios_are_per_gb() {
    let s = parse(
        "name = \"t\"\nmode = \"tcp\"\n[[ratios]]\nsystem = \"ringway\"\n\
         against = \"haproxy\"\nplus_aes = true\nbar = 1.1\n",
    )
    .unwrap();
    assert!(s.ratios[0].plus_aes);
    let e = parse(
        "name = \"t\"\n[[ratios]]\nsystem = \"ringway\"\nagainst = \"nginx\"\nplus_aes = true\n",
    )
    .unwrap_err();
    assert!(e.contains("plus_aes"), "{e}");
}

#[test]
fn a_memory_only_scenario_is_enough() {
    let s = parse("name = \"m\"\n[sweep]\nmax_throughput = false\n[memory]\nidle_tcp_pairs = 10\n")
        .unwrap();
    assert_eq!(s.memory.idle_tcp_pairs, 10);
    let e = parse("name = \"m\"\nmode = \"tcp\"\n[memory]\nidle_tcp_pairs = 10\n").unwrap_err();
    assert!(e.contains("pairs already"), "{e}");
}

#[test]
fn access_logs_and_tracing_are_http_keys_with_their_own_checks() {
    let s = parse(
        "name = \"o\"\naccess_log = true\ntracing_sample = 0.1\n\
         systems = [\"ringway\", \"quiet\", \"all\", \"nginx\"]\n\
         [[variants]]\nname = \"quiet\"\nof = \"ringway\"\naccess_log = false\n\
         [[variants]]\nname = \"all\"\nof = \"ringway\"\ntracing_sample = 1.0\n",
    )
    .unwrap();
    assert!(s.access_log);
    assert_eq!(s.tracing_sample, Some(0.1));
    assert_eq!(s.variant("quiet").unwrap().access_log, Some(false));
    assert_eq!(s.variant("all").unwrap().tracing_sample, Some(1.0));
    let plain = parse("name = \"p\"").unwrap();
    assert!(!plain.access_log && plain.tracing_sample.is_none());

    let bad = |body: &str, needle: &str| {
        let e = parse(&format!("name = \"x\"\n{body}")).unwrap_err();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    bad("tracing_sample = 1.5\n", "from 0 to 1");
    bad(
        "[[variants]]\nname = \"v\"\nof = \"ringway\"\ntracing_sample = -0.1\n",
        "from 0 to 1",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"nginx\"\ntracing_sample = 0.1\n",
        "ringway setting",
    );
    bad(
        "mode = \"tcp\"\naccess_log = true\n[memory]\nidle_connections = 0\n",
        "use mode = \"http\"",
    );
    bad(
        "pair = true\ntracing_sample = 0.1\n[memory]\nidle_connections = 0\n",
        "not in a pair scenario",
    );
    bad(
        "[[variants]]\nname = \"v\"\nof = \"haproxy\"\naccess_log = true\n\
         [memory]\nidle_connections = 0\n[sweep]\nrates = [100]\nmax_throughput = false\n\
         [[faults]]\ndelay = \"1ms\"\n",
        "not in a fault scenario",
    );
    // Off everywhere, nothing is checked.
    parse("name = \"x\"\nmode = \"tcp\"\naccess_log = false\n").unwrap();
}

#[test]
fn the_shipped_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load(&path).unwrap();
            n += 1;
        }
    }
    assert!(n >= 10, "{n} scenarios in {}", dir.display());
}

#[test]
fn a_variant_adds_keys_to_ringways_route() {
    let s = parse(
        "name = \"p\"\nsystems = [\"ringway\", \"limited\"]\n\
         [[variants]]\nname = \"limited\"\nof = \"ringway\"\n\
         [variants.route]\n\
         rate_limit = { requests_per_second = 10000000, burst = 1000000 }\n",
    )
    .unwrap();
    let route = s.variant("limited").unwrap().route.as_ref().unwrap();
    let limit = route["rate_limit"].as_table().unwrap();
    assert_eq!(limit["requests_per_second"].as_integer(), Some(10_000_000));
    assert_eq!(limit["burst"].as_integer(), Some(1_000_000));

    let bad = |body: &str, needle: &str| {
        let e = parse(&format!("name = \"p\"\n{body}")).unwrap_err();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    for base in ["nginx", "haproxy"] {
        bad(
            &format!(
                "[[variants]]\nname = \"v\"\nof = \"{base}\"\n[variants.route]\nrate_limit = {{}}\n"
            ),
            "route are ringway settings",
        );
    }
    for own in [
        "name",
        "path_prefix",
        "cluster",
        "split",
        "direct",
        "rollout",
    ] {
        bad(
            &format!(
                "[[variants]]\nname = \"v\"\nof = \"ringway\"\n[variants.route]\n{own} = \"x\"\n"
            ),
            &format!("route.{own}: the bench writes the route's {own} itself"),
        );
    }
    bad(
        "mode = \"tcp\"\n[sweep]\nmax_throughput = true\n\
         [[variants]]\nname = \"v\"\nof = \"ringway\"\n[variants.route]\nrate_limit = {}\n",
        "route: a TCP listener has no routes",
    );
    // The baseline is a ringway too.
    parse(
        "name = \"p\"\n[[variants]]\nname = \"v\"\nof = \"baseline\"\n\
         [variants.route]\nrate_limit = { requests_per_second = 5 }\n",
    )
    .unwrap();
}

/// A rollout scenario's common part: two origins, ringway alone, open loop.
const ROLLOUT: &str = "name = \"r\"\nsystems = [\"ringway\"]\n[origin]\ncount = 3\n\
    [sweep]\nrates = [500]\nmax_throughput = false\n[memory]\nidle_connections = 0\n";

#[test]
fn a_rollout_section_passes_ringways_keys_through() {
    let s = parse(&format!(
        "{ROLLOUT}[rollout]\ncanary_origin = 2\ncanary_weight = 10\nsample_every = \"100ms\"\n\
         steps = [10, 50, 100]\ninterval = \"2s\"\nmax_error_rate_delta = 0.01\n"
    ))
    .unwrap();
    let r = s.rollout.unwrap();
    assert_eq!(
        (r.stable_origin, r.canary_origin, r.canary_weight),
        (0, 2, 10)
    );
    assert_eq!(r.sample_every, Duration::from_millis(100));
    // Only ringway's keys are left for the route's `rollout`.
    let keys: Vec<&str> = r.settings.keys().map(String::as_str).collect();
    assert_eq!(keys, ["interval", "max_error_rate_delta", "steps"]);

    let d = parse(&format!("{ROLLOUT}[rollout]\n"))
        .unwrap()
        .rollout
        .unwrap();
    assert_eq!(
        (d.stable_origin, d.canary_origin, d.canary_weight),
        (0, 1, 5)
    );
    assert_eq!(d.sample_every, Duration::from_millis(250));
}

#[test]
fn a_rollout_scenario_is_checked() {
    let bad = |text: String, needle: &str| {
        let e = parse(&text).unwrap_err();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    bad(
        format!("{ROLLOUT}[rollout]\ncanary_origin = 3\n"),
        "rollout.canary_origin: 3 is not an origin (0 to 2",
    );
    bad(
        format!("{ROLLOUT}[rollout]\nstable_origin = 1\n"),
        "the same origin",
    );
    bad(
        format!("{ROLLOUT}[rollout]\ncanary_weight = 101\n"),
        "from 0 to 100",
    );
    bad(
        format!("{ROLLOUT}[rollout]\nsample_every = \"0s\"\n"),
        "sample_every: longer than zero",
    );
    bad(
        format!("{ROLLOUT}[rollout]\ncanary = \"v2\"\n"),
        "rollout.canary: the bench names the clusters itself",
    );
    bad(
        format!("{ROLLOUT}[rollout]\nsample_every = \"soon\"\n"),
        "soon",
    );
    bad(
        ROLLOUT.replace("[\"ringway\"]", "[\"ringway\", \"nginx\"]") + "[rollout]\n",
        "only ringway drives a rollout; \"nginx\"",
    );
    bad(
        ROLLOUT.replace("max_throughput = false", "max_throughput = true") + "[rollout]\n",
        "max_throughput = false",
    );
    bad(
        ROLLOUT.replace("idle_connections = 0", "idle_connections = 10") + "[rollout]\n",
        "idle_connections = 0",
    );
    bad(
        ROLLOUT.replace("[\"ringway\"]", "[\"ringway\", \"big\"]")
            + "[rollout]\n[[variants]]\nname = \"big\"\nof = \"ringway\"\nroutes = 5\n",
        "routes and churn change the table",
    );
    // Variants of ringway, and the baseline, run a rollout too.
    parse(
        &(ROLLOUT.replace("[\"ringway\"]", "[\"ringway\", \"baseline\", \"rr\"]")
            + "[rollout]\n[[variants]]\nname = \"rr\"\nof = \"ringway\"\n\
               [variants.cluster]\nlb = \"round_robin\"\n"),
    )
    .unwrap();
}

#[test]
fn a_variant_chooses_ringways_io_backend() {
    let s = parse(
        "name = \"e\"\nsystems = [\"ringway\", \"ringway-epoll\", \"old-uring\"]\n\
         [[variants]]\nname = \"ringway-epoll\"\nof = \"ringway\"\nio_backend = \"epoll\"\n\
         [[variants]]\nname = \"old-uring\"\nof = \"baseline\"\nio_backend = \"io_uring\"\n",
    )
    .unwrap();
    assert_eq!(
        s.variant("ringway-epoll").unwrap().io_backend,
        Some(IoBackend::Epoll)
    );
    assert_eq!(
        s.variant("old-uring").unwrap().io_backend,
        Some(IoBackend::IoUring)
    );
    assert_eq!(IoBackend::IoUring.name(), "io_uring");
    let auto = parse(
        "name = \"e\"\n[[variants]]\nname = \"a\"\nof = \"ringway\"\nio_backend = \"auto\"\n",
    )
    .unwrap();
    assert_eq!(auto.variants[0].io_backend, Some(IoBackend::Auto));

    let e = parse(
        "name = \"e\"\n[[variants]]\nname = \"v\"\nof = \"ringway\"\nio_backend = \"kqueue\"\n",
    )
    .unwrap_err();
    assert!(e.contains("kqueue") && e.contains("line 5"), "{e}");
    for base in ["nginx", "haproxy"] {
        let e = parse(&format!(
            "name = \"e\"\n[[variants]]\nname = \"v\"\nof = \"{base}\"\nio_backend = \"epoll\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("io_backend is a ringway setting"), "{e}");
    }
}

#[test]
fn a_syscall_count_is_asked_for_and_checked() {
    let s = parse("name = \"x\"").unwrap();
    assert!(!s.syscalls.count);
    assert_eq!((s.syscalls.duration, s.syscalls.top), (None, 5));
    let s = parse("name = \"x\"\n[syscalls]\ncount = true\nduration = \"2s\"\ntop = 3\n").unwrap();
    assert!(s.syscalls.count);
    assert_eq!(s.syscalls.duration, Some(Duration::from_secs(2)));
    assert_eq!(s.syscalls.top, 3);

    let bad = |body: &str, needle: &str| {
        let e = parse(&format!("name = \"x\"\n{body}")).unwrap_err();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    bad("[syscalls]\ncounts = true\n", "counts");
    bad(
        "[syscalls]\ncount = true\nduration = \"0s\"\n",
        "syscalls.duration: longer than zero",
    );
    bad(
        "[sweep]\nmax_throughput = false\n[syscalls]\ncount = true\n",
        "the sweep is empty",
    );
    let e = parse(&format!("{ROLLOUT}[syscalls]\ncount = true\n[rollout]\n")).unwrap_err();
    assert!(
        e.contains("syscalls: not in a fault or rollout scenario"),
        "{e}"
    );
}

#[test]
fn the_epoll_scenarios_set_both_backends_beside_the_peers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for (file, mode) in [
        ("epoll-keepalive.toml", ScenarioMode::Http),
        ("epoll-tcp.toml", ScenarioMode::Tcp),
    ] {
        let s = load(&dir.join(file)).unwrap();
        assert_eq!(s.mode, mode, "{file}");
        assert_eq!(
            s.systems,
            ["direct", "ringway", "ringway-epoll", "nginx", "haproxy"],
            "{file}"
        );
        let v = s.variant("ringway-epoll").unwrap();
        assert_eq!(
            (v.of.as_str(), v.io_backend),
            ("ringway", Some(IoBackend::Epoll))
        );
        assert!(s.syscalls.count, "{file}");
        assert!(s.sweep.max_throughput, "{file}");
        if mode == ScenarioMode::Http {
            assert!(!s.sweep.rates.is_empty(), "{file}: a fixed rate too");
        }
        let bars: Vec<(&str, &str, Option<f64>)> = s
            .ratios
            .iter()
            .map(|r| (r.system.as_str(), r.against.as_str(), r.bar))
            .collect();
        assert_eq!(
            bars,
            [
                ("ringway-epoll", "ringway", Some(1.15)),
                ("ringway-epoll", "nginx", Some(1.0)),
                ("ringway-epoll", "haproxy", Some(1.0)),
            ],
            "{file}"
        );
    }
}
