//! `minitwin sweep`: many seeds of one scenario, in parallel across runs (never inside one).

use crate::cli::SweepArgs;
use crate::run_cmd::COMMIT;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::scenario::{self, Scenario};
use std::path::Path;

use crate::pool::{self, Fate};

/// At most this many seeds in one sweep.
const MAX_SEEDS: u64 = 1_000_000;

pub fn main(args: SweepArgs) -> u8 {
    let scenario = match scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let last_seed = args.first_seed.checked_add(args.seeds.saturating_sub(1));
    let Some(last_seed) = last_seed.filter(|_| (1..=MAX_SEEDS).contains(&args.seeds)) else {
        eprintln!(
            "error: --seeds must be 1 to {MAX_SEEDS}, and --first-seed + --seeds - 1 must fit in a u64"
        );
        return 2;
    };
    let jobs = match pool::threads(args.jobs, args.seeds as usize) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let e = minitwin_sim::tiers::estimate(&scenario);
    let parallel_bytes = e.bytes * jobs as f64;
    if let Some(why) = e.over_budget() {
        if !args.force {
            eprintln!(
                "error: each run: {why}. Shorten duration_s, lower the load, or pass --force"
            );
            return 2;
        }
    }
    if parallel_bytes > minitwin_sim::tiers::BYTE_BUDGET && !args.force {
        eprintln!(
            "error: {jobs} runs at once would hold about {:.1} GiB: lower --jobs, or pass --force",
            parallel_bytes / 1024f64.powi(3)
        );
        return 2;
    }
    if let Err(e) = std::fs::create_dir_all(args.out.join(&scenario.name)) {
        eprintln!(
            "error: --out {}: cannot create the results directory: {e}",
            args.out.display()
        );
        return 2;
    }
    say!(
        "minitwin sweep: scenario `{}` seeds {}..={} on {} threads, commit {COMMIT}",
        scenario.name,
        args.first_seed,
        last_seed,
        jobs
    );
    let seeds: Vec<u64> = (args.first_seed..=last_seed).collect();
    let runs: Vec<(&Scenario, u64)> = seeds.iter().map(|&s| (&scenario, s)).collect();
    let fates: Vec<(u64, Fate)> = seeds
        .iter()
        .copied()
        .zip(pool::run_all(&runs, jobs, args.quiet, "runs"))
        .collect();
    report(&args, &scenario, &fates)
}

/// Quantiles of `values` as "min / p50 / p90 / max".
fn distribution(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    values.sort_by(f64::total_cmp);
    let q = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    format!(
        "{:.3} / {:.3} / {:.3} / {:.3}",
        q(0.0),
        q(0.5),
        q(0.9),
        q(1.0)
    )
}

fn report(args: &SweepArgs, scenario: &Scenario, fates: &[(u64, Fate)]) -> u8 {
    let replay = |seed: u64| format!("minitwin run {} --seed {seed}", args.scenario.display());
    let mut worst = pool::Worst::default();
    let mut code = |c: u8| worst.add(c);
    let mut failing = 0;
    for (seed, fate) in fates {
        match fate {
            Fate::Crashed(msg) => {
                failing += 1;
                code(1);
                say!("seed {seed}: CRASH ({msg}); replay: {}", replay(*seed));
            }
            Fate::Skipped => {}
            Fate::Ran(o) => {
                if let Some(class) = o.failure() {
                    failing += 1;
                    code(class.exit_code() as u8);
                    let why: Vec<String> = o
                        .checks
                        .iter()
                        .filter(|c| c.failed())
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect();
                    say!(
                        "seed {seed}: FAIL {class:?} ({}); replay: {}",
                        why.join("; "),
                        replay(*seed)
                    );
                }
            }
        }
    }
    let outcomes: Vec<&RunOutcome> = fates
        .iter()
        .filter_map(|(_, f)| {
            if let Fate::Ran(o) = f {
                Some(&**o)
            } else {
                None
            }
        })
        .collect();
    let skipped = fates
        .iter()
        .filter(|(_, f)| matches!(f, Fate::Skipped))
        .count();
    let partial = outcomes
        .iter()
        .filter(|o| o.interrupted_at_s.is_some())
        .count();
    say!("{} seeds, {} failing", fates.len() - skipped, failing);
    if skipped + partial > 0 {
        say!("INTERRUPTED: {skipped} seeds not run, {partial} cut short: the distributions are partial");
        code(crate::interrupt::EXIT_INTERRUPTED);
    }
    say!("distributions across seeds (min / p50 / p90 / max):");
    let dist = |f: &dyn Fn(&RunOutcome) -> Option<f64>| {
        distribution(&mut outcomes.iter().filter_map(|o| f(o)).collect::<Vec<_>>())
    };
    say!(
        "  throughput req/s     {}",
        dist(&|o| Some(o.summary.throughput_rps))
    );
    say!(
        "  latency p99 ms       {}",
        dist(&|o| Some(o.summary.latency_ms_p99))
    );
    say!(
        "  error ratio          {}",
        dist(&|o| Some(o.summary.error_ratio))
    );
    say!(
        "  lost acked writes    {}",
        dist(&|o| o.summary.lost_writes_total.map(|n| n as f64))
    );
    say!("  recovery s           {}", dist(&|o| o.summary.recovery_s));
    say!("  failover s           {}", dist(&|o| o.summary.failover_s));
    match write_table(&args.out, scenario, &outcomes) {
        Ok(path) => say!("per-seed table: {}", path),
        Err(e) => {
            eprintln!("error: {e}");
            code(2);
        }
    }
    worst.0
}

fn write_table(
    out: &Path,
    scenario: &Scenario,
    outcomes: &[&RunOutcome],
) -> Result<String, String> {
    let dir = out.join(&scenario.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("sweep.csv");
    let mut w = csv::Writer::from_path(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let header = [
        "scenario",
        "seed",
        "commit",
        "throughput_rps",
        "latency_ms_p99",
        "error_ratio",
        "lost_writes_total",
        "recovery_s",
        "failover_s",
        "failed_checks",
        "trace_hash",
    ];
    let io = |e: csv::Error| format!("cannot write {}: {e}", path.display());
    w.write_record(header).map_err(io)?;
    for o in outcomes {
        let failed: Vec<&str> = o
            .checks
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.name)
            .collect();
        w.write_record([
            o.scenario.clone(),
            o.seed.to_string(),
            COMMIT.to_string(),
            o.summary.throughput_rps.to_string(),
            o.summary.latency_ms_p99.to_string(),
            o.summary.error_ratio.to_string(),
            o.summary
                .lost_writes_total
                .map_or(String::new(), |n| n.to_string()),
            o.summary
                .recovery_s
                .map(|r| r.to_string())
                .unwrap_or_default(),
            o.summary
                .failover_s
                .map(|r| r.to_string())
                .unwrap_or_default(),
            failed.join(" "),
            format!("{:016x}", o.trace_hash),
        ])
        .map_err(io)?;
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path.display().to_string())
}
