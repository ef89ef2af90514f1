use crate::shipped;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::report;
use minitwin_sim::run::{run_with, RunOptions};
use minitwin_sim::scenario::Scenario;
use minitwin_sim::series::SecondRow;
use minitwin_sim::trace::first_divergence;

/// A run with its trace recorded, and the time series it streamed.
fn run_recorded(s: &Scenario, seed: u64) -> (RunOutcome, Vec<SecondRow>) {
    let mut rows = Vec::new();
    let o = run_with(
        s,
        seed,
        &RunOptions {
            record_trace: true,
            ..RunOptions::default()
        },
        &mut |_| {},
        &mut |r| rows.push(*r),
    );
    (o, rows)
}

fn short(mut s: Scenario) -> Scenario {
    s.duration_s = 8.0;
    s.warmup_s = 1.0;
    s
}

/// Panics with the first event where two runs part, if they do.
fn assert_same_run(
    (a, rows_a): &(RunOutcome, Vec<SecondRow>),
    (b, rows_b): &(RunOutcome, Vec<SecondRow>),
) {
    if let Some((i, x, y)) =
        first_divergence(a.trace.as_deref().unwrap(), b.trace.as_deref().unwrap())
    {
        panic!("runs diverge at event {i}:\n  first:  {x:?}\n  second: {y:?}");
    }
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(report::metrics_csv(a, "c"), report::metrics_csv(b, "c"));
    let csv = |rows: &[SecondRow]| report::timeseries_csv("s", 1, "c", rows);
    assert_eq!(csv(rows_a), csv(rows_b));
    assert!(!rows_a.is_empty(), "the series streamed");
    assert_eq!(report::summary_text(a), report::summary_text(b));
}

#[test]
fn the_same_seed_twice_gives_byte_identical_results_and_trace_hash() {
    for name in ["steady", "shard-crash"] {
        let s = short(shipped(name));
        let a = run_recorded(&s, 42);
        let b = run_recorded(&s, 42);
        assert!(a.0.events_total > 10_000, "the run did something");
        assert_same_run(&a, &b);
    }
}

#[test]
fn a_faulty_run_with_buggify_is_deterministic_too() {
    let mut s = short(shipped("shard-crash"));
    s.faults[0] = minitwin_sim::scenario::Fault::Crash {
        at_s: 3.0,
        node: "store-0".into(),
        restart_after_s: Some(2.0),
    };
    s.buggify.enabled = true;
    s.buggify.enable_probability = 1.0;
    let a = run_recorded(&s, 5);
    let b = run_recorded(&s, 5);
    assert_same_run(&a, &b);
    let fired =
        a.0.rows
            .iter()
            .find(|r| r.metric == "buggify_fired_total")
            .unwrap()
            .value;
    assert!(fired > 0.0, "buggify points fired");
}

#[test]
fn two_seeds_give_different_runs_and_the_first_divergent_event_is_reported() {
    let s = short(shipped("steady"));
    let (a, _) = run_recorded(&s, 1);
    let (b, _) = run_recorded(&s, 2);
    assert_ne!(a.trace_hash, b.trace_hash);
    assert_ne!(report::metrics_csv(&a, "c"), report::metrics_csv(&b, "c"));
    let (i, x, y) = first_divergence(a.trace.as_deref().unwrap(), b.trace.as_deref().unwrap())
        .expect("different seeds diverge");
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.index, i as u64);
    assert!(x.at_ns != y.at_ns || x.digest != y.digest);
    assert!(!x.summary.is_empty(), "the report says what the event was");
}
