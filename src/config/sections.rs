//! The service-wide sections: `[server]` (and `[server.tls]`), `[logging]`, `[limits]`,
//! `[[callers]]` and `[metadata]`.

use std::collections::HashSet;
use std::path::Path;

use toml::Table;

use super::callers::{self, Caller, Callers};
use super::metadata::MetadataSettings;
use super::reader::Reader;
use super::tls::{self, TlsConfig};
use crate::saml::Limits;

/// Listener and resource settings.
/// `[metrics]`: the per-tenant detail that multiplies series by the fleet size. Off by default;
/// for small fleets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `saml_validations_total` by tenant × outcome × code (else tenant × outcome, with the
    /// codes in `saml_validation_errors_total{code}`).
    pub per_tenant_codes: bool,
    /// `saml_validation_duration_seconds` by tenant (else one histogram).
    pub per_tenant_durations: bool,
    /// `saml_certificate_expiry_seconds` by tenant × certificate (else each tenant's soonest).
    pub per_certificate_expiry: bool,
}

/// `[diagnostics]`: what each replica remembers about recent logins, in memory only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagnosticsSettings {
    /// Failed validations kept per configured tenant (`GET /v1/tenants/{id}/failures`); 0
    /// keeps none (the last hour's failure count is kept regardless).
    pub failures_per_tenant: usize,
    /// Failed validations kept in all, over every tenant; the oldest go first. Without it a
    /// flood of refusals sprayed over a large fleet would hold up to `failures_per_tenant` ×
    /// tenants entries of up to a few kilobytes each on every replica.
    pub failures_total: usize,
}

impl Default for DiagnosticsSettings {
    fn default() -> Self {
        DiagnosticsSettings { failures_per_tenant: 50, failures_total: 20_000 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub http_addr: String,
    /// Largest accepted HTTP request body.
    pub max_body_bytes: usize,
    /// Validations running at once before new ones get 503 `overloaded`.
    pub max_concurrent_validations: usize,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Assertion IDs remembered for replay detection.
    pub replay_cache_capacity: u64,
    /// Serve `/metrics` on this separate address instead of the HTTP port.
    pub metrics_addr: Option<String>,
    /// gRPC listener address; gRPC is off when unset.
    pub grpc_addr: Option<String>,
    /// How often `serve` checks the configuration file for changes (0: only on SIGHUP).
    pub config_poll_seconds: u64,
    /// `[server.tls]`: TLS on every listener; plain TCP when unset.
    pub tls: Option<TlsConfig>,
    /// Request-body bytes all HTTP connections may hold at once (declared or received); beyond
    /// it a request gets 503 `overloaded` instead of the process growing with slow uploads.
    pub max_inflight_body_bytes: usize,
    /// Open connections per HTTP listener; beyond it new connections wait in the kernel's
    /// backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_addr: "127.0.0.1:8080".into(),
            max_body_bytes: 512 * 1024,
            max_concurrent_validations: 256,
            workers: 0,
            replay_cache_capacity: 1_000_000,
            metrics_addr: None,
            grpc_addr: None,
            config_poll_seconds: 2,
            tls: None,
            max_inflight_body_bytes: 24 * 1024 * 1024,
            max_connections: 4096,
        }
    }
}

/// `[logging]`: what the service writes about each validation.
#[derive(Clone, Debug, Default)]
pub struct LoggingConfig {
    /// Filter such as "info" or "saml_validator=debug,actix_server=warn" (RUST_LOG overrides).
    pub level: Option<String>,
    /// "json", "text", or unset: JSON unless standard error is a terminal.
    pub format: Option<String>,
    /// DEBUG ONLY. When set, each validation's log event carries a salted SHA-256 of the NameID
    /// so one user's logins can be correlated. Never the NameID itself.
    pub debug_log_name_id_hash_salt: Option<String>,
}

pub(super) fn read_server(table: Option<&Table>, base: &Path, problems: &mut Vec<String>) -> ServerConfig {
    let defaults = ServerConfig::default();
    let Some(table) = table else { return defaults };
    let mut r = Reader::new(table, "server".into(), problems);
    let http_addr = r.string("http_addr").unwrap_or(defaults.http_addr);
    if http_addr.parse::<std::net::SocketAddr>().is_err() {
        r.problem("http_addr", format!("{http_addr:?} is not an address like 127.0.0.1:8080"));
    }
    let mut server = ServerConfig {
        http_addr,
        max_body_bytes: r.integer("max_body_bytes", defaults.max_body_bytes as i64, 1024..=16 * 1024 * 1024) as usize,
        max_concurrent_validations: r.integer(
            "max_concurrent_validations",
            defaults.max_concurrent_validations as i64,
            1..=100_000,
        ) as usize,
        workers: r.integer("workers", 0, 0..=1024) as usize,
        replay_cache_capacity: r.integer(
            "replay_cache_capacity",
            defaults.replay_cache_capacity as i64,
            1_000..=100_000_000,
        ) as u64,
        metrics_addr: r.string("metrics_addr"),
        grpc_addr: r.string("grpc_addr"),
        config_poll_seconds: r.integer("config_poll_seconds", defaults.config_poll_seconds as i64, 0..=3600) as u64,
        tls: None,
        max_inflight_body_bytes: r.integer(
            "max_inflight_body_bytes",
            defaults.max_inflight_body_bytes as i64,
            64 * 1024..=64 * 1024 * 1024 * 1024,
        ) as usize,
        max_connections: r.integer("max_connections", defaults.max_connections as i64, 1..=1_000_000) as usize,
    };
    if server.max_inflight_body_bytes < server.max_body_bytes {
        r.problem(
            "max_inflight_body_bytes",
            format!(
                "{} is below max_body_bytes ({}): no request of the largest allowed size could ever be read",
                server.max_inflight_body_bytes, server.max_body_bytes
            ),
        );
    }
    let tls_table = r.table("tls");
    for (key, value) in [("metrics_addr", &server.metrics_addr), ("grpc_addr", &server.grpc_addr)] {
        if let Some(addr) = value {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                r.problem(key, format!("{addr:?} is not an address like 127.0.0.1:9090"));
            }
        }
    }
    r.finish();
    server.tls = tls_table.and_then(|table| read_tls(&table, base, problems));
    server
}

fn read_tls(table: &Table, base: &Path, problems: &mut Vec<String>) -> Option<TlsConfig> {
    let mut r = Reader::new(table, "server.tls".into(), problems);
    let certificate_file = r.required_string("certificate_file").map(|p| base.join(p));
    let private_key_file = r.required_string("private_key_file").map(|p| base.join(p));
    let client_ca_file = r.string("client_ca_file").map(|p| base.join(p));
    let allow_any_client_certificate = r.boolean("allow_any_client_certificate", false);
    if allow_any_client_certificate && client_ca_file.is_none() {
        r.problem("allow_any_client_certificate", "only means something with client_ca_file (mutual TLS)");
    }
    let config = match (certificate_file, private_key_file) {
        (Some(certificate_file), Some(private_key_file)) => {
            Some(TlsConfig { certificate_file, private_key_file, client_ca_file, allow_any_client_certificate })
        }
        _ => None,
    };
    // Load the files now: a certificate that cannot serve fails check-config and start-up,
    // not the first handshake.
    if let Some(config) = &config {
        if let Err(e) = tls::server_context(config, tls::ClientCertificates::Optional) {
            r.problems.push(format!("server.tls: {e}"));
        }
    }
    r.finish();
    config
}

pub(super) fn read_logging(table: Option<&Table>, problems: &mut Vec<String>) -> LoggingConfig {
    let Some(table) = table else {
        return LoggingConfig::default();
    };
    let mut r = Reader::new(table, "logging".into(), problems);
    let logging = LoggingConfig {
        level: r.string("level"),
        format: r.string("format"),
        debug_log_name_id_hash_salt: r.string("debug_log_name_id_hash_salt"),
    };
    if let Some(level) = &logging.level {
        if tracing_subscriber::EnvFilter::try_new(level).is_err() {
            r.problem("level", format!("{level:?} is not a log filter such as \"info\""));
        }
    }
    if let Some(format) = &logging.format {
        if format != "json" && format != "text" {
            r.problem("format", format!("{format:?} must be \"json\" or \"text\""));
        }
    }
    r.finish();
    logging
}

pub(super) fn read_limits(table: Option<&Table>, problems: &mut Vec<String>) -> Limits {
    let d = Limits::default();
    let Some(table) = table else { return d };
    let mut r = Reader::new(table, "limits".into(), problems);
    let limits = Limits {
        max_document_bytes: r.integer("max_document_bytes", d.max_document_bytes as i64, 1024..=8 * 1024 * 1024)
            as usize,
        max_depth: r.integer("max_depth", d.max_depth as i64, 8..=256) as usize,
        max_nodes: r.integer("max_nodes", d.max_nodes as i64, 100..=1_000_000) as usize,
        max_attributes_per_element: r.integer(
            "max_attributes_per_element",
            d.max_attributes_per_element as i64,
            4..=1024,
        ) as usize,
        max_namespace_declarations_per_element: r.integer(
            "max_namespace_declarations_per_element",
            d.max_namespace_declarations_per_element as i64,
            1..=256,
        ) as usize,
        max_namespace_declarations: r.integer(
            "max_namespace_declarations",
            d.max_namespace_declarations as i64,
            4..=4096,
        ) as usize,
        max_rsa_decryptions: r.integer("max_rsa_decryptions", d.max_rsa_decryptions as i64, 1..=1024) as usize,
        // Set from `[replay]`, where it bounds the record's life.
        max_assertion_age_seconds: d.max_assertion_age_seconds,
    };
    r.finish();
    limits
}

pub(super) fn read_callers(
    tables: &[Table],
    tenant_ids: &HashSet<String>,
    mutual_tls: bool,
    problems: &mut Vec<String>,
) -> Callers {
    let mut callers = Vec::new();
    let mut names = HashSet::new();
    let mut hashes = HashSet::new();
    let mut fingerprints = HashSet::new();
    for (index, table) in tables.iter().enumerate() {
        let mut r = Reader::new(table, format!("callers[{index}]"), problems);
        let name = r.required_string("name");
        let hash = r.string("token_sha256");
        let fingerprint_text = r.string("client_certificate_sha256");
        let fingerprint = fingerprint_text.as_deref().and_then(callers::parse_fingerprint);
        if fingerprint_text.is_some() && fingerprint.is_none() {
            r.problem(
                "client_certificate_sha256",
                "must be the SHA-256 fingerprint of the client certificate (64 hex digits, colons allowed), e.g. `openssl x509 -noout -fingerprint -sha256 -in client.pem`",
            );
        }
        if fingerprint_text.is_some() && !mutual_tls {
            r.problem("client_certificate_sha256", "needs mutual TLS: set [server.tls] client_ca_file");
        }
        if hash.is_none() && fingerprint_text.is_none() && !r.table.contains_key("token_sha256") {
            r.problem("token_sha256", "a caller needs token_sha256, client_certificate_sha256, or both");
        }
        let tenants = r.table.contains_key("tenants").then(|| r.strings("tenants"));
        let digest = hash.as_deref().and_then(callers::parse_fingerprint);
        if hash.is_some() && digest.is_none() {
            r.problem(
                "token_sha256",
                "must be the 64 hex digits of SHA-256(token), e.g. `printf %s \"$TOKEN\" | sha256sum`",
            );
        }
        for tenant in tenants.iter().flatten() {
            if !tenant_ids.contains(tenant) {
                r.problem("tenants", format!("{tenant:?} is not a configured tenant"));
            }
        }
        if let Some(name) = &name {
            if !names.insert(name.clone()) {
                r.problem("name", format!("duplicate caller {name:?}"));
            }
        }
        if let Some(digest) = digest {
            if !hashes.insert(digest) {
                r.problem("token_sha256", "two callers share a token");
            }
        }
        if let Some(fingerprint) = fingerprint {
            if !fingerprints.insert(fingerprint) {
                // One certificate, one identity: which caller's tenants would apply otherwise?
                r.problem("client_certificate_sha256", "two callers share a client certificate");
            }
        }
        r.finish();
        if let Some(name) = name {
            if digest.is_some() || fingerprint.is_some() {
                callers.push(Caller::new(name, digest, fingerprint, tenants));
            }
        }
    }
    Callers::new(callers, mutual_tls)
}

pub(super) fn read_metadata_settings(table: Option<&Table>, problems: &mut Vec<String>) -> MetadataSettings {
    let d = MetadataSettings::default();
    let Some(table) = table else { return d };
    let mut r = Reader::new(table, "metadata".into(), problems);
    let settings = MetadataSettings {
        allowed_hosts: r.strings("allowed_hosts"),
        timeout_seconds: r.integer("timeout_seconds", d.timeout_seconds as i64, 1..=120) as u64,
        max_bytes: r.integer("max_bytes", d.max_bytes as i64, 1024..=16 * 1024 * 1024) as usize,
        refresh_seconds: r.integer("refresh_seconds", d.refresh_seconds as i64, 10..=7 * 86_400) as u64,
        min_refresh_seconds: r.integer("min_refresh_seconds", d.min_refresh_seconds as i64, 1..=86_400) as u64,
        max_refresh_seconds: r.integer("max_refresh_seconds", d.max_refresh_seconds as i64, 10..=30 * 86_400) as u64,
        max_staleness_seconds: r.integer("max_staleness_seconds", d.max_staleness_seconds as i64, 60..=90 * 86_400)
            as u64,
        on_demand_min_interval_seconds: r.integer(
            "on_demand_min_interval_seconds",
            d.on_demand_min_interval_seconds as i64,
            1..=86_400,
        ) as u64,
        expiry_warning_days: r.integer("expiry_warning_days", d.expiry_warning_days, 1..=365),
        max_concurrent_fetches: r.integer("max_concurrent_fetches", d.max_concurrent_fetches as i64, 1..=256) as usize,
    };
    if settings.min_refresh_seconds > settings.max_refresh_seconds {
        r.problem("min_refresh_seconds", "must not exceed max_refresh_seconds");
    }
    r.finish();
    settings
}

/// `[metrics]`: how much detail per tenant the series carry (their count must stay
/// O(tenants + codes) for fleets of thousands of tenants).
pub(super) fn read_metrics(table: Option<&Table>, problems: &mut Vec<String>) -> MetricsSettings {
    let d = MetricsSettings::default();
    let Some(table) = table else { return d };
    let mut r = Reader::new(table, "metrics".into(), problems);
    let settings = MetricsSettings {
        per_tenant_codes: r.boolean("per_tenant_codes", d.per_tenant_codes),
        per_tenant_durations: r.boolean("per_tenant_durations", d.per_tenant_durations),
        per_certificate_expiry: r.boolean("per_certificate_expiry", d.per_certificate_expiry),
    };
    r.finish();
    settings
}

/// `[diagnostics]`.
pub(super) fn read_diagnostics(table: Option<&Table>, problems: &mut Vec<String>) -> DiagnosticsSettings {
    let d = DiagnosticsSettings::default();
    let Some(table) = table else { return d };
    let mut r = Reader::new(table, "diagnostics".into(), problems);
    let settings = DiagnosticsSettings {
        failures_per_tenant: r.integer("failures_per_tenant", d.failures_per_tenant as i64, 0..=1000) as usize,
        failures_total: r.integer("failures_total", d.failures_total as i64, 0..=1_000_000) as usize,
    };
    r.finish();
    settings
}
