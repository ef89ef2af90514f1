//! A production cluster file (`cluster.toml`): which scenario's topology and component
//! configuration the real processes run, and where each node listens. A node's id, name and
//! role, and its component, come from the same plan and factories as the simulator's
//! ([`crate::world::factories`]), so what runs is what was tested.
//!
//! ```toml
//! scenario = "scenario.toml"   # relative to this file
//! data_dir = "data"            # each node's log under data_dir/<node name>/
//! host = "127.0.0.1"           # where nodes listen, unless [addresses] says otherwise
//! base_port = 7100             # node id i: peers on base_port + i
//! http_base_port = 9100        # node id i: HTTP (/metrics, /healthz, a gateway's routes)
//! drain_s = 5                  # SIGTERM: stop accepting, answer what is in flight, exit
//! # epoch_unix_ms = 0          # the cluster's clock epoch (`minitwin up` sets it)
//! # same_ports = false         # true: every node on base_port and http_base_port (one node
//! #                            # per host: containers, pods), told apart by [addresses]
//! # control_plane = "twin"     # "external": another orchestrator (Kubernetes' HPA) starts
//! #                            # the service pods; the twin's control plane does not run and
//! #                            # gateways route to every service slot, passive health
//! #                            # finding the empty ones down
//! [tls]                        # optional: mutual TLS between nodes (`minitwin certs`)
//! dir = "certs"                # ca.pem, <node>.pem, <node>.key
//! # domain = "loopback.minitwin" # certificates name <node>.<domain> (default: scenario name)
//! [addresses]                  # optional: a node's peer address by name (compose, k8s)
//! "store-0" = "store-0:7100"
//! ```

use crate::plan::Plan;
use crate::scenario::{self, Scenario};
use crate::tiers;
use crate::world;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    scenario: PathBuf,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_base_port")]
    base_port: u16,
    #[serde(default = "default_http_base_port")]
    http_base_port: u16,
    #[serde(default = "default_drain_s")]
    drain_s: f64,
    #[serde(default)]
    epoch_unix_ms: Option<u64>,
    #[serde(default)]
    same_ports: bool,
    #[serde(default)]
    tls: Option<TlsFile>,
    #[serde(default)]
    addresses: BTreeMap<String, String>,
    #[serde(default)]
    control_plane: ControlPlane,
}

/// Who starts and stops the autoscaled service pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlPlane {
    /// The twin's own (the `scaler` role): it probes the pods and tells the gateways which
    /// are ready.
    #[default]
    Twin,
    /// Another orchestrator (Kubernetes' HPA): the twin's control plane does not run; the
    /// gateways route to every service slot and find the ones with no pod down.
    External,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    dir: PathBuf,
    domain: Option<String>,
}

/// Mutual TLS of a cluster: where the certificates are and the domain they name nodes in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTls {
    /// `ca.pem`, and `<node>.pem` and `<node>.key` for every node.
    pub dir: PathBuf,
    /// A node's certificate is for `<node name>.<domain>`.
    pub domain: String,
}

impl ClusterTls {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn cert(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.pem"))
    }
    pub fn key(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.key"))
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_base_port() -> u16 {
    7100
}
fn default_http_base_port() -> u16 {
    9100
}
fn default_drain_s() -> f64 {
    5.0
}

/// Roles a production node can take, by the name `minitwin node --role` knows them, and the
/// plan's role names they stand for.
pub const ROLES: &[(&str, &[&str])] = &[
    ("gateway", &["gateway"]),
    ("service", &["service"]),
    ("store", &["store"]),
    ("orchestrator", &["orchestrator"]),
    ("session", &["session-node"]),
    ("mirror", &["mirror-job", "mirror-copy"]),
    ("archiver", &["archiver"]),
    ("scaler", &["control-plane"]),
    ("monitor", &["monitor"]),
    ("resharder", &["resharder", "reshard-target"]),
];

/// One node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: u32,
    pub name: String,
    /// The plan's role name (`store`, `session-node`, ...).
    pub plan_role: &'static str,
    /// The `--role` name, None for the twin's instruments (the users: `minitwin load` plays
    /// them in production).
    pub role: Option<&'static str>,
    /// Where peers reach it (`host:port`).
    pub peer_addr: String,
    /// Where it serves HTTP.
    pub http_addr: String,
    /// Runs from the start (false: an autoscaler's pod slot, or an instrument).
    pub runs: bool,
}

/// A loaded cluster: its file's settings, the scenario and every node.
pub struct Cluster {
    pub path: PathBuf,
    pub scenario_path: PathBuf,
    pub scenario: Scenario,
    pub plan: Plan,
    pub nodes: Vec<ClusterNode>,
    pub data_dir: PathBuf,
    pub drain_s: f64,
    pub epoch_unix_ms: Option<u64>,
    /// Mutual TLS between nodes, when the file has `[tls]`.
    pub tls: Option<ClusterTls>,
    pub control_plane: ControlPlane,
}

fn production_role(plan_role: &str) -> Option<&'static str> {
    ROLES
        .iter()
        .find(|(_, plan)| plan.contains(&plan_role))
        .map(|(r, _)| *r)
}

impl Cluster {
    /// Reads `path` and the scenario it names; errors name the file, line and field.
    pub fn load(path: &Path) -> Result<Cluster, String> {
        let text = scenario::read_limited(path, scenario::MAX_SCENARIO_BYTES)
            .map_err(|m| format!("{}: {m}", path.display()))?;
        let file: ClusterFile =
            toml::from_str(&text).map_err(|e| scenario::de_error(path, &text, &e).to_string())?;
        let here = path.parent().unwrap_or(Path::new("."));
        let scenario_path = here.join(&file.scenario);
        let scenario = scenario::load(&scenario_path)
            .map_err(|e| format!("{}: field `scenario`: {e}", path.display()))?;
        if !(0.0..=3600.0).contains(&file.drain_s) {
            return Err(format!(
                "{}: field `drain_s`: {} is outside 0 to 3600 seconds",
                path.display(),
                file.drain_s
            ));
        }
        let plan = tiers::plan(&scenario);
        let tls = file.tls.clone().map(|t| ClusterTls {
            dir: here.join(t.dir),
            domain: t
                .domain
                .unwrap_or_else(|| format!("{}.minitwin", scenario.name)),
        });
        let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
        for name in file.addresses.keys() {
            if !names.contains(&name.as_str()) {
                return Err(format!(
                    "{}: field `addresses.{name}`: the scenario {} has no node {name:?} (its nodes: {})",
                    path.display(),
                    scenario_path.display(),
                    names.join(", ")
                ));
            }
        }
        let mut nodes = Vec::with_capacity(plan.nodes.len());
        for n in &plan.nodes {
            let offset = if file.same_ports { 0 } else { n.id };
            let port = |base: u16, what: &str| -> Result<u16, String> {
                u16::try_from(u32::from(base) + offset).map_err(|_| {
                    format!(
                        "{}: field `{what}`: {base} + node id {} ({}) is past port 65535",
                        path.display(),
                        n.id,
                        n.name
                    )
                })
            };
            let peer_addr = match file.addresses.get(&n.name) {
                Some(a) => a.clone(),
                None => format!("{}:{}", file.host, port(file.base_port, "base_port")?),
            };
            let http_host = peer_addr
                .rsplit_once(':')
                .map_or(file.host.as_str(), |(h, _)| h);
            let http_addr = format!(
                "{http_host}:{}",
                port(file.http_base_port, "http_base_port")?
            );
            let role = production_role(n.role.0);
            let external = file.control_plane == ControlPlane::External && role == Some("scaler");
            nodes.push(ClusterNode {
                id: n.id,
                name: n.name.clone(),
                plan_role: n.role.0,
                role,
                peer_addr,
                http_addr,
                runs: role.is_some() && !n.starts_down && !n.instrument && !external,
            });
        }
        Ok(Cluster {
            path: path.to_path_buf(),
            scenario_path,
            scenario,
            plan,
            nodes,
            data_dir: here.join(&file.data_dir),
            drain_s: file.drain_s,
            epoch_unix_ms: file.epoch_unix_ms,
            tls,
            control_plane: file.control_plane,
        })
    }

    /// The node `--name` names, or the `index`-th node of `--role`.
    pub fn pick(
        &self,
        name: Option<&str>,
        role: Option<&str>,
        index: usize,
    ) -> Result<&ClusterNode, String> {
        if let Some(name) = name {
            return self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
                format!(
                    "{}: no node named {name:?}; its nodes: {}",
                    self.path.display(),
                    self.nodes
                        .iter()
                        .filter(|n| n.runs)
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        let Some(role) = role else {
            return Err("give --role (with --index) or --name".into());
        };
        if !ROLES.iter().any(|(r, _)| *r == role) {
            return Err(format!(
                "--role {role}: not a role; the roles are {}",
                ROLES.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
            ));
        }
        let of_role: Vec<&ClusterNode> =
            self.nodes.iter().filter(|n| n.role == Some(role)).collect();
        of_role.get(index).copied().ok_or_else(|| {
            format!(
                "--role {role} --index {index}: the scenario {} has {} {role} node(s){}",
                self.scenario_path.display(),
                of_role.len(),
                if of_role.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        of_role
                            .iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            )
        })
    }

    /// Every node's factory, in id order (the simulator's own; with an external control
    /// plane, gateways that route to every service slot).
    pub fn factories(&self) -> Vec<crate::kernel::Factory> {
        let (plan, mut factories) = world::factories(&self.scenario);
        if self.control_plane == ControlPlane::External {
            for (id, gateway) in tiers::edge::gateways(&self.scenario, &plan, true) {
                factories[id as usize] = gateway;
            }
        }
        factories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn dir(test: &str) -> PathBuf {
        std::env::temp_dir().join(format!("minitwin-cluster-{}-{test}", std::process::id()))
    }

    const SCENARIO: &str = include_str!("../../deploy/loopback/scenario.toml");

    #[test]
    fn every_node_gets_its_plan_id_name_and_ports() {
        let d = dir("ports");
        write(&d, "scenario.toml", SCENARIO);
        let p = write(&d, "cluster.toml", "scenario = \"scenario.toml\"\nbase_port = 7000\nhttp_base_port = 9000\n[addresses]\n\"store-0-r1\" = \"10.1.1.1:7777\"\n");
        let c = Cluster::load(&p).unwrap();
        let gw = c.pick(None, Some("gateway"), 0).unwrap();
        assert_eq!(gw.peer_addr, format!("127.0.0.1:{}", 7000 + gw.id));
        assert_eq!(gw.http_addr, format!("127.0.0.1:{}", 9000 + gw.id));
        let s = c.pick(Some("store-0-r1"), None, 0).unwrap();
        assert_eq!(s.peer_addr, "10.1.1.1:7777");
        assert_eq!(s.http_addr, format!("10.1.1.1:{}", 9000 + s.id));
        assert!(
            c.nodes.iter().any(|n| n.role.is_none() && !n.runs),
            "the users are an instrument"
        );
        assert!(c.pick(None, Some("store"), 3).is_ok());
        let e = c.pick(None, Some("store"), 9).unwrap_err();
        assert!(e.contains("has 4 store node(s)"), "{e}");
        let e = c.pick(None, Some("db"), 0).unwrap_err();
        assert!(e.contains("the roles are gateway, service, store"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_bad_cluster_file_is_refused_with_its_line_and_field() {
        let d = dir("bad");
        write(&d, "scenario.toml", SCENARIO);
        let p = write(
            &d,
            "cluster.toml",
            "scenario = \"scenario.toml\"\nbase_prot = 7000\n",
        );
        let e = Cluster::load(&p).err().unwrap();
        assert!(
            e.contains("cluster.toml:2") && e.contains("base_prot"),
            "{e}"
        );
        let p = write(&d, "cluster.toml", "scenario = \"missing.toml\"\n");
        let e = Cluster::load(&p).err().unwrap();
        assert!(
            e.contains("field `scenario`") && e.contains("missing.toml"),
            "{e}"
        );
        let p = write(
            &d,
            "cluster.toml",
            "scenario = \"scenario.toml\"\n[addresses]\n\"store-9\" = \"x:1\"\n",
        );
        let e = Cluster::load(&p).err().unwrap();
        assert!(
            e.contains("addresses.store-9") && e.contains("store-0-r1"),
            "{e}"
        );
        let p = write(
            &d,
            "cluster.toml",
            "scenario = \"scenario.toml\"\ncontrol_plane = \"kubernetes\"\n",
        );
        let e = Cluster::load(&p).err().unwrap();
        assert!(
            e.contains("cluster.toml:2") && e.contains("twin") && e.contains("external"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_external_control_plane_is_not_run_and_its_gateways_route_to_every_slot() {
        let d = dir("external");
        let k8s = include_str!("../../deploy/k8s/scenario.toml");
        write(&d, "scenario.toml", k8s);
        let twin = write(&d, "twin.toml", "scenario = \"scenario.toml\"\n");
        let twin = Cluster::load(&twin).unwrap();
        let external = write(
            &d,
            "external.toml",
            "scenario = \"scenario.toml\"\ncontrol_plane = \"external\"\n",
        );
        let external = Cluster::load(&external).unwrap();
        let runs = |c: &Cluster, role: &str| {
            c.nodes
                .iter()
                .filter(|n| n.role == Some(role) && n.runs)
                .count()
        };
        assert_eq!((runs(&twin, "scaler"), runs(&external, "scaler")), (1, 0));
        assert_eq!((runs(&twin, "service"), runs(&external, "service")), (2, 2));
        // The gateways' upstream sets, as their gauge says once started.
        let enabled = |c: &Cluster| {
            let gw = c.pick(None, Some("gateway"), 0).unwrap().id;
            let g = c.factories().swap_remove(gw as usize)();
            let any = g.as_any();
            any.downcast_ref::<minitwin_components::gateway::Gateway>()
                .expect("a gateway")
                .upstreams_enabled()
        };
        assert_eq!((enabled(&twin), enabled(&external)), (2, 8));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
