//! The edge: nginx-like gateways in front of the service tier (`topology.gateways`).

use super::{Load, RunView, Tier};
use crate::evidence::Evidence;
use crate::kernel::Factory;
use crate::plan::{Plan, Role};
use crate::scenario::{count_and_zones, within, Invalid, Scenario};
use crate::tiers::service::SERVICE;
use minitwin_components::gateway::{Gateway, CACHE_HITS_TOTAL, CACHE_MISSES_TOTAL};
use minitwin_components::NodeId;

pub const GATEWAY: Role = Role("gateway");

pub struct Edge;

impl Tier for Edge {
    fn key(&self) -> &'static str {
        "topology.gateways"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        let g = &s.topology.gateways;
        count_and_zones(s, "gateways", "count", g.count, &g.zones)?;
        within(g.config.validate(), &["topology", "gateways", "config"])
    }

    fn estimate(&self, s: &Scenario) -> Load {
        let g = &s.topology.gateways;
        Load {
            events_per_s: 0.0,
            bytes: f64::from(g.count) * g.config.cache_max_entries as f64 * 96.0,
        }
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        let g = &s.topology.gateways;
        for i in 0..g.count {
            let zone = &g.zones[i as usize % g.zones.len()];
            plan.add(format!("gateway-{i}"), zone, GATEWAY, 0, i);
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        out.extend(gateways(s, plan, false));
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let (mut hits, mut misses) = (0, 0);
        for g in run.plan.ids(GATEWAY) {
            let m = &run.sim.env(g).metrics;
            hits += m.counter_value(CACHE_HITS_TOTAL).unwrap_or(0);
            misses += m.counter_value(CACHE_MISSES_TOTAL).unwrap_or(0);
        }
        ev.summary.cache_hit_ratio = if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        };
    }
}

/// Every gateway's factory. Each balances over every service slot; it routes to the services
/// running from the start, and an autoscaler's endpoints follow, unless `every_slot`: then to
/// every slot at once, passive health finding the ones with no pod down (nginx's static
/// upstreams), for a deployment where another orchestrator starts the pods
/// (`control_plane = "external"` in a cluster file).
pub fn gateways(s: &Scenario, plan: &Plan, every_slot: bool) -> Vec<(NodeId, Factory)> {
    let ups: Vec<(NodeId, u32)> = plan.ids(SERVICE).into_iter().map(|n| (n, 1)).collect();
    let initial: Vec<NodeId> = plan
        .ids(SERVICE)
        .into_iter()
        .filter(|&n| every_slot || !plan.node(n).starts_down)
        .collect();
    let mut out: Vec<(NodeId, Factory)> = Vec::new();
    for id in plan.ids(GATEWAY) {
        let (config, ups) = (s.topology.gateways.config.clone(), ups.clone());
        let initial = initial.clone();
        out.push((
            id,
            Box::new(move || Box::new(Gateway::new(config.clone(), &ups).with_endpoints(&initial))),
        ));
    }
    out
}
