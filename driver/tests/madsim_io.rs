//! The production I/O path (framing, connections, dialling, the node loop, the real log file)
//! under madsim's deterministic network and clock. Compiled only with `RUSTFLAGS="--cfg madsim"`:
//!
//!     RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p minitwin-driver
//!
//! Seeds: `MINITWIN_MADSIM_SEEDS` (comma-separated), default 1,2,3. A small cluster: a store
//! node (10.0.0.1), a service node in front of it (10.0.0.2) and the users' client
//! (10.0.0.3); the tests kill and restart, partition and clog it and see it recover. Files
//! outlive a madsim kill with everything written to them, so every kill here is followed by
//! `crash::lose_unsynced`, which cuts them back to what was synced: a missing fsync loses
//! acknowledged writes, and the planted `bug_skip_fsync` shows that this suite sees it.
#![cfg(madsim)]

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use minitwin_components::msg::{Request, Response, Route, Status};
use minitwin_components::msg::{StoreOp, StoreRequest, StoreResponse, StoreResult};
use minitwin_components::service::{Service, ServiceConfig};
use minitwin_components::store::{Store, StoreConfig};
use minitwin_components::{Component, Msg};
use minitwin_driver::disk::crash;
use minitwin_driver::{spawn_node, Client, NodeConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const STORE: &str = "10.0.0.1:7000";
const SERVICE: &str = "10.0.0.2:7000";

fn seeds() -> Vec<u64> {
    std::env::var("MINITWIN_MADSIM_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3])
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn data_dir(test: &str, seed: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "minitwin-madsim-{}-{test}-{seed}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn store_msg(id: u64, op: StoreOp) -> Msg {
    Msg::Store(StoreRequest { id, op })
}

fn result(m: Msg) -> StoreResult {
    match m {
        Msg::StoreReply(StoreResponse { result, .. }) => result,
        other => panic!("expected a store reply, got {other:?}"),
    }
}

/// Starts a simulated host `host` at `at` whose process runs the node `make` builds (again
/// at every restart).
fn host<F>(handle: &Handle, host: &str, at: &str, make: F) -> NodeHandle
where
    F: Fn() -> (NodeConfig, Box<dyn Component + Send>) + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    handle
        .create_node()
        .name(host)
        .ip(addr(at).ip())
        .init(move || {
            let make = make.clone();
            async move {
                let (config, component) = make();
                let node = spawn_node(config, component)
                    .await
                    .expect("the node starts");
                std::future::pending::<()>().await;
                drop(node);
            }
        })
        .build()
}

/// Starts the store node (id 1) on `handle`; `bug_skip_fsync` plants the missing fsync.
fn store_node(handle: &Handle, dir: PathBuf, bug_skip_fsync: bool) -> NodeHandle {
    host(handle, "store", STORE, move || {
        let mut config = NodeConfig::new(1, "store-0", addr(STORE), dir.clone());
        config.bug_skip_fsync = bug_skip_fsync;
        (config, Box::new(Store::new(StoreConfig::default())))
    })
}

/// Starts the service node (id 0), which calls the store node.
fn service_node(handle: &Handle, dir: PathBuf) -> NodeHandle {
    host(handle, "service", SERVICE, move || {
        let mut config = NodeConfig::new(0, "service-0", addr(SERVICE), dir.clone());
        config.peers = BTreeMap::from([(1, STORE.to_string())]);
        (
            config,
            Box::new(Service::new(ServiceConfig::default(), &[1])),
        )
    })
}

fn client_node(handle: &Handle) -> NodeHandle {
    handle
        .create_node()
        .name("client")
        .ip("10.0.0.3".parse().unwrap())
        .build()
}

/// Connects to `at`, trying every 200 ms for up to 10 s (a node restarting).
async fn connect(at: SocketAddr) -> Client {
    let mut tries = 0;
    loop {
        match Client::connect(at, 99).await {
            Ok(c) => return c,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                madsim::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no connection to {at}: {e}"),
        }
    }
}

/// A user's request through the service; the status it got.
async fn ask(c: &mut Client, id: u64, route: Route, key: u64, value: u64) -> Response {
    let msg = Msg::Request(Request {
        id,
        route,
        key,
        value,
    });
    match c.call(&msg, WAIT).await.expect("the service answers") {
        Msg::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Asks until a request succeeds; the simulated seconds it took. Fails after 60 s.
async fn until_ok(c: &mut Client, first_id: u64, route: Route, key: u64, value: u64) -> f64 {
    let start = madsim::time::Instant::now();
    for n in 0..60 {
        if ask(c, first_id + n, route, key, value).await.status == Status::Ok {
            return start.elapsed().as_secs_f64();
        }
        madsim::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the cluster did not recover in 60 s");
}

/// Writes through the store directly, kills it, cuts its files back to what was synced,
/// restarts it and reads: the value read back.
fn acked_write_after_a_kill(seed: u64, bug_skip_fsync: bool) -> StoreResult {
    let dir = data_dir(if bug_skip_fsync { "nofsync" } else { "fsync" }, seed);
    let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    let store_dir = dir.clone();
    let read = rt.block_on(async move {
        let handle = Handle::current();
        let server = store_node(&handle, store_dir.clone(), bug_skip_fsync);
        let client = client_node(&handle);
        client
            .spawn(async move {
                madsim::time::sleep(Duration::from_millis(100)).await;
                let mut c = connect(addr(STORE)).await;
                let write = store_msg(1, StoreOp::Write { key: 7, value: 42 });
                let written = result(c.call(&write, WAIT).await.unwrap());
                assert!(
                    matches!(written, StoreResult::Written { .. }),
                    "{written:?}"
                );
            })
            .await
            .unwrap();
        handle.kill(server.id());
        let lost = crash::lose_unsynced(&store_dir);
        assert_eq!(lost > 0, bug_skip_fsync, "bytes lost by the kill: {lost}");
        handle.restart(server.id());
        client
            .spawn(async move {
                let mut c = connect(addr(STORE)).await;
                let read = store_msg(2, StoreOp::Read { key: 7 });
                result(c.call(&read, WAIT).await.unwrap())
            })
            .await
            .unwrap()
    });
    let _ = std::fs::remove_dir_all(&dir);
    read
}

/// Kill and restart: the client reconnects and reads the acknowledged write back from the
/// disk as the kill left it.
#[test]
fn an_acknowledged_write_is_synced_so_a_kill_that_drops_unsynced_data_keeps_it() {
    for seed in seeds() {
        assert_eq!(
            acked_write_after_a_kill(seed, false),
            StoreResult::Value(Some(42))
        );
    }
}

#[test]
fn a_planted_missing_fsync_loses_the_acknowledged_write_on_a_kill_and_is_seen() {
    for seed in seeds() {
        assert_eq!(
            acked_write_after_a_kill(seed, true),
            StoreResult::Value(None),
            "without the fsync the acknowledged write is gone: the check above would fail"
        );
    }
}

/// The three-node cluster: the store and service nodes, and the client's node; `body` runs
/// inside the simulation with their handles.
fn cluster<F, Fut>(test: &str, seed: u64, body: F)
where
    F: FnOnce(Handle, NodeHandle, NodeHandle, NodeHandle) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let dir = data_dir(test, seed);
    let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    let d = dir.clone();
    rt.block_on(async move {
        let handle = Handle::current();
        let store = store_node(&handle, d.join("store"), false);
        let service = service_node(&handle, d.join("service"));
        let client = client_node(&handle);
        body(handle, store, service, client).await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes key 3 through the service: the cluster works before the fault.
async fn write_before(client: &NodeHandle) {
    client
        .spawn(async move {
            madsim::time::sleep(Duration::from_millis(100)).await;
            let mut c = connect(addr(SERVICE)).await;
            assert_eq!(ask(&mut c, 1, Route::Write, 3, 33).await.status, Status::Ok);
        })
        .await
        .unwrap();
}

/// Asks while the fault lasts: the service answers (an error, not silence) within its store
/// timeout and retries.
async fn fails_during(client: &NodeHandle) {
    client
        .spawn(async move {
            let mut c = connect(addr(SERVICE)).await;
            let r = ask(&mut c, 2, Route::Read, 3, 0).await;
            assert_ne!(r.status, Status::Ok, "the store is cut off: {r:?}");
        })
        .await
        .unwrap();
}

/// After the fault: requests succeed again and read the write made before it. Returns the
/// simulated seconds to the first success.
async fn recovers_after(client: &NodeHandle) -> f64 {
    client
        .spawn(async move {
            let mut c = connect(addr(SERVICE)).await;
            let took_s = until_ok(&mut c, 10, Route::Read, 3, 0).await;
            let r = ask(&mut c, 100, Route::Read, 3, 0).await;
            assert_eq!((r.status, r.value), (Status::Ok, Some(33)));
            took_s
        })
        .await
        .unwrap()
}

#[test]
fn the_service_reconnects_to_a_killed_and_restarted_store_and_the_cluster_serves_again() {
    for seed in seeds() {
        let dir = data_dir("restart", seed).join("store");
        cluster(
            "restart",
            seed,
            move |handle, store, _service, client| async move {
                write_before(&client).await;
                handle.kill(store.id());
                crash::lose_unsynced(&dir);
                fails_during(&client).await;
                handle.restart(store.id());
                recovers_after(&client).await;
            },
        );
    }
}

#[test]
fn a_partition_between_service_and_store_fails_requests_and_healing_it_recovers() {
    for seed in seeds() {
        cluster(
            "partition",
            seed,
            |_handle, store, service, client| async move {
                write_before(&client).await;
                let net = NetSim::current();
                // A partition: both directions cut (madsim's `disconnect2` is this).
                net.clog_link(service.id(), store.id());
                net.clog_link(store.id(), service.id());
                fails_during(&client).await;
                net.unclog_link(service.id(), store.id());
                net.unclog_link(store.id(), service.id());
                recovers_after(&client).await;
            },
        );
    }
}

#[test]
fn a_clogged_link_holds_the_store_calls_and_unclogging_recovers() {
    for seed in seeds() {
        cluster("clog", seed, |_handle, store, service, client| async move {
            write_before(&client).await;
            let net = NetSim::current();
            // One direction only: the service's calls are held, the store's answers flow.
            net.clog_link(service.id(), store.id());
            fails_during(&client).await;
            net.unclog_link(service.id(), store.id());
            recovers_after(&client).await;
        });
    }
}
