//! Speed of the kernel and of the end-to-end slice (criterion).
//!
//! - `kernel/timers` vs `bare_heap/timers`: 1,000 concurrent timer chains; each firing draws a
//!   delay from a ChaCha8 stream and schedules the next. The bare loop is a `BinaryHeap` of
//!   (time, sequence, payload) doing the same draws: the ratio is the kernel's overhead.
//! - `kernel/messages`: 1,000 messages bouncing between two nodes through the network model.
//! - `slice/steady`: the `steady` scenario end to end (edge, services, shards, disk), reported
//!   as simulated requests per wall-second.
//! - `slice/full`: the `full` scenario (edge, services, sessions, 4 shards x 3 replicas,
//!   mirroring); session commands count as requests (each is counted once, at its node).
//!
//! Run: `cargo bench --bench kernel` (add `-- --quick` for a fast look).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use minitwin_components::rng::{Dist, Rng};
use minitwin_components::{Component, Context, Msg, NodeId, Timer};
use minitwin_sim::disk::DiskConfig;
use minitwin_sim::kernel::{Buggify, NodeSpec, Sim};
use minitwin_sim::net::{LinkConfig, Network};
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const CHAINS: u32 = 1_000;
const EVENTS: u64 = 1_000_000;

struct Ticker;

impl Component for Ticker {
    fn start(&mut self, ctx: &mut dyn Context) {
        for kind in 0..CHAINS {
            let d = ctx.rng().below(1_000_000);
            ctx.set_timer(d, Timer::Tick { kind });
        }
    }
    fn on_message(&mut self, _: &mut dyn Context, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        let d = ctx.rng().below(1_000_000);
        ctx.set_timer(d, timer);
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct Echo {
    peer: NodeId,
    serve: bool,
}

impl Component for Echo {
    fn start(&mut self, ctx: &mut dyn Context) {
        if self.serve {
            return;
        }
        for id in 0..u64::from(CHAINS) {
            let msg = Msg::Request(minitwin_components::msg::Request {
                id,
                route: minitwin_components::msg::Route::Read,
                key: id,
                value: 0,
            });
            ctx.send(self.peer, msg);
        }
    }
    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        ctx.send(from, msg);
    }
    fn on_timer(&mut self, _: &mut dyn Context, _: Timer) {}
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn sim_of(factories: Vec<minitwin_sim::kernel::Factory>) -> Sim {
    let n = factories.len();
    let link = LinkConfig {
        latency: Dist::Exponential { mean_ms: 0.5 },
        loss: 0.0,
    };
    let rngs = (0..n).map(|i| Rng::stream(1, &format!("net{i}"))).collect();
    let net = Network::new(1, vec![0; n], vec![link], rngs);
    let specs = factories
        .into_iter()
        .enumerate()
        .map(|(i, factory)| NodeSpec {
            name: format!("n{i}"),
            zone: 0,
            factory,
            disk: DiskConfig::default(),
            clock_offset_ns: 0,
            starts_up: true,
        })
        .collect();
    Sim::new(1, specs, net, Buggify::default(), false)
}

/// Runs until `EVENTS` events have been processed.
fn drive(sim: &mut Sim) {
    let mut horizon = 0;
    while sim.events_total() < EVENTS {
        horizon += 10_000_000;
        sim.run_until(horizon, &mut |_| {});
    }
}

fn bare_heap() -> u64 {
    let mut rng = Rng::stream(1, "bare");
    let mut heap: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::new();
    let mut seq = 0;
    for kind in 0..CHAINS {
        seq += 1;
        heap.push(Reverse((rng.below(1_000_000), seq, kind)));
    }
    let mut processed = 0;
    let mut checksum = 0u64;
    while processed < EVENTS {
        let Reverse((t, _, kind)) = heap.pop().expect("chains never end");
        checksum = checksum.wrapping_add(u64::from(kind));
        seq += 1;
        heap.push(Reverse((t + rng.below(1_000_000), seq, kind)));
        processed += 1;
    }
    checksum
}

fn kernel(c: &mut Criterion) {
    let mut g = c.benchmark_group("events");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("bare_heap/timers", |b| b.iter(bare_heap));
    g.bench_function("kernel/timers", |b| {
        b.iter_batched(
            || sim_of(vec![Box::new(|| Box::new(Ticker))]),
            |mut sim| drive(&mut sim),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("kernel/messages", |b| {
        b.iter_batched(
            || {
                sim_of(vec![
                    Box::new(|| {
                        Box::new(Echo {
                            peer: 1,
                            serve: false,
                        })
                    }),
                    Box::new(|| {
                        Box::new(Echo {
                            peer: 0,
                            serve: true,
                        })
                    }),
                ])
            },
            |mut sim| drive(&mut sim),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Simulated requests of a run: the users' requests plus the session client's operations.
fn requests(o: &minitwin_sim::outcome::RunOutcome) -> u64 {
    let sessions = o
        .rows
        .iter()
        .filter(|r| r.metric == "session_commands_total")
        .map(|r| r.value as u64)
        .sum::<u64>();
    o.summary.requests_total + sessions
}

fn slice(c: &mut Criterion) {
    let mut g = c.benchmark_group("slice");
    g.sample_size(10);
    for name in ["steady", "full"] {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
        let s = scenario::load(&path).expect("shipped scenario");
        let n = requests(&run(&s, 1, &RunOptions::default(), &mut |_| {}));
        g.throughput(Throughput::Elements(n));
        g.bench_function(name, |b| {
            b.iter(|| run(&s, 1, &RunOptions::default(), &mut |_| {}))
        });
    }
    g.finish();
}

criterion_group!(benches, kernel, slice);
criterion_main!(benches);
