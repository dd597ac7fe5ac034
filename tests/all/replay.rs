//! Replay protection (SAML profiles §4.1.4.5) at the service: what the record is keyed on.

use crate::support::*;
use chrono::Utc;
use saml_validator::config::Config;
use saml_validator::saml::{Code, Input};
use saml_validator::service::{Service, ValidateRequest};
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};

#[test]
fn replay_is_scoped_to_the_issuer_not_the_tenant() {
    // Three tenants trusting the same IdP key, SP entity ID and ACS URL (a help desk whose
    // customers share one multi-tenant IdP app): one stolen assertion is usable once in all.
    let idp = TestIdp::generate().unwrap();
    let mut text = config_text(&idp, "");
    for id in ["fabrikam", "tailspin"] {
        text.push_str(&fabrikam_tenant(&idp).replace("\"fabrikam\"", &format!("\"{id}\"")));
    }
    let service = Service::new(&Config::parse(&text, std::path::Path::new("."), Utc::now()).unwrap());
    let now = Utc::now();
    let encoded = post_binding(
        &ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), now, 10, 1).signed(&idp, Signing::Assertion).unwrap(),
    );
    let attempt = |tenant: &str| {
        let request = ValidateRequest {
            tenant,
            saml_response: Input::Base64(encoded.as_bytes()),
            expected_request_id: Some(REQUEST_ID),
            expected_acs_url: None,
        };
        block_on(service.validate(&request, now)).map(|v| v.assertion_id).map_err(|e| e.code)
    };
    assert!(attempt("contoso").is_ok());
    assert_eq!(attempt("fabrikam"), Err(Code::Replayed));
    assert_eq!(attempt("tailspin"), Err(Code::Replayed));
    assert_eq!(attempt("contoso"), Err(Code::Replayed));
    // Another assertion from the same IdP is still fresh for another tenant.
    let other = post_binding(
        &ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), now, 10, 2).signed(&idp, Signing::Assertion).unwrap(),
    );
    let request = ValidateRequest {
        tenant: "fabrikam",
        saml_response: Input::Base64(other.as_bytes()),
        expected_request_id: Some(REQUEST_ID),
        expected_acs_url: None,
    };
    assert!(block_on(service.validate(&request, now)).is_ok());
}
