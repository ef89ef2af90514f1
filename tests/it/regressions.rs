//! Every scenario in scenarios/regressions/ (shrunk reproductions of incidents and failures)
//! ends as its `[regression]` record says: the listed checks fail and no other, on each of its
//! seeds (or, with `expect = "pass"`, every check passes).

use crate::root;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario::{self, Scenario};

/// Ok when every seed of `s` ends as its record says; else what differs.
pub fn verdict(s: &Scenario) -> Result<(), String> {
    let r = s
        .regression
        .as_ref()
        .ok_or_else(|| format!("{}: no [regression] record", s.name))?;
    for &seed in &s.seeds {
        let o = run(s, seed, &RunOptions::default(), &mut |_| {});
        let mut failed: Vec<String> = o
            .checks
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.name.to_string())
            .collect();
        failed.sort();
        let mut want = if r.expect == "pass" {
            Vec::new()
        } else {
            r.failing_checks.clone()
        };
        want.sort();
        if failed != want {
            return Err(format!(
                "{} seed {seed}: failed {failed:?}, its record says {want:?} ({})",
                s.name, r.reproduces
            ));
        }
    }
    Ok(())
}

fn files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("scenarios/regressions"))
        .expect("scenarios/regressions/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_regression_scenario_still_ends_as_its_record_says() {
    let files = files();
    assert!(
        !files.is_empty(),
        "scenarios/regressions/ holds no scenario"
    );
    for path in files {
        let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.regression.is_some(),
            "{}: a regression needs its [regression] record",
            path.display()
        );
        if let Err(e) = verdict(&s) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn a_regression_that_stopped_failing_or_fails_otherwise_is_caught() {
    let path = files().into_iter().next().expect("one regression at least");
    let s = scenario::load(&path).unwrap();
    // The twin stops reproducing it (its fault gone): caught.
    let mut healed = s.clone();
    healed.faults.clear();
    let e = verdict(&healed).unwrap_err();
    assert!(e.contains("failed []"), "{e}");
    // It fails, but not the way its record says: caught.
    let mut other = s.clone();
    other.regression.as_mut().unwrap().failing_checks = vec!["durability".into()];
    assert!(verdict(&other).is_err());
    // Marked fixed while it still fails: caught.
    let mut fixed = s;
    fixed.regression.as_mut().unwrap().expect = "pass".into();
    assert!(verdict(&fixed).is_err());
}
