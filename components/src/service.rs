//! A service instance: a bounded worker pool with a bounded FIFO queue.
//!
//! A request takes a worker for its CPU time (drawn from `service_time`), then, for read and
//! write routes, for a call to the store shard that owns its key, with a timeout and a bounded
//! number of retries. A request that finds every worker busy and the queue full is shed with 503.

use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::deadline::DeadlineQueue;
use crate::keyspace::shard_for;
use crate::metrics::{CounterId, HistId, LevelId};
use crate::msg::{
    Msg, Request, Response, Route, Status, StoreOp, StoreRequest, StoreResult, Timer,
};
use crate::rng::{ms_to_ns, Dist};
use crate::scaler::ScalerMsg;
use serde::Deserialize;
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Worker threads per instance.
    pub workers: u32,
    /// Requests waiting for a worker beyond which new ones are shed with 503.
    pub queue_capacity: u32,
    /// CPU time per request.
    pub service_time: Dist,
    /// Timeout of one store call.
    pub store_timeout_ms: f64,
    /// Store calls retried after an error or timeout (so at most 1 + retries calls).
    pub store_retries: u32,
    /// Pause before a retry.
    pub retry_backoff_ms: f64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            workers: 8,
            queue_capacity: 64,
            service_time: Dist::Exponential { mean_ms: 5.0 },
            store_timeout_ms: 1_000.0,
            store_retries: 2,
            retry_backoff_ms: 10.0,
        }
    }
}

impl ServiceConfig {
    /// Ranges: `workers` 1-65,536; `queue_capacity` 0-10,000,000; `service_time` a duration
    /// distribution; `store_timeout_ms` 1-1e9; `store_retries` 0-100; `retry_backoff_ms` 0-1e9.
    pub fn validate(&self) -> Checked {
        config::count("workers", u64::from(self.workers), 1, 65_536)?;
        config::count(
            "queue_capacity",
            u64::from(self.queue_capacity),
            0,
            10_000_000,
        )?;
        config::nested("service_time", self.service_time.validate())?;
        config::ms("store_timeout_ms", self.store_timeout_ms, 1.0)?;
        config::count("store_retries", u64::from(self.store_retries), 0, 100)?;
        config::ms("retry_backoff_ms", self.retry_backoff_ms, 0.0)
    }
}

#[derive(Clone, Copy, Debug)]
struct Job {
    from: NodeId,
    request: Request,
    arrived_ns: u64,
}

#[derive(Clone, Copy, Debug)]
struct Busy {
    job: Job,
    /// Store calls made so far for this job (0 while on CPU).
    attempt: u32,
    /// The outstanding store call, unique for the life of this instance.
    call: u64,
    waiting_store: bool,
}

struct Ids {
    requests: CounterId,
    shed: CounterId,
    completed: CounterId,
    store_calls: CounterId,
    store_timeouts: CounterId,
    store_errors: CounterId,
    store_redirects: CounterId,
    queue_wait: HistId,
    sojourn: HistId,
    sojourn_sum: CounterId,
    in_system: LevelId,
    busy_workers: LevelId,
    by_route: [CounterId; 3],
    cpu_ns: CounterId,
    store_retries: CounterId,
    probes: CounterId,
    scrapes: CounterId,
    terminations: CounterId,
    queue_length: LevelId,
}

pub struct Service {
    config: ServiceConfig,
    /// The primary of each shard, and the epoch that says so (routes only move forward).
    shards: Vec<NodeId>,
    shard_epochs: Vec<u64>,
    /// The version of the shard layout (bumped by resharding).
    layout_epoch: u64,
    workers: Vec<Option<Busy>>,
    idle: Vec<u32>,
    queue: VecDeque<Job>,
    deadlines: DeadlineQueue<(u32, u64)>,
    due: Vec<(u32, u64)>,
    calls_issued: u64,
    ids: Option<Ids>,
    /// CPU time taken by requests since this process started (what a kubelet reports).
    cpu_ns_total: u64,
    /// Requests answered since this process started.
    answered_total: u64,
    /// Who sent SIGTERM: the instance drains, then says so to it.
    terminating: Option<NodeId>,
}

impl Service {
    /// A service instance calling the store shards `shards` (in keyspace order).
    pub fn new(config: ServiceConfig, shards: &[NodeId]) -> Service {
        let n = config.workers as usize;
        Service {
            shards: shards.to_vec(),
            shard_epochs: vec![0; shards.len()],
            layout_epoch: 0,
            workers: vec![None; n],
            idle: (0..n as u32).rev().collect(),
            queue: VecDeque::new(),
            deadlines: DeadlineQueue::new(),
            due: Vec::new(),
            calls_issued: 0,
            ids: None,
            cpu_ns_total: 0,
            answered_total: 0,
            terminating: None,
            config,
        }
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn count(&self, ctx: &mut dyn Context, id: fn(&Ids) -> CounterId) {
        let c = id(self.ids());
        ctx.metrics().add(c, 1);
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    fn on_request(&mut self, ctx: &mut dyn Context, from: NodeId, request: Request) {
        self.count(ctx, |i| i.requests);
        let route = self.ids().by_route[request.route as usize];
        ctx.metrics().add(route, 1);
        let job = Job {
            from,
            request,
            arrived_ns: ctx.now_ns(),
        };
        if let Some(w) = self.idle.pop() {
            self.enter(ctx);
            return self.begin(ctx, w, job);
        }
        if self.queue.len() < self.config.queue_capacity as usize {
            self.enter(ctx);
            self.queue.push_back(job);
            let (q, now) = (self.ids().queue_length, ctx.now_ns());
            ctx.metrics().shift(q, now, 1);
            return;
        }
        self.count(ctx, |i| i.shed);
        tracing::debug!(
            request = request.id,
            queue = self.queue.len(),
            "shed: queue full"
        );
        let reply = Response {
            id: request.id,
            status: Status::Unavailable,
            value: None,
        };
        ctx.send(from, Msg::Response(reply));
    }

    fn enter(&self, ctx: &mut dyn Context) {
        let (l, now) = (self.ids().in_system, ctx.now_ns());
        ctx.metrics().shift(l, now, 1);
    }

    fn begin(&mut self, ctx: &mut dyn Context, worker: u32, job: Job) {
        let now = ctx.now_ns();
        let (wait, busy) = (self.ids().queue_wait, self.ids().busy_workers);
        ctx.metrics().record(wait, now - job.arrived_ns);
        ctx.metrics().shift(busy, now, 1);
        let mut cpu_ns = self.config.service_time.sample_ns(ctx.rng());
        if ctx.fault("service.slow_request") {
            cpu_ns = cpu_ns.saturating_mul(10);
        }
        self.cpu_ns_total += cpu_ns;
        let c = self.ids().cpu_ns;
        ctx.metrics().add(c, cpu_ns);
        self.workers[worker as usize] = Some(Busy {
            job,
            attempt: 0,
            call: 0,
            waiting_store: false,
        });
        ctx.set_timer(cpu_ns, Timer::WorkerDone { worker });
    }

    fn cpu_done(&mut self, ctx: &mut dyn Context, worker: u32) {
        let busy = self.workers[worker as usize].expect("a worker finishing CPU is busy");
        match busy.job.request.route {
            Route::Static => self.finish(ctx, worker, Status::Ok, None),
            Route::Read | Route::Write => self.call_store(ctx, worker),
        }
    }

    /// Store request ids carry the worker in the low 16 bits and the call number above.
    fn call_store(&mut self, ctx: &mut dyn Context, worker: u32) {
        self.calls_issued += 1;
        let call = self.calls_issued;
        let busy = self.workers[worker as usize].as_mut().expect("busy worker");
        busy.attempt += 1;
        busy.call = call;
        busy.waiting_store = true;
        let r = busy.job.request;
        let op = match r.route {
            Route::Write => StoreOp::Write {
                key: r.key,
                value: r.value,
            },
            _ => StoreOp::Read { key: r.key },
        };
        let shard = self.shards[shard_for(r.key, self.shards.len())];
        let id = (call << 16) | u64::from(worker);
        ctx.send(shard, Msg::Store(StoreRequest { id, op }));
        self.count(ctx, |i| i.store_calls);
        let deadline = ctx.now_ns() + ms_to_ns(self.config.store_timeout_ms);
        self.deadlines.push(ctx, deadline, (worker, call));
    }

    /// The store call of `worker` failed: retry after the backoff, or give up with `status`.
    fn store_failed(&mut self, ctx: &mut dyn Context, worker: u32, status: Status) {
        let busy = self.workers[worker as usize].as_mut().expect("busy worker");
        busy.waiting_store = false;
        if busy.attempt <= self.config.store_retries {
            let c = self.ids().store_retries;
            ctx.metrics().add(c, 1);
            let backoff = ms_to_ns(self.config.retry_backoff_ms);
            ctx.set_timer(backoff, Timer::RetryStore { worker });
        } else {
            self.finish(ctx, worker, status, None);
        }
    }

    fn on_store_reply(&mut self, ctx: &mut dyn Context, id: u64, result: StoreResult) {
        let worker = (id & 0xffff) as u32;
        let call = id >> 16;
        let current = self.workers.get(worker as usize).copied().flatten();
        let Some(busy) = current else { return };
        if !busy.waiting_store || busy.call != call {
            return; // an answer to a call that already timed out
        }
        match result {
            StoreResult::Value(v) => self.finish(ctx, worker, Status::Ok, v),
            StoreResult::Written { .. } => self.finish(ctx, worker, Status::Ok, None),
            StoreResult::CasFailed { current } => self.finish(ctx, worker, Status::Ok, current),
            StoreResult::Error => {
                self.count(ctx, |i| i.store_errors);
                self.store_failed(ctx, worker, Status::Internal);
            }
            StoreResult::Redirect { primary } => {
                self.count(ctx, |i| i.store_redirects);
                let key = busy.job.request.key;
                if let Some(p) = primary {
                    let shard = shard_for(key, self.shards.len());
                    self.shards[shard] = p;
                }
                self.store_failed(ctx, worker, Status::Unavailable);
            }
        }
    }

    /// A resharding cut-over: the keyspace is split over a new list of shards.
    fn on_reshard(&mut self, epoch: u64, shards: Vec<NodeId>) {
        if epoch > self.layout_epoch && !shards.is_empty() {
            self.layout_epoch = epoch;
            self.shard_epochs = vec![0; shards.len()];
            self.shards = shards;
        }
    }

    /// The orchestrator moved a shard's primary.
    fn on_route(&mut self, shard: u32, epoch: u64, primary: NodeId) {
        let i = shard as usize;
        if i < self.shards.len() && epoch > self.shard_epochs[i] {
            self.shards[i] = primary;
            self.shard_epochs[i] = epoch;
        }
    }

    fn on_deadlines(&mut self, ctx: &mut dyn Context) {
        let mut due = std::mem::take(&mut self.due);
        self.deadlines.fire(ctx, &mut due);
        for &(worker, call) in &due {
            let busy = self.workers[worker as usize];
            if busy.is_some_and(|b| b.waiting_store && b.call == call) {
                tracing::debug!(worker, call, "store call timed out");
                self.count(ctx, |i| i.store_timeouts);
                self.store_failed(ctx, worker, Status::GatewayTimeout);
            }
        }
        due.clear();
        self.due = due;
    }

    fn finish(&mut self, ctx: &mut dyn Context, worker: u32, status: Status, value: Option<u64>) {
        let busy = self.workers[worker as usize]
            .take()
            .expect("finishing a busy worker");
        let now = ctx.now_ns();
        let job = busy.job;
        ctx.send(
            job.from,
            Msg::Response(Response {
                id: job.request.id,
                status,
                value,
            }),
        );
        let sojourn = now - job.arrived_ns;
        let ids = self.ids();
        let (s, sum, done, l, b) = (
            ids.sojourn,
            ids.sojourn_sum,
            ids.completed,
            ids.in_system,
            ids.busy_workers,
        );
        let m = ctx.metrics();
        m.record(s, sojourn);
        m.add(sum, sojourn);
        m.add(done, 1);
        m.shift(l, now, -1);
        m.shift(b, now, -1);
        self.answered_total += 1;
        match self.queue.pop_front() {
            Some(next) => {
                let q = self.ids().queue_length;
                ctx.metrics().shift(q, now, -1);
                self.begin(ctx, worker, next)
            }
            None => {
                self.idle.push(worker);
                self.maybe_drained(ctx);
            }
        }
    }

    /// The platform's messages: metrics scrapes, readiness probes and SIGTERM.
    fn on_scaler(&mut self, ctx: &mut dyn Context, from: NodeId, msg: ScalerMsg) {
        match msg {
            ScalerMsg::Scrape { seq } => {
                self.count(ctx, |i| i.scrapes);
                let usage = ScalerMsg::Usage {
                    seq,
                    cpu_ns_total: self.cpu_ns_total,
                    answered_total: self.answered_total,
                    workers: self.config.workers,
                };
                ctx.send(from, Msg::Scaler(usage));
            }
            ScalerMsg::Probe { seq } => {
                self.count(ctx, |i| i.probes);
                ctx.send(from, Msg::Scaler(ScalerMsg::ProbeOk { seq }))
            }
            ScalerMsg::Terminate => {
                self.count(ctx, |i| i.terminations);
                tracing::debug!(in_flight = self.in_flight(), "SIGTERM: draining");
                self.terminating = Some(from);
                self.maybe_drained(ctx);
            }
            _ => {}
        }
    }

    fn in_flight(&self) -> usize {
        self.queue.len() + self.workers.iter().filter(|w| w.is_some()).count()
    }

    /// After SIGTERM, once nothing is queued or running: tell the platform the process may go.
    /// It keeps serving what still arrives until then (endpoint removal takes a moment to
    /// reach every gateway).
    fn maybe_drained(&mut self, ctx: &mut dyn Context) {
        if let Some(platform) = self.terminating {
            if self.in_flight() == 0 {
                ctx.send(platform, Msg::Scaler(ScalerMsg::Drained));
            }
        }
    }
}

impl Component for Service {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            requests: m.counter("service_requests_total"),
            shed: m.counter("service_shed_total"),
            completed: m.counter("service_completed_total"),
            store_calls: m.counter("service_store_calls_total"),
            store_timeouts: m.counter("service_store_timeouts_total"),
            store_errors: m.counter("service_store_errors_total"),
            store_redirects: m.counter("service_store_redirects_total"),
            queue_wait: m.histogram("service_queue_wait_ns"),
            sojourn: m.histogram("service_sojourn_ns"),
            sojourn_sum: m.counter("service_sojourn_ns_sum"),
            in_system: m.level("service_in_system", "requests"),
            busy_workers: m.level("service_busy_workers", "workers"),
            by_route: [
                m.counter("service_requests_static_total"),
                m.counter("service_requests_read_total"),
                m.counter("service_requests_write_total"),
            ],
            cpu_ns: m.counter("service_cpu_ns_total"),
            store_retries: m.counter("service_store_retries_total"),
            probes: m.counter("service_probes_total"),
            scrapes: m.counter("service_scrapes_total"),
            terminations: m.counter("service_terminations_total"),
            queue_length: m.level("service_queue_length", "requests"),
        });
        let workers = m.gauge("service_workers", "workers");
        m.set(workers, f64::from(self.config.workers));
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(r) => self.on_request(ctx, from, r),
            Msg::StoreReply(r) => self.on_store_reply(ctx, r.id, r.result),
            Msg::Scaler(m) => self.on_scaler(ctx, from, m),
            Msg::Repl(crate::repl::ReplMsg::Route {
                shard,
                epoch,
                primary,
            }) => self.on_route(shard, epoch, primary),
            Msg::Repl(crate::repl::ReplMsg::Reshard { epoch, shards }) => {
                self.on_reshard(epoch, shards)
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::WorkerDone { worker } => self.cpu_done(ctx, worker),
            Timer::RetryStore { worker } => self.call_store(ctx, worker),
            Timer::Deadlines => self.on_deadlines(ctx),
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
    use crate::msg::StoreResponse;
    use crate::testing::TestContext;

    fn request(id: u64, route: Route) -> Msg {
        Msg::Request(Request {
            id,
            route,
            key: 3,
            value: 30,
        })
    }

    fn one_worker() -> (Service, TestContext) {
        let config = ServiceConfig {
            workers: 1,
            queue_capacity: 1,
            service_time: Dist::Constant { ms: 1.0 },
            store_timeout_ms: 100.0,
            store_retries: 0,
            retry_backoff_ms: 0.0,
        };
        let mut ctx = TestContext::new(1);
        let mut s = Service::new(config, &[7]);
        s.start(&mut ctx);
        (s, ctx)
    }

    fn statuses(ctx: &mut TestContext) -> Vec<(u64, Status)> {
        ctx.take_sent()
            .into_iter()
            .filter_map(|(_, m)| match m {
                Msg::Response(r) => Some((r.id, r.status)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_full_queue_sheds_with_503() {
        let (mut s, mut ctx) = one_worker();
        for id in 1..=3 {
            s.on_message(&mut ctx, 0, request(id, Route::Static));
        }
        assert_eq!(statuses(&mut ctx), vec![(3, Status::Unavailable)]);
    }

    #[test]
    fn a_stale_store_deadline_never_times_out_the_next_job_on_the_same_worker() {
        let (mut s, mut ctx) = one_worker();
        s.on_message(&mut ctx, 0, request(1, Route::Read));
        let t = ctx.pop_timer().unwrap(); // CPU done at 1 ms: the store call goes out
        s.on_timer(&mut ctx, t);
        let (_, Msg::Store(call)) = ctx.take_sent()[0] else {
            panic!("expected a store call")
        };
        let reply = StoreResponse {
            id: call.id,
            result: StoreResult::Value(Some(30)),
        };
        s.on_message(&mut ctx, 7, Msg::StoreReply(reply));
        assert_eq!(statuses(&mut ctx), vec![(1, Status::Ok)]);
        // The next job takes the same worker and calls the store at 2 ms; the first call's
        // deadline (101 ms) must not fail it, only its own (102 ms) may.
        s.on_message(&mut ctx, 0, request(2, Route::Read));
        let t = ctx.pop_timer().unwrap();
        s.on_timer(&mut ctx, t);
        ctx.take_sent();
        let t = ctx.pop_timer().unwrap();
        assert_eq!(t, Timer::Deadlines);
        assert_eq!(ctx.now_ns, 101_000_000);
        s.on_timer(&mut ctx, t);
        assert!(
            statuses(&mut ctx).is_empty(),
            "the first call's deadline failed the second job"
        );
        let t = ctx.pop_timer().unwrap();
        s.on_timer(&mut ctx, t);
        assert_eq!(statuses(&mut ctx), vec![(2, Status::GatewayTimeout)]);
    }
}
