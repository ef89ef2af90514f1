//! Scenario files: topology, workload, faults, checks, duration and seeds, as TOML.
//!
//! Parsing is strict: unknown fields are errors, and every error (syntax, type, or a value that
//! does not make sense, such as a fault naming a node that does not exist) names the file, the
//! line and column, and the field, with the offending line quoted.

use crate::disk::DiskConfig;
use crate::net::LinkConfig;
use crate::plan::Plan;
use crate::workload::{WorkloadConfig, MAX_RUN_S};
use minitwin_components::config::{self, Checked};
use minitwin_components::gateway::GatewayConfig;
use minitwin_components::service::ServiceConfig;
use minitwin_components::store::StoreConfig;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Simulated run length.
    pub duration_s: f64,
    /// Metrics measured before this are discarded.
    #[serde(default)]
    pub warmup_s: f64,
    /// Seeds run by default (`--seed` overrides).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    pub topology: Topology,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub checks: Checks,
    #[serde(default)]
    pub buggify: BuggifyConfig,
    /// Prices for the cost of a run.
    #[serde(default)]
    pub cost: crate::cost::CostConfig,
    /// Node identities, mutual TLS and the access-control policy by role and message family.
    pub security: Option<minitwin_components::security::SecurityConfig>,
    /// A Prometheus-like monitor (a node `prometheus`): scrapes, retention, alerting rules,
    /// anomaly detectors.
    pub monitoring: Option<minitwin_components::monitor::MonitorConfig>,
    /// The service-level objective judged minute by minute (availability: the share of
    /// minutes inside it). Without it, an autoscaled scenario is judged at the brief's SLO.
    pub slo: Option<SloConfig>,
    /// Architecture variants compared with this scenario on the same seeds (`minitwin
    /// compare`): each overrides fields by dotted path.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// A regression scenario's record (scenarios/regressions/, written by `minitwin shrink`):
    /// what it reproduces and how its seed must end.
    pub regression: Option<Regression>,
}

/// What a regression scenario stands for: the test suite runs `seed` and expects the checks
/// in `failing_checks` to fail and no other (`expect = "fail"`: the twin still reproduces the
/// incident), or every check to pass (`expect = "pass"`: after the fix was written in).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    pub reproduces: String,
    pub seed: u64,
    #[serde(default = "default_expect")]
    pub expect: String,
    #[serde(default)]
    pub failing_checks: Vec<String>,
}

fn default_expect() -> String {
    "fail".into()
}

/// A variant of a scenario: `set` overrides fields by dotted path (`"topology.stores.shards" =
/// 8`, `"workload.rate" = { curve = "constant", rps = 4000.0 }`); a table replaces the whole
/// table at its path.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub set: toml::Table,
}

/// A minute is inside the SLO when its p99 is at most `p99_ms` and its failed share at most
/// `error_ratio` (defaults: the brief's 200 ms and 0.1 %).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    pub p99_ms: f64,
    pub error_ratio: f64,
}

impl Default for SloConfig {
    fn default() -> Self {
        SloConfig {
            p99_ms: 200.0,
            error_ratio: 0.001,
        }
    }
}

impl SloConfig {
    /// Ranges: `p99_ms` above 0 up to 1e9; `error_ratio` 0-1.
    pub fn validate(&self) -> Checked {
        config::range("p99_ms", self.p99_ms, 1e-6, 1e9)?;
        config::fraction("error_ratio", self.error_ratio)
    }

    /// The scenario's SLO for availability: its own, or the default for an autoscaled tier.
    pub fn of(s: &Scenario) -> Option<SloConfig> {
        s.slo
            .or_else(|| s.topology.autoscaler.as_ref().map(|_| SloConfig::default()))
    }
}

fn default_seeds() -> Vec<u64> {
    vec![1]
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub zones: Vec<String>,
    /// Link used within a zone and between zones with no `links` entry.
    #[serde(default)]
    pub default_link: LinkConfig,
    #[serde(default)]
    pub links: Vec<ZoneLink>,
    pub gateways: Tier<GatewayConfig>,
    pub services: Tier<ServiceConfig>,
    pub stores: StoreTier,
    /// Cross-zone mirroring of every shard to read-only copies in other zones.
    pub mirror: Option<MirrorTier>,
    /// The cold-storage archiver (a node `archiver` in the first store zone).
    pub archive: Option<ArchiveTier>,
    /// A live split of the (single) store shard into `to_shards` new ones.
    pub reshard: Option<ReshardTier>,
    /// The session cluster (Redis Cluster-like) and its client workload.
    pub sessions: Option<SessionTier>,
    /// The control tier: pods, endpoints, metrics-server and the HPA for the service tier
    /// (a node `control-plane` in the first service zone).
    pub autoscaler: Option<minitwin_components::scaler::ScalerConfig>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTier {
    pub masters: u32,
    #[serde(default)]
    pub replicas: u32,
    /// Masters round-robin over these zones; each replica in the next zone along.
    pub zones: Vec<String>,
    #[serde(default)]
    pub config: minitwin_components::session::node::SessionConfig,
    #[serde(default)]
    pub client: minitwin_components::session::client::SessionClientConfig,
    /// A slot migration (a node `session-admin` runs it).
    pub migrate: Option<minitwin_components::session::admin::MigrationPlan>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshardTier {
    pub to_shards: u32,
    #[serde(default)]
    pub config: minitwin_components::reshard::ReshardConfig,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveTier {
    #[serde(default)]
    pub config: minitwin_components::archive::ArchiveConfig,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorTier {
    /// One read-only copy of every shard in each of these zones.
    pub zones: Vec<String>,
    #[serde(default)]
    pub config: minitwin_components::mirror::MirrorConfig,
}

/// A link between two zones, both directions.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneLink {
    pub between: [String; 2],
    pub latency: minitwin_components::rng::Dist,
    #[serde(default)]
    pub loss: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier<C> {
    pub count: u32,
    /// Nodes are placed round-robin over these zones.
    pub zones: Vec<String>,
    #[serde(default)]
    pub config: C,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreTier {
    pub shards: u32,
    /// Primaries are placed round-robin over these zones; each replica in the next zone along.
    pub zones: Vec<String>,
    /// Replicas per shard (0: a single node per shard, no failover).
    #[serde(default)]
    pub replicas: u32,
    #[serde(default)]
    pub disk: DiskConfig,
    #[serde(default)]
    pub config: StoreConfig,
    /// The failover orchestrator, present when `replicas > 0`.
    #[serde(default)]
    pub orchestrator: minitwin_components::repl::OrchestratorConfig,
}

/// A fault, scheduled at `at_s`. Nodes are named (`store-0`), or selected by zone
/// (`zone:az-a`) or by prefix (`service-*`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Power loss: the host goes silent (callers wait for their timeouts) and what was not
    /// synced is lost; the node restarts after `restart_after_s` if given.
    Crash {
        at_s: f64,
        node: String,
        restart_after_s: Option<f64>,
    },
    /// The process dies on a host that stays up (`kill -9`, an OOM kill): new connections are
    /// refused at once, open ones are reset, what it wrote survives in the page cache; it
    /// restarts after `restart_after_s` if given.
    Kill {
        at_s: f64,
        node: String,
        restart_after_s: Option<f64>,
    },
    Restart {
        at_s: f64,
        node: String,
    },
    /// Drops every message from `a` to `b` (and back unless `one_way`) for `duration_s`.
    Partition {
        at_s: f64,
        duration_s: f64,
        a: Vec<String>,
        b: Vec<String>,
        #[serde(default)]
        one_way: bool,
    },
    /// Delays every message from `a` to `b` (and back unless `one_way`) sent during the window
    /// until the window ends: delay, not drop.
    Clog {
        at_s: f64,
        duration_s: f64,
        a: Vec<String>,
        b: Vec<String>,
        #[serde(default)]
        one_way: bool,
    },
    /// Loss probability between two zones for `duration_s`.
    Loss {
        at_s: f64,
        duration_s: f64,
        between: [String; 2],
        probability: f64,
    },
    /// Extra latency between two zones for `duration_s`.
    LatencySpike {
        at_s: f64,
        duration_s: f64,
        between: [String; 2],
        extra_ms: f64,
    },
    /// Moves a node's clock forward by `jump_ms` and/or makes it run `drift_ppm` fast (negative: slow).
    ClockSkew {
        at_s: f64,
        node: String,
        #[serde(default)]
        jump_ms: f64,
        #[serde(default)]
        drift_ppm: f64,
    },
    /// Multiplies a node's sync latency by `factor` for `duration_s`.
    DiskSlow {
        at_s: f64,
        duration_s: f64,
        node: String,
        factor: f64,
    },
    /// A rogue node: `node` (compromised, or without the rights it uses) attacks the nodes
    /// `targets` `rate_per_s` times a second for `duration_s`: `impersonate` sends store writes
    /// claiming to be `as_node`; `unauthorized` sends store writes as itself; `replay`
    /// re-sends the last message each target received, claiming its original sender.
    Rogue {
        at_s: f64,
        duration_s: f64,
        node: String,
        attack: Attack,
        #[serde(default)]
        as_node: Option<String>,
        targets: Vec<String>,
        #[serde(default = "default_rogue_rate")]
        rate_per_s: f64,
    },
    /// The autoscaler's metrics pipeline fails for `duration_s`: scrapes are lost (`lost`),
    /// or reach the HPA `delay_ms` late; the HPA goes blind, as it would.
    MetricsPipeline {
        at_s: f64,
        duration_s: f64,
        #[serde(default)]
        lost: bool,
        #[serde(default)]
        delay_ms: f64,
    },
    /// Appends and syncs fail with `probability` for `duration_s`.
    DiskErrors {
        at_s: f64,
        duration_s: f64,
        node: String,
        probability: f64,
    },
}

impl Fault {
    pub fn at_s(&self) -> f64 {
        match *self {
            Fault::Crash { at_s, .. }
            | Fault::Kill { at_s, .. }
            | Fault::Restart { at_s, .. }
            | Fault::Partition { at_s, .. }
            | Fault::Clog { at_s, .. }
            | Fault::Loss { at_s, .. }
            | Fault::LatencySpike { at_s, .. }
            | Fault::ClockSkew { at_s, .. }
            | Fault::DiskSlow { at_s, .. }
            | Fault::DiskErrors { at_s, .. }
            | Fault::MetricsPipeline { at_s, .. }
            | Fault::Rogue { at_s, .. } => at_s,
        }
    }

    /// When the fault is healed (None for a crash that is never restarted).
    pub fn end_s(&self) -> Option<f64> {
        match *self {
            Fault::Crash {
                at_s,
                restart_after_s,
                ..
            }
            | Fault::Kill {
                at_s,
                restart_after_s,
                ..
            } => restart_after_s.map(|d| at_s + d),
            Fault::Restart { at_s, .. } | Fault::ClockSkew { at_s, .. } => Some(at_s),
            Fault::Partition {
                at_s, duration_s, ..
            }
            | Fault::Clog {
                at_s, duration_s, ..
            }
            | Fault::Loss {
                at_s, duration_s, ..
            }
            | Fault::LatencySpike {
                at_s, duration_s, ..
            }
            | Fault::DiskSlow {
                at_s, duration_s, ..
            }
            | Fault::DiskErrors {
                at_s, duration_s, ..
            }
            | Fault::MetricsPipeline {
                at_s, duration_s, ..
            }
            | Fault::Rogue {
                at_s, duration_s, ..
            } => Some(at_s + duration_s),
        }
    }
}

/// A rogue node's attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    Impersonate,
    Unauthorized,
    Replay,
}

fn default_rogue_rate() -> f64 {
    10.0
}

/// What a run must satisfy. Correctness checks fail with exit code 3, SLO checks with 4.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Every acknowledged write is in its shard's durable log and state at the end.
    #[serde(default)]
    pub durability: bool,
    /// p99 client latency of successful requests (after warm-up) at most this.
    pub max_p99_ms: Option<f64>,
    /// Failed or timed-out requests over all requests, at most this.
    pub max_error_ratio: Option<f64>,
    /// Successful requests per second at least this.
    pub min_throughput_rps: Option<f64>,
    /// No two members of a shard acknowledge writes as primary over overlapping times.
    #[serde(default)]
    pub split_brain: bool,
    /// No message was served that the `[security]` policy, judged by its real sender, its
    /// role and its link's encryption, forbids (correctness).
    #[serde(default)]
    pub security: bool,
    /// Sessions: read-your-writes and monotonic reads hold wherever no failover happened
    /// (violations are counted and reported either way), and lost session writes are counted.
    #[serde(default)]
    pub sessions: bool,
    /// Every key of the register workload (`workload.registers`) has a linearizable history.
    #[serde(default)]
    pub linearizable: bool,
    /// Every mirror copy holds a prefix of its source's log in order (correctness) and, after
    /// `converge_within_s`, all of it (liveness).
    #[serde(default)]
    pub mirror: bool,
    /// After the workload stops (all faults healed), every shard's members must hold the same
    /// durable log within this many seconds: safety, then liveness.
    pub converge_within_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuggifyConfig {
    pub enabled: bool,
    /// Chance that a given fault point is enabled for a given seed.
    pub enable_probability: f64,
    /// Chance that an enabled point fires each time it is reached.
    pub fire_probability: f64,
}

impl Default for BuggifyConfig {
    fn default() -> Self {
        BuggifyConfig {
            enabled: false,
            enable_probability: 0.25,
            fire_probability: 0.05,
        }
    }
}

/// A scenario error with its place in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `faults[1].node`; empty when unknown.
    pub field: String,
    pub message: String,
    pub source_line: String,
}

impl ScenarioError {
    /// An error about the file as a whole (it cannot be read, or is not TOML at all).
    pub fn whole_file(path: &Path, message: String) -> ScenarioError {
        ScenarioError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message,
            source_line: String::new(),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if !self.source_line.is_empty() {
            write!(f, "\n{:>5} | {}", self.line, self.source_line)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path as `a.b[2].c`.
pub(crate) fn path_text(path: &[Seg]) -> String {
    path_string(path)
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

pub(crate) fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = read_limited(path, MAX_SCENARIO_BYTES)
        .map_err(|message| ScenarioError::whole_file(path, message))?;
    parse(path, &text)
}

/// Scenario files are small: anything larger is refused before it is read.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// Reads a regular file of at most `limit` bytes as UTF-8 (never a device or a pipe that
/// could stream for ever).
pub fn read_limited(path: &Path, limit: u64) -> Result<String, String> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a directory, device or pipe)".into());
    }
    if meta.len() > limit {
        return Err(format!(
            "the file is {} bytes, over the limit of {limit}",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("the file grew past the limit of {limit} bytes"));
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// Parses and validates scenario text, its variants included; `path` is used in error messages
/// only.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    Ok(parse_with_variants(path, text)?.0)
}

/// The scenario without its variants, parsed and validated.
fn parse_base(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| de_error(path, text, &e))?;
    let mut scenario = scenario;
    load_trace(path, text, &mut scenario)?;
    if let Err((field, message)) = validate(&scenario) {
        return Err(located(path, text, &field, message));
    }
    Ok(scenario)
}

/// A TOML file's syntax or shape error with its line, column and field.
pub fn de_error(path: &Path, text: &str, e: &toml::de::Error) -> ScenarioError {
    let offset = e.span().map(|s| s.start).unwrap_or(0);
    let (line, column) = line_col(text, offset);
    ScenarioError {
        file: path.to_path_buf(),
        line,
        column,
        field: field_at(text, offset),
        message: e.message().trim().to_string(),
        source_line: text
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
            .to_string(),
    }
}

/// Reads the points of a `trace` rate curve from its CSV, next to the scenario file.
pub(crate) fn load_trace(path: &Path, text: &str, s: &mut Scenario) -> Result<(), ScenarioError> {
    let crate::workload::RateCurve::Trace { file, points } = &mut s.workload.rate else {
        return Ok(());
    };
    let csv = path.parent().unwrap_or(Path::new(".")).join(&*file);
    let field = [
        Seg::Key("workload".into()),
        Seg::Key("rate".into()),
        Seg::Key("file".into()),
    ];
    let body = read_limited(&csv, 64 << 20)
        .map_err(|m| located(path, text, &field, format!("{}: {m}", csv.display())))?;
    let read = crate::workload::read_trace(&body).map_err(|(line, column_name, message)| {
        ScenarioError {
            file: csv.clone(),
            line,
            column: 1,
            field: column_name.to_string(),
            message,
            source_line: body
                .lines()
                .nth(line.saturating_sub(1))
                .unwrap_or("")
                .to_string(),
        }
    })?;
    *points = std::sync::Arc::new(read);
    Ok(())
}

/// An error at the field `field` of `text`, with its line and column.
pub(crate) fn located(path: &Path, text: &str, field: &[Seg], message: String) -> ScenarioError {
    let offset = locate(text, field).unwrap_or(0);
    let (line, column) = line_col(text, offset);
    ScenarioError {
        file: path.to_path_buf(),
        line,
        column,
        field: path_string(field),
        message,
        source_line: text
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
            .to_string(),
    }
}

/// The scenario at `path` and its variants (name, scenario), all validated.
pub fn load_with_variants(
    path: &Path,
) -> Result<(Scenario, Vec<(String, Scenario)>), ScenarioError> {
    let text = read_limited(path, MAX_SCENARIO_BYTES)
        .map_err(|message| ScenarioError::whole_file(path, message))?;
    parse_with_variants(path, &text)
}

/// The scenario in `text` (read from `path`) and its variants (name, scenario), all validated.
pub fn parse_with_variants(
    path: &Path,
    text: &str,
) -> Result<(Scenario, Vec<(String, Scenario)>), ScenarioError> {
    let base = parse_base(path, text)?;
    let variants = crate::variants::expand(path, text, &base)?;
    Ok((base, variants))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

/// Byte offset of the deepest part of `path` present in the document.
fn locate(text: &str, path: &[Seg]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut best = None;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut table_item: Option<&toml_edit::Table> = None;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                let found = match table_item {
                    Some(t) => t.get_key_value(k),
                    None => item.as_table_like().and_then(|t| t.get_key_value(k)),
                };
                let Some((key, value)) = found else {
                    return best;
                };
                best = key
                    .span()
                    .or_else(|| value.span())
                    .map(|s| s.start)
                    .or(best);
                item = value;
                table_item = None;
            }
            Seg::Index(i) => {
                if let Some(t) = item.as_array_of_tables().and_then(|a| a.get(*i)) {
                    best = t.span().map(|s| s.start).or(best);
                    table_item = Some(t);
                    continue;
                }
                let Some(v) = item.as_array().and_then(|a| a.get(*i)) else {
                    return best;
                };
                return v.span().map(|s| s.start).or(best);
            }
        }
    }
    best
}

/// The dotted path of the innermost key whose value covers byte `offset`. Every table is
/// searched, since a table's entries may sit anywhere in a file (`[a]`, then `[b]`, then
/// `[a.c]`); a table's header counts when no entry covers the offset.
fn field_at(text: &str, offset: usize) -> String {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return String::new();
    };
    let mut path = Vec::new();
    find_in_item(doc.as_item(), offset, &mut path);
    path_string(&path)
}

fn covers(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// Pushes onto `path` the way to the innermost key covering `offset`; false if none does.
fn find_in_item(item: &toml_edit::Item, offset: usize, path: &mut Vec<Seg>) -> bool {
    if let Some(aot) = item.as_array_of_tables() {
        for (i, t) in aot.iter().enumerate() {
            path.push(Seg::Index(i));
            if find_in_table(t, t.span(), offset, path) {
                return true;
            }
            path.pop();
        }
        return false;
    }
    if let Some(t) = item.as_table() {
        return find_in_table(t, t.span(), offset, path);
    }
    if let Some(t) = item.as_inline_table() {
        return find_in_table(t, t.span(), offset, path);
    }
    if let Some(arr) = item.as_array() {
        for (i, v) in arr.iter().enumerate() {
            if covers(v.span(), offset) {
                path.push(Seg::Index(i));
                if let Some(t) = v.as_inline_table() {
                    find_in_table(t, t.span(), offset, path);
                }
                return true;
            }
        }
        return false;
    }
    covers(item.span(), offset)
}

fn find_in_table(
    t: &dyn toml_edit::TableLike,
    header: Option<std::ops::Range<usize>>,
    offset: usize,
    path: &mut Vec<Seg>,
) -> bool {
    for (k, v) in t.iter() {
        path.push(Seg::Key(k.to_string()));
        let key_span = t.get_key_value(k).and_then(|(key, _)| key.span());
        if find_in_item(v, offset, path) || covers(key_span, offset) {
            return true;
        }
        path.pop();
    }
    covers(header, offset)
}

/// A validation failure: the field's path and what is wrong.
pub type Invalid = (Vec<Seg>, String);

/// A path of plain keys, as segments.
pub fn at(path: &[&str]) -> Vec<Seg> {
    path.iter().map(|k| key(k)).collect()
}

/// `Err` with `message` at `path` unless `ok`.
pub fn check(ok: bool, path: &[&str], message: impl Into<String>) -> Result<(), Invalid> {
    check_at(ok, at(path), message)
}

/// [`check`] at a path with indexes.
pub fn check_at(ok: bool, path: Vec<Seg>, message: impl Into<String>) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err((path, message.into()))
    }
}

/// A component's own validation, placed at `path`.
pub fn within(r: Checked, path: &[&str]) -> Result<(), Invalid> {
    r.map_err(|e| {
        let mut p = at(path);
        p.extend(field_segments(&e.field));
        (p, e.message)
    })
}

/// `tiers[0].price` as path segments.
fn field_segments(field: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        out.push(key(name));
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

/// A tier's node count (1 to 64) and its zones (at least one, all known).
pub fn count_and_zones(
    s: &Scenario,
    tier: &str,
    count_field: &str,
    count: u32,
    zones: &[String],
) -> Result<(), Invalid> {
    check(
        (1..=64).contains(&count),
        &["topology", tier, count_field],
        "must be between 1 and 64",
    )?;
    check(
        !zones.is_empty(),
        &["topology", tier, "zones"],
        "name at least one zone",
    )?;
    zones_known(&s.topology, zones, &["topology", tier, "zones"])
}

/// Checks what the types cannot: names that must exist, ranges, times inside the run.
pub fn validate(s: &Scenario) -> Result<(), Invalid> {
    within(valid_name(&s.name), &["name"])?;
    if let Some(r) = &s.regression {
        check(
            r.expect == "fail" || r.expect == "pass",
            &["regression", "expect"],
            "\"fail\" (the checks in failing_checks fail, and no other) or \"pass\" (every check passes)",
        )?;
        check(
            r.expect == "pass" || !r.failing_checks.is_empty(),
            &["regression", "failing_checks"],
            "name the checks that fail (expect = \"fail\")",
        )?;
    }
    within(
        config::range("duration_s", s.duration_s, 1e-3, MAX_RUN_S),
        &[],
    )?;
    check(
        s.warmup_s >= 0.0 && s.warmup_s < s.duration_s,
        &["warmup_s"],
        "must be >= 0 and less than duration_s",
    )?;
    check(
        (1..=100_000).contains(&s.seeds.len()),
        &["seeds"],
        "give 1 to 100000 seeds",
    )?;
    validate_links(&s.topology)?;
    let zones = &s.topology.zones;
    check(
        zones.contains(&s.workload.zone),
        &["workload", "zone"],
        format!(
            "zone `{}` is not in topology.zones {zones:?}",
            s.workload.zone
        ),
    )?;
    crate::tiers::validate(s)?;
    let plan = crate::tiers::plan(s);
    for (i, f) in s.faults.iter().enumerate() {
        validate_fault(f, i, s, &plan)?;
        if s.checks.converge_within_s.is_some() {
            let healed = f.end_s().is_some_and(|e| e <= s.duration_s);
            let field = vec![key("faults"), Seg::Index(i), key("kind")];
            check_at(healed, field, "checks.converge_within_s needs every fault healed before duration_s (give a crash restart_after_s)")?;
        }
    }
    let b = &s.buggify;
    within(
        config::fraction("enable_probability", b.enable_probability),
        &["buggify"],
    )?;
    within(
        config::fraction("fire_probability", b.fire_probability),
        &["buggify"],
    )?;
    within(validate_checks(&s.checks), &["checks"])?;
    within(s.cost.validate(), &["cost"])?;
    if let Some(slo) = &s.slo {
        within(slo.validate(), &["slo"])?;
    }
    if let Some(sec) = &s.security {
        within(sec.validate(), &["security"])?;
        for (i, sel) in sec.without_certificate.iter().enumerate() {
            let path = vec![key("security"), key("without_certificate"), Seg::Index(i)];
            check_at(
                !plan.select(sel).is_empty(),
                path,
                format!("`{sel}` selects no node"),
            )?;
        }
        // A grant naming a role no node has would silently grant nothing.
        let mut roles: Vec<&str> = plan.nodes.iter().map(|n| n.role.0).collect();
        roles.sort_unstable();
        roles.dedup();
        for (i, a) in sec.allow.iter().enumerate() {
            for (field, role) in [("from", &a.from), ("to", &a.to)] {
                let known = role == "*"
                    || role == minitwin_components::security::ANONYMOUS
                    || roles.contains(&role.as_str());
                let path = vec![key("security"), key("allow"), Seg::Index(i), key(field)];
                check_at(
                    known,
                    path,
                    format!("`{role}` is no role of this topology; roles are {roles:?}, `anonymous` and `*`"),
                )?;
            }
        }
    }
    if let Some((name, why)) = crate::checks::unmet(s) {
        return Err((at(&["checks", name]), why));
    }
    Ok(())
}

/// [`valid_name`] as a path-less error.
pub(crate) fn valid_name_check(name: &str) -> Result<(), Invalid> {
    within(valid_name(name), &[])
}

/// A scenario's name names its results directory: letters, digits, `-`, `_` and `.`, not
/// starting with a dot, at most 64 characters.
fn valid_name(name: &str) -> Checked {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    config::rule(
        ok,
        "",
        format!(
            "{name:?} cannot name a results directory: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        ),
    )
}

/// Ranges: `max_p99_ms` 0-1e9; `max_error_ratio` 0-1; `min_throughput_rps` 0-1e9;
/// `converge_within_s` 0-86,400.
fn validate_checks(c: &Checks) -> Checked {
    if let Some(v) = c.max_p99_ms {
        config::ms("max_p99_ms", v, 0.0)?;
    }
    if let Some(v) = c.max_error_ratio {
        config::fraction("max_error_ratio", v)?;
    }
    if let Some(v) = c.min_throughput_rps {
        config::range("min_throughput_rps", v, 0.0, 1e9)?;
    }
    if let Some(v) = c.converge_within_s {
        config::range("converge_within_s", v, 0.0, 86_400.0)?;
    }
    Ok(())
}

fn validate_links(t: &Topology) -> Result<(), Invalid> {
    check(
        (1..=64).contains(&t.zones.len()),
        &["topology", "zones"],
        "name 1 to 64 zones",
    )?;
    for (i, z) in t.zones.iter().enumerate() {
        let dup = t.zones[..i].contains(z);
        check(
            !dup,
            &["topology", "zones"],
            format!("zone `{z}` is listed twice"),
        )?;
    }
    within(link(&t.default_link), &["topology", "default_link"])?;
    for (i, l) in t.links.iter().enumerate() {
        let p = || vec![key("topology"), key("links"), Seg::Index(i)];
        for z in &l.between {
            check_at(
                t.zones.contains(z),
                [p(), vec![key("between")]].concat(),
                format!("zone `{z}` is not in topology.zones {:?}", t.zones),
            )?;
        }
        let r = link(&LinkConfig {
            latency: l.latency.clone(),
            loss: l.loss,
        });
        within_at(r, p())?;
    }
    Ok(())
}

/// A link's latency distribution and its loss (0-1).
fn link(l: &LinkConfig) -> Checked {
    config::nested("latency", l.latency.validate())?;
    config::fraction("loss", l.loss)
}

/// [`within`] at a path with indexes.
pub fn within_at(r: Checked, path: Vec<Seg>) -> Result<(), Invalid> {
    r.map_err(|e| {
        let mut p = path;
        p.extend(field_segments(&e.field));
        (p, e.message)
    })
}

/// Every zone in `zones` must be one of the topology's.
pub fn zones_known(t: &Topology, zones: &[String], path: &[&str]) -> Result<(), Invalid> {
    for z in zones {
        let known = t.zones.contains(z);
        check(
            known,
            path,
            format!("zone `{z}` is not in topology.zones {:?}", t.zones),
        )?;
    }
    Ok(())
}

fn validate_fault(f: &Fault, i: usize, s: &Scenario, plan: &Plan) -> Result<(), Invalid> {
    let p = |field: &str| vec![key("faults"), Seg::Index(i), key(field)];
    let at = f.at_s();
    check_at(
        at.is_finite() && at >= 0.0 && at <= s.duration_s,
        p("at_s"),
        format!(
            "must be within the run (0 to duration_s = {})",
            s.duration_s
        ),
    )?;
    let fault = vec![key("faults"), Seg::Index(i)];
    within_at(fault_ranges(f), fault)?;
    let nodes_exist = |sel: &str, field: &str| {
        check_at(
            !plan.select(sel).is_empty(),
            p(field),
            format!(
                "`{sel}` names no node; nodes are {:?} (or use zone:NAME, or a prefix with *)",
                plan.names()
            ),
        )
    };
    // The workload's clients measure the run: nothing crashes, skews or slows them.
    let node_fault_target = |sel: &str| {
        nodes_exist(sel, "node")?;
        let instrument = plan.by_name(sel).filter(|n| n.instrument);
        check_at(
            instrument.is_none(),
            p("node"),
            format!("`{sel}` is a workload client, the run's measuring instrument: faults may cut it off (partition, clog, loss) but not crash, skew or slow it"),
        )?;
        check_at(
            !plan.select_targets(sel).is_empty(),
            p("node"),
            format!("`{sel}` selects only workload clients, which node faults skip"),
        )
    };
    let zone_exists = |z: &str, field: &str| {
        check_at(
            s.topology.zones.iter().any(|x| x == z),
            p(field),
            format!("zone `{z}` is not in topology.zones {:?}", s.topology.zones),
        )
    };
    match f {
        Fault::Crash { node, .. }
        | Fault::Kill { node, .. }
        | Fault::Restart { node, .. }
        | Fault::ClockSkew { node, .. }
        | Fault::DiskSlow { node, .. }
        | Fault::DiskErrors { node, .. } => node_fault_target(node)?,
        Fault::Partition { a, b, .. } | Fault::Clog { a, b, .. } => {
            for sel in a {
                nodes_exist(sel, "a")?;
            }
            for sel in b {
                nodes_exist(sel, "b")?;
            }
        }
        Fault::Loss { between, .. } | Fault::LatencySpike { between, .. } => {
            zone_exists(&between[0], "between")?;
            zone_exists(&between[1], "between")?;
        }
        Fault::Rogue {
            node,
            attack,
            as_node,
            targets,
            ..
        } => {
            nodes_exist(node, "node")?;
            for sel in targets {
                nodes_exist(sel, "targets")?;
            }
            match (attack, as_node) {
                (Attack::Impersonate, Some(a)) => nodes_exist(a, "as_node")?,
                (Attack::Impersonate, None) => check_at(
                    false,
                    p("as_node"),
                    "an impersonation needs as_node: the node the rogue claims to be",
                )?,
                _ => {}
            }
        }
        Fault::MetricsPipeline { .. } => check_at(
            s.topology.autoscaler.is_some(),
            p("kind"),
            "a metrics_pipeline fault needs an autoscaler (topology.autoscaler)",
        )?,
    }
    Ok(())
}

/// Ranges: durations and `restart_after_s` 0-34,560,000 s; probabilities 0-1; `extra_ms` and
/// `jump_ms` 0-1e9 (clocks only jump forward: a slow clock is a negative `drift_ppm`);
/// `drift_ppm` within +-500,000; a disk-slow `factor` 0-1,000,000.
fn fault_ranges(f: &Fault) -> Checked {
    let duration = |d: f64| config::range("duration_s", d, 0.0, MAX_RUN_S);
    match *f {
        Fault::Crash {
            restart_after_s, ..
        }
        | Fault::Kill {
            restart_after_s, ..
        } => match restart_after_s {
            Some(d) => config::range("restart_after_s", d, 0.0, MAX_RUN_S),
            None => Ok(()),
        },
        Fault::Restart { .. } => Ok(()),
        Fault::Partition { duration_s, .. } | Fault::Clog { duration_s, .. } => {
            duration(duration_s)
        }
        Fault::Loss {
            duration_s,
            probability,
            ..
        }
        | Fault::DiskErrors {
            duration_s,
            probability,
            ..
        } => {
            duration(duration_s)?;
            config::fraction("probability", probability)
        }
        Fault::LatencySpike {
            duration_s,
            extra_ms,
            ..
        } => {
            duration(duration_s)?;
            config::ms("extra_ms", extra_ms, 0.0)
        }
        Fault::ClockSkew {
            jump_ms, drift_ppm, ..
        } => {
            config::ms("jump_ms", jump_ms, 0.0)?;
            config::range("drift_ppm", drift_ppm, -499_999.0, 499_999.0)
        }
        Fault::Rogue {
            duration_s,
            rate_per_s,
            ..
        } => {
            duration(duration_s)?;
            config::range("rate_per_s", rate_per_s, 1e-3, 1_000.0)?;
            config::range("duration_s", duration_s * rate_per_s, 0.0, 1e6)
        }
        Fault::MetricsPipeline {
            duration_s,
            delay_ms,
            ..
        } => {
            duration(duration_s)?;
            config::range("delay_ms", delay_ms, 0.0, 3.6e6)
        }
        Fault::DiskSlow {
            duration_s, factor, ..
        } => {
            duration(duration_s)?;
            config::range("factor", factor, 0.0, 1e6)
        }
    }
}
