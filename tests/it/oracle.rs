//! The twin against queueing theory. One service instance with c workers and exponential
//! service times behind a cache-less gateway on constant-latency links is an M/M/c queue:
//! its mean wait must match Erlang C, and its accounting must satisfy Little's law.

use crate::inline;
use minitwin_sim::oracle::mmc_mean_wait;
use minitwin_sim::world::build;

const C: u32 = 4;
const MEAN_SERVICE_MS: f64 = 4.0;

fn mmc(lambda: f64, duration_s: f64) -> minitwin_sim::scenario::Scenario {
    inline(&format!(
        r#"
name = "mmc"
duration_s = {duration_s}
warmup_s = 20.0
[topology]
zones = ["z"]
default_link = {{ latency = {{ dist = "constant", ms = 0.1 }} }}
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

struct Measured {
    mean_wait_s: f64,
    mean_sojourn_s: f64,
    mean_in_system: f64,
    arrival_rate: f64,
}

fn measure(lambda: f64, seed: u64) -> Measured {
    let s = mmc(lambda, 420.0);
    let mut w = build(&s, seed, false);
    w.sim.run_until(w.end_ns, &mut |_| {});
    let service = w.plan.ids(minitwin_sim::tiers::service::SERVICE)[0];
    let m = &w.sim.env(service).metrics;
    let completed = m.counter_value("service_completed_total").unwrap() as f64;
    let arrived = m.counter_value("service_requests_total").unwrap() as f64;
    let window_s = s.duration_s - s.warmup_s;
    Measured {
        mean_wait_s: m.histogram_value("service_queue_wait_ns").unwrap().mean() / 1e9,
        mean_sojourn_s: m.counter_value("service_sojourn_ns_sum").unwrap() as f64 / completed / 1e9,
        mean_in_system: m.level_mean("service_in_system", w.end_ns).unwrap(),
        arrival_rate: arrived / window_s,
    }
}

#[test]
fn one_service_tier_matches_erlang_c_and_littles_law_at_utilization_0_8() {
    let mu = 1000.0 / MEAN_SERVICE_MS;
    let lambda = 0.8 * f64::from(C) * mu; // rho = 0.8
    let expected_wait_s = mmc_mean_wait(C, lambda, mu);
    let runs: Vec<Measured> = (1..=5).map(|seed| measure(lambda, seed)).collect();
    let waits: Vec<f64> = runs.iter().map(|r| r.mean_wait_s).collect();
    let n = waits.len() as f64;
    let mean = waits.iter().sum::<f64>() / n;
    let sd = (waits.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half_width = 2.776 * sd / n.sqrt(); // t(0.975, 4)
    let tolerance = half_width.max(0.05 * expected_wait_s);
    assert!(
        (mean - expected_wait_s).abs() <= tolerance,
        "mean wait {:.4} ms vs Erlang C {:.4} ms (tolerance {:.4} ms, CI half-width {:.4} ms)",
        mean * 1e3,
        expected_wait_s * 1e3,
        tolerance * 1e3,
        half_width * 1e3
    );
    for r in &runs {
        // Little's law: L = lambda W, an accounting identity up to the window's edges.
        let little = r.arrival_rate * r.mean_sojourn_s;
        let rel = (r.mean_in_system - little).abs() / little;
        assert!(
            rel < 0.01,
            "L = {:.4} but lambda W = {little:.4} ({rel:.4} apart)",
            r.mean_in_system
        );
        assert!(
            (r.arrival_rate - lambda).abs() / lambda < 0.02,
            "arrival rate {}",
            r.arrival_rate
        );
    }
}

#[test]
fn the_erlang_c_test_would_notice_a_service_twice_as_slow() {
    // The oracle must be able to fail: the same comparison against a queue whose service time
    // is 25% longer than the formula is told is far outside the tolerance.
    let mu = 1000.0 / MEAN_SERVICE_MS;
    let lambda = 0.6 * f64::from(C) * mu;
    let measured = measure(lambda, 1).mean_wait_s;
    let wrong = mmc_mean_wait(C, lambda, mu * 1.25);
    assert!(
        (measured - wrong).abs() > 0.05 * wrong,
        "measured {measured} vs a wrong model {wrong}"
    );
}
