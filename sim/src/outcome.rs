//! What a run produces: the summary, result rows, extra tables, check results.

use crate::checks::{self, CheckResult};
use crate::series::SecondRow;
use crate::trace::TraceEntry;

/// The headline numbers of a run: the users' view of the requests they sent in the measured
/// window (from the end of the warm-up to the end of the workload), whenever answered.
/// `requests_total` = `ok_total` + the errors + `unanswered_total`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub requests_total: u64,
    pub ok_total: u64,
    /// Requests of the window still in flight when the run ended.
    pub unanswered_total: u64,
    pub throughput_rps: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    /// The latency distribution of successful requests: (quantile, ms) at [`CDF_QUANTILES`].
    pub latency_cdf_ms: Vec<(f64, f64)>,
    /// (kind, count): 429, 500, 502, 503, 504, timeout.
    pub errors: Vec<(&'static str, u64)>,
    pub error_ratio: f64,
    pub cache_hit_ratio: f64,
    pub acked_writes_total: u64,
    /// Acknowledged writes missing from their shard's durable history (None when the
    /// durability check did not run).
    pub lost_writes_total: Option<u64>,
    /// From the first fault to the end of the last second whose error ratio exceeded
    /// [`crate::series::RECOVERY_ERROR_RATIO`] (0 when no second did; None without faults).
    /// The brief's "fault recovery time (fault to SLO restored)".
    pub recovery_s: Option<f64>,
    /// From the first fault to the first promotion of a replica, store or session (None
    /// without a failover).
    pub failover_s: Option<f64>,
    /// What the topology's nodes cost per hour (`[cost]`; the workload's clients are free).
    pub cost_per_hour: f64,
    /// The archiver's last day: logical bytes over billed bytes (None without an archiver).
    pub storage_efficiency: Option<f64>,
    /// Whole minutes after the warm-up judged against the scenario's `[slo]`, and those inside
    /// it (None without an SLO).
    pub slo_minutes: Option<crate::series::SloMinutes>,
}

impl Summary {
    /// The share of judged minutes inside the SLO (None without an SLO or a judged minute).
    pub fn availability(&self) -> Option<f64> {
        let m = self.slo_minutes?;
        (m.total > 0).then(|| m.inside as f64 / m.total as f64)
    }
}

/// Where the latency CDF is read: every percent, then the tail to 99.99 %, and the maximum.
pub const CDF_QUANTILES: [f64; 24] = [
    0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.96, 0.97, 0.98,
    0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 1.0,
];

/// One row of the long-format results.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub component: String,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
}

impl Row {
    pub fn new(component: &str, metric: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            component: component.to_string(),
            metric: metric.into(),
            value,
            unit,
        }
    }
}

/// An extra CSV file a tier writes beside the standard ones (scenario, seed and commit columns
/// are added in front of every row).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub file: &'static str,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

pub struct RunOutcome {
    pub scenario: String,
    pub seed: u64,
    pub trace_hash: u64,
    pub events_total: u64,
    pub summary: Summary,
    /// Summary lines the tiers add (label, text).
    pub lines: Vec<(String, String)>,
    pub rows: Vec<Row>,
    /// The users' time series for plots: every second for runs up to
    /// [`crate::series::PLOT_POINTS`] seconds, downsampled beyond (the full series streams
    /// through [`crate::run::run_with`]).
    pub series: Vec<SecondRow>,
    /// The tiers per second (instances up, queue depth), downsampled like `series`.
    pub tier_series: Vec<crate::gauges::TierSecond>,
    pub tables: Vec<Table>,
    pub checks: Vec<CheckResult>,
    pub trace: Option<Vec<TraceEntry>>,
    /// When the run was interrupted (simulated seconds): its results are partial.
    pub interrupted_at_s: Option<f64>,
}

impl RunOutcome {
    /// The failing check class with the highest priority (correctness first), if any.
    pub fn failure(&self) -> Option<checks::Class> {
        self.checks
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.class)
            .min()
    }

    /// The result of the check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The value of `metric` of `component` in the result rows.
    pub fn value(&self, component: &str, metric: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.component == component && r.metric == metric)
            .map(|r| r.value)
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Every metric of every node, the network's counters, and the run's event counts.
pub fn metric_rows(sim: &crate::kernel::Sim, end_ns: u64) -> Vec<Row> {
    use minitwin_components::metrics::Value;
    let mut out = Vec::new();
    for id in 0..sim.node_count() as u32 {
        let env = sim.env(id);
        let name = env.name.as_str();
        let local_end = env.clock.local(end_ns);
        for e in env.metrics.entries() {
            match &e.value {
                Value::Counter(c) => out.push(Row::new(name, e.name, *c as f64, e.unit)),
                Value::Gauge(g) => out.push(Row::new(name, e.name, *g, e.unit)),
                Value::Histogram(h) => {
                    let base = e.name.trim_end_matches("_ns");
                    out.push(Row::new(
                        name,
                        format!("{base}_count"),
                        h.len() as f64,
                        "count",
                    ));
                    if h.is_empty() {
                        continue;
                    }
                    out.push(Row::new(
                        name,
                        format!("{base}_ms_mean"),
                        h.mean() / 1e6,
                        "ms",
                    ));
                    for (q, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
                        let v = ms(h.value_at_quantile(q));
                        out.push(Row::new(name, format!("{base}_ms_{label}"), v, "ms"));
                    }
                    out.push(Row::new(name, format!("{base}_ms_max"), ms(h.max()), "ms"));
                }
                Value::Level { .. } => {
                    let mean = env.metrics.level_mean(e.name, local_end).unwrap_or(0.0);
                    out.push(Row::new(name, format!("{}_mean", e.name), mean, e.unit));
                }
            }
        }
        if env.crashes_total > 0 {
            out.push(Row::new(
                name,
                "crashes_total",
                env.crashes_total as f64,
                "count",
            ));
        }
        if env.disk.syncs_total > 0 {
            let d = &env.disk;
            out.push(Row::new(
                name,
                "disk_syncs_total",
                d.syncs_total as f64,
                "count",
            ));
            let lost = d.records_lost_total as f64;
            out.push(Row::new(name, "disk_records_lost_total", lost, "count"));
        }
    }
    let n = &sim.network().stats;
    for (metric, v) in [
        ("messages_sent_total", n.sent_total),
        ("messages_dropped_loss_total", n.dropped_loss_total),
        (
            "messages_dropped_partition_total",
            n.dropped_partition_total,
        ),
        ("messages_dropped_node_down_total", n.dropped_down_total),
        ("messages_refused_total", n.refused_total),
    ] {
        out.push(Row::new("network", metric, v as f64, "count"));
    }
    out.push(Row::new(
        "run",
        "events_total",
        sim.events_total() as f64,
        "count",
    ));
    let fired = sim.buggify().fired_total as f64;
    out.push(Row::new("run", "buggify_fired_total", fired, "count"));
    out
}

/// The summary as rows of the component `run`.
pub fn summary_rows(s: &Summary) -> Vec<Row> {
    let mut out = vec![
        Row::new("run", "requests_total", s.requests_total as f64, "count"),
        Row::new("run", "ok_total", s.ok_total as f64, "count"),
        Row::new(
            "run",
            "unanswered_total",
            s.unanswered_total as f64,
            "count",
        ),
        Row::new("run", "throughput_rps", s.throughput_rps, "req/s"),
        Row::new("run", "latency_ms_p50", s.latency_ms_p50, "ms"),
        Row::new("run", "latency_ms_p99", s.latency_ms_p99, "ms"),
        Row::new("run", "latency_ms_p999", s.latency_ms_p999, "ms"),
    ];
    for (kind, count) in &s.errors {
        out.push(Row::new(
            "run",
            format!("errors_{kind}_total"),
            *count as f64,
            "count",
        ));
    }
    out.extend([
        Row::new("run", "error_ratio", s.error_ratio, "ratio"),
        Row::new("run", "cache_hit_ratio", s.cache_hit_ratio, "ratio"),
        Row::new(
            "run",
            "acked_writes_total",
            s.acked_writes_total as f64,
            "count",
        ),
    ]);
    if let Some(lost) = s.lost_writes_total {
        out.push(Row::new("run", "lost_writes_total", lost as f64, "count"));
    }
    if let Some(r) = s.recovery_s {
        out.push(Row::new("run", "recovery_s", r, "s"));
    }
    if let Some(f) = s.failover_s {
        out.push(Row::new("run", "failover_s", f, "s"));
    }
    out.push(Row::new("run", "cost_per_hour", s.cost_per_hour, "$/h"));
    if let Some(m) = s.slo_minutes {
        out.push(Row::new(
            "run",
            "slo_minutes_total",
            m.total as f64,
            "count",
        ));
        out.push(Row::new(
            "run",
            "slo_minutes_inside",
            m.inside as f64,
            "count",
        ));
    }
    if let Some(a) = s.availability() {
        out.push(Row::new("run", "availability", a, "ratio"));
    }
    if let Some(e) = s.storage_efficiency {
        out.push(Row::new("run", "storage_efficiency", e, "ratio"));
    }
    out
}
