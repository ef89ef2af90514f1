//! The session cluster (Redis Cluster-like).
//!
//! Map: [`slot`] (CRC16 key slots and hash tags), [`admin`] (a planned slot migration), [`node`] (a master or replica: commands,
//! MOVED redirects, TTLs, asynchronous replication, PFAIL/FAIL detection by gossip, replica
//! elections), [`client`] (a session workload that follows MOVED and records a history for the
//! read-your-writes and monotonic-reads checks).
//!
//! Slots move by failover, or by migration: the source sends its keys in batches (kept until
//! the target acknowledges, resent if written meanwhile), answers ASK for keys it no longer
//! holds, and hands the range over with a new config epoch; clients follow ASK once with
//! `asking` and MOVED by updating their slot map.
//!
//! Simplified against Redis: a returning old master discards its data and takes a full copy
//! from its new master; one currentEpoch for the whole cluster; lazy TTL expiry only.

pub mod admin;
pub mod client;
pub mod node;
pub mod slot;

use crate::context::NodeId;

/// One node's claim in gossip: it is a master serving `slots` in `config_epoch`, or a replica
/// of `replica_of`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    pub node: NodeId,
    /// Slot ranges `[lo, hi)` this node serves as a master (empty for a replica).
    pub slots: Vec<(u16, u16)>,
    pub replica_of: Option<NodeId>,
    pub config_epoch: u64,
}

/// What a node tells others on the cluster bus.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gossip {
    pub claims: Vec<Claim>,
    pub pfail: Vec<NodeId>,
    pub current_epoch: u64,
    /// The sender's replication offset (Redis' header `offset`): replicas rank by it.
    pub repl_offset: u64,
}

/// Messages of the session cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionMsg {
    /// `asking`: sent after an ASK redirect (Redis' ASKING + the command).
    Get {
        id: u64,
        key: u64,
        asking: bool,
    },
    /// A read a replica may serve (Redis' READONLY mode): possibly stale.
    GetReadonly {
        id: u64,
        key: u64,
    },
    Set {
        id: u64,
        key: u64,
        value: u64,
        ttl_ms: u64,
        asking: bool,
    },
    Value {
        id: u64,
        value: Option<u64>,
    },
    /// The write is stored at the master, as change `offset` of its replication stream.
    Stored {
        id: u64,
        offset: u64,
    },
    /// The slot is served by `to` (the client updates its slot map).
    Moved {
        id: u64,
        slot: u16,
        to: NodeId,
    },
    /// The key's slot is migrating and the key is not here: ask `to` once (do not update the
    /// slot map).
    Ask {
        id: u64,
        slot: u16,
        to: NodeId,
    },
    /// Admin -> master: move slots `[lo, hi)` to master `to` (redis-cli --cluster reshard).
    MigrateSlots {
        lo: u16,
        hi: u16,
        to: NodeId,
    },
    /// Source -> target: you are importing `[lo, hi)`.
    Importing {
        lo: u16,
        hi: u16,
    },
    /// Source -> target: keys of the migrating slots (key, value, expiry).
    MigrateKeys {
        entries: Vec<(u64, u64, u64)>,
    },
    /// Target -> source: the last `MigrateKeys` is stored.
    MigrateAck,
    /// Source -> target: the slots are yours from `epoch` on.
    SlotsAssigned {
        lo: u16,
        hi: u16,
        epoch: u64,
    },
    /// The node cannot serve writes (a minority master, or the cluster is down).
    Down {
        id: u64,
    },
    /// Cluster bus: heartbeat with the sender's claim, what it believes of others, and which
    /// nodes it considers failing.
    /// (Boxed: a rare, large message must not grow every message in the simulator's queue.)
    Ping(Box<Gossip>),
    Pong(Box<Gossip>),
    /// A node is FAIL (agreed by a majority of masters).
    Fail {
        node: NodeId,
    },
    /// Replica asks masters to vote for it to replace `failed`.
    AuthRequest {
        epoch: u64,
        failed: NodeId,
    },
    AuthAck {
        epoch: u64,
    },
    /// Master -> replica: one write, at replication offset `offset`.
    Replicate {
        offset: u64,
        key: u64,
        value: u64,
        expires_ns: u64,
    },
    /// Master -> replica: a key left (migrated away), at replication offset `offset`.
    ReplicateDel {
        offset: u64,
        key: u64,
    },
    /// Master -> a node that must resync: everything (key, value, expiry), and the offset.
    FullSync {
        offset: u64,
        data: Vec<(u64, u64, u64)>,
    },
    /// Replica -> master: the stream has a gap (a lost link); send again from `offset` (Redis'
    /// PSYNC): from the backlog if it still holds it, else a full resync.
    Psync {
        offset: u64,
    },
}
