//! The TOML configuration: read and validated completely at load, every problem reported
//! together, unknown keys refused. A bad file never starts (or, later, replaces) a service.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::saml::keys::TrustedKey;
use crate::saml::metadata::{self, MetadataPolicy};
use crate::saml::{AttributeMapping, Limits, TenantPolicy};

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
}

/// The last metadata load of a tenant, for `GET /v1/tenants/{id}`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetadataStatus {
    pub source: String,
    pub entity_id: String,
    pub signature_verified: bool,
    pub valid_until: Option<String>,
    pub cache_duration_seconds: Option<u64>,
    pub loaded_at: String,
    pub result: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub logging: LoggingConfig,
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
        let tenant_tables = root.array_of_tables("tenants");
        root.finish();

        let server = read_server(server_table.as_ref(), &mut problems);
        let limits = read_limits(limits_table.as_ref(), &mut problems);
        let logging = read_logging(logging_table.as_ref(), &mut problems);
        let mut tenants = Vec::new();
        let mut ids = HashSet::new();
        for (index, tenant) in tenant_tables.iter().enumerate() {
            let Some(tenant) = read_tenant(tenant, index, base, &mut problems) else {
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
        if problems.is_empty() {
            Ok(Config { server, logging, limits, tenants })
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

fn read_server(table: Option<&Table>, problems: &mut Vec<String>) -> ServerConfig {
    let defaults = ServerConfig::default();
    let Some(table) = table else { return defaults };
    let mut r = Reader::new(table, "server".into(), problems);
    let http_addr = r.string("http_addr").unwrap_or(defaults.http_addr);
    if http_addr.parse::<std::net::SocketAddr>().is_err() {
        r.problem("http_addr", format!("{http_addr:?} is not an address like 127.0.0.1:8080"));
    }
    let server = ServerConfig {
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
    };
    for (key, value) in [("metrics_addr", &server.metrics_addr), ("grpc_addr", &server.grpc_addr)] {
        if let Some(addr) = value {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                r.problem(key, format!("{addr:?} is not an address like 127.0.0.1:9090"));
            }
        }
    }
    r.finish();
    server
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

fn read_tenant(table: &Table, index: usize, base: &Path, problems: &mut Vec<String>) -> Option<TenantConfig> {
    let mut r = Reader::new(table, format!("tenants[{index}]"), problems);
    let id = r.required_string("id");
    if let Some(id) = &id {
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || id.len() > 128 {
            r.problem("id", format!("{id:?} may only use letters, digits, '-', '_' and '.' (at most 128)"));
        }
    }
    let metadata_file = r.string("metadata_file");
    let metadata_signing = r.strings("metadata_signing_certificate");
    // With metadata, the Issuer may come from its entityID; without, it must be configured.
    let idp_entity_id =
        if metadata_file.is_some() { r.string("idp_entity_id") } else { r.required_string("idp_entity_id") };
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
    let mut metadata_status = None;
    let mut idp_entity_id = idp_entity_id;
    if let Some(file) = &metadata_file {
        let path = base.join(file);
        let now = crate::service::wall_clock();
        let policy = MetadataPolicy { signing_keys: &signing_keys_for_metadata, allow_sha1, now };
        match std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|bytes| metadata::parse(&bytes, &policy).map_err(|e| format!("{}: {e}", path.display())))
        {
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
                metadata_status = Some(MetadataStatus {
                    source: format!("file:{file}"),
                    entity_id: parsed.entity_id.clone(),
                    signature_verified: parsed.signature_verified,
                    valid_until: parsed.valid_until.map(crate::saml::time::format),
                    cache_duration_seconds: parsed.cache_duration_seconds,
                    loaded_at: crate::saml::time::format(now),
                    result: "ok".into(),
                });
                for key in parsed.signing_keys {
                    if !keys.iter().any(|k: &TrustedKey| k.info.sha256_fingerprint == key.info.sha256_fingerprint) {
                        keys.push(key.with_origin(&format!("metadata:{file}")));
                    }
                }
            }
            Err(e) => r.problem("metadata_file", e),
        }
    } else if !metadata_signing.is_empty() {
        r.problem("metadata_signing_certificate", "set only together with metadata_file");
    }
    if inline.is_empty() && files.is_empty() && metadata_file.is_none() {
        r.problem(
            "certificates",
            "the tenant has no certificate (set certificates, certificate_files or metadata_file)",
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
