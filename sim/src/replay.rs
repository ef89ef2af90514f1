//! Incident replay (issue #11): what production left behind (an access log read by
//! [`crate::import`], an incident timeline, Prometheus `up` series) turned into a scenario a
//! person can read and edit ([`derive`]); a run of it scored against what was observed, window
//! by window ([`score`]); and the incident's signature (its SLO-breach windows), by which a
//! seed reproduces it or not.

use crate::import::prom;
use crate::import::timeline::{How, Kind, Timeline};
use crate::import::{zipf_alpha, Import, LogHist};
use crate::series::SecondRow;
use crate::workload::{bucket_upper_ns, BUCKETS};
use minitwin_components::math;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A window breaches the SLO when its users' error ratio or its p99 exceeds these.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slo {
    pub error_ratio: f64,
    pub p99_ms: f64,
}

/// What the replay starts from.
pub struct Inputs<'a> {
    /// The derived scenario's name.
    pub name: String,
    pub log: &'a Import,
    pub timeline: Option<&'a Timeline>,
    /// Prometheus `up` series' down intervals (Unix seconds) by `instance`.
    pub down: BTreeMap<String, Vec<(f64, f64)>>,
    pub slo: Slo,
    /// Seeds the derived scenario lists.
    pub seeds: Vec<u64>,
    /// Fields set by dotted path (what the operator knows: their nginx's timeouts).
    pub set: Vec<(String, toml::Value)>,
}

/// The most services a derived topology has (a tier's `count` limit).
const MAX_SERVICES: usize = 64;

/// A derived scenario.
#[derive(Clone, Debug)]
pub struct Derived {
    /// The scenario file's text, commented.
    pub text: String,
    /// `rates.csv` beside it.
    pub rates_csv: String,
    /// Each upstream address and the service that stands for it.
    pub nodes: Vec<(String, String)>,
    /// One line per inferred fault: what, when, from what evidence.
    pub faults: Vec<String>,
}

/// A fault on the replay's clock.
#[derive(Clone, Debug, PartialEq)]
struct Fault {
    at_s: f64,
    /// Until when (None: to the end).
    until_s: Option<f64>,
    node: String,
    how: How,
    why: String,
}

/// The scenario `inputs` describe. Errors: a log without requests, a timeline naming a node
/// the log does not know.
pub fn derive(inputs: &Inputs) -> Result<Derived, String> {
    let log = inputs.log;
    let (first, last) = log.span().ok_or("the log holds no request to replay")?;
    let duration_s = (last - first + log.window_s) as f64;
    if duration_s > crate::workload::MAX_RUN_S {
        return Err(format!(
            "the log spans {duration_s} s, more than a scenario runs ({} s): cut it to the incident's hours",
            crate::workload::MAX_RUN_S
        ));
    }
    let nodes: Vec<(String, String)> = log
        .upstream_windows
        .keys()
        .filter(|a| a.as_str() != "-" && !a.is_empty())
        .enumerate()
        .map(|(i, a)| (a.clone(), format!("service-{i}")))
        .collect();
    if nodes.len() > MAX_SERVICES {
        return Err(format!(
            "the log names {} upstream addresses; a tier of the twin has at most {MAX_SERVICES}: replay the log of one upstream group (grep its addresses)",
            nodes.len()
        ));
    }
    let mut t = String::new();
    let mut faults = Vec::new();
    let mut set: Vec<(String, toml::Value)> = Vec::new();
    let mut fault_text = String::new();
    if let Some(tl) = inputs.timeline {
        timeline_faults(
            tl,
            first as f64,
            &nodes,
            &mut faults,
            &mut fault_text,
            &mut set,
        )?;
    }
    if inputs.timeline.is_none() {
        for f in inferred_faults(log, first, &nodes, &inputs.down) {
            faults.push(f);
        }
    }
    for f in &faults {
        fault_toml(f, duration_s, &mut fault_text);
    }
    let mut step_line = None;
    if inputs.timeline.is_none() {
        if let Some((at, dur, extra)) = latency_step(log, first, &faults) {
            let _ = write!(
                fault_text,
                "\n# inferred: the p99 stepped up by {extra:.1} ms for {dur:.0} s from +{at:.0} s with no upstream failing (a latency step)\n[[faults]]\nkind = \"latency_spike\"\nat_s = {}\nbetween = [\"edge\", \"app\"]\nextra_ms = {}\nduration_s = {}\n",
                num(at),
                num(extra),
                num(dur)
            );
            step_line = Some(format!(
                "edge-app latency +{extra:.1} ms at +{at:.1} s for {dur:.1} s: the log's p99 stepped up with no upstream failing"
            ));
        }
    }
    header(inputs, duration_s, first, &mut t);
    topology(log, &nodes, &mut t);
    workload(log, &mut t);
    t.push_str(&fault_text);
    let _ = write!(
        t,
        "\n# The incident's SLO (minitwin replay --slo-error-ratio, --slo-p99-ms): a window breaches it\n# when its users' error ratio or its p99 is above these; a run fails when its whole error ratio is.\n[checks]\nmax_error_ratio = {}\n",
        num(inputs.slo.error_ratio)
    );
    let mut text = t;
    if !set.is_empty() {
        text = apply_config(
            &text,
            &set,
            "the timeline's config changes, set for the whole replay",
        )?;
    }
    if !inputs.set.is_empty() {
        text = apply_config(&text, &inputs.set, "set by minitwin replay --set")?;
    }
    Ok(Derived {
        text,
        rates_csv: crate::import::rates_csv(log),
        nodes,
        faults: faults
            .iter()
            .map(|f| {
                format!(
                    "{} {} at +{:.1} s{}: {}",
                    f.node,
                    how_word(f.how),
                    f.at_s,
                    f.until_s.map_or(", to the end".to_string(), |u| format!(
                        " for {:.1} s",
                        u - f.at_s
                    )),
                    f.why
                )
            })
            .chain(step_line)
            .collect(),
    })
}

fn how_word(h: How) -> &'static str {
    match h {
        How::Kill => "killed",
        How::Crash => "crashed",
        How::Hang => "hung",
    }
}

/// A number as TOML reads a float.
pub fn num(x: f64) -> String {
    let s = format!("{:.3}", x);
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0")
    } else {
        s.to_string()
    }
}

fn header(inputs: &Inputs, duration_s: f64, first: u64, t: &mut String) {
    let log = inputs.log;
    let seeds: Vec<String> = inputs.seeds.iter().map(u64::to_string).collect();
    let _ = write!(
        t,
        "# Derived by `minitwin replay` from an access log of {} requests over {} s (from Unix time\n# {first}, windows of {} s): every number below says where it came from. Edit freely;\n# `minitwin run` runs it, `minitwin replay` scores it against the log.\nname = \"{}\"\ndescription = \"an incident replayed from its access log\"\nduration_s = {}\nwarmup_s = 0.0\nseeds = [{}]\n",
        log.parsed,
        duration_s,
        log.window_s,
        inputs.name,
        num(duration_s),
        seeds.join(", ")
    );
}

fn topology(log: &Import, nodes: &[(String, String)], t: &mut String) {
    let names: Vec<String> = nodes.iter().map(|(a, n)| format!("{n} = {a}")).collect();
    let (dist, fit) = service_time(&log.upstream_latency);
    let statics = static_share(log);
    let _ = write!(
        t,
        "\n# One nginx (the log's) in front of one service per upstream address the log names\n# ({}). Links: loopback-like; set your network's.\n[topology]\nzones = [\"users\", \"edge\", \"app\"]\ndefault_link = {{ latency = {{ dist = \"shifted_exp\", min_ms = 0.03, extra_mean_ms = 0.02 }} }}\n\n[topology.gateways]\ncount = 1\nzones = [\"edge\"]\n[topology.gateways.config]\n# nginx's defaults (max_fails 1, fail_timeout 10 s, proxy_read_timeout 60 s): set yours.\ncache_enabled = {}\n\n[topology.services]\ncount = {}\nzones = [\"app\"]\n[topology.services.config]\n# Concurrency is not in an access log: ample workers, so that only the upstreams' own time counts.\nworkers = 64\nqueue_capacity = 256\n# {fit}\nservice_time = {dist}\n\n[topology.stores]\nshards = 1\nzones = [\"app\"]\n",
        if names.is_empty() { "none: give $upstream_addr in the log format".to_string() } else { names.join(", ") },
        statics > 0.0,
        nodes.len().max(1),
    );
}

/// The upstreams' response time as a distribution, and how it was fitted.
fn service_time(h: &LogHist) -> (String, String) {
    if h.is_empty() {
        return (
            "{ dist = \"exponential\", mean_ms = 5.0 }".into(),
            "no $upstream_response_time in the log: the twin's default".into(),
        );
    }
    let p50 = h.quantile_us(0.5) / 1e3;
    let p90 = h.quantile_us(0.9) / 1e3;
    let sigma = math::ln(p90 / p50) / 1.2816;
    if sigma < 0.05 {
        return (
            format!("{{ dist = \"constant\", ms = {} }}", num(p50)),
            format!("the upstreams answered in {p50:.2} ms (p50) to {p90:.2} ms (p90): constant"),
        );
    }
    (
        format!(
            "{{ dist = \"lognormal\", median_ms = {}, sigma = {} }}",
            num(p50),
            num(sigma)
        ),
        format!("lognormal through the upstreams' answers: p50 {p50:.2} ms, p90 {p90:.2} ms"),
    )
}

/// Routes that look like files (an extension) are static.
fn is_static(route: &str) -> bool {
    let path = route.split_once(' ').map_or(route, |r| r.1);
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once('.').is_some_and(|(_, ext)| {
        (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn static_share(log: &Import) -> f64 {
    let total: u64 = log.routes.values().sum();
    let s: u64 = log
        .routes
        .iter()
        .filter(|(r, _)| is_static(r))
        .map(|(_, n)| n)
        .sum();
    s as f64 / total.max(1) as f64
}

fn workload(log: &Import, t: &mut String) {
    let total: u64 = log.routes.values().sum::<u64>().max(1);
    let writes: u64 = log
        .routes
        .iter()
        .filter(|(r, _)| {
            let m = r.split(' ').next().unwrap_or("");
            matches!(m, "POST" | "PUT" | "PATCH" | "DELETE")
        })
        .map(|(_, n)| n)
        .sum();
    let write = writes as f64 / total as f64;
    let ids = log.ids.len().max(1);
    let (alpha, alpha_note) = match zipf_alpha(&log.ids) {
        Some(a) => (
            a,
            format!("fitted to the {} ids the paths name", log.ids.len()),
        ),
        None => (
            0.9,
            "too few ids in the paths to fit: the twin's default".to_string(),
        ),
    };
    let timeout = client_timeout_ms(log);
    let mut top: Vec<(&String, &u64)> = log.routes.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top
        .iter()
        .take(5)
        .map(|(r, n)| format!("{r} {:.1} %", 100.0 * **n as f64 / total as f64))
        .collect();
    let _ = write!(
        t,
        "\n# The request rate of every {} s window of the log (rates.csv). Routes: {}.\n# Reads and files are served by the service alone (an access log cannot see behind the\n# upstream): the twin's `static` route; the methods that write go to the store.\n[workload]\nrate = {{ curve = \"trace\", file = \"rates.csv\" }}\nusers = {ids}\nstatic_objects = {ids}\n# {alpha_note}\nzipf_alpha = {}\nmix = {{ static = {}, read = 0.0, write = {} }}\n# {}\ntimeout_ms = {}\n",
        log.window_s,
        top.join(", "),
        num(alpha),
        num(1.0 - write),
        num(write),
        timeout.1,
        num(timeout.0),
    );
}

/// The users' timeout: the median `$request_time` of the requests they gave up on (499), or
/// the twin's default.
fn client_timeout_ms(log: &Import) -> (f64, String) {
    let mut closed = LogHist::default();
    let mut n = 0u64;
    for w in log.windows.values() {
        n += w.client_closed;
    }
    if n == 0 || !log.has_latency {
        return (
            10_000.0,
            "no request given up on (499) in the log: the twin's default".into(),
        );
    }
    // The 499s' times are in the windows' histograms mixed with the others: the users' limit
    // is the highest latency any request reached that a 499 stands for, read as the p99.9 of
    // the windows holding 499s.
    for w in log.windows.values().filter(|w| w.client_closed > 0) {
        closed.merge(&w.latency);
    }
    let ms = (closed.quantile_us(0.999) / 1e3).max(1.0);
    (
        (ms / 100.0).round() * 100.0,
        format!("{n} requests were given up on (499) after about {ms:.0} ms: the users' timeout"),
    )
}

/// The faults the timeline names.
fn timeline_faults(
    tl: &Timeline,
    log_start: f64,
    nodes: &[(String, String)],
    faults: &mut Vec<Fault>,
    text: &mut String,
    set: &mut Vec<(String, toml::Value)>,
) -> Result<(), String> {
    let node_of = |name: &str| -> Result<String, String> {
        if let Some((_, n)) = nodes.iter().find(|(a, _)| a == name) {
            return Ok(n.clone());
        }
        if nodes.iter().any(|(_, n)| n == name)
            || ["gateway-", "store-", "zone:"]
                .iter()
                .any(|p| name.starts_with(p))
            || name.contains('*')
        {
            return Ok(name.to_string());
        }
        Err(format!(
            "the timeline names node `{name}`: neither an upstream in the log ({}) nor a node of the derived topology",
            nodes.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(", ")
        ))
    };
    let placed = tl.placed(log_start);
    for (i, p) in placed.iter().enumerate() {
        let e = &p.event;
        let note = e
            .note
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n})"));
        match e.kind {
            Kind::NodeDown => {
                let name = e.node.as_deref().unwrap_or_default();
                let node = node_of(name)?;
                let up = placed[i + 1..]
                    .iter()
                    .find(|q| q.event.kind == Kind::NodeUp && q.event.node == e.node)
                    .map(|q| q.at_s);
                faults.push(Fault {
                    at_s: p.at_s,
                    until_s: up,
                    node,
                    how: e.how.unwrap_or_default(),
                    why: format!("the timeline: {name} down{note}"),
                });
            }
            Kind::NodeUp => {}
            Kind::Deploy => {
                let node = node_of(e.node.as_deref().unwrap_or_default())?;
                let _ = write!(
                    text,
                    "\n# the timeline: a deploy restarts {node}{note}\n[[faults]]\nkind = \"restart\"\nat_s = {}\nnode = \"{node}\"\n",
                    num(p.at_s)
                );
            }
            Kind::Partition => {
                let a = node_of(e.a.as_deref().unwrap_or_default())?;
                let b = node_of(e.b.as_deref().unwrap_or_default())?;
                let _ = write!(
                    text,
                    "\n# the timeline: a partition{note}\n[[faults]]\nkind = \"partition\"\nat_s = {}\na = [\"{a}\"]\nb = [\"{b}\"]\nduration_s = {}\n",
                    num(p.at_s),
                    num(e.duration_s.unwrap_or(1.0))
                );
            }
            Kind::ConfigChange => {
                for (k, v) in e.set.iter().flatten() {
                    set.push((k.clone(), v.clone()));
                }
            }
            Kind::TrafficSpike => {
                let _ = write!(
                    text,
                    "\n# the timeline: a traffic spike x{} at +{:.0} s for {:.0} s{note}: already in the log's rates\n",
                    e.factor.unwrap_or(1.0),
                    p.at_s,
                    e.duration_s.unwrap_or(0.0)
                );
            }
        }
    }
    Ok(())
}

/// Faults read from the evidence without a timeline: an `up` series at 0 (Prometheus), else
/// an upstream whose attempts failed until it answered again (the log).
fn inferred_faults(
    log: &Import,
    first: u64,
    nodes: &[(String, String)],
    down: &BTreeMap<String, Vec<(f64, f64)>>,
) -> Vec<Fault> {
    let mut out = Vec::new();
    for (addr, node) in nodes {
        let windows = &log.upstream_windows[addr];
        let slow: u64 = windows.values().map(|a| a.failed_slow).sum();
        let failed: u64 = windows.values().map(|a| a.failed).sum();
        let how = if slow * 2 > failed {
            How::Hang
        } else {
            How::Kill
        };
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |h| h.0);
        let prom = down.get(addr).or_else(|| {
            let same_host: Vec<_> = down
                .iter()
                .filter(|(i, _)| i.rsplit_once(':').map_or(i.as_str(), |h| h.0) == host)
                .collect();
            (same_host.len() == 1 && nodes.iter().filter(|(a, _)| a.starts_with(host)).count() == 1)
                .then(|| same_host[0].1)
        });
        // When its first failed attempt began, in [from, to]: earlier than a scrape can see.
        let began = |from: f64, to: f64| {
            windows
                .values()
                .map(|a| a.first_failed_start_s)
                .filter(|&t| t >= from - 5.0 && t <= to)
                .fold(from, f64::min)
        };
        if let Some(intervals) = prom {
            for &(up_from, to) in intervals {
                let from = began(up_from, to);
                out.push(Fault {
                    at_s: (from - first as f64).max(0.0),
                    until_s: Some((to - first as f64).max(0.0)),
                    node: node.clone(),
                    how,
                    why: format!(
                        "Prometheus: up{{instance=\"{addr}\"}} was 0 from {up_from:.0} to {to:.0}; {failed} failed attempts in the log, the first begun at +{:.1} s{}",
                        from - first as f64,
                        if how == How::Hang { ", most of them silent for 0.5 s or more" } else { "" }
                    ),
                });
            }
            continue;
        }
        let mut down_since: Option<(f64, u64)> = None;
        for (&w, a) in windows {
            match down_since {
                None if a.failed > 0 => down_since = Some((a.first_failed_start_s, a.failed)),
                Some((from, n)) if a.ok > 0 => {
                    out.push(log_fault(node, addr, from, w as f64, n, first, how));
                    down_since = None;
                }
                Some((from, n)) => down_since = Some((from, n + a.failed)),
                None => {}
            }
        }
        if let Some((from, n)) = down_since {
            let mut f = log_fault(node, addr, from, from, n, first, how);
            f.until_s = None;
            out.push(f);
        }
    }
    out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    out
}

fn log_fault(node: &str, addr: &str, from: f64, to: f64, n: u64, first: u64, how: How) -> Fault {
    let (from, to) = ((from - first as f64).max(0.0), (to - first as f64).max(0.0));
    Fault {
        at_s: from,
        until_s: Some(to),
        node: node.to_string(),
        how,
        why: format!(
            "the log: {n} failed attempts at {addr}, the first begun at +{from:.1} s, its next answer at +{to:.0} s{}",
            if how == How::Hang { " (most silent for 0.5 s or more: a hang)" } else { " (refused or quick errors: a dead process)" }
        ),
    }
}

fn fault_toml(f: &Fault, duration_s: f64, t: &mut String) {
    let _ = write!(t, "\n# {}\n[[faults]]\n", f.why);
    match f.how {
        How::Hang => {
            let until = f.until_s.unwrap_or(duration_s).max(f.at_s + 0.001);
            let _ = write!(
                t,
                "# A hung process: connections accepted, nothing answered until it resumes, then what it\n# queued is answered (the gateway waits; a clog: delay, not drop).\nkind = \"clog\"\nat_s = {}\na = [\"{}\"]\nb = [\"{}\"]\nduration_s = {}\n",
                num(f.at_s),
                // A service's callers are the gateways; any other node's, everyone.
                if f.node.starts_with("service-") { "gateway-*" } else { "*" },
                f.node,
                num(until - f.at_s)
            );
        }
        How::Kill | How::Crash => {
            let _ = write!(
                t,
                "kind = \"{}\"\nat_s = {}\nnode = \"{}\"\n",
                if f.how == How::Kill { "kill" } else { "crash" },
                num(f.at_s),
                f.node
            );
            if let Some(u) = f.until_s {
                let _ = writeln!(t, "restart_after_s = {}", num((u - f.at_s).max(0.001)));
            }
        }
    }
}

/// A stretch of 3 or more windows whose p99 is 4 times the log's median window p99 (and 20 ms
/// more), outside the faults found: (start s, duration s, extra ms).
fn latency_step(log: &Import, first: u64, faults: &[Fault]) -> Option<(f64, f64, f64)> {
    let p99: Vec<(u64, f64)> = log
        .windows
        .iter()
        .filter(|(_, w)| !w.latency_ok.is_empty())
        .map(|(&t, w)| (t - first, w.latency_ok.quantile_us(0.99) / 1e3))
        .collect();
    if p99.len() < 10 {
        return None;
    }
    let mut sorted: Vec<f64> = p99.iter().map(|p| p.1).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let covered = |t: f64| {
        faults
            .iter()
            .any(|f| t + 1.0 >= f.at_s && f.until_s.is_none_or(|u| t <= u + 1.0))
    };
    let high = |v: f64| v > 4.0 * median && v > median + 20.0;
    let mut run: Vec<(u64, f64)> = Vec::new();
    let mut best: Option<Vec<(u64, f64)>> = None;
    for &(t, v) in &p99 {
        if high(v) && !covered(t as f64) && run.last().is_none_or(|l| l.0 + log.window_s == t) {
            run.push((t, v));
        } else {
            if run.len() >= 3 && best.as_ref().is_none_or(|b| b.len() < run.len()) {
                best = Some(run.clone());
            }
            run.clear();
            if high(v) && !covered(t as f64) {
                run.push((t, v));
            }
        }
    }
    if run.len() >= 3 && best.as_ref().is_none_or(|b| b.len() < run.len()) {
        best = Some(run);
    }
    let best = best?;
    let mut vals: Vec<f64> = best.iter().map(|p| p.1).collect();
    vals.sort_by(f64::total_cmp);
    Some((
        best[0].0 as f64,
        (best.len() as u64 * log.window_s) as f64,
        vals[vals.len() / 2] - median,
    ))
}

/// The scenario text with the timeline's config changes set (dotted paths, as variants do).
fn apply_config(text: &str, set: &[(String, toml::Value)], why: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let mut note = format!("\n# {why}:");
    for (path, value) in set {
        let mut item = doc.as_item_mut();
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            item = &mut item[*p];
            if item.is_none() {
                *item = toml_edit::table();
            }
        }
        let v: toml_edit::Value = value
            .to_string()
            .parse()
            .map_err(|e| format!("config_change `{path}`: {e}"))?;
        item[parts[parts.len() - 1]] = toml_edit::value(v);
        let _ = write!(note, " {path} = {value};");
    }
    Ok(format!("{doc}{note}\n"))
}

/// One window of the observed log and of a run, side by side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowMatch {
    pub t_s: u64,
    pub observed_requests: u64,
    pub observed_error_ratio: f64,
    /// None: no request answered below 400 in the window.
    pub observed_p99_ms: Option<f64>,
    pub simulated_requests: u64,
    pub simulated_error_ratio: f64,
    pub simulated_p99_ms: Option<f64>,
    pub observed_breach: bool,
    pub simulated_breach: bool,
}

impl WindowMatch {
    /// The window's distance: the error ratios' absolute difference plus the p99s'
    /// |log2(simulated / observed)| (0 when either has no p99). 0 is a perfect match; 1 is an
    /// error ratio 100 points off, or a p99 off by a factor of 2.
    pub fn distance(&self) -> f64 {
        let p99 = match (self.observed_p99_ms, self.simulated_p99_ms) {
            (Some(o), Some(s)) if o > 0.0 && s > 0.0 => (math::ln(s / o) / math::ln(2.0)).abs(),
            _ => 0.0,
        };
        (self.simulated_error_ratio - self.observed_error_ratio).abs() + p99
    }
}

/// A run scored against the log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Match {
    pub windows: Vec<WindowMatch>,
}

impl Match {
    pub fn mean_distance(&self) -> f64 {
        self.windows.iter().map(WindowMatch::distance).sum::<f64>()
            / self.windows.len().max(1) as f64
    }

    pub fn observed_breaches(&self) -> BTreeSet<u64> {
        self.windows
            .iter()
            .filter(|w| w.observed_breach)
            .map(|w| w.t_s)
            .collect()
    }

    pub fn simulated_breaches(&self) -> BTreeSet<u64> {
        self.windows
            .iter()
            .filter(|w| w.simulated_breach)
            .map(|w| w.t_s)
            .collect()
    }

    /// How well the run's SLO-breach windows match the log's: |both| / |either| (the Jaccard
    /// index; 1 when neither breached).
    pub fn signature_overlap(&self) -> f64 {
        let o = self.observed_breaches();
        let s = self.simulated_breaches();
        let either = o.union(&s).count();
        if either == 0 {
            return 1.0;
        }
        o.intersection(&s).count() as f64 / either as f64
    }

    /// A run reproduces the incident when its breach windows overlap the log's by half or more
    /// (signature overlap >= 0.5) and the log has a breach.
    pub fn reproduces(&self) -> bool {
        !self.observed_breaches().is_empty() && self.signature_overlap() >= REPRODUCES_AT
    }
}

/// The signature overlap at which a run reproduces the incident.
pub const REPRODUCES_AT: f64 = 0.5;

/// The users' seconds of a run merged into the log's windows.
#[derive(Clone, Debug, Default)]
pub struct SimWindows {
    window_s: u64,
    windows: BTreeMap<u64, (u64, u64, Vec<u32>)>,
}

impl SimWindows {
    pub fn new(window_s: u64) -> SimWindows {
        SimWindows {
            window_s,
            windows: BTreeMap::new(),
        }
    }

    /// Adds one second (its row and latency buckets), as [`crate::run::run_with`] hands them.
    pub fn push(&mut self, row: &SecondRow, buckets: &[u32]) {
        let w = row.t_s - row.t_s % self.window_s;
        let e = self
            .windows
            .entry(w)
            .or_insert_with(|| (0, 0, vec![0; BUCKETS]));
        e.0 += row.ok;
        e.1 += row.errors;
        for (a, b) in e.2.iter_mut().zip(buckets) {
            *a += b;
        }
    }
}

/// The run's windows against the log's, over the log's span.
pub fn score(log: &Import, sim: &SimWindows, slo: Slo) -> Match {
    let Some((first, last)) = log.span() else {
        return Match::default();
    };
    let mut out = Vec::new();
    let mut t = first;
    while t <= last {
        let rel = t - first;
        let o = log.windows.get(&t);
        let (ok, err, buckets) = sim
            .windows
            .get(&rel)
            .map_or((0, 0, None), |(a, b, c)| (*a, *b, Some(c)));
        let observed_requests = o.map_or(0, |w| w.requests);
        let observed_error_ratio =
            o.map_or(0.0, |w| w.user_errors() as f64 / w.requests.max(1) as f64);
        let observed_p99_ms = o
            .filter(|w| !w.latency_ok.is_empty())
            .map(|w| w.latency_ok.quantile_us(0.99) / 1e3);
        let simulated_p99_ms = buckets.and_then(|b| quantile_ms(b, 0.99));
        let simulated_error_ratio = err as f64 / (ok + err).max(1) as f64;
        let breach = |ratio: f64, p99: Option<f64>| {
            ratio > slo.error_ratio || p99.is_some_and(|p| p > slo.p99_ms)
        };
        out.push(WindowMatch {
            t_s: rel,
            observed_requests,
            observed_error_ratio,
            observed_p99_ms,
            simulated_requests: ok + err,
            simulated_error_ratio,
            simulated_p99_ms,
            observed_breach: observed_requests > 0 && breach(observed_error_ratio, observed_p99_ms),
            simulated_breach: ok + err > 0 && breach(simulated_error_ratio, simulated_p99_ms),
        });
        t += log.window_s;
    }
    Match { windows: out }
}

fn quantile_ms(buckets: &[u32], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().map(|&b| u64::from(b)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, &b) in buckets.iter().enumerate() {
        seen += u64::from(b);
        if seen >= rank {
            return Some(bucket_upper_ns(i) / 1e6);
        }
    }
    None
}

/// `match.csv`: the windows side by side.
pub fn match_csv(m: &Match) -> String {
    let mut out = String::from(
        "t_s,observed_requests,simulated_requests,observed_error_ratio,simulated_error_ratio,observed_latency_ms_p99,simulated_latency_ms_p99,observed_breach,simulated_breach,distance\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.3}"));
    for w in &m.windows {
        let _ = writeln!(
            out,
            "{},{},{},{:.6},{:.6},{},{},{},{},{:.4}",
            w.t_s,
            w.observed_requests,
            w.simulated_requests,
            w.observed_error_ratio,
            w.simulated_error_ratio,
            opt(w.observed_p99_ms),
            opt(w.simulated_p99_ms),
            u8::from(w.observed_breach),
            u8::from(w.simulated_breach),
            w.distance()
        );
    }
    out
}

/// Down intervals from Prometheus files: JSON (`query_range` answers) or CSV exports.
pub fn down_from_files(
    files: &[(String, String)],
) -> Result<BTreeMap<String, Vec<(f64, f64)>>, String> {
    let mut series = Vec::new();
    for (name, text) in files {
        let read = if name.ends_with(".json") {
            prom::from_json(text, "up")
        } else {
            prom::from_csv(text)
        };
        series.extend(read.map_err(|e| format!("{name}: {e}"))?);
    }
    Ok(prom::down_intervals(&series))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_distance_adds_the_error_gap_and_the_p99_octaves() {
        let w = WindowMatch {
            observed_error_ratio: 0.1,
            simulated_error_ratio: 0.3,
            observed_p99_ms: Some(10.0),
            simulated_p99_ms: Some(40.0),
            ..WindowMatch::default()
        };
        assert!((w.distance() - 2.2).abs() < 1e-9);
    }

    fn log_of(lines: &[String]) -> Import {
        let mut im = Import::new(1);
        let f = crate::import::Format::parse("upstream").unwrap();
        im.read(&f, lines.join("\n").as_bytes()).unwrap();
        im
    }

    fn nginx_line(s: u32, status: u16, rt: f64, up: &str, up_status: &str) -> String {
        format!(
            r#"10.0.0.1 - - [01/Dec/2026:10:{:02}:{:02} +0000] "GET /api/item/{s} HTTP/1.1" {status} 2 "-" "-" {rt:.3} {up} {rt:.3} {up_status}"#,
            s / 60,
            s % 60
        )
    }

    fn inputs(log: &Import) -> Inputs<'_> {
        Inputs {
            name: "t".into(),
            log,
            timeline: None,
            down: BTreeMap::new(),
            slo: Slo {
                error_ratio: 0.01,
                p99_ms: 500.0,
            },
            seeds: vec![1],
            set: Vec::new(),
        }
    }

    #[test]
    fn a_p99_step_with_no_upstream_failing_is_inferred_as_a_latency_spike() {
        let mut lines = Vec::new();
        for s in 0..60u32 {
            for i in 0..20 {
                let slow = (20..30).contains(&s);
                let rt = if slow { 0.200 } else { 0.005 };
                let up = ["10.0.0.2:80", "10.0.0.3:80"][i % 2];
                lines.push(nginx_line(s, 200, rt, up, "200"));
            }
        }
        let log = log_of(&lines);
        let d = derive(&inputs(&log)).unwrap();
        assert!(
            d.text.contains("kind = \"latency_spike\"\nat_s = 20.0"),
            "{}",
            d.text
        );
        assert!(d.text.contains("duration_s = 10.0"), "{}", d.text);
        assert_eq!(d.faults.len(), 1, "{:?}", d.faults);
        assert!(
            d.faults[0].starts_with("edge-app latency +"),
            "{:?}",
            d.faults
        );
        // The scenario it derives is one the twin loads.
        let s = crate::scenario::parse(
            std::path::Path::new("d.toml"),
            &d.text.replace(
                "curve = \"trace\", file = \"rates.csv\"",
                "curve = \"constant\", rps = 20.0",
            ),
        );
        assert!(s.is_ok(), "{:?}", s.err());
    }

    #[test]
    fn an_upstream_that_refuses_until_it_answers_again_is_inferred_as_killed() {
        let mut lines = Vec::new();
        for s in 0..40u32 {
            for i in 0..10 {
                let down = (10..20).contains(&s);
                if i % 2 == 0 && down {
                    lines.push(nginx_line(
                        s,
                        200,
                        0.001,
                        "10.0.0.2:80, 10.0.0.3:80",
                        "502, 200",
                    ));
                } else {
                    lines.push(nginx_line(
                        s,
                        200,
                        0.005,
                        ["10.0.0.2:80", "10.0.0.3:80"][i % 2],
                        "200",
                    ));
                }
            }
        }
        let log = log_of(&lines);
        let d = derive(&inputs(&log)).unwrap();
        assert_eq!(
            d.nodes[0],
            ("10.0.0.2:80".to_string(), "service-0".to_string())
        );
        assert!(
            d.faults[0].starts_with("service-0 killed at +10.5 s for 9.5 s"),
            "{:?}",
            d.faults
        );
        assert!(d.text.contains("kind = \"kill\""), "{}", d.text);
    }

    #[test]
    fn a_log_naming_more_upstreams_than_a_tier_holds_is_refused_with_what_to_do() {
        let lines: Vec<String> = (0..65u32)
            .map(|i| nginx_line(i, 200, 0.005, &format!("10.0.1.{i}:80"), "200"))
            .collect();
        let log = log_of(&lines);
        let e = derive(&inputs(&log)).unwrap_err();
        assert!(e.contains("65 upstream addresses"), "{e}");
    }

    #[test]
    fn routes_with_a_file_extension_are_static() {
        assert!(is_static("GET /static/app.js"));
        assert!(!is_static("GET /api/item/{id}"));
        assert!(!is_static("GET /v1.2/items"));
    }
}
