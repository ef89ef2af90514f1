//! One clock epoch across nodes: a node's `now_ns` is the time since the cluster's epoch (a
//! Unix time every node of the cluster is given), read once from the wall clock at start and
//! then advanced by the monotonic clock. Timestamps that cross nodes (a heartbeat's `ts_ns`,
//! a mirrored record's commit time) are comparable to the wall clocks' agreement (NTP: about
//! a millisecond on one network); timeouts and timers never jump when the wall clock is set.

use tokio::time::Instant;

/// Nanoseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
#[allow(clippy::disallowed_methods)] // the production driver's one reading of the wall clock
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The cluster's time when `started` was read.
    offset_ns: u64,
    started: Instant,
}

impl Clock {
    /// A clock counting from `epoch_unix_ns` (None: from now, for a node on its own).
    pub fn new(epoch_unix_ns: Option<u64>) -> Clock {
        let offset_ns = epoch_unix_ns.map_or(0, |e| unix_now_ns().saturating_sub(e));
        Clock {
            offset_ns,
            started: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.offset_ns + self.started.elapsed().as_nanos() as u64
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[test]
    fn two_nodes_started_apart_read_the_same_cluster_time() {
        let epoch = unix_now_ns() - 5_000_000_000;
        let a = Clock::new(Some(epoch));
        std::thread::sleep(std::time::Duration::from_millis(30));
        let b = Clock::new(Some(epoch));
        let (ta, tb) = (a.now_ns(), b.now_ns());
        // Both about 5.03 s; a node-local zero would put b 30 ms behind a.
        assert!(ta >= 5_000_000_000 && tb >= 5_000_000_000, "{ta} {tb}");
        assert!(ta.abs_diff(tb) < 10_000_000, "{ta} {tb}");
    }

    #[test]
    fn a_node_on_its_own_counts_from_its_start() {
        assert!(Clock::new(None).now_ns() < 1_000_000_000);
    }
}
