//! The Deployment's pods, one per slot (a service node): phase, readiness, and the metrics
//! metrics-server holds for each.
//!
//! Phases: `Off` (no pod in the slot) -> `Pending` (scheduled, starting: no process yet) ->
//! `Running` (process up; ready once a readiness probe passes) -> `Terminating` (out of the
//! endpoints, SIGTERM, draining) -> `Off`. A pending pod that is scaled away simply goes.

use super::hpa::{Phase, PodView, Sample};
use crate::context::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodPhase {
    Off,
    Pending,
    Running,
    Terminating,
}

/// A pod's answer to a scrape: its cumulative counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageReport {
    pub seq: u64,
    pub cpu_ns: u64,
    pub answered: u64,
    pub workers: u32,
}

/// Which metric a view carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    RequestsPerSecond,
}

/// A scrape's result: the CPU and request-rate samples, visible to the HPA from `visible_ns`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scraped {
    visible_ns: u64,
    cpu: Sample,
    rps: Sample,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    pub node: NodeId,
    pub phase: PodPhase,
    pub created_ns: u64,
    boot_at_ns: u64,
    /// When the process started (`status.startTime`).
    pub start_ns: Option<u64>,
    /// The Ready condition: (status, last transition).
    pub ready: Option<(bool, u64)>,
    /// The sequence number of the probe awaiting an answer (0: none).
    probe_outstanding: u64,
    probe_failures: u32,
    /// The last scrape's cumulative counters: (scrape seq, time, CPU ns, answered).
    last_usage: Option<(u64, u64, u64, u64)>,
    visible: Option<Scraped>,
    /// Scrapes not yet visible (a metrics delay longer than the resolution holds several).
    pending: std::collections::VecDeque<Scraped>,
    /// When SIGTERM is due and when the grace period ends (a terminating pod's; timers of an
    /// earlier pod in the slot check these, so they cannot act on a later one).
    pub term_at_ns: u64,
    pub kill_at_ns: u64,
    /// A container restart in progress (the kubelet's, after failed probes): when the process
    /// starts again.
    pub restart_at_ns: Option<u64>,
    /// Container restarts of this pod.
    pub restarts: u32,
}

impl Pod {
    fn off(node: NodeId) -> Pod {
        Pod {
            node,
            phase: PodPhase::Off,
            created_ns: 0,
            boot_at_ns: 0,
            start_ns: None,
            ready: None,
            probe_outstanding: 0,
            probe_failures: 0,
            last_usage: None,
            visible: None,
            pending: std::collections::VecDeque::new(),
            term_at_ns: 0,
            kill_at_ns: 0,
            restart_at_ns: None,
            restarts: 0,
        }
    }

    fn is_ready(&self) -> bool {
        self.phase == PodPhase::Running && matches!(self.ready, Some((true, _)))
    }

    fn has_process(&self) -> bool {
        matches!(self.phase, PodPhase::Running | PodPhase::Terminating)
            && self.restart_at_ns.is_none()
    }
}

/// Every slot's pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Pods {
    pods: Vec<Pod>,
}

impl Pods {
    /// Slots `slots`, the first `initial` running and ready from time 0 (a tier in steady state).
    pub fn new(slots: &[NodeId], initial: u32) -> Pods {
        let mut pods: Vec<Pod> = slots.iter().map(|&n| Pod::off(n)).collect();
        for p in pods.iter_mut().take(initial as usize) {
            p.phase = PodPhase::Running;
            p.start_ns = Some(0);
            p.ready = Some((true, 0));
        }
        Pods { pods }
    }

    /// Every slot's node.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.pods.iter().map(|p| p.node).collect()
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn get(&self, slot: usize) -> &Pod {
        &self.pods[slot]
    }

    pub fn slot_of(&self, node: NodeId) -> Option<usize> {
        self.pods.iter().position(|p| p.node == node)
    }

    /// Pods that count towards the Deployment's replicas: pending or running.
    pub fn active(&self) -> u32 {
        let n = self
            .pods
            .iter()
            .filter(|p| matches!(p.phase, PodPhase::Pending | PodPhase::Running));
        n.count() as u32
    }

    /// Processes up (running or terminating): what the platform bills.
    pub fn running(&self) -> u32 {
        self.pods.iter().filter(|p| p.has_process()).count() as u32
    }

    pub fn running_nodes(&self) -> Vec<NodeId> {
        let up = self.pods.iter().filter(|p| p.has_process());
        up.map(|p| p.node).collect()
    }

    /// The ready pods' nodes, sorted: the endpoints.
    pub fn endpoints(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .pods
            .iter()
            .filter(|p| p.is_ready())
            .map(|p| p.node)
            .collect();
        v.sort_unstable();
        v
    }

    pub fn free_slot(&self) -> Option<usize> {
        self.pods.iter().position(|p| p.phase == PodPhase::Off)
    }

    /// A new pod in `slot`, created at `now_ns`, its process starting at `boot_at_ns`.
    pub fn create(&mut self, slot: usize, now_ns: u64, boot_at_ns: u64) {
        let node = self.pods[slot].node;
        self.pods[slot] = Pod {
            phase: PodPhase::Pending,
            created_ns: now_ns,
            boot_at_ns,
            ..Pod::off(node)
        };
    }

    /// The process of a pending pod starts (true), unless the pod went meanwhile.
    pub fn boot(&mut self, slot: usize, now_ns: u64) -> bool {
        let p = &mut self.pods[slot];
        if p.phase != PodPhase::Pending || now_ns < p.boot_at_ns {
            return false;
        }
        p.phase = PodPhase::Running;
        p.start_ns = Some(now_ns);
        p.ready = Some((false, now_ns));
        true
    }

    /// The pod a ReplicaSet deletes first (`ActivePodsWithRanks`, simplified): pending before
    /// running, unready before ready, the most recently ready (or created) first.
    pub fn victim(&self) -> Option<usize> {
        let candidates = self
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.phase, PodPhase::Pending | PodPhase::Running));
        candidates
            .max_by_key(|(i, p)| {
                let pending = p.phase == PodPhase::Pending;
                let unready = !p.is_ready();
                let since = p.ready.map_or(p.created_ns, |r| r.1);
                (pending, unready, since, *i)
            })
            .map(|(i, _)| i)
    }

    pub fn remove_pending(&mut self, slot: usize) {
        let node = self.pods[slot].node;
        self.pods[slot] = Pod::off(node);
    }

    /// The pod leaves the endpoints; SIGTERM is due at `term_at_ns`, the kill at `kill_at_ns`.
    pub fn terminate(&mut self, slot: usize, term_at_ns: u64, kill_at_ns: u64) {
        let p = &mut self.pods[slot];
        p.phase = PodPhase::Terminating;
        p.term_at_ns = term_at_ns;
        p.kill_at_ns = kill_at_ns;
        p.restart_at_ns = None;
    }

    /// The pod's process is gone.
    pub fn off(&mut self, slot: usize) {
        let node = self.pods[slot].node;
        self.pods[slot] = Pod::off(node);
    }

    /// A probe round at `now_ns`: pods with a process past the initial delay are due a probe;
    /// one whose last probe went unanswered counts a failure, and `threshold` failures make a
    /// ready pod unready. Returns the pods to probe and whether the endpoints changed.
    pub fn probe_round(
        &mut self,
        now_ns: u64,
        initial_ns: u64,
        threshold: u32,
        seq: u64,
    ) -> (Vec<NodeId>, bool) {
        let (mut due, mut changed) = (Vec::new(), false);
        for p in &mut self.pods {
            let Some(start) = p.start_ns else { continue };
            if !p.has_process() || p.restart_at_ns.is_some() || start + initial_ns > now_ns {
                continue;
            }
            if p.probe_outstanding != 0 {
                p.probe_failures += 1;
                if p.probe_failures >= threshold && matches!(p.ready, Some((true, _))) {
                    changed |= p.is_ready();
                    p.ready = Some((false, now_ns));
                }
            }
            p.probe_outstanding = seq;
            due.push(p.node);
        }
        (due, changed)
    }

    /// Pods with a process that failed `threshold` probes in a row and are not restarting
    /// yet: the kubelet restarts their container (restartPolicy Always).
    pub fn to_restart(&self, threshold: u32) -> Vec<usize> {
        let failing = self.pods.iter().enumerate().filter(|(_, p)| {
            p.phase == PodPhase::Running
                && p.restart_at_ns.is_none()
                && p.probe_failures >= threshold
        });
        failing.map(|(i, _)| i).collect()
    }

    /// The container of `slot` is stopped now and starts again at `at_ns`.
    pub fn restarting(&mut self, slot: usize, at_ns: u64) {
        let p = &mut self.pods[slot];
        p.restart_at_ns = Some(at_ns);
        p.restarts += 1;
        p.probe_outstanding = 0;
        p.probe_failures = 0;
        p.last_usage = None;
        p.visible = None;
        p.pending.clear();
    }

    /// The restarted container of `slot` runs again (true), unless the pod went meanwhile.
    pub fn restarted(&mut self, slot: usize, now_ns: u64) -> bool {
        let p = &mut self.pods[slot];
        if p.phase != PodPhase::Running || p.restart_at_ns.is_none_or(|t| t > now_ns) {
            return false;
        }
        p.restart_at_ns = None;
        p.start_ns = Some(now_ns);
        p.ready = Some((false, now_ns));
        true
    }

    /// After a restart of the control plane: every slot is unknown until it answers a probe.
    pub fn forget(&mut self) {
        for p in &mut self.pods {
            *p = Pod::off(p.node);
        }
    }

    /// A slot that answered a probe while the control plane did not know it: its pod runs and
    /// is ready (adopted, as a ReplicaSet adopts the pods its selector matches).
    pub fn adopt(&mut self, node: NodeId, now_ns: u64) -> bool {
        let Some(slot) = self.slot_of(node) else {
            return false;
        };
        let p = &mut self.pods[slot];
        if p.phase != PodPhase::Off {
            return false;
        }
        p.phase = PodPhase::Running;
        p.start_ns = Some(now_ns);
        p.ready = Some((true, now_ns));
        true
    }

    /// Pods with a process whose last probe is still unanswered (failures of the round that
    /// ends).
    pub fn unanswered_probes(&self) -> u64 {
        let waiting = self
            .pods
            .iter()
            .filter(|p| p.has_process() && p.probe_outstanding != 0);
        waiting.count() as u64
    }

    /// A probe passed: the pod is ready (true if the endpoints changed).
    pub fn probe_ok(&mut self, node: NodeId, seq: u64, now_ns: u64) -> bool {
        let Some(slot) = self.slot_of(node) else {
            return false;
        };
        let p = &mut self.pods[slot];
        if seq != p.probe_outstanding || p.restart_at_ns.is_some() {
            return false; // a late answer to an earlier round (or an earlier pod in the slot)
        }
        p.probe_outstanding = 0;
        p.probe_failures = 0;
        if p.phase == PodPhase::Running && !p.is_ready() {
            p.ready = Some((true, now_ns));
            return true;
        }
        false
    }

    /// A scrape's answer from `node` at `now_ns`, visible from `visible_ns`: the CPU and rate
    /// over the window since the last one. Returns the requests answered in that window (none
    /// for the first scrape of a process, or after a restart reset its counters).
    pub fn usage(
        &mut self,
        node: NodeId,
        r: &UsageReport,
        now_ns: u64,
        visible_ns: u64,
    ) -> Option<u64> {
        let UsageReport {
            seq,
            cpu_ns,
            answered,
            workers,
        } = *r;
        let slot = self.slot_of(node)?;
        let p = &mut self.pods[slot];
        if !p.has_process() {
            return None;
        }
        if p.last_usage.is_some_and(|(s, ..)| seq <= s) {
            return None; // a late answer to an earlier scrape
        }
        let last = p.last_usage.replace((seq, now_ns, cpu_ns, answered));
        let (_, at, cpu0, ans0) = last?;
        if cpu_ns < cpu0 || answered < ans0 || now_ns <= at {
            return None; // the process restarted: its counters began again
        }
        let window = now_ns - at;
        let seconds = window as f64 / 1e9;
        let cores = (cpu_ns - cpu0) as f64 / window as f64;
        let request = f64::from(workers) * 1000.0;
        let sample = |value: f64, request: f64| Sample {
            value,
            request,
            at_ns: now_ns,
            window_ns: window,
        };
        p.pending.push_back(Scraped {
            visible_ns,
            cpu: sample(cores * 1000.0, request),
            rps: sample((answered - ans0) as f64 / seconds, 0.0),
        });
        Some(answered - ans0)
    }

    /// Samples whose time has come become what metrics-server serves.
    pub fn promote(&mut self, now_ns: u64) {
        for p in &mut self.pods {
            while p.pending.front().is_some_and(|s| s.visible_ns <= now_ns) {
                p.visible = p.pending.pop_front();
            }
        }
    }

    /// What the HPA sees of every pod in the Deployment for `metric`; a sample older than
    /// `stale_ns` is missing (metrics-server no longer has the pod).
    pub fn views(&self, now_ns: u64, stale_ns: u64, metric: Metric) -> Vec<PodView> {
        let live = self.pods.iter().filter(|p| p.phase != PodPhase::Off);
        live.map(|p| {
            let sample =
                p.visible
                    .filter(|s| s.cpu.at_ns + stale_ns >= now_ns)
                    .map(|s| match metric {
                        Metric::Cpu => s.cpu,
                        Metric::RequestsPerSecond => s.rps,
                    });
            PodView {
                phase: match p.phase {
                    PodPhase::Pending => Phase::Pending,
                    _ => Phase::Running,
                },
                deleting: p.phase == PodPhase::Terminating,
                start_ns: p.start_ns,
                ready: p.ready,
                metric: sample,
            }
        })
        .collect()
    }
}
