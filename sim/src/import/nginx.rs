//! nginx access logs, read as nginx writes them: a `log_format` string says which fields a line
//! holds (the built-in `combined`, or any format with `$request_time`, `$upstream_addr`,
//! `$upstream_response_time`, `$upstream_status`, `$msec` ...), and each line is matched
//! against it, literal by literal. nginx escapes `"` and control bytes inside variables
//! (`\x22`), so a field ends at the first occurrence of the literal that follows it.

use std::fmt;

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// `combined` plus the upstream fields an incident needs (the format the README suggests).
pub const UPSTREAM: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_addr $upstream_response_time $upstream_status"#;

/// A field of a log line this reader uses; the rest are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    TimeLocal,
    Msec,
    Request,
    Status,
    RequestTime,
    UpstreamAddr,
    UpstreamResponseTime,
    UpstreamStatus,
    Other,
}

impl Field {
    /// nginx writes these as lists, `a, b : c`, whose separators hold spaces.
    fn is_list(self) -> bool {
        matches!(
            self,
            Field::UpstreamAddr | Field::UpstreamResponseTime | Field::UpstreamStatus
        )
    }

    fn of(var: &str) -> Field {
        match var {
            "time_local" => Field::TimeLocal,
            "msec" => Field::Msec,
            "request" => Field::Request,
            "status" => Field::Status,
            "request_time" => Field::RequestTime,
            "upstream_addr" => Field::UpstreamAddr,
            "upstream_response_time" => Field::UpstreamResponseTime,
            "upstream_status" => Field::UpstreamStatus,
            _ => Field::Other,
        }
    }
}

/// A parsed `log_format`: literals between variables.
#[derive(Clone, Debug)]
pub struct LogFormat {
    /// The literal before the first variable.
    lead: String,
    /// Each variable, and the literal after it (empty for the last one at the end).
    parts: Vec<(Field, String)>,
}

impl LogFormat {
    /// A format from its string (`$name` variables; `${name}` too), or from a whole nginx
    /// `log_format NAME '...' '...';` directive, whose quoted pieces are joined. `combined`
    /// and `upstream` name the two formats above.
    pub fn parse(spec: &str) -> Result<LogFormat, String> {
        let spec = spec.trim();
        let text = match spec {
            "combined" => COMBINED.to_string(),
            "upstream" => UPSTREAM.to_string(),
            s if s.starts_with("log_format") => directive_text(s)?,
            s => s.to_string(),
        };
        let mut lead = String::new();
        let mut parts: Vec<(Field, String)> = Vec::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find('$') {
            let literal = &rest[..i];
            match parts.last_mut() {
                Some(last) => last.1.push_str(literal),
                None => lead.push_str(literal),
            }
            let after = &rest[i + 1..];
            let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced
                    .find('}')
                    .ok_or_else(|| format!("log format: `${{` without `}}` in {text:?}"))?;
                (&braced[..end], &braced[end + 1..])
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            if name.is_empty() {
                return Err(format!(
                    "log format: a `$` without a variable name in {text:?}"
                ));
            }
            if parts.last().is_some_and(|p| p.1.is_empty()) {
                return Err(format!(
                    "log format: two variables with nothing between them (before ${name}): a line could not be split"
                ));
            }
            parts.push((Field::of(name), String::new()));
            rest = tail;
        }
        match parts.last_mut() {
            Some(last) => last.1.push_str(rest),
            None => return Err(format!("log format: no variable in {text:?}")),
        }
        let has = |f| parts.iter().any(|p| p.0 == f);
        if !has(Field::TimeLocal) && !has(Field::Msec) {
            return Err(
                "log format: needs $time_local or $msec (when each request happened)".into(),
            );
        }
        if !has(Field::Status) {
            return Err("log format: needs $status".into());
        }
        Ok(LogFormat { lead, parts })
    }

    /// Whether lines carry the request time and the upstream fields.
    pub fn has_upstream(&self) -> bool {
        self.parts.iter().any(|p| p.0 == Field::UpstreamAddr)
    }

    /// One line's entry, or why it does not match.
    pub fn line<'a>(&self, line: &'a str) -> Result<Entry<'a>, Malformed> {
        let mut rest = line
            .strip_prefix(self.lead.as_str())
            .ok_or(Malformed::Shape("does not start as the format does"))?;
        let mut e = Entry::default();
        let mut time = None;
        for (field, literal) in &self.parts {
            let (value, tail) = if literal.is_empty() {
                (rest, "")
            } else {
                let end = field_end(rest, literal, field.is_list()).ok_or(Malformed::Shape(
                    "ends before the format does (a field or separator is missing)",
                ))?;
                (&rest[..end], &rest[end + literal.len()..])
            };
            rest = tail;
            match field {
                Field::TimeLocal => time = Some(time_local(value)?),
                Field::Msec => {
                    let t = value
                        .parse::<f64>()
                        .ok()
                        .filter(|t| (0.0..=LAST_TIME_S).contains(t))
                        .ok_or_else(|| Malformed::Field("msec", value.into()))?;
                    time = Some(t)
                }
                Field::Request => {
                    let mut words = value.split(' ');
                    e.method = words.next().unwrap_or("");
                    let target = words.next().unwrap_or("");
                    e.path = target.split('?').next().unwrap_or("");
                }
                Field::Status => {
                    e.status = value
                        .parse()
                        .map_err(|_| Malformed::Field("status", value.into()))?
                }
                Field::RequestTime => {
                    let t = value
                        .parse::<f64>()
                        .ok()
                        .filter(|t| t.is_finite() && *t >= 0.0)
                        .ok_or_else(|| Malformed::Field("request_time", value.into()))?;
                    e.request_time_s = Some(t)
                }
                Field::UpstreamAddr => e.upstream_addr = value,
                Field::UpstreamResponseTime => e.upstream_response_time = value,
                Field::UpstreamStatus => e.upstream_status = value,
                Field::Other => {}
            }
        }
        e.time_s = time.expect("the format has a time field");
        Ok(e)
    }
}

/// Where a field that `literal` follows ends in `rest`. A list field goes on past a literal
/// that is part of its own separators (`, ` and ` : `).
fn field_end(rest: &str, literal: &str, list: bool) -> Option<usize> {
    let mut from = 0;
    loop {
        let end = from + rest[from..].find(literal)?;
        let inside = list
            && (rest[..end].ends_with(',')
                || rest[..end].ends_with(" :")
                || rest[end + literal.len()..].starts_with(": "));
        if !inside {
            return Some(end);
        }
        from = end + literal.len();
    }
}

/// The format text of a `log_format NAME [escape=...] '...' '...';` directive.
fn directive_text(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut pieces = 0;
    let mut rest = s;
    while let Some(i) = rest.find(['\'', '"']) {
        let quote = rest.as_bytes()[i] as char;
        let after = &rest[i + 1..];
        let end = after
            .find(quote)
            .ok_or_else(|| format!("log_format: an unclosed {quote} in {s:?}"))?;
        out.push_str(&after[..end]);
        pieces += 1;
        rest = &after[end + 1..];
    }
    if pieces == 0 {
        return Err(format!("log_format: no quoted format in {s:?}"));
    }
    Ok(out)
}

/// nginx's lists of upstream values: `a, b : c` (tried in turn, `:` an internal redirect);
/// a lone `-` is no upstream at all.
fn list(value: &str) -> impl Iterator<Item = &str> {
    let none = value == "-" || value.is_empty();
    value
        .split(", ")
        .flat_map(|v| v.split(" : "))
        .map(str::trim)
        .filter(move |v| !none && !v.is_empty())
}

/// The last second of 9999-12-31 UTC: later (or negative) times are a damaged field.
const LAST_TIME_S: f64 = 253_402_300_799.0;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `10/Oct/2000:13:55:36 -0700` as Unix seconds.
fn time_local(v: &str) -> Result<f64, Malformed> {
    let bad = || Malformed::Field("time_local", v.into());
    let (stamp, zone) = v.split_once(' ').ok_or_else(bad)?;
    let mut it = stamp.split(['/', ':']);
    let mut next = || it.next().ok_or_else(bad);
    let day: i64 = next()?.parse().map_err(|_| bad())?;
    let month = next()?;
    let month = MONTHS.iter().position(|m| *m == month).ok_or_else(bad)? as i64 + 1;
    let year: i64 = next()?.parse().map_err(|_| bad())?;
    let h: i64 = next()?.parse().map_err(|_| bad())?;
    let m: i64 = next()?.parse().map_err(|_| bad())?;
    let s: i64 = next()?.parse().map_err(|_| bad())?;
    let (sign, hhmm) = match zone.as_bytes().first() {
        Some(b'+') => (1, &zone[1..]),
        Some(b'-') => (-1, &zone[1..]),
        _ => return Err(bad()),
    };
    if hhmm.len() != 4 || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(bad());
    }
    let zone_s: i64 = hhmm[..2].parse::<i64>().map_err(|_| bad())? * 3600
        + hhmm[2..].parse::<i64>().map_err(|_| bad())? * 60;
    if !(1970..=9999).contains(&year) {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    let t = (days * 86_400 + h * 3600 + m * 60 + s - sign * zone_s) as f64;
    if !(0.0..=LAST_TIME_S).contains(&t) {
        return Err(bad());
    }
    Ok(t)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One request, as its log line tells it (borrowing the line: nothing is copied).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry<'a> {
    /// Unix seconds (whole seconds with `$time_local`).
    pub time_s: f64,
    pub method: &'a str,
    /// The request's path without its query string.
    pub path: &'a str,
    pub status: u16,
    pub request_time_s: Option<f64>,
    /// The raw upstream fields; [`Entry::upstream_addrs`] and the like split their lists.
    pub upstream_addr: &'a str,
    pub upstream_response_time: &'a str,
    pub upstream_status: &'a str,
}

impl<'a> Entry<'a> {
    /// The upstreams tried, in order.
    pub fn upstream_addrs(&self) -> impl Iterator<Item = &'a str> {
        list(self.upstream_addr)
    }

    /// Each attempt's status (`-`: no answer).
    pub fn upstream_statuses(&self) -> impl Iterator<Item = &'a str> {
        list(self.upstream_status)
    }
}

/// Why a line does not match its format.
#[derive(Clone, Debug, PartialEq)]
pub enum Malformed {
    Shape(&'static str),
    Field(&'static str, String),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Shape(why) => write!(f, "the line {why}"),
            Malformed::Field(name, v) => write!(f, "${name} is not one: {v:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combined_line_gives_its_time_request_and_status() {
        let f = LogFormat::parse("combined").unwrap();
        let e = f
            .line(r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#)
            .unwrap();
        // 2000-10-10 20:55:36 UTC.
        assert_eq!(e.time_s, 971_211_336.0);
        assert_eq!((e.method, e.path, e.status), ("GET", "/apache_pb.gif", 200));
        assert!(!f.has_upstream());
    }

    #[test]
    fn a_log_format_directive_with_upstream_fields_is_read_as_nginx_writes_it() {
        let f = LogFormat::parse(
            r#"log_format up '$remote_addr - $remote_user [$time_local] "$request" '
                             '$status $body_bytes_sent "$http_referer" "$http_user_agent" '
                             '$request_time $upstream_addr $upstream_response_time $upstream_status';"#,
        )
        .unwrap();
        assert!(f.has_upstream());
        let e = f
            .line(r#"10.0.0.9 - - [01/Dec/2026:22:47:00 +0000] "POST /api/order HTTP/1.1" 502 157 "-" "wrk" 0.004 127.0.0.1:9001, 127.0.0.1:9002 0.001, 0.003 502, 502"#)
            .unwrap();
        assert_eq!(e.status, 502);
        assert_eq!(e.request_time_s, Some(0.004));
        let addrs: Vec<&str> = e.upstream_addrs().collect();
        assert_eq!(addrs, ["127.0.0.1:9001", "127.0.0.1:9002"]);
        assert_eq!(e.upstream_statuses().collect::<Vec<_>>(), ["502", "502"]);
    }

    #[test]
    fn a_broken_line_says_what_is_wrong_and_a_bad_format_is_refused() {
        let f = LogFormat::parse("combined").unwrap();
        let e = f.line("garbage").unwrap_err();
        assert!(e.to_string().contains("ends before the format does"), "{e}");
        let e = f
            .line(r#"1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "-" "-""#)
            .unwrap_err();
        assert!(e.to_string().contains("$time_local"), "{e}");
        // Values nginx never writes, from a damaged file: refused, never a window at the end of
        // time or a histogram of infinite width.
        let f2 = LogFormat::parse("$msec $status $request_time").unwrap();
        for bad in [
            "1e300 200 0.1",
            "-5 200 0.1",
            "nan 200 0.1",
            "1.5 200 inf",
            "1.5 200 -1",
            "1.5 200 NaN",
        ] {
            assert!(f2.line(bad).is_err(), "{bad}");
        }
        let e = f
            .line(r#"1.2.3.4 - - [10/Oct/99999:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "-" "-""#)
            .unwrap_err();
        assert!(e.to_string().contains("$time_local"), "{e}");
        assert!(LogFormat::parse("$remote_addr $status").is_err(), "no time");
        assert!(LogFormat::parse("$msec$status").is_err(), "nothing between");
        assert!(LogFormat::parse("$msec $status").is_ok());
    }
}
