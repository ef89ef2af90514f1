//! Convergence: after the faults heal and the workload stops, every shard's members that are up
//! and in the shard hold the same durable log (the same last record and the same data) within
//! `converge_within_s` (safety, then liveness). Not applicable to single-node shards: there is
//! nothing to converge. A detached member (a failed primary not re-attached, or a member whose
//! log diverged; read-only until a re-clone) is out of the shard: it is named with its errant
//! records in the detail, never compared.
//!
//! Shown to fail on the bug it looks for: `tests/it/replication.rs`
//! (`the_convergence_checker_catches_a_replica_that_never_catches_up`:
//! `bug_replica_never_fetches`; and `convergence_is_not_applicable_to_single_node_shards`).

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
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
        if ev.members.iter().all(|m| m.len() < 2) {
            return CheckResult::not_applicable(
                "convergence",
                Class::Liveness,
                "every store shard is a single node: there is nothing to converge".into(),
            );
        }
        let mut behind = Vec::new();
        let mut detached = Vec::new();
        for (i, members) in ev.members.iter().enumerate() {
            for m in members.iter().filter(|m| m.up) {
                if let Some(errant) = m.detached {
                    detached.push(match errant {
                        Some(n) => format!(
                            "shard {i}: {} is detached with {n} errant records (needs a re-clone)",
                            m.name
                        ),
                        None => format!("shard {i}: {} is detached (needs a re-clone)", m.name),
                    });
                }
            }
            let up: Vec<_> = members
                .iter()
                .filter(|m| m.up && m.detached.is_none())
                .collect();
            let Some(reference) = up.iter().max_by_key(|m| m.fingerprint.0) else {
                behind.push(format!("shard {i}: no member is up"));
                continue;
            };
            for m in &up {
                if m.fingerprint != reference.fingerprint {
                    behind.push(format!(
                        "shard {i}: {} holds {} records (epoch {}), {} holds {} (epoch {}){}",
                        m.name,
                        m.fingerprint.0,
                        m.fingerprint.1,
                        reference.name,
                        reference.fingerprint.0,
                        reference.fingerprint.1,
                        if m.fingerprint.0 == reference.fingerprint.0 {
                            " with different data"
                        } else {
                            ""
                        }
                    ));
                }
            }
            for m in members.iter().filter(|m| !m.up) {
                behind.push(format!("shard {i}: {} is still down", m.name));
            }
        }
        let mut detail = if behind.is_empty() {
            format!(
                "every shard's members agree {} s after the workload stopped",
                self.within_s
            )
        } else {
            format!(
                "{} s after the workload stopped: {}",
                self.within_s,
                behind.join("; ")
            )
        };
        if !detached.is_empty() {
            detail.push_str(&format!("; out of the shard: {}", detached.join("; ")));
        }
        CheckResult::new("convergence", Class::Liveness, behind.is_empty(), detail)
    }
}
