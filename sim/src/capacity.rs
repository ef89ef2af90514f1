//! Max QPS under an SLO: the offered rate is searched for the highest one whose p99 stays
//! within the SLO with errors within their bound, by bracketing (doubling or halving from a
//! start) and then bisection, each step a mean over replications on the same seeds. At the
//! rate found, each tier's utilization (from the time-average of its busy servers) names the
//! bottleneck, and the operational laws give the bound it implies (X <= 1 / D_max, with the
//! demand D = U / X of each server measured in the run).

use crate::outcome::{RunOutcome, Summary};
use crate::scenario::Scenario;
use crate::stats::{self, Interval};
use crate::workload::RateCurve;

/// What a rate must keep to pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slo {
    pub p99_ms: f64,
    pub max_error_ratio: f64,
}

/// The scenario with its rate curve replaced by a constant `rps`.
pub fn at_rate(base: &Scenario, rps: f64) -> Scenario {
    let mut s = base.clone();
    s.workload.rate = RateCurve::Constant { rps };
    s
}

/// One rate tried: its replications' p99 and error ratio, and the verdict on their means.
#[derive(Clone, Debug)]
pub struct Step {
    pub rate_rps: f64,
    pub p99_ms: Interval,
    pub error_ratio: Interval,
    pub throughput_rps: Interval,
    pub passes: bool,
}

impl Step {
    pub fn of(rate_rps: f64, runs: &[&Summary], slo: &Slo) -> Step {
        let get = |f: fn(&Summary) -> f64| {
            let v: Vec<f64> = runs.iter().map(|s| f(s)).collect();
            stats::interval(&v).expect("a step has replications")
        };
        let p99_ms = get(|s| s.latency_ms_p99);
        let error_ratio = get(|s| s.error_ratio);
        // A rate at which nothing was answered says nothing about latency: it fails.
        let answered = runs.iter().all(|s| s.ok_total > 0);
        Step {
            rate_rps,
            p99_ms,
            error_ratio,
            throughput_rps: get(|s| s.throughput_rps),
            passes: answered
                && p99_ms.mean <= slo.p99_ms
                && error_ratio.mean <= slo.max_error_ratio,
        }
    }
}

/// The search's state: the highest rate known to pass and the lowest known to fail.
#[derive(Clone, Debug)]
pub struct Search {
    pub start_rps: f64,
    /// Stop when (fail - pass) / pass is at most this.
    pub tolerance: f64,
    /// Give up below this rate: nothing passes.
    pub floor_rps: f64,
    /// Give up above this rate: everything passes (the SLO does not bind).
    pub ceiling_rps: f64,
    pub pass_rps: Option<f64>,
    pub fail_rps: Option<f64>,
    pub steps: Vec<Step>,
}

/// How a search ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Found {
    /// The highest passing rate, and the lowest failing one above it.
    Between { pass_rps: f64, fail_rps: f64 },
    /// Even `floor_rps` fails.
    NothingPasses { floor_rps: f64 },
    /// Even `ceiling_rps` passes.
    EverythingPasses { ceiling_rps: f64 },
}

impl Search {
    pub fn new(start_rps: f64, tolerance: f64) -> Search {
        assert!(
            start_rps > 0.0 && start_rps.is_finite(),
            "a search starts at a positive rate (doubling 0 stays 0): got {start_rps}"
        );
        assert!(tolerance > 0.0, "a tolerance of {tolerance} never ends");
        Search {
            start_rps,
            tolerance,
            floor_rps: 0.01,
            ceiling_rps: 1e8,
            pass_rps: None,
            fail_rps: None,
            steps: Vec::new(),
        }
    }

    /// The next rate to try, or None when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        match (self.pass_rps, self.fail_rps) {
            (None, None) => Some(self.start_rps),
            (Some(p), None) => (p < self.ceiling_rps).then(|| (p * 2.0).min(self.ceiling_rps)),
            (None, Some(f)) => (f > self.floor_rps).then(|| (f / 2.0).max(self.floor_rps)),
            (Some(p), Some(f)) => ((f - p) / p > self.tolerance).then_some((p + f) / 2.0),
        }
    }

    pub fn record(&mut self, step: Step) {
        let r = step.rate_rps;
        if step.passes {
            self.pass_rps = Some(self.pass_rps.map_or(r, |p| p.max(r)));
        } else {
            self.fail_rps = Some(self.fail_rps.map_or(r, |f| f.min(r)));
        }
        self.steps.push(step);
    }

    /// The result, once [`Search::next_rate`] is None.
    pub fn found(&self) -> Found {
        match (self.pass_rps, self.fail_rps) {
            (Some(pass_rps), Some(fail_rps)) => Found::Between { pass_rps, fail_rps },
            (None, _) => Found::NothingPasses {
                floor_rps: self.floor_rps,
            },
            (Some(_), None) => Found::EverythingPasses {
                ceiling_rps: self.ceiling_rps,
            },
        }
    }
}

/// One tier's load at a rate: busy servers over servers, the hottest instance, and the demand
/// per request on one server.
#[derive(Clone, Debug, PartialEq)]
pub struct TierLoad {
    pub tier: &'static str,
    /// Servers per instance (workers, query threads) and instances.
    pub servers: u32,
    pub instances: u32,
    /// Mean over instances of busy servers / servers.
    pub utilization_mean: f64,
    /// The busiest instance's utilization.
    pub utilization_max: f64,
    /// The busiest instance's utilization per request/s of system throughput (U_max / X): the
    /// tier saturates at 1 / demand.
    pub demand_s: f64,
}

impl TierLoad {
    /// The throughput this tier alone allows: 1 / D (operational bottleneck bound).
    pub fn bound_rps(&self) -> f64 {
        if self.demand_s > 0.0 {
            1.0 / self.demand_s
        } else {
            f64::INFINITY
        }
    }
}

/// Each modelled tier's load in a run of `scenario` (the services' workers; the stores' query
/// threads when they have a `query_time`). The gateways and the network have no CPU model.
pub fn tier_loads(scenario: &Scenario, o: &RunOutcome) -> Vec<TierLoad> {
    let mut out = Vec::new();
    let services = &scenario.topology.services;
    out.extend(tier(
        o,
        "service",
        "service-",
        "service_busy_workers_mean",
        services.config.workers,
    ));
    let stores = &scenario.topology.stores;
    if stores.config.query_time.is_some() {
        out.extend(tier(
            o,
            "store",
            "store-",
            "store_busy_threads_mean",
            stores.config.query_threads,
        ));
    }
    out
}

fn tier(
    o: &RunOutcome,
    tier: &'static str,
    prefix: &str,
    metric: &str,
    servers: u32,
) -> Option<TierLoad> {
    let busy: Vec<f64> = o
        .rows
        .iter()
        .filter(|r| r.component.starts_with(prefix) && r.metric == metric)
        .map(|r| r.value / f64::from(servers))
        .collect();
    if busy.is_empty() {
        return None;
    }
    // Stores: only the members that served (primaries) count as instances.
    let serving: Vec<f64> = busy.iter().copied().filter(|&u| u > 0.0).collect();
    let instances = serving.len().max(1);
    let utilization_mean = serving.iter().sum::<f64>() / instances as f64;
    let utilization_max = serving.iter().copied().fold(0.0, f64::max);
    // Operational law at the busiest instance: U = X f W / servers, with f its share of the
    // tier's work W per request; it saturates first, at X = servers / (f W) = X / U_max.
    let demand_s = utilization_max / o.summary.throughput_rps.max(1e-9);
    Some(TierLoad {
        tier,
        servers,
        instances: instances as u32,
        utilization_mean,
        utilization_max,
        demand_s,
    })
}

/// The tier with the highest utilization at the busiest instance.
pub fn bottleneck(loads: &[TierLoad]) -> Option<&TierLoad> {
    loads
        .iter()
        .max_by(|a, b| a.utilization_max.total_cmp(&b.utilization_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate_rps: f64, passes: bool) -> Step {
        let i = Interval {
            mean: 0.0,
            half_width: 0.0,
            n: 2,
        };
        Step {
            rate_rps,
            p99_ms: i,
            error_ratio: i,
            throughput_rps: i,
            passes,
        }
    }

    /// Runs a search against a system whose capacity is `capacity`.
    fn search(start: f64, capacity: f64) -> Search {
        let mut s = Search::new(start, 0.01);
        while let Some(r) = s.next_rate() {
            s.record(step(r, r <= capacity));
            assert!(s.steps.len() < 100, "the search ends");
        }
        s
    }

    #[test]
    fn the_search_brackets_up_or_down_then_bisects_to_the_tolerance() {
        for (start, capacity) in [(100.0, 1234.0), (5000.0, 1234.0), (1234.0, 1234.0)] {
            let s = search(start, capacity);
            let Found::Between { pass_rps, fail_rps } = s.found() else {
                panic!("{:?}", s.found())
            };
            assert!(
                pass_rps <= capacity && capacity < fail_rps,
                "{pass_rps} {fail_rps}"
            );
            assert!((fail_rps - pass_rps) / pass_rps <= 0.01);
        }
        assert!(search(100.0, 0.0).found() == Found::NothingPasses { floor_rps: 0.01 });
        assert!(matches!(
            search(100.0, 1e12).found(),
            Found::EverythingPasses { .. }
        ));
    }
}
