//! The monitor's time-series store: one series per (target, metric, part); raw samples for
//! `raw_retention`, then folded into `step` means kept until `retention` (Prometheus keeps raw
//! blocks; long-term stores such as Thanos downsample to 5 min: this is that, in one place).

use super::msg::Part;
use std::collections::{BTreeMap, VecDeque};

/// A series' identity.
pub type Key = (u32, &'static str, Part);

#[derive(Clone, Debug, Default)]
pub struct Series {
    /// (time, value), oldest first.
    pub raw: VecDeque<(u64, f64)>,
    /// (bucket start, mean, samples), oldest first.
    pub down: VecDeque<(u64, f64, u32)>,
}

#[derive(Clone, Debug)]
pub struct Tsdb {
    raw_retention_ns: u64,
    step_ns: u64,
    retention_ns: u64,
    series: BTreeMap<Key, Series>,
    samples_total: u64,
}

impl Tsdb {
    pub fn new(raw_retention_ns: u64, step_ns: u64, retention_ns: u64) -> Tsdb {
        Tsdb {
            raw_retention_ns,
            step_ns: step_ns.max(1),
            retention_ns,
            series: BTreeMap::new(),
            samples_total: 0,
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn samples_total(&self) -> u64 {
        self.samples_total
    }

    /// Samples held now, raw and downsampled.
    pub fn samples_held(&self) -> usize {
        self.series
            .values()
            .map(|s| s.raw.len() + s.down.len())
            .sum()
    }

    pub fn insert(&mut self, key: Key, t_ns: u64, value: f64) {
        self.samples_total += 1;
        let (raw_keep, step, keep) = (self.raw_retention_ns, self.step_ns, self.retention_ns);
        let s = self.series.entry(key).or_default();
        s.raw.push_back((t_ns, value));
        while s.raw.front().is_some_and(|&(t, _)| t + raw_keep < t_ns) {
            let (t, v) = s.raw.pop_front().expect("a front");
            let bucket = t / step * step;
            match s.down.back_mut() {
                Some((b, mean, n)) if *b == bucket => {
                    *n += 1;
                    *mean += (v - *mean) / f64::from(*n);
                }
                _ => s.down.push_back((bucket, v, 1)),
            }
        }
        while s.down.front().is_some_and(|&(b, _, _)| b + keep < t_ns) {
            s.down.pop_front();
        }
    }

    /// Every series of (`name`, `part`), by target.
    pub fn of<'a>(
        &'a self,
        name: &'a str,
        part: Part,
    ) -> impl Iterator<Item = (u32, &'a Series)> + 'a {
        self.series
            .iter()
            .filter(move |((_, n, p), _)| *n == name && *p == part)
            .map(|((t, _, _), s)| (*t, s))
    }

    /// Every series, in key order.
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Series)> {
        self.series.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_samples_fold_into_step_means_and_leave_after_the_retention() {
        let s = 1_000_000_000;
        let mut db = Tsdb::new(60 * s, 300 * s, 900 * s);
        for i in 0..=100u64 {
            db.insert((0, "x", Part::Value), i * 15 * s, i as f64);
        }
        let (_, series) = db.of("x", Part::Value).next().unwrap();
        // Raw: the last minute (5 samples); downsampled: 300 s buckets within 900 s of now.
        assert_eq!(series.raw.len(), 5);
        assert!(series.raw.iter().all(|&(t, _)| t + 60 * s >= 1_500 * s));
        assert!(series
            .down
            .iter()
            .all(|&(b, _, _)| b + 900 * s >= 1_500 * s));
        let (b, mean, n) = series.down[0];
        assert_eq!((b, n), (600 * s, 20));
        assert_eq!(mean, (40..60).sum::<u64>() as f64 / 20.0);
        assert_eq!(db.samples_total(), 101);
    }
}
