//! Checkers: what a run must satisfy, each able to fail (tests plant the bug each looks for).
//!
//! - [`durability`]: every write the client saw acknowledged is in its shard's durable log, and
//!   a running shard serves the last durable value of every key it acknowledged.
//! - SLO checks (p99 latency, error ratio, throughput) over the measured window.

use crate::scenario::Checks;
use crate::workload::AckedWrite;
use minitwin_components::service::shard_for;
use minitwin_components::store::{Record, Store};
use std::collections::BTreeMap;

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

#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub name: &'static str,
    pub class: Class,
    pub passed: bool,
    pub detail: String,
}

/// What the durability checker needs to see of one shard.
pub struct ShardView<'a> {
    pub name: &'a str,
    pub durable_log: &'a [Vec<u8>],
    /// None when the shard is down at the end of the run.
    pub store: Option<&'a Store>,
}

/// Acknowledged writes missing from their shard's durable log, as (shard, write).
pub fn lost_writes(acked: &[AckedWrite], shards: &[ShardView<'_>]) -> Vec<(usize, AckedWrite)> {
    let logged: Vec<BTreeMap<(u64, u64), ()>> = shards
        .iter()
        .map(|s| {
            s.durable_log
                .iter()
                .filter_map(|b| Record::decode(b))
                .map(|r| ((r.key, r.value), ()))
                .collect()
        })
        .collect();
    acked
        .iter()
        .filter_map(|w| {
            let shard = shard_for(w.key, shards.len());
            (!logged[shard].contains_key(&(w.key, w.value))).then_some((shard, *w))
        })
        .collect()
}

/// Keys whose served value differs from the last value in the durable log, per running shard.
pub fn state_mismatches(shards: &[ShardView<'_>]) -> Vec<(usize, u64, Option<u64>, u64)> {
    let mut out = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        let Some(store) = s.store else { continue };
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        for r in s.durable_log.iter().filter_map(|b| Record::decode(b)) {
            last.insert(r.key, r.value);
        }
        for (&k, &v) in &last {
            if store.get(k) != Some(v) {
                out.push((i, k, store.get(k), v));
            }
        }
    }
    out
}

pub fn durability(acked: &[AckedWrite], shards: &[ShardView<'_>]) -> CheckResult {
    let lost = lost_writes(acked, shards);
    let mismatched = state_mismatches(shards);
    let passed = lost.is_empty() && mismatched.is_empty();
    let mut detail = format!("{} acknowledged writes, {} lost", acked.len(), lost.len());
    if let Some((shard, w)) = lost.first() {
        detail.push_str(&format!(
            "; first lost: key {} value {} acknowledged at {:.6} s, missing from {}",
            w.key,
            w.value,
            w.ack_ns as f64 / 1e9,
            shards[*shard].name
        ));
    }
    if let Some((shard, k, served, logged)) = mismatched.first() {
        detail.push_str(&format!(
            "; {} keys served differently from the log, first: {} key {k} serves {served:?}, log says {logged}",
            mismatched.len(),
            shards[*shard].name
        ));
    }
    CheckResult {
        name: "durability",
        class: Class::Correctness,
        passed,
        detail,
    }
}

/// The numbers SLO checks look at.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SloInputs {
    pub latency_ms_p99: f64,
    pub error_ratio: f64,
    pub throughput_rps: f64,
}

pub fn slo(checks: &Checks, m: SloInputs) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if let Some(max) = checks.max_p99_ms {
        out.push(CheckResult {
            name: "max_p99_ms",
            class: Class::Liveness,
            passed: m.latency_ms_p99 <= max,
            detail: format!("p99 {:.3} ms (limit {max} ms)", m.latency_ms_p99),
        });
    }
    if let Some(max) = checks.max_error_ratio {
        out.push(CheckResult {
            name: "max_error_ratio",
            class: Class::Liveness,
            passed: m.error_ratio <= max,
            detail: format!("error ratio {:.5} (limit {max})", m.error_ratio),
        });
    }
    if let Some(min) = checks.min_throughput_rps {
        out.push(CheckResult {
            name: "min_throughput_rps",
            class: Class::Liveness,
            passed: m.throughput_rps >= min,
            detail: format!("throughput {:.1} req/s (minimum {min})", m.throughput_rps),
        });
    }
    out
}
