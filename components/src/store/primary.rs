//! The primary's side: when a write may be acknowledged (durable here and, under semi-sync, on
//! enough replicas, until the fallback to async), and shipping records to the replicas.

use super::{
    Divergence, ReplicationMode, Role, Store, Tenure, TICK_HEARTBEAT, TICK_SEMI_SYNC, TICK_SHIP,
};
use crate::context::{Context, NodeId};
use crate::msg::{Msg, Timer};
use crate::observe::Observation;
use crate::repl::ReplMsg;
use crate::rng::ms_to_ns;

impl Store {
    /// The highest lsn on at least `semi_sync_ack_count` replicas (in their relay logs, or
    /// synced there with `semi_sync_ack_after_sync`), and durable here.
    fn replicated_lsn(&self) -> u64 {
        let by = if self.config.semi_sync_ack_after_sync {
            &self.replica_acked
        } else {
            &self.replica_received
        };
        let mut acked: Vec<u64> = self
            .others()
            .map(|m| by.get(&m).copied().unwrap_or(0))
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let k = (self.config.semi_sync_ack_count as usize).min(acked.len());
        self.durable_lsn.min(acked[k - 1])
    }

    fn semi_sync_configured(&self) -> bool {
        self.config.replication == ReplicationMode::SemiSync && self.others().next().is_some()
    }

    /// The highest lsn a client may be told about: durable here, and (semi-sync) on enough replicas.
    fn releasable_lsn(&self) -> u64 {
        if !self.semi_sync_configured() || !self.semi_sync_on {
            return self.durable_lsn;
        }
        self.replicated_lsn()
    }

    /// Acknowledges every pending operation that may now be acknowledged.
    pub(super) fn release(&mut self, ctx: &mut dyn Context) {
        if self.role != Role::Primary {
            return;
        }
        let upto = self.releasable_lsn();
        self.apply_durable(upto);
        let now = ctx.now_ns();
        let (hist, write_hist) = (self.ids().commit_latency, self.ids().write_latency);
        // In the fallback, a write past what the replicas hold is acknowledged asynchronously:
        // say so, since the configuration no longer promises it survives a failover.
        let fallback = self.semi_sync_configured() && !self.semi_sync_on;
        let replicated = if fallback { self.replicated_lsn() } else { 0 };
        while let Some(&(ack, since)) = self.pending.front() {
            if ack.lsn > upto {
                break;
            }
            self.pending.pop_front();
            ctx.metrics().record(hist, now - since);
            if ack.write {
                let waited = now.saturating_sub(ack.arrived_ns);
                ctx.metrics().record(write_hist, waited);
                self.note_tenure(now);
                if fallback && ack.lsn > replicated {
                    ctx.observe(Observation::AsyncAck {
                        shard: self.placement.shard,
                        key: ack.key,
                        value: ack.value,
                    });
                }
            }
            Self::reply(ctx, ack.to, ack.id, ack.result);
        }
        self.watch_semi_sync(ctx);
    }

    pub(super) fn note_tenure(&mut self, now_ns: u64) {
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

    pub(super) fn semi_sync_timeout(&mut self, ctx: &mut dyn Context) {
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
        let waited = self.pending.back().map_or(self.durable_lsn, |(a, _)| a.lsn);
        self.fallback_lsn = waited.min(self.durable_lsn);
        self.waiting_since_ns = None;
        ctx.observe(Observation::SemiSync {
            shard: self.placement.shard,
            on: false,
        });
        self.release(ctx);
    }

    pub(super) fn schedule_ship(&mut self, ctx: &mut dyn Context) {
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
    pub(super) fn ship(&mut self, ctx: &mut dyn Context) {
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

    pub(super) fn send_records(&self, ctx: &mut dyn Context, to_node: NodeId, from: u64, to: u64) {
        for lsn in from.max(self.base_lsn + 1)..=to {
            let r = self.rec(lsn);
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

    pub(super) fn on_ack(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        epoch: u64,
        lsn: u64,
        received: u64,
    ) {
        if self.role != Role::Primary || epoch != self.epoch || !self.is_member(from) {
            return; // a detached member's late reply counts for nothing
        }
        let acked = self.replica_acked.entry(from).or_insert(0);
        *acked = (*acked).max(lsn);
        let durable_there = *acked;
        let got = self.replica_received.entry(from).or_insert(0);
        *got = (*got).max(received).max(lsn);
        let holds = if self.config.semi_sync_ack_after_sync {
            durable_there
        } else {
            *got
        };
        // MariaDB's update_sync_header/try_switch_on: while semi-sync is off, the events at or
        // past the last transaction that waited (the one that timed out) ask for a reply, and
        // the first such reply switches semi-sync back on, whether the replica has caught up
        // with the rest or not (measured: calibration/mariadb-semisync.sh).
        if !self.semi_sync_on && holds >= self.fallback_lsn {
            tracing::info!(replica = from, "a replica caught up: semi-sync back on");
            self.semi_sync_on = true;
            if self.semi_sync_configured() {
                ctx.observe(Observation::SemiSync {
                    shard: self.placement.shard,
                    on: true,
                });
            }
        }
        self.release(ctx);
        self.maybe_checkpoint(ctx);
    }

    pub(super) fn on_fetch(
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
        // our records of an epoch <= its last one; past that, resend. Settled (purged) records
        // are on every member, so the shared prefix never ends before the checkpoint.
        let shared = self.base_lsn + self.log.partition_point(|r| r.epoch <= last_epoch) as u64;
        let diverged = shared + 1 < from_lsn;
        if !self.is_member(from) || (diverged && self.config.on_divergence == Divergence::Fence) {
            // Not ours to stream to (detached), or its log holds records we never had: tell it
            // where the histories split, and stream to it no more.
            return self.detach_member(ctx, from, shared.min(from_lsn - 1));
        }
        let from_lsn = from_lsn.min(shared + 1).max(self.base_lsn + 1);
        if epoch < self.epoch {
            // A replica of an older epoch: tell it who leads now, with the records.
            self.heartbeat_to(ctx, from);
        }
        let to = self
            .durable_lsn
            .min(from_lsn + u64::from(self.config.fetch_batch) - 1);
        if from_lsn <= to {
            self.send_records(ctx, from, from_lsn, to);
        }
    }

    pub(super) fn heartbeat(&mut self, ctx: &mut dyn Context) {
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

    fn heartbeat_msg(&self, ctx: &dyn Context) -> ReplMsg {
        ReplMsg::Heartbeat {
            epoch: self.epoch,
            lsn: self.durable_lsn,
            ts_ns: ctx.now_ns(),
            purge_lsn: self.purge_point(),
        }
    }

    fn heartbeat_to(&self, ctx: &mut dyn Context, to: NodeId) {
        let msg = self.heartbeat_msg(ctx);
        ctx.send(to, Msg::Repl(msg));
    }

    pub(super) fn heartbeat_now(&mut self, ctx: &mut dyn Context) {
        let msg = self.heartbeat_msg(ctx);
        let members: Vec<NodeId> = self.others().collect();
        for m in members {
            ctx.send(m, Msg::Repl(msg.clone()));
        }
    }

    fn is_member(&self, node: NodeId) -> bool {
        self.placement.members.contains(&node)
    }

    fn detach_member(&mut self, ctx: &mut dyn Context, member: NodeId, shared_lsn: u64) {
        if self.is_member(member) {
            tracing::warn!(
                shard = self.placement.shard,
                member,
                shared_lsn,
                "a member's log diverged from ours: detached, it needs a re-clone"
            );
            self.placement.members.retain(|&m| m != member);
            self.replica_acked.remove(&member);
            self.replica_received.remove(&member);
        }
        let msg = ReplMsg::Diverged {
            epoch: self.epoch,
            shared_lsn,
        };
        ctx.send(member, Msg::Repl(msg));
    }

    /// A detached member asks for a re-clone: send it our applied state and stream to it again.
    pub(super) fn on_clone_request(&mut self, ctx: &mut dyn Context, from: NodeId, epoch: u64) {
        if self.role != Role::Primary || epoch != self.epoch || from == self.me {
            return;
        }
        // The state at the applied point: the checkpoint plus the applied records after it.
        let lsn = self.applied_lsn;
        let mut at_lsn = self.base.clone();
        for l in self.base_lsn + 1..=lsn {
            let r = self.rec(l);
            at_lsn.insert(r.key, r.value);
        }
        let state: Vec<(u64, u64)> = at_lsn.into_iter().collect();
        let msg = ReplMsg::CloneData {
            epoch: self.epoch,
            lsn,
            lsn_epoch: self.epoch_at(lsn),
            state,
        };
        ctx.send(from, Msg::Repl(msg));
        if !self.is_member(from) {
            tracing::info!(
                shard = self.placement.shard,
                member = from,
                lsn,
                "re-clone: member attached again"
            );
            self.placement.members.push(from);
        }
    }
}
