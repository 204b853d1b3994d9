//! The generated configurations, line by line.

use super::*;

fn layout(mode: Mode) -> Layout {
    Layout {
        mode,
        proxy_core: 1,
        control_core: None,
        listen: "127.0.0.1:18080".parse().expect("an address"),
        origins: vec!["127.0.0.1:18000".parse().expect("an address")],
        admin: "127.0.0.1:19911".parse().expect("an address"),
        max_connections: 10_032,
        concurrent: 32,
        dir: PathBuf::from("/tmp/run dir"),
        table: Table::default(),
        splice: false,
        tuning: Tuning::default(),
        tls: None,
        upstream_tls: None,
        observe: Observe::default(),
    }
}

/// Whether `text` has a line that, trimmed, is `line`.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

fn assert_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(has_line(text, line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn limits_grow_with_the_connections() {
    let l = layout(Mode::Http);
    // The pool: the load's 32 connections and the spare 64.
    assert_eq!(open_files(&l), (10_032 + 64) + 96 + SPARE_FILES);
    assert_eq!(idle_pool(&l), 96);
    let tcp = Layout {
        mode: Mode::Tcp,
        ..l.clone()
    };
    assert_eq!(open_files(&tcp), 2 * (10_032 + 64) + SPARE_FILES);
    let small = Layout {
        max_connections: 4,
        concurrent: 4,
        ..l.clone()
    };
    assert_eq!(idle_pool(&small), 68);
    let busy = Layout {
        concurrent: 10_000,
        ..l
    };
    assert_eq!(idle_pool(&busy), 4096, "capped at ringway's largest pool");
}

#[test]
fn ringway_http() {
    let text = ringway(&layout(Mode::Http));
    assert_lines(
        &text,
        &[
            "worker_cores = [1]",
            "drain_timeout = \"2s\"",
            "max_connections = 10096",
            "address = \"127.0.0.1:19911\"",
            "address = \"127.0.0.1:18080\"",
            "protocol = \"http\"",
            "path_prefix = \"/\"",
            "cluster = \"origin\"",
            "endpoints = [\"127.0.0.1:18000\"]",
            "pool_max_idle = 96",
            "idle_timeout = \"300s\"",
            "pool_idle_timeout = \"300s\"",
        ],
    );
    assert!(!text.lines().any(|l| l.starts_with("control_core")));
}

#[test]
fn ringway_tcp() {
    let text = ringway(&layout(Mode::Tcp));
    assert_lines(
        &text,
        &[
            "worker_cores = [1]",
            "protocol = \"tcp\"",
            "cluster = \"origin\"",
            "endpoints = [\"127.0.0.1:18000\"]",
        ],
    );
    assert!(!text.contains("routes"));
    assert!(!text.contains("pool_max_idle"), "HTTP-only key:\n{text}");
}

#[test]
fn nginx_http_config() {
    let host = NginxHost {
        stream_module: Some(PathBuf::from("/usr/lib/nginx/modules/ngx_stream_module.so")),
        worker_user: Some("root".into()),
    };
    let text = nginx(&layout(Mode::Http), &host);
    assert_lines(
        &text,
        &[
            "worker_processes 1;",
            "worker_cpu_affinity 10;",
            "daemon off;",
            "user root;",
            "pid \"/tmp/run dir/nginx.pid\";",
            "worker_rlimit_nofile 10448;",
            "worker_connections 10192;",
            "access_log off;",
            "proxy_temp_path \"/tmp/run dir/nginx-proxy-temp\";",
            "keepalive_requests 1000000000;",
            "keepalive_timeout 300s;",
            "server 127.0.0.1:18000;",
            "keepalive 96;",
            "listen 127.0.0.1:18080 backlog=4096;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_set_header X-Forwarded-For $remote_addr;",
            "proxy_set_header X-Request-ID $request_id;",
        ],
    );
    assert!(!text.contains("load_module"), "HTTP needs no stream module");
    assert!(!text.contains("stream {"));
}

#[test]
fn nginx_tcp_config() {
    let host = NginxHost {
        stream_module: Some(PathBuf::from("/usr/lib/nginx/modules/ngx_stream_module.so")),
        worker_user: None,
    };
    let text = nginx(&layout(Mode::Tcp), &host);
    assert!(
        text.starts_with("load_module \"/usr/lib/nginx/modules/ngx_stream_module.so\";\n"),
        "{text}"
    );
    assert_lines(
        &text,
        &[
            "worker_cpu_affinity 10;",
            "stream {",
            "access_log off;",
            "server 127.0.0.1:18000;",
            "listen 127.0.0.1:18080 backlog=4096;",
            "proxy_pass origin;",
            "worker_connections 20192;",
        ],
    );
    assert!(!text.contains("user "));
    assert!(!text.contains("http {"));
    let built_in = nginx(&layout(Mode::Tcp), &NginxHost::default());
    assert!(!built_in.contains("load_module"));
}

#[test]
fn nginx_mask_selects_one_core() {
    assert_eq!(affinity_mask(0), "1");
    assert_eq!(affinity_mask(3), "1000");
}

#[test]
fn nginx_quotes_paths() {
    assert_eq!(quote(Path::new("/a \"b\"\\c")), "\"/a \\\"b\\\"\\\\c\"");
}

#[test]
fn haproxy_http_config() {
    let text = haproxy(&layout(Mode::Http));
    assert_lines(
        &text,
        &[
            "nbthread 1",
            "cpu-map 1/1 1",
            "maxconn 10096",
            "mode http",
            "backlog 4096",
            "option http-keep-alive",
            "timeout http-keep-alive 300s",
            "http-reuse always",
            "tune.pool-low-fd-ratio 100",
            "tune.pool-high-fd-ratio 100",
            "bind 127.0.0.1:18080",
            "option forwardfor",
            "unique-id-header X-Request-ID",
            "server origin0 127.0.0.1:18000 pool-max-conn 96 pool-purge-delay 300s",
        ],
    );
    assert!(!text.lines().any(|l| l.trim_start().starts_with("log ")));
}

#[test]
fn haproxy_tcp_config() {
    let text = haproxy(&layout(Mode::Tcp));
    assert_lines(
        &text,
        &[
            "cpu-map 1/1 1",
            "maxconn 10096",
            "mode tcp",
            "bind 127.0.0.1:18080",
            "server origin0 127.0.0.1:18000",
        ],
    );
    assert!(!text.contains("http-"));
    assert!(!text.contains("splice"));
    assert!(!text.lines().any(|l| l.trim_start().starts_with("log ")));
    let splice = haproxy(&Layout {
        splice: true,
        ..layout(Mode::Tcp)
    });
    assert_lines(
        &splice,
        &["option splice-request", "option splice-response"],
    );
}

#[test]
fn every_origin_is_an_endpoint() {
    let l = Layout {
        origins: vec![
            "127.0.0.1:18000".parse().expect("an address"),
            "127.0.0.1:18001".parse().expect("an address"),
        ],
        ..layout(Mode::Http)
    };
    assert_lines(
        &ringway(&l),
        &["endpoints = [\"127.0.0.1:18000\", \"127.0.0.1:18001\"]"],
    );
    assert_lines(
        &nginx(&l, &NginxHost::default()),
        &["server 127.0.0.1:18000;", "server 127.0.0.1:18001;"],
    );
    let h = haproxy(&l);
    assert!(
        h.contains("server origin1 127.0.0.1:18001 pool-max-conn"),
        "{h}"
    );
}

#[test]
fn ringway_large_tables() {
    let l = Layout {
        table: Table {
            routes: 5,
            clusters: 2,
        },
        control_core: Some(0),
        ..layout(Mode::Http)
    };
    let text = ringway(&l);
    assert_eq!(text.matches("[[listeners.routes]]").count(), 5);
    assert_eq!(text.matches("[[clusters]]").count(), 3);
    // File order h4 ... h0: the traffic's route is the last one.
    let h4 = text.find("host = \"h4.example.com\"").expect("route 4");
    let h0 = text.find("host = \"h0.example.com\"").expect("route 0");
    assert!(h4 < h0);
    let last = &text[h0..text.find("[[clusters]]").expect("clusters")];
    assert_lines(last, &["path_prefix = \"/r0/\"", "cluster = \"origin\""]);
    assert_lines(&text, &["name = \"c1\"", "control_core = 0"]);
    assert!(text.contains("127.0.1.1:10001"), "{text}");
    assert_eq!(l.cores(true), vec![1, 0]);
    assert_eq!(l.cores(false), vec![1]);
    let distinct: std::collections::HashSet<SocketAddr> = (0..1000).map(pool_address).collect();
    assert_eq!(distinct.len(), 1000);
}

#[test]
fn haproxy_spells_ipv6() {
    let addr = "[::1]:80".parse().expect("an address");
    assert_eq!(haproxy_address(addr), "ipv6@::1:80");
}

#[test]
fn a_variant_tunes_each_system_in_its_own_terms() {
    let cluster: toml::Table = toml::from_str(
        "lb = \"peak_ewma\"\nconsecutive_gateway_failures = 3\nconnect_timeout = \"250ms\"\n\
         retry = { retries = 2, retry_on = [\"reset\", \"5xx\"], per_try_timeout = \"500ms\" }\n",
    )
    .expect("a table");
    let tuning = Tuning {
        cluster: Tuning::cluster_lines(&cluster),
        haproxy_backend: vec![
            "balance leastconn".into(),
            "retry-on conn-failure 503".into(),
        ],
        haproxy_server: "check observe layer7 error-limit 5".into(),
        nginx_upstream: vec!["least_conn".into()],
        nginx_server: "max_fails=3 fail_timeout=10s".into(),
        nginx_location: vec!["proxy_next_upstream error timeout http_503".into()],
        ..Tuning::default()
    };
    let l = Layout {
        origins: vec![
            "127.0.0.1:18000".parse().expect("an address"),
            "127.0.0.1:18001".parse().expect("an address"),
        ],
        tuning,
        ..layout(Mode::Http)
    };

    let text = ringway(&l);
    assert_lines(
        &text,
        &[
            "lb = \"peak_ewma\"",
            "consecutive_gateway_failures = 3",
            "connect_timeout = \"250ms\"",
            "pool_max_idle = 96",
        ],
    );
    assert_eq!(
        text.matches("connect_timeout").count(),
        1,
        "replaced:\n{text}"
    );
    // The file is TOML, and the keys land in the origin cluster, the
    // table ones inline.
    let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
    let origin = doc["clusters"].as_array().expect("clusters")[0]
        .as_table()
        .expect("a cluster");
    assert_eq!(origin["name"].as_str(), Some("origin"));
    assert_eq!(origin["retry"], cluster["retry"]);
    assert_eq!(origin["lb"], cluster["lb"]);
    assert_eq!(origin["connect_timeout"].as_str(), Some("250ms"));

    let h = haproxy(&l);
    assert_lines(
        &h,
        &[
            "balance leastconn",
            "retry-on conn-failure 503",
            "server origin0 127.0.0.1:18000 pool-max-conn 96 pool-purge-delay 300s check observe layer7 error-limit 5",
            "server origin1 127.0.0.1:18001 pool-max-conn 96 pool-purge-delay 300s check observe layer7 error-limit 5",
        ],
    );
    let backend = h.find("backend origin").expect("a backend");
    assert!(h.find("balance leastconn").expect("balance") > backend);

    let n = nginx(&l, &NginxHost::default());
    assert_lines(
        &n,
        &[
            "least_conn;",
            "server 127.0.0.1:18000 max_fails=3 fail_timeout=10s;",
            "server 127.0.0.1:18001 max_fails=3 fail_timeout=10s;",
            "proxy_next_upstream error timeout http_503;",
        ],
    );
    let upstream = n.find("upstream origin {").expect("an upstream");
    let location = n.find("location / {").expect("a location");
    assert!(n.find("least_conn;").expect("least_conn") > upstream);
    assert!(n.find("proxy_next_upstream").expect("next upstream") > location);

    // Untuned, nothing of it shows.
    let plain = layout(Mode::Http);
    assert!(!ringway(&plain).contains("variant's own"));
    assert!(!haproxy(&plain).contains("variant's own"));
    assert!(!nginx(&plain, &NginxHost::default()).contains("least_conn"));
}

fn observed(mode: Mode, tracing: Option<Tracing>) -> Layout {
    Layout {
        observe: Observe {
            access_log: true,
            tracing,
        },
        ..layout(mode)
    }
}

const COLLECTOR: Tracing = Tracing {
    collector: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4318),
    sample: 0.1,
};

#[test]
fn ringway_logs_every_request_and_exports_spans_when_asked() {
    let text = ringway(&observed(Mode::Http, Some(COLLECTOR)));
    assert_lines(
        &text,
        &[
            "access_log = { path = \"/tmp/run dir/access.log\", format = \"json\" }",
            "[tracing]",
            "collector = \"http://127.0.0.1:4318/v1/traces\"",
            "sample = 0.1",
        ],
    );
    // The file parses, with the keys where ringway reads them.
    let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(doc["tracing"]["sample"].as_float(), Some(0.1));
    let listener = &doc["listeners"].as_array().expect("listeners")[0];
    assert_eq!(listener["access_log"]["format"].as_str(), Some("json"));
    assert!(listener.get("routes").is_some());

    let quiet = ringway(&layout(Mode::Http));
    assert!(!quiet.contains("access_log") && !quiet.contains("[tracing]"));
    // Only HTTP listeners log and trace.
    let tcp = ringway(&observed(Mode::Tcp, Some(COLLECTOR)));
    assert!(
        !tcp.contains("access_log") && !tcp.contains("[tracing]"),
        "{tcp}"
    );
    // A whole-number share is still a float to TOML.
    let all = ringway(&observed(
        Mode::Http,
        Some(Tracing {
            sample: 1.0,
            ..COLLECTOR
        }),
    ));
    assert!(has_line(&all, "sample = 1.0"), "{all}");
}

#[test]
fn nginx_logs_every_request_as_json_buffered() {
    let text = nginx(
        &observed(Mode::Http, Some(COLLECTOR)),
        &NginxHost::default(),
    );
    assert!(!has_line(&text, "access_log off;"), "{text}");
    assert_lines(
        &text,
        &["access_log \"/tmp/run dir/access.log\" bench buffer=64k flush=1s;"],
    );
    let format = text
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("log_format bench escape=json '{")
        })
        .unwrap_or_else(|| panic!("no log_format in:\n{text}"));
    for var in [
        "$request_method",
        "$status",
        "$upstream_addr",
        "$request_id",
    ] {
        assert!(format.contains(var), "{format}");
    }
    // The log format, its variables given values, is one JSON object.
    let sample = format
        .trim()
        .trim_start_matches("log_format bench escape=json '")
        .trim_end_matches("';")
        .replace("$status", "200")
        .replace("$request_length", "40")
        .replace("$bytes_sent", "120")
        .replace("$request_time", "0.001");
    let parsed: serde_json::Value =
        serde_json::from_str(&sample).unwrap_or_else(|e| panic!("{e}: {sample}"));
    assert!(parsed.is_object());
    assert!(!nginx(&observed(Mode::Tcp, None), &NginxHost::default()).contains("log_format"));
}

#[test]
fn haproxy_logs_every_request_as_json_to_stdout() {
    let text = haproxy(&observed(Mode::Http, Some(COLLECTOR)));
    assert_lines(
        &text,
        &[
            "log stdout format raw local0 info",
            "log global",
            "option dontlognull",
            "http-request capture req.hdr(host) len 128",
        ],
    );
    let format = text
        .lines()
        .find(|l| l.trim_start().starts_with("log-format "))
        .unwrap_or_else(|| panic!("no log-format in:\n{text}"));
    assert!(format.contains("\\\"status\\\":%ST"), "{format}");
    assert!(!format.contains('$') && !format.contains('#'));
    // Inside the quotes every quote is escaped.
    let inner = format.trim().trim_start_matches("log-format \"");
    let inner = inner.strip_suffix('"').expect("quoted");
    assert!(!inner.replace("\\\"", "").contains('"'), "{inner}");
    // No tracing in HAProxy's config: it exports no spans here.
    assert!(!text.contains("4318"));
    let tcp = haproxy(&observed(Mode::Tcp, None));
    assert!(
        !tcp.contains("log-format") && !tcp.contains("log stdout"),
        "{tcp}"
    );
}

#[test]
fn a_variant_adds_its_policy_to_the_route_the_load_matches() {
    let route: toml::Table =
        toml::from_str("rate_limit = { requests_per_second = 10000000, burst = 1000000 }\n")
            .expect("a table");
    let tuned = Layout {
        tuning: Tuning {
            route: Tuning::cluster_lines(&route),
            ..Tuning::default()
        },
        ..layout(Mode::Http)
    };
    let text = ringway(&tuned);
    assert!(
        text.lines().any(|l| l.starts_with("  rate_limit = {")),
        "inline, indented as the route's keys:\n{text}"
    );
    let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
    let listener = &doc["listeners"].as_array().expect("listeners")[0];
    let all = &listener["routes"].as_array().expect("routes")[0];
    assert_eq!(all["name"].as_str(), Some(CATCH_ALL));
    assert_eq!(all["cluster"].as_str(), Some("origin"));
    assert_eq!(all["rate_limit"], route["rate_limit"]);
    assert_eq!(listener["name"].as_str(), Some(LISTENER));

    // In a large table it goes on `r0`, the route the requests match.
    let large = Layout {
        table: Table {
            routes: 3,
            clusters: 0,
        },
        ..tuned
    };
    let doc: toml::Table = toml::from_str(&ringway(&large)).expect("valid TOML");
    let routes = doc["listeners"][0]["routes"].as_array().expect("routes");
    for r in routes {
        let limited = r.get("rate_limit").is_some();
        assert_eq!(limited, r["name"].as_str() == Some("r0"), "{r}");
    }
    // Untuned, no route has it.
    assert!(!ringway(&layout(Mode::Http)).contains("rate_limit"));
}

#[test]
fn a_rollout_splits_the_catch_all_route_between_two_origins() {
    let origins: Vec<SocketAddr> = ["127.0.0.1:18000", "127.0.0.1:18001", "127.0.0.1:18002"]
        .iter()
        .map(|a| a.parse().expect("an address"))
        .collect();
    let settings: toml::Table = toml::from_str(
        "steps = [5, 10, 25, 50, 100]\ninterval = \"2s\"\nmax_error_rate_delta = 0.01\n\
         canary = \"canary\"\nstable = \"stable\"\n",
    )
    .expect("a table");
    let cluster: toml::Table = toml::from_str("lb = \"round_robin\"\n").expect("a table");
    let l = Layout {
        origins: origins.clone(),
        tuning: Tuning {
            cluster: Tuning::cluster_lines(&cluster),
            split: Some(Split {
                stable: 0,
                canary: 2,
                canary_weight: 5,
                rollout: Tuning::inline(&settings),
            }),
            ..Tuning::default()
        },
        ..layout(Mode::Http)
    };
    let text = ringway(&l);
    let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
    let all = &doc["listeners"][0]["routes"][0];
    assert_eq!(all["name"].as_str(), Some(CATCH_ALL));
    assert!(all.get("cluster").is_none(), "a split instead:\n{text}");
    let split = all["split"].as_array().expect("a split");
    let pairs: Vec<(&str, i64)> = split
        .iter()
        .map(|s| {
            (
                s["cluster"].as_str().expect("a cluster"),
                s["weight"].as_integer().expect("a weight"),
            )
        })
        .collect();
    assert_eq!(pairs, [(STABLE, 95), (CANARY, 5)]);
    assert_eq!(all["rollout"].as_table(), Some(&settings));

    // One origin each, both with the generated settings and the variant's.
    let clusters = doc["clusters"].as_array().expect("clusters");
    assert_eq!(clusters.len(), 2, "{text}");
    for (c, (name, origin)) in clusters
        .iter()
        .zip([(STABLE, origins[0]), (CANARY, origins[2])])
    {
        assert_eq!(c["name"].as_str(), Some(name));
        let endpoints = c["endpoints"].as_array().expect("endpoints");
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0].as_str(), Some(origin.to_string().as_str()));
        assert_eq!(c["pool_max_idle"].as_integer(), Some(96));
        assert_eq!(c["lb"].as_str(), Some("round_robin"));
    }
    assert!(!text.contains("name = \"origin\""), "{text}");
}
