//! The security model in whole runs: the designed flows admit all of the twin's own traffic;
//! each rogue attack (impersonation, an unauthorized role, a replay) is refused and counted;
//! without mTLS the same attacks are served and the security check fails; and the check
//! catches a security layer with a planted hole.

use crate::{root, shipped};
use minitwin_components::security::SecurityConfig;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario::{self, Scenario};

fn go(s: &Scenario) -> RunOutcome {
    run(s, 1, &RunOptions::default(), &mut |_| {})
}

#[test]
fn the_designed_flows_admit_all_of_the_twins_own_traffic_in_every_shipped_scenario() {
    let mut dir: Vec<_> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    dir.sort();
    dir.push(root().join("tests/it/every-field.toml"));
    let mut refused = Vec::new();
    for path in dir {
        let mut s = scenario::load(&path).unwrap();
        s.duration_s = s.duration_s.min(20.0);
        s.warmup_s = s.warmup_s.min(s.duration_s / 2.0);
        s.faults
            .retain(|f| f.end_s().is_some_and(|e| e <= s.duration_s));
        s.faults
            .retain(|f| !matches!(f, scenario::Fault::Rogue { .. }));
        s.checks = Default::default();
        s.security = Some(SecurityConfig::default());
        let o = go(&s);
        let check = run_view(&o);
        if check.0 > 0.0 {
            refused.push(format!("{}: {}", s.name, check.1));
        }
    }
    assert!(refused.is_empty(), "{refused:#?}");
}

/// (refused deliveries, which flows) from the run's rows and lines.
fn run_view(o: &RunOutcome) -> (f64, String) {
    let refused: f64 = o
        .rows
        .iter()
        .filter(|r| r.metric.starts_with("security_refused_"))
        .map(|r| r.value)
        .sum();
    let flows = o
        .lines
        .iter()
        .find(|l| l.0 == "security")
        .map_or(String::new(), |l| l.1.clone());
    (refused, flows)
}

/// Refusals summed over the nodes, by reason.
fn refused(o: &RunOutcome, reason: &str) -> f64 {
    let metric = format!("security_refused_{reason}_total");
    o.rows
        .iter()
        .filter(|r| r.metric == metric)
        .map(|r| r.value)
        .sum()
}

fn check(o: &RunOutcome) -> &minitwin_sim::checks::CheckResult {
    o.checks.iter().find(|c| c.name == "security").unwrap()
}

#[test]
fn each_rogue_attack_is_refused_for_its_reason_and_nothing_forged_is_served() {
    let o = go(&shipped("security-rogue"));
    let c = check(&o);
    assert!(c.passed(), "{}", c.detail);
    assert_eq!(c.value("forged_total"), Some(2_000.0));
    // Impersonation and replay prove the rogue's own identity, not the one claimed: 400
    // forged writes to 4 members, and 400 replays to 2 shards (200 each of 20/s for 10 s)...
    assert_eq!(refused(&o, "unauthenticated"), 1_200.0);
    // ...and writes as itself come from a role (gateway) with no right to the store family.
    assert_eq!(refused(&o, "unauthorized"), 800.0);
    assert_eq!(c.value("served_violations_total"), Some(0.0));
}

#[test]
fn in_audit_mode_the_same_attacks_are_served_and_the_check_fails() {
    let mut s = shipped("security-rogue");
    s.security.as_mut().unwrap().enforce = false;
    let o = go(&s);
    let c = check(&o);
    assert!(c.failed());
    assert!(
        c.detail.contains("claiming to be service-0"),
        "{}",
        c.detail
    );
}

#[test]
fn the_security_check_catches_a_layer_that_trusts_claimed_identities() {
    let mut s = shipped("security-rogue");
    s.security.as_mut().unwrap().bug_trust_claimed_identity = true;
    let o = go(&s);
    let c = check(&o);
    assert!(
        c.failed(),
        "the planted hole lets impersonation through: {}",
        c.detail
    );
    assert!(c.detail.contains("claiming to be service-0"));
    // The role check still stops the rogue writing as itself.
    assert_eq!(refused(&o, "unauthorized"), 800.0);
}

#[test]
fn replication_to_a_member_without_a_certificate_is_refused_as_unencrypted() {
    let mut s = shipped("security-rogue");
    s.faults.clear();
    s.duration_s = 10.0;
    s.security.as_mut().unwrap().without_certificate = vec!["store-0-r1".into()];
    let o = go(&s);
    assert!(
        refused(&o, "unencrypted") > 0.0,
        "the primary's stream to its replica"
    );
    assert!(check(&o).passed());
}

#[test]
fn a_replay_to_a_gateway_is_served_only_as_from_the_rogue_itself() {
    // Requests to a gateway are open to anonymous senders: a replayed client request is
    // admitted, but as the rogue's own (anonymous) request, never as the client's.
    let mut s = shipped("security-rogue");
    for f in &mut s.faults {
        if let scenario::Fault::Rogue { targets, .. } = f {
            *targets = vec!["gateway-0".into()];
        }
    }
    let o = go(&s);
    let c = check(&o);
    assert!(c.passed(), "{}", c.detail);
}
