//! Single Logout use cases, for both transports and the CLI, beside the AuthnRequest ones
//! (`sp`): the SP's LogoutRequest (`POST /v1/logout-requests`, gRPC `CreateLogoutRequest`),
//! its LogoutResponse to an IdP's request (`POST /v1/logout-responses`,
//! `CreateLogoutResponse`), and the judgement of what the IdP sent (`POST /v1/logout/validate`,
//! `ValidateLogout`), whose message ID is then recorded in the replay store like an assertion's.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::sp::{default_binding, fresh_id, Delivery};
use super::{usable, Service};
use crate::saml::authn_request::{Binding, Outgoing, Parameter};
use crate::saml::logout::{self, LogoutRequest, LogoutResponse, NameId};
use crate::saml::logout_check::{self, Checked, Delivered, LogoutPolicy, Message, SignedBy};
use crate::saml::{error::quote, structure, time, Code, Error};
use crate::tenants::TenantConfig;

/// Longest NameID value or SessionIndex a caller may ask to send (an Entra NameID is a UPN or
/// a GUID; persistent NameIDs are 44 characters of base64).
const MAX_VALUE_BYTES: usize = 1024;
/// Most session indexes in one LogoutRequest.
const MAX_SESSION_INDEXES: usize = 32;

fn malformed(message: impl Into<String>) -> Error {
    Error::new(Code::MalformedRequest, message)
}

/// The body of `POST /v1/logout-requests`, the gRPC request's fields and the CLI's flags.
#[derive(Clone, Debug, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequestParams {
    #[arg(long)]
    pub tenant: String,
    /// The NameID of the login being ended, exactly as the validated login answered it.
    #[arg(long)]
    pub name_id: String,
    #[serde(default)]
    #[arg(long)]
    pub name_id_format: Option<String>,
    #[serde(default)]
    #[arg(long)]
    pub name_qualifier: Option<String>,
    #[serde(default)]
    #[arg(long)]
    pub sp_name_qualifier: Option<String>,
    /// The login's `session.index` (Entra's SessionIndex), to end only that session.
    #[serde(default)]
    #[arg(long = "session-index")]
    pub session_indexes: Vec<String>,
    #[serde(default)]
    #[arg(long)]
    pub relay_state: Option<String>,
    /// `redirect` or `post`.
    #[serde(default = "default_binding")]
    #[arg(long, default_value = "redirect")]
    pub binding: String,
}

/// The body of `POST /v1/logout-responses` (gRPC and CLI alike): the SP's answer to an IdP's
/// LogoutRequest.
#[derive(Clone, Debug, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct LogoutResponseParams {
    #[arg(long)]
    pub tenant: String,
    /// The validated LogoutRequest's `request_id`.
    #[arg(long)]
    pub in_response_to: String,
    /// `success` (default), `requester`, `responder`, `version_mismatch` or a status URI.
    #[serde(default)]
    #[arg(long)]
    pub status: Option<String>,
    /// A second-level status URI, e.g. `urn:oasis:names:tc:SAML:2.0:status:PartialLogout`.
    #[serde(default)]
    #[arg(long)]
    pub second_level_status: Option<String>,
    #[serde(default)]
    #[arg(long)]
    pub status_message: Option<String>,
    /// The RelayState that came with the LogoutRequest (bindings 3.4.3: returned unchanged).
    #[serde(default)]
    #[arg(long)]
    pub relay_state: Option<String>,
    /// `redirect` or `post`.
    #[serde(default = "default_binding")]
    #[arg(long, default_value = "redirect")]
    pub binding: String,
}

/// The reply to both: where to send the browser. For a LogoutRequest, keep `id` and pass it
/// back as `expected_request_id` when the IdP's LogoutResponse arrives.
#[derive(Clone, Debug, Serialize)]
pub struct LogoutMessageBody {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// A LogoutRequest's NotOnOrAfter (issue_instant + `authn_request_lifetime_seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The body of `POST /v1/logout/validate` (gRPC and CLI alike): the message exactly as the
/// browser delivered it.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ValidateLogoutParams {
    #[arg(long)]
    pub tenant: String,
    /// `redirect` (default) or `post`.
    #[serde(default)]
    #[arg(long)]
    pub binding: Option<String>,
    /// Redirect binding: the raw query string of the request to `slo_url`, untouched.
    #[serde(default)]
    #[arg(long)]
    pub query: Option<String>,
    /// POST binding: the `SAMLRequest` form value (base64).
    #[serde(default)]
    #[arg(long)]
    pub saml_request: Option<String>,
    /// POST binding: the `SAMLResponse` form value (base64).
    #[serde(default)]
    #[arg(long)]
    pub saml_response: Option<String>,
    /// POST binding: the `RelayState` form value.
    #[serde(default)]
    #[arg(long)]
    pub relay_state: Option<String>,
    /// For a LogoutResponse: the `id` of the LogoutRequest the caller sent.
    #[serde(default)]
    #[arg(long)]
    pub expected_request_id: Option<String>,
}

/// An accepted logout message (HTTP 200, gRPC `valid = true`).
#[derive(Clone, Debug, Serialize)]
pub struct LogoutValidBody {
    pub valid: bool,
    pub tenant: String,
    /// `LogoutRequest` or `LogoutResponse`.
    pub message_type: &'static str,
    pub binding: &'static str,
    /// `query`, `xml`, or `unsigned` (only under the relaxation).
    pub signed_by: SignedBy,
    pub issuer: String,
    pub issue_instant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_state: Option<String>,
    /// LogoutRequest: its ID, to echo as the LogoutResponse's `in_response_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_id: Option<NameId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_id_encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_indexes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_on_or_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// LogoutResponse: its ID, its InResponseTo (equal to `expected_request_id`) and status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_response_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_level_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

impl Service {
    /// A new LogoutRequest for the tenant `params` names, issued at `now`.
    pub fn create_logout_request(
        &self,
        params: &LogoutRequestParams,
        now: DateTime<Utc>,
    ) -> Result<LogoutMessageBody, Error> {
        let tenant = self.known_tenant(&params.tenant)?;
        logout_request(&tenant, params, &fresh_id()?, now)
    }

    /// A new LogoutResponse for the tenant `params` names, issued at `now`.
    pub fn create_logout_response(
        &self,
        params: &LogoutResponseParams,
        now: DateTime<Utc>,
    ) -> Result<LogoutMessageBody, Error> {
        let tenant = self.known_tenant(&params.tenant)?;
        logout_response(&tenant, params, &fresh_id()?, now)
    }

    /// Judges a delivered logout message with the tenant's current trust, then records its ID
    /// (a second use of the same message, for any tenant, is `logout_replayed`).
    pub async fn validate_logout(
        &self,
        params: &ValidateLogoutParams,
        now: DateTime<Utc>,
    ) -> Result<LogoutValidBody, Error> {
        let checked = self.judge_logout(params, now)?;
        self.remember_logout(&params.tenant, checked, now).await
    }

    /// Records a judged message's ID as used: `logout_replayed` if it already was. A store that
    /// cannot record answers `replay_store_unavailable`, as for logins.
    pub async fn remember_logout(
        &self,
        tenant: &str,
        checked: Checked,
        now: DateTime<Utc>,
    ) -> Result<LogoutValidBody, Error> {
        // Only a signed message is recorded: an unsigned one (the relaxation) can carry any
        // ID its sender invents, so recording it refuses nothing and would let anyone fill the
        // store that logins rely on. Logout IDs live apart from assertion IDs (NUL cannot occur
        // in an issuer), so a message cannot burn an assertion ID or be burnt by one.
        let fresh = checked.signed_by == SignedBy::Unsigned
            || self
                .replay
                .first_use(
                    &format!("{}\0logout", checked.issuer),
                    &checked.id,
                    checked.issue_instant,
                    now,
                    checked.remember_until,
                )
                .await?;
        if !fresh {
            return Err(Error::new(
                Code::LogoutReplayed,
                format!("logout message {} from this issuer was already accepted", quote(&checked.id)),
            ));
        }
        if checked.signed_by == SignedBy::Unsigned {
            tracing::warn!(
                target: "validation",
                tenant,
                "RELAXATION require_signed_logout_messages = false: accepted an unsigned logout message"
            );
        }
        Ok(valid_body(tenant, checked))
    }

    /// The pure part of [`Service::validate_logout`]: nothing is recorded.
    pub fn judge_logout(&self, params: &ValidateLogoutParams, now: DateTime<Utc>) -> Result<Checked, Error> {
        let delivered = delivered(params)?;
        let generation = self.tenants.current();
        let tenant = usable(&generation, &params.tenant)?;
        let slo_url = tenant.sp.slo_url.as_deref().ok_or_else(|| {
            Error::new(
                Code::SloUrlUnknown,
                format!(
                    "tenant {} has no slo_url: the Destination of logout messages cannot be checked",
                    quote(&tenant.id)
                ),
            )
        })?;
        let policy =
            LogoutPolicy { tenant: &tenant.policy, slo_url, require_signed: tenant.sp.require_signed_logout_messages };
        logout_check::check(delivered, &policy, &generation.limits, params.expected_request_id.as_deref(), now)
    }
}

/// What the caller delivered, in the one shape its binding allows.
fn delivered(params: &ValidateLogoutParams) -> Result<Delivered<'_>, Error> {
    let binding = Binding::parse(params.binding.as_deref().unwrap_or("redirect"))?;
    match (binding, &params.query, &params.saml_request, &params.saml_response) {
        (Binding::Redirect, Some(query), None, None) if params.relay_state.is_none() => {
            Ok(Delivered::Redirect { query })
        }
        (Binding::Redirect, ..) => {
            Err(malformed("the redirect binding takes only `query`, the raw query string (RelayState stays inside it)"))
        }
        (Binding::Post, None, Some(value), None) => {
            Ok(Delivered::Post { parameter: Parameter::Request, value, relay_state: params.relay_state.as_deref() })
        }
        (Binding::Post, None, None, Some(value)) => {
            Ok(Delivered::Post { parameter: Parameter::Response, value, relay_state: params.relay_state.as_deref() })
        }
        (Binding::Post, ..) => Err(malformed("the post binding takes exactly one of saml_request and saml_response")),
    }
}

fn valid_body(tenant: &str, checked: Checked) -> LogoutValidBody {
    let mut body = LogoutValidBody {
        valid: true,
        tenant: tenant.to_string(),
        message_type: "LogoutRequest",
        binding: checked.binding.as_str(),
        signed_by: checked.signed_by,
        issuer: checked.issuer,
        issue_instant: time::format(checked.issue_instant),
        relay_state: checked.relay_state,
        request_id: None,
        name_id: None,
        name_id_encrypted: None,
        session_indexes: None,
        not_on_or_after: None,
        reason: None,
        response_id: None,
        in_response_to: None,
        success: None,
        status: None,
        second_level_status: None,
        status_message: None,
    };
    match checked.message {
        Message::Request(request) => {
            body.request_id = Some(checked.id);
            body.name_id = Some(request.name_id);
            body.name_id_encrypted = Some(request.name_id_encrypted);
            body.session_indexes = Some(request.session_indexes);
            body.not_on_or_after = request.not_on_or_after.map(time::format);
            body.reason = request.reason;
        }
        Message::Response(response) => {
            body.message_type = "LogoutResponse";
            body.success = Some(response.success());
            body.response_id = Some(checked.id);
            body.in_response_to = Some(response.in_response_to);
            body.status = Some(response.status);
            body.second_level_status = response.second_level_status;
            body.status_message = response.status_message;
        }
    }
    body
}

fn bounded(what: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(malformed(format!("{what} must be 1 to {MAX_VALUE_BYTES} bytes")));
    }
    // XML 1.0 section 2.2: a control character cannot be written even escaped, so the message
    // could not be built; the caller's value is what is wrong.
    if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
        return Err(malformed(format!("{what} contains U+{:04X}, which XML cannot carry", u32::from(c))));
    }
    Ok(())
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A URI attribute the caller supplies (NameID Format, qualifiers, status URIs).
fn identifier(what: &str, value: Option<&str>) -> Result<(), Error> {
    match value.and_then(crate::saml::url::identifier_problem) {
        Some(problem) => Err(malformed(format!("{what}: {problem}"))),
        None => value.map_or(Ok(()), |v| bounded(what, v)),
    }
}

/// The IdP's SingleLogoutService for `binding`, or the code that says the tenant has none.
fn idp_slo_url(tenant: &TenantConfig, binding: Binding, response: bool) -> Result<&str, Error> {
    tenant.sp.idp_slo_url(&tenant.idp_slo_endpoints, binding, response).ok_or_else(|| {
        Error::new(
            Code::IdpSloUrlUnknown,
            format!(
                "tenant {} has no IdP logout URL for the {} binding: set idp_slo_url, or metadata with a SingleLogoutService for {}",
                quote(&tenant.id),
                binding.as_str(),
                binding.uri()
            ),
        )
    })
}

/// One LogoutRequest for `tenant` with `id`, issued at `now` (the CLI calls this directly).
pub fn logout_request(
    tenant: &TenantConfig,
    params: &LogoutRequestParams,
    id: &str,
    now: DateTime<Utc>,
) -> Result<LogoutMessageBody, Error> {
    let binding = Binding::parse(&params.binding)?;
    bounded("name_id", &params.name_id)?;
    identifier("name_id_format", params.name_id_format.as_deref())?;
    identifier("name_qualifier", params.name_qualifier.as_deref())?;
    identifier("sp_name_qualifier", params.sp_name_qualifier.as_deref())?;
    if params.session_indexes.len() > MAX_SESSION_INDEXES {
        return Err(malformed(format!("at most {MAX_SESSION_INDEXES} session_indexes")));
    }
    for index in &params.session_indexes {
        bounded("session_indexes[]", index)?;
    }
    let destination = idp_slo_url(tenant, binding, false)?;
    let name_id = NameId {
        value: params.name_id.clone(),
        format: params.name_id_format.clone(),
        name_qualifier: params.name_qualifier.clone(),
        sp_name_qualifier: params.sp_name_qualifier.clone(),
    };
    let expires_at = now + Duration::seconds(tenant.sp.authn_request_lifetime_seconds);
    let request = LogoutRequest {
        id,
        issue_instant: now,
        destination,
        issuer: &tenant.policy.sp_entity_id,
        name_id: &name_id,
        session_indexes: &params.session_indexes,
        not_on_or_after: Some(expires_at),
    };
    let mut body = encode(tenant, request.render(), binding, params.relay_state.as_deref(), now)?;
    body.expires_at = Some(time::format(expires_at));
    Ok(body)
}

/// One LogoutResponse for `tenant` with `id`, issued at `now` (the CLI calls this directly).
pub fn logout_response(
    tenant: &TenantConfig,
    params: &LogoutResponseParams,
    id: &str,
    now: DateTime<Utc>,
) -> Result<LogoutMessageBody, Error> {
    let binding = Binding::parse(&params.binding)?;
    // An ID the validator would accept: it came from a validated LogoutRequest.
    if !structure::is_safe_id(&params.in_response_to) || params.in_response_to.len() > MAX_VALUE_BYTES {
        return Err(malformed(format!("in_response_to {} is not a message ID", quote(&params.in_response_to))));
    }
    let status = logout::status_uri(params.status.as_deref().unwrap_or("success"))?;
    let second_level_status = params.second_level_status.as_deref().map(logout::status_uri).transpose()?;
    if let Some(message) = &params.status_message {
        bounded("status_message", message)?;
    }
    let response = LogoutResponse {
        id,
        in_response_to: &params.in_response_to,
        issue_instant: now,
        destination: idp_slo_url(tenant, binding, true)?,
        issuer: &tenant.policy.sp_entity_id,
        status: &status,
        second_level_status: second_level_status.as_deref(),
        status_message: params.status_message.as_deref(),
    };
    encode(tenant, response.render(), binding, params.relay_state.as_deref(), now)
}

/// Signed with the tenant's first SP signing key, as AuthnRequests are.
fn encode(
    tenant: &TenantConfig,
    outgoing: Outgoing<'_>,
    binding: Binding,
    relay_state: Option<&str>,
    now: DateTime<Utc>,
) -> Result<LogoutMessageBody, Error> {
    let id = outgoing.id.to_string();
    let encoded = outgoing.encode(binding, relay_state, tenant.sp.signing_keys.first())?;
    Ok(LogoutMessageBody { delivery: Delivery::new(id, now, binding, encoded), expires_at: None })
}
