//! The log: appends, group commit, applying durable records in order, checkpoints that purge
//! the settled prefix, and recovery from the last checkpoint plus the durable records after it.

use super::{Record, Role, Store};
use crate::context::{Context, Recovered};
use crate::msg::Msg;
use crate::repl::ReplMsg;
use crate::rng::mix64;
use std::collections::BTreeMap;

/// A checkpoint's bytes: the epoch of its last record, then (key, value) pairs in key order.
pub fn encode_snapshot(epoch: u64, state: &BTreeMap<u64, u64>) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + 16 * state.len());
    b.extend_from_slice(&epoch.to_le_bytes());
    for (k, v) in state {
        b.extend_from_slice(&k.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

/// A checkpoint's (epoch of its last record, state); None if the bytes are not one.
pub fn decode_snapshot(bytes: &[u8]) -> Option<(u64, BTreeMap<u64, u64>)> {
    if bytes.len() < 8 || !(bytes.len() - 8).is_multiple_of(16) {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let state = (8..bytes.len())
        .step_by(16)
        .map(|i| (word(i), word(i + 8)))
        .collect();
    Some((word(0), state))
}

/// An order-free digest of a key-value state: XOR over keys of a hash of (key, value). Two
/// stores holding the same data agree whatever order they wrote it in.
pub fn state_digest<'a>(state: impl IntoIterator<Item = (&'a u64, &'a u64)>) -> u64 {
    state
        .into_iter()
        .fold(0, |d, (&k, &v)| d ^ mix64(k ^ mix64(v)))
}

/// What a store's disk makes durable, read back as a restart would: for checkers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    /// The state after the last durable record.
    pub state: BTreeMap<u64, u64>,
    /// The lsn of the last durable record, and its epoch (0 for an empty log).
    pub tail_lsn: u64,
    pub tail_epoch: u64,
    /// Records that do not decode (a store only writes records it can decode: 0).
    pub undecodable: u64,
}

impl DurableState {
    /// The state a store would rebuild from `snapshot` and the durable `records` after it.
    pub fn read(snapshot: Option<(u64, &[u8])>, records: &[Vec<u8>]) -> DurableState {
        let mut out = DurableState::default();
        if let Some((lsn, bytes)) = snapshot {
            match decode_snapshot(bytes) {
                Some((epoch, state)) => {
                    out.state = state;
                    out.tail_epoch = epoch;
                }
                None => out.undecodable += 1,
            }
            out.tail_lsn = lsn;
        }
        for bytes in records {
            out.tail_lsn += 1;
            match Record::decode(bytes) {
                Some(r) => {
                    out.state.insert(r.key, r.value);
                    out.tail_epoch = r.epoch;
                }
                None => out.undecodable += 1,
            }
        }
        out
    }

    pub fn digest(&self) -> u64 {
        state_digest(&self.state)
    }
}

impl Store {
    pub(super) fn tail_lsn(&self) -> u64 {
        self.base_lsn + self.log.len() as u64
    }

    /// The record at `lsn`, which must be after the checkpoint and in the log.
    pub(super) fn rec(&self, lsn: u64) -> Record {
        assert!(
            lsn > self.base_lsn && lsn <= self.tail_lsn(),
            "lsn {lsn} is in the log ({}..={})",
            self.base_lsn + 1,
            self.tail_lsn()
        );
        self.log[(lsn - self.base_lsn - 1) as usize]
    }

    /// The epoch of the record at `lsn` (the checkpoint's for `base_lsn`, 0 for lsn 0).
    pub(super) fn epoch_at(&self, lsn: u64) -> u64 {
        if lsn == self.base_lsn {
            self.base_epoch
        } else {
            self.rec(lsn).epoch
        }
    }

    /// Appends a record to the log, on disk and in memory; None on a disk error.
    pub(super) fn append(&mut self, ctx: &mut dyn Context, record: Record) -> Option<u64> {
        let lsn = ctx.disk_append(&record.encode()).ok()?;
        assert_eq!(
            lsn,
            self.tail_lsn() + 1,
            "the log hands out consecutive sequence numbers"
        );
        self.log.push_back(record);
        self.appended_ns.push_back(ctx.now_ns());
        Some(lsn)
    }

    pub(super) fn enqueue(&mut self, ctx: &mut dyn Context, ack: super::PendingAck) {
        self.pending.push_back((ack, ctx.now_ns()));
        if ack.lsn <= self.durable_lsn {
            return self.release(ctx);
        }
        self.request_sync(ctx);
    }

    pub(super) fn request_sync(&mut self, ctx: &mut dyn Context) {
        if self.sync_in_flight {
            self.sync_wanted = true;
            return;
        }
        self.sync_in_flight = true;
        self.sync_wanted = false;
        self.count(ctx, |i| i.syncs);
        ctx.disk_sync();
    }

    /// Applies durable records to the committed state, in log order.
    pub(super) fn apply_durable(&mut self, upto: u64) {
        while self.applied_lsn < upto {
            let r = self.rec(self.applied_lsn + 1);
            self.applied_lsn += 1;
            self.committed.insert(r.key, r.value);
            if self
                .latest
                .get(&r.key)
                .is_some_and(|&(_, lsn)| lsn <= self.applied_lsn)
            {
                self.latest.remove(&r.key);
            }
        }
    }

    pub(super) fn synced(&mut self, ctx: &mut dyn Context, lsn: u64) {
        let lsn = lsn.min(self.tail_lsn());
        self.durable_lsn = self.durable_lsn.max(lsn);
        self.sync_in_flight = false;
        match self.role {
            Role::Primary => {
                self.schedule_ship(ctx);
                self.release(ctx);
            }
            Role::Replica { primary } => {
                self.apply_durable(self.durable_lsn);
                let ack = ReplMsg::Ack {
                    epoch: self.epoch,
                    lsn: self.durable_lsn,
                    received: self.tail_lsn(),
                };
                ctx.send(primary, Msg::Repl(ack));
            }
        }
        self.maybe_checkpoint(ctx);
        if self.sync_wanted || self.durable_lsn < self.tail_lsn() {
            self.request_sync(ctx);
        }
    }

    pub(super) fn sync_failed(&mut self, ctx: &mut dyn Context) {
        tracing::warn!(
            pending = self.pending.len(),
            "sync failed: refusing writes until restart"
        );
        self.poisoned = true;
        self.sync_in_flight = false;
        while let Some((ack, _)) = self.pending.pop_front() {
            self.count(ctx, |i| i.errors);
            Self::reply(ctx, ack.to, ack.id, crate::msg::StoreResult::Error);
        }
        self.latest.clear();
    }

    /// Up to where the log may be purged: records every member and every reader holds, and
    /// that are applied here. A replica goes by its primary's word for the other members.
    pub(super) fn purge_point(&self) -> u64 {
        let here = self.applied_lsn.min(self.durable_lsn);
        let settled = match self.role {
            Role::Primary => {
                let replicas = self
                    .others()
                    .map(|m| self.replica_acked.get(&m).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(u64::MAX);
                let readers = self
                    .placement
                    .readers
                    .iter()
                    .map(|r| self.reader_acked.get(r).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(u64::MAX);
                replicas.min(readers)
            }
            Role::Replica { .. } => self.purge_hint_lsn,
        };
        here.min(settled)
    }

    /// Folds the settled prefix into a checkpoint once it is long enough.
    pub(super) fn maybe_checkpoint(&mut self, ctx: &mut dyn Context) {
        let upto = self.purge_point();
        if upto >= self.base_lsn + self.config.purge_after_records {
            self.checkpoint(ctx, upto);
        }
    }

    /// Purges records up to `upto` (settled and applied) from the log into the checkpoint.
    fn checkpoint(&mut self, ctx: &mut dyn Context, upto: u64) {
        assert!(
            upto > self.base_lsn && upto <= self.applied_lsn.min(self.durable_lsn),
            "only applied, durable records are checkpointed"
        );
        let n = (upto - self.base_lsn) as usize;
        for r in self.log.drain(..n) {
            self.base.insert(r.key, r.value);
            self.base_epoch = r.epoch;
        }
        self.appended_ns.drain(..n);
        self.base_lsn = upto;
        ctx.disk_checkpoint(upto, encode_snapshot(self.base_epoch, &self.base));
        let ids = self.ids();
        let (c, p) = (ids.checkpoints, ids.purged);
        ctx.metrics().add(c, 1);
        ctx.metrics().add(p, n as u64);
    }

    /// Rebuilds the log and the state from the last checkpoint and the durable records.
    pub(super) fn recover(&mut self, ctx: &mut dyn Context) {
        let Recovered { snapshot, records } = ctx.disk_recover();
        if let Some((lsn, bytes)) = snapshot {
            let (epoch, state) =
                decode_snapshot(&bytes).expect("the store only checkpoints what it can decode");
            self.base_lsn = lsn;
            self.base_epoch = epoch;
            self.epoch = self.epoch.max(epoch);
            for (&k, &v) in &state {
                self.committed.insert(k, v);
            }
            self.base = state;
        }
        for bytes in &records {
            let r = Record::decode(bytes).expect("the store only logs records it can decode");
            self.epoch = self.epoch.max(r.epoch);
            self.log.push_back(r);
            self.appended_ns.push_back(0);
        }
        self.applied_lsn = self.base_lsn;
        self.durable_lsn = self.tail_lsn();
        self.shipped_lsn = self.durable_lsn;
        self.apply_durable(self.durable_lsn);
        tracing::debug!(
            checkpoint = self.base_lsn,
            records = records.len(),
            epoch = self.epoch,
            "recovered from the log"
        );
        let recovered = self.ids().recovered;
        ctx.metrics().add(recovered, records.len() as u64);
    }

    /// Cuts the log back to `len` records: the rest diverged from the primary's history.
    pub(super) fn rewind(&mut self, ctx: &mut dyn Context, len: u64) {
        assert!(
            len >= self.base_lsn,
            "settled records (up to {}) are on every member: never rewound (to {len})",
            self.base_lsn
        );
        let discarded = self.tail_lsn() - len;
        tracing::warn!(len, discarded, "log diverged from the primary: rewinding");
        let c = self.ids().discarded;
        ctx.metrics().add(c, discarded);
        ctx.disk_truncate(len);
        let keep = (len - self.base_lsn) as usize;
        self.log.truncate(keep);
        self.appended_ns.truncate(keep);
        self.durable_lsn = self.durable_lsn.min(len);
        if self.applied_lsn > len {
            self.committed.clear();
            for (&k, &v) in &self.base {
                self.committed.insert(k, v);
            }
            self.applied_lsn = self.base_lsn;
            self.apply_durable(self.durable_lsn);
        }
    }
}
