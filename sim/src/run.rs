//! One run: scenario -> plan -> world -> run to the end -> evidence -> checks -> outcome.
//! Each step hands the next a value; none reaches back.

use crate::checks::{self, durability, Checker};
use crate::evidence::Evidence;
use crate::kernel::Progress;
use crate::outcome::{self, RunOutcome};
use crate::scenario::Scenario;
use crate::tiers::{RunView, TierReport, TIERS};
use crate::trace::TraceEntry;
use crate::world::{build, s_to_ns};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep every event for divergence reports (slow; tests only).
    pub record_trace: bool,
}

/// When the first fault strikes (simulated seconds), if the scenario has faults.
pub fn first_fault_s(scenario: &Scenario) -> Option<f64> {
    scenario.faults.iter().map(|f| f.at_s()).reduce(f64::min)
}

/// Runs `scenario` with `seed` to its end.
pub fn run(
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> RunOutcome {
    let mut world = build(scenario, seed, options.record_trace);
    let checkers: Rc<RefCell<Vec<Box<dyn Checker>>>> =
        Rc::new(RefCell::new(checks::enabled(scenario, &world.plan)));
    if checkers.borrow().iter().any(|c| c.wants_wire()) {
        let watching = checkers.clone();
        world.sim.set_tap(Box::new(move |at_ns, from, to, msg| {
            for c in watching.borrow_mut().iter_mut() {
                c.on_wire(at_ns, from, to, msg);
            }
        }));
    }
    world.sim.run_until(world.end_ns, progress);
    if let Some(settle_s) = scenario.checks.converge_within_s {
        world
            .sim
            .run_until(world.end_ns + s_to_ns(settle_s), progress);
    }
    let view = RunView {
        scenario,
        plan: &world.plan,
        sim: &world.sim,
    };
    let mut ev = Evidence::default();
    for tier in TIERS {
        tier.collect(&view, &mut ev);
    }
    let acked = ev.users.as_ref().map_or(&[][..], |u| u.acked_writes);
    ev.summary.lost_writes_total = durability::lost_writes(acked, &ev.shards).len() as u64;
    let results = checkers
        .borrow_mut()
        .iter_mut()
        .map(|c| c.verdict(&ev))
        .collect();
    let mut report = TierReport::default();
    for tier in TIERS {
        tier.report(&view, &ev, &mut report);
    }
    let sim = &world.sim;
    let mut rows = outcome::metric_rows(sim, world.end_ns);
    rows.extend(report.rows);
    rows.extend(outcome::summary_rows(&ev.summary));
    let seconds = ev.users.as_ref().map_or(Vec::new(), |u| u.seconds.to_vec());
    RunOutcome {
        scenario: scenario.name.clone(),
        seed,
        trace_hash: sim.trace().hash(),
        events_total: sim.events_total(),
        summary: ev.summary,
        lines: report.lines,
        rows,
        seconds,
        tables: report.tables,
        checks: results,
        trace: sim.trace().entries().map(<[TraceEntry]>::to_vec),
    }
}

/// Simulated seconds, for reports.
pub fn duration_ns(scenario: &Scenario) -> u64 {
    s_to_ns(scenario.duration_s)
}
