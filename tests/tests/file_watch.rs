//! The config-file watch (docs/admin.md, "Reloading") on a file mounted
//! from a Kubernetes ConfigMap: the name `config.toml` is a symlink into
//! `..data`, and an update swaps `..data` without touching that name.
//! (Editor saves are covered in reload.rs.)

use std::fs;
use std::net::SocketAddr;
use std::time::Duration;

use ringway_kit::admin;
use ringway_kit::ports::dead_endpoint;
use ringway_kit::Ringway;
use ringway_tests::http_client::{fetch, Req};
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::ConfigMapVolume;

/// Bound on waits for a reload to be applied.
const WAIT: Duration = Duration::from_secs(10);

/// `config` with one route, which answers `body` itself.
fn answering(config: &HttpConfig, body: &str) -> String {
    config
        .clone()
        .route(Route::new("version").direct(200, body, Some("text/plain")))
        .to_toml()
}

/// What `GET /` through the listener answers.
fn answer(listen: SocketAddr) -> String {
    let response = fetch(listen, &Req::get("/"));
    assert_eq!(response.status, 200, "{response:?}");
    response.body_text()
}

/// Waits until every worker runs `generation`, then returns the
/// `/stats` count of applied reloads.
fn reloads_at(admin_addr: SocketAddr, generation: u64) -> u64 {
    admin::wait_generation(admin_addr, generation, WAIT).u64("/reloads")
}

/// Each ConfigMap update (new timestamped directory, `..data` swapped by a
/// rename, old directory removed) is applied: the direct answer changes and
/// the reload counter moves by one, again after the directory the first
/// file lived in is gone. An endpoint update in between makes the running
/// configuration differ from the file; a file of someone else's in the
/// volume and a swap to the same content, which leave what the path reads
/// as it was, come before the last update. (Whether those publish anything
/// depends on them being seen apart from that update, which nothing here
/// can force; the watch's unit tests check that they count as no change.)
#[test]
fn configmap_updates_are_followed() {
    // A cluster no route uses, for an endpoint update.
    let config = HttpConfig::new().cluster("app", &[dead_endpoint()]);
    let mut volume = ConfigMapVolume::new(&answering(&config, "v1\n"));
    let proxy = Ringway::start_file(&volume.path());
    admin::wait_ready(config.admin, WAIT);
    assert_eq!(answer(config.listen), "v1\n");

    volume.update(&answering(&config, "v2\n"));
    assert_eq!(reloads_at(config.admin, 2), 1);
    assert_eq!(answer(config.listen), "v2\n");

    let body = format!("[\"{}\"]", dead_endpoint());
    let response = admin::request(config.admin, "PUT", "/clusters/app/endpoints", Some(&body))
        .expect("PUT /clusters/app/endpoints");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(reloads_at(config.admin, 3), 2);

    let unrelated = volume.dir().join("unrelated.txt");
    fs::write(&unrelated, "not a config").expect("writing beside the config");
    fs::remove_file(&unrelated).expect("removing it");
    volume.update(&answering(&config, "v2\n"));
    volume.update(&answering(&config, "v3\n"));
    assert_eq!(reloads_at(config.admin, 4), 3);
    assert_eq!(answer(config.listen), "v3\n");

    let exit = proxy.stop();
    exit.assert_clean();
    assert!(
        exit.stderr
            .contains("reload (file change): applied generation 4"),
        "{}",
        exit.stderr
    );
}
