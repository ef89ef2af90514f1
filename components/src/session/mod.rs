//! The session cluster (Redis Cluster-like).
//!
//! Map: [`slot`] (CRC16 key slots and hash tags), [`node`] (a master or replica: commands,
//! MOVED redirects, TTLs, asynchronous replication, PFAIL/FAIL detection by gossip, replica
//! elections), [`client`] (a session workload that follows MOVED and records a history for the
//! read-your-writes and monotonic-reads checks).
//!
//! Simplified against Redis: slots are assigned once at start in contiguous ranges and move
//! only by failover (no MIGRATE, so no ASK redirects yet); a returning old master discards its
//! data and takes a full copy from its new master; epochs are per cluster (one currentEpoch).

pub mod client;
pub mod node;
pub mod slot;

use crate::context::NodeId;

/// One node's claim in gossip: it is a master of slots `[lo, hi)` in `config_epoch`, or a
/// replica of `master`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    pub node: NodeId,
    pub master_of: Option<(u16, u16)>,
    pub replica_of: Option<NodeId>,
    pub config_epoch: u64,
}

/// What a node tells others on the cluster bus.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gossip {
    pub claims: Vec<Claim>,
    pub pfail: Vec<NodeId>,
    pub current_epoch: u64,
}

/// Messages of the session cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionMsg {
    Get {
        id: u64,
        key: u64,
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
    },
    Value {
        id: u64,
        value: Option<u64>,
    },
    Stored {
        id: u64,
    },
    /// The slot is served by `to` (the client updates its slot map).
    Moved {
        id: u64,
        slot: u16,
        to: NodeId,
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
    /// Master -> a node that must resync: everything (key, value, expiry), and the offset.
    FullSync {
        offset: u64,
        data: Vec<(u64, u64, u64)>,
    },
}
