//! One run: scenario -> plan -> world -> run to the end -> evidence -> checks -> outcome.
//! Each step hands the next a value; none reaches back.

use crate::checks::{self, durability, Checker};
use crate::evidence::Evidence;
use crate::gauges::{Provisioning, Sampler};
use crate::kernel::Progress;
use crate::outcome::{self, RunOutcome};
use crate::scenario::Scenario;
use crate::series::{SecondRow, Series};
use crate::tiers::{RunView, Stream, TierReport, TIERS};
use crate::trace::TraceEntry;
use crate::world::{build, s_to_ns, World};
use minitwin_components::Observation;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep every event for divergence reports (slow; tests only).
    pub record_trace: bool,
    /// Checked between stretches of simulated time: when it turns true (an interrupt), the run
    /// stops there and its outcome says it is partial.
    pub stop: Option<&'static AtomicBool>,
}

/// When the first fault strikes (simulated seconds), if the scenario has faults.
pub fn first_fault_s(scenario: &Scenario) -> Option<f64> {
    scenario.faults.iter().map(|f| f.at_s()).reduce(f64::min)
}

/// Simulated time between two hand-overs of the users' finished seconds.
const CHUNK_NS: u64 = 10_000_000_000;
const SECOND_NS: u64 = 1_000_000_000;

/// Runs `scenario` with `seed` to its end.
pub fn run(
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> RunOutcome {
    run_with(scenario, seed, options, progress, &mut |_, _| {})
}

/// [`run`], handing every simulated second of the users' time series to `on_second` as soon as
/// it is final, with its latency histogram ([`crate::workload::Second::log2_buckets`]): the
/// CLI streams them to `timeseries.csv`, the replay merges them into windows.
pub fn run_with(
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
    on_second: &mut dyn FnMut(&SecondRow, &[u32]),
) -> RunOutcome {
    let mut world = build(scenario, seed, options.record_trace);
    for tier in TIERS {
        tier.prepare(scenario, &mut world.sim, &world.plan);
    }
    let checkers = watch(&mut world, scenario);
    let promoted_ns = Rc::new(RefCell::new(None));
    install_observer(&mut world, checkers.clone(), promoted_ns.clone());
    let mut series = Series::new(first_fault_s(scenario));
    if let Some(slo) = crate::scenario::SloConfig::of(scenario) {
        series = series.with_slo(crate::series::MinuteSlo {
            p99_ms: slo.p99_ms,
            error_ratio: slo.error_ratio,
            from_s: scenario.warmup_s,
        });
    }
    let settle_ns = scenario.checks.converge_within_s.map_or(0, s_to_ns);
    let end_ns = world.end_ns.saturating_add(settle_ns);
    let mut stream = |world: &mut World, before_s: u64| {
        let mut out = Stream::default();
        for tier in TIERS {
            tier.stream(&mut world.sim, &world.plan, before_s, &mut out);
        }
        for (t, s) in &out.seconds {
            let row = SecondRow::of(*t, s);
            on_second(&row, &s.log2_buckets);
            series.push_second(row, &s.log2_buckets);
        }
        for c in checkers.borrow_mut().iter_mut() {
            c.on_stream(&out);
        }
    };
    let capacity = crate::tiers::scaler::capacity_rps_per_replica(scenario);
    let mut gauges = Sampler::new(&world.plan, capacity);
    let stopped = || options.stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let mut interrupted_at_s = None;
    while world.sim.now_ns() < end_ns {
        if stopped() {
            interrupted_at_s = Some(world.sim.now_ns() as f64 / 1e9);
            break;
        }
        let next = world.sim.now_ns().saturating_add(CHUNK_NS).min(end_ns);
        // Second by second, so that the tiers' gauges are sampled at every second.
        while world.sim.now_ns() < next {
            let second = (world.sim.now_ns() / SECOND_NS + 1) * SECOND_NS;
            world.sim.run_until(second.min(next), progress);
            gauges.sample(&world.sim, world.sim.now_ns());
        }
        stream(&mut world, next / 1_000_000_000);
    }
    let last = world.sim.now_ns().min(end_ns);
    stream(&mut world, last.div_ceil(1_000_000_000));
    let promoted = *promoted_ns.borrow();
    let provisioning = gauges.provisioning();
    let mut o = finish(
        scenario,
        seed,
        world,
        checkers,
        series,
        promoted,
        provisioning,
    );
    o.interrupted_at_s = interrupted_at_s;
    o.tier_series = gauges.points();
    o
}

type Checkers = Rc<RefCell<Vec<Box<dyn Checker>>>>;

/// The scenario's checkers, with a view of the wire for those that want one.
fn watch(world: &mut World, scenario: &Scenario) -> Checkers {
    let checkers: Checkers = Rc::new(RefCell::new(checks::enabled(scenario, &world.plan)));
    if checkers.borrow().iter().any(|c| c.wants_wire()) {
        let watching = checkers.clone();
        world.sim.set_tap(Box::new(move |at_ns, from, to, msg| {
            for c in watching.borrow_mut().iter_mut() {
                c.on_wire(at_ns, from, to, msg);
            }
        }));
    }
    checkers
}

/// Hands every observation to the checkers, and notes the first promotion.
fn install_observer(world: &mut World, checkers: Checkers, promoted_ns: Rc<RefCell<Option<u64>>>) {
    world.sim.set_observer(Box::new(move |at_ns, node, o| {
        if matches!(
            o,
            Observation::StorePromoted { .. } | Observation::SessionPromoted { .. }
        ) {
            promoted_ns.borrow_mut().get_or_insert(at_ns);
        }
        for c in checkers.borrow_mut().iter_mut() {
            c.on_observation(at_ns, node, o);
        }
    }));
}

fn finish(
    scenario: &Scenario,
    seed: u64,
    mut world: World,
    checkers: Checkers,
    series: Series,
    promoted_ns: Option<u64>,
    provisioning: Provisioning,
) -> RunOutcome {
    world.sim.export_node_metrics();
    let view = RunView {
        scenario,
        plan: &world.plan,
        sim: &world.sim,
        provisioning,
    };
    let mut ev = Evidence {
        security: world.sim.security(),
        ..Evidence::default()
    };
    for tier in TIERS {
        tier.collect(&view, &mut ev);
    }
    ev.summary.recovery_s = series.recovery_s();
    ev.summary.slo_minutes = series.slo_minutes();
    ev.summary.cost_per_hour =
        scenario.cost.per_hour(&world.plan) + scaled_cost(scenario, provisioning);
    ev.summary.failover_s = first_fault_s(scenario)
        .zip(promoted_ns)
        .map(|(fault, at)| at as f64 / 1e9 - fault);
    let results: Vec<checks::CheckResult> = checkers
        .borrow_mut()
        .iter_mut()
        .map(|c| c.verdict(&ev))
        .collect();
    ev.summary.lost_writes_total = results
        .iter()
        .find(|c| c.name == durability::REGISTRATION.name)
        .and_then(|c| c.value("lost_writes_total"))
        .map(|n| n as u64);
    let mut report = TierReport::default();
    for tier in TIERS {
        tier.report(&view, &ev, &mut report);
    }
    if let Some(v) = ev.security {
        report.lines.push(("security".into(), v.line()));
    }
    let sim = &world.sim;
    let mut rows = outcome::metric_rows(sim, world.end_ns);
    rows.extend(report.rows);
    for c in &results {
        for &(metric, value, unit) in &c.values {
            rows.push(outcome::Row::new(
                &format!("check:{}", c.name),
                metric,
                value,
                unit,
            ));
        }
    }
    rows.extend(outcome::summary_rows(&ev.summary));
    RunOutcome {
        scenario: scenario.name.clone(),
        seed,
        trace_hash: sim.trace().hash(),
        events_total: sim.events_total(),
        summary: ev.summary,
        lines: report.lines,
        rows,
        series: series.points(),
        tier_series: Vec::new(),
        tables: report.tables,
        checks: results,
        trace: sim.trace().entries().map(<[TraceEntry]>::to_vec),
        interrupted_at_s: None,
    }
}

/// What an autoscaled tier cost per hour beyond its initial replicas (negative when it ran
/// fewer): the mean replicas running over the measured seconds, less the initial count, at the
/// service's price.
fn scaled_cost(scenario: &Scenario, p: Provisioning) -> f64 {
    if p.seconds == 0 {
        return 0.0;
    }
    let initial = f64::from(scenario.topology.services.count);
    let mean = p.running_replica_s / p.seconds as f64;
    (mean - initial) * scenario.cost.price("service")
}

/// Simulated seconds, for reports.
pub fn duration_ns(scenario: &Scenario) -> u64 {
    s_to_ns(scenario.duration_s)
}
