//! `minitwin node`: one node of a real cluster. The cluster file names a scenario; the node's
//! component comes from the simulator's own factory for it ([`minitwin_sim::world::factories`])
//! and runs on the production driver (tokio, TCP, a log file), with an HTTP front.

use crate::cli::NodeArgs;
use minitwin_driver::clock::unix_now_ns;
use minitwin_driver::tls::{Guard, NodeTls};
use minitwin_driver::{spawn_node, NodeConfig};
use minitwin_sim::cluster::{Cluster, ClusterNode, ControlPlane};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub fn main(args: NodeArgs) -> u8 {
    let level = match args.log_level.parse::<tracing::Level>() {
        Ok(l) => l,
        Err(_) => {
            eprintln!(
                "minitwin node: --log-level {}: give error, warn, info, debug or trace",
                args.log_level
            );
            return 2;
        }
    };
    let cluster = match Cluster::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("minitwin node: {e}");
            return 2;
        }
    };
    let node = match cluster.pick(args.name.as_deref(), args.role.as_deref(), args.index) {
        Ok(n) => n.clone(),
        Err(e) => {
            eprintln!("minitwin node: {e}");
            return 2;
        }
    };
    if node.role.is_none() {
        eprintln!(
            "minitwin node: {} is the twin's {} (an instrument of the simulation); in production the users are `minitwin load`",
            node.name, node.plan_role
        );
        return 2;
    }
    if node.role == Some("scaler") && cluster.control_plane == ControlPlane::External {
        eprintln!(
            "minitwin node: {} is the twin's control plane, and {} says control_plane = \"external\": another orchestrator starts the pods there (remove the line to run the twin's)",
            node.name,
            cluster.path.display()
        );
        return 2;
    }
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_current_span(false)
        .with_writer(std::io::stderr)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
    if !(1..=256).contains(&args.threads) {
        eprintln!("minitwin node: --threads {}: give 1 to 256", args.threads);
        return 2;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("minitwin node: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve(&cluster, &node, &args)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(node = %node.name, error = %e, "stopped");
            eprintln!("minitwin node {}: {e}", node.name);
            1
        }
    }
}

/// Where to bind for `addr`: its own IP, or every interface when it names a host.
fn bind_addr(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    let port = addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .ok_or_else(|| format!("{addr}: not host:port"))?;
    Ok(SocketAddr::from(([0, 0, 0, 0], port)))
}

async fn serve(cluster: &Cluster, node: &ClusterNode, args: &NodeArgs) -> Result<(), String> {
    // Every node of the plan but the users, pod slots included (a slot that is not running
    // refuses, as a down upstream does); names are looked up when dialled.
    let peers: BTreeMap<u32, String> = cluster
        .nodes
        .iter()
        .filter(|n| n.role.is_some() && n.id != node.id)
        .map(|n| (n.id, n.peer_addr.clone()))
        .collect();
    let epoch_ms = args.epoch_unix_ms.or(cluster.epoch_unix_ms);
    let now_ms = unix_now_ns() / 1_000_000;
    if let Some(e) = epoch_ms.filter(|&e| e > now_ms + 60_000) {
        return Err(format!(
            "the cluster's clock epoch {e} (Unix ms) is {} s after this machine's clock: give an epoch before the cluster started (or check the clock)",
            (e - now_ms) / 1000
        ));
    }
    if epoch_ms.is_none() {
        tracing::warn!("no cluster clock epoch (--epoch-unix-ms or epoch_unix_ms): this node's timestamps count from its own start");
    }
    let mut config = NodeConfig::new(
        node.id,
        &node.name,
        bind_addr(&node.peer_addr)?,
        cluster.data_dir.join(&node.name),
    );
    config.peers = peers;
    // A production process picks its seed from the clock.
    config.seed = args.seed.unwrap_or_else(unix_now_ns);
    config.epoch_unix_ns = epoch_ms.map(|ms| ms.saturating_mul(1_000_000));
    if let Some(t) = &cluster.tls {
        config.tls = Some(tls_of(cluster, t, node)?);
    }
    let component = (cluster.factories()[node.id as usize])();
    let handle = spawn_node(config, component)
        .await
        .map_err(|e| format!("cannot start on {}: {e}", node.peer_addr))?;
    let http_bind = bind_addr(&node.http_addr)?;
    let http = tokio::net::TcpListener::bind(http_bind)
        .await
        .map_err(|e| format!("cannot serve HTTP on {}: {e}", node.http_addr))?;
    let role = node.role.unwrap_or("node");
    tracing::info!(node = %node.name, id = node.id, role, mtls = cluster.tls.is_some(), peers_at = %node.peer_addr, http_at = %node.http_addr, scenario = %cluster.scenario_path.display(), "started");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let drain = Duration::from_secs_f64(cluster.drain_s);
    let front = tokio::spawn(minitwin_driver::http::serve(
        http,
        handle.link(),
        minitwin_driver::http::FrontConfig::new(role, role == "gateway", drain),
        stop_rx,
    ));
    let signal = shutdown_signal().await;
    tracing::info!(node = %node.name, signal, drain_s = cluster.drain_s, "draining");
    let _ = stop_tx.send(());
    let left = front.await.unwrap_or(0);
    handle.shutdown().await;
    tracing::info!(node = %node.name, connections_cut = left, "stopped");
    Ok(())
}

/// The node's certificate and the cluster's access policy (the scenario's `[security]`, else
/// the twin's designed flows, enforced).
fn tls_of(
    cluster: &Cluster,
    t: &minitwin_sim::cluster::ClusterTls,
    node: &ClusterNode,
) -> Result<(Arc<NodeTls>, Arc<Guard>), String> {
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let roles: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.plan_role.to_string())
        .collect();
    let tls = NodeTls::load(
        &t.ca(),
        &t.cert(&node.name),
        &t.key(&node.name),
        &t.domain,
        names,
    )
    .map_err(|e| {
        format!(
            "{e} (make the certificates with `minitwin certs {}`)",
            cluster.path.display()
        )
    })?;
    let policy = cluster.scenario.security.clone().unwrap_or_default();
    Ok((
        Arc::new(tls),
        Arc::new(Guard::new(&policy, &roles, node.id)),
    ))
}

/// Waits for SIGTERM or Ctrl-C (SIGINT); names the one that came.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
