//! Runs a scenario for one seed and gathers everything a report needs.

use crate::checks::{
    self, CheckResult, CopyView, MemberLog, Promise, ShardView, SloInputs, WriteAck,
};
use crate::kernel::Progress;
use crate::register::RegisterClient;
use crate::scenario::Scenario;
use crate::trace::TraceEntry;
use crate::workload::{Client, Second};
use crate::world::{build, s_to_ns, World};
use minitwin_components::archive::{ArchiveDay, Archiver};
use minitwin_components::metrics::Value;
use minitwin_components::msg::{StoreResponse, StoreResult};
use minitwin_components::repl::Orchestrator;
use minitwin_components::reshard::Resharder;
use minitwin_components::session::client::SessionClient;
use minitwin_components::session::node::SessionNode;
use minitwin_components::store::{ReplicationMode, Store};
use minitwin_components::{Msg, NodeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep every event for divergence reports (slow; tests only).
    pub record_trace: bool,
}

/// The headline numbers of a run (client's view, after warm-up).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub requests_total: u64,
    pub ok_total: u64,
    pub throughput_rps: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    /// (kind, count): 429, 500, 502, 503, 504, timeout.
    pub errors: Vec<(&'static str, u64)>,
    pub error_ratio: f64,
    pub cache_hit_ratio: f64,
    pub acked_writes_total: u64,
    pub lost_writes_total: u64,
    /// From the first fault to the end of the last second whose error ratio exceeded
    /// [`RECOVERY_ERROR_RATIO`] (0 when no second did; None without faults). The brief's
    /// "fault recovery time (fault to SLO restored)".
    pub recovery_s: Option<f64>,
    /// From the first fault to the orchestrator's first promotion (None without a failover).
    pub failover_s: Option<f64>,
}

/// A second with more failures than this fraction of its answers counts as degraded.
pub const RECOVERY_ERROR_RATIO: f64 = 0.01;

/// Recovery time for faults starting at `first_fault_s`, from per-second counts.
pub fn recovery_s(seconds: &[Second], first_fault_s: f64) -> f64 {
    let first = first_fault_s.floor() as usize;
    let degraded = |s: &Second| {
        let answered = s.ok + s.errors;
        answered > 0 && s.errors as f64 > RECOVERY_ERROR_RATIO * answered as f64
    };
    match (first..seconds.len())
        .rev()
        .find(|&t| degraded(&seconds[t]))
    {
        Some(last) => (last + 1) as f64 - first_fault_s,
        None => 0.0,
    }
}

/// One row of the long-format results.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub component: String,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
}

pub struct RunOutcome {
    pub scenario: String,
    pub seed: u64,
    pub trace_hash: u64,
    pub events_total: u64,
    pub summary: Summary,
    pub rows: Vec<Row>,
    pub seconds: Vec<Second>,
    pub checks: Vec<CheckResult>,
    pub trace: Option<Vec<TraceEntry>>,
    /// The archiver's daily accounting (empty without an archiver).
    pub archive_days: Vec<ArchiveDay>,
}

impl RunOutcome {
    /// The failing check class with the highest priority (correctness first), if any.
    pub fn failure(&self) -> Option<checks::Class> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.class)
            .min()
    }
}

/// Runs `scenario` with `seed` to its end.
pub fn run(
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> RunOutcome {
    let mut world = build(scenario, seed, options.record_trace);
    let acks = Rc::new(RefCell::new(Vec::new()));
    if scenario.checks.split_brain {
        let (seen, stores) = (acks.clone(), world.shard_members.concat());
        world.sim.set_tap(Box::new(move |at_ns, from, _to, msg| {
            if let Msg::StoreReply(StoreResponse {
                result: StoreResult::Written { epoch, .. },
                ..
            }) = msg
            {
                if stores.contains(&from) {
                    seen.borrow_mut().push(WriteAck {
                        at_ns,
                        node: from,
                        epoch: *epoch,
                    });
                }
            }
        }));
    }
    world.sim.run_until(world.end_ns, progress);
    if let Some(settle_s) = scenario.checks.converge_within_s {
        world
            .sim
            .run_until(world.end_ns + s_to_ns(settle_s), progress);
    }
    let acks = acks.borrow().clone();
    finish(scenario, seed, world, &acks)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn first_fault_s(scenario: &Scenario) -> Option<f64> {
    scenario.faults.iter().map(|f| f.at_s()).reduce(f64::min)
}

fn summarize(scenario: &Scenario, world: &World, lost: u64) -> Summary {
    let m = &world.sim.env(world.client).metrics;
    let c = |n: &str| m.counter_value(n).unwrap_or(0);
    let errors = vec![
        ("429", c("client_status_429_total")),
        ("500", c("client_status_500_total")),
        ("502", c("client_status_502_total")),
        ("503", c("client_status_503_total")),
        ("504", c("client_status_504_total")),
        ("timeout", c("client_timeouts_total")),
    ];
    let ok = c("client_status_200_total");
    let failed: u64 = errors.iter().map(|e| e.1).sum();
    let window_s = scenario.duration_s - scenario.warmup_s;
    let h = m
        .histogram_value("client_latency_ns")
        .expect("client registers latency");
    let (hits, misses) = world.gateways.iter().fold((0, 0), |(h, mi), &g| {
        let gm = &world.sim.env(g).metrics;
        (
            h + gm.counter_value("gateway_cache_hits_total").unwrap_or(0),
            mi + gm.counter_value("gateway_cache_misses_total").unwrap_or(0),
        )
    });
    let acked = world
        .sim
        .component::<Client>(world.client)
        .map_or(0, |c| c.acked_writes.len() as u64);
    Summary {
        requests_total: c("client_requests_total"),
        ok_total: ok,
        throughput_rps: ok as f64 / window_s,
        latency_ms_p50: ms(h.value_at_quantile(0.5)),
        latency_ms_p99: ms(h.value_at_quantile(0.99)),
        latency_ms_p999: ms(h.value_at_quantile(0.999)),
        error_ratio: if ok + failed == 0 {
            0.0
        } else {
            failed as f64 / (ok + failed) as f64
        },
        errors,
        cache_hit_ratio: if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        },
        acked_writes_total: acked,
        lost_writes_total: lost,
        recovery_s: first_fault_s(scenario).map(|at| {
            let seconds = world
                .sim
                .component::<Client>(world.client)
                .map_or(&[][..], |c| &c.seconds[..]);
            recovery_s(seconds, at)
        }),
        failover_s: first_fault_s(scenario)
            .zip(
                world
                    .orchestrator
                    .and_then(|n| world.sim.component::<Orchestrator>(n))
                    .and_then(|o| o.failovers.first())
                    .map(|f| f.at_ns as f64 / 1e9),
            )
            .map(|(fault, promoted)| promoted - fault),
    }
}

/// The member whose log speaks for the shard at the end: the up primary of the highest epoch,
/// else the member with the longest durable log.
fn authority(sim: &crate::kernel::Sim, members: &[NodeId]) -> NodeId {
    let primary = members
        .iter()
        .filter_map(|&n| {
            sim.component::<Store>(n)
                .filter(|s| s.is_primary())
                .map(|s| (s.epoch(), n))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    primary.map(|p| p.1).unwrap_or_else(|| {
        *members
            .iter()
            .max_by(|&&a, &&b| {
                let len = |n: NodeId| sim.env(n).disk.durable_records().len();
                len(a).cmp(&len(b)).then(b.cmp(&a))
            })
            .expect("a shard has members")
    })
}

/// Whether the configuration promises each shard zero loss of acknowledged writes.
fn promises(scenario: &Scenario, world: &World, layout: &[Vec<NodeId>]) -> Vec<Promise> {
    let stores = &scenario.topology.stores;
    let fallbacks = |members: &[NodeId]| -> u64 {
        members
            .iter()
            .map(|&n| {
                world
                    .sim
                    .env(n)
                    .metrics
                    .counter_value("store_semi_sync_fallbacks_total")
                    .unwrap_or(0)
            })
            .sum()
    };
    layout
        .iter()
        .map(
            |members| match (stores.replicas, stores.config.replication) {
                (0, _) => Promise {
                    zero_loss: true,
                    why: "single node, synced before ack: no loss promised".into(),
                },
                (_, ReplicationMode::Async) => Promise {
                    zero_loss: false,
                    why: "async replication promises nothing: loss counted, not failed".into(),
                },
                (_, ReplicationMode::SemiSync) => match fallbacks(members) {
                    0 => Promise {
                        zero_loss: true,
                        why: "semi-sync never fell back: no loss promised".into(),
                    },
                    n => Promise {
                        zero_loss: false,
                        why: format!(
                            "semi-sync fell back to async {n} times: loss counted, not failed"
                        ),
                    },
                },
            },
        )
        .collect()
}

/// Read-your-writes, monotonic reads, lost writes and failover time of the session cluster.
fn session_check(scenario: &Scenario, world: &World) -> CheckResult {
    let sim = &world.sim;
    let Some(client) = world
        .session_client
        .and_then(|n| sim.component::<SessionClient>(n))
    else {
        let detail = "checks.sessions needs topology.sessions".to_string();
        return CheckResult {
            name: "sessions",
            class: checks::Class::Correctness,
            passed: false,
            detail,
        };
    };
    let mut last_acked: BTreeMap<u64, u64> = BTreeMap::new();
    for op in client.history.iter().filter(|o| o.set) {
        let v = last_acked.entry(op.key).or_insert(0);
        *v = (*v).max(op.value.unwrap_or(0));
    }
    let nodes: Vec<&SessionNode> = world
        .session_nodes
        .iter()
        .filter_map(|&n| sim.component::<SessionNode>(n))
        .collect();
    let lost = last_acked
        .iter()
        .filter(|(&k, &v)| {
            let served = nodes.iter().find(|n| n.serves(k)).and_then(|n| n.get(k));
            served.unwrap_or(0) < v
        })
        .count();
    let failovers: u64 = world
        .session_nodes
        .iter()
        .map(|&n| {
            sim.env(n)
                .metrics
                .counter_value("session_failovers_total")
                .unwrap_or(0)
        })
        .sum();
    let crash_s = scenario
        .faults
        .iter()
        .filter_map(|f| match f {
            crate::scenario::Fault::Crash { at_s, node, .. } if node.starts_with("session-") => {
                Some(*at_s)
            }
            _ => None,
        })
        .reduce(f64::min);
    let promoted_ms = world
        .session_nodes
        .iter()
        .filter_map(|&n| {
            let m = &sim.env(n).metrics;
            m.entries()
                .iter()
                .find(|e| e.name == "session_promoted_at_ms")
                .and_then(|e| match e.value {
                    minitwin_components::metrics::Value::Gauge(g) if g > 0.0 => Some(g),
                    _ => None,
                })
        })
        .reduce(f64::min);
    let failover_s = crash_s.zip(promoted_ms).map(|(c, p)| p / 1e3 - c);
    checks::sessions(&client.history, lost, failovers, failover_s)
}

/// After the settle time, every session replica that is up holds exactly its master's data.
fn session_convergence(world: &World, within_s: f64) -> CheckResult {
    let sim = &world.sim;
    let nodes: Vec<(NodeId, &SessionNode)> = world
        .session_nodes
        .iter()
        .filter_map(|&n| sim.component::<SessionNode>(n).map(|c| (n, c)))
        .collect();
    let mut behind = Vec::new();
    for &(n, replica) in &nodes {
        let Some(master) = replica.replica_of() else {
            continue;
        };
        let Some(&(_, m)) = nodes.iter().find(|(id, _)| *id == master) else {
            continue;
        };
        if replica.data() != m.data() {
            behind.push(format!(
                "{} holds {} keys, its master {} holds {}",
                sim.env(n).name,
                replica.data().len(),
                sim.env(master).name,
                m.data().len()
            ));
        }
    }
    let down: Vec<&str> = world
        .session_nodes
        .iter()
        .filter(|&&n| !sim.env(n).up)
        .map(|&n| sim.env(n).name.as_str())
        .collect();
    behind.extend(down.iter().map(|d| format!("{d} is still down")));
    let passed = behind.is_empty();
    let detail = if passed {
        format!(
            "every session replica holds its master's data {within_s} s after the workload stopped"
        )
    } else {
        behind.join("; ")
    };
    CheckResult {
        name: "session_convergence",
        class: checks::Class::Liveness,
        passed,
        detail,
    }
}

fn finish(scenario: &Scenario, seed: u64, world: World, acks: &[WriteAck]) -> RunOutcome {
    let sim = &world.sim;
    let client = sim
        .component::<Client>(world.client)
        .expect("the client never crashes");
    let switched = world
        .resharder
        .and_then(|n| sim.component::<Resharder>(n))
        .is_some_and(|r| r.switched());
    let layout: Vec<Vec<NodeId>> = if switched {
        world.reshard_targets.iter().map(|&t| vec![t]).collect()
    } else {
        world.shard_members.clone()
    };
    let shards: Vec<ShardView<'_>> = layout
        .iter()
        .map(|members| {
            let n = authority(sim, members);
            ShardView {
                name: &sim.env(n).name,
                durable_log: sim.env(n).disk.durable_records(),
                store: sim.component::<Store>(n),
            }
        })
        .collect();
    let lost = checks::lost_writes(&client.acked_writes, &shards).len() as u64;
    let summary = summarize(scenario, &world, lost);
    let mut results = Vec::new();
    if scenario.checks.durability {
        results.push(checks::durability(
            &client.acked_writes,
            &shards,
            &promises(scenario, &world, &layout),
        ));
    }
    if scenario.checks.split_brain {
        let name = |n: NodeId| sim.env(n).name.clone();
        results.push(checks::split_brain(acks, &world.shard_members, &name));
    }
    if scenario.checks.sessions {
        results.push(session_check(scenario, &world));
    }
    if scenario.checks.linearizable {
        let histories = world
            .registers
            .and_then(|n| sim.component::<RegisterClient>(n))
            .map(|r| &r.histories);
        results.push(checks::linearizable(histories));
    }
    if scenario.checks.mirror {
        let copies: Vec<CopyView<'_>> = world
            .mirror_copies
            .iter()
            .enumerate()
            .flat_map(|(shard, copies)| copies.iter().map(move |&c| (shard, c)))
            .map(|(shard, c)| CopyView {
                name: &sim.env(c).name,
                source_log: shards[shard].durable_log,
                applied: checks::decode_copy_log(sim.env(c).disk.durable_records()),
            })
            .collect();
        results.push(checks::mirror(&copies, scenario.checks.converge_within_s));
    }
    if let Some(within_s) = scenario.checks.converge_within_s {
        let logs: Vec<Vec<MemberLog<'_>>> = world
            .shard_members
            .iter()
            .map(|m| {
                m.iter()
                    .map(|&n| MemberLog {
                        name: &sim.env(n).name,
                        up: sim.env(n).up,
                        log: sim.env(n).disk.durable_records(),
                    })
                    .collect()
            })
            .collect();
        results.push(checks::convergence(&logs, within_s));
        if !world.session_nodes.is_empty() {
            results.push(session_convergence(&world, within_s));
        }
    }
    let slo = SloInputs {
        latency_ms_p99: summary.latency_ms_p99,
        error_ratio: summary.error_ratio,
        throughput_rps: summary.throughput_rps,
    };
    results.extend(checks::slo(&scenario.checks, slo));
    let rows = rows(&world, &summary);
    RunOutcome {
        scenario: scenario.name.clone(),
        seed,
        trace_hash: sim.trace().hash(),
        events_total: sim.events_total(),
        summary,
        rows,
        seconds: client.seconds.clone(),
        checks: results,
        trace: sim.trace().entries().map(<[TraceEntry]>::to_vec),
        archive_days: world
            .archiver
            .and_then(|n| sim.component::<Archiver>(n))
            .map(|a| a.days.clone())
            .unwrap_or_default(),
    }
}

fn push(
    rows: &mut Vec<Row>,
    component: &str,
    metric: impl Into<String>,
    value: f64,
    unit: &'static str,
) {
    rows.push(Row {
        component: component.to_string(),
        metric: metric.into(),
        value,
        unit,
    });
}

/// Every metric of every node, then the network, then the run's summary.
fn rows(world: &World, s: &Summary) -> Vec<Row> {
    let sim = &world.sim;
    let mut out = Vec::new();
    let end = world.end_ns;
    for id in 0..sim.node_count() as u32 {
        let env = sim.env(id);
        let name = env.name.as_str();
        let local_end = env.clock.local(end);
        for e in env.metrics.entries() {
            match &e.value {
                Value::Counter(c) => push(&mut out, name, e.name, *c as f64, e.unit),
                Value::Gauge(g) => push(&mut out, name, e.name, *g, e.unit),
                Value::Histogram(h) => {
                    let base = e.name.trim_end_matches("_ns");
                    push(
                        &mut out,
                        name,
                        format!("{base}_count"),
                        h.len() as f64,
                        "count",
                    );
                    if h.is_empty() {
                        continue;
                    }
                    push(
                        &mut out,
                        name,
                        format!("{base}_ms_mean"),
                        h.mean() / 1e6,
                        "ms",
                    );
                    for (q, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
                        push(
                            &mut out,
                            name,
                            format!("{base}_ms_{label}"),
                            ms(h.value_at_quantile(q)),
                            "ms",
                        );
                    }
                    push(&mut out, name, format!("{base}_ms_max"), ms(h.max()), "ms");
                }
                Value::Level { .. } => {
                    let mean = env.metrics.level_mean(e.name, local_end).unwrap_or(0.0);
                    push(&mut out, name, format!("{}_mean", e.name), mean, e.unit);
                }
            }
        }
        if env.crashes_total > 0 {
            push(
                &mut out,
                name,
                "crashes_total",
                env.crashes_total as f64,
                "count",
            );
        }
        if env.disk.syncs_total > 0 {
            push(
                &mut out,
                name,
                "disk_syncs_total",
                env.disk.syncs_total as f64,
                "count",
            );
            push(
                &mut out,
                name,
                "disk_records_lost_total",
                env.disk.records_lost_total as f64,
                "count",
            );
        }
    }
    let n = &sim.network().stats;
    for (metric, v) in [
        ("messages_sent_total", n.sent_total),
        ("messages_dropped_loss_total", n.dropped_loss_total),
        (
            "messages_dropped_partition_total",
            n.dropped_partition_total,
        ),
        ("messages_dropped_node_down_total", n.dropped_down_total),
    ] {
        push(&mut out, "network", metric, v as f64, "count");
    }
    push(
        &mut out,
        "run",
        "events_total",
        sim.events_total() as f64,
        "count",
    );
    push(
        &mut out,
        "run",
        "buggify_fired_total",
        sim.buggify().fired_total as f64,
        "count",
    );
    push(
        &mut out,
        "run",
        "requests_total",
        s.requests_total as f64,
        "count",
    );
    push(&mut out, "run", "throughput_rps", s.throughput_rps, "req/s");
    push(&mut out, "run", "latency_ms_p50", s.latency_ms_p50, "ms");
    push(&mut out, "run", "latency_ms_p99", s.latency_ms_p99, "ms");
    push(&mut out, "run", "latency_ms_p999", s.latency_ms_p999, "ms");
    for (kind, count) in &s.errors {
        push(
            &mut out,
            "run",
            format!("errors_{kind}_total"),
            *count as f64,
            "count",
        );
    }
    push(&mut out, "run", "error_ratio", s.error_ratio, "ratio");
    push(
        &mut out,
        "run",
        "cache_hit_ratio",
        s.cache_hit_ratio,
        "ratio",
    );
    push(
        &mut out,
        "run",
        "acked_writes_total",
        s.acked_writes_total as f64,
        "count",
    );
    push(
        &mut out,
        "run",
        "lost_writes_total",
        s.lost_writes_total as f64,
        "count",
    );
    if let Some(r) = s.recovery_s {
        push(&mut out, "run", "recovery_s", r, "s");
    }
    if let Some(f) = s.failover_s {
        push(&mut out, "run", "failover_s", f, "s");
    }
    out
}

/// Simulated seconds, for reports.
pub fn duration_ns(scenario: &Scenario) -> u64 {
    s_to_ns(scenario.duration_s)
}
