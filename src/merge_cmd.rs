//! `minitwin merge`: joins the shard tables of one sweep (`shard-M-of-N.csv`, each with its
//! manifest `shard-M-of-N.toml`) into `sweep.csv`, after checking that they belong to the same
//! sweep (scenario text, axes, seeds, commit) and that every run is there exactly once. The
//! result is byte for byte what the sweep writes on one machine.

use crate::cli::MergeArgs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a shard ran, written beside its table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub scenario: String,
    /// A hash of the scenario's text, the axes and the seeds: shards of one sweep share it.
    pub fingerprint: String,
    pub commit: String,
    pub runs_total: u64,
    pub shard: u64,
    pub shards: u64,
    /// Rows in the shard's table (its runs that finished or crashed).
    pub runs_written: u64,
}

impl Manifest {
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = toml::to_string(self).expect("a manifest prints as TOML");
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn read(path: &Path) -> Result<Manifest, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let m: Manifest =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        let sane = m.shards >= 1 && m.shard < m.shards && m.runs_written <= m.runs_total;
        if !sane {
            return Err(format!(
                "{}: not a shard manifest minitwin wrote (shard {} of {}, {} of {} runs): rerun that shard",
                path.display(),
                m.shard,
                m.shards,
                m.runs_written,
                m.runs_total
            ));
        }
        Ok(m)
    }

    /// How many runs shard `shard` of `shards` has in a sweep of `runs_total`.
    fn expected_runs(&self) -> u64 {
        let (t, n, m) = (self.runs_total, self.shards, self.shard);
        t / n + u64::from(m < t % n)
    }
}

pub fn main(args: MergeArgs) -> u8 {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dirs[0].join("sweep.csv"));
    match merge(&args.dirs, &out) {
        Ok(n) => {
            say!("merged {n} runs into {}", out.display());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// Merges the shard tables found in `dirs` into `out`; the number of runs.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<usize, String> {
    let shards = manifests(dirs)?;
    let first = &shards[0].1;
    for (path, m) in &shards {
        let same = m.scenario == first.scenario
            && m.fingerprint == first.fingerprint
            && m.commit == first.commit
            && m.runs_total == first.runs_total
            && m.shards == first.shards;
        if !same {
            return Err(format!(
                "{} is from another sweep than {} (scenario, scenario text, axes, seeds, commit or shard count differ): merge the shards of one sweep",
                path.display(),
                shards[0].0.display()
            ));
        }
    }
    let mut by_shard: BTreeMap<u64, &PathBuf> = BTreeMap::new();
    for (path, m) in &shards {
        if let Some(other) = by_shard.insert(m.shard, path) {
            return Err(format!(
                "shard {} of {} twice: {} and {}",
                m.shard,
                m.shards,
                other.display(),
                path.display()
            ));
        }
        if m.runs_written != m.expected_runs() {
            return Err(format!(
                "{}: shard {}/{} wrote {} of its {} runs (interrupted?): rerun it",
                path.display(),
                m.shard,
                m.shards,
                m.runs_written,
                m.expected_runs()
            ));
        }
    }
    let missing: Vec<String> = (0..first.shards)
        .filter(|s| !by_shard.contains_key(s))
        .map(|s| format!("{s}/{}", first.shards))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "incomplete: shards {} are missing (run them, or give the directories that hold them)",
            missing.join(", ")
        ));
    }
    let (header, rows) = rows(&shards)?;
    if rows.len() as u64 != first.runs_total {
        return Err(format!(
            "the shard tables hold {} runs, the sweep has {}",
            rows.len(),
            first.runs_total
        ));
    }
    write(out, &header, &rows)?;
    let html = out.with_file_name("report.html");
    crate::html::write(&report(first, &header, &rows), &html)?;
    Ok(rows.len())
}

/// The sweep's HTML report: distributions across runs, and each point's p99 with its interval.
fn report(m: &Manifest, header: &csv::StringRecord, rows: &Rows) -> crate::html::Report {
    let col = |name: &str| header.iter().position(|h| h == name);
    let values = |name: &str| -> Vec<f64> {
        let Some(i) = col(name) else {
            return Vec::new();
        };
        rows.values()
            .filter_map(|r| r.get(i).and_then(|v| v.parse().ok()))
            .collect()
    };
    let mut r = crate::html::Report::new(format!("minitwin sweep: {}", m.scenario));
    r.fact("scenario", m.scenario.clone())
        .fact("runs", m.runs_total.to_string())
        .fact("shards merged", m.shards.to_string())
        .fact("commit", m.commit.clone());
    let failing: Vec<Vec<String>> = match (col("failed_checks"), col("seed"), col("run")) {
        (Some(f), Some(s), Some(run)) => rows
            .values()
            .filter(|r| !r.get(f).unwrap_or("").is_empty())
            .map(|r| {
                vec![
                    r.get(run).unwrap_or("").into(),
                    r.get(s).unwrap_or("").into(),
                    r.get(f).unwrap_or("").into(),
                ]
            })
            .collect(),
        _ => Vec::new(),
    };
    r.table(
        &format!("Failing runs ({})", failing.len()),
        &["run", "seed", "failed checks"],
        failing,
    );
    let recovery = values("recovery_s");
    if !recovery.is_empty() {
        r.figure(
            "fig-recovery",
            "Recovery time across runs: from the first fault to the last second over 1 % errors",
            crate::plot::histogram("recovery time", "seconds", &recovery),
        );
    }
    r.figure(
        "fig-p99",
        "p99 latency across runs",
        crate::plot::histogram("p99 latency", "ms", &values("latency_ms_p99")),
    );
    if let (Some(point), Some(p99), Some(first_axis), Some(rep)) = (
        col("point"),
        col("latency_ms_p99"),
        col("point").map(|p| p + 1),
        col("replication"),
    ) {
        let mut by_point: BTreeMap<u64, (String, Vec<f64>)> = BTreeMap::new();
        for rec in rows.values() {
            let Some(p) = rec.get(point).and_then(|v| v.parse().ok()) else {
                continue;
            };
            let label = point_label(header, rec, first_axis..rep);
            let e = by_point.entry(p).or_insert((label, Vec::new()));
            if let Some(v) = rec.get(p99).and_then(|v| v.parse().ok()) {
                e.1.push(v);
            }
        }
        if by_point.len() > 1 {
            let rows: Vec<(String, f64, f64)> = by_point
                .into_values()
                .filter_map(|(label, v)| {
                    let i = minitwin_sim::stats::interval(&v)?;
                    Some((
                        label,
                        i.mean,
                        if i.half_width.is_finite() {
                            i.half_width
                        } else {
                            0.0
                        },
                    ))
                })
                .collect();
            r.figure(
                "fig-points-p99",
                "p99 latency per point of the axes: mean over replications, 95 % interval",
                crate::plot::intervals("p99 per point", "ms", &rows, false),
            );
        }
        if let Some(points) = cost_availability(header, rows, point, first_axis, rep) {
            r.figure(
                "fig-cost-availability",
                "Cost per hour against availability (minutes inside the SLO) per point of the axes: mean over replications, 95 % interval",
                crate::plot::cost_availability_grouped(
                    &points,
                    |label| label.split(' ').next().unwrap_or("").to_string(),
                    "availability (share of minutes inside the SLO)",
                ),
            );
        }
    }
    r
}

/// A point's axes as `field=value ...` (the last step of each axis's path).
fn point_label(
    header: &csv::StringRecord,
    rec: &csv::StringRecord,
    axes: std::ops::Range<usize>,
) -> String {
    let parts: Vec<String> = axes
        .map(|i| {
            let path = header.get(i).unwrap_or("");
            let field = path.rsplit('.').next().unwrap_or(path);
            format!("{field}={}", rec.get(i).unwrap_or(""))
        })
        .collect();
    parts.join(" ")
}

/// Per point of the axes: its label, mean cost per hour, and availability's mean and interval
/// half-width; None unless every run has an availability (an SLO) and there are two points.
fn cost_availability(
    header: &csv::StringRecord,
    rows: &Rows,
    point: usize,
    first_axis: usize,
    rep: usize,
) -> Option<Vec<(String, f64, f64, f64)>> {
    let col = |name: &str| header.iter().position(|h| h == name);
    let (avail, cost) = (col("availability")?, col("cost_per_hour")?);
    let mut by_point: BTreeMap<u64, (String, Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for rec in rows.values() {
        let p = rec.get(point)?.parse().ok()?;
        let a: f64 = rec.get(avail)?.parse().ok()?;
        let c: f64 = rec.get(cost)?.parse().ok()?;
        let label = point_label(header, rec, first_axis..rep);
        let e = by_point.entry(p).or_insert((label, Vec::new(), Vec::new()));
        e.1.push(a);
        e.2.push(c);
    }
    if by_point.len() < 2 {
        return None;
    }
    by_point
        .into_values()
        .map(|(label, a, c)| {
            let a = minitwin_sim::stats::interval(&a)?;
            let cost = c.iter().sum::<f64>() / c.len() as f64;
            let hw = if a.half_width.is_finite() {
                a.half_width
            } else {
                0.0
            };
            Some((label, cost, a.mean, hw))
        })
        .collect()
}

/// Every `shard-*-of-*.toml` in `dirs`, with the path of its table.
fn manifests(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, Manifest)>, String> {
    let mut out = Vec::new();
    for dir in dirs {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".toml"))
            })
            .collect();
        names.sort();
        for p in names {
            let m = Manifest::read(&p)?;
            out.push((p.with_extension("csv"), m));
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no shard manifests (shard-M-of-N.toml) in {}: give the sweep directories (results/<scenario>/sweep)",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(out)
}

type Rows = BTreeMap<u64, csv::StringRecord>;

/// The header and every row, keyed by run index; each run once, each in its own shard.
fn rows(shards: &[(PathBuf, Manifest)]) -> Result<(csv::StringRecord, Rows), String> {
    let mut header: Option<csv::StringRecord> = None;
    let mut rows = Rows::new();
    for (path, m) in shards {
        let mut r = csv::Reader::from_path(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let h = r
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .clone();
        match &header {
            Some(first) if *first != h => {
                return Err(format!(
                    "{}: its columns differ from the other shards'",
                    path.display()
                ))
            }
            Some(_) => {}
            None => header = Some(h),
        }
        for (line, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
            let run: u64 = rec.get(0).and_then(|v| v.parse().ok()).ok_or_else(|| {
                format!(
                    "{}:{}: column `run` is not a run index",
                    path.display(),
                    line + 2
                )
            })?;
            if run >= m.runs_total || run % m.shards != m.shard {
                return Err(format!(
                    "{}:{}: run {run} does not belong to shard {}/{}",
                    path.display(),
                    line + 2,
                    m.shard,
                    m.shards
                ));
            }
            if rows.insert(run, rec).is_some() {
                return Err(format!("{}: run {run} appears twice", path.display()));
            }
        }
    }
    Ok((header.expect("at least one shard"), rows))
}

fn write(out: &Path, header: &csv::StringRecord, rows: &Rows) -> Result<(), String> {
    let io = |e: csv::Error| format!("cannot write {}: {e}", out.display());
    let mut w = csv::Writer::from_path(out).map_err(io)?;
    w.write_record(header).map_err(io)?;
    for rec in rows.values() {
        w.write_record(rec).map_err(io)?;
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", out.display()))
}
