//! A tenant's service-provider side for SP-initiated login: where to send AuthnRequests, what
//! they ask for, and the SP's own signing keys (files only; their bytes never leave this
//! module except as parsed keys, and never reach a log).

use super::files::{FileRules, MAX_FILE_BYTES};
use super::reader::Reader;
use crate::saml::authn_request::{Binding, NAME_ID_UNSPECIFIED};
pub use crate::saml::metadata::SloEndpoint;
use crate::saml::sign::SigningKey;

/// Longest `authn_request_lifetime_seconds`: a day is far beyond any login.
const MAX_REQUEST_LIFETIME_SECONDS: i64 = 86_400;

#[derive(Clone, Debug)]
pub struct SpSettings {
    /// `sign_on_url`: the SP's own login page, where an IdP-launched "Test" or app tile starts
    /// SP-initiated login (Entra's "Sign on URL"). Shown on the admin page only.
    pub sign_on_url: Option<String>,
    /// `idp_sso_url`: the IdP's SingleSignOnService for both bindings, overriding metadata.
    pub idp_sso_url: Option<String>,
    /// `idp_slo_url`: the IdP's SingleLogoutService for both bindings (requests and
    /// responses), overriding metadata.
    pub idp_slo_url: Option<String>,
    /// `slo_url`: the SP's own logout endpoint, the Destination every IdP logout message must
    /// name; published in SP metadata as SingleLogoutService for both bindings.
    pub slo_url: Option<String>,
    /// `require_signed_logout_messages` (default true). RELAXATION when false: unsigned
    /// LogoutRequests and LogoutResponses are accepted (for IdPs that do not sign them).
    pub require_signed_logout_messages: bool,
    /// `name_id_format` asked for in NameIDPolicy and published in SP metadata.
    pub name_id_format: String,
    /// `requested_authn_context`: AuthnContextClassRef URIs (Comparison="exact").
    pub requested_authn_context: Vec<String>,
    /// `authn_request_lifetime_seconds`: the `expires_at` the caller is told (informational:
    /// how long it should keep the request ID in the user's session).
    pub authn_request_lifetime_seconds: i64,
    /// `sp_signing_key_file(s)` with `sp_signing_certificate_file(s)`, pairwise; the first
    /// signs, all are published in SP metadata (rollover: publish the next one first).
    pub signing_keys: Vec<SigningKey>,
}

impl SpSettings {
    /// The IdP endpoint for `binding`: the configured `idp_sso_url`, else the metadata's
    /// SingleSignOnService with that binding.
    pub fn sso_url<'a>(&'a self, endpoints: &'a [(String, String)], binding: Binding) -> Option<&'a str> {
        self.idp_sso_url.as_deref().or_else(|| {
            endpoints
                .iter()
                .find(|(uri, location)| uri == binding.uri() && !location.is_empty())
                .map(|(_, location)| location.as_str())
        })
    }

    /// The IdP's SingleLogoutService for `binding`: `idp_slo_url`, else the metadata's
    /// endpoint with that binding (for a LogoutResponse its ResponseLocation when it has one,
    /// metadata 2.2.2).
    pub fn idp_slo_url<'a>(
        &'a self,
        endpoints: &'a [SloEndpoint],
        binding: Binding,
        response: bool,
    ) -> Option<&'a str> {
        self.idp_slo_url.as_deref().or_else(|| {
            let endpoint = endpoints.iter().find(|e| e.binding == binding.uri() && !e.location.is_empty())?;
            Some(endpoint.response_location.as_deref().filter(|_| response).unwrap_or(&endpoint.location))
        })
    }
}

pub(super) fn read(r: &mut Reader<'_>, files: &FileRules<'_>) -> SpSettings {
    let sign_on_url = r.string("sign_on_url");
    r.check_endpoint("sign_on_url", sign_on_url.as_deref());
    let idp_sso_url = r.string("idp_sso_url");
    r.check_endpoint("idp_sso_url", idp_sso_url.as_deref());
    let idp_slo_url = r.string("idp_slo_url");
    r.check_endpoint("idp_slo_url", idp_slo_url.as_deref());
    let slo_url = r.string("slo_url");
    r.check_endpoint("slo_url", slo_url.as_deref());
    let require_signed_logout_messages = r.boolean("require_signed_logout_messages", true);
    let name_id_format = r.string("name_id_format");
    r.check_identifier("name_id_format", name_id_format.as_deref());
    let name_id_format = name_id_format.unwrap_or_else(|| NAME_ID_UNSPECIFIED.to_string());
    let requested_authn_context = r.strings("requested_authn_context");
    for (i, class) in requested_authn_context.iter().enumerate() {
        if class.trim().is_empty() || class.chars().any(char::is_whitespace) {
            r.problem(&format!("requested_authn_context[{i}]"), format!("{class:?} is not a URI"));
        }
    }
    let authn_request_lifetime_seconds =
        r.integer("authn_request_lifetime_seconds", 600, 1..=MAX_REQUEST_LIFETIME_SECONDS);
    let signing_keys = signing_keys(r, files);
    SpSettings {
        sign_on_url,
        idp_sso_url,
        idp_slo_url,
        slo_url,
        require_signed_logout_messages,
        name_id_format,
        requested_authn_context,
        authn_request_lifetime_seconds,
        signing_keys,
    }
}

/// The singular keys for one key, the plural ones for a rollover; not both.
fn signing_keys(r: &mut Reader<'_>, files: &FileRules<'_>) -> Vec<SigningKey> {
    let key_file = r.string("sp_signing_key_file");
    let certificate_file = r.string("sp_signing_certificate_file");
    let key_files = r.strings("sp_signing_key_files");
    let certificate_files = r.strings("sp_signing_certificate_files");
    let singular = key_file.is_some() || certificate_file.is_some();
    let plural = !key_files.is_empty() || !certificate_files.is_empty();
    if singular && plural {
        r.problem("sp_signing_key_files", "set sp_signing_key_file(s) either singular or as lists, not both");
        return Vec::new();
    }
    let (keys, certificates, key_name, certificate_name) = if singular {
        (
            key_file.into_iter().collect::<Vec<_>>(),
            certificate_file.into_iter().collect::<Vec<_>>(),
            "sp_signing_key_file",
            "sp_signing_certificate_file",
        )
    } else {
        (key_files, certificate_files, "sp_signing_key_files", "sp_signing_certificate_files")
    };
    if keys.len() != certificates.len() {
        r.problem(
            key_name,
            format!(
                "{} key file(s) but {} certificate file(s) in {certificate_name}: each key needs its certificate",
                keys.len(),
                certificates.len()
            ),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, (key, certificate)) in keys.iter().zip(&certificates).enumerate() {
        let at = if singular { key_name.to_string() } else { format!("{key_name}[{i}]") };
        // The key file's content never goes into a message: only its name and OpenSSL's reason.
        let key_pem = match files.read(key, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => {
                r.problem(&at, e.to_string());
                continue;
            }
        };
        let certificate_pem = match files.read(certificate, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => {
                r.problem(certificate_name, e.to_string());
                continue;
            }
        };
        match SigningKey::from_pem(&key_pem, &certificate_pem) {
            Ok(parsed) => out.push(parsed),
            Err(e) => r.problem(&at, format!("{key} with {certificate}: {e}")),
        }
    }
    out
}
