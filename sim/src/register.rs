//! A Jepsen-style register workload: a few processes read, write and compare-and-set a few
//! keys directly on the store shards, and record every operation's invocation and completion,
//! so that the linearizability checker can judge each key's history.
//!
//! Semantics follow Jepsen's: a timeout or an error is an unknown outcome (the operation may
//! have taken effect), and the process then continues under a new process id; a redirect
//! ("not the primary") means the operation did not happen.

use crate::lincheck::{History, Op, Operation};
use minitwin_components::config::{self, Checked};
use minitwin_components::keyspace::shard_for;
use minitwin_components::msg::{StoreOp, StoreRequest, StoreResult};
use minitwin_components::rng::ms_to_ns;
use minitwin_components::{Component, Context, Msg, NodeId, Timer};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Registers (keys) under test.
    pub keys: u64,
    /// Concurrent client processes.
    pub processes: u32,
    /// Mean pause between a process's operations.
    pub think_ms: f64,
    /// A process gives up on an operation after this long (unknown outcome).
    pub timeout_ms: f64,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            keys: 3,
            processes: 5,
            think_ms: 20.0,
            timeout_ms: 1_000.0,
        }
    }
}

impl RegisterConfig {
    /// Ranges: `keys` 1-1,000; `processes` 1-1,000; `think_ms` 0-1e9; `timeout_ms` 1-1e9.
    pub fn validate(&self) -> Checked {
        config::count("keys", self.keys, 1, 1_000)?;
        config::count("processes", u64::from(self.processes), 1, 1_000)?;
        config::ms("think_ms", self.think_ms, 0.0)?;
        config::ms("timeout_ms", self.timeout_ms, 1.0)
    }
}

/// Register keys live far above user ids.
pub const KEY_BASE: u64 = 1 << 60;

#[derive(Clone, Copy, Debug)]
struct InFlight {
    key: u64,
    op: Op,
    call_ns: u64,
    /// Which attempt this is, so late answers and stale timeouts are ignored.
    seq: u64,
}

const TICK_NEXT: u32 = 1 << 20; // + process index

pub struct RegisterClient {
    config: RegisterConfig,
    shards: Vec<NodeId>,
    stop_ns: u64,
    /// Per process slot: its current Jepsen process id and operation in flight.
    process_ids: Vec<u64>,
    in_flight: Vec<Option<InFlight>>,
    next_process_id: u64,
    next_value: u64,
    seq: u64,
    /// Completed and unknown-outcome operations, per key.
    pub histories: BTreeMap<u64, History>,
}

impl RegisterClient {
    pub fn new(config: RegisterConfig, shards: &[NodeId], stop_ns: u64) -> RegisterClient {
        let n = config.processes as usize;
        RegisterClient {
            shards: shards.to_vec(),
            stop_ns,
            process_ids: (0..n as u64).collect(),
            in_flight: vec![None; n],
            next_process_id: n as u64,
            next_value: 0,
            seq: 0,
            histories: BTreeMap::new(),
            config,
        }
    }

    fn think(&mut self, ctx: &mut dyn Context, p: usize) {
        self.pause(ctx, p, self.config.think_ms);
    }

    fn pause(&mut self, ctx: &mut dyn Context, p: usize, mean_ms: f64) {
        let pause = ms_to_ns(ctx.rng().exp(mean_ms));
        if ctx.now_ns() + pause < self.stop_ns {
            ctx.set_timer(
                pause,
                Timer::Tick {
                    kind: TICK_NEXT + p as u32,
                },
            );
        }
    }

    fn invoke(&mut self, ctx: &mut dyn Context, p: usize) {
        let key = KEY_BASE + ctx.rng().below(self.config.keys);
        let op = match ctx.rng().below(3) {
            0 => Op::Read(None),
            1 => {
                self.next_value += 1;
                Op::Write(self.next_value)
            }
            _ => {
                // Expect one of the last few values written, so that some CAS succeed.
                let from = self.next_value.saturating_sub(ctx.rng().below(3)).max(1);
                self.next_value += 1;
                Op::Cas {
                    from,
                    to: self.next_value,
                    ok: None,
                }
            }
        };
        self.seq += 1;
        let (now, seq) = (ctx.now_ns(), self.seq);
        self.in_flight[p] = Some(InFlight {
            key,
            op,
            call_ns: now,
            seq,
        });
        self.send(
            ctx,
            p,
            key,
            op,
            self.shards[shard_for(key, self.shards.len())],
        );
        let timeout = ms_to_ns(self.config.timeout_ms);
        ctx.set_timer(
            timeout,
            Timer::Delayed {
                id: (seq << 16) | p as u64,
            },
        );
    }

    fn send(&self, ctx: &mut dyn Context, p: usize, key: u64, op: Op, to: NodeId) {
        let store_op = match op {
            Op::Read(_) => StoreOp::Read { key },
            Op::Write(value) => StoreOp::Write { key, value },
            Op::Cas { from, to, .. } => StoreOp::Cas {
                key,
                expect: Some(from),
                new: to,
            },
        };
        let id = (self.in_flight[p].expect("in flight").seq << 16) | p as u64;
        ctx.send(to, Msg::Store(StoreRequest { id, op: store_op }));
    }

    fn record(&mut self, p: usize, f: InFlight, op: Op, ret: Option<u64>) {
        let h = self.histories.entry(f.key).or_default();
        let origin = h.ops.len();
        h.ops.push(Operation {
            process: self.process_ids[p],
            call: f.call_ns,
            ret,
            op,
            origin,
        });
    }

    fn on_reply(&mut self, ctx: &mut dyn Context, id: u64, result: StoreResult) {
        let (p, seq) = ((id & 0xffff) as usize, id >> 16);
        let Some(f) = self
            .in_flight
            .get(p)
            .copied()
            .flatten()
            .filter(|f| f.seq == seq)
        else {
            return;
        };
        let now = ctx.now_ns();
        let done = match (f.op, result) {
            (Op::Read(_), StoreResult::Value(v)) => Some(Op::Read(v)),
            (Op::Write(v), StoreResult::Written { .. }) => Some(Op::Write(v)),
            (Op::Cas { from, to, .. }, StoreResult::Written { .. }) => Some(Op::Cas {
                from,
                to,
                ok: Some(true),
            }),
            (Op::Cas { from, to, .. }, StoreResult::CasFailed { .. }) => Some(Op::Cas {
                from,
                to,
                ok: Some(false),
            }),
            (
                _,
                StoreResult::Redirect {
                    primary: Some(primary),
                },
            ) => {
                // Not applied: send the same operation to the primary, as the same invocation.
                let key = f.key;
                let shard = shard_for(key, self.shards.len());
                self.shards[shard] = primary;
                return self.send(ctx, p, key, f.op, primary);
            }
            (_, StoreResult::Redirect { primary: None }) => None,
            _ => {
                // An error: unknown outcome.
                self.unknown(ctx, p, f);
                return;
            }
        };
        self.in_flight[p] = None;
        if let Some(op) = done {
            self.record(p, f, op, Some(now));
        }
        self.think(ctx, p);
    }

    fn unknown(&mut self, ctx: &mut dyn Context, p: usize, f: InFlight) {
        self.in_flight[p] = None;
        if !matches!(f.op, Op::Read(_)) {
            self.record(p, f, f.op, None);
        }
        self.process_ids[p] = self.next_process_id;
        self.next_process_id += 1;
        // Back off as Jepsen's clients do: every unknown outcome widens the checker's search.
        let backoff_ms = 4.0 * self.config.timeout_ms;
        self.pause(ctx, p, backoff_ms);
    }
}

impl Component for RegisterClient {
    fn start(&mut self, ctx: &mut dyn Context) {
        for p in 0..self.in_flight.len() {
            self.think(ctx, p);
        }
    }

    fn on_message(&mut self, ctx: &mut dyn Context, _from: NodeId, msg: Msg) {
        if let Msg::StoreReply(r) = msg {
            self.on_reply(ctx, r.id, r.result);
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick { kind } if kind >= TICK_NEXT => {
                self.invoke(ctx, (kind - TICK_NEXT) as usize)
            }
            Timer::Delayed { id } => {
                let (p, seq) = ((id & 0xffff) as usize, id >> 16);
                if let Some(f) = self
                    .in_flight
                    .get(p)
                    .copied()
                    .flatten()
                    .filter(|f| f.seq == seq)
                {
                    self.unknown(ctx, p, f);
                }
            }
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
