//! The Horizontal Pod Autoscaler's arithmetic, autoscaling/v2, as the Kubernetes controller
//! does it (`pkg/controller/podautoscaler`: `replica_calculator.go` and `horizontal.go`).
//!
//! Two halves, both pure:
//! - [`resource_replicas`] and [`plain_replicas`]: the replica calculator. Pods are grouped into
//!   ready, unready (pending, or within the CPU initialization period without a clean sample,
//!   or never ready yet), missing (no metric) and ignored (being deleted or failed); the
//!   tolerance (0.1) is checked on the ready pods' ratio; then missing pods count as 100 % of
//!   target on a scale-down and 0 on a scale-up, unready pods as 0 on a scale-up only, and a
//!   recomputed ratio that falls inside the tolerance or flips direction keeps the current
//!   count.
//! - [`Hpa::normalize`]: stabilization (the up window takes the minimum of the recent
//!   recommendations, the down window the maximum), then the behavior's rate limits (Pods and
//!   Percent policies over their periods, combined by `selectPolicy`), then min/max.
//!
//! Time is nanoseconds of the control plane's clock.

use serde::Deserialize;

const NS_PER_S: u64 = 1_000_000_000;

/// The default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const TOLERANCE: f64 = 0.1;

/// What the calculator knows of a pod.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PodView {
    pub phase: Phase,
    /// Being deleted (a deletion timestamp).
    pub deleting: bool,
    /// When the pod started (its `status.startTime`); None before it is scheduled.
    pub start_ns: Option<u64>,
    /// The Ready condition: its status and last transition; None without the condition.
    pub ready: Option<(bool, u64)>,
    /// The pod's metric: usage (CPU in cores, or the plain metric's value), its request (CPU
    /// cores; ignored for a plain metric), the sample's timestamp and window.
    pub metric: Option<Sample>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub request: f64,
    pub at_ns: u64,
    pub window_ns: u64,
}

/// The controller's timing parameters for grouping pods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub now_ns: u64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (5 min).
    pub cpu_initialization_ns: u64,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s).
    pub initial_readiness_delay_ns: u64,
    pub tolerance: f64,
}

impl Timing {
    /// Kubernetes' defaults at `now_ns`.
    pub fn defaults(now_ns: u64) -> Timing {
        Timing {
            now_ns,
            cpu_initialization_ns: 300 * NS_PER_S,
            initial_readiness_delay_ns: 30 * NS_PER_S,
            tolerance: TOLERANCE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    Ready,
    Unready,
    Missing,
    Ignored,
}

/// `groupPods`: which group a pod falls in; `cpu` applies the CPU readiness rules.
fn group(p: &PodView, cpu: bool, t: &Timing) -> Group {
    if p.deleting || p.phase == Phase::Failed {
        return Group::Ignored;
    }
    if p.phase == Phase::Pending {
        return Group::Unready;
    }
    let Some(m) = p.metric else {
        return Group::Missing;
    };
    if !cpu {
        return Group::Ready;
    }
    let unready = match (p.ready, p.start_ns) {
        (Some((status, transition_ns)), Some(start_ns)) => {
            if start_ns + t.cpu_initialization_ns > t.now_ns {
                // Within the initialization period: only a sample taken a whole window after
                // the pod became ready counts.
                !status || m.at_ns < transition_ns + m.window_ns
            } else {
                // Afterwards: ignore a pod that is unready and has never been ready.
                !status && start_ns + t.initial_readiness_delay_ns > transition_ns
            }
        }
        _ => true,
    };
    if unready {
        Group::Unready
    } else {
        Group::Ready
    }
}

/// The calculator's answer: the replicas, and the metric it saw (the utilization in percent
/// for CPU, the average value per pod for a plain metric), over the ready pods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recommendation {
    pub replicas: u32,
    pub metric: f64,
}

/// What a pod outside the ready group contributes to a utilization: (usage, request).
type Extra<'a> = dyn Fn(usize, &PodView) -> Option<(f64, f64)> + 'a;

/// CPU utilization (a Resource metric with an `averageUtilization` target in percent):
/// `GetResourceReplicas`. None when no pod has a usable metric (the controller's error).
pub fn resource_replicas(
    current: u32,
    pods: &[PodView],
    target_percent: u32,
    t: &Timing,
) -> Option<Recommendation> {
    let groups: Vec<Group> = pods.iter().map(|p| group(p, true, t)).collect();
    // The utilization over pods with a metric, in whole percent as the controller truncates it.
    let utilization = |extra: &Extra| {
        let (mut used, mut requested) = (0.0, 0.0);
        for (i, p) in pods.iter().enumerate() {
            let counted = match groups[i] {
                Group::Ready => p.metric.map(|m| (m.value, m.request)),
                _ => extra(i, p),
            };
            if let Some((u, r)) = counted {
                used += u;
                requested += r;
            }
        }
        (requested > 0.0).then(|| (used * 100.0 / requested).trunc())
    };
    let ready_count = groups.iter().filter(|g| **g == Group::Ready).count() as u32;
    let percent = utilization(&|_, _| None)?;
    let target = f64::from(target_percent.max(1));
    let ratio = percent / target;
    if let Some(r) = ready_only(&groups, ratio, current, ready_count, percent, t) {
        return Some(r);
    }
    let scale_up_with_unready = groups.contains(&Group::Unready) && ratio > 1.0;
    let request = |p: &PodView| p.metric.map(|m| m.request).unwrap_or(0.0);
    // Pods without a metric still have a request: the controller reads it from the pod spec.
    let spec_request = pods
        .iter()
        .find_map(|p| p.metric.map(|m| m.request))
        .unwrap_or(0.0);
    let fallback = f64::from(target_percent.max(100)) / 100.0;
    let rebalanced = utilization(&|i, p| match groups[i] {
        Group::Missing if ratio < 1.0 => {
            let r = request(p).max(spec_request);
            Some((r * fallback, r))
        }
        Group::Missing if ratio > 1.0 => Some((0.0, request(p).max(spec_request))),
        Group::Unready if scale_up_with_unready => Some((0.0, request(p).max(spec_request))),
        _ => None,
    })?;
    let counted = groups
        .iter()
        .filter(|g| match g {
            Group::Ready => true,
            Group::Missing => ratio != 1.0,
            Group::Unready => scale_up_with_unready,
            Group::Ignored => false,
        })
        .count() as u32;
    Some(rebalance(
        current,
        ratio,
        rebalanced / target,
        counted,
        percent,
        t,
    ))
}

/// A plain per-pod metric with an `averageValue` target (Pods metrics, such as requests per
/// second per pod): `GetMetricReplicas` via `calcPlainMetricReplicas`.
pub fn plain_replicas(
    current: u32,
    pods: &[PodView],
    target_per_pod: f64,
    t: &Timing,
) -> Option<Recommendation> {
    let groups: Vec<Group> = pods.iter().map(|p| group(p, false, t)).collect();
    let ready: Vec<f64> = pods
        .iter()
        .zip(&groups)
        .filter(|(_, g)| **g == Group::Ready)
        .filter_map(|(p, _)| p.metric.map(|m| m.value))
        .collect();
    if ready.is_empty() {
        return None;
    }
    let target = target_per_pod.max(f64::MIN_POSITIVE);
    let total: f64 = ready.iter().sum();
    let ratio = total / (target * ready.len() as f64);
    let average = total / ready.len() as f64;
    let ready_count = ready.len() as u32;
    if let Some(r) = ready_only(&groups, ratio, current, ready_count, average, t) {
        return Some(r);
    }
    let scale_up_with_unready = groups.contains(&Group::Unready) && ratio > 1.0;
    let mut sum = total;
    let mut n = ready.len();
    for g in &groups {
        match g {
            // Missing pods: at the target on a scale-down, at 0 otherwise.
            Group::Missing => {
                if ratio < 1.0 {
                    sum += target;
                }
                n += 1;
            }
            Group::Unready if scale_up_with_unready => n += 1,
            _ => {}
        }
    }
    let new_ratio = sum / (target * n as f64);
    Some(rebalance(current, ratio, new_ratio, n as u32, average, t))
}

/// The first pass of both calculators: with no pod missing its metric, and no unready pod on
/// a scale-up, the ready pods decide: the current count within the tolerance, else
/// ceil(ratio x ready pods). None: the second pass ([`rebalance`]) decides.
fn ready_only(
    groups: &[Group],
    ratio: f64,
    current: u32,
    ready: u32,
    metric: f64,
    t: &Timing,
) -> Option<Recommendation> {
    let scale_up_with_unready = groups.contains(&Group::Unready) && ratio > 1.0;
    if scale_up_with_unready || groups.contains(&Group::Missing) {
        return None;
    }
    let replicas = if (1.0 - ratio).abs() <= t.tolerance {
        current
    } else {
        (ratio * f64::from(ready)).ceil() as u32
    };
    Some(Recommendation { replicas, metric })
}

/// The second half of both calculators: keep the current count if the rebalanced ratio is
/// within the tolerance or points the other way, or if the new count moves against it.
fn rebalance(
    current: u32,
    ratio: f64,
    new_ratio: f64,
    counted: u32,
    metric: f64,
    t: &Timing,
) -> Recommendation {
    let keep = Recommendation {
        replicas: current,
        metric,
    };
    if (1.0 - new_ratio).abs() <= t.tolerance
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return keep;
    }
    let replicas = (new_ratio * f64::from(counted)).ceil() as u32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return keep;
    }
    Recommendation { replicas, metric }
}

/// A scaling policy: at most `value` pods, or `value` percent, per `period_s`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    pub value: u32,
    pub period_s: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum PolicyKind {
    Pods,
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

/// One direction of `spec.behavior`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub stabilization_window_s: u32,
    #[serde(default = "select_max")]
    pub select_policy: Select,
    pub policies: Vec<Policy>,
}

fn select_max() -> Select {
    Select::Max
}

/// `spec.behavior`, defaulted as the API server defaults it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behavior {
    pub scale_up: Rules,
    pub scale_down: Rules,
}

impl Default for Behavior {
    /// Scale up: no stabilization, max(4 pods, 100 %) per 15 s; scale down: 300 s
    /// stabilization, 100 % per 15 s.
    fn default() -> Behavior {
        Behavior {
            scale_up: Rules {
                stabilization_window_s: 0,
                select_policy: Select::Max,
                policies: vec![
                    Policy {
                        kind: PolicyKind::Pods,
                        value: 4,
                        period_s: 15,
                    },
                    Policy {
                        kind: PolicyKind::Percent,
                        value: 100,
                        period_s: 15,
                    },
                ],
            },
            scale_down: Rules {
                stabilization_window_s: 300,
                select_policy: Select::Max,
                policies: vec![Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_s: 15,
                }],
            },
        }
    }
}

impl Behavior {
    /// Ranges: windows 0-3,600 s; 1-10 policies per direction, periods 1-1,800 s and values
    /// above 0 (as the API server validates them).
    pub fn validate(&self) -> crate::config::Checked {
        for (name, r) in [
            ("scale_up", &self.scale_up),
            ("scale_down", &self.scale_down),
        ] {
            let field = |f: &str| format!("behavior.{name}.{f}");
            crate::config::count(
                &field("stabilization_window_s"),
                u64::from(r.stabilization_window_s),
                0,
                3_600,
            )?;
            crate::config::count(&field("policies"), r.policies.len() as u64, 1, 10)?;
            for p in &r.policies {
                crate::config::count(&field("policies.period_s"), u64::from(p.period_s), 1, 1_800)?;
                crate::config::count(&field("policies.value"), u64::from(p.value), 1, 1_000_000)?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct ScaleEvent {
    change: u32,
    at_ns: u64,
    outdated: bool,
}

/// Why the normalized count differs from the recommendation (the HPA's `ScalingLimited`
/// condition reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    None,
    ScaleUpLimit,
    ScaleDownLimit,
    TooManyReplicas,
    TooFewReplicas,
}

/// The controller's memory for one HPA: recommendations and scale events.
#[derive(Clone, Debug, Default)]
pub struct Hpa {
    recommendations: Vec<(u64, u32)>,
    up_events: Vec<ScaleEvent>,
    down_events: Vec<ScaleEvent>,
}

impl Hpa {
    pub fn new() -> Hpa {
        Hpa::default()
    }

    /// A recorded recommendation from the past (tests, and a controller restored with one).
    pub fn remember(&mut self, at_ns: u64, replicas: u32) {
        self.recommendations.push((at_ns, replicas));
    }

    /// A scale from `from` to `to` replicas at `at_ns` (`storeScaleEvent`).
    pub fn record_scale(&mut self, b: &Behavior, at_ns: u64, from: u32, to: u32) {
        let (events, rules, change) = match to.cmp(&from) {
            std::cmp::Ordering::Greater => (&mut self.up_events, &b.scale_up, to - from),
            std::cmp::Ordering::Less => (&mut self.down_events, &b.scale_down, from - to),
            std::cmp::Ordering::Equal => return,
        };
        let longest_ns = longest_period_ns(rules);
        for e in events.iter_mut() {
            if e.at_ns + longest_ns < at_ns {
                e.outdated = true;
            }
        }
        let event = ScaleEvent {
            change,
            at_ns,
            outdated: false,
        };
        // The last outdated slot is reused, as `storeScaleEvent` does.
        match events.iter_mut().rev().find(|e| e.outdated) {
            Some(slot) => *slot = event,
            None => events.push(event),
        }
    }

    /// `normalizeDesiredReplicasWithBehaviors`: the replicas to scale to now, from `current`
    /// and the calculators' `desired`, and the limit that bound it.
    pub fn normalize(
        &mut self,
        b: &Behavior,
        now_ns: u64,
        current: u32,
        desired: u32,
        min: u32,
        max: u32,
    ) -> (u32, Limit) {
        if self.recommendations.is_empty() {
            self.recommendations.push((now_ns, current));
        }
        let stabilized = self.stabilize(b, now_ns, current, desired);
        self.limit_rate(b, now_ns, current, stabilized, min, max)
    }

    fn stabilize(&mut self, b: &Behavior, now_ns: u64, current: u32, desired: u32) -> u32 {
        let window = |s: u32| now_ns.saturating_sub(u64::from(s) * NS_PER_S);
        let (up_cutoff, down_cutoff) = (
            window(b.scale_up.stabilization_window_s),
            window(b.scale_down.stabilization_window_s),
        );
        let (mut up, mut down) = (desired, desired);
        let mut old = None;
        for (i, &(at, r)) in self.recommendations.iter().enumerate() {
            if at > up_cutoff {
                up = up.min(r);
            }
            if at > down_cutoff {
                down = down.max(r);
            }
            if at < up_cutoff && at < down_cutoff {
                old = Some(i);
            }
        }
        match old {
            Some(i) => self.recommendations[i] = (now_ns, desired),
            None => self.recommendations.push((now_ns, desired)),
        }
        current.max(up).min(down)
    }

    fn limit_rate(
        &self,
        b: &Behavior,
        now_ns: u64,
        current: u32,
        desired: u32,
        min: u32,
        max: u32,
    ) -> (u32, Limit) {
        if desired > current {
            let limit = self
                .scale_up_limit(&b.scale_up, now_ns, current)
                .max(current);
            let (allowed, why) = if max > limit {
                (limit, Limit::ScaleUpLimit)
            } else {
                (max, Limit::TooManyReplicas)
            };
            if desired > allowed {
                return (allowed, why);
            }
        } else if desired < current {
            let limit = self
                .scale_down_limit(&b.scale_down, now_ns, current)
                .min(current);
            let (allowed, why) = if min < limit {
                (limit, Limit::ScaleDownLimit)
            } else {
                (min, Limit::TooFewReplicas)
            };
            if desired < allowed {
                return (allowed, why);
            }
        }
        (desired, Limit::None)
    }

    fn period_start(&self, now_ns: u64, period_s: u32, current: u32) -> i64 {
        let added = change_in_period(&self.up_events, now_ns, period_s);
        let deleted = change_in_period(&self.down_events, now_ns, period_s);
        i64::from(current) - added + deleted
    }

    /// `calculateScaleUpLimitWithScalingRules`.
    fn scale_up_limit(&self, r: &Rules, now_ns: u64, current: u32) -> u32 {
        let proposals = r.policies.iter().map(|p| {
            let start = self.period_start(now_ns, p.period_s, current);
            match p.kind {
                PolicyKind::Pods => start + i64::from(p.value),
                PolicyKind::Percent => {
                    (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i64
                }
            }
        });
        let limit = match r.select_policy {
            Select::Disabled => return current,
            Select::Max => proposals.max(),
            Select::Min => proposals.min(),
        };
        clamp_u32(limit.unwrap_or(i64::from(current)))
    }

    /// `calculateScaleDownLimitWithBehaviors`: `Max` picks the policy that allows the most
    /// change, so the lowest count.
    fn scale_down_limit(&self, r: &Rules, now_ns: u64, current: u32) -> u32 {
        let proposals = r.policies.iter().map(|p| {
            let start = self.period_start(now_ns, p.period_s, current);
            match p.kind {
                PolicyKind::Pods => start - i64::from(p.value),
                PolicyKind::Percent => (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i64,
            }
        });
        let limit = match r.select_policy {
            Select::Disabled => return current,
            Select::Max => proposals.min(),
            Select::Min => proposals.max(),
        };
        clamp_u32(limit.unwrap_or(i64::from(current)))
    }
}

fn clamp_u32(x: i64) -> u32 {
    x.clamp(0, i64::from(u32::MAX)) as u32
}

fn longest_period_ns(r: &Rules) -> u64 {
    let s = r.policies.iter().map(|p| p.period_s).max().unwrap_or(0);
    u64::from(s) * NS_PER_S
}

/// `getReplicasChangePerPeriod`: replicas changed by events within the last `period_s`.
fn change_in_period(events: &[ScaleEvent], now_ns: u64, period_s: u32) -> i64 {
    let cutoff = now_ns.saturating_sub(u64::from(period_s) * NS_PER_S);
    events
        .iter()
        .filter(|e| e.at_ns > cutoff)
        .map(|e| i64::from(e.change))
        .sum()
}

#[cfg(test)]
#[path = "hpa_tests.rs"]
mod tests;
