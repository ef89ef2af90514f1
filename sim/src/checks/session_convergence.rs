//! Session convergence: once the workload stops and `converge_within_s` has passed, every
//! session replica that is up holds exactly its master's data.
//!
//! Shown to fail on the bug it looks for: `tests/it/sessions.rs`
//! (`the_session_convergence_check_catches_a_replica_that_drops_changes`:
//! `bug_replica_drops_changes`).

use super::{CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "session_convergence",
    enabled: |s| s.checks.converge_within_s.is_some() && s.topology.sessions.is_some(),
    requires: super::always,
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(SessionConvergence {
        within_s: s.checks.converge_within_s.unwrap_or(0.0),
    })
}

struct SessionConvergence {
    within_s: f64,
}

impl Checker for SessionConvergence {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let Some(sessions) = &ev.sessions else {
            return CheckResult::not_applicable(
                "session_convergence",
                Class::Liveness,
                "the scenario has no session cluster".into(),
            );
        };
        let mut behind = Vec::new();
        for &(_, name, replica) in &sessions.nodes {
            let Some(master) = replica.replica_of() else {
                continue;
            };
            let Some(&(_, master_name, m)) = sessions.nodes.iter().find(|(id, ..)| *id == master)
            else {
                continue;
            };
            if replica.data() != m.data() {
                behind.push(format!(
                    "{name} holds {} keys, its master {master_name} holds {}",
                    replica.data().len(),
                    m.data().len()
                ));
            }
        }
        behind.extend(sessions.down.iter().map(|d| format!("{d} is still down")));
        let passed = behind.is_empty();
        let detail = if passed {
            format!(
                "every session replica holds its master's data {} s after the workload stopped",
                self.within_s
            )
        } else {
            behind.join("; ")
        };
        CheckResult::new("session_convergence", Class::Liveness, passed, detail)
    }
}
