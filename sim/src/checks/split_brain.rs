//! Split brain: no two members of a shard acknowledge writes as primary over overlapping
//! simulated times, as seen on the wire (so clock skew cannot hide it). A tenure is the span
//! from a node's first to its last acknowledgement in one epoch; the checker keeps one per
//! (node, epoch), not one per acknowledgement.
//!
//! Shown to fail on the bug it looks for: `tests/it/replication.rs`
//! (`the_split_brain_checker_catches_two_primaries_acknowledging_writes_at_once`: an old primary
//! cut off with a service keeps acknowledging), and the unit test below.

use super::{always, CheckResult, Checker, Class, Registration};
use crate::evidence::Evidence;
use crate::plan::Plan;
use crate::scenario::Scenario;
use crate::tiers::store::STORE;
use minitwin_components::msg::{StoreResponse, StoreResult};
use minitwin_components::{Msg, NodeId};
use std::collections::BTreeMap;

pub static REGISTRATION: Registration = Registration {
    name: "split_brain",
    enabled: |s| s.checks.split_brain,
    requires: always,
    make,
};

fn make(_: &Scenario, plan: &Plan) -> Box<dyn Checker> {
    let shards = plan.groups(STORE);
    let mut shard_of = vec![None; plan.len()];
    for (i, members) in shards.iter().enumerate() {
        for &n in members {
            shard_of[n as usize] = Some(i);
        }
    }
    Box::new(SplitBrain {
        shards: shards.len(),
        names: plan.names(),
        shard_of,
        tenures: BTreeMap::new(),
        acks: 0,
    })
}

/// One node's stretch as primary of one epoch: first and last acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenure {
    pub node: NodeId,
    pub epoch: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

struct SplitBrain {
    shards: usize,
    names: Vec<String>,
    shard_of: Vec<Option<usize>>,
    /// (shard, node, epoch) -> (first, last acknowledgement).
    tenures: BTreeMap<(usize, NodeId, u64), (u64, u64)>,
    acks: u64,
}

impl Checker for SplitBrain {
    fn wants_wire(&self) -> bool {
        true
    }

    fn on_wire(&mut self, at_ns: u64, from: NodeId, _to: NodeId, msg: &Msg) {
        let Msg::StoreReply(StoreResponse {
            result: StoreResult::Written { epoch, .. },
            ..
        }) = msg
        else {
            return;
        };
        let Some(shard) = self.shard_of[from as usize] else {
            return;
        };
        self.acks += 1;
        let t = self
            .tenures
            .entry((shard, from, *epoch))
            .or_insert((at_ns, at_ns));
        t.1 = at_ns;
    }

    fn verdict(&mut self, _: &Evidence<'_>) -> CheckResult {
        let overlaps: Vec<(usize, (Tenure, Tenure))> = (0..self.shards)
            .flat_map(|shard| {
                let tenures: Vec<Tenure> = self
                    .tenures
                    .range((shard, 0, 0)..(shard + 1, 0, 0))
                    .map(|(&(_, node, epoch), &(first_ns, last_ns))| Tenure {
                        node,
                        epoch,
                        first_ns,
                        last_ns,
                    })
                    .collect();
                overlaps(&tenures).into_iter().map(move |o| (shard, o))
            })
            .collect();
        let mut detail = format!(
            "{} write acknowledgements, {} overlapping primary tenures",
            self.acks,
            overlaps.len()
        );
        if let Some((shard, (a, b))) = overlaps.first() {
            let name = |n: NodeId| &self.names[n as usize];
            let s = |ns: u64| ns as f64 / 1e9;
            detail.push_str(&format!(
                "; first: shard {shard}: {} (epoch {}) acked writes {:.3}-{:.3} s while {} (epoch {}) acked {:.3}-{:.3} s",
                name(a.node), a.epoch, s(a.first_ns), s(a.last_ns), name(b.node), b.epoch, s(b.first_ns), s(b.last_ns)
            ));
        }
        CheckResult::new(
            "split_brain",
            Class::Correctness,
            overlaps.is_empty(),
            detail,
        )
    }
}

/// Pairs of tenures of different nodes that intersect in time.
pub fn overlaps(tenures: &[Tenure]) -> Vec<(Tenure, Tenure)> {
    let mut out = Vec::new();
    for (i, a) in tenures.iter().enumerate() {
        for b in &tenures[i + 1..] {
            if a.node != b.node && a.first_ns <= b.last_ns && b.first_ns <= a.last_ns {
                out.push((*a, *b));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(node: NodeId, epoch: u64, first_ns: u64, last_ns: u64) -> Tenure {
        Tenure {
            node,
            epoch,
            first_ns,
            last_ns,
        }
    }

    #[test]
    fn overlapping_tenures_of_different_nodes_are_split_brain_and_handovers_are_not() {
        assert!(overlaps(&[t(5, 1, 1, 2), t(6, 2, 3, 4)]).is_empty());
        assert_eq!(overlaps(&[t(5, 1, 1, 4), t(6, 2, 3, 5)]).len(), 1);
        assert!(
            overlaps(&[t(5, 1, 1, 4), t(5, 2, 3, 5)]).is_empty(),
            "one node across epochs is not two primaries"
        );
    }
}
