//! Split brain: no two members of a shard acknowledge writes as primary over overlapping
//! simulated times, as seen on the wire (so clock skew cannot hide it).

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
    let names = plan.names();
    let mut member = vec![false; plan.len()];
    for &n in shards.iter().flatten() {
        member[n as usize] = true;
    }
    Box::new(SplitBrain {
        shards,
        names,
        member,
        acks: Vec::new(),
    })
}

struct SplitBrain {
    shards: Vec<Vec<NodeId>>,
    names: Vec<String>,
    member: Vec<bool>,
    acks: Vec<WriteAck>,
}

impl Checker for SplitBrain {
    fn wants_wire(&self) -> bool {
        true
    }

    fn on_wire(&mut self, at_ns: u64, from: NodeId, _to: NodeId, msg: &Msg) {
        if let Msg::StoreReply(StoreResponse {
            result: StoreResult::Written { epoch, .. },
            ..
        }) = msg
        {
            if self.member[from as usize] {
                self.acks.push(WriteAck {
                    at_ns,
                    node: from,
                    epoch: *epoch,
                });
            }
        }
    }

    fn verdict(&mut self, _: &Evidence<'_>) -> CheckResult {
        let names = |n: NodeId| self.names[n as usize].clone();
        split_brain(&self.acks, &self.shards, &names)
    }
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
    CheckResult::new(
        "split_brain",
        Class::Correctness,
        overlaps.is_empty(),
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_brain_overlaps_are_tenures_of_different_nodes_that_intersect() {
        let ack = |at_ns, node, epoch| WriteAck { at_ns, node, epoch };
        let clean = [ack(1, 5, 1), ack(2, 5, 1), ack(3, 6, 2), ack(4, 6, 2)];
        assert!(split_brain_overlaps(&clean, &[5, 6]).is_empty());
        let brain = [ack(1, 5, 1), ack(3, 6, 2), ack(4, 5, 1)];
        assert_eq!(split_brain_overlaps(&brain, &[5, 6]).len(), 1);
        assert!(
            split_brain_overlaps(&brain, &[5]).is_empty(),
            "only members of the shard count"
        );
    }
}
