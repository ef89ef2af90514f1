//! `minitwin load`: the scenario's users against a real cluster, open loop.
//!
//! Arrivals come from a seeded schedule (exponential gaps at the rate curve's rate, keys from
//! the same Zipf popularity as the twin's client), so two runs with one seed offer the same
//! requests at the same offsets; each is sent at its time whether or not earlier ones were
//! answered. Every request ends in exactly one bucket: ok, an HTTP status, a timeout (the
//! workload's `timeout_ms`), a connection error, or refused by the generator's connection
//! cap; the summary adds them up to what was sent.

use crate::cli::LoadArgs;
use hdrhistogram::Histogram;
use minitwin_components::rng::{Rng, Zipf};
use minitwin_sim::cluster::Cluster;
use minitwin_sim::workload::WorkloadConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub fn main(args: LoadArgs) -> u8 {
    match load(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("minitwin load: {e}");
            2
        }
    }
}

/// Answers with a larger body are a connection error (the gateway's are a few bytes).
const MAX_BODY_BYTES: usize = 16 << 20;
/// The schedule is made before the first request: at most this many arrivals.
const MAX_ARRIVALS: f64 = 20_000_000.0;

/// One request of the schedule.
#[derive(Clone, Debug)]
struct Arrival {
    at_s: f64,
    method: &'static str,
    path: String,
    body: Option<u64>,
}

/// The open-loop schedule: Poisson arrivals at the curve's rate over `for_s` seconds.
fn schedule(w: &WorkloadConfig, rate: Option<f64>, for_s: f64, seed: u64) -> Vec<Arrival> {
    let mut rng = Rng::stream(seed, "load");
    let keys = Zipf::new(w.users, w.zipf_alpha);
    let objects = Zipf::new(w.static_objects, w.zipf_alpha);
    let mut out = Vec::new();
    let mut t = 0.0;
    let mut value = seed.wrapping_mul(1_000_000_007);
    loop {
        let r = rate.unwrap_or_else(|| w.rate.rate(t)).max(1e-6);
        t += rng.exp(1.0 / r);
        if t >= for_s {
            return out;
        }
        let u = rng.unit();
        let arrival = if u < w.mix.static_ {
            Arrival {
                at_s: t,
                method: "GET",
                path: format!("/static/{}.js", objects.sample(&mut rng)),
                body: None,
            }
        } else if u < w.mix.static_ + w.mix.read {
            Arrival {
                at_s: t,
                method: "GET",
                path: format!("/users/{}", keys.sample(&mut rng)),
                body: None,
            }
        } else {
            value += 1;
            Arrival {
                at_s: t,
                method: "PUT",
                path: format!("/users/{}", keys.sample(&mut rng)),
                body: Some(value),
            }
        };
        out.push(arrival);
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Status(u16),
    Timeout,
    ConnectionError,
    Refused,
}

impl End {
    fn name(self) -> String {
        match self {
            End::Status(s) => s.to_string(),
            End::Timeout => "timeout".into(),
            End::ConnectionError => "connection_error".into(),
            End::Refused => "refused_by_generator".into(),
        }
    }
}

/// A keep-alive HTTP/1.1 connection. The answers it reads are minitwin's gateway's (a status
/// line, headers with Content-Length, the body); chunked answers are not read.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(s),
        })
    }

    /// Sends one request, reads the answer's status (and skips its body).
    async fn request(&mut self, a: &Arrival, host: &str) -> std::io::Result<u16> {
        let mut req = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", a.method, a.path);
        match a.body {
            Some(v) => {
                let body = v.to_string();
                req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            }
            None => req.push_str("\r\n"),
        }
        self.reader.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v
                        .trim()
                        .parse()
                        .ok()
                        .filter(|&n| n <= MAX_BODY_BYTES)
                        .ok_or_else(|| {
                            std::io::Error::other(format!("bad Content-Length {:?}", v.trim()))
                        })?;
                }
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).await?;
        Ok(status)
    }
}

/// What the run saw, per second of its schedule and over the measured window.
struct Tally {
    per_second: Vec<BTreeMap<End, u64>>,
    latency_per_second: Vec<Histogram<u64>>,
    window: BTreeMap<End, u64>,
    window_ok_latency: Histogram<u64>,
    warmup_s: f64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3).expect("valid bounds")
}

impl Tally {
    fn new(seconds: usize, warmup_s: f64) -> Tally {
        Tally {
            per_second: vec![BTreeMap::new(); seconds],
            latency_per_second: (0..seconds).map(|_| histogram()).collect(),
            window: BTreeMap::new(),
            window_ok_latency: histogram(),
            warmup_s,
        }
    }

    fn record(&mut self, at_s: f64, end: End, latency_ns: u64) {
        let sec = (at_s as usize).min(self.per_second.len() - 1);
        *self.per_second[sec].entry(end).or_default() += 1;
        let ok = end == End::Status(200);
        if ok {
            let _ = self.latency_per_second[sec].record(latency_ns.max(1_000));
        }
        if at_s >= self.warmup_s {
            *self.window.entry(end).or_default() += 1;
            if ok {
                let _ = self.window_ok_latency.record(latency_ns.max(1_000));
            }
        }
    }
}

struct Pool {
    idle: Mutex<Vec<Conn>>,
    open: std::sync::atomic::AtomicUsize,
    cap: usize,
}

async fn one(
    a: Arrival,
    target: Arc<String>,
    pool: Arc<Pool>,
    timeout: Duration,
    sent_at: Instant,
) -> (End, u64) {
    use std::sync::atomic::Ordering;
    let idle = pool.idle.lock().expect("pool lock").pop();
    let mut conn = match idle {
        Some(c) => c,
        None => {
            if pool.open.fetch_add(1, Ordering::SeqCst) >= pool.cap {
                pool.open.fetch_sub(1, Ordering::SeqCst);
                return (End::Refused, 0);
            }
            match tokio::time::timeout(timeout, Conn::open(&target)).await {
                Ok(Ok(c)) => c,
                _ => {
                    pool.open.fetch_sub(1, Ordering::SeqCst);
                    return (End::ConnectionError, 0);
                }
            }
        }
    };
    let left = timeout.saturating_sub(sent_at.elapsed());
    let result = tokio::time::timeout(left, conn.request(&a, &target)).await;
    let latency_ns = sent_at.elapsed().as_nanos() as u64;
    match result {
        Ok(Ok(status)) => {
            pool.idle.lock().expect("pool lock").push(conn);
            (End::Status(status), latency_ns)
        }
        Ok(Err(_)) => {
            pool.open.fetch_sub(1, Ordering::SeqCst);
            (End::ConnectionError, latency_ns)
        }
        Err(_) => {
            // The connection is mid-answer: it cannot be reused.
            pool.open.fetch_sub(1, Ordering::SeqCst);
            (End::Timeout, latency_ns)
        }
    }
}

/// `--mix S,R,W` into the workload's mix.
fn parse_mix(text: &str, w: &mut WorkloadConfig) -> Result<(), String> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--mix {text}: give three numbers STATIC,READ,WRITE"))?;
    let [st, r, wr] = parts[..] else {
        return Err(format!(
            "--mix {text}: give three numbers STATIC,READ,WRITE"
        ));
    };
    let sum = st + r + wr;
    if [st, r, wr].iter().any(|x| !(0.0..=1.0).contains(x)) || (sum - 1.0).abs() > 1e-6 {
        return Err(format!(
            "--mix {text}: fractions between 0 and 1 adding up to 1 (these add up to {sum})"
        ));
    }
    w.mix.static_ = st;
    w.mix.read = r;
    w.mix.write = wr;
    Ok(())
}

fn load(args: &LoadArgs) -> Result<u8, String> {
    let cluster = Cluster::load(&args.config)?;
    let mut w = cluster.scenario.workload.clone();
    if let Some(m) = &args.mix {
        parse_mix(m, &mut w)?;
    }
    let w = &w;
    let for_s = args.for_s.unwrap_or(cluster.scenario.duration_s);
    if !(for_s.is_finite() && for_s > 0.0 && for_s <= 86_400.0) {
        return Err(format!(
            "--for {for_s}: give more than 0 and at most 86400 seconds"
        ));
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0 && r <= 1e6) {
            return Err(format!(
                "--rate {r}: give a rate above 0, at most 1,000,000 requests per second"
            ));
        }
    }
    if args.connections == 0 {
        return Err("--connections 0: give at least 1".into());
    }
    let warmup_s = args.warmup_s.unwrap_or(cluster.scenario.warmup_s);
    if !(warmup_s.is_finite() && warmup_s >= 0.0) {
        return Err(format!("--warmup-s {warmup_s}: give 0 or more seconds"));
    }
    if warmup_s >= for_s {
        return Err(format!(
            "--for {for_s} leaves nothing after the warm-up of {warmup_s} s (the scenario's warmup_s unless --warmup-s): give a longer --for or --warmup-s 0"
        ));
    }
    let target = match &args.target {
        Some(t) => t.clone(),
        None => cluster
            .nodes
            .iter()
            .find(|n| n.role == Some("gateway") && n.runs)
            .map(|n| n.http_addr.clone())
            .ok_or_else(|| format!("{}: the scenario has no gateway", args.config.display()))?,
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results/load")
            .join(format!("{}-seed{}.csv", cluster.scenario.name, args.seed))
    });
    if let Some(d) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| format!("--out {}: {e}", d.display()))?;
    }
    // The schedule is made up front: its expected size (the curve's rate each second) is
    // bounded before anything is drawn.
    let expected: f64 = (0..for_s.ceil() as u64)
        .map(|t| args.rate.unwrap_or_else(|| w.rate.rate(t as f64)))
        .sum();
    if expected > MAX_ARRIVALS {
        return Err(format!(
            "{expected:.0} requests over {for_s} s: at most {MAX_ARRIVALS:.0} in one run; shorten --for or lower --rate"
        ));
    }
    let arrivals = schedule(w, args.rate, for_s, args.seed);
    let offered = arrivals.len();
    say!(
        "load: {offered} requests over {for_s} s to {target} ({:.1} req/s offered, open loop, seed {}, warm-up {warmup_s} s left out)",
        offered as f64 / for_s,
        args.seed
    );
    let timeout = Duration::from_secs_f64(w.timeout_ms / 1000.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let seconds = for_s.ceil() as usize + 1;
    let tally = Arc::new(Mutex::new(Tally::new(seconds, warmup_s)));
    let pool = Arc::new(Pool {
        idle: Mutex::new(Vec::new()),
        open: Default::default(),
        cap: args.connections,
    });
    let target = Arc::new(target);
    let late_ms = runtime.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(arrivals.len());
        let mut late_ms: f64 = 0.0;
        for a in arrivals {
            let due = start + Duration::from_secs_f64(a.at_s);
            tokio::time::sleep_until(due).await;
            late_ms = late_ms.max(due.elapsed().as_secs_f64() * 1000.0);
            let (tally, pool, target) = (tally.clone(), pool.clone(), target.clone());
            tasks.push(tokio::spawn(async move {
                let at_s = a.at_s;
                let (end, latency_ns) = one(a, target, pool, timeout, Instant::now()).await;
                tally
                    .lock()
                    .expect("tally lock")
                    .record(at_s, end, latency_ns);
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        late_ms
    });
    let tally = tally.lock().expect("tally lock");
    write_csv(&out, &tally).map_err(|e| format!("{}: {e}", out.display()))?;
    let sent: u64 = tally.window.values().sum();
    let ok = tally.window.get(&End::Status(200)).copied().unwrap_or(0);
    let window_s = for_s - warmup_s;
    let h = &tally.window_ok_latency;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
    say!(
        "  requests     {sent} sent after the warm-up: {ok} ok, {} failed",
        sent - ok
    );
    say!(
        "  throughput   {:.1} ok req/s",
        ok as f64 / window_s.max(1e-9)
    );
    if !h.is_empty() {
        say!(
            "  latency      p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms",
            ms(0.5),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1e6
        );
    }
    for (end, n) in tally.window.iter().filter(|(e, _)| **e != End::Status(200)) {
        say!("  error        {}: {n}", end.name());
    }
    say!(
        "  error ratio  {:.5}",
        (sent - ok) as f64 / (sent.max(1)) as f64
    );
    say!(
        "  generator    sent at most {late_ms:.1} ms late; per second: {}",
        out.display()
    );
    if ok == 0 && sent > 0 {
        eprintln!(
            "minitwin load: no request succeeded at {target}: is the cluster up? (`minitwin up {}`)",
            args.config.display()
        );
        return Ok(1);
    }
    Ok(0)
}

fn write_csv(path: &std::path::Path, t: &Tally) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "second,sent,ok,errors,latency_ms_p50,latency_ms_p99,by_kind"
    )?;
    for (s, (ends, h)) in t.per_second.iter().zip(&t.latency_per_second).enumerate() {
        let sent: u64 = ends.values().sum();
        let ok = ends.get(&End::Status(200)).copied().unwrap_or(0);
        let kinds: Vec<String> = ends
            .iter()
            .filter(|(e, _)| **e != End::Status(200))
            .map(|(e, n)| format!("{}={n}", e.name()))
            .collect();
        let q = |q: f64| {
            if h.is_empty() {
                String::new()
            } else {
                format!("{:.3}", h.value_at_quantile(q) as f64 / 1e6)
            }
        };
        writeln!(
            f,
            "{s},{sent},{ok},{},{},{},{}",
            sent - ok,
            q(0.5),
            q(0.99),
            kinds.join(" ")
        )?;
    }
    f.flush()
}
