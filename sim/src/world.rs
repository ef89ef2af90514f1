//! Builds a runnable simulation from a scenario and a seed: the plan's nodes with the tiers'
//! component factories, zones, links, and the fault schedule compiled into kernel actions.

use crate::kernel::{Action, Buggify, Factory, NodeSpec, Sim};
use crate::net::{LinkConfig, Network};
use crate::plan::Plan;
use crate::scenario::{Attack, Fault, Scenario};
use crate::tiers::{self, TIERS};
use minitwin_components::msg::{StoreOp, StoreRequest};
use minitwin_components::rng::{ms_to_ns, Rng};
use minitwin_components::scaler::ScalerMsg;
use minitwin_components::security::{Identity, SecurityConfig};
use minitwin_components::Msg;
use minitwin_components::NodeId;

/// A built simulation and its plan.
pub struct World {
    pub sim: Sim,
    pub plan: Plan,
    /// When the workload stops (simulated).
    pub end_ns: u64,
}

pub fn s_to_ns(s: f64) -> u64 {
    ms_to_ns(s * 1000.0)
}

/// The scenario's plan and every node's factory, in id order: what the simulator runs, and
/// what a production node (`minitwin node`) builds its component from. The scenario must have
/// passed validation.
pub fn factories(s: &Scenario) -> (Plan, Vec<Factory>) {
    let plan = tiers::plan(s);
    let end_ns = s_to_ns(s.duration_s);
    let mut built: Vec<(NodeId, Factory)> = Vec::with_capacity(plan.len());
    for tier in TIERS {
        tier.build(s, &plan, end_ns, &mut built);
    }
    let mut factories: Vec<Option<Factory>> = (0..plan.len()).map(|_| None).collect();
    for (id, factory) in built {
        let slot = &mut factories[id as usize];
        assert!(slot.is_none(), "{}: built twice", plan.name(id));
        *slot = Some(factory);
    }
    let factories = plan
        .nodes
        .iter()
        .zip(factories)
        .map(|(n, f)| f.unwrap_or_else(|| panic!("{}: no tier built it", n.name)))
        .collect();
    (plan, factories)
}

/// Builds the scenario's world for `seed`. The scenario must have passed validation.
pub fn build(s: &Scenario, seed: u64, record_trace: bool) -> World {
    let t = &s.topology;
    let (plan, factories) = factories(s);
    let end_ns = s_to_ns(s.duration_s);
    let specs: Vec<NodeSpec> = plan
        .nodes
        .iter()
        .zip(factories)
        .map(|(n, factory)| NodeSpec {
            name: n.name.clone(),
            zone: n.zone,
            factory,
            disk: t.stores.disk.clone(),
            clock_offset_ns: 0,
            starts_up: !n.starts_down,
        })
        .collect();

    let zones = t.zones.len();
    let zone = |z: &str| plan.zone_index(z).expect("validated zone") as usize;
    let mut links = vec![t.default_link.clone(); zones * zones];
    for l in &t.links {
        let (a, b) = (zone(&l.between[0]), zone(&l.between[1]));
        let link = LinkConfig {
            latency: l.latency.clone(),
            loss: l.loss,
        };
        links[a * zones + b] = link.clone();
        links[b * zones + a] = link;
    }
    let zone_of: Vec<u16> = specs.iter().map(|n| n.zone).collect();
    let rngs = plan
        .nodes
        .iter()
        .map(|n| Rng::stream(seed, &format!("{}/net", n.name)))
        .collect();
    let net = Network::new(zones, zone_of, links, rngs);
    let b = &s.buggify;
    let buggify = Buggify::new(seed, b.enabled, b.enable_probability, b.fire_probability);
    let mut sim = Sim::new(seed, specs, net, buggify, record_trace);

    if s.warmup_s > 0.0 {
        sim.schedule(s_to_ns(s.warmup_s), Action::ResetMetrics);
    }
    if let Some(sec) = &s.security {
        sim.set_security(security_layer(sec, &plan));
    }
    let replays = s.faults.iter().any(|f| {
        matches!(
            f,
            Fault::Rogue {
                attack: Attack::Replay,
                ..
            }
        )
    });
    if replays {
        sim.capture_for_replay();
    }
    for f in &s.faults {
        for (at_ns, action) in compile_fault(f, &plan) {
            sim.schedule(at_ns, action);
        }
    }
    World { sim, plan, end_ns }
}

/// Every node's identity: its role, and a certificate unless it is the public's users' client
/// or listed without one.
fn security_layer(sec: &SecurityConfig, plan: &Plan) -> crate::security::Layer {
    let bare: Vec<NodeId> = sec
        .without_certificate
        .iter()
        .flat_map(|s| plan.select(s))
        .collect();
    let public = |role: &str| role == "client";
    let nodes = plan
        .nodes
        .iter()
        .map(|n| {
            let id = Identity {
                role: n.role.0.to_string(),
                certified: !public(n.role.0) && !bare.contains(&n.id),
            };
            (n.name.clone(), id)
        })
        .collect();
    crate::security::Layer::new(sec, nodes)
}

/// The store writes a rogue node forges: keys far above any user's, so they are recognisable.
pub const ROGUE_KEY_BASE: u64 = 1 << 48;

/// A scenario fault as timed kernel actions (its start and, where it has one, its healing).
pub fn compile_fault(f: &Fault, plan: &Plan) -> Vec<(u64, Action)> {
    let nodes = |sels: &[String]| -> Vec<NodeId> {
        let mut v: Vec<NodeId> = sels.iter().flat_map(|s| plan.select(s)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    // Node faults (crash, clock, disk) skip the workload clients, which measure the run.
    let one = |sel: &String| plan.select_targets(sel);
    let zone = |z: &String| plan.zone_index(z).expect("validated zone");
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
        Fault::Kill {
            node,
            restart_after_s,
            ..
        } => {
            for n in one(node) {
                out.push((at, Action::Kill(n)));
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
        Fault::Rogue {
            node,
            attack,
            as_node,
            targets,
            rate_per_s,
            duration_s,
            ..
        } => {
            let sender = plan.select(node)[0];
            let claimed = match (attack, as_node) {
                (Attack::Impersonate, Some(a)) => plan.select(a)[0],
                _ => sender,
            };
            let count = (duration_s * rate_per_s).floor() as u64;
            let step = 1e9 / rate_per_s;
            for i in 0..count {
                let t = at + (i as f64 * step) as u64;
                for to in nodes(targets) {
                    let action = match attack {
                        Attack::Replay => Action::Replay { sender, to },
                        _ => Action::Forge {
                            sender,
                            claimed,
                            to,
                            msg: Msg::Store(StoreRequest {
                                id: u64::MAX - i,
                                op: StoreOp::Write {
                                    key: ROGUE_KEY_BASE + i,
                                    value: 0xbad,
                                },
                            }),
                        },
                    };
                    out.push((t, action));
                }
            }
        }
        Fault::MetricsPipeline { lost, delay_ms, .. } => {
            let node = plan
                .one(crate::tiers::scaler::CONTROL)
                .expect("validated: an autoscaler");
            let pipeline = |lost: bool, delay_ms: u64| Action::Inject {
                node,
                msg: Msg::Scaler(ScalerMsg::MetricsPipeline { lost, delay_ms }),
            };
            out.push((at, pipeline(*lost, *delay_ms as u64)));
            out.push((end, pipeline(false, 0)));
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
