//! The users (`workload`): one client node sending the open-loop request stream to the
//! gateways, and measuring what comes back. Planned last, in the workload's zone.

use super::{RunView, Tier};
use crate::evidence::{Evidence, Users as UsersEvidence};
use crate::kernel::Factory;
use crate::outcome::recovery_s;
use crate::plan::{Plan, Role};
use crate::scenario::{within, Invalid, Scenario};
use crate::tiers::edge::GATEWAY;
use crate::workload::Client;
use minitwin_components::NodeId;

pub const CLIENT: Role = Role("client");

pub struct Users;

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Tier for Users {
    fn key(&self) -> &'static str {
        "workload"
    }

    fn validate(&self, s: &Scenario) -> Result<(), Invalid> {
        within(s.workload.validate(), &["workload"])
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        plan.add("client".into(), &s.workload.zone, CLIENT, 0, 0);
    }

    fn build(&self, s: &Scenario, plan: &Plan, end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let gateways = plan.ids(GATEWAY);
        let config = s.workload.clone();
        let id = plan.one(CLIENT).expect("planned");
        out.push((
            id,
            Box::new(move || Box::new(Client::new(config.clone(), &gateways, end_ns))),
        ));
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let (s, sim) = (run.scenario, run.sim);
        let id = run.plan.one(CLIENT).expect("planned");
        let client = sim
            .component::<Client>(id)
            .expect("faults never target the client");
        let m = &sim.env(id).metrics;
        let c = |n: &str| m.counter_value(n).unwrap_or(0);
        let errors = vec![
            ("429", c("client_status_429_total")),
            ("500", c("client_status_500_total")),
            ("502", c("client_status_502_total")),
            ("503", c("client_status_503_total")),
            ("504", c("client_status_504_total")),
            ("timeout", c("client_timeouts_total")),
        ];
        let ok = c("client_status_200_total");
        let failed: u64 = errors.iter().map(|e| e.1).sum();
        let window_s = s.duration_s - s.warmup_s;
        let h = m
            .histogram_value("client_latency_ns")
            .expect("client registers latency");
        let summary = &mut ev.summary;
        summary.requests_total = c("client_requests_total");
        summary.ok_total = ok;
        summary.throughput_rps = ok as f64 / window_s;
        summary.latency_ms_p50 = ms(h.value_at_quantile(0.5));
        summary.latency_ms_p99 = ms(h.value_at_quantile(0.99));
        summary.latency_ms_p999 = ms(h.value_at_quantile(0.999));
        summary.error_ratio = if ok + failed == 0 {
            0.0
        } else {
            failed as f64 / (ok + failed) as f64
        };
        summary.errors = errors;
        summary.acked_writes_total = client.acked_writes.len() as u64;
        summary.recovery_s = crate::run::first_fault_s(s).map(|at| recovery_s(&client.seconds, at));
        ev.users = Some(UsersEvidence {
            acked_writes: &client.acked_writes,
            seconds: &client.seconds,
        });
    }
}
