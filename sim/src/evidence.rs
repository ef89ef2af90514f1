//! What the tiers read out of their components after a run, for the checkers and the report.
//!
//! Each section is filled by the tier that owns it (see `crate::tiers`); a checker reads only
//! this, never a component, so what a checker judges is written down in one place.

use crate::lincheck::History;
use crate::outcome::Summary;
use crate::workload::{AckedWrite, Second};
use minitwin_components::session::client::SessionOp;
use minitwin_components::session::node::SessionNode;
use minitwin_components::store::Store;
use minitwin_components::NodeId;
use std::collections::BTreeMap;

/// Everything the checkers may judge.
#[derive(Default)]
pub struct Evidence<'a> {
    /// The core numbers; tiers fill their parts, the run adds the loss count.
    pub summary: Summary,
    /// The users' client: what it saw acknowledged, per simulated second.
    pub users: Option<Users<'a>>,
    /// The store shards of the final layout (after a resharding's switch, the new ones).
    pub shards: Vec<ShardView<'a>>,
    /// What the configuration promises each shard of `shards`.
    pub promises: Vec<Promise>,
    /// Every member of every shard as planned (the original layout), for convergence.
    pub members: Vec<Vec<MemberLog<'a>>>,
    /// Mirror copies of each source shard.
    pub copies: Vec<CopyView<'a>>,
    pub sessions: Option<Sessions<'a>>,
    /// The register workload's histories, by key.
    pub registers: Option<&'a BTreeMap<u64, History>>,
}

/// The users' client at the end of the run.
pub struct Users<'a> {
    pub acked_writes: &'a [AckedWrite],
    pub seconds: &'a [Second],
}

/// What the durability checker sees of one shard: the member whose log speaks for it.
pub struct ShardView<'a> {
    pub name: &'a str,
    pub durable_log: &'a [Vec<u8>],
    /// None when that member is down at the end of the run.
    pub store: Option<&'a Store>,
}

/// Whether the configuration promises that no acknowledged write is lost, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Promise {
    pub zero_loss: bool,
    pub why: String,
}

/// A shard member's durable log, for the convergence check.
pub struct MemberLog<'a> {
    pub name: &'a str,
    pub up: bool,
    pub log: &'a [Vec<u8>],
}

/// What the mirror check sees of one mirror copy.
pub struct CopyView<'a> {
    pub name: &'a str,
    /// The source shard's authoritative durable log.
    pub source_log: &'a [Vec<u8>],
    /// The copy's applied records as (lsn, key, value), in order.
    pub applied: Vec<(u64, u64, u64)>,
}

/// The session cluster and its client at the end of the run.
pub struct Sessions<'a> {
    /// Completed operations of the session client, in completion order.
    pub history: &'a [SessionOp],
    /// Every session node that is up: (id, name, node).
    pub nodes: Vec<(NodeId, &'a str, &'a SessionNode)>,
    /// Names of session nodes that are down.
    pub down: Vec<&'a str>,
    pub failovers: u64,
    /// From the first crash of a session node to the first promotion.
    pub failover_s: Option<f64>,
}
