//! JSON bodies of the HTTP API and the CLI, and the tenant view both transports serve.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::saml::decrypt::DecryptionKeyInfo;
use crate::saml::keys::KeyInfo;
use crate::saml::{Error, Validated};
use crate::service::lifecycle;
use crate::tenants::{FileProblem, MetadataStatus, TenantConfig, TenantSet};

/// JSON body of an accepted response (HTTP 200, CLI exit 0).
#[derive(Serialize)]
pub struct ValidBody<'a> {
    pub valid: bool,
    pub tenant: &'a str,
    #[serde(flatten)]
    pub result: &'a Validated,
}

/// JSON body of any refusal.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub valid: bool,
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'static str,
    pub message: &'a str,
}

impl<'a> ErrorBody<'a> {
    pub fn new(error: &'a Error) -> ErrorBody<'a> {
        ErrorBody { valid: false, error: ErrorDetail { code: error.code.as_str(), message: &error.message } }
    }
}

/// A tenant's effective trust (`GET /v1/tenants/{id}` and gRPC `GetTenant`): public facts only.
#[derive(Serialize)]
pub struct TenantView<'a> {
    pub id: &'a str,
    /// `ok`, `pending`, `unavailable` or `config_error` (see `TenantState`).
    pub status: &'static str,
    /// The refusal of the tenant's file; the rest of the view is its last good version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<&'a FileProblem>,
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    /// Every ACS URL the tenant accepts, `acs_url` first (their SP metadata indexes).
    pub acs_urls: Vec<&'a str>,
    pub clock_skew_seconds: i64,
    /// Every relaxation with its current value (all false unless an operator set them).
    pub relaxations: std::collections::BTreeMap<&'static str, bool>,
    pub certificates: Vec<CertificateView<'a>>,
    pub metadata: Option<&'a MetadataStatus>,
    /// The SP decryption keys, by the SHA-256 of their public halves only (the private halves
    /// never leave the core).
    pub decryption_keys: Vec<&'a DecryptionKeyInfo>,
    pub require_encrypted_assertions: bool,
    /// Login policies (empty / null: none).
    pub require_authn_methods: &'a [String],
    pub require_authn_context: &'a [String],
    pub max_authn_age_seconds: Option<i64>,
    /// What `subject.key` is derived from, as configured (default `name_id`).
    pub subject_key_from: String,
}

/// What `GET /v1/tenants/{id}` answers for `id` in `generation`: the tenant's view, or only
/// its refusal when its file never loaded. `None`: no such tenant.
pub fn tenant_status<'a>(
    generation: &'a TenantSet,
    id: &'a str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Result<TenantView<'a>, RefusedTenant<'a>>> {
    let refusal = generation.refusal(id).map(AsRef::as_ref);
    match (generation.get(id), refusal) {
        (Some(tenant), refusal) => {
            let mut view = TenantView::new(tenant, now);
            if refusal.is_some() {
                view.status = "config_error";
                view.config_error = refusal;
            }
            Some(Ok(view))
        }
        (None, Some(refusal)) => Some(Err(RefusedTenant { id, status: "config_error", config_error: refusal })),
        (None, None) => None,
    }
}

/// A tenant whose file was refused and never loaded: nothing to show but why.
#[derive(Serialize)]
pub struct RefusedTenant<'a> {
    pub id: &'a str,
    pub status: &'static str,
    pub config_error: &'a FileProblem,
}

#[derive(Serialize)]
pub struct CertificateView<'a> {
    #[serde(flatten)]
    pub info: &'a KeyInfo,
    /// Negative once expired (SAML pins keys, so an expired certificate still verifies, but
    /// the IdP will rotate it).
    pub seconds_until_expiry: Option<i64>,
    /// `pinned` (the configuration: inline or a file) or `metadata` (the IdP's metadata).
    pub source: &'static str,
    /// notAfter in RFC 3339 (`not_after` above is OpenSSL's text form, kept as it was).
    pub not_after_rfc3339: Option<String>,
    /// Whole days until notAfter, rounded down: -1 once expired.
    pub days_left: Option<i64>,
    /// When this certificate last verified an accepted login on THIS replica (RFC 3339); null
    /// when it has not since the replica started. During a rollover: is the new one used yet?
    pub last_used_at: Option<String>,
}

impl<'a> TenantView<'a> {
    pub fn new(tenant: &'a TenantConfig, now: chrono::DateTime<chrono::Utc>) -> TenantView<'a> {
        let p = &tenant.policy;
        TenantView {
            id: &tenant.id,
            status: tenant.availability().as_str(),
            config_error: None,
            idp_entity_id: &p.idp_entity_id,
            sp_entity_id: &p.sp_entity_id,
            acs_url: &p.acs_url,
            acs_urls: p.acs_urls().collect(),
            clock_skew_seconds: p.clock_skew_seconds,
            relaxations: [
                ("allow_sha1", p.allow_sha1),
                ("allow_idp_initiated", p.allow_idp_initiated),
                ("allow_bare_assertion", p.allow_bare_assertion),
                ("allow_missing_authn_statement", p.allow_missing_authn_statement),
                ("allow_rsa_pkcs1_key_transport", p.allow_rsa_pkcs1_key_transport),
                ("allow_unsigned_logout_messages", !tenant.sp.require_signed_logout_messages),
            ]
            .into_iter()
            .collect(),
            certificates: p
                .keys
                .iter()
                .map(|k| CertificateView {
                    info: &k.info,
                    seconds_until_expiry: k.not_after.map(|t| (t - now).num_seconds()),
                    source: lifecycle::source(k),
                    not_after_rfc3339: k.not_after.map(crate::saml::time::format),
                    days_left: k.not_after.map(|t| lifecycle::days_left(t, now)),
                    last_used_at: None,
                })
                .collect(),
            metadata: tenant.metadata.as_ref(),
            decryption_keys: p.decryption_keys.iter().map(|k| &k.info).collect(),
            require_encrypted_assertions: p.require_encrypted_assertions,
            require_authn_methods: &p.require_authn_methods,
            require_authn_context: &p.require_authn_context,
            max_authn_age_seconds: p.max_authn_age_seconds,
            subject_key_from: p.subject_key_from.to_string(),
        }
    }
}

impl TenantView<'_> {
    /// Fills each certificate's `last_used_at` from this replica's record, by fingerprint.
    pub fn with_last_used(mut self, last_used: &HashMap<String, DateTime<Utc>>) -> Self {
        for certificate in &mut self.certificates {
            certificate.last_used_at =
                last_used.get(&certificate.info.sha256_fingerprint).map(|at| crate::saml::time::format(*at));
        }
        self
    }
}

/// `GET /v1/tenants/{id}/failures`.
#[derive(Serialize)]
pub struct FailuresBody<'a> {
    pub tenant: &'a str,
    /// Newest first, on the replica that answered only.
    pub failures: Vec<crate::service::activity::Failure>,
}

/// The query string of `GET /v1/tenants`; an unknown parameter is refused, not ignored (a
/// misspelt filter must not list every tenant as if it matched).
pub fn tenant_query(query: &str) -> Result<lifecycle::TenantQuery, Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        page_size: Option<usize>,
        page_token: Option<String>,
        expiring_within_days: Option<i64>,
        state: Option<String>,
    }
    let parsed: Query =
        actix_web::web::Query::from_query(query).map(actix_web::web::Query::into_inner).map_err(|e| {
            Error::new(
                crate::saml::Code::MalformedRequest,
                format!("query must be page_size, page_token, expiring_within_days, state: {e}"),
            )
        })?;
    if parsed.page_size == Some(0) {
        return Err(Error::new(crate::saml::Code::MalformedRequest, "page_size must be 1..=1000"));
    }
    Ok(lifecycle::TenantQuery {
        page_size: parsed.page_size.unwrap_or(0),
        page_token: parsed.page_token.filter(|t| !t.is_empty()),
        expiring_within_days: parsed.expiring_within_days,
        state: parsed.state,
    })
}
