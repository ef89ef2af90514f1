//! Durability: every write the users saw acknowledged is in its shard's durable log, and a
//! running shard serves the last durable value of every key it applied; where the configuration
//! promises no loss, a lost write fails the check (elsewhere it is counted).

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::{Evidence, ShardView};
use crate::plan::Plan;
use crate::scenario::Scenario;
use crate::workload::AckedWrite;
use minitwin_components::keyspace::shard_for;
use minitwin_components::store::Record;
use std::collections::BTreeMap;

pub static REGISTRATION: Registration = Registration {
    name: "durability",
    enabled: |s| s.checks.durability,
    requires: always,
    make,
};

fn make(_: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Durability)
}

struct Durability;

impl Checker for Durability {
    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let acked = ev.users.as_ref().map_or(&[][..], |u| u.acked_writes);
        durability(acked, &ev.shards, &ev.promises)
    }
}

/// Acknowledged writes missing from their shard's durable log, as (shard, write).
pub fn lost_writes(acked: &[AckedWrite], shards: &[ShardView<'_>]) -> Vec<(usize, AckedWrite)> {
    if shards.is_empty() {
        return Vec::new();
    }
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

pub fn durability(
    acked: &[AckedWrite],
    shards: &[ShardView<'_>],
    promises: &[crate::evidence::Promise],
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
    CheckResult::new("durability", Class::Correctness, passed, detail)
}
