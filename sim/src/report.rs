//! Results on disk: long-format metrics CSV, a per-second time series, the trace hash, and a
//! plain-text summary. Everything here is a pure function of the outcome, so two runs of the
//! same seed and commit write identical bytes.

use crate::outcome::{RunOutcome, Table};
use crate::series::SecondRow;
use std::fmt::Write as _;

fn csv_bytes(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if !header.is_empty() {
        w.write_record(header).expect("writing to memory");
    }
    for r in rows {
        w.write_record(&r).expect("writing to memory");
    }
    w.into_inner().expect("flushing to memory")
}

/// `metrics.csv`: scenario, seed, commit, component, metric, value, unit.
pub fn metrics_csv(o: &RunOutcome, commit: &str) -> Vec<u8> {
    let header = [
        "scenario",
        "seed",
        "commit",
        "component",
        "metric",
        "value",
        "unit",
    ];
    let rows = o.rows.iter().map(|r| {
        vec![
            o.scenario.clone(),
            o.seed.to_string(),
            commit.to_string(),
            r.component.clone(),
            r.metric.clone(),
            format!("{}", r.value),
            r.unit.to_string(),
        ]
    });
    csv_bytes(&header, rows)
}

/// The header of `timeseries.csv`.
pub const TIMESERIES_HEADER: [&str; 9] = [
    "scenario",
    "seed",
    "commit",
    "t_s",
    "sent_rps",
    "ok_rps",
    "error_rps",
    "latency_ms_mean",
    "latency_ms_p99_upper",
];

/// One line of `timeseries.csv` (a span of `span_s` seconds reports per-second rates).
pub fn timeseries_line(scenario: &str, seed: u64, commit: &str, r: &SecondRow) -> String {
    let rate = |n: u64| {
        if r.span_s == 1 {
            n.to_string()
        } else {
            format!("{:.3}", n as f64 / r.span_s as f64)
        }
    };
    let fields = [
        scenario.to_string(),
        seed.to_string(),
        commit.to_string(),
        r.t_s.to_string(),
        rate(r.sent),
        rate(r.ok),
        rate(r.errors),
        format!("{:.3}", r.latency_ms_mean),
        format!("{}", r.latency_ms_p99_upper),
    ];
    let bytes = csv_bytes(&[], std::iter::once(fields.to_vec()));
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// `timeseries.csv` from a list of rows (the CLI streams the same lines as the run goes).
pub fn timeseries_csv(scenario: &str, seed: u64, commit: &str, rows: &[SecondRow]) -> Vec<u8> {
    let mut out = TIMESERIES_HEADER.join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&timeseries_line(scenario, seed, commit, r));
    }
    out.into_bytes()
}

/// A tier's extra table (`archive.csv`, ...), with scenario, seed and commit in front.
pub fn table_csv(o: &RunOutcome, commit: &str, table: &Table) -> Vec<u8> {
    let mut header = vec!["scenario", "seed", "commit"];
    header.extend(table.header.iter().copied());
    let rows = table.rows.iter().map(|r| {
        let mut row = vec![o.scenario.clone(), o.seed.to_string(), commit.to_string()];
        row.extend(r.iter().cloned());
        row
    });
    csv_bytes(&header, rows)
}

/// The summary table printed at the end of a run (also written as `summary.txt`).
pub fn summary_text(o: &RunOutcome) -> String {
    let s = &o.summary;
    let mut t = String::new();
    let line = |t: &mut String, k: &str, v: String| {
        let _ = writeln!(t, "  {k:<22} {v}");
    };
    let _ = writeln!(t, "scenario {} seed {}", o.scenario, o.seed);
    if let Some(at) = o.interrupted_at_s {
        let _ = writeln!(
            t,
            "  PARTIAL: interrupted at {at:.1} simulated s; every number covers only the run so far"
        );
    }
    let failed: u64 = s.errors.iter().map(|e| e.1).sum();
    line(
        &mut t,
        "requests",
        format!(
            "{} sent: {} ok, {failed} failed, {} unanswered at the end",
            s.requests_total, s.ok_total, s.unanswered_total
        ),
    );
    line(
        &mut t,
        "throughput",
        format!("{:.1} req/s", s.throughput_rps),
    );
    line(
        &mut t,
        "latency p50/p99/p999",
        format!(
            "{:.2} / {:.2} / {:.2} ms",
            s.latency_ms_p50, s.latency_ms_p99, s.latency_ms_p999
        ),
    );
    let errs: Vec<String> = s
        .errors
        .iter()
        .filter(|e| e.1 > 0)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let errs = if errs.is_empty() {
        "none".to_string()
    } else {
        errs.join(", ")
    };
    line(
        &mut t,
        "errors",
        format!("{errs} (ratio {:.5})", s.error_ratio),
    );
    line(
        &mut t,
        "cache hit ratio",
        format!("{:.4}", s.cache_hit_ratio),
    );
    let lost = match s.lost_writes_total {
        Some(n) => format!("{n} lost"),
        None => "loss not checked: enable checks.durability".into(),
    };
    line(
        &mut t,
        "acked writes",
        format!("{} ({lost})", s.acked_writes_total),
    );
    if let Some(r) = s.recovery_s {
        line(
            &mut t,
            "recovery",
            format!("{r:.1} s from the first fault to the SLO restored"),
        );
    }
    if let Some(f) = s.failover_s {
        line(
            &mut t,
            "failover",
            format!("{f:.1} s from the first fault to the promotion"),
        );
    }
    if let Some(m) = s.slo_minutes.filter(|m| m.total > 0) {
        let share = s
            .availability()
            .map_or("-".to_string(), |a| format!("{:.2} %", a * 100.0));
        line(
            &mut t,
            "availability",
            format!(
                "{share} of {} whole minutes inside the SLO ({} outside: [slo])",
                m.total,
                m.total - m.inside
            ),
        );
    }
    for (label, text) in &o.lines {
        line(&mut t, label, text.clone());
    }
    line(
        &mut t,
        "cost",
        format!(
            "${:.2} per hour for the topology's nodes (prices: [cost] node_hour)",
            s.cost_per_hour
        ),
    );
    line(&mut t, "events", o.events_total.to_string());
    line(&mut t, "trace hash", format!("{:016x}", o.trace_hash));
    for c in &o.checks {
        let _ = writeln!(t, "  check {:<19} {}: {}", c.name, c.label(), c.detail);
    }
    t
}
