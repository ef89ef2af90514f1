//! The discrete-event kernel: one thread, one queue ordered by (time, sequence).
//!
//! Every event is a message delivery, a timer, a disk completion, or a control action (a fault
//! or a hook scheduled by a scenario or a test). Ties in time are broken by the order in which
//! events were scheduled, so a run is a pure function of its seed and inputs.

use crate::disk::{DiskConfig, SimDisk};
use crate::heap::{Heap, Key};
use crate::net::Network;
use crate::trace::Trace;
use minitwin_components::metrics::Metrics;
use minitwin_components::monitor::MonitorMsg;
use minitwin_components::rng::{fnv1a, mix64, Rng};
use minitwin_components::{
    Component, Context, DiskError, DiskEvent, Msg, NodeId, Observation, Recovered, Timer, TimerId,
};
use std::collections::BTreeMap;

/// Builds a fresh component (at boot and at every restart).
pub type Factory = Box<dyn Fn() -> Box<dyn Component + Send> + Send + Sync>;

/// Sees every observation as it is made: (simulated time, node, observation). For checkers.
pub type Observer = Box<dyn FnMut(u64, NodeId, &Observation)>;

/// Something the simulation does to itself at a scheduled time.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Power loss: the host goes silent, unsynced writes are lost.
    Crash(NodeId),
    /// The process dies on a live host (`kill -9`, an OOM kill): new connections are refused,
    /// open ones reset, what it wrote survives in the page cache.
    Kill(NodeId),
    Restart(NodeId),
    /// Blocks (+1) or unblocks (-1) all links from `a` to `b`.
    Partition {
        a: Vec<NodeId>,
        b: Vec<NodeId>,
        delta: i32,
    },
    /// Holds messages from `a` to `b` until `until_ns`.
    Clog {
        a: Vec<NodeId>,
        b: Vec<NodeId>,
        until_ns: u64,
    },
    ExtraLatency {
        zone_a: u16,
        zone_b: u16,
        extra_ns: u64,
    },
    Loss {
        zone_a: u16,
        zone_b: u16,
        probability: Option<f64>,
    },
    ClockJump {
        node: NodeId,
        forward_ns: u64,
    },
    ClockRate {
        node: NodeId,
        drift_ppm: f64,
    },
    DiskSlow {
        node: NodeId,
        factor: f64,
    },
    DiskErrors {
        node: NodeId,
        probability: f64,
    },
    /// Hands `msg` to `node` as if from itself: a change of its environment that only it can
    /// see (the control plane's metrics pipeline going blind or late).
    Inject {
        node: NodeId,
        msg: Msg,
    },
    /// A rogue node `sender` sends `msg` to `to` claiming to be `claimed` (itself, for an
    /// unauthorized role; another node, for impersonation).
    Forge {
        sender: NodeId,
        claimed: NodeId,
        to: NodeId,
        msg: Msg,
    },
    /// A rogue node `sender` replays to `to` the last message `to` received, claiming its
    /// original sender.
    Replay {
        sender: NodeId,
        to: NodeId,
    },
    /// End of warm-up: forget every metric measured so far.
    ResetMetrics,
}

#[derive(Clone, Debug, Hash)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Msg,
    },
    Timer {
        node: NodeId,
        incarnation: u32,
        id: TimerId,
        timer: Timer,
    },
    Disk {
        node: NodeId,
        incarnation: u32,
        generation: u32,
        lsn: u64,
        ok: bool,
    },
    Control(u32),
    /// The platform starts (`on`) or stops a node's process ([`Context::power`]).
    Power {
        node: NodeId,
        on: bool,
    },
    /// A message really from `sender`, claiming to be from `claimed` (a rogue node's).
    Forged {
        sender: NodeId,
        claimed: NodeId,
        to: NodeId,
        msg: Msg,
    },
}

/// A node's local clock: `local = base_local + (global - base_global) * rate`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base_global_ns: u64,
    base_local_ns: u64,
    rate: f64,
}

impl Clock {
    pub fn new(offset_ns: u64) -> Clock {
        Clock {
            base_global_ns: 0,
            base_local_ns: offset_ns,
            rate: 1.0,
        }
    }

    #[inline]
    pub fn local(&self, global_ns: u64) -> u64 {
        let dt = global_ns - self.base_global_ns;
        if self.rate == 1.0 {
            self.base_local_ns.saturating_add(dt)
        } else {
            self.base_local_ns
                .saturating_add((dt as f64 * self.rate) as u64)
        }
    }

    /// Global duration of a local duration.
    #[inline]
    fn global_delay(&self, local_ns: u64) -> u64 {
        if self.rate == 1.0 {
            local_ns
        } else {
            (local_ns as f64 / self.rate).ceil() as u64
        }
    }

    fn rebase(&mut self, global_ns: u64) {
        self.base_local_ns = self.local(global_ns);
        self.base_global_ns = global_ns;
    }
}

/// Fault points (buggify): each point is enabled or not for the whole run, decided from the seed
/// and its name; an enabled point fires with `fire_probability` each time it is reached.
#[derive(Clone, Debug, Default)]
pub struct Buggify {
    pub enabled: bool,
    pub enable_probability: f64,
    pub fire_probability: f64,
    seed: u64,
    decided: BTreeMap<&'static str, bool>,
    pub fired_total: u64,
}

impl Buggify {
    pub fn new(
        seed: u64,
        enabled: bool,
        enable_probability: f64,
        fire_probability: f64,
    ) -> Buggify {
        Buggify {
            enabled,
            enable_probability,
            fire_probability,
            seed,
            ..Buggify::default()
        }
    }

    fn fires(&mut self, point: &'static str, rng: &mut Rng) -> bool {
        if !self.enabled {
            return false;
        }
        let (seed, p) = (self.seed, self.enable_probability);
        let on = *self.decided.entry(point).or_insert_with(|| {
            let u = mix64(seed ^ fnv1a(point.as_bytes())) >> 11;
            (u as f64 / (1u64 << 53) as f64) < p
        });
        let fired = on && rng.chance(self.fire_probability);
        self.fired_total += u64::from(fired);
        fired
    }

    /// The points reached in this run and whether each was enabled.
    pub fn decisions(&self) -> &BTreeMap<&'static str, bool> {
        &self.decided
    }
}

/// What the kernel keeps per node besides the component.
pub struct NodeEnv {
    pub name: String,
    pub zone: u16,
    pub up: bool,
    /// The host is powered (false after a power loss, or for a slot the platform stopped): a
    /// message to a host that is up while its process is down is refused, not lost.
    pub host_up: bool,
    /// Peers that sent this process a message since it started, in arrival order: its open
    /// connections, which a kill resets.
    connected: Vec<NodeId>,
    connected_mask: Vec<bool>,
    pub incarnation: u32,
    pub rng: Rng,
    pub fault_rng: Rng,
    pub disk_rng: Rng,
    pub metrics: Metrics,
    pub disk: SimDisk,
    pub clock: Clock,
    pub crashes_total: u64,
    pub restarts_total: u64,
    pub messages_sent_total: u64,
    pub messages_received_total: u64,
    pub timers_fired_total: u64,
    /// Each histogram as the last scrape saw it (by registry index), so that a scrape's p99
    /// is over the interval since, as `histogram_quantile(0.99, rate(...))` is.
    scraper: minitwin_components::metrics::Scraper,
}

impl NodeEnv {
    /// `peer` sent this process a message: a connection is open between them.
    #[inline]
    fn note_connection(&mut self, peer: NodeId) {
        let i = peer as usize;
        if i >= self.connected_mask.len() {
            self.connected_mask.resize(i + 1, false);
        }
        if !self.connected_mask[i] {
            self.connected_mask[i] = true;
            self.connected.push(peer);
        }
    }

    fn forget_connections(&mut self) {
        self.connected.clear();
        self.connected_mask.iter_mut().for_each(|c| *c = false);
    }
}

/// The node-level metrics the simulator keeps for every node (a node exporter's view), written
/// into its registry when it is scraped and when results are written: totals since the node
/// first booted, not reset by the warm-up.
pub const NODE_METRICS: [(&str, &str); 16] = [
    ("node_up", "bool"),
    ("node_crashes_total", "count"),
    ("node_restarts_total", "count"),
    ("node_messages_sent_total", "count"),
    ("node_messages_received_total", "count"),
    ("node_timers_fired_total", "count"),
    ("node_clock_offset_ms", "ms"),
    ("disk_appends_total", "count"),
    ("disk_append_bytes_total", "bytes"),
    ("disk_append_errors_total", "count"),
    ("disk_syncs_total", "count"),
    ("disk_sync_failures_total", "count"),
    ("disk_records_lost_total", "count"),
    ("disk_log_records", "records"),
    ("disk_checkpoints_total", "count"),
    ("disk_truncations_total", "count"),
];

impl NodeEnv {
    /// Writes the node-level metrics into the registry at global time `now_ns`.
    pub fn export_node_metrics(&mut self, now_ns: u64) {
        let d = &self.disk;
        let values: [f64; 16] = [
            f64::from(u8::from(self.up)),
            self.crashes_total as f64,
            self.restarts_total as f64,
            self.messages_sent_total as f64,
            self.messages_received_total as f64,
            self.timers_fired_total as f64,
            (self.clock.local(now_ns) as f64 - now_ns as f64) / 1e6,
            d.appends_total as f64,
            d.append_bytes_total as f64,
            d.append_errors_total as f64,
            d.syncs_total as f64,
            d.sync_failures_total as f64,
            d.records_lost_total as f64,
            d.log_records() as f64,
            d.checkpoints_total as f64,
            f64::from(d.generation),
        ];
        for ((name, unit), v) in NODE_METRICS.iter().zip(values) {
            let id = self.metrics.gauge(name, unit);
            self.metrics.set(id, v);
        }
    }

    /// The registry as samples for a scrape (after exporting the node-level metrics).
    pub fn scrape(&mut self, now_ns: u64) -> Vec<minitwin_components::monitor::Sample> {
        self.export_node_metrics(now_ns);
        self.scraper.samples(&self.metrics)
    }
}

struct Node {
    component: Option<Box<dyn Component>>,
    factory: Factory,
    env: NodeEnv,
    starts_up: bool,
}

/// How to build one node.
pub struct NodeSpec {
    pub name: String,
    pub zone: u16,
    pub factory: Factory,
    pub disk: DiskConfig,
    pub clock_offset_ns: u64,
    /// Whether the node boots at time 0; a pod slot of an autoscaled tier waits, down, for
    /// the platform to start it.
    pub starts_up: bool,
}

/// The queue and the clock, apart from the nodes so that a context can borrow both.
struct Queue {
    now_ns: u64,
    seq: u64,
    /// Keys in (time, sequence) order; payloads wait in the slabs, so sifting moves 24 bytes.
    heap: Heap,
    payloads: Vec<Event>,
    payload_free: Vec<u32>,
    /// Timers live here, not in `payloads`: a heap entry with [`TIMER_BIT`] set in its slot
    /// points into this slab. A slot is reused only after its heap entry popped.
    timers: Vec<TimerSlot>,
    timer_free: Vec<u32>,
}

/// Marks heap entries whose slot indexes the timer slab.
const TIMER_BIT: u32 = 1 << 31;

#[derive(Clone, Copy, Debug)]
struct TimerSlot {
    generation: u32,
    live: bool,
    node: NodeId,
    incarnation: u32,
    timer: Timer,
}

impl Queue {
    #[inline]
    fn push(&mut self, at_ns: u64, event: Event) {
        debug_assert!(at_ns >= self.now_ns, "no event is scheduled in the past");
        self.seq += 1;
        let slot = match self.payload_free.pop() {
            Some(slot) => {
                self.payloads[slot as usize] = event;
                slot
            }
            None => {
                self.payloads.push(event);
                (self.payloads.len() - 1) as u32
            }
        };
        self.heap.push(Key {
            at_ns,
            seq: self.seq,
            slot,
        });
    }

    /// The earliest event due at or before `end_ns`, taken off the queue. Cancelled timers
    /// are dropped here: they are not events.
    #[inline]
    fn pop_due(&mut self, end_ns: u64) -> Option<(u64, Event)> {
        loop {
            if self.heap.peek()?.at_ns > end_ns {
                return None;
            }
            let entry = self.heap.pop().expect("peeked");
            if entry.slot & TIMER_BIT == 0 {
                self.payload_free.push(entry.slot);
                let event =
                    std::mem::replace(&mut self.payloads[entry.slot as usize], Event::Control(0));
                return Some((entry.at_ns, event));
            }
            let slot = entry.slot & !TIMER_BIT;
            let t = &mut self.timers[slot as usize];
            let (live, fired) = (t.live, *t);
            t.generation = t.generation.wrapping_add(1);
            t.live = false;
            self.timer_free.push(slot);
            if live {
                let id = TimerId {
                    slot,
                    generation: fired.generation,
                };
                let event = Event::Timer {
                    node: fired.node,
                    incarnation: fired.incarnation,
                    id,
                    timer: fired.timer,
                };
                return Some((entry.at_ns, event));
            }
        }
    }

    /// Schedules a timer of `node` at `at_ns`.
    #[inline]
    fn push_timer(&mut self, at_ns: u64, node: NodeId, incarnation: u32, timer: Timer) -> TimerId {
        debug_assert!(at_ns >= self.now_ns, "no timer is set in the past");
        let slot = match self.timer_free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.timers.len()).expect("fewer than 2^31 timers");
                assert!(slot < TIMER_BIT, "fewer than 2^31 pending timers");
                self.timers.push(TimerSlot {
                    generation: 0,
                    live: false,
                    node,
                    incarnation,
                    timer,
                });
                slot
            }
        };
        let t = &mut self.timers[slot as usize];
        *t = TimerSlot {
            generation: t.generation,
            live: true,
            node,
            incarnation,
            timer,
        };
        self.seq += 1;
        self.heap.push(Key {
            at_ns,
            seq: self.seq,
            slot: slot | TIMER_BIT,
        });
        TimerId {
            slot,
            generation: t.generation,
        }
    }

    /// Cancels a pending timer; a fired or cancelled one is left alone.
    fn cancel_timer(&mut self, id: TimerId) {
        if let Some(t) = self.timers.get_mut(id.slot as usize) {
            if t.generation == id.generation {
                t.live = false;
            }
        }
    }
}

/// The simulation: nodes, network, queue, faults and the trace.
pub struct Sim {
    seed: u64,
    queue: Queue,
    nodes: Vec<Node>,
    net: Network,
    buggify: Buggify,
    actions: Vec<Action>,
    trace: Trace,
    events_total: u64,
    observer: Option<Observer>,
    /// The security layer in front of every process (`[security]`).
    security: Option<Box<crate::security::Layer>>,
    /// The last message each node received, for replay attacks (kept only when one is
    /// scheduled).
    last_received: Option<Vec<Option<(NodeId, Msg)>>>,
    /// Whether a subscriber listens at debug level (decided when the simulation is built):
    /// without one, events skip building their log span.
    logging: bool,
}

struct Ctx<'a> {
    queue: &'a mut Queue,
    net: &'a mut Network,
    buggify: &'a mut Buggify,
    observer: &'a mut Option<Observer>,
    env: &'a mut NodeEnv,
    me: NodeId,
}

impl Context for Ctx<'_> {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.env.clock.local(self.queue.now_ns)
    }

    fn me(&self) -> NodeId {
        self.me
    }

    #[inline]
    fn send(&mut self, to: NodeId, msg: Msg) {
        self.env.messages_sent_total += 1;
        if let Some(tap) = &mut self.net.tap {
            tap(self.queue.now_ns, self.me, to, &msg);
        }
        if let Some(at) = self.net.route(self.queue.now_ns, self.me, to) {
            self.queue.push(
                at,
                Event::Deliver {
                    from: self.me,
                    to,
                    msg,
                },
            );
        }
    }

    #[inline]
    fn set_timer(&mut self, after_ns: u64, timer: Timer) -> TimerId {
        // Simulated time saturates: a timer beyond the end of time never fires.
        let at = self
            .queue
            .now_ns
            .saturating_add(self.env.clock.global_delay(after_ns));
        self.queue
            .push_timer(at, self.me, self.env.incarnation, timer)
    }

    fn cancel_timer(&mut self, id: TimerId) {
        self.queue.cancel_timer(id);
    }

    #[inline]
    fn rng(&mut self) -> &mut Rng {
        &mut self.env.rng
    }

    fn disk_append(&mut self, record: &[u8]) -> Result<u64, DiskError> {
        self.env.disk.append(record, &mut self.env.disk_rng)
    }

    fn disk_sync(&mut self) {
        let (at, lsn, ok) = self
            .env
            .disk
            .sync(self.queue.now_ns, &mut self.env.disk_rng);
        let (incarnation, generation) = (self.env.incarnation, self.env.disk.generation);
        let event = Event::Disk {
            node: self.me,
            incarnation,
            generation,
            lsn,
            ok,
        };
        self.queue.push(at, event);
    }

    fn disk_recover(&mut self) -> Recovered {
        self.env.disk.recovered()
    }

    fn disk_truncate(&mut self, lsn: u64) {
        self.env.disk.truncate(lsn);
    }

    fn disk_checkpoint(&mut self, lsn: u64, snapshot: Vec<u8>) {
        self.env.disk.checkpoint(lsn, snapshot);
    }

    fn disk_install(&mut self, lsn: u64, snapshot: Vec<u8>) {
        self.env.disk.install(lsn, snapshot);
    }

    fn power(&mut self, node: NodeId, on: bool) {
        self.queue
            .push(self.queue.now_ns, Event::Power { node, on });
    }

    fn observe(&mut self, observation: Observation) {
        tracing::info!(?observation, "observed");
        if let Some(observer) = self.observer.as_mut() {
            observer(self.queue.now_ns, self.me, &observation);
        }
    }

    #[inline]
    fn metrics(&mut self) -> &mut Metrics {
        &mut self.env.metrics
    }

    fn fault(&mut self, point: &'static str) -> bool {
        self.buggify.fires(point, &mut self.env.fault_rng)
    }
}

/// Progress of a run, for progress bars.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub now_ns: u64,
    pub end_ns: u64,
    pub events_total: u64,
}

impl Sim {
    /// A simulation of `nodes` in `zones` over `net`; every node boots at time 0 in id order.
    pub fn new(
        seed: u64,
        nodes: Vec<NodeSpec>,
        net: Network,
        buggify: Buggify,
        record_trace: bool,
    ) -> Sim {
        let nodes: Vec<Node> = nodes
            .into_iter()
            .map(|spec| Node {
                component: None,
                env: NodeEnv {
                    rng: Rng::stream(seed, &spec.name),
                    fault_rng: Rng::stream(seed, &format!("{}/buggify", spec.name)),
                    disk_rng: Rng::stream(seed, &format!("{}/disk", spec.name)),
                    name: spec.name,
                    zone: spec.zone,
                    up: false,
                    host_up: false,
                    connected: Vec::new(),
                    connected_mask: Vec::new(),
                    incarnation: 0,
                    metrics: Metrics::new(),
                    disk: SimDisk::new(spec.disk),
                    clock: Clock::new(spec.clock_offset_ns),
                    crashes_total: 0,
                    restarts_total: 0,
                    messages_sent_total: 0,
                    messages_received_total: 0,
                    timers_fired_total: 0,
                    scraper: Default::default(),
                },
                factory: spec.factory,
                starts_up: spec.starts_up,
            })
            .collect();
        let queue = Queue {
            now_ns: 0,
            seq: 0,
            heap: Heap::with_capacity(1 << 12),
            payloads: Vec::with_capacity(1 << 12),
            payload_free: Vec::new(),
            timers: Vec::new(),
            timer_free: Vec::new(),
        };
        let mut sim = Sim {
            seed,
            queue,
            nodes,
            net,
            buggify,
            actions: Vec::new(),
            trace: Trace::new(record_trace),
            events_total: 0,
            observer: None,
            security: None,
            last_received: None,
            logging: tracing::enabled!(tracing::Level::DEBUG),
        };
        for id in 0..sim.nodes.len() as NodeId {
            if sim.nodes[id as usize].starts_up {
                sim.boot(id);
            }
        }
        sim
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn now_ns(&self) -> u64 {
        self.queue.now_ns
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.env.name == name)
            .map(|i| i as NodeId)
    }

    pub fn env(&self, node: NodeId) -> &NodeEnv {
        &self.nodes[node as usize].env
    }

    /// A node's disk, for instruments between events (capturing purged records).
    pub fn disk_mut(&mut self, node: NodeId) -> &mut SimDisk {
        &mut self.nodes[node as usize].env.disk
    }

    /// Whether the node is up (not crashed, or restarted).
    pub fn is_up(&self, node: NodeId) -> bool {
        self.nodes[node as usize].component.is_some()
    }

    /// The node's component, if it is up and of type `T`.
    pub fn component<T: 'static>(&self, node: NodeId) -> Option<&T> {
        self.nodes[node as usize]
            .component
            .as_ref()?
            .as_any()
            .downcast_ref::<T>()
    }

    /// The node's component for changes between events, if it is up, of type `T`, and lends
    /// itself out ([`Component::as_any_mut`]).
    pub fn component_mut<T: 'static>(&mut self, node: NodeId) -> Option<&mut T> {
        self.nodes[node as usize]
            .component
            .as_mut()?
            .as_any_mut()?
            .downcast_mut::<T>()
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Installs a checker's view of every message sent from now on.
    pub fn set_tap(&mut self, tap: crate::net::Tap) {
        self.net.tap = Some(tap);
    }

    /// Puts a security layer in front of every process.
    pub fn set_security(&mut self, layer: crate::security::Layer) {
        self.security = Some(Box::new(layer));
    }

    /// What the security layer saw (None without one).
    pub fn security(&self) -> Option<&crate::security::SecurityView> {
        self.security.as_ref().map(|l| &l.view)
    }

    /// Keeps the last message each node received, for scheduled replays.
    pub fn capture_for_replay(&mut self) {
        self.last_received = Some(vec![None; self.nodes.len()]);
    }

    /// Installs the checkers' view of every observation from now on.
    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    pub fn buggify(&self) -> &Buggify {
        &self.buggify
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn events_total(&self) -> u64 {
        self.events_total
    }

    pub fn pending_events(&self) -> usize {
        self.queue.heap.len()
    }

    /// Writes every node's node-level metrics into its registry (before results are read).
    pub fn export_node_metrics(&mut self) {
        let now = self.queue.now_ns;
        for n in &mut self.nodes {
            n.env.export_node_metrics(now);
        }
    }

    /// Schedules `action` at `at_ns` (not in the past).
    pub fn schedule(&mut self, at_ns: u64, action: Action) {
        assert!(
            at_ns >= self.queue.now_ns,
            "cannot schedule an action in the past"
        );
        let i = u32::try_from(self.actions.len()).expect("fewer than 2^32 actions");
        self.actions.push(action);
        self.queue.push(at_ns, Event::Control(i));
    }

    fn boot(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        assert!(node.component.is_none(), "booting a node that is up");
        node.component = Some((node.factory)());
        node.env.up = true;
        node.env.host_up = true;
        self.with_node(id, |c, ctx| c.start(ctx));
    }

    /// Crashes a node now: its memory and unsynced disk writes are lost; its timers die.
    pub fn crash(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        if node.component.take().is_none() {
            return;
        }
        node.env.up = false;
        node.env.host_up = false;
        node.env.incarnation += 1;
        node.env.crashes_total += 1;
        node.env.metrics.zero_levels(self.queue.now_ns);
        node.env.disk.crash();
        node.env.forget_connections();
        tracing::info!(t_ns = self.queue.now_ns, node = %node.env.name, "crash");
    }

    /// Kills a node's process now on a host that stays up: its memory and timers die, but
    /// what it appended survives (the page cache outlives the process); every peer with an
    /// open connection gets a reset, and messages sent to it until it restarts are refused.
    pub fn kill(&mut self, id: NodeId) {
        let now = self.queue.now_ns;
        let node = &mut self.nodes[id as usize];
        if node.component.take().is_none() {
            return;
        }
        node.env.up = false;
        node.env.incarnation += 1;
        node.env.crashes_total += 1;
        node.env.metrics.zero_levels(now);
        node.env.disk.kill();
        let peers = std::mem::take(&mut node.env.connected);
        node.env.forget_connections();
        tracing::info!(t_ns = now, node = %node.env.name, peers = peers.len(), "kill");
        for peer in peers {
            self.send_notice(id, peer, Msg::Reset);
        }
    }

    /// The kernel's own TCP-level notice from `from` to `to` (a reset, a refusal), over the
    /// network like any segment: a partition drops it.
    fn send_notice(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        let now = self.queue.now_ns;
        if let Some(at) = self.net.route(now, from, to) {
            self.queue.push(at, Event::Deliver { from, to, msg });
        }
    }

    /// Stops a node's process now, as its platform does (a pod scaled in or killed after its
    /// grace period): like a crash, its memory and unsynced writes go, but it is not counted
    /// as one.
    pub fn stop(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize];
        if node.component.take().is_none() {
            return;
        }
        node.env.up = false;
        node.env.host_up = false;
        node.env.incarnation += 1;
        node.env.metrics.zero_levels(self.queue.now_ns);
        node.env.disk.crash();
        node.env.forget_connections();
        tracing::info!(t_ns = self.queue.now_ns, node = %node.env.name, "stop");
    }

    /// Restarts a crashed node now, from what its disk made durable.
    pub fn restart(&mut self, id: NodeId) {
        if self.nodes[id as usize].component.is_some() {
            return;
        }
        tracing::info!(t_ns = self.queue.now_ns, node = %self.nodes[id as usize].env.name, "restart");
        self.nodes[id as usize].env.restarts_total += 1;
        self.boot(id);
    }

    fn apply(&mut self, action: Action) {
        let now = self.queue.now_ns;
        match action {
            Action::Crash(n) => self.crash(n),
            Action::Kill(n) => self.kill(n),
            Action::Restart(n) => self.restart(n),
            Action::Partition { a, b, delta } => self.net.partition(&a, &b, delta),
            Action::Clog { a, b, until_ns } => self.net.clog(&a, &b, until_ns),
            Action::ExtraLatency {
                zone_a,
                zone_b,
                extra_ns,
            } => self.net.set_extra_latency(zone_a, zone_b, extra_ns),
            Action::Loss {
                zone_a,
                zone_b,
                probability,
            } => self.net.set_loss(zone_a, zone_b, probability),
            Action::ClockJump { node, forward_ns } => {
                let c = &mut self.nodes[node as usize].env.clock;
                c.rebase(now);
                c.base_local_ns = c.base_local_ns.saturating_add(forward_ns);
            }
            Action::ClockRate { node, drift_ppm } => {
                let c = &mut self.nodes[node as usize].env.clock;
                c.rebase(now);
                c.rate = (1.0 + drift_ppm * 1e-6).max(1e-3);
            }
            Action::DiskSlow { node, factor } => {
                self.nodes[node as usize].env.disk.set_slow_factor(factor)
            }
            Action::DiskErrors { node, probability } => self.nodes[node as usize]
                .env
                .disk
                .set_error_probability(probability),
            Action::Inject { node, msg } => self.deliver_unchecked(node, node, msg),
            Action::Forge {
                sender,
                claimed,
                to,
                msg,
            } => self.forge(sender, claimed, to, msg),
            Action::Replay { sender, to } => {
                let last = self
                    .last_received
                    .as_ref()
                    .and_then(|l| l[to as usize].clone());
                if let Some((claimed, msg)) = last {
                    self.forge(sender, claimed, to, msg);
                }
            }
            Action::ResetMetrics => {
                for n in &mut self.nodes {
                    n.env.metrics.reset(n.env.clock.local(now));
                }
            }
        }
    }

    /// Runs every event due at or before `end_ns`, then sets the clock to `end_ns`.
    /// `progress` is called about every 2^18 events.
    pub fn run_until(&mut self, end_ns: u64, progress: &mut dyn FnMut(Progress)) {
        while let Some((at_ns, event)) = self.queue.pop_due(end_ns) {
            self.step(at_ns, event);
            if self.events_total & 0x3ffff == 0 {
                progress(Progress {
                    now_ns: self.queue.now_ns,
                    end_ns,
                    events_total: self.events_total,
                });
            }
        }
        self.queue.now_ns = self.queue.now_ns.max(end_ns);
    }

    /// Runs until no event is left or `end_ns`, whichever is first.
    pub fn run_for(&mut self, duration_ns: u64) {
        let end = self.queue.now_ns + duration_ns;
        self.run_until(end, &mut |_| {});
    }

    #[inline]
    fn step(&mut self, at_ns: u64, event: Event) {
        assert!(at_ns >= self.queue.now_ns, "time never goes backwards");
        self.queue.now_ns = at_ns;
        self.events_total += 1;
        self.trace.event(at_ns, &event, || format!("{event:?}"));
        match event {
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Event::Timer {
                node,
                incarnation,
                timer,
                ..
            } => self.fire(node, incarnation, timer),
            Event::Disk {
                node,
                incarnation,
                generation,
                lsn,
                ok,
            } => self.disk_done(node, (incarnation, generation), lsn, ok),
            Event::Forged {
                sender,
                claimed,
                to,
                msg,
            } => self.deliver_checked(sender, claimed, to, msg),
            Event::Power { node, on: true } => self.restart(node),
            Event::Power { node, on: false } => self.stop(node),
            Event::Control(i) => {
                let action = self.actions[i as usize].clone();
                tracing::info!(t_ns = self.queue.now_ns, ?action, "fault");
                self.apply(action);
            }
        }
    }

    /// Hands `f` the node's component and a context, if the node is up.
    #[inline]
    fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut dyn Component, &mut Ctx<'_>)) -> bool {
        let node = &mut self.nodes[id as usize];
        let Some(component) = node.component.as_deref_mut() else {
            return false;
        };
        let mut ctx = Ctx {
            queue: &mut self.queue,
            net: &mut self.net,
            buggify: &mut self.buggify,
            observer: &mut self.observer,
            env: &mut node.env,
            me: id,
        };
        if !self.logging {
            f(component, &mut ctx);
            return true;
        }
        let span = tracing::debug_span!("event", t_ns = ctx.queue.now_ns, node = %ctx.env.name);
        let _guard = span.enter();
        f(component, &mut ctx);
        true
    }

    /// A rogue node's message onto the network (if the rogue runs).
    fn forge(&mut self, sender: NodeId, claimed: NodeId, to: NodeId, msg: Msg) {
        if !self.nodes[sender as usize].env.up {
            return;
        }
        if let Some(l) = &mut self.security {
            l.view.forged_total += 1;
        }
        let now = self.queue.now_ns;
        if let Some(at) = self.net.route(now, sender, to) {
            let event = Event::Forged {
                sender,
                claimed,
                to,
                msg,
            };
            self.queue.push(at, event);
        }
    }

    #[inline]
    fn deliver(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        let notice = matches!(msg, Msg::Refused(_) | Msg::Reset);
        if (self.security.is_some() || self.last_received.is_some()) && !notice {
            return self.deliver_checked(from, from, to, msg);
        }
        self.deliver_unchecked(from, to, msg)
    }

    /// Through the security layer: the receiver's component sees `claimed` as the sender.
    fn deliver_checked(&mut self, sender: NodeId, claimed: NodeId, to: NodeId, msg: Msg) {
        let node = &mut self.nodes[to as usize];
        let mut seen = claimed;
        if node.env.up {
            if let Some(layer) = &mut self.security {
                match layer.pass(sender, claimed, to, &msg, &mut node.env.metrics) {
                    Some(s) => seen = s,
                    None => return,
                }
            }
            if let Some(last) = &mut self.last_received {
                if sender == claimed && sender != to {
                    last[to as usize] = Some((claimed, msg.clone()));
                }
            }
        }
        self.deliver_unchecked(seen, to, msg)
    }

    fn deliver_unchecked(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        if let Msg::Monitor(MonitorMsg::Scrape { seq }) = msg {
            return self.answer_scrape(from, to, seq);
        }
        let env = &mut self.nodes[to as usize].env;
        if !env.up {
            if env.host_up && !matches!(msg, Msg::Refused(_) | Msg::Reset) {
                self.net.stats.refused_total += 1;
                return self.send_notice(to, from, Msg::Refused(Box::new(msg)));
            }
            self.net.stats.dropped_down_total += 1;
            return;
        }
        env.messages_received_total += 1;
        env.note_connection(from);
        let logging = self.logging;
        self.with_node(to, |c, ctx| {
            if logging {
                tracing::trace!(from, ?msg, "deliver");
            }
            c.on_message(ctx, from, msg)
        });
    }

    /// A scrape is answered by the node's process (its metrics endpoint), not its component:
    /// a node that is down stays silent.
    fn answer_scrape(&mut self, monitor: NodeId, node: NodeId, seq: u64) {
        let now = self.queue.now_ns;
        let env = &mut self.nodes[node as usize].env;
        if !env.up {
            self.net.stats.dropped_down_total += 1;
            return;
        }
        env.messages_received_total += 1;
        env.messages_sent_total += 1;
        let samples = env.scrape(now);
        let msg = Msg::Monitor(MonitorMsg::Samples { seq, samples });
        if let Some(tap) = &mut self.net.tap {
            tap(now, node, monitor, &msg);
        }
        if let Some(at) = self.net.route(now, node, monitor) {
            let event = Event::Deliver {
                from: node,
                to: monitor,
                msg,
            };
            self.queue.push(at, event);
        }
    }

    fn fire(&mut self, node: NodeId, incarnation: u32, timer: Timer) {
        if self.nodes[node as usize].env.incarnation != incarnation {
            return; // set before a crash
        }
        self.nodes[node as usize].env.timers_fired_total += 1;
        self.with_node(node, |c, ctx| c.on_timer(ctx, timer));
    }

    fn disk_done(
        &mut self,
        node: NodeId,
        (incarnation, generation): (u32, u32),
        lsn: u64,
        ok: bool,
    ) {
        let env = &mut self.nodes[node as usize].env;
        if env.incarnation != incarnation {
            return; // the node crashed before the sync completed: nothing became durable
        }
        let event = if env.disk.generation != generation {
            // The log was truncated meanwhile: this sync proves nothing about what is there now.
            // Report the durable point as it stands, so the component's sync bookkeeping moves on.
            DiskEvent::Synced {
                lsn: env.disk.durable_lsn(),
            }
        } else if ok {
            env.disk.mark_durable(lsn);
            DiskEvent::Synced { lsn }
        } else {
            DiskEvent::SyncFailed { lsn }
        };
        self.with_node(node, |c, ctx| c.on_disk(ctx, event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LinkConfig;
    use minitwin_components::rng::{Dist, Rng};
    use proptest::prelude::*;
    use std::any::Any;

    /// A component that records when its timers fire.
    struct Recorder {
        delays_ns: Vec<u64>,
    }

    impl Component for Recorder {
        fn start(&mut self, ctx: &mut dyn Context) {
            for (i, &d) in self.delays_ns.iter().enumerate() {
                ctx.set_timer(d, Timer::Tick { kind: i as u32 });
            }
        }
        fn on_message(&mut self, _: &mut dyn Context, _: NodeId, _: Msg) {}
        fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
            let Timer::Tick { kind } = timer else { return };
            let c = ctx.metrics().counter("fired_total");
            ctx.metrics().add(c, 1);
            let at = ctx.metrics().histogram("fired_at_ns");
            let now = ctx.now_ns();
            ctx.metrics().record(at, now);
            let order = ctx.metrics().gauge("last_kind", "index");
            ctx.metrics().set(order, f64::from(kind));
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    fn one_node(delays_ns: Vec<u64>) -> Sim {
        let net = Network::new(
            1,
            vec![0],
            vec![LinkConfig::default()],
            vec![Rng::stream(0, "n")],
        );
        let spec = NodeSpec {
            name: "r".into(),
            zone: 0,
            factory: Box::new(move || {
                Box::new(Recorder {
                    delays_ns: delays_ns.clone(),
                })
            }),
            disk: DiskConfig {
                sync_latency: Dist::constant_ms(1.0),
            },
            clock_offset_ns: 0,
            starts_up: true,
        };
        Sim::new(1, vec![spec], net, Buggify::default(), true)
    }

    proptest! {
        /// Events run in (time, scheduling order): equal times keep their order, none goes back.
        #[test]
        fn the_kernel_runs_events_in_time_then_sequence_order(delays in proptest::collection::vec(0u64..1_000, 1..200)) {
            let mut sim = one_node(delays.clone());
            sim.run_for(10_000);
            let entries = sim.trace().entries().unwrap();
            prop_assert_eq!(entries.len(), delays.len());
            let mut expected: Vec<(u64, usize)> = delays.iter().enumerate().map(|(i, &d)| (d, i)).collect();
            expected.sort();
            for (e, (d, i)) in entries.iter().zip(expected) {
                prop_assert_eq!(e.at_ns, d);
                let tick = format!("Tick {{ kind: {i} }}");
                prop_assert!(e.summary.contains(&tick), "{} does not contain {}", e.summary, tick);
            }
        }
    }

    #[test]
    fn a_crashed_node_loses_its_timers_and_a_restart_rearms_them() {
        let mut sim = one_node(vec![100, 200]);
        sim.run_for(150);
        sim.crash(0);
        sim.run_for(100);
        assert_eq!(sim.env(0).metrics.counter_value("fired_total"), Some(1));
        sim.restart(0);
        sim.run_for(1_000);
        assert_eq!(sim.env(0).metrics.counter_value("fired_total"), Some(3));
    }

    #[test]
    fn a_fast_clock_fires_local_timers_sooner_in_global_time() {
        let mut sim = one_node(vec![1_000_000]);
        sim.crash(0); // drop the timer set at boot with the normal rate
        sim.schedule(
            0,
            Action::ClockRate {
                node: 0,
                drift_ppm: 1_000_000.0,
            },
        ); // twice as fast
        sim.schedule(0, Action::Restart(0));
        sim.run_for(499_000);
        assert_eq!(sim.env(0).metrics.counter_value("fired_total"), None);
        sim.run_for(2_000);
        assert_eq!(sim.env(0).metrics.counter_value("fired_total"), Some(1));
    }
}
