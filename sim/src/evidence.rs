//! What the tiers read out of their components after a run, for the checkers and the report.
//!
//! Each section is filled by the tier that owns it (see `crate::tiers`); a checker reads only
//! this and what it observed during the run, never a component, so what a checker judges is
//! written down in one place. Everything here is state per key or per node, never per request.

use crate::lincheck::History;
use crate::outcome::Summary;
use crate::workload::Tally;
use minitwin_components::session::client::SessionClient;
use minitwin_components::session::node::SessionNode;
use minitwin_components::store::DurableState;
use minitwin_components::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Everything the checkers may judge.
#[derive(Default)]
pub struct Evidence<'a> {
    /// The core numbers; tiers fill their parts, the run adds the loss count.
    pub summary: Summary,
    /// The users' client: its window tally.
    pub users: Option<Users<'a>>,
    /// The store shards of the final layout (after a resharding's switch, the new ones).
    pub shards: Vec<ShardView>,
    /// Every member of every shard as planned, for convergence; empty without replicas.
    pub members: Vec<Vec<MemberView>>,
    /// Mirror copies of each source shard.
    pub copies: Vec<CopyView>,
    pub sessions: Option<Sessions<'a>>,
    /// The register workload's histories, by key.
    pub registers: Option<&'a BTreeMap<u64, History>>,
    /// What the security layer refused and served (None without `[security]`).
    pub security: Option<&'a crate::security::SecurityView>,
}

/// The users' client at the end of the run.
pub struct Users<'a> {
    pub tally: &'a Tally,
}

/// What the durability checker sees of one shard: the member whose disk speaks for it.
pub struct ShardView {
    pub name: String,
    /// What that member's disk holds, read back as a restart would.
    pub durable: DurableState,
    /// The (key, value) of every durable record still in its log (after its checkpoint); the
    /// records before were handed over as settled during the run.
    pub unpurged: BTreeSet<(u64, u64)>,
    /// Keys whose served value differs from what the member's durable log says, with the first
    /// one as (key, served, logged); only for a member that is up.
    pub mismatches: u64,
    pub first_mismatch: Option<(u64, Option<u64>, u64)>,
}

/// A shard member's durable state, for the convergence check.
pub struct MemberView {
    pub name: String,
    pub up: bool,
    /// Detached from the shard (read-only, not replicating, until a re-clone), with its errant
    /// records when known; None for a member in the shard.
    pub detached: Option<Option<u64>>,
    /// (last durable lsn, its epoch, digest of the state).
    pub fingerprint: (u64, u64, u64),
}

/// What the mirror check sees of one mirror copy and its source.
pub struct CopyView {
    pub name: String,
    /// The copy's last durable source lsn, and the digest of its data.
    pub lsn: u64,
    pub digest: u64,
    /// The source's authority: where its log's durable part starts (its checkpoint) and ends.
    pub source_name: String,
    pub source_base_lsn: u64,
    pub source_tail_lsn: u64,
    /// The digest of the source's state at the copy's lsn (None when that lsn is outside the
    /// source's durable log: purged, or beyond its end).
    pub source_digest_at_lsn: Option<u64>,
}

/// The session cluster and its client at the end of the run.
pub struct Sessions<'a> {
    pub client: &'a SessionClient,
    /// When the run ended (the client's clock), for TTLs.
    pub end_ns: u64,
    /// The time to live of session writes.
    pub ttl_ns: u64,
    /// Every session node that is up: (id, name, node).
    pub nodes: Vec<(NodeId, &'a str, &'a SessionNode)>,
    /// Names of session nodes that are down.
    pub down: Vec<&'a str>,
}

impl Sessions<'_> {
    /// The value the cluster serves for `key` now (0: absent): from the master that serves it.
    pub fn served(&self, key: u64) -> u64 {
        self.nodes
            .iter()
            .find(|n| n.2.serves(key))
            .and_then(|n| n.2.get(key))
            .unwrap_or(0)
    }
}
