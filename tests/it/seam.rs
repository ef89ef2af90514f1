//! The seam proven outside the simulator: the same store state machine, unchanged, serves over
//! loopback TCP with a real log file under the tokio production driver.

use minitwin_components::msg::{StoreOp, StoreRequest, StoreResponse, StoreResult};
use minitwin_components::store::{Store, StoreConfig};
use minitwin_components::Msg;
use minitwin_driver::{spawn_node, Client, NodeConfig};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn data_dir(test: &str) -> crate::Scratch {
    crate::scratch(&format!("seam-{test}"))
}

fn config(dir: &std::path::Path) -> NodeConfig {
    NodeConfig::new(
        0,
        "store-0",
        "127.0.0.1:0".parse().unwrap(),
        dir.to_path_buf(),
    )
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn store_msg(id: u64, op: StoreOp) -> Msg {
    Msg::Store(StoreRequest { id, op })
}

fn result(msg: Msg) -> (u64, StoreResult) {
    match msg {
        Msg::StoreReply(StoreResponse { id, result }) => (id, result),
        other => panic!("expected a store reply, got {other:?}"),
    }
}

#[test]
fn the_store_state_machine_serves_a_write_and_a_read_over_loopback_tcp() {
    let dir = data_dir("write-read");
    block_on(async {
        let node = spawn_node(config(&dir), Box::new(Store::new(StoreConfig::default())))
            .await
            .unwrap();
        let mut client = Client::connect(node.local_addr(), 99).await.unwrap();
        let written = client
            .call(&store_msg(1, StoreOp::Write { key: 7, value: 42 }), WAIT)
            .await
            .unwrap();
        assert_eq!(
            result(written),
            (1, StoreResult::Written { lsn: 1, epoch: 1 })
        );
        let read = client
            .call(&store_msg(2, StoreOp::Read { key: 7 }), WAIT)
            .await
            .unwrap();
        assert_eq!(result(read), (2, StoreResult::Value(Some(42))));
        node.shutdown().await;
    });
}

#[test]
fn a_restarted_node_reads_its_acknowledged_write_back_from_the_real_disk() {
    let dir = data_dir("restart");
    block_on(async {
        let node = spawn_node(config(&dir), Box::new(Store::new(StoreConfig::default())))
            .await
            .unwrap();
        let mut client = Client::connect(node.local_addr(), 99).await.unwrap();
        client
            .call(&store_msg(1, StoreOp::Write { key: 7, value: 42 }), WAIT)
            .await
            .unwrap();
        node.shutdown().await;

        let node = spawn_node(config(&dir), Box::new(Store::new(StoreConfig::default())))
            .await
            .unwrap();
        let mut client = Client::connect(node.local_addr(), 99).await.unwrap();
        let read = client
            .call(&store_msg(2, StoreOp::Read { key: 7 }), WAIT)
            .await
            .unwrap();
        assert_eq!(result(read), (2, StoreResult::Value(Some(42))));
        node.shutdown().await;
    });
}

#[test]
fn garbage_from_one_peer_closes_only_that_connection() {
    let dir = data_dir("garbage");
    block_on(async {
        let node = spawn_node(config(&dir), Box::new(Store::new(StoreConfig::default())))
            .await
            .unwrap();
        let mut bad = Client::connect(node.local_addr(), 50).await.unwrap();
        bad.send_raw(&[3, 0, 0, 0, 0xee, 0xee, 0xee]).await.unwrap();
        let answer = bad.recv(WAIT).await;
        assert!(
            answer.is_err(),
            "the node closes a connection that sent garbage: {answer:?}"
        );
        let mut no_hello = tokio::net::TcpStream::connect(node.local_addr())
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut no_hello, b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut good = Client::connect(node.local_addr(), 51).await.unwrap();
        let written = good
            .call(&store_msg(1, StoreOp::Write { key: 1, value: 2 }), WAIT)
            .await
            .unwrap();
        assert_eq!(result(written).0, 1);
        for _ in 0..100 {
            if node.protocol_errors() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(node.protocol_errors(), 2, "both bad peers were noticed");
        node.shutdown().await;
    });
}

#[test]
fn a_service_node_calls_a_store_node_over_tcp_and_answers_its_client() {
    use minitwin_components::msg::{Request, Response, Route, Status};
    use minitwin_components::service::{Service, ServiceConfig};
    let dir = data_dir("two-nodes");
    block_on(async {
        let store_cfg = NodeConfig {
            id: 1,
            name: "store-0".into(),
            ..config(&dir)
        };
        let store = spawn_node(store_cfg, Box::new(Store::new(StoreConfig::default())))
            .await
            .unwrap();
        let mut peers = BTreeMap::new();
        peers.insert(1, store.local_addr().to_string());
        let service_cfg = NodeConfig {
            id: 0,
            name: "service-0".into(),
            peers,
            ..config(&dir)
        };
        let service = spawn_node(
            service_cfg,
            Box::new(Service::new(ServiceConfig::default(), &[1])),
        )
        .await
        .unwrap();
        let mut client = Client::connect(service.local_addr(), 99).await.unwrap();
        let write = Msg::Request(Request {
            id: 5,
            route: Route::Write,
            key: 3,
            value: 33,
        });
        let answer = client.call(&write, WAIT).await.unwrap();
        assert_eq!(
            answer,
            Msg::Response(Response {
                id: 5,
                status: Status::Ok,
                value: None
            })
        );
        let read = Msg::Request(Request {
            id: 6,
            route: Route::Read,
            key: 3,
            value: 0,
        });
        let answer = client.call(&read, WAIT).await.unwrap();
        assert_eq!(
            answer,
            Msg::Response(Response {
                id: 6,
                status: Status::Ok,
                value: Some(33)
            })
        );
        service.shutdown().await;
        store.shutdown().await;
    });
}

/// The driver's madsim suite, built with `--cfg madsim` in a target dir of its own inside this
/// build's (`target/madsim`), so that the one README test command runs both worlds. Built
/// without incremental caches and with line tables only: a third of the disk (CI's disk is not
/// large). Skip with `MINITWIN_SKIP_MADSIM=1`.
#[test]
fn the_production_io_path_passes_its_madsim_tests() {
    if std::env::var_os("MINITWIN_SKIP_MADSIM").is_some() {
        eprintln!("skipped: MINITWIN_SKIP_MADSIM is set");
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let flags = format!(
        "{} --cfg madsim",
        std::env::var("RUSTFLAGS").unwrap_or_default()
    );
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let madsim_target = target
        .parent()
        .expect("target/tmp has a parent")
        .join("madsim");
    let out = std::process::Command::new(cargo)
        .current_dir(crate::root())
        .args(["test", "-p", "minitwin-driver", "--test", "madsim_io"])
        .env("RUSTFLAGS", flags.trim())
        .env("CARGO_TARGET_DIR", madsim_target)
        .env("CARGO_INCREMENTAL", "0")
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .env(
            "MINITWIN_MADSIM_SEEDS",
            std::env::var("MINITWIN_MADSIM_SEEDS").unwrap_or_else(|_| "1,2,3".into()),
        )
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "madsim suite failed:\n{stdout}\n{stderr}"
    );
    let ran = stdout
        .lines()
        .any(|l| l.starts_with("test result: ok.") && !l.contains(" 0 passed"));
    assert!(ran, "the madsim suite ran no test:\n{stdout}");
}

/// A client that sends half a request's headers and waits (slowloris) is cut off after the
/// front's header-read timeout; a whole request on another connection is served meanwhile.
#[test]
fn an_http_client_that_never_finishes_its_headers_is_cut_off_and_others_are_served() {
    use minitwin_driver::http::{serve, FrontConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = data_dir("slow-headers");
    block_on(async {
        let node = spawn_node(config(&dir), Box::new(Store::new(StoreConfig::default())))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let mut front = FrontConfig::new("store", false, Duration::from_secs(1));
        front.header_read_timeout = Duration::from_millis(300);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let served = tokio::spawn(serve(listener, node.link(), front, stopped));
        let mut slow = tokio::net::TcpStream::connect(at).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut whole = tokio::net::TcpStream::connect(at).await.unwrap();
        whole
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        whole.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok store\n"), "{answer}");
        let mut rest = Vec::new();
        let cut = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(
            matches!(cut, Ok(Ok(_)) | Ok(Err(_))),
            "the slow client was still connected after 5 s"
        );
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            !rest.contains(" 200 "),
            "the half request was answered: {rest}"
        );
        let _ = stop.send(());
        assert_eq!(served.await.unwrap(), 0, "drained");
        node.shutdown().await;
    });
}
