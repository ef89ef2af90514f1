//! Commands, arguments and the help text that teaches them.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// minitwin: a deterministic simulation testbed and digital twin of a mini-program backend.
///
/// Every run is a pure function of its scenario file, its seed and the commit: the same
/// inputs give byte-identical results and the same event-trace hash, so a seed is a bug report.
#[derive(Parser, Debug)]
#[command(name = "minitwin", version, about, long_about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  minitwin run scenarios/steady.toml                 run every seed listed in the file
  minitwin run scenarios/shard-crash.toml --seed 7   run one seed (the replay command of a failure)
  minitwin run scenarios/spike.toml --log run.jsonl  also write the event log as JSON lines
  minitwin check scenarios/*.toml                    validate files without running them
  minitwin lincheck history.log                      is a Jepsen register history linearizable?
  minitwin sweep scenarios/shard-crash.toml --seeds 200   many seeds in parallel: failing seeds,
                                                          recovery time and data lost as distributions
  minitwin sweep scenarios/steady.toml --seeds 5 --axis topology.stores.shards=2,4,8
                                                          a parameter grid times replications
  minitwin sweep scenarios/steady.toml --shard 2/4 ...; minitwin merge DIR...
                                                          one sweep across machines, then joined
  minitwin compare scenarios/compare-replication.toml      variants on the same seeds: paired
                                                          differences with 95 % intervals
  minitwin capacity scenarios/steady.toml                  max QPS under the scenario's SLO,
                                                          tier utilization, the bottleneck
  minitwin brief                                           the brief's table, regenerated
  minitwin replay tests/data/incident-hang                 a recorded incident's logs into a
                                                          scenario, its seeds searched and scored
  minitwin shrink SCENARIO --seed 1                        a failing scenario minimized into
                                                          scenarios/regressions/
  minitwin up deploy/loopback/cluster.toml --fresh         the same components as real processes
                                                          on 127.0.0.1 (--kill store-0@10: a drill)
  minitwin load deploy/loopback/cluster.toml --for 20      the scenario's users against them

Exit codes: 0 all checks passed, 1 the simulator crashed, 2 bad input (the error names the
            file, line and field) or an output that cannot be written, 3 a correctness check
            failed, 4 an SLO (liveness) check failed, 5 lincheck: undecided within its budget,
            130 interrupted (Ctrl-C: results so far are written and marked PARTIAL).
            sweep, compare: the worst over all runs (130, then 1, 2, 3, 4).

Budgets: run and sweep estimate a run's events and memory first and refuse one over 5e9
events or 4 GiB unless --force; lincheck gives up after --budget steps or --memory-mb.";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario and write its results (metrics.csv, timeseries.csv, summary.txt,
    /// trace_hash.txt, report.html).
    Run(RunArgs),
    /// Validate scenario files without running them (syntax, fields, names, ranges).
    Check(CheckArgs),
    /// Run a scenario over parameter axes times seeds in parallel (each run single-threaded),
    /// on one machine or as shards across many; report failing runs with their replay commands
    /// and metrics as distributions across runs.
    Sweep(SweepArgs),
    /// Run the baseline and every [[variants]] entry of a scenario on the same seeds (common
    /// random numbers) and report each metric's mean and its difference from the baseline with a
    /// 95 % confidence interval: throughput, p99, errors, recovery, data lost, storage
    /// efficiency, cost.
    Compare(CompareArgs),
    /// Find the highest constant offered rate whose p99 stays within an SLO with errors within a
    /// bound (bracketing from the scenario's rate, then bisection; replications at each step),
    /// each tier's utilization there, and the bottleneck.
    Capacity(CapacityArgs),
    /// Regenerate the design brief's comparison table (max QPS, fault recovery time, storage
    /// efficiency; monolith against distributed) from two calibrated scenarios, with the
    /// brief's numbers beside the twin's and why they differ (scenarios/BRIEF.md).
    Brief(BriefArgs),
    /// Join the shard tables of a sweep run across machines into sweep.csv, checking that they
    /// are one sweep and that every run is there once.
    Merge(MergeArgs),
    /// Check register histories in Jepsen's log format for linearizability (read, write,
    /// compare-and-set on one register that starts empty). Exit 0 all linearizable, 3 one is
    /// not, 5 one is undecided within the search budget, 2 a file is unreadable.
    Lincheck(LincheckArgs),
    /// Read an nginx access log into what a scenario needs: the arrival rate per window
    /// (rates.csv, a `trace` rate curve), errors and latency per window (windows.csv), the
    /// request mix (routes.csv) and the upstreams (upstreams.csv). Streams any size in bounded
    /// memory; malformed lines are counted and the first ones shown with their line numbers.
    /// Exit 0, or 2 when the file cannot be read or the format is bad.
    Import(ImportArgs),
    /// Replay a production incident: read what it left behind (an nginx access log, Prometheus
    /// `up` series, an incident timeline) into a scenario a person can read and edit, run it on
    /// many seeds in parallel, score each run against the log window by window (users' error
    /// ratio and p99), name the seeds that reproduce the incident (its SLO-breach windows) with
    /// their replay commands, and show a what-if beside it on the same seeds. Exit 0 when a
    /// seed reproduces the incident, 3 when none does, 2 on bad input.
    Replay(ReplayArgs),
    /// Shrink a failing scenario: delta debugging over its faults, then their times and
    /// durations, then the run's length and load, keeping every step that still fails the same
    /// way (the same checks fail), into the smallest scenario; written for
    /// scenarios/regressions/ with a comment saying what it reproduces.
    Shrink(ShrinkArgs),
    /// Run one node of a real cluster: the twin's own component (the same plan, node id and
    /// configuration as in simulation, from the scenario the cluster file names) as a process,
    /// over TCP to its peers, with its log on disk. Serves HTTP: /healthz, /metrics (Prometheus
    /// text, the twin's metric names), and on a gateway the users' routes (GET /static/N.js,
    /// GET /users/N, PUT /users/N with the value as the body). Logs JSON to stderr (the
    /// gateway's access events carry request ids: `minitwin replay --format json` reads them).
    /// SIGTERM or Ctrl-C drains: no new requests, those in flight answered, then exit 0.
    Node(NodeArgs),
    /// Start a whole real cluster on this machine: every node of the cluster file as a
    /// `minitwin node` process (JSON logs in the logs directory), wait until each answers
    /// /healthz, print where each listens; then run until --for elapses or Ctrl-C/SIGTERM, and
    /// stop every process it started by its pid (SIGTERM, then SIGKILL after the drain).
    /// `--kill store-0@10` SIGKILLs a node at +10 s (a failover drill); `--restart store-0@20`
    /// starts it again.
    Up(UpArgs),
    /// Drive a real cluster's gateways with the scenario's own workload: open loop (arrivals
    /// on a seeded Poisson schedule whatever the answers), the scenario's rate curve, request
    /// mix and Zipf popularity, HTTP/1.1 keep-alive; bounded by --for. Prints and writes
    /// (CSV per second) throughput, latency percentiles and every error by kind: a request
    /// refused by the connection cap, timed out or unanswered at the end is counted, never
    /// dropped from the tally. Exit 0; 1 when no request succeeded (is the cluster up?); 2 on
    /// bad input.
    Load(LoadArgs),
    /// Measure one real store node's acknowledged writes per second: CLIENTS closed-loop
    /// writers over the driver's protocol (each sends a write, waits for its acknowledgement,
    /// sends the next), for --for seconds; every write is durable (fsync, group commit) before
    /// it is acknowledged. For the comparison with MariaDB: calibration/speed.sh.
    BenchStore(BenchStoreArgs),
    /// Make a development CA and a certificate for every node of a cluster (for its `[tls]`):
    /// ca.pem and ca.key, and <node>.pem and <node>.key, each certificate for the DNS name
    /// <node>.<domain> (the node's identity under mutual TLS; its role is the plan's). For
    /// development and tests: production certificates come from your own CA.
    Certs(CertsArgs),
    /// List every metric the twin's nodes register (name, type, unit, help): what a
    /// `[monitoring]` rule or detector may name, and what metrics.csv and monitoring.csv hold.
    Metrics(MetricsArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  minitwin import access.log                               nginx's `combined` format
  minitwin import access.log --format upstream             combined + $request_time $upstream_addr
                                                           $upstream_response_time $upstream_status
  minitwin import access.log --format \"$(grep log_format /etc/nginx/nginx.conf)\"
                                                           whatever your log_format line says
  minitwin import run.jsonl --format json                  minitwin's own JSON log (minitwin run --log)
Then use DIR/<log>/rates.csv as [workload] rate = { curve = \"trace\", file = \"...\" }.")]
pub struct ImportArgs {
    /// The access log (a file, read line by line; `-` for standard input).
    pub log: PathBuf,
    /// Its format: `combined` (nginx's default), `upstream` (combined plus the four upstream
    /// fields), a format string of `$variables`, a whole `log_format NAME '...';` line, or
    /// `json` (minitwin's own JSON logs: the gateway's access events, from `minitwin run --log`
    /// or a production process).
    #[arg(long, default_value = "combined")]
    pub format: String,
    /// Seconds per window (rates, errors and latency are per window).
    #[arg(long, default_value_t = 1)]
    pub window_s: u64,
    /// Where the files go: DIR/<log file name>/{rates,windows,routes,upstreams}.csv.
    #[arg(long, default_value = "results/import")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  minitwin replay tests/data/incident-hang --timeline tests/data/incident-hang/timeline.toml
                          the recorded incident, its timeline saying what happened when
  minitwin replay tests/data/incident-hang --seeds 20
                          faults inferred from the log and Prometheus; 20 seeds searched
  minitwin replay tests/data/incident-hang --what-if topology.gateways.config.proxy_timeout_ms=500
                          the same seeds with nginx's proxy_read_timeout at 500 ms
Files in DIR: access.log (or the one *.log), prometheus*.json (query_range answers) and
prometheus*.csv (dashboard exports); their `up` series say when a target was down.
Writes OUT/<name>/: scenario.toml and rates.csv (the derived scenario: edit and `minitwin run`
it), match.csv (the best seed's windows beside the log's), seeds.csv, report.html.")]
pub struct ReplayArgs {
    /// The incident's directory (an access log, Prometheus exports).
    pub dir: PathBuf,
    /// The access log, if not DIR/access.log or DIR's only *.log.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// The log's format, as for `minitwin import`.
    #[arg(long, default_value = "upstream")]
    pub format: String,
    /// The incident timeline (TOML: node_down/node_up, partition, deploy, config_change,
    /// traffic_spike, with times); without it, faults are inferred from the log and Prometheus.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// Leave Prometheus exports in DIR unread.
    #[arg(long)]
    pub no_metrics: bool,
    /// Seconds per window (the arrival-rate curve's resolution and the scoring's).
    #[arg(long, default_value_t = 1)]
    pub window_s: u64,
    /// Seeds to run (seed search): FIRST..FIRST+N-1.
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// The first seed of the search.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// A window breaches the SLO when its users' error ratio is above this...
    #[arg(long, default_value_t = 0.01)]
    pub slo_error_ratio: f64,
    /// ...or its p99 (of the requests answered) is above this.
    #[arg(long, default_value_t = 500.0)]
    pub slo_p99_ms: f64,
    /// A field of the derived scenario set from what you know (dotted path=value; repeat for
    /// several), e.g. your nginx's topology.gateways.config.proxy_timeout_ms=500; written into
    /// scenario.toml.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// What-if: run the derived scenario with this field changed (dotted path=value; repeat
    /// for several) on the same seeds, beside the incident.
    #[arg(long = "what-if", value_name = "PATH=VALUE")]
    pub what_if: Vec<String>,
    /// The derived scenario's name (default: replay-<DIR's name>).
    #[arg(long)]
    pub name: Option<String>,
    /// Where it goes: OUT/<name>/.
    #[arg(long, default_value = "results/replay")]
    pub out: PathBuf,
    #[command(flatten)]
    pub many: Many,
}

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  minitwin shrink results/replay/replay-incident-hang/scenario.toml --seed 1
  minitwin shrink scenarios/primary-crash-async.toml --seed 1 --out scenarios/regressions/lost-writes.toml
The shrunk scenario keeps a [regression] table (what it reproduces, the seed, the checks it
fails); `cargo test` runs every file in scenarios/regressions/ and fails when one no longer
fails that way (the twin stopped reproducing it) or, with expect = \"pass\", when it fails.")]
pub struct ShrinkArgs {
    /// The failing scenario.
    pub scenario: PathBuf,
    /// The seed that fails.
    #[arg(long)]
    pub seed: u64,
    /// Where the shrunk scenario goes (with its rate trace beside it, if it keeps one).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What it reproduces, for the file's comment (default: the failing checks' messages).
    #[arg(long)]
    pub what: Option<String>,
    /// Every candidate must fail the same way on this many seeds, SEED and the next ones: a
    /// regression that holds on one seed only breaks at the next change of a random stream.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// At most this many candidates.
    #[arg(long, default_value_t = 400)]
    pub max_runs: u64,
}

#[derive(Args, Debug)]
pub struct CertsArgs {
    /// The cluster file.
    pub config: PathBuf,
    /// Where the files go (default: the cluster's `[tls] dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchStoreArgs {
    /// The store node's peer address (host:port), e.g. from `minitwin up`'s table.
    pub addr: String,
    /// Writers at once.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// Seconds of writing.
    #[arg(long = "for", default_value_t = 10.0)]
    pub for_s: f64,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The cluster file: its scenario's workload, its gateways' HTTP addresses.
    pub config: PathBuf,
    /// Seconds of load (the scenario's duration by default).
    #[arg(long = "for")]
    pub for_s: Option<f64>,
    /// A constant rate in requests per second instead of the scenario's curve.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Send to this address (host:port) instead of the cluster's gateways.
    #[arg(long)]
    pub target: Option<String>,
    /// The request mix as STATIC,READ,WRITE fractions (default: the scenario's), e.g. 0,1,0
    /// for reads only.
    #[arg(long)]
    pub mix: Option<String>,
    /// At most this many connections open at once; an arrival that finds all busy is
    /// counted as refused by the load generator (it would otherwise close the loop).
    #[arg(long, default_value_t = 512)]
    pub connections: usize,
    /// Seed of the arrival schedule and the keys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds at the start left out of the summary (as the scenario's warmup_s).
    #[arg(long)]
    pub warmup_s: Option<f64>,
    /// Where the per-second CSV goes (default: results/load/<scenario>-seed<S>.csv).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The cluster file (see deploy/loopback/cluster.toml).
    pub config: PathBuf,
    /// Stop everything after this many seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long = "for")]
    pub for_s: Option<f64>,
    /// NAME@SECONDS: SIGKILL that node then (repeatable).
    #[arg(long)]
    pub kill: Vec<String>,
    /// NAME@SECONDS: start that node again then (repeatable).
    #[arg(long)]
    pub restart: Vec<String>,
    /// Delete the cluster's data directory first (a fresh cluster).
    #[arg(long)]
    pub fresh: bool,
    /// Where the nodes' JSON logs go (default: `logs` beside the data directory).
    #[arg(long)]
    pub logs: Option<PathBuf>,
    /// Log level of the nodes.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The cluster file (see deploy/loopback/cluster.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Which kind of node: gateway, service, store, orchestrator, session, mirror, archiver,
    /// scaler, monitor, resharder.
    #[arg(long, required_unless_present = "name")]
    pub role: Option<String>,
    /// Which node of that role (0: the first in the plan; `minitwin up` lists them).
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// The node by its plan name instead (store-0-r1, gateway-0, ...).
    #[arg(long, conflicts_with = "role")]
    pub name: Option<String>,
    /// The cluster's clock epoch, Unix ms, the same for every node (default: the cluster
    /// file's `epoch_unix_ms`, else this node's start: timestamps that cross nodes are then
    /// not comparable).
    #[arg(long)]
    pub epoch_unix_ms: Option<u64>,
    /// Seed of the node's random streams (default: from the wall clock at start).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Runtime worker threads (the component itself is one event loop; more threads parse
    /// more HTTP at once but wake each other across cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Print CSV (name,type,unit,help) instead of aligned columns.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Args, Debug)]
pub struct LincheckArgs {
    /// History files (`INFO  jepsen.util - PROCESS  :invoke|:ok|:fail|:info  :read|:write|:cas  VALUE`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Give up (verdict undecided, exit 5) after this many search steps per history.
    #[arg(long, default_value_t = 50_000_000)]
    pub budget: u64,
    /// Give up (undecided, exit 5) once the search's memo holds this many MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory_mb: u64,
}

/// What every command of many runs takes: threads, quiet, the budget.
#[derive(Args, Debug)]
pub struct Many {
    /// Runs in parallel (default: one per core; each run is single-threaded).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run even when a run's estimated events or memory are over the budget (5e9 events,
    /// 4 GiB, and that times --jobs).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Replications per point (each point runs this many seeds).
    #[arg(long, visible_alias = "replications", default_value_t = 100)]
    pub seeds: u64,
    /// The master seed: run seeds are derived from (master seed, scenario, variant,
    /// replication), so a run's seed does not depend on the machine or shard it ran on.
    #[arg(long, default_value_t = 1)]
    pub master_seed: u64,
    /// A parameter axis, PATH=V1,V2,... (repeatable; the sweep runs their cartesian product):
    /// e.g. --axis topology.stores.shards=2,4,8 --axis workload.rate.rps=1000,2000. Values are
    /// TOML; a bare word is a string.
    #[arg(long, value_name = "PATH=V1,V2,...")]
    pub axis: Vec<String>,
    /// Give every point seeds of its own (by default every point runs the same seeds: common
    /// random numbers, so a difference between points is the parameter's).
    #[arg(long)]
    pub independent: bool,
    /// Run only shard M of N (every N-th run from the M-th, 0 <= M < N); `minitwin merge`
    /// joins the shards.
    #[arg(long, value_name = "M/N")]
    pub shard: Option<String>,
    /// Run one of N shards, its index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or
    /// SLURM_ARRAY_TASK_ID (a Slurm array, less SLURM_ARRAY_TASK_MIN).
    #[arg(long, value_name = "N")]
    pub shards: Option<u64>,
    /// Where the tables go: DIR/<scenario>/sweep/ (shard-M-of-N.csv and .toml; sweep.csv).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub many: Many,
}

#[derive(Args, Debug)]
pub struct BriefArgs {
    /// The monolith: its topology, workload, SLO ([checks] max_p99_ms), one fault and an
    /// archive.
    #[arg(long, default_value = "scenarios/brief-monolith.toml")]
    pub monolith: PathBuf,
    /// The distributed architecture, the same way.
    #[arg(long, default_value = "scenarios/brief-distributed.toml")]
    pub distributed: PathBuf,
    /// Seeds for every measurement (the same seeds for both architectures).
    #[arg(long, default_value_t = 5)]
    pub replications: u64,
    /// Simulated seconds each capacity run measures, after the scenario's warm-up.
    #[arg(long, default_value_t = 60.0)]
    pub capacity_duration_s: f64,
    /// The capacity search stops when its bracket is this narrow (a fraction).
    #[arg(long, default_value_t = 0.02)]
    pub tolerance: f64,
    /// Days of archiving before the storage efficiency is read.
    #[arg(long, default_value_t = 180.0)]
    pub storage_days: f64,
    /// Where the table goes: DIR/brief/{brief.md,brief.csv,report.html}.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub many: Many,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Directories holding a sweep's shard tables (results/<scenario>/sweep from each machine).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The merged table (default: sweep.csv in the first directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CapacityArgs {
    /// The scenario file: its topology and mix; its rate curve is replaced by a constant rate.
    pub scenario: PathBuf,
    /// Search this [[variants]] entry instead of the baseline.
    #[arg(long)]
    pub variant: Option<String>,
    /// The SLO's p99 client latency (default: the scenario's [checks] max_p99_ms).
    #[arg(long)]
    pub p99_ms: Option<f64>,
    /// The largest error ratio allowed (default: [checks] max_error_ratio, else 0.001).
    #[arg(long)]
    pub max_error_ratio: Option<f64>,
    /// Seeds per rate (the same seeds at every rate); a rate passes when the means do.
    #[arg(long, default_value_t = 3)]
    pub replications: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// The first rate tried (default: the scenario's peak rate); doubled or halved until the
    /// SLO is bracketed.
    #[arg(long)]
    pub start_rps: Option<f64>,
    /// Stop when the failing rate is within this fraction above the passing one.
    #[arg(long, default_value_t = 0.02)]
    pub tolerance: f64,
    /// Simulated seconds per run (default: the scenario's duration_s).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Where the tables go: DIR/<scenario>/capacity/{steps,utilization}.csv.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub many: Many,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The scenario file; its [[variants]] (name, description, set = { "dotted.field" = value })
    /// are the arms besides the baseline.
    pub scenario: PathBuf,
    /// Seeds per arm; every arm runs replication r on seed FIRST + r.
    #[arg(long, default_value_t = 10)]
    pub replications: u64,
    /// The first replication's seed.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Run each arm on seeds of its own (unpaired intervals), to see what common random
    /// numbers save.
    #[arg(long)]
    pub independent: bool,
    /// Where the tables go: DIR/<scenario>/compare/{runs,differences}.csv.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub many: Many,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario file (see scenarios/ for examples and results/README.md for the outputs).
    pub scenario: PathBuf,
    /// Run only this seed (default: every seed in the scenario's `seeds` list).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the scenario's [[variants]] entry of this name instead of the baseline; results go
    /// to DIR/<scenario>.<variant>/.
    #[arg(long)]
    pub variant: Option<String>,
    /// Override a field, PATH=VALUE (repeatable; TOML values, a bare word is a string), e.g.
    /// --set topology.stores.shards=4: the replay of a sweep's run.
    #[arg(long, value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Where results go: DIR/<scenario>/seed-<N>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Write tracing events (simulated time and node on each) to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// How much the log records: info (faults), debug (+ component events), trace (+ every message).
    #[arg(long, default_value = "debug", value_parser = ["info", "debug", "trace"])]
    pub log_level: String,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run even when the estimated events or memory are over the budget (5e9 events, 4 GiB).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Scenario files to validate.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
}
