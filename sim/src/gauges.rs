//! The tiers' state per simulated second, for plots: how many service instances and store
//! members are up, and the services' queue depth (the time-average of requests queued or
//! running, summed over instances) and the stores' busy query threads. Sampled by the run loop
//! at every simulated second from the components' time-integrated levels (exact averages, not
//! snapshots), downsampled like the users' series beyond [`crate::series::PLOT_POINTS`] points.
//!
//! With an autoscaler, also the replicas the control plane wants and has ready, the requests
//! arriving at the services, and exact run totals of replica-seconds: ready, and under or over
//! what the arrivals needed at the capacity per replica the scaler's target implies.

use crate::kernel::Sim;
use crate::plan::Plan;
use crate::series::{Downsampled, Span};
use crate::tiers::scaler::CONTROL;
use crate::tiers::service::SERVICE;
use crate::tiers::store::STORE;
use minitwin_components::metrics::Metrics;

/// One second (or, downsampled, `span_s` seconds from `t_s`) of the tiers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TierSecond {
    pub t_s: u64,
    pub span_s: u64,
    /// Service instances up at the end of the span (the fewest, downsampled).
    pub services_up: u32,
    pub stores_up: u32,
    /// Requests queued or running in the services, time-averaged over the span.
    pub services_in_system: f64,
    /// Busy store query threads, time-averaged (0 without a `query_time`).
    pub stores_busy_threads: f64,
    /// Ready service replicas (in the gateways' endpoints), time-averaged (autoscaled tiers).
    pub services_ready: f64,
    /// The replicas the control plane wants at the end of the span (autoscaled tiers).
    pub replicas_desired: u32,
    /// Requests arriving at the services per second.
    pub services_arrivals_rps: f64,
}

impl Span for TierSecond {
    fn span_s(&self) -> u64 {
        self.span_s
    }

    fn merge(&self, next: &TierSecond) -> TierSecond {
        let (a, b) = (self.span_s as f64, next.span_s as f64);
        let avg = |x: f64, y: f64| (x * a + y * b) / (a + b);
        TierSecond {
            t_s: self.t_s,
            span_s: self.span_s + next.span_s,
            services_up: self.services_up.min(next.services_up),
            stores_up: self.stores_up.min(next.stores_up),
            services_in_system: avg(self.services_in_system, next.services_in_system),
            stores_busy_threads: avg(self.stores_busy_threads, next.stores_busy_threads),
            services_ready: avg(self.services_ready, next.services_ready),
            replicas_desired: next.replicas_desired,
            services_arrivals_rps: avg(self.services_arrivals_rps, next.services_arrivals_rps),
        }
    }
}

/// Exact totals over the run of an autoscaled tier, in replica-seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Provisioning {
    pub seconds: u64,
    pub ready_replica_s: f64,
    /// Processes up (starting, ready or draining): what the platform bills.
    pub running_replica_s: f64,
    /// Below what the second's arrivals needed, and above.
    pub under_replica_s: f64,
    pub over_replica_s: f64,
}

/// A level's time-average over (`last_ns`, `now_ns`], from its integral (`last` holds the
/// integral at `last_ns` and is moved on). A reset within the second (the warm-up's) starts
/// the integral over: the average is then over the part after it.
fn second_mean(m: &Metrics, name: &str, now_ns: u64, last_ns: u64, last: &mut f64) -> f64 {
    let area = m.level_area(name, now_ns).unwrap_or(0.0);
    let start = m.level_start(name).unwrap_or(0);
    let mean = if start > last_ns {
        match now_ns.saturating_sub(start) {
            0 => m.level_value(name).unwrap_or(0) as f64,
            span => area / span as f64,
        }
    } else {
        (area - *last) / now_ns.saturating_sub(last_ns).max(1) as f64
    };
    *last = area;
    mean
}

/// Samples the tiers every simulated second.
pub struct Sampler {
    services: Vec<u32>,
    stores: Vec<u32>,
    /// Each level's integral at the last sample, by node, to difference.
    last_area: Vec<f64>,
    last_ns: u64,
    points: Downsampled<TierSecond>,
    /// The control plane, and the requests per second one replica can carry at its target.
    control: Option<(u32, f64)>,
    last_control_area: [f64; 2],
    last_arrivals: u64,
    totals: Provisioning,
}

const IN_SYSTEM: &str = "service_in_system";
const BUSY_THREADS: &str = "store_busy_threads";
const ARRIVALS: &str = "service_requests_total";
const READY: &str = "scaler_ready_replicas";
const RUNNING: &str = "scaler_running_replicas";
const DESIRED: &str = "scaler_desired_replicas";

impl Sampler {
    /// A sampler of the plan's tiers; `capacity_rps` is what one replica carries at the
    /// autoscaler's target (see [`crate::tiers::scaler::capacity_rps_per_replica`]).
    pub fn new(plan: &Plan, capacity_rps: Option<f64>) -> Sampler {
        let services = plan.ids(SERVICE);
        let stores = plan.ids(STORE);
        let n = services.len() + stores.len();
        let control = plan.one(CONTROL).zip(capacity_rps);
        Sampler {
            services,
            stores,
            last_area: vec![0.0; n],
            last_ns: 0,
            points: Downsampled::new(),
            control,
            last_control_area: [0.0; 2],
            last_arrivals: 0,
            totals: Provisioning::default(),
        }
    }

    /// The run's exact provisioning totals (zero without an autoscaler).
    pub fn provisioning(&self) -> Provisioning {
        self.totals
    }

    /// The control plane's part of a second: ready and running replicas (time-averaged),
    /// wanted replicas, and the totals against what the arrivals needed.
    fn control_second(&mut self, sim: &Sim, now_ns: u64, row: &mut TierSecond) {
        let Some((node, capacity)) = self.control else {
            return;
        };
        let m = &sim.env(node).metrics;
        let last_ns = self.last_ns;
        let mut mean = |i: usize, name: &str| {
            second_mean(m, name, now_ns, last_ns, &mut self.last_control_area[i])
        };
        let (ready, running) = (mean(0, READY), mean(1, RUNNING));
        row.services_ready = ready;
        row.replicas_desired = m.level_value(DESIRED).map_or(0, |v| v.max(0) as u32);
        let needed = (row.services_arrivals_rps / capacity).ceil();
        let t = &mut self.totals;
        t.seconds += 1;
        t.ready_replica_s += ready;
        t.running_replica_s += running;
        t.under_replica_s += (needed - ready).max(0.0);
        t.over_replica_s += (ready - needed).max(0.0);
    }

    /// The second ending at `now_ns` (the run loop calls this at every whole second).
    pub fn sample(&mut self, sim: &Sim, now_ns: u64) {
        let dt = now_ns.saturating_sub(self.last_ns) as f64;
        if dt == 0.0 {
            return;
        }
        let last_ns = self.last_ns;
        let mut mean = |k: usize, node: u32, name: &str| -> f64 {
            second_mean(
                &sim.env(node).metrics,
                name,
                now_ns,
                last_ns,
                &mut self.last_area[k],
            )
        };
        let mut row = TierSecond {
            t_s: self.last_ns / 1_000_000_000,
            span_s: 1,
            ..TierSecond::default()
        };
        let mut arrivals = 0;
        for (k, &s) in self.services.iter().enumerate() {
            row.services_in_system += mean(k, s, IN_SYSTEM);
            row.services_up += u32::from(sim.is_up(s));
            arrivals += sim.env(s).metrics.counter_value(ARRIVALS).unwrap_or(0);
        }
        let offset = self.services.len();
        for (k, &s) in self.stores.iter().enumerate() {
            row.stores_busy_threads += mean(offset + k, s, BUSY_THREADS);
            row.stores_up += u32::from(sim.is_up(s));
        }
        // Counters survive restarts; the warm-up's reset starts them over.
        let new = arrivals.checked_sub(self.last_arrivals).unwrap_or(arrivals);
        self.last_arrivals = arrivals;
        row.services_arrivals_rps = new as f64 / (dt / 1e9);
        self.control_second(sim, now_ns, &mut row);
        self.last_ns = now_ns;
        self.points.push(row);
    }

    /// The downsampled points.
    pub fn points(&self) -> Vec<TierSecond> {
        self.points.points()
    }
}
