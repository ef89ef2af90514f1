//! Durability: every write the users saw acknowledged is in its shard's durable history, and a
//! running shard serves what its durable log says.
//!
//! The history is checked as the run goes, so memory stays flat: a shard's members purge the
//! records every member holds into checkpoints (settled for good), and those records are
//! handed over and matched against the acknowledged writes; what is still unmatched at the end
//! must be in the durable log of the member that speaks for its shard. Values are unique per
//! write, so (key, value) names a write exactly.
//!
//! Where the configuration promises no loss (a single node that syncs before it acknowledges,
//! or semi-sync replication), a lost write fails the check, unless the primary acknowledged it
//! while in the semi-sync fallback to async: only those are excused, each counted and
//! explained. Under async replication nothing is promised: losses are counted, not failed.
//!
//! Shown to fail on the bug it looks for: `tests/it/faults.rs`
//! (`the_durability_checker_catches_a_store_that_acknowledges_before_syncing`: a store that
//! acknowledges before syncing, then a crash) and `tests/it/replication.rs`
//! (`a_semi_sync_fallback_excuses_only_the_writes_acknowledged_during_it`).

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;
use crate::tiers::Stream;
use minitwin_components::keyspace::shard_for;
use minitwin_components::store::ReplicationMode;
use minitwin_components::{NodeId, Observation};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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

/// Settled records kept for acknowledgements that arrive after their record settled (a
/// response delayed by a clogged link): the most recent ones.
const RECENT_SETTLED_KEPT: usize = 100_000;

fn make(s: &Scenario, _: &Plan) -> Box<dyn Checker> {
    Box::new(Durability {
        promise: Promise::of(s),
        pending: BTreeMap::new(),
        recent: BTreeSet::new(),
        recent_order: VecDeque::new(),
        settled_upto: BTreeMap::new(),
        fallback_acked: BTreeSet::new(),
        fallbacks: 0,
        acked_total: 0,
    })
}

struct Durability {
    promise: Promise,
    /// Acknowledged writes not yet seen settled: (key, value) -> when acknowledged.
    pending: BTreeMap<(u64, u64), u64>,
    /// Settled records no acknowledgement has claimed yet, and their order (oldest first).
    recent: BTreeSet<(u64, u64)>,
    recent_order: VecDeque<(u64, u64)>,
    /// Per shard, the last settled lsn taken (every member purges the same records).
    settled_upto: BTreeMap<NodeId, u64>,
    /// Writes a primary acknowledged in a semi-sync fallback, until they settle.
    fallback_acked: BTreeSet<(u64, u64)>,
    fallbacks: u64,
    acked_total: u64,
}

/// An acknowledged write missing from its shard's durable history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LostWrite {
    pub shard: usize,
    pub key: u64,
    pub value: u64,
    pub acked_ns: u64,
}

impl Durability {
    fn settle(&mut self, kv: (u64, u64)) {
        self.fallback_acked.remove(&kv);
        if self.pending.remove(&kv).is_some() {
            return;
        }
        if self.recent.insert(kv) {
            self.recent_order.push_back(kv);
        }
        if self.recent_order.len() > RECENT_SETTLED_KEPT {
            let old = self.recent_order.pop_front().expect("over the limit");
            self.recent.remove(&old);
        }
    }

    /// Acknowledged writes that no shard holds, at the end.
    fn lost(&self, ev: &Evidence<'_>) -> Vec<LostWrite> {
        if ev.shards.is_empty() {
            return Vec::new();
        }
        self.pending
            .iter()
            .filter_map(|(&(key, value), &acked_ns)| {
                let shard = shard_for(key, ev.shards.len());
                let kept = ev.shards[shard].unpurged.contains(&(key, value));
                (!kept).then_some(LostWrite {
                    shard,
                    key,
                    value,
                    acked_ns,
                })
            })
            .collect()
    }
}

impl Checker for Durability {
    fn on_observation(&mut self, _at_ns: u64, _node: NodeId, o: &Observation) {
        match *o {
            Observation::AsyncAck { key, value, .. } => {
                self.fallback_acked.insert((key, value));
            }
            Observation::SemiSync { on: false, .. } => self.fallbacks += 1,
            _ => {}
        }
    }

    fn on_stream(&mut self, stream: &Stream) {
        for w in &stream.acked_writes {
            self.acked_total += 1;
            let kv = (w.key, w.value);
            if !self.recent.remove(&kv) {
                self.pending.insert(kv, w.ack_ns);
            }
        }
        for r in &stream.settled {
            let upto = self.settled_upto.entry(r.shard).or_insert(0);
            if r.lsn <= *upto {
                continue; // another member's copy of a record already taken
            }
            *upto = r.lsn;
            self.settle((r.key, r.value));
        }
    }

    fn verdict(&mut self, ev: &Evidence<'_>) -> CheckResult {
        let lost = self.lost(ev);
        let excused = |w: &LostWrite| {
            self.promise == Promise::SemiSync && self.fallback_acked.contains(&(w.key, w.value))
        };
        let (forgiven, unexcused): (Vec<LostWrite>, Vec<LostWrite>) =
            lost.iter().partition(|w| excused(w));
        let broken = self.promise != Promise::Nothing && !unexcused.is_empty();
        let mismatches: u64 = ev.shards.iter().map(|s| s.mismatches).sum();
        let passed = !broken && mismatches == 0;
        let mut detail = format!(
            "{} acknowledged writes, {} lost",
            self.acked_total,
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
                " (semi-sync: none may be lost but writes acknowledged in its fallback to async; {} fallbacks; {} lost writes excused as acknowledged in a fallback, {} not)",
                self.fallbacks,
                forgiven.len(),
                unexcused.len()
            )),
        }
        let name = |w: &LostWrite| ev.shards[w.shard].name.as_str();
        if let Some(w) = forgiven.first() {
            detail.push_str(&format!(
                "; first excused: key {} value {} acknowledged at {:.6} s by a primary in fallback, missing from {}",
                w.key,
                w.value,
                w.acked_ns as f64 / 1e9,
                name(w)
            ));
        }
        if let Some(w) = unexcused.first() {
            let label = if broken {
                "first lost"
            } else {
                "first lost (counted)"
            };
            detail.push_str(&format!(
                "; {label}: key {} value {} acknowledged at {:.6} s, missing from {}",
                w.key,
                w.value,
                w.acked_ns as f64 / 1e9,
                name(w)
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
            .with("acked_writes_total", self.acked_total as f64, "count")
            .with("lost_writes_total", lost.len() as f64, "count")
            .with("lost_writes_excused_total", forgiven.len() as f64, "count")
    }
}
