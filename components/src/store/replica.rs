//! The replica's side: following the primary of the highest epoch, appending what it streams,
//! fetching what is missing, being detached when its log diverged (or rewinding it), being
//! re-cloned, and being promoted.
//!
//! Detached: a member whose log holds records its primary never had (errant transactions) is
//! not rewound silently. The primary finds the split when the member fetches (see
//! `primary.rs`) and answers `Diverged`; an old primary the orchestrator does not re-attach is
//! told `Fence`. Either way the member steps down read-only, stops replicating and counts its
//! errant records, until a `Reclone` makes it install the primary's state and follow again.

use super::{log, Divergence, Record, ReplicationMode, Role, Store};
use crate::context::{Context, NodeId};
use crate::msg::{Msg, StoreResult};
use crate::observe::Observation;
use crate::repl::ReplMsg;
use crate::rng::ms_to_ns;

impl Store {
    /// A message from a primary of `epoch`: fence it if stale, follow it if newer.
    /// Returns false when the message must be ignored.
    fn accept_primary(&mut self, ctx: &mut dyn Context, from: NodeId, epoch: u64) -> bool {
        if epoch < self.epoch || ctx.now_ns() < self.connected_ns {
            return false; // stale, or our IO thread is not connected yet
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

    /// The IO thread is connected (`replica_connect` after the start): ask for what we miss.
    pub(super) fn connected(&mut self, ctx: &mut dyn Context) {
        if let Role::Replica { primary } = self.role {
            tracing::debug!(
                primary,
                lsn = self.tail_lsn(),
                "replica connected to its primary"
            );
            self.primary_heard_ns = ctx.now_ns();
            self.fetch_after_ns = 0;
            self.fetch(ctx, primary);
        }
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
        if !self.accept_primary(ctx, from, epoch) || self.detached {
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
            if self.config.on_divergence == Divergence::Fence {
                // Diverged: the primary decides, from where our histories split.
                self.fetch_after_ns = 0;
                return self.fetch(ctx, from);
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
        if !self.accept_primary(ctx, from, epoch) || self.detached {
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

    /// The orchestrator does not re-attach this old primary: step down read-only, stop
    /// replicating, and ask the primary where the histories split (to count what is errant).
    pub(super) fn on_fence(&mut self, ctx: &mut dyn Context, epoch: u64, primary: NodeId) {
        if epoch < self.epoch {
            return;
        }
        self.become_replica(ctx, primary, epoch);
        self.detach(ctx);
        self.ask_where_split(ctx, primary);
    }

    fn ask_where_split(&mut self, ctx: &mut dyn Context, primary: NodeId) {
        let msg = ReplMsg::Fetch {
            epoch: self.epoch,
            from_lsn: self.tail_lsn() + 1,
            last_epoch: self.epoch_at(self.tail_lsn()),
        };
        ctx.send(primary, Msg::Repl(msg));
    }

    fn detach(&mut self, ctx: &mut dyn Context) {
        if self.detached {
            return;
        }
        tracing::warn!(
            shard = self.placement.shard,
            epoch = self.epoch,
            "detached from the shard: read-only, not replicating, until a re-clone"
        );
        self.detached = true;
        self.errant = None;
        self.count(ctx, |i| i.detachments);
    }

    /// The primary's answer to a fetch from a member it no longer streams to: our histories
    /// share `shared_lsn` records; the rest of our log is errant.
    pub(super) fn on_diverged(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        epoch: u64,
        shared_lsn: u64,
    ) {
        if epoch < self.epoch {
            return;
        }
        if epoch > self.epoch || self.role == Role::Primary {
            self.become_replica(ctx, from, epoch);
        }
        self.detach(ctx);
        if self.errant.is_none() {
            let errant = self.tail_lsn().saturating_sub(shared_lsn);
            if errant > 0 {
                tracing::warn!(
                    shard = self.placement.shard,
                    errant,
                    shared_lsn,
                    "errant records: the primary never had them; a re-clone discards them"
                );
            }
            self.errant = Some(errant);
            let c = self.ids().errant;
            ctx.metrics().add(c, errant);
        }
    }

    /// Installs the primary's state at `lsn` in place of the whole log (a re-clone: the
    /// errant records go), then follows the primary from there.
    pub(super) fn on_clone_data(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        epoch: u64,
        lsn: u64,
        lsn_epoch: u64,
        state: Vec<(u64, u64)>,
    ) {
        if !self.detached || epoch < self.epoch {
            return;
        }
        tracing::info!(
            shard = self.placement.shard,
            lsn,
            errant = self.errant.unwrap_or(0),
            "re-cloned from the primary"
        );
        let base: std::collections::BTreeMap<u64, u64> = state.into_iter().collect();
        ctx.disk_install(lsn, log::encode_snapshot(lsn_epoch, &base));
        self.log.clear();
        self.appended_ns.clear();
        self.committed.clear();
        for (&k, &v) in &base {
            self.committed.insert(k, v);
        }
        self.base = base;
        self.base_lsn = lsn;
        self.base_epoch = lsn_epoch;
        self.durable_lsn = lsn;
        self.applied_lsn = lsn;
        self.shipped_lsn = lsn;
        self.purge_hint_lsn = lsn;
        self.sync_in_flight = false;
        self.detached = false;
        self.errant = None;
        self.count(ctx, |i| i.reclones);
        self.become_replica(ctx, from, epoch);
        self.primary_heard_ns = ctx.now_ns();
        self.primary_link_down = false;
        self.fetch_after_ns = 0;
        self.fetch(ctx, from);
    }
}
