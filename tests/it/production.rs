//! The production binaries: `minitwin up` starts the loopback cluster as real processes,
//! `minitwin load` drives it, a shard primary is SIGKILLed and the failover shows in the logs
//! and metrics; every process is gone afterwards. Bad cluster files and flags are refused.

use crate::{minitwin, root};
use minitwin_sim::cluster::Cluster;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A copy of the loopback cluster file with its own ports and data directory (tests of
/// several checkouts may run at once).
fn cluster_file(test: &str, base: u16) -> (PathBuf, crate::Scratch) {
    cluster_of(
        "deploy/loopback/scenario.toml",
        test,
        (base, base + 100),
        "drain_s = 2.0\n",
    )
}

/// A cluster file beside a copy of `scenario` (a path under the repository), peers from
/// `ports.0` and HTTP from `ports.1`, with `extra` lines.
fn cluster_of(
    scenario: &str,
    test: &str,
    ports: (u16, u16),
    extra: &str,
) -> (PathBuf, crate::Scratch) {
    let dir = crate::scratch(&format!("prod-{test}"));
    std::fs::copy(root().join(scenario), dir.join("scenario.toml")).unwrap();
    let path = dir.join("cluster.toml");
    let (base, http) = ports;
    std::fs::write(
        &path,
        format!(
            "scenario = \"scenario.toml\"\ndata_dir = \"data\"\nbase_port = {base}\nhttp_base_port = {http}\n{extra}"
        ),
    )
    .unwrap();
    (path, dir)
}

/// A port base unlikely to collide: derived from the process id, below Linux's ephemeral
/// range (32,768 up), where other tests' outgoing connections take their ports.
fn base_port() -> u16 {
    21_000 + (std::process::id() % 40) as u16 * 100
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// `minitwin load` on `cluster` at 100 requests a second for `for_s`, no warm-up, its CSV in
/// `dir`: what it printed (it must succeed).
fn load_for(cluster: &str, for_s: &str, dir: &Path) -> String {
    let load = minitwin(&[
        "load",
        cluster,
        "--for",
        for_s,
        "--rate",
        "100",
        "--warmup-s",
        "0",
        "--out",
        dir.join("load.csv").to_str().unwrap(),
    ]);
    let printed = String::from_utf8_lossy(&load.stdout).into_owned();
    assert!(
        load.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&load.stderr)
    );
    printed
}

/// A series' value in a node's `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `minitwin up ARGS` started, read up to its table of nodes: the process, the rest of its
/// output, and the table.
fn start_up(args: &[&str]) -> (Stopped, BufReader<std::process::ChildStdout>, String) {
    let mut up = Stopped(
        Command::new(env!("CARGO_BIN_EXE_minitwin"))
            .arg("up")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(up.0.stdout.take().unwrap());
    let mut table = String::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "up ended early: {table}"
        );
        table.push_str(&line);
        if line.contains("Ctrl-C stops every process") {
            break;
        }
    }
    (up, out, table)
}

impl Stopped {
    /// Waits for `up` to end by itself: the rest of its output and its stderr, after checking
    /// it succeeded.
    fn finish(
        mut self,
        mut out: BufReader<std::process::ChildStdout>,
        table: &str,
    ) -> (String, String) {
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let status = self.0.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        assert!(status.success(), "{table}{rest}{err}");
        (rest, err)
    }
}

/// A child process stopped with SIGTERM (and waited for) however the test ends: a failing test
/// leaves no process behind (`up` stops its nodes on SIGTERM; a node drains and exits).
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn a_real_loopback_cluster_serves_fails_over_and_stops_every_process() {
    let base = base_port();
    let (cluster, dir) = cluster_file("failover", base);
    let cluster_s = cluster.to_str().unwrap();
    let (up, out, table) = start_up(&[cluster_s, "--fresh", "--for", "9", "--kill", "store-0@4"]);
    let pids: Vec<u32> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 12, "{table}");
    let gateway_http = format!("127.0.0.1:{}", base + 100);
    let (status, body) = http_get(&gateway_http, "/healthz").unwrap();
    assert_eq!((status, body.trim()), (200, "ok gateway"));
    // Garbage on the HTTP port, and garbage on a node's peer port: answered or closed, and
    // the nodes serve on.
    let mut junk = std::net::TcpStream::connect(&gateway_http).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    junk.write_all(b"\x00\xffGARBAGE / HTTP/9\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = junk.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let mut junk = std::net::TcpStream::connect(format!("127.0.0.1:{}", base + 3)).unwrap();
    junk.write_all(b"MTW\x02\x07\x00\x00\x00\xff\xff\xff\xff")
        .unwrap();
    let (status, _) = http_get(&gateway_http, "/users/1").unwrap();
    assert_eq!(status, 200);
    let load_out = load_for(cluster_s, "6", &dir);
    let sent: u64 = load_out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("requests"))
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{load_out}"));
    assert!(sent > 400, "{load_out}");
    let (status, metrics) = http_get(&gateway_http, "/metrics").unwrap();
    assert_eq!(status, 200);
    let answered =
        metric(&metrics, "gateway_requests_total").unwrap_or_else(|| panic!("{metrics}"));
    assert!(answered >= sent as f64, "{answered} < {sent}");
    assert!(metrics.contains("# TYPE gateway_upstream_latency_ns summary"));
    // The failover in the replica's metrics (store-0-r1 is node 4): promoted once.
    let replica_http = format!("127.0.0.1:{}", base + 100 + 4);
    let mut promotions = 0.0;
    for _ in 0..40 {
        let (_, m) = http_get(&replica_http, "/metrics").unwrap();
        promotions = metric(&m, "store_promotions_total").unwrap_or(0.0);
        if promotions > 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(promotions, 1.0, "store-0-r1 was promoted once");
    let (rest, err) = up.finish(out, &table);
    assert!(rest.contains("killed store-0 (SIGKILL"), "{rest}");
    assert!(
        !err.contains("did not stop") && !err.contains("ended with"),
        "{err}"
    );
    for pid in pids {
        assert!(!pid_alive(pid), "process {pid} outlived `minitwin up`");
    }
    // The failover, in the replica's JSON log and the gateway's access events.
    let logs = dir.join("logs");
    let replica = std::fs::read_to_string(logs.join("store-0-r1.jsonl")).unwrap();
    assert!(replica.contains("promoted to primary"), "{replica}");
    let gateway = std::fs::read_to_string(logs.join("gateway-0.jsonl")).unwrap();
    assert!(
        gateway.contains("\"target\":\"minitwin::access\"") && gateway.contains("\"request_id\":")
    );
    assert!(
        gateway.contains("\"signal\":\"SIGTERM\"") && gateway.contains("\"stopped\""),
        "drained on SIGTERM"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_cluster_files_and_flags_are_refused_naming_what_to_fix() {
    let (cluster, dir) = cluster_file("bad", base_port() + 50);
    let c = cluster.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["node", "--config", "nope.toml", "--role", "store"],
            "nope.toml",
        ),
        (
            &["node", "--config", c, "--role", "db"],
            "the roles are gateway, service, store",
        ),
        (
            &["node", "--config", c, "--role", "store", "--index", "7"],
            "has 4 store node(s)",
        ),
        (
            &["node", "--config", c, "--name", "client"],
            "`minitwin load`",
        ),
        (
            &["up", c, "--kill", "store-9@3"],
            "no running node \"store-9\"",
        ),
        (&["load", c, "--mix", "1,1,1"], "adding up to 1"),
    ];
    for (args, want) in cases {
        let out = minitwin(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    std::fs::write(&cluster, "scenario = \"scenario.toml\"\nbase_prot = 1\n").unwrap();
    let out = minitwin(&["up", c]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.toml:2") && err.contains("base_prot"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A cluster file for a shipped scenario, its own ports and data directory.
fn cluster_for(scenario: &str, test: &str, base: u16) -> (PathBuf, crate::Scratch) {
    let dir = crate::scratch(&format!("prod-{test}"));
    let path = dir.join("cluster.toml");
    let scenario = root().join("scenarios").join(format!("{scenario}.toml"));
    std::fs::write(
        &path,
        format!(
            "scenario = {:?}\ndata_dir = \"data\"\nbase_port = {base}\nhttp_base_port = {}\ndrain_s = 1.0\n",
            scenario.to_str().unwrap(),
            base + 100
        ),
    )
    .unwrap();
    (path, dir)
}

#[test]
fn every_role_runs_as_a_real_process_and_stops_cleanly() {
    // Together these shipped scenarios have every role `minitwin node --role` knows.
    let cases = [
        ("mirror-burst", "mirror"),
        ("archive-from-store", "archiver"),
        ("autoscale-step", "scaler"),
        ("monitored-faults", "monitor"),
        ("reshard-1-to-4", "resharder"),
        ("session-failover", "session"),
    ];
    // Ports 25,200-32,500: apart from the other tests' 21,000-25,100, below the ephemeral range.
    let base = 25_200 + (std::process::id() % 5) as u16 * 1_500;
    for (i, (scenario, role)) in cases.iter().enumerate() {
        let (cluster, dir) = cluster_for(scenario, role, base + i as u16 * 200);
        let out = minitwin(&["up", cluster.to_str().unwrap(), "--fresh", "--for", "2"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{scenario}: {text}{err}");
        let roles: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert!(roles.contains(role), "{scenario}: no {role} in {text}");
        assert!(
            !err.contains("did not stop") && !err.contains("ended with"),
            "{scenario}: {err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The Kubernetes deployment's arrangement on loopback: `control_plane = "external"` (the
/// HPA starts the service pods, not the twin). The gateway routes to every service slot, finds
/// the empty ones down, and serves every request; a pod started later by hand (as the HPA
/// would) gets traffic without anyone telling the gateway; the twin's control plane is not
/// started and refuses to be.
#[test]
fn with_an_external_control_plane_the_gateway_finds_a_service_pod_started_later() {
    // Ports 15,000-18,999: apart from the other tests', below the ephemeral range.
    let base = 15_000 + (std::process::id() % 40) as u16 * 100;
    let (cluster, dir) = cluster_of(
        "deploy/k8s/scenario.toml",
        "external",
        (base, base + 50),
        "drain_s = 1.0\ncontrol_plane = \"external\"\n",
    );
    let c = cluster.to_str().unwrap();
    let refused = minitwin(&["node", "--config", c, "--role", "scaler"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("control_plane = \"external\""));

    let (up, out, table) = start_up(&[c, "--fresh", "--for", "40"]);
    let roles: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(
        !roles.contains(&"scaler"),
        "the twin's control plane ran: {table}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "service").count(),
        2,
        "{table}"
    );
    let loaded = Cluster::load(&cluster).unwrap();
    let node = |name: &str| {
        loaded
            .nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap()
            .clone()
    };
    let gateway_http = node("gateway-0").http_addr;
    // Six of the eight slots have no pod: every request is still answered.
    for key in 0..20 {
        let (status, _) = http_get(&gateway_http, &format!("/users/{key}")).unwrap();
        assert_eq!(status, 200, "request {key}");
    }
    // The HPA's part, by hand: service-2's pod starts.
    let extra = node("service-2");
    let mut pod = Stopped(
        Command::new(env!("CARGO_BIN_EXE_minitwin"))
            .args(["node", "--config", c, "--role", "service", "--index", "2"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("service-2.jsonl")).unwrap())
            .spawn()
            .unwrap(),
    );
    let ready = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        http_get(&extra.http_addr, "/healthz").is_some_and(|(s, _)| s == 200)
    });
    assert!(ready, "service-2 never answered /healthz");
    // Longer than the gateway's fail_timeout (10 s): the slot is tried again and found up.
    let load_out = load_for(c, "14", &dir);
    let (_, metrics) = http_get(&extra.http_addr, "/metrics").unwrap();
    let served = metric(&metrics, "service_requests_total").unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        served >= 50.0,
        "service-2 served {served} requests:\n{load_out}"
    );
    // The HPA scales back in: SIGTERM, and the gateway serves on without it.
    let _ = Command::new("kill").arg(pod.0.id().to_string()).status();
    assert!(
        pod.0.wait().unwrap().success(),
        "service-2 drained and exited 0"
    );
    for key in 0..20 {
        let (status, _) = http_get(&gateway_http, &format!("/users/{key}")).unwrap();
        assert_eq!(status, 200, "request {key} after service-2 went");
    }
    let _ = Command::new("kill").arg(up.0.id().to_string()).status();
    up.finish(out, &table);
}
