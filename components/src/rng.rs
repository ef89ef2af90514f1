//! Random streams and the distributions drawn from them.
//!
//! Each node owns one ChaCha8 stream derived from the run seed and the node's name
//! ([`stream_seed`]), so adding a node never shifts another node's draws, and two variants run
//! on the same seed see common random numbers.

use crate::config::{self, Checked};
use crate::math;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Deserialize;

/// A node's random stream.
#[derive(Clone, Debug)]
pub struct Rng {
    inner: ChaCha8Rng,
}

/// FNV-1a over bytes: stable across platforms and releases (unlike std's hashers).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64 finalizer: spreads a 64-bit value over all bits.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of the stream named `name` in the run seeded with `run_seed`.
pub fn stream_seed(run_seed: u64, name: &str) -> [u8; 32] {
    let mut seed = [0u8; 32];
    let mut state = run_seed ^ fnv1a(name.as_bytes());
    for chunk in seed.chunks_mut(8) {
        state = mix64(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    seed
}

impl Rng {
    /// The stream named `name` within the run `run_seed`.
    pub fn stream(run_seed: u64, name: &str) -> Rng {
        Rng {
            inner: ChaCha8Rng::from_seed(stream_seed(run_seed, name)),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    pub fn unit_open0(&mut self) -> f64 {
        1.0 - self.unit()
    }

    /// Uniform integer in [0, n). `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        // Lemire's multiply-shift; the tiny bias is irrelevant at these n.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Exponential with the given mean (ziggurat: one 64-bit draw and no logarithm in about
    /// 99 % of calls).
    pub fn exp(&mut self, mean: f64) -> f64 {
        let t = ziggurat::exponential();
        loop {
            let bits = self.next_u64();
            let i = (bits & 0xff) as usize;
            let x = unit_of(bits) * t.x[i];
            if x < t.x[i + 1] {
                return x * mean;
            }
            if i == 0 {
                return (ziggurat::EXP_R - math::ln(self.unit_open0())) * mean;
            }
            if t.f[i + 1] + (t.f[i] - t.f[i + 1]) * self.unit() < math::exp(-x) {
                return x * mean;
            }
        }
    }

    /// Standard normal (ziggurat, with Marsaglia's tail).
    pub fn normal(&mut self) -> f64 {
        let t = ziggurat::normal();
        loop {
            let bits = self.next_u64();
            let i = (bits & 0xff) as usize;
            let u = 2.0 * unit_of(bits) - 1.0;
            let x = u * t.x[i];
            if x.abs() < t.x[i + 1] {
                return x;
            }
            if i == 0 {
                let r = ziggurat::NORMAL_R;
                loop {
                    let a = -math::ln(self.unit_open0()) / r;
                    let b = -math::ln(self.unit_open0());
                    if 2.0 * b >= a * a {
                        return if u < 0.0 { -(r + a) } else { r + a };
                    }
                }
            }
            if t.f[i + 1] + (t.f[i] - t.f[i + 1]) * self.unit() < math::exp(-x * x / 2.0) {
                return x;
            }
        }
    }
}

/// The top 53 bits of `bits` as a uniform in [0, 1) (the low 8 pick the ziggurat layer).
#[inline]
fn unit_of(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Ziggurat tables (Marsaglia and Tsang, 2000) with 256 layers of equal area, computed once
/// with [`crate::math`], so they are the same bits everywhere.
mod ziggurat {
    use crate::math;
    use std::sync::OnceLock;

    /// Layer edges `x[0] > x[1] = R > ... > x[256] = 0`, and the density at each.
    pub struct Tables {
        pub x: [f64; 257],
        pub f: [f64; 257],
    }

    pub const EXP_R: f64 = 7.697_117_470_131_05;
    const EXP_V: f64 = 0.003_949_659_822_581_557;
    pub const NORMAL_R: f64 = 3.654_152_885_361_009;
    const NORMAL_V: f64 = 0.004_928_673_233_99;

    fn build(r: f64, v: f64, pdf: fn(f64) -> f64, inverse: fn(f64) -> f64) -> Tables {
        let mut x = [0.0; 257];
        x[0] = v / pdf(r);
        x[1] = r;
        for i in 2..256 {
            x[i] = inverse(pdf(x[i - 1]) + v / x[i - 1]);
        }
        x[256] = 0.0;
        let mut f = [0.0; 257];
        for i in 0..257 {
            f[i] = pdf(x[i]);
        }
        Tables { x, f }
    }

    pub fn exponential() -> &'static Tables {
        static T: OnceLock<Tables> = OnceLock::new();
        T.get_or_init(|| build(EXP_R, EXP_V, |x| math::exp(-x), |y| -math::ln(y)))
    }

    pub fn normal() -> &'static Tables {
        static T: OnceLock<Tables> = OnceLock::new();
        T.get_or_init(|| {
            build(
                NORMAL_R,
                NORMAL_V,
                |x| math::exp(-x * x / 2.0),
                |y| (-2.0 * math::ln(y)).sqrt(),
            )
        })
    }
}

/// A distribution of durations, in milliseconds in scenario files, sampled in nanoseconds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Always `ms`.
    Constant { ms: f64 },
    /// Uniform in [min_ms, max_ms].
    Uniform { min_ms: f64, max_ms: f64 },
    /// Exponential with mean `mean_ms` (memoryless service: M/M/c).
    Exponential { mean_ms: f64 },
    /// `min_ms` plus an exponential with mean `extra_mean_ms` (network hop with a floor).
    ShiftedExp { min_ms: f64, extra_mean_ms: f64 },
    /// Log-normal with median `median_ms` and shape `sigma` (heavy-ish tail).
    Lognormal { median_ms: f64, sigma: f64 },
}

impl Dist {
    pub fn constant_ms(ms: f64) -> Dist {
        Dist::Constant { ms }
    }

    /// Draws one duration in nanoseconds.
    pub fn sample_ns(&self, rng: &mut Rng) -> u64 {
        let ms = match *self {
            Dist::Constant { ms } => ms,
            Dist::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * rng.unit(),
            Dist::Exponential { mean_ms } => rng.exp(mean_ms),
            Dist::ShiftedExp {
                min_ms,
                extra_mean_ms,
            } => min_ms + rng.exp(extra_mean_ms),
            Dist::Lognormal { median_ms, sigma } => median_ms * math::exp(sigma * rng.normal()),
        };
        ms_to_ns(ms)
    }

    /// The mean in milliseconds (for analytic oracles and reports).
    pub fn mean_ms(&self) -> f64 {
        match *self {
            Dist::Constant { ms } => ms,
            Dist::Uniform { min_ms, max_ms } => (min_ms + max_ms) / 2.0,
            Dist::Exponential { mean_ms } => mean_ms,
            Dist::ShiftedExp {
                min_ms,
                extra_mean_ms,
            } => min_ms + extra_mean_ms,
            Dist::Lognormal { median_ms, sigma } => median_ms * math::exp(sigma * sigma / 2.0),
        }
    }

    /// Every parameter is a finite duration of at most [`config::MAX_MS`] (the shape `sigma`
    /// at most 10), and a uniform's `min_ms <= max_ms`.
    pub fn validate(&self) -> Checked {
        match *self {
            Dist::Constant { ms } => config::ms("ms", ms, 0.0),
            Dist::Uniform { min_ms, max_ms } => {
                config::ms("min_ms", min_ms, 0.0)?;
                config::ms("max_ms", max_ms, 0.0)?;
                config::rule(min_ms <= max_ms, "max_ms", "must be >= min_ms")
            }
            Dist::Exponential { mean_ms } => config::ms("mean_ms", mean_ms, 0.0),
            Dist::ShiftedExp {
                min_ms,
                extra_mean_ms,
            } => {
                config::ms("min_ms", min_ms, 0.0)?;
                config::ms("extra_mean_ms", extra_mean_ms, 0.0)
            }
            Dist::Lognormal { median_ms, sigma } => {
                config::ms("median_ms", median_ms, 0.0)?;
                config::range("sigma", sigma, 0.0, 10.0)
            }
        }
    }
}

/// Milliseconds (possibly fractional) to nanoseconds, saturating.
pub fn ms_to_ns(ms: f64) -> u64 {
    if ms <= 0.0 {
        0
    } else {
        // `as` saturates at u64::MAX; adding a half rounds (round() is slower and only differs
        // at exact halves).
        (ms * 1e6 + 0.5) as u64
    }
}

/// Zipf(alpha) over ranks 1..=n by rejection-inversion (Hörmann and Derflinger, 1996):
/// O(1) time and memory per draw whatever n.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    alpha: f64,
    h_x1: f64,
    h_n: f64,
    s: f64,
    /// For populations up to [`ALIAS_MAX_N`]: Vose's alias table, O(1) draws without
    /// logarithms (12 bytes per rank).
    alias: Option<Alias>,
}

/// Populations up to this size draw from an alias table; larger ones by rejection-inversion.
pub const ALIAS_MAX_N: u64 = 1 << 20;

#[derive(Clone, Debug)]
struct Alias {
    /// Per slot `i`: the chance (scaled to 2^32) of keeping rank `i + 1` in the high half, the
    /// alias's index in the low half: one load per draw.
    slots: Vec<u64>,
}

impl Alias {
    /// Vose's method over weights `w`.
    fn new(w: &[f64]) -> Alias {
        let n = w.len();
        let total: f64 = w.iter().sum();
        let mut keep: Vec<f64> = w.iter().map(|x| x * n as f64 / total).collect();
        let mut alias = vec![0u32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| keep[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            alias[s] = l as u32;
            keep[l] -= 1.0 - keep[s];
            if keep[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for i in small.into_iter().chain(large) {
            keep[i] = 1.0; // rounding leftovers
        }
        let scale = |k: f64| ((k * 4_294_967_296.0).min(4_294_967_295.0)) as u64;
        let slots = keep
            .iter()
            .zip(&alias)
            .map(|(&k, &a)| (scale(k) << 32) | u64::from(a))
            .collect();
        Alias { slots }
    }

    /// One 64-bit draw: its high half picks the slot, its low half tosses the coin.
    fn sample(&self, rng: &mut Rng) -> u64 {
        let r = rng.next_u64();
        let i = (((r >> 32) * self.slots.len() as u64) >> 32) as usize;
        let slot = self.slots[i];
        if (r & 0xffff_ffff) < (slot >> 32) {
            i as u64 + 1
        } else {
            (slot & 0xffff_ffff) + 1
        }
    }
}

impl Zipf {
    /// `n >= 1`, `alpha > 0`.
    pub fn new(n: u64, alpha: f64) -> Zipf {
        assert!(n >= 1 && alpha > 0.0, "Zipf needs n >= 1 and alpha > 0");
        let n = n as f64;
        let mut z = Zipf {
            n,
            alpha,
            h_x1: 0.0,
            h_n: 0.0,
            s: 0.0,
            alias: None,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(n + 0.5);
        z.s = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        if n <= ALIAS_MAX_N as f64 {
            let weights: Vec<f64> = (1..=n as u64).map(|k| z.h(k as f64)).collect();
            z.alias = Some(Alias::new(&weights));
        }
        z
    }

    fn h(&self, x: f64) -> f64 {
        math::exp(-self.alpha * math::ln(x))
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = math::ln(x);
        helper2((1.0 - self.alpha) * log_x) * log_x
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let mut t = x * (1.0 - self.alpha);
        if t < -1.0 {
            t = -1.0;
        }
        math::exp(helper1(t) * x)
    }

    /// A rank in 1..=n; rank 1 is the most popular.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        if let Some(a) = &self.alias {
            return a.sample(rng);
        }
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// log(1+x)/x, stable near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        math::ln_1p(x) / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (exp(x)-1)/x, stable near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        math::exp_m1(x) / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_with_different_names_differ_and_same_names_repeat() {
        let mut a = Rng::stream(7, "store-0");
        let mut b = Rng::stream(7, "store-0");
        let mut c = Rng::stream(7, "store-1");
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn exponential_mean_is_close_to_its_parameter() {
        let mut rng = Rng::stream(1, "t");
        let d = Dist::Exponential { mean_ms: 5.0 };
        let n = 200_000;
        let sum: u64 = (0..n).map(|_| d.sample_ns(&mut rng)).sum();
        let mean_ms = sum as f64 / n as f64 / 1e6;
        assert!((mean_ms - 5.0).abs() < 0.05, "mean {mean_ms}");
    }

    #[test]
    fn exponential_tail_and_variance_are_right() {
        let mut rng = Rng::stream(2, "tail");
        let n = 400_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.exp(1.0)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            (mean - 1.0).abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        // P(X > 3) = e^-3 and P(X > 8) = e^-8: the tail beyond the last layer (7.7) too.
        let over = |t: f64| xs.iter().filter(|&&x| x > t).count() as f64 / n as f64;
        assert!((over(3.0) - math::exp(-3.0)).abs() < 0.002, "{}", over(3.0));
        assert!(over(8.0) > 0.0 && over(8.0) < 0.001, "{}", over(8.0));
    }

    #[test]
    fn normal_moments_and_tails_are_right() {
        let mut rng = Rng::stream(4, "normal");
        let n = 400_000;
        let zs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = zs.iter().sum::<f64>() / n as f64;
        let var = zs.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "{mean} {var}"
        );
        let over = |t: f64| zs.iter().filter(|&&z| z.abs() > t).count() as f64 / n as f64;
        // Two-sided tails: 4.55 % beyond 2, 0.27 % beyond 3, 0.0063 % beyond 4 (past R).
        assert!((over(2.0) - 0.0455).abs() < 0.002, "{}", over(2.0));
        assert!((over(3.0) - 0.0027).abs() < 0.0004, "{}", over(3.0));
        assert!(over(4.0) > 0.0 && over(4.0) < 0.0002, "{}", over(4.0));
    }

    #[test]
    fn the_ziggurat_layers_close_at_zero() {
        for t in [ziggurat::exponential(), ziggurat::normal()] {
            assert!(t.x.windows(2).all(|w| w[0] > w[1]), "edges decrease");
            assert!(t.x[255] > 0.0 && t.x[255] < 0.25, "{}", t.x[255]);
        }
    }

    #[test]
    fn zipf_frequencies_follow_the_power_law() {
        let mut rng = Rng::stream(3, "zipf");
        let (n, alpha) = (1000u64, 1.0);
        let mut z = Zipf::new(n, alpha);
        assert!(z.alias.is_some());
        power_law(&z, &mut rng, n, alpha);
        z.alias = None; // the same law by rejection-inversion
        power_law(&z, &mut rng, n, alpha);
    }

    fn power_law(z: &Zipf, rng: &mut Rng, n: u64, alpha: f64) {
        let mut counts = vec![0u64; n as usize + 1];
        let draws = 400_000;
        for _ in 0..draws {
            let k = z.sample(rng);
            assert!((1..=n).contains(&k));
            counts[k as usize] += 1;
        }
        let h: f64 = (1..=n).map(|i| math::powf(i as f64, -alpha)).sum();
        for rank in [1usize, 2, 10, 100] {
            let expect = draws as f64 * math::powf(rank as f64, -alpha) / h;
            let got = counts[rank] as f64;
            let sigma = expect.sqrt();
            assert!(
                (got - expect).abs() < 5.0 * sigma,
                "rank {rank}: {got} vs {expect}"
            );
        }
    }
}
