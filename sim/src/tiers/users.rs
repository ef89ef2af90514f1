//! The users (`workload`): one client node sending the open-loop request stream to the
//! gateways, and measuring what comes back. Planned last, in the workload's zone.

use super::{Load, RunView, Stream, Tier};
use crate::evidence::{Evidence, Users as UsersEvidence};
use crate::kernel::{Factory, Sim};
use crate::plan::{Plan, Role};
use crate::scenario::{within, Invalid, Scenario};
use crate::tiers::edge::GATEWAY;
use crate::workload::{Client, Tally, LATENCY_NS};
use crate::world::s_to_ns;
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

    fn estimate(&self, s: &Scenario) -> Load {
        let w = &s.workload;
        let alias = |n: u64| n.min(minitwin_components::rng::ALIAS_MAX_N) as f64 * 12.0;
        Load {
            // Measured on the slice: about 7.5 events per request (arrival, hops, CPU, store
            // call, sync); 9 leaves room.
            events_per_s: w.rate.peak() * 9.0,
            bytes: alias(w.users) + alias(w.static_objects),
        }
    }

    fn plan(&self, s: &Scenario, plan: &mut Plan) {
        plan.add_instrument("client".into(), &s.workload.zone, CLIENT);
    }

    fn build(&self, s: &Scenario, plan: &Plan, end_ns: u64, out: &mut Vec<(NodeId, Factory)>) {
        let gateways = plan.ids(GATEWAY);
        let config = s.workload.clone();
        let id = plan.one(CLIENT).expect("planned");
        let from_ns = s_to_ns(s.warmup_s);
        out.push((
            id,
            Box::new(move || Box::new(Client::new(config.clone(), &gateways, from_ns, end_ns))),
        ));
    }

    fn collect<'a>(&self, run: &RunView<'a>, ev: &mut Evidence<'a>) {
        let (s, sim) = (run.scenario, run.sim);
        let id = run.plan.one(CLIENT).expect("planned");
        let client = sim
            .component::<Client>(id)
            .expect("faults never target the client");
        let t = &client.tally;
        let h = sim
            .env(id)
            .metrics
            .histogram_value(LATENCY_NS)
            .expect("the client registers its latency");
        // The window ends with the workload, or earlier if the run was interrupted.
        let ended_s = (sim.now_ns() as f64 / 1e9).min(s.duration_s);
        let window_s = (ended_s - s.warmup_s).max(1e-9);
        let summary = &mut ev.summary;
        summary.requests_total = t.sent;
        summary.ok_total = t.ok;
        summary.unanswered_total = client.unanswered();
        summary.throughput_rps = t.ok as f64 / window_s;
        summary.latency_ms_p50 = ms(h.value_at_quantile(0.5));
        summary.latency_ms_p99 = ms(h.value_at_quantile(0.99));
        summary.latency_ms_p999 = ms(h.value_at_quantile(0.999));
        summary.latency_cdf_ms = if h.is_empty() {
            Vec::new()
        } else {
            crate::outcome::CDF_QUANTILES
                .iter()
                .map(|&q| (q, ms(h.value_at_quantile(q))))
                .collect()
        };
        let answered = t.ok + t.failed();
        summary.error_ratio = if answered == 0 {
            0.0
        } else {
            t.failed() as f64 / answered as f64
        };
        summary.errors = Tally::ERROR_KINDS
            .iter()
            .zip(t.errors)
            .map(|(&k, n)| (k, n))
            .collect();
        summary.acked_writes_total = t.acked_writes;
        ev.users = Some(UsersEvidence { tally: t });
    }

    fn stream(&self, sim: &mut Sim, plan: &Plan, before_s: u64, out: &mut Stream) {
        let id = plan.one(CLIENT).expect("planned");
        let client = sim
            .component_mut::<Client>(id)
            .expect("faults never target the client");
        out.seconds.extend(client.take_seconds_before(before_s));
        out.acked_writes.extend(client.take_acked());
    }
}
