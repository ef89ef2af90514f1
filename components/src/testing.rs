//! A hand-cranked [`Context`] for unit and property tests of components, without a simulator.
//!
//! Time moves only when the test says; sent messages and set timers are collected for the test
//! to inspect and deliver; the disk is a vector with an explicit durable mark.

use crate::context::{Context, DiskError, NodeId, Recovered, TimerId};
use crate::metrics::Metrics;
use crate::msg::{Msg, Timer};
use crate::observe::Observation;
use crate::rng::Rng;

pub struct TestContext {
    pub now_ns: u64,
    pub me: NodeId,
    pub sent: Vec<(NodeId, Msg)>,
    /// Pending timers: (due time, id, token). Cancelled timers are removed.
    pub timers: Vec<(u64, TimerId, Timer)>,
    /// Records after the checkpoint; `log[i]` has lsn `base_lsn + 1 + i`.
    pub log: Vec<Vec<u8>>,
    /// How many of `log` are durable.
    pub durable: usize,
    /// The last checkpoint (lsn, bytes).
    pub snapshot: Option<(u64, Vec<u8>)>,
    pub base_lsn: u64,
    pub observed: Vec<Observation>,
    pub sync_requests: u32,
    pub disk_fails: bool,
    pub rng: Rng,
    pub metrics: Metrics,
    pub faults_on: bool,
    /// Process control asked for through [`Context::power`]: (node, on), in order.
    pub powered: Vec<(NodeId, bool)>,
    next_timer: u32,
}

impl TestContext {
    pub fn new(me: NodeId) -> TestContext {
        TestContext {
            now_ns: 0,
            me,
            sent: Vec::new(),
            timers: Vec::new(),
            log: Vec::new(),
            durable: 0,
            snapshot: None,
            base_lsn: 0,
            observed: Vec::new(),
            sync_requests: 0,
            disk_fails: false,
            rng: Rng::stream(0, "test"),
            metrics: Metrics::new(),
            faults_on: false,
            powered: Vec::new(),
            next_timer: 0,
        }
    }

    /// Takes the messages sent so far.
    pub fn take_sent(&mut self) -> Vec<(NodeId, Msg)> {
        std::mem::take(&mut self.sent)
    }

    /// Removes and returns the earliest pending timer, moving the clock to its due time.
    pub fn pop_timer(&mut self) -> Option<Timer> {
        let i =
            (0..self.timers.len()).min_by_key(|&i| (self.timers[i].0, self.timers[i].1.slot))?;
        let (at, _, t) = self.timers.remove(i);
        self.now_ns = self.now_ns.max(at);
        Some(t)
    }

    /// Simulates a crash of the disk: unsynced records vanish.
    pub fn crash_disk(&mut self) {
        self.log.truncate(self.durable);
    }

    /// The lsn of the last durable record.
    pub fn durable_lsn(&self) -> u64 {
        self.base_lsn + self.durable as u64
    }
}

impl Context for TestContext {
    fn now_ns(&self) -> u64 {
        self.now_ns
    }
    fn me(&self) -> NodeId {
        self.me
    }
    fn send(&mut self, to: NodeId, msg: Msg) {
        self.sent.push((to, msg));
    }
    fn set_timer(&mut self, after_ns: u64, timer: Timer) -> TimerId {
        self.next_timer += 1;
        let id = TimerId {
            slot: self.next_timer,
            generation: 0,
        };
        self.timers.push((self.now_ns + after_ns, id, timer));
        id
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.timers.retain(|t| t.1 != id);
    }
    fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
    fn disk_append(&mut self, record: &[u8]) -> Result<u64, DiskError> {
        if self.disk_fails {
            return Err(DiskError::Io);
        }
        self.log.push(record.to_vec());
        Ok(self.base_lsn + self.log.len() as u64)
    }
    fn disk_sync(&mut self) {
        self.sync_requests += 1;
    }
    fn disk_recover(&mut self) -> Recovered {
        Recovered {
            snapshot: self.snapshot.clone(),
            records: self.log[..self.durable].to_vec(),
        }
    }
    fn disk_truncate(&mut self, lsn: u64) {
        assert!(lsn >= self.base_lsn, "never truncate below a checkpoint");
        self.log.truncate((lsn - self.base_lsn) as usize);
        self.durable = self.durable.min(self.log.len());
    }
    fn disk_install(&mut self, lsn: u64, snapshot: Vec<u8>) {
        self.log.clear();
        self.durable = 0;
        self.base_lsn = lsn;
        self.snapshot = Some((lsn, snapshot));
    }
    fn disk_checkpoint(&mut self, lsn: u64, snapshot: Vec<u8>) {
        let n = lsn
            .checked_sub(self.base_lsn)
            .expect("checkpoints move forward") as usize;
        assert!(
            n <= self.durable,
            "a checkpoint covers durable records only"
        );
        self.log.drain(..n);
        self.durable -= n;
        self.base_lsn = lsn;
        self.snapshot = Some((lsn, snapshot));
    }
    fn observe(&mut self, observation: Observation) {
        self.observed.push(observation);
    }
    fn power(&mut self, node: NodeId, on: bool) {
        self.powered.push((node, on));
    }
    fn metrics(&mut self) -> &mut Metrics {
        &mut self.metrics
    }
    fn fault(&mut self, _point: &'static str) -> bool {
        self.faults_on
    }
}
