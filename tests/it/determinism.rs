use crate::shipped;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::report;
use minitwin_sim::run::{run_with, RunOptions};
use minitwin_sim::scenario::Scenario;
use minitwin_sim::series::SecondRow;
use minitwin_sim::trace::first_divergence;

/// A run with its trace recorded, and the time series it streamed.
fn run_recorded(s: &Scenario, seed: u64) -> (RunOutcome, Vec<SecondRow>) {
    let mut rows = Vec::new();
    let o = run_with(
        s,
        seed,
        &RunOptions {
            record_trace: true,
            ..RunOptions::default()
        },
        &mut |_| {},
        &mut |r, _| rows.push(*r),
    );
    (o, rows)
}

fn short(mut s: Scenario) -> Scenario {
    s.duration_s = 8.0;
    s.warmup_s = 1.0;
    s
}

/// Panics with the first event where two runs part, if they do.
fn assert_same_run(
    (a, rows_a): &(RunOutcome, Vec<SecondRow>),
    (b, rows_b): &(RunOutcome, Vec<SecondRow>),
) {
    if let Some((i, x, y)) =
        first_divergence(a.trace.as_deref().unwrap(), b.trace.as_deref().unwrap())
    {
        panic!("runs diverge at event {i}:\n  first:  {x:?}\n  second: {y:?}");
    }
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(report::metrics_csv(a, "c"), report::metrics_csv(b, "c"));
    let csv = |rows: &[SecondRow]| report::timeseries_csv("s", 1, "c", rows);
    assert_eq!(csv(rows_a), csv(rows_b));
    assert!(!rows_a.is_empty(), "the series streamed");
    assert_eq!(report::summary_text(a), report::summary_text(b));
}

#[test]
fn the_same_seed_twice_gives_byte_identical_results_and_trace_hash() {
    // Whole runs of the scenarios with kill faults (refusals, resets, the session cluster's
    // random cron phases), shortened runs of the others.
    for (name, whole) in [
        ("steady", false),
        ("shard-crash", false),
        ("upstream-kill", true),
        ("session-failover", true),
    ] {
        let s = if whole {
            shipped(name)
        } else {
            short(shipped(name))
        };
        let a = run_recorded(&s, 42);
        let b = run_recorded(&s, 42);
        assert!(a.0.events_total > 10_000, "the run did something");
        assert_same_run(&a, &b);
    }
}

#[test]
fn the_control_tier_monitor_and_security_layer_replay_byte_for_byte() {
    // Every field: autoscaler with prediction, monitor with rules and detectors, security
    // with a rogue node; and a long autoscaled run that scales up and down.
    let every =
        minitwin_sim::scenario::load(&crate::root().join("tests/it/every-field.toml")).unwrap();
    let mut scaled = shipped("autoscale-step");
    scaled.duration_s = 300.0;
    scaled.monitoring = shipped("monitored-faults").monitoring;
    for s in [every, scaled] {
        let a = run_recorded(&s, 9);
        let b = run_recorded(&s, 9);
        assert_same_run(&a, &b);
        assert!(!a.0.tables.is_empty());
        assert_eq!(
            a.0.tables, b.0.tables,
            "replicas.csv, monitoring.csv, alerts.csv"
        );
    }
}

#[test]
fn fencing_reclones_the_raft_group_and_the_store_fed_archiver_replay_byte_for_byte() {
    // Whole runs: an old primary fenced and re-cloned, a partition under three orchestrators
    // on raft (elections with random timeouts), and a day of store writes archived.
    let mut recloned = shipped("primary-crash-async");
    recloned.topology.stores.orchestrator.reclone_after =
        Some(minitwin_components::rng::Dist::Constant { ms: 5_000.0 });
    let mut raft = shipped("zone-partition");
    raft.topology.stores.orchestrator.raft_nodes = 3;
    let mut archive = shipped("archive-from-store");
    archive.duration_s = 86_400.0;
    archive.workload.rate = minitwin_sim::workload::RateCurve::Constant { rps: 5.0 };
    for s in [recloned, raft, archive] {
        let a = run_recorded(&s, 42);
        let b = run_recorded(&s, 42);
        assert!(
            a.0.events_total > 10_000,
            "{}: the run did something",
            s.name
        );
        assert_same_run(&a, &b);
    }
}

#[test]
fn a_faulty_run_with_buggify_is_deterministic_too() {
    let mut s = short(shipped("shard-crash"));
    s.faults[0] = minitwin_sim::scenario::Fault::Crash {
        at_s: 3.0,
        node: "store-0".into(),
        restart_after_s: Some(2.0),
    };
    s.buggify.enabled = true;
    s.buggify.enable_probability = 1.0;
    let a = run_recorded(&s, 5);
    let b = run_recorded(&s, 5);
    assert_same_run(&a, &b);
    let fired =
        a.0.rows
            .iter()
            .find(|r| r.metric == "buggify_fired_total")
            .unwrap()
            .value;
    assert!(fired > 0.0, "buggify points fired");
}

#[test]
fn two_seeds_give_different_runs_and_the_first_divergent_event_is_reported() {
    let s = short(shipped("steady"));
    let (a, _) = run_recorded(&s, 1);
    let (b, _) = run_recorded(&s, 2);
    assert_ne!(a.trace_hash, b.trace_hash);
    assert_ne!(report::metrics_csv(&a, "c"), report::metrics_csv(&b, "c"));
    let (i, x, y) = first_divergence(a.trace.as_deref().unwrap(), b.trace.as_deref().unwrap())
        .expect("different seeds diverge");
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.index, i as u64);
    assert!(x.at_ns != y.at_ns || x.digest != y.digest);
    assert!(!x.summary.is_empty(), "the report says what the event was");
}

/// Every file under `dir`, as (relative path, bytes), in order.
fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn sweep_compare_and_capacity_write_the_same_bytes_on_one_thread_or_two() {
    let root = crate::root();
    let s = |name: &str| root.join("scenarios").join(name).display().to_string();
    let commands: [Vec<String>; 3] = [
        [
            "sweep",
            &s("primary-crash-async.toml"),
            "--seeds",
            "2",
            "--axis",
            "topology.stores.config.replication_delay_ms=0,50",
        ]
        .map(String::from)
        .to_vec(),
        [
            "compare",
            &s("compare-replication.toml"),
            "--replications",
            "2",
        ]
        .map(String::from)
        .to_vec(),
        [
            "capacity",
            &s("steady.toml"),
            "--duration-s",
            "10",
            "--replications",
            "2",
            "--tolerance",
            "0.3",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for command in commands {
        let mut outputs = Vec::new();
        for jobs in ["1", "2"] {
            let out = crate::scratch(&format!("threads-{}-{jobs}", command[0]));
            let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
            args.extend(["--jobs", jobs, "-q", "--out", out.to_str().unwrap()]);
            let o = crate::minitwin(&args);
            assert!(
                matches!(o.status.code(), Some(0 | 3 | 4)),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            outputs.push(files(&out));
        }
        assert!(!outputs[0].is_empty());
        let names = |v: &Vec<(String, Vec<u8>)>| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&outputs[0]), names(&outputs[1]), "{}", command[0]);
        for (a, b) in outputs[0].iter().zip(&outputs[1]) {
            assert!(
                a.1 == b.1,
                "{}: {} differs between --jobs 1 and --jobs 2",
                command[0],
                a.0
            );
        }
    }
}
