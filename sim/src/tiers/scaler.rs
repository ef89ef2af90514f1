//! The control tier (`topology.autoscaler`): a control plane node that runs the service tier's
//! pods, their endpoints, metrics-server, the HPA and, optionally, predictive scaling.
//!
//! With it, the service tier plans `max_replicas` pod slots, of which `topology.services.count`
//! run from the start; the others wait, down, for the control plane to start them. The
//! gateways balance over the endpoints it sends them.
//!
//! Predictive scaling needs history: it is synthesized here from the workload's own rate curve
//! for the days before the run, scaled to what reaches the services (the static share that the
//! gateways' caches serve, by the Che approximation, does not), not simulated request by
//! request.

use super::{RunView, Tier, TierReport};
use crate::evidence::Evidence;
use crate::kernel::Factory;
use crate::oracle;
use crate::outcome::{Row, Table};
use crate::plan::{Plan, Role};
use crate::scenario::{check, within, Invalid, Scenario};
use crate::tiers::edge::GATEWAY;
use crate::tiers::service::SERVICE;
use crate::workload::RateCurve;
use minitwin_components::scaler::{ControlPlane, MetricTarget};
use minitwin_components::NodeId;

pub const CONTROL: Role = Role("control-plane");

pub struct Scaling;

impl Tier for Scaling {
    fn key(&self) -> &'static str {
        "topology.autoscaler"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        let Some(a) = &s.topology.autoscaler else {
            return Ok(());
        };
        within(a.validate(), &["topology", "autoscaler"])?;
        let count = s.topology.services.count;
        check(
            (a.min_replicas..=a.max_replicas).contains(&count),
            &["topology", "services", "count"],
            format!(
                "{count} initial replicas are outside the autoscaler's {}-{}: set \
                 topology.autoscaler.min_replicas/max_replicas around it",
                a.min_replicas, a.max_replicas
            ),
        )?;
        check(
            s.topology.gateways.count > 0,
            &["topology", "gateways", "count"],
            "the autoscaler sends its endpoints to gateways: add at least one",
        )
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        if s.topology.autoscaler.is_some() {
            let zone = &s.topology.services.zones[0];
            plan.add("control-plane".into(), zone, CONTROL, 0, 0);
        }
    }

    fn build(&self, s: &Scenario, plan: &Plan, _end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let (Some(config), Some(id)) = (&s.topology.autoscaler, plan.one(CONTROL)) else {
            return;
        };
        let mut config = config.clone();
        if let Some(p) = &mut config.predictive {
            p.history_rps = history_rps(s, p.history_days, p.step_s, p.history_trend_per_day);
        }
        let (slots, gateways) = (plan.ids(SERVICE), plan.ids(GATEWAY));
        let monitor = plan.one(crate::tiers::monitoring::MONITOR);
        let initial = s.topology.services.count;
        out.push((
            id,
            Box::new(move || {
                Box::new(
                    ControlPlane::new(config.clone(), &slots, initial, &gateways)
                        .with_monitor(monitor),
                )
            }),
        ));
    }

    fn report(&self, run: &RunView<'_>, _: &Evidence<'_>, out: &mut TierReport) {
        let Some(cp) = run
            .plan
            .one(CONTROL)
            .and_then(|n| run.sim.component::<ControlPlane>(n))
        else {
            return;
        };
        let m = &run.sim.env(run.plan.one(CONTROL).expect("planned")).metrics;
        let count = |name: &str| m.counter_value(name).unwrap_or(0) as f64;
        let p = run.provisioning;
        let hours = |replica_s: f64| replica_s / 3_600.0;
        let (lo, hi) = cp.timeline.iter().fold((u32::MAX, 0), |(lo, hi), q| {
            (lo.min(q.desired), hi.max(q.desired))
        });
        let mean_ready = p.ready_replica_s / p.seconds.max(1) as f64;
        out.lines.push((
            "autoscaler".into(),
            format!(
                "replicas {lo}-{hi} (ready {mean_ready:.1} on average); {} scale-ups, {} \
                 scale-downs; {:.2} replica-hours running; under-provisioned {:.0} \
                 replica-s, over {:.0} replica-s",
                count("scaler_scale_ups_total"),
                count("scaler_scale_downs_total"),
                hours(p.running_replica_s),
                p.under_replica_s,
                p.over_replica_s,
            ),
        ));
        let c = "autoscaler";
        out.rows.extend([
            Row::new(
                c,
                "running_replica_hours",
                hours(p.running_replica_s),
                "replica-h",
            ),
            Row::new(
                c,
                "ready_replica_hours",
                hours(p.ready_replica_s),
                "replica-h",
            ),
            Row::new(
                c,
                "under_provisioned_replica_s",
                p.under_replica_s,
                "replica-s",
            ),
            Row::new(
                c,
                "over_provisioned_replica_s",
                p.over_replica_s,
                "replica-s",
            ),
            Row::new(
                c,
                "capacity_rps_per_replica",
                capacity_rps_per_replica(run.scenario).unwrap_or(0.0),
                "req/s",
            ),
        ]);
        let rows = cp
            .timeline
            .iter()
            .map(|q| {
                vec![
                    format!("{:.3}", q.t_ns as f64 / 1e9),
                    q.desired.to_string(),
                    q.ready.to_string(),
                    q.running.to_string(),
                ]
            })
            .collect();
        out.tables.push(Table {
            file: "replicas.csv",
            header: vec!["t_s", "desired", "ready", "running"],
            rows,
        });
    }
}

/// Requests per second one replica carries at the autoscaler's first target: for CPU, its
/// workers (one core each) at the target utilization over the mean CPU time of a request.
/// None without an autoscaler.
pub fn capacity_rps_per_replica(s: &Scenario) -> Option<f64> {
    let a = s.topology.autoscaler.as_ref()?;
    let service = &s.topology.services.config;
    Some(match a.metrics.first()? {
        MetricTarget::Cpu {
            target_utilization_percent,
        } => {
            let cpu_s = service.service_time.mean_ms() / 1e3;
            f64::from(service.workers) * f64::from(*target_utilization_percent)
                / 100.0
                / cpu_s.max(1e-9)
        }
        MetricTarget::RequestsPerSecond { target_per_pod } => *target_per_pod,
    })
}

/// The share of users' requests that reach the services: reads, writes, and the static
/// requests the gateways' caches miss (the Che approximation at the mean rate per gateway).
pub fn service_share(s: &Scenario) -> f64 {
    let w = &s.workload;
    let mix = &w.mix;
    let total = mix.static_ + mix.read + mix.write;
    let g = &s.topology.gateways;
    let miss = if g.config.cache_enabled && g.count > 0 && w.static_objects > 0 {
        let q = oracle::zipf_popularity(w.static_objects, w.zipf_alpha);
        let mean = mean_rate(&w.rate) * mix.static_ / total / f64::from(g.count);
        let lru = oracle::che_hit_ratio(&q, mean, g.config.cache_max_entries);
        let idle = oracle::idle_timeout_hit_ratio(&q, mean, g.config.cache_inactive_ms / 1e3);
        1.0 - lru.min(idle)
    } else {
        1.0
    };
    (mix.read + mix.write + mix.static_ * miss) / total
}

fn mean_rate(curve: &RateCurve) -> f64 {
    let day: f64 = (0..1_440).map(|m| curve.rate(f64::from(m) * 60.0)).sum();
    day / 1_440.0
}

/// `days` of history before the run, one value per `step_s`: the mean of the workload's curve
/// over each step (at negative times: a periodic curve continues, a one-off surge is absent),
/// times the share that reaches the services, scaled back by `trend_per_day` per day before
/// the run.
pub fn history_rps(s: &Scenario, days: u32, step_s: u32, trend_per_day: f64) -> Vec<f64> {
    let share = service_share(s);
    let steps = u64::from(days) * 86_400 / u64::from(step_s);
    let start = -(f64::from(days) * 86_400.0);
    (0..steps)
        .map(|k| {
            let t0 = start + k as f64 * f64::from(step_s);
            let points = 16;
            let sum: f64 = (0..points)
                .map(|i| {
                    let t = t0 + (f64::from(i) + 0.5) * f64::from(step_s) / f64::from(points);
                    s.workload.rate.rate(t)
                })
                .sum();
            let days_before = -t0 / 86_400.0;
            let growth = minitwin_components::math::powf(1.0 + trend_per_day, -days_before);
            sum / f64::from(points) * share * growth
        })
        .collect()
}
