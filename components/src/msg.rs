//! Messages on the wire and timer tokens.
//!
//! Every id in a message is local to the hop that issued it: the gateway does not forward the
//! client's request id to a service, it issues its own. That keeps each component's bookkeeping
//! private and bounded.

use crate::context::NodeId;

/// What a client asks of the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// A cacheable resource (mini-program page, image, config): the gateway may serve it.
    Static,
    /// Read the user's record from the store.
    Read,
    /// Write the user's record to the store.
    Write,
}

impl Route {
    pub const ALL: [Route; 3] = [Route::Static, Route::Read, Route::Write];

    pub fn name(self) -> &'static str {
        match self {
            Route::Static => "static",
            Route::Read => "read",
            Route::Write => "write",
        }
    }
}

/// Outcome of a request, HTTP-like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Ok = 200,
    TooManyRequests = 429,
    Internal = 500,
    BadGateway = 502,
    Unavailable = 503,
    GatewayTimeout = 504,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::TooManyRequests,
        Status::Internal,
        Status::BadGateway,
        Status::Unavailable,
        Status::GatewayTimeout,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }
}

/// Client to gateway, and gateway to service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    pub id: u64,
    pub route: Route,
    pub key: u64,
    /// For writes: the value to write (the workload makes them unique per write).
    pub value: u64,
}

/// Reply to a [`Request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    pub id: u64,
    pub status: Status,
    pub value: Option<u64>,
}

/// Operations on a store shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreOp {
    Read {
        key: u64,
    },
    Write {
        key: u64,
        value: u64,
    },
    Cas {
        key: u64,
        expect: Option<u64>,
        new: u64,
    },
}

impl StoreOp {
    pub fn key(&self) -> u64 {
        match *self {
            StoreOp::Read { key } | StoreOp::Write { key, .. } | StoreOp::Cas { key, .. } => key,
        }
    }
}

/// A shard's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreResult {
    /// A read's value (None: never written).
    Value(Option<u64>),
    /// A write or successful CAS is durable at `lsn` of the primary of `epoch`.
    Written { lsn: u64, epoch: u64 },
    /// A CAS found another value; nothing changed.
    CasFailed { current: Option<u64> },
    /// The shard could not serve the request (disk error, poisoned log).
    Error,
    /// This node is not the shard's primary; `primary` is who it believes is.
    Redirect { primary: Option<NodeId> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreRequest {
    pub id: u64,
    pub op: StoreOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreResponse {
    pub id: u64,
    pub result: StoreResult,
}

/// Everything that crosses the network. Each component family beyond the first slice has one
/// variant carrying its own message enum, defined in its module.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    Request(Request),
    Response(Response),
    Store(StoreRequest),
    StoreReply(StoreResponse),
    /// Replication and failover of store shards: see [`crate::repl`].
    Repl(crate::repl::ReplMsg),
    /// Cross-zone mirroring: see [`crate::mirror`].
    Mirror(crate::mirror::MirrorMsg),
    /// The session cluster (Redis Cluster-like): see [`crate::session`].
    Session(crate::session::SessionMsg),
    /// The cold-storage archiver: see [`crate::archive`].
    Archive(crate::archive::ArchiveMsg),
    /// The control plane with pods and gateways: see [`crate::scaler`].
    Scaler(crate::scaler::ScalerMsg),
    /// The monitor's scrapes and the nodes' samples: see [`crate::monitor`].
    Monitor(crate::monitor::MonitorMsg),
    /// The platform's notice that a message could not be delivered because the peer's host
    /// is up but nothing listens (TCP RST to a SYN: `connect() failed (111: Connection
    /// refused)`); carries the message back. Never on the wire: the simulator's kernel or
    /// the production driver's connection makes it.
    Refused(Box<Msg>),
    /// The platform's notice that the peer's process died and reset the connection: every
    /// request in flight to it has failed (`recv() failed (104: Connection reset by peer)`).
    Reset,
}

/// Timer tokens. A component only ever receives the tokens it set itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The earliest deadline of a [`crate::deadline::DeadlineQueue`] is due.
    Deadlines,
    /// A service worker finished its CPU time.
    WorkerDone { worker: u32 },
    /// Retry a store call after a backoff.
    RetryStore { worker: u32 },
    /// A request held back by the rate limiter (nginx limit_req without nodelay).
    Delayed { id: u64 },
    /// Generic periodic tick (workload arrivals, scrapes).
    Tick { kind: u32 },
}
