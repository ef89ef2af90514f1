//! Live resharding: split one shard's keyspace over new shards while it serves (the brief's
//! "split the monolithic database" migration), Vitess-style.
//!
//! Phases: **copy** (replay the source's log into the targets, each record to the target that
//! owns its keyspace id; replaying the log from the start is copy and catch-up in one), **catch
//! up** until the source is fewer than `cutover_lag_records` records ahead, **cut-over**:
//! freeze the source (writes are refused and retried by the services), drain the last records,
//! **verify** (order-free digests of the source's data per target range against each target's),
//! then switch every service to the new layout. A failed verification unfreezes the source and
//! aborts. The write outage is the cut-over: from freeze to switch.

use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::keyspace::shard_for;
use crate::metrics::{CounterId, GaugeId};
use crate::mirror::{MirrorMsg, MirrorRecord};
use crate::msg::{Msg, StoreOp, StoreRequest, StoreResult, Timer};
use crate::repl::ReplMsg;
use crate::rng::ms_to_ns;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReshardConfig {
    /// When the migration starts (simulated seconds).
    pub start_s: f64,
    /// Records fetched and copied per round.
    pub max_batch: u32,
    /// Cut over once the source is at most this many records ahead of the copy.
    pub cutover_lag_records: u64,
    /// Pause between fetches when caught up.
    pub poll_ms: f64,
    /// PLANTED BUG (feature `planted-bugs`, tests only): skip every 1000th record while
    /// copying. Verification must catch it and abort the cut-over.
    #[cfg(feature = "planted-bugs")]
    pub bug_skip_records: bool,
}

impl Default for ReshardConfig {
    fn default() -> Self {
        ReshardConfig {
            start_s: 20.0,
            max_batch: 500,
            cutover_lag_records: 200,
            poll_ms: 20.0,
            #[cfg(feature = "planted-bugs")]
            bug_skip_records: false,
        }
    }
}

impl ReshardConfig {
    /// Ranges: `start_s` 0-34,560,000 (and inside the run); `max_batch` 1-1,000,000;
    /// `cutover_lag_records` 0-1e9; `poll_ms` 1-1e9.
    pub fn validate(&self) -> Checked {
        config::range("start_s", self.start_s, 0.0, 34_560_000.0)?;
        config::count("max_batch", u64::from(self.max_batch), 1, 1_000_000)?;
        config::count(
            "cutover_lag_records",
            self.cutover_lag_records,
            0,
            1_000_000_000,
        )?;
        config::ms("poll_ms", self.poll_ms, 1.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Copying,
    Freezing,
    Draining { frozen_tail: u64 },
    Verifying,
    Done,
    Aborted,
}

struct Ids {
    copied: CounterId,
    verify_failures: CounterId,
    cutover_ms: GaugeId,
    lag: GaugeId,
}

const TICK_START: u32 = 1;
const TICK_FETCH: u32 = 2;

pub struct Resharder {
    config: ReshardConfig,
    source: NodeId,
    targets: Vec<NodeId>,
    services: Vec<NodeId>,
    /// The last source lsn copied to every target.
    position: u64,
    /// Writes of the current batch not yet acknowledged, by request id, and the batch's end.
    outstanding: BTreeMap<u64, (NodeId, MirrorRecord)>,
    batch_end: u64,
    next_id: u64,
    fetching: bool,
    frozen_at_ns: u64,
    digests: BTreeMap<NodeId, Vec<u64>>,
    ids: Option<Ids>,
    pub phase: Phase,
    /// From freeze to switch, when done.
    pub cutover_ns: Option<u64>,
}

impl Resharder {
    pub fn new(
        config: ReshardConfig,
        source: NodeId,
        targets: &[NodeId],
        services: &[NodeId],
    ) -> Resharder {
        assert!(!targets.is_empty(), "resharding needs target shards");
        Resharder {
            config,
            source,
            targets: targets.to_vec(),
            services: services.to_vec(),
            position: 0,
            outstanding: BTreeMap::new(),
            batch_end: 0,
            next_id: 0,
            fetching: false,
            frozen_at_ns: 0,
            digests: BTreeMap::new(),
            ids: None,
            phase: Phase::Waiting,
            cutover_ns: None,
        }
    }

    pub fn switched(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn targets(&self) -> &[NodeId] {
        &self.targets
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn fetch(&mut self, ctx: &mut dyn Context) {
        if self.fetching || !self.outstanding.is_empty() {
            return;
        }
        self.fetching = true;
        let msg = MirrorMsg::GetUpdates {
            from_lsn: self.position + 1,
            max: self.config.max_batch,
        };
        ctx.send(self.source, Msg::Mirror(msg));
    }

    fn fetch_later(&mut self, ctx: &mut dyn Context) {
        ctx.set_timer(
            ms_to_ns(self.config.poll_ms),
            Timer::Tick { kind: TICK_FETCH },
        );
    }

    fn on_updates(&mut self, ctx: &mut dyn Context, records: Vec<MirrorRecord>, tail_lsn: u64) {
        self.fetching = false;
        let lag = self.ids().lag;
        ctx.metrics()
            .set(lag, tail_lsn.saturating_sub(self.position) as f64);
        if records.is_empty() || records[0].lsn != self.position + 1 {
            return self.caught_up(ctx, tail_lsn);
        }
        self.batch_end = records.last().expect("not empty").lsn;
        if records.len() == 1
            && planted!(self.config.bug_skip_records)
            && records[0].lsn.is_multiple_of(1000)
        {
            self.position = self.batch_end; // the whole batch was skipped
            return self.fetch(ctx);
        }
        let n = self.targets.len();
        for r in records {
            if planted!(self.config.bug_skip_records) && r.lsn.is_multiple_of(1000) {
                continue;
            }
            self.next_id += 1;
            let target = self.targets[shard_for(r.key, n)];
            self.outstanding.insert(self.next_id, (target, r));
            let op = StoreOp::Write {
                key: r.key,
                value: r.value,
            };
            ctx.send(
                target,
                Msg::Store(StoreRequest {
                    id: self.next_id,
                    op,
                }),
            );
        }
    }

    /// Nothing (more) to copy right now: decide what the phase does next.
    fn caught_up(&mut self, ctx: &mut dyn Context, tail_lsn: u64) {
        match self.phase {
            Phase::Copying
                if tail_lsn.saturating_sub(self.position) <= self.config.cutover_lag_records =>
            {
                self.phase = Phase::Freezing;
                self.frozen_at_ns = ctx.now_ns();
                tracing::info!(
                    position = self.position,
                    tail_lsn,
                    "resharding: freezing the source for the cut-over"
                );
                ctx.send(self.source, Msg::Repl(ReplMsg::Freeze));
            }
            Phase::Draining { frozen_tail } if self.position >= frozen_tail => self.verify(ctx),
            _ => self.fetch_later(ctx),
        }
    }

    fn on_write_reply(&mut self, ctx: &mut dyn Context, id: u64, result: StoreResult) {
        let Some(&(target, r)) = self.outstanding.get(&id) else {
            return;
        };
        if !matches!(result, StoreResult::Written { .. }) {
            // Resend the same write: copying is idempotent (the same key gets the same value).
            let op = StoreOp::Write {
                key: r.key,
                value: r.value,
            };
            return ctx.send(target, Msg::Store(StoreRequest { id, op }));
        }
        self.outstanding.remove(&id);
        let c = self.ids().copied;
        ctx.metrics().add(c, 1);
        if self.outstanding.is_empty() {
            self.position = self.batch_end;
            self.fetch(ctx);
        }
    }

    fn verify(&mut self, ctx: &mut dyn Context) {
        self.phase = Phase::Verifying;
        self.digests.clear();
        let shards = self.targets.len() as u32;
        for &n in std::iter::once(&self.source).chain(&self.targets) {
            ctx.send(n, Msg::Repl(ReplMsg::Digest { shards }));
        }
    }

    fn on_digest(&mut self, ctx: &mut dyn Context, from: NodeId, digests: Vec<u64>) {
        if self.phase != Phase::Verifying {
            return;
        }
        self.digests.insert(from, digests);
        if self.digests.len() < self.targets.len() + 1 {
            return;
        }
        let source = &self.digests[&self.source];
        let matches = self
            .targets
            .iter()
            .enumerate()
            .all(|(i, t)| self.digests[t].get(i) == source.get(i));
        if !matches {
            tracing::warn!("resharding: verification found differences; aborting and unfreezing");
            let c = self.ids().verify_failures;
            ctx.metrics().add(c, 1);
            self.phase = Phase::Aborted;
            return ctx.send(self.source, Msg::Repl(ReplMsg::Unfreeze));
        }
        let msg = ReplMsg::Reshard {
            epoch: 1,
            shards: self.targets.clone(),
        };
        for &s in &self.services {
            ctx.send(s, Msg::Repl(msg.clone()));
        }
        let cutover = ctx.now_ns() - self.frozen_at_ns;
        tracing::info!(
            cutover_ms = cutover / 1_000_000,
            "resharding: switched to the new shards"
        );
        self.cutover_ns = Some(cutover);
        let g = self.ids().cutover_ms;
        ctx.metrics().set(g, cutover as f64 / 1e6);
        self.phase = Phase::Done;
    }
}

impl Component for Resharder {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            copied: m.counter("reshard_records_copied_total"),
            verify_failures: m.counter("reshard_verify_failures_total"),
            cutover_ms: m.gauge("reshard_cutover_ms", "ms"),
            lag: m.gauge("reshard_lag_records", "records"),
        });
        if self.phase == Phase::Waiting {
            let at = ms_to_ns(self.config.start_s * 1000.0).saturating_sub(ctx.now_ns());
            ctx.set_timer(at, Timer::Tick { kind: TICK_START });
        }
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        match msg {
            Msg::Mirror(MirrorMsg::Updates { records, tail_lsn }) if from == self.source => {
                self.on_updates(ctx, records, tail_lsn)
            }
            Msg::StoreReply(r) => self.on_write_reply(ctx, r.id, r.result),
            Msg::Repl(ReplMsg::Frozen { tail_lsn }) if self.phase == Phase::Freezing => {
                self.phase = Phase::Draining {
                    frozen_tail: tail_lsn,
                };
                self.fetch(ctx);
            }
            Msg::Repl(ReplMsg::DigestReply { digests }) => self.on_digest(ctx, from, digests),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick { kind: TICK_START } => {
                tracing::info!(targets = self.targets.len(), "resharding: copy starts");
                self.phase = Phase::Copying;
                self.fetch(ctx);
            }
            Timer::Tick { kind: TICK_FETCH } => self.fetch(ctx),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
