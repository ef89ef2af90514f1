//! The store's query threads: with a `query_time`, each client request costs CPU time on one of
//! `query_threads` threads (cores, or InnoDB's thread concurrency), waits in FIFO order when all
//! are busy, and is refused with an error once `max_connections` requests are inside (MariaDB's
//! "Too many connections"). Without one, requests cost nothing, as before.

use super::Store;
use crate::context::{Context, NodeId};
use crate::msg::{StoreRequest, StoreResult, Timer};
use std::collections::VecDeque;

/// Requests in the store: running on a thread, or waiting for one.
#[derive(Default)]
pub(super) struct Queries {
    /// `running[t]`: the request on thread t.
    running: Vec<Option<(NodeId, StoreRequest, u64)>>,
    waiting: VecDeque<(NodeId, StoreRequest, u64)>,
}

impl Queries {
    fn inside(&self) -> usize {
        self.running.iter().filter(|r| r.is_some()).count() + self.waiting.len()
    }
}

impl Store {
    /// A client request arrives: run it now, on a thread, or queue it, or refuse it.
    pub(super) fn admit(&mut self, ctx: &mut dyn Context, from: NodeId, r: StoreRequest) {
        let now = ctx.now_ns();
        if self.config.query_time.is_none() {
            self.arrived_ns = now;
            return self.on_request(ctx, from, r);
        }
        let threads = self.config.query_threads as usize;
        if self.queries.running.len() < threads {
            self.queries.running.resize(threads, None);
        }
        if self.queries.inside() >= self.config.max_connections as usize {
            self.count(ctx, |i| i.refused);
            return Self::reply(ctx, from, r.id, StoreResult::Error);
        }
        match self.queries.running.iter().position(Option::is_none) {
            Some(t) => self.run_query(ctx, t, (from, r, now)),
            None => self.queries.waiting.push_back((from, r, now)),
        }
    }

    fn run_query(
        &mut self,
        ctx: &mut dyn Context,
        thread: usize,
        request: (NodeId, StoreRequest, u64),
    ) {
        let busy = self.ids().busy_threads;
        let now = ctx.now_ns();
        ctx.metrics().shift(busy, now, 1);
        self.queries.running[thread] = Some(request);
        let cost = self
            .config
            .query_time
            .as_ref()
            .expect("queries run only with a query_time")
            .sample_ns(ctx.rng());
        ctx.set_timer(
            cost,
            Timer::WorkerDone {
                worker: thread as u32,
            },
        );
    }

    /// Thread `thread` finished its query's CPU time: execute it, start the next waiting one.
    pub(super) fn query_done(&mut self, ctx: &mut dyn Context, thread: u32) {
        let thread = thread as usize;
        let Some((from, r, arrived_ns)) =
            self.queries.running.get_mut(thread).and_then(Option::take)
        else {
            return;
        };
        let busy = self.ids().busy_threads;
        let now = ctx.now_ns();
        ctx.metrics().shift(busy, now, -1);
        self.arrived_ns = arrived_ns;
        self.on_request(ctx, from, r);
        if let Some(next) = self.queries.waiting.pop_front() {
            self.run_query(ctx, thread, next);
        }
    }
}
