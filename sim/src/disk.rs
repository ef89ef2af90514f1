//! The simulated disk: an append-only log of records where only synced records survive a crash.
//!
//! Fault model: sync latency from a distribution, slow windows (latency multiplied), error
//! windows (appends and syncs fail with a probability), and loss of every unsynced record on a
//! crash. Torn records are not modelled yet (a crash drops whole unsynced records).

use minitwin_components::rng::{Dist, Rng};
use minitwin_components::DiskError;
use serde::Deserialize;

/// Disk parameters for a node.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskConfig {
    /// Time for a sync (fsync) to complete.
    pub sync_latency: Dist,
}

impl Default for DiskConfig {
    fn default() -> Self {
        // A datacenter NVMe fsync: ~0.1-0.5 ms.
        DiskConfig {
            sync_latency: Dist::ShiftedExp {
                min_ms: 0.1,
                extra_mean_ms: 0.2,
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct SimDisk {
    config: DiskConfig,
    records: Vec<Vec<u8>>,
    durable: usize,
    /// Sync completions are ordered: a sync never completes before an earlier one.
    last_sync_done_ns: u64,
    slow_factor: f64,
    error_probability: f64,
    pub syncs_total: u64,
    pub records_lost_total: u64,
    /// Bumped by every truncation: syncs started before it cover nothing after it.
    pub generation: u32,
}

impl SimDisk {
    pub fn new(config: DiskConfig) -> SimDisk {
        SimDisk {
            config,
            records: Vec::new(),
            durable: 0,
            last_sync_done_ns: 0,
            slow_factor: 1.0,
            error_probability: 0.0,
            syncs_total: 0,
            records_lost_total: 0,
            generation: 0,
        }
    }

    pub fn append(&mut self, record: &[u8], rng: &mut Rng) -> Result<u64, DiskError> {
        if rng.chance(self.error_probability) {
            return Err(DiskError::Io);
        }
        self.records.push(record.to_vec());
        Ok(self.records.len() as u64)
    }

    /// Starts a sync of everything appended so far: (completion time, lsn covered, succeeds).
    pub fn sync(&mut self, now_ns: u64, rng: &mut Rng) -> (u64, u64, bool) {
        let latency = self.config.sync_latency.sample_ns(rng) as f64 * self.slow_factor;
        let done = (now_ns + latency as u64).max(self.last_sync_done_ns);
        self.last_sync_done_ns = done;
        self.syncs_total += 1;
        let ok = !rng.chance(self.error_probability);
        (done, self.records.len() as u64, ok)
    }

    /// A sync covering `lsn` completed.
    pub fn mark_durable(&mut self, lsn: u64) {
        let lsn = (lsn as usize).min(self.records.len());
        self.durable = self.durable.max(lsn);
    }

    /// Power loss: every record not yet durable is gone.
    pub fn crash(&mut self) {
        self.records_lost_total += (self.records.len() - self.durable) as u64;
        self.records.truncate(self.durable);
        self.last_sync_done_ns = 0;
    }

    /// Cuts the log to its first `len` records, durably.
    pub fn truncate(&mut self, len: u64) {
        let len = (len as usize).min(self.records.len());
        self.records.truncate(len);
        self.durable = self.durable.min(len);
        self.generation += 1;
    }

    pub fn durable_records(&self) -> &[Vec<u8>] {
        &self.records[..self.durable]
    }

    pub fn records(&self) -> &[Vec<u8>] {
        &self.records
    }

    pub fn set_slow_factor(&mut self, f: f64) {
        self.slow_factor = f.max(0.0);
    }

    pub fn set_error_probability(&mut self, p: f64) {
        self.error_probability = p.clamp(0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_drops_every_record_not_yet_synced() {
        let mut rng = Rng::stream(1, "disk");
        let mut d = SimDisk::new(DiskConfig::default());
        d.append(b"a", &mut rng).unwrap();
        let (_, lsn, ok) = d.sync(0, &mut rng);
        assert!(ok);
        d.append(b"b", &mut rng).unwrap();
        d.mark_durable(lsn);
        d.crash();
        assert_eq!(d.records(), &[b"a".to_vec()]);
        assert_eq!(d.records_lost_total, 1);
    }
}
