//! The tiers' state per simulated second, for plots: how many service instances and store
//! members are up, and the services' queue depth (the time-average of requests queued or
//! running, summed over instances) and the stores' busy query threads. Sampled by the run loop
//! at every simulated second from the components' time-integrated levels (exact averages, not
//! snapshots), downsampled like the users' series beyond [`crate::series::PLOT_POINTS`] points.

use crate::kernel::Sim;
use crate::plan::Plan;
use crate::series::{Downsampled, Span};
use crate::tiers::service::SERVICE;
use crate::tiers::store::STORE;

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
        }
    }
}

/// Samples the tiers every simulated second.
pub struct Sampler {
    services: Vec<u32>,
    stores: Vec<u32>,
    /// Each level's integral at the last sample, by node, to difference.
    last_area: Vec<f64>,
    last_ns: u64,
    points: Downsampled<TierSecond>,
}

const IN_SYSTEM: &str = "service_in_system";
const BUSY_THREADS: &str = "store_busy_threads";

impl Sampler {
    pub fn new(plan: &Plan) -> Sampler {
        let services = plan.ids(SERVICE);
        let stores = plan.ids(STORE);
        let n = services.len() + stores.len();
        Sampler {
            services,
            stores,
            last_area: vec![0.0; n],
            last_ns: 0,
            points: Downsampled::new(),
        }
    }

    /// The second ending at `now_ns` (the run loop calls this at every whole second).
    pub fn sample(&mut self, sim: &Sim, now_ns: u64) {
        let dt = now_ns.saturating_sub(self.last_ns) as f64;
        if dt == 0.0 {
            return;
        }
        let mut mean = |k: usize, node: u32, name: &str| -> f64 {
            let area = sim
                .env(node)
                .metrics
                .level_area(name, now_ns)
                .unwrap_or(0.0);
            // The warm-up's reset starts the integral over: count from zero then.
            let delta = if area >= self.last_area[k] {
                area - self.last_area[k]
            } else {
                area
            };
            self.last_area[k] = area;
            delta / dt
        };
        let mut row = TierSecond {
            t_s: self.last_ns / 1_000_000_000,
            span_s: 1,
            ..TierSecond::default()
        };
        for (k, &s) in self.services.iter().enumerate() {
            row.services_in_system += mean(k, s, IN_SYSTEM);
            row.services_up += u32::from(sim.is_up(s));
        }
        let offset = self.services.len();
        for (k, &s) in self.stores.iter().enumerate() {
            row.stores_busy_threads += mean(offset + k, s, BUSY_THREADS);
            row.stores_up += u32::from(sim.is_up(s));
        }
        self.last_ns = now_ns;
        self.points.push(row);
    }

    /// The downsampled points.
    pub fn points(&self) -> Vec<TierSecond> {
        self.points.points()
    }
}
