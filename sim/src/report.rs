//! Results on disk: long-format metrics CSV, a per-second time series, the trace hash, and a
//! plain-text summary. Everything here is a pure function of the outcome, so two runs of the
//! same seed and commit write identical bytes.

use crate::outcome::{RunOutcome, Table};
use std::fmt::Write as _;

/// Upper edge (ms) of the bucket that holds quantile `q` of a per-second histogram.
pub fn log2_quantile_ms(buckets: &[u32], q: f64) -> f64 {
    let total: u64 = buckets.iter().map(|&b| u64::from(b)).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (i, &b) in buckets.iter().enumerate() {
        seen += u64::from(b);
        if seen >= rank {
            return crate::workload::bucket_upper_ns(i) / 1e6;
        }
    }
    0.0
}

fn csv_bytes(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
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

/// `timeseries.csv`: one row per simulated second (by completion time).
pub fn timeseries_csv(o: &RunOutcome, commit: &str) -> Vec<u8> {
    let header = [
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
    let rows = o.seconds.iter().enumerate().map(|(t, s)| {
        let mean = if s.ok == 0 {
            0.0
        } else {
            s.latency_ns_sum as f64 / s.ok as f64 / 1e6
        };
        vec![
            o.scenario.clone(),
            o.seed.to_string(),
            commit.to_string(),
            t.to_string(),
            s.sent.to_string(),
            s.ok.to_string(),
            s.errors.to_string(),
            format!("{mean:.3}"),
            format!("{}", log2_quantile_ms(&s.log2_buckets, 0.99)),
        ]
    });
    csv_bytes(&header, rows)
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
    line(
        &mut t,
        "requests",
        format!("{} sent, {} ok", s.requests_total, s.ok_total),
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
    line(
        &mut t,
        "acked writes",
        format!("{} ({} lost)", s.acked_writes_total, s.lost_writes_total),
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
    for (label, text) in &o.lines {
        line(&mut t, label, text.clone());
    }
    line(&mut t, "events", o.events_total.to_string());
    line(&mut t, "trace hash", format!("{:016x}", o.trace_hash));
    for c in &o.checks {
        let _ = writeln!(t, "  check {:<16} {}: {}", c.name, c.label(), c.detail);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log2_quantile_is_the_upper_edge_of_its_bucket() {
        use crate::workload::{bucket_upper_ns, latency_bucket, BUCKETS};
        let mut b = vec![0u32; BUCKETS];
        b[latency_bucket(1_500_000)] += 99;
        b[latency_bucket(40_000_000)] += 1;
        assert_eq!(
            log2_quantile_ms(&b, 0.5),
            bucket_upper_ns(latency_bucket(1_500_000)) / 1e6
        );
        assert_eq!(
            log2_quantile_ms(&b, 1.0),
            bucket_upper_ns(latency_bucket(40_000_000)) / 1e6
        );
    }
}
