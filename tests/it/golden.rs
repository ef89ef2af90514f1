//! Golden trace hashes: the first seed of every shipped scenario, run as `minitwin run` runs it,
//! must end with the event-trace hash recorded in `tests/golden/trace_hashes.txt`. A change
//! that moves any event shows up here as a reviewed diff of that file.
//!
//! After a change that is meant to move events, update the file with
//! `MINITWIN_BLESS=1 cargo test --release --test it golden` and commit it with the change.

use crate::root;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario;
use std::fmt::Write as _;

const GOLDEN: &str = "tests/golden/trace_hashes.txt";

/// `scenario-file seed hash` for every shipped scenario, in file-name order.
fn current() -> String {
    let mut files: Vec<_> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = String::from(
        "# The event-trace hash of each shipped scenario's first seed (tests/it/golden.rs).\n\
         # Update: MINITWIN_BLESS=1 cargo test --release --test it golden\n",
    );
    for path in files {
        let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let seed = s.seeds[0];
        let o = run(&s, seed, &RunOptions::default(), &mut |_| {});
        let name = path.file_name().unwrap().to_string_lossy();
        let _ = writeln!(out, "{name} {seed} {:016x}", o.trace_hash);
    }
    out
}

#[test]
fn every_shipped_scenario_replays_its_golden_trace_hash() {
    let now = current();
    let path = root().join(GOLDEN);
    if std::env::var_os("MINITWIN_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    if golden != now {
        let diff: Vec<String> = now
            .lines()
            .filter(|l| !golden.lines().any(|g| g == *l))
            .map(|l| format!("  now:    {l}"))
            .chain(
                golden
                    .lines()
                    .filter(|g| !now.lines().any(|l| l == *g))
                    .map(|g| format!("  golden: {g}")),
            )
            .collect();
        panic!(
            "trace hashes moved (a change moved events):\n{}\nIf that is intended, run \
             MINITWIN_BLESS=1 cargo test --release --test it golden and commit {GOLDEN}",
            diff.join("\n")
        );
    }
}

/// The README's sample output is the output of the command it shows (commit ids aside).
#[test]
fn the_readme_sample_output_is_what_the_command_prints() {
    const MARK: &str = "<!-- sample: minitwin run scenarios/steady.toml --seed 1 -->\n```\n";
    let out_dir = crate::scratch("readme");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .current_dir(root())
        .args(["run", "scenarios/steady.toml", "--seed", "1", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let printed = String::from_utf8(o.stdout)
        .unwrap()
        .replace(&out_dir.display().to_string(), "results");
    let readme_path = root().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme.find(MARK).expect("the README marks its sample") + MARK.len();
    let end = start + readme[start..].find("```").expect("the sample block ends");
    let masked = |t: &str| {
        t.lines()
            .map(|l| match l.find(" commit ") {
                Some(i) => format!("{} commit <commit>", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if std::env::var_os("MINITWIN_BLESS").is_some() {
        let updated = format!("{}{printed}{}", &readme[..start], &readme[end..]);
        std::fs::write(&readme_path, updated).unwrap();
        return;
    }
    assert_eq!(
        masked(&readme[start..end]).trim_end(),
        masked(&printed).trim_end(),
        "the README's sample is stale: MINITWIN_BLESS=1 cargo test --release --test it golden"
    );
}
