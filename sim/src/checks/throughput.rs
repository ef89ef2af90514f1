//! SLO: successful requests per second over the measured window, at least `min_throughput_rps`.
//!
//! Shown to fail on the bug it looks for: `tests/it/faults.rs`
//! (`the_slo_checks_fail_as_liveness_when_the_run_misses_them`).

use super::{always, Checker, Registration, Slo};
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "min_throughput_rps",
    enabled: |s| s.checks.min_throughput_rps.is_some(),
    requires: always,
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Slo {
        name: "min_throughput_rps",
        limit: s.checks.min_throughput_rps.unwrap_or(0.0),
        at_most: false,
        value: |s| s.throughput_rps,
        describe: |v, minimum| format!("throughput {v:.1} req/s (minimum {minimum})"),
    })
}
