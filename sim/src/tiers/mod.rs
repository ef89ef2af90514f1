//! Tiers: one module per part of the topology, and the registry of them.
//!
//! A tier validates its part of the scenario, plans its nodes, builds their components, and
//! after the run reads its own components into the [`Evidence`] that checkers judge and into
//! its summary lines and result rows. Adding a tier is its module, its components, and one line
//! in [`TIERS`].
//!
//! Reading order: [`edge`] (gateways), [`service`], [`store`] (shards, replicas and the
//! orchestrator), [`mirror`], [`reshard`], [`archive`], [`sessions`], [`registers`],
//! [`scaler`] (the control plane of an autoscaled service tier), [`monitoring`] (a
//! Prometheus-like monitor) and [`users`] (the workload's
//! client, last so that it sees every other tier's nodes).

pub mod archive;
pub mod edge;
pub mod mirror;
pub mod monitoring;
pub mod registers;
pub mod reshard;
pub mod scaler;
pub mod service;
pub mod sessions;
pub mod store;
pub mod users;

use crate::evidence::Evidence;
use crate::kernel::{Factory, Sim};
use crate::outcome::{Row, Table};
use crate::plan::Plan;
use crate::scenario::{Invalid, Scenario};
use crate::workload::{AckedWrite, Second};
use minitwin_components::NodeId;

/// Every tier, in the order their nodes are planned (and so numbered).
pub static TIERS: &[&dyn Tier] = &[
    &edge::Edge,
    &service::Services,
    &store::Stores,
    &mirror::Mirroring,
    &reshard::Resharding,
    &archive::Archiving,
    &sessions::Sessions,
    &registers::Registers,
    &scaler::Scaling,
    &monitoring::Monitoring,
    &users::Users,
];

/// What a finished run offers a tier: the scenario, the plan and the simulation.
pub struct RunView<'a> {
    pub scenario: &'a Scenario,
    pub plan: &'a Plan,
    pub sim: &'a Sim,
    /// The autoscaled tier's exact replica-second totals (zero without an autoscaler).
    pub provisioning: crate::gauges::Provisioning,
}

/// A tier's contribution to the report.
#[derive(Debug, Default)]
pub struct TierReport {
    /// Summary lines (label, text), printed after the core numbers.
    pub lines: Vec<(String, String)>,
    /// Rows for `metrics.csv`, beside every node's own metrics.
    pub rows: Vec<Row>,
    /// Extra CSV files (one row per day of the archiver, for example).
    pub tables: Vec<Table>,
}

/// What a tier expects a run to cost: events per simulated second, and bytes held at once.
/// Rough (within a small factor), for refusing runs that would not finish or fit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Load {
    pub events_per_s: f64,
    pub bytes: f64,
}

impl std::ops::Add for Load {
    type Output = Load;
    fn add(self, o: Load) -> Load {
        Load {
            events_per_s: self.events_per_s + o.events_per_s,
            bytes: self.bytes + o.bytes,
        }
    }
}

/// What the tiers hand over during the run.
#[derive(Debug, Default)]
pub struct Stream {
    /// The users' finished seconds: (second, counts).
    pub seconds: Vec<(u64, Second)>,
    /// Writes the users saw acknowledged.
    pub acked_writes: Vec<AckedWrite>,
    /// Log records purged into a checkpoint: settled on every member, so part of the shard's
    /// history for good.
    pub settled: Vec<SettledRecord>,
}

/// A settled record of a shard's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettledRecord {
    /// The shard, named by its first member (unique across layouts, resharding included).
    pub shard: NodeId,
    pub lsn: u64,
    pub key: u64,
    pub value: u64,
}

/// One part of the topology.
pub trait Tier: Sync {
    /// Its key in scenario files (`topology.stores`), for messages.
    fn key(&self) -> &'static str;

    /// Checks its part of the scenario: ranges, zones, references to other tiers.
    fn validate(&self, _s: &Scenario) -> Result<(), Invalid> {
        Ok(())
    }

    /// Adds its nodes to the plan (none when the scenario does not have this tier).
    fn plan(&self, s: &Scenario, plan: &mut Plan);

    /// A factory for every node it planned.
    fn build(&self, s: &Scenario, plan: &Plan, end_ns: u64, out: &mut Vec<(NodeId, Factory)>);

    /// After the run: reads its own components into the evidence.
    fn collect<'a>(&self, _run: &RunView<'a>, _ev: &mut Evidence<'a>) {}

    /// After the checks: its summary lines, rows and tables.
    fn report(&self, _run: &RunView<'_>, _ev: &Evidence<'_>, _out: &mut TierReport) {}

    /// What this tier costs a run of the scenario (see [`estimate`]).
    fn estimate(&self, _s: &Scenario) -> Load {
        Load::default()
    }

    /// Before the run: sets up the simulator's instruments its checkers need.
    fn prepare(&self, _s: &Scenario, _sim: &mut Sim, _plan: &Plan) {}

    /// During the run, between stretches of simulated time: hands over what is final and would
    /// otherwise pile up in its components (seconds before `before_s`, acknowledged writes,
    /// settled log records), so memory stays flat however long the run.
    fn stream(&self, _sim: &mut Sim, _plan: &Plan, _before_s: u64, _out: &mut Stream) {}
}

/// The scenario as a plan: every tier adds its nodes, in registration order.
pub fn plan(s: &Scenario) -> Plan {
    let mut plan = Plan::new(&s.topology.zones);
    for tier in TIERS {
        tier.plan(s, &mut plan);
    }
    plan
}

/// Every tier's validation, in registration order; the first problem wins.
pub fn validate(s: &Scenario) -> Result<(), Invalid> {
    TIERS.iter().try_for_each(|t| t.validate(s))
}

/// A run's estimated cost: events over the whole run, and bytes held at the peak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub events: f64,
    pub bytes: f64,
}

/// Runs beyond this many events are refused unless forced (about a quarter of an hour at the
/// kernel's measured 6-7 million events per second).
pub const EVENT_BUDGET: f64 = 5e9;
/// Runs estimated to hold more than this are refused unless forced.
pub const BYTE_BUDGET: f64 = 4.0 * 1024.0 * 1024.0 * 1024.0;

/// The scenario's estimated cost, summed over its tiers, for a run of `duration_s` plus the
/// settle time.
pub fn estimate(s: &Scenario) -> Estimate {
    let load = TIERS.iter().fold(Load::default(), |l, t| l + t.estimate(s));
    let seconds = s.duration_s + s.checks.converge_within_s.unwrap_or(0.0);
    // Every node's metrics, network matrices and kernel bookkeeping.
    let nodes = plan(s).len() as f64;
    Estimate {
        events: load.events_per_s * seconds,
        bytes: load.bytes + nodes * nodes * 32.0 + nodes * 64_000.0 + 8e6,
    }
}

impl Estimate {
    /// Why the run is over budget, if it is.
    pub fn over_budget(&self) -> Option<String> {
        if self.events > EVENT_BUDGET {
            return Some(format!(
                "about {:.1e} events, over the budget of {EVENT_BUDGET:.0e}",
                self.events
            ));
        }
        if self.bytes > BYTE_BUDGET {
            return Some(format!(
                "about {:.1} GiB of memory, over the budget of {:.0} GiB",
                self.bytes / 1024f64.powi(3),
                BYTE_BUDGET / 1024f64.powi(3)
            ));
        }
        None
    }
}
