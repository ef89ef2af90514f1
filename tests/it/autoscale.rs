//! The control tier in whole runs: a load step scales the service tier as the HPA would, the
//! new pods serve once started and ready, a blind metrics pipeline holds the count, the
//! endpoints drain pods before they go, and the cost follows the replicas that ran.

use crate::shipped;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario::{Fault, Scenario};

/// (t_s, desired, ready, running) from `replicas.csv`.
fn timeline(o: &RunOutcome) -> Vec<(f64, u32, u32, u32)> {
    let t = o
        .tables
        .iter()
        .find(|t| t.file == "replicas.csv")
        .expect("an autoscaled run writes replicas.csv");
    t.rows
        .iter()
        .map(|r| {
            let n = |i: usize| r[i].parse::<u32>().unwrap();
            (r[0].parse().unwrap(), n(1), n(2), n(3))
        })
        .collect()
}

fn errors_after(o: &RunOutcome, t_s: u64) -> u64 {
    o.series
        .iter()
        .filter(|r| r.t_s >= t_s)
        .map(|r| r.errors)
        .sum()
}

fn step(duration_s: f64) -> Scenario {
    let mut s = shipped("autoscale-step");
    s.duration_s = duration_s;
    s
}

#[test]
fn a_load_step_scales_the_tier_at_the_first_sync_with_a_fresh_sample_and_new_pods_serve_after_start_up(
) {
    let o = run(&step(420.0), 1, &RunOptions::default(), &mut |_| {});
    let t = timeline(&o);
    assert_eq!(t[0], (0.0, 2, 2, 2), "two replicas from the start: {t:?}");
    // The step is at 120 s; samples are 15 s windows, and the sync at an instant runs before
    // that instant's scrape: the first sync to see it is at 150 s.
    let first_up = t.iter().find(|p| p.1 > 2).unwrap();
    assert_eq!(first_up.0, 150.0, "{t:?}");
    // Saturated pods report 100 % CPU (not the demand), so the HPA gets there in rounds:
    // 800 req/s at 10 ms is 8 cores, 6.7 pods of 2 workers at 60 %.
    let last = *t.last().unwrap();
    assert_eq!((last.1, last.2, last.3), (7, 7, 7), "{t:?}");
    // No pod serves before it is scheduled and started (about 30 s) and probed ready.
    let first_ready = t.iter().find(|p| p.2 > 2).unwrap();
    assert!(first_ready.0 >= first_up.0 + 15.0, "{t:?}");
    assert!(errors_after(&o, 130) > 0, "the step overloads two replicas");
    assert_eq!(errors_after(&o, 320), 0, "seven ready replicas carry it");
}

#[test]
fn without_the_autoscaler_the_same_step_keeps_failing_to_the_end() {
    let mut s = step(420.0);
    s.topology.autoscaler = None;
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    assert!(
        errors_after(&o, 320) > 10_000,
        "two replicas shed half of 800 req/s"
    );
    assert!(o.tables.iter().all(|t| t.file != "replicas.csv"));
}

#[test]
fn a_blind_metrics_pipeline_holds_the_replica_count_until_it_sees_again() {
    let mut s = step(420.0);
    s.faults.push(Fault::MetricsPipeline {
        at_s: 100.0,
        duration_s: 200.0,
        lost: true,
        delay_ms: 0.0,
    });
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    let t = timeline(&o);
    let first_up = t.iter().find(|p| p.1 > 2).unwrap();
    // Blind from 100 s to 300 s; then two scrapes make a sample, and a sync sees it.
    assert!((300.0..=345.0).contains(&first_up.0), "{t:?}");
    let lost = o
        .value("control-plane", "scaler_scrapes_lost_total")
        .unwrap();
    assert!(lost > 0.0);
}

#[test]
fn after_the_load_falls_the_tier_shrinks_only_after_the_five_minute_window_and_drains_first() {
    let mut s = shipped("autoscale-step");
    s.duration_s = 1_200.0;
    s.workload.rate = minitwin_sim::workload::RateCurve::Spike {
        base_rps: 200.0,
        peak_rps: 800.0,
        at_s: 120.0,
        duration_s: 300.0,
    };
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    let t = timeline(&o);
    let first_down = t
        .iter()
        .skip_while(|p| p.1 < 7)
        .find(|p| p.1 < 7)
        .unwrap_or_else(|| panic!("no scale-down: {t:?}"));
    // The load falls at 420 s; the scale-down stabilization window keeps the highest
    // recommendation of the last 300 s.
    assert!(first_down.0 >= 720.0, "{t:?}");
    assert_eq!(t.last().unwrap().1, 2, "{t:?}");
    // Pods leave the endpoints before their SIGTERM and drain: nothing fails on the way down.
    assert_eq!(errors_after(&o, 700), 0);
}

#[test]
fn the_cost_counts_the_replicas_that_ran_not_the_slots() {
    let o = run(&step(420.0), 1, &RunOptions::default(), &mut |_| {});
    let mut fixed = step(420.0);
    fixed.topology.autoscaler = None;
    let two = run(&fixed, 1, &RunOptions::default(), &mut |_| {})
        .summary
        .cost_per_hour;
    fixed.topology.services.count = 7;
    let seven = run(&fixed, 1, &RunOptions::default(), &mut |_| {})
        .summary
        .cost_per_hour;
    let scaled = o.summary.cost_per_hour;
    assert!(two < scaled && scaled < seven, "{two} < {scaled} < {seven}");
    // Beyond two replicas' cost: the mean replicas running above two, at $0.10 an hour.
    let hours = o.value("autoscaler", "running_replica_hours").unwrap();
    let mean = hours / (420.0 / 3_600.0);
    assert!((2.0..7.0).contains(&mean), "mean replicas running {mean}");
    assert!(((scaled - two) - (mean - 2.0) * 0.10).abs() < 1e-9);
}

#[test]
fn a_crashed_pod_is_restarted_and_the_hpa_keeps_scaling_through_it() {
    let mut s = step(420.0);
    s.faults.push(Fault::Crash {
        at_s: 60.0,
        node: "service-1".into(),
        restart_after_s: None,
    });
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    let t = timeline(&o);
    assert_eq!(t.last().unwrap().1, 7, "{t:?}");
    assert_eq!(
        errors_after(&o, 330),
        0,
        "the restarted pod serves with the new ones"
    );
}

#[test]
fn a_restarted_control_plane_adopts_the_running_pods_instead_of_forgetting_them() {
    let mut s = step(420.0);
    s.faults.push(Fault::Crash {
        at_s: 240.0,
        node: "control-plane".into(),
        restart_after_s: Some(5.0),
    });
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    let t = timeline(&o);
    // Seven pods ran before; after the restart's first probe round they are adopted, and the
    // gateways kept their endpoints meanwhile.
    assert_eq!(t.last().unwrap().1, 7, "{t:?}");
    assert!(t.iter().all(|p| p.1 >= 2), "never below the minimum: {t:?}");
    assert_eq!(errors_after(&o, 330), 0);
}
