//! The replica's side: following the primary of the highest epoch, appending what it streams,
//! fetching what is missing, rewinding a tail that diverged, and being promoted.

use super::{Record, ReplicationMode, Role, Store};
use crate::context::{Context, NodeId};
use crate::msg::{Msg, StoreResult};
use crate::observe::Observation;
use crate::repl::ReplMsg;
use crate::rng::ms_to_ns;

impl Store {
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
        let ours = matches!(self.role, Role::Replica { primary } if primary == from);
        if ours {
            self.primary_heard_ns = ctx.now_ns();
            self.primary_link_down = false;
        }
        ours
    }

    pub(super) fn become_replica(&mut self, ctx: &mut dyn Context, primary: NodeId, epoch: u64) {
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

    pub(super) fn on_append(
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
        if lsn <= self.tail_lsn() {
            // Settled records are the same on every member; others may have diverged.
            if lsn <= self.base_lsn || self.rec(lsn) == record {
                let ack = ReplMsg::Ack {
                    epoch: self.epoch,
                    lsn: self.durable_lsn,
                    received: self.tail_lsn(),
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
        if self.config.replication == ReplicationMode::SemiSync
            && !self.config.semi_sync_ack_after_sync
        {
            // In the relay log: the semi-sync reply goes now, before the sync.
            let ack = ReplMsg::Ack {
                epoch: self.epoch,
                lsn: self.durable_lsn,
                received: self.tail_lsn(),
            };
            ctx.send(from, Msg::Repl(ack));
        }
        self.request_sync(ctx);
    }

    pub(super) fn fetch(&mut self, ctx: &mut dyn Context, primary: NodeId) {
        if self.config.replica_never_fetches() {
            return;
        }
        let now = ctx.now_ns();
        if now < self.fetch_after_ns {
            return;
        }
        self.fetch_after_ns = now + ms_to_ns(100.0);
        let msg = ReplMsg::Fetch {
            epoch: self.epoch,
            from_lsn: self.tail_lsn() + 1,
            last_epoch: self.epoch_at(self.tail_lsn()),
        };
        ctx.send(primary, Msg::Repl(msg));
    }

    pub(super) fn on_heartbeat(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        epoch: u64,
        lsn: u64,
        ts_ns: u64,
        purge_lsn: u64,
    ) {
        if !self.accept_primary(ctx, from, epoch) {
            return;
        }
        if lsn > self.tail_lsn() || self.epoch_at(self.tail_lsn()) < epoch {
            // Behind, or not yet known to share the new primary's history.
            self.fetch(ctx, from);
        }
        let lag = self.ids().replication_lag;
        let now = ctx.now_ns();
        ctx.metrics().record(lag, now.saturating_sub(ts_ns));
        self.purge_hint_lsn = self.purge_hint_lsn.max(purge_lsn);
        self.maybe_checkpoint(ctx);
    }

    pub(super) fn on_promote(&mut self, ctx: &mut dyn Context, epoch: u64, members: Vec<NodeId>) {
        if epoch <= self.epoch {
            return;
        }
        tracing::info!(epoch, lsn = self.durable_lsn, "promoted to primary");
        self.count(ctx, |i| i.promotions);
        self.role = Role::Primary;
        self.epoch = epoch;
        self.placement.members = members;
        self.replica_acked.clear();
        self.replica_received.clear();
        self.shipped_lsn = self.durable_lsn;
        self.semi_sync_on = true;
        self.latest.clear();
        // Records past the durable point were never acknowledged by the old primary's stream.
        let durable = self.durable_lsn;
        if self.tail_lsn() > durable {
            self.rewind(ctx, durable);
        }
        ctx.observe(Observation::StorePromoted {
            shard: self.placement.shard,
            epoch,
            lsn: durable,
        });
        self.heartbeat_now(ctx);
    }
}
