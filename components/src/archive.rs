//! The cold-storage archiver: object-storage lifecycle rules over a population of objects.
//!
//! Objects are created at a steady rate with log-normal sizes. Each is accessed as a
//! non-homogeneous Poisson process whose rate decays with age (`access_per_day *
//! exp(-age / access_decay_days)`), except a `popular_fraction` that stays at a constant rate.
//! A lifecycle batch runs every `batch_interval_hours`; the transitions it decides complete
//! after a lag drawn per batch. An access to an object in a cold tier restores it to hot after
//! the tier's restore latency.
//!
//! How it advances when no requests are modelled: in coarse steps. A timer every `step_hours`
//! creates that step's objects, and handles every object whose next access falls in the step;
//! each object's next access time is drawn by inverting its cumulative access rate, so an
//! object costs nothing between accesses. 90 simulated days of 10^5-10^6 objects take seconds.
//!
//! Storage efficiency (reported daily and at the end):
//!
//! ```text
//! efficiency = logical bytes / billed bytes
//! logical bytes = sum over objects of size
//! billed bytes  = sum over objects of max(size, min_billable_bytes(tier)) * billed_copies(tier)
//! ```
//!
//! Hot fraction = logical bytes in the hot tier / logical bytes. Cost per month = sum over
//! tiers of billed GB * price, plus early-deletion charges: an object that leaves a tier before
//! its minimum storage duration is charged for the rest of that duration (S3's rule).

use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::math;
use crate::metrics::{CounterId, GaugeId, HistId};
use crate::msg::{Msg, Timer};
use crate::rng::Dist;
use serde::Deserialize;

/// Messages of the archiver (restores requested from outside are not modelled yet).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ArchiveMsg {}

/// One storage tier's economics and latency.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    pub price_per_gb_month: f64,
    pub min_storage_days: f64,
    pub min_billable_bytes: u64,
    /// Copies billed: 3 for a self-managed replicated hot store; 1 where the price includes
    /// the provider's redundancy.
    pub billed_copies: u32,
    pub restore_latency: Dist,
}

impl Tier {
    fn validate(&self) -> Checked {
        config::range("price_per_gb_month", self.price_per_gb_month, 0.0, 1e6)?;
        config::range("min_storage_days", self.min_storage_days, 0.0, 3_650.0)?;
        config::count(
            "min_billable_bytes",
            self.min_billable_bytes,
            0,
            1_000_000_000_000,
        )?;
        config::count("billed_copies", u64::from(self.billed_copies), 1, 10)?;
        config::nested("restore_latency", self.restore_latency.validate())
    }
}

/// A lifecycle rule: move objects to tier `to` (an index into `tiers`) once old enough.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub to: usize,
    pub days_since_creation: Option<f64>,
    pub days_since_last_access: Option<f64>,
    /// Objects smaller than this never move (S3 lifecycle's 128 KB default).
    #[serde(default = "default_min_object")]
    pub min_object_size_bytes: u64,
}

fn default_min_object() -> u64 {
    128 * 1024
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Tier 0 is hot. Defaults: S3-like Standard, Standard-IA, Glacier Flexible Retrieval and
    /// Deep Archive prices per GB-month (check the provider's current list), minimum durations
    /// 30/90/180 days, 128 KB minimum billable size for infrequent access.
    pub tiers: Vec<Tier>,
    pub rules: Vec<Rule>,
    pub objects_per_day: f64,
    /// Log-normal sizes: median and shape.
    pub size_median_bytes: f64,
    pub size_sigma: f64,
    pub access_per_day: f64,
    pub access_decay_days: f64,
    pub popular_fraction: f64,
    pub popular_access_per_day: f64,
    pub batch_interval_hours: f64,
    /// Time for a batch's transitions to complete.
    pub batch_lag: Dist,
    pub step_hours: f64,
}

fn gb(bytes: f64) -> f64 {
    bytes / 1e9
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        let tier =
            |name: &str, price: f64, days: f64, min_bytes: u64, copies: u32, restore: Dist| Tier {
                name: name.into(),
                price_per_gb_month: price,
                min_storage_days: days,
                min_billable_bytes: min_bytes,
                billed_copies: copies,
                restore_latency: restore,
            };
        ArchiveConfig {
            tiers: vec![
                tier("hot", 0.023, 0.0, 0, 3, Dist::Constant { ms: 5.0 }),
                tier(
                    "infrequent",
                    0.0125,
                    30.0,
                    128 * 1024,
                    1,
                    Dist::Constant { ms: 50.0 },
                ),
                tier(
                    "archive",
                    0.0036,
                    90.0,
                    40 * 1024,
                    1,
                    Dist::Uniform {
                        min_ms: 60_000.0,
                        max_ms: 300_000.0,
                    },
                ),
                tier(
                    "deep_archive",
                    0.00099,
                    180.0,
                    40 * 1024,
                    1,
                    Dist::Uniform {
                        min_ms: 43_200_000.0,
                        max_ms: 172_800_000.0,
                    },
                ),
            ],
            rules: vec![
                Rule {
                    to: 1,
                    days_since_creation: Some(7.0),
                    days_since_last_access: Some(7.0),
                    min_object_size_bytes: 128 * 1024,
                },
                Rule {
                    to: 2,
                    days_since_creation: Some(30.0),
                    days_since_last_access: Some(30.0),
                    min_object_size_bytes: 128 * 1024,
                },
            ],
            objects_per_day: 2_000.0,
            size_median_bytes: 400_000.0,
            size_sigma: 1.2,
            access_per_day: 3.0,
            access_decay_days: 2.0,
            popular_fraction: 0.02,
            popular_access_per_day: 2.0,
            batch_interval_hours: 24.0,
            batch_lag: Dist::Uniform {
                min_ms: 3_600_000.0,
                max_ms: 14_400_000.0,
            },
            step_hours: 1.0,
        }
    }
}

impl ArchiveConfig {
    /// Ranges: 1-8 `tiers` (price 0-1,000,000 per GB-month, `min_storage_days` 0-3,650,
    /// `min_billable_bytes` up to 1e12, `billed_copies` 1-10, a restore latency
    /// distribution); `rules` moving to a cold tier after 0-36,500 days; `objects_per_day`
    /// 0-125,000 (about 50 million objects over 400 days); `size_median_bytes` 1-1e12;
    /// `size_sigma` 0-10; access rates 0-1,000,000 per day; `access_decay_days` 0.001-36,500;
    /// `popular_fraction` 0-1; `batch_interval_hours` and `step_hours` 0.1-8,760.
    pub fn validate(&self) -> Checked {
        config::count("tiers", self.tiers.len() as u64, 1, 8)?;
        for (i, t) in self.tiers.iter().enumerate() {
            config::nested(&format!("tiers[{i}]"), t.validate())?;
        }
        for (i, r) in self.rules.iter().enumerate() {
            let f = |name: &str| format!("rules[{i}].{name}");
            config::rule(
                r.to > 0 && r.to < self.tiers.len(),
                &f("to"),
                format!(
                    "{} is not a cold tier (1..{})",
                    r.to,
                    self.tiers.len().saturating_sub(1)
                ),
            )?;
            for (name, days) in [
                ("days_since_creation", r.days_since_creation),
                ("days_since_last_access", r.days_since_last_access),
            ] {
                if let Some(d) = days {
                    config::range(&f(name), d, 0.0, 36_500.0)?;
                }
            }
        }
        config::range("objects_per_day", self.objects_per_day, 0.0, 125_000.0)?;
        config::range("size_median_bytes", self.size_median_bytes, 1.0, 1e12)?;
        config::range("size_sigma", self.size_sigma, 0.0, 10.0)?;
        config::range("access_per_day", self.access_per_day, 0.0, 1e6)?;
        config::range("access_decay_days", self.access_decay_days, 0.001, 36_500.0)?;
        config::fraction("popular_fraction", self.popular_fraction)?;
        config::range(
            "popular_access_per_day",
            self.popular_access_per_day,
            0.0,
            1e6,
        )?;
        config::range(
            "batch_interval_hours",
            self.batch_interval_hours,
            0.1,
            8_760.0,
        )?;
        config::range("step_hours", self.step_hours, 0.1, 8_760.0)?;
        config::nested("batch_lag", self.batch_lag.validate())
    }
}

#[derive(Clone, Copy, Debug)]
struct Object {
    created_h: f64,
    last_access_h: f64,
    next_access_h: f64,
    size_bytes: u64,
    tier: u8,
    tier_since_h: f64,
    popular: bool,
    in_transit: bool,
}

/// One simulated day's accounting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchiveDay {
    pub day: u32,
    pub objects: u64,
    pub logical_bytes: f64,
    pub billed_bytes: f64,
    pub hot_fraction: f64,
    pub storage_efficiency: f64,
    pub cost_per_month: f64,
}

struct Ids {
    created: CounterId,
    accesses: CounterId,
    restores: CounterId,
    transitions: CounterId,
    restore_latency: HistId,
    hot_fraction: GaugeId,
    efficiency: GaugeId,
    early_deletion_gb_months: GaugeId,
}

const TICK_STEP: u32 = 1;
const TICK_BATCH: u32 = 2;
const TICK_BATCH_DONE: u32 = 3;
const NS_PER_HOUR: f64 = 3.6e12;

pub struct Archiver {
    config: ArchiveConfig,
    objects: Vec<Object>,
    /// Transitions decided by batches, waiting for their completion: (object, target tier).
    in_flight: Vec<Vec<(u32, u8)>>,
    creation_debt: f64,
    early_deletion_gb_months: f64,
    ids: Option<Ids>,
    /// One entry per simulated day.
    pub days: Vec<ArchiveDay>,
}

impl Archiver {
    pub fn new(config: ArchiveConfig) -> Archiver {
        Archiver {
            config,
            objects: Vec::new(),
            in_flight: Vec::new(),
            creation_debt: 0.0,
            early_deletion_gb_months: 0.0,
            ids: None,
            days: Vec::new(),
        }
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn now_h(ctx: &dyn Context) -> f64 {
        ctx.now_ns() as f64 / NS_PER_HOUR
    }

    /// The next access after `t_h` of an object created at `created_h`: inverts the
    /// cumulative rate a*tau*(1 - exp(-age/tau)) (decaying) or a*age (popular).
    fn next_access(&self, ctx: &mut dyn Context, created_h: f64, t_h: f64, popular: bool) -> f64 {
        let e = ctx.rng().exp(1.0);
        if popular {
            let rate_h = self.config.popular_access_per_day / 24.0;
            return if rate_h > 0.0 {
                t_h + e / rate_h
            } else {
                f64::INFINITY
            };
        }
        let a = self.config.access_per_day / 24.0;
        let tau = self.config.access_decay_days * 24.0;
        if a <= 0.0 || tau <= 0.0 {
            return f64::INFINITY;
        }
        let remaining = math::exp(-(t_h - created_h) / tau) - e / (a * tau);
        if remaining <= 0.0 {
            f64::INFINITY
        } else {
            created_h - tau * math::ln(remaining)
        }
    }

    fn create(&mut self, ctx: &mut dyn Context, now_h: f64) {
        self.creation_debt += self.config.objects_per_day * self.config.step_hours / 24.0;
        let n = self.creation_debt.floor();
        self.creation_debt -= n;
        for _ in 0..n as u64 {
            let created_h = now_h - ctx.rng().unit() * self.config.step_hours;
            let size = self.config.size_median_bytes
                * math::exp(self.config.size_sigma * ctx.rng().normal());
            let popular = ctx.rng().chance(self.config.popular_fraction);
            let next = self.next_access(ctx, created_h, created_h, popular);
            self.objects.push(Object {
                created_h,
                last_access_h: created_h,
                next_access_h: next,
                size_bytes: size.max(1.0) as u64,
                tier: 0,
                tier_since_h: created_h,
                popular,
                in_transit: false,
            });
        }
        let c = self.ids().created;
        ctx.metrics().add(c, n as u64);
    }

    fn access_due(&mut self, ctx: &mut dyn Context, now_h: f64) {
        for i in 0..self.objects.len() {
            while self.objects[i].next_access_h <= now_h {
                let o = self.objects[i];
                let at = o.next_access_h;
                let c = self.ids().accesses;
                ctx.metrics().add(c, 1);
                if o.tier != 0 {
                    self.restore(ctx, i, at);
                }
                let next = self.next_access(ctx, o.created_h, at, o.popular);
                let obj = &mut self.objects[i];
                obj.last_access_h = at;
                obj.next_access_h = next;
            }
        }
    }

    fn restore(&mut self, ctx: &mut dyn Context, i: usize, at_h: f64) {
        let tier = self.objects[i].tier as usize;
        let latency = self.config.tiers[tier].restore_latency.sample_ns(ctx.rng());
        let (r, h) = (self.ids().restores, self.ids().restore_latency);
        ctx.metrics().add(r, 1);
        ctx.metrics().record(h, latency);
        self.move_to(i, 0, at_h);
    }

    /// Moves an object to `tier`, charging early deletion if it leaves a tier too soon.
    fn move_to(&mut self, i: usize, tier: u8, at_h: f64) {
        let o = self.objects[i];
        let old = &self.config.tiers[o.tier as usize];
        let stayed_days = (at_h - o.tier_since_h) / 24.0;
        if stayed_days < old.min_storage_days {
            let billed =
                gb(o.size_bytes.max(old.min_billable_bytes) as f64) * f64::from(old.billed_copies);
            self.early_deletion_gb_months +=
                billed * (old.min_storage_days - stayed_days) / 30.0 * old.price_per_gb_month;
        }
        let obj = &mut self.objects[i];
        obj.tier = tier;
        obj.tier_since_h = at_h;
        obj.in_transit = false;
    }

    /// The coldest tier a rule sends this object to, if colder than where it is.
    fn target(&self, o: &Object, now_h: f64) -> Option<u8> {
        let age_days = (now_h - o.created_h) / 24.0;
        let idle_days = (now_h - o.last_access_h) / 24.0;
        self.config
            .rules
            .iter()
            .filter(|r| o.size_bytes >= r.min_object_size_bytes)
            .filter(|r| r.days_since_creation.is_none_or(|d| age_days >= d))
            .filter(|r| r.days_since_last_access.is_none_or(|d| idle_days >= d))
            .map(|r| r.to as u8)
            .filter(|&t| t > o.tier)
            .max()
    }

    fn batch(&mut self, ctx: &mut dyn Context, now_h: f64) {
        let decided: Vec<(u32, u8)> = self
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.in_transit)
            .filter_map(|(i, o)| self.target(o, now_h).map(|t| (i as u32, t)))
            .collect();
        for &(i, _) in &decided {
            self.objects[i as usize].in_transit = true;
        }
        self.in_flight.push(decided);
        let lag = self.config.batch_lag.sample_ns(ctx.rng());
        ctx.set_timer(
            lag,
            Timer::Tick {
                kind: TICK_BATCH_DONE,
            },
        );
        let every = (self.config.batch_interval_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(every, Timer::Tick { kind: TICK_BATCH });
    }

    fn batch_done(&mut self, ctx: &mut dyn Context, now_h: f64) {
        if self.in_flight.is_empty() {
            return;
        }
        let done = self.in_flight.remove(0);
        let mut moved = 0;
        for (i, t) in done {
            let i = i as usize;
            // Accessed (and restored) since the batch decided: the transition is moot.
            if self.objects[i].in_transit && self.objects[i].tier < t {
                self.move_to(i, t, now_h);
                moved += 1;
            }
            self.objects[i].in_transit = false;
        }
        let c = self.ids().transitions;
        ctx.metrics().add(c, moved);
    }

    /// Today's accounting (see the module doc for the formulas).
    pub fn account(&self, day: u32) -> ArchiveDay {
        let (mut logical, mut billed, mut hot, mut cost) = (0.0, 0.0, 0.0, 0.0);
        for o in &self.objects {
            let t = &self.config.tiers[o.tier as usize];
            let size = o.size_bytes as f64;
            let b = o.size_bytes.max(t.min_billable_bytes) as f64 * f64::from(t.billed_copies);
            logical += size;
            billed += b;
            cost += gb(b) * t.price_per_gb_month;
            if o.tier == 0 {
                hot += size;
            }
        }
        ArchiveDay {
            day,
            objects: self.objects.len() as u64,
            logical_bytes: logical,
            billed_bytes: billed,
            hot_fraction: if logical > 0.0 { hot / logical } else { 0.0 },
            storage_efficiency: if billed > 0.0 { logical / billed } else { 0.0 },
            cost_per_month: cost,
        }
    }

    fn step(&mut self, ctx: &mut dyn Context) {
        let now_h = Self::now_h(ctx);
        self.create(ctx, now_h);
        self.access_due(ctx, now_h);
        let day = (now_h / 24.0).floor() as u32;
        if day as usize > self.days.len() {
            let d = self.account(day);
            let ids = self.ids();
            let (hf, ef, ed) = (
                ids.hot_fraction,
                ids.efficiency,
                ids.early_deletion_gb_months,
            );
            ctx.metrics().set(hf, d.hot_fraction);
            ctx.metrics().set(ef, d.storage_efficiency);
            ctx.metrics().set(ed, self.early_deletion_gb_months);
            self.days.push(d);
        }
        let step = (self.config.step_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(step, Timer::Tick { kind: TICK_STEP });
    }

    pub fn early_deletion_cost(&self) -> f64 {
        self.early_deletion_gb_months
    }
}

impl Component for Archiver {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            created: m.counter("archive_objects_created_total"),
            accesses: m.counter("archive_accesses_total"),
            restores: m.counter("archive_restores_total"),
            transitions: m.counter("archive_transitions_total"),
            restore_latency: m.histogram("archive_restore_latency_ns"),
            hot_fraction: m.gauge("archive_hot_fraction", "ratio"),
            efficiency: m.gauge("archive_storage_efficiency", "ratio"),
            early_deletion_gb_months: m.gauge("archive_early_deletion_cost", "price units"),
        });
        let step = (self.config.step_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(step, Timer::Tick { kind: TICK_STEP });
        let every = (self.config.batch_interval_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(every, Timer::Tick { kind: TICK_BATCH });
    }

    fn on_message(&mut self, _ctx: &mut dyn Context, _from: NodeId, _msg: Msg) {}

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        let now_h = Self::now_h(ctx);
        match timer {
            Timer::Tick { kind: TICK_STEP } => self.step(ctx),
            Timer::Tick { kind: TICK_BATCH } => self.batch(ctx, now_h),
            Timer::Tick {
                kind: TICK_BATCH_DONE,
            } => self.batch_done(ctx, now_h),
            _ => {}
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestContext;

    fn run_days(config: ArchiveConfig, days: f64) -> (Archiver, TestContext) {
        let mut ctx = TestContext::new(0);
        let mut a = Archiver::new(config);
        a.start(&mut ctx);
        let end = (days * 24.0 * NS_PER_HOUR) as u64;
        while let Some(t) = ctx.pop_timer() {
            if ctx.now_ns > end {
                break;
            }
            a.on_timer(&mut ctx, t);
        }
        (a, ctx)
    }

    fn small() -> ArchiveConfig {
        ArchiveConfig {
            objects_per_day: 200.0,
            ..ArchiveConfig::default()
        }
    }

    #[test]
    fn storage_efficiency_follows_its_formula_on_a_hand_computed_example() {
        let mut a = Archiver::new(ArchiveConfig::default());
        let obj = |size, tier| Object {
            created_h: 0.0,
            last_access_h: 0.0,
            next_access_h: f64::INFINITY,
            size_bytes: size,
            tier,
            tier_since_h: 0.0,
            popular: false,
            in_transit: false,
        };
        // 1 MB hot (3 copies) + 64 KB infrequent (billed as 128 KiB, 1 copy).
        a.objects = vec![obj(1_000_000, 0), obj(65_536, 1)];
        let d = a.account(0);
        assert_eq!(d.logical_bytes, 1_065_536.0);
        assert_eq!(d.billed_bytes, 3_000_000.0 + 131_072.0);
        assert!((d.storage_efficiency - 1_065_536.0 / 3_131_072.0).abs() < 1e-12);
        assert!((d.hot_fraction - 1_000_000.0 / 1_065_536.0).abs() < 1e-12);
    }

    #[test]
    fn over_90_days_the_hot_set_ends_under_20_percent_of_storage() {
        let (a, _) = run_days(small(), 90.0);
        let last = a.days.last().expect("days were accounted");
        assert!(last.day >= 88, "{}", last.day);
        assert!(
            last.hot_fraction < 0.20,
            "hot fraction {}",
            last.hot_fraction
        );
        assert!(
            a.days[3].hot_fraction > 0.9,
            "young data starts hot: {}",
            a.days[3].hot_fraction
        );
    }

    #[test]
    fn small_objects_never_move_and_nothing_moves_before_its_rule_allows() {
        let (a, _) = run_days(small(), 20.0);
        for o in &a.objects {
            if o.size_bytes < 128 * 1024 {
                assert_eq!(o.tier, 0, "a small object moved");
            }
            if o.tier == 2 {
                panic!("an object reached the archive tier before 30 days");
            }
        }
        assert!(
            a.objects.iter().any(|o| o.tier == 1),
            "week-old idle objects moved to infrequent access"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_days() {
        let (a, _) = run_days(small(), 30.0);
        let (b, _) = run_days(small(), 30.0);
        assert_eq!(a.days, b.days);
    }
}
