//! What production leaves behind, read into what a scenario needs (issue #11, first part).
//!
//! - [`nginx`]: access log lines against their `log_format`.
//! - [`json`]: minitwin's own JSON logs (tracing-subscriber lines; the gateway's access events
//!   are the requests), from a simulated run's `--log` or a production process.
//! - [`timeline`]: an incident timeline in TOML (node down and up, partition, deploy, config
//!   change, traffic spike), with times.
//! - [`prom`]: Prometheus range-query results (the HTTP API's JSON, a Grafana CSV export), and
//!   the down intervals of an `up` series.
//! - this file: one log streamed line by line, its memory set by its time span, not its size
//!   (per time window: requests, status classes, a latency histogram of about 0.6 KB; per route
//!   and upstream: counts, capped), malformed
//!   lines counted and the first few kept with their line numbers, and the CSV files a scenario
//!   and a person read: `rates.csv` (a `trace` rate curve), `windows.csv`, `routes.csv`,
//!   `upstreams.csv`.

pub mod json;
pub mod nginx;
pub mod prom;
pub mod timeline;

use minitwin_components::math;
use std::collections::BTreeMap;
use std::io::BufRead;

/// What a log's lines are.
#[derive(Clone, Debug)]
pub enum Format {
    Nginx(nginx::LogFormat),
    /// minitwin's JSON logs (see [`json`]).
    Json,
}

impl Format {
    /// `json`, or an nginx format as [`nginx::LogFormat::parse`] reads it.
    pub fn parse(spec: &str) -> Result<Format, String> {
        if spec.trim() == "json" {
            return Ok(Format::Json);
        }
        nginx::LogFormat::parse(spec).map(Format::Nginx)
    }
}

/// Malformed lines kept with their numbers for the report (all are counted).
pub const MALFORMED_KEPT: usize = 10;
/// Distinct routes and upstreams kept by name; the rest are counted as `(other)`.
pub const NAMES_KEPT: usize = 1_000;
/// Distinct ids (the `{id}` segments of paths) counted for the popularity fit; later new ids
/// are left out of the fit (the fit reads the ranks holding most requests; 100,000 ids, about
/// 5 MB, are plenty).
pub const IDS_KEPT: usize = 100_000;

/// Latencies in buckets 10 % wide (a quantile is within 10 % of the truth), grown only as far
/// as the largest value seen: about 150 counters up to a second.
#[derive(Clone, Debug, Default)]
pub struct LogHist {
    counts: Vec<u32>,
    total: u64,
}

const BUCKET_GROWTH: f64 = 1.1;

impl LogHist {
    pub fn record_us(&mut self, us: f64) {
        let i = (math::ln(us.max(1.0)) / math::ln(BUCKET_GROWTH)) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn merge(&mut self, other: &LogHist) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
    }

    /// The upper edge (µs) of the bucket holding quantile `q`.
    pub fn quantile_us(&self, q: f64) -> f64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return math::exp((i + 1) as f64 * math::ln(BUCKET_GROWTH));
            }
        }
        0.0
    }
}

/// One window of the log.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub requests: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    /// Attempts at an upstream that failed (`$upstream_status` 5xx, or `-` for no answer),
    /// including those nginx then passed to the next upstream: an incident clients never saw.
    pub upstream_failures: u64,
    /// Status 499: the client closed the connection before the answer (gave up waiting).
    pub client_closed: u64,
    /// `$request_time` (empty without it).
    pub latency: LogHist,
    /// `$request_time` of the requests answered below 400 (the twin's latency is of those).
    pub latency_ok: LogHist,
}

impl Window {
    /// What the users counted as failed: answered 5xx, or given up on (499).
    pub fn user_errors(&self) -> u64 {
        self.errors_5xx + self.client_closed
    }
}

/// One upstream's attempts in one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attempts {
    pub ok: u64,
    /// 5xx, or no answer (`-`).
    pub failed: u64,
    /// Failed attempts that took half a second or more (`$upstream_response_time`): the
    /// upstream was silent rather than refusing.
    pub failed_slow: u64,
    /// When the earliest failed attempt of the window began (Unix seconds): the line's time
    /// less its `$request_time` (a `$time_local` of whole seconds counts from the middle of
    /// its second). Infinite without a failed attempt.
    pub first_failed_start_s: f64,
}

impl Default for Attempts {
    fn default() -> Attempts {
        Attempts {
            ok: 0,
            failed: 0,
            failed_slow: 0,
            first_failed_start_s: f64::INFINITY,
        }
    }
}

/// A log read so far.
#[derive(Debug)]
pub struct Import {
    pub window_s: u64,
    pub lines: u64,
    pub parsed: u64,
    pub malformed: u64,
    /// JSON lines that are other events than requests (left out, not malformed).
    pub other_events: u64,
    /// The first malformed lines: (line number, why).
    pub first_malformed: Vec<(u64, String)>,
    /// Windows by their start (Unix seconds, a multiple of `window_s`).
    pub windows: BTreeMap<u64, Window>,
    pub routes: BTreeMap<String, u64>,
    pub upstreams: BTreeMap<String, u64>,
    /// Per kept upstream, its attempts by window start.
    pub upstream_windows: BTreeMap<String, BTreeMap<u64, Attempts>>,
    /// `$upstream_response_time` of requests answered 2xx by their first upstream.
    pub upstream_latency: LogHist,
    /// Requests per id (the last `{id}` segment of a path), for the popularity fit.
    pub ids: BTreeMap<u64, u32>,
    pub has_latency: bool,
    /// A route's name, built in place for each line.
    key: String,
}

impl Import {
    pub fn new(window_s: u64) -> Import {
        assert!(window_s > 0, "a window lasts at least a second");
        Import {
            window_s,
            lines: 0,
            parsed: 0,
            malformed: 0,
            other_events: 0,
            first_malformed: Vec::new(),
            windows: BTreeMap::new(),
            routes: BTreeMap::new(),
            upstreams: BTreeMap::new(),
            upstream_windows: BTreeMap::new(),
            upstream_latency: LogHist::default(),
            ids: BTreeMap::new(),
            has_latency: false,
            key: String::new(),
        }
    }

    /// Reads every line of `input` against `format`; only an I/O error stops it.
    pub fn read(&mut self, format: &Format, input: impl BufRead) -> std::io::Result<()> {
        let mut input = input;
        let mut buf = Vec::with_capacity(512);
        loop {
            buf.clear();
            if input.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.lines += 1;
            if line.is_empty() {
                continue;
            }
            match (std::str::from_utf8(line), format) {
                (Ok(text), Format::Nginx(f)) => match f.line(text) {
                    Ok(e) => self.add(&e),
                    Err(why) => self.bad(why.to_string()),
                },
                (Ok(text), Format::Json) => match json::line(text) {
                    Ok(Some(o)) => self.add(&o.entry()),
                    Ok(None) => self.other_events += 1,
                    Err(why) => self.bad(why.to_string()),
                },
                (Err(_), _) => {
                    self.bad("not UTF-8 (nginx escapes such bytes: a damaged file?)".into())
                }
            }
        }
    }

    fn bad(&mut self, why: String) {
        self.malformed += 1;
        if self.first_malformed.len() < MALFORMED_KEPT {
            self.first_malformed.push((self.lines, why));
        }
    }

    fn add(&mut self, e: &nginx::Entry) {
        self.parsed += 1;
        let t = e.time_s.max(0.0) as u64;
        let w = self.windows.entry(t - t % self.window_s).or_default();
        w.requests += 1;
        w.errors_4xx += u64::from((400..500).contains(&e.status));
        w.errors_5xx += u64::from(e.status >= 500);
        w.client_closed += u64::from(e.status == 499);
        // Attempts in step: address, status (none left, or a lone `-`: no answer, a failed
        // attempt), time. Nothing is allocated but a new upstream's name.
        let window = t - t % self.window_s;
        let end = if e.time_s.fract() == 0.0 {
            e.time_s + 0.5
        } else {
            e.time_s
        };
        let began = end - e.request_time_s.unwrap_or(0.0);
        let mut statuses = e.upstream_statuses();
        let mut times = e.upstream_response_time.split([',', ':']);
        let mut failures = 0u64;
        for addr in e.upstream_addrs() {
            let failed = failed_attempt(statuses.next().unwrap_or("-"));
            let slow = times
                .next()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .is_some_and(|t| t >= 0.5);
            failures += u64::from(failed);
            if !self.upstream_windows.contains_key(addr) {
                if self.upstream_windows.len() >= NAMES_KEPT {
                    continue;
                }
                self.upstream_windows
                    .insert(addr.to_string(), BTreeMap::new());
            }
            let per_window = self.upstream_windows.get_mut(addr).expect("inserted above");
            let a = per_window.entry(window).or_default();
            if failed {
                a.failed += 1;
                a.first_failed_start_s = a.first_failed_start_s.min(began);
                a.failed_slow += u64::from(slow);
            } else {
                a.ok += 1;
            }
        }
        // Statuses beyond the addresses (a damaged line) count as failures when they are.
        failures += statuses.filter(|s| failed_attempt(s)).count() as u64;
        w.upstream_failures += failures;
        if (200..300).contains(&e.status) && !e.upstream_response_time.contains(',') {
            if let Ok(s) = e.upstream_response_time.parse::<f64>() {
                if s.is_finite() && s >= 0.0 {
                    self.upstream_latency.record_us(s * 1e6);
                }
            }
        }
        if let Some(id) = last_id(e.path) {
            if let Some(n) = self.ids.get_mut(&id) {
                *n = n.saturating_add(1);
            } else if self.ids.len() < IDS_KEPT {
                self.ids.insert(id, 1);
            }
        }
        if let Some(rt) = e.request_time_s {
            self.has_latency = true;
            w.latency.record_us(rt * 1e6);
            if e.status < 400 {
                w.latency_ok.record_us(rt * 1e6);
            }
        }
        self.key.clear();
        self.key.push_str(e.method);
        self.key.push(' ');
        push_route(&mut self.key, e.path);
        count(&mut self.routes, &self.key);
        for a in e.upstream_addrs() {
            count(&mut self.upstreams, a);
        }
    }

    /// The first and last window starts (Unix seconds).
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((
            *self.windows.keys().next()?,
            *self.windows.keys().next_back()?,
        ))
    }

    /// Requests per second in each window from the first one's start to the last one's,
    /// empty windows included, as `(t_s from the start, rps)`.
    pub fn rates(&self) -> Vec<(u64, f64)> {
        let Some((first, last)) = self.span() else {
            return Vec::new();
        };
        (first..=last)
            .step_by(self.window_s as usize)
            .map(|t| {
                let n = self.windows.get(&t).map_or(0, |w| w.requests);
                (t - first, n as f64 / self.window_s as f64)
            })
            .collect()
    }
}

/// An upstream attempt that failed: a 5xx, or no answer (`-`).
fn failed_attempt(status: &str) -> bool {
    status.starts_with('5') || status == "-"
}

/// The last all-digit segment of a path, as a number (the key a request names).
fn last_id(path: &str) -> Option<u64> {
    path.rsplit('/')
        .find(|seg| !seg.is_empty() && seg.len() <= 19 && seg.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|seg| seg.parse().ok())
}

/// The Zipf exponent that fits the ids' counts: a least-squares line through
/// (ln rank, ln count) over the ranks holding 90 % of the requests (the tail of ids seen once
/// is flat by sampling, not by popularity), clamped to the scenario's range 0.01-10. None
/// with fewer than 10 ids.
pub fn zipf_alpha(ids: &BTreeMap<u64, u32>) -> Option<f64> {
    if ids.len() < 10 {
        return None;
    }
    let mut counts: Vec<u32> = ids.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let mut seen = 0u64;
    let mut points = Vec::new();
    for (i, &c) in counts.iter().enumerate() {
        points.push((math::ln((i + 1) as f64), math::ln(f64::from(c))));
        seen += u64::from(c);
        if seen * 10 >= total * 9 && points.len() >= 10 {
            break;
        }
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Some((-slope).clamp(0.01, 10.0))
}

/// A path as a route: segments that are ids (all digits, or hex of 16 and more with a digit,
/// or a UUID) become `{id}`, so `/api/item/497` and `/api/item/988` are one route.
pub fn route(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    push_route(&mut out, path);
    out
}

fn push_route(out: &mut String, path: &str) {
    let id = |seg: &str| {
        let digits = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
        let hex = seg.len() >= 16
            && seg.bytes().any(|b| b.is_ascii_digit())
            && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        digits || hex
    };
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if id(seg) { "{id}" } else { seg });
    }
}

fn count(map: &mut BTreeMap<String, u64>, name: &str) {
    if let Some(n) = map.get_mut(name) {
        *n += 1;
    } else if map.len() < NAMES_KEPT {
        map.insert(name.to_string(), 1);
    } else {
        *map.entry("(other)".to_string()).or_insert(0) += 1;
    }
}

/// `rates.csv`: a scenario's `trace` rate curve (`t_s,rps`).
pub fn rates_csv(import: &Import) -> String {
    let mut out = String::from("t_s,rps\n");
    for (t, r) in import.rates() {
        out.push_str(&format!("{t},{r}\n"));
    }
    out
}

/// `windows.csv`: per window, from the first one's start: requests, errors, latency.
pub fn windows_csv(import: &Import) -> String {
    let mut out = String::from(
        "t_s,requests,rps,errors_4xx,errors_5xx,error_ratio_5xx,latency_ms_p50,latency_ms_p99,upstream_failures,client_closed_499\n",
    );
    let Some((first, _)) = import.span() else {
        return out;
    };
    for (&t, w) in &import.windows {
        let q = |p: f64| {
            if w.latency.is_empty() {
                String::new()
            } else {
                format!("{:.3}", w.latency.quantile_us(p) / 1e3)
            }
        };
        out.push_str(&format!(
            "{},{},{},{},{},{:.6},{},{},{},{}\n",
            t - first,
            w.requests,
            w.requests as f64 / import.window_s as f64,
            w.errors_4xx,
            w.errors_5xx,
            w.errors_5xx as f64 / w.requests.max(1) as f64,
            q(0.5),
            q(0.99),
            w.upstream_failures,
            w.client_closed
        ));
    }
    out
}

/// `routes.csv` or `upstreams.csv`: name, count and share, most first.
pub fn counts_csv(header: &str, map: &BTreeMap<String, u64>) -> String {
    let total: u64 = map.values().sum();
    let mut rows: Vec<(&String, &u64)> = map.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut out = format!("{header},requests,share\n");
    for (name, n) in rows {
        let name = if name.contains([',', '"']) {
            format!("\"{}\"", name.replace('"', "\"\""))
        } else {
            name.clone()
        };
        out.push_str(&format!(
            "{name},{n},{:.6}\n",
            *n as f64 / total.max(1) as f64
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str, path: &str, status: u16, rt: f64, up: &str) -> String {
        format!(
            r#"10.0.0.1 - - [{t} +0000] "GET {path} HTTP/1.1" {status} 12 "-" "wrk" {rt} {up} 0.001 {status}"#
        )
    }

    #[test]
    fn a_log_becomes_windows_rates_routes_and_upstreams_and_bad_lines_are_counted_with_their_numbers(
    ) {
        let f = Format::parse("upstream").unwrap();
        let mut text = String::new();
        for i in 0..10 {
            text += &line("01/Dec/2026:10:00:00", "/a", 200, 0.010, "u1:80");
            text += "\n";
            if i % 2 == 0 {
                text += &line("01/Dec/2026:10:00:02", "/b?q=1", 502, 0.002, "u2:80");
                text += "\n";
            }
        }
        text += "this is not a log line\n\n";
        text += &line("01/Dec/2026:10:00:02", "/a", 200, 0.020, "u1:80");
        text += "\n";
        let mut im = Import::new(1);
        im.read(&f, text.as_bytes()).unwrap();
        assert_eq!((im.lines, im.parsed, im.malformed), (18, 16, 1));
        assert_eq!(im.first_malformed[0].0, 16, "line numbers count from 1");
        assert_eq!(im.rates(), vec![(0, 10.0), (1, 0.0), (2, 6.0)]);
        let w2 = &im.windows[&(im.span().unwrap().1)];
        assert_eq!((w2.requests, w2.errors_5xx), (6, 5));
        assert_eq!(im.routes["GET /a"], 11);
        assert_eq!(im.routes["GET /b"], 5);
        assert_eq!(im.upstreams["u2:80"], 5);
        let csv = windows_csv(&im);
        // 10 ms lands in a bucket 10 % wide whose upper edge, 10.354 ms, is the quantile.
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("0,10,10,0,0,0.000000,10.354"),
            "{csv}"
        );
        assert!(rates_csv(&im).starts_with("t_s,rps\n0,10\n1,0\n2,6\n"));
    }

    #[test]
    fn ids_in_paths_collapse_into_one_route() {
        assert_eq!(route("/api/item/497"), "/api/item/{id}");
        assert_eq!(
            route("/u/3f2a9c1e-0b7d-4c1a-9e2f-1a2b3c4d5e6f/feed"),
            "/u/{id}/feed"
        );
        assert_eq!(route("/static/app.js"), "/static/app.js");
        assert_eq!(route("/"), "/");
    }

    #[test]
    fn bytes_that_are_not_text_are_a_malformed_line_not_a_stop() {
        let f = Format::parse("combined").unwrap();
        let mut im = Import::new(1);
        im.read(&f, &b"\xff\xfe\n"[..]).unwrap();
        assert_eq!((im.lines, im.malformed), (1, 1));
        assert!(im.first_malformed[0].1.contains("UTF-8"));
    }
}
