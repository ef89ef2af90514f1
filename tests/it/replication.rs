//! Replicated shards under faults, and the checkers that keep them honest: each checker is
//! shown to catch the bug it looks for.

use crate::shipped;
use minitwin_components::repl::OldPrimary;
use minitwin_components::rng::Dist;
use minitwin_components::store::Divergence;
use minitwin_sim::checks::{self, Class};
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{run, RunOptions};
use minitwin_sim::scenario::{Fault, Scenario};

fn go(s: &Scenario, seed: u64) -> RunOutcome {
    run(s, seed, &RunOptions::default(), &mut |_| {})
}

fn check<'a>(o: &'a RunOutcome, name: &str) -> &'a checks::CheckResult {
    o.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check"))
}

fn shorter(mut s: Scenario) -> Scenario {
    s.duration_s = 40.0;
    s
}

#[test]
fn a_primary_crash_loses_acked_writes_under_async_but_not_under_semi_sync_on_the_same_seeds() {
    let mut lost_async = 0;
    for seed in 1..=3 {
        let semi = go(&shorter(shipped("primary-crash-semisync")), seed);
        let asyn = go(&shorter(shipped("primary-crash-async")), seed);
        assert_eq!(
            semi.summary.lost_writes_total,
            Some(0),
            "seed {seed}: {}",
            check(&semi, "durability").detail
        );
        assert!(check(&semi, "durability").passed());
        assert!(
            check(&asyn, "durability").passed(),
            "async promises nothing, so loss is reported, not failed"
        );
        assert!(check(&asyn, "durability")
            .detail
            .contains("async replication promises nothing"));
        for o in [&semi, &asyn] {
            assert!(
                check(o, "split_brain").passed(),
                "{}",
                check(o, "split_brain").detail
            );
            assert!(
                check(o, "convergence").passed(),
                "{}",
                check(o, "convergence").detail
            );
            let failovers = o
                .rows
                .iter()
                .find(|r| r.metric == "orchestrator_failovers_total")
                .unwrap();
            assert_eq!(failovers.value, 1.0, "the orchestrator failed over once");
        }
        lost_async += asyn
            .summary
            .lost_writes_total
            .expect("durability is checked");
    }
    assert!(
        lost_async > 0,
        "async replication lost no acknowledged write in 3 seeds"
    );
}

#[test]
fn semi_sync_falls_back_to_async_when_replicas_stop_answering_and_the_loss_is_counted() {
    let mut s = shorter(shipped("primary-crash-semisync"));
    // A 1 s semi-sync timeout (so the services, whose store calls time out after 1.5 s, do not
    // give up first); cut store-0's replicas off for 15 s, then crash it.
    s.topology.stores.config.semi_sync_timeout_ms = 1_000.0;
    s.faults = vec![
        Fault::Partition {
            at_s: 5.0,
            duration_s: 15.0,
            a: vec!["store-0".into()],
            b: vec!["store-0-*".into()],
            one_way: false,
        },
        Fault::Crash {
            at_s: 19.0,
            node: "store-0".into(),
            // Down longer than two polls whatever their phase, so a replica is promoted.
            restart_after_s: Some(18.0),
        },
    ];
    let o = go(&s, 1);
    let fallbacks: f64 = o
        .rows
        .iter()
        .filter(|r| r.metric == "store_semi_sync_fallbacks_total")
        .map(|r| r.value)
        .sum();
    assert!(fallbacks >= 1.0, "semi-sync fell back");
    let d = check(&o, "durability");
    assert!(
        d.passed() && d.detail.contains("excused as acknowledged in a fallback"),
        "{}",
        d.detail
    );
    assert!(
        o.summary.lost_writes_total > Some(0),
        "writes acknowledged during the fallback were lost: {}",
        d.detail
    );
}

#[test]
fn the_split_brain_checker_catches_two_primaries_acknowledging_writes_at_once() {
    // An old primary cut off from the orchestrator and its replicas keeps acknowledging the
    // writes of a service that is cut off with it (and so never hears the new route), while
    // the other services write to the promoted replica: two primaries at once.
    let mut s = shorter(shipped("primary-crash-async"));
    s.faults = vec![Fault::Partition {
        at_s: 10.0,
        duration_s: 20.0,
        a: vec!["store-0".into(), "service-0".into()],
        b: vec!["orchestrator".into(), "store-0-*".into()],
        one_way: false,
    }];
    s.checks.converge_within_s = None;
    let o = go(&s, 2);
    let sb = check(&o, "split_brain");
    assert!(!sb.passed(), "{}", sb.detail);
    assert!(sb.detail.contains("store-0 (epoch 1)"), "{}", sb.detail);
    assert_eq!(o.failure(), Some(Class::Correctness));
}

#[test]
fn the_convergence_checker_catches_a_replica_that_never_catches_up() {
    let mut s = shorter(shipped("primary-crash-semisync"));
    s.topology.stores.config.replication = minitwin_components::store::ReplicationMode::Async;
    s.faults = vec![Fault::Partition {
        at_s: 5.0,
        duration_s: 5.0,
        a: vec!["store-1".into()],
        b: vec!["store-1-r1".into()],
        one_way: false,
    }];
    let healthy = go(&s, 1);
    assert!(
        check(&healthy, "convergence").passed(),
        "{}",
        check(&healthy, "convergence").detail
    );
    s.topology.stores.config.bug_replica_never_fetches = true;
    let broken = go(&s, 1);
    let c = check(&broken, "convergence");
    assert!(c.failed(), "{}", c.detail);
    assert!(c.detail.contains("store-1-r1"), "{}", c.detail);
}

#[test]
fn a_semi_sync_fallback_excuses_only_the_writes_acknowledged_during_it() {
    // store-0's replicas are cut off from 5 s to 8 s: semi-sync falls back (1 s timeout) and
    // comes back on once they catch up. Later the primary acknowledges before syncing (the
    // planted bug) and loses power at 20 s: those writes were acknowledged under semi-sync,
    // so the earlier fallback must not excuse their loss.
    let mut s = shorter(shipped("primary-crash-semisync"));
    s.topology.stores.config.semi_sync_timeout_ms = 1_000.0;
    s.faults.insert(
        0,
        Fault::Partition {
            at_s: 5.0,
            duration_s: 3.0,
            a: vec!["store-0".into()],
            b: vec!["store-0-*".into()],
            one_way: false,
        },
    );
    let honest = go(&s, 1);
    let d = check(&honest, "durability");
    assert!(d.passed(), "{}", d.detail);
    assert!(
        d.detail.contains("1 fallbacks") || d.detail.contains("2 fallbacks"),
        "the partition made semi-sync fall back: {}",
        d.detail
    );
    s.topology.stores.config.bug_ack_before_sync = true;
    let broken = go(&s, 1);
    let d = check(&broken, "durability");
    assert!(d.failed(), "{}", d.detail);
    assert!(d.detail.contains("first lost: key"), "{}", d.detail);
    assert!(d.value("lost_writes_total") > d.value("lost_writes_excused_total"));
}

#[test]
fn convergence_is_not_applicable_to_single_node_shards() {
    let mut s = shipped("shard-crash");
    s.duration_s = 10.0;
    s.faults.clear();
    s.checks.converge_within_s = Some(2.0);
    let o = go(&s, 1);
    let c = check(&o, "convergence");
    assert_eq!(c.verdict, checks::Verdict::NotApplicable, "{}", c.detail);
    assert!(!c.passed() && !c.failed());
    assert_eq!(o.failure(), None);
}

/// The monolith with a fixed operator delay, shortened.
fn monolith(operator_delay_s: f64, restart_after_s: Option<f64>) -> Scenario {
    let mut s = shipped("monolith-db-crash");
    s.duration_s = 1500.0;
    s.topology.stores.orchestrator.operator_delay =
        Some(minitwin_components::rng::Dist::Constant {
            ms: operator_delay_s * 1000.0,
        });
    if let Fault::Crash {
        restart_after_s: r, ..
    } = &mut s.faults[0]
    {
        *r = restart_after_s;
    }
    s
}

#[test]
fn a_manual_failover_promotes_the_replica_an_alert_and_an_operator_delay_after_the_crash() {
    // Alert: 20 failed scrapes 15 s apart (300 s, less the poll phase); operator: 600 s more.
    let o = go(&monolith(600.0, None), 1);
    let failover_s = o.summary.failover_s.expect("the operator failed over");
    assert!(
        (885.0..=915.0).contains(&failover_s),
        "failover {failover_s} s after the crash, expected about 300 s of alert + 600 s of operator"
    );
    let recovery_s = o.summary.recovery_s.expect("a fault ran");
    assert!(
        recovery_s >= failover_s && recovery_s < failover_s + 30.0,
        "recovery {recovery_s} s"
    );
    // Automatic failover on the same seed: the orchestrator promotes at the alert.
    let mut auto = monolith(600.0, None);
    auto.topology.stores.orchestrator.operator_delay = None;
    let auto_failover_s = go(&auto, 1).summary.failover_s.expect("a failover");
    assert!(
        (280.0..=315.0).contains(&auto_failover_s),
        "automatic failover at {auto_failover_s} s"
    );
}

#[test]
fn an_operator_stands_down_when_the_primary_comes_back_before_the_promotion() {
    // The host is back after 400 s: alerted at about 300 s, the operator would act at 900 s.
    let o = go(&monolith(600.0, Some(400.0)), 1);
    assert_eq!(
        o.summary.failover_s, None,
        "no promotion: the primary came back"
    );
    let failovers = o
        .rows
        .iter()
        .find(|r| r.metric == "orchestrator_failovers_total")
        .unwrap();
    assert_eq!(failovers.value, 0.0);
    assert!(check(&o, "split_brain").passed());
}

fn orchestrator_count(o: &RunOutcome, metric: &str) -> f64 {
    o.value("orchestrator", metric)
        .unwrap_or_else(|| panic!("no {metric}"))
}

#[test]
fn a_primary_only_the_orchestrator_cannot_reach_is_an_unreachable_master_and_stays() {
    // orchestrator's DeadMaster needs the replicas to have lost the primary too; cut only the
    // orchestrator from store-0 and its replicas keep replicating: UnreachableMaster.
    let mut s = shipped("primary-crash-semisync");
    s.faults = vec![Fault::Partition {
        at_s: 10.0,
        duration_s: 25.0,
        a: vec!["orchestrator".into()],
        b: vec!["store-0".into()],
        one_way: false,
    }];
    let o = go(&s, 1);
    assert_eq!(orchestrator_count(&o, "orchestrator_failovers_total"), 0.0);
    assert_eq!(
        orchestrator_count(&o, "orchestrator_unreachable_master_total"),
        1.0
    );
    // Cut store-0 from every node instead: its replicas lose it too, a DeadMaster, failed over.
    // (A rule that looked at the polls alone would have failed over both times.)
    s.faults = vec![Fault::Partition {
        at_s: 10.0,
        duration_s: 25.0,
        a: vec!["store-0".into()],
        b: vec![
            "zone:az-a".into(),
            "zone:az-b".into(),
            "zone:az-c".into(),
            "zone:edge".into(),
        ],
        one_way: false,
    }];
    let o = go(&s, 1);
    assert_eq!(orchestrator_count(&o, "orchestrator_failovers_total"), 1.0);
}

#[test]
fn a_second_primary_loss_within_the_recovery_block_is_left_to_a_human() {
    // RecoveryPeriodBlockSeconds (3600): store-0 fails over at about 30 s; at 50 s the new
    // primary (a replica) and the other replica die, leaving store-0, back since 35 s.
    // The old primary is re-attached and rewound here (the twin's former rule) so that it is a
    // candidate; detached, as orchestrator leaves it, it would not be one at all (below).
    let mut s = shipped("primary-crash-semisync");
    s.duration_s = 90.0;
    s.topology.stores.orchestrator.old_primary = OldPrimary::Reattach;
    s.topology.stores.config.on_divergence = Divergence::Rewind;
    s.faults = vec![
        Fault::Crash {
            at_s: 20.0,
            node: "store-0".into(),
            restart_after_s: Some(15.0),
        },
        Fault::Crash {
            at_s: 50.0,
            node: "store-0-r*".into(),
            restart_after_s: None,
        },
    ];
    let o = go(&s, 1);
    assert_eq!(orchestrator_count(&o, "orchestrator_failovers_total"), 1.0);
    assert_eq!(
        orchestrator_count(&o, "orchestrator_recoveries_blocked_total"),
        1.0
    );
    s.topology.stores.orchestrator.recovery_block_ms = 0.0;
    let o = go(&s, 1);
    assert_eq!(orchestrator_count(&o, "orchestrator_failovers_total"), 2.0);
    // Left detached (the default), store-0 is no candidate: no second failover, block or not.
    s.topology.stores.orchestrator.old_primary = OldPrimary::Detach;
    s.topology.stores.config.on_divergence = Divergence::Fence;
    let o = go(&s, 1);
    assert_eq!(orchestrator_count(&o, "orchestrator_failovers_total"), 1.0);
}

#[test]
fn an_old_primary_with_errant_writes_is_fenced_and_left_out_not_rewound_silently() {
    // MySQL and MariaDB stop replication on a replica with errant GTIDs, and orchestrator never
    // re-attaches a failed primary: store-0, back 15 s after its power loss, holds acknowledged
    // writes (async) that the promoted replica never had.
    let mut s = shorter(shipped("primary-crash-async"));
    let o = go(&s, 1);
    let errant = o.value("store-0", "store_errant_records_total").unwrap();
    let lost = o.summary.lost_writes_total.unwrap() as f64;
    assert!(lost > 0.0, "seed 1 loses acknowledged writes under async");
    assert!(
        errant >= lost,
        "{errant} errant records, {lost} lost writes"
    );
    assert_eq!(o.value("store-0", "store_detachments_total"), Some(1.0));
    assert_eq!(
        o.value("store-0", "store_discarded_records_total"),
        Some(0.0)
    );
    let conv = check(&o, "convergence");
    assert!(conv.passed(), "{}", conv.detail);
    assert!(
        conv.detail
            .contains(&format!("store-0 is detached with {errant} errant records")),
        "{}",
        conv.detail
    );
    // The twin's former rule on the same seed: re-attached and rewound, the same writes vanish
    // without a trace but the discard counter.
    s.topology.stores.config.on_divergence = Divergence::Rewind;
    s.topology.stores.orchestrator.old_primary = OldPrimary::Reattach;
    let o = go(&s, 1);
    assert_eq!(o.value("store-0", "store_errant_records_total"), Some(0.0));
    assert!(o.value("store-0", "store_discarded_records_total").unwrap() >= lost);
    assert!(!check(&o, "convergence").detail.contains("detached"));
}

#[test]
fn an_operator_reclone_discards_the_errant_records_and_the_member_replicates_again() {
    let mut s = shipped("primary-crash-async");
    s.duration_s = 70.0;
    s.topology.stores.orchestrator.reclone_after = Some(Dist::Constant { ms: 5_000.0 });
    let o = go(&s, 1);
    assert!(o.value("store-0", "store_errant_records_total").unwrap() > 0.0);
    assert_eq!(o.value("store-0", "store_reclones_total"), Some(1.0));
    assert!(orchestrator_count(&o, "orchestrator_reclones_total") >= 1.0);
    let conv = check(&o, "convergence");
    assert!(
        conv.passed() && !conv.detail.contains("detached"),
        "{}",
        conv.detail
    );
    // Without the operator, it is still out of the shard at the end.
    s.topology.stores.orchestrator.reclone_after = None;
    let o = go(&s, 1);
    assert_eq!(o.value("store-0", "store_reclones_total"), Some(0.0));
    assert!(check(&o, "convergence")
        .detail
        .contains("store-0 is detached"));
}

#[test]
fn an_orchestrator_group_on_raft_stops_the_minority_zone_from_failing_over_and_loses_nothing() {
    // zone-partition.toml: az-a (store-0's primary, store-1's replica r2, half the services)
    // is cut off for 20 s. One orchestrator in az-a fails store-1 over to r2, which lacks
    // writes semi-sync acknowledged through r1: lost. Three on raft, one per zone: the one in
    // az-a loses its lease, the majority's leader fails store-0 over instead, nothing lost.
    let mut s = shipped("zone-partition");
    let single = go(&s, 1);
    assert!(single.summary.lost_writes_total.unwrap() > 0);
    assert!(!check(&single, "durability").passed());
    s.topology.stores.orchestrator.raft_nodes = 3;
    let raft = go(&s, 1);
    assert_eq!(raft.summary.lost_writes_total, Some(0));
    assert!(check(&raft, "durability").passed());
    let failovers = |n: &str| orchestrator_at(&raft, n, "orchestrator_failovers_total");
    assert_eq!(
        failovers("orchestrator-0"),
        0.0,
        "az-a's orchestrator stood down"
    );
    assert_eq!(
        failovers("orchestrator-1") + failovers("orchestrator-2"),
        1.0
    );
    assert!(check(&raft, "convergence")
        .detail
        .contains("shard 0: store-0 is detached"));
}

fn orchestrator_at(o: &RunOutcome, node: &str, metric: &str) -> f64 {
    o.value(node, metric)
        .unwrap_or_else(|| panic!("no {metric} at {node}"))
}
