//! Prometheus metrics. Label values come only from configured tenant ids, the fixed error-code
//! list and fixed outcome names, never from request content, so cardinality is bounded by the
//! configuration. By default no family multiplies tenants by anything but a fixed handful of
//! values, so a fleet of 10,000 tenants stays O(tenants + codes) series ([`MetricsSettings`]).

use crate::config::MetricsSettings;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::saml::Code;

/// Label used for requests naming a tenant that is not configured (request content must never
/// become a label value).
pub const UNKNOWN_TENANT: &str = "-";

pub struct Metrics {
    registry: Registry,
    settings: MetricsSettings,
    validations: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    payload_bytes: Histogram,
    in_flight: IntGauge,
    replay_entries: IntGauge,
    replay_hits: IntCounter,
    certificate_expiry: IntGaugeVec,
    reloads: IntCounterVec,
    metadata_refreshes: IntCounterVec,
    key_cache: IntCounterVec,
    metadata_last_success: IntGaugeVec,
    tenants: IntGaugeVec,
    tenant_files: IntCounterVec,
    diagnoses: IntCounterVec,
    /// `saml_logout_validations_total{outcome, code}`: Single Logout messages judged.
    logout_validations: IntCounterVec,
    /// Registered only with a shared replay store: a memory store has no store to be up.
    replay_store: std::sync::OnceLock<ReplayStoreMetrics>,
}

/// `saml_replay_store_*`: the shared replay store's operations.
struct ReplayStoreMetrics {
    operations: IntCounterVec,
    duration: Histogram,
    up: IntGauge,
    fallbacks: IntCounter,
    eviction_policy_safe: IntGauge,
    losses: IntCounterVec,
    judgements: IntCounterVec,
    quarantine_until: IntGauge,
}

/// How one replay-store operation ended, as `saml_replay_store_operations_total{result}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreResult {
    Stored,
    Replayed,
    Error,
    Timeout,
}

impl StoreResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreResult::Stored => "stored",
            StoreResult::Replayed => "replayed",
            StoreResult::Error => "error",
            StoreResult::Timeout => "timeout",
        }
    }
}

/// From 100 µs (loopback) to the largest `timeout_ms` worth distinguishing.
const STORE_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Buckets from 20 µs (an in-process validation) to 50 ms (an overloaded replica).
const DURATION_BUCKETS: &[f64] = &[0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05];
const PAYLOAD_BUCKETS: &[f64] =
    &[1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0, 131072.0, 262144.0, 524288.0, 1048576.0];

fn must<T>(result: prometheus::Result<T>) -> T {
    // Metric definitions are static; a failure here is a programming error caught by tests.
    #[allow(clippy::expect_used)]
    result.expect("static metric definition")
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::with_settings(&MetricsSettings::default())
    }

    pub fn with_settings(settings: &MetricsSettings) -> Metrics {
        let registry = Registry::new();
        let validation_labels: &[&str] =
            if settings.per_tenant_codes { &["tenant", "outcome", "code"] } else { &["tenant", "outcome"] };
        let validations = must(IntCounterVec::new(
            Opts::new(
                "saml_validations_total",
                "Validations by tenant and outcome (valid, rejected, error); by code too with [metrics] per_tenant_codes.",
            ),
            validation_labels,
        ));
        let errors = must(IntCounterVec::new(
            Opts::new("saml_validation_errors_total", "Refused validations by error code, over every tenant."),
            &["code"],
        ));
        let duration_labels: &[&str] = if settings.per_tenant_durations { &["tenant"] } else { &[] };
        let duration = must(HistogramVec::new(
            HistogramOpts::new("saml_validation_duration_seconds", "Time from request received to verdict.")
                .buckets(DURATION_BUCKETS.to_vec()),
            duration_labels,
        ));
        let payload_bytes = must(Histogram::with_opts(
            HistogramOpts::new("saml_request_payload_bytes", "Size of validation request bodies.")
                .buckets(PAYLOAD_BUCKETS.to_vec()),
        ));
        let in_flight = must(IntGauge::new("saml_inflight_requests", "Validations in progress."));
        let replay_entries =
            must(IntGauge::new("saml_replay_cache_entries", "Assertion IDs remembered for replay detection."));
        let replay_hits =
            must(IntCounter::new("saml_replay_hits_total", "Assertions refused because they were already used."));
        let expiry_labels: &[&str] = if settings.per_certificate_expiry { &["tenant", "sha256"] } else { &["tenant"] };
        let certificate_expiry = must(IntGaugeVec::new(
            Opts::new(
                "saml_certificate_expiry_seconds",
                "Seconds until the tenant's soonest-expiring trusted IdP certificate expires (negative: expired); per certificate with [metrics] per_certificate_expiry.",
            ),
            expiry_labels,
        ));
        let reloads = must(IntCounterVec::new(
            Opts::new("saml_config_reloads_total", "Configuration reloads by result (success, failure)."),
            &["result"],
        ));
        // By result only: a fleet's failing tenants are in saml_tenants{state="unavailable"},
        // saml_metadata_last_success_timestamp_seconds and GET /v1/tenants/{id}.
        let metadata_refreshes = must(IntCounterVec::new(
            Opts::new(
                "saml_metadata_refreshes_total",
                "IdP metadata loads by result (success, failure), over every tenant.",
            ),
            &["result"],
        ));
        for result in ["success", "failure"] {
            metadata_refreshes.with_label_values(&[result]);
        }
        let (tenants, tenant_files) = fleet_families();
        let key_cache = must(IntCounterVec::new(
            Opts::new(
                "saml_key_cache_lookups_total",
                "Parsed-key cache lookups on metadata refresh by result (hit: identical document, keys reused).",
            ),
            &["result"],
        ));
        key_cache.with_label_values(&["hit"]);
        key_cache.with_label_values(&["miss"]);
        let metadata_last_success = must(IntGaugeVec::new(
            Opts::new(
                "saml_metadata_last_success_timestamp_seconds",
                "Unix time when each tenant's metadata keys were last loaded successfully.",
            ),
            &["tenant"],
        ));
        // Both series exist from the start, so a "failure > 0" alert has something to compare.
        reloads.with_label_values(&["success"]);
        reloads.with_label_values(&["failure"]);
        register_build_info(&registry);
        let (logout_validations, diagnoses) = (logout_family(&registry), diagnosis_family(&registry));
        for collector in [
            Box::new(validations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(payload_bytes.clone()),
            Box::new(in_flight.clone()),
            Box::new(replay_entries.clone()),
            Box::new(replay_hits.clone()),
            Box::new(certificate_expiry.clone()),
            Box::new(reloads.clone()),
            Box::new(metadata_refreshes.clone()),
            Box::new(key_cache.clone()),
            Box::new(metadata_last_success.clone()),
            Box::new(errors.clone()),
            Box::new(tenants.clone()),
            Box::new(tenant_files.clone()),
        ] {
            must(registry.register(collector));
        }
        Metrics {
            registry,
            settings: settings.clone(),
            validations,
            errors,
            duration,
            payload_bytes,
            in_flight,
            replay_entries,
            replay_hits,
            certificate_expiry,
            reloads,
            metadata_refreshes,
            key_cache,
            metadata_last_success,
            tenants,
            tenant_files,
            diagnoses,
            logout_validations,
            replay_store: std::sync::OnceLock::new(),
        }
    }

    /// Registers the `saml_replay_store_*` series (once; later calls do nothing).
    pub fn enable_replay_store(&self) {
        self.replay_store.get_or_init(|| {
            let operations = must(IntCounterVec::new(
                Opts::new(
                    "saml_replay_store_operations_total",
                    "Shared replay store operations by result (stored, replayed, error, timeout).",
                ),
                &["result"],
            ));
            for result in [StoreResult::Stored, StoreResult::Replayed, StoreResult::Error, StoreResult::Timeout] {
                operations.with_label_values(&[result.as_str()]);
            }
            let duration = must(Histogram::with_opts(
                HistogramOpts::new("saml_replay_store_duration_seconds", "Time of one shared replay store operation.")
                    .buckets(STORE_BUCKETS.to_vec()),
            ));
            let up = must(IntGauge::new(
                "saml_replay_store_up",
                "1 while the last shared replay store operation succeeded, else 0.",
            ));
            let fallbacks = must(IntCounter::new(
                "saml_replay_store_fallbacks_total",
                "Assertions recorded in this process only because the shared store was unavailable (allow_memory_fallback_when_unavailable).",
            ));
            let eviction_policy_safe = must(IntGauge::new(
                "saml_replay_store_eviction_policy_safe",
                "1 while the store's maxmemory-policy is noeviction (no record can be evicted), 0 otherwise or not yet known.",
            ));
            let losses = must(IntCounterVec::new(
                Opts::new(
                    "saml_replay_store_losses_total",
                    "Losses of the shared store's records detected, by reason (marker_missing, marker_rewound, restart, failover, evictions, script_cache_lost).",
                ),
                &["reason"],
            ));
            let judgements = must(IntCounterVec::new(
                Opts::new(
                    "saml_replay_store_judgements_total",
                    "Store servers judged (markers and identity read, any loss declared), by who did it: probe (a new connection, every second) or record (a record that found its server unjudged: restarted, promoted or flushed since the last probe).",
                ),
                &["by"],
            ));
            for by in ["probe", "record"] {
                judgements.with_label_values(&[by]);
            }
            let quarantine_until = must(IntGauge::new(
                "saml_replay_store_quarantine_until_seconds",
                "Unix time until which assertions issued before the last detected loss are refused (replay_state_lost); 0 when none is in force.",
            ));
            for collector in [
                Box::new(operations.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(duration.clone()),
                Box::new(up.clone()),
                Box::new(fallbacks.clone()),
                Box::new(eviction_policy_safe.clone()),
                Box::new(losses.clone()),
                Box::new(judgements.clone()),
                Box::new(quarantine_until.clone()),
            ] {
                must(self.registry.register(collector));
            }
            ReplayStoreMetrics {
                operations,
                duration,
                up,
                fallbacks,
                eviction_policy_safe,
                losses,
                judgements,
                quarantine_until,
            }
        });
    }

    /// Records one shared replay store operation (after [`Metrics::enable_replay_store`]).
    pub fn replay_store_operation(&self, result: StoreResult, elapsed: Duration) {
        if let Some(store) = self.replay_store.get() {
            store.operations.with_label_values(&[result.as_str()]).inc();
            store.duration.observe(elapsed.as_secs_f64());
            store.up.set(i64::from(matches!(result, StoreResult::Stored | StoreResult::Replayed)));
        }
    }

    pub fn replay_store_up(&self, up: bool) {
        if let Some(store) = self.replay_store.get() {
            store.up.set(i64::from(up));
        }
    }

    pub fn replay_store_eviction_policy_safe(&self, safe: bool) {
        if let Some(store) = self.replay_store.get() {
            store.eviction_policy_safe.set(i64::from(safe));
        }
    }

    /// One detected loss of the store's records; `reason` is a fixed name.
    pub fn replay_store_loss(&self, reason: &'static str, quarantine_until_unix: i64) {
        if let Some(store) = self.replay_store.get() {
            store.losses.with_label_values(&[reason]).inc();
            store.quarantine_until.set(quarantine_until_unix);
        }
    }

    /// One judgement of a store server; `by` is `probe` or `record`.
    pub fn replay_store_judged(&self, by: &'static str) {
        if let Some(store) = self.replay_store.get() {
            store.judgements.with_label_values(&[by]).inc();
        }
    }

    pub fn replay_store_quarantine_until(&self, unix: i64) {
        if let Some(store) = self.replay_store.get() {
            store.quarantine_until.set(unix);
        }
    }

    pub fn replay_store_fallback(&self) {
        if let Some(store) = self.replay_store.get() {
            store.fallbacks.inc();
        }
    }

    /// Records one finished validation. `tenant` must be a configured id or [`UNKNOWN_TENANT`];
    /// `outcome` and `code` are fixed names (`valid`/`none`, or the error table's outcome and
    /// label).
    pub fn observe(&self, tenant: &str, outcome: &str, code: &str, elapsed: Duration, payload_bytes: usize) {
        if code == Code::Replayed.as_str() {
            self.replay_hits.inc();
        }
        if self.settings.per_tenant_codes {
            self.validations.with_label_values(&[tenant, outcome, code]).inc();
        } else {
            self.validations.with_label_values(&[tenant, outcome]).inc();
        }
        if code != "none" {
            self.errors.with_label_values(&[code]).inc();
        }
        if self.settings.per_tenant_durations {
            self.duration.with_label_values(&[tenant]).observe(elapsed.as_secs_f64());
        } else {
            self.duration.with_label_values(&[]).observe(elapsed.as_secs_f64());
        }
        self.payload_bytes.observe(payload_bytes as f64);
    }

    /// Records one judged logout message: `outcome` and `code` as in [`Metrics::observe`]
    /// (fixed names from the error table, never request content).
    pub fn observe_logout(&self, outcome: &str, code: &str) {
        self.logout_validations.with_label_values(&[outcome, code]).inc();
    }

    pub fn metadata_refreshed(&self, success: bool) {
        self.metadata_refreshes.with_label_values(&[if success { "success" } else { "failure" }]).inc();
    }

    /// One diagnosis: `passes`, `fails` or `error`. Counted apart from validations: it never
    /// accepts a login.
    pub fn diagnosis(&self, outcome: &'static str) {
        self.diagnoses.with_label_values(&[outcome]).inc();
    }

    /// One `tenants_dir` file change applied: `loaded`, `removed` or `refused`.
    pub fn tenant_file(&self, result: &'static str) {
        self.tenant_files.with_label_values(&[result]).inc();
    }

    /// Drops the series of a tenant that no longer exists, so churn in a fleet does not
    /// accumulate series until the next restart.
    pub fn forget_tenant(&self, tenant: &str) {
        let outcomes = ["valid", "rejected", "error"];
        if self.settings.per_tenant_codes {
            for outcome in outcomes {
                for code in Code::ALL {
                    let _ = self.validations.remove_label_values(&[tenant, outcome, code.as_str()]);
                }
                let _ = self.validations.remove_label_values(&[tenant, outcome, "none"]);
            }
        } else {
            for outcome in outcomes {
                let _ = self.validations.remove_label_values(&[tenant, outcome]);
            }
        }
        if self.settings.per_tenant_durations {
            let _ = self.duration.remove_label_values(&[tenant]);
        }
    }

    pub fn key_cache(&self, hit: bool) {
        self.key_cache.with_label_values(&[if hit { "hit" } else { "miss" }]).inc();
    }

    pub fn reloaded(&self, success: bool) {
        self.reloads.with_label_values(&[if success { "success" } else { "failure" }]).inc();
    }

    pub fn in_flight(&self) -> &IntGauge {
        &self.in_flight
    }

    /// Prometheus text exposition, with the point-in-time gauges set from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        self.replay_entries.set(i64::try_from(snapshot.replay_entries).unwrap_or(i64::MAX));
        self.certificate_expiry.reset();
        self.metadata_last_success.reset();
        for (tenant, loaded) in &snapshot.metadata_loaded {
            self.metadata_last_success.with_label_values(&[tenant]).set(*loaded);
        }
        if self.settings.per_certificate_expiry {
            for certificate in &snapshot.certificates {
                let fingerprint = &certificate.sha256_fingerprint;
                self.certificate_expiry
                    .with_label_values(&[&certificate.tenant, &fingerprint[..16.min(fingerprint.len())]])
                    .set(certificate.seconds_until_expiry);
            }
        } else {
            let mut soonest: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
            for certificate in &snapshot.certificates {
                let seconds = soonest.entry(certificate.tenant.as_str()).or_insert(i64::MAX);
                *seconds = (*seconds).min(certificate.seconds_until_expiry);
            }
            for (tenant, seconds) in soonest {
                self.certificate_expiry.with_label_values(&[tenant]).set(seconds);
            }
        }
        for (state, count) in &snapshot.tenant_states {
            self.tenants.with_label_values(&[state]).set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Point-in-time facts for the gauges, gathered by the caller at scrape time.
#[derive(Default)]
pub struct Snapshot {
    pub replay_entries: u64,
    /// (tenant, Unix time its metadata keys were last loaded).
    pub metadata_loaded: Vec<(String, i64)>,
    pub certificates: Vec<CertificateExpiry>,
    /// (state, tenants in it): every state is listed, zero or not.
    pub tenant_states: Vec<(&'static str, usize)>,
}

pub struct CertificateExpiry {
    pub tenant: String,
    pub sha256_fingerprint: String,
    /// Negative once expired; 0 when the certificate states no expiry.
    pub seconds_until_expiry: i64,
}

/// `saml_tenants{state}` and `saml_tenant_file_reloads_total{result}`: the fleet's health.
/// `saml_logout_validations_total`, with its `valid` series at zero from the start (so that it
/// is exported, and a rate over it has something to compare, before the first logout).
fn logout_family(registry: &Registry) -> IntCounterVec {
    let family = must(IntCounterVec::new(
        Opts::new(
            "saml_logout_validations_total",
            "Logout messages judged (POST /v1/logout/validate, ValidateLogout) by outcome and code.",
        ),
        &["outcome", "code"],
    ));
    family.with_label_values(&["valid", "none"]);
    must(registry.register(Box::new(family.clone())));
    family
}

fn fleet_families() -> (IntGaugeVec, IntCounterVec) {
    let tenants = must(IntGaugeVec::new(
        Opts::new(
            "saml_tenants",
            "Configured tenants by state: ok, pending (metadata not tried yet), unavailable (metadata never loaded), config_error (tenant file refused).",
        ),
        &["state"],
    ));
    let tenant_files = must(IntCounterVec::new(
        Opts::new(
            "saml_tenant_file_reloads_total",
            "tenants_dir file changes applied by result (loaded, removed, refused).",
        ),
        &["result"],
    ));
    for result in ["loaded", "removed", "refused"] {
        tenant_files.with_label_values(&[result]);
    }
    (tenants, tenant_files)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `saml_diagnoses_total`, every outcome present from the start, registered.
fn diagnosis_family(registry: &Registry) -> IntCounterVec {
    let diagnoses = must(IntCounterVec::new(
        Opts::new(
            "saml_diagnoses_total",
            "POST /v1/diagnose (and gRPC Diagnose, CLI diagnose) by outcome: passes, fails (a check failed), error (bad input).",
        ),
        &["outcome"],
    ));
    for outcome in ["passes", "fails", "error"] {
        diagnoses.with_label_values(&[outcome]);
    }
    must(registry.register(Box::new(diagnoses.clone())));
    diagnoses
}

/// `saml_build_info{version, revision} 1`, registered.
fn register_build_info(registry: &Registry) {
    let build_info = must(IntGaugeVec::new(
        Opts::new("saml_build_info", "Version and git revision of the running binary."),
        &["version", "revision"],
    ));
    build_info
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            option_env!("SAML_VALIDATOR_GIT_REVISION").unwrap_or("unknown"),
        ])
        .set(1);
    must(registry.register(Box::new(build_info)));
}
