//! The edge gateway (nginx-like): rate limit, cache, load balancing with passive health,
//! retries on the next upstream, and timeouts.
//!
//! Request path: token bucket ([`limiter`]) -> for static routes the LRU cache ([`lru`]) ->
//! smooth weighted round-robin over live upstreams ([`swrr`]) -> on error or timeout, mark the
//! peer and retry on the next one, up to `next_upstream_tries`.

pub mod limiter;
pub mod lru;
pub mod swrr;

use crate::config::{self, Checked};
use crate::context::{Component, Context, NodeId};
use crate::deadline::DeadlineQueue;
use crate::detmap::Slab;
use crate::metrics::{CounterId, GaugeId, HistId};
use crate::msg::{Msg, Request, Response, Route, Status, Timer};
use crate::rng::ms_to_ns;
use crate::scaler::ScalerMsg;
use limiter::{Verdict, Zone};
use lru::Lru;
use serde::Deserialize;
use swrr::Swrr;

/// Responses served from the cache (the name of the counter, for readers of the registry).
/// The tracing target of the gateway's access-log events (see `Gateway::access`).
pub const ACCESS_TARGET: &str = "minitwin::access";
pub const CACHE_HITS_TOTAL: &str = "gateway_cache_hits_total";
/// Cacheable requests the cache could not serve.
pub const CACHE_MISSES_TOTAL: &str = "gateway_cache_misses_total";

/// The key of the rate limiter's zone (`limit_req_zone <key> ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// `$binary_remote_addr`: one bucket per client address.
    RemoteAddr,
    /// `$server_name`: one bucket for the gateway.
    Server,
}

/// Gateway parameters; defaults are nginx's where nginx has one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Failures within `fail_timeout_ms` that mark a peer down (nginx max_fails=1).
    pub max_fails: u32,
    /// Window for counting failures, and how long a peer stays down (nginx fail_timeout=10s).
    pub fail_timeout_ms: f64,
    /// Upstream response timeout (nginx proxy_read_timeout=60s).
    pub proxy_timeout_ms: f64,
    /// Attempts per request across upstreams; 0 means one per upstream (nginx default).
    pub next_upstream_tries: u32,
    /// Also retry on a 503 from the upstream (nginx `proxy_next_upstream http_503`; off by default).
    pub retry_on_503: bool,
    /// Cache static routes.
    pub cache_enabled: bool,
    /// Cache size in entries (nginx max_size, counted in objects here).
    pub cache_max_entries: usize,
    /// Drop entries not accessed for this long (nginx inactive=10m).
    pub cache_inactive_ms: f64,
    /// Freshness of a cached response (proxy_cache_valid).
    pub cache_valid_ms: f64,
    /// Token-bucket rate per second for the whole gateway; none: no limit.
    pub rate_limit_rps: Option<f64>,
    /// Requests allowed above the rate (nginx burst=0).
    pub rate_limit_burst: f64,
    /// Serve burst requests at once instead of pacing them (nginx `nodelay`; off by default:
    /// requests above the rate wait until they conform, up to `burst`).
    pub rate_limit_nodelay: bool,
    /// The zone's key: `remote_addr` (nginx `$binary_remote_addr`, the usual config: one bucket
    /// per client address; in the twin a client node stands for the users behind one address)
    /// or `server` (one bucket for the whole gateway, `$server_name`).
    pub rate_limit_key: RateLimitKey,
    /// Pass a write (non-idempotent) to the next upstream after it was sent (nginx
    /// `proxy_next_upstream non_idempotent`; off by default since 1.9.13: a write that timed
    /// out or was reset is answered with the error, since the upstream may have applied it).
    pub retry_non_idempotent: bool,
    /// Status for shed requests (nginx limit_req_status=503; many set 429).
    pub rate_limit_status: u16,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_fails: 1,
            fail_timeout_ms: 10_000.0,
            proxy_timeout_ms: 60_000.0,
            next_upstream_tries: 0,
            retry_on_503: false,
            cache_enabled: true,
            cache_max_entries: 10_000,
            cache_inactive_ms: 600_000.0,
            cache_valid_ms: 600_000.0,
            rate_limit_rps: None,
            rate_limit_burst: 0.0,
            rate_limit_nodelay: false,
            rate_limit_key: RateLimitKey::RemoteAddr,
            rate_limit_status: 503,
            retry_non_idempotent: false,
        }
    }
}

impl GatewayConfig {
    /// Ranges: `max_fails` 0-1000; `fail_timeout_ms` 0-1e9; `proxy_timeout_ms` 1-1e9;
    /// `next_upstream_tries` 0-64; `cache_max_entries` 0-10,000,000 (at least 1 with the
    /// cache on); `cache_inactive_ms` and `cache_valid_ms` 0-1e9; `rate_limit_rps` above 0 up
    /// to 10,000,000; `rate_limit_burst` 0-10,000,000; `rate_limit_status` an error status
    /// (429, 500, 502, 503 or 504).
    pub fn validate(&self) -> Checked {
        config::count("max_fails", u64::from(self.max_fails), 0, 1_000)?;
        config::ms("fail_timeout_ms", self.fail_timeout_ms, 0.0)?;
        config::ms("proxy_timeout_ms", self.proxy_timeout_ms, 1.0)?;
        config::count(
            "next_upstream_tries",
            u64::from(self.next_upstream_tries),
            0,
            64,
        )?;
        config::count(
            "cache_max_entries",
            self.cache_max_entries as u64,
            u64::from(self.cache_enabled),
            10_000_000,
        )?;
        config::ms("cache_inactive_ms", self.cache_inactive_ms, 0.0)?;
        config::ms("cache_valid_ms", self.cache_valid_ms, 0.0)?;
        if let Some(r) = self.rate_limit_rps {
            config::range("rate_limit_rps", r, f64::MIN_POSITIVE, 1e7)?;
        }
        config::range("rate_limit_burst", self.rate_limit_burst, 0.0, 1e7)?;
        let status = Status::from_code(self.rate_limit_status);
        config::rule(
            status.is_some_and(|s| !s.is_ok()),
            "rate_limit_status",
            format!(
                "{} is not an error status: use 429, 500, 502, 503 or 504",
                self.rate_limit_status
            ),
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    client: NodeId,
    request: Request,
    start_ns: u64,
    peer: usize,
    attempt: u32,
    tried_mask: u64,
}

struct Ids {
    requests: CounterId,
    cache_hits: CounterId,
    cache_misses: CounterId,
    limited: CounterId,
    upstream_requests: CounterId,
    upstream_timeouts: CounterId,
    upstream_errors: CounterId,
    upstream_refused: CounterId,
    upstream_resets: CounterId,
    retries: CounterId,
    no_live_upstream: CounterId,
    upstream_latency: HistId,
    upstream_down: HistId,
    by_route: [CounterId; 3],
    responses_2xx: CounterId,
    responses_4xx: CounterId,
    responses_5xx: CounterId,
    delayed: CounterId,
    endpoints_updates: CounterId,
    cache_entries: GaugeId,
    upstreams_in_set: GaugeId,
}

/// The gateway state machine.
pub struct Gateway {
    config: GatewayConfig,
    balancer: Swrr,
    cache: Lru,
    limiter: Option<Zone>,
    pending: Slab<Pending>,
    delayed: Slab<(NodeId, Request)>,
    deadlines: DeadlineQueue<(u64, u32)>,
    due: Vec<(u64, u32)>,
    ids: Option<Ids>,
    /// The version of the last endpoints applied (0: the initial set).
    endpoints_version: u64,
}

impl Gateway {
    /// A gateway balancing over `upstreams` as (node, weight).
    pub fn new(config: GatewayConfig, upstreams: &[(NodeId, u32)]) -> Gateway {
        assert!(
            !upstreams.is_empty(),
            "a gateway needs at least one upstream"
        );
        assert!(upstreams.len() <= 64, "at most 64 upstreams per gateway");
        let limiter = config
            .rate_limit_rps
            .map(|rps| Zone::new(rps, config.rate_limit_burst, config.rate_limit_nodelay));
        let cache = Lru::new(
            config.cache_max_entries.max(1),
            ms_to_ns(config.cache_inactive_ms),
            ms_to_ns(config.cache_valid_ms),
        );
        Gateway {
            balancer: Swrr::new(
                upstreams,
                config.max_fails,
                ms_to_ns(config.fail_timeout_ms),
            ),
            cache,
            limiter,
            pending: Slab::new(),
            delayed: Slab::new(),
            deadlines: DeadlineQueue::new(),
            due: Vec::new(),
            ids: None,
            endpoints_version: 0,
            config,
        }
    }

    fn ids(&self) -> &Ids {
        self.ids.as_ref().expect("start() registers metrics")
    }

    fn count(&self, ctx: &mut dyn Context, id: fn(&Ids) -> CounterId) {
        let c = id(self.ids());
        ctx.metrics().add(c, 1);
    }

    fn reply(
        &self,
        ctx: &mut dyn Context,
        to: NodeId,
        id: u64,
        status: Status,
        value: Option<u64>,
    ) {
        let ids = self.ids();
        let class = match status.code() {
            200..=299 => ids.responses_2xx,
            400..=499 => ids.responses_4xx,
            _ => ids.responses_5xx,
        };
        ctx.metrics().add(class, 1);
        ctx.send(to, Msg::Response(Response { id, status, value }));
    }

    /// One access-log event per answered request, as nginx's access log has a line: target
    /// `minitwin::access`, message `request`, with the fields `minitwin import --format json`
    /// reads (`t_ns`, `request_id`, `route`, `key`, `status`, `request_time_ms`, and for a
    /// request that went upstream `upstream` (the node that answered or failed last) and
    /// `upstream_failed` (the nodes whose attempts failed, space-separated)). Formatted only
    /// when a subscriber wants it.
    fn access(
        &self,
        ctx: &dyn Context,
        request: &Request,
        start_ns: u64,
        status: Status,
        upstream: Option<(&Pending, bool)>,
    ) {
        if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
            return;
        }
        let now = ctx.now_ns();
        let route = match request.route {
            Route::Static => "static",
            Route::Read => "read",
            Route::Write => "write",
        };
        let (last, failed) = match upstream {
            Some((p, last_failed)) => {
                let last = self.balancer.node(p.peer);
                let mut mask = p.tried_mask;
                if !last_failed {
                    mask &= !(1u64 << p.peer);
                }
                let failed: Vec<String> = (0..64)
                    .filter(|i| mask & (1u64 << i) != 0)
                    .map(|i| self.balancer.node(i).to_string())
                    .collect();
                (last.to_string(), failed.join(" "))
            }
            None => (String::new(), String::new()),
        };
        tracing::info!(
            target: ACCESS_TARGET,
            t_ns = now,
            request_id = request.id,
            route,
            key = request.key,
            status = status.code(),
            request_time_ms = now.saturating_sub(start_ns) as f64 / 1e6,
            upstream = last.as_str(),
            upstream_failed = failed.as_str(),
            "request"
        );
    }

    fn on_request(&mut self, ctx: &mut dyn Context, client: NodeId, request: Request) {
        self.count(ctx, |i| i.requests);
        let route = self.ids().by_route[request.route as usize];
        ctx.metrics().add(route, 1);
        let zone_key = match self.config.rate_limit_key {
            RateLimitKey::RemoteAddr => u64::from(client),
            RateLimitKey::Server => 0,
        };
        if let Some(limiter) = &mut self.limiter {
            match limiter.admit(zone_key, ctx.now_ns()) {
                Verdict::Pass => {}
                Verdict::Reject => {
                    self.count(ctx, |i| i.limited);
                    let status =
                        Status::from_code(self.config.rate_limit_status).expect("validated status");
                    let now = ctx.now_ns();
                    self.access(ctx, &request, now, status, None);
                    return self.reply(ctx, client, request.id, status, None);
                }
                Verdict::Delay(after_ns) => {
                    self.count(ctx, |i| i.delayed);
                    let id = self.delayed.insert((client, request));
                    ctx.set_timer(after_ns, Timer::Delayed { id });
                    return;
                }
            }
        }
        self.admitted(ctx, client, request);
    }

    fn admitted(&mut self, ctx: &mut dyn Context, client: NodeId, request: Request) {
        if request.route == Route::Static && self.config.cache_enabled {
            let evict_early = ctx.fault("gateway.cache_evict");
            if evict_early {
                self.cache.remove(request.key);
            }
            if self.cache.get(request.key, ctx.now_ns()) {
                self.count(ctx, |i| i.cache_hits);
                let now = ctx.now_ns();
                self.access(ctx, &request, now, Status::Ok, None);
                return self.reply(ctx, client, request.id, Status::Ok, None);
            }
            self.count(ctx, |i| i.cache_misses);
        }
        let pending = Pending {
            client,
            request,
            start_ns: ctx.now_ns(),
            peer: 0,
            attempt: 0,
            tried_mask: 0,
        };
        let id = self.pending.insert(pending);
        self.forward(ctx, id);
    }

    fn max_tries(&self) -> u32 {
        let peers = self.balancer.enabled_len() as u32;
        match self.config.next_upstream_tries {
            0 => peers,
            n => n,
        }
    }

    /// Sends the pending request `id` to the next live upstream, or fails it.
    fn forward(&mut self, ctx: &mut dyn Context, id: u64) {
        let now = ctx.now_ns();
        let p = *self.pending.get(id).expect("forward of a live request");
        let Some(peer) = self.balancer.pick(now, p.tried_mask) else {
            tracing::debug!(request = p.request.id, "no live upstream");
            self.count(ctx, |i| i.no_live_upstream);
            self.pending.remove(id);
            let tried = (p.attempt > 0).then_some((&p, true));
            self.access(ctx, &p.request, p.start_ns, Status::BadGateway, tried);
            return self.reply(ctx, p.client, p.request.id, Status::BadGateway, None);
        };
        let attempt = p.attempt + 1;
        let entry = self.pending.get_mut(id).expect("live");
        entry.peer = peer;
        entry.attempt = attempt;
        entry.tried_mask |= 1 << peer;
        self.count(ctx, |i| i.upstream_requests);
        let upstream = Request { id, ..p.request };
        ctx.send(self.balancer.node(peer), Msg::Request(upstream));
        let deadline = now + ms_to_ns(self.config.proxy_timeout_ms);
        self.deadlines.push(ctx, deadline, (id, attempt));
    }

    /// The current attempt of `id` failed (error or timeout): mark the peer, maybe retry.
    /// `sent`: the request reached the upstream (a timeout or a reset, not a refused
    /// connect), so a write is not passed on unless `retry_non_idempotent`.
    fn attempt_failed(&mut self, ctx: &mut dyn Context, id: u64, final_status: Status, sent: bool) {
        let p = *self
            .pending
            .get(id)
            .expect("failed attempt of a live request");
        self.balancer.failed(p.peer, ctx.now_ns());
        let idempotent = p.request.route != Route::Write || self.config.retry_non_idempotent;
        if p.attempt < self.max_tries() && (idempotent || !sent) {
            self.count(ctx, |i| i.retries);
            return self.forward(ctx, id);
        }
        self.pending.remove(id);
        self.access(ctx, &p.request, p.start_ns, final_status, Some((&p, true)));
        self.reply(ctx, p.client, p.request.id, final_status, None);
    }

    fn on_response(&mut self, ctx: &mut dyn Context, from: NodeId, r: Response) {
        let Some(p) = self.pending.get(r.id).copied() else {
            return; // late answer to a request already timed out or retried
        };
        if self.balancer.node(p.peer) != from {
            return; // answer from an earlier attempt's peer
        }
        let lat = ctx.now_ns().saturating_sub(p.start_ns);
        let hist = self.ids().upstream_latency;
        ctx.metrics().record(hist, lat);
        let retryable = r.status == Status::Unavailable && self.config.retry_on_503;
        if retryable {
            self.count(ctx, |i| i.upstream_errors);
            return self.attempt_failed(ctx, r.id, r.status, false);
        }
        if let Some(since) = self.balancer.succeeded(p.peer) {
            let (h, out_ns) = (self.ids().upstream_down, ctx.now_ns().saturating_sub(since));
            ctx.metrics().record(h, out_ns);
        }
        self.pending.remove(r.id);
        if r.status.is_ok() && p.request.route == Route::Static && self.config.cache_enabled {
            self.cache.insert(p.request.key, ctx.now_ns());
            let g = self.ids().cache_entries;
            ctx.metrics().set(g, self.cache.len() as f64);
        }
        self.access(ctx, &p.request, p.start_ns, r.status, Some((&p, false)));
        self.reply(ctx, p.client, p.request.id, r.status, r.value);
    }

    /// `connect() failed (111: Connection refused)`: the request never reached `from`; it
    /// counts as a failure of that peer and goes to the next upstream, a write included.
    fn on_refused(&mut self, ctx: &mut dyn Context, from: NodeId, msg: &Msg) {
        let Msg::Request(r) = msg else { return };
        let Some(p) = self.pending.get(r.id).copied() else {
            return;
        };
        if self.balancer.node(p.peer) != from {
            return;
        }
        self.count(ctx, |i| i.upstream_refused);
        self.attempt_failed(ctx, r.id, Status::BadGateway, false);
    }

    /// `recv() failed (104: Connection reset by peer)`: every attempt in flight to `from`
    /// failed after it was sent.
    fn on_reset(&mut self, ctx: &mut dyn Context, from: NodeId) {
        let hit: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| self.balancer.node(p.peer) == from)
            .map(|(id, _)| id)
            .collect();
        for id in hit {
            self.count(ctx, |i| i.upstream_resets);
            self.attempt_failed(ctx, id, Status::BadGateway, true);
        }
    }

    /// The control plane's endpoints for the upstream set (an autoscaled service tier); older
    /// versions than the one applied are ignored (messages may be reordered or repeated).
    fn on_endpoints(&mut self, version: u64, ready: &[NodeId]) -> bool {
        if version <= self.endpoints_version {
            return false;
        }
        self.endpoints_version = version;
        let mut sorted = ready.to_vec();
        sorted.sort_unstable();
        self.balancer.set_enabled(&sorted);
        true
    }

    /// Starts with only `nodes` of the upstreams in the set (an autoscaled tier's initial
    /// replicas); the control plane's endpoints change it from then on.
    pub fn with_endpoints(mut self, nodes: &[NodeId]) -> Gateway {
        let mut sorted = nodes.to_vec();
        sorted.sort_unstable();
        self.balancer.set_enabled(&sorted);
        self
    }

    fn on_deadlines(&mut self, ctx: &mut dyn Context) {
        let mut due = std::mem::take(&mut self.due);
        self.deadlines.fire(ctx, &mut due);
        for &(id, attempt) in &due {
            let current = self.pending.get(id).map(|p| p.attempt);
            if current == Some(attempt) {
                self.count(ctx, |i| i.upstream_timeouts);
                self.attempt_failed(ctx, id, Status::GatewayTimeout, true);
            }
        }
        due.clear();
        self.due = due;
    }

    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Upstreams requests may go to (the endpoints' set; those marked down included).
    pub fn upstreams_enabled(&self) -> usize {
        self.balancer.enabled_len()
    }
}

impl Component for Gateway {
    fn start(&mut self, ctx: &mut dyn Context) {
        let m = ctx.metrics();
        self.ids = Some(Ids {
            requests: m.counter("gateway_requests_total"),
            cache_hits: m.counter(CACHE_HITS_TOTAL),
            cache_misses: m.counter(CACHE_MISSES_TOTAL),
            limited: m.counter("gateway_rate_limited_total"),
            upstream_requests: m.counter("gateway_upstream_requests_total"),
            upstream_timeouts: m.counter("gateway_upstream_timeouts_total"),
            upstream_errors: m.counter("gateway_upstream_errors_total"),
            upstream_refused: m.counter("gateway_upstream_refused_total"),
            upstream_resets: m.counter("gateway_upstream_resets_total"),
            retries: m.counter("gateway_upstream_retries_total"),
            no_live_upstream: m.counter("gateway_no_live_upstream_total"),
            upstream_latency: m.histogram("gateway_upstream_latency_ns"),
            upstream_down: m.histogram("gateway_upstream_down_ns"),
            by_route: [
                m.counter("gateway_requests_static_total"),
                m.counter("gateway_requests_read_total"),
                m.counter("gateway_requests_write_total"),
            ],
            responses_2xx: m.counter("gateway_responses_2xx_total"),
            responses_4xx: m.counter("gateway_responses_4xx_total"),
            responses_5xx: m.counter("gateway_responses_5xx_total"),
            delayed: m.counter("gateway_rate_delayed_total"),
            endpoints_updates: m.counter("gateway_endpoints_updates_total"),
            cache_entries: m.gauge("gateway_cache_entries", "entries"),
            upstreams_in_set: m.gauge("gateway_upstreams_in_set", "upstreams"),
        });
        let n = self.balancer.enabled_len() as f64;
        let g = self.ids().upstreams_in_set;
        ctx.metrics().set(g, n);
    }

    fn on_message(&mut self, ctx: &mut dyn Context, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(r) => self.on_request(ctx, from, r),
            Msg::Response(r) => self.on_response(ctx, from, r),
            Msg::Refused(inner) => self.on_refused(ctx, from, &inner),
            Msg::Reset => self.on_reset(ctx, from),
            Msg::Scaler(ScalerMsg::Endpoints { version, ready })
                if self.on_endpoints(version, &ready) =>
            {
                self.count(ctx, |i| i.endpoints_updates);
                let (g, n) = (self.ids().upstreams_in_set, self.balancer.enabled_len());
                ctx.metrics().set(g, n as f64);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Context, timer: Timer) {
        match timer {
            Timer::Deadlines => self.on_deadlines(ctx),
            Timer::Delayed { id } => {
                if let Some((client, request)) = self.delayed.remove(id) {
                    self.admitted(ctx, client, request);
                }
            }
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

    fn gateway(config: GatewayConfig) -> (Gateway, TestContext) {
        let mut ctx = TestContext::new(0);
        let mut g = Gateway::new(config, &[(10, 1), (11, 1)]);
        g.start(&mut ctx);
        (g, ctx)
    }

    fn get(id: u64, route: Route, key: u64) -> Msg {
        Msg::Request(Request {
            id,
            route,
            key,
            value: 0,
        })
    }

    #[test]
    fn a_timed_out_upstream_is_retried_on_the_next_peer_and_then_skipped() {
        let config = GatewayConfig {
            proxy_timeout_ms: 10.0,
            cache_enabled: false,
            ..GatewayConfig::default()
        };
        let (mut g, mut ctx) = gateway(config);
        g.on_message(&mut ctx, 99, get(1, Route::Read, 5));
        let sent = ctx.take_sent();
        let (first_peer, Msg::Request(up)) = sent[0] else {
            panic!()
        };
        let t = ctx.pop_timer().unwrap();
        g.on_timer(&mut ctx, t);
        let sent = ctx.take_sent();
        let (second_peer, Msg::Request(retry)) = sent[0] else {
            panic!("expected a retry")
        };
        assert_ne!(first_peer, second_peer);
        g.on_message(
            &mut ctx,
            second_peer,
            Msg::Response(Response {
                id: retry.id,
                status: Status::Ok,
                value: None,
            }),
        );
        assert_eq!(
            ctx.take_sent()[0],
            (
                99,
                Msg::Response(Response {
                    id: 1,
                    status: Status::Ok,
                    value: None
                })
            )
        );
        // The failed peer is down for fail_timeout: the next requests all go to the other one.
        let _ = up;
        for id in 2..5 {
            g.on_message(&mut ctx, 99, get(id, Route::Read, 5));
            assert_eq!(ctx.take_sent()[0].0, second_peer);
        }
    }

    #[test]
    fn a_second_request_for_a_static_resource_is_served_from_the_cache() {
        let (mut g, mut ctx) = gateway(GatewayConfig::default());
        g.on_message(&mut ctx, 99, get(1, Route::Static, 42));
        let (peer, Msg::Request(up)) = ctx.take_sent()[0] else {
            panic!()
        };
        g.on_message(
            &mut ctx,
            peer,
            Msg::Response(Response {
                id: up.id,
                status: Status::Ok,
                value: None,
            }),
        );
        ctx.take_sent();
        g.on_message(&mut ctx, 99, get(2, Route::Static, 42));
        let sent = ctx.take_sent();
        assert_eq!(
            sent,
            vec![(
                99,
                Msg::Response(Response {
                    id: 2,
                    status: Status::Ok,
                    value: None
                })
            )]
        );
        assert_eq!(
            ctx.metrics.counter_value("gateway_cache_hits_total"),
            Some(1)
        );
    }

    #[test]
    fn requests_over_the_rate_limit_are_shed_with_the_configured_status() {
        let config = GatewayConfig {
            rate_limit_rps: Some(1.0),
            rate_limit_status: 429,
            ..GatewayConfig::default()
        };
        let (mut g, mut ctx) = gateway(config);
        g.on_message(&mut ctx, 99, get(1, Route::Read, 5));
        g.on_message(&mut ctx, 99, get(2, Route::Read, 5));
        let sent = ctx.take_sent();
        assert!(matches!(sent[0].1, Msg::Request(_)));
        assert_eq!(
            sent[1],
            (
                99,
                Msg::Response(Response {
                    id: 2,
                    status: Status::TooManyRequests,
                    value: None
                })
            )
        );
    }

    fn ok(id: u64) -> Msg {
        Msg::Response(Response {
            id,
            status: Status::Ok,
            value: None,
        })
    }

    #[test]
    fn a_refused_connect_goes_to_the_next_upstream_even_for_a_write() {
        // nginx: "connect() failed (111: Connection refused) while connecting to upstream",
        // then the next server; a request never sent is safe to pass on.
        let (mut g, mut ctx) = gateway(GatewayConfig::default());
        g.on_message(&mut ctx, 99, get(1, Route::Write, 5));
        let (peer, up) = ctx.take_sent().remove(0);
        g.on_message(&mut ctx, peer, Msg::Refused(Box::new(up)));
        let (next, Msg::Request(retry)) = ctx.take_sent().remove(0) else {
            panic!("expected the write passed on")
        };
        assert_ne!(next, peer);
        g.on_message(&mut ctx, next, ok(retry.id));
        assert!(matches!(ctx.take_sent()[0], (99, Msg::Response(r)) if r.status.is_ok()));
        assert_eq!(
            ctx.metrics.counter_value("gateway_upstream_refused_total"),
            Some(1)
        );
    }

    #[test]
    fn a_reset_fails_every_attempt_in_flight_and_a_sent_write_is_not_retried() {
        // nginx 1.9.13+: non-idempotent requests are not passed to the next server once sent.
        let config = GatewayConfig {
            next_upstream_tries: 0,
            ..GatewayConfig::default()
        };
        let (mut g, mut ctx) = gateway(config);
        g.on_message(&mut ctx, 99, get(1, Route::Write, 5));
        g.on_message(&mut ctx, 99, get(2, Route::Read, 6));
        g.on_message(&mut ctx, 99, get(3, Route::Read, 7));
        let sent = ctx.take_sent();
        let victim = sent[0].0;
        let on_victim = sent.iter().filter(|(to, _)| *to == victim).count();
        assert_eq!(
            on_victim, 2,
            "round-robin puts the write and request 3 on one peer"
        );
        g.on_message(&mut ctx, victim, Msg::Reset);
        let after = ctx.take_sent();
        let retried = after
            .iter()
            .filter(|(to, m)| *to != 99 && matches!(m, Msg::Request(_)))
            .count();
        let failed_502 = after
            .iter()
            .filter(|(to, m)| {
                *to == 99 && matches!(m, Msg::Response(r) if r.status == Status::BadGateway)
            })
            .count();
        assert_eq!(
            (retried, failed_502),
            (1, 1),
            "the read passed on, the write a 502"
        );
        assert_eq!(
            ctx.metrics.counter_value("gateway_upstream_resets_total"),
            Some(on_victim as u64)
        );
    }

    #[test]
    fn a_write_that_timed_out_is_answered_504_not_passed_on() {
        let config = GatewayConfig {
            proxy_timeout_ms: 10.0,
            ..GatewayConfig::default()
        };
        let (mut g, mut ctx) = gateway(config);
        g.on_message(&mut ctx, 99, get(1, Route::Write, 5));
        ctx.take_sent();
        let t = ctx.pop_timer().unwrap();
        g.on_timer(&mut ctx, t);
        let sent = ctx.take_sent();
        assert_eq!(sent.len(), 1);
        assert!(matches!(sent[0], (99, Msg::Response(r)) if r.status == Status::GatewayTimeout));
        // With `non_idempotent` it is passed on.
        let config = GatewayConfig {
            proxy_timeout_ms: 10.0,
            retry_non_idempotent: true,
            ..GatewayConfig::default()
        };
        let (mut g, mut ctx) = gateway(config);
        g.on_message(&mut ctx, 99, get(1, Route::Write, 5));
        ctx.take_sent();
        let t = ctx.pop_timer().unwrap();
        g.on_timer(&mut ctx, t);
        assert!(matches!(ctx.take_sent()[0], (p, Msg::Request(_)) if p != 99));
    }

    #[test]
    fn the_rate_limit_keys_buckets_by_client_address_by_default() {
        let config = GatewayConfig {
            rate_limit_rps: Some(1.0),
            ..GatewayConfig::default()
        };
        let (mut g, mut ctx) = gateway(config);
        g.on_message(&mut ctx, 98, get(1, Route::Read, 5));
        g.on_message(&mut ctx, 99, get(2, Route::Read, 5));
        g.on_message(&mut ctx, 99, get(3, Route::Read, 5));
        let sent = ctx.take_sent();
        let upstream = sent.iter().filter(|(to, _)| *to == 10 || *to == 11).count();
        assert_eq!(upstream, 2, "one per client passes: {sent:?}");
        assert!(
            sent.iter().any(|(to, m)| *to == 99
                && matches!(m, Msg::Response(r) if r.status == Status::Unavailable)),
            "the second of client 99 is rejected (burst 0)"
        );
    }
}
