//! SLO: the p99 latency of successful requests over the measured window, at most `max_p99_ms`.
//!
//! Shown to fail on the bug it looks for: `tests/it/faults.rs`
//! (`the_slo_checks_fail_as_liveness_when_the_run_misses_them`).

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "max_p99_ms",
    enabled: |s| s.checks.max_p99_ms.is_some(),
    requires: always,
    make,
};

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(MaxP99 {
        limit_ms: s.checks.max_p99_ms.unwrap_or(f64::INFINITY),
    })
}

struct MaxP99 {
    limit_ms: f64,
}

impl Checker for MaxP99 {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let p99 = ev.summary.latency_ms_p99;
        CheckResult::new(
            "max_p99_ms",
            Class::Liveness,
            p99 <= self.limit_ms,
            format!("p99 {p99:.3} ms (limit {} ms)", self.limit_ms),
        )
    }
}
