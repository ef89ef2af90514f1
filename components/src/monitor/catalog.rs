//! The catalogue of every metric the twin's nodes register: name (Prometheus habits, unit
//! last), type, unit and a one-line help, as `minitwin metrics` lists it and a `/metrics`
//! endpoint would describe it (`# HELP`, `# TYPE`). A test runs every tier and checks that
//! the catalogue and the registries agree both ways.

/// A metric's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    /// A step function of time, integrated (its time-average is exact); scraped as a gauge.
    Level,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Level => "gauge (time-integrated)",
        }
    }
}

/// One metric of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    pub help: &'static str,
}

const fn def(name: &'static str, kind: Kind, unit: &'static str, help: &'static str) -> Def {
    Def {
        name,
        kind,
        unit,
        help,
    }
}

use Kind::{Counter, Gauge, Histogram, Level};

/// Every metric, by name.
pub static CATALOG: &[Def] = &[
    def(
        "archive_accesses_total",
        Counter,
        "count",
        "Reads of archived objects, by the workload's access stream.",
    ),
    def(
        "archive_early_deletion_cost",
        Gauge,
        "price units",
        "Early-deletion charges of tiers with minimum storage durations, so far.",
    ),
    def(
        "archive_hot_fraction",
        Gauge,
        "ratio",
        "Share of stored bytes in the hot tier on the last lifecycle day.",
    ),
    def(
        "archive_objects_created_total",
        Counter,
        "count",
        "Objects the archiver took into cold storage management.",
    ),
    def(
        "archive_restore_latency_ns",
        Histogram,
        "ns",
        "Time to restore an archived object for a read, by its tier's restore latency.",
    ),
    def(
        "archive_restores_total",
        Counter,
        "count",
        "Restores of archived objects before they could be read.",
    ),
    def(
        "archive_retrieval_cost",
        Gauge,
        "price units",
        "Retrieval fees paid so far for reads from cold tiers.",
    ),
    def(
        "archive_storage_efficiency",
        Gauge,
        "ratio",
        "Logical bytes over billed bytes (replicas and tier minimums included) on the last day.",
    ),
    def(
        "archive_store_records_total",
        Counter,
        "count",
        "Store log records the archiver read (new keys become objects).",
    ),
    def(
        "archive_transitions_total",
        Counter,
        "count",
        "Objects moved between storage tiers by lifecycle rules.",
    ),
    def(
        "client_acked_writes_total",
        Counter,
        "count",
        "Writes the users saw acknowledged (status 200).",
    ),
    def(
        "client_latency_ns",
        Histogram,
        "ns",
        "Latency of the users' successful requests, all routes, in the measured window.",
    ),
    def(
        "client_latency_read_ns",
        Histogram,
        "ns",
        "Latency of the users' successful read requests.",
    ),
    def(
        "client_latency_static_ns",
        Histogram,
        "ns",
        "Latency of the users' successful static (cacheable) requests.",
    ),
    def(
        "client_latency_write_ns",
        Histogram,
        "ns",
        "Latency of the users' successful write requests.",
    ),
    def(
        "client_requests_read_total",
        Counter,
        "count",
        "Read requests the users sent in the measured window.",
    ),
    def(
        "client_requests_static_total",
        Counter,
        "count",
        "Static requests the users sent in the measured window.",
    ),
    def(
        "client_requests_total",
        Counter,
        "count",
        "Requests the users sent in the measured window.",
    ),
    def(
        "client_requests_write_total",
        Counter,
        "count",
        "Write requests the users sent in the measured window.",
    ),
    def(
        "client_status_200_total",
        Counter,
        "count",
        "Answers with status 200 the users received.",
    ),
    def(
        "client_status_429_total",
        Counter,
        "count",
        "Answers with status 429 (rate limited) the users received.",
    ),
    def(
        "client_status_500_total",
        Counter,
        "count",
        "Answers with status 500 (internal error) the users received.",
    ),
    def(
        "client_status_502_total",
        Counter,
        "count",
        "Answers with status 502 (no live upstream) the users received.",
    ),
    def(
        "client_status_503_total",
        Counter,
        "count",
        "Answers with status 503 (shed or limited) the users received.",
    ),
    def(
        "client_status_504_total",
        Counter,
        "count",
        "Answers with status 504 (upstream timeout) the users received.",
    ),
    def(
        "client_timeouts_total",
        Counter,
        "count",
        "Requests the users gave up on after their timeout.",
    ),
    def(
        "disk_append_bytes_total",
        Counter,
        "bytes",
        "Bytes appended to the node's log.",
    ),
    def(
        "disk_append_errors_total",
        Counter,
        "count",
        "Appends the disk failed.",
    ),
    def(
        "disk_appends_total",
        Counter,
        "count",
        "Records appended to the node's log.",
    ),
    def(
        "disk_checkpoints_total",
        Counter,
        "count",
        "Checkpoints that replaced the log's head with a snapshot.",
    ),
    def(
        "disk_log_records",
        Gauge,
        "records",
        "Records in the log after the last checkpoint, durable or not.",
    ),
    def(
        "disk_records_lost_total",
        Counter,
        "count",
        "Records lost to crashes before they were synced.",
    ),
    def(
        "disk_sync_failures_total",
        Counter,
        "count",
        "Syncs the disk failed.",
    ),
    def(
        "disk_syncs_total",
        Counter,
        "count",
        "Syncs the node asked of its disk.",
    ),
    def(
        "disk_truncations_total",
        Counter,
        "count",
        "Truncations of the log (a diverged replica rewinding).",
    ),
    def(
        "gateway_cache_entries",
        Gauge,
        "entries",
        "Responses held in the gateway's cache.",
    ),
    def(
        "gateway_cache_hits_total",
        Counter,
        "count",
        "Static requests the gateway answered from its cache.",
    ),
    def(
        "gateway_cache_misses_total",
        Counter,
        "count",
        "Static requests the gateway's cache could not answer.",
    ),
    def(
        "gateway_endpoints_updates_total",
        Counter,
        "count",
        "Endpoint sets from the control plane the gateway applied.",
    ),
    def(
        "gateway_no_live_upstream_total",
        Counter,
        "count",
        "Requests failed with 502 because no upstream was live or left to try.",
    ),
    def(
        "gateway_rate_delayed_total",
        Counter,
        "count",
        "Requests the rate limiter held back to pace them (limit_req without nodelay).",
    ),
    def(
        "gateway_rate_limited_total",
        Counter,
        "count",
        "Requests the rate limiter rejected.",
    ),
    def(
        "gateway_requests_read_total",
        Counter,
        "count",
        "Read requests the gateway received.",
    ),
    def(
        "gateway_requests_static_total",
        Counter,
        "count",
        "Static requests the gateway received.",
    ),
    def(
        "gateway_requests_total",
        Counter,
        "count",
        "Requests the gateway received.",
    ),
    def(
        "gateway_requests_write_total",
        Counter,
        "count",
        "Write requests the gateway received.",
    ),
    def(
        "gateway_responses_2xx_total",
        Counter,
        "count",
        "Answers the gateway sent with a 2xx status.",
    ),
    def(
        "gateway_responses_4xx_total",
        Counter,
        "count",
        "Answers the gateway sent with a 4xx status.",
    ),
    def(
        "gateway_responses_5xx_total",
        Counter,
        "count",
        "Answers the gateway sent with a 5xx status.",
    ),
    def(
        "gateway_upstream_down_ns",
        Histogram,
        "ns",
        "Time an upstream was out: from its failures reaching max_fails to its next success.",
    ),
    def(
        "gateway_upstream_errors_total",
        Counter,
        "count",
        "Upstream answers the gateway counted as failures (503 with retry_on_503).",
    ),
    def(
        "gateway_upstream_latency_ns",
        Histogram,
        "ns",
        "Time from forwarding a request upstream to its answer.",
    ),
    def(
        "gateway_upstream_refused_total",
        Counter,
        "count",
        "Attempts refused by an upstream whose process was down on a live host (connect() failed (111)).",
    ),
    def(
        "gateway_upstream_requests_total",
        Counter,
        "count",
        "Attempts the gateway sent to upstreams, retries included.",
    ),
    def(
        "gateway_upstream_resets_total",
        Counter,
        "count",
        "Attempts in flight when their upstream's process died (connection reset by peer).",
    ),
    def(
        "gateway_upstream_retries_total",
        Counter,
        "count",
        "Attempts passed to the next upstream after a failure.",
    ),
    def(
        "gateway_upstream_timeouts_total",
        Counter,
        "count",
        "Upstream attempts that hit the proxy timeout.",
    ),
    def(
        "gateway_upstreams_in_set",
        Gauge,
        "upstreams",
        "Upstreams in the gateway's balancing set now (its endpoints).",
    ),
    def(
        "mirror_applied_total",
        Counter,
        "count",
        "Records the mirror copy applied.",
    ),
    def(
        "mirror_applier_busy",
        Level,
        "appliers",
        "Mirror appliers busy applying a batch.",
    ),
    def(
        "mirror_batches_total",
        Counter,
        "count",
        "Batches the mirror job fetched from its source.",
    ),
    def(
        "mirror_checkpoint_lsn",
        Gauge,
        "lsn",
        "The source log position the mirror copy has durably applied.",
    ),
    def(
        "mirror_duplicates_skipped_total",
        Counter,
        "count",
        "Records the mirror skipped as already applied.",
    ),
    def(
        "mirror_gaps_total",
        Counter,
        "count",
        "Gaps in the mirrored stream that forced a refetch.",
    ),
    def(
        "mirror_pending_updates",
        Gauge,
        "records",
        "Records fetched and not yet applied.",
    ),
    def(
        "mirror_resends_total",
        Counter,
        "count",
        "Batches the mirror asked for again.",
    ),
    def(
        "mirror_visibility_delay_ns",
        Histogram,
        "ns",
        "Time from a write on the source to its visibility on the copy.",
    ),
    def(
        "node_clock_offset_ms",
        Gauge,
        "ms",
        "The node's clock minus simulated time (skew and drift).",
    ),
    def(
        "node_crashes_total",
        Counter,
        "count",
        "Crashes of the node's process (power loss or kill).",
    ),
    def(
        "node_messages_received_total",
        Counter,
        "count",
        "Messages delivered to the node's process.",
    ),
    def(
        "node_messages_sent_total",
        Counter,
        "count",
        "Messages the node's process sent.",
    ),
    def(
        "node_restarts_total",
        Counter,
        "count",
        "Restarts of the node's process.",
    ),
    def(
        "node_timers_fired_total",
        Counter,
        "count",
        "Timers that fired in the node's process.",
    ),
    def(
        "node_up",
        Gauge,
        "bool",
        "Whether the node's process runs (1) or not (0).",
    ),
    def(
        "orchestrator_detection_ns",
        Histogram,
        "ns",
        "Time from a primary's failure to the orchestrator declaring it dead.",
    ),
    def(
        "orchestrator_elections_total",
        Counter,
        "count",
        "Elections this orchestrator of a raft group started.",
    ),
    def(
        "orchestrator_failovers_total",
        Counter,
        "count",
        "Failovers the orchestrator carried out.",
    ),
    def(
        "orchestrator_fence_messages_total",
        Counter,
        "count",
        "Fencing messages the orchestrator sent to deposed primaries.",
    ),
    def(
        "orchestrator_polls_total",
        Counter,
        "count",
        "Health polls the orchestrator sent.",
    ),
    def(
        "orchestrator_reclones_total",
        Counter,
        "count",
        "Re-clone orders the operator sent to detached members.",
    ),
    def(
        "orchestrator_recoveries_blocked_total",
        Counter,
        "count",
        "Dead primaries left alone because a recovery of their shard ran within recovery_block_ms.",
    ),
    def(
        "orchestrator_terms_led_total",
        Counter,
        "count",
        "Raft terms this orchestrator led (only the leader recovers).",
    ),
    def(
        "orchestrator_unreachable_master_total",
        Counter,
        "count",
        "Primaries the orchestrator could not reach while a replica still replicated from them (no failover).",
    ),
    def(
        "prometheus_alerts_firing",
        Gauge,
        "alerts",
        "Alerts (rules and detectors) firing now.",
    ),
    def(
        "prometheus_rule_evaluations_total",
        Counter,
        "count",
        "Rule and detector evaluations.",
    ),
    def(
        "prometheus_target_scrapes_failed_total",
        Counter,
        "count",
        "Scrapes that got no answer within their interval (up 0).",
    ),
    def(
        "prometheus_target_scrapes_total",
        Counter,
        "count",
        "Scrapes sent to targets.",
    ),
    def(
        "prometheus_tsdb_head_series",
        Gauge,
        "series",
        "Series in the monitor's store.",
    ),
    def(
        "prometheus_tsdb_samples_appended_total",
        Counter,
        "count",
        "Samples appended to the monitor's store.",
    ),
    def(
        "prometheus_tsdb_samples_held",
        Gauge,
        "samples",
        "Samples held now, raw and downsampled.",
    ),
    def(
        "reshard_cutover_ms",
        Gauge,
        "ms",
        "Time writes were paused at the resharding's cut-over.",
    ),
    def(
        "reshard_lag_records",
        Gauge,
        "records",
        "Records the new shards still lag behind the source.",
    ),
    def(
        "reshard_records_copied_total",
        Counter,
        "count",
        "Records copied to the new shards.",
    ),
    def(
        "reshard_verify_failures_total",
        Counter,
        "count",
        "Keys whose copy failed verification.",
    ),
    def(
        "scaler_alert_floor_replicas",
        Gauge,
        "replicas",
        "The replica floor held by firing alerts (0: none).",
    ),
    def(
        "scaler_cpu_utilization_percent",
        Gauge,
        "percent",
        "The CPU utilization the HPA saw at its last sync, of the pods' requests.",
    ),
    def(
        "scaler_desired_replicas",
        Level,
        "replicas",
        "The Deployment's replicas as the control plane set them.",
    ),
    def(
        "scaler_endpoints_version",
        Gauge,
        "version",
        "Version of the endpoint set sent to the gateways.",
    ),
    def(
        "scaler_forecast_rps",
        Gauge,
        "req/s",
        "The predictive forecast of the request rate now.",
    ),
    def(
        "scaler_grace_period_kills_total",
        Counter,
        "count",
        "Pods killed at the end of their grace period before they drained.",
    ),
    def(
        "scaler_hpa_recommendation_replicas",
        Gauge,
        "replicas",
        "The HPA calculators' largest recommendation at the last sync.",
    ),
    def(
        "scaler_pods_created_total",
        Counter,
        "count",
        "Pods the control plane created.",
    ),
    def(
        "scaler_pods_terminated_total",
        Counter,
        "count",
        "Pods the control plane terminated.",
    ),
    def(
        "scaler_predicted_replicas",
        Level,
        "replicas",
        "The replica floor predictive scaling holds.",
    ),
    def(
        "scaler_probe_failures_total",
        Counter,
        "count",
        "Readiness probes left unanswered.",
    ),
    def(
        "scaler_probes_total",
        Counter,
        "count",
        "Readiness probes sent.",
    ),
    def(
        "scaler_ready_replicas",
        Level,
        "replicas",
        "Pods ready, in the gateways' endpoints.",
    ),
    def(
        "scaler_reforecasts_total",
        Counter,
        "count",
        "Forecasts redone with newer history.",
    ),
    def(
        "scaler_running_replicas",
        Level,
        "replicas",
        "Pods with a process (starting, ready or draining): what is billed.",
    ),
    def(
        "scaler_scale_downs_total",
        Counter,
        "count",
        "Syncs that lowered the replicas.",
    ),
    def(
        "scaler_scale_ups_total",
        Counter,
        "count",
        "Syncs that raised the replicas.",
    ),
    def(
        "scaler_scrapes_lost_total",
        Counter,
        "count",
        "Pod metrics lost by a failing metrics pipeline.",
    ),
    def(
        "scaler_syncs_total",
        Counter,
        "count",
        "HPA control-loop runs.",
    ),
    def(
        "scaler_warm_pool_available",
        Gauge,
        "instances",
        "Warm instances ready to start fast.",
    ),
    def(
        "security_refused_unauthenticated_total",
        Counter,
        "count",
        "Messages refused because their sender proved no identity allowed to send them.",
    ),
    def(
        "security_refused_unauthorized_total",
        Counter,
        "count",
        "Messages refused because the sender's role may not send that family to this role.",
    ),
    def(
        "security_refused_unencrypted_total",
        Counter,
        "count",
        "Messages refused because their family must be encrypted and arrived in the clear.",
    ),
    def(
        "service_busy_workers",
        Level,
        "workers",
        "Workers busy with a request (on CPU or waiting for the store).",
    ),
    def(
        "service_completed_total",
        Counter,
        "count",
        "Requests the service finished and answered.",
    ),
    def(
        "service_cpu_ns_total",
        Counter,
        "ns",
        "CPU time the service's requests took.",
    ),
    def(
        "service_in_system",
        Level,
        "requests",
        "Requests queued or running in the service.",
    ),
    def(
        "service_probes_total",
        Counter,
        "count",
        "Readiness probes the service answered.",
    ),
    def(
        "service_queue_length",
        Level,
        "requests",
        "Requests waiting for a worker.",
    ),
    def(
        "service_queue_wait_ns",
        Histogram,
        "ns",
        "Time requests waited for a worker.",
    ),
    def(
        "service_requests_read_total",
        Counter,
        "count",
        "Read requests the service received.",
    ),
    def(
        "service_requests_static_total",
        Counter,
        "count",
        "Static requests the service received.",
    ),
    def(
        "service_requests_total",
        Counter,
        "count",
        "Requests the service received, shed ones included.",
    ),
    def(
        "service_requests_write_total",
        Counter,
        "count",
        "Write requests the service received.",
    ),
    def(
        "service_scrapes_total",
        Counter,
        "count",
        "Usage scrapes (metrics-server) the service answered.",
    ),
    def(
        "service_shed_total",
        Counter,
        "count",
        "Requests shed with 503 because the queue was full.",
    ),
    def(
        "service_sojourn_ns",
        Histogram,
        "ns",
        "Time from a request's arrival at the service to its answer.",
    ),
    def(
        "service_sojourn_ns_sum",
        Counter,
        "ns",
        "Sum of the service's sojourn times (for exact means).",
    ),
    def(
        "service_store_calls_total",
        Counter,
        "count",
        "Calls the service made to store shards.",
    ),
    def(
        "service_store_errors_total",
        Counter,
        "count",
        "Store calls that answered an error.",
    ),
    def(
        "service_store_redirects_total",
        Counter,
        "count",
        "Store calls redirected to a new primary.",
    ),
    def(
        "service_store_retries_total",
        Counter,
        "count",
        "Store calls retried after an error or timeout.",
    ),
    def(
        "service_store_timeouts_total",
        Counter,
        "count",
        "Store calls that timed out.",
    ),
    def(
        "service_terminations_total",
        Counter,
        "count",
        "SIGTERMs the service received.",
    ),
    def(
        "service_workers",
        Gauge,
        "workers",
        "Worker threads of the service instance.",
    ),
    def(
        "session_ask_total",
        Counter,
        "count",
        "ASK redirections a session node sent during slot migrations.",
    ),
    def(
        "session_client_ask_total",
        Counter,
        "count",
        "ASK redirections the session client followed.",
    ),
    def(
        "session_client_moved_total",
        Counter,
        "count",
        "MOVED redirections the session client followed.",
    ),
    def(
        "session_commands_total",
        Counter,
        "count",
        "Commands a session node executed.",
    ),
    def(
        "session_down_total",
        Counter,
        "count",
        "Nodes a session node marked as failed.",
    ),
    def(
        "session_failovers_total",
        Counter,
        "count",
        "Failovers in which this session replica became a master.",
    ),
    def(
        "session_full_resyncs_total",
        Counter,
        "count",
        "Replicas this master sent everything because the gap they asked for was no longer in its backlog.",
    ),
    def(
        "session_migrated_keys_total",
        Counter,
        "count",
        "Keys moved by slot migrations.",
    ),
    def(
        "session_moved_total",
        Counter,
        "count",
        "MOVED redirections a session node sent.",
    ),
    def(
        "session_partial_resyncs_total",
        Counter,
        "count",
        "Replica gaps this master filled from its replication backlog (a partial resync).",
    ),
    def(
        "session_promoted_at_ms",
        Gauge,
        "ms",
        "When this session replica was promoted (simulated ms).",
    ),
    def(
        "store_busy_threads",
        Level,
        "threads",
        "Store query threads busy.",
    ),
    def(
        "store_cas_failed_total",
        Counter,
        "count",
        "Compare-and-set writes that found another value.",
    ),
    def(
        "store_checkpoints_total",
        Counter,
        "count",
        "Checkpoints the store wrote.",
    ),
    def(
        "store_commit_latency_ns",
        Histogram,
        "ns",
        "Time from a write's append to the log to its acknowledgement (durable here and, under semi-sync, on a replica).",
    ),
    def(
        "store_detachments_total",
        Counter,
        "count",
        "Times this member was detached from its shard (read-only, not replicating).",
    ),
    def(
        "store_discarded_records_total",
        Counter,
        "count",
        "Diverged records a rejoining member discarded.",
    ),
    def(
        "store_errant_records_total",
        Counter,
        "count",
        "Errant records found on detaching: records the new primary never had.",
    ),
    def(
        "store_errors_total",
        Counter,
        "count",
        "Operations the store answered with an error.",
    ),
    def(
        "store_promotions_total",
        Counter,
        "count",
        "Times this member became its shard's primary.",
    ),
    def(
        "store_purged_records_total",
        Counter,
        "count",
        "Log records purged into checkpoints.",
    ),
    def(
        "store_reads_total",
        Counter,
        "count",
        "Reads the store served.",
    ),
    def(
        "store_reclones_total",
        Counter,
        "count",
        "Times this member installed its primary's state (a re-clone).",
    ),
    def(
        "store_recovered_records_total",
        Counter,
        "count",
        "Records replayed from the log at start-up.",
    ),
    def(
        "store_redirects_total",
        Counter,
        "count",
        "Operations redirected to the shard's primary.",
    ),
    def(
        "store_refused_total",
        Counter,
        "count",
        "Operations refused (not primary, fenced, or over capacity).",
    ),
    def(
        "store_replication_lag_ns",
        Histogram,
        "ns",
        "How far replicas trailed the primary when they applied a record.",
    ),
    def(
        "store_semi_sync_fallbacks_total",
        Counter,
        "count",
        "Times the semi-sync primary fell back to asynchronous replication.",
    ),
    def(
        "store_syncs_total",
        Counter,
        "count",
        "Log syncs the store waited for.",
    ),
    def(
        "store_write_latency_ns",
        Histogram,
        "ns",
        "Time from a write request's arrival at the store (before its query's CPU time) to its acknowledgement.",
    ),
    def(
        "store_writes_total",
        Counter,
        "count",
        "Writes the store acknowledged.",
    ),
];

/// The catalogue's entry for `name`.
pub fn find(name: &str) -> Option<&'static Def> {
    CATALOG.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_150_metrics_with_units_last_and_a_help_each() {
        assert!(CATALOG.len() >= 150, "{} metrics", CATALOG.len());
        for (i, d) in CATALOG.iter().enumerate() {
            assert!(!d.help.is_empty() && d.help.ends_with('.'), "{}", d.name);
            assert!(d
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            if i > 0 {
                assert!(
                    CATALOG[i - 1].name < d.name,
                    "sorted, no duplicates: {}",
                    d.name
                );
            }
            if d.kind == Kind::Counter {
                assert!(
                    d.name.ends_with("_total") || d.name.ends_with("_sum"),
                    "{}",
                    d.name
                );
            }
            if d.kind == Kind::Histogram {
                assert!(d.name.ends_with("_ns"), "{}", d.name);
            }
        }
    }
}
