//! Comparing variants: common random numbers (every arm on the same seeds, every node on the
//! stream named after it) make a paired difference far tighter than independent seeds do.

use crate::minitwin;
use minitwin_sim::compare::{self, ArmRun, Comparison, METRICS};
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario;
use std::path::Path;

/// One M/M/4 service at 60 % load; the variant's service is 10 % slower.
const SLOWER_SERVICE: &str = r#"
name = "crn"
duration_s = 30.0
warmup_s = 5.0
[topology]
zones = ["z"]
default_link = { latency = { dist = "constant", ms = 0.1 } }
[topology.gateways]
count = 1
zones = ["z"]
config = { cache_enabled = false, proxy_timeout_ms = 1e9 }
[topology.services]
count = 1
zones = ["z"]
config = { workers = 4, queue_capacity = 100000, service_time = { dist = "exponential", mean_ms = 4.0 } }
[topology.stores]
shards = 1
zones = ["z"]
[workload]
rate = { curve = "constant", rps = 600.0 }
mix = { static = 1.0, read = 0.0, write = 0.0 }
timeout_ms = 1e9
zone = "z"

[[variants]]
name = "slower"
set = { "topology.services.config.service_time.mean_ms" = 4.4 }
"#;

fn comparison(independent: bool, replications: u64) -> Comparison {
    let (base, variants) = scenario::parse_with_variants(Path::new("crn.toml"), SLOWER_SERVICE)
        .unwrap_or_else(|e| panic!("{e}"));
    let arms = compare::arms(&base, &variants);
    let runs = arms
        .iter()
        .enumerate()
        .map(|(a, arm)| {
            (1..=replications)
                .map(|r| {
                    let seed = compare::seed_for(a, r, independent);
                    let o = run(&arm.scenario, seed, &RunOptions::default(), &mut |_| {});
                    ArmRun::of(&o)
                })
                .collect()
        })
        .collect();
    Comparison {
        arms: arms.into_iter().map(|a| a.name).collect(),
        runs,
        independent,
    }
}

#[test]
fn common_random_numbers_narrow_the_interval_of_a_difference_against_independent_seeds() {
    let paired = comparison(false, 10);
    let independent = comparison(true, 10);
    // Both arms see the same arrivals: the throughput difference is almost exactly known when
    // paired, and as noisy as two Poisson counts when not. The p99, a tail estimate from a
    // histogram of 2 significant digits, keeps more of its noise but still narrows.
    for (name, at_least) in [("throughput_rps", 10.0), ("latency_ms_p99", 1.2)] {
        let metric = METRICS.iter().find(|m| m.name == name).expect("a metric");
        let p = paired
            .row(1, metric)
            .difference
            .expect("a paired difference");
        let i = independent
            .row(1, metric)
            .difference
            .expect("an unpaired difference");
        println!(
            "{name}: paired {:.4} ± {:.4}, independent {:.4} ± {:.4}",
            p.mean, p.half_width, i.mean, i.half_width
        );
        assert!(
            p.half_width * at_least < i.half_width,
            "{name}: common random numbers should narrow the interval {at_least}x or more: paired ± {}, independent ± {}",
            p.half_width,
            i.half_width
        );
    }
    let p99 = METRICS.iter().find(|m| m.name == "latency_ms_p99").unwrap();
    let d = paired.row(1, p99).difference.unwrap();
    assert!(
        d.excludes_zero() && d.mean > 0.0,
        "a 10 % slower service has a higher p99, and the paired interval says so: {d:?}"
    );
}

#[test]
fn every_arm_of_a_paired_comparison_runs_the_same_seeds_and_variants_run_under_their_own_name() {
    let (base, variants) =
        scenario::parse_with_variants(Path::new("crn.toml"), SLOWER_SERVICE).unwrap();
    assert_eq!(variants.len(), 1);
    assert_eq!(variants[0].1.name, "crn.slower");
    assert_eq!(
        compare::seed_for(0, 7, false),
        compare::seed_for(1, 7, false)
    );
    assert_ne!(compare::seed_for(0, 7, true), compare::seed_for(1, 7, true));
    assert_eq!(base.topology, {
        let mut t = variants[0].1.topology.clone();
        t.services.config = base.topology.services.config.clone();
        t
    });
}

#[test]
fn compare_prints_paired_differences_writes_its_tables_and_names_the_replay_of_a_variant() {
    let out = crate::scratch("compare");
    let scenario = crate::root().join("scenarios/compare-replication.toml");
    let o = minitwin(&[
        "compare",
        scenario.to_str().unwrap(),
        "--replications",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for arm in ["baseline", "semisync", "four-shards", "bigger-cache"] {
        assert!(
            stdout.contains(&format!("    {arm} ")),
            "{arm} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("lost_writes_total (count)"), "{stdout}");
    let dir = out.join("compare-replication/compare");
    let runs = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 4 * 2, "{runs}");
    let diffs = std::fs::read_to_string(dir.join("differences.csv")).unwrap();
    assert!(
        diffs
            .lines()
            .any(|l| l.starts_with("semisync,lost_writes_total,count,2,0,0,")),
        "{diffs}"
    );
    // The replay of a variant's run is a run of that variant.
    let replay = minitwin(&[
        "run",
        scenario.to_str().unwrap(),
        "--variant",
        "semisync",
        "--seed",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(replay.status.code(), Some(0));
    let summary =
        std::fs::read_to_string(out.join("compare-replication.semisync/seed-1/summary.txt"))
            .unwrap();
    assert!(summary.contains("0 lost"), "{summary}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn compare_refuses_a_scenario_without_variants_an_unknown_variant_and_one_replication() {
    let steady = crate::root().join("scenarios/steady.toml");
    let steady = steady.to_str().unwrap();
    let o = minitwin(&["compare", steady]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("declares no [[variants]]"));
    let cr = crate::root().join("scenarios/compare-replication.toml");
    let cr = cr.to_str().unwrap();
    let o = minitwin(&["compare", cr, "--replications", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give 2 or more"));
    let o = minitwin(&["run", cr, "--variant", "nine-shards"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no such variant") && err.contains("four-shards"),
        "{err}"
    );
}
