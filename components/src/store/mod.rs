//! A store shard member: a key-value store over a write-ahead log, primary or replica.
//!
//! Writes (and successful compare-and-sets) are appended to the log and acknowledged only when
//! a sync covers them; syncs are group commits (one in flight, the next batches whatever
//! arrived meanwhile). Reads serve the committed state. A restart rebuilds the state from the
//! last checkpoint and the records the disk made durable after it. A failed sync poisons the
//! node (no more writes until it restarts), as MySQL and PostgreSQL stop rather than trust a
//! log after an fsync error.
//!
//! The log is purged like a binlog once every replica and every log reader (a mirror job, a
//! resharder) has what it holds: the settled prefix is folded into a checkpoint (the state at
//! that lsn, written to disk), so a store's memory and disk do not grow with time at a steady
//! load. Settled records are on every member, so no failover ever needs to rewind past them.
//!
//! Replication (see [`crate::repl`] for the protocol): the primary streams each durable record
//! to the other members of its shard; with semi-sync it acknowledges a write only once
//! `semi_sync_ack_count` replicas hold it, falling back to async after `semi_sync_timeout_ms`
//! and switching back when a replica catches up. A member whose log diverged from the
//! primary's (records of an older epoch the primary never had: errant transactions, usually an
//! old primary's unreplicated tail, which is how acknowledged writes are lost under async
//! replication) is detached, as MySQL stops replication on errant GTIDs: read-only, not
//! replicating, its errant records counted, until an operator re-clones it from the primary
//! (`on_divergence = "rewind"` cuts the log back to the common prefix instead, silently).
//!
//! Map, along the store's own seams:
//! - this file: configuration, the record format, the [`Store`] and its message dispatch;
//! - [`log`]: appends, group commit, applying durable records, checkpoints and recovery;
//! - [`primary`]: acknowledgements (semi-sync and its fallback) and shipping to replicas;
//! - [`replica`]: following a primary, fetching what is missing, a diverged member detached
//!   (or rewound) and re-cloned, promotion;
//! - [`feeds`]: what other components read from a shard: mirror updates, resharding's freeze
//!   and digests;
//! - [`queries`]: the CPU cost of client requests on a bounded set of query threads.

mod feeds;
mod log;
mod primary;
mod queries;
mod replica;
#[cfg(test)]
mod tests;

pub use log::{decode_snapshot, encode_snapshot, state_digest, DurableState};

use crate::config::{self, Checked};
use crate::context::{Component, Context, DiskEvent, NodeId};
use crate::detmap::DetMap;
use crate::metrics::{CounterId, HistId, LevelId};
use crate::mirror::MirrorMsg;
use crate::msg::{Msg, StoreOp, StoreRequest, StoreResponse, StoreResult, Timer};
use crate::repl::ReplMsg;
use crate::rng::{ms_to_ns, Dist};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};

/// What a replica does when its log diverged from its new primary's (records the primary never
/// had: errant transactions, usually an old primary's unreplicated tail).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Divergence {
    /// Stop: the member is detached (read-only, not replicating) and its errant records are
    /// counted; it needs a re-clone. MySQL and MariaDB stop replication on a replica with
    /// errant GTIDs, and orchestrator refuses to relocate it.
    #[default]
    Fence,
    /// Cut the log back to the common prefix and follow (pg_rewind-style, automatic): the
    /// errant records vanish silently. The twin's former rule, kept for comparisons.
    Rewind,
}

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
    /// A member whose log diverged from its primary's: fenced (default) or rewound.
    pub on_divergence: Divergence,
    /// Replica acknowledgements a semi-sync write waits for (rpl_semi_sync_source_wait_for_replica_count = 1).
    pub semi_sync_ack_count: u32,
    /// After this long without enough acknowledgements, fall back to async (rpl_semi_sync_source_timeout = 10 s).
    pub semi_sync_timeout_ms: f64,
    /// A replica acknowledges a record for semi-sync only once it synced it. Off, as MySQL and
    /// MariaDB: the replica replies once the event is in its relay log, before any fsync
    /// (sync_relay_log = 10,000), so a semi-sync write costs one round trip, not a replica
    /// fsync more (measured: calibration/mariadb-semisync.sh).
    pub semi_sync_ack_after_sync: bool,
    /// Heartbeat rows from the primary (pt-heartbeat's default interval: 1 s).
    pub heartbeat_interval_ms: f64,
    /// A replica's IO thread gives its primary up after this long without a word from it
    /// (slave_net_timeout: MySQL and MariaDB 60 s; orchestrator's documentation recommends 4 s)
    /// or at once when the connection is refused or reset. The orchestrator fails over only
    /// when every replica has given its primary up.
    pub replica_net_timeout_ms: f64,
    /// After its process starts, a replica's IO thread connects and registers, and the
    /// primary's binlog dump thread finds the replica's position in the binlog: until then
    /// nothing the primary streams reaches it. Default log-normal, median 4.5 ms, sigma 0.6,
    /// calibrated (not predicted): MariaDB 10.11 on loopback, from the replica's semi-sync
    /// registration at the primary to semi-sync back on, 1.8-12.5 ms over 10 trials, median
    /// 5.0 (calibration/mariadb-semisync.sh), less the twin's 0.3 ms for the first event's
    /// round trip. The process's own start-up before it connects (about 150 ms for mariadbd
    /// here) is not modelled: a restart fault starts the process at once.
    pub replica_connect: Dist,
    /// Records resent per fetch when a replica finds a gap.
    pub fetch_batch: u32,
    /// Time before a durable record leaves for the replicas (the binlog dump thread's wake-up
    /// and socket buffering). Under async replication this is the window of acknowledged but
    /// unreplicated writes that a primary crash loses.
    pub replication_delay_ms: f64,
    /// Settled records (on every replica and log reader) kept in the log before they are folded
    /// into a checkpoint and purged, as a binlog is after its replicas have read it.
    pub purge_after_records: u64,
    /// CPU time of one client request (none: requests cost nothing, as an unlimited store).
    pub query_time: Option<Dist>,
    /// Requests executing at once (cores; innodb_thread_concurrency); more wait their turn.
    pub query_threads: u32,
    /// Requests inside the store, executing or waiting, beyond which a request is refused
    /// with an error (MariaDB max_connections = 151).
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            #[cfg(feature = "planted-bugs")]
            bug_ack_before_sync: false,
            #[cfg(feature = "planted-bugs")]
            bug_replica_never_fetches: false,
            replication: ReplicationMode::Async,
            on_divergence: Divergence::Fence,
            semi_sync_ack_count: 1,
            semi_sync_timeout_ms: 10_000.0,
            semi_sync_ack_after_sync: false,
            heartbeat_interval_ms: 1_000.0,
            replica_net_timeout_ms: 60_000.0,
            replica_connect: Dist::Lognormal {
                median_ms: 4.5,
                sigma: 0.6,
            },
            fetch_batch: 512,
            replication_delay_ms: 0.0,
            purge_after_records: 20_000,
            query_time: None,
            query_threads: 16,
            max_connections: 151,
        }
    }
}

impl StoreConfig {
    /// Ranges: `semi_sync_timeout_ms` 1-1e9; `heartbeat_interval_ms` 10-1e9;
    /// `replication_delay_ms` 0-1e9; `fetch_batch` 1-1,000,000; `semi_sync_ack_count` 1-64 (and
    /// at most the shard's replicas); `purge_after_records` 1-100,000,000; `query_threads`
    /// 1-65,536; `max_connections` 1-100,000 and at least `query_threads`.
    pub fn validate(&self) -> Checked {
        if let Some(d) = &self.query_time {
            config::nested("query_time", d.validate())?;
        }
        config::count("query_threads", u64::from(self.query_threads), 1, 65_536)?;
        config::count(
            "max_connections",
            u64::from(self.max_connections),
            1,
            100_000,
        )?;
        config::rule(
            self.max_connections >= self.query_threads,
            "max_connections",
            format!(
                "{} connections cannot keep {} query threads busy: give at least query_threads",
                self.max_connections, self.query_threads
            ),
        )?;
        config::ms("semi_sync_timeout_ms", self.semi_sync_timeout_ms, 1.0)?;
        config::ms("heartbeat_interval_ms", self.heartbeat_interval_ms, 10.0)?;
        config::ms("replica_net_timeout_ms", self.replica_net_timeout_ms, 10.0)?;
        config::nested("replica_connect", self.replica_connect.validate())?;
        config::ms("replication_delay_ms", self.replication_delay_ms, 0.0)?;
        config::count("fetch_batch", u64::from(self.fetch_batch), 1, 1_000_000)?;
        config::count(
            "semi_sync_ack_count",
            u64::from(self.semi_sync_ack_count),
            1,
            64,
        )?;
        config::count(
            "purge_after_records",
            self.purge_after_records,
            1,
            100_000_000,
        )
    }

    /// The planted bug, when the build has them.
    fn ack_before_sync(&self) -> bool {
        planted!(self.bug_ack_before_sync)
    }

    fn replica_never_fetches(&self) -> bool {
        planted!(self.bug_replica_never_fetches)
    }
}

/// Where a store node sits: its shard, its fellow members, and who reads its log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub shard: u32,
    /// Every member of the shard (this node included), initial primary first.
    pub members: Vec<NodeId>,
    /// Nodes that read the primary's log (mirror jobs, a resharder): records they have not read
    /// are not purged.
    pub readers: Vec<NodeId>,
}

impl Placement {
    /// A shard of one node.
    pub fn single(me: NodeId) -> Placement {
        Placement {
            shard: 0,
            members: vec![me],
            readers: Vec::new(),
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
    /// The write's key and value (for a failed CAS: what it read); `write` is false for a
    /// failed CAS, which does not count in the primary's tenure.
    key: u64,
    value: u64,
    write: bool,
    result: StoreResult,
    /// When the request reached the store (before its query's CPU time).
    arrived_ns: u64,
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
    checkpoints: CounterId,
    purged: CounterId,
    commit_latency: HistId,
    write_latency: HistId,
    replication_lag: HistId,
    refused: CounterId,
    detachments: CounterId,
    errant: CounterId,
    reclones: CounterId,
    busy_threads: LevelId,
}

const TICK_HEARTBEAT: u32 = 1;
const TICK_SEMI_SYNC: u32 = 2;
const TICK_SHIP: u32 = 3;
const TICK_CONNECTED: u32 = 4;

pub struct Store {
    config: StoreConfig,
    placement: Placement,
    me: NodeId,
    role: Role,
    epoch: u64,
    // ---- the log (see `log.rs`) ----
    /// Records after the checkpoint: `log[i]` has lsn `base_lsn + 1 + i`.
    log: VecDeque<Record>,
    /// When each record of `log` was appended here (local clock; 0 when recovered).
    appended_ns: VecDeque<u64>,
    /// The lsn of the checkpoint: records up to it are purged, folded into `base`.
    base_lsn: u64,
    /// The epoch of the record at `base_lsn` (0 without one).
    base_epoch: u64,
    /// The state at `base_lsn`, as the checkpoint holds it.
    base: BTreeMap<u64, u64>,
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
    // ---- as primary (see `primary.rs`) ----
    replica_acked: BTreeMap<NodeId, u64>,
    /// Per replica: the highest lsn in its relay log (what semi-sync waits for, unless
    /// `semi_sync_ack_after_sync`).
    replica_received: BTreeMap<NodeId, u64>,
    /// When the request being executed reached the store.
    arrived_ns: u64,
    /// A replica: when its primary was last heard, and whether the connection to it was
    /// refused or reset since.
    primary_heard_ns: u64,
    primary_link_down: bool,
    /// A replica: its stream from the primary flows from this time on (see `replica_connect`).
    connected_ns: u64,
    /// The last write that waited for a replica when semi-sync fell back: a replica's reply at
    /// or past it switches semi-sync back on.
    fallback_lsn: u64,
    /// How far each log reader has read (its last request's start, minus one).
    reader_acked: BTreeMap<NodeId, u64>,
    shipped_lsn: u64,
    ship_pending: bool,
    semi_sync_on: bool,
    waiting_since_ns: Option<u64>,
    // ---- as replica (see `replica.rs`) ----
    fetch_after_ns: u64,
    /// The primary's settled point, from its heartbeats: the replica may purge up to it.
    purge_hint_lsn: u64,
    tenures: Vec<Tenure>,
    /// Detached from the shard (see `replica.rs`): read-only and not replicating until a
    /// re-clone; with the count of its errant records once the primary told where the
    /// histories split.
    detached: bool,
    errant: Option<u64>,
    /// Client requests on query threads or waiting for one (see `queries.rs`).
    queries: queries::Queries,
    ids: Option<Ids>,
}

impl Store {
    /// A single-node shard (no replication).
    pub fn new(config: StoreConfig) -> Store {
        Store::member(config, NodeId::MAX, Placement::default())
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
            log: VecDeque::new(),
            appended_ns: VecDeque::new(),
            base_lsn: 0,
            base_epoch: 0,
            base: BTreeMap::new(),
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
            replica_received: BTreeMap::new(),
            arrived_ns: 0,
            primary_heard_ns: 0,
            primary_link_down: false,
            connected_ns: 0,
            fallback_lsn: 0,
            reader_acked: BTreeMap::new(),
            shipped_lsn: 0,
            ship_pending: false,
            semi_sync_on: true,
            waiting_since_ns: None,
            fetch_after_ns: 0,
            purge_hint_lsn: 0,
            tenures: Vec::new(),
            detached: false,
            errant: None,
            queries: queries::Queries::default(),
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

    /// Stretches of time this node acknowledged writes as primary (since its last restart).
    pub fn tenures(&self) -> &[Tenure] {
        &self.tenures
    }

    /// Records applied to the committed state (acknowledged, or replicated and durable).
    pub fn applied_lsn(&self) -> u64 {
        self.applied_lsn
    }

    /// The lsn of the last checkpoint (records up to it are purged from the log).
    pub fn base_lsn(&self) -> u64 {
        self.base_lsn
    }

    /// Detached from its shard, with its errant records when known (None: attached).
    pub fn detached(&self) -> Option<Option<u64>> {
        self.detached.then_some(self.errant)
    }

    /// Records held in memory (after the checkpoint).
    pub fn log_len(&self) -> usize {
        self.log.len()
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
                let ack = PendingAck {
                    lsn: self.tail_lsn(),
                    to: from,
                    id: r.id,
                    key,
                    value: current.unwrap_or(0),
                    write: false,
                    result: StoreResult::CasFailed { current },
                    arrived_ns: self.arrived_ns,
                };
                self.enqueue(ctx, ack);
            }
        }
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
            key,
            value,
            write: true,
            result: StoreResult::Written {
                lsn,
                epoch: self.epoch,
            },
            arrived_ns: self.arrived_ns,
        };
        if self.config.ack_before_sync() {
            self.committed.insert(key, value);
            self.note_tenure(ctx.now_ns());
            Self::reply(ctx, from, id, ack.result);
            return self.request_sync(ctx);
        }
        self.enqueue(ctx, ack);
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
            ReplMsg::Ack {
                epoch,
                lsn,
                received,
            } => self.on_ack(ctx, from, epoch, lsn, received),
            ReplMsg::Fetch {
                epoch,
                from_lsn,
                last_epoch,
            } => self.on_fetch(ctx, from, epoch, from_lsn, last_epoch),
            ReplMsg::Heartbeat {
                epoch,
                lsn,
                ts_ns,
                purge_lsn,
            } => self.on_heartbeat(ctx, from, epoch, lsn, ts_ns, purge_lsn),
            ReplMsg::Probe { seq } => {
                let silent_ns = ctx.now_ns().saturating_sub(self.primary_heard_ns);
                let replicating = self.role == Role::Primary
                    || (!self.detached
                        && !self.primary_link_down
                        && silent_ns <= ms_to_ns(self.config.replica_net_timeout_ms));
                let reply = ReplMsg::ProbeReply {
                    seq,
                    shard: self.placement.shard,
                    primary: self.role == Role::Primary,
                    epoch: self.epoch,
                    lsn: self.durable_lsn,
                    replicating,
                    detached: self.detached,
                };
                ctx.send(from, Msg::Repl(reply));
            }
            ReplMsg::Promote { epoch, members } => self.on_promote(ctx, epoch, members),
            ReplMsg::Follow { epoch, primary } if epoch >= self.epoch && primary != self.me => {
                self.become_replica(ctx, primary, epoch);
                self.fetch_after_ns = 0;
                self.fetch(ctx, primary);
            }
            ReplMsg::Fence { epoch, primary } if primary != self.me => {
                self.on_fence(ctx, epoch, primary)
            }
            ReplMsg::Diverged { epoch, shared_lsn } => {
                self.on_diverged(ctx, from, epoch, shared_lsn)
            }
            ReplMsg::Reclone { epoch, primary } if self.detached && epoch >= self.epoch => {
                ctx.send(primary, Msg::Repl(ReplMsg::CloneRequest { epoch }));
            }
            ReplMsg::CloneRequest { epoch } => self.on_clone_request(ctx, from, epoch),
            ReplMsg::CloneData {
                epoch,
                lsn,
                lsn_epoch,
                state,
            } => self.on_clone_data(ctx, from, epoch, lsn, lsn_epoch, state),
            ReplMsg::Freeze => self.on_freeze(ctx, from),
            ReplMsg::Unfreeze => self.frozen = false,
            ReplMsg::Digest { shards } => {
                let digests = self.digests(shards as usize);
                ctx.send(from, Msg::Repl(ReplMsg::DigestReply { digests }));
            }
            _ => {}
        }
    }

    fn register_metrics(&mut self, ctx: &mut dyn Context) {
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
            checkpoints: m.counter("store_checkpoints_total"),
            purged: m.counter("store_purged_records_total"),
            commit_latency: m.histogram("store_commit_latency_ns"),
            write_latency: m.histogram("store_write_latency_ns"),
            replication_lag: m.histogram("store_replication_lag_ns"),
            refused: m.counter("store_refused_total"),
            detachments: m.counter("store_detachments_total"),
            errant: m.counter("store_errant_records_total"),
            reclones: m.counter("store_reclones_total"),
            busy_threads: m.level("store_busy_threads", "threads"),
        });
    }
}

impl Component for Store {
    fn start(&mut self, ctx: &mut dyn Context) {
        if self.placement.members.is_empty() {
            self.me = ctx.me();
        }
        self.register_metrics(ctx);
        self.primary_heard_ns = ctx.now_ns();
        self.recover(ctx);
        if let Role::Replica { .. } = self.role {
            let connect_ns = self.config.replica_connect.sample_ns(ctx.rng());
            self.connected_ns = ctx.now_ns().saturating_add(connect_ns);
            ctx.set_timer(
                connect_ns,
                Timer::Tick {
                    kind: TICK_CONNECTED,
                },
            );
        }
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
            Msg::Store(r) => self.admit(ctx, from, r),
            Msg::Repl(r) => self.on_repl(ctx, from, r),
            Msg::Refused(_) | Msg::Reset if self.role == (Role::Replica { primary: from }) => {
                self.primary_link_down = true;
            }
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
            Timer::Tick {
                kind: TICK_CONNECTED,
            } => self.connected(ctx),
            Timer::WorkerDone { worker } => self.query_done(ctx, worker),
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
