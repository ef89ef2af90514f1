//! Observations: rare events a component reports through [`crate::Context::observe`], so that
//! checkers can judge what happened at the moment it happened (a crashed node's memory is gone
//! by the end of the run) and production logs can say it.
//!
//! Never per request in normal operation: an observation marks a change of state, or a write
//! acknowledged under a weaker promise than configured.

use crate::context::NodeId;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Observation {
    /// A semi-sync store primary stopped waiting for replicas (`on: false`, the fallback to
    /// async after `semi_sync_timeout_ms`) or went back to waiting (`on: true`).
    SemiSync { shard: u32, on: bool },
    /// A semi-sync primary in fallback acknowledged this write before any replica had it: the
    /// configuration no longer promises it survives a failover.
    AsyncAck { shard: u32, key: u64, value: u64 },
    /// A store replica became its shard's primary in `epoch`, holding `lsn` records.
    StorePromoted { shard: u32, epoch: u64, lsn: u64 },
    /// A session replica became master in place of `old_master`, having applied its old
    /// master's replication stream up to `applied_offset`: writes the old master acknowledged
    /// after that offset are the ones asynchronous replication may lose.
    SessionPromoted {
        old_master: NodeId,
        applied_offset: u64,
    },
}
