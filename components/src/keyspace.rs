//! Which shard owns a key: the one place both the services (routing) and the stores (resharding
//! digests) ask.
//!
//! Shards split the 64-bit keyspace id (a hash of the key) into equal ranges, as Vitess does:
//! with 2 shards, `-80` and `80-`. A split into `n` shards keeps each key's keyspace id, so a
//! key moves from range `i` of the old layout to the range of the new one that contains it.

use crate::rng::mix64;

/// The keyspace id of `key`: a hash spreading keys evenly over `u64`.
pub fn keyspace_id(key: u64) -> u64 {
    mix64(key)
}

/// Which of `shards` equal keyspace ranges owns `key` (`shards >= 1`).
pub fn shard_for(key: u64, shards: usize) -> usize {
    debug_assert!(shards >= 1, "a keyspace has at least one shard");
    ((u128::from(keyspace_id(key)) * shards as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_evenly_over_four_shards() {
        let mut counts = [0u32; 4];
        for k in 0..40_000u64 {
            counts[shard_for(k, 4)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn one_shard_owns_every_key() {
        assert!((0..1_000u64).all(|k| shard_for(k, 1) == 0));
    }
}
