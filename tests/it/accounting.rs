//! The summary's accounting: one measured window (requests sent from the end of the warm-up),
//! used for every count, so nothing is counted twice or hidden.

use crate::{inline, shipped};
use minitwin_sim::outcome::{RunOutcome, Summary};
use minitwin_sim::run::{run, RunOptions};
use std::process::Command;

fn failed(s: &Summary) -> u64 {
    s.errors.iter().map(|e| e.1).sum()
}

fn assert_balanced(o: &RunOutcome) {
    let s = &o.summary;
    assert_eq!(
        s.requests_total,
        s.ok_total + failed(s) + s.unanswered_total,
        "sent = ok + failed + unanswered: {s:?}"
    );
    assert_eq!(
        o.value("run", "unanswered_total"),
        Some(s.unanswered_total as f64)
    );
}

#[test]
fn a_warm_up_never_makes_more_requests_ok_than_were_sent() {
    let mut s = shipped("steady");
    s.duration_s = 10.0;
    s.warmup_s = 5.0;
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    assert!(o.summary.ok_total <= o.summary.requests_total);
    assert_balanced(&o);
    assert!(
        o.summary.unanswered_total > 0,
        "requests sent in the last milliseconds are still in flight at the end"
    );
}

#[test]
fn requests_a_crashed_service_never_answered_are_counted_not_hidden() {
    // The issue's example: one service, killed for 15 s at 100 req/s behind a gateway whose
    // proxy timeout (60 s) outlasts the client's (10 s).
    let s = inline(
        r#"
name = "service-down"
duration_s = 30.0
[topology]
zones = ["z"]
[topology.gateways]
count = 1
zones = ["z"]
config = { cache_enabled = false }
[topology.services]
count = 1
zones = ["z"]
[topology.stores]
shards = 1
zones = ["z"]
[workload]
rate = { curve = "constant", rps = 100.0 }
zone = "z"
[[faults]]
kind = "crash"
node = "service-0"
at_s = 5.0
restart_after_s = 15.0
"#,
    );
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    assert_balanced(&o);
    let lost_in_crash = failed(&o.summary) + o.summary.unanswered_total;
    assert!(
        lost_in_crash > 1_000,
        "about 15 s x 100 req/s went unanswered by the service: {:?}",
        o.summary
    );
    assert!(o.summary.error_ratio > 0.0);
    let text = minitwin_sim::report::summary_text(&o);
    assert!(text.contains("unanswered at the end"), "{text}");
}

#[test]
fn sweep_counts_session_failovers_in_its_failover_distribution() {
    let dir = crate::scratch("accounting-sweep");
    let out = Command::new(env!("CARGO_BIN_EXE_minitwin"))
        .args(["sweep", "--seeds", "2", "--quiet", "--out"])
        .arg(&dir)
        .arg(crate::root().join("scenarios/session-failover.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("failover s"))
        .unwrap_or_else(|| panic!("no failover line:\n{stdout}"));
    assert!(!line.contains("n/a"), "{line}");
}
