//! Lookup-only hash maps and slabs with a fixed hasher.
//!
//! `DetMap` wraps std's `HashMap` with a deterministic hasher and exposes no iteration, so no
//! hash order can leak into a run. `Slab` hands out generation-checked ids for pending work.

#![allow(clippy::disallowed_types)] // the one place HashMap is allowed: wrapped, never iterated

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// rustc's Fx hash: fast on integer keys, fixed across processes.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    // Integers are folded in by value, never by their native byte order, so hashes (the
    // event-trace hash among them) are the same on every platform.
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A hash map you may look things up in but never iterate.
#[derive(Clone, Debug)]
pub struct DetMap<K, V> {
    inner: HashMap<K, V, BuildHasherDefault<FxHasher>>,
}

impl<K, V> Default for DetMap<K, V> {
    fn default() -> Self {
        DetMap {
            inner: HashMap::default(),
        }
    }
}

impl<K: Hash + Eq, V> DetMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(&self, k: &K) -> Option<&V> {
        self.inner.get(k)
    }
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.inner.get_mut(k)
    }
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.inner.insert(k, v)
    }
    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.inner.remove(k)
    }
    pub fn len(&self) -> usize {
        self.inner.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    pub fn clear(&mut self) {
        self.inner.clear()
    }
}

/// Pending work indexed by generation-checked ids: a stale id (completed, then reused) misses.
#[derive(Clone, Debug)]
pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `v`; the id is `generation << 32 | slot`.
    pub fn insert(&mut self, v: T) -> u64 {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            debug_assert!(slot.1.is_none());
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(v);
            (u64::from(slot.0) << 32) | u64::from(i)
        } else {
            let i = u32::try_from(self.slots.len()).expect("slab under 2^32 entries");
            self.slots.push((0, Some(v)));
            u64::from(i)
        }
    }

    fn locate(&self, id: u64) -> Option<usize> {
        let i = (id & 0xffff_ffff) as usize;
        let generation = (id >> 32) as u32;
        match self.slots.get(i) {
            Some((g, Some(_))) if *g == generation => Some(i),
            _ => None,
        }
    }

    pub fn get(&self, id: u64) -> Option<&T> {
        self.locate(id).and_then(|i| self.slots[i].1.as_ref())
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.locate(id).and_then(|i| self.slots[i].1.as_mut())
    }

    /// Every live entry as (id, value), in slot order (deterministic).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (g, v))| v.as_ref().map(|v| ((u64::from(*g) << 32) | i as u64, v)))
    }

    pub fn remove(&mut self, id: u64) -> Option<T> {
        let i = self.locate(id)?;
        self.free.push(i as u32);
        self.len -= 1;
        self.slots[i].1.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_slab_id_misses_after_its_slot_is_reused() {
        let mut s = Slab::new();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_ne!(a, b);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(b), Some(&"b"));
    }
}
