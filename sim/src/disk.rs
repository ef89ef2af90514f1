//! The simulated disk: an append-only log of records where only synced records survive a crash.
//!
//! Fault model: sync latency from a distribution, slow windows (latency multiplied), error
//! windows (appends and syncs fail with a probability), and loss of every unsynced record on a
//! crash. Torn records are not modelled yet (a crash drops whole unsynced records).
//!
//! A checkpoint replaces the durable records it covers with a snapshot (atomically, as a
//! written-then-renamed file would), so a log that is checkpointed stays short.

use minitwin_components::rng::{Dist, Rng};
use minitwin_components::{DiskError, Recovered};
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
    /// The last checkpoint (lsn, bytes): durable, and replacing every record up to its lsn.
    snapshot: Option<(u64, Vec<u8>)>,
    /// Records after the checkpoint: `records[i]` has lsn `base_lsn + 1 + i`.
    records: Vec<Vec<u8>>,
    base_lsn: u64,
    durable_lsn: u64,
    /// Sync completions are ordered: a sync never completes before an earlier one.
    last_sync_done_ns: u64,
    slow_factor: f64,
    error_probability: f64,
    pub syncs_total: u64,
    pub sync_failures_total: u64,
    pub appends_total: u64,
    pub append_bytes_total: u64,
    pub append_errors_total: u64,
    pub records_lost_total: u64,
    pub checkpoints_total: u64,
    /// Bumped by every truncation: syncs started before it cover nothing after it.
    pub generation: u32,
    /// Records a checkpoint purged, with their lsns, kept for a checker until taken (only
    /// when [`SimDisk::capture_purged`] asked for them).
    purged: Option<Vec<(u64, Vec<u8>)>>,
}

impl SimDisk {
    pub fn new(config: DiskConfig) -> SimDisk {
        SimDisk {
            config,
            snapshot: None,
            records: Vec::new(),
            base_lsn: 0,
            durable_lsn: 0,
            last_sync_done_ns: 0,
            slow_factor: 1.0,
            error_probability: 0.0,
            syncs_total: 0,
            sync_failures_total: 0,
            appends_total: 0,
            append_bytes_total: 0,
            append_errors_total: 0,
            records_lost_total: 0,
            checkpoints_total: 0,
            generation: 0,
            purged: None,
        }
    }

    /// From now on, keeps the records checkpoints purge until [`SimDisk::take_purged`].
    pub fn capture_purged(&mut self) {
        self.purged.get_or_insert_with(Vec::new);
    }

    /// The records purged since the last call, with their lsns, oldest first.
    pub fn take_purged(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.purged.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The lsn of the last record appended.
    pub fn tail_lsn(&self) -> u64 {
        self.base_lsn + self.records.len() as u64
    }

    /// The lsn of the last durable record.
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }

    pub fn append(&mut self, record: &[u8], rng: &mut Rng) -> Result<u64, DiskError> {
        if rng.chance(self.error_probability) {
            self.append_errors_total += 1;
            return Err(DiskError::Io);
        }
        self.appends_total += 1;
        self.append_bytes_total += record.len() as u64;
        self.records.push(record.to_vec());
        Ok(self.tail_lsn())
    }

    /// Starts a sync of everything appended so far: (completion time, lsn covered, succeeds).
    pub fn sync(&mut self, now_ns: u64, rng: &mut Rng) -> (u64, u64, bool) {
        let latency = self.config.sync_latency.sample_ns(rng) as f64 * self.slow_factor;
        let done = now_ns
            .saturating_add(latency.min(u64::MAX as f64) as u64)
            .max(self.last_sync_done_ns);
        self.last_sync_done_ns = done;
        self.syncs_total += 1;
        let ok = !rng.chance(self.error_probability);
        self.sync_failures_total += u64::from(!ok);
        (done, self.tail_lsn(), ok)
    }

    /// A sync covering `lsn` completed.
    pub fn mark_durable(&mut self, lsn: u64) {
        self.durable_lsn = self.durable_lsn.max(lsn.min(self.tail_lsn()));
    }

    /// The process died on a live host: what it appended is in the page cache, which the
    /// kernel writes back; nothing is lost.
    pub fn kill(&mut self) {
        self.durable_lsn = self.tail_lsn();
        self.last_sync_done_ns = 0;
    }

    /// Power loss: every record not yet durable is gone.
    pub fn crash(&mut self) {
        let keep = (self.durable_lsn - self.base_lsn) as usize;
        self.records_lost_total += (self.records.len() - keep) as u64;
        self.records.truncate(keep);
        self.last_sync_done_ns = 0;
    }

    /// Cuts the log to its first `lsn` records, durably (never below the checkpoint).
    pub fn truncate(&mut self, lsn: u64) {
        assert!(
            lsn >= self.base_lsn,
            "a log is never cut below its checkpoint ({lsn} < {})",
            self.base_lsn
        );
        let lsn = lsn.min(self.tail_lsn());
        self.records.truncate((lsn - self.base_lsn) as usize);
        self.durable_lsn = self.durable_lsn.min(lsn);
        self.generation += 1;
    }

    /// Replaces the whole log with `snapshot` as the state at `lsn` (a re-clone), durably:
    /// every record goes, synced or not, and syncs in flight prove nothing any more.
    pub fn install(&mut self, lsn: u64, snapshot: Vec<u8>) {
        self.records.clear();
        self.base_lsn = lsn;
        self.durable_lsn = lsn;
        self.snapshot = Some((lsn, snapshot));
        self.generation += 1;
    }

    /// Replaces the durable records up to `lsn` with `snapshot`, durably and at once.
    pub fn checkpoint(&mut self, lsn: u64, snapshot: Vec<u8>) {
        assert!(
            lsn >= self.base_lsn && lsn <= self.durable_lsn,
            "a checkpoint covers durable records after the last one ({} < {lsn} <= {})",
            self.base_lsn,
            self.durable_lsn
        );
        let drained = self.records.drain(..(lsn - self.base_lsn) as usize);
        match &mut self.purged {
            Some(purged) => purged.extend((self.base_lsn + 1..).zip(drained)),
            None => drop(drained),
        }
        self.base_lsn = lsn;
        self.snapshot = Some((lsn, snapshot));
        self.checkpoints_total += 1;
    }

    /// Records after the checkpoint, durable or not.
    pub fn log_records(&self) -> u64 {
        self.records.len() as u64
    }

    /// The last checkpoint, if any.
    pub fn snapshot(&self) -> Option<(u64, &[u8])> {
        self.snapshot.as_ref().map(|(l, b)| (*l, &b[..]))
    }

    /// The durable records after the checkpoint (the first has lsn `base_lsn() + 1`).
    pub fn durable_records(&self) -> &[Vec<u8>] {
        &self.records[..(self.durable_lsn - self.base_lsn) as usize]
    }

    /// The lsn of the checkpoint (0 without one).
    pub fn base_lsn(&self) -> u64 {
        self.base_lsn
    }

    /// What a restart reads back.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            snapshot: self.snapshot.clone(),
            records: self.durable_records().to_vec(),
        }
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

    #[test]
    fn a_killed_process_keeps_what_it_appended_in_the_page_cache() {
        let mut rng = Rng::stream(1, "disk");
        let mut d = SimDisk::new(DiskConfig::default());
        d.append(b"a", &mut rng).unwrap();
        d.append(b"b", &mut rng).unwrap();
        d.kill();
        assert_eq!(d.records(), &[b"a".to_vec(), b"b".to_vec()]);
        assert_eq!((d.durable_lsn(), d.records_lost_total), (2, 0));
    }

    #[test]
    fn a_checkpoint_replaces_the_records_it_covers_and_numbering_goes_on() {
        let mut rng = Rng::stream(1, "disk");
        let mut d = SimDisk::new(DiskConfig::default());
        for r in [b"a", b"b", b"c"] {
            d.append(r, &mut rng).unwrap();
        }
        d.mark_durable(3);
        d.checkpoint(2, b"ab".to_vec());
        assert_eq!(d.append(b"d", &mut rng), Ok(4));
        d.crash();
        let r = d.recovered();
        assert_eq!(r.snapshot, Some((2, b"ab".to_vec())));
        assert_eq!(r.records, vec![b"c".to_vec()]);
        assert_eq!(r.tail_lsn(), 3);
    }
}
