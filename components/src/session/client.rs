//! The session workload: users read and write their session keys, following MOVED and ASK.
//!
//! The client checks read-your-writes and monotonic reads as operations complete, with state
//! per key (not per operation, so memory does not grow with time): each key's highest
//! acknowledged write (value, the master that stored it, its replication offset) and highest
//! read. A read is judged against what was known when it was sent. Violations are kept (up to
//! [`VIOLATIONS_KEPT`]) for the sessions check, which excuses those that a failover's
//! replication window explains.

use super::slot::{user_slot, SLOTS};
use super::SessionMsg;
use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::deadline::DeadlineQueue;
use crate::detmap::Slab;
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
    /// Ranges: `rps` above 0 up to 1,000,000; `users` 1-100,000,000; `set_fraction` 0-1;
    /// `ttl_ms` 0-1e9 (0: no expiry); `timeout_ms` 1-1e9; `max_redirects` 0-100.
    pub fn validate(&self) -> Checked {
        config::range("rps", self.rps, f64::MIN_POSITIVE, 1e6)?;
        config::count("users", self.users, 1, 100_000_000)?;
        config::fraction("set_fraction", self.set_fraction)?;
        config::ms("ttl_ms", self.ttl_ms, 0.0)?;
        config::ms("timeout_ms", self.timeout_ms, 1.0)?;
        config::count("max_redirects", u64::from(self.max_redirects), 0, 100)
    }
}

/// The highest acknowledged write of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionAck {
    pub value: u64,
    /// The master that stored it, as change `offset` of its replication stream.
    pub master: NodeId,
    pub offset: u64,
    /// When the client saw the acknowledgement (its local clock).
    pub at_ns: u64,
}

/// What the client knows of one session key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionKey {
    /// The value the next write of this key carries (values per key only grow).
    pub next_value: u64,
    pub acked: Option<SessionAck>,
    /// The highest value a read returned, and the node that served it.
    pub read: Option<(u64, NodeId)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A read returned an older value (or none) although a newer write of the key had been
    /// acknowledged before the read was sent.
    ReadYourWrites,
    /// A read returned an older value than a read of the key that completed before it was sent.
    MonotonicRead,
}

/// One read that broke a session guarantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub key: u64,
    /// What the read returned, and who served it.
    pub value: Option<u64>,
    pub served_by: NodeId,
    pub invoke_ns: u64,
    /// Read-your-writes: the acknowledged write the read missed.
    pub missed: Option<SessionAck>,
    /// Monotonic reads: the earlier read it went back from (value, who served it).
    pub earlier: Option<(u64, NodeId)>,
}

/// Violations kept in full; beyond this they are only counted.
pub const VIOLATIONS_KEPT: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Pending {
    key: u64,
    set: bool,
    value: u64,
    invoke_ns: u64,
    redirects: u32,
    /// After an ASK: the node to ask, once, for this request only.
    ask_to: Option<NodeId>,
    /// For reads: what was known of the key when the read was sent.
    acked_at_invoke: Option<SessionAck>,
    read_at_invoke: Option<(u64, NodeId)>,
}

const TICK_ARRIVAL: u32 = 1;

pub struct SessionClient {
    config: SessionClientConfig,
    slot_map: Vec<NodeId>,
    replica_of: BTreeMap<NodeId, NodeId>,
    pending: Slab<Pending>,
    deadlines: DeadlineQueue<u64>,
    due: Vec<u64>,
    stop_ns: u64,
    /// (MOVED, ASK) redirect counters.
    ids: Option<(CounterId, CounterId)>,
    /// Every key used so far.
    pub keys: BTreeMap<u64, SessionKey>,
    /// Operations completed (answered with a value or stored).
    pub completed: u64,
    pub failed: u64,
    /// Guarantee violations seen (the first [`VIOLATIONS_KEPT`] of them), and how many in all.
    pub violations: Vec<Violation>,
    pub violations_total: u64,
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
            pending: Slab::new(),
            deadlines: DeadlineQueue::new(),
            due: Vec::new(),
            stop_ns,
            ids: None,
            keys: BTreeMap::new(),
            completed: 0,
            failed: 0,
            violations: Vec::new(),
            violations_total: 0,
        }
    }

    fn ttl_ns(&self) -> u64 {
        ms_to_ns(self.config.ttl_ms)
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
        let k = self.keys.entry(key).or_default();
        let value = if set {
            k.next_value += 1;
            k.next_value
        } else {
            0
        };
        let (acked_at_invoke, read_at_invoke) = (k.acked, k.read);
        let now = ctx.now_ns();
        let id = self.pending.insert(Pending {
            key,
            set,
            value,
            invoke_ns: now,
            redirects: 0,
            ask_to: None,
            acked_at_invoke,
            read_at_invoke,
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

    /// A write was stored by `master` as change `offset` of its replication stream.
    fn stored(&mut self, ctx: &mut dyn Context, id: u64, master: NodeId, offset: u64) {
        let Some(p) = self.pending.remove(id) else {
            return;
        };
        self.completed += 1;
        let ack = SessionAck {
            value: p.value,
            master,
            offset,
            at_ns: ctx.now_ns(),
        };
        let k = self.keys.entry(p.key).or_default();
        if k.acked.is_none_or(|a| a.value < ack.value) {
            k.acked = Some(ack);
        }
    }

    /// A read of `value` was served by `from`: judged against what was known when it was sent.
    fn read(&mut self, id: u64, from: NodeId, value: Option<u64>) {
        let Some(p) = self.pending.remove(id) else {
            return;
        };
        self.completed += 1;
        let got = value.unwrap_or(0);
        let ttl = self.ttl_ns();
        // A write whose time to live has run out may be gone: not a violation.
        let live = |a: &SessionAck| ttl == 0 || a.at_ns.saturating_add(ttl) > p.invoke_ns;
        let missed = p.acked_at_invoke.filter(|a| got < a.value && live(a));
        let earlier = p.read_at_invoke.filter(|&(x, _)| got < x);
        let mut found = Vec::new();
        if missed.is_some() {
            found.push(ViolationKind::ReadYourWrites);
        }
        if earlier.is_some() {
            found.push(ViolationKind::MonotonicRead);
        }
        for kind in found {
            self.violations_total += 1;
            if self.violations.len() < VIOLATIONS_KEPT {
                self.violations.push(Violation {
                    kind,
                    key: p.key,
                    value,
                    served_by: from,
                    invoke_ns: p.invoke_ns,
                    missed,
                    earlier,
                });
            }
        }
        let k = self.keys.entry(p.key).or_default();
        if value.is_some() && k.read.is_none_or(|(x, _)| x < got) {
            k.read = Some((got, from));
        }
    }

    fn on_session(&mut self, ctx: &mut dyn Context, from: NodeId, msg: SessionMsg) {
        match msg {
            SessionMsg::Value { id, value } => self.read(id, from, value),
            SessionMsg::Stored { id, offset } => self.stored(ctx, id, from, offset),
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

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        if let Msg::Session(m) = msg {
            self.on_session(ctx, from, m);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestContext;

    fn client() -> (SessionClient, TestContext) {
        let mut ctx = TestContext::new(9);
        let mut c = SessionClient::new(SessionClientConfig::default(), &[1], &[(1, 2)], u64::MAX);
        c.start(&mut ctx);
        ctx.timers.clear();
        (c, ctx)
    }

    fn pending(c: &mut SessionClient, key: u64, set: bool, value: u64, now: u64) -> u64 {
        let k = *c.keys.entry(key).or_default();
        c.pending.insert(Pending {
            key,
            set,
            value,
            invoke_ns: now,
            redirects: 0,
            ask_to: None,
            acked_at_invoke: k.acked,
            read_at_invoke: k.read,
        })
    }

    #[test]
    fn a_read_sent_after_an_acknowledged_write_must_see_it() {
        let (mut c, mut ctx) = client();
        let w = pending(&mut c, 7, true, 2, 0);
        let concurrent = pending(&mut c, 7, false, 0, 5);
        c.stored(&mut ctx, w, 1, 40);
        c.read(concurrent, 1, Some(1));
        assert_eq!(
            c.violations_total, 0,
            "a read sent before the ack may miss it"
        );
        let r = pending(&mut c, 7, false, 0, 20);
        c.read(r, 1, Some(1));
        assert_eq!(c.violations_total, 1);
        let v = c.violations[0];
        assert_eq!(v.kind, ViolationKind::ReadYourWrites);
        assert_eq!(v.missed.map(|a| (a.master, a.offset)), Some((1, 40)));
    }

    #[test]
    fn reads_never_go_back_in_time() {
        let (mut c, _) = client();
        let first = pending(&mut c, 3, false, 0, 0);
        c.read(first, 1, Some(3));
        let second = pending(&mut c, 3, false, 0, 10);
        c.read(second, 2, Some(2));
        assert_eq!(c.violations_total, 1);
        assert_eq!(c.violations[0].kind, ViolationKind::MonotonicRead);
        assert_eq!(c.violations[0].earlier, Some((3, 1)));
    }
}
