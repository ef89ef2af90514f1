//! Durability: for every key the users wrote, the shard that owns it holds the last write they
//! saw acknowledged (or a later one, or one sent concurrently with it), and a running shard
//! serves what its durable log says.
//!
//! Where the configuration promises no loss (a single node that syncs before it acknowledges,
//! or semi-sync replication), a lost write fails the check, unless the primary acknowledged it
//! while in the semi-sync fallback to async: only those writes are excused, each counted and
//! explained. Under async replication nothing is promised: losses are counted, not failed.

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;
use minitwin_components::keyspace::shard_for;
use minitwin_components::store::ReplicationMode;
use minitwin_components::{NodeId, Observation};
use std::collections::BTreeMap;

pub static REGISTRATION: Registration = Registration {
    name: "durability",
    enabled: |s| s.checks.durability,
    requires: always,
    make,
};

/// What the configuration promises about acknowledged writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Promise {
    /// A single node per shard, synced before it acknowledges: nothing may be lost.
    SingleNode,
    /// Semi-sync: nothing may be lost but writes acknowledged during a fallback to async.
    SemiSync,
    /// Async replication promises nothing: losses are counted, not failed.
    Nothing,
}

impl Promise {
    pub fn of(s: &Scenario) -> Promise {
        let stores = &s.topology.stores;
        match (stores.replicas, stores.config.replication) {
            (0, _) => Promise::SingleNode,
            (_, ReplicationMode::SemiSync) => Promise::SemiSync,
            (_, ReplicationMode::Async) => Promise::Nothing,
        }
    }
}

/// Writes acknowledged in a semi-sync fallback remembered per key (the latest ones).
const FALLBACK_ACKS_KEPT: usize = 4;

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Durability {
        promise: Promise::of(s),
        fallback_acked: BTreeMap::new(),
        fallbacks: 0,
    })
}

struct Durability {
    promise: Promise,
    /// Per key, the latest writes a primary acknowledged while in the semi-sync fallback.
    fallback_acked: BTreeMap<u64, Vec<u64>>,
    fallbacks: u64,
}

/// A key whose last acknowledged write the shard no longer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LostWrite {
    pub shard: usize,
    pub key: u64,
    pub value: u64,
    pub acked_ns: u64,
    /// What the shard holds for the key instead (0: nothing).
    pub holds: u64,
}

/// Every key whose last acknowledged write is missing from its shard at the end.
pub fn lost_writes(ev: &Evidence<'_>) -> Vec<LostWrite> {
    let (Some(users), false) = (&ev.users, ev.shards.is_empty()) else {
        return Vec::new();
    };
    users
        .writes
        .iter()
        .filter_map(|(&key, w)| {
            let (value, acked_ns) = w.acked?;
            let shard = shard_for(key, ev.shards.len());
            let holds = ev.shards[shard].durable.state.get(&key).copied().unwrap_or(0);
            (!w.kept_by(holds)).then_some(LostWrite {
                shard,
                key,
                value,
                acked_ns,
                holds,
            })
        })
        .collect()
}

impl Checker for Durability {
    fn on_observation(&mut self, _at_ns: u64, _node: NodeId, o: &Observation) {
        match *o {
            Observation::AsyncAck { key, value, .. } => {
                let acks = self.fallback_acked.entry(key).or_default();
                if acks.len() == FALLBACK_ACKS_KEPT {
                    acks.remove(0);
                }
                acks.push(value);
            }
            Observation::SemiSync { on: false, .. } => self.fallbacks += 1,
            _ => {}
        }
    }

    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let acked = ev.users.as_ref().map_or(0, |u| u.tally.acked_writes);
        let keys = ev.users.as_ref().map_or(0, |u| u.writes.len());
        let lost = lost_writes(ev);
        let excused = |w: &LostWrite| {
            self.promise == Promise::SemiSync
                && self
                    .fallback_acked
                    .get(&w.key)
                    .is_some_and(|v| v.contains(&w.value))
        };
        let (forgiven, unexcused): (Vec<LostWrite>, Vec<LostWrite>) =
            lost.iter().partition(|w| excused(w));
        let broken = self.promise != Promise::Nothing && !unexcused.is_empty();
        let mismatches: u64 = ev.shards.iter().map(|s| s.mismatches).sum();
        let passed = !broken && mismatches == 0;
        let mut detail = format!(
            "{acked} acknowledged writes to {keys} keys; {} keys lost their last acknowledged write",
            lost.len()
        );
        match self.promise {
            Promise::SingleNode => {
                detail.push_str(" (single nodes synced before acknowledging: none may be lost)")
            }
            Promise::Nothing => {
                detail.push_str(" (async replication promises nothing: counted, not failed)")
            }
            Promise::SemiSync => detail.push_str(&format!(
                " (semi-sync: none may be lost but writes acknowledged in its fallback to async; {} fallbacks, {} lost writes excused as acknowledged in a fallback)",
                self.fallbacks,
                forgiven.len()
            )),
        }
        let name = |w: &LostWrite| ev.shards[w.shard].name.as_str();
        if let Some(w) = forgiven.first() {
            detail.push_str(&format!(
                "; first excused: key {} value {} acknowledged at {:.6} s by a primary in fallback, {} holds {}",
                w.key,
                w.value,
                w.acked_ns as f64 / 1e9,
                name(w),
                w.holds
            ));
        }
        if let Some(w) = unexcused.first() {
            let label = if broken { "first lost" } else { "first lost (counted)" };
            detail.push_str(&format!(
                "; {label}: key {} value {} acknowledged at {:.6} s, {} holds {}",
                w.key,
                w.value,
                w.acked_ns as f64 / 1e9,
                name(w),
                w.holds
            ));
        }
        if let Some(s) = ev.shards.iter().find(|s| s.mismatches > 0) {
            let (k, served, logged) = s.first_mismatch.expect("a mismatch has a first");
            detail.push_str(&format!(
                "; {mismatches} keys served differently from the log, first: {} key {k} serves {served:?}, log says {logged}",
                s.name
            ));
        }
        CheckResult::new("durability", Class::Correctness, passed, detail)
    }
}
