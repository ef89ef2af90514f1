//! The twin against queueing theory. One service instance with c workers and exponential
//! service times behind a cache-less gateway on constant-latency links is an M/M/c queue: its
//! mean wait must match Erlang C, and its accounting must satisfy Little's law. Each
//! comparison is also shown to notice a model that is wrong by a stated amount.

use crate::inline;
use minitwin_sim::oracle::mmc_mean_wait;
use minitwin_sim::tiers::service::SERVICE;
use minitwin_sim::tiers::users::CLIENT;
use minitwin_sim::workload::Client;
use minitwin_sim::world::build;

const C: u32 = 4;
const MEAN_SERVICE_MS: f64 = 4.0;
const LINK_MS: f64 = 0.1;
/// Hops between the client and the service, there and back (client, gateway, service).
const HOPS: f64 = 4.0;

fn mmc(lambda: f64, duration_s: f64) -> minitwin_sim::scenario::Scenario {
    inline(&format!(
        r#"
name = "mmc"
duration_s = {duration_s}
warmup_s = 20.0
[topology]
zones = ["z"]
default_link = {{ latency = {{ dist = "constant", ms = {LINK_MS} }} }}
[topology.gateways]
count = 1
zones = ["z"]
config = {{ cache_enabled = false, proxy_timeout_ms = 1e9 }}
[topology.services]
count = 1
zones = ["z"]
config = {{ workers = {C}, queue_capacity = 1000000, service_time = {{ dist = "exponential", mean_ms = {MEAN_SERVICE_MS} }} }}
[topology.stores]
shards = 1
zones = ["z"]
[workload]
rate = {{ curve = "constant", rps = {lambda} }}
mix = {{ static = 1.0, read = 0.0, write = 0.0 }}
timeout_ms = 1e9
zone = "z"
"#
    ))
}

/// One run's measurements, each from its own instrument.
struct Measured {
    /// The service's queue-wait histogram.
    mean_wait_s: f64,
    /// The time-average of the number in the service (its integrated level).
    mean_in_system: f64,
    /// Arrival rate from the client's sends, and the mean time in the service from the
    /// client's own timestamps (its latency minus the constant network hops).
    arrival_rate: f64,
    mean_sojourn_s: f64,
}

fn measure(lambda: f64, seed: u64) -> Measured {
    let s = mmc(lambda, 420.0);
    let mut w = build(&s, seed, false);
    w.sim.run_until(w.end_ns, &mut |_| {});
    let service = w.plan.ids(SERVICE)[0];
    let m = &w.sim.env(service).metrics;
    let client = w.plan.one(CLIENT).unwrap();
    let t = &w.sim.component::<Client>(client).unwrap().tally;
    let window_s = s.duration_s - s.warmup_s;
    Measured {
        mean_wait_s: m.histogram_value("service_queue_wait_ns").unwrap().mean() / 1e9,
        mean_in_system: m.level_mean("service_in_system", w.end_ns).unwrap(),
        arrival_rate: t.sent as f64 / window_s,
        mean_sojourn_s: t.ok_latency_ns_sum as f64 / t.ok as f64 / 1e9 - HOPS * LINK_MS / 1e3,
    }
}

/// The mean of `samples` agrees with `expected` when they differ by at most the larger of the
/// 95 % confidence half-width (t, n - 1 degrees of freedom) and `rel_tol` of `expected`.
fn agrees(samples: &[f64], expected: f64, rel_tol: f64) -> Result<(), String> {
    const T_975: [f64; 9] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
    ];
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let sd = (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half_width = T_975[samples.len() - 2] * sd / n.sqrt();
    let tolerance = half_width.max(rel_tol * expected.abs());
    if (mean - expected).abs() <= tolerance {
        Ok(())
    } else {
        Err(format!(
            "mean {mean:.6} vs expected {expected:.6}: apart by {:.6}, tolerance {tolerance:.6} (CI half-width {half_width:.6})",
            (mean - expected).abs()
        ))
    }
}

/// One measured value against `expected`, within `rel_tol` of it.
fn close(measured: f64, expected: f64, rel_tol: f64) -> Result<(), String> {
    let apart = (measured - expected).abs() / expected.abs();
    if apart <= rel_tol {
        Ok(())
    } else {
        Err(format!(
            "{measured:.6} vs expected {expected:.6}: {:.2} % apart (tolerance {:.2} %)",
            apart * 100.0,
            rel_tol * 100.0
        ))
    }
}

const MU: f64 = 1000.0 / MEAN_SERVICE_MS;

/// rho = 0.8, five seeds.
fn runs() -> (f64, Vec<Measured>) {
    let lambda = 0.8 * f64::from(C) * MU;
    (lambda, (1..=5).map(|seed| measure(lambda, seed)).collect())
}

/// Erlang C within the CI or 5 %.
const ERLANG_TOL: f64 = 0.05;
/// Little's law within 1 % (an identity, up to the window's edges and the network hops).
const LITTLE_TOL: f64 = 0.01;

#[test]
fn one_service_tier_matches_erlang_c_and_littles_law_at_utilization_0_8() {
    let (lambda, runs) = runs();
    let waits: Vec<f64> = runs.iter().map(|r| r.mean_wait_s).collect();
    agrees(&waits, mmc_mean_wait(C, lambda, MU), ERLANG_TOL).unwrap();
    for r in &runs {
        // L = lambda W, with L from the service's own level and lambda, W from the client.
        let little = r.arrival_rate * r.mean_sojourn_s;
        close(r.mean_in_system, little, LITTLE_TOL).unwrap_or_else(|e| panic!("Little's law: {e}"));
        assert!(
            (r.arrival_rate - lambda).abs() / lambda < 0.02,
            "arrival rate {}",
            r.arrival_rate
        );
    }
}

#[test]
fn the_same_comparisons_notice_a_model_wrong_by_a_quarter_or_a_tenth() {
    let (lambda, runs) = runs();
    let waits: Vec<f64> = runs.iter().map(|r| r.mean_wait_s).collect();
    // The formula told service takes 25 % less time than it does.
    let wrong = mmc_mean_wait(C, lambda, MU * 1.25);
    assert!(
        agrees(&waits, wrong, ERLANG_TOL).is_err(),
        "Erlang C missed a 25 % error"
    );
    for r in &runs {
        // A time in system 10 % off.
        let wrong = r.arrival_rate * r.mean_sojourn_s * 1.1;
        assert!(
            close(r.mean_in_system, wrong, LITTLE_TOL).is_err(),
            "Little's law missed a 10 % error"
        );
    }
}
