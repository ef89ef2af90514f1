//! nginx `limit_req`: a leaky bucket counted as "excess" requests above the rate.
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

#[cfg(test)]
mod tests {
    use super::*;
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
