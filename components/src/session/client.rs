//! The session workload: users read and write their session keys, following MOVED, and every
//! completed operation is recorded for the read-your-writes and monotonic-reads checks.

use super::slot::{user_slot, SLOTS};
use super::SessionMsg;
use crate::context::{Component, Context, NodeId};
use crate::deadline::DeadlineQueue;
use crate::detmap::{DetMap, Slab};
use crate::metrics::CounterId;
use crate::msg::{Msg, Timer};
use crate::rng::ms_to_ns;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionClientConfig {
    pub rps: f64,
    pub users: u64,
    /// Fraction of operations that write the session (the rest read it).
    pub set_fraction: f64,
    pub ttl_ms: f64,
    pub timeout_ms: f64,
    pub max_redirects: u32,
    /// PLANTED BUG (feature `planted-bugs`, tests only): read from a replica (READONLY) right
    /// after writing to the master. The read-your-writes check must catch the stale reads.
    #[cfg(feature = "planted-bugs")]
    pub bug_read_from_replica: bool,
}

impl Default for SessionClientConfig {
    fn default() -> Self {
        SessionClientConfig {
            rps: 500.0,
            users: 5_000,
            set_fraction: 0.5,
            ttl_ms: 1_800_000.0,
            timeout_ms: 1_000.0,
            max_redirects: 5,
            #[cfg(feature = "planted-bugs")]
            bug_read_from_replica: false,
        }
    }
}

impl SessionClientConfig {
    pub fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.rps)
            || self.users == 0
            || !(0.0..=1.0).contains(&self.set_fraction)
            || !ok(self.timeout_ms)
        {
            return Err("rps > 0, users >= 1, set_fraction in [0, 1], timeout_ms > 0".into());
        }
        Ok(())
    }
}

/// A completed session operation (local times of the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOp {
    pub key: u64,
    pub set: bool,
    /// Written value, or the value read (None: absent).
    pub value: Option<u64>,
    pub invoke_ns: u64,
    pub complete_ns: u64,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    key: u64,
    set: bool,
    value: u64,
    invoke_ns: u64,
    redirects: u32,
    /// After an ASK: the node to ask, once, for this request only.
    ask_to: Option<NodeId>,
}

const TICK_ARRIVAL: u32 = 1;

pub struct SessionClient {
    config: SessionClientConfig,
    slot_map: Vec<NodeId>,
    replica_of: BTreeMap<NodeId, NodeId>,
    next_value: DetMap<u64, u64>,
    pending: Slab<Pending>,
    deadlines: DeadlineQueue<u64>,
    due: Vec<u64>,
    stop_ns: u64,
    /// (MOVED, ASK) redirect counters.
    ids: Option<(CounterId, CounterId)>,
    /// Completed operations, in completion order.
    pub history: Vec<SessionOp>,
    pub failed: u64,
}

impl SessionClient {
    /// `masters[i]` serves slot range i of `masters.len()`; `replicas` maps a master to one replica.
    pub fn new(
        config: SessionClientConfig,
        masters: &[NodeId],
        replicas: &[(NodeId, NodeId)],
        stop_ns: u64,
    ) -> SessionClient {
        let n = masters.len();
        let slot_map = (0..SLOTS as usize)
            .map(|s| masters[(s * n / SLOTS as usize).min(n - 1)])
            .collect();
        SessionClient {
            config,
            slot_map,
            replica_of: replicas.iter().copied().collect(),
            next_value: DetMap::new(),
            pending: Slab::new(),
            deadlines: DeadlineQueue::new(),
            due: Vec::new(),
            stop_ns,
            ids: None,
            history: Vec::new(),
            failed: 0,
        }
    }

    fn schedule(&mut self, ctx: &mut dyn Context) {
        let gap = ms_to_ns(ctx.rng().exp(1_000.0 / self.config.rps)).max(1);
        if ctx.now_ns() + gap < self.stop_ns {
            ctx.set_timer(gap, Timer::Tick { kind: TICK_ARRIVAL });
        }
    }

    fn arrive(&mut self, ctx: &mut dyn Context) {
        let key = ctx.rng().below(self.config.users);
        let set = ctx.rng().chance(self.config.set_fraction);
        let value = if set {
            let v = self.next_value.get(&key).copied().unwrap_or(0) + 1;
            self.next_value.insert(key, v);
            v
        } else {
            0
        };
        let now = ctx.now_ns();
        let id = self.pending.insert(Pending {
            key,
            set,
            value,
            invoke_ns: now,
            redirects: 0,
            ask_to: None,
        });
        self.send(ctx, id);
        self.deadlines
            .push(ctx, now + ms_to_ns(self.config.timeout_ms), id);
    }

    fn send(&self, ctx: &mut dyn Context, id: u64) {
        let p = *self.pending.get(id).expect("pending");
        let asking = p.ask_to.is_some();
        let master = p.ask_to.unwrap_or(self.slot_map[user_slot(p.key) as usize]);
        let msg = if p.set {
            SessionMsg::Set {
                id,
                key: p.key,
                value: p.value,
                ttl_ms: self.config.ttl_ms as u64,
                asking,
            }
        } else if planted!(self.config.bug_read_from_replica) {
            let to = self.replica_of.get(&master).copied().unwrap_or(master);
            return ctx.send(to, Msg::Session(SessionMsg::GetReadonly { id, key: p.key }));
        } else {
            SessionMsg::Get {
                id,
                key: p.key,
                asking,
            }
        };
        ctx.send(master, Msg::Session(msg));
    }

    /// Follows a MOVED (`ask_to` None: the slot map was updated) or an ASK (one-shot).
    fn redirect(
        &mut self,
        ctx: &mut dyn Context,
        id: u64,
        ask_to: Option<NodeId>,
        counter: Option<CounterId>,
    ) {
        if let Some(c) = counter {
            ctx.metrics().add(c, 1);
        }
        let max = self.config.max_redirects;
        let Some(p) = self.pending.get_mut(id) else {
            return;
        };
        p.redirects += 1;
        p.ask_to = ask_to;
        if p.redirects > max {
            self.pending.remove(id);
            self.failed += 1;
            return;
        }
        self.send(ctx, id);
    }

    fn complete(&mut self, ctx: &mut dyn Context, id: u64, value: Option<u64>) {
        let Some(p) = self.pending.remove(id) else {
            return;
        };
        let value = if p.set { Some(p.value) } else { value };
        let op = SessionOp {
            key: p.key,
            set: p.set,
            value,
            invoke_ns: p.invoke_ns,
            complete_ns: ctx.now_ns(),
        };
        self.history.push(op);
    }

    fn on_session(&mut self, ctx: &mut dyn Context, msg: SessionMsg) {
        match msg {
            SessionMsg::Value { id, value } => self.complete(ctx, id, value),
            SessionMsg::Stored { id } => self.complete(ctx, id, None),
            SessionMsg::Moved { id, slot, to } => {
                self.slot_map[slot as usize] = to;
                let c = self.ids.as_ref().map(|i| i.0);
                self.redirect(ctx, id, None, c);
            }
            SessionMsg::Ask { id, to, .. } => {
                let c = self.ids.as_ref().map(|i| i.1);
                self.redirect(ctx, id, Some(to), c);
            }
            SessionMsg::Down { id } if self.pending.remove(id).is_some() => self.failed += 1,
            _ => {}
        }
    }
}

impl Component for SessionClient {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some((
            m.counter("session_client_moved_total"),
            m.counter("session_client_ask_total"),
        ));
        self.schedule(ctx);
    }

    fn on_message(&mut self, ctx: &mut dyn Context, _from: NodeId, msg: Msg) {
        if let Msg::Session(m) = msg {
            self.on_session(ctx, m);
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick { kind: TICK_ARRIVAL } => {
                self.arrive(ctx);
                self.schedule(ctx);
            }
            Timer::Deadlines => {
                let mut due = std::mem::take(&mut self.due);
                self.deadlines.fire(ctx, &mut due);
                for &id in &due {
                    if self.pending.remove(id).is_some() {
                        self.failed += 1;
                    }
                }
                due.clear();
                self.due = due;
            }
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Reads that returned an older value (or nothing) although the same user's write of a newer
/// value had been acknowledged before the read was sent. Values per key only grow.
pub fn read_your_writes_violations(history: &[SessionOp]) -> Vec<SessionOp> {
    let mut by_key: BTreeMap<u64, Vec<SessionOp>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key).or_default().push(*op);
    }
    let mut out = Vec::new();
    for ops in by_key.values() {
        for r in ops.iter().filter(|o| !o.set) {
            let acked = ops
                .iter()
                .filter(|w| w.set && w.complete_ns < r.invoke_ns)
                .filter_map(|w| w.value)
                .max();
            if acked.is_some_and(|a| r.value.unwrap_or(0) < a) {
                out.push(*r);
            }
        }
    }
    out
}

/// Reads that returned an older value than a read of the same key that completed before they
/// were sent.
pub fn monotonic_read_violations(history: &[SessionOp]) -> Vec<SessionOp> {
    let mut by_key: BTreeMap<u64, Vec<SessionOp>> = BTreeMap::new();
    for op in history.iter().filter(|o| !o.set) {
        by_key.entry(op.key).or_default().push(*op);
    }
    let mut out = Vec::new();
    for reads in by_key.values() {
        for r in reads {
            let seen = reads
                .iter()
                .filter(|p| p.complete_ns < r.invoke_ns)
                .filter_map(|p| p.value)
                .max();
            if seen.is_some_and(|s| r.value.unwrap_or(0) < s) {
                out.push(*r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: u64, set: bool, value: Option<u64>, invoke_ns: u64, complete_ns: u64) -> SessionOp {
        SessionOp {
            key,
            set,
            value,
            invoke_ns,
            complete_ns,
        }
    }

    #[test]
    fn a_read_after_an_acknowledged_write_must_see_it() {
        let ok = [op(1, true, Some(1), 0, 10), op(1, false, Some(1), 20, 30)];
        assert!(read_your_writes_violations(&ok).is_empty());
        let stale = [op(1, true, Some(2), 0, 10), op(1, false, Some(1), 20, 30)];
        assert_eq!(read_your_writes_violations(&stale).len(), 1);
        let concurrent = [op(1, true, Some(2), 0, 25), op(1, false, Some(1), 20, 30)];
        assert!(read_your_writes_violations(&concurrent).is_empty());
    }

    #[test]
    fn reads_never_go_back_in_time() {
        let ok = [op(1, false, Some(2), 0, 10), op(1, false, Some(3), 20, 30)];
        assert!(monotonic_read_violations(&ok).is_empty());
        let back = [op(1, false, Some(3), 0, 10), op(1, false, Some(2), 20, 30)];
        assert_eq!(monotonic_read_violations(&back).len(), 1);
    }
}
