//! Live resharding 1 -> 4 under load, and verification catching a copy that skipped records.

use crate::shipped;
use minitwin_sim::outcome::RunOutcome;
use minitwin_sim::run::{run, RunOptions};

fn value(o: &RunOutcome, component: &str, metric: &str) -> f64 {
    o.rows
        .iter()
        .find(|r| r.component == component && r.metric == metric)
        .map_or(f64::NAN, |r| r.value)
}

#[test]
fn a_live_split_into_four_shards_cuts_over_in_milliseconds_without_losing_a_write() {
    let mut s = shipped("reshard-1-to-4");
    s.duration_s = 35.0;
    let o = run(&s, 2, &RunOptions::default(), &mut |_| {});
    assert!(o.checks.iter().all(|c| !c.failed()), "{:?}", o.checks);
    let durability = o.check("durability").unwrap();
    assert!(durability.passed(), "{}", durability.detail);
    assert!(
        durability.value("acked_writes_total") > Some(5_000.0),
        "{}",
        durability.detail
    );
    assert_eq!(durability.value("lost_writes_total"), Some(0.0));
    let cutover_ms = value(&o, "resharder", "reshard_cutover_ms");
    assert!(
        cutover_ms > 0.0 && cutover_ms < 1_000.0,
        "cut-over {cutover_ms} ms"
    );
    assert!(value(&o, "resharder", "reshard_records_copied_total") > 1_000.0);
    for i in 0..4 {
        let writes = value(&o, &format!("store-new-{i}"), "store_writes_total");
        assert!(
            writes > 100.0,
            "store-new-{i} took writes after the switch: {writes}"
        );
    }
}

#[test]
fn verification_catches_a_copy_that_skipped_records_and_aborts_the_cut_over() {
    let mut s = shipped("reshard-1-to-4");
    s.duration_s = 35.0;
    s.topology.reshard.as_mut().unwrap().config.bug_skip_records = true;
    let o = run(&s, 2, &RunOptions::default(), &mut |_| {});
    assert_eq!(value(&o, "resharder", "reshard_verify_failures_total"), 1.0);
    assert!(
        value(&o, "resharder", "reshard_cutover_ms").abs() < f64::EPSILON,
        "no switch happened"
    );
    let durability = o.checks.iter().find(|c| c.name == "durability").unwrap();
    assert!(
        durability.passed(),
        "the old shard still holds everything: {}",
        durability.detail
    );
}
