//! Max QPS under an SLO, held against queueing theory: the search on an M/M/1 and an M/M/4
//! service finds the rate at which the exact M/M/c sojourn-time quantile (Erlang C) reaches the
//! SLO (and rejects a model 10 % off), never above the operational bottleneck bound, and names
//! the tier that saturates.

use crate::inline;
use crate::minitwin;
use minitwin_sim::capacity::{self, Found, Search, Slo, Step, TierLoad};
use minitwin_sim::oracle::mmc_max_rate_for_quantile;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario::Scenario;

const MEAN_SERVICE_MS: f64 = 4.0;
/// Client to gateway to service and back, 0.1 ms each.
const LINKS_MS: f64 = 0.4;

fn mmc(workers: u32, store_query_ms: Option<f64>) -> Scenario {
    inline(&mmc_text(workers, store_query_ms))
}

fn mmc_text(workers: u32, store_query_ms: Option<f64>) -> String {
    let (mix, store) = match store_query_ms {
        None => ("static = 1.0, read = 0.0, write = 0.0", String::new()),
        Some(ms) => (
            "static = 0.0, read = 1.0, write = 0.0",
            format!(
                "config = {{ query_time = {{ dist = \"exponential\", mean_ms = {ms} }}, query_threads = 2 }}"
            ),
        ),
    };
    format!(
        r#"
name = "mmc-capacity"
duration_s = 300.0
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
config = {{ workers = {workers}, queue_capacity = 1000000, service_time = {{ dist = "exponential", mean_ms = {MEAN_SERVICE_MS} }}, store_timeout_ms = 1e9 }}
[topology.stores]
shards = 1
zones = ["z"]
{store}
[workload]
rate = {{ curve = "constant", rps = 50.0 }}
mix = {{ {mix} }}
timeout_ms = 1e9
zone = "z"
"#
    )
}

/// The search as `minitwin capacity` runs it, sequentially: three seeds per rate.
fn search(base: &Scenario, slo: &Slo) -> (Search, Vec<(f64, Vec<TierLoad>)>) {
    let mut s = Search::new(base.workload.rate.peak(), 0.01);
    let mut loads = Vec::new();
    while let Some(rate) = s.next_rate() {
        let at = capacity::at_rate(base, rate);
        let outcomes: Vec<_> = (1..=3)
            .map(|seed| run(&at, seed, &RunOptions::default(), &mut |_| {}))
            .collect();
        let summaries: Vec<_> = outcomes.iter().map(|o| &o.summary).collect();
        s.record(Step::of(rate, &summaries, slo));
        loads.push((rate, capacity::tier_loads(&at, &outcomes[0])));
    }
    (s, loads)
}

fn found(s: &Search) -> f64 {
    let Found::Between { pass_rps, .. } = s.found() else {
        panic!("no bracket: {:?}", s.found())
    };
    pass_rps
}

#[test]
fn max_qps_under_a_p99_slo_matches_the_mmc_sojourn_quantile_for_one_and_four_workers() {
    let mu = 1000.0 / MEAN_SERVICE_MS;
    for (workers, p99_ms) in [(1, 60.0), (4, 20.0)] {
        let slo = Slo {
            p99_ms,
            max_error_ratio: 0.001,
        };
        let expected = mmc_max_rate_for_quantile(workers, mu, 0.99, (p99_ms - LINKS_MS) / 1000.0);
        let (s, loads) = search(&mmc(workers, None), &slo);
        let got = found(&s);
        let error = got / expected - 1.0;
        println!("M/M/{workers}, p99 <= {p99_ms} ms: found {got:.1} req/s, Erlang C {expected:.1} ({:+.2} %)", error * 100.0);
        assert!(
            error.abs() < 0.04,
            "M/M/{workers}: found {got:.1} req/s, the M/M/c quantile gives {expected:.1}"
        );
        // The same 4 % would reject a model whose service is 10 % slower: the comparison can
        // fail.
        let wrong =
            mmc_max_rate_for_quantile(workers, mu / 1.1, 0.99, (p99_ms - LINKS_MS) / 1000.0);
        assert!(
            (got / wrong - 1.0).abs() >= 0.04,
            "M/M/{workers}: {got:.1} req/s is within 4 % of a model 10 % off ({wrong:.1})"
        );
        // Never above the bottleneck bound c mu, and the service is the bottleneck.
        assert!(got < f64::from(workers) * mu);
        let (_, at_best) = loads.iter().find(|(r, _)| *r == got).unwrap();
        let b = capacity::bottleneck(at_best).unwrap();
        assert_eq!(b.tier, "service");
        assert!(
            (b.bound_rps() / (f64::from(workers) * mu) - 1.0).abs() < 0.03,
            "measured demand gives a bound of {:.1}, c mu = {}",
            b.bound_rps(),
            f64::from(workers) * mu
        );
    }
}

#[test]
fn a_store_with_slow_queries_is_named_the_bottleneck() {
    // The store's 2 threads at 5 ms allow 400 req/s; the 8 service workers at 4 ms, 2,000.
    let mut base = mmc(8, Some(5.0));
    base.duration_s = 60.0;
    let slo = Slo {
        p99_ms: 100.0,
        max_error_ratio: 0.001,
    };
    let (s, loads) = search(&base, &slo);
    let got = found(&s);
    assert!(got < 400.0, "{got}");
    let (_, at_best) = loads.iter().find(|(r, _)| *r == got).unwrap();
    let b = capacity::bottleneck(at_best).unwrap();
    assert_eq!(b.tier, "store", "{at_best:?}");
    assert!(
        (b.bound_rps() / 400.0 - 1.0).abs() < 0.05,
        "{}",
        b.bound_rps()
    );
}

#[test]
fn capacity_prints_its_steps_the_rate_found_and_the_bottleneck_and_writes_its_tables() {
    let dir = crate::scratch("capacity");
    let file = dir.join("mmc.toml");
    std::fs::write(&file, mmc_text(4, None).replace("300.0", "60.0")).unwrap();
    let (file, out) = (file.to_str().unwrap(), dir.to_str().unwrap());
    let o = minitwin(&["capacity", file, "--quiet", "--out", out]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "no SLO in the file and none given"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --p99-ms"));
    let o = minitwin(&["capacity", file, "--p99-ms", "20", "--quiet", "--out", out]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("max rate under the SLO: "), "{stdout}");
    assert!(stdout.contains("bottleneck: service"), "{stdout}");
    let steps = std::fs::read_to_string(dir.join("mmc-capacity/capacity/steps.csv")).unwrap();
    assert!(steps.lines().count() > 5, "{steps}");
    assert!(
        steps.contains(",true,") && steps.contains(",false,"),
        "{steps}"
    );
    for bad in [
        ["--tolerance", "0"],
        ["--replications", "1"],
        ["--duration-s", "5"],
    ] {
        let o = minitwin(&[
            "capacity", file, "--p99-ms", "20", bad[0], bad[1], "--out", out,
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(bad[0]),
            "{bad:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
