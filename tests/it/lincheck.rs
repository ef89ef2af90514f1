//! The linearizability checker against real Jepsen etcd histories with published verdicts.
//!
//! The histories are read in place from `../shared/testdata` (never copied into the
//! repository), so a fresh clone with nothing beside it does not have them: the tests that read
//! them are ignored by default and `.ci/run` runs them explicitly (and fails if the data is
//! missing there). Run them yourself with
//! `cargo test --release --test it -- --ignored jepsen_testdata`; `MINITWIN_TESTDATA` points at
//! another parent folder of `jepsen-etcd/`.

use minitwin_sim::lincheck::{self, Verdict};
use std::path::PathBuf;
use std::process::Command;

fn testdata() -> PathBuf {
    let dir = std::env::var_os("MINITWIN_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("../shared/testdata"))
        .join("jepsen-etcd");
    assert!(
        dir.join("verdicts.csv").exists(),
        "the Jepsen histories are missing: expected {}/verdicts.csv (shared/ beside the \
         checkout), or set MINITWIN_TESTDATA to the folder that holds jepsen-etcd/",
        dir.display()
    );
    dir
}

fn verdicts(dir: &std::path::Path) -> Vec<(String, bool)> {
    std::fs::read_to_string(dir.join("verdicts.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (file, v) = l.split_once(',').expect("file,verdict");
            (file.to_string(), v.trim() == "true")
        })
        .collect()
}

#[test]
#[ignore = "needs ../shared/testdata beside the checkout; run: cargo test --release --test it -- --ignored jepsen_testdata"]
fn jepsen_testdata_the_checker_agrees_with_every_published_etcd_verdict() {
    let dir = testdata();
    let all = verdicts(&dir);
    assert!(
        all.len() >= 40,
        "expected the etcd histories, found {}",
        all.len()
    );
    let (mut yes, mut no) = (0, 0);
    for (file, expected) in &all {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let history = lincheck::parse_jepsen(&text).unwrap_or_else(|e| panic!("{file}:{e}"));
        let verdict = lincheck::check(&history, None);
        let got = match verdict {
            Verdict::Linearizable => true,
            Verdict::NotLinearizable { .. } => false,
            Verdict::Unknown => panic!("{file}: no budget was set"),
        };
        assert_eq!(
            got, *expected,
            "{file}: published verdict {expected}, checker says {got}"
        );
        if got {
            yes += 1;
        } else {
            no += 1;
        }
    }
    eprintln!(
        "{} histories agree: {yes} linearizable, {no} not",
        all.len()
    );
}

#[test]
#[ignore = "needs ../shared/testdata beside the checkout; run: cargo test --release --test it -- --ignored jepsen_testdata"]
fn jepsen_testdata_minitwin_lincheck_exits_0_only_when_every_file_is_linearizable() {
    let dir = testdata();
    let all = verdicts(&dir);
    let good: Vec<PathBuf> = all
        .iter()
        .filter(|v| v.1)
        .map(|v| dir.join(&v.0))
        .take(3)
        .collect();
    let bad = dir.join(&all.iter().find(|v| !v.1).unwrap().0);
    let bin = env!("CARGO_BIN_EXE_minitwin");
    let out = Command::new(bin)
        .arg("lincheck")
        .args(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches(": linearizable")
            .count(),
        3
    );
    let out = Command::new(bin)
        .arg("lincheck")
        .args(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "not linearizable exits 3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not linearizable: no order places the operation invoked at line"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_history_is_an_error_naming_the_file_and_line() {
    let dir = crate::scratch("bad-history");
    let path = dir.join("history.log");
    std::fs::write(
        &path,
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:okay\t:read\t3\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .arg("lincheck")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:line 2: expected :invoke, :ok, :fail or :info, found \":okay\"",
            path.display()
        )),
        "{stderr}"
    );
}
