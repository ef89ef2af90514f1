//! `minitwin replay`: an incident's evidence in, a derived scenario out, run on many seeds,
//! each run scored against the log window by window, the seeds that reproduce the incident
//! named with their replay commands, and a what-if beside it (see `minitwin_sim::replay`).

use crate::cli::ReplayArgs;
use crate::pool::{self, Mapped};
use minitwin_sim::import::{timeline, Import};
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::replay::{self, Inputs, Match, SimWindows, Slo};
use minitwin_sim::run::run_with;
use minitwin_sim::scenario::{self, Scenario};
use std::path::{Path, PathBuf};

/// Seeds shown in the table (all are in seeds.csv).
const SHOWN: usize = 10;

/// At most this many seeds in one search.
const MAX_SEEDS: u64 = 10_000;

pub fn main(args: ReplayArgs) -> u8 {
    match replay(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("minitwin replay: {e}");
            2
        }
    }
}

/// One run of an arm, scored.
struct Scored {
    seed: u64,
    outcome: RunOutcome,
    matched: Match,
}

fn replay(args: &ReplayArgs) -> Result<u8, String> {
    let slo = slo(args)?;
    if args.seeds == 0 || args.seeds > MAX_SEEDS {
        return Err(format!("--seeds {}: give 1 to {MAX_SEEDS}", args.seeds));
    }
    let last_seed = args
        .first_seed
        .checked_add(args.seeds - 1)
        .ok_or("--first-seed + --seeds - 1 must fit in a u64")?;
    let log_path = find_log(args)?;
    let log = crate::import_cmd::read(&log_path, &args.format, args.window_s)?;
    if log.parsed == 0 {
        return Err(format!(
            "{}: no line matched the format ({} lines, {} malformed): check --format",
            log_path.display(),
            log.lines,
            log.malformed
        ));
    }
    let tl = match &args.timeline {
        Some(p) => Some(timeline::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let prom_files = if args.no_metrics {
        Vec::new()
    } else {
        prom_files(&args.dir)?
    };
    let down = replay::down_from_files(&prom_files)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => default_name(&args.dir),
    };
    let seeds: Vec<u64> = (args.first_seed..=last_seed).collect();
    let derived = replay::derive(&Inputs {
        name: name.clone(),
        log: &log,
        timeline: tl.as_ref(),
        down,
        slo,
        seeds: seeds.clone(),
        set: sets(&args.set)?,
    })?;
    let dir = args.out.join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("--out {}: {e}", dir.display()))?;
    let scenario_path = dir.join("scenario.toml");
    write(&scenario_path, &derived.text)?;
    write(&dir.join("rates.csv"), &derived.rates_csv)?;
    say!(
        "{}: {} requests over {} s; {} upstreams: {}",
        log_path.display(),
        log.parsed,
        log.span().map_or(0, |(a, b)| b - a + log.window_s),
        derived.nodes.len(),
        derived
            .nodes
            .iter()
            .map(|(a, n)| format!("{a} -> {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let source = match (&args.timeline, prom_files.is_empty()) {
        (Some(p), _) => format!("from the timeline {}", p.display()),
        (None, false) => format!(
            "inferred from the log and {}",
            prom_files
                .iter()
                .map(|f| f.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, true) => "inferred from the log".into(),
    };
    if derived.faults.is_empty() {
        say!("faults ({source}): none");
    } else {
        say!("faults ({source}):");
        for f in &derived.faults {
            say!("  {f}");
        }
    }
    say!(
        "derived scenario: {} (edit it, then `minitwin run` it or replay again)",
        scenario_path.display()
    );
    let base = scenario::load(&scenario_path).map_err(|e| {
        if args.set.is_empty() && args.timeline.is_none() {
            format!("the derived scenario does not load (a bug in minitwin replay, please report it): {e}")
        } else {
            format!("the derived scenario does not load: {e}\nCheck --set and the timeline's node names (or edit the file and `minitwin run` it).")
        }
    })?;
    let what_if = what_if(args, &scenario_path, &base)?;
    let mut arms: Vec<(&str, &Scenario)> = vec![("incident", &base)];
    if let Some(w) = &what_if {
        arms.push(("what-if", w));
    }
    let jobs: Vec<(&Scenario, u64)> = arms
        .iter()
        .flat_map(|(_, s)| seeds.iter().map(move |&seed| (*s, seed)))
        .collect();
    let threads = pool::threads(args.many.jobs, jobs.len())?;
    pool::check_budget(&arms, threads, args.many.force)?;
    let window_s = log.window_s;
    let ran = pool::map(
        &jobs,
        threads,
        args.many.quiet,
        "runs",
        &|s, seed, options| {
            let mut windows = SimWindows::new(window_s);
            let o = run_with(s, seed, options, &mut |_| {}, &mut |row, buckets| {
                windows.push(row, buckets)
            });
            (o, windows)
        },
    );
    let mut scored: Vec<Vec<Scored>> = arms.iter().map(|_| Vec::new()).collect();
    for (i, fate) in ran.into_iter().enumerate() {
        let arm = i / seeds.len();
        match fate {
            Mapped::Ran((outcome, windows)) => scored[arm].push(Scored {
                seed: seeds[i % seeds.len()],
                matched: replay::score(&log, &windows, slo),
                outcome,
            }),
            Mapped::Crashed(m) => {
                eprintln!(
                    "{} seed {}: the simulator crashed: {m}",
                    arms[arm].0,
                    seeds[i % seeds.len()]
                );
                return Ok(1);
            }
            Mapped::Skipped => return Ok(130),
        }
    }
    let incident = &scored[0];
    let reproducing = report_seeds(incident, &scenario_path, &log, slo);
    seeds_csv(&dir, incident)?;
    let best = incident
        .iter()
        .filter(|s| s.matched.reproduces())
        .chain(incident.iter())
        .min_by(|a, b| {
            b.matched.reproduces().cmp(&a.matched.reproduces()).then(
                a.matched
                    .mean_distance()
                    .total_cmp(&b.matched.mean_distance()),
            )
        })
        .expect("one seed at least ran");
    write(&dir.join("match.csv"), &replay::match_csv(&best.matched))?;
    if let Some(runs) = scored.get(1) {
        report_what_if(incident, runs, args);
    }
    report_html(&dir, &name, best, scored.get(1), &source, &derived, slo)?;
    say!(
        "files: {}/{{scenario.toml,rates.csv,match.csv,seeds.csv,report.html}}",
        dir.display()
    );
    Ok(if reproducing > 0 { 0 } else { 3 })
}

/// `--set PATH=VALUE`s as (path, value).
fn sets(args: &[String]) -> Result<Vec<(String, toml::Value)>, String> {
    Ok(crate::run_cmd::single_values("--set", args)?
        .into_iter()
        .map(|a| (a.path, a.values[0].clone()))
        .collect())
}

fn slo(args: &ReplayArgs) -> Result<Slo, String> {
    if !(args.slo_error_ratio.is_finite() && (0.0..1.0).contains(&args.slo_error_ratio)) {
        return Err(format!(
            "--slo-error-ratio {}: give a ratio from 0 to below 1",
            args.slo_error_ratio
        ));
    }
    if !(args.slo_p99_ms.is_finite() && args.slo_p99_ms > 0.0) {
        return Err(format!(
            "--slo-p99-ms {}: give milliseconds above 0",
            args.slo_p99_ms
        ));
    }
    Ok(Slo {
        error_ratio: args.slo_error_ratio,
        p99_ms: args.slo_p99_ms,
    })
}

/// `--log`, DIR/access.log, or DIR's only `*.log`.
fn find_log(args: &ReplayArgs) -> Result<PathBuf, String> {
    if let Some(p) = &args.log {
        return Ok(p.clone());
    }
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(format!(
            "{}: not a directory (give the incident's directory, with its access log)",
            dir.display()
        ));
    }
    let access = dir.join("access.log");
    if access.is_file() {
        return Ok(access);
    }
    let logs: Vec<PathBuf> = list(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    match logs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "{}: no access.log nor *.log here: give --log FILE",
            dir.display()
        )),
        _ => Err(format!(
            "{}: {} *.log files and no access.log: give --log FILE",
            dir.display(),
            logs.len()
        )),
    }
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// DIR's `prometheus*.json` and `prometheus*.csv`, as (name, text).
fn prom_files(dir: &Path) -> Result<Vec<(String, String)>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for p in list(dir)? {
        let file = p
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned());
        if file.starts_with("prometheus") && (file.ends_with(".json") || file.ends_with(".csv")) {
            let text = scenario::read_limited(&p, 256 << 20)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            out.push((p.display().to_string(), text));
        }
    }
    Ok(out)
}

fn default_name(dir: &Path) -> String {
    let stem = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "incident".into());
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    format!("replay-{}", clean.trim_start_matches('.'))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The derived scenario with the `--what-if` fields set.
fn what_if(args: &ReplayArgs, path: &Path, base: &Scenario) -> Result<Option<Scenario>, String> {
    if args.what_if.is_empty() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut s = crate::run_cmd::with_fields(path, &text, "--what-if", &args.what_if)?;
    s.name = format!("{}.what-if", base.name);
    Ok(Some(s))
}

/// Prints each seed's match and replay command; returns how many reproduce the incident.
fn report_seeds(runs: &[Scored], scenario_path: &Path, log: &Import, slo: Slo) -> usize {
    let observed = runs[0].matched.observed_breaches();
    let mut answered = minitwin_sim::import::LogHist::default();
    let (mut requests, mut errors) = (0u64, 0u64);
    for w in log.windows.values() {
        answered.merge(&w.latency_ok);
        requests += w.requests;
        errors += w.user_errors();
    }
    say!(
        "observed: error_ratio {:.5} (5xx and 499), p99 {} of the requests answered; {} of {} windows breach the SLO (error ratio > {}, or p99 > {} ms){}",
        errors as f64 / requests.max(1) as f64,
        if answered.is_empty() { "unknown".to_string() } else { format!("{:.1} ms", answered.quantile_us(0.99) / 1e3) },
        observed.len(),
        runs[0].matched.windows.len(),
        slo.error_ratio,
        slo.p99_ms,
        spans(&observed, log.window_s)
    );
    if observed.is_empty() {
        say!("  nothing breached this SLO in the log, so no run can reproduce a breach: give a tighter --slo-error-ratio or --slo-p99-ms to replay a milder incident");
    }
    say!("seed  error_ratio  p99_ms  breach windows  overlap  distance  reproduces");
    let n = runs.iter().filter(|r| r.matched.reproduces()).count();
    for (i, r) in runs.iter().enumerate() {
        if i == SHOWN && runs.len() > SHOWN {
            say!("... {} more seeds in seeds.csv", runs.len() - SHOWN);
            break;
        }
        let m = &r.matched;
        let rep = m.reproduces();
        say!(
            "{:<5} {:<12.5} {:<7.1} {:<15} {:<8.2} {:<9.3} {}",
            r.seed,
            r.outcome.summary.error_ratio,
            r.outcome.summary.latency_ms_p99,
            format!(
                "{}{}",
                m.simulated_breaches().len(),
                spans(&m.simulated_breaches(), log.window_s)
            ),
            m.signature_overlap(),
            m.mean_distance(),
            if rep { "yes" } else { "no" }
        );
    }
    let mut overlaps: Vec<f64> = runs.iter().map(|r| r.matched.signature_overlap()).collect();
    overlaps.sort_by(f64::total_cmp);
    say!(
        "signature overlap over the seeds: min {:.2}, median {:.2}, max {:.2}",
        overlaps[0],
        overlaps[overlaps.len() / 2],
        overlaps[overlaps.len() - 1]
    );
    say!(
        "{n} of {} seeds reproduce the incident (its breach windows overlap the log's by {} or more: |both| / |either|); distance per window = |error ratio difference| + |log2 of the p99s' ratio|",
        runs.len(),
        replay::REPRODUCES_AT
    );
    for r in runs.iter().filter(|r| r.matched.reproduces()).take(5) {
        say!(
            "  replay: minitwin run {} --seed {}",
            scenario_path.display(),
            r.seed
        );
    }
    n
}

/// ` (+10..+24 s)`: consecutive windows joined.
fn spans(windows: &std::collections::BTreeSet<u64>, window_s: u64) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    for &w in windows {
        run = match run {
            Some((a, b)) if b + window_s == w => Some((a, w)),
            Some((a, b)) => {
                out.push(span(a, b));
                Some((w, w))
            }
            None => Some((w, w)),
        };
    }
    if let Some((a, b)) = run {
        out.push(span(a, b));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" ({} s)", out.join(", "))
    }
}

fn span(a: u64, b: u64) -> String {
    if a == b {
        format!("+{a}")
    } else {
        format!("+{a}..+{b}")
    }
}

fn seeds_csv(dir: &Path, runs: &[Scored]) -> Result<(), String> {
    let mut out = String::from(
        "seed,error_ratio,latency_ms_p99,breach_windows,signature_overlap,mean_distance,reproduces,trace_hash\n",
    );
    for r in runs {
        out.push_str(&format!(
            "{},{:.6},{:.3},{},{:.4},{:.4},{},{:016x}\n",
            r.seed,
            r.outcome.summary.error_ratio,
            r.outcome.summary.latency_ms_p99,
            r.matched.simulated_breaches().len(),
            r.matched.signature_overlap(),
            r.matched.mean_distance(),
            u8::from(r.matched.reproduces()),
            r.outcome.trace_hash
        ));
    }
    write(&dir.join("seeds.csv"), &out)
}

/// A number read from a scored run.
type Measure = dyn Fn(&Scored) -> f64;

/// The incident and the what-if side by side, seed by seed on the same seeds.
fn report_what_if(incident: &[Scored], what_if: &[Scored], args: &ReplayArgs) {
    say!(
        "what-if {} (the same {} seeds, common random numbers):",
        args.what_if.join(" "),
        incident.len()
    );
    let mean =
        |runs: &[Scored], f: &Measure| runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64;
    let rows: [(&str, &Measure); 5] = [
        ("error_ratio", &|r| r.outcome.summary.error_ratio),
        ("latency_ms_p99", &|r| r.outcome.summary.latency_ms_p99),
        ("breach_windows", &|r| {
            r.matched.simulated_breaches().len() as f64
        }),
        ("seeds reproducing", &|r| {
            f64::from(u8::from(r.matched.reproduces()))
        }),
        ("checks failed", &|r| {
            r.outcome.checks.iter().filter(|c| c.failed()).count() as f64
        }),
    ];
    say!("  {:<18} {:>12} {:>12}", "", "incident", "what-if");
    for (name, f) in rows {
        let (a, b) = (mean(incident, f), mean(what_if, f));
        if name == "seeds reproducing" {
            say!(
                "  {:<18} {:>12} {:>12}",
                name,
                format!("{}/{}", (a * incident.len() as f64).round(), incident.len()),
                format!("{}/{}", (b * what_if.len() as f64).round(), what_if.len())
            );
        } else {
            say!("  {name:<18} {a:>12.4} {b:>12.4}");
        }
    }
}

fn report_html(
    dir: &Path,
    name: &str,
    best: &Scored,
    what_if: Option<&Vec<Scored>>,
    source: &str,
    derived: &replay::Derived,
    slo: Slo,
) -> Result<(), String> {
    let mut r = crate::html::Report::new(format!("minitwin replay: {name}"));
    r.fact("scenario", format!("{name} (scenario.toml)"))
        .fact("best seed", best.seed.to_string())
        .fact(
            "reproduces",
            if best.matched.reproduces() {
                "yes"
            } else {
                "no"
            },
        )
        .fact(
            "signature overlap",
            format!(
                "{:.2} (breach windows: |both| / |either|)",
                best.matched.signature_overlap()
            ),
        )
        .fact(
            "mean distance",
            format!(
                "{:.3} per window (|error ratio difference| + |log2 p99 ratio|)",
                best.matched.mean_distance()
            ),
        )
        .fact("faults", source.to_string())
        .fact("commit", crate::run_cmd::COMMIT);
    r.figure(
        "fig-replay",
        "The log (observed) against the twin (simulated), window by window: the users' error ratio above, the p99 of the requests answered below, with the SLO.",
        crate::plot::replay(&format!("{name} seed {}", best.seed), &best.matched.windows, slo.p99_ms),
    );
    if let Some(runs) = what_if {
        if let Some(w) = runs.iter().find(|w| w.seed == best.seed) {
            r.figure(
                "fig-what-if",
                "The what-if on the same seed, against the log.",
                crate::plot::replay(
                    &format!("what-if seed {}", w.seed),
                    &w.matched.windows,
                    slo.p99_ms,
                ),
            );
        }
    }
    r.text("Faults", derived.faults.clone());
    crate::html::write(&r, &dir.join("report.html"))
}
