//! Alerting rules with Prometheus semantics: an expression over the latest scrape, compared to
//! a threshold; true for `for` makes an alert go from pending to firing; false again resolves
//! it. And the anomaly detector: a rolling z-score of an expression against its recent past.

use super::msg::Part;
use super::tsdb::Tsdb;
use serde::Deserialize;
use std::collections::VecDeque;

/// How the targets' series combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    Sum,
    Max,
    Min,
    Avg,
    /// Per-second increase between the last two samples, summed (`sum(rate(x[...]))`); a
    /// counter that went down restarted from 0.
    Rate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<")]
    Below,
}

/// Which part of a metric (a histogram's count or p99).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PartName {
    #[default]
    Value,
    Count,
    P99Ms,
}

impl PartName {
    pub fn part(self) -> Part {
        match self {
            PartName::Value => Part::Value,
            PartName::Count => Part::Count,
            PartName::P99Ms => Part::P99Ms,
        }
    }
}

/// `agg(metric)`, over the samples of the scrape at `at_ns` (for a rate, and the one before).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expr {
    pub metric: String,
    #[serde(default)]
    pub part: PartName,
    pub agg: Agg,
}

impl Expr {
    /// The expression's value at the scrape of `at_ns`; None when no target has a sample then.
    pub fn eval(&self, db: &Tsdb, at_ns: u64) -> Option<f64> {
        let mut values = Vec::new();
        for (_, s) in db.of(&self.metric, self.part.part()) {
            let n = s.raw.len();
            let Some(&(t, v)) = s.raw.back() else {
                continue;
            };
            if t != at_ns {
                continue; // stale: the target did not answer that scrape
            }
            if self.agg == Agg::Rate {
                let Some(&(t0, v0)) = n.checked_sub(2).and_then(|i| s.raw.get(i)) else {
                    continue;
                };
                let dt = (t - t0) as f64 / 1e9;
                let increase = if v >= v0 { v - v0 } else { v };
                values.push(increase / dt.max(1e-9));
            } else {
                values.push(v);
            }
        }
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        Some(match self.agg {
            Agg::Sum | Agg::Rate => values.iter().sum(),
            Agg::Max => values.iter().copied().fold(f64::MIN, f64::max),
            Agg::Min => values.iter().copied().fold(f64::MAX, f64::min),
            Agg::Avg => values.iter().sum::<f64>() / n,
        })
    }
}

/// A threshold rule (`alert: NAME`, `expr: agg(metric) op threshold`, `for: for_s`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(flatten)]
    pub expr: Expr,
    pub op: Op,
    pub threshold: f64,
    #[serde(default)]
    pub for_s: f64,
    /// While firing, the autoscaler holds at least this many replicas more than it had when
    /// the alert fired (alert-driven scaling).
    pub scale_out_by: Option<u32>,
}

/// An anomaly detector: `agg(metric)` against the mean and deviation of its last `window`
/// normal values; `for_samples` evaluations beyond `z` deviations fire.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anomaly {
    pub name: String,
    #[serde(flatten)]
    pub expr: Expr,
    #[serde(default = "default_window")]
    pub window: u32,
    #[serde(default = "default_z")]
    pub z: f64,
    #[serde(default = "default_for_samples")]
    pub for_samples: u32,
    /// The deviation never counts as less than this fraction of the mean (a flat series
    /// would otherwise make any wobble an anomaly).
    #[serde(default = "default_min_std")]
    pub min_std_fraction: f64,
}

fn default_window() -> u32 {
    20
}
fn default_z() -> f64 {
    4.0
}
fn default_for_samples() -> u32 {
    2
}
fn default_min_std() -> f64 {
    0.05
}

/// An alert's state, as Prometheus shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Inactive,
    Pending { since_ns: u64 },
    Firing { since_ns: u64 },
}

/// A change of an alert's state: what the alert timeline records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Pending,
    Firing,
    Resolved,
    /// Pending, then false before `for` passed.
    Cleared,
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Transition::Pending => "pending",
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
            Transition::Cleared => "cleared",
        }
    }
}

/// Moves an alert's state by the condition's value now; returns the transition, if any.
pub fn step(state: &mut State, active: bool, now_ns: u64, for_ns: u64) -> Option<Transition> {
    match (*state, active) {
        (State::Inactive, true) if for_ns == 0 => {
            *state = State::Firing { since_ns: now_ns };
            Some(Transition::Firing)
        }
        (State::Inactive, true) => {
            *state = State::Pending { since_ns: now_ns };
            Some(Transition::Pending)
        }
        (State::Pending { since_ns }, true) if now_ns - since_ns >= for_ns => {
            *state = State::Firing { since_ns: now_ns };
            Some(Transition::Firing)
        }
        (State::Pending { .. }, false) => {
            *state = State::Inactive;
            Some(Transition::Cleared)
        }
        (State::Firing { .. }, false) => {
            *state = State::Inactive;
            Some(Transition::Resolved)
        }
        _ => None,
    }
}

/// A detector's memory: its recent normal values and how many evaluations in a row were
/// beyond the threshold.
#[derive(Clone, Debug, Default)]
pub struct Detector {
    window: VecDeque<f64>,
    beyond: u32,
}

impl Detector {
    /// Whether `x` is anomalous now (the condition the alert steps on), and its z-score.
    pub fn observe(&mut self, a: &Anomaly, x: f64) -> (bool, f64) {
        let n = self.window.len();
        let full = n >= a.window as usize;
        let z = if full {
            let mean = self.window.iter().sum::<f64>() / n as f64;
            let var = self
                .window
                .iter()
                .map(|v| (v - mean) * (v - mean))
                .sum::<f64>()
                / n as f64;
            let std = var.sqrt().max(a.min_std_fraction * mean.abs()).max(1e-9);
            (x - mean) / std
        } else {
            0.0
        };
        let beyond = full && z.abs() > a.z;
        self.beyond = if beyond { self.beyond + 1 } else { 0 };
        // A level that stays beyond for a whole window is the new normal: it is learnt.
        if !beyond || self.beyond > a.window {
            self.window.push_back(x);
            if self.window.len() > a.window as usize {
                self.window.pop_front();
            }
        }
        (self.beyond >= a.for_samples.max(1), z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_fires_after_its_for_duration_and_resolves_when_false() {
        let mut s = State::Inactive;
        let f = 60;
        assert_eq!(step(&mut s, true, 0, f), Some(Transition::Pending));
        assert_eq!(step(&mut s, true, 30, f), None);
        assert_eq!(step(&mut s, true, 60, f), Some(Transition::Firing));
        assert_eq!(step(&mut s, true, 90, f), None);
        assert_eq!(step(&mut s, false, 105, f), Some(Transition::Resolved));
        assert_eq!(step(&mut s, true, 120, f), Some(Transition::Pending));
        assert_eq!(step(&mut s, false, 135, f), Some(Transition::Cleared));
        assert_eq!(step(&mut s, true, 150, 0), Some(Transition::Firing));
    }

    #[test]
    fn the_detector_flags_a_jump_but_not_noise_around_the_mean() {
        let a = Anomaly {
            name: "a".into(),
            expr: Expr {
                metric: "x".into(),
                part: PartName::Value,
                agg: Agg::Sum,
            },
            window: 10,
            z: 4.0,
            for_samples: 2,
            min_std_fraction: 0.05,
        };
        let mut d = Detector::default();
        for i in 0..30 {
            let x = 100.0 + if i % 2 == 0 { 3.0 } else { -3.0 };
            assert!(!d.observe(&a, x).0, "noise at {i}");
        }
        assert!(!d.observe(&a, 200.0).0, "one sample is not enough");
        assert!(d.observe(&a, 200.0).0);
        assert!(
            d.observe(&a, 200.0).0,
            "a jump stays anomalous: it is not learnt"
        );
        assert!(!d.observe(&a, 101.0).0);
        // A lasting shift is anomalous for a window, then learnt.
        let flagged = (0..40).filter(|_| d.observe(&a, 300.0).0).count();
        assert!((9..=12).contains(&flagged), "{flagged}");
        assert!(!d.observe(&a, 300.0).0);
    }
}
