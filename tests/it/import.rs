//! `minitwin import`: an nginx access log in, a rate curve a scenario loads and per-window
//! series out; bad lines counted with their numbers, bad input refused with exit 2.

use crate::minitwin;

fn line(s: u32, status: u16) -> String {
    format!(
        r#"10.0.0.1 - - [01/Dec/2026:10:00:{s:02} +0000] "POST /api/order HTTP/1.1" {status} 12 "-" "wrk" 0.012 127.0.0.1:9001 0.011 {status}"#
    )
}

#[test]
fn an_access_log_becomes_a_rate_curve_a_scenario_loads_and_bad_lines_are_named() {
    let dir = crate::scratch("import");
    let mut log = String::new();
    for s in 0..4 {
        for _ in 0..(10 * (s + 1)) {
            log += &line(s, if s == 3 { 502 } else { 200 });
            log += "\n";
        }
    }
    log.insert_str(0, "not a line nginx wrote\n");
    let path = dir.join("access.log");
    std::fs::write(&path, log).unwrap();
    let out = dir.join("out");
    let o = minitwin(&[
        "import",
        path.to_str().unwrap(),
        "--format",
        "upstream",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("access.log:1: malformed"), "{stderr}");
    assert!(
        stdout.contains("101 lines, 100 requests read, 1 malformed"),
        "{stdout}"
    );
    let rates = std::fs::read_to_string(out.join("access.log/rates.csv")).unwrap();
    assert_eq!(rates, "t_s,rps\n0,10\n1,20\n2,30\n3,40\n");
    let windows = std::fs::read_to_string(out.join("access.log/windows.csv")).unwrap();
    assert!(
        windows
            .lines()
            .last()
            .unwrap()
            .starts_with("3,40,40,0,40,1.000000,12.528"),
        "{windows}"
    );
    // The curve is a scenario's workload as it is.
    let scenario = dir.join("replayed.toml");
    let text = std::fs::read_to_string(crate::root().join("scenarios/steady.toml"))
        .unwrap()
        .replace(
            "rate = { curve = \"constant\", rps = 2000.0 }",
            "rate = { curve = \"trace\", file = \"out/access.log/rates.csv\" }",
        );
    assert!(
        text.contains("curve = \"trace\""),
        "steady.toml's rate line moved"
    );
    std::fs::write(&scenario, text).unwrap();
    let o = minitwin(&["check", scenario.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_format_or_a_missing_log_exits_2_and_says_why() {
    let o = minitwin(&["import", "/nonexistent/access.log"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/access.log"));
    let o = minitwin(&["import", "Cargo.toml", "--format", "$remote_addr $status"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--format") && err.contains("$time_local"),
        "{err}"
    );
}

#[test]
fn the_recorded_nginx_incident_shows_the_two_failed_attempts_no_client_saw() {
    // tests/data/incident-nginx: real nginx, a backend SIGKILLed at +10 s and back at +25 s.
    let dir = crate::scratch("incident");
    let log = crate::root().join("tests/data/incident-nginx/access.log");
    let o = minitwin(&[
        "import",
        log.to_str().unwrap(),
        "--format",
        "upstream",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 malformed"), "{stdout}");
    assert!(stdout.contains("0 answered 5xx"), "{stdout}");
    assert!(
        stdout.contains("routes    1 distinct; most: GET /api/item/{id} 100.0 %"),
        "{stdout}"
    );
    let windows = std::fs::read_to_string(dir.join("access.log/windows.csv")).unwrap();
    let failed: Vec<u64> = windows
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(8) != Some("0"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    // At the kill (+10 s) and at nginx's next try, fail_timeout (10 s) later, still down.
    assert_eq!(failed.len(), 2, "{windows}");
    assert!((9..=11).contains(&failed[0]), "{failed:?}");
    assert!((19..=22).contains(&failed[1]), "{failed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_lines_a_span_too_long_and_a_closed_stdout_get_an_answer_never_a_hang() {
    let dir = crate::scratch("import-bad");
    let fmt = "$msec $status $request_time";
    let run = |log: &str, extra: &[&str]| {
        let path = dir.join("a.log");
        std::fs::write(&path, log).unwrap();
        let mut args = vec!["import", path.to_str().unwrap(), "--format", fmt, "--out"];
        let out = dir.join("out");
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        minitwin(&args)
    };
    // Times at the end of time, negative or NaN, an infinite latency: malformed, counted.
    let o = run(
        "1e300 200 0.1\n-5 200 0.1\nnan 200 0.1\n100.5 200 inf\n100.5 200 0.1\n",
        &[],
    );
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(
        said.contains("5 lines, 1 requests read, 4 malformed"),
        "{said}"
    );
    // Two good lines 30 years apart: 946 million one-second windows are refused, not written.
    let o = run("1000000000 200 0.1\n1946080000 200 0.1\n", &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--window-s"), "{err}");
    // --window-s 0 and an unwritable --out.
    let o = run("100 200 0.1\n", &["--window-s", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let path = dir.join("a.log");
    let o = minitwin(&[
        "import",
        path.to_str().unwrap(),
        "--format",
        fmt,
        "--out",
        "/proc/minitwin",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/proc/minitwin"));
    // A reader that went away (`| head`): the files are still written, exit 0.
    let out = dir.join("closed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .args(["import", path.to_str().unwrap(), "--format", fmt, "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(out.join("a.log/rates.csv").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_gateways_own_json_log_imports_as_its_access_log_would_and_replays_its_fault() {
    // A run of upstream-kill (service-1 killed at 5 s) with its JSON log: the gateway writes
    // one access event per answered request, as a production gateway will.
    let dir = crate::scratch("import-json");
    let log = dir.join("run.jsonl");
    let scenario = crate::root().join("scenarios/upstream-kill.toml");
    let o = minitwin(&[
        "run",
        scenario.to_str().unwrap(),
        "--seed",
        "1",
        "-q",
        "--log",
        log.to_str().unwrap(),
        "--out",
        dir.join("results").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let metrics =
        std::fs::read_to_string(dir.join("results/upstream-kill/seed-1/metrics.csv")).unwrap();
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.contains(&format!(",gateway-0,{name},")))
            .and_then(|l| l.split(',').nth(5))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let answered = metric("gateway_responses_2xx_total")
        + metric("gateway_responses_4xx_total")
        + metric("gateway_responses_5xx_total");
    let failed_attempts = metric("gateway_upstream_refused_total")
        + metric("gateway_upstream_resets_total")
        + metric("gateway_upstream_timeouts_total");
    let out = dir.join("import");
    let o = minitwin(&[
        "import",
        log.to_str().unwrap(),
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("{answered} requests read, 0 malformed")),
        "{stdout}"
    );
    assert!(
        stdout.contains("other events (JSON lines that are not requests) left out"),
        "{stdout}"
    );
    let windows = std::fs::read_to_string(out.join("run.jsonl/windows.csv")).unwrap();
    let failures: Vec<(u64, u64)> = windows
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].parse().unwrap(), c[8].parse().unwrap())
        })
        .filter(|w| w.1 > 0)
        .collect();
    assert_eq!(
        failures.iter().map(|w| w.1).sum::<u64>(),
        failed_attempts,
        "{windows}"
    );
    assert_eq!(failures[0].0, 5, "the kill at 5 s: {windows}");
    // Replayed, the log gives back the fault that made it.
    let o = minitwin(&[
        "replay",
        dir.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--format",
        "json",
        "--seeds",
        "1",
        "-q",
        "--out",
        dir.join("replay").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("service-1 killed at +5.0 s"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
