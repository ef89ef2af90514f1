//! minitwin-sim: the deterministic simulator that runs minitwin's components.
//!
//! Map of the crate, in reading order (a scenario's walk: file -> plan -> world -> run ->
//! checks -> report):
//! - [`kernel`]: the single-threaded discrete-event loop ordered by (time, sequence), nodes
//!   that crash and restart, per-node clocks, fault points, and the [`kernel::Action`]s that
//!   faults are made of. It knows nothing of tiers.
//! - [`heap`]: the kernel's event queue (a binary heap of (time, sequence) keys, branch-free).
//! - [`net`]: the network (per zone-pair latency and loss, partitions, clogging, FIFO links).
//! - [`disk`]: the disk (unsynced writes lost on crash, slow and failing windows).
//! - [`trace`]: the event-trace hash and first-divergence report.
//! - [`scenario`]: scenario files (strict TOML, errors with file, line and field).
//! - [`variants`]: a scenario's `[[variants]]`, expanded into scenarios (common random numbers).
//! - [`cost`]: the price of a run's nodes per hour.
//! - [`plan`]: the scenario as a plan: every node's name, zone, role and handle, decided once.
//! - [`tiers`]: one module per tier (validate, plan, build, collect, report) and their registry.
//! - [`workload`]: the users' client (open-loop Poisson arrivals on a rate curve, Zipf
//!   popularity, a request mix); [`register`]: a Jepsen-style register workload.
//! - [`cluster`]: a production cluster file: the scenario the real processes run and where each
//!   node listens.
//! - [`world`]: builds a simulation from a plan and a seed; compiles faults to actions.
//! - [`security`]: the layer in front of every process under `[security]`: the access
//!   policy's decisions, refusals counted, and what was served against it (for the check).
//! - [`run`]: the run loop: world -> run -> evidence -> checks -> outcome.
//! - [`evidence`]: what tiers read from their components after a run, for the checkers.
//! - [`checks`]: one file per checker, registered by name.
//! - [`series`]: the users' per-second time series, streamed as it is made, and the recovery
//!   time; [`gauges`]: the tiers per second (instances up, queue depth) for plots.
//! - [`outcome`]: the summary, rows and tables of a run; [`report`] turns them into files.
//! - [`lincheck`]: linearizability of register histories (WGL), and Jepsen's log format.
//! - [`compare`]: variants run as arms on common seeds, differences with intervals.
//! - [`capacity`]: max QPS under an SLO (bracketing, bisection), tier loads, the bottleneck.
//! - [`stats`]: means, confidence intervals, paired and unpaired differences.
//! - [`sweep`]: parameter axes, replications, derived seeds, shards across machines.
//! - [`oracle`]: analytic queueing formulas (Erlang B/C, M/M/c, M/M/1) for the twin's tests.
//! - [`import`]: what production leaves behind (nginx access logs) read into rate curves and
//!   per-window error and latency series, incident timelines, Prometheus range results.
//! - [`replay`]: an incident's evidence turned into a scenario, a run scored against it window
//!   by window, the incident's signature; [`shrink`]: a failing scenario minimized.
//!
//! Architecture invariant: nothing in a run reads the wall clock, OS randomness or a hash
//! map's iteration order, and nothing in a run spawns a thread.

pub mod capacity;
pub mod checks;
pub mod cluster;
pub mod compare;
pub mod cost;
pub mod disk;
pub mod evidence;
pub mod gauges;
pub mod heap;
pub mod import;
pub mod kernel;
pub mod lincheck;
pub mod net;
pub mod oracle;
pub mod outcome;
pub mod plan;
pub mod register;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod security;
pub mod series;
pub mod shrink;
pub mod stats;
pub mod sweep;
pub mod tiers;
pub mod trace;
pub mod variants;
pub mod workload;
pub mod world;
