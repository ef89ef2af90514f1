//! The control tier: a Kubernetes-like control plane for the service tier.
//!
//! One component, [`ControlPlane`], plays the parts of the control plane that matter to
//! capacity: the Deployment's pods and their lifecycle ([`pods`]: scheduling, start-up from a
//! distribution or a warm pool, readiness probes, termination with draining), the endpoints the
//! gateways balance over, metrics-server (scrapes of every pod's CPU time and answered requests
//! at a resolution, visible after a delay), the Horizontal Pod Autoscaler ([`hpa`], autoscaling/v2
//! exactly) and, optionally, predictive scaling ([`forecast`]: seasonal-naive and Holt-Winters
//! forecasts of the request rate that pre-launch capacity ahead of need, scale-out only).
//!
//! The pods are the service tier's nodes; the control plane starts and stops their processes
//! through [`Context::power`] (the platform's process control) and talks to them by messages
//! ([`ScalerMsg`]): scrapes, probes and SIGTERM.

pub mod forecast;
pub mod hpa;
pub mod pods;

use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::metrics::{CounterId, GaugeId, LevelId};
use crate::msg::{Msg, Timer};
use crate::rng::{ms_to_ns, Dist};
use forecast::{Forecaster, Predictor};
use hpa::{Behavior, Hpa, Timing};
use pods::{Metric, PodPhase, Pods, UsageReport};
use serde::Deserialize;

/// The control plane's messages with pods and gateways.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScalerMsg {
    /// Control plane -> pod: report usage (a kubelet's summary, as metrics-server scrapes it).
    Scrape { seq: u64 },
    /// Pod -> control plane: cumulative CPU time and answered requests of this process.
    Usage {
        seq: u64,
        cpu_ns_total: u64,
        answered_total: u64,
        workers: u32,
    },
    /// Control plane -> pod: the readiness probe.
    Probe { seq: u64 },
    /// Pod -> control plane: the probe passed.
    ProbeOk { seq: u64 },
    /// Control plane -> pod: SIGTERM; the pod drains, then says [`ScalerMsg::Drained`].
    Terminate,
    /// Pod -> control plane: nothing queued or running; the process may go.
    Drained,
    /// Control plane -> gateways: the ready endpoints, replacing the set, versioned.
    Endpoints { version: u64, ready: Vec<NodeId> },
    /// A fault of the metrics pipeline, injected by the simulator: scrapes are lost (`lost`)
    /// or their results become visible `delay_ms` late.
    MetricsPipeline { lost: bool, delay_ms: u64 },
    /// Monitor -> control plane: alert `rule` fires (hold `add` replicas more than when it
    /// fired; sent at every evaluation while it fires, each valid `valid_ms`) or resolved
    /// (`add` 0: let go).
    AlertFloor { rule: u32, add: u32, valid_ms: u64 },
    /// Control plane -> monitor: the pods with a process (the targets to scrape among the
    /// slots).
    Targets { version: u64, running: Vec<NodeId> },
}

/// What the HPA scales on; several targets: the largest recommendation wins.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "metric", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricTarget {
    /// A Resource metric: average CPU utilization in percent of the pods' requests (a pod
    /// requests one core per worker).
    Cpu { target_utilization_percent: u32 },
    /// A Pods metric: answered requests per second per pod, `averageValue`.
    RequestsPerSecond { target_per_pod: f64 },
}

/// The pods' lifecycle parameters.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodConfig {
    /// From the scale decision to a node bound (scheduler latency, plus a node if needed).
    pub scheduling_delay: Dist,
    /// From binding to the process running (image pull, container start, app start).
    pub startup: Dist,
    /// Pre-initialized instances ready to start fast (a warm pool); refilled after use, each
    /// taking a `startup` to prepare.
    pub warm_pool: u32,
    /// Start-up of an instance from the warm pool.
    pub warm_startup: Dist,
    /// The readiness probe: first probe this long after the process starts
    /// (`initialDelaySeconds`), then every `readiness_period_ms` (`periodSeconds`, 10 s);
    /// `failureThreshold` consecutive failures (3) make a ready pod unready.
    pub readiness_initial_delay_ms: f64,
    pub readiness_period_ms: f64,
    pub readiness_failure_threshold: u32,
    /// `terminationGracePeriodSeconds` (30 s): after SIGTERM, the pod is killed if it has not
    /// drained by then.
    pub termination_grace_period_ms: f64,
    /// A preStop hook's sleep: SIGTERM waits this long after the endpoint is removed, so that
    /// gateways stop sending first (0: SIGTERM at once, as without a hook).
    pub pre_stop_ms: f64,
}

impl Default for PodConfig {
    fn default() -> Self {
        PodConfig {
            scheduling_delay: Dist::Uniform {
                min_ms: 500.0,
                max_ms: 2_000.0,
            },
            startup: Dist::Lognormal {
                median_ms: 30_000.0,
                sigma: 0.3,
            },
            warm_pool: 0,
            warm_startup: Dist::Uniform {
                min_ms: 2_000.0,
                max_ms: 5_000.0,
            },
            readiness_initial_delay_ms: 0.0,
            readiness_period_ms: 10_000.0,
            readiness_failure_threshold: 3,
            termination_grace_period_ms: 30_000.0,
            pre_stop_ms: 0.0,
        }
    }
}

/// Predictive scaling (AWS-style): forecasts of the request rate from history, re-forecast
/// periodically; the forecast's capacity is launched `buffer_s` ahead; scale-out only (the HPA
/// still acts, and the larger count wins).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictiveConfig {
    pub forecaster: Forecaster,
    /// Days of history before the run (1-14), synthesized from the workload's own curve.
    #[serde(default = "default_history_days")]
    pub history_days: u32,
    /// The forecast's step (AWS: an hour).
    #[serde(default = "default_step_s")]
    pub step_s: u32,
    /// The season (a day).
    #[serde(default = "default_season_s")]
    pub season_s: u32,
    /// How often the forecast is redone with what was observed since (AWS: 6 h).
    #[serde(default = "default_reforecast_s")]
    pub reforecast_s: u32,
    /// How far ahead capacity is launched (AWS SchedulingBufferTime: 300 s).
    #[serde(default = "default_buffer_s")]
    pub buffer_s: u32,
    /// Requests per second one replica should carry: the forecast's capacity is
    /// ceil(rate / this).
    pub target_rps_per_replica: f64,
    /// Day-to-day variation of the synthesized history: each step is multiplied by
    /// (1 + history_noise x a standard normal draw of the control plane's stream), so that
    /// forecasters meet history that does not repeat exactly (0: the curve itself).
    #[serde(default)]
    pub history_noise: f64,
    /// Growth of the traffic per day: the history's day d before the run is scaled by
    /// (1 + history_trend_per_day)^-d (0: none).
    #[serde(default)]
    pub history_trend_per_day: f64,
    /// The history, requests per second per step, oldest first; filled by the simulator from
    /// the workload's curve (a production deployment would load it from its metrics store).
    #[serde(skip)]
    pub history_rps: Vec<f64>,
}

fn default_history_days() -> u32 {
    14
}
fn default_step_s() -> u32 {
    3_600
}
fn default_season_s() -> u32 {
    86_400
}
fn default_reforecast_s() -> u32 {
    21_600
}
fn default_buffer_s() -> u32 {
    300
}

/// The control plane's parameters; defaults are Kubernetes' (and AWS's for prediction).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalerConfig {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// The HPA's control loop (`--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub sync_period_ms: f64,
    /// How often metrics-server scrapes the pods (`--metric-resolution`, 15 s).
    pub metrics_resolution_ms: f64,
    /// How late a scrape's result reaches the HPA.
    pub metrics_delay_ms: f64,
    pub tolerance: f64,
    pub cpu_initialization_period_ms: f64,
    pub initial_readiness_delay_ms: f64,
    pub metrics: Vec<MetricTarget>,
    pub behavior: Behavior,
    pub pod: PodConfig,
    pub predictive: Option<PredictiveConfig>,
}

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig {
            min_replicas: 1,
            max_replicas: 10,
            sync_period_ms: 15_000.0,
            metrics_resolution_ms: 15_000.0,
            metrics_delay_ms: 0.0,
            tolerance: hpa::TOLERANCE,
            cpu_initialization_period_ms: 300_000.0,
            initial_readiness_delay_ms: 30_000.0,
            metrics: vec![MetricTarget::Cpu {
                target_utilization_percent: 60,
            }],
            behavior: Behavior::default(),
            pod: PodConfig::default(),
            predictive: None,
        }
    }
}

impl ScalerConfig {
    /// Ranges: `min_replicas` 1-64 and at most `max_replicas` (1-64: a gateway balances over at
    /// most 64 upstreams); periods 1 ms-1 h; `tolerance` 0-1; one to four metrics with targets
    /// above 0; the behavior's policies as the API server validates them; predictive history
    /// 1-14 days of whole steps, a season of whole steps.
    pub fn validate(&self) -> Checked {
        config::count("max_replicas", u64::from(self.max_replicas), 1, 64)?;
        // Kubernetes refuses minReplicas 0 without an Object or External metric: with no pod
        // there is no metric to scale back up on.
        config::count(
            "min_replicas",
            u64::from(self.min_replicas),
            1,
            u64::from(self.max_replicas),
        )?;
        config::range("sync_period_ms", self.sync_period_ms, 1.0, 3.6e6)?;
        config::range(
            "metrics_resolution_ms",
            self.metrics_resolution_ms,
            1.0,
            3.6e6,
        )?;
        config::range("metrics_delay_ms", self.metrics_delay_ms, 0.0, 3.6e6)?;
        config::range("tolerance", self.tolerance, 0.0, 1.0)?;
        config::ms(
            "cpu_initialization_period_ms",
            self.cpu_initialization_period_ms,
            0.0,
        )?;
        config::ms(
            "initial_readiness_delay_ms",
            self.initial_readiness_delay_ms,
            0.0,
        )?;
        config::count("metrics", self.metrics.len() as u64, 1, 4)?;
        for m in &self.metrics {
            match *m {
                MetricTarget::Cpu {
                    target_utilization_percent: t,
                } => config::count("metrics.target_utilization_percent", u64::from(t), 1, 1_000)?,
                MetricTarget::RequestsPerSecond { target_per_pod } => {
                    config::range("metrics.target_per_pod", target_per_pod, 1e-3, 1e7)?
                }
            }
        }
        self.behavior.validate()?;
        config::nested("pod", self.pod.validate())?;
        if let Some(p) = &self.predictive {
            config::nested("predictive", p.validate())?;
        }
        Ok(())
    }
}

impl PodConfig {
    pub fn validate(&self) -> Checked {
        config::nested("scheduling_delay", self.scheduling_delay.validate())?;
        config::nested("startup", self.startup.validate())?;
        config::nested("warm_startup", self.warm_startup.validate())?;
        config::count("warm_pool", u64::from(self.warm_pool), 0, 64)?;
        config::ms(
            "readiness_initial_delay_ms",
            self.readiness_initial_delay_ms,
            0.0,
        )?;
        config::range("readiness_period_ms", self.readiness_period_ms, 1.0, 3.6e6)?;
        config::count(
            "readiness_failure_threshold",
            u64::from(self.readiness_failure_threshold),
            1,
            100,
        )?;
        config::ms(
            "termination_grace_period_ms",
            self.termination_grace_period_ms,
            0.0,
        )?;
        config::ms("pre_stop_ms", self.pre_stop_ms, 0.0)
    }
}

impl PredictiveConfig {
    pub fn validate(&self) -> Checked {
        config::count("history_days", u64::from(self.history_days), 1, 14)?;
        config::count("step_s", u64::from(self.step_s), 60, 86_400)?;
        config::rule(
            self.season_s >= self.step_s && self.season_s.is_multiple_of(self.step_s),
            "season_s",
            format!(
                "{} is not a whole number of steps of {} s",
                self.season_s, self.step_s
            ),
        )?;
        // The forecast runs 48 h ahead: a later re-forecast would leave hours without one.
        config::count("reforecast_s", u64::from(self.reforecast_s), 60, 48 * 3_600)?;
        config::count("buffer_s", u64::from(self.buffer_s), 0, 86_400)?;
        config::range("history_noise", self.history_noise, 0.0, 1.0)?;
        config::range(
            "history_trend_per_day",
            self.history_trend_per_day,
            -0.5,
            1.0,
        )?;
        config::range(
            "target_rps_per_replica",
            self.target_rps_per_replica,
            1e-3,
            1e7,
        )
    }
}

const SYNC: u32 = 0;
const SCRAPE: u32 = 1;
const PROBE: u32 = 2;
const REFORECAST: u32 = 3;
const WARM_REFILL: u32 = 4;
/// Per-pod timers: boot, SIGTERM after the preStop hook, kill at the end of the grace period.
const BOOT: u32 = 1_000;
const TERM: u32 = 2_000;
const KILL: u32 = 3_000;
/// A container restarted by the kubelet runs again.
const RESTART: u32 = 4_000;
/// The kubelet's first back-off before restarting a failed container (CrashLoopBackOff).
const RESTART_BACKOFF_NS: u64 = 10_000_000_000;

struct Ids {
    scale_ups: CounterId,
    scale_downs: CounterId,
    desired: LevelId,
    ready: LevelId,
    running: LevelId,
    predicted: LevelId,
    kills: CounterId,
    scrapes_lost: CounterId,
    syncs: CounterId,
    created: CounterId,
    terminated: CounterId,
    probes: CounterId,
    probe_failures: CounterId,
    reforecasts: CounterId,
    endpoints_version: GaugeId,
    recommendation: GaugeId,
    utilization: GaugeId,
    warm_pool: GaugeId,
    forecast_rps: GaugeId,
    alert_floor: GaugeId,
}

/// A change of the tier's size: at `t_ns`, the replicas wanted, ready (in the endpoints) and
/// running (processes up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalePoint {
    pub t_ns: u64,
    pub desired: u32,
    pub ready: u32,
    pub running: u32,
}

/// The control plane state machine (see the module's documentation).
pub struct ControlPlane {
    /// Every change of size, in order (a few per scaling decision).
    pub timeline: Vec<ScalePoint>,
    config: ScalerConfig,
    pods: Pods,
    gateways: Vec<NodeId>,
    hpa: Hpa,
    /// The Deployment's `spec.replicas`.
    replicas: u32,
    endpoints_version: u64,
    scrape_seq: u64,
    probe_seq: u64,
    predictor: Option<Predictor>,
    warm_available: u32,
    metrics_lost: bool,
    metrics_extra_delay_ns: u64,
    /// Replica floors held by firing alerts, by rule: (floor, valid until).
    alert_floors: std::collections::BTreeMap<u32, (u32, u64)>,
    /// The monitor, the only sender whose alert floors count.
    monitor: Option<NodeId>,
    /// Restarted: every slot is unknown until the first probe round is answered.
    adopting: bool,
    ids: Option<Ids>,
}

impl ControlPlane {
    /// A control plane over the pod slots `slots` (the first `initial` running from the start)
    /// and the gateways that balance over them.
    pub fn new(
        config: ScalerConfig,
        slots: &[NodeId],
        initial: u32,
        gateways: &[NodeId],
    ) -> ControlPlane {
        assert!(
            initial as usize <= slots.len(),
            "initial replicas fit the slots"
        );
        let predictor = config.predictive.as_ref().map(Predictor::new);
        ControlPlane {
            timeline: Vec::new(),
            pods: Pods::new(slots, initial),
            gateways: gateways.to_vec(),
            hpa: Hpa::new(),
            replicas: initial,
            endpoints_version: 0,
            scrape_seq: 0,
            probe_seq: 0,
            predictor,
            warm_available: config.pod.warm_pool,
            metrics_lost: false,
            metrics_extra_delay_ns: 0,
            alert_floors: std::collections::BTreeMap::new(),
            monitor: None,
            adopting: false,
            ids: None,
            config,
        }
    }

    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// Alert floors are taken from `monitor` only.
    pub fn with_monitor(mut self, monitor: Option<NodeId>) -> ControlPlane {
        self.monitor = monitor;
        self
    }

    pub fn pods(&self) -> &Pods {
        &self.pods
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn every(ctx: &mut dyn Context, ms: f64, kind: u32) {
        ctx.set_timer(ms_to_ns(ms), Timer::Tick { kind });
    }

    /// The HPA's sync: recommendations from every metric, normalized, then the predictive
    /// floor; scale if the count changes.
    fn sync(&mut self, ctx: &mut dyn Context) {
        let now = ctx.now_ns();
        let c = self.ids().syncs;
        ctx.metrics().add(c, 1);
        let delay = ms_to_ns(self.config.metrics_delay_ms) + self.metrics_extra_delay_ns;
        let stale = 2 * ms_to_ns(self.config.metrics_resolution_ms) + delay;
        self.pods.promote(now);
        let current = self.replicas;
        let (min, max) = (self.config.min_replicas, self.config.max_replicas);
        // `reconcileAutoscaler`'s order: a Deployment scaled to zero by hand (with a minimum
        // above zero) is left alone (ScalingDisabled); then the max and min clamps; then the
        // metrics.
        let mut desired = if current == 0 && min != 0 {
            0
        } else if current > max {
            max
        } else if current < min {
            min
        } else {
            match self.recommend(ctx, now, current, stale) {
                Some(d) => {
                    self.hpa
                        .normalize(&self.config.behavior, now, current, d, min, max)
                        .0
                }
                None => current,
            }
        };
        if let Some(p) = &mut self.predictor {
            let floor = p.capacity_at(now).min(max);
            let ids = self.ids.as_ref().expect("started");
            let (predicted, rps) = (ids.predicted, ids.forecast_rps);
            ctx.metrics().set_level(predicted, now, i64::from(floor));
            ctx.metrics().set(rps, p.rate_at(now));
            desired = desired.max(floor);
        }
        self.alert_floors.retain(|_, f| f.1 >= now);
        let alert_floor = self.alert_floors.values().map(|f| f.0).max().unwrap_or(0);
        let g = self.ids().alert_floor;
        ctx.metrics().set(g, f64::from(alert_floor));
        desired = desired.max(alert_floor.min(max));
        if desired != current {
            self.hpa
                .record_scale(&self.config.behavior, now, current, desired);
            let c = if desired > current {
                self.ids().scale_ups
            } else {
                self.ids().scale_downs
            };
            ctx.metrics().add(c, 1);
            tracing::debug!(current, desired, "scale");
            self.scale_to(ctx, desired);
        }
        self.publish(ctx);
        Self::every(ctx, self.config.sync_period_ms, SYNC);
    }

    /// `computeReplicasForMetrics`: the largest valid recommendation; none (no scaling) when
    /// every metric is invalid, or some are and the rest would scale down.
    fn recommend(&self, ctx: &mut dyn Context, now: u64, current: u32, stale: u64) -> Option<u32> {
        let t = Timing {
            now_ns: now,
            cpu_initialization_ns: ms_to_ns(self.config.cpu_initialization_period_ms),
            initial_readiness_delay_ns: ms_to_ns(self.config.initial_readiness_delay_ms),
            tolerance: self.config.tolerance,
        };
        let (mut best, mut invalid) = (None::<u32>, 0);
        for m in &self.config.metrics {
            let r = match *m {
                MetricTarget::Cpu {
                    target_utilization_percent,
                } => {
                    let views = self.pods.views(now, stale, Metric::Cpu);
                    let r = hpa::resource_replicas(current, &views, target_utilization_percent, &t);
                    if let Some(r) = r {
                        let g = self.ids().utilization;
                        ctx.metrics().set(g, r.metric);
                    }
                    r
                }
                MetricTarget::RequestsPerSecond { target_per_pod } => {
                    let views = self.pods.views(now, stale, Metric::RequestsPerSecond);
                    hpa::plain_replicas(current, &views, target_per_pod, &t)
                }
            };
            match r {
                Some(r) => best = Some(best.map_or(r.replicas, |b| b.max(r.replicas))),
                None => invalid += 1,
            }
        }
        let best = best?;
        let g = self.ids().recommendation;
        ctx.metrics().set(g, f64::from(best));
        if invalid > 0 && best < current {
            return None;
        }
        Some(best)
    }

    /// Makes `n` pods active (not terminating): starts pods in free slots, or terminates the
    /// ones a ReplicaSet deletes first (pending, then unready, then the most recently ready).
    fn scale_to(&mut self, ctx: &mut dyn Context, n: u32) {
        self.replicas = n;
        let now = ctx.now_ns();
        while self.pods.active() < n {
            let Some(slot) = self.pods.free_slot() else {
                break; // every slot is in use (terminating pods still hold theirs)
            };
            let warm = self.warm_available > 0;
            if warm {
                self.warm_available -= 1;
                let refill = self.config.pod.startup.sample_ns(ctx.rng());
                ctx.set_timer(refill, Timer::Tick { kind: WARM_REFILL });
            }
            let p = &self.config.pod;
            let startup = if warm { &p.warm_startup } else { &p.startup };
            let delay = p.scheduling_delay.sample_ns(ctx.rng()) + startup.sample_ns(ctx.rng());
            self.pods.create(slot, now, now + delay);
            let c = self.ids().created;
            ctx.metrics().add(c, 1);
            let kind = BOOT + slot as u32;
            ctx.set_timer(delay, Timer::Tick { kind });
        }
        while self.pods.active() > n {
            let slot = self.pods.victim().expect("an active pod to remove");
            if self.pods.get(slot).phase == PodPhase::Pending {
                self.pods.remove_pending(slot);
                continue;
            }
            let pre_stop = ms_to_ns(self.config.pod.pre_stop_ms);
            let grace = ms_to_ns(self.config.pod.termination_grace_period_ms);
            self.pods.terminate(slot, now + pre_stop, now + grace);
            let c = self.ids().terminated;
            ctx.metrics().add(c, 1);
            ctx.set_timer(
                pre_stop,
                Timer::Tick {
                    kind: TERM + slot as u32,
                },
            );
            ctx.set_timer(
                grace,
                Timer::Tick {
                    kind: KILL + slot as u32,
                },
            );
        }
        self.send_endpoints(ctx, true);
    }

    /// Sends the ready endpoints to every gateway: at once when they changed, and again at
    /// every sync (a watch's resync: messages can be lost).
    fn send_endpoints(&mut self, ctx: &mut dyn Context, changed: bool) {
        if self.adopting {
            return; // nothing known yet: the gateways keep the set they have
        }
        if changed {
            // Above every version an earlier incarnation sent: time only moves forward.
            self.endpoints_version = (self.endpoints_version + 1).max(ctx.now_ns());
            let g = self.ids().endpoints_version;
            ctx.metrics().set(g, self.endpoints_version as f64);
        }
        let ready = self.pods.endpoints();
        for &g in &self.gateways {
            let msg = ScalerMsg::Endpoints {
                version: self.endpoints_version,
                ready: ready.clone(),
            };
            ctx.send(g, Msg::Scaler(msg));
        }
    }

    fn publish(&mut self, ctx: &mut dyn Context) {
        if self.adopting {
            return; // nothing known yet
        }
        self.send_endpoints(ctx, false);
        if let Some(m) = self.monitor {
            let running = self.pods.running_nodes();
            let msg = ScalerMsg::Targets {
                version: self.endpoints_version.max(ctx.now_ns()),
                running,
            };
            ctx.send(m, Msg::Scaler(msg));
        }
        let now = ctx.now_ns();
        let (d, r, u) = {
            let i = self.ids();
            (i.desired, i.ready, i.running)
        };
        let (replicas, ready, running) = (
            i64::from(self.replicas),
            self.pods.endpoints().len() as i64,
            self.pods.running() as i64,
        );
        let (w, warm) = (self.ids().warm_pool, f64::from(self.warm_available));
        let m = ctx.metrics();
        m.set(w, warm);
        m.set_level(d, now, replicas);
        m.set_level(r, now, ready);
        m.set_level(u, now, running);
        let point = ScalePoint {
            t_ns: now,
            desired: self.replicas,
            ready: ready as u32,
            running: running as u32,
        };
        let same = |p: &ScalePoint| (p.desired, p.ready, p.running);
        if self.timeline.last().is_none_or(|l| same(l) != same(&point)) {
            self.timeline.push(point);
        }
    }

    fn scrape(&mut self, ctx: &mut dyn Context) {
        self.scrape_seq += 1;
        for node in self.pods.running_nodes() {
            ctx.send(
                node,
                Msg::Scaler(ScalerMsg::Scrape {
                    seq: self.scrape_seq,
                }),
            );
        }
        Self::every(ctx, self.config.metrics_resolution_ms, SCRAPE);
    }

    fn probe(&mut self, ctx: &mut dyn Context) {
        let now = ctx.now_ns();
        self.probe_seq += 1;
        let initial = ms_to_ns(self.config.pod.readiness_initial_delay_ms);
        let threshold = self.config.pod.readiness_failure_threshold;
        let failures = self.pods.unanswered_probes();
        let (due, changed) = self
            .pods
            .probe_round(now, initial, threshold, self.probe_seq);
        let (c, f) = (self.ids().probes, self.ids().probe_failures);
        ctx.metrics().add(c, due.len() as u64);
        ctx.metrics().add(f, failures);
        // Failed probes, failureThreshold in a row: the kubelet restarts the container (a
        // process that died, or one that hangs), after its back-off.
        for slot in self.pods.to_restart(threshold) {
            let node = self.pods.get(slot).node;
            tracing::debug!(node, "probes failed: container restarted");
            ctx.power(node, false);
            self.pods.restarting(slot, now + RESTART_BACKOFF_NS);
            let kind = RESTART + slot as u32;
            ctx.set_timer(RESTART_BACKOFF_NS, Timer::Tick { kind });
        }
        if std::mem::take(&mut self.adopting) {
            // Recovered after a restart of the control plane: what answered is what runs.
            self.replicas = self.pods.active().max(self.config.min_replicas);
            let n = self.replicas;
            self.scale_to(ctx, n);
        }
        for node in due {
            ctx.send(
                node,
                Msg::Scaler(ScalerMsg::Probe {
                    seq: self.probe_seq,
                }),
            );
        }
        if changed {
            self.send_endpoints(ctx, true);
            self.publish(ctx);
        }
        Self::every(ctx, self.config.pod.readiness_period_ms, PROBE);
    }

    fn on_usage(&mut self, ctx: &mut dyn Context, from: NodeId, report: UsageReport) {
        if self.metrics_lost || ctx.fault("scaler.metrics_lost") {
            let c = self.ids().scrapes_lost;
            ctx.metrics().add(c, 1);
            return;
        }
        let now = ctx.now_ns();
        let visible = now + ms_to_ns(self.config.metrics_delay_ms) + self.metrics_extra_delay_ns;
        let answered = self.pods.usage(from, &report, now, visible);
        if let (Some(n), Some(p)) = (answered, &mut self.predictor) {
            p.observe(now, n);
        }
    }

    fn on_pod_timer(&mut self, ctx: &mut dyn Context, kind: u32) {
        let now = ctx.now_ns();
        let (base, slot) = (kind / 1_000 * 1_000, (kind % 1_000) as usize);
        if slot >= self.pods.len() {
            return;
        }
        let pod = self.pods.get(slot);
        let (node, phase) = (pod.node, pod.phase);
        let (term_at, kill_at) = (pod.term_at_ns, pod.kill_at_ns);
        // A timer of an earlier pod in the slot finds a later deadline (or none): it does not
        // act on the pod there now.
        let terminating = phase == PodPhase::Terminating;
        match base {
            BOOT if self.pods.boot(slot, now) => {
                ctx.power(node, true);
                self.publish(ctx);
            }
            RESTART if self.pods.restarted(slot, now) => {
                ctx.power(node, true);
                self.publish(ctx);
            }
            TERM if terminating && now >= term_at => {
                ctx.send(node, Msg::Scaler(ScalerMsg::Terminate));
            }
            KILL if terminating && now >= kill_at => {
                let c = self.ids().kills;
                ctx.metrics().add(c, 1);
                tracing::debug!(node, "grace period over: killed");
                self.stop(ctx, slot);
            }
            _ => {}
        }
    }

    fn stop(&mut self, ctx: &mut dyn Context, slot: usize) {
        let node = self.pods.get(slot).node;
        self.pods.off(slot);
        ctx.power(node, false);
        self.publish(ctx);
        // A slot freed while the Deployment wants more pods than are active is reused now.
        if self.pods.active() < self.replicas {
            let n = self.replicas;
            self.scale_to(ctx, n);
        }
    }
}

impl Component for ControlPlane {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            scale_ups: m.counter("scaler_scale_ups_total"),
            scale_downs: m.counter("scaler_scale_downs_total"),
            desired: m.level("scaler_desired_replicas", "replicas"),
            ready: m.level("scaler_ready_replicas", "replicas"),
            running: m.level("scaler_running_replicas", "replicas"),
            predicted: m.level("scaler_predicted_replicas", "replicas"),
            kills: m.counter("scaler_grace_period_kills_total"),
            scrapes_lost: m.counter("scaler_scrapes_lost_total"),
            syncs: m.counter("scaler_syncs_total"),
            created: m.counter("scaler_pods_created_total"),
            terminated: m.counter("scaler_pods_terminated_total"),
            probes: m.counter("scaler_probes_total"),
            probe_failures: m.counter("scaler_probe_failures_total"),
            reforecasts: m.counter("scaler_reforecasts_total"),
            endpoints_version: m.gauge("scaler_endpoints_version", "version"),
            recommendation: m.gauge("scaler_hpa_recommendation_replicas", "replicas"),
            utilization: m.gauge("scaler_cpu_utilization_percent", "percent"),
            warm_pool: m.gauge("scaler_warm_pool_available", "instances"),
            forecast_rps: m.gauge("scaler_forecast_rps", "req/s"),
            alert_floor: m.gauge("scaler_alert_floor_replicas", "replicas"),
        });
        let now = ctx.now_ns();
        if now > 0 {
            // A restart: nothing of the pods is known; the first probe round adopts every slot
            // whose process answers, and the replicas follow what runs.
            self.pods.forget();
            self.adopting = true;
            self.replicas = 0;
            self.probe_seq += 1;
            for node in self.pods.nodes() {
                let seq = self.probe_seq;
                ctx.send(node, Msg::Scaler(ScalerMsg::Probe { seq }));
            }
        }
        if let Some(p) = &mut self.predictor {
            p.perturb_history(ctx.rng());
            p.resume(now);
            p.forecast(now);
            let every = u64::from(p.config().reforecast_s) * 1_000_000_000;
            ctx.set_timer(every, Timer::Tick { kind: REFORECAST });
        }
        self.publish(ctx);
        Self::every(ctx, self.config.sync_period_ms, SYNC);
        Self::every(ctx, self.config.metrics_resolution_ms, SCRAPE);
        Self::every(ctx, self.config.pod.readiness_period_ms, PROBE);
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        let Msg::Scaler(m) = msg else { return };
        match m {
            ScalerMsg::Usage {
                seq,
                cpu_ns_total,
                answered_total,
                workers,
            } => {
                let report = UsageReport {
                    seq,
                    cpu_ns: cpu_ns_total,
                    answered: answered_total,
                    workers,
                };
                self.on_usage(ctx, from, report)
            }
            ScalerMsg::ProbeOk { .. } if self.adopting => {
                let now = ctx.now_ns();
                if self.pods.adopt(from, now) {
                    self.send_endpoints(ctx, true);
                    self.publish(ctx);
                }
            }
            ScalerMsg::ProbeOk { seq } => {
                let now = ctx.now_ns();
                if self.pods.probe_ok(from, seq, now) {
                    self.send_endpoints(ctx, true);
                    self.publish(ctx);
                }
            }
            ScalerMsg::Drained => {
                if let Some(slot) = self.pods.slot_of(from) {
                    if self.pods.get(slot).phase == PodPhase::Terminating {
                        self.stop(ctx, slot);
                    }
                }
            }
            ScalerMsg::AlertFloor { .. } if Some(from) != self.monitor => {}
            ScalerMsg::AlertFloor { rule, add: 0, .. } => {
                self.alert_floors.remove(&rule);
            }
            ScalerMsg::AlertFloor {
                rule,
                add,
                valid_ms,
            } => {
                let until = ctx.now_ns() + valid_ms * 1_000_000;
                if let Some(f) = self.alert_floors.get_mut(&rule) {
                    f.1 = until; // refreshed while the alert fires
                    return;
                }
                let floor = self
                    .replicas
                    .saturating_add(add)
                    .min(self.config.max_replicas);
                self.alert_floors.insert(rule, (floor, until));
                if floor > self.replicas {
                    let now = ctx.now_ns();
                    let current = self.replicas;
                    self.hpa
                        .record_scale(&self.config.behavior, now, current, floor);
                    self.scale_to(ctx, floor);
                }
            }
            ScalerMsg::MetricsPipeline { .. } if from != ctx.me() => {}
            ScalerMsg::MetricsPipeline { lost, delay_ms } => {
                self.metrics_lost = lost;
                self.metrics_extra_delay_ns = delay_ms * 1_000_000;
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        let Timer::Tick { kind } = timer else { return };
        match kind {
            SYNC => self.sync(ctx),
            SCRAPE => self.scrape(ctx),
            PROBE => self.probe(ctx),
            REFORECAST => {
                let now = ctx.now_ns();
                if let Some(p) = &mut self.predictor {
                    p.forecast(now);
                    let every = u64::from(p.config().reforecast_s) * 1_000_000_000;
                    ctx.set_timer(every, Timer::Tick { kind: REFORECAST });
                }
                let c = self.ids().reforecasts;
                ctx.metrics().add(c, 1);
            }
            WARM_REFILL => {
                self.warm_available = (self.warm_available + 1).min(self.config.pod.warm_pool)
            }
            k if k >= BOOT => self.on_pod_timer(ctx, k),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests;
