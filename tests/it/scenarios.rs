use crate::root;
use minitwin_sim::scenario;
use std::path::Path;
use std::process::Command;

fn error_for(text: &str) -> String {
    scenario::parse(Path::new("bad.toml"), text)
        .expect_err("the file is invalid")
        .to_string()
}

fn minimal() -> String {
    std::fs::read_to_string(root().join("tests/it/all-faults.toml")).unwrap()
}

#[test]
fn every_shipped_scenario_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains("bug_"), "{}: plants a bug", path.display());
            n += 1;
        }
    }
    assert!(n >= 3, "ship at least steady, spike and shard-crash");
}

#[test]
fn an_unknown_field_is_an_error_naming_file_line_and_field() {
    let text = minimal().replace(
        "count = 2\nzones = [\"dc\"]\n[topology.stores]",
        "count = 2\nzones = [\"dc\"]\nworkerz = 3\n[topology.stores]",
    );
    let e = error_for(&text);
    assert!(
        e.starts_with("bad.toml:12:1: field `topology.services.workerz`"),
        "{e}"
    );
    assert!(e.contains("unknown field `workerz`"), "{e}");
}

#[test]
fn a_value_of_the_wrong_type_names_its_line() {
    let text = minimal().replace("rps = 100.0", "rps = \"fast\"");
    let e = error_for(&text);
    assert!(e.starts_with("bad.toml:16:"), "{e}");
    assert!(
        e.contains("field `workload.rate`: invalid type: string \"fast\", expected f64"),
        "{e}"
    );
}

#[test]
fn a_fault_naming_a_missing_node_names_the_field_and_its_line() {
    let text = minimal().replace("node = \"store-1\"", "node = \"store-9\"");
    let e = error_for(&text);
    assert!(e.contains("field `faults[5].node`"), "{e}");
    assert!(e.contains("`store-9` names no node"), "{e}");
    let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
    assert_eq!(
        minimal().lines().nth(line - 1).unwrap(),
        "node = \"store-1\""
    );
}

#[test]
fn a_mix_that_does_not_add_up_is_refused() {
    let text = minimal().replace(
        "rate = { curve",
        "mix = { static = 0.5, read = 0.5, write = 0.5 }\nrate = { curve",
    );
    let e = error_for(&text);
    assert!(
        e.contains("field `workload.mix`") && e.contains("add up to 1"),
        "{e}"
    );
}

#[test]
fn minitwin_check_exits_2_with_the_error_and_0_for_good_files() {
    let bin = env!("CARGO_BIN_EXE_minitwin");
    let dir = crate::scratch("check");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        minimal().replace("duration_s = 12.0", "duration_s = -1.0"),
    )
    .unwrap();
    let out = Command::new(bin).arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:3:1: field `duration_s`"),
        "{stderr}"
    );
    let good = root().join("scenarios/steady.toml");
    let out = Command::new(bin).arg("check").arg(&good).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn minitwin_run_prints_the_replay_command_and_writes_results() {
    let bin = env!("CARGO_BIN_EXE_minitwin");
    let out_dir = crate::scratch("run");
    let scenario = root().join("tests/it/all-faults.toml");
    let log = out_dir.join("log.jsonl");
    let out = Command::new(bin)
        .args(["run", "--quiet", "--seed", "4", "--out"])
        .arg(&out_dir)
        .arg("--log")
        .arg(&log)
        .arg(&scenario)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "replay: minitwin run {} --seed 4",
            scenario.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("latency p50/p99/p999"), "{stdout}");
    let results = out_dir.join("all-faults/seed-4");
    let csv = std::fs::read_to_string(results.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("scenario,seed,commit,component,metric,value,unit\n"));
    assert!(csv.contains("all-faults,4,"));
    assert_eq!(
        std::fs::read_to_string(results.join("trace_hash.txt"))
            .unwrap()
            .trim()
            .len(),
        16
    );
    let log = std::fs::read_to_string(&log).unwrap();
    let fault_line = log
        .lines()
        .find(|l| l.contains("\"fault\""))
        .expect("faults are logged");
    assert!(fault_line.contains("\"t_ns\":1000000000"), "{fault_line}");
}

#[test]
fn a_planted_bug_parses_in_test_builds_only() {
    // The test build enables `planted-bugs`; `.ci/run` checks that the release binary refuses
    // the same file with "unknown field `bug_ack_before_sync`".
    let path = root().join("tests/it/planted-bug.toml");
    let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.topology.stores.config.bug_ack_before_sync);
}

#[test]
fn an_error_in_a_table_after_the_checks_names_that_table() {
    // `[topology.sessions]` extends `[topology]` from further down the file, after `[checks]`.
    let text = format!(
        "{}[checks]\ndurability = true\n[topology.sessions]\nmasters = \"x\"\nzones = [\"dc\"]\n",
        minimal().split("[[faults]]").next().unwrap()
    );
    let e = error_for(&text);
    assert!(e.contains("field `topology.sessions.masters`"), "{e}");
}
