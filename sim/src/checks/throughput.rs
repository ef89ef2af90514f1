//! SLO: successful requests per second over the measured window, at least `min_throughput_rps`.
//!
//! Shown to fail on the bug it looks for: `tests/it/faults.rs`
//! (`the_slo_checks_fail_as_liveness_when_the_run_misses_them`).

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "min_throughput_rps",
    enabled: |s| s.checks.min_throughput_rps.is_some(),
    requires: always,
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(MinThroughput {
        minimum_rps: s.checks.min_throughput_rps.unwrap_or(0.0),
    })
}

struct MinThroughput {
    minimum_rps: f64,
}

impl Checker for MinThroughput {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let rps = ev.summary.throughput_rps;
        CheckResult::new(
            "min_throughput_rps",
            Class::Liveness,
            rps >= self.minimum_rps,
            format!("throughput {rps:.1} req/s (minimum {})", self.minimum_rps),
        )
    }
}
