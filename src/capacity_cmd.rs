//! `minitwin capacity`: the highest offered rate whose p99 stays within the SLO with errors
//! within their bound (bracketing, then bisection; replications on the same seeds at every
//! step), each tier's utilization there, and the bottleneck.

use crate::cli::CapacityArgs;
use crate::pool::{self, Fate, Worst};
use crate::run_cmd::COMMIT;
use minitwin_sim::capacity::{self, Found, Search, Slo, Step, TierLoad};
use minitwin_sim::checks::Class;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::scenario::Scenario;
use std::path::{Path, PathBuf};

/// Error ratio allowed when neither `--max-error-ratio` nor `[checks] max_error_ratio` says.
const DEFAULT_MAX_ERROR_RATIO: f64 = 0.001;

pub fn main(args: CapacityArgs) -> u8 {
    match prepare(&args) {
        Ok((scenario, slo, seeds, jobs)) => search(&args, &scenario, &slo, &seeds, jobs),
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

type Prepared = (Scenario, Slo, Vec<u64>, usize);

fn prepare(args: &CapacityArgs) -> Result<Prepared, String> {
    let mut scenario = pool::load_variant(&args.scenario, args.variant.as_deref())?;
    if let Some(d) = args.duration_s {
        if !(1.0..=86_400.0).contains(&d) || d <= scenario.warmup_s {
            return Err(format!(
                "--duration-s {d}: give 1 to 86,400 s, longer than the scenario's warmup_s ({})",
                scenario.warmup_s
            ));
        }
        scenario.duration_s = d;
    }
    let p99_ms = args
        .p99_ms
        .or(scenario.checks.max_p99_ms)
        .ok_or("no SLO: give --p99-ms, or set [checks] max_p99_ms in the scenario".to_string())?;
    let max_error_ratio = args
        .max_error_ratio
        .or(scenario.checks.max_error_ratio)
        .unwrap_or(DEFAULT_MAX_ERROR_RATIO);
    if !(p99_ms > 0.0 && p99_ms <= 1e9 && (0.0..=1.0).contains(&max_error_ratio)) {
        return Err(format!(
            "the SLO must be a p99 of 0-1e9 ms and an error ratio of 0-1 (got {p99_ms} ms, {max_error_ratio})"
        ));
    }
    if !(2..=1000).contains(&args.replications) {
        return Err(format!(
            "--replications {}: give 2 to 1000 (a step's interval needs two)",
            args.replications
        ));
    }
    if !(0.001..=0.5).contains(&args.tolerance) {
        return Err(format!(
            "--tolerance {}: give 0.001 to 0.5 (the search stops when the bracket is that narrow)",
            args.tolerance
        ));
    }
    if let Some(r) = args.start_rps {
        if !(r > 0.0 && r <= 1e7) {
            return Err(format!("--start-rps {r}: give a rate above 0, at most 1e7"));
        }
    }
    if args.start_rps.is_none() && scenario.workload.rate.peak() <= 0.0 {
        return Err(format!(
            "{}: its rate is 0 req/s, nothing to start the search from: give --start-rps",
            args.scenario.display()
        ));
    }
    let last = args
        .first_seed
        .checked_add(args.replications - 1)
        .ok_or("--first-seed + --replications - 1 must fit in a u64".to_string())?;
    let seeds: Vec<u64> = (args.first_seed..=last).collect();
    let jobs = pool::threads(args.many.jobs, seeds.len())?;
    std::fs::create_dir_all(capacity_dir(&args.out, &scenario)).map_err(|e| {
        format!(
            "--out {}: cannot create the results directory: {e}",
            args.out.display()
        )
    })?;
    let slo = Slo {
        p99_ms,
        max_error_ratio,
    };
    Ok((scenario, slo, seeds, jobs))
}

fn capacity_dir(out: &Path, s: &Scenario) -> PathBuf {
    out.join(&s.name).join("capacity")
}

/// One step's runs: the step, and the tier loads averaged over its replications.
pub struct Tried {
    pub step: Step,
    pub loads: Vec<TierLoad>,
}

fn search(args: &CapacityArgs, base: &Scenario, slo: &Slo, seeds: &[u64], jobs: usize) -> u8 {
    let start = args.start_rps.unwrap_or_else(|| base.workload.rate.peak());
    say!(
        "minitwin capacity: scenario `{}`: the highest constant rate with p99 <= {} ms and error ratio <= {} (means over {} seeds {}..={}, the same at every rate), commit {COMMIT}",
        base.name,
        slo.p99_ms,
        slo.max_error_ratio,
        seeds.len(),
        seeds[0],
        seeds[seeds.len() - 1]
    );
    say!(
        "  rate req/s      p99 ms              error ratio              throughput req/s   verdict"
    );
    let mut worst = Worst::default();
    let how = How {
        seeds,
        jobs,
        tolerance: args.tolerance,
        force: args.many.force,
        quiet: args.many.quiet,
        print_steps: true,
    };
    let (s, tried, stopped) = find(base, slo, start, &how, &mut worst);
    report(args, base, &s, &tried, stopped.is_none());
    let dir = capacity_dir(&args.out, base);
    if let Err(e) = write_csvs(&dir, &tried) {
        eprintln!("error: {e}");
        worst.add(2);
    }
    match crate::html::write(
        &html_report(args, base, slo, &s, &tried),
        &dir.join("report.html"),
    ) {
        Ok(()) => say!("report: {}", dir.join("report.html").display()),
        Err(e) => {
            eprintln!("error: {e}");
            worst.add(2);
        }
    }
    worst.0
}

/// The search's HTML report: latency against offered load with the knee, the steps, the tiers.
fn html_report(
    args: &CapacityArgs,
    base: &Scenario,
    slo: &Slo,
    s: &Search,
    tried: &[Tried],
) -> crate::html::Report {
    let mut r = crate::html::Report::new(format!("minitwin capacity: {}", base.name));
    r.fact("scenario", args.scenario.display().to_string())
        .fact(
            "SLO",
            format!(
                "p99 <= {} ms, error ratio <= {}",
                slo.p99_ms, slo.max_error_ratio
            ),
        )
        .fact("replications per rate", args.replications.to_string())
        .fact(
            "max rate under the SLO",
            s.pass_rps
                .map_or("none passed".into(), |p| format!("{p:.1} req/s offered")),
        )
        .fact("commit", COMMIT);
    r.figure(
        "fig-knee",
        "p99 latency against offered load (green passed, red failed on p99 or errors; 95 % intervals), the SLO and the highest rate that kept it",
        knee(tried, slo.p99_ms, s.pass_rps),
    );
    r.table(
        "Steps, in the order tried",
        &[
            "rate req/s",
            "p99 ms",
            "error ratio",
            "throughput req/s",
            "verdict",
        ],
        tried
            .iter()
            .map(|t| {
                vec![
                    format!("{:.1}", t.step.rate_rps),
                    pm(&t.step.p99_ms, 2),
                    pm(&t.step.error_ratio, 5),
                    pm(&t.step.throughput_rps, 1),
                    if t.step.passes { "pass" } else { "FAIL" }.into(),
                ]
            })
            .collect(),
    );
    if let Some(best) = s
        .pass_rps
        .and_then(|p| tried.iter().find(|t| t.step.rate_rps == p))
    {
        r.table(
            &format!("Tiers at {:.1} req/s", best.step.rate_rps),
            &[
                "tier",
                "instances",
                "servers each",
                "utilization mean",
                "busiest",
                "bound req/s",
            ],
            best.loads
                .iter()
                .map(|l| {
                    vec![
                        l.tier.to_string(),
                        l.instances.to_string(),
                        l.servers.to_string(),
                        format!("{:.3}", l.utilization_mean),
                        format!("{:.3}", l.utilization_max),
                        format!("{:.1}", l.bound_rps()),
                    ]
                })
                .collect(),
        );
    }
    r
}

/// The figure of a search: p99 (with intervals) against the offered rate, the SLO, the rate
/// found.
pub fn knee(tried: &[Tried], slo_ms: f64, found: Option<f64>) -> Result<String, String> {
    let steps: Vec<(f64, f64, f64, bool)> = tried
        .iter()
        .map(|t| {
            let p = &t.step.p99_ms;
            (t.step.rate_rps, p.mean, p.half_width, t.step.passes)
        })
        .collect();
    crate::plot::knee(&steps, slo_ms, found)
}

/// How a search runs: its seeds and threads, when it stops, what it prints.
pub struct How<'a> {
    pub seeds: &'a [u64],
    pub jobs: usize,
    pub tolerance: f64,
    pub force: bool,
    pub quiet: bool,
    pub print_steps: bool,
}

/// The search from `start`: its state, every step tried, and why it stopped early (if so).
pub fn find(
    base: &Scenario,
    slo: &Slo,
    start: f64,
    how: &How,
    worst: &mut Worst,
) -> (Search, Vec<Tried>, Option<String>) {
    let mut s = Search::new(start, how.tolerance);
    let mut tried: Vec<Tried> = Vec::new();
    let mut stopped = None;
    while let Some(rate) = s.next_rate() {
        let at = capacity::at_rate(base, rate);
        if let Some(why) = minitwin_sim::tiers::estimate(&at).over_budget() {
            if !how.force {
                stopped = Some(format!(
                    "stopped at {rate:.1} req/s: each run {why}; shorten --duration-s or pass --force"
                ));
                break;
            }
        }
        let Some(outcomes) = run_step(how, &at, worst) else {
            stopped = Some("stopped: a run crashed or was interrupted".into());
            break;
        };
        let summaries: Vec<_> = outcomes.iter().map(|o| &o.summary).collect();
        let step = Step::of(rate, &summaries, slo);
        if how.print_steps {
            say!(
                "  {:<14.1}  {:<18}  {:<23}  {:<17}  {}",
                rate,
                pm(&step.p99_ms, 2),
                pm(&step.error_ratio, 5),
                pm(&step.throughput_rps, 1),
                if step.passes { "pass" } else { "FAIL" }
            );
        }
        let loads = mean_loads(&at, &outcomes);
        tried.push(Tried {
            step: step.clone(),
            loads,
        });
        s.record(step);
    }
    (s, tried, stopped)
}

/// Runs the replications at one rate; None if one crashed or the user interrupted.
fn run_step(how: &How, at: &Scenario, worst: &mut Worst) -> Option<Vec<RunOutcome>> {
    let runs: Vec<(&Scenario, u64)> = how.seeds.iter().map(|&seed| (at, seed)).collect();
    let mut out = Vec::new();
    for ((_, seed), fate) in runs
        .iter()
        .zip(pool::run_all(&runs, how.jobs, how.quiet, "runs"))
    {
        match fate {
            Fate::Ran(o) if o.interrupted_at_s.is_none() => {
                if o.failure() == Some(Class::Correctness) {
                    worst.add(3);
                    let why: Vec<String> = o
                        .checks
                        .iter()
                        .filter(|c| c.failed() && c.class == Class::Correctness)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect();
                    say!(
                        "  correctness check failed at {:.1} req/s, seed {seed}: {}",
                        rate_of(at),
                        why.join("; ")
                    );
                }
                out.push(*o);
            }
            Fate::Ran(_) | Fate::Skipped => {
                worst.add(crate::interrupt::EXIT_INTERRUPTED);
                return None;
            }
            Fate::Crashed(msg) => {
                worst.add(1);
                say!("  CRASH at {:.1} req/s, seed {seed}: {msg}", rate_of(at));
                return None;
            }
        }
    }
    Some(out)
}

fn rate_of(s: &Scenario) -> f64 {
    s.workload.rate.peak()
}

fn mean_loads(s: &Scenario, outcomes: &[RunOutcome]) -> Vec<TierLoad> {
    let per_run: Vec<Vec<TierLoad>> = outcomes
        .iter()
        .map(|o| capacity::tier_loads(s, o))
        .collect();
    let mut mean = per_run[0].clone();
    for (k, load) in mean.iter_mut().enumerate() {
        let avg = |f: fn(&TierLoad) -> f64| {
            let v: Vec<f64> = per_run.iter().filter_map(|r| r.get(k)).map(f).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        load.utilization_mean = avg(|l| l.utilization_mean);
        load.utilization_max = avg(|l| l.utilization_max);
        load.demand_s = avg(|l| l.demand_s);
    }
    mean
}

fn pm(i: &minitwin_sim::stats::Interval, decimals: usize) -> String {
    format!("{:.*} ± {:.*}", decimals, i.mean, decimals, i.half_width)
}

fn report(args: &CapacityArgs, base: &Scenario, s: &Search, tried: &[Tried], finished: bool) {
    let found = s.found();
    match found {
        Found::Between { pass_rps, fail_rps } if finished => say!(
            "max rate under the SLO: {pass_rps:.1} req/s offered ({fail_rps:.1} fails; the bracket is {:.1} %)",
            (fail_rps - pass_rps) / pass_rps * 100.0
        ),
        Found::NothingPasses { floor_rps } if finished => {
            say!("no rate passes: even {floor_rps} req/s breaks the SLO")
        }
        Found::EverythingPasses { ceiling_rps } if finished => {
            say!("every rate passes up to {ceiling_rps:.0} req/s: the SLO does not bind")
        }
        _ => match s.pass_rps {
            Some(p) => say!("search incomplete: {p:.1} req/s passed, nothing above it was settled"),
            None => say!("search incomplete: no rate passed"),
        },
    }
    let Some(best) = s
        .pass_rps
        .and_then(|p| tried.iter().find(|t| t.step.rate_rps == p))
    else {
        return;
    };
    say!(
        "at {:.1} req/s (throughput {:.1} req/s), each modelled tier (the gateways and the network have no CPU model):",
        best.step.rate_rps,
        best.step.throughput_rps.mean
    );
    for l in &best.loads {
        say!(
            "  {:<8} {} x {} servers: utilization {:.3} mean, {:.3} busiest; alone it allows {:.1} req/s (X / U_max)",
            l.tier,
            l.instances,
            l.servers,
            l.utilization_mean,
            l.utilization_max,
            l.bound_rps()
        );
    }
    if let Some(b) = capacity::bottleneck(&best.loads) {
        say!(
            "bottleneck: {} (busiest instance {:.0} % utilized); operational bound X <= 1 / D_max = {:.1} req/s",
            b.tier,
            b.utilization_max * 100.0,
            b.bound_rps()
        );
    }
    let dir = capacity_dir(&args.out, base);
    say!(
        "tables: {}/steps.csv, {}/utilization.csv",
        dir.display(),
        dir.display()
    );
}

fn write_csvs(dir: &Path, tried: &[Tried]) -> Result<(), String> {
    let err = |p: &Path| {
        let p = p.display().to_string();
        move |e: csv::Error| format!("cannot write {p}: {e}")
    };
    let path = dir.join("steps.csv");
    let mut w = csv::Writer::from_path(&path).map_err(err(&path))?;
    w.write_record([
        "rate_rps",
        "replications",
        "latency_ms_p99",
        "latency_ms_p99_half_width",
        "error_ratio",
        "error_ratio_half_width",
        "throughput_rps",
        "passes",
        "commit",
    ])
    .map_err(err(&path))?;
    for t in tried {
        let s = &t.step;
        w.write_record([
            s.rate_rps.to_string(),
            s.p99_ms.n.to_string(),
            s.p99_ms.mean.to_string(),
            s.p99_ms.half_width.to_string(),
            s.error_ratio.mean.to_string(),
            s.error_ratio.half_width.to_string(),
            s.throughput_rps.mean.to_string(),
            s.passes.to_string(),
            COMMIT.to_string(),
        ])
        .map_err(err(&path))?;
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let path = dir.join("utilization.csv");
    let mut w = csv::Writer::from_path(&path).map_err(err(&path))?;
    w.write_record([
        "rate_rps",
        "tier",
        "instances",
        "servers",
        "utilization_mean",
        "utilization_max",
        "bound_rps",
    ])
    .map_err(err(&path))?;
    for t in tried {
        for l in &t.loads {
            w.write_record([
                t.step.rate_rps.to_string(),
                l.tier.to_string(),
                l.instances.to_string(),
                l.servers.to_string(),
                l.utilization_mean.to_string(),
                l.utilization_max.to_string(),
                l.bound_rps().to_string(),
            ])
            .map_err(err(&path))?;
        }
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
