//! `minitwin shrink`: a failing scenario and seed in, the smallest scenario that still fails
//! the same way out (see `minitwin_sim::shrink`), with a `[regression]` table saying what it
//! reproduces, ready for scenarios/regressions/.

use crate::cli::ShrinkArgs;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario::{self, Scenario};
use minitwin_sim::{shrink, variants};
use std::path::{Path, PathBuf};

pub fn main(args: ShrinkArgs) -> u8 {
    match shrink_file(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("minitwin shrink: {e}");
            2
        }
    }
}

/// The names of the checks that failed, sorted.
fn failing(o: &RunOutcome) -> Vec<String> {
    let mut v: Vec<String> = o
        .checks
        .iter()
        .filter(|c| c.failed())
        .map(|c| c.name.to_string())
        .collect();
    v.sort();
    v
}

fn run_quiet(s: &Scenario, seed: u64) -> RunOutcome {
    let options = RunOptions {
        stop: Some(&crate::interrupt::STOP),
        ..RunOptions::default()
    };
    run(s, seed, &options, &mut |_| {})
}

fn shrink_file(args: &ShrinkArgs) -> Result<u8, String> {
    let path = &args.scenario;
    let text = scenario::read_limited(path, scenario::MAX_SCENARIO_BYTES)
        .map_err(|m| format!("{}: {m}", path.display()))?;
    let base = scenario::parse(path, &text).map_err(|e| e.to_string())?;
    let table = variants::base_table(path, &text).map_err(|e| e.to_string())?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("scenarios/regressions").join(format!("{}-seed{}.toml", base.name, args.seed))
    });
    // Where it goes, made before any run: an unwritable place is refused at once.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("--out {}: {e}", dir.display()))?;
    }
    if args.seeds == 0 || args.seeds > 100 {
        return Err(format!("--seeds {}: give 1 to 100", args.seeds));
    }
    let seeds: Vec<u64> = (0..args.seeds).map(|i| args.seed.wrapping_add(i)).collect();
    let first = run_quiet(&base, args.seed);
    let want = failing(&first);
    if want.is_empty() {
        say!(
            "{} seed {}: every check passes: nothing to shrink (give a seed that fails; `minitwin sweep` or `minitwin replay` finds them)",
            path.display(),
            args.seed
        );
        return Ok(2);
    }
    for &s in &seeds[1..] {
        let other = failing(&run_quiet(&base, s));
        if other != want {
            return Err(format!(
                "{}: seed {} fails {:?} but seed {s} fails {:?}: not one failure on {} seeds (give --seeds 1 to shrink for seed {} alone)",
                path.display(),
                args.seed,
                want,
                other,
                args.seeds,
                args.seed
            ));
        }
    }
    say!(
        "{} seeds {:?}: fail {} ({} faults, {} s); shrinking, at most {} candidates",
        path.display(),
        seeds,
        want.join(", "),
        base.faults.len(),
        base.duration_s,
        args.max_runs
    );
    let measured_s = (base.duration_s - base.warmup_s).max(1e-3);
    let mean_rps = first.summary.requests_total as f64 / measured_s;
    let seed = args.seed;
    let mut fails = |t: &toml::Table| -> bool {
        let Ok(s) = variants::overridden(path, t, &toml::Table::new()) else {
            return false;
        };
        seeds
            .iter()
            .all(|&seed| failing(&run_quiet(&s, seed)) == want)
    };
    let shrunk = shrink::shrink(&table, mean_rps, args.max_runs, &mut fails);
    for step in &shrunk.steps {
        say!("  {step}");
    }
    let last = variants::overridden(path, &shrunk.table, &toml::Table::new())?;
    let o = run_quiet(&last, seed);
    let what = args.what.clone().unwrap_or_else(|| {
        o.checks
            .iter()
            .filter(|c| c.failed())
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let body = regression_text(&shrunk.table, &base, path, &seeds, &want, &what, &shrunk)?;
    copy_trace(&shrunk.table, path, &out)?;
    std::fs::write(&out, body).map_err(|e| format!("{}: {e}", out.display()))?;
    let check = scenario::load(&out)
        .map_err(|e| format!("the shrunk scenario does not load (a bug, please report it): {e}"))?;
    let same = seeds
        .iter()
        .all(|&s| failing(&run_quiet(&check, s)) == want);
    say!(
        "{} candidates; wrote {} ({} faults, {} s): seeds {:?} fail {} (the same way: {})",
        shrunk.runs,
        out.display(),
        check.faults.len(),
        check.duration_s,
        seeds,
        want.join(", "),
        if same { "yes" } else { "NO" }
    );
    say!("  replay: minitwin run {} --seed {seed}", out.display());
    Ok(if same { 0 } else { 1 })
}

/// The shrunk scenario's file: a comment, its `[regression]` record, then the scenario.
fn regression_text(
    table: &toml::Table,
    base: &Scenario,
    from: &Path,
    seeds: &[u64],
    want: &[String],
    what: &str,
    shrunk: &shrink::Shrunk,
) -> Result<String, String> {
    let seed = seeds[0];
    let mut t = table.clone();
    t.insert("name".into(), format!("{}-seed{seed}", base.name).into());
    t.insert(
        "seeds".into(),
        toml::Value::Array(
            seeds
                .iter()
                .map(|&s| toml::Value::Integer(s as i64))
                .collect(),
        ),
    );
    t.remove("variants");
    let mut reg = toml::Table::new();
    reg.insert("reproduces".into(), what.into());
    reg.insert("seed".into(), toml::Value::Integer(seed as i64));
    reg.insert("expect".into(), "fail".into());
    reg.insert(
        "failing_checks".into(),
        toml::Value::Array(want.iter().map(|w| w.as_str().into()).collect()),
    );
    t.insert("regression".into(), toml::Value::Table(reg));
    let body = toml::to_string(&t).map_err(|e| format!("cannot write the shrunk scenario: {e}"))?;
    let what = what.replace(['\n', '\r'], " ");
    let head = format!(
        "# Shrunk by `minitwin shrink {} --seed {seed} --seeds {}`\n# ({} candidates) from a scenario of {} faults and {} s.\n# It reproduces: {what}\n# Steps: {}.\n# The test suite runs it (tests/it/regressions.rs): each of its seeds must fail {} and\n# nothing else. Once the cause is fixed in this file, set [regression] expect = \"pass\".\n",
        from.display(),
        seeds.len(),
        shrunk.runs,
        base.faults.len(),
        base.duration_s,
        if shrunk.steps.is_empty() { "none".to_string() } else { shrunk.steps.join("; ") },
        want.join(", ")
    );
    Ok(format!("{head}{body}"))
}

/// A trace rate curve's CSV, copied beside the shrunk scenario when it goes elsewhere.
fn copy_trace(table: &toml::Table, from: &Path, out: &Path) -> Result<(), String> {
    let Some(file) = table
        .get("workload")
        .and_then(|w| w.get("rate"))
        .filter(|r| r.get("curve").and_then(|c| c.as_str()) == Some("trace"))
        .and_then(|r| r.get("file"))
        .and_then(|f| f.as_str())
    else {
        return Ok(());
    };
    let src = from.parent().unwrap_or(Path::new(".")).join(file);
    let dst = out.parent().unwrap_or(Path::new(".")).join(file);
    if src.canonicalize().ok() == dst.canonicalize().ok() && dst.exists() {
        return Ok(());
    }
    if let Some(d) = dst.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::copy(&src, &dst)
        .map_err(|e| format!("{} -> {}: {e}", src.display(), dst.display()))?;
    Ok(())
}
