//! The register workload (`workload.registers`): Jepsen-style clients on the store shards whose
//! histories the linearizability check judges.

use super::{Load, RunView, Tier};
use crate::evidence::Evidence;
use crate::kernel::Factory;
use crate::plan::{Plan, Role};
use crate::register::RegisterClient;
use crate::scenario::{within, Invalid, Scenario};
use crate::tiers::store::STORE;
use minitwin_components::NodeId;

pub const REGISTERS: Role = Role("registers");

pub struct Registers;

impl Tier for Registers {
    fn key(&self) -> &'static str {
        "workload.registers"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        match &s.workload.registers {
            Some(r) => within(r.validate(), &["workload", "registers"]),
            None => Ok(()),
        }
    }

    fn estimate(&self, s: &Scenario) -> Load {
        let Some(r) = &s.workload.registers else {
            return Load::default();
        };
        let ops_per_s = f64::from(r.processes) * 1_000.0 / r.think_ms.max(1.0);
        // Histories keep every operation for the linearizability check.
        let seconds = s.duration_s;
        Load {
            events_per_s: ops_per_s * 5.0,
            bytes: ops_per_s * seconds * 64.0,
        }
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        if s.workload.registers.is_some() {
            plan.add_instrument("registers".into(), &s.workload.zone, REGISTERS);
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let (Some(config), Some(id)) = (&s.workload.registers, plan.one(REGISTERS)) else {
            return;
        };
        let shards: Vec<NodeId> = plan.groups(STORE).iter().map(|g| g[0]).collect();
        let config = config.clone();
        out.push((
            id,
            Box::new(move || Box::new(RegisterClient::new(config.clone(), &shards, end_ns))),
        ));
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        ev.registers = run
            .plan
            .one(REGISTERS)
            .and_then(|n| run.sim.component::<RegisterClient>(n))
            .map(|r| &r.histories);
    }
}
