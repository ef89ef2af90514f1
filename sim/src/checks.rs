//! Checkers: what a run must satisfy, each able to fail (tests plant the bug each looks for).
//!
//! - [`durability`]: every write the client saw acknowledged is in its shard's durable log, and
//!   a running shard serves the last durable value of every key it acknowledged.
//! - [`split_brain`]: no two members of a shard acknowledge writes as primary over
//!   overlapping simulated times (seen on the wire, so clock skew cannot hide it).
//! - [`convergence`]: after the faults heal and the workload stops, every shard's members hold
//!   the same durable log within a bound (safety, then liveness).
//! - SLO checks (p99 latency, error ratio, throughput) over the measured window.

use crate::scenario::Checks;
use crate::workload::AckedWrite;
use minitwin_components::keyspace::shard_for;
use minitwin_components::store::{Record, Store};
use minitwin_components::NodeId;
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
        let applied = store.applied_lsn() as usize;
        for r in s.durable_log[..applied.min(s.durable_log.len())]
            .iter()
            .filter_map(|b| Record::decode(b))
        {
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

/// Whether the configuration promises that no acknowledged write is lost, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Promise {
    pub zero_loss: bool,
    pub why: String,
}

pub fn durability(
    acked: &[AckedWrite],
    shards: &[ShardView<'_>],
    promises: &[Promise],
) -> CheckResult {
    assert_eq!(shards.len(), promises.len(), "one promise per shard");
    let lost = lost_writes(acked, shards);
    let mismatched = state_mismatches(shards);
    let broken: Vec<usize> = (0..shards.len())
        .filter(|&i| promises[i].zero_loss && lost.iter().any(|(s, _)| *s == i))
        .collect();
    let passed = broken.is_empty() && mismatched.is_empty();
    let mut detail = format!("{} acknowledged writes, {} lost", acked.len(), lost.len());
    for (i, p) in promises.iter().enumerate() {
        let n = lost.iter().filter(|(s, _)| *s == i).count();
        if n > 0 || shards.len() == 1 || i == 0 {
            detail.push_str(&format!("; shard {i}: {n} lost ({})", p.why));
        }
    }
    if !broken.is_empty() {
        detail.push_str(&format!(
            "; zero loss was promised and broken on shards {broken:?}"
        ));
    }
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

/// One acknowledgement of a write by a store node, seen on the wire (simulated time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteAck {
    pub at_ns: u64,
    pub node: NodeId,
    pub epoch: u64,
}

/// Overlapping tenures of two members of one shard: ((node, epoch, first, last), (...)).
pub type Overlap = ((NodeId, u64, u64, u64), (NodeId, u64, u64, u64));

/// Pairs of members of one shard that acknowledged writes as primary over overlapping times.
/// A tenure is the span from a node's first to its last acknowledgement in one epoch.
pub fn split_brain_overlaps(acks: &[WriteAck], members: &[NodeId]) -> Vec<Overlap> {
    let mut tenures: BTreeMap<(NodeId, u64), (u64, u64)> = BTreeMap::new();
    for a in acks.iter().filter(|a| members.contains(&a.node)) {
        let t = tenures
            .entry((a.node, a.epoch))
            .or_insert((a.at_ns, a.at_ns));
        t.0 = t.0.min(a.at_ns);
        t.1 = t.1.max(a.at_ns);
    }
    let list: Vec<(NodeId, u64, u64, u64)> = tenures
        .into_iter()
        .map(|((n, e), (f, l))| (n, e, f, l))
        .collect();
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            if a.0 != b.0 && a.2 <= b.3 && b.2 <= a.3 {
                out.push((*a, *b));
            }
        }
    }
    out
}

pub fn split_brain(
    acks: &[WriteAck],
    shards: &[Vec<NodeId>],
    names: &dyn Fn(NodeId) -> String,
) -> CheckResult {
    let overlaps: Vec<(usize, Overlap)> = shards
        .iter()
        .enumerate()
        .flat_map(|(i, m)| {
            split_brain_overlaps(acks, m)
                .into_iter()
                .map(move |o| (i, o))
        })
        .collect();
    let mut detail = format!(
        "{} write acknowledgements, {} overlapping primary tenures",
        acks.len(),
        overlaps.len()
    );
    if let Some((shard, (a, b))) = overlaps.first() {
        detail.push_str(&format!(
            "; first: shard {shard}: {} (epoch {}) acked writes {:.3}-{:.3} s while {} (epoch {}) acked {:.3}-{:.3} s",
            names(a.0), a.1, a.2 as f64 / 1e9, a.3 as f64 / 1e9, names(b.0), b.1, b.2 as f64 / 1e9, b.3 as f64 / 1e9
        ));
    }
    CheckResult {
        name: "split_brain",
        class: Class::Correctness,
        passed: overlaps.is_empty(),
        detail,
    }
}

/// A shard member's durable log, for the convergence check.
pub struct MemberLog<'a> {
    pub name: &'a str,
    pub up: bool,
    pub log: &'a [Vec<u8>],
}

/// After healing, every member that is up must hold the same durable log as the longest one.
pub fn convergence(shards: &[Vec<MemberLog<'_>>], within_s: f64) -> CheckResult {
    let mut behind = Vec::new();
    for (i, members) in shards.iter().enumerate() {
        let Some(reference) = members.iter().filter(|m| m.up).max_by_key(|m| m.log.len()) else {
            behind.push(format!("shard {i}: no member is up"));
            continue;
        };
        for m in members.iter().filter(|m| m.up) {
            if m.log != reference.log {
                behind.push(format!(
                    "shard {i}: {} holds {} records, {} holds {}",
                    m.name,
                    m.log.len(),
                    reference.name,
                    reference.log.len()
                ));
            }
        }
        for m in members.iter().filter(|m| !m.up) {
            behind.push(format!("shard {i}: {} is still down", m.name));
        }
    }
    let detail = if behind.is_empty() {
        format!("every shard's members agree {within_s} s after the workload stopped")
    } else {
        format!(
            "{} s after the workload stopped: {}",
            within_s,
            behind.join("; ")
        )
    };
    CheckResult {
        name: "convergence",
        class: Class::Liveness,
        passed: behind.is_empty(),
        detail,
    }
}

/// What the mirror check sees of one mirror copy.
pub struct CopyView<'a> {
    pub name: &'a str,
    /// The source shard's authoritative durable log.
    pub source_log: &'a [Vec<u8>],
    /// The copy's applied records as (lsn, key, value), in order.
    pub applied: Vec<(u64, u64, u64)>,
}

/// Decodes a mirror copy's disk records (lsn, key, value).
pub fn decode_copy_log(log: &[Vec<u8>]) -> Vec<(u64, u64, u64)> {
    log.iter()
        .filter(|b| b.len() == 24)
        .map(|b| {
            let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            (w(0), w(8), w(16))
        })
        .collect()
}

/// Every copy holds its source's records in log order with nothing skipped (correctness) and,
/// by the end of the settle time, all of them (liveness).
pub fn mirror(copies: &[CopyView<'_>], within_s: Option<f64>) -> CheckResult {
    let mut wrong = Vec::new();
    let mut behind = Vec::new();
    for c in copies {
        let source: Vec<Record> = c
            .source_log
            .iter()
            .filter_map(|b| Record::decode(b))
            .collect();
        let bad = c
            .applied
            .iter()
            .enumerate()
            .find(|(i, &(lsn, key, value))| {
                lsn != *i as u64 + 1
                    || source
                        .get(*i)
                        .is_none_or(|r| (r.key, r.value) != (key, value))
            });
        if let Some((i, &(lsn, ..))) = bad {
            wrong.push(format!(
                "{}: record {} is source lsn {lsn}, not {} (skipped or diverged)",
                c.name,
                i + 1,
                i + 1
            ));
        } else if within_s.is_some() && c.applied.len() < source.len() {
            behind.push(format!(
                "{}: {} of {} records",
                c.name,
                c.applied.len(),
                source.len()
            ));
        }
    }
    let (passed, class) = match (wrong.is_empty(), behind.is_empty()) {
        (false, _) => (false, Class::Correctness),
        (true, false) => (false, Class::Liveness),
        (true, true) => (true, Class::Correctness),
    };
    let detail = if passed {
        format!(
            "{} copies hold their source's log in order{}",
            copies.len(),
            if within_s.is_some() {
                ", fully caught up"
            } else {
                ""
            }
        )
    } else {
        [wrong, behind].concat().join("; ")
    };
    CheckResult {
        name: "mirror",
        class,
        passed,
        detail,
    }
}

/// Search steps per key before the linearizability verdict is "unknown".
pub const LINCHECK_BUDGET: u64 = 5_000_000;

/// Every register key's history is linearizable (WGL search, bounded by [`LINCHECK_BUDGET`]).
pub fn linearizable(histories: Option<&BTreeMap<u64, crate::lincheck::History>>) -> CheckResult {
    use crate::lincheck::{check, Verdict};
    let Some(histories) = histories else {
        let detail = "checks.linearizable needs workload.registers".to_string();
        return CheckResult {
            name: "linearizable",
            class: Class::Correctness,
            passed: false,
            detail,
        };
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
    CheckResult {
        name: "linearizable",
        class: Class::Correctness,
        passed: bad.is_empty(),
        detail,
    }
}

/// The session cluster's guarantees, as seen by its client.
pub fn sessions(
    history: &[minitwin_components::session::client::SessionOp],
    lost_writes: usize,
    failovers: u64,
    failover_s: Option<f64>,
) -> CheckResult {
    use minitwin_components::session::client::{
        monotonic_read_violations, read_your_writes_violations,
    };
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
    CheckResult {
        name: "sessions",
        class: Class::Correctness,
        passed,
        detail,
    }
}
