//! What the admin who set up SSO should change, per failed check: Entra ID first (the fields of
//! its "Basic SAML Configuration" and "SAML Certificates" sections), then any IdP. Built from
//! the tenant's own values, so the hint says exactly what to type.

use super::error::Code;
use super::policy::TenantPolicy;
use super::request::Request;

pub(super) fn hint(code: Code, policy: &TenantPolicy, request: &Request<'_>) -> Option<String> {
    let text = match code {
        Code::AudienceMismatch => format!(
            "In Entra, Basic SAML Configuration → Identifier (Entity ID) must be `{}` (other IdPs: the SP entity ID / audience).",
            policy.sp_entity_id
        ),
        Code::DestinationMismatch | Code::RecipientMismatch => format!(
            "In Entra, Basic SAML Configuration → Reply URL (Assertion Consumer Service URL) must be `{}`{} (other IdPs: the ACS URL).",
            request.expected_acs_url.unwrap_or(&policy.acs_url),
            if policy.other_acs_urls.is_empty() { "" } else { ", or another of the tenant's acs_urls" }
        ),
        Code::IssuerMismatch => format!(
            "The tenant's idp_entity_id is `{}`. In Entra it is the \"Microsoft Entra Identifier\" (Single sign-on → Set up), `https://sts.windows.net/<directory id>/`; copy it exactly, with the trailing slash.",
            policy.idp_entity_id
        ),
        Code::SignatureMissing => "Nothing in the response is signed. Entra signs the assertion by default; in Entra, SAML Certificates → Signing Option, choose \"Sign SAML assertion\" or \"Sign SAML response and assertion\".".into(),
        Code::Sha1NotAllowed => "The IdP signs with SHA-1. In Entra, SAML Certificates → Signing Algorithm: choose SHA-256 (or set allow_sha1 for this tenant, a relaxation).".into(),
        Code::AssertionExpired | Code::SubjectConfirmationExpired | Code::NotYetValid | Code::IssuedInFuture => {
            "The response's validity window does not contain this service's clock: check that the IdP's and this service's clocks are right (NTP), that the response is posted within minutes of sign-in, and, only if the clocks cannot be fixed, the tenant's clock_skew_seconds.".into()
        }
        Code::AssertionTooOld => "The assertion was issued long ago: a saved response cannot be replayed; sign in again.".into(),
        Code::InResponseToMismatch => "The response answers another AuthnRequest than the one given as expected_request_id: pass the ID of the AuthnRequest this browser's login started with.".into(),
        Code::UnsolicitedResponse => "The login did not start at the help desk (Entra's \"Test this application\" or My Apps start it at the IdP). Either start it with an AuthnRequest and pass its ID, or set allow_idp_initiated for this tenant.".into(),
        Code::StatusNotSuccess => "The IdP refused the sign-in. In Entra, see Sign-in logs for the AADSTS code (often: the user is not assigned to the application, or the Reply URL is not registered).".into(),
        Code::AssertionNotEncrypted => "The tenant requires encrypted assertions. In Entra, Token encryption: import the SP's encryption certificate and activate it.".into(),
        Code::DecryptionFailed | Code::EncryptedAssertionUnsupported => "The assertion could not be decrypted with the tenant's decryption keys: check that the certificate activated in Entra's Token encryption is the one whose key the tenant holds.".into(),
        Code::AuthnStatementMissing => "The assertion says nothing about the sign-in (no AuthnStatement); for IdPs that omit it, set allow_missing_authn_statement.".into(),
        Code::BareAssertionNotAllowed => "A bare Assertion was posted (WS-Federation style); configure the IdP for SAML 2.0 responses, or set allow_bare_assertion.".into(),
        _ => return None,
    };
    Some(text)
}
