//! Linearizability: every key of the register workload (`workload.registers`) has a
//! linearizable history (WGL search, bounded by [`LINCHECK_BUDGET`] steps per key).
//!
//! Shown to fail on the bug it looks for: `tests/it/faults.rs`
//! (`the_linearizability_checker_catches_reads_of_writes_that_a_crash_then_lost`:
//! `bug_ack_before_sync`).

use super::{CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::lincheck::{check, History, Verdict};
use crate::plan::Plan;
use crate::scenario::Scenario;
use std::collections::BTreeMap;

pub static REGISTRATION: Registration = Registration {
    name: "linearizable",
    enabled: |s| s.checks.linearizable,
    requires: |s| match s.workload.registers {
        Some(_) => Ok(()),
        None => Err("checks.linearizable needs workload.registers".into()),
    },
    make,
};

fn make(_: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Linearizable)
}

struct Linearizable;

impl Checker for Linearizable {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        linearizable(ev.registers)
    }
}

/// Search steps per key before the linearizability verdict is "unknown".
pub const LINCHECK_BUDGET: u64 = 5_000_000;

/// Every register key's history is linearizable.
pub fn linearizable(histories: Option<&BTreeMap<u64, History>>) -> CheckResult {
    let Some(histories) = histories else {
        return CheckResult::not_applicable(
            "linearizable",
            Class::Correctness,
            "the scenario has no register workload".into(),
        );
    };
    let mut bad = Vec::new();
    let mut unknown = 0;
    let mut ops = 0;
    for (key, h) in histories {
        ops += h.ops.len();
        match check(h, Some(LINCHECK_BUDGET)) {
            Verdict::Linearizable => {}
            Verdict::Unknown => unknown += 1,
            Verdict::NotLinearizable { unplaced } => {
                let op = &h.ops[unplaced[0]];
                bad.push(format!(
                    "key {}: no order places {:?} by process {} invoked at {:.6} s",
                    key - crate::register::KEY_BASE,
                    op.op,
                    op.process,
                    op.call as f64 / 1e9
                ));
            }
        }
    }
    let mut detail = format!(
        "{} keys, {ops} operations, {} not linearizable, {unknown} undecided within the budget",
        histories.len(),
        bad.len()
    );
    if let Some(first) = bad.first() {
        detail.push_str(&format!("; first: {first}"));
    }
    CheckResult::new("linearizable", Class::Correctness, bad.is_empty(), detail)
}
