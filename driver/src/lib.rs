//! minitwin-driver: the production driver. It runs the same sans-IO components that the
//! simulator runs, on tokio, with TCP between nodes and a real file as each node's disk.
//!
//! Map of the crate:
//! - [`clock`]: one clock epoch across the cluster's nodes (wall time read once, monotonic
//!   after).
//! - [`disk`]: the write-ahead log as a file (length-prefixed records, `sync_data` on a
//!   blocking thread, torn tails ignored on recovery; under madsim, what a kill loses).
//! - [`net`]: TCP transport: a versioned hello names the sender, then `components::codec`
//!   frames of every message family; bad bytes from a peer close that connection with a logged
//!   reason and a count; dialling retries with backoff and jitter; writes time out.
//! - [`node`]: one task per node owns the component and its [`node::TokioContext`], and handles
//!   its mailbox (messages, timers, disk completions) one event at a time.
//! - [`http`]: the HTTP/1.1 front (hyper): `/healthz`, `/metrics`, and a gateway's users'
//!   routes; drains on shutdown. Not built under madsim.
//! - [`prom`]: a node's registry in Prometheus' text format, under the twin's metric names.
//! - [`timers`]: a node's timers on a thread of their own (tokio's wheel ticks in whole
//!   milliseconds; a component's 50 us wait must not take one).
//! - [`tls`]: mutual TLS between nodes (identity from the certificate), the access policy on
//!   the receiving side, development certificates. Not built under madsim.
//! - [`client`]: a small client for tests and tools.
//!
//! tokio comes through `madsim-tokio`: built with `RUSTFLAGS="--cfg madsim"` the same code runs
//! inside madsim's deterministic simulator. This is the only crate that may read the wall clock.

pub mod client;
pub mod clock;
pub mod disk;
#[cfg(not(madsim))]
pub mod http;
pub mod net;
pub mod node;
pub mod prom;
pub mod timers;
#[cfg(not(madsim))]
pub mod tls;

pub use client::Client;
pub use node::{spawn_node, NodeConfig, NodeHandle, NodeLink};
