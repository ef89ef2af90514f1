//! The seam: the one interface through which a component sees the world.
//!
//! The simulator (`minitwin-sim`) and the production driver (`minitwin-driver`) each implement
//! [`Context`]; a component never asks which one it runs under.

use crate::metrics::Metrics;
use crate::msg::{Msg, Timer};
use crate::observe::Observation;
use crate::rng::Rng;

/// Index of a node in its topology. Stable for the whole run, across crashes and restarts.
pub type NodeId = u32;

/// Handle of a pending timer, for cancellation. Opaque to components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    pub slot: u32,
    pub generation: u32,
}

/// Completion of a disk request made through [`Context::disk_sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskEvent {
    /// Every record with a log sequence number `<= lsn` is durable.
    Synced { lsn: u64 },
    /// The sync failed: nothing past the previous durable point is known to be durable.
    SyncFailed { lsn: u64 },
}

/// Why a disk append was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The disk returned an I/O error (an injected fault in simulation).
    Io,
}

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskError::Io => write!(f, "disk I/O error"),
        }
    }
}

/// What a node's disk held when it started: its last checkpoint and the durable records after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last checkpoint: the log sequence number it covers and its bytes.
    pub snapshot: Option<(u64, Vec<u8>)>,
    /// Durable records after the checkpoint, oldest first: the first has lsn `snapshot lsn + 1`
    /// (or 1 without a checkpoint).
    pub records: Vec<Vec<u8>>,
}

impl Recovered {
    /// The lsn of the last checkpoint (0 without one).
    pub fn base_lsn(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.0)
    }

    /// The lsn of the last durable record.
    pub fn tail_lsn(&self) -> u64 {
        self.base_lsn() + self.records.len() as u64
    }
}

/// Everything a component may use. One per node; handed to every callback.
pub trait Context {
    /// This node's local clock in nanoseconds (simulated time plus this node's skew).
    fn now_ns(&self) -> u64;
    /// This node's id.
    fn me(&self) -> NodeId;
    /// Sends a message; the network may delay, reorder across links, or drop it.
    fn send(&mut self, to: NodeId, msg: Msg);
    /// Fires `timer` after `after_ns` of this node's local time, unless cancelled.
    fn set_timer(&mut self, after_ns: u64, timer: Timer) -> TimerId;
    /// Cancels a pending timer; cancelling a fired or cancelled timer does nothing.
    fn cancel_timer(&mut self, id: TimerId);
    /// This node's own random stream (ChaCha8, seeded from the run seed and the node's name).
    fn rng(&mut self) -> &mut Rng;
    /// Appends a record to this node's log; returns its log sequence number (1-based).
    /// The record is not durable until a later [`DiskEvent::Synced`] covers it.
    fn disk_append(&mut self, record: &[u8]) -> Result<u64, DiskError>;
    /// Asks for everything appended so far to be made durable; completion arrives as
    /// [`Component::on_disk`].
    fn disk_sync(&mut self);
    /// What survived the last crash: the last checkpoint and the durable records after it
    /// (read at start-up).
    fn disk_recover(&mut self) -> Recovered;
    /// Cuts the log back to its first `lsn` records, durably (a diverged replica rewinding to
    /// its new primary's history). Records past `lsn` are gone, synced or not. `lsn` is never
    /// below the last checkpoint.
    fn disk_truncate(&mut self, lsn: u64);
    /// Replaces every record up to `lsn` (which must be durable) with `snapshot`, durably and
    /// at once: a checkpoint, after which the log before it is purged, as a binlog is.
    fn disk_checkpoint(&mut self, lsn: u64, snapshot: Vec<u8>);
    /// Replaces the whole log with `snapshot` as the state at `lsn`, durably and at once (a
    /// re-clone from another node): every record, synced or not, is gone.
    fn disk_install(&mut self, lsn: u64, snapshot: Vec<u8>);
    /// This node's metrics registry; it outlives crashes of the component.
    fn metrics(&mut self) -> &mut Metrics;
    /// A named fault point (buggify): true when this run enabled `point` and it fires now.
    fn fault(&mut self, point: &'static str) -> bool;
    /// The platform's process control, for the control plane only: starts (`on`) or stops the
    /// process of pod slot `node` (a container runtime's start, or its kill after the grace
    /// period). Other components never call it.
    fn power(&mut self, node: NodeId, on: bool);
    /// Reports a rare event for checkers and logs (a promotion, a semi-sync fallback); the
    /// simulator stamps it with the simulated time and node, the driver logs it.
    fn observe(&mut self, observation: Observation);
}

/// A component: a state machine driven by messages, timers and disk completions.
pub trait Component {
    /// Called when the node boots and after every restart. Recover from `ctx.disk_recover()`.
    fn start(&mut self, ctx: &mut dyn Context);
    /// A message arrived from `from`.
    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg);
    /// A timer set through [`Context::set_timer`] fired.
    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer);
    /// A disk sync completed or failed.
    fn on_disk(&mut self, _ctx: &mut dyn Context, _event: DiskEvent) {}
    /// For the tier that reads this component's state after a run.
    fn as_any(&self) -> &dyn std::any::Any;
    /// For a tier that takes data out of this component during a run (the users' client hands
    /// its finished seconds over, so they stream to disk instead of piling up); most do not.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}
