//! One `[[tenants]]` table: the IdP's trust (certificates, metadata), the SP's identity, the
//! relaxations, the attribute mapping.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use toml::Table;

use super::files::{self, FileRules};
use super::metadata::MetadataSettings;
use super::reader::Reader;
use super::sp::{self, SpSettings};
pub(crate) use super::strength::key_strength_problems;
use crate::saml::keys::TrustedKey;
use crate::saml::metadata::{self, MetadataPolicy};
use crate::saml::{AttributeMapping, TenantPolicy};

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
    /// Keys from the last good metadata load (`policy.keys` is these plus `static_keys`).
    pub metadata_keys: Vec<TrustedKey>,
    /// `idp_entity_id` as written; `None` when it is taken from the metadata's entityID.
    pub configured_idp_entity_id: Option<String>,
    /// The SP side of SP-initiated login (AuthnRequests, SP metadata).
    pub sp: SpSettings,
    /// (Binding, Location) of the metadata's SingleSignOnServices, replaced on each refresh.
    pub idp_sso_endpoints: Vec<(String, String)>,
    /// The metadata's SingleLogoutServices, replaced on each refresh.
    pub idp_slo_endpoints: Vec<crate::saml::metadata::SloEndpoint>,
    /// `decryption_certificate_files`, each checked to carry one of the decryption keys' public
    /// halves (for SP metadata).
    pub decryption_certificates: Vec<openssl::x509::X509>,
    /// `allow_weak_rsa_keys`: judged again on every metadata load, whose keys are never read
    /// with the configuration.
    pub allow_weak_rsa_keys: bool,
}

/// Whether a tenant can judge logins now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    Ok,
    /// Its `metadata_url` has not been tried yet (just started or just added).
    Pending,
    /// Its `metadata_url` has never been loaded: no keys and possibly no issuer to judge by.
    Unavailable,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Ok => "ok",
            Availability::Pending => "pending",
            Availability::Unavailable => "unavailable",
        }
    }
}

impl TenantConfig {
    /// A `metadata_url` tenant serves only once its metadata has loaded at least once: before
    /// that it may not even know its issuer, and judging with a partial trust would turn a dead
    /// metadata endpoint into misleading `signature_invalid` answers.
    pub fn availability(&self) -> Availability {
        match (&self.metadata_url, &self.metadata) {
            (None, _) => Availability::Ok,
            (Some(_), None) => Availability::Pending,
            (Some(_), Some(status)) if status.loaded_at_instant.is_none() => Availability::Unavailable,
            (Some(_), Some(_)) => Availability::Ok,
        }
    }

    /// Takes over the metadata state of `previous` (the same tenant before a reload) when the
    /// metadata source and its verification policy are unchanged, so a reload never makes a
    /// tenant wait for a fetch it already has the result of.
    pub fn carry_metadata_from(&mut self, previous: &TenantConfig) {
        let same_source = self.metadata_url.is_some()
            && self.metadata_url == previous.metadata_url
            && self.policy.allow_sha1 == previous.policy.allow_sha1
            && self.allow_weak_rsa_keys == previous.allow_weak_rsa_keys
            && fingerprints(&self.metadata_signing_keys) == fingerprints(&previous.metadata_signing_keys);
        let Some(status) = previous.metadata.as_ref().filter(|_| same_source) else { return };
        if status.loaded_at_instant.is_some() {
            match &self.configured_idp_entity_id {
                Some(configured) if *configured != previous.policy.idp_entity_id => return,
                _ => self.policy.idp_entity_id.clone_from(&previous.policy.idp_entity_id),
            }
        }
        self.metadata_keys.clone_from(&previous.metadata_keys);
        self.policy.keys = merge_keys(&self.static_keys, previous.metadata_keys.clone(), &status.source);
        self.idp_sso_endpoints.clone_from(&previous.idp_sso_endpoints);
        self.idp_slo_endpoints.clone_from(&previous.idp_slo_endpoints);
        self.metadata = Some(status.clone());
    }
}

fn fingerprints(keys: &[TrustedKey]) -> Vec<&str> {
    keys.iter().map(|k| k.info.sha256_fingerprint.as_str()).collect()
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
    /// Failed fetches since the last success (the retry interval doubles with each).
    pub consecutive_failures: u32,
    /// Endpoints of the last good load that were refused (unsafe Locations), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_endpoints: Vec<String>,
    #[serde(skip)]
    pub loaded_at_instant: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip)]
    pub next_refresh_instant: Option<chrono::DateTime<chrono::Utc>>,
}

/// Largest clock skew an operator may configure; more would make expiry meaningless.
/// The largest `clock_skew_seconds`: also how long past its maximum age the core may still accept an
/// assertion, which bounds every quarantine.
pub const MAX_SKEW_SECONDS: i64 = 3600;

/// Largest `metadata_file` (one IdP's metadata is tens of KB; Entra's about 25 KB).
const MAX_METADATA_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and judges a tenant's `metadata_file` now, as configuration load and reload do
/// (`metadata_url` is fetched by `tenants::refresh`, never while configuration is read).
fn load_metadata_file(
    path: &Path,
    confine: Option<&Path>,
    signing_keys: &[TrustedKey],
    allow_sha1: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<metadata::IdpMetadata, String> {
    let bytes = files::read_regular(path, confine, MAX_METADATA_FILE_BYTES).map_err(|e| e.to_string())?;
    let policy = MetadataPolicy { signing_keys, allow_sha1, now };
    metadata::parse(&bytes, &policy).map_err(|e| e.to_string())
}

/// What reading a tenant needs besides its table.
pub struct Context<'a> {
    /// Where the file names in the table lead (confined to their folder for `tenants_dir`).
    pub files: FileRules<'a>,
    pub settings: &'a MetadataSettings,
    /// Metadata validity is judged at this instant.
    pub now: DateTime<Utc>,
}

/// Reads one tenant table; `at` names it in problems (`tenants[3]`). `None` when a required
/// key is missing (the problem is recorded).
pub fn read(table: &Table, at: &str, context: &Context<'_>, problems: &mut Vec<String>) -> Option<TenantConfig> {
    let mut r = Reader::new(table, at.to_string(), problems);
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
    r.check_identifier("idp_entity_id", idp_entity_id.as_deref());
    r.check_identifier("sp_entity_id", sp_entity_id.as_deref());
    r.check_identifier("metadata_url", metadata_url.as_deref());
    r.check_endpoint("acs_url", acs_url.as_deref());
    let login = super::login::read(&mut r, acs_url.as_deref());
    let inline = r.strings("certificates");
    let files = r.strings("certificate_files");
    let clock_skew_seconds = r.integer("clock_skew_seconds", 180, 0..=MAX_SKEW_SECONDS);
    let allow_sha1 = r.boolean("allow_sha1", false);
    let allow_idp_initiated = r.boolean("allow_idp_initiated", false);
    let allow_bare_assertion = r.boolean("allow_bare_assertion", false);
    let allow_missing_authn_statement = r.boolean("allow_missing_authn_statement", false);
    let allow_weak_rsa_keys = r.boolean("allow_weak_rsa_keys", false);
    let mapping_table = r.table("attribute_mapping");
    let sp = sp::read(&mut r, &context.files);
    let decryption = super::decryption::read(&mut r, &context.files, allow_weak_rsa_keys);

    let static_keys = static_keys(&mut r, &inline, &files, &context.files);
    let metadata_signing_keys = certificates(&mut r, "metadata_signing_certificate", &metadata_signing);
    let mut trust = Trust {
        keys: static_keys.clone(),
        idp_entity_id: idp_entity_id.clone(),
        metadata: None,
        sso_endpoints: Vec::new(),
        slo_endpoints: Vec::new(),
        metadata_keys: Vec::new(),
    };
    match metadata_source(&mut r, metadata_file.as_deref(), metadata_url.as_deref(), context) {
        // A URL is fetched by the registry's bounded refresh pool, never while reading: one
        // dead endpoint must not fail (or stall) the whole configuration. Until it loads the
        // tenant is `pending`, then `unavailable` or ok (TenantConfig::availability).
        Some(Source::Url) => {}
        Some(Source::File { path, label }) => {
            load_trust(&mut r, (&path, &label), &metadata_signing_keys, allow_sha1, context, &mut trust)
        }
        None if !metadata_signing.is_empty() && !has_metadata => {
            r.problem("metadata_signing_certificate", "set only together with metadata_file or metadata_url")
        }
        None => {}
    }
    if inline.is_empty() && files.is_empty() && !has_metadata {
        r.problem(
            "certificates",
            "the tenant has no certificate (set certificates, certificate_files, metadata_file or metadata_url)",
        );
    }
    check_key_strength(&mut r, &trust.keys, allow_weak_rsa_keys);
    let attribute_mapping = read_mapping(mapping_table.as_ref(), at, r.problems);
    r.finish();
    // A URL tenant without a configured issuer learns it from its first metadata load and
    // judges nothing before (it is `pending`).
    let issuer = match (trust.idp_entity_id, &metadata_url) {
        (Some(issuer), _) => issuer,
        (None, Some(_)) => String::new(),
        (None, None) => None?,
    };
    let id = id?;
    Some(TenantConfig {
        metadata: trust.metadata,
        metadata_url,
        metadata_signing_keys,
        static_keys,
        metadata_keys: trust.metadata_keys,
        configured_idp_entity_id: idp_entity_id,
        sp,
        idp_sso_endpoints: trust.sso_endpoints,
        idp_slo_endpoints: trust.slo_endpoints,
        decryption_certificates: decryption.certificates,
        allow_weak_rsa_keys,
        id: id.clone(),
        policy: TenantPolicy {
            tenant_id: id,
            idp_entity_id: issuer,
            sp_entity_id: sp_entity_id?,
            acs_url: acs_url?,
            other_acs_urls: login.other_acs_urls,
            clock_skew_seconds,
            allow_sha1,
            allow_idp_initiated,
            allow_bare_assertion,
            allow_missing_authn_statement,
            keys: trust.keys,
            decryption_keys: decryption.keys,
            allow_rsa_pkcs1_key_transport: decryption.allow_rsa_pkcs1_key_transport,
            require_encrypted_assertions: decryption.require_encrypted_assertions,
            attribute_mapping,
            require_authn_methods: login.require_authn_methods,
            require_authn_context: login.require_authn_context,
            max_authn_age_seconds: login.max_authn_age_seconds,
            subject_key_from: login.subject_key_from,
        },
    })
}

/// The keys and issuer a tenant trusts, once its metadata (if any) is loaded.
struct Trust {
    keys: Vec<TrustedKey>,
    idp_entity_id: Option<String>,
    metadata: Option<MetadataStatus>,
    sso_endpoints: Vec<(String, String)>,
    slo_endpoints: Vec<crate::saml::metadata::SloEndpoint>,
    metadata_keys: Vec<TrustedKey>,
}

/// Keys from `certificates` (inline) and `certificate_files`, which refreshes never remove.
fn static_keys(r: &mut Reader<'_>, inline: &[String], names: &[String], files: &FileRules<'_>) -> Vec<TrustedKey> {
    let mut keys: Vec<TrustedKey> =
        certificates(r, "certificates", inline).into_iter().map(|key| key.with_origin("inline")).collect();
    for (i, name) in names.iter().enumerate() {
        match files.read_to_string(name, files::MAX_FILE_BYTES) {
            Ok(text) => match TrustedKey::from_certificate_text(&text) {
                Ok(key) => keys.push(key.with_origin(&format!("file:{name}"))),
                Err(e) => r.problem(&format!("certificate_files[{i}]"), format!("{name}: {e}")),
            },
            Err(e) => r.problem(&format!("certificate_files[{i}]"), e.to_string()),
        }
    }
    keys
}

/// Parses each certificate text under `key`, recording the ones that do not parse.
fn certificates(r: &mut Reader<'_>, key: &str, texts: &[String]) -> Vec<TrustedKey> {
    let mut keys = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match TrustedKey::from_certificate_text(text) {
            Ok(parsed) => keys.push(parsed),
            Err(e) => r.problem(&format!("{key}[{i}]"), e),
        }
    }
    keys
}

/// Where the tenant's metadata comes from.
enum Source {
    /// `metadata_file`, read now, with its label for the tenant view.
    File { path: PathBuf, label: String },
    /// `metadata_url`, allowed by `[metadata] allowed_hosts`: fetched later by the refresh pool.
    Url,
}

fn metadata_source(r: &mut Reader<'_>, file: Option<&str>, url: Option<&str>, context: &Context<'_>) -> Option<Source> {
    match (file, url) {
        (Some(_), Some(_)) => {
            r.problem("metadata_url", "set metadata_file or metadata_url, not both");
            None
        }
        (Some(file), None) => match context.files.resolve(file) {
            Ok(path) => Some(Source::File { path, label: format!("file:{file}") }),
            Err(e) => {
                r.problem("metadata_file", e.to_string());
                None
            }
        },
        (None, Some(url)) => match context.settings.check_url(url) {
            Ok(()) => Some(Source::Url),
            Err(e) => {
                r.problem("metadata_url", e);
                None
            }
        },
        (None, None) => None,
    }
}

/// Loads the metadata file now and merges its keys and entityID into `trust`.
fn load_trust(
    r: &mut Reader<'_>,
    (path, label): (&Path, &str),
    signing_keys: &[TrustedKey],
    allow_sha1: bool,
    context: &Context<'_>,
    trust: &mut Trust,
) {
    let now = context.now;
    let parsed = match load_metadata_file(path, context.files.confine, signing_keys, allow_sha1, now) {
        Ok(parsed) => parsed,
        Err(e) => return r.problem("metadata_file", e),
    };
    match &trust.idp_entity_id {
        None if parsed.entity_id.contains("{tenantid}") => r.problem(
            "idp_entity_id",
            "the metadata's entityID is Entra's multi-tenant template; set idp_entity_id to the tenant's issuer",
        ),
        None => trust.idp_entity_id = Some(parsed.entity_id.clone()),
        Some(configured) if *configured != parsed.entity_id && !parsed.entity_id.contains("{tenantid}") => r.problem(
            "idp_entity_id",
            format!("{configured:?} differs from the metadata's entityID {:?}", parsed.entity_id),
        ),
        Some(_) => {}
    }
    trust.metadata = Some(MetadataStatus {
        source: label.to_string(),
        entity_id: parsed.entity_id.clone(),
        signature_verified: parsed.signature_verified,
        valid_until: parsed.valid_until.map(crate::saml::time::format),
        cache_duration_seconds: parsed.cache_duration_seconds,
        loaded_at: crate::saml::time::format(now),
        result: "ok".into(),
        last_attempt: crate::saml::time::format(now),
        next_refresh: None,
        loaded_at_instant: Some(now),
        next_refresh_instant: None,
        consecutive_failures: 0,
        refused_endpoints: parsed.refused_endpoints.clone(),
    });
    trust.sso_endpoints = parsed.single_sign_on;
    trust.slo_endpoints = parsed.single_logout;
    trust.keys = merge_keys(&trust.keys, parsed.signing_keys.clone(), label);
    trust.metadata_keys = parsed.signing_keys;
}

/// Curves and RSA sizes below today's floor are configuration errors unless relaxed.
fn check_key_strength(r: &mut Reader<'_>, keys: &[TrustedKey], allow_weak_rsa_keys: bool) {
    for problem in key_strength_problems(keys, allow_weak_rsa_keys) {
        r.problem("certificates", problem);
    }
}

/// `[tenants.attribute_mapping]`: each key replaces the default attribute names for one claim.
fn read_mapping(table: Option<&Table>, at: &str, problems: &mut Vec<String>) -> AttributeMapping {
    let mut mapping = AttributeMapping::default();
    let Some(table) = table else { return mapping };
    let mut r = Reader::new(table, format!("{at}.attribute_mapping"), problems);
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
