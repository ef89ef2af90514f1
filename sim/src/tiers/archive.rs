//! The cold-storage archiver (`topology.archive`): one node `archiver` in the first store zone,
//! and its daily accounting (`archive.csv`).

use super::{Load, RunView, Tier, TierReport};
use crate::evidence::Evidence;
use crate::kernel::Factory;
use crate::outcome::Table;
use crate::plan::{Plan, Role};
use crate::scenario::{within, Invalid, Scenario};
use minitwin_components::archive::{Archiver, Source};
use minitwin_components::NodeId;

pub const ARCHIVER: Role = Role("archiver");

/// Whether the archiver takes its objects from the store shards' logs.
pub fn fed_by_store(s: &Scenario) -> bool {
    s.topology
        .archive
        .as_ref()
        .is_some_and(|a| a.config.source == Source::Store)
}

pub struct Archiving;

impl Tier for Archiving {
    fn key(&self) -> &'static str {
        "topology.archive"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        match &s.topology.archive {
            Some(a) => within(a.config.validate(), &["topology", "archive", "config"]),
            None => Ok(()),
        }
    }

    fn estimate(&self, s: &Scenario) -> Load {
        let Some(a) = &s.topology.archive else {
            return Load::default();
        };
        let days = s.duration_s / 86_400.0;
        Load {
            events_per_s: 10.0 / (a.config.step_hours * 3_600.0),
            bytes: a.config.objects_per_day * days * 96.0,
        }
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        if s.topology.archive.is_some() {
            let zone = &s.topology.stores.zones[0];
            plan.add("archiver".into(), zone, ARCHIVER, 0, 0);
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let (Some(a), Some(id)) = (&s.topology.archive, plan.one(ARCHIVER)) else {
            return;
        };
        let config = a.config.clone();
        let shards = if fed_by_store(s) {
            plan.groups(super::store::STORE)
        } else {
            Vec::new()
        };
        out.push((
            id,
            Box::new(move || Box::new(Archiver::fed_by(config.clone(), &shards))),
        ));
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        ev.summary.storage_efficiency = run
            .plan
            .one(ARCHIVER)
            .and_then(|n| run.sim.component::<Archiver>(n))
            .and_then(|a| a.days.last())
            .map(|d| d.storage_efficiency);
    }

    fn report(&self, run: &RunView<'_>, _: &Evidence<'_>, out: &mut TierReport) {
        let Some(archiver) = run
            .plan
            .one(ARCHIVER)
            .and_then(|n| run.sim.component::<Archiver>(n))
        else {
            return;
        };
        if let Some(d) = archiver.days.last() {
            let per_tier: Vec<String> = archiver
                .tier_names()
                .iter()
                .zip(archiver.objects_per_tier())
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            out.lines.push((
                "archive".into(),
                format!(
                    "day {}: {} objects ({}), hot fraction {:.3}, storage efficiency {:.3}, {:.2}/month; charged once: early deletion {:.2}, retrieval {:.2}",
                    d.day,
                    d.objects,
                    per_tier.join(", "),
                    d.hot_fraction,
                    d.storage_efficiency,
                    d.cost_per_month,
                    archiver.early_deletion_cost(),
                    archiver.retrieval_cost()
                ),
            ));
        }
        if archiver.days.is_empty() {
            return;
        }
        let rows = archiver
            .days
            .iter()
            .map(|d| {
                vec![
                    d.day.to_string(),
                    d.objects.to_string(),
                    format!("{}", d.logical_bytes),
                    format!("{}", d.billed_bytes),
                    format!("{:.6}", d.hot_fraction),
                    format!("{:.6}", d.storage_efficiency),
                    format!("{:.2}", d.cost_per_month),
                ]
            })
            .collect();
        out.tables.push(Table {
            file: "archive.csv",
            header: vec![
                "day",
                "objects",
                "logical_bytes",
                "billed_bytes",
                "hot_fraction",
                "storage_efficiency",
                "cost_per_month",
            ],
            rows,
        });
    }
}
