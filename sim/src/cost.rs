//! The cost of a run: every node (but the workload's clients) at a price per node-hour by its
//! role, so that variants can be compared on what they would cost to run.
//!
//! The default prices are illustrative round numbers of the order of small cloud instances
//! (US dollars per hour); a scenario sets its own in `[cost] node_hour`.

use crate::plan::Plan;
use minitwin_components::config::{self, Checked};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// Price per node-hour by role (`gateway`, `service`, `store`, ...), over the defaults.
    pub node_hour: BTreeMap<String, f64>,
}

/// Default prices per node-hour, by role.
pub const DEFAULT_NODE_HOUR: &[(&str, f64)] = &[
    ("gateway", 0.05),
    ("service", 0.10),
    ("store", 0.25),
    ("orchestrator", 0.02),
    ("mirror-job", 0.02),
    ("mirror-copy", 0.25),
    ("reshard-target", 0.25),
    ("resharder", 0.02),
    ("archiver", 0.02),
    ("session-node", 0.12),
    ("session-admin", 0.0),
];

impl CostConfig {
    /// Ranges: every role named must be a known one; prices 0-1,000,000 per node-hour.
    pub fn validate(&self) -> Checked {
        for (role, &price) in &self.node_hour {
            config::rule(
                DEFAULT_NODE_HOUR.iter().any(|(r, _)| r == role),
                &format!("node_hour.{role}"),
                format!(
                    "`{role}` is not a role; roles are {:?}",
                    DEFAULT_NODE_HOUR.iter().map(|r| r.0).collect::<Vec<_>>()
                ),
            )?;
            config::range(&format!("node_hour.{role}"), price, 0.0, 1e6)?;
        }
        Ok(())
    }

    /// The price of one node-hour of `role`.
    pub fn price(&self, role: &str) -> f64 {
        self.node_hour.get(role).copied().unwrap_or_else(|| {
            DEFAULT_NODE_HOUR
                .iter()
                .find(|(r, _)| *r == role)
                .map_or(0.0, |r| r.1)
        })
    }

    /// What the plan's nodes cost per hour (the workload's clients are free; an autoscaled
    /// tier's slots count as its initial replicas, and the run corrects that by the replicas
    /// that really ran).
    pub fn per_hour(&self, plan: &Plan) -> f64 {
        plan.nodes
            .iter()
            .filter(|n| !n.instrument && !n.starts_down)
            .map(|n| self.price(n.role.0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_overrides_its_default_and_an_unknown_role_is_refused() {
        let mut c = CostConfig::default();
        assert_eq!(c.price("store"), 0.25);
        c.node_hour.insert("store".into(), 1.5);
        assert_eq!(c.price("store"), 1.5);
        assert!(c.validate().is_ok());
        c.node_hour.insert("stroe".into(), 1.0);
        let err = c.validate().unwrap_err();
        assert!(err.message.contains("`stroe` is not a role"), "{err:?}");
        assert_eq!(err.field, "node_hour.stroe");
        c.node_hour.remove("stroe");
        c.node_hour.insert("gateway".into(), -1.0);
        assert!(c.validate().is_err());
    }
}
