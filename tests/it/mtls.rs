//! Mutual TLS between real nodes over loopback: a node's identity is its certificate's, the
//! twin's access policy decides what each proven role may send, and every refusal (no
//! certificate, a certificate of another cluster, a role not allowed, a claimed identity the
//! certificate does not prove) is refused and counted under the twin's metric names.

use minitwin_components::msg::{StoreOp, StoreRequest, StoreResponse, StoreResult};
use minitwin_components::security::SecurityConfig;
use minitwin_components::store::{Store, StoreConfig};
use minitwin_components::Msg;
use minitwin_driver::tls::{dev_certs, Guard, NodeTls};
use minitwin_driver::{spawn_node, Client, NodeConfig};
use std::sync::Arc;
use std::time::Duration;

const DOMAIN: &str = "test.minitwin";

fn names() -> Vec<String> {
    ["gateway-0", "service-0", "store-0"]
        .map(String::from)
        .to_vec()
}

fn roles() -> Vec<String> {
    ["gateway", "service", "store"].map(String::from).to_vec()
}

fn write(id: u64) -> Msg {
    Msg::Store(StoreRequest {
        id,
        op: StoreOp::Write { key: 1, value: id },
    })
}

fn refused(metrics: &str, kind: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("security_refused_{kind}_total ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn unauthenticated_foreign_unauthorized_and_impersonating_peers_are_refused_and_counted() {
    let nodes: Vec<(String, String)> = names().into_iter().zip(roles()).collect();
    let ours = dev_certs(DOMAIN, &nodes).unwrap();
    let theirs = dev_certs(DOMAIN, &nodes).unwrap(); // another cluster: another CA
    let tls = |certs: &minitwin_driver::tls::DevCerts, ca: &str, node: usize| {
        let (_, cert, key) = &certs.nodes[node];
        Arc::new(NodeTls::new(ca, cert, key, DOMAIN, names()).unwrap())
    };
    let dir = crate::scratch("mtls");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = NodeConfig::new(
            2,
            "store-0",
            "127.0.0.1:0".parse().unwrap(),
            dir.to_path_buf(),
        );
        let guard = Arc::new(Guard::new(&SecurityConfig::default(), &roles(), 2));
        config.tls = Some((tls(&ours, &ours.ca_cert_pem, 2), guard));
        let node = spawn_node(config, Box::new(Store::new(StoreConfig::default())))
            .await
            .unwrap();
        let addr = node.local_addr();
        let wait = Duration::from_secs(5);

        // No certificate: plain TCP speaking the node protocol. The handshake fails.
        assert!(Client::connect(addr, 1).await.is_err());
        // A certificate of another cluster (trusting ours, presenting theirs).
        let foreign = tls(&theirs, &ours.ca_cert_pem, 1);
        match Client::connect_tls(addr, 1, &foreign, 2).await {
            Err(_) => {}
            Ok(mut c) => assert!(
                c.call(&write(1), wait).await.is_err(),
                "a foreign certificate was served"
            ),
        }
        // A gateway may not write to a store: its proven role is not allowed.
        let gateway = tls(&ours, &ours.ca_cert_pem, 0);
        let mut c = Client::connect_tls(addr, 0, &gateway, 2).await.unwrap();
        assert!(
            c.call(&write(2), Duration::from_millis(500)).await.is_err(),
            "refused: no answer"
        );
        // A service holding its own certificate but claiming to be the gateway in its hello:
        // the certificate proves the service, not the claim.
        let service = tls(&ours, &ours.ca_cert_pem, 1);
        let mut c = Client::connect_tls(addr, 0, &service, 2).await.unwrap();
        assert!(
            c.call(&write(3), Duration::from_millis(500)).await.is_err(),
            "refused: no answer"
        );
        // The service as itself: served.
        let mut c = Client::connect_tls(addr, 1, &service, 2).await.unwrap();
        match c.call(&write(4), wait).await.unwrap() {
            Msg::StoreReply(StoreResponse {
                result: StoreResult::Written { .. },
                ..
            }) => {}
            other => panic!("the service's write: {other:?}"),
        }
        let metrics = node.link().metrics_text().await.unwrap();
        assert_eq!(
            refused(&metrics, "unauthenticated"),
            3,
            "no certificate, a foreign one, an unproven claim:\n{metrics}"
        );
        assert_eq!(
            refused(&metrics, "unauthorized"),
            1,
            "the gateway's write:\n{metrics}"
        );
        node.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
