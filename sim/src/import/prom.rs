//! Prometheus range-query results: the HTTP API's JSON (`/api/v1/query_range`, a matrix) and
//! the CSV a dashboard exports (Grafana's "Download CSV": a time column, then one column per
//! series named `metric{label="value",...}`), read into series; and the intervals during
//! which an `up` series says a target was down.

use std::collections::BTreeMap;

/// One series: its labels (`__name__` included when known) and its (Unix seconds, value)
/// points in time order; NaN where the source had no value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn name(&self) -> &str {
        self.labels.get("__name__").map_or("", String::as_str)
    }

    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }
}

/// A `query_range` answer. `query_name` names series whose labels lack `__name__` (Prometheus
/// drops it from the answer of a bare selector such as `up` only for expressions, so a query
/// `up` keeps it; the file name is the fallback).
pub fn from_json(text: &str, query_name: &str) -> Result<Vec<Series>, String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("not JSON (line {}, column {}): {e}", e.line(), e.column()))?;
    if v["status"] != "success" {
        return Err(format!(
            "the query failed: status {}, error {}",
            v["status"], v["error"]
        ));
    }
    let data = &v["data"];
    if data["resultType"] != "matrix" {
        return Err(format!(
            "resultType {}: a range query's answer (matrix) is needed: /api/v1/query_range, not /api/v1/query",
            data["resultType"]
        ));
    }
    let results = data["result"]
        .as_array()
        .ok_or("data.result is not a list")?;
    let mut out = Vec::with_capacity(results.len());
    for (i, r) in results.iter().enumerate() {
        let mut labels = BTreeMap::new();
        if let Some(m) = r["metric"].as_object() {
            for (k, val) in m {
                labels.insert(k.clone(), val.as_str().unwrap_or_default().to_string());
            }
        }
        labels
            .entry("__name__".to_string())
            .or_insert_with(|| query_name.to_string());
        let values = r["values"]
            .as_array()
            .ok_or_else(|| format!("data.result[{i}].values is not a list"))?;
        let mut points = Vec::with_capacity(values.len());
        for (j, p) in values.iter().enumerate() {
            let bad = || format!("data.result[{i}].values[{j}]: not [unix_time, \"value\"]");
            let t = p[0].as_f64().ok_or_else(bad)?;
            let value = p[1].as_str().ok_or_else(bad)?;
            points.push((t, parse_value(value).ok_or_else(bad)?));
        }
        out.push(Series { labels, points });
    }
    Ok(out)
}

/// Prometheus writes values as strings: numbers, `NaN`, `+Inf`, `-Inf`.
fn parse_value(v: &str) -> Option<f64> {
    match v {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => v.parse().ok(),
    }
}

/// A dashboard's CSV export: the first column the time (Unix milliseconds, Unix seconds, or
/// `YYYY-MM-DD HH:MM:SS` in UTC), one column per series. Errors name the line.
pub fn from_csv(text: &str) -> Result<Vec<Series>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| format!("line 1: {e}"))?
        .clone();
    if header.len() < 2 {
        return Err("line 1: a time column and at least one series column are needed".into());
    }
    let mut out: Vec<Series> = header
        .iter()
        .skip(1)
        .map(|h| Series {
            labels: series_labels(h),
            points: Vec::new(),
        })
        .collect();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| format!("line {line}: {e}"))?;
        let t = csv_time(&record[0]).ok_or_else(|| {
            format!(
                "line {line}: time `{}`: give Unix ms or s, or YYYY-MM-DD HH:MM:SS",
                &record[0]
            )
        })?;
        for (k, cell) in record.iter().skip(1).enumerate() {
            let v = if cell.trim().is_empty() {
                f64::NAN
            } else {
                parse_value(cell.trim()).ok_or_else(|| {
                    format!(
                        "line {line}, column `{}`: `{cell}` is not a number",
                        &header[k + 1]
                    )
                })?
            };
            out[k].points.push((t, v));
        }
    }
    Ok(out)
}

/// `up{instance="a:1",job="x"}` as labels (`__name__` = `up`).
fn series_labels(h: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let (name, rest) = h.split_once('{').unwrap_or((h, ""));
    labels.insert("__name__".to_string(), name.trim().to_string());
    for pair in rest.trim_end_matches('}').split(',') {
        if let Some((k, v)) = pair.split_once('=') {
            labels.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    labels
}

fn csv_time(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    if let Ok(n) = cell.parse::<f64>() {
        return (n.is_finite() && n >= 0.0).then_some(if n > 1e11 { n / 1e3 } else { n });
    }
    // YYYY-MM-DD HH:MM:SS (or with a T), UTC.
    let b = cell.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| cell.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = super::nginx::days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3_600 + mi * 60 + s) as f64)
}

/// For every series named `up`: the intervals (Unix seconds) its target was down, keyed by
/// its `instance` label. An interval starts at the first sample at 0 and ends at the next
/// sample at 1 (or the series' last sample, if it never came back).
pub fn down_intervals(series: &[Series]) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in series.iter().filter(|s| s.name() == "up") {
        let instance = s.label("instance").unwrap_or("").to_string();
        let mut down_since: Option<f64> = None;
        let mut intervals = Vec::new();
        for &(t, v) in &s.points {
            match (down_since, v == 0.0) {
                (None, true) => down_since = Some(t),
                (Some(from), false) if v == 1.0 => {
                    intervals.push((from, t));
                    down_since = None;
                }
                _ => {}
            }
        }
        if let (Some(from), Some(&(last, _))) = (down_since, s.points.last()) {
            intervals.push((from, last));
        }
        if !intervals.is_empty() {
            out.entry(instance).or_default().extend(intervals);
        }
    }
    // The same target in several files (a JSON answer and its CSV export): one set of intervals.
    for intervals in out.values_mut() {
        intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::new();
        for &(a, b) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *intervals = merged;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_answer_and_a_csv_export_give_the_same_down_interval() {
        let json = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","instance":"h:1","job":"b"},"values":[[1700000100,"1"],[1700000101,"0"],[1700000102,"0"],[1700000103,"1"]]}]}}"#;
        let j = from_json(json, "up").unwrap();
        // Grafana writes Unix milliseconds.
        let csv = "Time,\"up{instance=\"\"h:1\"\"}\"\n1700000100000,1\n1700000101000,0\n2023-11-14 22:15:02,0\n1700000103,1\n";
        let c = from_csv(csv).unwrap();
        assert_eq!(down_intervals(&j), down_intervals(&c));
        assert_eq!(
            down_intervals(&j)["h:1"],
            vec![(1700000101.0, 1700000103.0)]
        );
    }

    #[test]
    fn a_failed_query_an_instant_answer_and_a_bad_cell_say_what_is_wrong() {
        let e = from_json(r#"{"status":"error","error":"bad_data"}"#, "up").unwrap_err();
        assert!(e.contains("bad_data"), "{e}");
        let e = from_json(
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            "up",
        )
        .unwrap_err();
        assert!(e.contains("query_range"), "{e}");
        let e = from_json("{\n\"status\": ", "up").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = from_csv("Time,up\n100,1\n101,x\n").unwrap_err();
        assert!(e.starts_with("line 3"), "{e}");
        let e = from_csv("Time,up\nyesterday,1\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
