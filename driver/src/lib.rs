//! minitwin-driver: the production driver. It runs the same sans-IO components that the
//! simulator runs, on tokio, with TCP between nodes and a real file as each node's disk.
//!
//! Map of the crate:
//! - [`disk`]: the write-ahead log as a file (length-prefixed records, `sync_data`, torn tails
//!   ignored on recovery).
//! - [`net`]: TCP transport: a hello frame names the sender, then `components::codec` frames;
//!   bad bytes from a peer close that connection with an error naming the peer.
//! - [`node`]: one task per node owns the component and its [`node::TokioContext`], and handles
//!   its mailbox (messages, timers, disk completions) one event at a time.
//! - [`client`]: a small client for tests and tools.
//!
//! tokio comes through `madsim-tokio`: built with `RUSTFLAGS="--cfg madsim"` the same code runs
//! inside madsim's deterministic simulator. This is the only crate that may read the wall clock.

pub mod client;
pub mod disk;
pub mod net;
pub mod node;

pub use client::Client;
pub use node::{spawn_node, NodeConfig, NodeHandle};
