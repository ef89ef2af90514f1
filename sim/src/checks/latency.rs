//! SLO: the p99 latency of successful requests over the measured window, at most `max_p99_ms`.
//!
//! Shown to fail on the bug it looks for: `tests/it/faults.rs`
//! (`the_slo_checks_fail_as_liveness_when_the_run_misses_them`).

use super::{always, Checker, Registration, Slo};
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "max_p99_ms",
    enabled: |s| s.checks.max_p99_ms.is_some(),
    requires: always,
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Slo {
        name: "max_p99_ms",
        limit: s.checks.max_p99_ms.unwrap_or(f64::INFINITY),
        at_most: true,
        value: |s| s.latency_ms_p99,
        describe: |v, limit| format!("p99 {v:.3} ms (limit {limit} ms)"),
    })
}
