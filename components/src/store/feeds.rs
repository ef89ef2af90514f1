//! What other components read from a shard: the mirror jobs' and the resharder's updates from
//! the log (they are the log's readers, whose positions hold back its purge), and the
//! resharding cut-over's freeze and digests.

use super::{Role, Store};
use crate::context::{Context, NodeId};
use crate::keyspace::shard_for;
use crate::mirror::{MirrorMsg, MirrorRecord};
use crate::msg::Msg;
use crate::repl::ReplMsg;
use crate::rng::mix64;
use std::collections::BTreeMap;

impl Store {
    /// A log reader asks for durable records from `from_lsn`: only the primary answers with
    /// data. Asking from `from_lsn` says the reader holds everything before it.
    pub(super) fn on_get_updates(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        from_lsn: u64,
        max: u32,
    ) {
        if self.role != Role::Primary {
            let reply = MirrorMsg::Updates {
                records: Vec::new(),
                tail_lsn: 0,
            };
            return ctx.send(from, Msg::Mirror(reply));
        }
        if self.placement.readers.contains(&from) {
            let read = self.reader_acked.entry(from).or_insert(0);
            *read = (*read).max(from_lsn.saturating_sub(1));
        }
        // Records a reader has not read are never purged: asking before the checkpoint is a
        // reader the placement did not name, and it gets what the log still holds.
        let first = from_lsn.max(self.base_lsn + 1);
        let last = self
            .durable_lsn
            .min(first.saturating_add(u64::from(max)).saturating_sub(1));
        let records = (first..=last)
            .map(|lsn| {
                let i = (lsn - self.base_lsn - 1) as usize;
                let r = self.log[i];
                MirrorRecord {
                    lsn,
                    key: r.key,
                    value: r.value,
                    commit_ns: self.appended_ns[i],
                }
            })
            .collect();
        let reply = MirrorMsg::Updates {
            records,
            tail_lsn: self.durable_lsn,
        };
        ctx.send(from, Msg::Mirror(reply));
        self.maybe_checkpoint(ctx);
    }

    /// The resharding cut-over: refuse writes from now on, and say where the log ends.
    pub(super) fn on_freeze(&mut self, ctx: &mut dyn Context, from: NodeId) {
        self.frozen = true;
        let tail_lsn = self.tail_lsn();
        ctx.send(from, Msg::Repl(ReplMsg::Frozen { tail_lsn }));
    }

    /// Digests of the committed data, split by which of `shards` equal keyspace ranges owns
    /// each key: XOR over keys of a hash of (key, value). Order-free, so two stores holding the
    /// same data agree whatever order they wrote it in.
    pub fn digests(&self, shards: usize) -> Vec<u64> {
        let mut last: BTreeMap<u64, u64> = self.base.clone();
        for lsn in self.base_lsn + 1..=self.applied_lsn {
            let r = self.rec(lsn);
            last.insert(r.key, r.value);
        }
        let mut out = vec![0u64; shards.max(1)];
        for (k, v) in last {
            out[shard_for(k, shards.max(1))] ^= mix64(k ^ mix64(v));
        }
        out
    }
}
