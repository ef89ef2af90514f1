//! `minitwin run`: run a scenario for one or more seeds, print a summary, write results.

use crate::cli::RunArgs;
use indicatif::{ProgressBar, ProgressStyle};
use minitwin_sim::kernel::Progress;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::report;
use minitwin_sim::run::{self as runner, RunOptions};
use minitwin_sim::scenario::{self, Scenario};
use minitwin_sim::series::SecondRow;
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const COMMIT: &str = env!("MINITWIN_COMMIT");

pub fn main(args: RunArgs) -> u8 {
    let scenario = match load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Err(e) = preflight(&args, &scenario) {
        eprintln!("error: {e}");
        return 2;
    }
    let seeds = match args.seed {
        Some(s) => vec![s],
        None => scenario.seeds.clone(),
    };
    let mut worst = 0u8;
    let several = seeds.len() > 1;
    for seed in seeds {
        if crate::interrupt::requested() {
            break;
        }
        let log = args.log.as_ref().map(|l| log_path(l, seed, several));
        let code = match run_one(&args, &scenario, seed, log.as_deref()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        };
        worst = worst.max(code);
    }
    worst
}

/// The scenario, or its `--variant`.
fn load(args: &RunArgs) -> Result<Scenario, String> {
    if !args.set.is_empty() {
        if args.variant.is_some() {
            return Err("give --variant or --set, not both".into());
        }
        return load_with_sets(args);
    }
    crate::pool::load_variant(&args.scenario, args.variant.as_deref())
}

/// The scenario with its `--set` fields overridden, named `<scenario>.set` (its results go
/// beside the base's, not over them).
fn load_with_sets(args: &RunArgs) -> Result<Scenario, String> {
    let text = scenario::read_limited(&args.scenario, scenario::MAX_SCENARIO_BYTES)
        .map_err(|m| format!("{}: {m}", args.scenario.display()))?;
    let mut s = with_fields(&args.scenario, &text, "--set", &args.set)?;
    let base = scenario::parse(&args.scenario, &text).map_err(|e| e.to_string())?;
    s.name = format!("{}.set", base.name);
    Ok(s)
}

/// `PATH=VALUE` arguments of `flag`, each with one TOML value.
pub fn single_values(
    flag: &str,
    args: &[String],
) -> Result<Vec<minitwin_sim::sweep::Axis>, String> {
    args.iter()
        .map(|a| {
            let axis = minitwin_sim::sweep::Axis::parse(a).map_err(|e| format!("{flag} {e}"))?;
            if axis.values.len() != 1 {
                return Err(format!("{flag} {a}: give one value (sweep takes several)"));
            }
            Ok(axis)
        })
        .collect()
}

/// The scenario at `path` (its `text`) with the `PATH=VALUE` fields of `flag` set, validated.
pub fn with_fields(
    path: &Path,
    text: &str,
    flag: &str,
    args: &[String],
) -> Result<Scenario, String> {
    use minitwin_sim::sweep;
    let axes = single_values(flag, args)?;
    let points = sweep::points(&axes);
    Ok(sweep::scenarios(path, text, &axes, &points)
        .map_err(|e| format!("{flag}: {e}"))?
        .remove(0))
}

/// Everything that can be refused before simulating anything: the budget, the log path, the
/// results directory.
fn preflight(args: &RunArgs, scenario: &Scenario) -> Result<(), String> {
    let e = minitwin_sim::tiers::estimate(scenario);
    if !args.quiet {
        say!(
            "estimated: {:.1e} events, {:.0} MB",
            e.events,
            e.bytes / 1e6
        );
    }
    if let Some(why) = e.over_budget() {
        if !args.force {
            return Err(format!(
                "{}: {why}. Shorten duration_s, lower the load, or pass --force to run anyway",
                args.scenario.display()
            ));
        }
        eprintln!("warning: {why}; running anyway (--force)");
    }
    if let Some(log) = &args.log {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same(log, &args.scenario) {
            return Err(format!(
                "--log {} is the scenario file itself: give another path",
                log.display()
            ));
        }
        if log.is_dir() {
            return Err(format!(
                "--log {} is a directory: give a file",
                log.display()
            ));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| {
        format!(
            "--out {}: cannot create the results directory: {e}",
            args.out.display()
        )
    })
}

/// The log file for `seed`: FILE itself for one seed, FILE with `-seed-N` before its
/// extension for several.
fn log_path(log: &Path, seed: u64, several: bool) -> PathBuf {
    if !several {
        return log.to_path_buf();
    }
    let stem = log
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match log.extension() {
        Some(ext) => format!("{stem}-seed-{seed}.{}", ext.to_string_lossy()),
        None => format!("{stem}-seed-{seed}"),
    };
    log.with_file_name(name)
}

fn replay(args: &RunArgs, seed: u64) -> String {
    let variant = args
        .variant
        .as_ref()
        .map_or(String::new(), |v| format!(" --variant {v}"));
    // The overrides too, quoted for a POSIX shell, or the command would replay another run.
    let sets: String = args
        .set
        .iter()
        .map(|s| format!(" --set '{}'", s.replace('\'', "'\\''")))
        .collect();
    format!(
        "minitwin run {}{variant}{sets} --seed {seed}",
        args.scenario.display()
    )
}

fn run_one(
    args: &RunArgs,
    scenario: &Scenario,
    seed: u64,
    log: Option<&Path>,
) -> Result<u8, String> {
    say!(
        "minitwin run: scenario `{}` seed {seed} commit {COMMIT}",
        scenario.name
    );
    say!("replay: {}", replay(args, seed));
    let dir = results_dir(&args.out, scenario, seed)?;
    let series = SeriesFile::create(&dir, scenario, seed)?;
    let bar = progress_bar(args.quiet, runner::duration_ns(scenario));
    let outcome = match run_with_log(args, scenario, seed, &bar, &series, log) {
        Ok(o) => o,
        Err(panic) => {
            bar.abandon();
            eprintln!("error: the simulator crashed: {panic}");
            eprintln!("replay: {}", replay(args, seed));
            return Ok(1);
        }
    };
    bar.finish_and_clear();
    say_raw!("{}", report::summary_text(&outcome));
    series.finish(outcome.interrupted_at_s.is_some())?;
    write_results(&dir, &outcome)?;
    say!("results: {}", dir.display());
    if let Some(at) = outcome.interrupted_at_s {
        eprintln!(
            "INTERRUPTED at {at:.1} simulated s: results in {} are partial (see PARTIAL)",
            dir.display()
        );
        return Ok(crate::interrupt::EXIT_INTERRUPTED);
    }
    match outcome.failure() {
        Some(class) => {
            eprintln!("FAILED ({class:?}); replay: {}", replay(args, seed));
            Ok(class.exit_code() as u8)
        }
        None => Ok(0),
    }
}

fn run_with_log(
    args: &RunArgs,
    scenario: &Scenario,
    seed: u64,
    bar: &ProgressBar,
    series: &SeriesFile,
    log: Option<&Path>,
) -> Result<RunOutcome, String> {
    // Wall-clock time feeds the progress bar only; it never enters the run.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let mut on_progress = |p: Progress| {
        bar.set_position(p.now_ns / 1_000_000_000);
        let wall_s = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{:.2} M events/s, {:.1} simulated s per s",
            p.events_total as f64 / wall_s / 1e6,
            p.now_ns as f64 / 1e9 / wall_s
        ));
    };
    let options = RunOptions {
        stop: Some(&crate::interrupt::STOP),
        ..RunOptions::default()
    };
    let mut on_second = |row: &SecondRow, _: &[u32]| series.write(row);
    let run = || runner::run_with(scenario, seed, &options, &mut on_progress, &mut on_second);
    let result = match log {
        None => std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)),
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("cannot create log file {}: {e}", path.display()))?;
            let level: tracing::Level = args.log_level.parse().expect("clap restricts the level");
            let subscriber = tracing_subscriber::fmt()
                .json()
                .without_time()
                .with_max_level(level)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::sync::Mutex::new(std::io::BufWriter::new(file)))
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            })
        }
    };
    result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

fn progress_bar(quiet: bool, duration_ns: u64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration_ns.div_ceil(1_000_000_000));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} simulated s  {msg}  [{elapsed}]")
            .expect("valid template"),
    );
    bar
}

/// `DIR/<scenario>/seed-<N>/`, created before the run so that a bad `--out` fails at once.
/// Scenario names are validated as plain file names, so the directory is always inside `out`.
fn results_dir(out: &Path, scenario: &Scenario, seed: u64) -> Result<PathBuf, String> {
    let name = Path::new(&scenario.name);
    assert!(
        name.components().count() == 1
            && matches!(
                name.components().next(),
                Some(std::path::Component::Normal(_))
            ),
        "validated scenario names are plain file names"
    );
    let dir = out.join(name).join(format!("seed-{seed}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create results directory {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Seconds of simulated time per `timeseries.csv` row: 1 for runs up to a day; longer runs
/// merge seconds so that the file keeps at most about 86,400 rows (a 90-day run: 90 s rows,
/// rates per second), instead of millions of mostly idle ones.
pub fn series_row_width_s(duration_s: f64) -> u64 {
    (duration_s / 86_400.0).ceil().max(1.0) as u64
}

/// `timeseries.csv`, written as the run goes (as `timeseries.csv.partial` until it ends).
struct SeriesFile {
    partial: PathBuf,
    done: PathBuf,
    scenario: String,
    seed: u64,
    width_s: u64,
    /// A row still collecting its `width_s` seconds.
    pending: RefCell<Option<SecondRow>>,
    out: RefCell<Option<BufWriter<File>>>,
    error: RefCell<Option<String>>,
}

impl SeriesFile {
    fn create(dir: &Path, scenario: &Scenario, seed: u64) -> Result<SeriesFile, String> {
        let partial = dir.join("timeseries.csv.partial");
        let file = File::create(&partial)
            .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
        let mut out = BufWriter::new(file);
        writeln!(out, "{}", report::TIMESERIES_HEADER.join(","))
            .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        Ok(SeriesFile {
            done: dir.join("timeseries.csv"),
            partial,
            scenario: scenario.name.clone(),
            seed,
            width_s: series_row_width_s(scenario.duration_s),
            pending: RefCell::new(None),
            out: RefCell::new(Some(out)),
            error: RefCell::new(None),
        })
    }

    fn write(&self, row: &SecondRow) {
        let merged = match self.pending.borrow_mut().take() {
            Some(p) => minitwin_sim::series::Span::merge(&p, row),
            None => *row,
        };
        if merged.span_s < self.width_s {
            *self.pending.borrow_mut() = Some(merged);
            return;
        }
        self.write_line(&merged);
    }

    fn write_line(&self, row: &SecondRow) {
        let mut out = self.out.borrow_mut();
        let Some(w) = out.as_mut() else { return };
        let line = report::timeseries_line(&self.scenario, self.seed, COMMIT, row);
        if let Err(e) = w.write_all(line.as_bytes()) {
            *self.error.borrow_mut() =
                Some(format!("cannot write {}: {e}", self.partial.display()));
            *out = None;
        }
    }

    /// Flushes and renames the file to `timeseries.csv` (kept as `.partial` when the run was
    /// interrupted).
    fn finish(&self, partial: bool) -> Result<(), String> {
        if let Some(last) = self.pending.borrow_mut().take() {
            self.write_line(&last);
        }
        if let Some(e) = self.error.borrow_mut().take() {
            return Err(e);
        }
        if let Some(mut w) = self.out.borrow_mut().take() {
            w.flush()
                .map_err(|e| format!("cannot write {}: {e}", self.partial.display()))?;
        }
        if partial {
            return Ok(());
        }
        std::fs::rename(&self.partial, &self.done)
            .map_err(|e| format!("cannot rename {}: {e}", self.partial.display()))
    }
}

fn write_results(dir: &Path, o: &RunOutcome) -> Result<(), String> {
    let partial = std::path::Path::new("PARTIAL");
    match o.interrupted_at_s {
        Some(at) => {
            let text = format!(
                "interrupted at {at:.3} simulated s: every file here covers only the run so far\n"
            );
            std::fs::write(dir.join(partial), text)
                .map_err(|e| format!("cannot write {}: {e}", dir.join(partial).display()))?;
        }
        None => {
            let _ = std::fs::remove_file(dir.join(partial));
        }
    }
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("metrics.csv", report::metrics_csv(o, COMMIT)),
        ("summary.txt", report::summary_text(o).into_bytes()),
        (
            "trace_hash.txt",
            format!("{:016x}\n", o.trace_hash).into_bytes(),
        ),
    ];
    for t in &o.tables {
        files.push((t.file, report::table_csv(o, COMMIT, t)));
    }
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    crate::plot::timeseries_svg(o, &dir.join("timeseries.svg"))?;
    crate::html::write(&run_report(o), &dir.join("report.html"))
}

/// The run's HTML report: its facts, summary, checks and figures.
pub fn run_report(o: &RunOutcome) -> crate::html::Report {
    let mut r = crate::html::Report::new(format!("minitwin run: {} seed {}", o.scenario, o.seed));
    r.fact("scenario", o.scenario.clone())
        .fact("seed", o.seed.to_string())
        .fact("commit", COMMIT)
        .fact("trace hash", format!("{:016x}", o.trace_hash));
    if let Some(at) = o.interrupted_at_s {
        r.fact("PARTIAL", format!("interrupted at {at:.3} simulated s"));
    }
    r.text(
        "Summary",
        report::summary_text(o).lines().map(String::from).collect(),
    );
    r.table(
        "Checks",
        &["check", "verdict", "detail"],
        o.checks
            .iter()
            .map(|c| vec![c.name.to_string(), c.label().to_string(), c.detail.clone()])
            .collect(),
    );
    if let Some(svg) = crate::plot::archive(o) {
        r.figure(
            "fig-archive",
            "The archiver's days: hot fraction and storage efficiency (archive.csv)",
            svg,
        );
    }
    if o.summary.requests_total == 0 {
        // Nothing to draw per request (an archiver's run, say): say so rather than draw empty
        // axes.
        r.text(
            "Requests",
            vec!["No requests in this run: the per-request figures are left out.".into()],
        );
        return r;
    }
    r.figure(
        "fig-requests",
        "Requests per simulated second: sent, answered ok, failed",
        crate::plot::requests(o),
    );
    r.figure(
        "fig-latency",
        "Latency of successful requests per second: mean and p99",
        crate::plot::latency(o),
    );
    r.figure(
        "fig-tiers",
        "Instances up, and queue depth in the services and stores, per second",
        crate::plot::tiers(o),
    );
    let cdf = vec![(format!("seed {}", o.seed), o.summary.latency_cdf_ms.clone())];
    r.figure(
        "fig-latency-cdf",
        "Latency CDF of the successful requests after the warm-up",
        crate::plot::cdfs("latency CDF", &cdf),
    );
    r
}
