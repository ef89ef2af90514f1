//! The event trace: a running hash of every processed event, and optionally the events
//! themselves, so that two runs can be compared and their first divergence reported.

use minitwin_components::detmap::FxHasher;
use std::hash::{Hash, Hasher};

/// One recorded event (only kept when recording is on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    pub index: u64,
    pub at_ns: u64,
    pub digest: u64,
    pub summary: String,
}

#[derive(Clone, Debug, Default)]
pub struct Trace {
    hash: u64,
    count: u64,
    recorded: Option<Vec<TraceEntry>>,
}

impl Trace {
    pub fn new(record: bool) -> Trace {
        Trace {
            hash: 0x6a09_e667_f3bc_c908,
            count: 0,
            recorded: record.then(Vec::new),
        }
    }

    /// Folds one event into the hash; `describe` runs only when recording.
    #[inline]
    pub fn event<T: Hash>(&mut self, at_ns: u64, what: &T, describe: impl FnOnce() -> String) {
        let mut h = FxHasher::default();
        at_ns.hash(&mut h);
        what.hash(&mut h);
        let digest = h.finish();
        self.hash = (self.hash.rotate_left(17) ^ digest).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if let Some(rec) = &mut self.recorded {
            rec.push(TraceEntry {
                index: self.count,
                at_ns,
                digest,
                summary: describe(),
            });
        }
        self.count += 1;
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn entries(&self) -> Option<&[TraceEntry]> {
        self.recorded.as_deref()
    }
}

/// Where two recorded traces first differ: (index, left entry, right entry); None if equal.
pub fn first_divergence(
    a: &[TraceEntry],
    b: &[TraceEntry],
) -> Option<(usize, Option<TraceEntry>, Option<TraceEntry>)> {
    let n = a.len().max(b.len());
    (0..n).find_map(|i| {
        let (x, y) = (a.get(i), b.get(i));
        let same =
            matches!((x, y), (Some(x), Some(y)) if x.at_ns == y.at_ns && x.digest == y.digest);
        (!same).then(|| (i, x.cloned(), y.cloned()))
    })
}
