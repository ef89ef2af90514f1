//! Many runs in parallel, across runs and never inside one (rayon): the same machinery for
//! `sweep`, `compare` and `capacity`. A progress bar shows runs done, events per second and an
//! ETA; a panicking run is reported, not fatal; Ctrl-C stops starting new runs and cuts the
//! running ones short at their next chunk.

use indicatif::{ProgressBar, ProgressStyle};
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{self as runner, RunOptions};
use minitwin_sim::scenario::Scenario;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// What became of one run.
pub enum Fate {
    Ran(Box<RunOutcome>),
    /// The simulator panicked: the message.
    Crashed(String),
    /// Not run: interrupted first.
    Skipped,
}

/// The most worker threads a pool may have (runs are single-threaded).
pub fn max_jobs() -> usize {
    4 * std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(64)
}

/// The threads to run `runs` runs on: `--jobs`, or one per core; never more than runs.
pub fn threads(jobs: Option<usize>, runs: usize) -> Result<usize, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = jobs.unwrap_or(cores);
    if jobs == 0 || jobs > max_jobs() {
        return Err(format!(
            "--jobs {jobs}: give 1 to {} (this machine has {cores} cores; runs are single-threaded)",
            max_jobs()
        ));
    }
    Ok(jobs.min(runs.max(1)))
}

/// Runs every `(scenario, seed)` of `jobs` on `threads` threads; results in the order given.
pub fn run_all(jobs: &[(&Scenario, u64)], threads: usize, quiet: bool, what: &str) -> Vec<Fate> {
    map(jobs, threads, quiet, what, &|scenario, seed, options| {
        runner::run(scenario, seed, options, &mut |_| {})
    })
    .into_iter()
    .map(|f| match f {
        Mapped::Ran(o) => Fate::Ran(Box::new(o)),
        Mapped::Crashed(m) => Fate::Crashed(m),
        Mapped::Skipped => Fate::Skipped,
    })
    .collect()
}

/// What became of one run of [`map`].
pub enum Mapped<T> {
    Ran(T),
    Crashed(String),
    Skipped,
}

/// Something with a run's event count, for the progress bar.
pub trait Events {
    fn events_total(&self) -> u64;
}

impl Events for minitwin_sim::outcome::RunOutcome {
    fn events_total(&self) -> u64 {
        self.events_total
    }
}

impl<A: Events, B> Events for (A, B) {
    fn events_total(&self) -> u64 {
        self.0.events_total()
    }
}

/// [`run_all`] with the run of each job made by `run` (which may keep what it streams), its
/// options carrying the interrupt.
pub fn map<T: Send + Events>(
    jobs: &[(&Scenario, u64)],
    threads: usize,
    quiet: bool,
    what: &str,
    run: &(dyn Fn(&Scenario, u64, &RunOptions) -> T + Sync),
) -> Vec<Mapped<T>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.clamp(1, max_jobs()))
        .build()
        .expect("a thread pool of a bounded size starts");
    let bar = bar(quiet, jobs.len() as u64, what);
    let events = AtomicU64::new(0);
    // Wall-clock time feeds the progress bar only; it never enters a run.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // crashes are reported per run
    let fates = pool.install(|| {
        jobs.par_iter()
            .map(|&(scenario, seed)| {
                let fate = run_one(scenario, seed, run);
                if let Mapped::Ran(o) = &fate {
                    let n = o.events_total();
                    let total = events.fetch_add(n, Ordering::Relaxed) + n;
                    let wall = started.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!("{:.2} M events/s", total as f64 / wall / 1e6));
                }
                bar.inc(1);
                fate
            })
            .collect()
    });
    std::panic::set_hook(previous_hook);
    bar.finish_and_clear();
    fates
}

fn run_one<T>(
    scenario: &Scenario,
    seed: u64,
    run: &(dyn Fn(&Scenario, u64, &RunOptions) -> T + Sync),
) -> Mapped<T> {
    if crate::interrupt::requested() {
        return Mapped::Skipped;
    }
    let options = RunOptions {
        stop: Some(&crate::interrupt::STOP),
        ..RunOptions::default()
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(scenario, seed, &options)
    })) {
        Ok(o) => Mapped::Ran(o),
        Err(p) => Mapped::Crashed(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()),
        ),
    }
}

fn bar(quiet: bool, n: u64, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n);
    let template =
        format!("{{bar:30}} {{pos}}/{{len}} {what}  {{msg}}  [{{elapsed}}, eta {{eta}}]");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    bar
}

/// The exit code of many runs: the worst by precedence, interrupted (130), then a crash (1),
/// bad output (2), correctness (3), liveness (4).
#[derive(Default)]
pub struct Worst(pub u8);

impl Worst {
    pub fn add(&mut self, code: u8) {
        let rank = |c: u8| match c {
            crate::interrupt::EXIT_INTERRUPTED => 5,
            1 => 4,
            2 => 3,
            3 => 2,
            4 => 1,
            _ => 0,
        };
        if rank(code) > rank(self.0) {
            self.0 = code;
        }
    }
}

/// Refuses runs over the budget (each run's events and memory, and `threads` of the biggest at
/// once) unless `force`; `(name, scenario)` names each kind of run in the error.
pub fn check_budget(
    scenarios: &[(&str, &Scenario)],
    threads: usize,
    force: bool,
) -> Result<(), String> {
    if force {
        return Ok(());
    }
    let mut biggest = 0f64;
    for (name, s) in scenarios {
        let e = minitwin_sim::tiers::estimate(s);
        if let Some(why) = e.over_budget() {
            return Err(format!(
                "{name}, each run: {why}. Shorten duration_s, lower the load, or pass --force"
            ));
        }
        biggest = biggest.max(e.bytes);
    }
    if biggest * threads as f64 > minitwin_sim::tiers::BYTE_BUDGET {
        return Err(format!(
            "{threads} runs at once would hold about {:.1} GiB: lower --jobs, or pass --force",
            biggest * threads as f64 / 1024f64.powi(3)
        ));
    }
    Ok(())
}

/// The scenario at `path`, or its `[[variants]]` entry `variant`.
pub fn load_variant(path: &std::path::Path, variant: Option<&str>) -> Result<Scenario, String> {
    let Some(name) = variant else {
        return minitwin_sim::scenario::load(path).map_err(|e| e.to_string());
    };
    let (_, variants) =
        minitwin_sim::scenario::load_with_variants(path).map_err(|e| e.to_string())?;
    let names: Vec<&str> = variants.iter().map(|(n, _)| n.as_str()).collect();
    variants
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.clone())
        .ok_or_else(|| {
            format!(
                "--variant {name}: {} has no such variant; it has {names:?}",
                path.display()
            )
        })
}
