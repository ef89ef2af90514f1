//! Key slots: CRC16-XMODEM of the key (or of its hash tag) mod 16384, as Redis Cluster does.

pub const SLOTS: u16 = 16_384;

/// CRC16-XMODEM (poly 0x1021, init 0), the checksum Redis Cluster uses.
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a key: only the part between the first `{` and the next `}` is hashed when it
/// is non-empty (a hash tag), so related keys can share a slot.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&c| c == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&c| c == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16_xmodem(tagged.unwrap_or(key)) % SLOTS
}

/// The slot of a user's session key `session:{<user>}` (the user id is the hash tag).
pub fn user_slot(user: u64) -> u16 {
    let mut digits = [0u8; 20];
    let mut n = user;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    crc16_xmodem(&digits[i..]) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_user_slot_is_the_slot_of_its_session_key() {
        for user in [0u64, 7, 1000, 123_456_789, u64::MAX] {
            assert_eq!(
                user_slot(user),
                key_slot(format!("session:{{{user}}}").as_bytes())
            );
        }
    }

    #[test]
    fn crc16_matches_the_redis_test_vector() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tags_follow_the_redis_cluster_spec() {
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16_xmodem(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    proptest! {
        #[test]
        fn every_key_maps_to_a_slot_in_range(key in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert!(key_slot(&key) < SLOTS);
        }
    }
}
