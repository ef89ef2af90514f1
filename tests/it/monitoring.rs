//! Monitoring in whole runs: the catalogue agrees with what the tiers register, alerts follow
//! Prometheus' pending/firing/resolved semantics on real faults and stay silent on a healthy
//! run, the anomaly detectors are scored against the injected faults, and an alert can drive
//! the autoscaler when its own metrics are blind.

use crate::{minitwin, shipped};
use minitwin_components::monitor::catalog::{Kind, CATALOG};
use minitwin_components::monitor::rules::{Agg, Expr, Op, PartName, Rule};
use minitwin_components::monitor::MonitorConfig;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario::{Fault, Scenario};
use std::collections::BTreeSet;

fn go(s: &Scenario) -> RunOutcome {
    run(s, 1, &RunOptions::default(), &mut |_| {})
}

/// (t_s, alert, state) from `alerts.csv`.
fn alerts(o: &RunOutcome) -> Vec<(f64, String, String)> {
    let t = o
        .tables
        .iter()
        .find(|t| t.file == "alerts.csv")
        .expect("alerts.csv");
    t.rows
        .iter()
        .map(|r| (r[0].parse().unwrap(), r[1].clone(), r[3].clone()))
        .collect()
}

/// The name a catalogued metric has in metrics.csv.
fn row_name(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Counter | Kind::Gauge => name.to_string(),
        Kind::Level => format!("{name}_mean"),
        Kind::Histogram => format!("{}_count", name.trim_end_matches("_ns")),
    }
}

#[test]
fn every_catalogued_metric_is_registered_by_some_tier_and_every_registered_one_is_catalogued() {
    let mut runs = Vec::new();
    for (name, seconds) in [
        ("tests/it/every-field.toml", 4.0),
        ("scenarios/reshard-1-to-4.toml", 8.0),
        ("scenarios/monitored-faults.toml", 320.0),
        ("scenarios/archive-90d.toml", f64::MAX),
        ("scenarios/mirror-burst.toml", 10.0),
    ] {
        let mut s = minitwin_sim::scenario::load(&crate::root().join(name)).unwrap();
        s.duration_s = s.duration_s.min(seconds);
        s.warmup_s = s.warmup_s.min(s.duration_s / 2.0);
        s.faults
            .retain(|f| f.end_s().is_some_and(|e| e <= s.duration_s));
        s.checks = Default::default();
        runs.push(go(&s));
    }
    let mut autoscaled = shipped("autoscale-step");
    autoscaled.duration_s = 200.0;
    autoscaled.topology.autoscaler.as_mut().unwrap().predictive =
        shipped("surge").topology.autoscaler.unwrap().predictive;
    runs.push(go(&autoscaled));
    // Every attack, and a replica without a certificate (replication refused in the clear).
    let mut attacked = shipped("security-rogue");
    attacked.security.as_mut().unwrap().without_certificate = vec!["store-0-r1".into()];
    runs.push(go(&attacked));
    let rows: BTreeSet<String> = runs
        .iter()
        .flat_map(|o| o.rows.iter())
        .filter(|r| !["run", "network", "autoscaler", "monitoring"].contains(&r.component.as_str()))
        .filter(|r| !r.component.starts_with("check:"))
        .map(|r| r.metric.clone())
        .collect();
    let expected: BTreeSet<String> = CATALOG.iter().map(|d| row_name(d.name, d.kind)).collect();
    let missing: Vec<&String> = expected.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "catalogued but never registered: {missing:?}"
    );
    // Rows a histogram or level adds beside its catalogued name, and the run's own totals.
    let derived = |m: &str| {
        ["_ms_mean", "_ms_p50", "_ms_p99", "_ms_p999", "_ms_max"]
            .iter()
            .any(|s| m.ends_with(s))
            || [
                "crashes_total",
                "disk_syncs_total",
                "disk_records_lost_total",
            ]
            .contains(&m)
    };
    let unknown: Vec<&String> = rows.difference(&expected).filter(|m| !derived(m)).collect();
    assert!(
        unknown.is_empty(),
        "registered but not catalogued: {unknown:?}"
    );
}

fn monitored(duration_s: f64) -> Scenario {
    let mut s = shipped("monitored-faults");
    s.duration_s = duration_s;
    s.faults
        .retain(|f| f.end_s().is_some_and(|e| e <= duration_s));
    s
}

#[test]
fn a_store_crash_makes_target_down_pending_then_firing_after_its_for_and_resolved_after_the_restart(
) {
    let o = go(&monitored(600.0));
    let down: Vec<(f64, String)> = alerts(&o)
        .into_iter()
        .filter(|a| a.1 == "TargetDown")
        .map(|a| (a.0, a.2))
        .collect();
    // store-0 dies at 300 s: the scrape at 300 s goes unanswered, so the round closed at
    // 315 s sees up 0 (pending); 30 s later it fires; it restarts at 360 s and the round
    // closed at 375 s sees it up.
    assert_eq!(
        down,
        vec![
            (315.0, "pending".to_string()),
            (345.0, "firing".to_string()),
            (375.0, "resolved".to_string())
        ]
    );
}

#[test]
fn a_healthy_run_raises_no_alert_and_the_detectors_no_anomaly() {
    let mut s = monitored(900.0);
    s.faults.clear();
    let o = go(&s);
    assert_eq!(alerts(&o), vec![], "no fault, no alert");
    assert_eq!(o.value("monitoring", "alerts_fired_total"), Some(0.0));
    assert_eq!(o.value("monitoring", "anomaly_precision"), Some(1.0));
}

#[test]
fn the_detectors_are_scored_against_the_injected_faults() {
    let o = go(&monitored(1_800.0));
    // The crash and the partition raise errors and slow the services: caught. The latency
    // spike between the edge and one zone moves neither series the detectors watch: missed.
    assert_eq!(o.value("monitoring", "anomaly_recall"), Some(2.0 / 3.0));
    assert_eq!(o.value("monitoring", "anomaly_precision"), Some(1.0));
    let series = o
        .tables
        .iter()
        .find(|t| t.file == "monitoring.csv")
        .unwrap();
    let metrics: BTreeSet<&str> = series.rows.iter().map(|r| r[1].as_str()).collect();
    assert!(metrics.contains("up") && metrics.contains("gateway_upstream_latency_ns_p99_ms"));
    for m in metrics {
        let base = m.trim_end_matches("_p99_ms").trim_end_matches("_count");
        let known = m == "up" || CATALOG.iter().any(|d| d.name == m || d.name == base);
        assert!(known, "{m} is scraped but not catalogued");
    }
}

#[test]
fn an_alert_scales_the_tier_out_when_the_autoscalers_own_metrics_are_blind() {
    let mut s = shipped("autoscale-step");
    s.duration_s = 300.0;
    s.faults.push(Fault::MetricsPipeline {
        at_s: 60.0,
        duration_s: 240.0,
        lost: true,
        delay_ms: 0.0,
    });
    let blind = go(&s);
    s.monitoring = Some(MonitorConfig {
        rules: vec![Rule {
            name: "ServiceShedding".into(),
            expr: Expr {
                metric: "service_shed_total".into(),
                part: PartName::Value,
                agg: Agg::Rate,
            },
            op: Op::Above,
            threshold: 10.0,
            for_s: 30.0,
            scale_out_by: Some(4),
        }],
        ..MonitorConfig::default()
    });
    let alerted = go(&s);
    let last_desired = |o: &RunOutcome| {
        let t = o.tables.iter().find(|t| t.file == "replicas.csv").unwrap();
        t.rows.last().unwrap()[1].parse::<u32>().unwrap()
    };
    assert_eq!(last_desired(&blind), 2, "a blind HPA holds");
    assert!(last_desired(&alerted) >= 6, "the alert added replicas");
    assert!(alerted.summary.error_ratio < blind.summary.error_ratio);
}

#[test]
fn minitwin_metrics_lists_the_catalogue_as_a_table_and_as_csv() {
    let table = minitwin(&["metrics"]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with(&format!("{} metrics", CATALOG.len())));
    assert!(text.contains("service_cpu_ns_total"));
    let csv = minitwin(&["metrics", "--csv"]);
    let text = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(text.lines().count(), CATALOG.len() + 1);
    assert!(text.starts_with("name,type,unit,help\n"));
}

#[test]
fn pod_slots_switched_off_are_no_targets_so_target_down_stays_quiet_while_the_tier_scales() {
    let mut s = shipped("autoscale-step");
    s.duration_s = 420.0;
    s.monitoring = Some(MonitorConfig {
        rules: vec![Rule {
            name: "TargetDown".into(),
            expr: Expr {
                metric: "up".into(),
                part: PartName::Value,
                agg: Agg::Min,
            },
            op: Op::Below,
            threshold: 1.0,
            for_s: 30.0,
            scale_out_by: None,
        }],
        ..MonitorConfig::default()
    });
    let o = go(&s);
    assert_eq!(alerts(&o), vec![]);
    assert_eq!(o.value("monitoring", "scrapes_failed_total"), Some(0.0));
}
