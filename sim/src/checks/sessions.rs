//! Sessions: read-your-writes and monotonic reads of the session client hold wherever no
//! failover happened (violations are counted either way), and lost session writes are counted.

use super::{CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;
use minitwin_components::session::client::{
    monotonic_read_violations, read_your_writes_violations,
};
use std::collections::BTreeMap;

pub static REGISTRATION: Registration = Registration {
    name: "sessions",
    enabled: |s| s.checks.sessions,
    requires: |s| match s.topology.sessions {
        Some(_) => Ok(()),
        None => Err("checks.sessions needs topology.sessions".into()),
    },
    make,
};

fn make(_: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(SessionsCheck)
}

struct SessionsCheck;

impl Checker for SessionsCheck {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let Some(s) = &ev.sessions else {
            return CheckResult::not_applicable(
                "sessions",
                Class::Correctness,
                "the scenario has no session cluster".into(),
            );
        };
        let mut last_acked: BTreeMap<u64, u64> = BTreeMap::new();
        for op in s.history.iter().filter(|o| o.set) {
            let v = last_acked.entry(op.key).or_insert(0);
            *v = (*v).max(op.value.unwrap_or(0));
        }
        let lost = last_acked
            .iter()
            .filter(|(&k, &v)| {
                let served = s
                    .nodes
                    .iter()
                    .find(|n| n.2.serves(k))
                    .and_then(|n| n.2.get(k));
                served.unwrap_or(0) < v
            })
            .count();
        sessions(s.history, lost, s.failovers, s.failover_s)
    }
}

/// The session cluster's guarantees, as seen by its client.
pub fn sessions(
    history: &[minitwin_components::session::client::SessionOp],
    lost_writes: usize,
    failovers: u64,
    failover_s: Option<f64>,
) -> CheckResult {
    let ryw = read_your_writes_violations(history);
    let mono = monotonic_read_violations(history);
    let promised = failovers == 0;
    let passed = !promised || (ryw.is_empty() && mono.is_empty());
    let mut detail = format!(
        "{} operations; read-your-writes violations {}, monotonic-read violations {}, acknowledged writes lost {lost_writes}, failovers {failovers}",
        history.len(),
        ryw.len(),
        mono.len()
    );
    if let Some(s) = failover_s {
        detail.push_str(&format!(" (promotion {s:.1} s after the master failed)"));
    }
    if !promised {
        detail.push_str(
            "; counted, not failed: asynchronous replication promises neither across a failover",
        );
    } else if let Some(r) = ryw.first() {
        detail.push_str(&format!(
            "; first: key {} read {:?} at {:.6} s after a newer write was acknowledged",
            r.key,
            r.value,
            r.invoke_ns as f64 / 1e9
        ));
    }
    CheckResult::new("sessions", Class::Correctness, passed, detail)
}
