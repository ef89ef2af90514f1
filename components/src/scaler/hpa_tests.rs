//! Cases ported one by one from the Kubernetes controller's own tests
//! (`pkg/controller/podautoscaler/replica_calculator_test.go` and `horizontal_test.go`), each
//! named after the Go test (and case) it ports. The Go tests give every pod two containers;
//! the per-pod sums here are the same ratios. Their timing constants are kept: a CPU
//! initialization period of 2 min and an initial readiness delay of 10 s; "now" is 1 h into
//! the pods' lives unless a case says a pod started "hot" (now) or "cool" (3 min ago).

use super::*;

const S: u64 = 1_000_000_000;
const NOW: u64 = 36_000 * S;

fn timing() -> Timing {
    Timing {
        now_ns: NOW,
        cpu_initialization_ns: 120 * S,
        initial_readiness_delay_ns: 10 * S,
        tolerance: TOLERANCE,
    }
}

/// A running, ready pod (started and ready at time 0) using `milli` of a request of `request`
/// milli-cores; the sample is at time 0 with a 1 min window, as in the Go harness.
fn pod(milli: f64, request: f64) -> PodView {
    PodView {
        phase: Phase::Running,
        deleting: false,
        start_ns: Some(0),
        ready: Some((true, 0)),
        metric: Some(Sample {
            value: milli,
            request,
            at_ns: 0,
            window_ns: 60 * S,
        }),
    }
}

fn pods(milli: &[f64]) -> Vec<PodView> {
    milli.iter().map(|&m| pod(m, 1000.0)).collect()
}

fn unready(mut p: PodView) -> PodView {
    p.ready = Some((false, 0));
    p
}

fn hot(mut p: PodView) -> PodView {
    p.start_ns = Some(NOW);
    p
}

fn cool(mut p: PodView) -> PodView {
    p.start_ns = Some(NOW - 180 * S);
    p
}

fn missing(mut p: PodView) -> PodView {
    p.metric = None;
    p
}

fn cpu(current: u32, pods: &[PodView], target: u32) -> (u32, f64) {
    let r = resource_replicas(current, pods, target, &timing()).expect("a metric");
    (r.replicas, r.metric)
}

fn plain(current: u32, values: &[f64], target: f64) -> u32 {
    let p: Vec<PodView> = values.iter().map(|&v| pod(v, 0.0)).collect();
    plain_replicas(current, &p, target, &timing())
        .expect("a metric")
        .replicas
}

#[test]
fn replica_calc_scale_up() {
    assert_eq!(cpu(3, &pods(&[300.0, 500.0, 700.0]), 30), (5, 50.0));
}

#[test]
fn replica_calc_scale_down() {
    let p = pods(&[100.0, 300.0, 500.0, 250.0, 250.0]);
    assert_eq!(cpu(5, &p, 50), (3, 28.0));
}

#[test]
fn replica_calc_tolerance() {
    let p = [pod(1010.0, 900.0), pod(1030.0, 1000.0), pod(1020.0, 1100.0)];
    assert_eq!(cpu(3, &p, 100), (3, 102.0));
}

#[test]
fn replica_calc_scale_up_unready_less_scale() {
    let mut p = pods(&[300.0, 500.0, 700.0]);
    p[0] = unready(p[0]);
    assert_eq!(cpu(3, &p, 30), (4, 60.0));
}

#[test]
fn replica_calc_scale_up_hot_cpu_less_scale() {
    let p = pods(&[300.0, 500.0, 700.0]);
    let p = [hot(p[0]), cool(p[1]), cool(p[2])];
    assert_eq!(cpu(3, &p, 30), (4, 60.0));
}

#[test]
fn replica_calc_scale_up_unready_no_scale() {
    let p = pods(&[400.0, 500.0, 700.0]);
    let p = [p[0], unready(p[1]), unready(p[2])];
    assert_eq!(cpu(3, &p, 30), (3, 40.0));
}

#[test]
fn replica_calc_scale_hot_cpu_no_scale() {
    let p = pods(&[400.0, 500.0, 700.0]);
    let p = [cool(p[0]), hot(unready(p[1])), hot(unready(p[2]))];
    assert_eq!(cpu(3, &p, 30), (3, 40.0));
}

#[test]
fn replica_calc_scale_up_ignores_failed_pods() {
    let mut p = pods(&[500.0, 700.0]);
    for _ in 0..2 {
        p.push(PodView {
            phase: Phase::Failed,
            ..missing(unready(pod(0.0, 1000.0)))
        });
    }
    assert_eq!(cpu(2, &p, 30), (4, 60.0));
}

#[test]
fn replica_calc_scale_up_ignores_deletion_pods() {
    let mut p = pods(&[500.0, 700.0]);
    for _ in 0..2 {
        p.push(PodView {
            deleting: true,
            ..missing(unready(pod(0.0, 1000.0)))
        });
    }
    assert_eq!(cpu(2, &p, 30), (4, 60.0));
}

#[test]
fn replica_calc_scale_down_include_unready_pods() {
    let mut p = pods(&[100.0, 300.0, 500.0, 250.0, 250.0]);
    p[3] = unready(p[3]);
    p[4] = unready(p[4]);
    assert_eq!(cpu(5, &p, 50), (2, 30.0));
}

#[test]
fn replica_calc_scale_down_ignore_hot_cpu_pods() {
    let mut p = pods(&[100.0, 300.0, 500.0, 250.0, 250.0]);
    p[3] = hot(p[3]);
    p[4] = hot(p[4]);
    assert_eq!(cpu(5, &p, 50), (2, 30.0));
}

#[test]
fn replica_calc_scale_down_exclude_unscheduled_pods() {
    let mut p = pods(&[100.0]);
    for _ in 0..4 {
        p.push(PodView {
            phase: Phase::Pending,
            ..missing(unready(pod(0.0, 1000.0)))
        });
    }
    assert_eq!(cpu(5, &p, 50), (1, 10.0));
}

#[test]
fn replica_calc_missing_metrics() {
    let mut p = pods(&[400.0, 95.0, 0.0, 0.0]);
    p[2] = missing(p[2]);
    p[3] = missing(p[3]);
    assert_eq!(cpu(4, &p, 100), (3, 24.0));
}

#[test]
fn replica_calc_missing_metrics_no_change_eq() {
    let p = pods(&[1000.0, 0.0]);
    assert_eq!(cpu(2, &[p[0], missing(p[1])], 100), (2, 100.0));
}

#[test]
fn replica_calc_missing_metrics_no_change_gt() {
    let p = pods(&[1900.0, 0.0]);
    assert_eq!(cpu(2, &[p[0], missing(p[1])], 100), (2, 190.0));
}

#[test]
fn replica_calc_missing_metrics_no_change_lt() {
    let p = pods(&[600.0, 0.0]);
    assert_eq!(cpu(2, &[p[0], missing(p[1])], 100), (2, 60.0));
}

#[test]
fn replica_calc_missing_metrics_unready_change() {
    let p = pods(&[100.0, 450.0, 0.0]);
    assert_eq!(cpu(3, &[unready(p[0]), p[1], missing(p[2])], 50), (3, 45.0));
}

#[test]
fn replica_calc_missing_metrics_hot_cpu_no_change() {
    let p = pods(&[100.0, 450.0, 0.0]);
    assert_eq!(cpu(3, &[hot(p[0]), p[1], missing(p[2])], 50), (3, 45.0));
}

#[test]
fn replica_calc_missing_metrics_unready_scale_up() {
    let p = pods(&[100.0, 2000.0, 0.0]);
    assert_eq!(
        cpu(3, &[unready(p[0]), p[1], missing(p[2])], 50),
        (4, 200.0)
    );
}

#[test]
fn replica_calc_missing_metrics_hot_cpu_scale_up() {
    let p = pods(&[100.0, 2000.0, 0.0]);
    let p = [hot(unready(p[0])), p[1], missing(p[2])];
    assert_eq!(cpu(3, &p, 50), (4, 200.0));
}

#[test]
fn replica_calc_missing_metrics_unready_scale_down() {
    let p = pods(&[100.0, 100.0, 100.0, 0.0]);
    let p = [unready(p[0]), p[1], p[2], missing(p[3])];
    assert_eq!(cpu(4, &p, 50), (3, 10.0));
}

#[test]
fn replica_calc_during_rolling_update_with_max_surge() {
    let p = pods(&[100.0, 100.0, 0.0]);
    assert_eq!(cpu(2, &[p[0], p[1], missing(p[2])], 50), (2, 10.0));
}

#[test]
fn replica_calc_computed_tolerance_alg_implementation() {
    // Ten pods at 150 m each; requests of about 300 m that sum to 3,000 m: 50 %.
    let jitter = [100.0, -100.0, 10.0, -10.0, 2.0, -2.0, 1.0, -1.0, 0.0, 0.0];
    let p: Vec<PodView> = jitter.iter().map(|j| pod(150.0, 300.0 + j)).collect();
    assert_eq!(cpu(10, &p, 56).0, 9);
    assert_eq!(cpu(10, &p, 55).0, 10);
}

#[test]
fn replica_calc_scale_up_cm() {
    assert_eq!(plain(3, &[20_000.0, 10_000.0, 30_000.0], 15_000.0), 4);
}

#[test]
fn replica_calc_scale_up_cm_unready_hot_cpu_no_less_scale() {
    // Not CPU: readiness does not matter for a pods metric.
    let p = [
        cool(pod(50_000.0, 0.0)),
        cool(pod(10_000.0, 0.0)),
        hot(unready(pod(30_000.0, 0.0))),
    ];
    let r = plain_replicas(3, &p, 15_000.0, &timing()).unwrap();
    assert_eq!(r.replicas, 6);
}

#[test]
fn replica_calc_scale_up_cm_unready_hot_cpu_scale_would_scale_down() {
    let p = [
        hot(unready(pod(50_000.0, 0.0))),
        cool(pod(15_000.0, 0.0)),
        hot(unready(pod(30_000.0, 0.0))),
    ];
    let r = plain_replicas(3, &p, 15_000.0, &timing()).unwrap();
    assert_eq!(r.replicas, 7);
}

#[test]
fn replica_calc_scale_down_cm() {
    assert_eq!(plain(5, &[12_000.0; 5], 20_000.0), 3);
}

#[test]
fn replica_calc_tolerance_cm() {
    assert_eq!(plain(3, &[20_000.0, 21_000.0, 21_000.0], 20_000.0), 3);
}

#[test]
fn replica_calc_empty_metrics_is_an_error_not_a_guess() {
    let p = [missing(pod(0.0, 1000.0))];
    assert_eq!(resource_replicas(1, &p, 50, &timing()), None);
}

#[test]
fn group_pods_counts_a_pod_ready_one_window_after_its_transition_and_ignores_one_before() {
    // TestGroupPods: started 1 min ago, ready 30 s ago, a sample of now: counted with a 30 s
    // window, ignored with a 60 s one (within the 2 min CPU initialization period).
    let mut p = pod(100.0, 1000.0);
    p.start_ns = Some(NOW - 60 * S);
    p.ready = Some((true, NOW - 30 * S));
    let with_window = |w: u64| {
        let mut q = p;
        q.metric = Some(Sample {
            at_ns: NOW,
            window_ns: w,
            ..p.metric.unwrap()
        });
        resource_replicas(1, &[q], 10, &timing())
    };
    assert!(with_window(30 * S).is_some());
    assert_eq!(with_window(60 * S), None);
}

// ---- horizontal_test.go: TestScalingWithRules (convertDesiredReplicasWithBehaviorRate) ----

fn rules(pods: u32, pods_period: u32, percent: u32, percent_period: u32, window: u32) -> Rules {
    let mut policies = Vec::new();
    if pods > 0 {
        policies.push(Policy {
            kind: PolicyKind::Pods,
            value: pods,
            period_s: pods_period,
        });
    }
    if percent > 0 {
        policies.push(Policy {
            kind: PolicyKind::Percent,
            value: percent,
            period_s: percent_period,
        });
    }
    Rules {
        stabilization_window_s: window,
        select_policy: Select::Max,
        policies,
    }
}

/// `generateEventsUniformDistribution(changes, 120)`: event i is (120 - seg (i + 1) + seg / 2)
/// seconds old, seg = 120 / n.
fn events(hpa: &mut Hpa, b: &Behavior, up: bool, changes: &[u32]) {
    let seg = 120 / changes.len() as u64;
    for (i, &c) in changes.iter().enumerate() {
        let age = 120 - seg * (i as u64 + 1) + seg / 2;
        let (from, to) = if up { (100, 100 + c) } else { (100 + c, 100) };
        hpa.record_scale(b, NOW - age * S, from, to);
    }
}

struct Case {
    current: u32,
    desired: u32,
    min: u32,
    max: u32,
    up: Option<Rules>,
    down: Option<Rules>,
    up_events: &'static [u32],
    down_events: &'static [u32],
}

const CASE: Case = Case {
    current: 0,
    desired: 0,
    min: 1,
    max: 1000,
    up: None,
    down: None,
    up_events: &[],
    down_events: &[],
};

fn with_rules(c: Case) -> (u32, Limit) {
    let d = Behavior::default();
    let b = Behavior {
        scale_up: c.up.unwrap_or(d.scale_up),
        scale_down: c.down.unwrap_or(d.scale_down),
    };
    let mut hpa = Hpa::new();
    if !c.up_events.is_empty() {
        events(&mut hpa, &b, true, c.up_events);
    }
    if !c.down_events.is_empty() {
        events(&mut hpa, &b, false, c.down_events);
    }
    hpa.limit_rate(&b, NOW, c.current, c.desired, c.min, c.max)
}

#[test]
fn scaling_with_rules_prenormalized_desired_replicas_within_range() {
    let c = Case {
        current: 5,
        desired: 7,
        min: 3,
        max: 8,
        ..CASE
    };
    assert_eq!(with_rules(c), (7, Limit::None));
}

#[test]
fn scaling_with_rules_prenormalized_desired_replicas_below_min_replicas() {
    let c = Case {
        current: 3,
        desired: 1,
        min: 2,
        max: 8,
        ..CASE
    };
    assert_eq!(with_rules(c), (2, Limit::TooFewReplicas));
}

#[test]
fn scaling_with_rules_prenormalized_desired_replicas_within_range_when_min_replicas_is_0() {
    let c = Case {
        current: 1,
        desired: 0,
        min: 0,
        max: 10,
        ..CASE
    };
    assert_eq!(with_rules(c), (0, Limit::None));
}

#[test]
fn scaling_with_rules_max_replicas_is_the_limit_because_max_replicas_below_scale_up_limit() {
    let c = Case {
        current: 20,
        desired: 1000,
        min: 1,
        max: 10,
        ..CASE
    };
    assert_eq!(with_rules(c), (10, Limit::TooManyReplicas));
}

#[test]
fn scaling_with_rules_desired_replica_count_is_more_than_the_maximum_replica_count() {
    let c = Case {
        current: 100,
        desired: 1000,
        min: 100,
        max: 150,
        ..CASE
    };
    assert_eq!(with_rules(c), (150, Limit::TooManyReplicas));
}

#[test]
fn scaling_with_rules_scale_up_limit_is_the_limit_with_user_policies() {
    let up = Some(rules(0, 0, 1, 60, 0));
    let c = Case {
        current: 3,
        desired: 1000,
        max: 2000,
        up,
        ..CASE
    };
    assert_eq!(with_rules(c), (4, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_default_behavior() {
    let c = Case {
        current: 10,
        desired: 50,
        ..CASE
    };
    assert_eq!(with_rules(c), (20, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_pods_policy_larger_than_percent_policy() {
    let up = Some(rules(100, 60, 100, 60, 0));
    let c = Case {
        current: 10,
        desired: 500,
        up,
        ..CASE
    };
    assert_eq!(with_rules(c), (110, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_percent_policy_larger_than_pods_policy() {
    let up = Some(rules(2, 60, 100, 60, 0));
    let c = Case {
        current: 10,
        desired: 500,
        up,
        ..CASE
    };
    assert_eq!(with_rules(c), (20, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_pod_policy_limitation() {
    let up = Some(rules(30, 60, 0, 0, 0));
    let c = Case {
        current: 10,
        desired: 50,
        up,
        ..CASE
    };
    assert_eq!(with_rules(c), (40, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_percent_policy_limitation() {
    let up = Some(rules(0, 0, 200, 60, 0));
    let c = Case {
        current: 10,
        desired: 50,
        up,
        ..CASE
    };
    assert_eq!(with_rules(c), (30, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_percent_policy_larger_than_pod_policy() {
    let down = Some(rules(20, 60, 1, 60, 300));
    let c = Case {
        current: 100,
        desired: 2,
        down,
        ..CASE
    };
    assert_eq!(with_rules(c), (80, Limit::ScaleDownLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_pod_policy_larger_than_percent_policy() {
    let down = Some(rules(2, 60, 1, 60, 300));
    let c = Case {
        current: 100,
        desired: 2,
        down,
        ..CASE
    };
    assert_eq!(with_rules(c), (98, Limit::ScaleDownLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_spec_min_replicas_limitation_with_large_percent_policy() {
    let down = Some(rules(0, 0, 100, 60, 300));
    let c = Case {
        current: 10,
        desired: 2,
        min: 5,
        down,
        ..CASE
    };
    assert_eq!(with_rules(c), (5, Limit::TooFewReplicas));
}

#[test]
fn scaling_with_rules_scale_down_with_pod_policy_limitation() {
    let down = Some(rules(5, 60, 0, 0, 300));
    let c = Case {
        current: 10,
        desired: 2,
        down,
        ..CASE
    };
    assert_eq!(with_rules(c), (5, Limit::ScaleDownLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_percent_policy_limitation() {
    let down = Some(rules(0, 0, 50, 60, 300));
    let c = Case {
        current: 10,
        desired: 5,
        down,
        ..CASE
    };
    assert_eq!(with_rules(c), (5, Limit::None));
}

#[test]
fn scaling_with_rules_scale_up_with_spec_max_replicas_limitation_with_large_pod_policy_and_events()
{
    let up = Some(rules(300, 60, 0, 0, 0));
    let c = Case {
        current: 100,
        desired: 500,
        max: 200,
        up,
        up_events: &[1, 5, 9],
        ..CASE
    };
    assert_eq!(with_rules(c), (200, Limit::TooManyReplicas));
}

#[test]
fn scaling_with_rules_scale_up_with_current_replicas_limitation_with_a_lot_of_recent_events() {
    let up = Some(rules(5, 120, 0, 0, 0));
    let c = Case {
        current: 100,
        desired: 500,
        up,
        up_events: &[1, 5, 9],
        ..CASE
    };
    assert_eq!(with_rules(c), (100, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_pod_policy_and_previous_scale_up_events() {
    let up = Some(rules(150, 120, 0, 0, 0));
    let c = Case {
        current: 100,
        desired: 500,
        up,
        up_events: &[1, 5, 9],
        ..CASE
    };
    assert_eq!(with_rules(c), (235, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_percent_policy_and_previous_scale_up_events() {
    let up = Some(rules(0, 0, 200, 120, 0));
    let c = Case {
        current: 100,
        desired: 500,
        up,
        up_events: &[1, 5, 9],
        ..CASE
    };
    assert_eq!(with_rules(c), (255, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_up_with_percent_policy_and_previous_scale_up_and_down_events() {
    let up = Some(rules(0, 0, 300, 300, 0));
    let c = Case {
        current: 6,
        desired: 24,
        up,
        up_events: &[4],
        down_events: &[2],
        ..CASE
    };
    assert_eq!(with_rules(c), (16, Limit::ScaleUpLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_pod_policy_limitation_and_previous_events() {
    let down = Some(rules(5, 120, 0, 0, 300));
    let c = Case {
        current: 100,
        desired: 2,
        down,
        down_events: &[1, 5, 9],
        ..CASE
    };
    assert_eq!(with_rules(c), (100, Limit::ScaleDownLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_percent_policy_limitation_and_previous_events() {
    let down = Some(rules(0, 0, 50, 120, 300));
    let c = Case {
        current: 100,
        desired: 0,
        down,
        down_events: &[2, 4, 6],
        ..CASE
    };
    assert_eq!(with_rules(c), (56, Limit::ScaleDownLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_percent_policy_and_previous_scale_up_and_down_events() {
    let down = Some(rules(0, 0, 50, 180, 0));
    let c = Case {
        current: 10,
        desired: 1,
        down,
        up_events: &[2],
        down_events: &[4],
        ..CASE
    };
    assert_eq!(with_rules(c), (6, Limit::ScaleDownLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_previous_events_preventing_further_scale_down() {
    let down = Some(rules(0, 0, 10, 120, 300));
    let c = Case {
        current: 100,
        desired: 0,
        down,
        down_events: &[10, 10, 10],
        ..CASE
    };
    assert_eq!(with_rules(c), (100, Limit::ScaleDownLimit));
}

#[test]
fn scaling_with_rules_scale_down_with_previous_events_still_allowing_more_scale_down() {
    let down = Some(rules(0, 0, 1000, 120, 300));
    let c = Case {
        current: 10,
        desired: 5,
        down,
        down_events: &[10, 10, 10],
        ..CASE
    };
    assert_eq!(with_rules(c), (5, Limit::None));
}

#[test]
fn scaling_with_rules_scale_down_with_spec_min_replicas_limitation_with_large_pod_policy_and_events(
) {
    let down = Some(rules(130, 120, 0, 0, 300));
    let c = Case {
        current: 100,
        desired: 0,
        min: 5,
        down,
        down_events: &[1, 5, 9],
        ..CASE
    };
    assert_eq!(with_rules(c), (5, Limit::TooFewReplicas));
}

#[test]
fn calculate_scale_up_limit_with_scaling_rules_min_change_policy() {
    let mut r = rules(2, 60, 50, 60, 0);
    r.select_policy = Select::Min;
    assert_eq!(Hpa::new().scale_up_limit(&r, NOW, 1), 2);
}

#[test]
fn calculate_scale_down_limit_with_behaviors_min_change_policy() {
    let mut r = rules(2, 60, 50, 60, 0);
    r.select_policy = Select::Min;
    assert_eq!(Hpa::new().scale_down_limit(&r, NOW, 5), 3);
}

// ---- TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors) ----

fn stabilized(
    recs: &[(u32, u64)],
    current: u32,
    desired: u32,
    up_s: u32,
    down_s: u32,
) -> (u32, Vec<u32>) {
    let b = Behavior {
        scale_up: rules(4, 15, 0, 0, up_s),
        scale_down: rules(0, 0, 100, 15, down_s),
    };
    let mut hpa = Hpa::new();
    for &(r, age_s) in recs {
        hpa.remember(NOW - age_s * S, r);
    }
    let got = hpa.stabilize(&b, NOW, current, desired);
    (got, hpa.recommendations.iter().map(|r| r.1).collect())
}

#[test]
fn normalize_with_behavior_empty_recommendations_for_scaling_down() {
    assert_eq!(stabilized(&[], 100, 5, 0, 0), (5, vec![5]));
}

#[test]
fn normalize_with_behavior_simple_scale_down_stabilization() {
    let recs = [(4, 120), (5, 60)];
    assert_eq!(stabilized(&recs, 100, 3, 0, 180), (5, vec![4, 5, 3]));
}

#[test]
fn normalize_with_behavior_simple_scale_up_stabilization() {
    let recs = [(4, 120), (5, 60)];
    assert_eq!(stabilized(&recs, 1, 7, 300, 0), (4, vec![4, 5, 7]));
}

#[test]
fn normalize_with_behavior_no_scale_down_stabilization() {
    let recs = [(1, 120), (2, 60)];
    assert_eq!(stabilized(&recs, 100, 3, 300, 0), (3, vec![1, 2, 3]));
}

#[test]
fn normalize_with_behavior_no_scale_up_stabilization() {
    let recs = [(4, 120), (5, 60)];
    assert_eq!(stabilized(&recs, 1, 3, 0, 300), (3, vec![4, 5, 3]));
}

#[test]
fn normalize_with_behavior_no_scale_down_stabilization_reuse_recommendation_element() {
    let recs = [(10, 600), (9, 540)];
    assert_eq!(stabilized(&recs, 100, 3, 0, 0), (3, vec![10, 3]));
}

#[test]
fn normalize_with_behavior_no_scale_up_stabilization_reuse_recommendation_element() {
    let recs = [(10, 600), (9, 540)];
    assert_eq!(stabilized(&recs, 1, 100, 0, 0), (100, vec![10, 100]));
}

#[test]
fn normalize_with_behavior_scale_down_stabilization_reuse_one_of_obsolete_elements() {
    let recs = [(10, 600), (4, 60), (5, 120), (9, 540)];
    assert_eq!(stabilized(&recs, 100, 3, 0, 180), (5, vec![10, 4, 5, 3]));
}

#[test]
fn normalize_with_behavior_scale_up_stabilization_reuse_one_of_obsolete_elements() {
    let recs = [(10, 6_000), (6, 60), (5, 120), (9, 180)];
    assert_eq!(stabilized(&recs, 1, 100, 300, 0), (5, vec![100, 6, 5, 9]));
}

#[test]
fn normalize_with_behavior_do_not_scale_up_when_prenormalized_rec_goes_down() {
    let recs = [(2, 6_000), (3, 180)];
    assert_eq!(stabilized(&recs, 2, 1, 300, 300).0, 2);
}

#[test]
fn normalize_with_behavior_do_not_scale_down_when_prenormalized_rec_goes_up() {
    let recs = [(2, 6_000), (1, 180)];
    assert_eq!(stabilized(&recs, 2, 3, 300, 300).0, 2);
}

// ---- TestStoreScaleEvents ----

fn stored(prev: &[(u32, u64)], r: Rules) -> Vec<(u32, bool)> {
    let b = Behavior {
        scale_up: r.clone(),
        scale_down: r,
    };
    let mut hpa = Hpa::new();
    for &(change, age_s) in prev {
        hpa.up_events.push(ScaleEvent {
            change,
            at_ns: NOW - age_s * S,
            outdated: false,
        });
    }
    hpa.record_scale(&b, NOW, 10, 15);
    hpa.up_events
        .iter()
        .map(|e| (e.change, e.outdated))
        .collect()
}

#[test]
fn store_scale_events_empty_entries_with_two_policy_behavior() {
    assert_eq!(stored(&[], rules(10, 60, 100, 60, 0)), vec![(5, false)]);
}

#[test]
fn store_scale_events_one_outdated_entry_to_be_replaced_with_behavior() {
    assert_eq!(
        stored(&[(7, 61)], rules(10, 60, 100, 60, 0)),
        vec![(5, false)]
    );
}

#[test]
fn store_scale_events_two_entries_one_of_them_to_be_replaced() {
    let got = stored(&[(7, 61), (6, 59)], rules(10, 60, 0, 0, 0));
    assert_eq!(got, vec![(5, false), (6, false)]);
}

#[test]
fn store_scale_events_replace_one_entry_use_policies_with_different_periods() {
    let prev = [(8, 29), (6, 59), (7, 61), (9, 61)];
    let got = stored(&prev, rules(10, 60, 100, 30, 0));
    assert_eq!(got, vec![(8, false), (6, false), (7, true), (5, false)]);
}

#[test]
fn store_scale_events_two_entries_both_actual() {
    let got = stored(&[(7, 58), (6, 59)], rules(10, 120, 100, 30, 0));
    assert_eq!(got, vec![(7, false), (6, false), (5, false)]);
}

#[test]
fn store_scale_events_sums_changes_within_the_period() {
    let b = Behavior::default();
    let mut hpa = Hpa::new();
    hpa.record_scale(&b, NOW - 59 * S, 10, 16);
    hpa.record_scale(&b, NOW - 61 * S, 10, 17);
    assert_eq!(change_in_period(&hpa.up_events, NOW, 60), 6);
}
