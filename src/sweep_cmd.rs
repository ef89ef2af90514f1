//! `minitwin sweep`: many seeds of one scenario, in parallel across runs (never inside one).

use crate::cli::SweepArgs;
use crate::run_cmd::COMMIT;
use indicatif::{ProgressBar, ProgressStyle};
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{self as runner, RunOptions};
use minitwin_sim::scenario::{self, Scenario};
use rayon::prelude::*;
use std::path::Path;

/// What became of one seed.
enum Fate {
    Ran(Box<RunOutcome>),
    Crashed(String),
}

pub fn main(args: SweepArgs) -> u8 {
    let scenario = match scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if args.seeds == 0 {
        eprintln!("error: --seeds must be at least 1");
        return 2;
    }
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: cannot start {} worker threads: {e}",
                args.jobs.unwrap_or(0)
            );
            return 2;
        }
    };
    println!(
        "minitwin sweep: scenario `{}` seeds {}..={} on {} threads, commit {COMMIT}",
        scenario.name,
        args.first_seed,
        args.first_seed + args.seeds - 1,
        pool.current_num_threads()
    );
    let bar = bar(args.quiet, args.seeds);
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // crashes are reported per seed below
    let seeds: Vec<u64> = (args.first_seed..args.first_seed + args.seeds).collect();
    let fates: Vec<(u64, Fate)> = pool.install(|| {
        seeds
            .par_iter()
            .map(|&seed| {
                let fate = run_seed(&scenario, seed);
                bar.inc(1);
                (seed, fate)
            })
            .collect()
    });
    std::panic::set_hook(previous_hook);
    bar.finish_and_clear();
    report(&args, &scenario, &fates)
}

fn run_seed(scenario: &Scenario, seed: u64) -> Fate {
    let run = || runner::run(scenario, seed, &RunOptions::default(), &mut |_| {});
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(o) => Fate::Ran(Box::new(o)),
        Err(p) => Fate::Crashed(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        ),
    }
}

fn bar(quiet: bool, n: u64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} seeds [{elapsed}, eta {eta}]")
            .expect("valid template"),
    );
    bar
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
    let mut worst = 0u8;
    let mut code = |c: u8| {
        // Precedence: crash (1), then correctness (3), then liveness (4).
        let rank = |c: u8| match c {
            1 => 3,
            3 => 2,
            4 => 1,
            _ => 0,
        };
        if rank(c) > rank(worst) {
            worst = c;
        }
    };
    let mut failing = 0;
    for (seed, fate) in fates {
        match fate {
            Fate::Crashed(msg) => {
                failing += 1;
                code(1);
                println!("seed {seed}: CRASH ({msg}); replay: {}", replay(*seed));
            }
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
                    println!(
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
    println!("{} seeds, {} failing", fates.len(), failing);
    println!("distributions across seeds (min / p50 / p90 / max):");
    let dist = |f: &dyn Fn(&RunOutcome) -> Option<f64>| {
        distribution(&mut outcomes.iter().filter_map(|o| f(o)).collect::<Vec<_>>())
    };
    println!(
        "  throughput req/s     {}",
        dist(&|o| Some(o.summary.throughput_rps))
    );
    println!(
        "  latency p99 ms       {}",
        dist(&|o| Some(o.summary.latency_ms_p99))
    );
    println!(
        "  error ratio          {}",
        dist(&|o| Some(o.summary.error_ratio))
    );
    println!(
        "  lost acked writes    {}",
        dist(&|o| o.summary.lost_writes_total.map(|n| n as f64))
    );
    println!("  recovery s           {}", dist(&|o| o.summary.recovery_s));
    println!("  failover s           {}", dist(&|o| o.summary.failover_s));
    match write_table(&args.out, scenario, &outcomes) {
        Ok(path) => println!("per-seed table: {}", path),
        Err(e) => {
            eprintln!("error: {e}");
            code(2);
        }
    }
    worst
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
