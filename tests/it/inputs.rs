//! Bad input and hostile surroundings, as a new user would produce them: each gets a clear
//! error with its exit code, never a panic, a hang or a write where it should not go.

use crate::minitwin;
use crate::root;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn scratch(name: &str) -> crate::Scratch {
    crate::scratch(&format!("inputs-{name}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn steady() -> String {
    root().join("scenarios/steady.toml").display().to_string()
}

#[test]
fn a_device_or_a_directory_is_refused_as_a_scenario_file() {
    for path in ["/dev/zero", "/tmp"] {
        if !Path::new(path).exists() {
            continue;
        }
        let o = minitwin(&["check", path]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("not a regular file"), "{}", text(&o));
    }
}

#[test]
fn an_out_that_is_a_file_fails_before_simulating_anything() {
    let dir = scratch("out-file");
    let file = dir.join("taken");
    std::fs::write(&file, "x").unwrap();
    let o = minitwin(&["run", &steady(), "--quiet", "--out", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot create the results directory"));
    assert!(!text(&o).contains("trace hash"), "it simulated first");
    let o = minitwin(&[
        "sweep",
        &steady(),
        "--seeds",
        "2",
        "--quiet",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_log_path_that_is_the_scenario_itself_is_refused_and_the_file_kept() {
    let dir = scratch("log-self");
    let scenario = dir.join("s.toml");
    std::fs::copy(root().join("scenarios/steady.toml"), &scenario).unwrap();
    let before = std::fs::read(&scenario).unwrap();
    let s = scenario.to_str().unwrap();
    let o = minitwin(&[
        "run",
        s,
        "--quiet",
        "--log",
        s,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(std::fs::read(&scenario).unwrap(), before);
}

#[test]
fn sweep_refuses_absurd_job_counts_seed_counts_axes_and_shards() {
    for bad in [
        vec!["--seeds", "2", "--jobs", "100000"],
        vec!["--seeds", "0"],
        vec!["--seeds", "20000000"],
        vec!["--axis", "topology.stores.shards"],
        vec!["--axis", "topology.stores.shards=0,2"],
        vec!["--axis", "topology.no_such_field=1"],
        vec!["--shard", "4/4"],
        vec!["--shard", "1/4", "--shards", "4"],
    ] {
        let steady = steady();
        let mut args = vec!["sweep", &steady[..], "--quiet"];
        args.extend(bad.iter().copied());
        let o = minitwin(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
        assert!(text(&o).starts_with("error: "), "{bad:?}: {}", text(&o));
    }
}

#[test]
fn a_run_over_the_budget_is_refused_unless_forced() {
    let dir = scratch("budget");
    let scenario = dir.join("long.toml");
    let text_in = std::fs::read_to_string(root().join("scenarios/steady.toml"))
        .unwrap()
        .replace("duration_s = 60.0", "duration_s = 34560000.0");
    std::fs::write(&scenario, text_in).unwrap();
    let o = minitwin(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
}

#[test]
fn faults_cannot_crash_the_workload_client() {
    let text_in = std::fs::read_to_string(root().join("tests/it/all-faults.toml"))
        .unwrap()
        .replace("node = \"store-1\"", "node = \"client\"");
    let e = minitwin_sim::scenario::parse(Path::new("bad.toml"), &text_in).unwrap_err();
    assert!(e.to_string().contains("measuring instrument"), "{e}");
}

#[test]
fn a_closed_stdout_does_not_stop_a_run_from_writing_its_results() {
    let dir = scratch("closed-stdout");
    let mut child = Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .args(["run", &steady(), "--seed", "1", "--quiet", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, as `| head` does
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(dir.join("steady/seed-1/summary.txt").exists());
}

#[test]
fn lincheck_refuses_a_file_without_history_and_says_undecided_when_over_budget() {
    let dir = scratch("lincheck");
    let empty = dir.join("notes.txt");
    std::fs::write(&empty, "just some notes\n").unwrap();
    let o = minitwin(&["lincheck", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no history line"), "{}", text(&o));
    let busy = dir.join("busy.log");
    let mut h = String::new();
    for p in 0..40 {
        h.push_str(&format!("INFO  jepsen.util - {p}\t:invoke\t:write\t{p}\n"));
    }
    for p in 0..40 {
        h.push_str(&format!("INFO  jepsen.util - {p}\t:ok\t:write\t{p}\n"));
    }
    h.push_str(
        "INFO  jepsen.util - 99\t:invoke\t:read\tnil\nINFO  jepsen.util - 99\t:ok\t:read\t7\n",
    );
    std::fs::write(&busy, h).unwrap();
    let o = minitwin(&["lincheck", "--budget", "100", busy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("undecided"), "{}", text(&o));
}

#[cfg(unix)]
#[test]
fn ctrl_c_writes_partial_results_marked_so_and_exits_130() {
    let dir = scratch("sigint");
    let scenario = dir.join("long.toml");
    let text_in = std::fs::read_to_string(root().join("scenarios/steady.toml"))
        .unwrap()
        .replace("duration_s = 60.0", "duration_s = 36000.0");
    std::fs::write(&scenario, text_in).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .args(["run", "--seed", "1", "--quiet", "--out"])
        .arg(&dir)
        .arg(&scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let results = dir.join("steady/seed-1");
    let marker = std::fs::read_to_string(results.join("PARTIAL")).unwrap();
    assert!(marker.contains("interrupted at"), "{marker}");
    let summary = std::fs::read_to_string(results.join("summary.txt")).unwrap();
    assert!(summary.contains("PARTIAL"), "{summary}");
    assert!(results.join("timeseries.csv.partial").exists());
}

#[test]
fn the_experiment_commands_refuse_what_would_hang_explode_or_panic() {
    let dir = scratch("experiments");
    let out = dir.to_str().unwrap();
    // A scenario whose rate is 0: doubling 0 stays 0, so the search needs a start.
    let archive = root().join("scenarios/archive-90d.toml");
    let o = minitwin(&[
        "capacity",
        archive.to_str().unwrap(),
        "--p99-ms",
        "100",
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("give --start-rps"), "{}", text(&o));
    // Axes whose product is astronomically large are refused before they are built.
    let steady = steady();
    let mut args = vec!["sweep", &steady[..], "--seeds", "1", "-q", "--out", out];
    let axis = "workload.users=1,2,3,4,5,6,7,8,9,10";
    for _ in 0..6 {
        args.extend(["--axis", axis]);
    }
    let o = minitwin(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("1000000 points"), "{}", text(&o));
    // An override naming no field says which override and which point.
    let o = minitwin(&[
        "run",
        &steady,
        "--set",
        "topology.nope=1",
        "-q",
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("with topology.nope=1 (point p0): unknown field `nope`"),
        "{}",
        text(&o)
    );
    // A hand-edited manifest with no shards is an error, not a division by zero.
    let sweep_dir = dir.join("bad-manifest");
    std::fs::create_dir_all(&sweep_dir).unwrap();
    let manifest = "scenario = \"x\"\nfingerprint = \"f\"\ncommit = \"c\"\nruns_total = 4\nshard = 0\nshards = 0\nruns_written = 0\n";
    std::fs::write(sweep_dir.join("shard-0-of-0.toml"), manifest).unwrap();
    std::fs::write(sweep_dir.join("shard-0-of-0.csv"), "run\n").unwrap();
    let o = minitwin(&["merge", sweep_dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a shard manifest minitwin wrote"),
        "{}",
        text(&o)
    );
    for bad in [
        ["--replications", "1"],
        ["--storage-days", "NaN"],
        ["--capacity-duration-s", "0"],
    ] {
        let o = minitwin(&["brief", bad[0], bad[1], "--out", out]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
        assert!(text(&o).contains(bad[0]), "{bad:?}: {}", text(&o));
    }
}

#[test]
fn bad_control_tier_fields_are_refused_with_the_field_named_and_exit_2() {
    let dir = scratch("control-tier");
    let base = std::fs::read_to_string(root().join("tests/it/every-field.toml")).unwrap();
    let out = dir.to_str().unwrap();
    // (field, value) -> the error names the field.
    for (path, value, says) in [
        (
            "topology.autoscaler.max_replicas",
            "0",
            "topology.autoscaler.max_replicas",
        ),
        (
            "topology.autoscaler.min_replicas",
            "0",
            "topology.autoscaler.min_replicas",
        ),
        (
            "topology.autoscaler.sync_period_ms",
            "nan",
            "sync_period_ms",
        ),
        (
            "topology.autoscaler.metrics",
            "[]",
            "topology.autoscaler.metrics",
        ),
        (
            "topology.autoscaler.predictive.reforecast_s",
            "999999",
            "reforecast_s",
        ),
        (
            "topology.autoscaler.predictive.history_noise",
            "inf",
            "history_noise",
        ),
        ("monitoring.raw_retention_s", "0.5", "raw_retention_s"),
        (
            "monitoring.rules[0].metric",
            "\"no_such_metric\"",
            "no_such_metric",
        ),
        ("monitoring.rules[0].scale_out_by", "0", "scale_out_by"),
        ("monitoring.anomalies[0].z", "nan", "anomalies.z"),
        (
            "security.allow[0].from",
            "\"no-such-role\"",
            "security.allow[0].from",
        ),
        (
            "security.without_certificate",
            "[\"nobody\"]",
            "without_certificate",
        ),
        ("slo.p99_ms", "-1.0", "slo.p99_ms"),
    ] {
        let o = minitwin(&[
            "run",
            root().join("tests/it/every-field.toml").to_str().unwrap(),
            "--set",
            &format!("{path}={value}"),
            "-q",
            "--out",
            out,
        ]);
        assert_eq!(o.status.code(), Some(2), "{path}={value}: {}", text(&o));
        assert!(text(&o).contains(says), "{path}={value}: {}", text(&o));
        assert!(!text(&o).contains("panicked"));
    }
    // A rogue fault naming nobody to impersonate, written by hand.
    let bad = base.replace("as_node = \"service-0\"\n", "");
    let file = dir.join("rogue.toml");
    std::fs::write(&file, bad).unwrap();
    let o = minitwin(&["check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("as_node"), "{}", text(&o));
}

#[test]
fn a_bad_rate_trace_is_refused_naming_the_csv_its_line_and_column() {
    let dir = scratch("trace");
    let scenario = std::fs::read_to_string(root().join("scenarios/trace-replay.toml"))
        .unwrap()
        .replace("traces/push-notification.csv", "rates.csv");
    let toml = dir.join("trace.toml");
    std::fs::write(&toml, scenario).unwrap();
    let path = toml.to_str().unwrap();
    for (csv, says) in [
        ("t_s,rps\n0,100\n10,abc\n", "rates.csv:3"),
        ("t_s,rps\n0,100\n0,200\n", "not after the previous time"),
        ("time,rate\n0,100\n", "the header must be `t_s,rps`"),
        ("t_s,rps\n", "no points"),
        ("t_s,rps\n0,100,7\n", "expected 2 cells"),
    ] {
        std::fs::write(dir.join("rates.csv"), csv).unwrap();
        let o = minitwin(&["check", path]);
        assert_eq!(o.status.code(), Some(2), "{csv:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{csv:?}: {}", text(&o));
        assert!(text(&o).contains("rates.csv"), "{}", text(&o));
    }
    std::fs::remove_file(dir.join("rates.csv")).unwrap();
    let o = minitwin(&["check", path]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("workload.rate.file"), "{}", text(&o));
}
