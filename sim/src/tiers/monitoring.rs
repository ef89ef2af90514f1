//! Monitoring (`[monitoring]`): a node `prometheus` that scrapes every other node (the
//! workload's clients aside) over the simulated network, keeps the series, evaluates the
//! alerting rules and anomaly detectors, and may drive the autoscaler from an alert.
//!
//! Its report: `monitoring.csv` (every metric summed over the targets at each scrape, raw and
//! downsampled as the store holds them), `alerts.csv` (every alert state change) and the
//! anomaly detectors' precision and recall against the scenario's injected faults.

use super::{RunView, Tier, TierReport};
use crate::evidence::Evidence;
use crate::kernel::Factory;
use crate::outcome::{Row, Table};
use crate::plan::{Plan, Role};
use crate::scenario::{within, Invalid, Scenario};
use crate::tiers::scaler::CONTROL;
use crate::tiers::service::SERVICE;
use minitwin_components::monitor::rules::Transition;
use minitwin_components::monitor::Monitor;
use minitwin_components::NodeId;
use std::collections::BTreeMap;

pub const MONITOR: Role = Role("monitor");

pub struct Monitoring;

impl Tier for Monitoring {
    fn key(&self) -> &'static str {
        "monitoring"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        match &s.monitoring {
            Some(m) => within(m.validate(), &["monitoring"]),
            None => Ok(()),
        }
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        if s.monitoring.is_some() {
            let zone = &s.topology.services.zones[0];
            plan.add("prometheus".into(), zone, MONITOR, 0, 0);
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let (Some(config), Some(me)) = (&s.monitoring, plan.one(MONITOR)) else {
            return;
        };
        // Every node but itself and the workload's clients; those planned after it (the users)
        // are instruments.
        let targets: Vec<NodeId> = plan
            .nodes
            .iter()
            .filter(|n| !n.instrument && n.id != me)
            .map(|n| n.id)
            .collect();
        let (config, cp) = (config.clone(), plan.one(CONTROL));
        // An autoscaled tier's slots are discovered through the control plane.
        let slots: Vec<NodeId> = match cp {
            Some(_) => plan.ids(SERVICE),
            None => Vec::new(),
        };
        let running: Vec<NodeId> = slots
            .iter()
            .copied()
            .filter(|&n| !plan.node(n).starts_down)
            .collect();
        out.push((
            me,
            Box::new(move || {
                Box::new(
                    Monitor::new(config.clone(), &targets, cp).with_pod_slots(&slots, &running),
                )
            }),
        ));
    }

    fn report(&self, run: &RunView<'_>, _: &Evidence<'_>, out: &mut TierReport) {
        let Some(m) = run
            .plan
            .one(MONITOR)
            .and_then(|n| run.sim.component::<Monitor>(n))
        else {
            return;
        };
        let faults: Vec<(f64, f64)> = run
            .scenario
            .faults
            .iter()
            .map(|f| (f.at_s(), f.end_s().unwrap_or(run.scenario.duration_s)))
            .collect();
        let interval_s = m.config().scrape_interval_ms / 1e3;
        let score = detection(m, &faults, interval_s);
        let fired = m
            .timeline
            .iter()
            .filter(|e| e.state == Transition::Firing)
            .count();
        out.lines.push((
            "monitoring".into(),
            format!(
                "{} series, {} samples; {fired} alerts fired; scrapes failed {} of {}{}",
                m.tsdb.series_count(),
                m.tsdb.samples_total(),
                m.scrapes_failed_total,
                m.scrapes_total,
                score.map_or(String::new(), |s| format!(
                    "; anomaly detection: precision {:.2}, recall {:.2} ({} of {} faults found, {} of {} alerts on a fault)",
                    s.precision(), s.recall(), s.faults_found, s.faults, s.alerts_on_fault, s.alerts
                )),
            ),
        ));
        let c = "monitoring";
        out.rows.extend([
            Row::new(c, "series", m.tsdb.series_count() as f64, "count"),
            Row::new(c, "alerts_fired_total", fired as f64, "count"),
            Row::new(
                c,
                "scrapes_failed_total",
                m.scrapes_failed_total as f64,
                "count",
            ),
        ]);
        if let Some(s) = score {
            out.rows.extend([
                Row::new(c, "anomaly_precision", s.precision(), "ratio"),
                Row::new(c, "anomaly_recall", s.recall(), "ratio"),
            ]);
        }
        out.tables.push(series_table(m));
        out.tables.push(alerts_table(m));
    }
}

/// Every metric summed over the targets at each time the store holds (raw or a step's mean).
fn series_table(m: &Monitor) -> Table {
    let mut sums: BTreeMap<(String, u64), f64> = BTreeMap::new();
    for ((_, name, part), s) in m.tsdb.all() {
        let metric = format!("{name}{}", part.suffix());
        let points = s
            .down
            .iter()
            .map(|&(t, v, _)| (t, v))
            .chain(s.raw.iter().copied());
        for (t, v) in points {
            *sums.entry((metric.clone(), t)).or_insert(0.0) += v;
        }
    }
    let rows = sums
        .into_iter()
        .map(|((metric, t), v)| vec![format!("{:.3}", t as f64 / 1e9), metric, format!("{v}")])
        .collect();
    Table {
        file: "monitoring.csv",
        header: vec!["t_s", "metric", "sum_over_targets"],
        rows,
    }
}

fn alerts_table(m: &Monitor) -> Table {
    let rows = m
        .timeline
        .iter()
        .map(|e| {
            vec![
                format!("{:.3}", e.t_ns as f64 / 1e9),
                e.alert.clone(),
                if e.anomaly { "anomaly" } else { "rule" }.to_string(),
                e.state.name().to_string(),
                format!("{}", e.value),
            ]
        })
        .collect();
    Table {
        file: "alerts.csv",
        header: vec!["t_s", "alert", "kind", "state", "value"],
        rows,
    }
}

/// The anomaly detectors' alerts against the injected faults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub faults: usize,
    pub faults_found: usize,
    pub alerts: usize,
    pub alerts_on_fault: usize,
}

impl Detection {
    /// Alerts that fell on a fault, of all alerts (1 without alerts: nothing was wrong).
    pub fn precision(&self) -> f64 {
        if self.alerts == 0 {
            1.0
        } else {
            self.alerts_on_fault as f64 / self.alerts as f64
        }
    }

    /// Faults with an alert, of all faults (1 without faults).
    pub fn recall(&self) -> f64 {
        if self.faults == 0 {
            1.0
        } else {
            self.faults_found as f64 / self.faults as f64
        }
    }
}

/// An anomaly alert is on a fault when it fires between the fault's start and its end plus
/// the time the detector needs to see it (a few scrape intervals); None without detectors.
pub fn detection(m: &Monitor, faults: &[(f64, f64)], interval_s: f64) -> Option<Detection> {
    if m.config().anomalies.is_empty() {
        return None;
    }
    let grace = 4.0 * interval_s;
    let starts: Vec<f64> = m
        .timeline
        .iter()
        .filter(|e| e.anomaly && e.state == Transition::Firing)
        .map(|e| e.t_ns as f64 / 1e9)
        .collect();
    let on = |t: f64, &(a, b): &(f64, f64)| t >= a && t <= b + grace;
    Some(Detection {
        faults: faults.len(),
        faults_found: faults
            .iter()
            .filter(|f| starts.iter().any(|&t| on(t, f)))
            .count(),
        alerts: starts.len(),
        alerts_on_fault: starts
            .iter()
            .filter(|&&t| faults.iter().any(|f| on(t, f)))
            .count(),
    })
}
