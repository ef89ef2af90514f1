//! `minitwin sweep`: a scenario over parameter axes (their cartesian product) times
//! replications, in parallel across runs (never inside one), optionally one shard of it
//! (`--shard M/N`, or `--shards N` with the index from a Kubernetes Indexed Job or a Slurm
//! array), each shard writing its own table for `minitwin merge`.

use crate::cli::SweepArgs;
use crate::pool::{self, Fate};
use crate::run_cmd::COMMIT;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::scenario::{self, Scenario};
use minitwin_sim::sweep::{self, Axis, Job, Point};
use std::path::PathBuf;

/// At most this many runs in one sweep (all shards).
const MAX_RUNS: u64 = 10_000_000;
/// At most this many points of the axes (each is a scenario held in memory).
const MAX_POINTS: u64 = 100_000;

/// Environment variables that carry a shard's index, in the order they are read.
pub const SHARD_INDEX_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

/// Everything a sweep needs, checked before anything runs.
struct Plan {
    base: Scenario,
    axes: Vec<Axis>,
    points: Vec<Point>,
    scenarios: Vec<Scenario>,
    all: Vec<Job>,
    mine: Vec<Job>,
    shard: (u64, u64),
    threads: usize,
    fingerprint: String,
    dir: PathBuf,
}

pub fn main(args: SweepArgs) -> u8 {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (m, n) = plan.shard;
    say!(
        "minitwin sweep: scenario `{}`, {} points x {} replications = {} runs{}, {} threads, commit {COMMIT}",
        plan.base.name,
        plan.points.len(),
        args.seeds,
        plan.all.len(),
        if n > 1 {
            format!("; shard {m}/{n} runs {} of them", plan.mine.len())
        } else {
            String::new()
        },
        plan.threads
    );
    let runs: Vec<(&Scenario, u64)> = plan
        .mine
        .iter()
        .map(|j| (&plan.scenarios[j.point], j.seed))
        .collect();
    let fates = pool::run_all(&runs, plan.threads, args.many.quiet, "runs");
    report(&args, &plan, &fates)
}

fn plan(args: &SweepArgs) -> Result<Plan, String> {
    let text = scenario::read_limited(&args.scenario, scenario::MAX_SCENARIO_BYTES)
        .map_err(|m| format!("{}: {m}", args.scenario.display()))?;
    let base = scenario::parse(&args.scenario, &text).map_err(|e| e.to_string())?;
    let axes: Vec<Axis> = args
        .axis
        .iter()
        .map(|a| Axis::parse(a).map_err(|e| format!("--axis {e}")))
        .collect::<Result<_, _>>()?;
    let point_count = sweep::point_count(&axes);
    let runs_total = point_count.saturating_mul(args.seeds);
    if point_count > MAX_POINTS {
        return Err(format!(
            "the axes make {point_count} points: at most {MAX_POINTS} (fewer values, or several sweeps)"
        ));
    }
    if args.seeds == 0 || runs_total > MAX_RUNS {
        return Err(format!(
            "--seeds {} with {point_count} points: give 1 or more replications, and at most {MAX_RUNS} runs in all",
            args.seeds
        ));
    }
    let points = sweep::points(&axes);
    let scenarios =
        sweep::scenarios(&args.scenario, &text, &axes, &points).map_err(|e| e.to_string())?;
    let shard = shard(args)?;
    let all = sweep::jobs(
        &base.name,
        &points,
        args.seeds,
        args.master_seed,
        args.independent,
    );
    let mine = sweep::shard_jobs(&all, shard.0, shard.1);
    let threads = pool::threads(args.many.jobs, mine.len())?;
    let named: Vec<(String, &Scenario)> = scenarios
        .iter()
        .map(|s| (format!("`{}`", s.name), s))
        .collect();
    let named: Vec<(&str, &Scenario)> = named.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    pool::check_budget(&named, threads, args.many.force)?;
    let dir = args.out.join(&base.name).join("sweep");
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "--out {}: cannot create the results directory: {e}",
            args.out.display()
        )
    })?;
    let fingerprint = fingerprint(&text, &axes, args);
    Ok(Plan {
        base,
        axes,
        points,
        scenarios,
        all,
        mine,
        shard,
        threads,
        fingerprint,
        dir,
    })
}

/// This process's shard: `--shard M/N`, or `--shards N` with M from the environment.
fn shard(args: &SweepArgs) -> Result<(u64, u64), String> {
    match (&args.shard, args.shards) {
        (Some(_), Some(_)) => Err("give --shard M/N or --shards N, not both".into()),
        (Some(s), None) => sweep::parse_shard(s).map_err(|e| format!("--shard {e}")),
        (None, Some(n)) => {
            for var in SHARD_INDEX_VARS {
                if let Ok(v) = std::env::var(var) {
                    let mut m: u64 = v.trim().parse().map_err(|_| {
                        format!("{var}={v:?} is not a shard index (a whole number)")
                    })?;
                    if var == "SLURM_ARRAY_TASK_ID" {
                        // Arrays may start at any index: `--array=1-4` counts from 1.
                        if let Ok(min) = std::env::var("SLURM_ARRAY_TASK_MIN") {
                            m = m.saturating_sub(min.trim().parse().unwrap_or(0));
                        }
                    }
                    return sweep::parse_shard(&format!("{m}/{n}"))
                        .map_err(|e| format!("--shards {n} with {var}={v}: {e}"));
                }
            }
            Err(format!(
                "--shards {n}: no shard index in the environment ({}); give --shard M/{n}",
                SHARD_INDEX_VARS.join(" or ")
            ))
        }
        (None, None) => Ok((0, 1)),
    }
}

/// What every shard of one sweep must agree on: the scenario's text, the axes, the seeds.
fn fingerprint(text: &str, axes: &[Axis], args: &SweepArgs) -> String {
    let axes: Vec<String> = axes
        .iter()
        .map(|a| format!("{}={:?}", a.path, a.values))
        .collect();
    let all = format!(
        "{text}\n{}\n{} {} {}",
        axes.join(";"),
        args.seeds,
        args.master_seed,
        args.independent
    );
    format!("{:016x}", sweep::derive_seed(0, &all, "", 0))
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

/// The command that replays one run: the point's fields as `--set`, the seed.
fn replay(args: &SweepArgs, plan: &Plan, job: &Job) -> String {
    let sets: String = plan
        .axes
        .iter()
        .zip(&plan.points[job.point].values)
        .map(|(a, v)| format!(" --set '{}={}'", a.path, v))
        .collect();
    format!(
        "minitwin run {}{sets} --seed {}",
        args.scenario.display(),
        job.seed
    )
}

fn report(args: &SweepArgs, plan: &Plan, fates: &[Fate]) -> u8 {
    let mut worst = pool::Worst::default();
    let mut failing = 0;
    for (job, fate) in plan.mine.iter().zip(fates) {
        match fate {
            Fate::Crashed(msg) => {
                failing += 1;
                worst.add(1);
                say!(
                    "run {} seed {}: CRASH ({msg}); replay: {}",
                    job.index,
                    job.seed,
                    replay(args, plan, job)
                );
            }
            Fate::Skipped => {}
            Fate::Ran(o) => {
                if let Some(class) = o.failure() {
                    failing += 1;
                    worst.add(class.exit_code() as u8);
                    let why: Vec<String> = o
                        .checks
                        .iter()
                        .filter(|c| c.failed())
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect();
                    say!(
                        "run {} seed {}: FAIL {class:?} ({}); replay: {}",
                        job.index,
                        job.seed,
                        why.join("; "),
                        replay(args, plan, job)
                    );
                }
            }
        }
    }
    let complete: Vec<&RunOutcome> = fates
        .iter()
        .filter_map(|f| match f {
            Fate::Ran(o) if o.interrupted_at_s.is_none() => Some(&**o),
            _ => None,
        })
        .collect();
    let cut = fates.len() - complete.len() - failing_crashes(fates);
    say!("{} runs, {} failing", complete.len(), failing);
    if cut > 0 {
        say!(
            "INTERRUPTED: {cut} runs not run or cut short: the table and distributions are partial"
        );
        worst.add(crate::interrupt::EXIT_INTERRUPTED);
    }
    distributions(&complete);
    match write_shard(plan, fates) {
        Ok(path) => say!("shard table: {}", path.display()),
        Err(e) => {
            eprintln!("error: {e}");
            worst.add(2);
            return worst.0;
        }
    }
    if plan.shard.1 == 1 && cut == 0 {
        match crate::merge_cmd::merge(std::slice::from_ref(&plan.dir), &plan.dir.join("sweep.csv"))
        {
            Ok(n) => say!(
                "sweep table: {} ({n} runs)",
                plan.dir.join("sweep.csv").display()
            ),
            Err(e) => {
                eprintln!("error: {e}");
                worst.add(2);
            }
        }
    } else if plan.shard.1 > 1 {
        say!(
            "when every shard is done: minitwin merge {} (with the other shards' directories)",
            plan.dir.display()
        );
    }
    worst.0
}

fn failing_crashes(fates: &[Fate]) -> usize {
    fates
        .iter()
        .filter(|f| matches!(f, Fate::Crashed(_)))
        .count()
}

fn distributions(outcomes: &[&RunOutcome]) {
    say!("distributions across runs (min / p50 / p90 / max):");
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
}

/// The columns of a sweep table, before the axes' and after them.
pub const LEADING: [&str; 2] = ["run", "point"];
pub const TRAILING: [&str; 13] = [
    "replication",
    "seed",
    "commit",
    "throughput_rps",
    "latency_ms_p99",
    "error_ratio",
    "lost_writes_total",
    "recovery_s",
    "failover_s",
    "availability",
    "cost_per_hour",
    "failed_checks",
    "trace_hash",
];

/// The shard's table (`shard-M-of-N.csv`: one row per run it finished or that crashed) and
/// its manifest (`shard-M-of-N.toml`), which `minitwin merge` checks.
fn write_shard(plan: &Plan, fates: &[Fate]) -> Result<PathBuf, String> {
    let (m, n) = plan.shard;
    remove_other_shard_counts(&plan.dir, n);
    let path = plan.dir.join(format!("shard-{m}-of-{n}.csv"));
    let io = |e: csv::Error| format!("cannot write {}: {e}", path.display());
    let mut w = csv::Writer::from_path(&path).map_err(io)?;
    let mut header: Vec<&str> = LEADING.to_vec();
    header.extend(plan.axes.iter().map(|a| a.path.as_str()));
    header.extend(TRAILING);
    w.write_record(&header).map_err(io)?;
    let mut written = Vec::new();
    for (job, fate) in plan.mine.iter().zip(fates) {
        let mut rec = vec![job.index.to_string(), job.point.to_string()];
        rec.extend(plan.points[job.point].values.iter().map(|v| v.to_string()));
        rec.push(job.replication.to_string());
        rec.push(job.seed.to_string());
        rec.push(COMMIT.to_string());
        match fate {
            Fate::Ran(o) if o.interrupted_at_s.is_none() => rec.extend(metrics(o)),
            Fate::Crashed(msg) => {
                rec.extend(["", "", "", "", "", "", "", ""].map(String::from));
                rec.push(format!("CRASH: {msg}"));
                rec.push(String::new());
            }
            _ => continue,
        }
        w.write_record(&rec).map_err(io)?;
        written.push(job.index);
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let manifest = crate::merge_cmd::Manifest {
        scenario: plan.base.name.clone(),
        fingerprint: plan.fingerprint.clone(),
        commit: COMMIT.to_string(),
        runs_total: plan.all.len() as u64,
        shard: m,
        shards: n,
        runs_written: written.len() as u64,
    };
    manifest.write(&plan.dir.join(format!("shard-{m}-of-{n}.toml")))?;
    Ok(path)
}

/// A sweep split into another number of shards earlier left tables `merge` would refuse to
/// mix with this one's: they are this command's own outputs, replaced as a rerun replaces them.
fn remove_other_shard_counts(dir: &std::path::Path, n: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let stale = name.starts_with("shard-")
            && (name.ends_with(".csv") || name.ends_with(".toml"))
            && !name.contains(&format!("-of-{n}."));
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn metrics(o: &RunOutcome) -> Vec<String> {
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let failed: Vec<&str> = o
        .checks
        .iter()
        .filter(|c| c.failed())
        .map(|c| c.name)
        .collect();
    vec![
        o.summary.throughput_rps.to_string(),
        o.summary.latency_ms_p99.to_string(),
        o.summary.error_ratio.to_string(),
        opt(o.summary.lost_writes_total.map(|n| n as f64)),
        opt(o.summary.recovery_s),
        opt(o.summary.failover_s),
        opt(o.summary.availability()),
        o.summary.cost_per_hour.to_string(),
        failed.join(" "),
        format!("{:016x}", o.trace_hash),
    ]
}
