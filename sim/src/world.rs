//! Builds a runnable simulation from a scenario and a seed: nodes, zones, links, component
//! factories, and the fault schedule compiled into kernel actions.

use crate::kernel::{Action, Buggify, NodeSpec, Sim};
use crate::net::{LinkConfig, Network};
use crate::register::RegisterClient;
use crate::scenario::{node_names, placement, select, Fault, Scenario};
use crate::workload::Client;
use minitwin_components::archive::Archiver;
use minitwin_components::gateway::Gateway;
use minitwin_components::mirror::{Mirror, MirrorReplica};
use minitwin_components::repl::Orchestrator;
use minitwin_components::reshard::Resharder;
use minitwin_components::rng::{ms_to_ns, Rng};
use minitwin_components::service::Service;
use minitwin_components::session::admin::SessionAdmin;
use minitwin_components::session::client::SessionClient;
use minitwin_components::session::node::SessionNode;
use minitwin_components::session::Claim;
use minitwin_components::store::{Placement, Store};
use minitwin_components::NodeId;

/// A built simulation and where everything is in it.
pub struct World {
    pub sim: Sim,
    pub names: Vec<String>,
    pub zones: Vec<String>,
    pub gateways: Vec<NodeId>,
    pub services: Vec<NodeId>,
    /// The initial primary of each shard.
    pub stores: Vec<NodeId>,
    /// Every member of each shard, initial primary first.
    pub shard_members: Vec<Vec<NodeId>>,
    pub orchestrator: Option<NodeId>,
    /// The mirror copies of each shard (one per mirror zone).
    pub mirror_copies: Vec<Vec<NodeId>>,
    pub client: NodeId,
    /// The session cluster's nodes and its client.
    pub session_nodes: Vec<NodeId>,
    pub session_client: Option<NodeId>,
    /// The new shards of a resharding, and the resharder.
    pub reshard_targets: Vec<NodeId>,
    pub resharder: Option<NodeId>,
    /// The archiver's node, if the scenario has one.
    pub archiver: Option<NodeId>,
    /// The register workload's node, if the scenario has one.
    pub registers: Option<NodeId>,
    pub end_ns: u64,
}

pub fn s_to_ns(s: f64) -> u64 {
    ms_to_ns(s * 1000.0)
}

fn ids(range: std::ops::Range<usize>) -> Vec<NodeId> {
    range.map(|i| i as NodeId).collect()
}

/// What each node of a scenario is, in id order.
enum Role {
    Gateway,
    Service,
    Store { shard: usize },
    Orchestrator,
    MirrorJob { shard: usize },
    MirrorCopy { shard: usize },
    ReshardTarget,
    Resharder,
    Archiver,
    SessionNode,
    SessionClient,
    SessionAdmin,
    Registers,
    Client,
}

/// Builds the scenario's world for `seed`. The scenario must have passed validation.
pub fn build(s: &Scenario, seed: u64, record_trace: bool) -> World {
    let t = &s.topology;
    let names = node_names(s);
    let placed = placement(s);
    let zone_index = |z: &str| t.zones.iter().position(|x| x == z).expect("validated zone") as u16;
    let (g, sv) = (t.gateways.count as usize, t.services.count as usize);
    let per_shard = t.stores.replicas as usize + 1;
    let mut roles: Vec<Role> = Vec::with_capacity(names.len());
    roles.extend((0..g).map(|_| Role::Gateway));
    roles.extend((0..sv).map(|_| Role::Service));
    for shard in 0..t.stores.shards as usize {
        roles.extend((0..per_shard).map(|_| Role::Store { shard }));
    }
    if t.stores.replicas > 0 {
        roles.push(Role::Orchestrator);
    }
    let mut mirror_jobs = Vec::new();
    if let Some(m) = &t.mirror {
        for shard in 0..t.stores.shards as usize {
            mirror_jobs.push(roles.len() as NodeId);
            roles.push(Role::MirrorJob { shard });
            roles.extend(m.zones.iter().map(|_| Role::MirrorCopy { shard }));
        }
    }
    let mut reshard_targets = Vec::new();
    let mut resharder = None;
    if let Some(r) = &t.reshard {
        for _ in 0..r.to_shards {
            reshard_targets.push(roles.len() as NodeId);
            roles.push(Role::ReshardTarget);
        }
        resharder = Some(roles.len() as NodeId);
        roles.push(Role::Resharder);
    }
    let mut archiver = None;
    if t.archive.is_some() {
        archiver = Some(roles.len() as NodeId);
        roles.push(Role::Archiver);
    }
    let mut session_claims = Vec::new();
    let mut session_masters = Vec::new();
    let mut session_replicas = Vec::new();
    let mut session_client = None;
    if let Some(st) = &t.sessions {
        let m = st.masters as usize;
        for i in 0..m {
            let master = roles.len() as NodeId;
            session_masters.push(master);
            roles.push(Role::SessionNode);
            let range = SessionNode::slot_range(i, m);
            session_claims.push(Claim {
                node: master,
                slots: vec![range],
                replica_of: None,
                config_epoch: 0,
            });
            for _ in 0..st.replicas {
                let r = roles.len() as NodeId;
                roles.push(Role::SessionNode);
                session_replicas.push((master, r));
                session_claims.push(Claim {
                    node: r,
                    slots: Vec::new(),
                    replica_of: Some(master),
                    config_epoch: 0,
                });
            }
        }
        session_client = Some(roles.len() as NodeId);
        roles.push(Role::SessionClient);
        if st.migrate.is_some() {
            roles.push(Role::SessionAdmin);
        }
    }
    if s.workload.registers.is_some() {
        roles.push(Role::Registers);
    }
    roles.push(Role::Client);
    assert_eq!(roles.len(), names.len(), "one role per node name");
    let gateways = ids(0..g);
    let services = ids(g..g + sv);
    let shard_members: Vec<Vec<NodeId>> = (0..t.stores.shards as usize)
        .map(|sh| ids(g + sv + sh * per_shard..g + sv + (sh + 1) * per_shard))
        .collect();
    let stores: Vec<NodeId> = shard_members.iter().map(|m| m[0]).collect();
    let orchestrator =
        (t.stores.replicas > 0).then(|| (g + sv + shard_members.len() * per_shard) as NodeId);
    let copies_per_shard = t.mirror.as_ref().map_or(0, |m| m.zones.len());
    let mirror_copies: Vec<Vec<NodeId>> = mirror_jobs
        .iter()
        .map(|&j| ((j + 1)..=(j + copies_per_shard as NodeId)).collect())
        .collect();
    let client = (names.len() - 1) as NodeId;
    let end_ns = s_to_ns(s.duration_s);

    let mut specs = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let factory: crate::kernel::Factory = match roles[i] {
            Role::Gateway => {
                let config = t.gateways.config.clone();
                let ups: Vec<(NodeId, u32)> = services.iter().map(|&n| (n, 1)).collect();
                Box::new(move || Box::new(Gateway::new(config.clone(), &ups)))
            }
            Role::Service => {
                let (config, shards) = (t.services.config.clone(), stores.clone());
                Box::new(move || Box::new(Service::new(config.clone(), &shards)))
            }
            Role::Store { shard } => {
                let config = t.stores.config.clone();
                let placement = Placement {
                    shard: shard as u32,
                    members: shard_members[shard].clone(),
                };
                let me = i as NodeId;
                Box::new(move || Box::new(Store::member(config.clone(), me, placement.clone())))
            }
            Role::Orchestrator => {
                let routed: Vec<NodeId> = services.iter().chain(&mirror_jobs).copied().collect();
                let (config, shards, svcs) =
                    (t.stores.orchestrator.clone(), shard_members.clone(), routed);
                Box::new(move || Box::new(Orchestrator::new(config.clone(), &shards, &svcs)))
            }
            Role::MirrorJob { shard } => {
                let config = t.mirror.as_ref().expect("mirror tier").config.clone();
                let (source, copies) = (stores[shard], mirror_copies[shard].clone());
                Box::new(move || {
                    Box::new(Mirror::new(config.clone(), shard as u32, source, &copies))
                })
            }
            Role::MirrorCopy { shard } => {
                let config = t.mirror.as_ref().expect("mirror tier").config.clone();
                let job = mirror_jobs[shard];
                Box::new(move || Box::new(MirrorReplica::new(config.clone(), job)))
            }
            Role::ReshardTarget => {
                let config = t.stores.config.clone();
                Box::new(move || Box::new(Store::new(config.clone())))
            }
            Role::Resharder => {
                let r = t.reshard.as_ref().expect("reshard tier");
                let (config, source, targets, svcs) = (
                    r.config.clone(),
                    stores[0],
                    reshard_targets.clone(),
                    services.clone(),
                );
                Box::new(move || Box::new(Resharder::new(config.clone(), source, &targets, &svcs)))
            }
            Role::SessionNode => {
                let config = t.sessions.as_ref().expect("sessions").config.clone();
                let (me, claims) = (i as NodeId, session_claims.clone());
                Box::new(move || Box::new(SessionNode::new(config.clone(), me, &claims)))
            }
            Role::SessionAdmin => {
                let st = t.sessions.as_ref().expect("sessions");
                let plan = st.migrate.clone().expect("migration plan");
                let (_, hi) = SessionNode::slot_range(plan.from as usize, st.masters as usize);
                let range = (hi - plan.slots, hi);
                let (src, dst) = (
                    session_masters[plan.from as usize],
                    session_masters[plan.to as usize],
                );
                Box::new(move || Box::new(SessionAdmin::new(plan.at_s, src, dst, range)))
            }
            Role::SessionClient => {
                let config = t.sessions.as_ref().expect("sessions").client.clone();
                let (masters, replicas) = (session_masters.clone(), session_replicas.clone());
                Box::new(move || {
                    Box::new(SessionClient::new(
                        config.clone(),
                        &masters,
                        &replicas,
                        end_ns,
                    ))
                })
            }
            Role::Archiver => {
                let config = t.archive.as_ref().expect("archive tier").config.clone();
                Box::new(move || Box::new(Archiver::new(config.clone())))
            }
            Role::Registers => {
                let config = s.workload.registers.clone().expect("register workload");
                let shards = stores.clone();
                Box::new(move || Box::new(RegisterClient::new(config.clone(), &shards, end_ns)))
            }
            Role::Client => {
                let (config, gws) = (s.workload.clone(), gateways.clone());
                Box::new(move || Box::new(Client::new(config.clone(), &gws, end_ns)))
            }
        };
        specs.push(NodeSpec {
            name: name.clone(),
            zone: zone_index(&placed[i]),
            factory,
            disk: t.stores.disk.clone(),
            clock_offset_ns: 0,
        });
    }

    let zones = t.zones.len();
    let mut links = vec![t.default_link.clone(); zones * zones];
    for l in &t.links {
        let (a, b) = (
            zone_index(&l.between[0]) as usize,
            zone_index(&l.between[1]) as usize,
        );
        let link = LinkConfig {
            latency: l.latency.clone(),
            loss: l.loss,
        };
        links[a * zones + b] = link.clone();
        links[b * zones + a] = link;
    }
    let zone_of: Vec<u16> = specs.iter().map(|n| n.zone).collect();
    let rngs = names
        .iter()
        .map(|n| Rng::stream(seed, &format!("{n}/net")))
        .collect();
    let net = Network::new(zones, zone_of, links, rngs);
    let b = &s.buggify;
    let buggify = Buggify::new(seed, b.enabled, b.enable_probability, b.fire_probability);
    let mut sim = Sim::new(seed, specs, net, buggify, record_trace);

    if s.warmup_s > 0.0 {
        sim.schedule(s_to_ns(s.warmup_s), Action::ResetMetrics);
    }
    for f in &s.faults {
        for (at_ns, action) in compile_fault(f, &names, &placed, &t.zones) {
            sim.schedule(at_ns, action);
        }
    }
    World {
        shard_members,
        mirror_copies,
        orchestrator,
        sim,
        names,
        zones: t.zones.clone(),
        gateways,
        services,
        stores,
        client,
        registers: s.workload.registers.as_ref().map(|_| client - 1),
        session_nodes: session_claims.iter().map(|c| c.node).collect(),
        session_client,
        reshard_targets,
        resharder,
        archiver,
        end_ns,
    }
}

/// A scenario fault as timed kernel actions (its start and, where it has one, its healing).
pub fn compile_fault(
    f: &Fault,
    names: &[String],
    placed: &[String],
    zones: &[String],
) -> Vec<(u64, Action)> {
    let zone_of = |i: usize| placed[i].clone();
    let nodes = |sels: &[String]| -> Vec<NodeId> {
        let mut v: Vec<NodeId> = sels
            .iter()
            .flat_map(|s| select(s, names, &zone_of))
            .map(|i| i as NodeId)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let one = |sel: &String| nodes(std::slice::from_ref(sel));
    let zone = |z: &String| zones.iter().position(|x| x == z).expect("validated zone") as u16;
    let at = s_to_ns(f.at_s());
    let end = f.end_s().map(s_to_ns).unwrap_or(u64::MAX);
    let mut out = Vec::new();
    match f {
        Fault::Crash {
            node,
            restart_after_s,
            ..
        } => {
            for n in one(node) {
                out.push((at, Action::Crash(n)));
                if restart_after_s.is_some() {
                    out.push((end, Action::Restart(n)));
                }
            }
        }
        Fault::Restart { node, .. } => {
            out.extend(one(node).into_iter().map(|n| (at, Action::Restart(n))))
        }
        Fault::Partition { a, b, one_way, .. } => {
            let (a, b) = (nodes(a), nodes(b));
            out.push((
                at,
                Action::Partition {
                    a: a.clone(),
                    b: b.clone(),
                    delta: 1,
                },
            ));
            out.push((
                end,
                Action::Partition {
                    a: a.clone(),
                    b: b.clone(),
                    delta: -1,
                },
            ));
            if !one_way {
                out.push((
                    at,
                    Action::Partition {
                        a: b.clone(),
                        b: a.clone(),
                        delta: 1,
                    },
                ));
                out.push((
                    end,
                    Action::Partition {
                        a: b,
                        b: a,
                        delta: -1,
                    },
                ));
            }
        }
        Fault::Clog { a, b, one_way, .. } => {
            let (a, b) = (nodes(a), nodes(b));
            out.push((
                at,
                Action::Clog {
                    a: a.clone(),
                    b: b.clone(),
                    until_ns: end,
                },
            ));
            if !one_way {
                out.push((
                    at,
                    Action::Clog {
                        a: b,
                        b: a,
                        until_ns: end,
                    },
                ));
            }
        }
        Fault::Loss {
            between,
            probability,
            ..
        } => {
            let (za, zb) = (zone(&between[0]), zone(&between[1]));
            out.push((
                at,
                Action::Loss {
                    zone_a: za,
                    zone_b: zb,
                    probability: Some(*probability),
                },
            ));
            out.push((
                end,
                Action::Loss {
                    zone_a: za,
                    zone_b: zb,
                    probability: None,
                },
            ));
        }
        Fault::LatencySpike {
            between, extra_ms, ..
        } => {
            let (za, zb) = (zone(&between[0]), zone(&between[1]));
            out.push((
                at,
                Action::ExtraLatency {
                    zone_a: za,
                    zone_b: zb,
                    extra_ns: ms_to_ns(*extra_ms),
                },
            ));
            out.push((
                end,
                Action::ExtraLatency {
                    zone_a: za,
                    zone_b: zb,
                    extra_ns: 0,
                },
            ));
        }
        Fault::ClockSkew {
            node,
            jump_ms,
            drift_ppm,
            ..
        } => {
            for n in one(node) {
                out.push((
                    at,
                    Action::ClockJump {
                        node: n,
                        forward_ns: ms_to_ns(*jump_ms),
                    },
                ));
                out.push((
                    at,
                    Action::ClockRate {
                        node: n,
                        drift_ppm: *drift_ppm,
                    },
                ));
            }
        }
        Fault::DiskSlow { node, factor, .. } => {
            for n in one(node) {
                out.push((
                    at,
                    Action::DiskSlow {
                        node: n,
                        factor: *factor,
                    },
                ));
                out.push((
                    end,
                    Action::DiskSlow {
                        node: n,
                        factor: 1.0,
                    },
                ));
            }
        }
        Fault::DiskErrors {
            node, probability, ..
        } => {
            for n in one(node) {
                out.push((
                    at,
                    Action::DiskErrors {
                        node: n,
                        probability: *probability,
                    },
                ));
                out.push((
                    end,
                    Action::DiskErrors {
                        node: n,
                        probability: 0.0,
                    },
                ));
            }
        }
    }
    out
}
