//! Monitoring: a Prometheus-like monitor that scrapes every node's registry on the simulated
//! clock ([`msg`]), keeps the series with retention and downsampling ([`tsdb`]), evaluates
//! alerting rules with `for:` durations and anomaly detectors ([`rules`]), and can drive the
//! autoscaler from an alert. The metrics it can see are listed, with units and help, in
//! [`catalog`].

pub mod catalog;
pub mod msg;
pub mod rules;
pub mod tsdb;

pub use msg::{MonitorMsg, Part, Sample};

use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::msg::{Msg, Timer};
use crate::rng::ms_to_ns;
use crate::scaler::ScalerMsg;
use rules::{step, Anomaly, Detector, Rule, State, Transition};
use serde::Deserialize;
use tsdb::Tsdb;

/// The monitor's parameters (Prometheus defaults where it has them).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// `scrape_interval` (15 s in the shipped prometheus.yml; rules are evaluated at each).
    pub scrape_interval_ms: f64,
    /// Raw samples are kept this long, then folded into `downsample_step_s` means.
    pub raw_retention_s: f64,
    pub downsample_step_s: f64,
    /// `--storage.tsdb.retention.time` (15 d).
    pub retention_s: f64,
    pub rules: Vec<Rule>,
    pub anomalies: Vec<Anomaly>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            scrape_interval_ms: 15_000.0,
            raw_retention_s: 7_200.0,
            downsample_step_s: 300.0,
            retention_s: 15.0 * 86_400.0,
            rules: Vec::new(),
            anomalies: Vec::new(),
        }
    }
}

impl MonitorConfig {
    /// Ranges: the interval 100 ms-1 h; retentions 1 s-400 d with the raw one within the whole;
    /// a step 1 s-1 d; at most 100 rules and detectors, each naming a catalogued metric, with
    /// `for_s` 0-1 d, a window of 2-10,000 samples, `z` above 0.
    pub fn validate(&self) -> Checked {
        config::range("scrape_interval_ms", self.scrape_interval_ms, 100.0, 3.6e6)?;
        config::range("retention_s", self.retention_s, 1.0, 34_560_000.0)?;
        config::range(
            "raw_retention_s",
            self.raw_retention_s,
            1.0,
            self.retention_s,
        )?;
        config::range("downsample_step_s", self.downsample_step_s, 1.0, 86_400.0)?;
        config::count("rules", self.rules.len() as u64, 0, 100)?;
        config::count("anomalies", self.anomalies.len() as u64, 0, 100)?;
        for r in &self.rules {
            known("rules.metric", &r.expr.metric)?;
            config::range("rules.for_s", r.for_s, 0.0, 86_400.0)?;
            config::rule(
                r.threshold.is_finite(),
                "rules.threshold",
                "must be a number",
            )?;
            if let Some(n) = r.scale_out_by {
                config::count("rules.scale_out_by", u64::from(n), 1, 64)?;
            }
        }
        for a in &self.anomalies {
            known("anomalies.metric", &a.expr.metric)?;
            config::count("anomalies.window", u64::from(a.window), 2, 10_000)?;
            config::range("anomalies.z", a.z, 1e-3, 1e6)?;
            config::count("anomalies.for_samples", u64::from(a.for_samples), 1, 10_000)?;
            config::range("anomalies.min_std_fraction", a.min_std_fraction, 0.0, 100.0)?;
        }
        Ok(())
    }
}

fn known(field: &str, metric: &str) -> Checked {
    config::rule(
        metric == UP || catalog::find(metric).is_some(),
        field,
        format!("`{metric}` is not a metric of the catalogue (`minitwin metrics` lists them)"),
    )
}

/// The series of scrape success per target, as Prometheus writes it.
pub const UP: &str = "up";

/// A change of an alert's state at a time, with the expression's value.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    pub t_ns: u64,
    pub alert: String,
    pub state: Transition,
    pub value: f64,
    /// A detector's alert (anomaly), not a threshold rule's.
    pub anomaly: bool,
}

/// The monitor state machine.
pub struct Monitor {
    config: MonitorConfig,
    targets: Vec<NodeId>,
    control_plane: Option<NodeId>,
    pub tsdb: Tsdb,
    seq: u64,
    scrape_ns: u64,
    answered: Vec<bool>,
    /// Which targets the current round scraped.
    scraped: Vec<bool>,
    rule_states: Vec<State>,
    anomaly_states: Vec<State>,
    detectors: Vec<Detector>,
    /// Every alert state change, in order.
    pub timeline: Vec<AlertEvent>,
    pub scrapes_total: u64,
    pub scrapes_failed_total: u64,
    /// Pod slots of an autoscaled tier: scraped only while the control plane says their pod
    /// runs (service discovery), so a slot switched off is no target, not a target down.
    pod_slots: std::collections::BTreeSet<NodeId>,
    running: std::collections::BTreeSet<NodeId>,
    targets_version: u64,
    /// What the registry's counters were last given: (failed scrapes, samples appended).
    exported: (u64, u64),
    ids: Option<Ids>,
}

struct Ids {
    scrapes: crate::metrics::CounterId,
    failed: crate::metrics::CounterId,
    appended: crate::metrics::CounterId,
    evaluations: crate::metrics::CounterId,
    series: crate::metrics::GaugeId,
    held: crate::metrics::GaugeId,
    firing: crate::metrics::GaugeId,
}

impl Monitor {
    /// A monitor of `targets`; alerts with `scale_out_by` go to `control_plane`.
    pub fn new(
        config: MonitorConfig,
        targets: &[NodeId],
        control_plane: Option<NodeId>,
    ) -> Monitor {
        let s = 1_000_000_000.0;
        Monitor {
            tsdb: Tsdb::new(
                (config.raw_retention_s * s) as u64,
                (config.downsample_step_s * s) as u64,
                (config.retention_s * s) as u64,
            ),
            targets: targets.to_vec(),
            control_plane,
            seq: 0,
            scrape_ns: 0,
            answered: vec![false; targets.len()],
            scraped: vec![false; targets.len()],
            rule_states: vec![State::Inactive; config.rules.len()],
            anomaly_states: vec![State::Inactive; config.anomalies.len()],
            detectors: vec![Detector::default(); config.anomalies.len()],
            timeline: Vec::new(),
            scrapes_total: 0,
            scrapes_failed_total: 0,
            exported: (0, 0),
            pod_slots: Default::default(),
            running: Default::default(),
            targets_version: 0,
            ids: None,
            config,
        }
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// Discovers `slots` through the control plane, `running` of them to begin with.
    pub fn with_pod_slots(mut self, slots: &[NodeId], running: &[NodeId]) -> Monitor {
        self.pod_slots = slots.iter().copied().collect();
        self.running = running.iter().copied().collect();
        self
    }

    /// Whether target `t` is scraped now.
    fn discovered(&self, t: NodeId) -> bool {
        !self.pod_slots.contains(&t) || self.running.contains(&t)
    }

    /// A scrape round: close the last one (`up` of silent targets is 0), evaluate the rules on
    /// it, and send the next.
    fn tick(&mut self, ctx: &mut dyn Context) {
        if self.seq > 0 {
            for i in 0..self.targets.len() {
                if !self.scraped[i] {
                    continue; // not a target this round (a pod slot switched off)
                }
                let ok = self.answered[i];
                let up = f64::from(u8::from(ok));
                self.tsdb
                    .insert((i as u32, UP, Part::Value), self.scrape_ns, up);
                self.scrapes_failed_total += u64::from(!ok);
            }
            self.evaluate(ctx);
        }
        self.seq += 1;
        self.scrape_ns = ctx.now_ns();
        self.answered.iter_mut().for_each(|a| *a = false);
        for i in 0..self.targets.len() {
            let t = self.targets[i];
            self.scraped[i] = self.discovered(t);
            if self.scraped[i] {
                ctx.send(t, Msg::Monitor(MonitorMsg::Scrape { seq: self.seq }));
                self.scrapes_total += 1;
            }
        }
        self.self_metrics(ctx);
        ctx.set_timer(
            ms_to_ns(self.config.scrape_interval_ms),
            Timer::Tick { kind: 0 },
        );
    }

    fn evaluate(&mut self, ctx: &mut dyn Context) {
        let (at, now) = (self.scrape_ns, ctx.now_ns());
        for i in 0..self.config.rules.len() {
            let r = &self.config.rules[i];
            let value = r.expr.eval(&self.tsdb, at);
            let active = value.is_some_and(|v| match r.op {
                rules::Op::Above => v > r.threshold,
                rules::Op::Below => v < r.threshold,
            });
            let for_ns = (r.for_s * 1e9) as u64;
            let add = r.scale_out_by;
            if let Some(t) = step(&mut self.rule_states[i], active, now, for_ns) {
                let name = r.name.clone();
                self.record(now, name, t, value.unwrap_or(f64::NAN), false);
                if t == Transition::Resolved {
                    self.floor(ctx, i, 0);
                }
            }
            // While it fires, the floor is asked for again at every evaluation (each request
            // valid three intervals): a lost message or a restart cannot hold it forever.
            if let (Some(add), State::Firing { .. }) = (add, self.rule_states[i]) {
                self.floor(ctx, i, add);
            }
        }
        for i in 0..self.config.anomalies.len() {
            let a = &self.config.anomalies[i];
            // No series: nothing anomalous to see (a firing alert resolves).
            let (anomalous, z) = match a.expr.eval(&self.tsdb, at) {
                Some(x) => self.detectors[i].observe(a, x),
                None => (false, 0.0),
            };
            if let Some(t) = step(&mut self.anomaly_states[i], anomalous, now, 0) {
                let name = a.name.clone();
                self.record(now, name, t, z, true);
            }
        }
    }

    /// Asks the control plane to hold `add` replicas more for rule `rule` (0: let go).
    fn floor(&self, ctx: &mut dyn Context, rule: usize, add: u32) {
        let Some(cp) = self.control_plane else { return };
        let msg = ScalerMsg::AlertFloor {
            rule: rule as u32,
            add,
            valid_ms: (3.0 * self.config.scrape_interval_ms) as u64,
        };
        ctx.send(cp, Msg::Scaler(msg));
    }

    /// Prometheus' own metrics, in its registry.
    fn self_metrics(&mut self, ctx: &mut dyn Context) {
        let (failed, appended) = (self.scrapes_failed_total, self.tsdb.samples_total());
        let (new_failed, new_appended) = (failed - self.exported.0, appended - self.exported.1);
        self.exported = (failed, appended);
        let Some(i) = &self.ids else { return };
        let firing = self
            .rule_states
            .iter()
            .chain(&self.anomaly_states)
            .filter(|s| matches!(s, State::Firing { .. }))
            .count();
        let rules = (self.config.rules.len() + self.config.anomalies.len()) as u64;
        let m = ctx.metrics();
        m.add(
            i.scrapes,
            self.scraped.iter().filter(|s| **s).count() as u64,
        );
        m.add(i.evaluations, if self.seq > 1 { rules } else { 0 });
        m.add(i.failed, new_failed);
        m.add(i.appended, new_appended);
        m.set(i.series, self.tsdb.series_count() as f64);
        m.set(i.held, self.tsdb.samples_held() as f64);
        m.set(i.firing, firing as f64);
    }

    fn record(&mut self, t_ns: u64, alert: String, state: Transition, value: f64, anomaly: bool) {
        tracing::debug!(alert, state = state.name(), value, "alert");
        self.timeline.push(AlertEvent {
            t_ns,
            alert,
            state,
            value,
            anomaly,
        });
    }

    fn on_samples(&mut self, from: NodeId, seq: u64, samples: Vec<Sample>) {
        let Some(i) = self.targets.iter().position(|&t| t == from) else {
            return;
        };
        if seq != self.seq || self.answered[i] {
            return; // too late for its round (Prometheus' scrape timeout), or a duplicate
        }
        self.answered[i] = true;
        for s in samples {
            self.tsdb
                .insert((i as u32, s.name, s.part), self.scrape_ns, s.value());
        }
    }
}

impl Component for Monitor {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            scrapes: m.counter("prometheus_target_scrapes_total"),
            failed: m.counter("prometheus_target_scrapes_failed_total"),
            appended: m.counter("prometheus_tsdb_samples_appended_total"),
            evaluations: m.counter("prometheus_rule_evaluations_total"),
            series: m.gauge("prometheus_tsdb_head_series", "series"),
            held: m.gauge("prometheus_tsdb_samples_held", "samples"),
            firing: m.gauge("prometheus_alerts_firing", "alerts"),
        });
        // The first round goes one interval in, as Prometheus spreads its first scrapes.
        ctx.set_timer(
            ms_to_ns(self.config.scrape_interval_ms),
            Timer::Tick { kind: 0 },
        );
    }

    fn on_message(&mut self, _ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        match msg {
            Msg::Monitor(MonitorMsg::Samples { seq, samples }) => {
                self.on_samples(from, seq, samples)
            }
            Msg::Scaler(ScalerMsg::Targets { version, running })
                if Some(from) == self.control_plane && version > self.targets_version =>
            {
                self.targets_version = version;
                self.running = running.into_iter().collect();
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        if let Timer::Tick { kind: 0 } = timer {
            self.tick(ctx);
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
