//! `minitwin compare`: the baseline and every `[[variants]]` entry of a scenario, each run on
//! the same seeds (common random numbers), with each metric's difference from the baseline and
//! its 95 % confidence interval; `--independent` runs each arm on seeds of its own instead.

use crate::cli::CompareArgs;
use crate::pool::{self, Fate, Worst};
use crate::run_cmd::COMMIT;
use minitwin_sim::compare::{self, ArmRun, Comparison, METRICS};
use minitwin_sim::scenario::{self, Scenario};
use minitwin_sim::stats::Interval;
use std::path::{Path, PathBuf};

/// At most this many runs (arms x replications) in one comparison.
const MAX_RUNS: u64 = 100_000;

pub fn main(args: CompareArgs) -> u8 {
    match plan(&args) {
        Ok((arms, seeds, jobs)) => execute(&args, &arms, &seeds, jobs),
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// The arms, the replication seeds and the threads, or why the comparison cannot start.
fn plan(args: &CompareArgs) -> Result<(Vec<compare::Arm>, Vec<u64>, usize), String> {
    let (base, variants) =
        scenario::load_with_variants(&args.scenario).map_err(|e| e.to_string())?;
    if variants.is_empty() {
        return Err(format!(
            "{}: the scenario declares no [[variants]]: add one, e.g.\n\n  [[variants]]\n  name = \"eight-shards\"\n  set = {{ \"topology.stores.shards\" = 8 }}\n",
            args.scenario.display()
        ));
    }
    let arms = compare::arms(&base, &variants);
    let runs = args.replications.saturating_mul(arms.len() as u64);
    if args.replications < 2 || runs > MAX_RUNS {
        return Err(format!(
            "--replications {}: give 2 or more (an interval needs two), and at most {MAX_RUNS} runs in all ({} arms)",
            args.replications,
            arms.len()
        ));
    }
    let last = args
        .first_seed
        .checked_add(args.replications - 1)
        .ok_or("--first-seed + --replications - 1 must fit in a u64".to_string())?;
    let seeds: Vec<u64> = (args.first_seed..=last).collect();
    let jobs = pool::threads(args.many.jobs, runs as usize)?;
    let named: Vec<(String, &Scenario)> = arms
        .iter()
        .map(|a| (format!("arm `{}`", a.name), &a.scenario))
        .collect();
    let named: Vec<(&str, &Scenario)> = named.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    pool::check_budget(&named, jobs, args.many.force)?;
    std::fs::create_dir_all(compare_dir(&args.out, &base)).map_err(|e| {
        format!(
            "--out {}: cannot create the results directory: {e}",
            args.out.display()
        )
    })?;
    Ok((arms, seeds, jobs))
}

fn compare_dir(out: &Path, base: &Scenario) -> PathBuf {
    out.join(&base.name).join("compare")
}

fn execute(args: &CompareArgs, arms: &[compare::Arm], seeds: &[u64], jobs: usize) -> u8 {
    let base = &arms[0].scenario;
    say!(
        "minitwin compare: scenario `{}`, {} arms x {} replications (seeds {}..={}, {}), {jobs} threads, commit {COMMIT}",
        base.name,
        arms.len(),
        seeds.len(),
        seeds[0],
        seeds[seeds.len() - 1],
        if args.independent {
            "independent seeds per arm"
        } else {
            "common random numbers: every arm on the same seeds"
        },
    );
    let mut runs: Vec<(&Scenario, u64)> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    for (a, arm) in arms.iter().enumerate() {
        for &seed in seeds {
            runs.push((&arm.scenario, compare::seed_for(a, seed, args.independent)));
            owners.push(a);
        }
    }
    let fates = pool::run_all(&runs, jobs, args.many.quiet, "runs");
    let mut worst = Worst::default();
    let mut comparison = Comparison {
        arms: arms.iter().map(|a| a.name.clone()).collect(),
        runs: vec![Vec::new(); arms.len()],
        independent: args.independent,
    };
    let mut complete = true;
    for (((_, seed), fate), &a) in runs.iter().zip(&fates).zip(&owners) {
        let replay = replay(args, &arms[a].name, *seed);
        match fate {
            Fate::Ran(o) if o.interrupted_at_s.is_none() => {
                if let Some(class) = o.failure() {
                    worst.add(class.exit_code() as u8);
                }
                comparison.runs[a].push(ArmRun::of(o));
            }
            Fate::Ran(_) | Fate::Skipped => complete = false,
            Fate::Crashed(msg) => {
                worst.add(1);
                complete = false;
                say!(
                    "arm `{}` seed {seed}: CRASH ({msg}); replay: {replay}",
                    arms[a].name
                );
            }
        }
    }
    if !complete {
        if crate::interrupt::requested() {
            say!("INTERRUPTED: only complete replications of every arm are compared");
            worst.add(crate::interrupt::EXIT_INTERRUPTED);
        }
        keep_complete_replications(&mut comparison);
    }
    print_failures(args, &comparison);
    print_table(&comparison);
    let dir = compare_dir(&args.out, base);
    match write_csvs(&dir, &comparison) {
        Ok(dir) => say!("tables: {dir}/runs.csv, {dir}/differences.csv"),
        Err(e) => {
            eprintln!("error: {e}");
            worst.add(2);
        }
    }
    match crate::html::write(&report(args, base, &comparison), &dir.join("report.html")) {
        Ok(()) => say!("report: {}", dir.join("report.html").display()),
        Err(e) => {
            eprintln!("error: {e}");
            worst.add(2);
        }
    }
    worst.0
}

/// The comparison's HTML report: the differences as a table and as intervals, cost against
/// availability, and each arm's latency CDF.
fn report(args: &CompareArgs, base: &Scenario, c: &Comparison) -> crate::html::Report {
    let mut r = crate::html::Report::new(format!("minitwin compare: {}", base.name));
    let n = c.runs[0].len();
    r.fact("scenario", args.scenario.display().to_string())
        .fact("arms", c.arms.join(", "))
        .fact("replications", n.to_string())
        .fact(
            "seeds",
            if c.independent {
                "independent per arm (Welch intervals)"
            } else {
                "the same for every arm (common random numbers; paired intervals)"
            },
        )
        .fact("commit", COMMIT);
    let mut rows = Vec::new();
    for metric in METRICS {
        for (a, arm) in c.arms.iter().enumerate() {
            let row = c.row(a, metric);
            let Some(mean) = row.arm_mean else { continue };
            rows.push(vec![
                metric.name.to_string(),
                arm.clone(),
                pm(&mean),
                row.difference.map_or(String::new(), |d| pm(&d)),
                row.difference.map_or(String::new(), |d| {
                    if d.excludes_zero() { "yes" } else { "no" }.into()
                }),
            ]);
        }
    }
    r.table(
        "Means and differences from the baseline (95 % intervals)",
        &["metric", "arm", "mean", "difference", "significant"],
        rows,
    );
    for metric in METRICS {
        let diffs: Vec<(String, f64, f64)> = (1..c.arms.len())
            .filter_map(|a| {
                c.row(a, metric)
                    .difference
                    .map(|d| (c.arms[a].clone(), d.mean, d.half_width))
            })
            .collect();
        if diffs.is_empty() {
            continue;
        }
        r.figure(
            &format!("fig-diff-{}", metric.name),
            &format!(
                "{} ({}): each variant minus the baseline, 95 % interval",
                metric.name, metric.unit
            ),
            crate::plot::intervals(
                &format!("{}: variant - baseline", metric.name),
                metric.unit,
                &diffs,
                true,
            ),
        );
    }
    let cost = METRICS
        .iter()
        .find(|m| m.name == "cost_per_hour")
        .expect("cost");
    let errors = METRICS
        .iter()
        .find(|m| m.name == "error_ratio")
        .expect("errors");
    let minutes = METRICS
        .iter()
        .find(|m| m.name == "availability")
        .expect("availability");
    // Availability as the share of minutes inside the SLO when every arm has an SLO, else as
    // 1 - error ratio.
    let by_minutes = (0..c.arms.len()).all(|a| c.row(a, minutes).arm_mean.is_some());
    let points: Vec<(String, f64, f64, f64)> = c
        .arms
        .iter()
        .enumerate()
        .filter_map(|(a, arm)| {
            let cost = c.row(a, cost).arm_mean?;
            if by_minutes {
                let m = c.row(a, minutes).arm_mean?;
                return Some((arm.clone(), cost.mean, m.mean, m.half_width));
            }
            let e = c.row(a, errors).arm_mean?;
            Some((arm.clone(), cost.mean, 1.0 - e.mean, e.half_width))
        })
        .collect();
    let (caption, y_desc) = if by_minutes {
        (
            "Cost per hour against availability (minutes inside the SLO), each arm with its 95 % interval",
            "availability (share of minutes inside the SLO)",
        )
    } else {
        (
            "Cost per hour against availability (1 - error ratio), each arm with its 95 % interval",
            "availability (1 - error ratio)",
        )
    };
    r.figure(
        "fig-cost-availability",
        caption,
        crate::plot::cost_availability(&points, y_desc),
    );
    let curves: Vec<(String, Vec<(f64, f64)>)> = c
        .arms
        .iter()
        .zip(&c.runs)
        .filter_map(|(arm, runs)| {
            let first = runs.first()?;
            Some((
                format!("{arm} (seed {})", first.seed),
                first.summary.latency_cdf_ms.clone(),
            ))
        })
        .collect();
    r.figure(
        "fig-latency-cdf",
        "Latency CDF of each arm on the first replication's seed",
        crate::plot::cdfs("latency CDF per arm", &curves),
    );
    r
}

fn replay(args: &CompareArgs, arm: &str, seed: u64) -> String {
    let variant = if arm == "baseline" {
        String::new()
    } else {
        format!(" --variant {arm}")
    };
    format!(
        "minitwin run {}{variant} --seed {seed}",
        args.scenario.display()
    )
}

/// Pairs need both members: keep only the replications every arm finished.
fn keep_complete_replications(c: &mut Comparison) {
    let n = c.runs.iter().map(Vec::len).min().unwrap_or(0);
    if c.independent {
        for runs in &mut c.runs {
            runs.truncate(n);
        }
        return;
    }
    let common: Vec<u64> = c.runs[0]
        .iter()
        .map(|r| r.seed)
        .filter(|s| c.runs.iter().all(|runs| runs.iter().any(|r| r.seed == *s)))
        .collect();
    for runs in &mut c.runs {
        runs.retain(|r| common.contains(&r.seed));
    }
}

fn print_failures(args: &CompareArgs, c: &Comparison) {
    for (a, runs) in c.runs.iter().enumerate() {
        let failing: Vec<&ArmRun> = runs.iter().filter(|r| !r.failures.is_empty()).collect();
        if failing.is_empty() {
            continue;
        }
        say!(
            "arm `{}`: checks failed on {} of {} seeds; first: seed {} ({}); replay: {}",
            c.arms[a],
            failing.len(),
            runs.len(),
            failing[0].seed,
            failing[0].failures.join("; "),
            replay(args, &c.arms[a], failing[0].seed)
        );
    }
}

fn fmt(v: f64) -> String {
    if v.abs() < 1e-9 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.5}")
    }
}

fn pm(i: &Interval) -> String {
    format!("{} ± {}", fmt(i.mean), fmt(i.half_width))
}

fn print_table(c: &Comparison) {
    let n = c.runs[0].len();
    say!(
        "means and differences from the baseline, 95 % intervals over {n} {}:",
        if c.independent {
            "replications (independent seeds: unpaired, Welch)"
        } else {
            "paired replications (common random numbers)"
        }
    );
    for metric in METRICS {
        if c.row(0, metric).arm_mean.is_none() {
            continue;
        }
        say!("  {} ({})", metric.name, metric.unit);
        for (a, arm) in c.arms.iter().enumerate() {
            let row = c.row(a, metric);
            let mean = row.arm_mean.map_or("n/a".into(), |i| pm(&i));
            let diff = match row.difference {
                Some(d) => format!(
                    "{}{}",
                    pm(&d),
                    if d.excludes_zero() {
                        "  (significant)"
                    } else {
                        ""
                    }
                ),
                None if a == 0 => String::new(),
                None => "n/a".into(),
            };
            say!("    {arm:<24} {mean:<26} {diff}");
        }
    }
}

fn write_csvs(dir: &Path, c: &Comparison) -> Result<String, String> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: csv::Error| format!("cannot write {path}: {e}")
    };
    let runs_path = dir.join("runs.csv");
    let mut w = csv::Writer::from_path(&runs_path).map_err(io(&runs_path))?;
    let mut header = vec!["arm", "seed", "commit"];
    header.extend(METRICS.iter().map(|m| m.name));
    header.push("failed_checks");
    w.write_record(&header).map_err(io(&runs_path))?;
    for (a, runs) in c.runs.iter().enumerate() {
        for r in runs {
            let mut rec = vec![c.arms[a].clone(), r.seed.to_string(), COMMIT.to_string()];
            rec.extend(
                METRICS
                    .iter()
                    .map(|m| (m.get)(&r.summary).map_or(String::new(), |v| v.to_string())),
            );
            rec.push(r.failures.join("; "));
            w.write_record(&rec).map_err(io(&runs_path))?;
        }
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", runs_path.display()))?;
    let diff_path = dir.join("differences.csv");
    let mut w = csv::Writer::from_path(&diff_path).map_err(io(&diff_path))?;
    w.write_record([
        "arm",
        "metric",
        "unit",
        "n",
        "mean",
        "mean_half_width",
        "difference",
        "difference_half_width",
        "pairing",
    ])
    .map_err(io(&diff_path))?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for metric in METRICS {
        for (a, arm) in c.arms.iter().enumerate() {
            let row = c.row(a, metric);
            let Some(mean) = row.arm_mean else { continue };
            w.write_record([
                arm.clone(),
                metric.name.to_string(),
                metric.unit.to_string(),
                mean.n.to_string(),
                mean.mean.to_string(),
                mean.half_width.to_string(),
                opt(row.difference.map(|d| d.mean)),
                opt(row.difference.map(|d| d.half_width)),
                if c.independent {
                    "independent"
                } else {
                    "paired"
                }
                .to_string(),
            ])
            .map_err(io(&diff_path))?;
        }
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", diff_path.display()))?;
    Ok(dir.display().to_string())
}
