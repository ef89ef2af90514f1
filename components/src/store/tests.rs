//! Unit and property tests of the store, through the hand-cranked test context.

use super::*;
use crate::msg::{StoreOp, StoreRequest, StoreResult};
use crate::testing::TestContext;
use proptest::prelude::*;

fn req(id: u64, op: StoreOp) -> Msg {
    Msg::Store(StoreRequest { id, op })
}

fn replies(ctx: &mut TestContext) -> Vec<(u64, StoreResult)> {
    ctx.take_sent()
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::StoreReply(r) => Some((r.id, r.result)),
            _ => None,
        })
        .collect()
}

fn sync(store: &mut Store, ctx: &mut TestContext) {
    ctx.durable = ctx.log.len();
    let lsn = ctx.durable_lsn();
    store.on_disk(ctx, DiskEvent::Synced { lsn });
}

#[test]
fn a_write_is_acknowledged_only_after_its_sync() {
    let mut ctx = TestContext::new(0);
    let mut s = Store::new(StoreConfig::default());
    s.start(&mut ctx);
    s.on_message(&mut ctx, 9, req(1, StoreOp::Write { key: 5, value: 50 }));
    assert!(replies(&mut ctx).is_empty(), "no ack before the sync");
    assert_eq!(ctx.sync_requests, 1);
    sync(&mut s, &mut ctx);
    assert_eq!(
        replies(&mut ctx),
        vec![(1, StoreResult::Written { lsn: 1, epoch: 1 })]
    );
}

#[test]
fn a_restarted_store_serves_what_its_disk_made_durable() {
    let mut ctx = TestContext::new(0);
    let mut s = Store::new(StoreConfig::default());
    s.start(&mut ctx);
    s.on_message(&mut ctx, 9, req(1, StoreOp::Write { key: 5, value: 50 }));
    sync(&mut s, &mut ctx);
    s.on_message(&mut ctx, 9, req(2, StoreOp::Write { key: 5, value: 51 }));
    ctx.crash_disk();
    let mut s = Store::new(StoreConfig::default());
    s.start(&mut ctx);
    assert_eq!(s.get(5), Some(50));
}

#[test]
fn a_failed_cas_waits_until_the_value_it_saw_is_durable() {
    let mut ctx = TestContext::new(0);
    let mut s = Store::new(StoreConfig::default());
    s.start(&mut ctx);
    s.on_message(&mut ctx, 9, req(1, StoreOp::Write { key: 5, value: 50 }));
    s.on_message(
        &mut ctx,
        9,
        req(
            2,
            StoreOp::Cas {
                key: 5,
                expect: None,
                new: 7,
            },
        ),
    );
    assert!(replies(&mut ctx).is_empty());
    sync(&mut s, &mut ctx);
    let r = replies(&mut ctx);
    assert_eq!(r[1], (2, StoreResult::CasFailed { current: Some(50) }));
}

fn small_log() -> StoreConfig {
    StoreConfig {
        purge_after_records: 2,
        ..StoreConfig::default()
    }
}

#[test]
fn a_store_purges_its_log_into_a_checkpoint_and_recovers_from_it() {
    let mut ctx = TestContext::new(0);
    let mut s = Store::new(small_log());
    s.start(&mut ctx);
    for (id, (key, value)) in [(1, (5, 50)), (2, (6, 60)), (3, (5, 51))] {
        s.on_message(&mut ctx, 9, req(id, StoreOp::Write { key, value }));
        sync(&mut s, &mut ctx);
    }
    assert_eq!(replies(&mut ctx).len(), 3);
    assert!(s.base_lsn() >= 2, "settled records were purged");
    assert!(s.log_len() <= 1);
    let (lsn, bytes) = ctx.snapshot.clone().expect("a checkpoint on disk");
    assert_eq!(lsn, s.base_lsn());
    let (_, state) = decode_snapshot(&bytes).unwrap();
    assert_eq!(state.get(&6), Some(&60));
    ctx.crash_disk();
    let mut s = Store::new(small_log());
    s.start(&mut ctx);
    assert_eq!((s.get(5), s.get(6)), (Some(51), Some(60)));
    s.on_message(&mut ctx, 9, req(4, StoreOp::Write { key: 7, value: 70 }));
    sync(&mut s, &mut ctx);
    assert_eq!(
        replies(&mut ctx),
        vec![(4, StoreResult::Written { lsn: 4, epoch: 1 })],
        "numbering goes on after the checkpoint"
    );
}

proptest! {
    /// Whatever the interleaving of writes, syncs, checkpoints and crashes, every acknowledged
    /// write survives, and the store serves the last durable value of each key.
    #[test]
    fn acknowledged_writes_survive_any_crash(ops in proptest::collection::vec((0u8..4, 0u64..4), 1..60)) {
        let mut ctx = TestContext::new(0);
        let mut s = Store::new(small_log());
        s.start(&mut ctx);
        let mut next = 1u64;
        let mut pending = std::collections::BTreeMap::new();
        let mut last_acked = std::collections::BTreeMap::new();
        for (op, key) in ops {
            match op {
                0 | 1 => {
                    next += 1;
                    pending.insert(next, (key, next));
                    s.on_message(&mut ctx, 9, req(next, StoreOp::Write { key, value: next }));
                }
                2 => sync(&mut s, &mut ctx),
                _ => {
                    ctx.crash_disk();
                    s = Store::new(small_log());
                    s.start(&mut ctx);
                }
            }
            for (id, r) in replies(&mut ctx) {
                if let StoreResult::Written { .. } = r {
                    let (k, v) = pending[&id];
                    last_acked.insert(k, v);
                }
            }
        }
        let snapshot = ctx.snapshot.as_ref().map(|(l, b)| (*l, &b[..]));
        let durable = DurableState::read(snapshot, &ctx.log[..ctx.durable]);
        prop_assert_eq!(durable.undecodable, 0);
        for (k, v) in last_acked {
            // One writer, writes in order: the durable value of a key is its last acknowledged
            // write or a later one.
            prop_assert!(durable.state.get(&k).is_some_and(|&d| d >= v), "acknowledged {k} = {v} missing");
        }
        for (k, v) in &durable.state {
            prop_assert_eq!(s.get(*k), Some(*v));
        }
    }
}

#[test]
fn queries_run_on_bounded_threads_wait_in_order_and_are_refused_beyond_max_connections() {
    let mut ctx = TestContext::new(0);
    let config = StoreConfig {
        query_time: Some(Dist::constant_ms(10.0)),
        query_threads: 2,
        max_connections: 3,
        ..StoreConfig::default()
    };
    let mut s = Store::new(config);
    s.start(&mut ctx);
    for id in 1..=4 {
        s.on_message(&mut ctx, 9, req(id, StoreOp::Read { key: 1 }));
    }
    assert_eq!(
        replies(&mut ctx),
        vec![(4, StoreResult::Error)],
        "the fourth is over max_connections"
    );
    let mut answered = Vec::new();
    while let Some(t) = ctx.pop_timer() {
        s.on_timer(&mut ctx, t);
        for (id, _) in replies(&mut ctx) {
            answered.push((id, ctx.now_ns / 1_000_000));
        }
    }
    assert_eq!(
        answered,
        vec![(1, 10), (2, 10), (3, 20)],
        "two threads, FIFO"
    );
}

fn semi_sync_pair(ack_after_sync: bool) -> (Store, TestContext) {
    let mut ctx = TestContext::new(0);
    let config = StoreConfig {
        replication: ReplicationMode::SemiSync,
        semi_sync_timeout_ms: 1_000.0,
        semi_sync_ack_after_sync: ack_after_sync,
        replication_delay_ms: 0.0,
        ..StoreConfig::default()
    };
    let placement = Placement {
        shard: 0,
        members: vec![0, 1],
        readers: Vec::new(),
    };
    let mut s = Store::member(config, 0, placement);
    s.start(&mut ctx);
    (s, ctx)
}

fn write_and_sync(s: &mut Store, ctx: &mut TestContext, id: u64) {
    s.on_message(ctx, 9, req(id, StoreOp::Write { key: id, value: id }));
    sync(s, ctx);
}

fn ack(s: &mut Store, ctx: &mut TestContext, lsn: u64, received: u64) {
    let epoch = s.epoch;
    s.on_message(
        ctx,
        1,
        Msg::Repl(ReplMsg::Ack {
            epoch,
            lsn,
            received,
        }),
    );
}

#[test]
fn a_semi_sync_write_is_released_by_the_replicas_receipt_not_its_fsync() {
    // MySQL/MariaDB: the semi-sync replica replies once the event is in its relay log.
    let (mut s, mut ctx) = semi_sync_pair(false);
    write_and_sync(&mut s, &mut ctx, 1);
    assert!(replies(&mut ctx).is_empty(), "waits for the replica");
    ack(&mut s, &mut ctx, 0, 1);
    assert_eq!(replies(&mut ctx).len(), 1, "released by the receipt");
    // With semi_sync_ack_after_sync, only a durable ack releases.
    let (mut s, mut ctx) = semi_sync_pair(true);
    write_and_sync(&mut s, &mut ctx, 1);
    ack(&mut s, &mut ctx, 0, 1);
    assert!(replies(&mut ctx).is_empty());
    ack(&mut s, &mut ctx, 1, 1);
    assert_eq!(replies(&mut ctx).len(), 1);
}

#[test]
fn semi_sync_falls_back_after_the_timeout_and_is_back_at_a_reply_past_the_write_that_timed_out() {
    let (mut s, mut ctx) = semi_sync_pair(false);
    write_and_sync(&mut s, &mut ctx, 1);
    ack(&mut s, &mut ctx, 1, 1);
    replies(&mut ctx);
    // The replica is gone: write 2 waits the timeout, then the primary falls back.
    write_and_sync(&mut s, &mut ctx, 2);
    while replies(&mut ctx).is_empty() {
        let t = ctx.pop_timer().expect("the semi-sync timeout is armed");
        s.on_timer(&mut ctx, t);
    }
    assert!(!s.semi_sync_on);
    assert!(ctx.now_ns >= 1_000_000_000, "waited the timeout");
    write_and_sync(&mut s, &mut ctx, 3);
    assert_eq!(replies(&mut ctx).len(), 1, "async now: no wait");
    // It returns and catches up: a reply before the write that timed out (lsn 2) is not
    // enough; the reply for it switches back on, before the replica has write 3.
    ack(&mut s, &mut ctx, 1, 1);
    assert!(!s.semi_sync_on);
    ack(&mut s, &mut ctx, 2, 2);
    assert!(
        s.semi_sync_on,
        "on at the timed-out write, with the replica behind the end"
    );
    write_and_sync(&mut s, &mut ctx, 4);
    assert!(
        replies(&mut ctx).is_empty(),
        "semi-sync again: write 4 waits"
    );
    ack(&mut s, &mut ctx, 4, 4);
    assert_eq!(replies(&mut ctx).len(), 1);
}
