//! Cross-zone mirroring: the design brief's loop, made explicit and checkable.
//!
//! ```text
//! loop { batch = source.get_updates(checkpoint); apply batch to every zone replica in
//!        parallel; when all have applied it: advance and persist the checkpoint }
//! ```
//!
//! The [`Mirror`] job fetches a shard primary's durable records after its checkpoint, sends the
//! batch to every [`MirrorReplica`] at once, and advances its checkpoint (durably, on its own
//! disk) only when every replica has acknowledged the whole batch. A restarted job resumes from
//! its checkpoint, so nothing is skipped; replicas skip records they already hold, so nothing
//! is applied twice.
//!
//! Conflict rule (explicit and checked): each replica has exactly one writer, its mirror job,
//! and applies the source's records strictly in log order; it accepts no other writes. A
//! record out of order is not applied (counted in `mirror_gaps_total`), so a replica's content
//! is always a prefix of its source's log, which the simulator's mirror check verifies.
//!
//! Lag = network delay + the replica applier's queue (a single applier with a service time per
//! record: lag explodes as its utilization nears 1) + the batch interval.

use crate::config::{self, Checked};
use crate::context::{Component, Context, DiskEvent, NodeId};
use crate::metrics::{CounterId, GaugeId, HistId, LevelId};
use crate::msg::{Msg, Timer};
use crate::repl::ReplMsg;
use crate::rng::{ms_to_ns, Dist};
use crate::store::{decode_snapshot, encode_snapshot, Record};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One record of the source's log, as mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MirrorRecord {
    pub lsn: u64,
    pub key: u64,
    pub value: u64,
    /// When the source appended it (its local clock; 0 when unknown, e.g. recovered).
    pub commit_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MirrorMsg {
    /// Job -> source primary: durable records from `from_lsn`, at most `max`.
    GetUpdates { from_lsn: u64, max: u32 },
    /// Source -> job: the records, and the source's durable tail (`tail_lsn = 0`: not primary).
    Updates {
        records: Vec<MirrorRecord>,
        tail_lsn: u64,
    },
    /// Job -> replica.
    Apply { records: Vec<MirrorRecord> },
    /// Replica -> job: everything up to `upto` is applied and durable here.
    Applied { upto: u64 },
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorConfig {
    /// How often the job asks for updates when it has caught up.
    pub batch_interval_ms: f64,
    /// Records per batch at most.
    pub max_batch: u32,
    /// The job resends a batch to replicas that have not acknowledged it after this long.
    pub apply_timeout_ms: f64,
    /// A replica's time to apply one record (a single applier thread).
    pub apply_time: Dist,
    /// PLANTED BUG (feature `planted-bugs`, tests only): advance the checkpoint as soon as a
    /// batch is fetched, without waiting for the replicas. The mirror check must catch the
    /// records it skips.
    #[cfg(feature = "planted-bugs")]
    pub bug_checkpoint_before_apply: bool,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            batch_interval_ms: 50.0,
            max_batch: 1_000,
            apply_timeout_ms: 1_000.0,
            apply_time: Dist::Constant { ms: 0.05 },
            #[cfg(feature = "planted-bugs")]
            bug_checkpoint_before_apply: false,
        }
    }
}

impl MirrorConfig {
    /// Ranges: `batch_interval_ms` 1-1e9; `max_batch` 1-1,000,000; `apply_timeout_ms` 1-1e9;
    /// `apply_time` a duration distribution.
    pub fn validate(&self) -> Checked {
        config::ms("batch_interval_ms", self.batch_interval_ms, 1.0)?;
        config::count("max_batch", u64::from(self.max_batch), 1, 1_000_000)?;
        config::ms("apply_timeout_ms", self.apply_timeout_ms, 1.0)?;
        config::nested("apply_time", self.apply_time.validate())
    }
}

/// Checkpoint records (8 bytes each) a mirror job's disk keeps before it folds them away.
const CHECKPOINT_RECORDS_KEPT: u64 = 256;
/// Records a mirror copy's disk keeps before it folds them into a snapshot of its data.
const COPY_RECORDS_KEPT: u64 = 20_000;

const TICK_FETCH: u32 = 1;
const TICK_APPLY_TIMEOUT: u32 = 2;
const TICK_APPLIED_ONE: u32 = 3;

struct JobIds {
    batches: CounterId,
    resends: CounterId,
    pending: GaugeId,
    checkpoint: GaugeId,
}

#[derive(Clone, Debug)]
struct Batch {
    records: Vec<MirrorRecord>,
    waiting: BTreeSet<NodeId>,
    sent_ns: u64,
}

/// The mirror job of one source shard.
pub struct Mirror {
    config: MirrorConfig,
    shard: u32,
    source: NodeId,
    source_epoch: u64,
    replicas: Vec<NodeId>,
    checkpoint: u64,
    /// A checkpoint written but not yet synced: (source lsn, its record's lsn on disk).
    checkpoint_pending: Option<(u64, u64)>,
    /// The disk lsn of the job's own last disk checkpoint.
    disk_base_lsn: u64,
    batch: Option<Batch>,
    /// When the outstanding fetch was sent; a fetch unanswered for `apply_timeout_ms` is retried.
    fetch_sent_ns: Option<u64>,
    ids: Option<JobIds>,
}

impl Mirror {
    pub fn new(config: MirrorConfig, shard: u32, source: NodeId, replicas: &[NodeId]) -> Mirror {
        Mirror {
            config,
            shard,
            source,
            source_epoch: 0,
            replicas: replicas.to_vec(),
            checkpoint: 0,
            checkpoint_pending: None,
            disk_base_lsn: 0,
            batch: None,
            fetch_sent_ns: None,
            ids: None,
        }
    }

    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    fn ids(&self) -> &JobIds {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn fetch(&mut self, ctx: &mut dyn Context) {
        if self.batch.is_some() || self.checkpoint_pending.is_some() {
            return;
        }
        let now = ctx.now_ns();
        let timeout = ms_to_ns(self.config.apply_timeout_ms);
        if self.fetch_sent_ns.is_some_and(|sent| now - sent < timeout) {
            return;
        }
        self.fetch_sent_ns = Some(now);
        let from_lsn = self.checkpoint + 1;
        ctx.send(
            self.source,
            Msg::Mirror(MirrorMsg::GetUpdates {
                from_lsn,
                max: self.config.max_batch,
            }),
        );
    }

    fn on_updates(&mut self, ctx: &mut dyn Context, records: Vec<MirrorRecord>, tail_lsn: u64) {
        if self.fetch_sent_ns.take().is_none()
            || self.batch.is_some()
            || self.checkpoint_pending.is_some()
        {
            return; // a late answer to a fetch already retried
        }
        let (pending, gauge) = (tail_lsn.saturating_sub(self.checkpoint), self.ids().pending);
        ctx.metrics().set(gauge, pending as f64);
        let Some(last) = records.last().map(|r| r.lsn) else {
            return;
        };
        let expected_first = self.checkpoint + 1;
        if records[0].lsn != expected_first {
            return; // an answer to an older request
        }
        let c = self.ids().batches;
        ctx.metrics().add(c, 1);
        for &r in &self.replicas {
            ctx.send(
                r,
                Msg::Mirror(MirrorMsg::Apply {
                    records: records.clone(),
                }),
            );
        }
        if planted!(self.config.bug_checkpoint_before_apply) {
            return self.persist_checkpoint(ctx, last);
        }
        let sent_ns = ctx.now_ns();
        self.batch = Some(Batch {
            records,
            waiting: self.replicas.iter().copied().collect(),
            sent_ns,
        });
        ctx.set_timer(
            ms_to_ns(self.config.apply_timeout_ms),
            Timer::Tick {
                kind: TICK_APPLY_TIMEOUT,
            },
        );
    }

    fn on_applied(&mut self, ctx: &mut dyn Context, from: NodeId, upto: u64) {
        let Some(batch) = &mut self.batch else { return };
        let last = batch.records.last().expect("batches are not empty").lsn;
        if upto >= last {
            batch.waiting.remove(&from);
        }
        if batch.waiting.is_empty() {
            self.batch = None;
            self.persist_checkpoint(ctx, last);
        }
    }

    fn persist_checkpoint(&mut self, ctx: &mut dyn Context, lsn: u64) {
        let Ok(disk_lsn) = ctx.disk_append(&lsn.to_le_bytes()) else {
            return; // the batch will be fetched and applied again: harmless
        };
        self.checkpoint_pending = Some((lsn, disk_lsn));
        ctx.disk_sync();
    }

    fn on_synced(&mut self, ctx: &mut dyn Context, synced: u64) {
        let Some((lsn, disk_lsn)) = self.checkpoint_pending else {
            return;
        };
        if synced < disk_lsn {
            return;
        }
        self.checkpoint_pending = None;
        self.checkpoint = lsn;
        let g = self.ids().checkpoint;
        ctx.metrics().set(g, lsn as f64);
        // Only the last checkpoint record matters: fold the older ones away now and then.
        if disk_lsn >= self.disk_base_lsn + CHECKPOINT_RECORDS_KEPT {
            ctx.disk_checkpoint(disk_lsn, lsn.to_le_bytes().to_vec());
            self.disk_base_lsn = disk_lsn;
        }
        self.fetch(ctx); // more may be waiting: do not wait for the next tick
    }

    /// The apply timeout fired: resend the batch to the copies that have not acknowledged it, if
    /// it has really been outstanding that long (the timer may belong to an earlier batch).
    fn resend(&mut self, ctx: &mut dyn Context) {
        let Some(batch) = &mut self.batch else { return };
        let (now, timeout) = (ctx.now_ns(), ms_to_ns(self.config.apply_timeout_ms));
        if now - batch.sent_ns < timeout {
            return;
        }
        batch.sent_ns = now;
        let batch = &*batch;
        for &r in &batch.waiting {
            ctx.send(
                r,
                Msg::Mirror(MirrorMsg::Apply {
                    records: batch.records.clone(),
                }),
            );
        }
        let c = self.ids().resends;
        ctx.metrics().add(c, 1);
        ctx.set_timer(
            ms_to_ns(self.config.apply_timeout_ms),
            Timer::Tick {
                kind: TICK_APPLY_TIMEOUT,
            },
        );
    }
}

impl Component for Mirror {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(JobIds {
            batches: m.counter("mirror_batches_total"),
            resends: m.counter("mirror_resends_total"),
            pending: m.gauge("mirror_pending_updates", "records"),
            checkpoint: m.gauge("mirror_checkpoint_lsn", "lsn"),
        });
        let recovered = ctx.disk_recover();
        self.disk_base_lsn = recovered.base_lsn();
        let last = recovered
            .records
            .last()
            .or(recovered.snapshot.as_ref().map(|s| &s.1));
        if let Some(last) = last {
            self.checkpoint =
                u64::from_le_bytes(last[..8].try_into().expect("checkpoints are 8 bytes"));
        }
        ctx.set_timer(
            ms_to_ns(self.config.batch_interval_ms),
            Timer::Tick { kind: TICK_FETCH },
        );
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        match msg {
            Msg::Mirror(MirrorMsg::Updates { records, tail_lsn }) if from == self.source => {
                self.on_updates(ctx, records, tail_lsn)
            }
            Msg::Mirror(MirrorMsg::Applied { upto }) => self.on_applied(ctx, from, upto),
            Msg::Repl(ReplMsg::Route {
                shard,
                epoch,
                primary,
            }) if shard == self.shard && epoch > self.source_epoch => {
                self.source = primary;
                self.source_epoch = epoch;
                self.fetch_sent_ns = None;
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick { kind: TICK_FETCH } => {
                ctx.set_timer(
                    ms_to_ns(self.config.batch_interval_ms),
                    Timer::Tick { kind: TICK_FETCH },
                );
                self.fetch(ctx);
            }
            Timer::Tick {
                kind: TICK_APPLY_TIMEOUT,
            } => self.resend(ctx),
            _ => {}
        }
    }

    fn on_disk(&mut self, ctx: &mut dyn Context, event: DiskEvent) {
        if let DiskEvent::Synced { lsn } = event {
            self.on_synced(ctx, lsn);
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct ReplicaIds {
    applied: CounterId,
    duplicates: CounterId,
    gaps: CounterId,
    visibility: HistId,
    busy: LevelId,
}

/// A read-only copy of one shard in another zone, written only by its mirror job.
///
/// Its disk holds the source's records in source order (so a record's lsn on this disk is its
/// lsn at the source) and, now and then, a snapshot of its data that replaces them.
pub struct MirrorReplica {
    config: MirrorConfig,
    job: NodeId,
    data: BTreeMap<u64, u64>,
    /// The last source lsn applied here (durable or not), and the last made durable.
    applied_lsn: u64,
    durable_lsn: u64,
    /// The source lsn of this copy's last snapshot.
    base_lsn: u64,
    queue: VecDeque<MirrorRecord>,
    /// The last lsn queued or applied: the next record must follow it.
    queued_lsn: u64,
    applying: bool,
    ids: Option<ReplicaIds>,
}

impl MirrorReplica {
    pub fn new(config: MirrorConfig, job: NodeId) -> MirrorReplica {
        MirrorReplica {
            config,
            job,
            data: BTreeMap::new(),
            applied_lsn: 0,
            durable_lsn: 0,
            base_lsn: 0,
            queue: VecDeque::new(),
            queued_lsn: 0,
            applying: false,
            ids: None,
        }
    }

    /// The last source lsn applied here and made durable.
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }

    pub fn get(&self, key: u64) -> Option<u64> {
        self.data.get(&key).copied()
    }

    /// Everything applied here (key -> value).
    pub fn data(&self) -> &BTreeMap<u64, u64> {
        &self.data
    }

    fn ids(&self) -> &ReplicaIds {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn on_apply(&mut self, ctx: &mut dyn Context, from: NodeId, records: Vec<MirrorRecord>) {
        if from != self.job {
            return; // the conflict rule: one writer
        }
        for r in records {
            if r.lsn <= self.queued_lsn {
                let c = self.ids().duplicates;
                ctx.metrics().add(c, 1);
                continue;
            }
            if r.lsn != self.queued_lsn + 1 {
                let c = self.ids().gaps;
                ctx.metrics().add(c, 1);
                break; // never apply out of order: the job must resend from our position
            }
            self.queued_lsn = r.lsn;
            self.queue.push_back(r);
        }
        if self.queue.is_empty() && !self.applying {
            let upto = self.durable_lsn;
            ctx.send(self.job, Msg::Mirror(MirrorMsg::Applied { upto }));
        }
        self.apply_next(ctx);
    }

    fn apply_next(&mut self, ctx: &mut dyn Context) {
        if self.applying || self.queue.is_empty() {
            return;
        }
        self.applying = true;
        let (busy, now) = (self.ids().busy, ctx.now_ns());
        ctx.metrics().shift(busy, now, 1);
        let t = self.config.apply_time.sample_ns(ctx.rng());
        ctx.set_timer(
            t,
            Timer::Tick {
                kind: TICK_APPLIED_ONE,
            },
        );
    }

    fn applied_one(&mut self, ctx: &mut dyn Context) {
        self.applying = false;
        let (busy, now) = (self.ids().busy, ctx.now_ns());
        ctx.metrics().shift(busy, now, -1);
        let r = self.queue.pop_front().expect("applying a queued record");
        let record = Record {
            key: r.key,
            value: r.value,
            epoch: 0,
        };
        match ctx.disk_append(&record.encode()) {
            Ok(disk_lsn) => assert_eq!(disk_lsn, r.lsn, "a copy's disk follows source lsns"),
            Err(_) => {
                self.queue.clear(); // the job will resend from our durable position
                self.queued_lsn = self.applied_lsn;
                return;
            }
        }
        self.data.insert(r.key, r.value);
        self.applied_lsn = r.lsn;
        let ids = self.ids();
        let (applied, vis) = (ids.applied, ids.visibility);
        ctx.metrics().add(applied, 1);
        if r.commit_ns > 0 {
            ctx.metrics().record(vis, now.saturating_sub(r.commit_ns));
        }
        if self.queue.is_empty() {
            ctx.disk_sync();
        }
        self.apply_next(ctx);
    }

    /// With everything applied durable, folds the disk's records into a snapshot of the data
    /// once there are enough of them.
    fn maybe_checkpoint(&mut self, ctx: &mut dyn Context) {
        let settled = self.queue.is_empty() && !self.applying;
        if settled
            && self.durable_lsn == self.applied_lsn
            && self.durable_lsn >= self.base_lsn + COPY_RECORDS_KEPT
        {
            ctx.disk_checkpoint(self.durable_lsn, encode_snapshot(0, &self.data));
            self.base_lsn = self.durable_lsn;
        }
    }
}

impl Component for MirrorReplica {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(ReplicaIds {
            applied: m.counter("mirror_applied_total"),
            duplicates: m.counter("mirror_duplicates_skipped_total"),
            gaps: m.counter("mirror_gaps_total"),
            visibility: m.histogram("mirror_visibility_delay_ns"),
            busy: m.level("mirror_applier_busy", "appliers"),
        });
        let recovered = ctx.disk_recover();
        if let Some((_, bytes)) = &recovered.snapshot {
            let (_, data) = decode_snapshot(bytes).expect("a copy snapshots what it can decode");
            self.data = data;
        }
        for bytes in &recovered.records {
            let r = Record::decode(bytes).expect("a copy logs records it can decode");
            self.data.insert(r.key, r.value);
        }
        self.base_lsn = recovered.base_lsn();
        self.durable_lsn = recovered.tail_lsn();
        self.applied_lsn = self.durable_lsn;
        self.queued_lsn = self.durable_lsn;
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        if let Msg::Mirror(MirrorMsg::Apply { records }) = msg {
            self.on_apply(ctx, from, records);
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        if timer
            == (Timer::Tick {
                kind: TICK_APPLIED_ONE,
            })
        {
            self.applied_one(ctx);
        }
    }

    fn on_disk(&mut self, ctx: &mut dyn Context, event: DiskEvent) {
        if let DiskEvent::Synced { lsn } = event {
            self.durable_lsn = self.durable_lsn.max(lsn.min(self.applied_lsn));
            if self.queue.is_empty() && !self.applying {
                let upto = self.durable_lsn;
                ctx.send(self.job, Msg::Mirror(MirrorMsg::Applied { upto }));
            }
            self.maybe_checkpoint(ctx);
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
