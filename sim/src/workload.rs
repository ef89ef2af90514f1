//! The workload: an open-loop population of users, as one client node.
//!
//! Arrivals are Poisson with a time-varying rate (thinning against the curve's peak); each
//! arrival picks a user by Zipf popularity and a route by the request mix. Static routes ask for
//! a resource (Zipf over `static_objects`), reads and writes for the user's own record. Every
//! write carries a fresh value, so the history says exactly which writes were acknowledged.

use minitwin_components::config::{self, Checked};
use minitwin_components::deadline::DeadlineQueue;
use minitwin_components::detmap::Slab;
use minitwin_components::math;
use minitwin_components::metrics::{CounterId, HistId};
use minitwin_components::msg::{Request, Response, Route, Status};
use minitwin_components::rng::{ms_to_ns, Zipf};
use minitwin_components::{Component, Context, Msg, NodeId, Timer};
use serde::Deserialize;
use std::collections::VecDeque;

/// The longest run, in simulated seconds (400 days).
pub const MAX_RUN_S: f64 = 34_560_000.0;

/// The arrival rate over time.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "curve", rename_all = "snake_case", deny_unknown_fields)]
pub enum RateCurve {
    Constant {
        rps: f64,
    },
    /// Linear from `from_rps` at `start_s` to `to_rps` at `end_s`, flat outside.
    Ramp {
        from_rps: f64,
        to_rps: f64,
        start_s: f64,
        end_s: f64,
    },
    /// `mean_rps * (1 + amplitude * sin(2 pi (t - peak_s) / period_s + pi/2))`: peaks at `peak_s`.
    Diurnal {
        mean_rps: f64,
        amplitude: f64,
        period_s: f64,
        peak_s: f64,
    },
    /// `base_rps`, and `peak_rps` during [at_s, at_s + duration_s).
    Spike {
        base_rps: f64,
        peak_rps: f64,
        at_s: f64,
        duration_s: f64,
    },
    /// A diurnal base (as `diurnal`) times `factor` during [at_s, at_s + duration_s): with
    /// `every_s`, also every `every_s` before and after (a daily flash sale, in the history
    /// predictive scaling learns from); without it, once (a Singles'-Day-like event that no
    /// history holds).
    Surge {
        mean_rps: f64,
        amplitude: f64,
        period_s: f64,
        peak_s: f64,
        factor: f64,
        at_s: f64,
        duration_s: f64,
        every_s: Option<f64>,
    },
    /// A daily curve (as `diurnal` with a period of one day) times the factor of the day of
    /// the week: `day_factors[floor(t / 86,400) mod 7]` (day 0 is the run's first day).
    Weekly {
        mean_rps: f64,
        amplitude: f64,
        peak_s: f64,
        day_factors: [f64; 7],
    },
    /// The rate of a recorded trace: `file` (a CSV with the header `t_s,rps`, times increasing,
    /// relative to the scenario file's directory), linear between its points and flat before
    /// the first and after the last.
    Trace {
        file: String,
        /// The points, read by the scenario loader.
        #[serde(skip)]
        points: std::sync::Arc<Vec<(f64, f64)>>,
    },
}

const DAY_S: f64 = 86_400.0;

/// The rate of a trace's `points` at `t_s`: linear between them, flat outside.
fn trace_rate(points: &[(f64, f64)], t_s: f64) -> f64 {
    let i = points.partition_point(|p| p.0 <= t_s);
    match (i.checked_sub(1).map(|j| points[j]), points.get(i)) {
        (Some((t0, r0)), Some(&(t1, r1))) => r0 + (r1 - r0) * (t_s - t0) / (t1 - t0),
        (Some((_, r)), None) | (None, Some(&(_, r))) => r,
        (None, None) => 0.0,
    }
}

/// Where a trace is wrong: (1-based line, column name, message).
pub type TraceError = (usize, &'static str, String);

/// Reads a trace of rates: a CSV with the header `t_s,rps`, at most 1,000,000 points, times
/// increasing, rates 0-10,000,000. Errors name the line and the column.
pub fn read_trace(text: &str) -> Result<Vec<(f64, f64)>, TraceError> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if header != ["t_s", "rps"] {
        return Err((
            1,
            "t_s",
            format!("the header must be `t_s,rps`, found `{}`", header.join(",")),
        ));
    }
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != 2 {
            return Err((
                n,
                "t_s",
                format!("expected 2 cells (t_s,rps), found {}", cells.len()),
            ));
        }
        let num = |c: &str, field: &'static str| {
            c.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or((n, field, format!("`{c}` is not a number of 0 or more")))
        };
        let (t, r) = (num(cells[0], "t_s")?, num(cells[1], "rps")?);
        if t > MAX_RUN_S {
            return Err((
                n,
                "t_s",
                format!("{t} is past the longest run ({MAX_RUN_S} s)"),
            ));
        }
        if r > 1e7 {
            return Err((n, "rps", format!("{r} is over 10,000,000 req/s")));
        }
        if points.last().is_some_and(|p| p.0 >= t) {
            return Err((n, "t_s", format!("{t} is not after the previous time")));
        }
        if points.len() == 1_000_000 {
            return Err((n, "t_s", "more than 1,000,000 points".into()));
        }
        points.push((t, r));
    }
    if points.is_empty() {
        return Err((1, "rps", "the trace has no points".into()));
    }
    Ok(points)
}

/// `mean_rps * (1 + amplitude * cos(2 pi (t - peak_s) / period_s))`.
fn diurnal(mean_rps: f64, amplitude: f64, period_s: f64, peak_s: f64, t_s: f64) -> f64 {
    let phase = std::f64::consts::TAU * (t_s - peak_s) / period_s;
    mean_rps * (1.0 + amplitude * math::cos(phase))
}

impl RateCurve {
    /// Requests per second at `t_s`.
    pub fn rate(&self, t_s: f64) -> f64 {
        match *self {
            RateCurve::Constant { rps } => rps,
            RateCurve::Weekly {
                mean_rps,
                amplitude,
                peak_s,
                day_factors,
            } => {
                let day = (t_s / DAY_S).floor().rem_euclid(7.0) as usize;
                diurnal(mean_rps, amplitude, DAY_S, peak_s, t_s) * day_factors[day]
            }
            RateCurve::Trace { ref points, .. } => trace_rate(points, t_s),
            RateCurve::Ramp {
                from_rps,
                to_rps,
                start_s,
                end_s,
            } => {
                let f = ((t_s - start_s) / (end_s - start_s).max(1e-9)).clamp(0.0, 1.0);
                from_rps + (to_rps - from_rps) * f
            }
            RateCurve::Diurnal {
                mean_rps,
                amplitude,
                period_s,
                peak_s,
            } => diurnal(mean_rps, amplitude, period_s, peak_s, t_s),
            RateCurve::Surge {
                mean_rps,
                amplitude,
                period_s,
                peak_s,
                factor,
                at_s,
                duration_s,
                every_s,
            } => {
                let base = diurnal(mean_rps, amplitude, period_s, peak_s, t_s);
                let since = match every_s {
                    Some(every) => (t_s - at_s).rem_euclid(every),
                    None => t_s - at_s,
                };
                if (0.0..duration_s).contains(&since) {
                    base * factor
                } else {
                    base
                }
            }
            RateCurve::Spike {
                base_rps,
                peak_rps,
                at_s,
                duration_s,
            } => {
                if t_s >= at_s && t_s < at_s + duration_s {
                    peak_rps
                } else {
                    base_rps
                }
            }
        }
    }

    /// An upper bound of the rate over all time (for thinning).
    pub fn peak(&self) -> f64 {
        match *self {
            RateCurve::Constant { rps } => rps,
            RateCurve::Weekly {
                mean_rps,
                amplitude,
                day_factors,
                ..
            } => {
                mean_rps * (1.0 + amplitude.abs()) * day_factors.iter().fold(0.0, |a, &f| f.max(a))
            }
            RateCurve::Trace { ref points, .. } => points.iter().fold(0.0, |a, p| p.1.max(a)),
            RateCurve::Ramp {
                from_rps, to_rps, ..
            } => from_rps.max(to_rps),
            RateCurve::Diurnal {
                mean_rps,
                amplitude,
                ..
            } => mean_rps * (1.0 + amplitude.abs()),
            RateCurve::Spike {
                base_rps, peak_rps, ..
            } => base_rps.max(peak_rps),
            RateCurve::Surge {
                mean_rps,
                amplitude,
                factor,
                ..
            } => mean_rps * (1.0 + amplitude.abs()) * factor.max(1.0),
        }
    }

    /// Ranges: rates 0-10,000,000 req/s; times 0-34,560,000 s (400 days) with a ramp's
    /// `end_s` after its `start_s`; a diurnal `amplitude` 0-1 and `period_s` 1-34,560,000.
    pub fn validate(&self) -> Checked {
        let rps = |f: &str, v: f64| config::range(f, v, 0.0, 1e7);
        let at = |f: &str, v: f64| config::range(f, v, 0.0, MAX_RUN_S);
        match *self {
            RateCurve::Constant { rps: r } => rps("rps", r),
            RateCurve::Weekly {
                mean_rps,
                amplitude,
                peak_s,
                day_factors,
            } => {
                rps("mean_rps", mean_rps)?;
                config::fraction("amplitude", amplitude)?;
                at("peak_s", peak_s)?;
                for f in day_factors {
                    config::range("day_factors", f, 0.0, 100.0)?;
                }
                rps("mean_rps", self.peak())
            }
            // The loader read and checked the points, with the trace's own line numbers.
            RateCurve::Trace { .. } => Ok(()),
            RateCurve::Ramp {
                from_rps,
                to_rps,
                start_s,
                end_s,
            } => {
                rps("from_rps", from_rps)?;
                rps("to_rps", to_rps)?;
                at("start_s", start_s)?;
                at("end_s", end_s)?;
                config::rule(end_s > start_s, "end_s", "must be after start_s")
            }
            RateCurve::Diurnal {
                mean_rps,
                amplitude,
                period_s,
                peak_s,
            } => {
                rps("mean_rps", mean_rps)?;
                config::fraction("amplitude", amplitude)?;
                config::range("period_s", period_s, 1.0, MAX_RUN_S)?;
                at("peak_s", peak_s)?;
                rps("mean_rps", mean_rps * (1.0 + amplitude))
            }
            RateCurve::Spike {
                base_rps,
                peak_rps,
                at_s,
                duration_s,
            } => {
                rps("base_rps", base_rps)?;
                rps("peak_rps", peak_rps)?;
                at("at_s", at_s)?;
                at("duration_s", duration_s)
            }
            RateCurve::Surge {
                mean_rps,
                amplitude,
                period_s,
                peak_s,
                factor,
                at_s,
                duration_s,
                every_s,
            } => {
                rps("mean_rps", mean_rps)?;
                config::fraction("amplitude", amplitude)?;
                config::range("period_s", period_s, 1.0, MAX_RUN_S)?;
                at("peak_s", peak_s)?;
                config::range("factor", factor, 0.0, 1_000.0)?;
                at("at_s", at_s)?;
                config::range("duration_s", duration_s, 1e-3, MAX_RUN_S)?;
                if let Some(e) = every_s {
                    config::range("every_s", e, duration_s, MAX_RUN_S)?;
                }
                rps("mean_rps", mean_rps * (1.0 + amplitude) * factor.max(1.0))
            }
        }
    }
}

/// Fractions of static, read and write requests (they must add up to 1).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(rename = "static")]
    pub static_: f64,
    pub read: f64,
    pub write: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            static_: 0.6,
            read: 0.3,
            write: 0.1,
        }
    }
}

/// The workload section of a scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    pub rate: RateCurve,
    /// Size of the user population (keys of read/write routes).
    #[serde(default = "default_users")]
    pub users: u64,
    /// Zipf exponent of user and object popularity.
    #[serde(default = "default_zipf")]
    pub zipf_alpha: f64,
    /// Distinct cacheable resources.
    #[serde(default = "default_objects")]
    pub static_objects: u64,
    #[serde(default)]
    pub mix: Mix,
    /// The client gives up on a request after this long.
    #[serde(default = "default_client_timeout")]
    pub timeout_ms: f64,
    /// The zone the users are in.
    #[serde(default = "default_client_zone")]
    pub zone: String,
    /// A Jepsen-style register workload beside the users, for the linearizability check.
    pub registers: Option<crate::register::RegisterConfig>,
}

fn default_users() -> u64 {
    100_000
}
fn default_zipf() -> f64 {
    0.9
}
fn default_objects() -> u64 {
    10_000
}
fn default_client_timeout() -> f64 {
    10_000.0
}
fn default_client_zone() -> String {
    "users".into()
}

impl WorkloadConfig {
    /// Ranges: the rate curve's; `users` and `static_objects` 1-1e9; `zipf_alpha` 0.01-10;
    /// the mix fractions 0-1 adding up to 1; `timeout_ms` 1-1e9.
    pub fn validate(&self) -> Checked {
        config::nested("rate", self.rate.validate())?;
        let m = &self.mix;
        config::fraction("mix.static", m.static_)?;
        config::fraction("mix.read", m.read)?;
        config::fraction("mix.write", m.write)?;
        let sum = m.static_ + m.read + m.write;
        config::rule(
            (sum - 1.0).abs() <= 1e-6,
            "mix",
            format!(
                "fractions must add up to 1 (static {} + read {} + write {} = {sum})",
                m.static_, m.read, m.write
            ),
        )?;
        config::count("users", self.users, 1, 1_000_000_000)?;
        config::count("static_objects", self.static_objects, 1, 1_000_000_000)?;
        config::range("zipf_alpha", self.zipf_alpha, 0.01, 10.0)?;
        config::ms("timeout_ms", self.timeout_ms, 1.0)
    }
}

/// One write the users saw acknowledged (values are unique per write, so (key, value) names
/// it); the client hands them over as the run goes, for the durability check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckedWrite {
    pub key: u64,
    pub value: u64,
    pub ack_ns: u64,
}

/// The client's counts over the measured window: requests sent at or after the end of the
/// warm-up, and what became of them. `sent == ok + failed + unanswered` always.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    /// By kind: 429, 500, 502, 503, 504, timeout.
    pub errors: [u64; 6],
    /// Write requests of the window acknowledged with 200.
    pub acked_writes: u64,
    /// The exact sum of the latencies of the successful requests (the histogram rounds).
    pub ok_latency_ns_sum: u64,
}

impl Tally {
    pub const ERROR_KINDS: [&'static str; 6] = ["429", "500", "502", "503", "504", "timeout"];

    pub fn failed(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// Per-second counts, for the time series.
#[derive(Clone, Debug, Default)]
pub struct Second {
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub latency_ns_sum: u64,
    /// Latency histogram: 8 linear sub-buckets per power of two of nanoseconds (see
    /// [`latency_bucket`]); a quantile read from it is within 12.5 %.
    pub log2_buckets: Vec<u32>,
}

/// Buckets of [`Second::log2_buckets`].
pub const BUCKETS: usize = 64 * 8;

/// The bucket of a latency: its power of two, then which eighth of that octave.
pub fn latency_bucket(ns: u64) -> usize {
    let ns = ns.max(1);
    let msb = 63 - ns.leading_zeros() as usize;
    let sub = if msb >= 3 {
        ((ns >> (msb - 3)) & 7) as usize
    } else {
        ((ns << (3 - msb)) & 7) as usize
    };
    msb * 8 + sub
}

/// The upper edge, in nanoseconds, of bucket `i`.
pub fn bucket_upper_ns(i: usize) -> f64 {
    let (msb, sub) = (i / 8, i % 8);
    let base = (1u128 << msb) as f64;
    base + base * (sub + 1) as f64 / 8.0
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    route: Route,
    key: u64,
    value: u64,
    sent_ns: u64,
    /// Sent at or after the end of the warm-up: counted in the tally.
    in_window: bool,
}

struct Ids {
    sent: CounterId,
    sent_by_route: [CounterId; 3],
    acked_writes: CounterId,
    by_status: [CounterId; 6],
    timeouts: CounterId,
    latency: HistId,
    latency_by_route: [HistId; 3],
}

/// The client's latency histogram (successful requests of the window), by name.
pub const LATENCY_NS: &str = "client_latency_ns";

/// The client node.
pub struct Client {
    config: WorkloadConfig,
    gateways: Vec<NodeId>,
    users: Zipf,
    objects: Zipf,
    peak_rps: f64,
    outstanding: Slab<Outstanding>,
    deadlines: DeadlineQueue<u64>,
    due: Vec<u64>,
    next_value: u64,
    measure_from_ns: u64,
    stop_ns: u64,
    ids: Option<Ids>,
    /// Counts over the measured window.
    pub tally: Tally,
    /// Writes acknowledged (in the window) and not yet taken.
    acked: Vec<AckedWrite>,
    /// Per simulated second (by completion time) not yet taken: `seconds[0]` is second
    /// `first_second`.
    seconds: VecDeque<Second>,
    first_second: u64,
}

const TICK_ARRIVAL: u32 = 0;

/// Index of an outcome in [`Tally::errors`] (None for 200).
fn error_index(status: Status) -> Option<usize> {
    match status {
        Status::Ok => None,
        Status::TooManyRequests => Some(0),
        Status::Internal => Some(1),
        Status::BadGateway => Some(2),
        Status::Unavailable => Some(3),
        Status::GatewayTimeout => Some(4),
    }
}

impl Client {
    /// A client sending to `gateways` until `stop_ns` (simulated time), measuring requests sent
    /// from `measure_from_ns` (the end of the warm-up).
    pub fn new(
        config: WorkloadConfig,
        gateways: &[NodeId],
        measure_from_ns: u64,
        stop_ns: u64,
    ) -> Client {
        assert!(
            !gateways.is_empty(),
            "the workload needs a gateway to talk to"
        );
        Client {
            users: Zipf::new(config.users, config.zipf_alpha),
            objects: Zipf::new(config.static_objects, config.zipf_alpha),
            peak_rps: config.rate.peak(),
            gateways: gateways.to_vec(),
            outstanding: Slab::new(),
            deadlines: DeadlineQueue::new(),
            due: Vec::new(),
            next_value: 1,
            measure_from_ns,
            stop_ns,
            ids: None,
            tally: Tally::default(),
            acked: Vec::new(),
            seconds: VecDeque::new(),
            first_second: 0,
            config,
        }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Requests of the window still unanswered.
    pub fn unanswered(&self) -> u64 {
        self.tally.sent - self.tally.ok - self.tally.failed()
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn second(&mut self, now_ns: u64) -> &mut Second {
        let s = now_ns / 1_000_000_000;
        debug_assert!(s >= self.first_second, "seconds already taken are final");
        let i = (s - self.first_second) as usize;
        if self.seconds.len() <= i {
            self.seconds.resize_with(i + 1, || Second {
                log2_buckets: vec![0; BUCKETS],
                ..Second::default()
            });
        }
        &mut self.seconds[i]
    }

    /// Takes the acknowledged writes seen since the last call.
    pub fn take_acked(&mut self) -> Vec<AckedWrite> {
        std::mem::take(&mut self.acked)
    }

    /// Takes every second before `second` (they are final once the clock has passed them),
    /// as (second, counts).
    pub fn take_seconds_before(&mut self, second: u64) -> Vec<(u64, Second)> {
        let mut out = Vec::new();
        while self.first_second < second {
            let s = self.seconds.pop_front().unwrap_or_else(|| Second {
                log2_buckets: vec![0; BUCKETS],
                ..Second::default()
            });
            out.push((self.first_second, s));
            self.first_second += 1;
        }
        out
    }

    /// Schedules the next arrival by thinning: exponential gaps at the peak rate, each kept with
    /// probability rate(t) / peak.
    fn schedule_next(&mut self, ctx: &mut dyn Context) {
        if self.peak_rps <= 0.0 {
            return;
        }
        let mut t = ctx.now_ns();
        loop {
            t = t.saturating_add(ms_to_ns(ctx.rng().exp(1000.0 / self.peak_rps)).max(1));
            if t >= self.stop_ns {
                return;
            }
            let keep = self.config.rate.rate(t as f64 / 1e9) / self.peak_rps;
            if ctx.rng().unit() < keep {
                break;
            }
        }
        let after = t - ctx.now_ns();
        ctx.set_timer(after, Timer::Tick { kind: TICK_ARRIVAL });
    }

    fn arrive(&mut self, ctx: &mut dyn Context) {
        let now = ctx.now_ns();
        let user = self.users.sample(ctx.rng());
        let u = ctx.rng().unit();
        let mix = &self.config.mix;
        let route = if u < mix.static_ {
            Route::Static
        } else if u < mix.static_ + mix.read {
            Route::Read
        } else {
            Route::Write
        };
        let key = match route {
            Route::Static => self.objects.sample(ctx.rng()),
            Route::Read | Route::Write => user,
        };
        let in_window = now >= self.measure_from_ns;
        let value = if route == Route::Write {
            self.next_value += 1;
            self.next_value
        } else {
            0
        };
        let id = self.outstanding.insert(Outstanding {
            route,
            key,
            value,
            sent_ns: now,
            in_window,
        });
        let gateway = self.gateways[(user % self.gateways.len() as u64) as usize];
        ctx.send(
            gateway,
            Msg::Request(Request {
                id,
                route,
                key,
                value,
            }),
        );
        if in_window {
            self.tally.sent += 1;
            let (sent, by_route) = (self.ids().sent, self.ids().sent_by_route[route as usize]);
            ctx.metrics().add(sent, 1);
            ctx.metrics().add(by_route, 1);
        }
        self.second(now).sent += 1;
        self.deadlines.push(
            ctx,
            now.saturating_add(ms_to_ns(self.config.timeout_ms)),
            id,
        );
    }

    fn complete(&mut self, ctx: &mut dyn Context, r: Response) {
        let Some(o) = self.outstanding.remove(r.id) else {
            return; // answered after the client gave up
        };
        let now = ctx.now_ns();
        let latency = now - o.sent_ns;
        if o.in_window {
            self.tally_outcome(ctx, &o, r.status, latency);
        }
        let sec = self.second(now);
        if r.status.is_ok() {
            sec.ok += 1;
            sec.latency_ns_sum += latency;
            sec.log2_buckets[latency_bucket(latency)] += 1;
        } else {
            sec.errors += 1;
        }
    }

    fn tally_outcome(
        &mut self,
        ctx: &mut dyn Context,
        o: &Outstanding,
        status: Status,
        latency: u64,
    ) {
        let status_index = Status::ALL
            .iter()
            .position(|&s| s == status)
            .expect("known status");
        let ids = self.ids();
        let (by_status, hist, by_route, acked) = (
            ids.by_status[status_index],
            ids.latency,
            ids.latency_by_route[o.route as usize],
            ids.acked_writes,
        );
        let m = ctx.metrics();
        m.add(by_status, 1);
        match error_index(status) {
            None => {
                m.record(hist, latency);
                m.record(by_route, latency);
                self.tally.ok += 1;
                self.tally.ok_latency_ns_sum += latency;
                if o.route == Route::Write {
                    m.add(acked, 1);
                    self.tally.acked_writes += 1;
                    self.acked.push(AckedWrite {
                        key: o.key,
                        value: o.value,
                        ack_ns: ctx.now_ns(),
                    });
                }
            }
            Some(e) => self.tally.errors[e] += 1,
        }
    }

    fn on_deadlines(&mut self, ctx: &mut dyn Context) {
        let mut due = std::mem::take(&mut self.due);
        self.deadlines.fire(ctx, &mut due);
        let now = ctx.now_ns();
        for &id in &due {
            let Some(o) = self.outstanding.remove(id) else {
                continue;
            };
            if o.in_window {
                self.tally.errors[5] += 1;
                let t = self.ids().timeouts;
                ctx.metrics().add(t, 1);
            }
            self.second(now).errors += 1;
        }
        due.clear();
        self.due = due;
    }
}

impl Component for Client {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            sent: m.counter("client_requests_total"),
            sent_by_route: [
                m.counter("client_requests_static_total"),
                m.counter("client_requests_read_total"),
                m.counter("client_requests_write_total"),
            ],
            acked_writes: m.counter("client_acked_writes_total"),
            by_status: [
                m.counter("client_status_200_total"),
                m.counter("client_status_429_total"),
                m.counter("client_status_500_total"),
                m.counter("client_status_502_total"),
                m.counter("client_status_503_total"),
                m.counter("client_status_504_total"),
            ],
            timeouts: m.counter("client_timeouts_total"),
            latency: m.histogram(LATENCY_NS),
            latency_by_route: [
                m.histogram("client_latency_static_ns"),
                m.histogram("client_latency_read_ns"),
                m.histogram("client_latency_write_ns"),
            ],
        });
        self.schedule_next(ctx);
    }

    fn on_message(&mut self, ctx: &mut dyn Context, _from: NodeId, msg: Msg) {
        if let Msg::Response(r) = msg {
            self.complete(ctx, r);
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Tick { kind: TICK_ARRIVAL } => {
                self.arrive(ctx);
                self.schedule_next(ctx);
            }
            Timer::Deadlines => self.on_deadlines(ctx),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_lies_within_its_buckets_upper_edge_and_an_eighth_of_an_octave_below() {
        for ns in [
            1u64,
            2,
            7,
            8,
            9,
            1_000,
            1_048_576,
            80_000_000,
            123_456_789_012,
        ] {
            let upper = bucket_upper_ns(latency_bucket(ns));
            assert!(ns as f64 <= upper, "{ns} above {upper}");
            assert!(ns as f64 > upper / 1.126 - 1.0, "{ns} far below {upper}");
        }
    }

    #[test]
    fn a_spike_curve_is_at_its_peak_only_inside_the_window() {
        let c = RateCurve::Spike {
            base_rps: 100.0,
            peak_rps: 900.0,
            at_s: 10.0,
            duration_s: 5.0,
        };
        assert_eq!(c.rate(9.9), 100.0);
        assert_eq!(c.rate(10.0), 900.0);
        assert_eq!(c.rate(15.0), 100.0);
        assert_eq!(c.peak(), 900.0);
    }

    #[test]
    fn a_weekly_curve_scales_each_day_by_its_factor() {
        let c = RateCurve::Weekly {
            mean_rps: 100.0,
            amplitude: 0.5,
            peak_s: 0.0,
            day_factors: [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.5],
        };
        // Noon-peaked days: the same hour of day 5 is twice day 0's, of day 6 half.
        let at = |day: f64| c.rate(day * DAY_S + 3_600.0);
        assert!((at(5.0) / at(0.0) - 2.0).abs() < 1e-9);
        assert!((at(6.0) / at(0.0) - 0.5).abs() < 1e-9);
        assert!((at(7.0) - at(0.0)).abs() < 1e-9, "the week repeats");
        assert!((c.peak() - 300.0).abs() < 1e-9);
    }

    #[test]
    fn a_trace_curve_is_linear_between_its_points_and_flat_outside() {
        let points = read_trace("t_s,rps\n10,100\n20,300\n").unwrap();
        let c = RateCurve::Trace {
            file: "x.csv".into(),
            points: std::sync::Arc::new(points),
        };
        assert_eq!(c.rate(0.0), 100.0);
        assert_eq!(c.rate(15.0), 200.0);
        assert_eq!(c.rate(99.0), 300.0);
        assert_eq!(c.peak(), 300.0);
        assert_eq!(read_trace("t_s,rps\n1,2\n1,3\n").unwrap_err().0, 3);
    }

    #[test]
    fn a_diurnal_curve_peaks_at_its_peak_time() {
        let c = RateCurve::Diurnal {
            mean_rps: 100.0,
            amplitude: 0.5,
            period_s: 86_400.0,
            peak_s: 3_600.0,
        };
        assert!((c.rate(3_600.0) - 150.0).abs() < 1e-9);
        assert!((c.rate(3_600.0 + 43_200.0) - 50.0).abs() < 1e-9);
    }
}
