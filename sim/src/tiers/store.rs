//! The store shards (`topology.stores`): each shard a primary and `replicas` replicas over
//! write-ahead logs, and, with replicas, the failover orchestrator.

use super::{Load, RunView, SettledRecord, Stream, Tier};
use crate::evidence::{Evidence, MemberView, ShardView};
use crate::kernel::{Factory, Sim};
use crate::plan::{Plan, Role};
use crate::scenario::{check, count_and_zones, within, Invalid, Scenario};
use crate::tiers::mirror::MIRROR_JOB;
use crate::tiers::reshard::RESHARDER;
use crate::tiers::service::SERVICE;
use minitwin_components::config;
use minitwin_components::repl::Orchestrator;
use minitwin_components::store::{DurableState, Placement, Record, ReplicationMode, Store};
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
        if t.replicas > 0 && t.config.replication == ReplicationMode::SemiSync {
            check(
                t.config.semi_sync_ack_count <= t.replicas,
                &["topology", "stores", "config", "semi_sync_ack_count"],
                format!(
                    "{} replica acknowledgements can never come from {} replicas",
                    t.config.semi_sync_ack_count, t.replicas
                ),
            )?;
        }
        within(
            config::nested("sync_latency", t.disk.sync_latency.validate()),
            &p("disk"),
        )
    }

    fn estimate(&self, s: &Scenario) -> Load {
        let t = &s.topology.stores;
        let members = f64::from(t.shards * (t.replicas + 1));
        let heartbeats = if t.replicas > 0 {
            members * 2_000.0 / t.config.heartbeat_interval_ms
                + members * 2_000.0 / t.orchestrator.poll_interval_ms
        } else {
            0.0
        };
        // Each member holds the keys written (committed state, checkpoint state, snapshot)
        // and its unpurged log.
        let keys = s.workload.users as f64 / f64::from(t.shards);
        let log = t.config.purge_after_records as f64 * 2.0;
        Load {
            events_per_s: heartbeats,
            bytes: members * (keys * 80.0 + log * 64.0),
        }
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
            let n = t.orchestrator.raft_nodes;
            if n <= 1 {
                plan.add("orchestrator".into(), &zs[0], ORCHESTRATOR, 0, 0);
            }
            // A raft group: one orchestrator per store zone in turn.
            for i in (0..n).filter(|_| n > 1) {
                let zone = &zs[i as usize % zs.len()];
                plan.add(format!("orchestrator-{i}"), zone, ORCHESTRATOR, 0, i);
            }
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let t = &s.topology.stores;
        let shards = plan.groups(STORE);
        // The log's readers: each shard's mirror job, the resharder of the (only) shard, and an
        // archiver fed by the store.
        let mirror_jobs = plan.ids(MIRROR_JOB);
        let resharder = plan.one(RESHARDER);
        let archiver = plan
            .one(super::archive::ARCHIVER)
            .filter(|_| super::archive::fed_by_store(s));
        for (shard, members) in shards.iter().enumerate() {
            let mut readers: Vec<NodeId> = mirror_jobs.get(shard).copied().into_iter().collect();
            readers.extend(resharder.filter(|_| shard == 0));
            readers.extend(archiver);
            for &me in members {
                let config = t.config.clone();
                let placement = Placement {
                    shard: shard as u32,
                    members: members.clone(),
                    readers: readers.clone(),
                };
                out.push((
                    me,
                    Box::new(move || {
                        Box::new(Store::member(config.clone(), me, placement.clone()))
                    }),
                ));
            }
        }
        let group = plan.ids(ORCHESTRATOR);
        for &id in &group {
            // Routes go to the services and to the mirror jobs, which read from primaries.
            let mut routed = plan.ids(SERVICE);
            routed.extend(plan.ids(MIRROR_JOB));
            let config = t.orchestrator.clone();
            let shards = shards.clone();
            let peers: Vec<NodeId> = group.iter().copied().filter(|&p| p != id).collect();
            out.push((
                id,
                Box::new(move || {
                    let o = Orchestrator::new(config.clone(), &shards, &routed);
                    Box::new(if peers.is_empty() {
                        o
                    } else {
                        o.in_group(peers.clone())
                    })
                }),
            ));
        }
    }

    fn prepare(&self, _s: &Scenario, sim: &mut Sim, plan: &Plan) {
        for n in plan.ids(STORE) {
            sim.disk_mut(n).capture_purged();
        }
    }

    fn stream(&self, sim: &mut Sim, plan: &Plan, _before_s: u64, out: &mut Stream) {
        for members in plan.groups(STORE) {
            settled(sim, &members, out);
        }
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let shards = run.plan.groups(STORE);
        ev.shards = shards.iter().map(|m| shard_view(run.sim, m)).collect();
        ev.members = shards
            .iter()
            .map(|m| m.iter().map(|&n| member_view(run.sim, n)).collect())
            .collect();
    }
}

/// Hands over the records the shard's members purged: settled, so the same on every member
/// (the checker keeps one copy per shard and lsn).
pub fn settled(sim: &mut Sim, members: &[NodeId], out: &mut Stream) {
    for &n in members {
        for (lsn, bytes) in sim.disk_mut(n).take_purged() {
            let r = Record::decode(&bytes).expect("stores log records they can decode");
            out.settled.push(SettledRecord {
                shard: members[0],
                lsn,
                key: r.key,
                value: r.value,
            });
        }
    }
}

/// What a node's disk holds, read back as a restart would.
pub fn durable_state(sim: &Sim, node: NodeId) -> DurableState {
    let disk = &sim.env(node).disk;
    DurableState::read(disk.snapshot(), disk.durable_records())
}

fn member_view(sim: &Sim, node: NodeId) -> MemberView {
    let d = durable_state(sim, node);
    MemberView {
        name: sim.env(node).name.clone(),
        up: sim.env(node).up,
        detached: sim.component::<Store>(node).and_then(|s| s.detached()),
        fingerprint: (d.tail_lsn, d.tail_epoch, d.digest()),
    }
}

/// The view of a shard through the member whose disk speaks for it.
pub fn shard_view(sim: &Sim, members: &[NodeId]) -> ShardView {
    let n = authority(sim, members);
    let unpurged = sim
        .env(n)
        .disk
        .durable_records()
        .iter()
        .filter_map(|b| Record::decode(b))
        .map(|r| (r.key, r.value))
        .collect();
    let mut view = ShardView {
        name: sim.env(n).name.clone(),
        durable: durable_state(sim, n),
        unpurged,
        mismatches: 0,
        first_mismatch: None,
    };
    if let Some(store) = sim.component::<Store>(n) {
        // What the store serves must be what its durable log says, up to what it applied.
        let disk = &sim.env(n).disk;
        let applied = (store.applied_lsn().saturating_sub(disk.base_lsn()) as usize)
            .min(disk.durable_records().len());
        let logged = DurableState::read(disk.snapshot(), &disk.durable_records()[..applied]);
        for (&k, &v) in &logged.state {
            if store.get(k) != Some(v) {
                view.mismatches += 1;
                view.first_mismatch.get_or_insert((k, store.get(k), v));
            }
        }
    }
    view
}

/// The member whose disk speaks for the shard at the end: the up primary of the highest epoch,
/// else the member with the longest durable log.
pub fn authority(sim: &Sim, members: &[NodeId]) -> NodeId {
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
                let len = |n: NodeId| sim.env(n).disk.durable_lsn();
                len(a).cmp(&len(b)).then(b.cmp(&a))
            })
            .expect("a shard has members")
    })
}
