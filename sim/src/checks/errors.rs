//! SLO: failed or timed-out requests over all answered requests of the measured window, at most
//! `max_error_ratio`.
//!
//! Shown to fail on the bug it looks for: `tests/it/faults.rs`
//! (`the_slo_checks_fail_as_liveness_when_the_run_misses_them`).

use super::{always, Checker, Registration, Slo};
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "max_error_ratio",
    enabled: |s| s.checks.max_error_ratio.is_some(),
    requires: always,
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Slo {
        name: "max_error_ratio",
        limit: s.checks.max_error_ratio.unwrap_or(1.0),
        at_most: true,
        value: |s| s.error_ratio,
        describe: |v, limit| format!("error ratio {v:.5} (limit {limit})"),
    })
}
