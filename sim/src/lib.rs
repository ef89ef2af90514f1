//! minitwin-sim: the deterministic simulator that runs minitwin's components.
//!
//! Map of the crate, in reading order:
//! - [`kernel`]: the single-threaded discrete-event loop ordered by (time, sequence), nodes
//!   that crash and restart, per-node clocks, fault points, and the [`kernel::Action`]s that
//!   faults are made of.
//! - [`net`]: the network (per zone-pair latency and loss, partitions, clogging, FIFO links).
//! - [`disk`]: the disk (unsynced writes lost on crash, slow and failing windows).
//! - [`trace`]: the event-trace hash and first-divergence report.
//! - [`workload`]: the client population (open-loop Poisson arrivals on a rate curve, Zipf
//!   popularity, a request mix).
//! - [`register`]: a Jepsen-style register workload that records histories for [`lincheck`].
//! - [`scenario`]: scenario files (strict TOML, errors with file, line and field).
//! - [`world`]: builds a simulation from a scenario and a seed; compiles faults to actions.
//! - [`lincheck`]: linearizability of register histories (WGL), and Jepsen's log format.
//! - [`checks`]: checkers (durability of acknowledged writes, SLOs).
//! - [`oracle`]: analytic queueing formulas (Erlang B/C, M/M/c, M/M/1) for the twin's tests.
//! - [`runner`]: runs one seed and gathers the outcome; [`report`] turns it into files.
//!
//! Architecture invariant: nothing in a run reads the wall clock, OS randomness or a hash
//! map's iteration order, and nothing in a run spawns a thread.

pub mod checks;
pub mod disk;
pub mod kernel;
pub mod lincheck;
pub mod net;
pub mod oracle;
pub mod register;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod trace;
pub mod workload;
pub mod world;
