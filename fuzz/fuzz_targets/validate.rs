//! The whole validation, XML in: must never panic, whatever the bytes. The tenant trusts a fixed
//! certificate from the conformance corpus, so corpus documents reach signature verification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Input, Limits, Request, TenantPolicy};

fn policy() -> TenantPolicy {
    let cert = include_str!("../../tests/fixtures/idp-responses/entra-ssoready-signed-assertion.crt.pem");
    let mut policy = TenantPolicy::new(
        "https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec/",
        "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml",
        "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml/acs",
        vec![TrustedKey::from_certificate_text(cert).expect("fixture certificate")],
    );
    policy.allow_idp_initiated = true;
    policy.allow_bare_assertion = true;
    policy
}

fuzz_target!(|data: &[u8]| {
    thread_local! { static POLICY: TenantPolicy = policy(); }
    let now = saml::time::parse("2023-11-17T18:39:32Z").expect("instant");
    POLICY.with(|policy| {
        let request = Request { expected_request_id: None, expected_acs_url: None, now };
        let _ = saml::validate(Input::Xml(data), policy, &Limits::default(), &request);
        let _ = saml::validate(Input::Base64(data), policy, &Limits::default(), &request);
    });
});
