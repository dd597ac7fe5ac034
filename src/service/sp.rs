//! The SP-initiated login use cases, for both transports and the CLI: an AuthnRequest
//! (`POST /v1/authn-requests`, gRPC `CreateAuthnRequest`) and SP metadata
//! (`GET /v1/tenants/{id}/sp-metadata`). The documents come from the pure core
//! (`saml::authn_request`, `saml::sp_metadata`); this module supplies what the core may not take
//! for itself: the tenant's current settings, the random request ID and the instant. The
//! transports authorize the caller for the tenant first (`transport::auth`).

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Service;
use crate::saml::authn_request::{self, AuthnRequest, Binding, Encoded, Parameter};
use crate::saml::sp_metadata::SpMetadata;
use crate::saml::{error::quote, time, Code, Error};
use crate::tenants::TenantConfig;

/// How long published SP metadata says it stays valid: long enough for an administrator to
/// upload it, short enough that a removed signing certificate does not linger at the IdP.
pub const SP_METADATA_VALIDITY_DAYS: i64 = 7;

/// The body of `POST /v1/authn-requests` (and the gRPC request's fields).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthnRequestParams {
    pub tenant: String,
    #[serde(default)]
    pub relay_state: Option<String>,
    #[serde(default)]
    pub force_authn: bool,
    #[serde(default)]
    pub is_passive: bool,
    #[serde(default = "default_binding")]
    pub binding: String,
    /// The ACS URL to ask the IdP to answer on: one of the tenant's (default its `acs_url`).
    #[serde(default)]
    pub acs_url: Option<String>,
}

/// Both SP message kinds go by redirect unless the caller asks for POST.
pub(super) fn default_binding() -> String {
    Binding::Redirect.as_str().to_string()
}

/// The reply: where to send the browser, and the `id` the caller keeps in the user's session
/// and passes back as `expected_request_id`.
#[derive(Clone, Debug, Serialize)]
pub struct AuthnRequestBody {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// issue_instant + the tenant's `authn_request_lifetime_seconds` (informational).
    pub expires_at: String,
}

/// How the browser carries one of the SP's messages to the IdP (AuthnRequest, LogoutRequest or
/// LogoutResponse alike, as `authn_request::Encoded` carries them): the message's ID and
/// instant, then a URL to redirect to or a form to post.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: String,
    pub issue_instant: String,
    pub binding: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<PostFields>,
}

/// The POST binding's form fields, named as the IdP expects them.
#[derive(Clone, Debug, Serialize)]
pub struct PostFields {
    #[serde(rename = "SAMLRequest", skip_serializing_if = "Option::is_none")]
    pub saml_request: Option<String>,
    #[serde(rename = "SAMLResponse", skip_serializing_if = "Option::is_none")]
    pub saml_response: Option<String>,
    #[serde(rename = "RelayState", skip_serializing_if = "Option::is_none")]
    pub relay_state: Option<String>,
}

impl Delivery {
    /// The message `id`, issued at `now` and encoded for `binding`.
    pub(super) fn new(id: String, now: DateTime<Utc>, binding: Binding, encoded: Encoded) -> Delivery {
        let (redirect_url, action, fields) = match encoded {
            Encoded::Redirect { url } => (Some(url), None, None),
            Encoded::Post { action, parameter, value, relay_state } => {
                let (saml_request, saml_response) = match parameter {
                    Parameter::Request => (Some(value), None),
                    Parameter::Response => (None, Some(value)),
                };
                (None, Some(action), Some(PostFields { saml_request, saml_response, relay_state }))
            }
        };
        Delivery { id, issue_instant: time::format(now), binding: binding.as_str(), redirect_url, action, fields }
    }
}

/// A fresh ID from the CSPRNG: the request ID binds the IdP's answer to the browser session
/// that asked, so it must be unguessable (a guessed ID lets an attacker log a victim in as
/// the attacker: login CSRF).
pub fn fresh_id() -> Result<String, Error> {
    let mut random = [0u8; 16];
    openssl::rand::rand_bytes(&mut random)
        .map_err(|e| Error::new(Code::Internal, format!("the random number generator failed: {e}")))?;
    Ok(authn_request::request_id(&random))
}

impl Service {
    /// A new AuthnRequest for the tenant `params` names, issued at `now`.
    pub fn create_authn_request(
        &self,
        params: &AuthnRequestParams,
        now: DateTime<Utc>,
    ) -> Result<AuthnRequestBody, Error> {
        let tenant = self.known_tenant(&params.tenant)?;
        authn_request(&tenant, params, &fresh_id()?, now)
    }

    /// The tenant's SP metadata XML, valid for [`SP_METADATA_VALIDITY_DAYS`] from `now`.
    pub fn sp_metadata(&self, tenant: &str, now: DateTime<Utc>) -> Result<String, Error> {
        let tenant = self.known_tenant(tenant)?;
        sp_metadata(&tenant, &fresh_id()?, now)
    }

    pub(super) fn known_tenant(&self, id: &str) -> Result<std::sync::Arc<TenantConfig>, Error> {
        self.tenant(id).ok_or_else(|| Error::new(Code::UnknownTenant, format!("no tenant {}", quote(id))))
    }
}

/// One AuthnRequest for `tenant` with `id`, issued at `now` (the CLI calls this directly).
pub fn authn_request(
    tenant: &TenantConfig,
    params: &AuthnRequestParams,
    id: &str,
    now: DateTime<Utc>,
) -> Result<AuthnRequestBody, Error> {
    let binding = Binding::parse(&params.binding)?;
    authn_request::check_relay_state(params.relay_state.as_deref())?;
    // Only a URL the tenant accepts: an AuthnRequest naming another would have the IdP post
    // the user's assertion there (Entra refuses an unregistered Reply URL; others may not).
    let acs_url = params.acs_url.as_deref().unwrap_or(&tenant.policy.acs_url);
    crate::saml::requirements::expected_acs(&tenant.policy, Some(acs_url))?;
    let sp = &tenant.sp;
    let destination = sp.sso_url(&tenant.idp_sso_endpoints, binding).ok_or_else(|| {
        Error::new(
            Code::IdpSsoUrlUnknown,
            format!(
                "tenant {} has no IdP SSO URL for the {} binding: set idp_sso_url, or metadata with a SingleSignOnService for {}",
                quote(&tenant.id),
                binding.as_str(),
                binding.uri()
            ),
        )
    })?;
    let request = AuthnRequest {
        id,
        issue_instant: now,
        destination,
        acs_url,
        issuer: &tenant.policy.sp_entity_id,
        name_id_format: &sp.name_id_format,
        force_authn: params.force_authn,
        is_passive: params.is_passive,
        requested_authn_context: &sp.requested_authn_context,
    };
    let encoded = request.encode(binding, params.relay_state.as_deref(), sp.signing_keys.first())?;
    let expires_at = now + Duration::seconds(sp.authn_request_lifetime_seconds);
    Ok(AuthnRequestBody {
        delivery: Delivery::new(id.to_string(), now, binding, encoded),
        expires_at: time::format(expires_at),
    })
}

/// The SP metadata for `tenant`, valid for [`SP_METADATA_VALIDITY_DAYS`] from `now`.
pub fn sp_metadata(tenant: &TenantConfig, id: &str, now: DateTime<Utc>) -> Result<String, Error> {
    // `decryption_certificate_files`, each checked at load to carry one of the tenant's
    // decryption keys: the IdP encrypts to what it finds here (Entra: token encryption).
    let encryption_certificates = tenant
        .decryption_certificates
        .iter()
        .map(|certificate| certificate.to_der().map(|der| base64::engine::general_purpose::STANDARD.encode(der)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::new(Code::Internal, "a decryption certificate could not be encoded"))?;
    SpMetadata {
        id,
        entity_id: &tenant.policy.sp_entity_id,
        acs_urls: &tenant.policy.acs_urls().collect::<Vec<_>>(),
        slo_url: tenant.sp.slo_url.as_deref(),
        name_id_format: &tenant.sp.name_id_format,
        signing_keys: &tenant.sp.signing_keys,
        encryption_certificates: &encryption_certificates,
        valid_until: now + Duration::days(SP_METADATA_VALIDITY_DAYS),
    }
    .render()
}
