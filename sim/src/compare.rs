//! Comparing architecture variants: every arm (the baseline and each `[[variants]]` entry) runs
//! on the same seeds, and each metric's difference from the baseline comes with a 95 %
//! confidence interval, paired seed by seed (common random numbers) or, for contrast, over
//! independent seeds.

use crate::outcome::{RunOutcome, Summary};
use crate::scenario::Scenario;
use crate::stats::{self, Interval};

/// A number read from a run's summary.
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub get: fn(&Summary) -> Option<f64>,
}

/// What `minitwin compare` reports, in order.
pub static METRICS: &[Metric] = &[
    Metric {
        name: "throughput_rps",
        unit: "req/s",
        get: |s| Some(s.throughput_rps),
    },
    Metric {
        name: "latency_ms_p99",
        unit: "ms",
        get: |s| Some(s.latency_ms_p99),
    },
    Metric {
        name: "error_ratio",
        unit: "ratio",
        get: |s| Some(s.error_ratio),
    },
    Metric {
        name: "recovery_s",
        unit: "s",
        get: |s| s.recovery_s,
    },
    Metric {
        name: "lost_writes_total",
        unit: "count",
        get: |s| s.lost_writes_total.map(|n| n as f64),
    },
    Metric {
        name: "storage_efficiency",
        unit: "ratio",
        get: |s| s.storage_efficiency,
    },
    Metric {
        name: "availability",
        unit: "ratio",
        get: |s| s.availability(),
    },
    Metric {
        name: "cost_per_hour",
        unit: "$/h",
        get: |s| Some(s.cost_per_hour),
    },
];

/// One arm of a comparison.
#[derive(Clone, Debug)]
pub struct Arm {
    pub name: String,
    pub scenario: Scenario,
}

/// The baseline and the variants of a scenario, as arms.
pub fn arms(base: &Scenario, variants: &[(String, Scenario)]) -> Vec<Arm> {
    let mut out = vec![Arm {
        name: "baseline".into(),
        scenario: base.clone(),
    }];
    out.extend(variants.iter().map(|(name, s)| Arm {
        name: name.clone(),
        scenario: s.clone(),
    }));
    out
}

/// The seed arm `arm` runs for replication `seed`: the same for every arm (common random
/// numbers), or set apart per arm when `independent`.
pub fn seed_for(arm: usize, seed: u64, independent: bool) -> u64 {
    if independent {
        seed.wrapping_add(1_000_003 * arm as u64)
    } else {
        seed
    }
}

/// What one run of one arm gave.
#[derive(Clone, Debug)]
pub struct ArmRun {
    pub seed: u64,
    pub summary: Summary,
    /// Failing checks, as `name: detail`.
    pub failures: Vec<String>,
}

impl ArmRun {
    pub fn of(o: &RunOutcome) -> ArmRun {
        ArmRun {
            seed: o.seed,
            summary: o.summary.clone(),
            failures: o
                .checks
                .iter()
                .filter(|c| c.failed())
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect(),
        }
    }
}

/// Every arm's runs, replication by replication.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub arms: Vec<String>,
    /// `runs[arm][replication]`.
    pub runs: Vec<Vec<ArmRun>>,
    pub independent: bool,
}

/// One metric of one arm: its mean, and its difference from the baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    pub arm_mean: Option<Interval>,
    pub difference: Option<Interval>,
}

impl Comparison {
    fn values(&self, arm: usize, metric: &Metric) -> Option<Vec<f64>> {
        self.runs[arm]
            .iter()
            .map(|r| (metric.get)(&r.summary))
            .collect()
    }

    /// `metric` of arm `arm`: its mean over replications, and its difference from the baseline
    /// (paired unless the comparison ran independent seeds).
    pub fn row(&self, arm: usize, metric: &Metric) -> Row {
        let (Some(base), Some(this)) = (self.values(0, metric), self.values(arm, metric)) else {
            return Row {
                arm_mean: None,
                difference: None,
            };
        };
        let difference = if arm == 0 {
            None
        } else if self.independent {
            stats::unpaired(&base, &this)
        } else {
            stats::paired(&base, &this)
        };
        Row {
            arm_mean: stats::interval(&this),
            difference,
        }
    }
}
