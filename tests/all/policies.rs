//! The tenant login policies of issue 33 in the core: required sign-in methods and classes,
//! authentication age, the subject key and several ACS URLs, against the test IdP's
//! Entra-shaped responses and against the real IdP responses of the conformance corpus that
//! carry the element each policy reads. Every refusal names what was required and what was
//! found. (Configuration, tenant files and the transports: `policies_service.rs`.)

use chrono::Duration;
use saml_validator::saml::{self, Code, Input, Limits, Request, SubjectKeySource, TenantPolicy, Validated};
use saml_validator::testing::idp::{entra, ResponseSpec, Signing};

use crate::conformance::{load, manifest, Case};
use crate::support::*;

pub(crate) const MFA: &str = "http://schemas.microsoft.com/claims/multipleauthn";
pub(crate) const PASSWORD: &str = "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password";
pub(crate) const OTHER_ACS: &str = "https://helpdesk.contoso.example/User/Login";
const PPT: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
const X509: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509";

/// The test IdP's Entra response with `methods` as its authnmethodsreferences.
pub(crate) fn with_methods(mut spec: ResponseSpec, methods: &[&str]) -> ResponseSpec {
    let amr = spec.attributes.iter_mut().find(|(name, _)| name == entra::AMR).unwrap();
    amr.1 = methods.iter().map(|m| m.to_string()).collect();
    spec
}

fn judge(h: &Harness, spec: &ResponseSpec, policy: &TenantPolicy, acs: Option<&str>) -> Result<Validated, saml::Error> {
    let xml = spec.signed(&h.idp, Signing::Assertion).unwrap();
    let request = Request { expected_request_id: Some(REQUEST_ID), expected_acs_url: acs, now: h.now };
    saml::validate(Input::Xml(xml.as_bytes()), policy, &Limits::default(), &request)
}

fn refused(result: Result<Validated, saml::Error>, code: Code, needles: &[&str]) {
    let error = result.map(|v| v.subject).expect_err("accepted, expected a refusal");
    assert_eq!(error.code, code, "{error}");
    for needle in needles {
        assert!(error.message.contains(needle), "{needle:?} not in {:?}", error.message);
    }
}

fn run(case: &Case, policy: &TenantPolicy, acs: Option<&str>) -> Result<Validated, saml::Error> {
    let request =
        Request { expected_request_id: case.expected_request_id.as_deref(), expected_acs_url: acs, now: case.now };
    saml::validate(Input::Xml(&case.xml), policy, &Limits::default(), &request)
}

fn fixture(file: &str) -> Case {
    load(&manifest().into_iter().find(|f| f["file"] == file).unwrap_or_else(|| panic!("no fixture {file}")))
}

#[test]
fn required_authn_methods_refuse_a_password_login_and_accept_mfa() {
    let h = Harness::new();
    let policy = TenantPolicy { require_authn_methods: vec![MFA.into()], ..h.policy.clone() };
    refused(
        judge(&h, &h.spec(), &policy, None),
        Code::AuthnMethodNotAllowed,
        &[MFA, PASSWORD, "require_authn_methods"],
    );
    refused(judge(&h, &with_methods(h.spec(), &[]), &policy, None), Code::AuthnMethodNotAllowed, &["absent", MFA]);
    let validated = judge(&h, &with_methods(h.spec(), &[PASSWORD, MFA]), &policy, None).unwrap();
    assert_eq!(validated.claims.authn_methods, [PASSWORD, MFA]);
    // Any of the list will do.
    let either = TenantPolicy { require_authn_methods: vec![X509.into(), PASSWORD.into()], ..h.policy.clone() };
    judge(&h, &h.spec(), &either, None).unwrap();
}

#[test]
fn required_authn_context_is_read_from_the_signed_authn_statement() {
    let h = Harness::new();
    let policy = TenantPolicy { require_authn_context: vec![X509.into()], ..h.policy.clone() };
    refused(
        judge(&h, &h.spec(), &policy, None),
        Code::AuthnMethodNotAllowed,
        &["urn:oasis:names:tc:SAML:2.0:ac:classes:Password", X509, "require_authn_context"],
    );
    let mut x509 = h.spec();
    x509.authn_context = X509.into();
    assert_eq!(judge(&h, &x509, &policy, None).unwrap().session.authn_context.as_deref(), Some(X509));
    // With both settings, both must hold.
    let both = TenantPolicy { require_authn_methods: vec![MFA.into()], ..policy };
    refused(judge(&h, &x509, &both, None), Code::AuthnMethodNotAllowed, &[MFA]);
    judge(&h, &with_methods(x509, &[MFA]), &both, None).unwrap();
    // Edited after signing, the class is no one's: the signature fails first.
    let xml = h.signed(Signing::Assertion).replace(":classes:Password<", ":classes:X509<");
    assert_eq!(h.check_with(&xml, &both).unwrap_err().code, Code::DigestMismatch);
}

#[test]
fn an_authn_instant_older_than_the_limit_plus_skew_is_too_old() {
    let h = Harness::new();
    let policy = TenantPolicy { max_authn_age_seconds: Some(600), clock_skew_seconds: 180, ..h.policy.clone() };
    let mut spec = h.spec();
    spec.authn_instant = h.now - Duration::seconds(780);
    judge(&h, &spec, &policy, None).unwrap();
    spec.authn_instant = h.now - Duration::seconds(781);
    refused(
        judge(&h, &spec, &policy, None),
        Code::AuthnTooOld,
        &["2026-11-29T09:46:59.000Z", "781 s", "at most 600 s", "max_authn_age_seconds"],
    );
    // Without the setting, any age (the IdP's session lifetime decides).
    judge(&h, &spec, &h.policy, None).unwrap();
}

#[test]
fn without_an_authn_statement_age_and_class_requirements_refuse() {
    let h = Harness::new();
    let spec = h.spec();
    let unsigned = spec.render();
    let statement = slice(&unsigned, "<AuthnStatement ", "</AuthnStatement>").to_string();
    let xml = h.idp.sign(&unsigned.replace(&statement, ""), &spec.assertion_id, &Default::default()).unwrap();
    let relaxed = TenantPolicy { allow_missing_authn_statement: true, ..h.policy.clone() };
    h.check_with(&xml, &relaxed).unwrap();
    let aged = TenantPolicy { max_authn_age_seconds: Some(600), ..relaxed.clone() };
    let error = h.check_with(&xml, &aged).unwrap_err();
    assert_eq!((error.code, error.message.contains("no AuthnInstant")), (Code::AuthnTooOld, true), "{error}");
    let classed = TenantPolicy { require_authn_context: vec![PPT.into()], ..relaxed };
    let error = h.check_with(&xml, &classed).unwrap_err();
    assert_eq!(error.code, Code::AuthnMethodNotAllowed);
    assert!(error.message.contains("absent") && error.message.contains(PPT), "{error}");
}

#[test]
fn the_object_id_key_outlives_a_renamed_name_id_and_differs_per_tenant() {
    let h = Harness::new();
    let policy =
        TenantPolicy { tenant_id: "contoso".into(), subject_key_from: SubjectKeySource::ObjectId, ..h.policy.clone() };
    let before = judge(&h, &h.spec(), &policy, None).unwrap().subject.key;
    let mut renamed = h.spec();
    renamed.name_id = "ada.king@contoso.example".into();
    let after = judge(&h, &renamed, &policy, None).unwrap();
    assert_eq!(after.subject.key, before);
    assert_eq!(before.len(), 64);
    assert!(before.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!before.contains("ada") && !before.contains(after.claims.object_id.as_deref().unwrap()));
    // The default (name_id) follows the rename; another tenant never shares a key.
    let by_name = TenantPolicy { subject_key_from: SubjectKeySource::NameId, ..policy.clone() };
    assert_ne!(
        judge(&h, &h.spec(), &by_name, None).unwrap().subject.key,
        judge(&h, &renamed, &by_name, None).unwrap().subject.key
    );
    let fabrikam = TenantPolicy { tenant_id: "fabrikam".into(), ..policy.clone() };
    assert_ne!(judge(&h, &h.spec(), &fabrikam, None).unwrap().subject.key, before);

    let mut no_oid = h.spec();
    no_oid.attributes.retain(|(name, _)| name != entra::OBJECT_ID);
    refused(judge(&h, &no_oid, &policy, None), Code::SubjectKeyMissing, &["object_id", entra::OBJECT_ID]);
    let persistent = TenantPolicy { subject_key_from: SubjectKeySource::PersistentNameId, ..policy.clone() };
    refused(
        judge(&h, &h.spec(), &persistent, None),
        Code::SubjectKeyMissing,
        &["urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", "nameid-format:persistent"],
    );
    let by_attribute =
        TenantPolicy { subject_key_from: SubjectKeySource::Attribute(entra::NAME.into()), ..policy.clone() };
    judge(&h, &h.spec(), &by_attribute, None).unwrap();
    let by_groups = TenantPolicy { subject_key_from: SubjectKeySource::Attribute(entra::GROUPS.into()), ..policy };
    refused(judge(&h, &h.spec(), &by_groups, None), Code::SubjectKeyMissing, &["10 values", "exactly one"]);
}

#[test]
fn several_acs_urls_any_of_them_or_exactly_the_expected_one() {
    let h = Harness::new();
    let policy = TenantPolicy { other_acs_urls: vec![OTHER_ACS.into()], ..h.policy.clone() };
    let mut other = h.spec();
    other.destination = Some(OTHER_ACS.into());
    other.recipient = OTHER_ACS.into();
    judge(&h, &other, &policy, None).unwrap();
    judge(&h, &h.spec(), &policy, None).unwrap();
    judge(&h, &other, &policy, Some(OTHER_ACS)).unwrap();
    // Addressed to the help desk's own domain, posted to the customer's: refused.
    refused(
        judge(&h, &h.spec(), &policy, Some(OTHER_ACS)),
        Code::DestinationMismatch,
        &[ACS, OTHER_ACS, "expected_acs_url"],
    );
    let mut mixed = other.clone();
    mixed.recipient = ACS.into();
    refused(judge(&h, &mixed, &policy, Some(OTHER_ACS)), Code::RecipientMismatch, &[ACS, OTHER_ACS]);
    // Neither of the tenant's: the message lists both.
    let mut foreign = h.spec();
    foreign.destination = Some("https://evil.example/acs".into());
    refused(judge(&h, &foreign, &policy, None), Code::DestinationMismatch, &["evil.example", ACS, OTHER_ACS]);
    // Only the tenant's own URLs may be expected, and before any work.
    refused(
        judge(&h, &other, &policy, Some("https://evil.example/acs")),
        Code::AcsUrlUnknown,
        &["evil.example", OTHER_ACS],
    );
    refused(judge(&h, &other, &h.policy, Some(OTHER_ACS)), Code::AcsUrlUnknown, &[OTHER_ACS, ACS]);
}

// ---------------------------------------------------------------- the conformance corpus

#[test]
fn real_entra_mfa_claims_meet_a_required_method_and_a_missing_one_is_named() {
    let case = fixture("entra-ssoready-signed-assertion.xml");
    let mfa = TenantPolicy { require_authn_methods: vec![MFA.into()], ..case.policy.clone() };
    assert!(run(&case, &mfa, None).unwrap().claims.authn_methods.iter().any(|m| m == MFA));
    let fido = "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/fido";
    let strict = TenantPolicy { require_authn_methods: vec![fido.into()], ..case.policy.clone() };
    refused(run(&case, &strict, None), Code::AuthnMethodNotAllowed, &[fido, MFA, PASSWORD]);
    // Entra's class stays Password after MFA: the claim is what carries it.
    let classed = TenantPolicy { require_authn_context: vec![X509.into()], ..case.policy.clone() };
    refused(run(&case, &classed, None), Code::AuthnMethodNotAllowed, &["classes:Password", X509]);
}

#[test]
fn real_authn_context_class_refs_meet_or_fail_a_required_class() {
    for file in ["adfs-gosaml2-signed-assertion.xml", "okta-gosaml2-signed-response-and-assertion.xml"] {
        let case = fixture(file);
        let ppt = TenantPolicy { require_authn_context: vec![X509.into(), PPT.into()], ..case.policy.clone() };
        run(&case, &ppt, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        let x509 = TenantPolicy { require_authn_context: vec![X509.into()], ..case.policy.clone() };
        refused(run(&case, &x509, None), Code::AuthnMethodNotAllowed, &[PPT, X509]);
    }
    // Keycloak's assertion has no AuthnStatement at all (allowed by its manifest).
    let case = fixture("keycloak-ssoready-signed-assertion.xml");
    let x509 = TenantPolicy { require_authn_context: vec![X509.into()], ..case.policy.clone() };
    refused(run(&case, &x509, None), Code::AuthnMethodNotAllowed, &["absent"]);
    let aged = TenantPolicy { max_authn_age_seconds: Some(3600), ..case.policy.clone() };
    refused(run(&case, &aged, None), Code::AuthnTooOld, &["no AuthnInstant"]);
}

#[test]
fn real_authn_instants_are_judged_at_the_manifest_instant() {
    // Signed in 2023-11-16T18:57:36.659Z, evaluated 2023-11-17T18:39:32Z, skew 0: 85315 s.
    let case = fixture("entra-ssoready-signed-assertion.xml");
    assert_eq!(case.policy.clock_skew_seconds, 0);
    let day = TenantPolicy { max_authn_age_seconds: Some(85_316), ..case.policy.clone() };
    run(&case, &day, None).unwrap();
    let hour = TenantPolicy { max_authn_age_seconds: Some(3600), ..case.policy.clone() };
    refused(run(&case, &hour, None), Code::AuthnTooOld, &["2023-11-16T18:57:36.659Z", "85315 s", "at most 3600 s"]);
    // Two seconds between sign-in and evaluation in the identitymodel fixture.
    let case = fixture("entra-identitymodel-assertion-valid.xml");
    let two = TenantPolicy { max_authn_age_seconds: Some(2), ..case.policy.clone() };
    run(&case, &two, None).unwrap();
    let one = TenantPolicy { max_authn_age_seconds: Some(1), ..case.policy.clone() };
    refused(run(&case, &one, None), Code::AuthnTooOld, &["at most 1 s"]);
}

#[test]
fn real_persistent_name_ids_key_with_their_qualifiers() {
    let mut keys = std::collections::BTreeSet::new();
    for file in [
        "entra-identitymodel-assertion-valid.xml",
        "okta-dex-signed-response-and-assertion.xml",
        "oracle-oam-gosaml2-signed-assertion.xml",
        "mojeid-identitymodel-signed-response-and-assertion.xml",
    ] {
        let case = fixture(file);
        let persistent = TenantPolicy { subject_key_from: SubjectKeySource::PersistentNameId, ..case.policy.clone() };
        let by_persistent = run(&case, &persistent, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        let by_name = run(&case, &case.policy, None).unwrap();
        assert_ne!(by_persistent.subject.key, by_name.subject.key, "{file}: sources never share a key");
        assert!(keys.insert(by_persistent.subject.key), "{file}");
    }
    // An email NameID is not persistent, whatever it looks like.
    let case = fixture("entra-ssoready-signed-assertion.xml");
    let persistent = TenantPolicy { subject_key_from: SubjectKeySource::PersistentNameId, ..case.policy.clone() };
    refused(run(&case, &persistent, None), Code::SubjectKeyMissing, &["emailAddress", "persistent"]);
}

/// The README's description of the key, recomputed here from the fixture's signed values: a
/// change of the encoding changes every key in production and must show up as this failure.
#[test]
fn a_real_entra_object_id_key_is_the_documented_sha256() {
    let case = fixture("entra-ssoready-signed-assertion.xml");
    let policy = TenantPolicy {
        tenant_id: "contoso".into(),
        subject_key_from: SubjectKeySource::ObjectId,
        ..case.policy.clone()
    };
    let validated = run(&case, &policy, None).unwrap();
    let mut bytes = Vec::new();
    for field in [
        "saml-validator/subject-key/v1",
        "contoso",
        "https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec/",
        "object_id",
        "74a35d48-1914-4115-82f1-1b8a01449f3d",
    ] {
        bytes.push(1);
        bytes.extend_from_slice(&(field.len() as u64).to_be_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    let expected: String = openssl::sha::sha256(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(validated.subject.key, expected);
}

#[test]
fn a_real_response_is_accepted_on_any_of_the_tenants_acs_urls() {
    let case = fixture("entra-ssoready-signed-assertion.xml");
    let real = case.policy.acs_url.clone();
    let policy = TenantPolicy {
        acs_url: "https://helpdesk.example/saml/acs".into(),
        other_acs_urls: vec![real.clone()],
        ..case.policy.clone()
    };
    run(&case, &policy, None).unwrap();
    run(&case, &policy, Some(&real)).unwrap();
    refused(run(&case, &policy, Some("https://helpdesk.example/saml/acs")), Code::DestinationMismatch, &[&real]);
}
