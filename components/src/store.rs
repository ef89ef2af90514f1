//! A store shard member: a key-value store over a write-ahead log, primary or replica.
//!
//! Writes (and successful compare-and-sets) are appended to the log and acknowledged only when
//! a sync covers them; syncs are group commits (one in flight, the next batches whatever
//! arrived meanwhile). Reads serve the committed state. A restart rebuilds the state from the
//! records the disk made durable. A failed sync poisons the node (no more writes until it
//! restarts), as MySQL and PostgreSQL stop rather than trust a log after an fsync error.
//!
//! Replication (see [`crate::repl`] for the protocol): the primary streams each durable record
//! to the other members of its shard; with semi-sync it acknowledges a write only once
//! `semi_sync_ack_count` replicas hold it, falling back to async after `semi_sync_timeout_ms`
//! and switching back when a replica catches up. A replica that finds its log diverging from
//! the primary's (a record of another epoch at the same position) rewinds its log to the
//! common prefix: the unreplicated tail of an old primary is discarded, which is how
//! acknowledged writes are lost under async replication.

use crate::context::{Component, Context, DiskEvent, NodeId};
use crate::detmap::DetMap;
use crate::metrics::{CounterId, HistId};
use crate::mirror::{MirrorMsg, MirrorRecord};
use crate::msg::{Msg, StoreOp, StoreRequest, StoreResponse, StoreResult, Timer};
use crate::repl::ReplMsg;
use crate::rng::ms_to_ns;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};

/// Times a semi-sync primary fell back to async (the counter's name, for readers of the registry).
pub const SEMI_SYNC_FALLBACKS_TOTAL: &str = "store_semi_sync_fallbacks_total";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationMode {
    /// Acknowledge after the local sync (MySQL's default).
    #[default]
    Async,
    /// Acknowledge after `semi_sync_ack_count` replicas have the record (AFTER_SYNC).
    SemiSync,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// PLANTED BUG (feature `planted-bugs`, tests only): acknowledge writes before the sync.
    /// The durability checker must catch it under a crash.
    #[cfg(feature = "planted-bugs")]
    pub bug_ack_before_sync: bool,
    /// PLANTED BUG (feature `planted-bugs`, tests only): a replica never asks for records it
    /// missed. The convergence checker must catch it after a partition heals.
    #[cfg(feature = "planted-bugs")]
    pub bug_replica_never_fetches: bool,
    pub replication: ReplicationMode,
    /// Replica acknowledgements a semi-sync write waits for (rpl_semi_sync_source_wait_for_replica_count = 1).
    pub semi_sync_ack_count: u32,
    /// After this long without enough acknowledgements, fall back to async (rpl_semi_sync_source_timeout = 10 s).
    pub semi_sync_timeout_ms: f64,
    /// Heartbeat rows from the primary (pt-heartbeat's default interval: 1 s).
    pub heartbeat_interval_ms: f64,
    /// Records resent per fetch when a replica finds a gap.
    pub fetch_batch: u32,
    /// Time before a durable record leaves for the replicas (the binlog dump thread's wake-up
    /// and socket buffering). Under async replication this is the window of acknowledged but
    /// unreplicated writes that a primary crash loses.
    pub replication_delay_ms: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            #[cfg(feature = "planted-bugs")]
            bug_ack_before_sync: false,
            #[cfg(feature = "planted-bugs")]
            bug_replica_never_fetches: false,
            replication: ReplicationMode::Async,
            semi_sync_ack_count: 1,
            semi_sync_timeout_ms: 10_000.0,
            heartbeat_interval_ms: 1_000.0,
            fetch_batch: 512,
            replication_delay_ms: 0.0,
        }
    }
}

impl StoreConfig {
    pub fn validate(&self) -> Result<(), String> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.semi_sync_timeout_ms) || !positive(self.heartbeat_interval_ms) {
            return Err("semi_sync_timeout_ms and heartbeat_interval_ms must be > 0".into());
        }
        if self.replication_delay_ms.is_nan() || self.replication_delay_ms < 0.0 {
            return Err("replication_delay_ms must be >= 0".into());
        }
        if self.fetch_batch == 0 || self.semi_sync_ack_count == 0 {
            return Err("fetch_batch and semi_sync_ack_count must be at least 1".into());
        }
        Ok(())
    }
}

/// Where a store node sits: its shard, its fellow members, and whether it starts as primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub shard: u32,
    /// Every member of the shard (this node included), initial primary first.
    pub members: Vec<NodeId>,
}

impl Placement {
    /// A shard of one node.
    pub fn single(me: NodeId) -> Placement {
        Placement {
            shard: 0,
            members: vec![me],
        }
    }
}

/// One log record: a key set to a value by the primary of `epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: u64,
    pub value: u64,
    pub epoch: u64,
}

pub const RECORD_LEN: usize = 25;
const RECORD_WRITE: u8 = 1;

impl Record {
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0] = RECORD_WRITE;
        b[1..9].copy_from_slice(&self.key.to_le_bytes());
        b[9..17].copy_from_slice(&self.value.to_le_bytes());
        b[17..25].copy_from_slice(&self.epoch.to_le_bytes());
        b
    }

    /// None for a torn or foreign record.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        if bytes.len() != RECORD_LEN || bytes[0] != RECORD_WRITE {
            return None;
        }
        let word = |i: usize| bytes[i..i + 8].try_into().ok().map(u64::from_le_bytes);
        Some(Record {
            key: word(1)?,
            value: word(9)?,
            epoch: word(17)?,
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct PendingAck {
    lsn: u64,
    to: NodeId,
    id: u64,
    /// True for a write (counts in the primary's tenure); false for a failed CAS.
    write: bool,
    result: StoreResult,
}

/// A stretch of time in which this node acknowledged writes as primary of `epoch`
/// (local times). The split-brain checker compares tenures across a shard's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenure {
    pub epoch: u64,
    pub first_ack_ns: u64,
    pub last_ack_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Primary,
    Replica { primary: NodeId },
}

struct Ids {
    reads: CounterId,
    writes: CounterId,
    cas_failed: CounterId,
    syncs: CounterId,
    errors: CounterId,
    redirects: CounterId,
    recovered: CounterId,
    discarded: CounterId,
    fallbacks: CounterId,
    promotions: CounterId,
    commit_latency: HistId,
    replication_lag: HistId,
}

const TICK_HEARTBEAT: u32 = 1;
const TICK_SEMI_SYNC: u32 = 2;
const TICK_SHIP: u32 = 3;

pub struct Store {
    config: StoreConfig,
    placement: Placement,
    me: NodeId,
    role: Role,
    epoch: u64,
    /// The whole log in memory: `log[lsn - 1]`.
    log: Vec<Record>,
    /// When each record was appended here (local clock; 0 for records recovered from disk).
    appended_ns: Vec<u64>,
    committed: DetMap<u64, u64>,
    /// Latest value per key including writes not yet acknowledged: CAS decides against it.
    latest: DetMap<u64, (u64, u64)>,
    pending: VecDeque<(PendingAck, u64)>,
    durable_lsn: u64,
    applied_lsn: u64,
    sync_in_flight: bool,
    sync_wanted: bool,
    poisoned: bool,
    /// Writes refused during a resharding cut-over.
    frozen: bool,
    // As primary:
    replica_acked: BTreeMap<NodeId, u64>,
    shipped_lsn: u64,
    ship_pending: bool,
    semi_sync_on: bool,
    waiting_since_ns: Option<u64>,
    // As replica:
    fetch_after_ns: u64,
    tenures: Vec<Tenure>,
    ids: Option<Ids>,
}

impl Store {
    /// A single-node shard (no replication).
    pub fn new(config: StoreConfig) -> Store {
        Store::member(
            config,
            NodeId::MAX,
            Placement {
                shard: 0,
                members: vec![],
            },
        )
    }

    /// Member `me` of the shard `placement`.
    pub fn member(config: StoreConfig, me: NodeId, placement: Placement) -> Store {
        let primary = placement.members.first().copied().unwrap_or(me);
        let role = if primary == me {
            Role::Primary
        } else {
            Role::Replica { primary }
        };
        Store {
            config,
            placement,
            me,
            role,
            epoch: 1,
            log: Vec::new(),
            appended_ns: Vec::new(),
            committed: DetMap::new(),
            latest: DetMap::new(),
            pending: VecDeque::new(),
            durable_lsn: 0,
            applied_lsn: 0,
            sync_in_flight: false,
            sync_wanted: false,
            poisoned: false,
            frozen: false,
            replica_acked: BTreeMap::new(),
            shipped_lsn: 0,
            ship_pending: false,
            semi_sync_on: true,
            waiting_since_ns: None,
            fetch_after_ns: 0,
            tenures: Vec::new(),
            ids: None,
        }
    }

    /// The committed value of `key` (what a read at the primary returns now).
    pub fn get(&self, key: u64) -> Option<u64> {
        self.committed.get(&key).copied()
    }

    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }

    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn shard(&self) -> u32 {
        self.placement.shard
    }

    /// The durable log, oldest first.
    pub fn durable_log(&self) -> &[Record] {
        &self.log[..self.durable_lsn as usize]
    }

    /// Stretches of time this node acknowledged writes as primary (since its last restart).
    pub fn tenures(&self) -> &[Tenure] {
        &self.tenures
    }

    /// Records applied to the committed state (acknowledged, or replicated and durable).
    pub fn applied_lsn(&self) -> u64 {
        self.applied_lsn
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

    fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.placement
            .members
            .iter()
            .copied()
            .filter(move |&m| m != self.me)
    }

    fn latest(&self, key: u64) -> Option<u64> {
        match self.latest.get(&key) {
            Some(&(v, _)) => Some(v),
            None => self.get(key),
        }
    }

    fn tail_lsn(&self) -> u64 {
        self.log.len() as u64
    }

    fn on_request(&mut self, ctx: &mut dyn Context, from: NodeId, r: StoreRequest) {
        if let Role::Replica { primary } = self.role {
            self.count(ctx, |i| i.redirects);
            return Self::reply(
                ctx,
                from,
                r.id,
                StoreResult::Redirect {
                    primary: Some(primary),
                },
            );
        }
        match r.op {
            StoreOp::Read { key } => {
                self.count(ctx, |i| i.reads);
                Self::reply(ctx, from, r.id, StoreResult::Value(self.get(key)));
            }
            StoreOp::Write { key, value } => self.write(ctx, from, r.id, key, value),
            StoreOp::Cas { key, expect, new } => {
                let current = self.latest(key);
                if current == expect {
                    return self.write(ctx, from, r.id, key, new);
                }
                self.count(ctx, |i| i.cas_failed);
                // The value the CAS saw may not be durable yet: answer once it is.
                let result = StoreResult::CasFailed { current };
                let ack = PendingAck {
                    lsn: self.tail_lsn(),
                    to: from,
                    id: r.id,
                    write: false,
                    result,
                };
                self.enqueue(ctx, ack);
            }
        }
    }

    /// Appends a record to the log, on disk and in memory; None on a disk error.
    fn append(&mut self, ctx: &mut dyn Context, record: Record) -> Option<u64> {
        let lsn = ctx.disk_append(&record.encode()).ok()?;
        assert_eq!(
            lsn,
            self.tail_lsn() + 1,
            "the log hands out consecutive sequence numbers"
        );
        self.log.push(record);
        self.appended_ns.push(ctx.now_ns());
        Some(lsn)
    }

    /// Digests of the committed data, split by which of `shards` equal keyspace ranges owns
    /// each key: XOR over keys of a hash of (key, value). Order-free, so two stores holding the
    /// same data agree whatever order they wrote it in.
    pub fn digests(&self, shards: usize) -> Vec<u64> {
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        for r in &self.log[..self.applied_lsn as usize] {
            last.insert(r.key, r.value);
        }
        let mut out = vec![0u64; shards.max(1)];
        for (k, v) in last {
            out[crate::keyspace::shard_for(k, shards.max(1))] ^=
                crate::rng::mix64(k ^ crate::rng::mix64(v));
        }
        out
    }

    fn write(&mut self, ctx: &mut dyn Context, from: NodeId, id: u64, key: u64, value: u64) {
        if self.frozen {
            // Cut-over in progress: the caller retries, and will be routed to the new shard.
            return Self::reply(ctx, from, id, StoreResult::Redirect { primary: None });
        }
        let record = Record {
            key,
            value,
            epoch: self.epoch,
        };
        let lsn = if self.poisoned {
            None
        } else {
            self.append(ctx, record)
        };
        let Some(lsn) = lsn else {
            self.count(ctx, |i| i.errors);
            return Self::reply(ctx, from, id, StoreResult::Error);
        };
        self.count(ctx, |i| i.writes);
        self.latest.insert(key, (value, lsn));
        let ack = PendingAck {
            lsn,
            to: from,
            id,
            write: true,
            result: StoreResult::Written {
                lsn,
                epoch: self.epoch,
            },
        };
        if planted!(self.config.bug_ack_before_sync) {
            self.committed.insert(key, value);
            self.note_tenure(ctx.now_ns());
            Self::reply(ctx, from, id, ack.result);
            return self.request_sync(ctx);
        }
        self.enqueue(ctx, ack);
    }

    fn enqueue(&mut self, ctx: &mut dyn Context, ack: PendingAck) {
        self.pending.push_back((ack, ctx.now_ns()));
        if ack.lsn <= self.durable_lsn {
            return self.release(ctx);
        }
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

    /// Applies durable records to the committed state, in log order.
    fn apply_durable(&mut self, upto: u64) {
        while self.applied_lsn < upto {
            let r = self.log[self.applied_lsn as usize];
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

    /// The highest lsn a client may be told about: durable here, and (semi-sync) on enough replicas.
    fn releasable_lsn(&self) -> u64 {
        let replicated = self.others().next().is_some();
        if !replicated || self.config.replication == ReplicationMode::Async || !self.semi_sync_on {
            return self.durable_lsn;
        }
        let mut acked: Vec<u64> = self
            .others()
            .map(|m| self.replica_acked.get(&m).copied().unwrap_or(0))
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let k = (self.config.semi_sync_ack_count as usize).min(acked.len());
        self.durable_lsn.min(acked[k - 1])
    }

    /// Acknowledges every pending operation that may now be acknowledged.
    fn release(&mut self, ctx: &mut dyn Context) {
        if self.role != Role::Primary {
            return;
        }
        let upto = self.releasable_lsn();
        self.apply_durable(upto);
        let now = ctx.now_ns();
        let hist = self.ids().commit_latency;
        while let Some(&(ack, since)) = self.pending.front() {
            if ack.lsn > upto {
                break;
            }
            self.pending.pop_front();
            ctx.metrics().record(hist, now - since);
            if ack.write {
                self.note_tenure(now);
            }
            Self::reply(ctx, ack.to, ack.id, ack.result);
        }
        self.watch_semi_sync(ctx);
    }

    fn note_tenure(&mut self, now_ns: u64) {
        match self.tenures.last_mut() {
            Some(t) if t.epoch == self.epoch => t.last_ack_ns = now_ns,
            _ => self.tenures.push(Tenure {
                epoch: self.epoch,
                first_ack_ns: now_ns,
                last_ack_ns: now_ns,
            }),
        }
    }

    /// Starts or stops the semi-sync timeout clock.
    fn watch_semi_sync(&mut self, ctx: &mut dyn Context) {
        let waiting = self
            .pending
            .front()
            .is_some_and(|(a, _)| a.lsn <= self.durable_lsn);
        match (waiting, self.waiting_since_ns) {
            (true, None) => {
                self.waiting_since_ns = Some(ctx.now_ns());
                let after = ms_to_ns(self.config.semi_sync_timeout_ms);
                ctx.set_timer(
                    after,
                    Timer::Tick {
                        kind: TICK_SEMI_SYNC,
                    },
                );
            }
            (false, Some(_)) => self.waiting_since_ns = None,
            _ => {}
        }
    }

    fn semi_sync_timeout(&mut self, ctx: &mut dyn Context) {
        let Some(since) = self.waiting_since_ns else {
            return;
        };
        let timeout = ms_to_ns(self.config.semi_sync_timeout_ms);
        let now = ctx.now_ns();
        if now - since < timeout {
            ctx.set_timer(
                timeout - (now - since),
                Timer::Tick {
                    kind: TICK_SEMI_SYNC,
                },
            );
            return;
        }
        tracing::warn!(
            waited_ms = (now - since) / 1_000_000,
            "semi-sync timed out: falling back to async"
        );
        self.count(ctx, |i| i.fallbacks);
        self.semi_sync_on = false;
        self.waiting_since_ns = None;
        self.release(ctx);
    }

    fn synced(&mut self, ctx: &mut dyn Context, lsn: u64) {
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
                };
                ctx.send(primary, Msg::Repl(ack));
            }
        }
        if self.sync_wanted || self.durable_lsn < self.tail_lsn() {
            self.request_sync(ctx);
        }
    }

    fn schedule_ship(&mut self, ctx: &mut dyn Context) {
        if self.config.replication_delay_ms <= 0.0 {
            return self.ship(ctx);
        }
        if !self.ship_pending {
            self.ship_pending = true;
            let after = ms_to_ns(self.config.replication_delay_ms);
            ctx.set_timer(after, Timer::Tick { kind: TICK_SHIP });
        }
    }

    /// Streams newly durable records to every replica.
    fn ship(&mut self, ctx: &mut dyn Context) {
        self.ship_pending = false;
        if self.role != Role::Primary {
            return;
        }
        let from = self.shipped_lsn + 1;
        let to = self.durable_lsn;
        if from > to {
            return;
        }
        let members: Vec<NodeId> = self.others().collect();
        for m in members {
            self.send_records(ctx, m, from, to);
        }
        self.shipped_lsn = to;
    }

    fn send_records(&self, ctx: &mut dyn Context, to_node: NodeId, from: u64, to: u64) {
        for lsn in from..=to {
            let r = self.log[(lsn - 1) as usize];
            let msg = ReplMsg::Append {
                epoch: self.epoch,
                lsn,
                record_epoch: r.epoch,
                key: r.key,
                value: r.value,
            };
            ctx.send(to_node, Msg::Repl(msg));
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

    // ---- replication, replica side ----

    /// A message from a primary of `epoch`: fence it if stale, follow it if newer.
    /// Returns false when the message must be ignored.
    fn accept_primary(&mut self, ctx: &mut dyn Context, from: NodeId, epoch: u64) -> bool {
        if epoch < self.epoch {
            return false;
        }
        if epoch > self.epoch || self.role == Role::Primary {
            if epoch == self.epoch {
                return false; // two primaries of one epoch cannot happen; ignore the stranger
            }
            self.become_replica(ctx, from, epoch);
        }
        matches!(self.role, Role::Replica { primary } if primary == from)
    }

    fn become_replica(&mut self, ctx: &mut dyn Context, primary: NodeId, epoch: u64) {
        if self.role == Role::Primary {
            tracing::info!(epoch, primary, "stepping down");
            while let Some((ack, _)) = self.pending.pop_front() {
                Self::reply(
                    ctx,
                    ack.to,
                    ack.id,
                    StoreResult::Redirect {
                        primary: Some(primary),
                    },
                );
            }
            self.waiting_since_ns = None;
        }
        self.role = Role::Replica { primary };
        self.epoch = epoch;
        self.latest.clear();
    }

    fn on_append(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        epoch: u64,
        lsn: u64,
        record: Record,
    ) {
        if !self.accept_primary(ctx, from, epoch) {
            return;
        }
        let tail = self.tail_lsn();
        if lsn <= tail {
            if self.log[(lsn - 1) as usize] == record {
                let ack = ReplMsg::Ack {
                    epoch: self.epoch,
                    lsn: self.durable_lsn,
                };
                return ctx.send(from, Msg::Repl(ack)); // a duplicate
            }
            self.rewind(ctx, lsn - 1);
        }
        if lsn > self.tail_lsn() + 1 {
            return self.fetch(ctx, from);
        }
        if self.append(ctx, record).is_none() {
            return; // disk error: the primary will resend on the next heartbeat
        }
        self.request_sync(ctx);
    }

    /// Cuts the log back to `len` records: the rest diverged from the primary's history.
    fn rewind(&mut self, ctx: &mut dyn Context, len: u64) {
        let discarded = self.tail_lsn() - len;
        tracing::warn!(len, discarded, "log diverged from the primary: rewinding");
        let c = self.ids().discarded;
        ctx.metrics().add(c, discarded);
        ctx.disk_truncate(len);
        self.log.truncate(len as usize);
        self.appended_ns.truncate(len as usize);
        self.durable_lsn = self.durable_lsn.min(len);
        if self.applied_lsn > len {
            self.committed.clear();
            self.applied_lsn = 0;
            self.apply_durable(self.durable_lsn);
        }
    }

    fn fetch(&mut self, ctx: &mut dyn Context, primary: NodeId) {
        if planted!(self.config.bug_replica_never_fetches) {
            return;
        }
        let now = ctx.now_ns();
        if now < self.fetch_after_ns {
            return;
        }
        self.fetch_after_ns = now + ms_to_ns(100.0);
        let last_epoch = self.log.last().map_or(0, |r| r.epoch);
        let msg = ReplMsg::Fetch {
            epoch: self.epoch,
            from_lsn: self.tail_lsn() + 1,
            last_epoch,
        };
        ctx.send(primary, Msg::Repl(msg));
    }

    fn on_heartbeat(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        epoch: u64,
        lsn: u64,
        ts_ns: u64,
    ) {
        if !self.accept_primary(ctx, from, epoch) {
            return;
        }
        let last_epoch = self.log.last().map_or(0, |r| r.epoch);
        if lsn > self.tail_lsn() || last_epoch < epoch {
            // Behind, or not yet known to share the new primary's history.
            self.fetch(ctx, from);
        }
        let lag = self.ids().replication_lag;
        let now = ctx.now_ns();
        ctx.metrics().record(lag, now.saturating_sub(ts_ns));
    }

    // ---- replication, primary side ----

    fn on_ack(&mut self, ctx: &mut dyn Context, from: NodeId, epoch: u64, lsn: u64) {
        if self.role != Role::Primary || epoch != self.epoch {
            return;
        }
        let acked = self.replica_acked.entry(from).or_insert(0);
        *acked = (*acked).max(lsn);
        if !self.semi_sync_on && *acked >= self.durable_lsn {
            tracing::info!(replica = from, "a replica caught up: semi-sync back on");
            self.semi_sync_on = true;
        }
        self.release(ctx);
    }

    fn on_fetch(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        epoch: u64,
        from_lsn: u64,
        last_epoch: u64,
    ) {
        if self.role != Role::Primary || epoch > self.epoch || from_lsn == 0 {
            return;
        }
        // Epochs never decrease along a log: the replica shares our history up to the last of
        // our records of an epoch <= its last one; past that, resend.
        let shared = self.log.partition_point(|r| r.epoch <= last_epoch) as u64;
        let from_lsn = from_lsn.min(shared + 1);
        if epoch < self.epoch {
            // A replica of an older epoch: tell it who leads now, with the records.
            let hb = ReplMsg::Heartbeat {
                epoch: self.epoch,
                lsn: self.durable_lsn,
                ts_ns: ctx.now_ns(),
            };
            ctx.send(from, Msg::Repl(hb));
        }
        let to = self
            .durable_lsn
            .min(from_lsn + u64::from(self.config.fetch_batch) - 1);
        if from_lsn <= to {
            self.send_records(ctx, from, from_lsn, to);
        }
    }

    fn heartbeat(&mut self, ctx: &mut dyn Context) {
        ctx.set_timer(
            ms_to_ns(self.config.heartbeat_interval_ms),
            Timer::Tick {
                kind: TICK_HEARTBEAT,
            },
        );
        if self.role != Role::Primary {
            return;
        }
        self.heartbeat_now(ctx);
    }

    // ---- mirroring ----

    /// A mirror job asks for durable records from `from_lsn`: only the primary answers with data.
    fn on_get_updates(&mut self, ctx: &mut dyn Context, from: NodeId, from_lsn: u64, max: u32) {
        if self.role != Role::Primary {
            let reply = MirrorMsg::Updates {
                records: Vec::new(),
                tail_lsn: 0,
            };
            return ctx.send(from, Msg::Mirror(reply));
        }
        let first = from_lsn.max(1);
        let last = self
            .durable_lsn
            .min(first.saturating_add(u64::from(max)).saturating_sub(1));
        let records = (first..=last)
            .map(|lsn| {
                let i = (lsn - 1) as usize;
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
    }

    // ---- orchestration ----

    fn on_promote(&mut self, ctx: &mut dyn Context, epoch: u64, members: Vec<NodeId>) {
        if epoch <= self.epoch {
            return;
        }
        tracing::info!(epoch, lsn = self.durable_lsn, "promoted to primary");
        self.count(ctx, |i| i.promotions);
        self.role = Role::Primary;
        self.epoch = epoch;
        self.placement.members = members;
        self.replica_acked.clear();
        self.shipped_lsn = self.durable_lsn;
        self.semi_sync_on = true;
        self.latest.clear();
        // Records past the durable point were never acknowledged by the old primary's stream.
        let durable = self.durable_lsn;
        if self.tail_lsn() > durable {
            self.rewind(ctx, durable);
        }
        self.heartbeat_now(ctx);
    }

    fn heartbeat_now(&mut self, ctx: &mut dyn Context) {
        let msg = ReplMsg::Heartbeat {
            epoch: self.epoch,
            lsn: self.durable_lsn,
            ts_ns: ctx.now_ns(),
        };
        let members: Vec<NodeId> = self.others().collect();
        for m in members {
            ctx.send(m, Msg::Repl(msg.clone()));
        }
    }

    fn on_repl(&mut self, ctx: &mut dyn Context, from: NodeId, msg: ReplMsg) {
        match msg {
            ReplMsg::Append {
                epoch,
                lsn,
                record_epoch,
                key,
                value,
            } => self.on_append(
                ctx,
                from,
                epoch,
                lsn,
                Record {
                    key,
                    value,
                    epoch: record_epoch,
                },
            ),
            ReplMsg::Ack { epoch, lsn } => self.on_ack(ctx, from, epoch, lsn),
            ReplMsg::Fetch {
                epoch,
                from_lsn,
                last_epoch,
            } => self.on_fetch(ctx, from, epoch, from_lsn, last_epoch),
            ReplMsg::Heartbeat { epoch, lsn, ts_ns } => {
                self.on_heartbeat(ctx, from, epoch, lsn, ts_ns)
            }
            ReplMsg::Probe { seq } => {
                let reply = ReplMsg::ProbeReply {
                    seq,
                    shard: self.placement.shard,
                    primary: self.role == Role::Primary,
                    epoch: self.epoch,
                    lsn: self.durable_lsn,
                };
                ctx.send(from, Msg::Repl(reply));
            }
            ReplMsg::Promote { epoch, members } => self.on_promote(ctx, epoch, members),
            ReplMsg::Follow { epoch, primary } if epoch >= self.epoch && primary != self.me => {
                self.become_replica(ctx, primary, epoch);
                self.fetch_after_ns = 0;
                self.fetch(ctx, primary);
            }
            ReplMsg::Freeze => {
                self.frozen = true;
                let tail_lsn = self.tail_lsn();
                ctx.send(from, Msg::Repl(ReplMsg::Frozen { tail_lsn }));
            }
            ReplMsg::Unfreeze => self.frozen = false,
            ReplMsg::Digest { shards } => {
                let digests = self.digests(shards as usize);
                ctx.send(from, Msg::Repl(ReplMsg::DigestReply { digests }));
            }
            _ => {}
        }
    }
}

impl Component for Store {
    fn start(&mut self, ctx: &mut dyn Context) {
        self.me = if self.placement.members.is_empty() {
            ctx.me()
        } else {
            self.me
        };
        let m = ctx.metrics();
        self.ids = Some(Ids {
            reads: m.counter("store_reads_total"),
            writes: m.counter("store_writes_total"),
            cas_failed: m.counter("store_cas_failed_total"),
            syncs: m.counter("store_syncs_total"),
            errors: m.counter("store_errors_total"),
            redirects: m.counter("store_redirects_total"),
            recovered: m.counter("store_recovered_records_total"),
            discarded: m.counter("store_discarded_records_total"),
            fallbacks: m.counter(SEMI_SYNC_FALLBACKS_TOTAL),
            promotions: m.counter("store_promotions_total"),
            commit_latency: m.histogram("store_commit_latency_ns"),
            replication_lag: m.histogram("store_replication_lag_ns"),
        });
        let records = ctx.disk_recover();
        for bytes in &records {
            let r = Record::decode(bytes).expect("the store only logs records it can decode");
            self.epoch = self.epoch.max(r.epoch);
            self.log.push(r);
            self.appended_ns.push(0);
        }
        self.durable_lsn = self.tail_lsn();
        self.shipped_lsn = self.durable_lsn;
        self.apply_durable(self.durable_lsn);
        tracing::debug!(
            records = records.len(),
            epoch = self.epoch,
            "recovered from the log"
        );
        let recovered = self.ids().recovered;
        ctx.metrics().add(recovered, records.len() as u64);
        if self.others().next().is_some() {
            ctx.set_timer(
                ms_to_ns(self.config.heartbeat_interval_ms),
                Timer::Tick {
                    kind: TICK_HEARTBEAT,
                },
            );
        }
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        match msg {
            Msg::Store(r) => self.on_request(ctx, from, r),
            Msg::Repl(r) => self.on_repl(ctx, from, r),
            Msg::Mirror(MirrorMsg::GetUpdates { from_lsn, max }) => {
                self.on_get_updates(ctx, from, from_lsn, max)
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick {
                kind: TICK_HEARTBEAT,
            } => self.heartbeat(ctx),
            Timer::Tick {
                kind: TICK_SEMI_SYNC,
            } => self.semi_sync_timeout(ctx),
            Timer::Tick { kind: TICK_SHIP } => self.ship(ctx),
            _ => {}
        }
    }

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
            vec![(1, StoreResult::Written { lsn: 1, epoch: 1 })]
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
                let wanted = Record { key: k, value: v, epoch: 1 };
                prop_assert!(durable.contains(&wanted), "acknowledged {:?} missing", wanted);
            }
            for r in &durable {
                let last = durable.iter().rev().find(|x| x.key == r.key).unwrap();
                prop_assert_eq!(s.get(r.key), Some(last.value));
            }
        }
    }
}
