//! The JSON logs minitwin's own processes write: tracing-subscriber's JSON lines, one per
//! event, of which the gateway's access events (target `minitwin::access`, message `request`:
//! see `minitwin_components::gateway`) are the requests. The same component code writes them
//! in a simulated run (`minitwin run --log run.jsonl`) and in a production process. Fields are
//! read from `fields` (tracing-subscriber's default) or from the top level (its
//! `flatten_event`): `t_ns` (or a top-level RFC 3339 `timestamp`), `status`, `request_time_ms`,
//! `route` and `key` (or `method` and `path`), `upstream` and `upstream_failed`.

use super::nginx::{days_from_civil, Entry, Malformed};
use serde_json::Value;

/// A request read from a JSON line, owning what its [`Entry`] borrows.
#[derive(Clone, Debug, PartialEq)]
pub struct Owned {
    time_s: f64,
    method: String,
    path: String,
    status: u16,
    request_time_s: Option<f64>,
    upstream_addr: String,
    upstream_response_time: String,
    upstream_status: String,
}

impl Owned {
    pub fn entry(&self) -> Entry<'_> {
        Entry {
            time_s: self.time_s,
            method: &self.method,
            path: &self.path,
            status: self.status,
            request_time_s: self.request_time_s,
            upstream_addr: &self.upstream_addr,
            upstream_response_time: &self.upstream_response_time,
            upstream_status: &self.upstream_status,
        }
    }
}

/// The request a line holds; `Ok(None)` for a line that is another event (not a request).
pub fn line(text: &str) -> Result<Option<Owned>, Malformed> {
    let v: Value = serde_json::from_str(text).map_err(|_| Malformed::Shape("is not JSON"))?;
    let field = |k: &str| v.get("fields").and_then(|f| f.get(k)).or_else(|| v.get(k));
    let is_request = v.get("target").and_then(Value::as_str) == Some("minitwin::access")
        || field("message").and_then(Value::as_str) == Some("request");
    if !is_request {
        return Ok(None);
    }
    let time_s = match (
        field("t_ns").and_then(Value::as_f64),
        v.get("timestamp").and_then(Value::as_str),
    ) {
        (Some(ns), _) if ns.is_finite() && ns >= 0.0 => ns / 1e9,
        (_, Some(ts)) => rfc3339(ts).ok_or_else(|| Malformed::Field("timestamp", ts.into()))?,
        _ => return Err(Malformed::Shape("has no t_ns nor timestamp")),
    };
    if time_s > 253_402_300_799.0 {
        return Err(Malformed::Field("t_ns", format!("{time_s} s")));
    }
    let status = field("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| Malformed::Field("status", format!("{:?}", field("status"))))?
        as u16;
    let request_time_s = match field("request_time_ms") {
        None => None,
        Some(ms) => Some(
            ms.as_f64()
                .filter(|m| m.is_finite() && *m >= 0.0)
                .ok_or_else(|| Malformed::Field("request_time_ms", ms.to_string()))?
                / 1e3,
        ),
    };
    let text_of = |k: &str| field(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (method, path) = match (field("method"), field("path")) {
        (Some(m), Some(p)) => (
            m.as_str().unwrap_or("GET").to_string(),
            p.as_str().unwrap_or("/").to_string(),
        ),
        _ => {
            let route = text_of("route");
            let method = if route == "write" { "POST" } else { "GET" };
            let key = field("key").map_or(String::new(), |k| k.to_string());
            (method.to_string(), format!("/{route}/{key}"))
        }
    };
    let (upstream_addr, upstream_status, upstream_response_time) = upstreams(
        &text_of("upstream"),
        &text_of("upstream_failed"),
        status,
        request_time_s,
    );
    Ok(Some(Owned {
        time_s,
        method,
        path,
        status,
        request_time_s,
        upstream_addr,
        upstream_response_time,
        upstream_status,
    }))
}

/// nginx's upstream lists from the last upstream and the failed ones: each failed attempt
/// `502` (its time unknown: `-`), then the last one's status and time unless it failed too.
fn upstreams(
    last: &str,
    failed: &str,
    status: u16,
    time_s: Option<f64>,
) -> (String, String, String) {
    if last.is_empty() {
        return ("-".into(), "-".into(), "-".into());
    }
    let failed: Vec<&str> = failed.split_whitespace().collect();
    let mut addrs: Vec<String> = failed.iter().map(|s| s.to_string()).collect();
    let mut statuses: Vec<String> = vec!["502".into(); failed.len()];
    let mut times: Vec<String> = vec!["-".into(); failed.len()];
    if !failed.contains(&last) {
        addrs.push(last.into());
        statuses.push(status.to_string());
        times.push(time_s.map_or("-".into(), |t| format!("{t:.3}")));
    }
    (addrs.join(", "), statuses.join(", "), times.join(", "))
}

/// `2026-12-02T01:29:27.123456Z` (or with a `+08:00` offset) as Unix seconds.
fn rfc3339(ts: &str) -> Option<f64> {
    let b = ts.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &ts[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        frac = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest.get(1..3)?.parse::<i64>().ok()? * 3600
                + rest.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3_600 + mi * 60 + s - offset_s) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_event_reads_as_the_nginx_line_it_stands_for() {
        let o = line(r#"{"level":"INFO","fields":{"message":"request","t_ns":5011031022,"request_id":4,"route":"static","key":1566,"status":200,"request_time_ms":5.1,"upstream":"3","upstream_failed":"2"},"target":"minitwin::access"}"#)
            .unwrap()
            .unwrap();
        let e = o.entry();
        assert_eq!((e.method, e.path, e.status), ("GET", "/static/1566", 200));
        assert!((e.time_s - 5.011031022).abs() < 1e-9);
        assert_eq!(e.upstream_addrs().collect::<Vec<_>>(), ["2", "3"]);
        assert_eq!(e.upstream_statuses().collect::<Vec<_>>(), ["502", "200"]);
        // Another event is no request; a broken line is malformed, and says why.
        assert_eq!(
            line(
                r#"{"level":"INFO","fields":{"message":"crash","t_ns":1},"target":"minitwin_sim::kernel"}"#
            ),
            Ok(None)
        );
        assert!(line("{\"fields\":{\"message\":\"request\"").is_err());
        let e = line(r#"{"fields":{"message":"request","t_ns":1,"status":"ok"}}"#).unwrap_err();
        assert!(e.to_string().contains("status"), "{e}");
    }

    #[test]
    fn a_production_line_with_a_timestamp_and_a_path_reads_too() {
        let o = line(r#"{"timestamp":"2026-12-02T01:29:27.250+08:00","level":"INFO","message":"request","method":"PUT","path":"/api/item/7","status":503,"request_time_ms":12.0,"upstream":"10.0.0.2:80","upstream_failed":"10.0.0.2:80"}"#)
            .unwrap()
            .unwrap();
        let e = o.entry();
        assert_eq!((e.method, e.path, e.status), ("PUT", "/api/item/7", 503));
        assert!(
            (e.time_s - (1_796_146_167.0 + 0.25)).abs() < 1e-6,
            "{}",
            e.time_s
        );
        assert_eq!(e.upstream_statuses().collect::<Vec<_>>(), ["502"]);
    }
}
