//! Security: no message was served that the scenario's `[security]` policy forbids, judged by
//! the message's real sender (not the identity it claimed), the sender's real role and its
//! link's real encryption (correctness). Refusals are what the policy is for; a forbidden
//! message that reached a component is a hole.
//!
//! Shown to fail on the bug it looks for: `tests/it/security.rs`
//! (`the_security_check_catches_a_layer_that_trusts_claimed_identities`:
//! `bug_trust_claimed_identity`).

use super::{CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;

pub static REGISTRATION: Registration = Registration {
    name: "security",
    enabled: |s| s.checks.security,
    requires: |s| match s.security {
        Some(_) => Ok(()),
        None => Err("checks.security needs a [security] section".into()),
    },
    make,
};

fn make(_: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(SecurityCheck)
}

struct SecurityCheck;

impl Checker for SecurityCheck {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let Some(v) = ev.security else {
            return CheckResult::not_applicable(
                "security",
                Class::Correctness,
                "no security layer ran".into(),
            );
        };
        let [unauthenticated, unauthorized, unencrypted] = v.refused;
        let mut detail = format!(
            "{} forged messages; refused {unauthenticated} unauthenticated, {unauthorized} unauthorized, {unencrypted} unencrypted; {} served against the policy",
            v.forged_total, v.served_violations
        );
        if !v.examples.is_empty() {
            detail.push_str(": ");
            detail.push_str(&v.examples.join("; "));
        }
        CheckResult::new(
            "security",
            Class::Correctness,
            v.served_violations == 0,
            detail,
        )
        .with(
            "served_violations_total",
            v.served_violations as f64,
            "count",
        )
        .with(
            "refused_total",
            v.refused.iter().sum::<u64>() as f64,
            "count",
        )
        .with("forged_total", v.forged_total as f64, "count")
    }
}
