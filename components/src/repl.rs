//! Replication of store shards and the failover orchestrator.
//!
//! A shard has one primary and any number of replicas. The primary streams every durable
//! record to its replicas (MySQL binlog streaming); replicas append, sync, and acknowledge.
//! Semi-sync (AFTER_SYNC) holds the client's acknowledgement until `ack_count` replicas have
//! the record, and silently falls back to async after `semi_sync_timeout_ms`, as MySQL does.
//! Epochs fence stale primaries: a node never accepts a record from a lower epoch, and a
//! primary that hears of a higher epoch steps down.
//!
//! The [`Orchestrator`] (orchestrator-style) probes every store node each `poll_interval_ms`;
//! after `failed_polls` polls without an answer from a primary it promotes the responding
//! replica with the most records, tells the others to follow it, pushes the new route to every
//! service, and fences the old primary read-only when it answers again, leaving it out of the
//! shard (orchestrator never re-attaches a failed primary; its errant records need a re-clone,
//! which an operator does `reclone_after` later, if configured).
//!
//! With an `operator_delay` it models a manual failover instead (a monolith's database):
//! the failed polls raise an alert, and a human promotes the replica a drawn delay later
//! (paging, diagnosis, the decision), unless the primary answers again first.

use crate::config::nested;
use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::metrics::{CounterId, HistId};
use crate::msg::{Msg, Timer};
use crate::raft::{Election, RaftTiming};
use crate::rng::{ms_to_ns, Dist};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Messages of replication and failover.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReplMsg {
    /// Primary -> replica: the record at `lsn`, written in `record_epoch`.
    Append {
        epoch: u64,
        lsn: u64,
        record_epoch: u64,
        key: u64,
        value: u64,
    },
    /// Replica -> primary: everything up to `lsn` is durable here, and up to `received` is
    /// in the relay log (written, maybe not yet synced).
    Ack {
        epoch: u64,
        lsn: u64,
        received: u64,
    },
    /// Replica -> primary: please resend from `from_lsn` (a gap, after loss or a partition);
    /// `last_epoch` is the epoch of the replica's last record, so the primary can find where
    /// the replica's history diverged from its own (records of a higher epoch at a position the
    /// replica filled in an older one) and resend from there.
    Fetch {
        epoch: u64,
        from_lsn: u64,
        last_epoch: u64,
    },
    /// Primary -> replica, every heartbeat interval: the heartbeat row (lag = now - ts), and
    /// the settled point (every member and log reader holds the records up to `purge_lsn`), up
    /// to which the replica may purge its log too.
    Heartbeat {
        epoch: u64,
        lsn: u64,
        ts_ns: u64,
        purge_lsn: u64,
    },
    /// Orchestrator -> node.
    Probe {
        seq: u64,
    },
    /// Node -> orchestrator.
    ProbeReply {
        seq: u64,
        shard: u32,
        primary: bool,
        epoch: u64,
        lsn: u64,
        /// A replica's IO thread is connected to its primary and hearing from it (true for a
        /// primary): orchestrator's `slave_io_running` in its DeadMaster analysis.
        replicating: bool,
        /// Detached from the shard (an old primary not re-attached, or a member whose log
        /// diverged): read-only and not replicating until a re-clone.
        detached: bool,
    },
    /// Orchestrator -> replica: become the primary of your shard in `epoch`.
    Promote {
        epoch: u64,
        members: Vec<NodeId>,
    },
    /// Orchestrator -> node: follow `primary` in `epoch` (fences an old primary).
    Follow {
        epoch: u64,
        primary: NodeId,
    },
    /// Orchestrator -> an old primary that answers again: step down read-only and do not
    /// replicate (orchestrator never re-attaches a failed primary by itself).
    Fence {
        epoch: u64,
        primary: NodeId,
    },
    /// Primary -> a member it no longer streams to (detached, or its log diverged): the two
    /// histories share the first `shared_lsn` records.
    Diverged {
        epoch: u64,
        shared_lsn: u64,
    },
    /// Orchestrator (the operator's re-clone) -> a detached member: clone `primary`'s data.
    Reclone {
        epoch: u64,
        primary: NodeId,
    },
    /// Detached member -> primary: send me your state.
    CloneRequest {
        epoch: u64,
    },
    /// Primary -> member: its state after `lsn` (whose record has epoch `lsn_epoch`), by key.
    CloneData {
        epoch: u64,
        lsn: u64,
        lsn_epoch: u64,
        state: Vec<(u64, u64)>,
    },
    /// Orchestrator group (raft): would you vote for me in `term`, knowing `known` (the sum of
    /// the shards' epochs I know)? Changes nothing at the voter (raft's pre-vote).
    RaftPreVote {
        term: u64,
        known: u64,
    },
    RaftPreVoteReply {
        term: u64,
        granted: bool,
    },
    /// Orchestrator group (raft): a candidate asks for votes in `term`.
    RaftVote {
        term: u64,
        known: u64,
    },
    RaftVoteReply {
        term: u64,
        granted: bool,
    },
    /// Orchestrator group: the leader's heartbeat, with its view of every shard.
    RaftHeartbeat {
        term: u64,
        shards: Vec<RaftShard>,
    },
    /// Orchestrator group: a heartbeat of `term` heard (or, from a newer term, refused).
    RaftAck {
        term: u64,
    },
    /// Orchestrator -> services: `shard`'s primary is now `primary`.
    Route {
        shard: u32,
        epoch: u64,
        primary: NodeId,
    },
    /// Resharder -> source primary: stop accepting writes (the cut-over); answer `Frozen`.
    Freeze,
    /// Source -> resharder: frozen; every write it accepted is at or below `tail_lsn`.
    Frozen {
        tail_lsn: u64,
    },
    /// Resharder -> source: accept writes again (an aborted cut-over).
    Unfreeze,
    /// Resharder -> a store: digests of its data split by the new shard layout of `shards`.
    Digest {
        shards: u32,
    },
    DigestReply {
        digests: Vec<u64>,
    },
    /// Resharder -> services: the keyspace is now split over `shards` (equal ranges).
    Reshard {
        epoch: u64,
        shards: Vec<NodeId>,
    },
}

/// The leader's view of one shard, as its heartbeat hands it to the other orchestrators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RaftShard {
    pub primary: NodeId,
    pub epoch: u64,
    /// What is left of the shard's recovery block.
    pub blocked_for_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrchestratorConfig {
    /// Orchestrators: 1, or a raft group of 3 or 5 (orchestrator/raft), one per store zone in
    /// turn; only the group's leader recovers, and a leader that cannot reach a majority steps
    /// down, so an orchestrator cut off in a minority zone stops failing over.
    pub raft_nodes: u32,
    /// A follower that hears no leader for this long (randomized up to twice) starts an
    /// election (hashicorp/raft's HeartbeatTimeout and ElectionTimeout: 1 s).
    pub raft_election_timeout_ms: f64,
    /// A leader that has not heard a majority acknowledge it for this long steps down
    /// (hashicorp/raft's LeaderLeaseTimeout: 500 ms).
    pub raft_lease_ms: f64,
    /// How often every store node is probed (orchestrator's InstancePollSeconds = 5).
    pub poll_interval_ms: f64,
    /// Consecutive unanswered polls after which a primary is declared dead.
    pub failed_polls: u32,
    /// Manual failover: once a primary is declared dead, an operator promotes a replica this
    /// long later (none: the orchestrator promotes at once).
    pub operator_delay: Option<Dist>,
    /// After a recovery on a shard, no automated recovery of that shard for this long
    /// (orchestrator's RecoveryPeriodBlockSeconds = 3600: anti-flapping).
    pub recovery_block_ms: f64,
    /// What becomes of a failed primary that answers again: left detached (read-only, not
    /// replicating; orchestrator never re-attaches it by itself) or re-attached as a replica.
    pub old_primary: OldPrimary,
    /// The operator re-clones a detached member this long after it is first seen detached
    /// (none: never within the run; it stays detached, as until someone acts).
    pub reclone_after: Option<Dist>,
}

/// What the orchestrator does with a failed primary that answers again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OldPrimary {
    /// Fence it read-only and leave it out of the shard until a re-clone (orchestrator).
    #[default]
    Detach,
    /// Tell it to follow the new primary (the twin's former rule; with the store's
    /// `on_divergence = "rewind"` its errant records then vanish silently).
    Reattach,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            poll_interval_ms: 5_000.0,
            failed_polls: 2,
            operator_delay: None,
            recovery_block_ms: 3_600_000.0,
            old_primary: OldPrimary::Detach,
            reclone_after: None,
            raft_nodes: 1,
            raft_election_timeout_ms: 1_000.0,
            raft_lease_ms: 500.0,
        }
    }
}

impl OrchestratorConfig {
    /// Ranges: `poll_interval_ms` 100-1e9; `failed_polls` 1-100; `operator_delay` a duration
    /// distribution; `recovery_block_ms` 0-1e10; `reclone_after` a duration distribution;
    /// `raft_nodes` 1, 3 or 5; `raft_election_timeout_ms` and `raft_lease_ms` 10-1e9, the lease
    /// at most the election timeout (as hashicorp/raft requires).
    pub fn validate(&self) -> Checked {
        config::ms("poll_interval_ms", self.poll_interval_ms, 100.0)?;
        config::range("recovery_block_ms", self.recovery_block_ms, 0.0, 1e10)?;
        config::count("failed_polls", u64::from(self.failed_polls), 1, 100)?;
        if let Some(d) = &self.operator_delay {
            nested("operator_delay", d.validate())?;
        }
        if let Some(d) = &self.reclone_after {
            nested("reclone_after", d.validate())?;
        }
        config::rule(
            matches!(self.raft_nodes, 1 | 3 | 5),
            "raft_nodes",
            format!(
                "{} orchestrators: give 1, or a raft group of 3 or 5 (an odd number, for a majority)",
                self.raft_nodes
            ),
        )?;
        config::ms(
            "raft_election_timeout_ms",
            self.raft_election_timeout_ms,
            10.0,
        )?;
        config::ms("raft_lease_ms", self.raft_lease_ms, 10.0)?;
        config::rule(
            self.raft_lease_ms <= self.raft_election_timeout_ms,
            "raft_lease_ms",
            format!(
                "a lease of {} ms outlives the election timeout ({} ms): a new leader could be elected while the old one still acts; give at most raft_election_timeout_ms",
                self.raft_lease_ms, self.raft_election_timeout_ms
            ),
        )
    }
}

/// One failover, as the orchestrator saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failover {
    pub shard: u32,
    pub old_primary: NodeId,
    pub new_primary: NodeId,
    pub epoch: u64,
    /// Local time of the orchestrator when it promoted.
    pub at_ns: u64,
    /// Last time the old primary answered a probe.
    pub last_seen_ns: u64,
}

#[derive(Clone, Debug)]
struct ShardState {
    members: Vec<NodeId>,
    primary: NodeId,
    epoch: u64,
    missed_polls: u32,
    last_seen_ns: u64,
    /// Manual failover: when the operator will act on the alert raised for this shard.
    operator_due_ns: Option<u64>,
    /// No recovery before this (RecoveryPeriodBlockSeconds after the last one).
    blocked_until_ns: u64,
    /// This outage's analysis was logged and counted (UnreachableMaster, or blocked).
    noted: bool,
    /// Members out of the shard (failed primaries not re-attached, diverged members), with
    /// when the operator's re-clone of each is due (None: not scheduled).
    detached: BTreeMap<NodeId, Option<u64>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Answer {
    seq: u64,
    primary: bool,
    epoch: u64,
    lsn: u64,
    replicating: bool,
    detached: bool,
}

struct Ids {
    polls: CounterId,
    failovers: CounterId,
    unreachable: CounterId,
    blocked: CounterId,
    fenced: CounterId,
    reclones: CounterId,
    detection: HistId,
}

const TICK_POLL: u32 = 1;
const TICK_RAFT: u32 = 2;

pub struct Orchestrator {
    config: OrchestratorConfig,
    /// A member of a raft group: only the leader recovers (None: a single orchestrator).
    election: Option<Election>,
    shards: Vec<ShardState>,
    services: Vec<NodeId>,
    answers: BTreeMap<NodeId, Answer>,
    seq: u64,
    ids: Option<Ids>,
    /// Every failover, in order.
    pub failovers: Vec<Failover>,
}

impl Orchestrator {
    /// `shards[i]` lists shard i's members, initial primary first; `services` get routes.
    pub fn new(
        config: OrchestratorConfig,
        shards: &[Vec<NodeId>],
        services: &[NodeId],
    ) -> Orchestrator {
        let shards = shards
            .iter()
            .map(|m| {
                assert!(!m.is_empty(), "a shard has at least one member");
                ShardState {
                    members: m.clone(),
                    primary: m[0],
                    epoch: 1,
                    missed_polls: 0,
                    last_seen_ns: 0,
                    operator_due_ns: None,
                    blocked_until_ns: 0,
                    noted: false,
                    detached: BTreeMap::new(),
                }
            })
            .collect();
        Orchestrator {
            config,
            election: None,
            shards,
            services: services.to_vec(),
            answers: BTreeMap::new(),
            seq: 0,
            ids: None,
            failovers: Vec::new(),
        }
    }

    /// A member of a raft group whose other members are `peers`.
    pub fn in_group(mut self, peers: Vec<NodeId>) -> Orchestrator {
        let timing = RaftTiming {
            election_timeout_ms: self.config.raft_election_timeout_ms,
            lease_ms: self.config.raft_lease_ms,
        };
        self.election = Some(Election::new(peers, timing));
        self
    }

    /// Whether this orchestrator may recover: a single one always, a group's leader only.
    pub fn leads(&self) -> bool {
        self.election.as_ref().is_none_or(|e| e.is_leader())
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn raft_tick(&mut self, ctx: &mut dyn Context) {
        let period = ms_to_ns(self.config.raft_election_timeout_ms / 2.0);
        ctx.set_timer(period, Timer::Tick { kind: TICK_RAFT });
        let known = self.known();
        let lead = self.election.as_mut().is_some_and(|e| {
            e.set_known(known);
            e.tick(ctx)
        });
        if lead {
            self.raft_heartbeat(ctx);
        }
    }

    /// What this orchestrator knows of the failovers: the sum of the shards' epochs.
    fn known(&self) -> u64 {
        self.shards.iter().map(|s| s.epoch).sum()
    }

    fn raft_heartbeat(&mut self, ctx: &mut dyn Context) {
        let Some(e) = &self.election else { return };
        let now = ctx.now_ns();
        let shards = self
            .shards
            .iter()
            .map(|s| RaftShard {
                primary: s.primary,
                epoch: s.epoch,
                blocked_for_ns: s.blocked_until_ns.saturating_sub(now),
            })
            .collect();
        let msg = ReplMsg::RaftHeartbeat {
            term: e.term(),
            shards,
        };
        let peers: Vec<NodeId> = e.peers().to_vec();
        for p in peers {
            ctx.send(p, Msg::Repl(msg.clone()));
        }
    }

    /// The leader's view: a newer epoch of a shard (a failover it decided) is adopted.
    fn adopt(&mut self, ctx: &mut dyn Context, shards: &[RaftShard]) {
        let now = ctx.now_ns();
        for (s, v) in self.shards.iter_mut().zip(shards) {
            if v.epoch > s.epoch {
                s.epoch = v.epoch;
                s.primary = v.primary;
                s.missed_polls = 0;
            }
            s.blocked_until_ns = s.blocked_until_ns.max(now.saturating_add(v.blocked_for_ns));
        }
    }

    fn poll(&mut self, ctx: &mut dyn Context) {
        if self.seq > 0 {
            self.evaluate(ctx);
        }
        self.seq += 1;
        let c = self.ids().polls;
        ctx.metrics().add(c, 1);
        for s in &self.shards {
            for &m in &s.members {
                ctx.send(m, Msg::Repl(ReplMsg::Probe { seq: self.seq }));
            }
        }
        ctx.set_timer(
            ms_to_ns(self.config.poll_interval_ms),
            Timer::Tick { kind: TICK_POLL },
        );
    }

    /// Looks at the answers to the last poll: fail over dead primaries, fence stale ones.
    fn evaluate(&mut self, ctx: &mut dyn Context) {
        let now = ctx.now_ns();
        for i in 0..self.shards.len() {
            let answered = |n: NodeId, a: &BTreeMap<NodeId, Answer>, seq| {
                a.get(&n).is_some_and(|x: &Answer| x.seq == seq)
            };
            self.adopt_answers(i);
            let primary = self.shards[i].primary;
            if answered(primary, &self.answers, self.seq) {
                let shard = &mut self.shards[i];
                shard.missed_polls = 0;
                shard.last_seen_ns = now;
                shard.operator_due_ns = None; // back before the operator acted: stand down
                shard.noted = false;
            } else {
                self.shards[i].missed_polls += 1;
                if self.shards[i].missed_polls >= self.config.failed_polls
                    && self.leads()
                    && self.recoverable(ctx, i)
                    && self.decided(ctx, i)
                {
                    self.fail_over(ctx, i);
                }
            }
            if self.leads() {
                self.fence(ctx, i);
            }
        }
    }

    /// A member that answers as the primary of a newer epoch than ours (a failover another
    /// orchestrator of the group decided) is the shard's primary.
    fn adopt_answers(&mut self, i: usize) {
        let newest = self.shards[i]
            .members
            .iter()
            .filter_map(|&m| {
                self.answers
                    .get(&m)
                    .filter(|a| a.seq == self.seq && a.primary)
                    .map(|a| (a.epoch, m))
            })
            .max();
        let shard = &mut self.shards[i];
        if let Some((epoch, m)) = newest.filter(|&(e, _)| e > shard.epoch) {
            shard.epoch = epoch;
            shard.primary = m;
            shard.missed_polls = 0;
        }
    }

    /// Whether shard `i`'s unreachable primary is a DeadMaster that may be recovered now: every
    /// replica that answered this poll has lost it too (analysis_dao.go: "Master cannot be
    /// reached by orchestrator and none of its replicas is replicating"), and no recovery of
    /// the shard ran within `recovery_block_ms`. Otherwise it is logged and counted once.
    fn recoverable(&mut self, ctx: &mut dyn Context, i: usize) -> bool {
        let shard = &self.shards[i];
        let answers: Vec<&Answer> = shard
            .members
            .iter()
            .filter(|&&m| m != shard.primary && !shard.detached.contains_key(&m))
            .filter_map(|m| {
                self.answers
                    .get(m)
                    .filter(|a| a.seq == self.seq && !a.detached)
            })
            .collect();
        let dead = !answers.is_empty() && answers.iter().all(|a| !a.replicating);
        let blocked = ctx.now_ns() < shard.blocked_until_ns;
        if dead && !blocked {
            return true;
        }
        if !shard.noted {
            let (what, counter) = if dead {
                (
                    "recovery blocked: a recovery ran within recovery_block_ms",
                    self.ids().blocked,
                )
            } else {
                (
                    "UnreachableMaster: its replicas still replicate from it; no failover",
                    self.ids().unreachable,
                )
            };
            tracing::warn!(shard = i, "{what}");
            ctx.metrics().add(counter, 1);
            self.shards[i].noted = true;
        }
        false
    }

    /// Whether a failover of shard `i`, declared dead, happens now: at once, or when the
    /// operator's delay (drawn when the alert is raised) has passed.
    fn decided(&mut self, ctx: &mut dyn Context, i: usize) -> bool {
        let Some(delay) = &self.config.operator_delay else {
            return true;
        };
        let now = ctx.now_ns();
        let due = match self.shards[i].operator_due_ns {
            Some(due) => due,
            None => {
                let due = now.saturating_add(delay.sample_ns(ctx.rng()));
                tracing::info!(
                    shard = i,
                    due_ns = due,
                    "alert: primary down, operator paged"
                );
                self.shards[i].operator_due_ns = Some(due);
                due
            }
        };
        now >= due
    }

    fn fail_over(&mut self, ctx: &mut dyn Context, i: usize) {
        let shard = &self.shards[i];
        let candidate = shard
            .members
            .iter()
            .filter(|&&m| m != shard.primary && !shard.detached.contains_key(&m))
            .filter_map(|&m| {
                self.answers
                    .get(&m)
                    .filter(|a| a.seq == self.seq && !a.detached)
                    .map(|a| (a.lsn, m))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let Some((_, new_primary)) = candidate else {
            return; // no replica to promote: keep waiting
        };
        let now = ctx.now_ns();
        let shard = &mut self.shards[i];
        shard.epoch += 1;
        let failover = Failover {
            shard: i as u32,
            old_primary: shard.primary,
            new_primary,
            epoch: shard.epoch,
            at_ns: now,
            last_seen_ns: shard.last_seen_ns,
        };
        tracing::info!(
            shard = i,
            old = shard.primary,
            new = new_primary,
            epoch = shard.epoch,
            "failover"
        );
        shard.primary = new_primary;
        shard.missed_polls = 0;
        shard.operator_due_ns = None;
        shard.noted = false;
        shard.blocked_until_ns = now.saturating_add(ms_to_ns(self.config.recovery_block_ms));
        if self.config.old_primary == OldPrimary::Detach {
            shard.detached.insert(failover.old_primary, None);
        }
        // The new primary streams to the members still in the shard.
        let members: Vec<NodeId> = shard
            .members
            .iter()
            .copied()
            .filter(|m| !shard.detached.contains_key(m))
            .collect();
        let epoch = shard.epoch;
        ctx.send(new_primary, Msg::Repl(ReplMsg::Promote { epoch, members }));
        for &s in &self.services {
            ctx.send(
                s,
                Msg::Repl(ReplMsg::Route {
                    shard: i as u32,
                    epoch,
                    primary: new_primary,
                }),
            );
        }
        let (f, d) = (self.ids().failovers, self.ids().detection);
        ctx.metrics().add(f, 1);
        ctx.metrics()
            .record(d, now.saturating_sub(failover.last_seen_ns));
        self.failovers.push(failover);
    }

    /// Tells every answering member that is not in step (stale epoch, or a second primary)
    /// whom to follow, or, for a detached one, to stay read-only; schedules and sends the
    /// operator's re-clones.
    fn fence(&mut self, ctx: &mut dyn Context, i: usize) {
        let now = ctx.now_ns();
        let (primary, epoch) = (self.shards[i].primary, self.shards[i].epoch);
        let members = self.shards[i].members.clone();
        for m in members {
            if m == primary {
                continue;
            }
            let Some(a) = self.answers.get(&m).filter(|a| a.seq == self.seq).copied() else {
                continue;
            };
            if a.detached {
                self.shards[i].detached.entry(m).or_insert(None);
                self.reclone(ctx, i, m, now);
                continue;
            }
            let known_detached = self.shards[i].detached.contains_key(&m);
            if a.primary || a.epoch < epoch {
                let msg = if known_detached {
                    ReplMsg::Fence { epoch, primary }
                } else {
                    ReplMsg::Follow { epoch, primary }
                };
                ctx.send(m, Msg::Repl(msg));
                let c = self.ids().fenced;
                ctx.metrics().add(c, 1);
            } else if known_detached && a.replicating {
                // Re-cloned: back in the shard.
                tracing::info!(shard = i, member = m, "re-cloned member replicates again");
                self.shards[i].detached.remove(&m);
            }
        }
    }

    /// The operator's re-clone of detached member `m`: due `reclone_after` after it was first
    /// seen detached, sent each poll from then until it replicates again.
    fn reclone(&mut self, ctx: &mut dyn Context, i: usize, m: NodeId, now: u64) {
        let Some(delay) = &self.config.reclone_after else {
            return;
        };
        let due = match self.shards[i].detached.get(&m).copied().flatten() {
            Some(due) => due,
            None => {
                let due = now.saturating_add(delay.sample_ns(ctx.rng()));
                self.shards[i].detached.insert(m, Some(due));
                due
            }
        };
        if now < due {
            return;
        }
        let (epoch, primary) = (self.shards[i].epoch, self.shards[i].primary);
        tracing::info!(
            shard = i,
            member = m,
            "operator re-clones a detached member"
        );
        ctx.send(m, Msg::Repl(ReplMsg::Reclone { epoch, primary }));
        let c = self.ids().reclones;
        ctx.metrics().add(c, 1);
    }
}

impl Component for Orchestrator {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            polls: m.counter("orchestrator_polls_total"),
            failovers: m.counter("orchestrator_failovers_total"),
            unreachable: m.counter("orchestrator_unreachable_master_total"),
            blocked: m.counter("orchestrator_recoveries_blocked_total"),
            fenced: m.counter("orchestrator_fence_messages_total"),
            reclones: m.counter("orchestrator_reclones_total"),
            detection: m.histogram("orchestrator_detection_ns"),
        });
        // The first poll at a random phase: crashes do not line up with polls in production.
        let phase = ms_to_ns(self.config.poll_interval_ms * ctx.rng().unit_open0());
        ctx.set_timer(phase, Timer::Tick { kind: TICK_POLL });
        if let Some(e) = self.election.as_mut() {
            e.start(ctx);
            self.raft_tick(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        if let Msg::Repl(ReplMsg::RaftHeartbeat { term, shards }) = &msg {
            let current = self
                .election
                .as_mut()
                .is_some_and(|e| e.on_heartbeat(ctx, from, *term));
            if current {
                self.adopt(ctx, shards);
            }
            return;
        }
        if let Msg::Repl(
            m @ (ReplMsg::RaftPreVote { .. }
            | ReplMsg::RaftPreVoteReply { .. }
            | ReplMsg::RaftVote { .. }
            | ReplMsg::RaftVoteReply { .. }
            | ReplMsg::RaftAck { .. }),
        ) = &msg
        {
            let known = self.known();
            let lead = self.election.as_mut().is_some_and(|e| {
                e.set_known(known);
                e.on_message(ctx, from, m)
            });
            if lead {
                self.raft_heartbeat(ctx);
            }
            return;
        }
        if let Msg::Repl(ReplMsg::ProbeReply {
            seq,
            primary,
            epoch,
            lsn,
            replicating,
            detached,
            ..
        }) = msg
        {
            self.answers.insert(
                from,
                Answer {
                    seq,
                    primary,
                    epoch,
                    lsn,
                    replicating,
                    detached,
                },
            );
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick { kind: TICK_POLL } => self.poll(ctx),
            Timer::Tick { kind: TICK_RAFT } => self.raft_tick(ctx),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
