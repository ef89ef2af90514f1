//! `minitwin up`: a real cluster of `minitwin node` processes on this machine, supervised and
//! stopped by process id; scheduled kills and restarts for failover drills.

use crate::cli::UpArgs;
use minitwin_sim::cluster::{Cluster, ClusterNode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn main(args: UpArgs) -> u8 {
    crate::interrupt::install_term();
    match up(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("minitwin up: {e}");
            2
        }
    }
}

/// A `NAME@SECONDS` action.
fn parse_at(flag: &str, v: &str, cluster: &Cluster) -> Result<(String, f64), String> {
    let (name, at) = v
        .rsplit_once('@')
        .ok_or_else(|| format!("--{flag} {v}: give NAME@SECONDS, e.g. store-0@10"))?;
    let at_s: f64 = at
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            format!("--{flag} {v}: {at:?} is not a number of seconds from the start (0 or more)")
        })?;
    if !cluster.nodes.iter().any(|n| n.runs && n.name == name) {
        return Err(format!(
            "--{flag} {v}: no running node {name:?}; the cluster runs {}",
            running_names(cluster)
        ));
    }
    Ok((name.to_string(), at_s))
}

fn running_names(cluster: &Cluster) -> String {
    cluster
        .nodes
        .iter()
        .filter(|n| n.runs)
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[allow(clippy::disallowed_methods)] // supervising real processes: wall time is the point
fn now() -> Instant {
    Instant::now()
}

fn unix_ms() -> u64 {
    minitwin_driver::clock::unix_now_ns() / 1_000_000
}

struct Proc {
    node: ClusterNode,
    child: Option<Child>,
    log: PathBuf,
}

fn start(
    exe: &Path,
    config: &Path,
    node: &ClusterNode,
    epoch_ms: u64,
    log: &Path,
    level: &str,
    truncate: bool,
) -> Result<Child, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(!truncate)
        .write(true)
        .truncate(truncate)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(config)
        .args(["--name", &node.name])
        .args(["--epoch-unix-ms", &epoch_ms.to_string()])
        .args(["--log-level", level])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|e| format!("cannot start {} ({}): {e}", node.name, exe.display()))
}

/// GET `path` on `addr`: the status code, or None if nothing answered.
pub fn http_status(addr: &str, path: &str, timeout: Duration) -> Option<u16> {
    use std::net::ToSocketAddrs;
    let sock = addr.to_socket_addrs().ok()?.next()?;
    let mut s = TcpStream::connect_timeout(&sock, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid this process started and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn up(args: &UpArgs) -> Result<u8, String> {
    let cluster = Cluster::load(&args.config)?;
    let kills: Vec<(String, f64)> = args
        .kill
        .iter()
        .map(|v| parse_at("kill", v, &cluster))
        .collect::<Result<_, _>>()?;
    let restarts: Vec<(String, f64)> = args
        .restart
        .iter()
        .map(|v| parse_at("restart", v, &cluster))
        .collect::<Result<_, _>>()?;
    if let Some(s) = args.for_s {
        if !(s.is_finite() && s > 0.0) {
            return Err(format!("--for {s}: give a positive number of seconds"));
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    if args.fresh && cluster.data_dir.exists() {
        std::fs::remove_dir_all(&cluster.data_dir)
            .map_err(|e| format!("--fresh: {}: {e}", cluster.data_dir.display()))?;
    }
    let logs = args.logs.clone().unwrap_or_else(|| {
        cluster
            .data_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join("logs")
    });
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let epoch_ms = cluster.epoch_unix_ms.unwrap_or_else(unix_ms);
    let prometheus = logs.join("prometheus.yml");
    std::fs::write(&prometheus, prometheus_config(&cluster))
        .map_err(|e| format!("{}: {e}", prometheus.display()))?;
    let mut procs = Vec::new();
    for node in cluster.nodes.iter().filter(|n| n.runs) {
        let log = logs.join(format!("{}.jsonl", node.name));
        let child = start(
            &exe,
            &args.config,
            node,
            epoch_ms,
            &log,
            &args.log_level,
            args.fresh,
        );
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                stop_all(&mut procs, cluster.drain_s);
                return Err(e);
            }
        };
        procs.push(Proc {
            node: node.clone(),
            child: Some(child),
            log,
        });
    }
    let started = now();
    // Every node answers /healthz, or the cluster is stopped and the culprit named.
    for p in &mut procs {
        let mut healthy = false;
        while started.elapsed() < Duration::from_secs(15) {
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let name = p.node.name.clone();
                    let log = p.log.clone();
                    stop_all(&mut procs, cluster.drain_s);
                    return Err(format!(
                        "{name} exited at start ({status}); its log: {}",
                        log.display()
                    ));
                }
            }
            if http_status(&p.node.http_addr, "/healthz", Duration::from_millis(200)) == Some(200) {
                healthy = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !healthy {
            let name = p.node.name.clone();
            stop_all(&mut procs, cluster.drain_s);
            return Err(format!("{name} did not answer /healthz in 15 s"));
        }
    }
    say!(
        "cluster {} ({}): {} processes up in {:.1} s, clock epoch {epoch_ms} (Unix ms)",
        cluster.path.display(),
        cluster.scenario_path.display(),
        procs.len(),
        started.elapsed().as_secs_f64()
    );
    say!(
        "  {:<14} {:<13} {:>7}  {:<16} {:<16}",
        "node",
        "role",
        "pid",
        "peers at",
        "http at"
    );
    for p in &procs {
        say!(
            "  {:<14} {:<13} {:>7}  {:<16} {:<16}",
            p.node.name,
            p.node.role.unwrap_or("-"),
            p.child.as_ref().map_or(0, Child::id),
            p.node.peer_addr,
            p.node.http_addr
        );
    }
    say!(
        "  logs: {}/<node>.jsonl; Ctrl-C stops every process",
        logs.display()
    );
    let mut pending_kills = kills;
    let mut pending_restarts = restarts;
    let t0 = now();
    let mut code = 0;
    loop {
        let t = t0.elapsed().as_secs_f64();
        if crate::interrupt::requested() || args.for_s.is_some_and(|f| t >= f) {
            break;
        }
        pending_kills.retain(|(name, at)| {
            if t < *at {
                return true;
            }
            if let Some(p) = procs.iter_mut().find(|p| &p.node.name == name) {
                if let Some(c) = p.child.as_mut() {
                    signal(c, libc::SIGKILL);
                    let _ = c.wait();
                    say!(
                        "+{t:.1} s: killed {name} (SIGKILL, pid {}) at Unix ms {}",
                        c.id(),
                        unix_ms()
                    );
                }
                p.child = None;
            }
            false
        });
        let mut failed_restart = None;
        pending_restarts.retain(|(name, at)| {
            if t < *at {
                return true;
            }
            if let Some(p) = procs.iter_mut().find(|p| &p.node.name == name) {
                if p.child.is_none() {
                    match start(
                        &exe,
                        &args.config,
                        &p.node,
                        epoch_ms,
                        &p.log,
                        &args.log_level,
                        false,
                    ) {
                        Ok(c) => {
                            say!("+{t:.1} s: restarted {name} (pid {})", c.id());
                            p.child = Some(c);
                        }
                        Err(e) => failed_restart = Some(e),
                    }
                }
            }
            false
        });
        if let Some(e) = failed_restart {
            eprintln!("minitwin up: {e}");
            code = 1;
            break;
        }
        for p in &mut procs {
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    eprintln!(
                        "minitwin up: +{t:.1} s: {} exited on its own ({status}); its log: {}",
                        p.node.name,
                        p.log.display()
                    );
                    p.child = None;
                    code = 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_all(&mut procs, cluster.drain_s);
    Ok(code)
}

/// A Prometheus configuration that scrapes every running node's `/metrics` each second,
/// labelled with the node's name and role.
pub fn prometheus_config(cluster: &Cluster) -> String {
    let mut out = format!(
        "# Written by `minitwin up {}`: every node's /metrics.\nglobal:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: minitwin\n    static_configs:\n",
        cluster.path.display()
    );
    for n in cluster.nodes.iter().filter(|n| n.runs) {
        out.push_str(&format!(
            "      - targets: [\"{}\"]\n        labels: {{ node: \"{}\", role: \"{}\" }}\n",
            n.http_addr,
            n.name,
            n.role.unwrap_or("-")
        ));
    }
    out
}

/// SIGTERM to every process still running, then SIGKILL to what outlives the drain.
fn stop_all(procs: &mut [Proc], drain_s: f64) {
    for p in procs.iter() {
        if let Some(c) = &p.child {
            signal(c, libc::SIGTERM);
        }
    }
    let deadline = now() + Duration::from_secs_f64(drain_s + 2.0);
    for p in procs.iter_mut() {
        let Some(c) = p.child.as_mut() else { continue };
        loop {
            match c.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("minitwin up: {} ended with {status}", p.node.name);
                    }
                    break;
                }
                Ok(None) if now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    signal(c, libc::SIGKILL);
                    let _ = c.wait();
                    eprintln!(
                        "minitwin up: {} did not stop within the drain; killed (pid {})",
                        p.node.name,
                        c.id()
                    );
                    break;
                }
            }
        }
        p.child = None;
    }
}
