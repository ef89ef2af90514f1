//! Incident replay: the recorded incidents (real nginx, real Prometheus, in tests/data) turned
//! into scenarios that reproduce them, scored window by window; seed search, shrinking into a
//! regression, what-if; and bad evidence refused with the file, line and field.

use crate::{minitwin, root};

fn tmp(name: &str) -> crate::Scratch {
    crate::scratch(&format!("replay-{name}"))
}

fn hang() -> String {
    root()
        .join("tests/data/incident-hang")
        .display()
        .to_string()
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = minitwin(args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_recorded_hang_replays_from_its_timeline_and_every_seed_reproduces_it() {
    let out = tmp("timeline");
    let timeline = format!("{}/timeline.toml", hang());
    let (code, stdout, stderr) = run(&[
        "replay",
        &hang(),
        "--timeline",
        &timeline,
        "--seeds",
        "3",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("service-1 hung at +10.7 s for 15.0 s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("; 15 of 41 windows breach the SLO") && stdout.contains("(+11..+25 s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 of 3 seeds reproduce the incident"),
        "{stdout}"
    );
    assert!(stdout.contains("replay: minitwin run"), "{stdout}");
    let dir = out.join("replay-incident-hang");
    // The derived scenario loads as any scenario does, and says where its numbers came from.
    let s = minitwin_sim::scenario::load(&dir.join("scenario.toml")).unwrap();
    assert_eq!((s.topology.services.count, s.faults.len()), (3, 1));
    assert_eq!(
        s.workload.timeout_ms, 1000.0,
        "the users' 1 s limit, read from the 499s"
    );
    let text = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    assert!(
        text.contains("228 requests were given up on (499)"),
        "{text}"
    );
    // match.csv: every window of the log, the observed and simulated side by side; the twin's
    // error ratio during the hang within 10 points of the log's on average.
    let m = std::fs::read_to_string(dir.join("match.csv")).unwrap();
    let rows: Vec<Vec<f64>> = m
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|c| c.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 41);
    let during: Vec<&Vec<f64>> = rows
        .iter()
        .filter(|r| (12.0..=24.0).contains(&r[0]))
        .collect();
    let gap = during.iter().map(|r| (r[3] - r[4]).abs()).sum::<f64>() / during.len() as f64;
    assert!(gap < 0.10, "mean error-ratio gap during the hang {gap}");
    let observed = during.iter().map(|r| r[3]).sum::<f64>() / during.len() as f64;
    assert!(
        (0.25..0.40).contains(&observed),
        "a third of the requests went to the hung backend: {observed}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("fig-replay") && html.contains("<svg"),
        "the report draws both on one axis"
    );
}

#[test]
fn without_a_timeline_the_hang_is_inferred_from_the_log_and_from_prometheus() {
    let out = tmp("infer");
    let o = out.to_str().unwrap();
    let (code, stdout, stderr) = run(&[
        "replay",
        &hang(),
        "--no-metrics",
        "--seeds",
        "2",
        "-q",
        "--out",
        o,
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "service-1 hung at +10.5 s for 14.5 s: the log: 216 failed attempts at 127.0.0.1:31002, the first begun at +10.5 s"
        ),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(&["replay", &hang(), "--seeds", "2", "-q", "--out", o]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "Prometheus: up{instance=\"127.0.0.1:31002\"} was 0 from 1796174967 to 1796174982"
        ),
        "the JSON answer and its CSV export give one interval: {stdout}"
    );
    assert_eq!(stdout.matches("service-1 hung").count(), 1, "{stdout}");
}

#[test]
fn a_what_if_on_the_same_seeds_shows_a_short_proxy_timeout_absorbing_the_hang() {
    let out = tmp("whatif");
    let (code, stdout, stderr) = run(&[
        "replay",
        &hang(),
        "--seeds",
        "3",
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--what-if",
        "topology.gateways.config.proxy_timeout_ms=500",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let row = |name: &str| -> (f64, f64) {
        let l = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{stdout}"));
        let v: Vec<f64> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (v[0], v[1])
    };
    let (incident, what_if) = row("error_ratio");
    assert!(incident > 0.08 && what_if < 0.01, "{stdout}");
    assert!(
        stdout.contains("seeds reproducing           3/3          0/3"),
        "{stdout}"
    );
}

#[test]
fn a_killed_backend_nginx_routed_around_breaches_no_slo_and_reproduces_nothing() {
    let out = tmp("kill");
    let dir = root().join("tests/data/incident-nginx");
    let (code, stdout, stderr) = run(&[
        "replay",
        dir.to_str().unwrap(),
        "--seeds",
        "2",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("service-1 killed at +10.5 s"), "{stdout}");
    assert!(
        stdout.contains("; 0 of 41 windows breach the SLO"),
        "{stdout}"
    );
}

#[test]
fn bad_evidence_is_refused_with_the_file_line_and_field() {
    let out = tmp("bad");
    let o = out.to_str().unwrap();
    let (code, _, stderr) = run(&["replay", "/nonexistent/incident", "--out", o]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("/nonexistent/incident: not a directory"),
        "{stderr}"
    );
    let tl = out.join("timeline.toml");
    std::fs::write(
        &tl,
        "[[events]]\nat_s = 3.0\nkind = \"node_down\"\nnode = \"10.9.9.9:80\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&[
        "replay",
        &hang(),
        "--timeline",
        tl.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("`10.9.9.9:80`: neither an upstream in the log"),
        "{stderr}"
    );
    std::fs::write(&tl, "[[events]]\nat_s = 3.0\nkind = \"node_dwn\"\n").unwrap();
    let (code, _, stderr) = run(&[
        "replay",
        &hang(),
        "--timeline",
        tl.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("timeline.toml:3:") && stderr.contains("events[0].kind"),
        "{stderr}"
    );
    let ev = tmp("bad-prom");
    std::fs::copy(format!("{}/access.log", hang()), ev.join("access.log")).unwrap();
    std::fs::write(
        ev.join("prometheus-up.json"),
        "{\"status\":\"success\",\n\"data\": [",
    )
    .unwrap();
    let (code, _, stderr) = run(&["replay", ev.to_str().unwrap(), "--out", o]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("prometheus-up.json: not JSON (line 2"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["replay", &hang(), "--slo-error-ratio", "1.5", "--out", o]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--slo-error-ratio 1.5"), "{stderr}");
    let (code, _, stderr) = run(&[
        "replay",
        &hang(),
        "--set",
        "topology.gateways.config.max_fails=-3",
        "--out",
        o,
    ]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("field `topology.gateways.config.max_fails`")
            && stderr.contains("Check --set"),
        "{stderr}"
    );
}

#[test]
fn shrinking_the_replayed_hang_keeps_its_failure_on_every_seed_and_cuts_it_down() {
    let out = tmp("shrink");
    let o = out.to_str().unwrap();
    let timeline = format!("{}/timeline.toml", hang());
    let (code, stdout, stderr) = run(&[
        "replay",
        &hang(),
        "--timeline",
        &timeline,
        "--seeds",
        "1",
        "-q",
        "--out",
        o,
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let derived = out.join("replay-incident-hang/scenario.toml");
    let shrunk = out.join("regressions/hang.toml");
    let (code, stdout, stderr) = run(&[
        "shrink",
        derived.to_str().unwrap(),
        "--seed",
        "1",
        "--out",
        shrunk.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("(the same way: yes)"), "{stdout}");
    let s = minitwin_sim::scenario::load(&shrunk).unwrap();
    assert!(s.duration_s < 10.0 && s.faults.len() == 1, "{stdout}");
    assert!(
        s.faults[0].end_s().unwrap() - s.faults[0].at_s() < 5.0,
        "{stdout}"
    );
    let r = s.regression.as_ref().expect("a [regression] record");
    assert_eq!(
        (r.seed, r.failing_checks.as_slice()),
        (1, ["max_error_ratio".to_string()].as_slice())
    );
    assert_eq!(crate::regressions::verdict(&s), Ok(()));
}

#[test]
fn ddmin_over_a_scenario_drops_the_faults_that_do_not_matter() {
    // upstream-kill with its kill made a power loss (users time out: errors), plus two faults
    // that change nothing the check sees.
    let text = std::fs::read_to_string(root().join("scenarios/upstream-kill.toml"))
        .unwrap()
        .replace("kind = \"kill\"", "kind = \"crash\"")
        .replace("seeds = [1, 2, 3, 4, 5]", "seeds = [1]")
        + "\n[[faults]]\nkind = \"clock_skew\"\nat_s = 2.0\nnode = \"store-0\"\njump_ms = 5.0\n\n[[faults]]\nkind = \"restart\"\nat_s = 30.0\nnode = \"store-0\"\n";
    let dir = tmp("ddmin");
    let path = dir.join("three-faults.toml");
    std::fs::write(&path, text).unwrap();
    let shrunk = dir.join("shrunk.toml");
    let (code, stdout, stderr) = run(&[
        "shrink",
        path.to_str().unwrap(),
        "--seed",
        "1",
        "--seeds",
        "2",
        "--out",
        shrunk.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("faults: 3 -> 1 (kept faults[0])"),
        "{stdout}"
    );
    let s = minitwin_sim::scenario::load(&shrunk).unwrap();
    assert!(matches!(
        s.faults[0],
        minitwin_sim::scenario::Fault::Crash { .. }
    ));
    assert!(s.duration_s < 40.0, "{stdout}");
    // A seed that passes has nothing to shrink.
    let (code, stdout, _) = run(&[
        "shrink",
        root()
            .join("scenarios/upstream-kill.toml")
            .to_str()
            .unwrap(),
        "--seed",
        "1",
    ]);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stdout.contains("nothing to shrink"), "{stdout}");
}

#[test]
fn the_what_if_holds_against_real_nginx_run_with_that_timeout() {
    // The twin's what-if: the recorded 60 s incident with proxy_timeout_ms = 500.
    let out = tmp("held");
    let o = out.to_str().unwrap();
    let (code, stdout, stderr) = run(&[
        "replay",
        &hang(),
        "--seeds",
        "5",
        "-q",
        "--out",
        o,
        "--what-if",
        "topology.gateways.config.proxy_timeout_ms=500",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("breach_windows          15.0000       2.0000"),
        "{stdout}"
    );
    // Real nginx run with proxy_read_timeout 500ms, replayed with that setting: the twin's
    // breach windows are the real ones, and neither has a user error.
    let real = root().join("tests/data/incident-hang-timeout500");
    let timeline = real.join("timeline.toml");
    let (code, stdout, stderr) = run(&[
        "replay",
        real.to_str().unwrap(),
        "--timeline",
        timeline.to_str().unwrap(),
        "--seeds",
        "5",
        "-q",
        "--out",
        o,
        "--set",
        "topology.gateways.config.proxy_timeout_ms=500",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("observed: error_ratio 0.00000")
            && stdout.contains("2 of 41 windows breach the SLO"),
        "{stdout}"
    );
    assert!(stdout.contains("(+11, +22 s)"), "{stdout}");
    assert!(
        stdout.contains("signature overlap over the seeds: min 1.00"),
        "{stdout}"
    );
    let text =
        std::fs::read_to_string(out.join("replay-incident-hang-timeout500/scenario.toml")).unwrap();
    assert!(text.contains("proxy_timeout_ms = 500"), "{text}");
}

#[test]
fn a_replay_run_twice_writes_the_same_bytes_and_trace_hashes() {
    let files = ["scenario.toml", "rates.csv", "match.csv", "seeds.csv"];
    let mut seen: Vec<Vec<Vec<u8>>> = Vec::new();
    for (i, jobs) in ["1", "2"].iter().enumerate() {
        let out = tmp(&format!("twice{i}"));
        let (code, stdout, stderr) = run(&[
            "replay",
            &hang(),
            "--seeds",
            "4",
            "-q",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
            "--what-if",
            "topology.gateways.config.proxy_timeout_ms=500",
        ]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        let dir = out.join("replay-incident-hang");
        seen.push(
            files
                .iter()
                .map(|f| std::fs::read(dir.join(f)).unwrap())
                .collect(),
        );
    }
    for (k, f) in files.iter().enumerate() {
        assert!(
            seen[0][k] == seen[1][k],
            "{f} differs between two replays (1 and 2 threads)"
        );
    }
}

#[test]
fn shrink_refuses_an_unwritable_out_before_running_anything() {
    let reg = root().join("scenarios/regressions/incident-hang.toml");
    let (code, stdout, stderr) = run(&[
        "shrink",
        reg.to_str().unwrap(),
        "--seed",
        "1",
        "--out",
        "/proc/no-such-dir/x.toml",
    ]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("--out /proc/no-such-dir"), "{stderr}");
    assert!(
        !stdout.contains("shrinking"),
        "it ran before refusing: {stdout}"
    );
}
