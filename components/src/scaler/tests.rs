//! The control plane driven by hand: a loop that fires its timers in order and answers for the
//! pods (usage from a load function, probes while the pod's process is up, drains at once).

use super::*;
use crate::testing::TestContext;
use std::collections::BTreeSet;

const S: u64 = 1_000_000_000;
const GATEWAY: NodeId = 100;

struct Harness {
    cp: ControlPlane,
    ctx: TestContext,
    up: BTreeSet<NodeId>,
    cpu_ns: Vec<u64>,
    answered: Vec<u64>,
    last_ns: u64,
    endpoints: Vec<NodeId>,
    /// (time s, replicas, ready endpoints) after every sync.
    timeline: Vec<(u64, u32, usize)>,
}

impl Harness {
    fn new(config: ScalerConfig, slots: u32, initial: u32) -> Harness {
        let nodes: Vec<NodeId> = (0..slots).collect();
        let mut h = Harness {
            cp: ControlPlane::new(config, &nodes, initial, &[GATEWAY]),
            ctx: TestContext::new(99),
            up: (0..initial).collect(),
            cpu_ns: vec![0; slots as usize],
            answered: vec![0; slots as usize],
            last_ns: 0,
            endpoints: (0..initial).collect(),
            timeline: Vec::new(),
        };
        h.ctx.rng = crate::rng::Rng::stream(7, "control-plane");
        h.cp.start(&mut h.ctx);
        h.pump();
        h
    }

    /// Spreads `offered_rps` over the ready endpoints from the last step to now; each request
    /// costs `cpu_ms` of CPU.
    fn serve(&mut self, offered_rps: f64, cpu_ms: f64) {
        let dt = (self.ctx.now_ns - self.last_ns) as f64 / 1e9;
        self.last_ns = self.ctx.now_ns;
        if self.endpoints.is_empty() {
            return;
        }
        let per_pod = offered_rps * dt / self.endpoints.len() as f64;
        for &n in &self.endpoints {
            self.answered[n as usize] += per_pod as u64;
            self.cpu_ns[n as usize] += (per_pod * cpu_ms * 1e6) as u64;
        }
    }

    /// Delivers what the control plane sent, answering for pods, until nothing is left.
    fn pump(&mut self) {
        loop {
            for (node, on) in std::mem::take(&mut self.ctx.powered) {
                if on {
                    self.up.insert(node);
                    self.cpu_ns[node as usize] = 0;
                    self.answered[node as usize] = 0;
                } else {
                    self.up.remove(&node);
                }
            }
            let sent = self.ctx.take_sent();
            if sent.is_empty() {
                return;
            }
            for (to, msg) in sent {
                let Msg::Scaler(m) = msg else { continue };
                let reply = match m {
                    ScalerMsg::Endpoints { ready, .. } => {
                        assert_eq!(to, GATEWAY);
                        self.endpoints = ready;
                        None
                    }
                    _ if !self.up.contains(&to) => None,
                    ScalerMsg::Scrape { seq } => Some(ScalerMsg::Usage {
                        seq,
                        cpu_ns_total: self.cpu_ns[to as usize],
                        answered_total: self.answered[to as usize],
                        workers: 1,
                    }),
                    ScalerMsg::Probe { seq } => Some(ScalerMsg::ProbeOk { seq }),
                    ScalerMsg::Terminate => Some(ScalerMsg::Drained),
                    _ => None,
                };
                if let Some(r) = reply {
                    self.cp.on_message(&mut self.ctx, to, Msg::Scaler(r));
                }
            }
        }
    }

    /// Runs until `end_s` under `load(t_s)` req/s at `cpu_ms` each.
    fn run(&mut self, end_s: u64, load: impl Fn(u64) -> f64, cpu_ms: f64) {
        while let Some(&(at, _, _)) = self.ctx.timers.iter().min_by_key(|t| (t.0, t.1.slot)) {
            if at > end_s * S {
                break;
            }
            let t_s = self.ctx.now_ns / S;
            self.ctx.now_ns = at;
            self.serve(load(t_s), cpu_ms);
            let timer = self.ctx.pop_timer().expect("a due timer");
            let sync = timer == Timer::Tick { kind: SYNC };
            self.cp.on_timer(&mut self.ctx, timer);
            self.pump();
            if sync {
                let point = (at / S, self.cp.replicas(), self.endpoints.len());
                self.timeline.push(point);
            }
        }
    }
}

fn fixed_startup(config: &mut ScalerConfig, ms: f64) {
    config.pod.scheduling_delay = Dist::Constant { ms: 0.0 };
    config.pod.startup = Dist::Constant { ms };
}

#[test]
fn a_load_step_doubles_the_replicas_at_the_first_sync_that_sees_it_and_they_serve_after_startup() {
    let mut config = ScalerConfig {
        max_replicas: 16,
        metrics: vec![MetricTarget::Cpu {
            target_utilization_percent: 50,
        }],
        ..ScalerConfig::default()
    };
    fixed_startup(&mut config, 20_000.0);
    let mut h = Harness::new(config, 16, 2);
    // 2 pods of one core at 10 ms a request: 100 req/s is 50 %; 400 req/s from 60 s is 200 %.
    h.run(600, |t| if t < 60 { 100.0 } else { 400.0 }, 10.0);
    let at = |s: u64| h.timeline.iter().find(|p| p.0 == s).copied().unwrap();
    assert_eq!(at(60).1, 2, "no change while at target");
    // The sync at 75 s comes before that instant's scrape, so it still sees 45-60 s; at 90 s
    // it sees 200 % against 50 %: 8 wanted, and the default policy allows max(+4 pods, +100 %)
    // per 15 s: 6; then 8.
    assert_eq!(at(75).1, 2);
    assert_eq!((at(90).1, at(105).1), (6, 8));
    assert_eq!(at(105).2, 2, "the new pods are still starting");
    // Booted 20 s after the decision; ready at the first probe after that (probes every 10 s).
    assert_eq!(at(120).2, 6);
    let last = *h.timeline.last().unwrap();
    assert_eq!(last.1, 8, "400 req/s at 10 ms is 4 cores: 8 pods at 50 %");
    assert_eq!(last.2, 8);
}

#[test]
fn scale_down_waits_for_the_five_minute_stabilization_window() {
    let mut config = ScalerConfig {
        max_replicas: 16,
        ..ScalerConfig::default()
    };
    fixed_startup(&mut config, 1_000.0);
    let mut h = Harness::new(config, 16, 8);
    // 8 pods at 60 % target: 480 req/s at 10 ms is exactly 60 %; at 100 s the load falls to
    // a quarter.
    h.run(1_000, |t| if t < 100 { 480.0 } else { 120.0 }, 10.0);
    let first_down = h.timeline.iter().find(|p| p.1 < 8).unwrap().0;
    // The low recommendation is first seen at 120 s; the window holds the old ones 300 s.
    assert!(
        (405..=435).contains(&first_down),
        "first scale-down at {first_down} s"
    );
    assert_eq!(h.timeline.last().unwrap().1, 2);
    assert_eq!(h.up.len(), 2, "terminated pods' processes are stopped");
}

#[test]
fn terminating_pods_leave_the_endpoints_before_sigterm_and_are_killed_after_the_grace_period() {
    let mut config = ScalerConfig {
        min_replicas: 1,
        max_replicas: 4,
        ..ScalerConfig::default()
    };
    // Nobody answers probes here: no restarts within the minute.
    config.pod.readiness_failure_threshold = 100;
    let _ = ScalerConfig {
        min_replicas: 0,
        ..ScalerConfig::default()
    }
    .validate()
    .expect_err("minReplicas 0 needs an Object or External metric, which the twin has not");
    let mut cp = ControlPlane::new(config, &[0, 1, 2, 3], 4, &[GATEWAY]);
    let mut ctx = TestContext::new(99);
    cp.start(&mut ctx);
    ctx.take_sent();
    ctx.now_ns = 20 * S;
    cp.scale_to(&mut ctx, 2);
    let sent = ctx.take_sent();
    let endpoints = sent.iter().find_map(|(_, m)| match m {
        Msg::Scaler(ScalerMsg::Endpoints { ready, .. }) => Some(ready.clone()),
        _ => None,
    });
    assert_eq!(endpoints.map(|e| e.len()), Some(2));
    // SIGTERM after a preStop of 0 s; the pods never drain: killed after 30 s.
    let mut killed = Vec::new();
    while let Some(t) = ctx.pop_timer() {
        let now = ctx.now_ns;
        cp.on_timer(&mut ctx, t);
        for (node, on) in ctx.powered.drain(..) {
            if !on {
                killed.push((node, now / S));
            }
        }
        if ctx.now_ns > 60 * S {
            break;
        }
    }
    killed.sort_unstable();
    assert_eq!(
        killed,
        vec![(2, 50), (3, 50)],
        "the newest pods, at 20 + 30 s"
    );
    assert_eq!(cp.pods().running(), 2);
}

#[test]
fn a_blind_autoscaler_holds_its_count_under_a_rising_load() {
    let mut config = ScalerConfig {
        max_replicas: 16,
        ..ScalerConfig::default()
    };
    fixed_startup(&mut config, 1_000.0);
    let mut h = Harness::new(config, 16, 2);
    // The simulator injects it as a message from the control plane to itself; from anyone
    // else it is ignored.
    h.cp.on_message(
        &mut h.ctx,
        99,
        Msg::Scaler(ScalerMsg::MetricsPipeline {
            lost: true,
            delay_ms: 0,
        }),
    );
    h.run(300, |_| 400.0, 10.0);
    assert!(h.timeline.iter().all(|p| p.1 == 2), "{:?}", h.timeline);
    assert!(
        h.ctx
            .metrics
            .counter_value("scaler_scrapes_lost_total")
            .unwrap()
            > 0
    );
}

#[test]
fn predictive_scaling_raises_the_floor_before_a_forecast_surge_and_the_hpa_alone_does_not() {
    let run = |predictive: bool| {
        let mut config = ScalerConfig {
            max_replicas: 32,
            ..ScalerConfig::default()
        };
        fixed_startup(&mut config, 60_000.0);
        if predictive {
            config.predictive = Some(PredictiveConfig {
                forecaster: Forecaster::SeasonalNaive,
                history_days: 1,
                step_s: 600,
                season_s: 86_400,
                reforecast_s: 21_600,
                buffer_s: 300,
                target_rps_per_replica: 60.0,
                history_noise: 0.0,
                history_trend_per_day: 0.0,
                // Yesterday: 120 req/s, and 1,200 from 00:30 to 00:40.
                history_rps: (0..144)
                    .map(|i| if i == 3 { 1_200.0 } else { 120.0 })
                    .collect(),
            });
        }
        let mut h = Harness::new(config, 32, 2);
        h.run(
            2_400,
            |t| {
                if (1_800..2_400).contains(&t) {
                    1_200.0
                } else {
                    120.0
                }
            },
            10.0,
        );
        h.timeline
    };
    let ready_at_surge = |timeline: &[(u64, u32, usize)]| {
        timeline.iter().find(|p| p.0 >= 1_800).map(|p| p.2).unwrap()
    };
    let hpa = run(false);
    let predicted = run(true);
    assert_eq!(ready_at_surge(&hpa), 2);
    assert!(
        ready_at_surge(&predicted) >= 20,
        "capacity launched 300 s ahead is ready when the surge comes: {:?}",
        predicted
            .iter()
            .filter(|p| p.0 > 1_400)
            .take(12)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_deployment_scaled_to_zero_by_hand_is_left_alone_as_scaling_disabled() {
    let mut config = ScalerConfig {
        min_replicas: 2,
        max_replicas: 8,
        ..ScalerConfig::default()
    };
    fixed_startup(&mut config, 1_000.0);
    let mut h = Harness::new(config, 8, 2);
    h.cp.scale_to(&mut h.ctx, 0);
    h.pump();
    h.run(120, |_| 400.0, 10.0);
    assert!(h.timeline.iter().all(|p| p.1 == 0), "{:?}", h.timeline);
}

#[test]
fn a_metrics_delay_longer_than_the_resolution_delays_the_hpa_without_blinding_it() {
    let run = |delay_ms: f64| {
        let mut config = ScalerConfig {
            max_replicas: 16,
            metrics_delay_ms: delay_ms,
            ..ScalerConfig::default()
        };
        fixed_startup(&mut config, 1_000.0);
        let mut h = Harness::new(config, 16, 2);
        h.run(300, |_| 400.0, 10.0);
        h.timeline.iter().find(|p| p.1 > 2).map(|p| p.0)
    };
    let (prompt, late) = (run(0.0).unwrap(), run(40_000.0).unwrap());
    assert!(
        late >= prompt + 30,
        "a 40 s delay: first scale-up at {late} s, not {prompt} s"
    );
}

#[test]
fn a_slots_earlier_pod_timers_never_cut_a_later_pods_grace_period() {
    let config = ScalerConfig {
        min_replicas: 1,
        max_replicas: 2,
        ..ScalerConfig::default()
    };
    let mut cp = ControlPlane::new(config, &[0, 1], 2, &[GATEWAY]);
    let mut ctx = TestContext::new(99);
    cp.start(&mut ctx);
    // Pod in slot 1 terminated at 20 s; it drains at once; a new pod takes the slot at 25 s
    // and is terminated at 30 s: its grace period ends at 60 s, not at the first pod's 50 s.
    ctx.now_ns = 20 * S;
    cp.scale_to(&mut ctx, 1);
    cp.on_message(&mut ctx, 1, Msg::Scaler(ScalerMsg::Drained));
    ctx.now_ns = 25 * S;
    cp.scale_to(&mut ctx, 2);
    let slot = cp.pods().slot_of(1).unwrap();
    let boot_at = 25 * S + 60 * S;
    ctx.now_ns = boot_at;
    assert!(cp.pods.boot(slot, boot_at), "the new pod's process starts");
    ctx.now_ns = 30 * S;
    cp.pods.terminate(slot, 30 * S, 60 * S);
    ctx.powered.clear();
    ctx.now_ns = 50 * S;
    cp.on_timer(
        &mut ctx,
        Timer::Tick {
            kind: KILL + slot as u32,
        },
    );
    assert!(
        ctx.powered.is_empty(),
        "the first pod's kill timer finds a later deadline"
    );
    ctx.now_ns = 60 * S;
    cp.on_timer(
        &mut ctx,
        Timer::Tick {
            kind: KILL + slot as u32,
        },
    );
    assert_eq!(ctx.powered, vec![(1, false)]);
}

#[test]
fn only_the_simulator_blinds_the_pipeline_and_only_the_monitor_sets_floors() {
    let config = ScalerConfig {
        max_replicas: 8,
        ..ScalerConfig::default()
    };
    let mut cp = ControlPlane::new(config, &(0..8).collect::<Vec<_>>(), 2, &[GATEWAY])
        .with_monitor(Some(50));
    let mut ctx = TestContext::new(99);
    cp.start(&mut ctx);
    let blind = ScalerMsg::MetricsPipeline {
        lost: true,
        delay_ms: 0,
    };
    cp.on_message(&mut ctx, 3, Msg::Scaler(blind));
    assert!(!cp.metrics_lost, "a pod cannot blind the autoscaler");
    let floor = |add| ScalerMsg::AlertFloor {
        rule: 0,
        add,
        valid_ms: 45_000,
    };
    cp.on_message(&mut ctx, 3, Msg::Scaler(floor(4)));
    assert_eq!(cp.replicas(), 2, "a pod cannot raise the floor");
    cp.on_message(&mut ctx, 50, Msg::Scaler(floor(4)));
    assert_eq!(cp.replicas(), 6);
    // Not refreshed: the floor lapses, and the HPA (no metrics yet) holds what runs.
    ctx.now_ns = 60 * S;
    cp.sync(&mut ctx);
    assert!(cp.alert_floors.is_empty());
}

#[test]
fn a_crashed_pod_is_restarted_after_failed_probes_and_serves_again() {
    let mut config = ScalerConfig {
        max_replicas: 4,
        ..ScalerConfig::default()
    };
    fixed_startup(&mut config, 1_000.0);
    let mut h = Harness::new(config, 4, 2);
    h.run(30, |_| 100.0, 10.0);
    h.up.remove(&1); // the process dies
    h.run(120, |_| 100.0, 10.0);
    // Three unanswered probes (30 s), then the kubelet's 10 s back-off: running and ready.
    assert!(h.up.contains(&1), "restarted");
    assert_eq!(h.endpoints.len(), 2);
    assert_eq!(h.cp.pods().get(1).restarts, 1);
}
