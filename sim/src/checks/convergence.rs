//! Convergence: after the faults heal and the workload stops, every shard's members that are up
//! hold the same durable log within `converge_within_s` (safety, then liveness).

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::{Evidence, MemberLog};
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "converge_within_s",
    enabled: |s| s.checks.converge_within_s.is_some(),
    requires: always,
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Convergence {
        within_s: s.checks.converge_within_s.unwrap_or(0.0),
    })
}

struct Convergence {
    within_s: f64,
}

impl Checker for Convergence {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        convergence(&ev.members, self.within_s)
    }
}

/// After healing, every member that is up must hold the same durable log as the longest one.
pub fn convergence(shards: &[Vec<MemberLog<'_>>], within_s: f64) -> CheckResult {
    let mut behind = Vec::new();
    for (i, members) in shards.iter().enumerate() {
        let Some(reference) = members.iter().filter(|m| m.up).max_by_key(|m| m.log.len()) else {
            behind.push(format!("shard {i}: no member is up"));
            continue;
        };
        for m in members.iter().filter(|m| m.up) {
            if m.log != reference.log {
                behind.push(format!(
                    "shard {i}: {} holds {} records, {} holds {}",
                    m.name,
                    m.log.len(),
                    reference.name,
                    reference.log.len()
                ));
            }
        }
        for m in members.iter().filter(|m| !m.up) {
            behind.push(format!("shard {i}: {} is still down", m.name));
        }
    }
    let detail = if behind.is_empty() {
        format!("every shard's members agree {within_s} s after the workload stopped")
    } else {
        format!(
            "{} s after the workload stopped: {}",
            within_s,
            behind.join("; ")
        )
    };
    CheckResult::new("convergence", Class::Liveness, behind.is_empty(), detail)
}
