//! The archiver fed by the store shards: every record the shards log reaches it, each new key
//! becomes one object, and the shards keep their records until it has read them.

use crate::shipped;
use minitwin_sim::run::{run, RunOptions};

#[test]
fn the_archiver_fed_by_the_store_gets_every_logged_write_and_one_object_per_key() {
    let mut s = shipped("archive-from-store");
    // A day at 15 writes/s, the logs read every 10 minutes.
    s.duration_s = 86_400.0;
    s.workload.rate = minitwin_sim::workload::RateCurve::Constant { rps: 30.0 };
    if let Some(a) = s.topology.archive.as_mut() {
        a.config.store_poll_hours = 1.0 / 6.0;
    }
    let o = run(&s, 1, &RunOptions::default(), &mut |_| {});
    let value = |node: &str, m: &str| o.value(node, m).unwrap_or_else(|| panic!("{node} {m}"));
    let written = value("store-0", "store_writes_total") + value("store-1", "store_writes_total");
    let read = value("archiver", "archive_store_records_total");
    assert!(written > 1.0e6, "{written} writes");
    // Whatever was written in the last 10 minutes is not read yet.
    assert!(
        read <= written && read >= written - 15.0 * 600.0 * 1.5,
        "read {read} of {written}"
    );
    let objects = value("archiver", "archive_objects_created_total");
    let rewrites = value("archiver", "archive_accesses_total");
    assert!(objects > 1_000.0 && objects < read, "{objects} objects");
    assert!(
        rewrites >= read - objects,
        "each rewrite of a key is an access"
    );
    // The shards purged only what the archiver had read: no record was skipped.
    assert!(value("store-0", "store_purged_records_total") > 0.0);
}
