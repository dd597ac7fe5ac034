//! Shared test support: a tenant trusting a freshly generated test IdP, and string surgery on
//! signed documents (how attackers edit them too).
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Input, Limits, Request, TenantPolicy, Validated};
use saml_validator::test_idp::{ResponseSpec, Signing, TestIdp};

pub const IDP: &str = "https://sts.windows.net/11111111-2222-3333-4444-555555555555/";
pub const SP: &str = "https://www.jitbit.com/web-helpdesk/";
pub const ACS: &str = "https://contoso.jitbit.example/helpdesk/User/Login";
pub const REQUEST_ID: &str = "_a1b2c3d4-request";

pub struct Harness {
    pub idp: TestIdp,
    pub policy: TenantPolicy,
    pub now: DateTime<Utc>,
    pub expected_request_id: Option<String>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_idp(TestIdp::generate().unwrap())
    }

    pub fn with_idp(idp: TestIdp) -> Harness {
        let policy = TenantPolicy {
            idp_entity_id: IDP.into(),
            sp_entity_id: SP.into(),
            acs_url: ACS.into(),
            clock_skew_seconds: 180,
            allow_sha1: false,
            allow_idp_initiated: false,
            allow_bare_assertion: false,
            allow_missing_authn_statement: false,
            keys: vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()],
            attribute_mapping: Default::default(),
        };
        let now = saml::time::parse("2026-11-29T10:00:00Z").unwrap();
        Harness { idp, policy, now, expected_request_id: Some(REQUEST_ID.into()) }
    }

    /// An Entra-shaped response issued at `now` for REQUEST_ID.
    pub fn spec(&self) -> ResponseSpec {
        ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), self.now, 10, 42)
    }

    pub fn signed(&self, signing: Signing) -> String {
        self.spec().signed(&self.idp, signing).unwrap()
    }

    pub fn check(&self, xml: &str) -> Result<Validated, saml::Error> {
        self.check_with(xml, &self.policy)
    }

    pub fn check_with(&self, xml: &str, policy: &TenantPolicy) -> Result<Validated, saml::Error> {
        let request = Request { expected_request_id: self.expected_request_id.as_deref(), now: self.now };
        saml::validate(Input::Xml(xml.as_bytes()), policy, &Limits::default(), &request)
    }

    /// The error code for `xml`, panicking with the document's verdict if it was accepted.
    pub fn code(&self, xml: &str) -> saml::Code {
        match self.check(xml) {
            Ok(v) => panic!("accepted, expected a rejection: {:?}", v.subject),
            Err(e) => e.code,
        }
    }
}

/// Replaces exactly one occurrence of `from`.
pub fn replace_once(xml: &str, from: &str, to: &str) -> String {
    assert_eq!(xml.matches(from).count(), 1, "expected exactly one {from:?} in the document");
    xml.replacen(from, to, 1)
}

/// The substring from the first `start` to the end of the first `end` after it.
pub fn slice<'a>(xml: &'a str, start: &str, end: &str) -> &'a str {
    let from = xml.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let to = from + xml[from..].find(end).unwrap_or_else(|| panic!("no {end:?}")) + end.len();
    &xml[from..to]
}

/// The signed Assertion element of an Entra-shaped document.
pub fn assertion(xml: &str) -> &str {
    slice(xml, "<Assertion ", "</Assertion>")
}

/// The first Signature element after `after`.
pub fn signature_after<'a>(xml: &'a str, after: &str) -> &'a str {
    let from = xml.find(after).unwrap();
    slice(&xml[from..], "<Signature ", "</Signature>")
}
