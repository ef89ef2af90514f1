//! The production I/O path (framing, connections, the node loop, the real log file) under
//! madsim's deterministic network and clock. Compiled only with `RUSTFLAGS="--cfg madsim"`:
//!
//!     RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p minitwin-driver
//!
//! Seeds: `MINITWIN_MADSIM_SEEDS` (comma-separated), default 1,2,3.
#![cfg(madsim)]

use madsim::runtime::{Handle, Runtime};
use minitwin_components::msg::{StoreOp, StoreRequest, StoreResponse, StoreResult};
use minitwin_components::store::{Store, StoreConfig};
use minitwin_components::Msg;
use minitwin_driver::{spawn_node, Client, NodeConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn seeds() -> Vec<u64> {
    std::env::var("MINITWIN_MADSIM_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3])
}

fn store_node(dir: std::path::PathBuf) -> NodeConfig {
    NodeConfig::new(0, "store-0", "10.0.0.1:7000".parse().unwrap(), dir)
}

fn write(id: u64, key: u64, value: u64) -> Msg {
    Msg::Store(StoreRequest {
        id,
        op: StoreOp::Write { key, value },
    })
}

fn read(id: u64, key: u64) -> Msg {
    Msg::Store(StoreRequest {
        id,
        op: StoreOp::Read { key },
    })
}

fn result(m: Msg) -> StoreResult {
    match m {
        Msg::StoreReply(StoreResponse { result, .. }) => result,
        other => panic!("expected a store reply, got {other:?}"),
    }
}

#[test]
fn a_write_survives_a_server_kill_and_restart_and_the_client_reconnects() {
    for seed in seeds() {
        let dir =
            std::env::temp_dir().join(format!("minitwin-madsim-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
        let server_dir = dir.clone();
        rt.block_on(async move {
            let handle = Handle::current();
            let server = handle
                .create_node()
                .name("store")
                .ip("10.0.0.1".parse().unwrap())
                .init(move || {
                    let dir = server_dir.clone();
                    async move {
                        let node = spawn_node(
                            store_node(dir),
                            Box::new(Store::new(StoreConfig::default())),
                        )
                        .await
                        .expect("the store node starts");
                        std::future::pending::<()>().await;
                        drop(node);
                    }
                })
                .build();
            let client = handle
                .create_node()
                .name("client")
                .ip("10.0.0.2".parse().unwrap())
                .build();
            let addr: SocketAddr = "10.0.0.1:7000".parse().unwrap();
            client
                .spawn(async move {
                    madsim::time::sleep(Duration::from_millis(100)).await;
                    let mut c = Client::connect(addr, 99).await.expect("connect");
                    assert_eq!(
                        result(c.call(&write(1, 7, 42), WAIT).await.unwrap()),
                        StoreResult::Written { lsn: 1, epoch: 1 }
                    );
                    assert_eq!(
                        result(c.call(&read(2, 7), WAIT).await.unwrap()),
                        StoreResult::Value(Some(42))
                    );
                })
                .await
                .unwrap();
            handle.kill(server.id());
            handle.restart(server.id());
            client
                .spawn(async move {
                    let mut tries = 0;
                    let mut c = loop {
                        madsim::time::sleep(Duration::from_millis(200)).await;
                        match Client::connect(addr, 99).await {
                            Ok(c) => break c,
                            Err(e) if tries < 20 => {
                                tries += 1;
                                let _ = e;
                            }
                            Err(e) => panic!("no reconnect after restart: {e}"),
                        }
                    };
                    assert_eq!(
                        result(c.call(&read(3, 7), WAIT).await.unwrap()),
                        StoreResult::Value(Some(42))
                    );
                })
                .await
                .unwrap();
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
