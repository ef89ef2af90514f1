//! A store shard: a single-primary key-value store over a write-ahead log.
//!
//! Writes (and successful compare-and-sets) are appended to the disk log and acknowledged only
//! when a sync covers them; syncs are group commits (one in flight, the next batches whatever
//! arrived meanwhile). Reads serve the committed state. A restart rebuilds the state from the
//! records the disk made durable. A failed sync poisons the shard (no more writes until it
//! restarts), as MySQL and PostgreSQL stop rather than trust a log after an fsync error.

use crate::context::{Component, Context, DiskEvent, NodeId};
use crate::detmap::DetMap;
use crate::metrics::{CounterId, HistId};
use crate::msg::{Msg, StoreOp, StoreRequest, StoreResponse, StoreResult, Timer};
use serde::Deserialize;
use std::collections::VecDeque;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// PLANTED BUG for checker tests: acknowledge writes before the sync. Never true in
    /// production; the durability checker must catch it under a crash.
    pub ack_before_sync: bool,
}

/// One log record: a key set to a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: u64,
    pub value: u64,
}

pub const RECORD_LEN: usize = 17;
const RECORD_WRITE: u8 = 1;

impl Record {
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0] = RECORD_WRITE;
        b[1..9].copy_from_slice(&self.key.to_le_bytes());
        b[9..17].copy_from_slice(&self.value.to_le_bytes());
        b
    }

    /// None for a torn or foreign record.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        if bytes.len() != RECORD_LEN || bytes[0] != RECORD_WRITE {
            return None;
        }
        let key = u64::from_le_bytes(bytes[1..9].try_into().ok()?);
        let value = u64::from_le_bytes(bytes[9..17].try_into().ok()?);
        Some(Record { key, value })
    }
}

#[derive(Clone, Copy, Debug)]
struct PendingAck {
    lsn: u64,
    to: NodeId,
    id: u64,
    /// Applied to the committed state when the ack goes out (None for a failed CAS).
    apply: Option<Record>,
    result: StoreResult,
}

struct Ids {
    reads: CounterId,
    writes: CounterId,
    cas_failed: CounterId,
    syncs: CounterId,
    errors: CounterId,
    recovered: CounterId,
    commit_latency: HistId,
}

pub struct Store {
    config: StoreConfig,
    committed: DetMap<u64, u64>,
    /// Latest value per key including writes not yet durable: CAS decides against it.
    latest: DetMap<u64, (u64, u64)>,
    pending: VecDeque<(PendingAck, u64)>,
    durable_lsn: u64,
    tail_lsn: u64,
    sync_in_flight: bool,
    sync_wanted: bool,
    poisoned: bool,
    ids: Option<Ids>,
}

impl Store {
    pub fn new(config: StoreConfig) -> Store {
        Store {
            config,
            committed: DetMap::new(),
            latest: DetMap::new(),
            pending: VecDeque::new(),
            durable_lsn: 0,
            tail_lsn: 0,
            sync_in_flight: false,
            sync_wanted: false,
            poisoned: false,
            ids: None,
        }
    }

    /// The committed value of `key` (what a read returns now).
    pub fn get(&self, key: u64) -> Option<u64> {
        self.committed.get(&key).copied()
    }

    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn count(&self, ctx: &mut dyn Context, id: fn(&Ids) -> CounterId) {
        let c = id(self.ids());
        ctx.metrics().add(c, 1);
    }

    fn reply(ctx: &mut dyn Context, to: NodeId, id: u64, result: StoreResult) {
        ctx.send(to, Msg::StoreReply(StoreResponse { id, result }));
    }

    fn latest(&self, key: u64) -> Option<u64> {
        match self.latest.get(&key) {
            Some(&(v, _)) => Some(v),
            None => self.get(key),
        }
    }

    fn on_request(&mut self, ctx: &mut dyn Context, from: NodeId, r: StoreRequest) {
        match r.op {
            StoreOp::Read { key } => {
                self.count(ctx, |i| i.reads);
                Self::reply(ctx, from, r.id, StoreResult::Value(self.get(key)));
            }
            StoreOp::Write { key, value } => self.write(ctx, from, r.id, Record { key, value }),
            StoreOp::Cas { key, expect, new } => {
                let current = self.latest(key);
                if current == expect {
                    return self.write(ctx, from, r.id, Record { key, value: new });
                }
                self.count(ctx, |i| i.cas_failed);
                // The value the CAS saw may not be durable yet: answer once it is.
                let ack = PendingAck {
                    lsn: self.tail_lsn,
                    to: from,
                    id: r.id,
                    apply: None,
                    result: StoreResult::CasFailed { current },
                };
                self.enqueue(ctx, ack);
            }
        }
    }

    fn write(&mut self, ctx: &mut dyn Context, from: NodeId, id: u64, record: Record) {
        if self.poisoned {
            self.count(ctx, |i| i.errors);
            return Self::reply(ctx, from, id, StoreResult::Error);
        }
        let lsn = match ctx.disk_append(&record.encode()) {
            Ok(lsn) => lsn,
            Err(_) => {
                self.count(ctx, |i| i.errors);
                return Self::reply(ctx, from, id, StoreResult::Error);
            }
        };
        assert_eq!(
            lsn,
            self.tail_lsn + 1,
            "the log hands out consecutive sequence numbers"
        );
        self.tail_lsn = lsn;
        self.count(ctx, |i| i.writes);
        self.latest.insert(record.key, (record.value, lsn));
        let ack = PendingAck {
            lsn,
            to: from,
            id,
            apply: Some(record),
            result: StoreResult::Written { lsn },
        };
        if self.config.ack_before_sync {
            self.apply(ack);
            Self::reply(ctx, from, id, ack.result);
            return self.request_sync(ctx);
        }
        self.enqueue(ctx, ack);
    }

    fn enqueue(&mut self, ctx: &mut dyn Context, ack: PendingAck) {
        if ack.lsn <= self.durable_lsn {
            self.apply(ack);
            return Self::reply(ctx, ack.to, ack.id, ack.result);
        }
        self.pending.push_back((ack, ctx.now_ns()));
        self.request_sync(ctx);
    }

    fn request_sync(&mut self, ctx: &mut dyn Context) {
        if self.sync_in_flight {
            self.sync_wanted = true;
            return;
        }
        self.sync_in_flight = true;
        self.sync_wanted = false;
        self.count(ctx, |i| i.syncs);
        ctx.disk_sync();
    }

    fn apply(&mut self, ack: PendingAck) {
        if let Some(r) = ack.apply {
            self.committed.insert(r.key, r.value);
            if self
                .latest
                .get(&r.key)
                .is_some_and(|&(_, lsn)| lsn <= ack.lsn)
            {
                self.latest.remove(&r.key);
            }
        }
    }

    fn synced(&mut self, ctx: &mut dyn Context, lsn: u64) {
        assert!(lsn >= self.durable_lsn, "durability never goes backwards");
        self.durable_lsn = lsn;
        let now = ctx.now_ns();
        let hist = self.ids().commit_latency;
        while let Some(&(ack, since)) = self.pending.front() {
            if ack.lsn > lsn {
                break;
            }
            self.pending.pop_front();
            self.apply(ack);
            ctx.metrics().record(hist, now - since);
            Self::reply(ctx, ack.to, ack.id, ack.result);
        }
        self.sync_in_flight = false;
        if self.sync_wanted || !self.pending.is_empty() {
            self.request_sync(ctx);
        }
    }

    fn sync_failed(&mut self, ctx: &mut dyn Context) {
        tracing::warn!(
            pending = self.pending.len(),
            "sync failed: refusing writes until restart"
        );
        self.poisoned = true;
        self.sync_in_flight = false;
        while let Some((ack, _)) = self.pending.pop_front() {
            self.count(ctx, |i| i.errors);
            Self::reply(ctx, ack.to, ack.id, StoreResult::Error);
        }
        self.latest.clear();
    }
}

impl Component for Store {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            reads: m.counter("store_reads_total"),
            writes: m.counter("store_writes_total"),
            cas_failed: m.counter("store_cas_failed_total"),
            syncs: m.counter("store_syncs_total"),
            errors: m.counter("store_errors_total"),
            recovered: m.counter("store_recovered_records_total"),
            commit_latency: m.histogram("store_commit_latency_ns"),
        });
        let records = ctx.disk_recover();
        for bytes in &records {
            let r = Record::decode(bytes).expect("the store only logs records it can decode");
            self.committed.insert(r.key, r.value);
        }
        self.tail_lsn = records.len() as u64;
        self.durable_lsn = self.tail_lsn;
        tracing::debug!(records = records.len(), "recovered from the log");
        let recovered = self.ids().recovered;
        ctx.metrics().add(recovered, records.len() as u64);
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        if let Msg::Store(r) = msg {
            self.on_request(ctx, from, r);
        }
    }

    fn on_timer(&mut self, _ctx: &mut dyn Context, _timer: Timer) {}

    fn on_disk(&mut self, ctx: &mut dyn Context, event: DiskEvent) {
        match event {
            DiskEvent::Synced { lsn } => self.synced(ctx, lsn),
            DiskEvent::SyncFailed { .. } => self.sync_failed(ctx),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestContext;
    use proptest::prelude::*;

    fn req(id: u64, op: StoreOp) -> Msg {
        Msg::Store(StoreRequest { id, op })
    }

    fn replies(ctx: &mut TestContext) -> Vec<(u64, StoreResult)> {
        ctx.take_sent()
            .into_iter()
            .filter_map(|(_, m)| match m {
                Msg::StoreReply(r) => Some((r.id, r.result)),
                _ => None,
            })
            .collect()
    }

    fn sync(store: &mut Store, ctx: &mut TestContext) {
        ctx.durable = ctx.log.len();
        let lsn = ctx.durable as u64;
        store.on_disk(ctx, DiskEvent::Synced { lsn });
    }

    #[test]
    fn a_write_is_acknowledged_only_after_its_sync() {
        let mut ctx = TestContext::new(0);
        let mut s = Store::new(StoreConfig::default());
        s.start(&mut ctx);
        s.on_message(&mut ctx, 9, req(1, StoreOp::Write { key: 5, value: 50 }));
        assert!(replies(&mut ctx).is_empty(), "no ack before the sync");
        assert_eq!(ctx.sync_requests, 1);
        sync(&mut s, &mut ctx);
        assert_eq!(
            replies(&mut ctx),
            vec![(1, StoreResult::Written { lsn: 1 })]
        );
    }

    #[test]
    fn a_restarted_store_serves_what_its_disk_made_durable() {
        let mut ctx = TestContext::new(0);
        let mut s = Store::new(StoreConfig::default());
        s.start(&mut ctx);
        s.on_message(&mut ctx, 9, req(1, StoreOp::Write { key: 5, value: 50 }));
        sync(&mut s, &mut ctx);
        s.on_message(&mut ctx, 9, req(2, StoreOp::Write { key: 5, value: 51 }));
        ctx.crash_disk();
        let mut s = Store::new(StoreConfig::default());
        s.start(&mut ctx);
        assert_eq!(s.get(5), Some(50));
    }

    #[test]
    fn a_failed_cas_waits_until_the_value_it_saw_is_durable() {
        let mut ctx = TestContext::new(0);
        let mut s = Store::new(StoreConfig::default());
        s.start(&mut ctx);
        s.on_message(&mut ctx, 9, req(1, StoreOp::Write { key: 5, value: 50 }));
        s.on_message(
            &mut ctx,
            9,
            req(
                2,
                StoreOp::Cas {
                    key: 5,
                    expect: None,
                    new: 7,
                },
            ),
        );
        assert!(replies(&mut ctx).is_empty());
        sync(&mut s, &mut ctx);
        let r = replies(&mut ctx);
        assert_eq!(r[1], (2, StoreResult::CasFailed { current: Some(50) }));
    }

    proptest! {
        /// Whatever the interleaving of writes, syncs and crashes, every acknowledged write
        /// survives, and the store serves the last durable value of each key.
        #[test]
        fn acknowledged_writes_survive_any_crash(ops in proptest::collection::vec((0u8..4, 0u64..4), 1..60)) {
            let mut ctx = TestContext::new(0);
            let mut s = Store::new(StoreConfig::default());
            s.start(&mut ctx);
            let mut next = 1u64;
            let mut pending = std::collections::BTreeMap::new();
            let mut acked: Vec<(u64, u64)> = Vec::new();
            for (op, key) in ops {
                match op {
                    0 | 1 => {
                        next += 1;
                        pending.insert(next, (key, next));
                        s.on_message(&mut ctx, 9, req(next, StoreOp::Write { key, value: next }));
                    }
                    2 => sync(&mut s, &mut ctx),
                    _ => {
                        ctx.crash_disk();
                        s = Store::new(StoreConfig::default());
                        s.start(&mut ctx);
                    }
                }
                for (id, r) in replies(&mut ctx) {
                    if let StoreResult::Written { .. } = r {
                        acked.push(pending[&id]);
                    }
                }
            }
            let durable: Vec<Record> = ctx.log[..ctx.durable].iter().map(|b| Record::decode(b).unwrap()).collect();
            for (k, v) in acked {
                let wanted = Record { key: k, value: v };
                prop_assert!(durable.contains(&wanted), "acknowledged {:?} missing", wanted);
            }
            for r in &durable {
                let last = durable.iter().rev().find(|x| x.key == r.key).unwrap();
                prop_assert_eq!(s.get(r.key), Some(last.value));
            }
        }
    }
}
