//! The TOML configuration: read and validated completely at load, every problem reported
//! together, unknown keys refused. A bad file never starts (or, later, replaces) a service.

mod decryption;
mod reader;
pub mod replay;
pub mod sections;
pub mod sp;
pub mod tenant;

pub use replay::{RedisEndpoints, RedisSettings, ReplaySettings, Secret};
pub use sections::{LoggingConfig, ServerConfig};
pub use sp::SpSettings;
pub use tenant::{MetadataStatus, TenantConfig};

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use toml::Table;

use self::reader::Reader;
use crate::saml::Limits;
use crate::tenants::callers::Callers;
use crate::tenants::fetch::{Fetcher, MetadataSettings};

#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    /// `[[callers]]`: bearer-token callers; authentication is off when empty.
    pub callers: Callers,
    pub logging: LoggingConfig,
    pub metadata: MetadataSettings,
    pub limits: Limits,
    /// `[replay]`: read at start-up only (a reload keeps the running store).
    pub replay: ReplaySettings,
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

impl Config {
    /// Reads the file at `path`; metadata validity is judged at `now`.
    pub fn load(path: &Path, now: DateTime<Utc>) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("cannot read {}: {e}", path.display())]))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &base, now)
    }

    /// Parses configuration text; relative `certificate_files` are resolved against `base`.
    pub fn parse(text: &str, base: &Path, now: DateTime<Utc>) -> Result<Config, ConfigErrors> {
        let table: Table =
            text.parse().map_err(|e: toml::de::Error| ConfigErrors(vec![format!("not valid TOML: {e}")]))?;
        let mut problems = Vec::new();
        let mut root = Reader::new(&table, String::new(), &mut problems);
        let server_table = root.table("server");
        let limits_table = root.table("limits");
        let logging_table = root.table("logging");
        let metadata_table = root.table("metadata");
        let replay_table = root.table("replay");
        let tenant_tables = root.array_of_tables("tenants");
        let caller_tables = root.array_of_tables("callers");
        root.finish();

        let server = sections::read_server(server_table.as_ref(), base, &mut problems);
        let limits = sections::read_limits(limits_table.as_ref(), &mut problems);
        let logging = sections::read_logging(logging_table.as_ref(), &mut problems);
        let metadata_settings = sections::read_metadata_settings(metadata_table.as_ref(), &mut problems);
        let replay = replay::read_replay(replay_table.as_ref(), base, &mut problems);
        let fetcher = Fetcher::new(&metadata_settings);
        let mut tenants = Vec::new();
        let mut ids = HashSet::new();
        let context = tenant::Context { base, fetcher: &fetcher, settings: &metadata_settings, now };
        for (index, table) in tenant_tables.iter().enumerate() {
            let Some(tenant) = tenant::read(table, &format!("tenants[{index}]"), &context, &mut problems) else {
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
        let callers = sections::read_callers(&caller_tables, &ids, mutual_tls, &mut problems);
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
            Ok(Config { server, callers, logging, metadata: metadata_settings, limits, replay, tenants })
        } else {
            Err(ConfigErrors(problems))
        }
    }
}
