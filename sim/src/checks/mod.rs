//! Checkers: what a run must satisfy. Each is its own file, registered here by the name of its
//! key in the scenario's `[checks]`, and each has a test beside it (or in `tests/it/`) that
//! plants the bug it looks for and sees it caught.
//!
//! A checker may watch the wire ([`Checker::on_wire`]) and the components' observations
//! ([`Checker::on_observation`]) during the run, keeping state per key or per node, never per
//! request; at the end it reads the [`Evidence`] the tiers collected and answers pass, fail, or
//! not applicable with the reason.
//!
//! - [`durability`]: acknowledged writes survive, where the configuration promises it.
//! - [`split_brain`]: no two members of a shard acknowledge writes as primary at once.
//! - [`convergence`]: after the faults heal, every shard's members hold the same log.
//! - [`session_convergence`]: every session replica holds its master's data after settling.
//! - [`sessions`]: read-your-writes and monotonic reads of the session client.
//! - [`linearizable`]: the register workload's histories.
//! - [`mirror`]: mirror copies hold their source's log in order, and catch up.
//! - [`latency`], [`errors`], [`throughput`]: the SLO checks over the measured window.

pub mod convergence;
pub mod durability;
pub mod errors;
pub mod latency;
pub mod linearizable;
pub mod mirror;
pub mod security;
pub mod session_convergence;
pub mod sessions;
pub mod split_brain;
pub mod throughput;

use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;
use crate::tiers::Stream;
use minitwin_components::{Msg, NodeId, Observation};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Safety: the system did something wrong (lost an acknowledged write).
    Correctness,
    /// Liveness or SLO: the system was too slow or failed too often.
    Liveness,
}

impl Class {
    /// The process exit code for a run failing this class.
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Correctness => 3,
            Class::Liveness => 4,
        }
    }
}

/// A checker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The property does not apply to this topology (the detail says why); not a pass.
    NotApplicable,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub name: &'static str,
    pub class: Class,
    pub verdict: Verdict,
    pub detail: String,
    /// Numbers the checker measured (name, value, unit), written as result rows of the
    /// component `check:<name>`.
    pub values: Vec<(&'static str, f64, &'static str)>,
}

impl CheckResult {
    pub fn new(name: &'static str, class: Class, passed: bool, detail: String) -> CheckResult {
        let verdict = if passed { Verdict::Pass } else { Verdict::Fail };
        CheckResult {
            name,
            class,
            verdict,
            detail,
            values: Vec::new(),
        }
    }

    /// The same result, reporting `value` too.
    pub fn with(mut self, name: &'static str, value: f64, unit: &'static str) -> CheckResult {
        self.values.push((name, value, unit));
        self
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|v| v.0 == name).map(|v| v.1)
    }

    pub fn not_applicable(name: &'static str, class: Class, why: String) -> CheckResult {
        CheckResult {
            name,
            class,
            verdict: Verdict::NotApplicable,
            detail: why,
            values: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    pub fn failed(&self) -> bool {
        self.verdict == Verdict::Fail
    }

    /// `pass`, `FAIL` or `n/a`, for reports.
    pub fn label(&self) -> &'static str {
        match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "n/a",
        }
    }
}

/// One checker, made fresh for every run.
pub trait Checker {
    /// Whether [`Checker::on_wire`] should see every message sent (costs a call per message).
    fn wants_wire(&self) -> bool {
        false
    }

    /// A message on the wire: simulated time, sender, receiver.
    fn on_wire(&mut self, _at_ns: u64, _from: NodeId, _to: NodeId, _msg: &Msg) {}

    /// An observation a component made (rare events: promotions, semi-sync fallbacks).
    fn on_observation(&mut self, _at_ns: u64, _node: NodeId, _o: &Observation) {}

    /// What the tiers handed over since the last call (acknowledged writes, settled records).
    fn on_stream(&mut self, _stream: &Stream) {}

    /// The verdict, from what the tiers collected.
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult;
}

/// A checker's entry in the registry.
pub struct Registration {
    /// Its key in `[checks]`.
    pub name: &'static str,
    /// Whether the scenario turns it on (its `[checks]` key, and the tiers it looks at).
    pub enabled: fn(&Scenario) -> bool,
    /// Why the scenario cannot have it on (a tier it needs is absent), if it cannot.
    pub requires: fn(&Scenario) -> Result<(), String>,
    pub make: fn(&Scenario, &Plan) -> Box<dyn Checker>,
}

/// Every checker, in the order their results are reported.
pub static CHECKERS: &[&Registration] = &[
    &durability::REGISTRATION,
    &split_brain::REGISTRATION,
    &sessions::REGISTRATION,
    &linearizable::REGISTRATION,
    &mirror::REGISTRATION,
    &security::REGISTRATION,
    &convergence::REGISTRATION,
    &session_convergence::REGISTRATION,
    &latency::REGISTRATION,
    &errors::REGISTRATION,
    &throughput::REGISTRATION,
];

/// An SLO: one number of the summary held against a limit (liveness).
pub struct Slo {
    pub name: &'static str,
    pub limit: f64,
    /// True: the value must stay at or below the limit; false: at or above.
    pub at_most: bool,
    pub value: fn(&crate::outcome::Summary) -> f64,
    /// The detail, from (value, limit).
    pub describe: fn(f64, f64) -> String,
}

impl Checker for Slo {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let v = (self.value)(&ev.summary);
        let passed = if self.at_most {
            v <= self.limit
        } else {
            v >= self.limit
        };
        CheckResult::new(
            self.name,
            Class::Liveness,
            passed,
            (self.describe)(v, self.limit),
        )
    }
}

/// A requirement that always holds.
pub fn always(_: &Scenario) -> Result<(), String> {
    Ok(())
}

/// The checkers the scenario turns on, fresh for one run.
pub fn enabled(s: &Scenario, plan: &Plan) -> Vec<Box<dyn Checker>> {
    CHECKERS
        .iter()
        .filter(|r| (r.enabled)(s))
        .map(|r| (r.make)(s, plan))
        .collect()
}

/// The first enabled checker whose tier is missing, as (its key, why).
pub fn unmet(s: &Scenario) -> Option<(&'static str, String)> {
    CHECKERS
        .iter()
        .filter(|r| (r.enabled)(s))
        .find_map(|r| (r.requires)(s).err().map(|why| (r.name, why)))
}
