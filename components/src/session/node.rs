//! A session-cluster node: master or replica.

use super::slot::user_slot;
use super::{Claim, Gossip, SessionMsg};
use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::metrics::{CounterId, GaugeId};
use crate::msg::{Msg, Timer};
use crate::observe::Observation;
use crate::rng::ms_to_ns;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// cluster-node-timeout (15 s): silence after which a node is PFAIL.
    pub node_timeout_ms: f64,
    /// How often the cluster cron pings a random node (Redis: every 10th run of its 100 ms
    /// cron, one of five random nodes, the one whose pong is oldest); besides, any node not
    /// pinged for half the node timeout is pinged at the next cron.
    pub ping_interval_ms: f64,
    /// PLANTED BUG (feature `planted-bugs`, tests only): a master acknowledges every 50th
    /// write without storing it. The sessions check must catch the loss when no failover
    /// explains it.
    /// repl-backlog-size (1 MB): the replication stream a master keeps for replicas that
    /// reconnect; a change counts as 64 bytes (a SET with its expiry in RESP). A gap it still
    /// holds is resent (a partial resync), a larger one costs a full resync.
    pub repl_backlog_bytes: u64,
    /// cluster-replica-validity-factor (10): a replica whose link to its master has been down
    /// longer than `node_timeout * factor` plus the replication ping period (10 s), beyond the
    /// node timeout itself, does not fail over (its data is too old); 0: always may.
    pub replica_validity_factor: f64,
    #[cfg(feature = "planted-bugs")]
    pub bug_lose_acked_writes: bool,
    /// PLANTED BUG (feature `planted-bugs`, tests only): a replica skips every 20th change of
    /// its master's stream while advancing its offset. The session convergence check must see
    /// the replica differ from its master.
    #[cfg(feature = "planted-bugs")]
    pub bug_replica_drops_changes: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            node_timeout_ms: 15_000.0,
            ping_interval_ms: 1_000.0,
            replica_validity_factor: 10.0,
            repl_backlog_bytes: 1 << 20,
            #[cfg(feature = "planted-bugs")]
            bug_lose_acked_writes: false,
            #[cfg(feature = "planted-bugs")]
            bug_replica_drops_changes: false,
        }
    }
}

impl SessionConfig {
    /// Ranges: `node_timeout_ms` 100-1e9; `ping_interval_ms` 10-1e9; `repl_backlog_bytes`
    /// 64-2^40;
    /// `replica_validity_factor` 0-1,000,000.
    pub fn validate(&self) -> Checked {
        config::ms("node_timeout_ms", self.node_timeout_ms, 100.0)?;
        config::ms("ping_interval_ms", self.ping_interval_ms, 10.0)?;
        config::count("repl_backlog_bytes", self.repl_backlog_bytes, 64, 1 << 40)?;
        config::range(
            "replica_validity_factor",
            self.replica_validity_factor,
            0.0,
            1e6,
        )
    }
}

/// Promotions of this node from replica to master (the counter's name).
pub const FAILOVERS_TOTAL: &str = "session_failovers_total";
/// When this node was last promoted, in ms of its local clock (the gauge's name).
pub const PROMOTED_AT_MS: &str = "session_promoted_at_ms";

struct Ids {
    commands: CounterId,
    moved: CounterId,
    ask: CounterId,
    migrated_keys: CounterId,
    down: CounterId,
    failovers: CounterId,
    partial_resyncs: CounterId,
    full_resyncs: CounterId,
    promoted_at_ms: GaugeId,
}

/// Bytes a change takes in the replication backlog.
const BACKLOG_ENTRY_BYTES: u64 = 64;

const TICK_PING: u32 = 1;
/// Redis' cluster cron runs every 100 ms (`hz` 10).
const CRON_MS: f64 = 100.0;
const TICK_ELECTION: u32 = 2;

pub struct SessionNode {
    config: SessionConfig,
    me: NodeId,
    initial: Vec<Claim>,
    claims: BTreeMap<NodeId, Claim>,
    current_epoch: u64,
    /// When anything last came from each node (Redis' `data_received`).
    last_heard_ns: BTreeMap<NodeId, u64>,
    /// The ping awaiting a pong, by node (Redis' `ping_sent`; absent: none), and when the last
    /// pong came (`pong_received`).
    ping_sent_ns: BTreeMap<NodeId, u64>,
    pong_received_ns: BTreeMap<NodeId, u64>,
    cron_runs: u64,
    /// A master restarted less than CLUSTER_WRITABLE_DELAY (2 s) ago answers CLUSTERDOWN, so
    /// that the cluster can tell it its slots moved before it takes a write.
    writable_at_ns: u64,
    pfail: BTreeSet<NodeId>,
    failed: BTreeSet<NodeId>,
    /// failing node -> master that reported it -> when.
    reports: BTreeMap<NodeId, BTreeMap<NodeId, u64>>,
    data: BTreeMap<u64, (u64, u64)>,
    repl_offset: u64,
    /// Writes this node took as master (since its last restart).
    sets: u64,
    voted_epoch: u64,
    /// Per failed master, when this master last voted for one of its replicas (Redis'
    /// `voted_time`: no second vote for the same master within twice the node timeout).
    voted_for_ns: BTreeMap<NodeId, u64>,
    /// Every node's replication offset, as its last ping or pong said.
    offsets: BTreeMap<NodeId, u64>,
    /// As a master: the last changes sent to replicas, oldest first (the backlog).
    backlog: std::collections::VecDeque<SessionMsg>,
    /// As a replica: when it last asked its master to fill a gap.
    psync_sent_ns: Option<u64>,
    election: Option<(u64, BTreeSet<NodeId>)>,
    /// Slot migration, as source: the range, the target, keys still to move.
    migrating: Option<(u16, u16, NodeId)>,
    to_move: Vec<u64>,
    /// Keys sent in the unacknowledged batch, and those written meanwhile.
    in_flight: BTreeSet<u64>,
    dirty: BTreeSet<u64>,
    /// Slot migration, as target.
    importing: Option<(u16, u16)>,
    ids: Option<Ids>,
}

impl SessionNode {
    /// Node `me` of a cluster whose initial layout is `claims` (every node's claim).
    pub fn new(config: SessionConfig, me: NodeId, claims: &[Claim]) -> SessionNode {
        assert!(
            claims.iter().any(|c| c.node == me),
            "the layout includes this node"
        );
        SessionNode {
            config,
            me,
            initial: claims.to_vec(),
            claims: claims.iter().map(|c| (c.node, c.clone())).collect(),
            current_epoch: claims.iter().map(|c| c.config_epoch).max().unwrap_or(0),
            last_heard_ns: BTreeMap::new(),
            ping_sent_ns: BTreeMap::new(),
            pong_received_ns: BTreeMap::new(),
            cron_runs: 0,
            writable_at_ns: 0,
            pfail: BTreeSet::new(),
            failed: BTreeSet::new(),
            reports: BTreeMap::new(),
            data: BTreeMap::new(),
            repl_offset: 0,
            sets: 0,
            voted_epoch: 0,
            voted_for_ns: BTreeMap::new(),
            offsets: BTreeMap::new(),
            backlog: std::collections::VecDeque::new(),
            psync_sent_ns: None,
            election: None,
            migrating: None,
            to_move: Vec::new(),
            in_flight: BTreeSet::new(),
            dirty: BTreeSet::new(),
            importing: None,
            ids: None,
        }
    }

    /// Contiguous slot ranges for `masters` masters.
    pub fn slot_range(i: usize, masters: usize) -> (u16, u16) {
        let lo = (i * 16_384 / masters) as u16;
        let hi = ((i + 1) * 16_384 / masters) as u16;
        (lo, hi)
    }

    /// Whether this node believes it serves `key` (it is the master of its slot).
    pub fn serves(&self, key: u64) -> bool {
        self.owner(user_slot(key)) == Some(self.me)
    }

    pub fn is_master(&self) -> bool {
        self.claims[&self.me].replica_of.is_none()
    }

    /// The master this node replicates, if it is a replica.
    pub fn replica_of(&self) -> Option<NodeId> {
        self.claims[&self.me].replica_of
    }

    /// Everything stored (key -> (value, expiry)), for checkers.
    pub fn data(&self) -> &BTreeMap<u64, (u64, u64)> {
        &self.data
    }

    /// The value stored for `key` (ignoring expiry), for checkers.
    pub fn get(&self, key: u64) -> Option<u64> {
        self.data.get(&key).map(|&(v, _)| v)
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn count(&self, ctx: &mut dyn Context, id: fn(&Ids) -> CounterId) {
        let c = id(self.ids());
        ctx.metrics().add(c, 1);
    }

    /// The master serving `slot`: the highest config epoch among masters claiming it.
    fn owner(&self, slot: u16) -> Option<NodeId> {
        self.claims
            .values()
            .filter(|c| {
                c.replica_of.is_none() && c.slots.iter().any(|&(lo, hi)| slot >= lo && slot < hi)
            })
            .max_by_key(|c| (c.config_epoch, std::cmp::Reverse(c.node)))
            .map(|c| c.node)
    }

    fn masters(&self) -> Vec<NodeId> {
        self.claims
            .values()
            .filter(|c| c.replica_of.is_none())
            .map(|c| c.node)
            .collect()
    }

    fn quorum(&self) -> usize {
        self.masters().len() / 2 + 1
    }

    fn reachable(&self, n: NodeId, now: u64) -> bool {
        n == self.me
            || self
                .last_heard_ns
                .get(&n)
                .is_some_and(|&t| now - t <= ms_to_ns(self.config.node_timeout_ms))
    }

    /// A master that cannot see a majority of masters refuses commands (cluster state fail).
    fn sees_majority(&self, now: u64) -> bool {
        self.masters()
            .iter()
            .filter(|&&m| self.reachable(m, now))
            .count()
            >= self.quorum()
    }

    fn replicas_of(&self, master: NodeId) -> Vec<NodeId> {
        self.claims
            .values()
            .filter(|c| c.replica_of == Some(master))
            .map(|c| c.node)
            .collect()
    }

    fn on_command(&mut self, ctx: &mut dyn Context, from: NodeId, msg: SessionMsg) {
        self.count(ctx, |i| i.commands);
        let (id, key, asking) = match msg {
            SessionMsg::Get { id, key, asking }
            | SessionMsg::Set {
                id, key, asking, ..
            } => (id, key, asking),
            _ => return,
        };
        let slot = user_slot(key);
        let now = ctx.now_ns();
        let importing = asking
            && self
                .importing
                .is_some_and(|(lo, hi)| slot >= lo && slot < hi);
        if let Some((lo, hi, to)) = self.migrating {
            // Keys no longer (or never) here belong to the target now: ASK, once.
            if slot >= lo && slot < hi && !self.data.contains_key(&key) {
                self.count(ctx, |i| i.ask);
                return ctx.send(from, Msg::Session(SessionMsg::Ask { id, slot, to }));
            }
        }
        match self.owner(slot) {
            Some(owner) if owner != self.me && !importing => {
                self.count(ctx, |i| i.moved);
                return ctx.send(
                    from,
                    Msg::Session(SessionMsg::Moved {
                        id,
                        slot,
                        to: owner,
                    }),
                );
            }
            None => return ctx.send(from, Msg::Session(SessionMsg::Down { id })),
            Some(_) => {}
        }
        if !self.sees_majority(now) || now < self.writable_at_ns {
            self.count(ctx, |i| i.down);
            return ctx.send(from, Msg::Session(SessionMsg::Down { id }));
        }
        match msg {
            SessionMsg::Get { .. } => {
                let value = match self.data.get(&key) {
                    Some(&(_, exp)) if exp != 0 && exp <= now => {
                        self.data.remove(&key);
                        None
                    }
                    Some(&(v, _)) => Some(v),
                    None => None,
                };
                ctx.send(from, Msg::Session(SessionMsg::Value { id, value }));
            }
            SessionMsg::Set { value, ttl_ms, .. } => {
                self.sets += 1;
                if planted!(self.config.bug_lose_acked_writes) && self.sets.is_multiple_of(50) {
                    let offset = self.repl_offset + 1;
                    return ctx.send(from, Msg::Session(SessionMsg::Stored { id, offset }));
                }
                let expires_ns = if ttl_ms == 0 {
                    0
                } else {
                    now + ms_to_ns(ttl_ms as f64)
                };
                self.data.insert(key, (value, expires_ns));
                if self.in_flight.contains(&key) {
                    self.dirty.insert(key); // changed while its migration is in flight: resend
                }
                // Acknowledged before any replica has it: the asynchronous replication window.
                let offset = self.repl_offset + 1;
                ctx.send(from, Msg::Session(SessionMsg::Stored { id, offset }));
                self.replicate(
                    ctx,
                    SessionMsg::Replicate {
                        offset: 0,
                        key,
                        value,
                        expires_ns,
                    },
                );
            }
            _ => unreachable!("matched above"),
        }
    }

    /// The cluster cron (Redis' `clusterCron`, every 100 ms): a ping to one of five random
    /// nodes each `ping_interval_ms`, a ping to any node whose pong is older than half the
    /// node timeout, and PFAIL for a node whose pending ping (and everything else from it) is
    /// older than the node timeout.
    fn cron(&mut self, ctx: &mut dyn Context) {
        ctx.set_timer(ms_to_ns(CRON_MS), Timer::Tick { kind: TICK_PING });
        self.cron_runs += 1;
        let now = ctx.now_ns();
        let timeout = ms_to_ns(self.config.node_timeout_ms);
        let all: Vec<NodeId> = self.claims.keys().copied().collect();
        let others: Vec<NodeId> = all.iter().copied().filter(|&n| n != self.me).collect();
        let every = (self.config.ping_interval_ms / CRON_MS).round().max(1.0) as u64;
        if self.cron_runs.is_multiple_of(every) && !all.is_empty() {
            let mut oldest: Option<(u64, NodeId)> = None;
            for _ in 0..5 {
                let n = all[ctx.rng().below(all.len() as u64) as usize];
                if n == self.me || self.ping_sent_ns.contains_key(&n) {
                    continue;
                }
                let pong = self.pong_received_ns.get(&n).copied().unwrap_or(0);
                if oldest.is_none_or(|(p, _)| pong < p) {
                    oldest = Some((pong, n));
                }
            }
            if let Some((_, n)) = oldest {
                self.send_ping(ctx, n, now);
            }
        }
        for &n in &others {
            let pong = self.pong_received_ns.get(&n).copied().unwrap_or(0);
            match self.ping_sent_ns.get(&n) {
                None if now.saturating_sub(pong) > timeout / 2 => self.send_ping(ctx, n, now),
                // A ping pending for half the node timeout: Redis drops the link and reconnects,
                // pinging again on the new one (the pending ping keeps its time), so a node
                // that restarted meanwhile answers and is known again.
                Some(&sent)
                    if now.saturating_sub(sent) > timeout / 2
                        && self.cron_runs.is_multiple_of(every) =>
                {
                    self.send_ping(ctx, n, now)
                }
                _ => {}
            }
        }
        for &n in &others {
            let Some(&sent) = self.ping_sent_ns.get(&n) else {
                continue;
            };
            let heard = self.last_heard_ns.get(&n).copied().unwrap_or(0);
            let delay = now.saturating_sub(sent).min(now.saturating_sub(heard));
            if delay > timeout && !self.failed.contains(&n) {
                self.pfail.insert(n);
            }
        }
        if self.is_master() {
            for &n in &self.pfail {
                self.reports.entry(n).or_default().insert(self.me, now);
            }
        }
        self.evaluate_failures(ctx, now);
    }

    fn send_ping(&mut self, ctx: &mut dyn Context, n: NodeId, now: u64) {
        self.ping_sent_ns.entry(n).or_insert(now);
        ctx.send(n, Msg::Session(self.gossip(true)));
    }

    fn gossip(&self, ping: bool) -> SessionMsg {
        let claims: Vec<Claim> = self.claims.values().cloned().collect();
        let pfail: Vec<NodeId> = self.pfail.iter().chain(&self.failed).copied().collect();
        let current_epoch = self.current_epoch;
        let gossip = Box::new(Gossip {
            claims,
            pfail,
            current_epoch,
            repl_offset: self.repl_offset,
        });
        if ping {
            SessionMsg::Ping(gossip)
        } else {
            SessionMsg::Pong(gossip)
        }
    }

    /// PFAIL becomes FAIL once a majority of masters have reported it recently.
    fn evaluate_failures(&mut self, ctx: &mut dyn Context, now: u64) {
        let window = 2 * ms_to_ns(self.config.node_timeout_ms);
        let masters = self.masters();
        let quorum = self.quorum();
        let newly: Vec<NodeId> = self
            .pfail
            .iter()
            .copied()
            .filter(|n| !self.failed.contains(n))
            .filter(|n| {
                self.reports.get(n).map_or(0, |r| {
                    r.iter()
                        .filter(|(m, &t)| masters.contains(m) && now - t <= window)
                        .count()
                }) >= quorum
            })
            .collect();
        for n in newly {
            self.mark_failed(ctx, n);
            for &o in self.claims.keys() {
                if o != self.me {
                    ctx.send(o, Msg::Session(SessionMsg::Fail { node: n }));
                }
            }
        }
    }

    fn mark_failed(&mut self, ctx: &mut dyn Context, n: NodeId) {
        if !self.failed.insert(n) {
            return;
        }
        tracing::info!(node = n, "FAIL");
        if self.claims[&self.me].replica_of == Some(n) {
            // Replica election delay: 500 ms + uniform(0, 500) ms + rank * 1000 ms, the rank
            // being how many fellow replicas have a larger replication offset
            // (clusterGetSlaveRank).
            let mine = self.repl_offset;
            let rank = self
                .replicas_of(n)
                .iter()
                .filter(|&&r| r != self.me && self.offsets.get(&r).is_some_and(|&o| o > mine))
                .count() as f64;
            let delay_ms = 500.0 + 500.0 * ctx.rng().unit() + rank * 1_000.0;
            ctx.set_timer(
                ms_to_ns(delay_ms),
                Timer::Tick {
                    kind: TICK_ELECTION,
                },
            );
        }
    }

    fn start_election(&mut self, ctx: &mut dyn Context) {
        let Some(master) = self.claims[&self.me].replica_of else {
            return;
        };
        if !self.failed.contains(&master) {
            return;
        }
        if self.data_too_old(ctx.now_ns(), master) {
            tracing::warn!(
                master,
                "disconnected from the master for longer than allowed: no failover"
            );
            return;
        }
        self.current_epoch += 1;
        let epoch = self.current_epoch;
        self.election = Some((epoch, BTreeSet::new()));
        for m in self.masters() {
            if m != master {
                ctx.send(
                    m,
                    Msg::Session(SessionMsg::AuthRequest {
                        epoch,
                        failed: master,
                    }),
                );
            }
        }
        // Not elected in time: try again with a higher epoch.
        let retry = 2.0 * self.config.node_timeout_ms;
        ctx.set_timer(
            ms_to_ns(retry),
            Timer::Tick {
                kind: TICK_ELECTION,
            },
        );
    }

    /// clusterHandleSlaveFailover's data age test: the time since the master was last heard,
    /// less the node timeout, over `node_timeout * factor` + the 10 s replication ping period.
    fn data_too_old(&self, now_ns: u64, master: NodeId) -> bool {
        let factor = self.config.replica_validity_factor;
        if factor <= 0.0 {
            return false;
        }
        let timeout = ms_to_ns(self.config.node_timeout_ms);
        let heard = self.last_heard_ns.get(&master).copied().unwrap_or(now_ns);
        let mut age = now_ns.saturating_sub(heard);
        if age > timeout {
            age -= timeout;
        }
        age as f64 > ms_to_ns(10_000.0) as f64 + timeout as f64 * factor
    }

    fn on_auth_ack(&mut self, ctx: &mut dyn Context, from: NodeId, epoch: u64) {
        let quorum = self.quorum();
        let Some((e, votes)) = &mut self.election else {
            return;
        };
        if *e != epoch {
            return;
        }
        votes.insert(from);
        if votes.len() < quorum {
            return;
        }
        let master = self.claims[&self.me]
            .replica_of
            .expect("a replica runs elections");
        let slots = self.claims[&master].slots.clone();
        self.election = None;
        let me = self.claims.get_mut(&self.me).expect("own claim");
        me.slots = slots;
        me.replica_of = None;
        me.config_epoch = epoch;
        let old = self.claims.get_mut(&master).expect("old master's claim");
        old.slots.clear();
        old.replica_of = Some(self.me);
        old.config_epoch = epoch;
        tracing::info!(epoch, old = master, "promoted to master");
        self.count(ctx, |i| i.failovers);
        ctx.observe(Observation::SessionPromoted {
            old_master: master,
            applied_offset: self.repl_offset,
        });
        let (g, now) = (self.ids().promoted_at_ms, ctx.now_ns());
        ctx.metrics().set(g, now as f64 / 1e6);
        let msg = self.gossip(true);
        for &n in self.claims.keys() {
            if n != self.me {
                ctx.send(n, Msg::Session(msg.clone()));
            }
        }
    }

    /// Takes in a peer's view: newer claims win; a master that finds its slots claimed in a
    /// higher epoch becomes that master's replica and resyncs.
    fn on_gossip(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        claims: Vec<Claim>,
        pfail: Vec<NodeId>,
        (epoch, offset): (u64, u64),
    ) {
        let now = ctx.now_ns();
        self.last_heard_ns.insert(from, now);
        self.offsets.insert(from, offset);
        self.pfail.remove(&from);
        self.failed.remove(&from);
        self.current_epoch = self.current_epoch.max(epoch);
        if self
            .claims
            .get(&from)
            .is_some_and(|c| c.replica_of.is_none())
        {
            for n in pfail {
                self.reports.entry(n).or_default().insert(from, now);
            }
        }
        let was = self.claims[&self.me].clone();
        for c in claims {
            let newer = self
                .claims
                .get(&c.node)
                .is_none_or(|old| c.config_epoch > old.config_epoch);
            if newer {
                self.claims.insert(c.node, c);
            }
        }
        let now_claim = self.claims[&self.me].clone();
        if let (None, Some(master)) = (was.replica_of, now_claim.replica_of) {
            // Others know we were replaced: resync from the new master.
            self.data.clear();
            self.repl_offset = 0;
            ctx.send(
                master,
                Msg::Session(SessionMsg::FullSync {
                    offset: 0,
                    data: Vec::new(),
                }),
            );
        }
        self.yield_lost_slots(ctx);
    }

    fn yield_lost_slots(&mut self, ctx: &mut dyn Context) {
        // A master all of whose slots are claimed by one other node in a newer epoch was
        // replaced by a failover: it becomes that node's replica.
        let mine = &self.claims[&self.me];
        if mine.replica_of.is_some() || mine.slots.is_empty() {
            return;
        }
        let owners: BTreeSet<Option<NodeId>> =
            mine.slots.iter().map(|&(lo, _)| self.owner(lo)).collect();
        let Some(&Some(owner)) = owners.iter().next().filter(|_| owners.len() == 1) else {
            return;
        };
        if owner == self.me {
            return;
        }
        tracing::info!(
            new_master = owner,
            "slots taken over: becoming a replica and resyncing"
        );
        let me = self.claims.get_mut(&self.me).expect("own claim");
        me.slots.clear();
        me.replica_of = Some(owner);
        self.data.clear();
        self.repl_offset = 0;
        ctx.send(
            owner,
            Msg::Session(SessionMsg::FullSync {
                offset: 0,
                data: Vec::new(),
            }),
        );
    }

    fn on_full_sync(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        offset: u64,
        data: Vec<(u64, u64, u64)>,
    ) {
        if self.is_master() && data.is_empty() && offset == 0 {
            // A request for a full copy: send everything.
            let data: Vec<(u64, u64, u64)> =
                self.data.iter().map(|(&k, &(v, e))| (k, v, e)).collect();
            let msg = SessionMsg::FullSync {
                offset: self.repl_offset,
                data,
            };
            return ctx.send(from, Msg::Session(msg));
        }
        if self.claims[&self.me].replica_of == Some(from) {
            self.data = data.into_iter().map(|(k, v, e)| (k, (v, e))).collect();
            self.repl_offset = offset;
        }
    }

    /// Sends one change to this master's replicas with the next replication offset (the
    /// `offset` field of `msg` is filled in here).
    fn replicate(&mut self, ctx: &mut dyn Context, mut msg: SessionMsg) {
        self.repl_offset += 1;
        match &mut msg {
            SessionMsg::Replicate { offset, .. } | SessionMsg::ReplicateDel { offset, .. } => {
                *offset = self.repl_offset
            }
            _ => unreachable!("only replication messages are replicated"),
        }
        for r in self.replicas_of(self.me) {
            ctx.send(r, Msg::Session(msg.clone()));
        }
        let cap = (self.config.repl_backlog_bytes / BACKLOG_ENTRY_BYTES).max(1) as usize;
        if self.backlog.len() == cap {
            self.backlog.pop_front();
        }
        self.backlog.push_back(msg);
    }

    fn stream_offset(msg: &SessionMsg) -> u64 {
        match *msg {
            SessionMsg::Replicate { offset, .. } | SessionMsg::ReplicateDel { offset, .. } => {
                offset
            }
            _ => unreachable!("the backlog holds replication messages"),
        }
    }

    /// A replica asks for the stream from `offset`: from the backlog when it still holds it
    /// (Redis' partial resync, `+CONTINUE`), else everything (`+FULLRESYNC`).
    fn on_psync(&mut self, ctx: &mut dyn Context, from: NodeId, offset: u64) {
        if !self.is_master() || self.claims.get(&from).and_then(|c| c.replica_of) != Some(self.me) {
            return;
        }
        let first = self.backlog.front().map(Self::stream_offset);
        if first.is_some_and(|f| f <= offset) && offset <= self.repl_offset + 1 {
            self.count(ctx, |i| i.partial_resyncs);
            for m in self
                .backlog
                .iter()
                .filter(|m| Self::stream_offset(m) >= offset)
            {
                ctx.send(from, Msg::Session(m.clone()));
            }
            return;
        }
        self.count(ctx, |i| i.full_resyncs);
        let data: Vec<(u64, u64, u64)> = self.data.iter().map(|(&k, &(v, e))| (k, v, e)).collect();
        let msg = SessionMsg::FullSync {
            offset: self.repl_offset,
            data,
        };
        ctx.send(from, Msg::Session(msg));
    }

    /// A change from the master at `offset`: the next one is applied; one past a gap asks for
    /// the stream again (at most once a second); an old one is a duplicate.
    fn in_order(&mut self, ctx: &mut dyn Context, from: NodeId, offset: u64) -> bool {
        if offset == self.repl_offset + 1 {
            self.psync_sent_ns = None;
            return true;
        }
        let now = ctx.now_ns();
        let due = self
            .psync_sent_ns
            .is_none_or(|t| now.saturating_sub(t) >= ms_to_ns(1_000.0));
        if offset > self.repl_offset + 1 && due {
            self.psync_sent_ns = Some(now);
            let psync = SessionMsg::Psync {
                offset: self.repl_offset + 1,
            };
            ctx.send(from, Msg::Session(psync));
        }
        false
    }

    /// Starts moving slots `[lo, hi)` to `to` (the source side of a migration).
    fn migrate(&mut self, ctx: &mut dyn Context, lo: u16, hi: u16, to: NodeId) {
        if self.migrating.is_some() || !self.is_master() || lo >= hi {
            return;
        }
        tracing::info!(lo, hi, to, "migrating slots");
        self.migrating = Some((lo, hi, to));
        self.to_move = self
            .data
            .keys()
            .copied()
            .filter(|&k| (lo..hi).contains(&user_slot(k)))
            .collect();
        self.to_move.reverse();
        ctx.send(to, Msg::Session(SessionMsg::Importing { lo, hi }));
        self.send_batch(ctx);
    }

    /// Sends the next batch of keys (as MIGRATE does, the keys stay here until the target has
    /// them); with nothing left, hands the slots over.
    fn send_batch(&mut self, ctx: &mut dyn Context) {
        let Some((lo, hi, to)) = self.migrating else {
            return;
        };
        let batch: Vec<u64> = (0..100).map_while(|_| self.to_move.pop()).collect();
        if batch.is_empty() {
            return self.finish_migration(ctx, lo, hi, to);
        }
        let entries = batch
            .iter()
            .filter_map(|k| self.data.get(k).map(|&(v, e)| (*k, v, e)))
            .collect();
        self.in_flight = batch.into_iter().collect();
        self.dirty.clear();
        ctx.send(to, Msg::Session(SessionMsg::MigrateKeys { entries }));
    }

    fn on_migrate_ack(&mut self, ctx: &mut dyn Context) {
        let sent = std::mem::take(&mut self.in_flight);
        let dirty = std::mem::take(&mut self.dirty);
        for k in sent {
            if dirty.contains(&k) {
                self.to_move.push(k); // written while in flight: send the new value
            } else {
                self.data.remove(&k);
                self.replicate(ctx, SessionMsg::ReplicateDel { offset: 0, key: k });
                let c = self.ids().migrated_keys;
                ctx.metrics().add(c, 1);
            }
        }
        self.send_batch(ctx);
    }

    fn finish_migration(&mut self, ctx: &mut dyn Context, lo: u16, hi: u16, to: NodeId) {
        self.migrating = None;
        self.current_epoch += 1;
        let epoch = self.current_epoch;
        let me = self.claims.get_mut(&self.me).expect("own claim");
        me.slots = split_out(&me.slots, lo, hi);
        me.config_epoch = epoch;
        if let Some(t) = self.claims.get_mut(&to) {
            t.slots.push((lo, hi));
            t.config_epoch = epoch;
        }
        tracing::info!(lo, hi, to, epoch, "slots handed over");
        ctx.send(
            to,
            Msg::Session(SessionMsg::SlotsAssigned { lo, hi, epoch }),
        );
    }

    fn on_message_inner(&mut self, ctx: &mut dyn Context, from: NodeId, msg: SessionMsg) {
        match msg {
            SessionMsg::MigrateSlots { lo, hi, to } => self.migrate(ctx, lo, hi, to),
            SessionMsg::Importing { lo, hi } => self.importing = Some((lo, hi)),
            SessionMsg::MigrateKeys { entries } => {
                for (k, v, e) in entries {
                    self.data.insert(k, (v, e));
                    let msg = SessionMsg::Replicate {
                        offset: 0,
                        key: k,
                        value: v,
                        expires_ns: e,
                    };
                    self.replicate(ctx, msg);
                }
                ctx.send(from, Msg::Session(SessionMsg::MigrateAck));
            }
            SessionMsg::MigrateAck => self.on_migrate_ack(ctx),
            SessionMsg::SlotsAssigned { lo, hi, epoch } => {
                self.importing = None;
                self.current_epoch = self.current_epoch.max(epoch);
                let me = self.claims.get_mut(&self.me).expect("own claim");
                if !me.slots.contains(&(lo, hi)) {
                    me.slots.push((lo, hi));
                }
                me.config_epoch = me.config_epoch.max(epoch);
                if let Some(src) = self.claims.get_mut(&from) {
                    src.slots = split_out(&src.slots, lo, hi);
                    src.config_epoch = src.config_epoch.max(epoch);
                }
            }
            SessionMsg::Get { .. } | SessionMsg::Set { .. } => self.on_command(ctx, from, msg),
            SessionMsg::GetReadonly { id, key } => {
                let value = self.data.get(&key).map(|&(v, _)| v);
                ctx.send(from, Msg::Session(SessionMsg::Value { id, value }));
            }
            SessionMsg::Ping(g) => {
                let header = (g.current_epoch, g.repl_offset);
                self.on_gossip(ctx, from, g.claims, g.pfail, header);
                ctx.send(from, Msg::Session(self.gossip(false)));
            }
            SessionMsg::Pong(g) => {
                self.ping_sent_ns.remove(&from);
                self.pong_received_ns.insert(from, ctx.now_ns());
                let header = (g.current_epoch, g.repl_offset);
                self.on_gossip(ctx, from, g.claims, g.pfail, header)
            }
            SessionMsg::Fail { node } if node != self.me => self.mark_failed(ctx, node),
            SessionMsg::AuthRequest { epoch, failed } => {
                let now = ctx.now_ns();
                let cooldown = 2 * ms_to_ns(self.config.node_timeout_ms);
                let cooled = self
                    .voted_for_ns
                    .get(&failed)
                    .is_none_or(|&t| now.saturating_sub(t) >= cooldown);
                let can_vote = self.is_master()
                    && epoch > self.voted_epoch
                    && self.failed.contains(&failed)
                    && cooled;
                if can_vote {
                    self.voted_epoch = epoch;
                    self.voted_for_ns.insert(failed, now);
                    ctx.send(from, Msg::Session(SessionMsg::AuthAck { epoch }));
                }
            }
            SessionMsg::AuthAck { epoch } => self.on_auth_ack(ctx, from, epoch),
            SessionMsg::Replicate {
                offset,
                key,
                value,
                expires_ns,
            } if self.claims[&self.me].replica_of == Some(from)
                && self.in_order(ctx, from, offset) =>
            {
                self.repl_offset = offset;
                if planted!(self.config.bug_replica_drops_changes) && offset.is_multiple_of(20) {
                    return; // the planted bug: the change is counted as applied, never stored
                }
                self.data.insert(key, (value, expires_ns));
            }
            SessionMsg::ReplicateDel { offset, key }
                if self.claims[&self.me].replica_of == Some(from)
                    && self.in_order(ctx, from, offset) =>
            {
                self.repl_offset = offset;
                self.data.remove(&key);
            }
            SessionMsg::FullSync { offset, data } => self.on_full_sync(ctx, from, offset, data),
            SessionMsg::Psync { offset } => self.on_psync(ctx, from, offset),
            _ => {}
        }
    }
}

impl Component for SessionNode {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            commands: m.counter("session_commands_total"),
            moved: m.counter("session_moved_total"),
            ask: m.counter("session_ask_total"),
            migrated_keys: m.counter("session_migrated_keys_total"),
            down: m.counter("session_down_total"),
            failovers: m.counter(FAILOVERS_TOTAL),
            partial_resyncs: m.counter("session_partial_resyncs_total"),
            full_resyncs: m.counter("session_full_resyncs_total"),
            promoted_at_ms: m.gauge(PROMOTED_AT_MS, "ms"),
        });
        // A restarted node comes back with the initial layout and no data (no persistence):
        // gossip tells it whether it still owns its slots.
        self.claims = self.initial.iter().map(|c| (c.node, c.clone())).collect();
        let now = ctx.now_ns();
        for &n in self.claims.keys() {
            self.last_heard_ns.insert(n, now);
            self.pong_received_ns.insert(n, now);
        }
        self.ping_sent_ns.clear();
        // clusterUpdateState's CLUSTER_WRITABLE_DELAY after a restart (a start after the run
        // began; the topology is up at time 0).
        if now > 0 {
            self.writable_at_ns = now + ms_to_ns(2_000.0);
        }
        // Each process has its own cron phase and its own count of runs (Redis' static
        // `iteration`): the nodes' crons and their once-a-second random pings do not line up.
        let every = (self.config.ping_interval_ms / CRON_MS).round().max(1.0) as u64;
        self.cron_runs = ctx.rng().below(every);
        let phase = CRON_MS * ctx.rng().unit_open0();
        ctx.set_timer(ms_to_ns(phase), Timer::Tick { kind: TICK_PING });
        // Every link is new: each opens with a ping (Redis queues one as soon as it connects),
        // so a restarted node hears the cluster's view of its slots at once.
        let others: Vec<NodeId> = self
            .claims
            .keys()
            .copied()
            .filter(|&n| n != self.me)
            .collect();
        for n in others {
            self.send_ping(ctx, n, now);
        }
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        if let Msg::Session(m) = msg {
            self.on_message_inner(ctx, from, m);
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick { kind: TICK_PING } => self.cron(ctx),
            Timer::Tick {
                kind: TICK_ELECTION,
            } => self.start_election(ctx),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `ranges` without `[lo, hi)`.
fn split_out(ranges: &[(u16, u16)], lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for &(a, b) in ranges {
        if hi <= a || lo >= b {
            out.push((a, b));
            continue;
        }
        if a < lo {
            out.push((a, lo));
        }
        if hi < b {
            out.push((hi, b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestContext;

    const TIMEOUT_NS: u64 = 15_000_000_000;

    /// Masters 0, 1, 2; replicas 3 and 4 of master 0.
    fn layout() -> Vec<Claim> {
        let master = |node, lo, hi| Claim {
            node,
            slots: vec![(lo, hi)],
            replica_of: None,
            config_epoch: u64::from(node) + 1,
        };
        let replica = |node| Claim {
            node,
            slots: Vec::new(),
            replica_of: Some(0),
            config_epoch: 0,
        };
        vec![
            master(0, 0, 5461),
            master(1, 5461, 10923),
            master(2, 10923, 16384),
            replica(3),
            replica(4),
        ]
    }

    fn node(me: NodeId) -> (SessionNode, TestContext) {
        let mut ctx = TestContext::new(me);
        let mut n = SessionNode::new(SessionConfig::default(), me, &layout());
        n.start(&mut ctx);
        ctx.take_sent();
        (n, ctx)
    }

    fn msg(m: SessionMsg) -> Msg {
        Msg::Session(m)
    }

    fn votes(ctx: &mut TestContext) -> usize {
        ctx.take_sent()
            .iter()
            .filter(|(_, m)| matches!(m, Msg::Session(SessionMsg::AuthAck { .. })))
            .count()
    }

    #[test]
    fn a_master_votes_once_per_failed_master_within_twice_the_node_timeout() {
        // cluster.c clusterSendFailoverAuthIfNeeded: `voted_time` of the failed master.
        let (mut n, mut ctx) = node(1);
        n.on_message(&mut ctx, 2, msg(SessionMsg::Fail { node: 0 }));
        ctx.take_sent();
        let ask = |epoch| msg(SessionMsg::AuthRequest { epoch, failed: 0 });
        n.on_message(&mut ctx, 3, ask(10));
        assert_eq!(votes(&mut ctx), 1);
        n.on_message(&mut ctx, 4, ask(11));
        assert_eq!(
            votes(&mut ctx),
            0,
            "the other replica, a newer epoch, too soon"
        );
        ctx.now_ns += 2 * TIMEOUT_NS;
        n.on_message(&mut ctx, 4, ask(12));
        assert_eq!(votes(&mut ctx), 1, "after the cooldown");
    }

    fn election_delay_ms(peer_offset: Option<u64>) -> u64 {
        let (mut n, mut ctx) = node(4);
        if let Some(offset) = peer_offset {
            let g = Gossip {
                claims: layout(),
                pfail: Vec::new(),
                current_epoch: 3,
                repl_offset: offset,
            };
            n.on_message(&mut ctx, 3, msg(SessionMsg::Pong(Box::new(g))));
        }
        ctx.timers.clear();
        n.on_message(&mut ctx, 1, msg(SessionMsg::Fail { node: 0 }));
        let (at, _, _) = ctx.timers[0];
        (at - ctx.now_ns) / 1_000_000
    }

    #[test]
    fn a_replica_behind_a_fellow_replica_ranks_after_it_and_waits_a_second_more() {
        // clusterGetSlaveRank: replicas with a larger replication offset go first.
        let first = election_delay_ms(None);
        assert!((500..1_000).contains(&first), "{first}");
        let behind = election_delay_ms(Some(10));
        assert!((1_500..2_000).contains(&behind), "{behind}");
    }

    #[test]
    fn a_replica_cut_off_from_its_master_too_long_does_not_fail_over() {
        // cluster-replica-validity-factor 10: data older than 10 * 15 s + 10 s (beyond the
        // node timeout) is too old.
        let (mut n, mut ctx) = node(3);
        let g = Gossip {
            claims: layout(),
            pfail: Vec::new(),
            current_epoch: 3,
            repl_offset: 0,
        };
        n.on_message(&mut ctx, 0, msg(SessionMsg::Pong(Box::new(g))));
        assert!(!n.data_too_old(ctx.now_ns + TIMEOUT_NS + 160_000_000_000, 0));
        assert!(n.data_too_old(ctx.now_ns + TIMEOUT_NS + 160_000_000_001, 0));
        let off = SessionConfig {
            replica_validity_factor: 0.0,
            ..SessionConfig::default()
        };
        let n = SessionNode::new(off, 3, &layout());
        assert!(!n.data_too_old(u64::MAX / 2, 0));
    }

    fn change(n: &mut SessionNode, ctx: &mut TestContext, key: u64) {
        let m = SessionMsg::Replicate {
            offset: 0,
            key,
            value: key,
            expires_ns: u64::MAX,
        };
        n.replicate(ctx, m);
    }

    fn resent(ctx: &mut TestContext) -> (Vec<u64>, bool) {
        let mut offsets = Vec::new();
        let mut full = false;
        for (to, m) in ctx.take_sent() {
            match m {
                Msg::Session(SessionMsg::Replicate { offset, .. }) if to == 3 => {
                    offsets.push(offset)
                }
                Msg::Session(SessionMsg::FullSync { .. }) if to == 3 => full = true,
                _ => {}
            }
        }
        (offsets, full)
    }

    #[test]
    fn a_gap_the_backlog_still_holds_is_resent_and_a_larger_one_costs_a_full_resync() {
        // Redis PSYNC: +CONTINUE from repl-backlog, else +FULLRESYNC.
        let config = SessionConfig {
            repl_backlog_bytes: 3 * BACKLOG_ENTRY_BYTES,
            ..SessionConfig::default()
        };
        let mut ctx = TestContext::new(0);
        let mut n = SessionNode::new(config, 0, &layout());
        n.start(&mut ctx);
        for key in 1..=5 {
            change(&mut n, &mut ctx, key);
        }
        ctx.take_sent();
        n.on_message(&mut ctx, 3, msg(SessionMsg::Psync { offset: 4 }));
        assert_eq!(resent(&mut ctx), (vec![4, 5], false));
        n.on_message(&mut ctx, 3, msg(SessionMsg::Psync { offset: 2 }));
        assert_eq!(
            resent(&mut ctx),
            (vec![], true),
            "offset 2 left the backlog"
        );
        assert_eq!(
            ctx.metrics.counter_value("session_partial_resyncs_total"),
            Some(1)
        );
        assert_eq!(
            ctx.metrics.counter_value("session_full_resyncs_total"),
            Some(1)
        );
    }

    #[test]
    fn a_replica_applies_its_stream_in_order_and_asks_for_a_gap_instead_of_skipping_it() {
        let (mut n, mut ctx) = node(3);
        let rep = |offset, key| {
            msg(SessionMsg::Replicate {
                offset,
                key,
                value: key,
                expires_ns: u64::MAX,
            })
        };
        n.on_message(&mut ctx, 0, rep(1, 10));
        n.on_message(&mut ctx, 0, rep(3, 30));
        assert!(n.data.contains_key(&10) && !n.data.contains_key(&30));
        let asked: Vec<Msg> = ctx.take_sent().into_iter().map(|(_, m)| m).collect();
        assert!(
            asked.contains(&msg(SessionMsg::Psync { offset: 2 })),
            "{asked:?}"
        );
        n.on_message(&mut ctx, 0, rep(2, 20));
        n.on_message(&mut ctx, 0, rep(3, 30));
        assert!(n.data.contains_key(&20) && n.data.contains_key(&30));
    }

    #[test]
    fn a_restarted_master_answers_clusterdown_for_two_seconds_before_taking_writes() {
        // cluster.c clusterUpdateState: CLUSTER_WRITABLE_DELAY (2000 ms) after a reboot.
        let mut ctx = TestContext::new(0);
        ctx.now_ns = 50_000_000_000;
        let mut n = SessionNode::new(SessionConfig::default(), 0, &layout());
        n.start(&mut ctx);
        ctx.take_sent();
        let key = (0..u64::MAX).find(|&k| user_slot(k) < 5461).unwrap();
        let set = |id| {
            msg(SessionMsg::Set {
                id,
                key,
                value: 1,
                ttl_ms: 60_000,
                asking: false,
            })
        };
        n.on_message(&mut ctx, 9, set(1));
        let down = |ctx: &mut TestContext| {
            ctx.take_sent()
                .iter()
                .any(|(_, m)| matches!(m, Msg::Session(SessionMsg::Down { .. })))
        };
        assert!(down(&mut ctx), "CLUSTERDOWN right after the restart");
        ctx.now_ns += 2_000_000_000;
        n.on_message(&mut ctx, 9, set(2));
        assert!(!down(&mut ctx), "writable after the delay");
    }

    #[test]
    fn splitting_a_range_out_keeps_what_is_left_on_either_side() {
        assert_eq!(split_out(&[(0, 100)], 40, 60), vec![(0, 40), (60, 100)]);
        assert_eq!(split_out(&[(0, 100)], 0, 100), vec![]);
        assert_eq!(
            split_out(&[(0, 10), (20, 30)], 5, 25),
            vec![(0, 5), (25, 30)]
        );
    }
}
