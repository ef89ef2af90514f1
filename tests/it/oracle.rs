//! The twin against queueing and caching theory (models.md, "Analytic oracles"). One service
//! instance with c workers behind a cache-less gateway on constant-latency links is an M/M/c
//! (or M/M/1/K, or M/G/1) queue; one gateway's cache under a Zipf stream is an LRU (or an
//! idle-timeout) cache. Each comparison is a mean over five seeds against the formula, within
//! the larger of the 95 % confidence half-width and a stated tolerance, and each is shown to
//! notice a model that is wrong by a stated amount.

use crate::inline;
use minitwin_sim::oracle::{
    bottleneck_throughput, che_hit_ratio, idle_timeout_hit_ratio, mm1k_loss, mmc_mean_wait,
    pk_mean_wait, zipf_popularity,
};
use minitwin_sim::run::{run, RunOptions};
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
        eprintln!(
            "agrees: mean {mean:.6} vs expected {expected:.6} ({:+.2} %, tolerance {tolerance:.6})",
            (mean / expected - 1.0) * 100.0
        );
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

/// One gateway (cache `cache`, an inline TOML table) in front of `services` instances of
/// `service` (an inline TOML table), constant 0.1 ms links, `rps` requests of which `static_`
/// are static, over `objects` Zipf(0.8) objects.
fn queue(
    service: &str,
    services: u32,
    cache: &str,
    rps: f64,
    static_: f64,
    objects: u64,
) -> String {
    format!(
        r#"
name = "oracle"
duration_s = 300.0
warmup_s = 20.0
[topology]
zones = ["z"]
default_link = {{ latency = {{ dist = "constant", ms = {LINK_MS} }} }}
[topology.gateways]
count = 1
zones = ["z"]
config = {{ max_fails = 0, proxy_timeout_ms = 1e9, {cache} }}
[topology.services]
count = {services}
zones = ["z"]
config = {service}
[topology.stores]
shards = 1
zones = ["z"]
[workload]
rate = {{ curve = "constant", rps = {rps} }}
mix = {{ static = {static_}, read = {read}, write = 0.0 }}
static_objects = {objects}
zipf_alpha = 0.8
timeout_ms = 1e9
zone = "z"
"#,
        read = 1.0 - static_
    )
}

fn over_seeds(text: &str, f: impl Fn(&minitwin_sim::outcome::RunOutcome) -> f64) -> Vec<f64> {
    let s = inline(text);
    (1..=5)
        .map(|seed| f(&run(&s, seed, &RunOptions::default(), &mut |_| {})))
        .collect()
}

fn value(o: &minitwin_sim::outcome::RunOutcome, component: &str, metric: &str) -> f64 {
    o.value(component, metric)
        .unwrap_or_else(|| panic!("no {component} {metric}"))
}

#[test]
fn a_full_single_server_queue_sheds_what_m_m_1_k_predicts() {
    // One worker and room for 4 waiting: K = 5; rho = 0.9.
    let (mu, k) = (250.0, 5);
    let lambda = 0.9 * mu;
    let service = "{ workers = 1, queue_capacity = 4, service_time = { dist = \"exponential\", mean_ms = 4.0 } }";
    let losses = over_seeds(
        &queue(service, 1, "cache_enabled = false", lambda, 1.0, 1000),
        |o| {
            value(o, "service-0", "service_shed_total")
                / value(o, "service-0", "service_requests_total")
        },
    );
    agrees(&losses, mm1k_loss(lambda, mu, k), 0.05).unwrap();
    assert!(
        agrees(&losses, mm1k_loss(lambda, mu, k + 1), 0.05).is_err(),
        "a room too many went unnoticed"
    );
}

#[test]
fn a_single_server_with_uniform_service_waits_as_pollaczek_khinchine_says() {
    // Service uniform on [2, 6] ms: mean 4 ms, Cs^2 = (4^2 / 12) / 4^2 = 1/12; rho = 0.8.
    let (mean_s, cs2, lambda) = (0.004, 1.0 / 12.0, 200.0);
    let service = "{ workers = 1, queue_capacity = 1000000, service_time = { dist = \"uniform\", min_ms = 2.0, max_ms = 6.0 } }";
    let waits = over_seeds(
        &queue(service, 1, "cache_enabled = false", lambda, 1.0, 1000),
        |o| value(o, "service-0", "service_queue_wait_ms_mean") / 1e3,
    );
    agrees(&waits, pk_mean_wait(lambda, mean_s, cs2), 0.05).unwrap();
    assert!(
        agrees(&waits, pk_mean_wait(lambda, mean_s, 1.0), 0.05).is_err(),
        "an exponential-service model (Cs^2 = 1, waits 1.85x) went unnoticed"
    );
}

const FAST: &str =
    "{ workers = 64, queue_capacity = 1000, service_time = { dist = \"constant\", ms = 0.01 } }";

fn hit_ratios(cache: &str, rps: f64, objects: u64) -> Vec<f64> {
    over_seeds(&queue(FAST, 1, cache, rps, 1.0, objects), |o| {
        o.summary.cache_hit_ratio
    })
}

#[test]
fn an_lru_edge_cache_hits_as_the_che_approximation_says() {
    let (n, c, rps) = (2_000u64, 200usize, 500.0);
    let q = zipf_popularity(n, 0.8);
    let cache = format!("cache_max_entries = {c}, cache_inactive_ms = 1e9, cache_valid_ms = 1e9");
    let hits = hit_ratios(&cache, rps, n);
    // Che is an approximation (accurate to about 1 % on Zipf streams): 2 % tolerance.
    agrees(&hits, che_hit_ratio(&q, rps, c), 0.02).unwrap();
    assert!(
        agrees(&hits, che_hit_ratio(&q, rps, c * 3 / 4), 0.02).is_err(),
        "a cache a quarter smaller went unnoticed"
    );
}

#[test]
fn an_idle_timeout_cache_hits_as_one_minus_exp_of_minus_rate_times_inactive() {
    let (n, rps, inactive_s) = (2_000u64, 500.0, 1.0);
    let q = zipf_popularity(n, 0.8);
    let cache = format!(
        "cache_max_entries = {n}, cache_inactive_ms = {}, cache_valid_ms = 1e9",
        inactive_s * 1e3
    );
    let hits = hit_ratios(&cache, rps, n);
    agrees(&hits, idle_timeout_hit_ratio(&q, rps, inactive_s), 0.02).unwrap();
    assert!(
        agrees(
            &hits,
            idle_timeout_hit_ratio(&q, rps, inactive_s * 1.5),
            0.02
        )
        .is_err(),
        "an inactive time half as long again went unnoticed"
    );
}

#[test]
fn an_overloaded_service_tier_delivers_its_bottleneck_bound() {
    // Two instances of 4 workers, 4 ms each: demand 4 ms / 8 servers, bound 2,000 req/s.
    // Offered 3,000 req/s: the tier saturates and sheds the rest.
    let service = "{ workers = 4, queue_capacity = 64, service_time = { dist = \"exponential\", mean_ms = 4.0 } }";
    let bound = bottleneck_throughput(&[0.004 / 8.0]);
    let rates = over_seeds(
        &queue(service, 2, "cache_enabled = false", 3_000.0, 1.0, 1000),
        |o| o.summary.throughput_rps,
    );
    for &x in &rates {
        assert!(x <= bound * 1.005, "throughput {x} above the bound {bound}");
    }
    agrees(&rates, bound, 0.02).unwrap();
    let wrong = bottleneck_throughput(&[0.004 / 6.0]);
    assert!(
        rates.iter().all(|&x| x > wrong * 1.1),
        "a bound for 6 workers (a quarter fewer) would not be broken"
    );
}
