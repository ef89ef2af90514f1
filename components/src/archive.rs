//! The cold-storage archiver: object-storage tiering over a population of objects, by S3's
//! rules.
//!
//! Objects are created at a steady rate with log-normal sizes (`source = "synthetic"`), or one
//! per key the store shards write (`source = "store"`: the archiver reads every shard's log as a
//! log reader, a new key is a new object and a rewrite of a key is an access). Each is read as
//! a non-homogeneous Poisson process whose rate decays with age (`access_per_day *
//! exp(-age / access_decay_days)`), except a `popular_fraction` that stays at a constant rate.
//!
//! Two ways to tier, as S3 offers them (`mode`):
//! - `lifecycle`: rules act on object age only (days since creation; S3 lifecycle has no
//!   last-access condition). S3 refuses a transition to Standard-IA before 30 days and one to
//!   a colder class less than 30 days after Standard-IA (`min_transition_age_days`), and never
//!   moves objects under 128 KB. A batch runs every `batch_interval_hours` (S3 runs lifecycle
//!   once a day); its transitions complete after a lag drawn per batch. An access to an object
//!   in a cold tier pays the tier's retrieval fee and latency, and the platform copies the
//!   object back to hot: a new object (age 0), the old one deleted (early-deletion charge).
//! - `intelligent_tiering`: S3 Intelligent-Tiering moves a monitored object (128 KB or more)
//!   to Infrequent Access after 30 days without access and to Archive Instant Access after
//!   90, and back to Frequent Access on its next access, with no retrieval fee and no minimum
//!   duration, for a monitoring fee per object; smaller objects are not monitored and stay in
//!   Frequent Access.
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
//! tiers of billed GB * price, plus (Intelligent-Tiering) the monitoring fee per 1,000
//! monitored objects. Charged once, and kept apart: early deletion (an object that leaves a
//! tier before its minimum storage duration is charged for the rest of it, S3's rule) and
//! retrieval fees per GB read from a cold tier.

use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::math;
use crate::metrics::{CounterId, GaugeId, HistId};
use crate::mirror::MirrorMsg;
use crate::msg::{Msg, Timer};
use crate::rng::Dist;
use serde::Deserialize;
use std::collections::BTreeMap;

/// S3 Intelligent-Tiering's fixed schedule: days without access before Infrequent Access and
/// before Archive Instant Access, and the smallest object it monitors.
pub const IT_INFREQUENT_AFTER_DAYS: f64 = 30.0;
pub const IT_ARCHIVE_INSTANT_AFTER_DAYS: f64 = 90.0;
pub const IT_MIN_MONITORED_BYTES: u64 = 128 * 1024;

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
    /// A lifecycle rule may move an object here only once it is this old (S3: 30 days for
    /// Standard-IA and One Zone-IA, 0 for the Glacier classes), and a later rule to a colder
    /// tier only 30 days after the rule into this one.
    #[serde(default)]
    pub min_transition_age_days: f64,
    /// Fee per GB read from this tier (S3 Standard-IA and Glacier Flexible Retrieval: 0.01).
    #[serde(default)]
    pub retrieval_per_gb: f64,
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
        config::range(
            "min_transition_age_days",
            self.min_transition_age_days,
            0.0,
            3_650.0,
        )?;
        config::range("retrieval_per_gb", self.retrieval_per_gb, 0.0, 1e6)?;
        config::nested("restore_latency", self.restore_latency.validate())
    }
}

/// A lifecycle rule: move objects to tier `to` (an index into `tiers`) once old enough.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub to: usize,
    pub days_since_creation: f64,
    /// Not an S3 lifecycle condition: refused with a pointer to `mode = "intelligent_tiering"`.
    #[serde(default)]
    pub days_since_last_access: Option<f64>,
    /// Objects smaller than this never move (S3 lifecycle's 128 KB default).
    #[serde(default = "default_min_object")]
    pub min_object_size_bytes: u64,
}

fn default_min_object() -> u64 {
    128 * 1024
}

/// How objects move between tiers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Lifecycle rules on object age (`tiers`, `rules`).
    #[default]
    Lifecycle,
    /// S3 Intelligent-Tiering (`intelligent_tiering`); `tiers` and `rules` are not used.
    IntelligentTiering,
}

/// Where the objects come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `objects_per_day` new objects, sizes drawn.
    #[default]
    Synthetic,
    /// What the store shards write: a new key is a new object, a rewrite is an access.
    Store,
}

/// S3 Intelligent-Tiering's prices (us-east-1 list prices; check the provider's current list).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelligentTiering {
    pub frequent_price_per_gb_month: f64,
    pub infrequent_price_per_gb_month: f64,
    pub archive_instant_price_per_gb_month: f64,
    /// Monitoring and automation, per 1,000 monitored objects (128 KB or more) per month.
    pub monitoring_fee_per_1000_objects_month: f64,
}

impl Default for IntelligentTiering {
    fn default() -> Self {
        IntelligentTiering {
            frequent_price_per_gb_month: 0.023,
            infrequent_price_per_gb_month: 0.0125,
            archive_instant_price_per_gb_month: 0.004,
            monitoring_fee_per_1000_objects_month: 0.0025,
        }
    }
}

impl IntelligentTiering {
    fn validate(&self) -> Checked {
        for (name, v) in [
            (
                "frequent_price_per_gb_month",
                self.frequent_price_per_gb_month,
            ),
            (
                "infrequent_price_per_gb_month",
                self.infrequent_price_per_gb_month,
            ),
            (
                "archive_instant_price_per_gb_month",
                self.archive_instant_price_per_gb_month,
            ),
            (
                "monitoring_fee_per_1000_objects_month",
                self.monitoring_fee_per_1000_objects_month,
            ),
        ] {
            config::range(name, v, 0.0, 1e6)?;
        }
        Ok(())
    }

    /// Its three access tiers, as the archiver accounts them: one billed copy (the price
    /// includes S3's redundancy), no minimum size or duration, millisecond access.
    fn tiers(&self) -> Vec<Tier> {
        let tier = |name: &str, price: f64| Tier {
            name: name.into(),
            price_per_gb_month: price,
            min_storage_days: 0.0,
            min_billable_bytes: 0,
            billed_copies: 1,
            restore_latency: Dist::Constant { ms: 5.0 },
            min_transition_age_days: 0.0,
            retrieval_per_gb: 0.0,
        };
        vec![
            tier("frequent", self.frequent_price_per_gb_month),
            tier("infrequent", self.infrequent_price_per_gb_month),
            tier("archive_instant", self.archive_instant_price_per_gb_month),
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    pub mode: Mode,
    pub source: Source,
    /// Tier 0 is hot. Defaults: the platform's hot store (S3 Standard's price, 3 billed copies),
    /// then S3 Standard-IA, Glacier Flexible Retrieval and Deep Archive prices per GB-month
    /// (check the provider's current list), minimum durations 30/90/180 days, 128 KB minimum
    /// billable size for infrequent access.
    pub tiers: Vec<Tier>,
    /// Lifecycle rules. Defaults: Standard-IA at 30 days, Glacier Flexible Retrieval at 90.
    pub rules: Vec<Rule>,
    pub intelligent_tiering: IntelligentTiering,
    /// How often the archiver reads the store shards' logs (`source = "store"`).
    pub store_poll_hours: f64,
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
                min_transition_age_days: 0.0,
                retrieval_per_gb: 0.0,
            };
        ArchiveConfig {
            mode: Mode::Lifecycle,
            source: Source::Synthetic,
            tiers: vec![
                tier("hot", 0.023, 0.0, 0, 3, Dist::Constant { ms: 5.0 }),
                Tier {
                    min_transition_age_days: 30.0,
                    retrieval_per_gb: 0.01,
                    ..tier(
                        "infrequent",
                        0.0125,
                        30.0,
                        128 * 1024,
                        1,
                        Dist::Constant { ms: 50.0 },
                    )
                },
                Tier {
                    retrieval_per_gb: 0.01,
                    ..tier(
                        "archive",
                        0.0036,
                        90.0,
                        40 * 1024,
                        1,
                        Dist::Uniform {
                            min_ms: 60_000.0,
                            max_ms: 300_000.0,
                        },
                    )
                },
                Tier {
                    retrieval_per_gb: 0.02,
                    ..tier(
                        "deep_archive",
                        0.00099,
                        180.0,
                        40 * 1024,
                        1,
                        Dist::Uniform {
                            min_ms: 43_200_000.0,
                            max_ms: 172_800_000.0,
                        },
                    )
                },
            ],
            rules: vec![
                Rule {
                    to: 1,
                    days_since_creation: 30.0,
                    days_since_last_access: None,
                    min_object_size_bytes: 128 * 1024,
                },
                Rule {
                    to: 2,
                    days_since_creation: 90.0,
                    days_since_last_access: None,
                    min_object_size_bytes: 128 * 1024,
                },
            ],
            intelligent_tiering: IntelligentTiering::default(),
            store_poll_hours: 1.0,
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
            config::rule(
                r.days_since_last_access.is_none(),
                &f("days_since_last_access"),
                "S3 lifecycle rules act on object age only: use days_since_creation, or mode = \"intelligent_tiering\" for tiering by access",
            )?;
            config::range(
                &f("days_since_creation"),
                r.days_since_creation,
                0.0,
                36_500.0,
            )?;
            let to = &self.tiers[r.to];
            config::rule(
                r.days_since_creation >= to.min_transition_age_days,
                &f("days_since_creation"),
                format!(
                    "S3 moves objects to {} only once they are {} days old, not {}",
                    to.name, to.min_transition_age_days, r.days_since_creation
                ),
            )?;
            for (j, earlier) in self.rules.iter().enumerate() {
                let from = &self.tiers[earlier.to];
                let after = earlier.days_since_creation + 30.0;
                config::rule(
                    earlier.to >= r.to
                        || from.min_transition_age_days == 0.0
                        || r.days_since_creation >= after,
                    &f("days_since_creation"),
                    format!(
                        "objects stay 30 days in {} before S3 moves them on: rules[{i}] needs at least {after} days (rules[{j}] moves them there at {})",
                        from.name, earlier.days_since_creation
                    ),
                )?;
            }
        }
        config::nested("intelligent_tiering", self.intelligent_tiering.validate())?;
        config::range("store_poll_hours", self.store_poll_hours, 0.01, 8_760.0)?;
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
    /// When the data was first written: the origin of its decaying read rate.
    created_h: f64,
    /// When the stored object was created (a copy back to hot is a new object): the age
    /// lifecycle rules go by.
    object_since_h: f64,
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
    store_records: CounterId,
    restore_latency: HistId,
    hot_fraction: GaugeId,
    efficiency: GaugeId,
    early_deletion_gb_months: GaugeId,
    retrieval_cost: GaugeId,
}

const TICK_STEP: u32 = 1;
const TICK_BATCH: u32 = 2;
const TICK_BATCH_DONE: u32 = 3;
const TICK_POLL: u32 = 4;
const NS_PER_HOUR: f64 = 3.6e12;
/// Records asked for per read of a shard's log.
const POLL_BATCH: u32 = 10_000;

/// One store shard the archiver reads (`source = "store"`).
#[derive(Clone, Debug)]
struct Feed {
    members: Vec<NodeId>,
    /// The member asked last (the next one is tried when it is not the primary).
    cursor: usize,
    next_lsn: u64,
}

pub struct Archiver {
    config: ArchiveConfig,
    /// The tiers in use: `config.tiers`, or Intelligent-Tiering's three.
    tiers: Vec<Tier>,
    objects: Vec<Object>,
    /// `source = "store"`: the shards read, and each key's object.
    feeds: Vec<Feed>,
    by_key: BTreeMap<u64, u32>,
    retrieval_cost: f64,
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
        Archiver::fed_by(config, &[])
    }

    /// An archiver that reads the logs of the store shards `shards` (each one's members,
    /// initial primary first) when its source is the store.
    pub fn fed_by(config: ArchiveConfig, shards: &[Vec<NodeId>]) -> Archiver {
        let tiers = match config.mode {
            Mode::Lifecycle => config.tiers.clone(),
            Mode::IntelligentTiering => config.intelligent_tiering.tiers(),
        };
        let feeds = shards
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| Feed {
                members: m.clone(),
                cursor: 0,
                next_lsn: 1,
            })
            .collect();
        Archiver {
            config,
            tiers,
            objects: Vec::new(),
            feeds,
            by_key: BTreeMap::new(),
            retrieval_cost: 0.0,
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
        if self.config.source == Source::Store {
            return; // objects come from the store shards' logs
        }
        self.creation_debt += self.config.objects_per_day * self.config.step_hours / 24.0;
        let n = self.creation_debt.floor();
        self.creation_debt -= n;
        for _ in 0..n as u64 {
            let created_h = now_h - ctx.rng().unit() * self.config.step_hours;
            self.new_object(ctx, created_h);
        }
    }

    /// A new object written at `created_h`, hot, with a drawn size; returns its index.
    fn new_object(&mut self, ctx: &mut dyn Context, created_h: f64) -> u32 {
        let size =
            self.config.size_median_bytes * math::exp(self.config.size_sigma * ctx.rng().normal());
        let popular = ctx.rng().chance(self.config.popular_fraction);
        let next = self.next_access(ctx, created_h, created_h, popular);
        self.objects.push(Object {
            created_h,
            object_since_h: created_h,
            last_access_h: created_h,
            next_access_h: next,
            size_bytes: size.max(1.0) as u64,
            tier: 0,
            tier_since_h: created_h,
            popular,
            in_transit: false,
        });
        let c = self.ids().created;
        ctx.metrics().add(c, 1);
        (self.objects.len() - 1) as u32
    }

    /// Reads the next records of every shard's log (`source = "store"`).
    fn poll_store(&mut self, ctx: &mut dyn Context) {
        for f in &self.feeds {
            let msg = MirrorMsg::GetUpdates {
                from_lsn: f.next_lsn,
                max: POLL_BATCH,
            };
            ctx.send(f.members[f.cursor], Msg::Mirror(msg));
        }
        let every = (self.config.store_poll_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(every, Timer::Tick { kind: TICK_POLL });
    }

    /// A shard's records: a new key is a new object, a rewrite an access to its object.
    fn on_updates(
        &mut self,
        ctx: &mut dyn Context,
        from: NodeId,
        records: Vec<crate::mirror::MirrorRecord>,
        tail_lsn: u64,
    ) {
        let Some(f) = self.feeds.iter().position(|f| f.members.contains(&from)) else {
            return;
        };
        if tail_lsn == 0 {
            // Not the primary (any more): ask the next member at the next poll.
            let feed = &mut self.feeds[f];
            feed.cursor = (feed.cursor + 1) % feed.members.len();
            return;
        }
        let now_h = Self::now_h(ctx);
        let full = records.len() == POLL_BATCH as usize;
        for r in records {
            if r.lsn != self.feeds[f].next_lsn {
                continue; // a stale or repeated answer
            }
            self.feeds[f].next_lsn += 1;
            let c = self.ids().store_records;
            ctx.metrics().add(c, 1);
            let at_h = if r.commit_ns == 0 {
                now_h
            } else {
                (r.commit_ns as f64 / NS_PER_HOUR).min(now_h)
            };
            match self.by_key.get(&r.key).copied() {
                None => {
                    let i = self.new_object(ctx, at_h);
                    self.by_key.insert(r.key, i);
                }
                Some(i) => self.access(ctx, i as usize, at_h),
            }
        }
        if full {
            let feed = &self.feeds[f];
            let msg = MirrorMsg::GetUpdates {
                from_lsn: feed.next_lsn,
                max: POLL_BATCH,
            };
            ctx.send(from, Msg::Mirror(msg));
        }
    }

    /// An access (a read, or a rewrite from the store) to object `i` at `at_h`.
    fn access(&mut self, ctx: &mut dyn Context, i: usize, at_h: f64) {
        let c = self.ids().accesses;
        ctx.metrics().add(c, 1);
        if self.objects[i].tier != 0 {
            self.restore(ctx, i, at_h);
        }
        let obj = &mut self.objects[i];
        obj.last_access_h = obj.last_access_h.max(at_h);
    }

    fn access_due(&mut self, ctx: &mut dyn Context, now_h: f64) {
        for i in 0..self.objects.len() {
            while self.objects[i].next_access_h <= now_h {
                let o = self.objects[i];
                let at = o.next_access_h;
                self.access(ctx, i, at);
                let next = self.next_access(ctx, o.created_h, at, o.popular);
                self.objects[i].next_access_h = next;
            }
        }
    }

    /// An access to an object in a cold tier: Intelligent-Tiering moves it back to Frequent
    /// Access; under lifecycle rules the platform reads it (the tier's latency and retrieval
    /// fee) and copies it back to hot as a new object, deleting the cold one.
    fn restore(&mut self, ctx: &mut dyn Context, i: usize, at_h: f64) {
        let o = self.objects[i];
        let tier = &self.tiers[o.tier as usize];
        let latency = tier.restore_latency.sample_ns(ctx.rng());
        self.retrieval_cost += gb(o.size_bytes as f64) * tier.retrieval_per_gb;
        let (r, h) = (self.ids().restores, self.ids().restore_latency);
        ctx.metrics().add(r, 1);
        ctx.metrics().record(h, latency);
        self.move_to(i, 0, at_h);
        if self.config.mode == Mode::Lifecycle {
            self.objects[i].object_since_h = at_h;
        }
    }

    /// Moves an object to `tier`, charging early deletion if it leaves a tier too soon.
    fn move_to(&mut self, i: usize, tier: u8, at_h: f64) {
        let o = self.objects[i];
        let old = &self.tiers[o.tier as usize];
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

    /// The tier this object moves to now, if colder than where it is: the coldest a lifecycle
    /// rule allows by age, or Intelligent-Tiering's by days without access.
    fn target(&self, o: &Object, now_h: f64) -> Option<u8> {
        let t = match self.config.mode {
            Mode::Lifecycle => {
                let age_days = (now_h - o.object_since_h) / 24.0;
                self.config
                    .rules
                    .iter()
                    .filter(|r| o.size_bytes >= r.min_object_size_bytes)
                    .filter(|r| age_days >= r.days_since_creation)
                    .map(|r| r.to as u8)
                    .max()?
            }
            Mode::IntelligentTiering => {
                let idle_days = (now_h - o.last_access_h) / 24.0;
                if o.size_bytes < IT_MIN_MONITORED_BYTES {
                    return None; // not monitored: stays in Frequent Access
                }
                if idle_days >= IT_ARCHIVE_INSTANT_AFTER_DAYS {
                    2
                } else if idle_days >= IT_INFREQUENT_AFTER_DAYS {
                    1
                } else {
                    return None;
                }
            }
        };
        (t > o.tier).then_some(t)
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
        let mut monitored = 0u64;
        for o in &self.objects {
            monitored += u64::from(o.size_bytes >= IT_MIN_MONITORED_BYTES);
            let t = &self.tiers[o.tier as usize];
            let size = o.size_bytes as f64;
            let b = o.size_bytes.max(t.min_billable_bytes) as f64 * f64::from(t.billed_copies);
            logical += size;
            billed += b;
            cost += gb(b) * t.price_per_gb_month;
            if o.tier == 0 {
                hot += size;
            }
        }
        if self.config.mode == Mode::IntelligentTiering {
            cost += monitored as f64 / 1_000.0
                * self
                    .config
                    .intelligent_tiering
                    .monitoring_fee_per_1000_objects_month;
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
            let (hf, ef, ed, rc) = (
                ids.hot_fraction,
                ids.efficiency,
                ids.early_deletion_gb_months,
                ids.retrieval_cost,
            );
            ctx.metrics().set(hf, d.hot_fraction);
            ctx.metrics().set(ef, d.storage_efficiency);
            ctx.metrics().set(ed, self.early_deletion_gb_months);
            ctx.metrics().set(rc, self.retrieval_cost);
            self.days.push(d);
        }
        let step = (self.config.step_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(step, Timer::Tick { kind: TICK_STEP });
    }

    pub fn early_deletion_cost(&self) -> f64 {
        self.early_deletion_gb_months
    }

    /// Retrieval fees paid so far (GB read from cold tiers times their fee).
    pub fn retrieval_cost(&self) -> f64 {
        self.retrieval_cost
    }

    /// The tier names in use, hot first.
    pub fn tier_names(&self) -> Vec<&str> {
        self.tiers.iter().map(|t| t.name.as_str()).collect()
    }

    /// Objects per tier now.
    pub fn objects_per_tier(&self) -> Vec<u64> {
        let mut n = vec![0; self.tiers.len()];
        for o in &self.objects {
            n[o.tier as usize] += 1;
        }
        n
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
            store_records: m.counter("archive_store_records_total"),
            restore_latency: m.histogram("archive_restore_latency_ns"),
            hot_fraction: m.gauge("archive_hot_fraction", "ratio"),
            efficiency: m.gauge("archive_storage_efficiency", "ratio"),
            early_deletion_gb_months: m.gauge("archive_early_deletion_cost", "price units"),
            retrieval_cost: m.gauge("archive_retrieval_cost", "price units"),
        });
        if self.config.source == Source::Store && !self.feeds.is_empty() {
            ctx.set_timer(0, Timer::Tick { kind: TICK_POLL });
        }
        let step = (self.config.step_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(step, Timer::Tick { kind: TICK_STEP });
        let every = (self.config.batch_interval_hours * NS_PER_HOUR) as u64;
        ctx.set_timer(every, Timer::Tick { kind: TICK_BATCH });
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        if let Msg::Mirror(MirrorMsg::Updates { records, tail_lsn }) = msg {
            self.on_updates(ctx, from, records, tail_lsn);
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        let now_h = Self::now_h(ctx);
        match timer {
            Timer::Tick { kind: TICK_STEP } => self.step(ctx),
            Timer::Tick { kind: TICK_BATCH } => self.batch(ctx, now_h),
            Timer::Tick {
                kind: TICK_BATCH_DONE,
            } => self.batch_done(ctx, now_h),
            Timer::Tick { kind: TICK_POLL } => self.poll_store(ctx),
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
            object_since_h: 0.0,
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
    fn under_age_based_lifecycle_rules_the_hot_set_is_the_last_30_days_of_data() {
        // Steady creation for 90 days; Standard-IA at 30 days (S3's earliest). Hot bytes: the
        // 30 youngest days (1/3), the batch's day of slack (1/90), objects under 128 KiB (the
        // lognormal's byte share below it, Phi((ln(128Ki/400k))/1.2 - 1.2) = 0.016, of the
        // older 2/3) and popular objects copied back on access (2 % of the older 2/3): 0.368.
        let (a, _) = run_days(small(), 90.0);
        let last = a.days.last().expect("days were accounted");
        assert!(last.day >= 88, "{}", last.day);
        let expected = 1.0 / 3.0 + 1.0 / 90.0 + 2.0 / 3.0 * (0.016 + 0.02);
        assert!(
            (last.hot_fraction - expected).abs() < 0.03,
            "hot fraction {} (expected {expected:.3})",
            last.hot_fraction
        );
        assert!(
            a.days[3].hot_fraction > 0.99,
            "young data starts hot: {}",
            a.days[3].hot_fraction
        );
    }

    #[test]
    fn small_objects_never_move_and_nothing_moves_before_its_rule_allows() {
        let (a, _) = run_days(small(), 45.0);
        for o in &a.objects {
            if o.size_bytes < 128 * 1024 {
                assert_eq!(o.tier, 0, "a small object moved");
            }
            assert!(
                o.tier < 2,
                "an object reached the archive tier before 90 days"
            );
            if o.tier == 1 {
                assert!(o.tier_since_h - o.object_since_h >= 30.0 * 24.0);
            }
        }
        assert!(
            a.objects.iter().any(|o| o.tier == 1),
            "month-old objects moved to infrequent access"
        );
    }

    #[test]
    fn a_lifecycle_rule_s3_would_refuse_is_refused_with_the_reason() {
        let with_rules = |rules: Vec<Rule>| ArchiveConfig {
            rules,
            ..ArchiveConfig::default()
        };
        let rule = |to, days| Rule {
            to,
            days_since_creation: days,
            days_since_last_access: None,
            min_object_size_bytes: 128 * 1024,
        };
        let e = with_rules(vec![rule(1, 7.0)]).validate().unwrap_err();
        assert!(
            e.to_string().contains("rules[0].days_since_creation"),
            "{e}"
        );
        assert!(e.to_string().contains("30 days old"), "{e}");
        let e = with_rules(vec![rule(1, 30.0), rule(2, 45.0)])
            .validate()
            .unwrap_err();
        assert!(
            e.to_string().contains("rules[1] needs at least 60 days"),
            "{e}"
        );
        let by_access = Rule {
            days_since_last_access: Some(30.0),
            ..rule(1, 30.0)
        };
        let e = with_rules(vec![by_access]).validate().unwrap_err();
        assert!(e.to_string().contains("intelligent_tiering"), "{e}");
        assert!(
            with_rules(vec![rule(2, 0.0)]).validate().is_ok(),
            "Glacier at any age"
        );
        assert!(with_rules(vec![rule(1, 30.0), rule(2, 60.0)])
            .validate()
            .is_ok());
        assert!(ArchiveConfig::default().validate().is_ok());
    }

    #[test]
    fn reading_a_cold_object_pays_retrieval_and_early_deletion_and_makes_a_new_hot_object() {
        let mut ctx = TestContext::new(0);
        let mut a = Archiver::new(ArchiveConfig::default());
        a.start(&mut ctx);
        let h = |days: f64| days * 24.0;
        a.objects = vec![Object {
            created_h: 0.0,
            object_since_h: 0.0,
            last_access_h: 0.0,
            next_access_h: f64::INFINITY,
            size_bytes: 2_000_000_000,
            tier: 1,
            tier_since_h: h(35.0),
            popular: false,
            in_transit: false,
        }];
        a.access(&mut ctx, 0, h(40.0));
        // 2 GB at 0.01 per GB; 25 of Standard-IA's 30 days unpaid: 2 * 0.0125 * 25/30.
        assert!((a.retrieval_cost() - 0.02).abs() < 1e-12);
        assert!((a.early_deletion_cost() - 2.0 * 0.0125 * 25.0 / 30.0).abs() < 1e-12);
        let o = a.objects[0];
        assert_eq!((o.tier, o.object_since_h), (0, h(40.0)));
        assert_eq!(a.target(&o, h(41.0)), None, "a new object: 1 day old");
        assert_eq!(a.target(&o, h(70.0)), Some(1));
    }

    fn intelligent(days: f64) -> (Archiver, TestContext) {
        let config = ArchiveConfig {
            mode: Mode::IntelligentTiering,
            access_per_day: 0.0,
            popular_fraction: 0.0,
            ..small()
        };
        run_days(config, days)
    }

    #[test]
    fn intelligent_tiering_moves_monitored_objects_by_days_without_access_and_charges_the_fee() {
        let (a, _) = intelligent(100.0);
        let now_h = 100.0 * 24.0;
        let (mut want, mut monitored) = ([0u64; 3], 0u64);
        for o in &a.objects {
            let idle_days = (now_h - o.last_access_h) / 24.0;
            let big = o.size_bytes >= IT_MIN_MONITORED_BYTES;
            monitored += u64::from(big);
            // A daily run, plus its lag: allow one day of slack at each threshold.
            let tier = match (big, idle_days) {
                (false, _) => 0,
                (true, d) if d >= 91.0 => 2,
                (true, d) if (89.0..91.0).contains(&d) => o.tier,
                (true, d) if d >= 31.0 => 1,
                (true, d) if (29.0..31.0).contains(&d) => o.tier,
                _ => 0,
            };
            assert_eq!(
                o.tier, tier,
                "idle {idle_days} days, {} bytes",
                o.size_bytes
            );
            want[o.tier as usize] += 1;
        }
        assert_eq!(a.objects_per_tier(), want.to_vec());
        assert!(want[1] > 0 && want[2] > 0, "{want:?}");
        assert_eq!(a.early_deletion_cost(), 0.0, "no minimum duration");
        // The day's cost: storage at the three prices plus 0.0025 per 1,000 monitored objects.
        let d = a.account(100);
        let it = IntelligentTiering::default();
        let prices = [
            it.frequent_price_per_gb_month,
            it.infrequent_price_per_gb_month,
            it.archive_instant_price_per_gb_month,
        ];
        let storage: f64 = a
            .objects
            .iter()
            .map(|o| gb(o.size_bytes as f64) * prices[o.tier as usize])
            .sum();
        let fee = monitored as f64 / 1000.0 * 0.0025;
        assert!((d.cost_per_month - storage - fee).abs() < 1e-9);
    }

    #[test]
    fn an_access_brings_an_intelligent_tiering_object_back_to_frequent_for_free() {
        let (mut a, mut ctx) = intelligent(100.0);
        let i = a
            .objects
            .iter()
            .position(|o| o.tier == 2)
            .expect("one archived");
        a.access(&mut ctx, i, 100.0 * 24.0);
        assert_eq!(a.objects[i].tier, 0);
        assert_eq!(a.retrieval_cost(), 0.0);
        assert_eq!(a.early_deletion_cost(), 0.0);
    }

    #[test]
    fn fed_by_the_store_a_new_key_is_an_object_and_a_rewrite_an_access() {
        use crate::mirror::MirrorRecord;
        let config = ArchiveConfig {
            source: Source::Store,
            access_per_day: 0.0,
            popular_fraction: 0.0,
            ..ArchiveConfig::default()
        };
        let mut ctx = TestContext::new(99);
        let mut a = Archiver::fed_by(config, &[vec![10, 11]]);
        a.start(&mut ctx);
        while let Some(t) = ctx.pop_timer() {
            if t == (Timer::Tick { kind: TICK_POLL }) {
                a.on_timer(&mut ctx, t);
                break;
            }
        }
        let asked: Vec<NodeId> = ctx.take_sent().iter().map(|m| m.0).collect();
        assert_eq!(asked, vec![10], "the initial primary is asked first");
        let rec = |lsn, key| MirrorRecord {
            lsn,
            key,
            value: lsn,
            commit_ns: 0,
        };
        let updates = MirrorMsg::Updates {
            records: vec![rec(1, 7), rec(2, 8), rec(3, 7)],
            tail_lsn: 3,
        };
        a.on_message(&mut ctx, 10, Msg::Mirror(updates));
        assert_eq!(a.objects.len(), 2, "two keys, two objects");
        assert_eq!(ctx.metrics.counter_value("archive_accesses_total"), Some(1));
        // Store-0 is no longer the primary: the next poll asks its replica, from lsn 4.
        let not_primary = MirrorMsg::Updates {
            records: Vec::new(),
            tail_lsn: 0,
        };
        a.on_message(&mut ctx, 10, Msg::Mirror(not_primary));
        a.poll_store(&mut ctx);
        let sent = ctx.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 11);
        assert!(matches!(
            sent[0].1,
            Msg::Mirror(MirrorMsg::GetUpdates { from_lsn: 4, .. })
        ));
    }

    #[test]
    fn the_same_seed_gives_the_same_days() {
        let (a, _) = run_days(small(), 30.0);
        let (b, _) = run_days(small(), 30.0);
        assert_eq!(a.days, b.days);
    }
}
