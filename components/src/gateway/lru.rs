//! An LRU cache of keys with an idle timeout and a freshness limit (nginx proxy_cache).
//!
//! O(1) per operation: a lookup-only map from key to slot, and an intrusive doubly linked list
//! over slots, most recently used at the head. Idle entries are dropped from the tail on insert
//! (nginx's cache manager) and on access.

use crate::detmap::DetMap;

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Slot {
    key: u64,
    prev: u32,
    next: u32,
    inserted_ns: u64,
    accessed_ns: u64,
}

#[derive(Clone, Debug)]
pub struct Lru {
    index: DetMap<u64, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    capacity: usize,
    inactive_ns: u64,
    valid_ns: u64,
}

impl Lru {
    pub fn new(capacity: usize, inactive_ns: u64, valid_ns: u64) -> Lru {
        assert!(capacity > 0, "an LRU needs room for one entry");
        Lru {
            index: DetMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            inactive_ns,
            valid_ns,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.slots[i as usize].prev, self.slots[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        self.slots[i as usize].prev = NIL;
        self.slots[i as usize].next = self.head;
        if self.head != NIL {
            self.slots[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn drop_slot(&mut self, i: u32) {
        self.unlink(i);
        let key = self.slots[i as usize].key;
        self.index.remove(&key);
        self.free.push(i);
    }

    fn expired(&self, i: u32, now_ns: u64) -> bool {
        let s = &self.slots[i as usize];
        now_ns.saturating_sub(s.accessed_ns) > self.inactive_ns
            || now_ns.saturating_sub(s.inserted_ns) > self.valid_ns
    }

    /// True on a hit (the entry is fresh and was used within the idle timeout).
    pub fn get(&mut self, key: u64, now_ns: u64) -> bool {
        let Some(&i) = self.index.get(&key) else {
            return false;
        };
        if self.expired(i, now_ns) {
            self.drop_slot(i);
            return false;
        }
        self.slots[i as usize].accessed_ns = now_ns;
        self.unlink(i);
        self.push_front(i);
        true
    }

    /// Stores `key` as fresh at `now_ns`, evicting idle entries and then the least recently used.
    pub fn insert(&mut self, key: u64, now_ns: u64) {
        if let Some(&i) = self.index.get(&key) {
            let s = &mut self.slots[i as usize];
            s.inserted_ns = now_ns;
            s.accessed_ns = now_ns;
            self.unlink(i);
            self.push_front(i);
            return;
        }
        while self.tail != NIL && self.expired(self.tail, now_ns) {
            self.drop_slot(self.tail);
        }
        if self.index.len() >= self.capacity {
            self.drop_slot(self.tail);
        }
        let slot = Slot {
            key,
            prev: NIL,
            next: NIL,
            inserted_ns: now_ns,
            accessed_ns: now_ns,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, i);
        self.push_front(i);
    }

    pub fn remove(&mut self, key: u64) {
        if let Some(&i) = self.index.get(&key) {
            self.drop_slot(i);
        }
    }

    /// Keys from most to least recently used (tests and reports).
    pub fn keys(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.len());
        let mut i = self.head;
        while i != NIL {
            out.push(self.slots[i as usize].key);
            i = self.slots[i as usize].next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_entry_idle_longer_than_inactive_misses() {
        let mut c = Lru::new(10, 100, 1_000);
        c.insert(1, 0);
        assert!(c.get(1, 100));
        assert!(!c.get(1, 201));
        assert!(c.is_empty());
    }

    #[test]
    fn a_stale_entry_misses_even_when_used_often() {
        let mut c = Lru::new(10, 100, 250);
        c.insert(1, 0);
        assert!(c.get(1, 90));
        assert!(c.get(1, 180));
        assert!(!c.get(1, 260));
    }

    proptest! {
        /// The cache behaves as a simple model: a list ordered by recency, capped at capacity.
        #[test]
        fn lru_matches_a_vector_model(ops in proptest::collection::vec((0u8..2, 0u64..12), 1..300), cap in 1usize..6) {
            let mut c = Lru::new(cap, u64::MAX / 4, u64::MAX / 4);
            let mut model: Vec<u64> = Vec::new(); // most recent first
            for (t, (op, key)) in ops.into_iter().enumerate() {
                let now = t as u64;
                if op == 0 {
                    let hit = c.get(key, now);
                    let pos = model.iter().position(|&k| k == key);
                    prop_assert_eq!(hit, pos.is_some());
                    if let Some(p) = pos { model.remove(p); model.insert(0, key); }
                } else {
                    c.insert(key, now);
                    if let Some(p) = model.iter().position(|&k| k == key) { model.remove(p); }
                    else if model.len() == cap { model.pop(); }
                    model.insert(0, key);
                }
                prop_assert_eq!(c.keys(), model.clone());
            }
        }
    }
}
