//! The TOML configuration: read and validated completely at load, every problem reported
//! together, unknown keys refused. A bad file never starts (or, later, replaces) a service.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::auth::{Caller, Callers};
use crate::metadata_fetch::{Fetcher, MetadataSettings};
use crate::saml::keys::TrustedKey;
use crate::saml::metadata::{self, MetadataPolicy};
use crate::saml::{AttributeMapping, Limits, TenantPolicy};
use crate::tls::{self, TlsConfig};

/// Listener and resource settings.
#[derive(Clone, Debug)]
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

#[derive(Clone, Debug)]
pub struct TenantConfig {
    pub id: String,
    pub policy: TenantPolicy,
    /// Where the metadata-sourced keys came from, when the tenant uses metadata.
    pub metadata: Option<MetadataStatus>,
    /// `metadata_url`, refreshed in the background by `serve`.
    pub metadata_url: Option<String>,
    /// Keys that verify the metadata document itself (`metadata_signing_certificate`).
    pub metadata_signing_keys: Vec<TrustedKey>,
    /// Keys from `certificates` and `certificate_files`, which refreshes never remove.
    pub static_keys: Vec<TrustedKey>,
}

/// The last metadata load of a tenant, for `GET /v1/tenants/{id}`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetadataStatus {
    pub source: String,
    pub entity_id: String,
    pub signature_verified: bool,
    pub valid_until: Option<String>,
    pub cache_duration_seconds: Option<u64>,
    /// When the keys in use were loaded.
    pub loaded_at: String,
    /// "ok", or why the last attempt failed (the keys from `loaded_at` stay in use until
    /// `max_staleness_seconds`).
    pub result: String,
    /// When the last fetch was attempted.
    pub last_attempt: String,
    /// When the next background refresh is due (URL sources).
    pub next_refresh: Option<String>,
    #[serde(skip)]
    pub loaded_at_instant: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip)]
    pub next_refresh_instant: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    /// `[[callers]]`: bearer-token callers; authentication is off when empty.
    pub callers: Callers,
    pub logging: LoggingConfig,
    pub metadata: MetadataSettings,
    pub limits: Limits,
    pub tenants: Vec<TenantConfig>,
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the configuration:", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Weakest RSA modulus accepted without `allow_weak_rsa_keys` (NIST SP 800-131A).
const MIN_RSA_BITS: u32 = 2048;
/// Largest clock skew an operator may configure; more would make expiry meaningless.
const MAX_SKEW_SECONDS: i64 = 3600;

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("cannot read {}: {e}", path.display())]))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &base)
    }

    /// Parses configuration text; relative `certificate_files` are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigErrors> {
        let table: Table =
            text.parse().map_err(|e: toml::de::Error| ConfigErrors(vec![format!("not valid TOML: {e}")]))?;
        let mut problems = Vec::new();
        let mut root = Reader::new(&table, String::new(), &mut problems);
        let server_table = root.table("server");
        let limits_table = root.table("limits");
        let logging_table = root.table("logging");
        let metadata_table = root.table("metadata");
        let tenant_tables = root.array_of_tables("tenants");
        let caller_tables = root.array_of_tables("callers");
        root.finish();

        let server = read_server(server_table.as_ref(), base, &mut problems);
        let limits = read_limits(limits_table.as_ref(), &mut problems);
        let logging = read_logging(logging_table.as_ref(), &mut problems);
        let metadata_settings = read_metadata_settings(metadata_table.as_ref(), &mut problems);
        let fetcher = Fetcher::new(&metadata_settings);
        let mut tenants = Vec::new();
        let mut ids = HashSet::new();
        for (index, tenant) in tenant_tables.iter().enumerate() {
            let Some(tenant) = read_tenant(tenant, index, base, &fetcher, &metadata_settings, &mut problems) else {
                continue;
            };
            if !ids.insert(tenant.id.clone()) {
                problems.push(format!("tenants[{index}]: duplicate tenant id {:?}", tenant.id));
            }
            tenants.push(tenant);
        }
        if tenant_tables.is_empty() {
            problems.push("no [[tenants]] configured".into());
        }
        let mutual_tls = server.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
        let callers = read_callers(&caller_tables, &ids, mutual_tls, &mut problems);
        // Mutual TLS with nobody named: every certificate the CA ever issued (often a cluster-wide
        // issuer) would be a caller for every tenant, with no way to revoke one. Say so.
        if mutual_tls
            && caller_tables.is_empty()
            && !server.tls.as_ref().is_some_and(|t| t.allow_any_client_certificate)
        {
            problems.push(
                "server.tls.client_ca_file: no [[callers]] pin client certificates, so any certificate from this CA would be accepted for every tenant; add callers with client_certificate_sha256, or set allow_any_client_certificate = true".into(),
            );
        }
        if problems.is_empty() {
            Ok(Config { server, callers, logging, metadata: metadata_settings, limits, tenants })
        } else {
            Err(ConfigErrors(problems))
        }
    }
}

/// Reads typed keys from one table, recording problems with their path, and reports every key
/// it was never asked about as unknown.
struct Reader<'a> {
    table: &'a Table,
    path: String,
    problems: &'a mut Vec<String>,
    known: BTreeSet<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(table: &'a Table, path: String, problems: &'a mut Vec<String>) -> Self {
        Reader { table, path, problems, known: BTreeSet::new() }
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn problem(&mut self, key: &str, message: impl fmt::Display) {
        let at = self.at(key);
        self.problems.push(format!("{at}: {message}"));
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.insert(key);
        self.table.get(key)
    }

    fn string(&mut self, key: &'static str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if s.trim().is_empty() => {
                self.problem(key, "must not be empty");
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(key, format!("expected a string, found {}", other.type_str()));
                None
            }
        }
    }

    fn required_string(&mut self, key: &'static str) -> Option<String> {
        let value = self.string(key);
        if value.is_none() && !self.table.contains_key(key) {
            self.problem(key, "is required");
        }
        value
    }

    fn boolean(&mut self, key: &'static str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                let found = other.type_str();
                self.problem(key, format!("expected true or false, found {found}"));
                default
            }
        }
    }

    fn integer(&mut self, key: &'static str, default: i64, range: std::ops::RangeInclusive<i64>) -> i64 {
        match self.get(key) {
            None => default,
            Some(Value::Integer(n)) if range.contains(n) => *n,
            Some(Value::Integer(n)) => {
                let n = *n;
                self.problem(key, format!("{n} is outside {}..={}", range.start(), range.end()));
                default
            }
            Some(other) => {
                let found = other.type_str();
                self.problem(key, format!("expected an integer, found {found}"));
                default
            }
        }
    }

    fn strings(&mut self, key: &'static str) -> Vec<String> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            let found = other.type_str();
                            self.problem(&format!("{key}[{i}]"), format!("expected a string, found {found}"));
                        }
                    }
                }
                out
            }
            Some(other) => {
                let found = other.type_str();
                self.problem(key, format!("expected a list of strings, found {found}"));
                Vec::new()
            }
        }
    }

    fn table(&mut self, key: &'static str) -> Option<Table> {
        match self.get(key)? {
            Value::Table(t) => Some(t.clone()),
            other => {
                let found = other.type_str();
                self.problem(key, format!("expected a table, found {found}"));
                None
            }
        }
    }

    fn array_of_tables(&mut self, key: &'static str) -> Vec<Table> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Table(t) => out.push(t.clone()),
                        _ => self.problem(&format!("{key}[{i}]"), "expected a table"),
                    }
                }
                out
            }
            Some(_) => {
                self.problem(key, "expected [[tenants]] tables");
                Vec::new()
            }
        }
    }

    /// Reports keys present in the table that no reader asked for (typos must not be ignored:
    /// `alow_sha1 = false` silently meaning "default" is how relaxations sneak in).
    fn finish(self) {
        for key in self.table.keys() {
            if !self.known.contains(key.as_str()) {
                let at = self.at(key);
                let known = self.known.iter().copied().collect::<Vec<_>>().join(", ");
                self.problems.push(format!("{at}: unknown key (known keys: {known})"));
            }
        }
    }
}

fn read_server(table: Option<&Table>, base: &Path, problems: &mut Vec<String>) -> ServerConfig {
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
    };
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
        if let Err(e) = tls::acceptor(config, &[b"h2"], tls::ClientCertificates::Optional) {
            r.problems.push(format!("server.tls: {e}"));
        }
    }
    r.finish();
    config
}

fn read_logging(table: Option<&Table>, problems: &mut Vec<String>) -> LoggingConfig {
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

fn read_limits(table: Option<&Table>, problems: &mut Vec<String>) -> Limits {
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
    };
    r.finish();
    limits
}

fn read_callers(
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
        let fingerprint = fingerprint_text.as_deref().and_then(tls::parse_fingerprint);
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
        let digest = hash.as_deref().and_then(tls::parse_fingerprint);
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

fn read_metadata_settings(table: Option<&Table>, problems: &mut Vec<String>) -> MetadataSettings {
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
    };
    if settings.min_refresh_seconds > settings.max_refresh_seconds {
        r.problem("min_refresh_seconds", "must not exceed max_refresh_seconds");
    }
    r.finish();
    settings
}

/// Reads and judges a tenant's metadata now (file or URL), as configuration load and reload do.
pub fn load_metadata(
    source: &MetadataSource<'_>,
    fetcher: &Fetcher,
    signing_keys: &[TrustedKey],
    allow_sha1: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<metadata::IdpMetadata, String> {
    let bytes = match source {
        MetadataSource::File(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        MetadataSource::Url(url) => fetcher.fetch(url)?,
    };
    let policy = MetadataPolicy { signing_keys, allow_sha1, now };
    metadata::parse(&bytes, &policy).map_err(|e| e.to_string())
}

pub enum MetadataSource<'a> {
    File(PathBuf),
    Url(&'a str),
}

fn read_tenant(
    table: &Table,
    index: usize,
    base: &Path,
    fetcher: &Fetcher,
    settings: &MetadataSettings,
    problems: &mut Vec<String>,
) -> Option<TenantConfig> {
    let mut r = Reader::new(table, format!("tenants[{index}]"), problems);
    let id = r.required_string("id");
    if let Some(id) = &id {
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || id.len() > 128 {
            r.problem("id", format!("{id:?} may only use letters, digits, '-', '_' and '.' (at most 128)"));
        }
    }
    let metadata_file = r.string("metadata_file");
    let metadata_url = r.string("metadata_url");
    let metadata_signing = r.strings("metadata_signing_certificate");
    // With metadata, the Issuer may come from its entityID; without, it must be configured.
    let has_metadata = metadata_file.is_some() || metadata_url.is_some();
    let idp_entity_id = if has_metadata { r.string("idp_entity_id") } else { r.required_string("idp_entity_id") };
    let sp_entity_id = r.required_string("sp_entity_id");
    let acs_url = r.required_string("acs_url");
    if let Some(url) = &acs_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            r.problem("acs_url", format!("{url:?} must be an absolute http(s) URL"));
        }
    }
    let inline = r.strings("certificates");
    let files = r.strings("certificate_files");
    let clock_skew_seconds = r.integer("clock_skew_seconds", 180, 0..=MAX_SKEW_SECONDS);
    let allow_sha1 = r.boolean("allow_sha1", false);
    let allow_idp_initiated = r.boolean("allow_idp_initiated", false);
    let allow_bare_assertion = r.boolean("allow_bare_assertion", false);
    let allow_missing_authn_statement = r.boolean("allow_missing_authn_statement", false);
    let allow_weak_rsa_keys = r.boolean("allow_weak_rsa_keys", false);
    let mapping_table = r.table("attribute_mapping");

    let mut keys = Vec::new();
    for (i, text) in inline.iter().enumerate() {
        match TrustedKey::from_certificate_text(text) {
            Ok(key) => keys.push(key.with_origin("inline")),
            Err(e) => r.problem(&format!("certificates[{i}]"), e),
        }
    }
    for (i, file) in files.iter().enumerate() {
        let path: PathBuf = base.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => match TrustedKey::from_certificate_text(&text) {
                Ok(key) => keys.push(key.with_origin(&format!("file:{file}"))),
                Err(e) => r.problem(&format!("certificate_files[{i}]"), format!("{}: {e}", path.display())),
            },
            Err(e) => r.problem(&format!("certificate_files[{i}]"), format!("cannot read {}: {e}", path.display())),
        }
    }
    let mut signing_keys_for_metadata = Vec::new();
    for (i, text) in metadata_signing.iter().enumerate() {
        match TrustedKey::from_certificate_text(text) {
            Ok(key) => signing_keys_for_metadata.push(key),
            Err(e) => r.problem(&format!("metadata_signing_certificate[{i}]"), e),
        }
    }
    let static_keys = keys.clone();
    let mut metadata_status = None;
    let mut idp_entity_id = idp_entity_id;
    let source = match (&metadata_file, &metadata_url) {
        (Some(_), Some(_)) => {
            r.problem("metadata_url", "set metadata_file or metadata_url, not both");
            None
        }
        (Some(file), None) => Some((MetadataSource::File(base.join(file)), format!("file:{file}"), "metadata_file")),
        (None, Some(url)) => match fetcher.check_url(url) {
            Ok(()) => Some((MetadataSource::Url(url), url.clone(), "metadata_url")),
            Err(e) => {
                r.problem("metadata_url", e);
                None
            }
        },
        (None, None) => None,
    };
    if let Some((source, label, key)) = source {
        let now = crate::service::wall_clock();
        match load_metadata(&source, fetcher, &signing_keys_for_metadata, allow_sha1, now) {
            Ok(parsed) => {
                match &idp_entity_id {
                    None if parsed.entity_id.contains("{tenantid}") => r.problem(
                        "idp_entity_id",
                        "the metadata's entityID is Entra's multi-tenant template; set idp_entity_id to the tenant's issuer",
                    ),
                    None => idp_entity_id = Some(parsed.entity_id.clone()),
                    Some(configured) if *configured != parsed.entity_id && !parsed.entity_id.contains("{tenantid}") => {
                        r.problem(
                            "idp_entity_id",
                            format!("{configured:?} differs from the metadata's entityID {:?}", parsed.entity_id),
                        )
                    }
                    Some(_) => {}
                }
                let next = metadata_url.as_ref().map(|_| next_refresh(&parsed, settings, now));
                metadata_status = Some(MetadataStatus {
                    source: label.clone(),
                    entity_id: parsed.entity_id.clone(),
                    signature_verified: parsed.signature_verified,
                    valid_until: parsed.valid_until.map(crate::saml::time::format),
                    cache_duration_seconds: parsed.cache_duration_seconds,
                    loaded_at: crate::saml::time::format(now),
                    result: "ok".into(),
                    last_attempt: crate::saml::time::format(now),
                    next_refresh: next.map(crate::saml::time::format),
                    loaded_at_instant: Some(now),
                    next_refresh_instant: next,
                });
                keys = merge_keys(&static_keys, parsed.signing_keys, &label);
            }
            Err(e) => r.problem(key, e),
        }
    } else if !metadata_signing.is_empty() && !has_metadata {
        r.problem("metadata_signing_certificate", "set only together with metadata_file or metadata_url");
    }
    if inline.is_empty() && files.is_empty() && !has_metadata {
        r.problem(
            "certificates",
            "the tenant has no certificate (set certificates, certificate_files, metadata_file or metadata_url)",
        );
    }
    for key in &keys {
        if key.is_ec() && !matches!(key.info.key_type.as_str(), "EC-prime256v1" | "EC-secp384r1" | "EC-secp521r1") {
            r.problem(
                "certificates",
                format!(
                    "certificate {} uses {}; only P-256, P-384 and P-521 are accepted",
                    key.info.sha256_fingerprint, key.info.key_type
                ),
            );
        }
        if key.is_rsa() && key.info.bits < MIN_RSA_BITS && !allow_weak_rsa_keys {
            r.problem(
                "certificates",
                format!(
                    "certificate {} has a {}-bit RSA key; below {MIN_RSA_BITS} bits needs allow_weak_rsa_keys = true",
                    key.info.sha256_fingerprint, key.info.bits
                ),
            );
        }
    }
    let attribute_mapping = read_mapping(mapping_table.as_ref(), index, r.problems);
    r.finish();
    Some(TenantConfig {
        metadata: metadata_status,
        metadata_url,
        metadata_signing_keys: signing_keys_for_metadata,
        static_keys,
        id: id?,
        policy: TenantPolicy {
            idp_entity_id: idp_entity_id?,
            sp_entity_id: sp_entity_id?,
            acs_url: acs_url?,
            clock_skew_seconds,
            allow_sha1,
            allow_idp_initiated,
            allow_bare_assertion,
            allow_missing_authn_statement,
            keys,
            attribute_mapping,
        },
    })
}

/// `[tenants.attribute_mapping]`: each key replaces the default attribute names for one claim.
fn read_mapping(table: Option<&Table>, index: usize, problems: &mut Vec<String>) -> AttributeMapping {
    let mut mapping = AttributeMapping::default();
    let Some(table) = table else { return mapping };
    let mut r = Reader::new(table, format!("tenants[{index}].attribute_mapping"), problems);
    let slots: [(&'static str, &mut Vec<String>); 11] = [
        ("email", &mut mapping.email),
        ("first_name", &mut mapping.first_name),
        ("last_name", &mut mapping.last_name),
        ("display_name", &mut mapping.display_name),
        ("username", &mut mapping.username),
        ("groups", &mut mapping.groups),
        ("roles", &mut mapping.roles),
        ("object_id", &mut mapping.object_id),
        ("idp_tenant_id", &mut mapping.idp_tenant_id),
        ("authn_methods", &mut mapping.authn_methods),
        ("groups_overage", &mut mapping.groups_overage),
    ];
    for (key, slot) in slots {
        if r.table.contains_key(key) {
            let names = r.strings(key);
            if names.is_empty() {
                r.problem(key, "must list at least one attribute name");
            }
            *slot = names;
        } else {
            r.known.insert(key);
        }
    }
    r.finish();
    mapping
}

/// Static keys plus metadata keys (labelled with their source), without duplicates.
pub fn merge_keys(static_keys: &[TrustedKey], from_metadata: Vec<TrustedKey>, label: &str) -> Vec<TrustedKey> {
    let mut keys = static_keys.to_vec();
    for key in from_metadata {
        if !keys.iter().any(|k| k.info.sha256_fingerprint == key.info.sha256_fingerprint) {
            keys.push(key.with_origin(&format!("metadata:{label}")));
        }
    }
    keys
}

/// When to refresh next: cacheDuration (or the default) clamped to the configured bounds, with
/// ±10 % jitter so that replicas do not fetch in lockstep, and never after validUntil.
pub fn next_refresh(
    parsed: &metadata::IdpMetadata,
    settings: &MetadataSettings,
    now: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    let base = parsed
        .cache_duration_seconds
        .unwrap_or(settings.refresh_seconds)
        .clamp(settings.min_refresh_seconds, settings.max_refresh_seconds.max(settings.min_refresh_seconds));
    let mut noise = [0u8; 2];
    let _ = openssl::rand::rand_bytes(&mut noise);
    let jitter = (u16::from_le_bytes(noise) as f64 / f64::from(u16::MAX) - 0.5) * 0.2;
    let seconds = ((base as f64) * (1.0 + jitter)).max(1.0) as i64;
    let mut next = now + chrono::Duration::seconds(seconds);
    if let Some(until) = parsed.valid_until {
        let before_expiry = until - chrono::Duration::seconds((until - now).num_seconds().max(0) / 10);
        next = next.min(before_expiry.max(now + chrono::Duration::seconds(1)));
    }
    next
}
