//! A node: one task owns the component and its context and handles one event at a time.

use crate::clock::Clock;
use crate::disk::FileLog;
use crate::net::{self, Peers};
use crate::prom;
use crate::timers::{Due, Timers};
use minitwin_components::metrics::Metrics;
use minitwin_components::metrics::Scraper;
use minitwin_components::monitor::MonitorMsg;
use minitwin_components::rng::Rng;
use minitwin_components::{
    Component, Context, DiskError, DiskEvent, Msg, NodeId, Observation, Recovered, Timer, TimerId,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
#[cfg(not(madsim))]
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub name: String,
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// The node's log file lives here.
    pub data_dir: PathBuf,
    /// Where the other nodes listen.
    /// Where the other nodes listen (`host:port`; names are looked up at each dial).
    pub peers: BTreeMap<NodeId, String>,
    /// Seed of the node's RNG stream (production runs pick one at start).
    pub seed: u64,
    /// The cluster's clock epoch as a Unix time in ns, the same for every node (see
    /// [`crate::clock`]); None: the node's own start (a node on its own, tests).
    pub epoch_unix_ns: Option<u64>,
    /// Mutual TLS and the access policy on this node's connections (None: plain TCP, every
    /// message admitted).
    #[cfg(not(madsim))]
    pub tls: Option<(Arc<crate::tls::NodeTls>, Arc<crate::tls::Guard>)>,
    /// PLANTED BUG (madsim builds only): acknowledge a sync without making anything durable.
    /// The madsim suite must see acknowledged writes lost on a kill.
    #[cfg(madsim)]
    pub bug_skip_fsync: bool,
}

impl NodeConfig {
    /// A node named `name` with id `id`, listening at `listen`, its disk in `data_dir`, no
    /// peers, seed 1, its own clock epoch.
    pub fn new(id: NodeId, name: &str, listen: SocketAddr, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            id,
            name: name.to_string(),
            listen,
            data_dir,
            peers: BTreeMap::new(),
            seed: 1,
            epoch_unix_ns: None,
            #[cfg(not(madsim))]
            tls: None,
            #[cfg(madsim)]
            bug_skip_fsync: false,
        }
    }
}

enum Event {
    Message(NodeId, Msg),
    /// The timer with this slot is due (it may have been cancelled since).
    TimerDue(u32),
    Disk(DiskEvent),
    /// A sync asked at `lsn` (the file then `end` bytes long, in its `generation`) finished
    /// on a blocking thread.
    SyncDone {
        lsn: u64,
        end: u64,
        generation: u64,
        result: std::io::Result<()>,
    },
}

/// What the node's task is asked from outside its component (the HTTP front).
enum Control {
    /// The registry and the driver's counters in Prometheus' text format.
    Metrics(oneshot::Sender<String>),
}

/// The node-level counters the simulator's kernel keeps too (same names).
#[derive(Debug, Default)]
struct NodeStats {
    messages_sent: u64,
    messages_received: u64,
    timers_fired: u64,
    appends: u64,
    append_bytes: u64,
    append_errors: u64,
    syncs: u64,
    sync_failures: u64,
    checkpoints: u64,
    truncations: u64,
}

/// The production [`Context`]: the cluster's clock, real TCP, a real file.
pub struct TokioContext {
    me: NodeId,
    stats: NodeStats,
    scraper: Scraper,
    clock: Clock,
    #[cfg(madsim)]
    bug_skip_fsync: bool,
    rng: Rng,
    metrics: Metrics,
    log: FileLog,
    recovered: Recovered,
    peers: Peers,
    next_timer: u32,
    /// Timers set and neither fired nor cancelled, by slot.
    timers_pending: BTreeMap<u32, Timer>,
    timers: Timers,
    events: mpsc::UnboundedSender<Event>,
}

/// Hands due timers to the node's loop.
struct TimerEvents(mpsc::UnboundedSender<Event>);

impl Due for TimerEvents {
    fn due(&self, token: u64) {
        let _ = self.0.send(Event::TimerDue(token as u32));
    }
}

impl Context for TokioContext {
    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
    fn me(&self) -> NodeId {
        self.me
    }
    fn send(&mut self, to: NodeId, msg: Msg) {
        self.stats.messages_sent += 1;
        if to == self.me {
            let _ = self.events.send(Event::Message(to, msg));
            return;
        }
        self.peers.send(self.me, to, &msg);
    }
    fn set_timer(&mut self, after_ns: u64, timer: Timer) -> TimerId {
        self.next_timer = self.next_timer.wrapping_add(1);
        let id = TimerId {
            slot: self.next_timer,
            generation: 0,
        };
        self.timers_pending.insert(id.slot, timer);
        self.timers.set(
            std::time::Duration::from_nanos(after_ns),
            u64::from(id.slot),
        );
        id
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.timers_pending.remove(&id.slot);
    }
    fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
    fn disk_append(&mut self, record: &[u8]) -> Result<u64, DiskError> {
        self.stats.appends += 1;
        self.stats.append_bytes += record.len() as u64;
        self.log.append(record).map_err(|e| {
            self.stats.append_errors += 1;
            tracing::error!(node = self.me, path = %self.log.path().display(), error = %e, "append failed");
            DiskError::Io
        })
    }
    fn disk_sync(&mut self) {
        self.stats.syncs += 1;
        let (lsn, end, generation) = (
            self.log.tail_lsn(),
            self.log.end_offset(),
            self.log.generation(),
        );
        #[cfg(madsim)]
        if self.bug_skip_fsync {
            let _ = self.events.send(Event::Disk(DiskEvent::Synced { lsn }));
            return;
        }
        // fsync blocks for milliseconds: it runs on a blocking thread, never on the runtime's
        // workers; its completion comes back as an event, as it does in the simulator.
        let file = match self.log.sync_handle() {
            Ok(f) => f,
            Err(e) => {
                self.stats.sync_failures += 1;
                tracing::error!(node = self.me, path = %self.log.path().display(), error = %e, "cannot open the log for a sync");
                let _ = self.events.send(Event::Disk(DiskEvent::SyncFailed { lsn }));
                return;
            }
        };
        let events = self.events.clone();
        #[allow(deprecated)] // madsim runs blocking closures as tasks and says so
        drop(tokio::task::spawn_blocking(move || {
            let result = file.sync_data();
            let _ = events.send(Event::SyncDone {
                lsn,
                end,
                generation,
                result,
            });
        }));
    }
    fn disk_recover(&mut self) -> Recovered {
        std::mem::take(&mut self.recovered)
    }
    fn disk_truncate(&mut self, lsn: u64) {
        self.stats.truncations += 1;
        if let Err(e) = self.log.truncate(lsn) {
            tracing::error!(node = self.me, path = %self.log.path().display(), lsn, error = %e, "truncate failed");
        }
    }
    fn disk_install(&mut self, lsn: u64, snapshot: Vec<u8>) {
        if let Err(e) = self.log.install(lsn, &snapshot) {
            tracing::error!(node = self.me, path = %self.log.path().display(), lsn, error = %e, "installing a clone failed");
        }
    }
    fn disk_checkpoint(&mut self, lsn: u64, snapshot: Vec<u8>) {
        self.stats.checkpoints += 1;
        if let Err(e) = self.log.checkpoint(lsn, &snapshot) {
            // The log keeps its records: nothing is lost, the next checkpoint tries again.
            tracing::error!(node = self.me, path = %self.log.path().display(), lsn, error = %e, "checkpoint failed");
        }
    }
    fn power(&mut self, node: NodeId, on: bool) {
        // The driver runs one process per component; starting and stopping pods belongs to
        // the platform (Kubernetes) in production, which this driver does not talk to.
        tracing::error!(
            node = self.me,
            target_node = node,
            on,
            "process control asked of the driver, which has none: ignored"
        );
    }
    fn observe(&mut self, observation: Observation) {
        tracing::info!(node = self.me, ?observation, "observed");
    }
    fn metrics(&mut self) -> &mut Metrics {
        &mut self.metrics
    }
    fn fault(&mut self, _point: &'static str) -> bool {
        false // fault points fire only in simulation
    }
}

impl TokioContext {
    /// Writes the node-level metrics (the simulator's kernel names) into the registry.
    fn export_node_metrics(&mut self) {
        let st = &self.stats;
        let values: [(&'static str, &'static str, f64); 13] = [
            ("node_up", "bool", 1.0),
            ("node_messages_sent_total", "count", st.messages_sent as f64),
            (
                "node_messages_received_total",
                "count",
                st.messages_received as f64,
            ),
            ("node_timers_fired_total", "count", st.timers_fired as f64),
            ("disk_appends_total", "count", st.appends as f64),
            ("disk_append_bytes_total", "bytes", st.append_bytes as f64),
            ("disk_append_errors_total", "count", st.append_errors as f64),
            ("disk_syncs_total", "count", st.syncs as f64),
            ("disk_sync_failures_total", "count", st.sync_failures as f64),
            ("disk_log_records", "records", self.log.records() as f64),
            ("disk_checkpoints_total", "count", st.checkpoints as f64),
            ("disk_truncations_total", "count", st.truncations as f64),
            ("node_clock_offset_ms", "ms", 0.0),
        ];
        for (name, unit, v) in values {
            let id = self.metrics.gauge(name, unit);
            self.metrics.set(id, v);
        }
        #[cfg(not(madsim))]
        if let Some(guard) = &self.peers.guard {
            for (name, n) in guard.counts() {
                let id = self.metrics.counter(name);
                let seen = self.metrics.counter_value(name).unwrap_or(0);
                self.metrics.add(id, n.saturating_sub(seen));
            }
        }
    }

    /// The driver's own series (not in the twin: the real network's troubles).
    fn driver_series(&self) -> Vec<prom::Extra> {
        let p = &self.peers;
        let counters: [(&'static str, &'static str, &std::sync::atomic::AtomicU64); 5] = [
            ("driver_protocol_errors_total", "Connections closed because the peer sent bytes that did not decode (bad hello, bad frame, another wire version).", &p.protocol_errors),
            ("driver_dial_failures_total", "Connects to peers that failed (every try, the last one included).", &p.dial_failures),
            ("driver_frames_dropped_total", "Messages the network gave up on: the peer unreachable through every connect attempt, its queue full, no address for it, a failed handshake or write.", &p.frames_dropped),
            ("driver_refused_total", "Messages handed back to the component because the peer refused the connection.", &p.refused),
            ("driver_inbox_full_total", "Local messages refused because the node's inbox was full: HTTP requests answered 503, refusal notices dropped.", &p.inbox_full),
        ];
        counters
            .into_iter()
            .map(|(name, help, n)| prom::Extra {
                name,
                help,
                counter: true,
                value: n.load(std::sync::atomic::Ordering::Relaxed) as f64,
            })
            .collect()
    }
}

/// A running node.
pub struct NodeHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
    peers: Peers,
    control: mpsc::UnboundedSender<Control>,
}

/// What the node's HTTP front holds: a way to the component and to its metrics.
#[derive(Clone)]
pub struct NodeLink {
    peers: Peers,
    control: mpsc::UnboundedSender<Control>,
}

impl NodeLink {
    /// Messages the component sends to `id` go to `endpoint` (called on the node's task).
    pub fn attach(&self, id: NodeId, endpoint: crate::net::LocalEndpoint) {
        self.peers.attach_local(id, endpoint)
    }

    /// Hands `msg` to the component as sent by `from`, or says why it cannot (the node
    /// stopped, or is behind).
    pub fn inject(&self, from: NodeId, msg: Msg) -> Result<(), &'static str> {
        self.peers.inject(from, msg)
    }

    /// The registry in Prometheus' text format; None once the node stopped.
    pub async fn metrics_text(&self) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::Metrics(tx)).ok()?;
        rx.await.ok()
    }
}

impl NodeHandle {
    /// A handle for the node's HTTP front.
    pub fn link(&self) -> NodeLink {
        NodeLink {
            peers: self.peers.clone(),
            control: self.control.clone(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections closed because a peer sent bytes that did not decode.
    pub fn protocol_errors(&self) -> u64 {
        self.peers
            .protocol_errors
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the node after the event it is handling; its log stays on disk.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// Opens the node's log, binds its listener, starts the component and serves until shut down.
pub async fn spawn_node(
    config: NodeConfig,
    component: Box<dyn Component + Send>,
) -> std::io::Result<NodeHandle> {
    std::fs::create_dir_all(&config.data_dir)?;
    let (log, recovered) = FileLog::open(&config.data_dir.join(format!("{}.log", config.name)))?;
    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let (events_tx, events_rx) = mpsc::unbounded_channel::<Event>();
    let (inbox_tx, inbox_rx) = crate::net::inbox();
    #[allow(unused_mut)]
    let mut peers = Peers::new(config.peers.clone(), inbox_tx, config.seed);
    #[cfg(not(madsim))]
    if let Some((tls, guard)) = &config.tls {
        peers.tls = Some(tls.clone());
        peers.guard = Some(guard.clone());
    }
    let server = tokio::spawn(net::serve(config.id, listener, peers.clone()));
    let ctx = TokioContext {
        me: config.id,
        stats: NodeStats::default(),
        scraper: Scraper::default(),
        clock: Clock::new(config.epoch_unix_ns),
        #[cfg(madsim)]
        bug_skip_fsync: config.bug_skip_fsync,
        rng: Rng::stream(config.seed, &config.name),
        metrics: Metrics::new(),
        log,
        recovered,
        peers: peers.clone(),
        next_timer: 0,
        timers_pending: BTreeMap::new(),
        timers: Timers::new(&config.name, TimerEvents(events_tx.clone()))?,
        events: events_tx,
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        run(component, ctx, events_rx, inbox_rx, control_rx, stop_rx).await;
        server.abort();
        let _ = done_tx.send(());
    });
    Ok(NodeHandle {
        local_addr,
        stop: Some(stop_tx),
        done: Some(done_rx),
        peers,
        control: control_tx,
    })
}

async fn run(
    mut component: Box<dyn Component + Send>,
    mut ctx: TokioContext,
    mut events: mpsc::UnboundedReceiver<Event>,
    mut inbox: mpsc::Receiver<(NodeId, Msg)>,
    mut control: mpsc::UnboundedReceiver<Control>,
    mut stop: oneshot::Receiver<()>,
) {
    component.start(&mut ctx);
    loop {
        let event = tokio::select! {
            _ = &mut stop => return,
            Some(e) = events.recv() => e,
            Some((from, msg)) = inbox.recv() => Event::Message(from, msg),
            Some(Control::Metrics(reply)) = control.recv() => {
                ctx.export_node_metrics();
                let _ = reply.send(prom::render(&ctx.metrics, &ctx.driver_series()));
                continue;
            }
            else => return,
        };
        match event {
            // The node's process answers a monitor's scrape itself, as in the simulator.
            Event::Message(from, Msg::Monitor(MonitorMsg::Scrape { seq })) => {
                ctx.stats.messages_received += 1;
                ctx.export_node_metrics();
                let samples = ctx.scraper.samples(&ctx.metrics);
                ctx.send(from, Msg::Monitor(MonitorMsg::Samples { seq, samples }));
            }
            Event::Message(from, msg) => {
                ctx.stats.messages_received += 1;
                component.on_message(&mut ctx, from, msg)
            }
            Event::TimerDue(slot) => {
                if let Some(timer) = ctx.timers_pending.remove(&slot) {
                    ctx.stats.timers_fired += 1;
                    component.on_timer(&mut ctx, timer);
                }
            }
            Event::Disk(e) => component.on_disk(&mut ctx, e),
            Event::SyncDone {
                lsn,
                end,
                generation,
                result,
            } => match result {
                Err(e) => {
                    ctx.stats.sync_failures += 1;
                    tracing::error!(node = ctx.me, path = %ctx.log.path().display(), error = %e, "sync failed");
                    component.on_disk(&mut ctx, DiskEvent::SyncFailed { lsn });
                }
                // The log was cut or rewritten while the sync ran: what it covered may no
                // longer be the records up to `lsn`; sync the log as it is now instead.
                Ok(()) if generation != ctx.log.generation() => ctx.disk_sync(),
                Ok(()) => {
                    ctx.log.synced(end);
                    component.on_disk(&mut ctx, DiskEvent::Synced { lsn });
                }
            },
        }
    }
}
