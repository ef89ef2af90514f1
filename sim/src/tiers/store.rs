//! The store shards (`topology.stores`): each shard a primary and `replicas` replicas over
//! write-ahead logs, and, with replicas, the failover orchestrator.

use super::{RunView, Tier};
use crate::evidence::{Evidence, MemberLog, Promise, ShardView};
use crate::kernel::{Factory, Sim};
use crate::plan::{Plan, Role};
use crate::scenario::{check, count_and_zones, within, Invalid, Scenario};
use crate::tiers::mirror::MIRROR_JOB;
use crate::tiers::service::SERVICE;
use minitwin_components::repl::Orchestrator;
use minitwin_components::store::{Placement, ReplicationMode, Store, SEMI_SYNC_FALLBACKS_TOTAL};
use minitwin_components::NodeId;

/// A member of a shard: `group` is the shard, `rank` 0 its initial primary.
pub const STORE: Role = Role("store");
pub const ORCHESTRATOR: Role = Role("orchestrator");

pub struct Stores;

/// The name of member `rank` of shard `shard` (`rank = 0` is the initial primary).
pub fn member_name(shard: u32, rank: u32) -> String {
    if rank == 0 {
        format!("store-{shard}")
    } else {
        format!("store-{shard}-r{rank}")
    }
}

impl Tier for Stores {
    fn key(&self) -> &'static str {
        "topology.stores"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        let t = &s.topology.stores;
        count_and_zones(s, "stores", "shards", t.shards, &t.zones)?;
        let p = |f: &'static str| ["topology", "stores", f];
        within(t.config.validate(), &p("config"))?;
        within(t.orchestrator.validate(), &p("orchestrator"))?;
        check(
            t.replicas <= 8,
            &p("replicas"),
            "at most 8 replicas per shard",
        )?;
        within(t.disk.sync_latency.validate(), &p("disk"))
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        let t = &s.topology.stores;
        let zs = &t.zones;
        for shard in 0..t.shards {
            for rank in 0..=t.replicas {
                let zone = &zs[(shard + rank) as usize % zs.len()];
                plan.add(member_name(shard, rank), zone, STORE, shard, rank);
            }
        }
        if t.replicas > 0 {
            plan.add("orchestrator".into(), &zs[0], ORCHESTRATOR, 0, 0);
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let t = &s.topology.stores;
        let shards = plan.groups(STORE);
        for (shard, members) in shards.iter().enumerate() {
            for &me in members {
                let config = t.config.clone();
                let placement = Placement {
                    shard: shard as u32,
                    members: members.clone(),
                };
                out.push((
                    me,
                    Box::new(move || {
                        Box::new(Store::member(config.clone(), me, placement.clone()))
                    }),
                ));
            }
        }
        if let Some(id) = plan.one(ORCHESTRATOR) {
            // Routes go to the services and to the mirror jobs, which read from primaries.
            let mut routed = plan.ids(SERVICE);
            routed.extend(plan.ids(MIRROR_JOB));
            let config = t.orchestrator.clone();
            out.push((
                id,
                Box::new(move || Box::new(Orchestrator::new(config.clone(), &shards, &routed))),
            ));
        }
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let (sim, plan) = (run.sim, run.plan);
        let shards = plan.groups(STORE);
        ev.shards = shards.iter().map(|m| shard_view(sim, m)).collect();
        ev.promises = shards
            .iter()
            .map(|members| {
                let fallbacks = members
                    .iter()
                    .map(|&n| {
                        sim.env(n)
                            .metrics
                            .counter_value(SEMI_SYNC_FALLBACKS_TOTAL)
                            .unwrap_or(0)
                    })
                    .sum();
                promise(run.scenario, fallbacks)
            })
            .collect();
        ev.members = shards
            .iter()
            .map(|m| {
                m.iter()
                    .map(|&n| MemberLog {
                        name: &sim.env(n).name,
                        up: sim.env(n).up,
                        log: sim.env(n).disk.durable_records(),
                    })
                    .collect()
            })
            .collect();
        let promoted = plan
            .one(ORCHESTRATOR)
            .and_then(|n| sim.component::<Orchestrator>(n))
            .and_then(|o| o.failovers.first())
            .map(|f| f.at_ns as f64 / 1e9);
        ev.summary.failover_s = crate::run::first_fault_s(run.scenario)
            .zip(promoted)
            .map(|(fault, promoted)| promoted - fault);
    }
}

/// The view of a shard through the member whose log speaks for it.
pub fn shard_view<'a>(sim: &'a Sim, members: &[NodeId]) -> ShardView<'a> {
    let n = authority(sim, members);
    ShardView {
        name: &sim.env(n).name,
        durable_log: sim.env(n).disk.durable_records(),
        store: sim.component::<Store>(n),
    }
}

/// The member whose log speaks for the shard at the end: the up primary of the highest epoch,
/// else the member with the longest durable log.
fn authority(sim: &Sim, members: &[NodeId]) -> NodeId {
    let primary = members
        .iter()
        .filter_map(|&n| {
            sim.component::<Store>(n)
                .filter(|s| s.is_primary())
                .map(|s| (s.epoch(), n))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    primary.map(|p| p.1).unwrap_or_else(|| {
        *members
            .iter()
            .max_by(|&&a, &&b| {
                let len = |n: NodeId| sim.env(n).disk.durable_records().len();
                len(a).cmp(&len(b)).then(b.cmp(&a))
            })
            .expect("a shard has members")
    })
}

/// Whether the configuration promises a shard zero loss of acknowledged writes.
pub fn promise(s: &Scenario, fallbacks: u64) -> Promise {
    let stores = &s.topology.stores;
    match (stores.replicas, stores.config.replication) {
        (0, _) => Promise {
            zero_loss: true,
            why: "single node, synced before ack: no loss promised".into(),
        },
        (_, ReplicationMode::Async) => Promise {
            zero_loss: false,
            why: "async replication promises nothing: loss counted, not failed".into(),
        },
        (_, ReplicationMode::SemiSync) => match fallbacks {
            0 => Promise {
                zero_loss: true,
                why: "semi-sync never fell back: no loss promised".into(),
            },
            n => Promise {
                zero_loss: false,
                why: format!("semi-sync fell back to async {n} times: loss counted, not failed"),
            },
        },
    }
}
