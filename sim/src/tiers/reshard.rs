//! Live resharding (`topology.reshard`): the new shards and the resharder that fills them from
//! the (single) source shard and switches the services over.

use super::{RunView, Stream, Tier};
use crate::evidence::Evidence;
use crate::kernel::{Factory, Sim};
use crate::plan::{Plan, Role};
use crate::scenario::{check, within, Invalid, Scenario};
use crate::tiers::service::SERVICE;
use crate::tiers::store::{settled, shard_view, STORE};
use minitwin_components::reshard::Resharder;
use minitwin_components::store::Store;
use minitwin_components::NodeId;

/// New shard `rank` of the split.
pub const RESHARD_TARGET: Role = Role("reshard-target");
pub const RESHARDER: Role = Role("resharder");

pub struct Resharding;

impl Tier for Resharding {
    fn key(&self) -> &'static str {
        "topology.reshard"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        let Some(r) = &s.topology.reshard else {
            return Ok(());
        };
        let p = |f: &'static str| ["topology", "reshard", f];
        within(r.config.validate(), &p("config"))?;
        check(
            (2..=64).contains(&r.to_shards),
            &p("to_shards"),
            "must be between 2 and 64",
        )?;
        let stores = &s.topology.stores;
        check(
            stores.shards == 1 && stores.replicas == 0,
            &p("to_shards"),
            "resharding splits a single unreplicated shard for now: set stores.shards = 1, replicas = 0",
        )
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        let Some(r) = &s.topology.reshard else { return };
        let zs = &s.topology.stores.zones;
        for i in 0..r.to_shards {
            let zone = &zs[i as usize % zs.len()];
            plan.add(format!("store-new-{i}"), zone, RESHARD_TARGET, 0, i);
        }
        plan.add("resharder".into(), &zs[0], RESHARDER, 0, 0);
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let Some(r) = &s.topology.reshard else { return };
        let targets = plan.ids(RESHARD_TARGET);
        for &t in &targets {
            let config = s.topology.stores.config.clone();
            out.push((t, Box::new(move || Box::new(Store::new(config.clone())))));
        }
        let source = plan.groups(STORE)[0][0];
        let services = plan.ids(SERVICE);
        let id = plan.one(RESHARDER).expect("planned");
        let config = r.config.clone();
        out.push((
            id,
            Box::new(move || Box::new(Resharder::new(config.clone(), source, &targets, &services))),
        ));
    }

    fn prepare(&self, _s: &Scenario, sim: &mut Sim, plan: &Plan) {
        for n in plan.ids(RESHARD_TARGET) {
            sim.disk_mut(n).capture_purged();
        }
    }

    fn stream(&self, sim: &mut Sim, plan: &Plan, _before_s: u64, out: &mut Stream) {
        for t in plan.ids(RESHARD_TARGET) {
            settled(sim, &[t], out);
        }
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let switched = run
            .plan
            .one(RESHARDER)
            .and_then(|n| run.sim.component::<Resharder>(n))
            .is_some_and(|r| r.switched());
        if switched {
            // The new shards speak for the keyspace now.
            let targets = run.plan.ids(RESHARD_TARGET);
            ev.shards = targets.iter().map(|&t| shard_view(run.sim, &[t])).collect();
        }
    }
}
