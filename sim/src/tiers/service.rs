//! The service cluster: instances with worker pools calling the store shards
//! (`topology.services`).

use super::Tier;
use crate::kernel::Factory;
use crate::plan::{Plan, Role};
use crate::scenario::{count_and_zones, within, Invalid, Scenario};
use crate::tiers::store::STORE;
use minitwin_components::service::Service;
use minitwin_components::NodeId;

pub const SERVICE: Role = Role("service");

pub struct Services;

impl Tier for Services {
    fn key(&self) -> &'static str {
        "topology.services"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        let t = &s.topology.services;
        count_and_zones(s, "services", "count", t.count, &t.zones)?;
        within(t.config.validate(), &["topology", "services", "config"])
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        let t = &s.topology.services;
        // An autoscaled tier has a slot for every replica it may reach; those beyond the
        // initial count start down.
        let slots = s
            .topology
            .autoscaler
            .as_ref()
            .map_or(t.count, |a| a.max_replicas.max(t.count));
        for i in 0..slots {
            let zone = &t.zones[i as usize % t.zones.len()];
            let name = format!("service-{i}");
            if i < t.count {
                plan.add(name, zone, SERVICE, 0, i);
            } else {
                plan.add_slot(name, zone, SERVICE, i);
            }
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        // Every service starts out routing to each shard's initial primary.
        let primaries: Vec<NodeId> = plan.groups(STORE).iter().map(|m| m[0]).collect();
        for id in plan.ids(SERVICE) {
            let (config, shards) = (s.topology.services.config.clone(), primaries.clone());
            out.push((
                id,
                Box::new(move || Box::new(Service::new(config.clone(), &shards))),
            ));
        }
    }
}
