//! The per-node metrics registry.
//!
//! A component registers a metric once (at `start`) and keeps the returned id; updates are then
//! a vector index. Names follow Prometheus habits with the unit last (`queue_wait_ns`,
//! `requests_total`). The registry belongs to the node, not the component: it survives crashes,
//! as an external scraper's view would.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterId(u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GaugeId(u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistId(u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelId(u32);

/// Largest value a histogram records exactly (one simulated hour in ns); larger values saturate.
pub const HIST_MAX: u64 = 3_600_000_000_000;

#[derive(Clone, Debug)]
pub enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Box<Histogram<u64>>),
    /// A step function of time, integrated: its time-average is `area / elapsed`.
    Level {
        value: i64,
        since_ns: u64,
        area: f64,
        start_ns: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: Value,
}

#[derive(Clone, Debug, Default)]
pub struct Metrics {
    entries: Vec<Entry>,
    by_name: BTreeMap<&'static str, u32>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn register(&mut self, name: &'static str, unit: &'static str, value: Value) -> u32 {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        let i = u32::try_from(self.entries.len()).expect("fewer than 2^32 metrics");
        self.entries.push(Entry { name, unit, value });
        self.by_name.insert(name, i);
        i
    }

    /// A counter; its unit is `ns` when the name says so (`..._ns_sum`), else `count`.
    pub fn counter(&mut self, name: &'static str) -> CounterId {
        let unit = if name.ends_with("_ns_sum") || name.ends_with("_ns") {
            "ns"
        } else {
            "count"
        };
        CounterId(self.register(name, unit, Value::Counter(0)))
    }

    pub fn gauge(&mut self, name: &'static str, unit: &'static str) -> GaugeId {
        GaugeId(self.register(name, unit, Value::Gauge(0.0)))
    }

    /// A histogram of durations in nanoseconds (2 significant digits, up to [`HIST_MAX`]).
    pub fn histogram(&mut self, name: &'static str) -> HistId {
        let h = Histogram::new_with_bounds(1, HIST_MAX, 2).expect("valid histogram bounds");
        HistId(self.register(name, "ns", Value::Histogram(Box::new(h))))
    }

    pub fn level(&mut self, name: &'static str, unit: &'static str) -> LevelId {
        let v = Value::Level {
            value: 0,
            since_ns: 0,
            area: 0.0,
            start_ns: 0,
        };
        LevelId(self.register(name, unit, v))
    }

    pub fn add(&mut self, id: CounterId, n: u64) {
        if let Value::Counter(c) = &mut self.entries[id.0 as usize].value {
            *c += n;
        }
    }

    pub fn set(&mut self, id: GaugeId, v: f64) {
        if let Value::Gauge(g) = &mut self.entries[id.0 as usize].value {
            *g = v;
        }
    }

    pub fn record(&mut self, id: HistId, v: u64) {
        if let Value::Histogram(h) = &mut self.entries[id.0 as usize].value {
            h.saturating_record(v);
        }
    }

    /// Changes a level by `delta` at time `now_ns`, integrating the old value up to now.
    pub fn shift(&mut self, id: LevelId, now_ns: u64, delta: i64) {
        if let Value::Level {
            value,
            since_ns,
            area,
            ..
        } = &mut self.entries[id.0 as usize].value
        {
            let dt = now_ns.saturating_sub(*since_ns);
            *area += *value as f64 * dt as f64;
            *since_ns = now_ns.max(*since_ns);
            *value += delta;
        }
    }

    /// Sets a level to `to` at time `now_ns` (a shift by the difference).
    pub fn set_level(&mut self, id: LevelId, now_ns: u64, to: i64) {
        if let Value::Level { value, .. } = self.entries[id.0 as usize].value {
            self.shift(id, now_ns, to - value);
        }
    }

    /// When a level's integral began (its registration, or the last reset).
    pub fn level_start(&self, name: &str) -> Option<u64> {
        match self.entries.get(*self.by_name.get(name)? as usize)?.value {
            Value::Level { start_ns, .. } => Some(start_ns),
            _ => None,
        }
    }

    /// A level's value now.
    pub fn level_value(&self, name: &str) -> Option<i64> {
        match self.entries.get(*self.by_name.get(name)? as usize)?.value {
            Value::Level { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn counter_value(&self, name: &str) -> Option<u64> {
        match self.entries.get(*self.by_name.get(name)? as usize)?.value {
            Value::Counter(c) => Some(c),
            _ => None,
        }
    }

    pub fn histogram_value(&self, name: &str) -> Option<&Histogram<u64>> {
        match &self.entries.get(*self.by_name.get(name)? as usize)?.value {
            Value::Histogram(h) => Some(h),
            _ => None,
        }
    }

    /// Time-average of a level over [start, now_ns].
    pub fn level_mean(&self, name: &str, now_ns: u64) -> Option<f64> {
        match self.entries.get(*self.by_name.get(name)? as usize)?.value {
            Value::Level {
                value,
                since_ns,
                area,
                start_ns,
            } => {
                let total = area + value as f64 * now_ns.saturating_sub(since_ns) as f64;
                let elapsed = now_ns.saturating_sub(start_ns);
                Some(if elapsed == 0 {
                    0.0
                } else {
                    total / elapsed as f64
                })
            }
            _ => None,
        }
    }

    /// A crash: the process's in-memory state is gone, so every level drops to zero at
    /// `now_ns` (what it held so far stays integrated).
    pub fn zero_levels(&mut self, now_ns: u64) {
        for e in &mut self.entries {
            if let Value::Level {
                value,
                since_ns,
                area,
                ..
            } = &mut e.value
            {
                *area += *value as f64 * now_ns.saturating_sub(*since_ns) as f64;
                *since_ns = now_ns.max(*since_ns);
                *value = 0;
            }
        }
    }

    /// The integral of a level over [start, now_ns] (value x ns).
    pub fn level_area(&self, name: &str, now_ns: u64) -> Option<f64> {
        match self.entries.get(*self.by_name.get(name)? as usize)?.value {
            Value::Level {
                value,
                since_ns,
                area,
                ..
            } => Some(area + value as f64 * now_ns.saturating_sub(since_ns) as f64),
            _ => None,
        }
    }

    /// Forgets everything measured before `now_ns` (end of warm-up); levels keep their value.
    pub fn reset(&mut self, now_ns: u64) {
        for e in &mut self.entries {
            match &mut e.value {
                Value::Counter(c) => *c = 0,
                Value::Gauge(_) => {}
                Value::Histogram(h) => h.reset(),
                Value::Level {
                    since_ns,
                    area,
                    start_ns,
                    ..
                } => {
                    *since_ns = now_ns;
                    *start_ns = now_ns;
                    *area = 0.0;
                }
            }
        }
    }

    /// Entries in registration order (deterministic).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// Turns a registry into a scrape's samples, as a node's process answers a monitor (the
/// simulator's kernel and the production driver alike): histograms as their count and the
/// 99th percentile of what was recorded since the previous scrape.
#[derive(Clone, Debug, Default)]
pub struct Scraper {
    prev: Vec<Option<Histogram<u64>>>,
}

impl Scraper {
    pub fn samples(&mut self, metrics: &Metrics) -> Vec<crate::monitor::Sample> {
        use crate::monitor::{Part, Sample};
        let entries = metrics.entries();
        let mut out = Vec::with_capacity(entries.len() + 8);
        self.prev.resize(entries.len(), None);
        for (e, prev) in entries.iter().zip(self.prev.iter_mut()) {
            match &e.value {
                Value::Counter(c) => out.push(Sample::new(e.name, Part::Value, *c as f64)),
                Value::Gauge(g) => out.push(Sample::new(e.name, Part::Value, *g)),
                Value::Level { value, .. } => {
                    out.push(Sample::new(e.name, Part::Value, *value as f64))
                }
                Value::Histogram(h) => {
                    out.push(Sample::new(e.name, Part::Count, h.len() as f64));
                    // Over the interval: what was recorded since the last scrape (all of it
                    // after a reset left fewer than then).
                    let mut window = (**h).clone();
                    if let Some(p) = prev.as_ref() {
                        if window.subtract(p).is_err() {
                            window = (**h).clone();
                        }
                    }
                    if !window.is_empty() {
                        let p99 = window.value_at_quantile(0.99) as f64 / 1e6;
                        out.push(Sample::new(e.name, Part::P99Ms, p99));
                    }
                    *prev = Some((**h).clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_drops_levels_to_zero_and_keeps_what_they_integrated() {
        let mut m = Metrics::new();
        let l = m.level("in_system", "requests");
        m.shift(l, 0, 3);
        m.zero_levels(10);
        assert_eq!(m.level_area("in_system", 20), Some(30.0));
        m.shift(l, 20, 1);
        assert_eq!(m.level_area("in_system", 30), Some(40.0));
    }

    #[test]
    fn registering_a_name_twice_returns_the_same_metric() {
        let mut m = Metrics::new();
        let a = m.counter("x_total");
        let b = m.counter("x_total");
        m.add(a, 2);
        m.add(b, 3);
        assert_eq!(m.counter_value("x_total"), Some(5));
    }

    #[test]
    fn a_histogram_of_zeros_has_a_mean_of_zero() {
        let mut m = Metrics::new();
        let h = m.histogram("wait_ns");
        for _ in 0..10 {
            m.record(h, 0);
        }
        let v = m.histogram_value("wait_ns").unwrap();
        assert_eq!((v.len(), v.mean(), v.max()), (10, 0.0, 0));
    }

    #[test]
    fn a_level_averages_over_time() {
        let mut m = Metrics::new();
        let l = m.level("in_system", "count");
        m.shift(l, 0, 2); // 2 from 0..10
        m.shift(l, 10, -1); // 1 from 10..20
        assert_eq!(m.level_mean("in_system", 20), Some(1.5));
    }
}
