//! nginx `limit_req`: a leaky bucket counted as "excess" requests above the rate, one per key
//! of the zone ([`Zone`]).
//!
//! On each request: excess = max(0, excess - rate * elapsed + 1) (the first request starts at 0).
//! Above `burst` the request is
//! rejected (state unchanged). Otherwise it passes at once with `nodelay`, or is delayed by
//! excess / rate so that it conforms to the rate.

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Pass,
    Reject,
    Delay(u64),
}

#[derive(Clone, Debug)]
pub struct Limiter {
    rate_per_ns: f64,
    burst: f64,
    nodelay: bool,
    excess: f64,
    last_ns: Option<u64>,
}

impl Limiter {
    pub fn new(rate_per_s: f64, burst: f64, nodelay: bool) -> Limiter {
        assert!(rate_per_s > 0.0, "a rate limit needs a positive rate");
        Limiter {
            rate_per_ns: rate_per_s / 1e9,
            burst: burst.max(0.0),
            nodelay,
            excess: 0.0,
            last_ns: None,
        }
    }

    /// The bucket's excess left at `now_ns` (0 when drained).
    pub fn excess_at(&self, now_ns: u64) -> f64 {
        let elapsed = self.last_ns.map_or(0, |l| now_ns.saturating_sub(l)) as f64;
        (self.excess - self.rate_per_ns * elapsed).max(0.0)
    }

    pub fn admit(&mut self, now_ns: u64) -> Verdict {
        let Some(last) = self.last_ns else {
            self.last_ns = Some(now_ns);
            return Verdict::Pass;
        };
        let elapsed = now_ns.saturating_sub(last) as f64;
        let excess = (self.excess - self.rate_per_ns * elapsed + 1.0).max(0.0);
        if excess > self.burst {
            return Verdict::Reject;
        }
        self.excess = excess;
        self.last_ns = Some(now_ns);
        if self.nodelay || self.excess <= 0.0 {
            Verdict::Pass
        } else {
            Verdict::Delay((self.excess / self.rate_per_ns) as u64)
        }
    }
}

/// How long an idle, drained bucket stays in the zone (nginx removes a node idle for 60 s whose
/// excess has leaked away, up to two per lookup, from the least recently used end).
const EXPIRE_NS: u64 = 60_000_000_000;

/// A `limit_req_zone`: one [`Limiter`] per key, expired as nginx does.
#[derive(Clone, Debug)]
pub struct Zone {
    rate_per_s: f64,
    burst: f64,
    nodelay: bool,
    buckets: std::collections::BTreeMap<u64, (Limiter, u64)>,
    /// (last use, key): the least recently used first.
    lru: std::collections::BTreeSet<(u64, u64)>,
}

impl Zone {
    pub fn new(rate_per_s: f64, burst: f64, nodelay: bool) -> Zone {
        assert!(rate_per_s > 0.0, "a rate limit needs a positive rate");
        Zone {
            rate_per_s,
            burst,
            nodelay,
            buckets: std::collections::BTreeMap::new(),
            lru: std::collections::BTreeSet::new(),
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The verdict for a request of `key` at `now_ns`.
    pub fn admit(&mut self, key: u64, now_ns: u64) -> Verdict {
        self.expire(now_ns);
        let (rate, burst, nodelay) = (self.rate_per_s, self.burst, self.nodelay);
        let (limiter, last) = self
            .buckets
            .entry(key)
            .or_insert_with(|| (Limiter::new(rate, burst, nodelay), now_ns));
        self.lru.remove(&(*last, key));
        *last = now_ns;
        self.lru.insert((now_ns, key));
        limiter.admit(now_ns)
    }

    fn expire(&mut self, now_ns: u64) {
        for _ in 0..2 {
            let Some(&(last, key)) = self.lru.first() else {
                return;
            };
            let idle = now_ns.saturating_sub(last);
            let (limiter, _) = &self.buckets[&key];
            if idle < EXPIRE_NS || limiter.excess_at(now_ns) > 0.0 {
                return;
            }
            self.lru.remove(&(last, key));
            self.buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_of_a_zone_has_its_own_bucket_and_idle_ones_expire() {
        let mut z = Zone::new(1.0, 0.0, true);
        assert_eq!(z.admit(1, 0), Verdict::Pass);
        assert_eq!(z.admit(1, 0), Verdict::Reject);
        assert_eq!(
            z.admit(2, 0),
            Verdict::Pass,
            "another client, another bucket"
        );
        assert_eq!(z.len(), 2);
        let later = 61_000_000_000;
        assert_eq!(z.admit(3, later), Verdict::Pass);
        assert_eq!(z.len(), 1, "idle for 60 s and drained: both expired");
    }

    #[test]
    fn without_nodelay_a_burst_is_delayed_and_beyond_it_rejected() {
        // limit_req zone rate=10r/s burst=2 (no nodelay): the 2nd and 3rd wait 100 and 200 ms.
        let mut z = Zone::new(10.0, 2.0, false);
        let v: Vec<Verdict> = (0..4).map(|_| z.admit(7, 0)).collect();
        assert_eq!(
            v,
            vec![
                Verdict::Pass,
                Verdict::Delay(100_000_000),
                Verdict::Delay(200_000_000),
                Verdict::Reject
            ]
        );
    }
    use proptest::prelude::*;

    #[test]
    fn requests_at_exactly_the_rate_all_pass() {
        let mut l = Limiter::new(10.0, 0.0, true);
        for i in 0..100u64 {
            assert_eq!(l.admit(i * 100_000_000), Verdict::Pass);
        }
    }

    #[test]
    fn a_burst_beyond_the_allowance_is_rejected() {
        let mut l = Limiter::new(10.0, 3.0, true);
        let verdicts: Vec<Verdict> = (0..6).map(|_| l.admit(1_000)).collect();
        let passed = verdicts.iter().filter(|v| **v == Verdict::Pass).count();
        assert_eq!(passed, 4, "{verdicts:?}");
    }

    #[test]
    fn without_nodelay_burst_requests_are_paced() {
        let mut l = Limiter::new(10.0, 5.0, false);
        assert_eq!(l.admit(0), Verdict::Pass);
        assert_eq!(l.admit(0), Verdict::Delay(100_000_000));
        assert_eq!(l.admit(0), Verdict::Delay(200_000_000));
    }

    proptest! {
        /// Over any window the admitted count never exceeds rate * window + burst + 1.
        #[test]
        fn admitted_requests_respect_rate_plus_burst(gaps in proptest::collection::vec(0u64..50_000_000, 1..400), burst in 0u32..5) {
            let mut l = Limiter::new(20.0, f64::from(burst), true);
            let mut now = 0u64;
            let mut passed = 0u64;
            for g in gaps {
                now += g;
                if l.admit(now) == Verdict::Pass { passed += 1; }
            }
            let bound = 20.0 * now as f64 / 1e9 + f64::from(burst) + 1.0;
            prop_assert!(passed as f64 <= bound + 1e-9, "passed {} > bound {}", passed, bound);
        }
    }
}
