//! The TOML configuration: read and validated completely at load, every problem reported
//! together, unknown keys refused. A bad file never starts (or, later, replaces) a service.

pub mod admin;
pub mod callers;
mod decryption;
pub mod directory;
pub mod files;
mod login;
pub mod metadata;
mod reader;
pub mod replay;
pub mod sections;
pub mod sp;
mod strength;
pub mod tenant;
pub mod tls;

pub use admin::AdminSettings;
pub use metadata::MetadataSettings;
pub use replay::{RedisEndpoints, RedisSettings, ReplaySettings, Secret};
pub use sections::{DiagnosticsSettings, LoggingConfig, MetricsSettings, ServerConfig};
pub use sp::SpSettings;
pub use tenant::{MetadataStatus, TenantConfig};

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use toml::Table;

use self::callers::Callers;
use self::directory::FileVersion;
use self::files::{FileRules, TenantFilePaths};
use self::reader::Reader;
use crate::saml::Limits;

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
    pub metrics: MetricsSettings,
    /// `[diagnostics]`: recent failures kept per tenant.
    pub diagnostics: DiagnosticsSettings,
    /// `[admin]`: the admin page's listener and token; `None` when off (the default).
    pub admin: Option<AdminSettings>,
    /// `[[tenants]]` and the good files of `tenants_dir`.
    pub tenants: Vec<TenantConfig>,
    /// The ids of the main file's `[[tenants]]`: a tenant file may never take one over, even
    /// one that also has a (refused) file.
    pub inline_tenant_ids: HashSet<String>,
    /// `tenants_dir`, resolved against the configuration file's folder.
    pub tenants_dir: Option<PathBuf>,
    /// `tenant_keys_dir` and `allow_tenant_files_outside_tenants_dir`.
    pub tenant_file_paths: TenantFilePaths,
    /// The files of `tenants_dir` as read, good or refused, by tenant id.
    pub tenant_files: BTreeMap<String, FileVersion>,
    /// Tenant files refused, by tenant id: each is refused alone, the rest load.
    pub tenant_file_errors: BTreeMap<String, Vec<String>>,
    /// `.toml` files in `tenants_dir` whose names are not tenant ids.
    pub bad_tenant_file_names: Vec<String>,
    /// The instant the configuration was judged at (metadata validity, refusal times).
    pub loaded_at: DateTime<Utc>,
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
        let metrics_table = root.table("metrics");
        let diagnostics_table = root.table("diagnostics");
        let admin_table = root.table("admin");
        let tenant_tables = root.array_of_tables("tenants");
        let tenants_dir = root.string("tenants_dir").map(|dir| base.join(dir));
        let tenant_file_paths = TenantFilePaths {
            keys_dir: root.string("tenant_keys_dir").map(|dir| base.join(dir)),
            allow_outside: root.boolean("allow_tenant_files_outside_tenants_dir", false),
        };
        let caller_tables = root.array_of_tables("callers");
        root.finish();

        let server = sections::read_server(server_table.as_ref(), base, &mut problems);
        let mut limits = sections::read_limits(limits_table.as_ref(), &mut problems);
        let logging = sections::read_logging(logging_table.as_ref(), &mut problems);
        let metadata_settings = sections::read_metadata_settings(metadata_table.as_ref(), &mut problems);
        let replay = replay::read_replay(replay_table.as_ref(), base, &mut problems);
        limits.max_assertion_age_seconds = replay.max_assertion_age_seconds;
        let metrics = sections::read_metrics(metrics_table.as_ref(), &mut problems);
        let diagnostics = sections::read_diagnostics(diagnostics_table.as_ref(), &mut problems);
        let admin = admin::read(admin_table.as_ref(), &server, base, &mut problems);
        let mut tenants = Vec::new();
        let mut ids = HashSet::new();
        // The main file is the operator's own: the files it names may be anywhere.
        let files = FileRules { base, confine: None };
        let context = tenant::Context { files, settings: &metadata_settings, now };
        for (index, table) in tenant_tables.iter().enumerate() {
            let Some(tenant) = tenant::read(table, &format!("tenants[{index}]"), &context, &mut problems) else {
                continue;
            };
            if !ids.insert(tenant.id.clone()) {
                problems.push(format!("tenants[{index}]: duplicate tenant id {:?}", tenant.id));
            }
            tenants.push(tenant);
        }
        let inline_tenant_ids = ids.clone();
        let mut files = Files::default();
        if let Some(dir) = &tenants_dir {
            let context = tenant::Context { files: tenant_file_paths.rules(dir), ..context };
            let confine = tenant_file_paths.tenant_file_confine(dir);
            files = read_directory(dir, confine, &context, &ids, &mut problems);
            ids.extend(files.versions.keys().cloned());
            tenants.append(&mut files.tenants);
        }
        if tenant_tables.is_empty() && tenants_dir.is_none() {
            problems.push("no [[tenants]] configured (and no tenants_dir)".into());
        }
        if tenants_dir.is_none() && tenant_file_paths != TenantFilePaths::default() {
            problems
                .push("tenant_keys_dir and allow_tenant_files_outside_tenants_dir apply to tenants_dir: set it".into());
        }
        let mutual_tls = server.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
        let callers = sections::read_callers(&caller_tables, &ids, mutual_tls, &mut problems);
        admin::check_distinct_from_callers(admin.as_ref(), &callers, &mut problems);
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
            Ok(Config {
                server,
                callers,
                logging,
                metadata: metadata_settings,
                limits,
                replay,
                metrics,
                diagnostics,
                admin,
                tenants,
                inline_tenant_ids,
                tenants_dir,
                tenant_file_paths,
                tenant_files: files.versions,
                tenant_file_errors: files.errors,
                bad_tenant_file_names: files.bad_names,
                loaded_at: now,
            })
        } else {
            Err(ConfigErrors(problems))
        }
    }
}

/// What reading `tenants_dir` found.
#[derive(Default)]
struct Files {
    tenants: Vec<TenantConfig>,
    versions: BTreeMap<String, FileVersion>,
    errors: BTreeMap<String, Vec<String>>,
    bad_names: Vec<String>,
}

/// Reads every tenant file; a bad file is recorded against its tenant alone. Only an
/// unreadable directory is a problem of the whole configuration.
fn read_directory(
    dir: &Path,
    confine: Option<&Path>,
    context: &tenant::Context<'_>,
    inline_ids: &HashSet<String>,
    problems: &mut Vec<String>,
) -> Files {
    let mut files = Files::default();
    let listing = match directory::list(dir) {
        Ok(listing) => listing,
        Err(e) => {
            problems.push(format!("tenants_dir: cannot read {}: {e}", dir.display()));
            return files;
        }
    };
    files.bad_names = listing.bad_names;
    for (id, (path, stamp)) in &listing.files {
        let Some(read) = directory::read(id, path, *stamp, confine, context) else { continue };
        files.versions.insert(id.clone(), read.version);
        match read.tenant {
            Ok(_) if inline_ids.contains(id) => {
                files.errors.insert(id.clone(), vec![format!("{id}.toml: tenant {id:?} is also in [[tenants]]")]);
            }
            Ok(tenant) => files.tenants.push(tenant),
            Err(problems) => {
                files.errors.insert(id.clone(), problems);
            }
        }
    }
    files
}
