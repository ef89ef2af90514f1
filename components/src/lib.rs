//! minitwin components: every backend component as a sans-IO state machine.
//!
//! Map of the crate, in reading order:
//! - [`config`]: validation helpers: every numeric field has a range, errors name the field.
//! - [`context`]: the one seam. [`Context`] is all a component may touch (time, send, timers,
//!   its RNG stream, its disk, its metrics, fault points); [`Component`] is what it must answer.
//! - [`msg`]: the messages that cross the network, and the timer tokens.
//! - [`observe`]: the rare events a component reports for checkers and logs.
//! - [`rng`]: the per-node ChaCha8 stream and the distributions drawn from it.
//! - [`math`]: transcendental functions from pure Rust (`libm`), the same bits everywhere.
//! - [`metrics`]: the per-node registry (counters, gauges, histograms) handed out by the context.
//! - [`detmap`]: a lookup-only hash map with a fixed hasher (no iteration, so no order leaks).
//! - [`deadline`]: a FIFO of deadlines served by one timer, for constant timeouts.
//! - [`keyspace`]: which shard owns a key (keyspace ids split into equal ranges).
//! - [`gateway`]: the edge gateway (smooth weighted round-robin, passive health, LRU cache with
//!   idle timeout, token-bucket rate limit).
//! - [`service`]: a service instance (bounded worker pool and queue, store calls with timeout and
//!   bounded retries).
//! - [`store`]: a single-primary key-value shard that logs to disk and syncs before it acks.
//! - [`repl`]: replication messages and the failover orchestrator of store shards.
//! - [`raft`]: leader election of an orchestrator group (only the leader recovers).
//! - [`mirror`]: cross-zone mirroring (the brief's fetch / apply / checkpoint loop).
//! - [`reshard`]: live resharding (copy, catch-up, cut-over, verify, switch).
//! - [`session`]: the session cluster (Redis Cluster-like) and its redirect-following client.
//! - [`archive`]: the cold-storage archiver (lifecycle rules, tiers, restores).
//! - [`monitor`]: Prometheus-like monitoring: scrapes on the simulated clock, a time-series
//!   store with retention and downsampling, alerting rules with `for:`, anomaly detectors, and
//!   the catalogue of every metric with its unit and help.
//! - [`scaler`]: the control tier: the service pods' lifecycle, endpoints, metrics-server, the
//!   Horizontal Pod Autoscaler (autoscaling/v2) and predictive scaling.
//! - [`security`]: node identities, the access-control policy by role and message family,
//!   and the receiving side's decision (authenticated, authorized, encrypted).
//! - [`codec`]: the byte encoding of [`msg::Msg`] for production sockets.
//! - [`testing`]: a hand-cranked context for testing components without a simulator.
//!
//! Components log through `tracing`; the runner puts the simulated time and the node on every
//! event (a span around each callback).
//!
//! Architecture invariant: nothing here reads a clock, opens a socket, spawns a thread or asks
//! the OS for randomness; nothing here depends on `minitwin-sim` or on tokio.

/// A planted bug's switch: the field itself in builds with the `planted-bugs` feature (tests),
/// `false` everywhere else, so a release binary cannot plant a bug.
macro_rules! planted {
    ($e:expr) => {{
        #[cfg(feature = "planted-bugs")]
        let on = $e;
        #[cfg(not(feature = "planted-bugs"))]
        let on = false;
        on
    }};
}

pub mod archive;
pub mod codec;
pub mod config;
pub mod context;
pub mod deadline;
pub mod detmap;
pub mod gateway;
pub mod keyspace;
pub mod math;
pub mod metrics;
pub mod mirror;
pub mod monitor;
pub mod msg;
pub mod observe;
pub mod raft;
pub mod repl;
pub mod reshard;
pub mod rng;
pub mod scaler;
pub mod security;
pub mod service;
pub mod session;
pub mod store;
pub mod testing;

pub use context::{Component, Context, DiskError, DiskEvent, NodeId, Recovered, TimerId};
pub use msg::{Msg, Timer};
pub use observe::Observation;
