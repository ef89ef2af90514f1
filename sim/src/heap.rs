//! The kernel's event queue: a binary min-heap of (time, sequence, slot) keys whose pop picks
//! the smaller child without a branch.
//!
//! Event times arrive in no useful order, so a heap's child comparisons are coin flips that a
//! branch predictor loses half the time; `std::collections::BinaryHeap` branches on them, this
//! heap turns each into arithmetic. Ordering is exactly (time, sequence): sequences are unique,
//! so no two keys tie.

/// A queued event's key; the payload waits in the kernel's slabs under `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub at_ns: u64,
    pub seq: u64,
    pub slot: u32,
}

impl Key {
    #[inline(always)]
    fn order(&self) -> u128 {
        (u128::from(self.at_ns) << 64) | u128::from(self.seq)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Heap {
    v: Vec<Key>,
}

impl Heap {
    pub fn with_capacity(n: usize) -> Heap {
        Heap {
            v: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// The earliest key.
    #[inline]
    pub fn peek(&self) -> Option<&Key> {
        self.v.first()
    }

    #[inline]
    pub fn push(&mut self, key: Key) {
        let i = self.v.len();
        self.v.push(key);
        self.rise(i, key);
    }

    /// Moves `key` up from the hole at `i` to where it belongs.
    #[inline(always)]
    fn rise(&mut self, mut i: usize, key: Key) {
        let order = key.order();
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.v[parent].order() <= order {
                break;
            }
            self.v[i] = self.v[parent];
            i = parent;
        }
        self.v[i] = key;
    }

    /// Removes and returns the earliest key: the hole left at the top sinks to a leaf along the
    /// smaller children, then the last key rises into it (it usually belongs near the bottom).
    #[inline]
    pub fn pop(&mut self) -> Option<Key> {
        let last = self.v.pop()?;
        let n = self.v.len();
        if n == 0 {
            return Some(last);
        }
        let top = self.v[0];
        let mut i = 0;
        // While both children exist, pick the smaller without branching on the comparison.
        while 2 * i + 2 < n {
            let left = 2 * i + 1;
            let right_smaller = self.v[left + 1].order() < self.v[left].order();
            let child = left + usize::from(right_smaller);
            self.v[i] = self.v[child];
            i = child;
        }
        if 2 * i + 1 < n {
            self.v[i] = self.v[2 * i + 1];
            i = 2 * i + 1;
        }
        self.rise(i, last);
        Some(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the pushes and pops, keys come out in (time, sequence) order, as from a
        /// sorted list.
        #[test]
        fn keys_come_out_in_time_then_sequence_order(ops in proptest::collection::vec((any::<bool>(), 0u64..50), 1..400)) {
            let mut heap = Heap::default();
            let mut model: Vec<(u64, u64)> = Vec::new();
            for (seq, (push, at_ns)) in ops.into_iter().enumerate() {
                let seq = seq as u64;
                if push || model.is_empty() {
                    heap.push(Key { at_ns, seq, slot: seq as u32 });
                    model.push((at_ns, seq));
                } else {
                    model.sort_unstable();
                    let (at, s) = model.remove(0);
                    let k = heap.pop().unwrap();
                    prop_assert_eq!((k.at_ns, k.seq, k.slot), (at, s, s as u32));
                }
            }
            model.sort_unstable();
            for (at, s) in model {
                let k = heap.pop().unwrap();
                prop_assert_eq!((k.at_ns, k.seq), (at, s));
            }
            prop_assert!(heap.pop().is_none());
        }
    }
}
