//! Every fixture of the shared IdP conformance corpus (tests/fixtures/idp-responses, copied byte
//! for byte from ../shared/conformance), validated at the instant its manifest gives, with the
//! configuration its manifest gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use saml_validator::saml::decrypt::DecryptionKey;
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Code, Input, Limits, Request, TenantPolicy};
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/idp-responses")
}

pub(crate) fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(corpus().join("manifest.json")).expect("manifest");
    let manifest: Value = serde_json::from_str(&text).expect("manifest json");
    manifest["fixtures"].as_array().expect("fixtures").clone()
}

pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) policy: TenantPolicy,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) expected_request_id: Option<String>,
    pub(crate) xml: Vec<u8>,
}

fn uses_sha1(fixture: &Value) -> bool {
    let summary = &fixture["algorithms_summary"];
    let listed = |key: &str| {
        summary[key].as_array().into_iter().flatten().any(|v| v.as_str().is_some_and(|s| s.contains("sha1")))
    };
    listed("signature") || listed("digest")
}

pub(crate) fn load(fixture: &Value) -> Case {
    let name = fixture["file"].as_str().unwrap().trim_end_matches(".xml").to_string();
    let config = &fixture["validation_config"];
    let cert = std::fs::read_to_string(corpus().join(fixture["cert_file"].as_str().unwrap())).unwrap();
    let xml = std::fs::read(corpus().join(fixture["file"].as_str().unwrap())).unwrap();
    let bare = fixture["document"]["root_element"].as_str() == Some("Assertion");
    let acs_url = config["acs_url_recipient"]
        .as_str()
        .or(config["expected_destination"].as_str())
        .unwrap_or("https://sp.example/acs-not-used-by-this-token")
        .to_string();
    if let (Some(recipient), Some(destination)) =
        (config["acs_url_recipient"].as_str(), config["expected_destination"].as_str())
    {
        assert_eq!(recipient, destination, "{name}: one acs_url serves as Recipient and Destination");
    }
    let policy = TenantPolicy {
        tenant_id: name.clone(),
        idp_entity_id: config["idp_entity_id"].as_str().unwrap().to_string(),
        sp_entity_id: config["sp_entity_id_audience"].as_str().unwrap().to_string(),
        acs_url,
        other_acs_urls: Vec::new(),
        clock_skew_seconds: config["clock_skew_seconds"].as_i64().unwrap(),
        allow_sha1: uses_sha1(fixture),
        allow_idp_initiated: config["unsolicited"].as_bool() == Some(true),
        allow_bare_assertion: bare,
        // The manifest's Keycloak assertion has no AuthnStatement; that needs the explicit flag.
        allow_missing_authn_statement: fixture["assertions"][0].get("authn_statement").is_none(),
        keys: vec![TrustedKey::from_certificate_text(&cert).expect("fixture certificate")],
        decryption_keys: fixture["sp_private_key_file"].as_str().map(sp_key).into_iter().collect(),
        allow_rsa_pkcs1_key_transport: false,
        require_encrypted_assertions: false,
        attribute_mapping: Default::default(),
        require_authn_methods: Vec::new(),
        require_authn_context: Vec::new(),
        max_authn_age_seconds: None,
        subject_key_from: Default::default(),
    };
    let now = saml::time::parse(config["evaluation_instant"].as_str().unwrap()).unwrap();
    Case { name, policy, now, expected_request_id: config["expected_in_response_to"].as_str().map(str::to_string), xml }
}

fn sp_key(file: &str) -> DecryptionKey {
    DecryptionKey::from_pem(&std::fs::read_to_string(corpus().join(file)).unwrap()).expect("fixture SP key")
}

fn run(case: &Case, policy: &TenantPolicy) -> Result<saml::Validated, saml::Error> {
    let request =
        Request { expected_request_id: case.expected_request_id.as_deref(), expected_acs_url: None, now: case.now };
    saml::validate(Input::Xml(&case.xml), policy, &Limits::default(), &request)
}

/// The code each negative fixture must be refused with, from its manifest `reason`.
fn expected_rejection(name: &str) -> &'static [Code] {
    match name {
        // ID changed after signing: the Reference no longer names the carrying element.
        "entra-identitymodel-assertion-id-tampered" => &[Code::ReferenceUriInvalid],
        // DigestValue edited: SignedInfo no longer verifies (checked before the digest).
        "entra-identitymodel-assertion-digest-tampered" => &[Code::SignatureInvalid],
        "entra-identitymodel-assertion-signaturevalue-tampered" => &[Code::SignatureInvalid],
        // Re-indented and an AttributeValue injected: content no longer matches the digest.
        // (Re-indenting also changed SignedInfo, so its signature fails first.)
        "entra-identitymodel-assertion-pretty-printed" => &[Code::SignatureInvalid, Code::DigestMismatch],
        "adfs-python3saml-edited-signature-invalid" => &[Code::SignatureInvalid, Code::DigestMismatch],
        "okta-ssoready-response-signature-broken" => &[Code::DigestMismatch],
        "google-polis-pretty-printed-signature-invalid" => &[Code::DigestMismatch, Code::SignatureInvalid],
        other => panic!("no expected rejection listed for negative fixture {other}"),
    }
}

fn attribute_strings(values: &Value) -> Vec<String> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other["text"].as_str().expect("structured value has text").to_string(),
        })
        .collect()
}

#[test]
fn every_fixture_gets_the_manifest_verdict() {
    let mut checked = 0;
    for fixture in manifest() {
        let case = load(&fixture);
        let verdict = fixture["expected"]["verdict"].as_str().unwrap();
        let encrypted = !fixture["encryption"].is_null();
        let result = run(&case, &case.policy);
        checked += 1;
        if verdict == "invalid" {
            let error = result.expect_err(&case.name);
            assert!(expected_rejection(&case.name).contains(&error.code), "{}: got {error}", case.name);
            continue;
        }
        let validated = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let expected = &fixture["assertions"][0];
        assert_eq!(validated.assertion_id, expected["id"].as_str().unwrap(), "{}", case.name);
        assert_eq!(validated.subject.name_id, expected["name_id"]["value"].as_str().unwrap(), "{}", case.name);
        assert_eq!(validated.subject.format.as_deref(), expected["name_id"]["format"].as_str(), "{}", case.name);
        let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, values) in expected["attributes"].as_object().into_iter().flatten() {
            want.insert(name.clone(), attribute_strings(values));
        }
        assert_eq!(validated.attributes, want, "{}", case.name);
        let statement = &expected["authn_statement"];
        assert_eq!(validated.session.index.as_deref(), statement["session_index"].as_str(), "{}", case.name);
        assert_eq!(validated.session.authn_instant.is_some(), statement.is_object(), "{}", case.name);
        assert_eq!(
            validated.session.authn_context.as_deref(),
            statement["authn_context_class_ref"].as_str(),
            "{}",
            case.name
        );
        let signed = fixture["signed_element"].as_str().unwrap();
        assert_eq!(validated.signed.assertion, signed != "Response", "{}", case.name);
        assert_eq!(validated.signed.response, signed != "Assertion", "{}", case.name);
        assert_eq!(validated.encrypted, encrypted, "{}", case.name);
    }
    assert_eq!(checked, 40);
}

/// Every encrypted fixture configured with another fixture's SP key: one code, one message.
#[test]
fn encrypted_fixtures_fail_with_another_sp_key() {
    let fixtures = manifest();
    let encrypted: Vec<&Value> = fixtures.iter().filter(|f| !f["encryption"].is_null()).collect();
    assert_eq!(encrypted.len(), 7);
    let mut messages = std::collections::BTreeSet::new();
    for (i, fixture) in encrypted.iter().enumerate() {
        let case = load(fixture);
        // Fixtures from one test suite share an SP key: take the next one that differs.
        let own = &case.policy.decryption_keys[0].info.public_key_sha256;
        let other = (1..encrypted.len())
            .map(|step| sp_key(encrypted[(i + step) % encrypted.len()]["sp_private_key_file"].as_str().unwrap()))
            .find(|key| &key.info.public_key_sha256 != own)
            .unwrap();
        let policy = TenantPolicy { decryption_keys: vec![other.clone()], ..case.policy.clone() };
        let error = run(&case, &policy).expect_err(&case.name);
        assert_eq!(error.code, Code::DecryptionFailed, "{}: {error}", case.name);
        messages.insert(error.message);
        // Rotation: the right key among wrong ones still decrypts.
        let rotated = TenantPolicy {
            decryption_keys: vec![other, case.policy.decryption_keys[0].clone()],
            ..case.policy.clone()
        };
        run(&case, &rotated).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // Without keys: the unsupported answer that says what to configure.
        let none = TenantPolicy { decryption_keys: vec![], ..case.policy.clone() };
        let error = run(&case, &none).expect_err(&case.name);
        assert_eq!(error.code, Code::EncryptedAssertionUnsupported, "{}", case.name);
        assert!(error.message.contains("decryption_key_files"), "{}", error.message);
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
}

#[test]
fn missing_authn_statement_needs_the_explicit_flag() {
    let fixture = manifest().into_iter().find(|f| f["file"] == "keycloak-ssoready-signed-assertion.xml").unwrap();
    let case = load(&fixture);
    assert!(case.policy.allow_missing_authn_statement);
    let strict = TenantPolicy { allow_missing_authn_statement: false, ..case.policy.clone() };
    assert_eq!(run(&case, &strict).unwrap_err().code, Code::AuthnStatementMissing);
}

#[test]
fn sha1_fixtures_fail_without_allow_sha1() {
    let mut sha1 = 0;
    for fixture in manifest() {
        let case = load(&fixture);
        if !uses_sha1(&fixture) || fixture["expected"]["verdict"] != "valid" {
            continue;
        }
        sha1 += 1;
        let strict = TenantPolicy { allow_sha1: false, ..case.policy.clone() };
        let error = run(&case, &strict).expect_err(&case.name);
        assert_eq!(error.code, Code::Sha1NotAllowed, "{}", case.name);
    }
    assert!(sha1 >= 6, "corpus has at least six SHA-1 fixtures, saw {sha1}");
}

#[test]
fn valid_fixtures_fail_with_another_idps_certificate() {
    let fixtures = manifest();
    let other = TrustedKey::from_certificate_text(
        &std::fs::read_to_string(corpus().join("mojeid-identitymodel-signed-response-and-assertion.crt.pem")).unwrap(),
    )
    .unwrap();
    for fixture in &fixtures {
        let case = load(fixture);
        if fixture["expected"]["verdict"] != "valid" || case.name.starts_with("mojeid") {
            continue;
        }
        let policy = TenantPolicy { keys: vec![other.clone()], ..case.policy.clone() };
        let error = run(&case, &policy).expect_err(&case.name);
        // Encrypted with AES-CBC and no Response signature: nothing authenticates the
        // ciphertext, so the decrypted assertion's bad signature is the one decryption_failed
        // (no CBC oracle); with a Response signature it is refused as signature_invalid first.
        let unauthenticated_cbc = !fixture["encryption"].is_null() && fixture["signed_element"] == "Assertion";
        let expected = if unauthenticated_cbc { Code::DecryptionFailed } else { Code::SignatureInvalid };
        assert_eq!(error.code, expected, "{}", case.name);
    }
}

#[test]
fn valid_fixtures_fail_after_expiry_and_before_validity() {
    for fixture in manifest() {
        let case = load(&fixture);
        if fixture["expected"]["verdict"] != "valid" {
            continue;
        }
        let late = Case { now: case.now + chrono::Duration::days(3650), ..load(&fixture) };
        let error = run(&late, &late.policy).expect_err(&case.name);
        assert!(
            matches!(error.code, Code::AssertionExpired | Code::SubjectConfirmationExpired | Code::SessionExpired),
            "{}: {error}",
            case.name
        );
        let early = Case { now: case.now - chrono::Duration::days(3650), ..load(&fixture) };
        let error = run(&early, &early.policy).expect_err(&case.name);
        assert!(matches!(error.code, Code::NotYetValid | Code::IssuedInFuture), "{}: {error}", case.name);
    }
}

#[test]
fn valid_fixtures_fail_for_another_audience_issuer_and_recipient() {
    for fixture in manifest() {
        let case = load(&fixture);
        if fixture["expected"]["verdict"] != "valid" {
            continue;
        }
        let audience = TenantPolicy { sp_entity_id: "https://other-sp.example/".into(), ..case.policy.clone() };
        assert_eq!(run(&case, &audience).unwrap_err().code, Code::AudienceMismatch, "{}", case.name);
        let issuer = TenantPolicy { idp_entity_id: "https://other-idp.example/".into(), ..case.policy.clone() };
        assert_eq!(run(&case, &issuer).unwrap_err().code, Code::IssuerMismatch, "{}", case.name);
        if fixture["validation_config"]["acs_url_recipient"].is_string() {
            let acs = TenantPolicy { acs_url: "https://other-sp.example/acs".into(), ..case.policy.clone() };
            let code = run(&case, &acs).unwrap_err().code;
            assert!(matches!(code, Code::DestinationMismatch | Code::RecipientMismatch), "{}: {code}", case.name);
        }
    }
}

#[test]
fn solicited_fixtures_need_the_matching_request_id() {
    for fixture in manifest() {
        let case = load(&fixture);
        if fixture["expected"]["verdict"] != "valid" || case.expected_request_id.is_none() {
            continue;
        }
        let wrong = Case { expected_request_id: Some("_not-the-request".into()), ..load(&fixture) };
        assert_eq!(run(&wrong, &wrong.policy).unwrap_err().code, Code::InResponseToMismatch, "{}", case.name);
        let missing = Case { expected_request_id: None, ..load(&fixture) };
        assert_eq!(run(&missing, &missing.policy).unwrap_err().code, Code::UnsolicitedResponse, "{}", case.name);
    }
}

#[test]
fn claims_are_normalized_across_idp_vocabularies() {
    // (fixture, claim, the attribute the default mapping must take it from)
    let table = [
        (
            "entra-ssoready-signed-assertion",
            "email",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        ),
        (
            "entra-ssoready-signed-assertion",
            "first_name",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        ),
        (
            "entra-ssoready-signed-assertion",
            "last_name",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        ),
        ("entra-ssoready-signed-assertion", "display_name", "http://schemas.microsoft.com/identity/claims/displayname"),
        ("entra-ssoready-signed-assertion", "username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"),
        (
            "entra-ssoready-signed-assertion",
            "object_id",
            "http://schemas.microsoft.com/identity/claims/objectidentifier",
        ),
        ("entra-ssoready-signed-assertion", "idp_tenant_id", "http://schemas.microsoft.com/identity/claims/tenantid"),
        (
            "entra-ssoready-signed-assertion",
            "authn_methods",
            "http://schemas.microsoft.com/claims/authnmethodsreferences",
        ),
        (
            "adfs-gosaml2-signed-assertion",
            "first_name",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        ),
        ("okta-dex-signed-response-and-assertion", "email", "email"),
        ("okta-dex-signed-response-and-assertion", "groups", "groups"),
        ("okta-gosaml2-signed-response-and-assertion", "username", "username"),
        ("okta-xmlcrypto-assertion-inclusive-namespaces", "roles", "Role"),
        ("keycloak-ssoready-signed-assertion", "roles", "Role"),
        ("onelogin-crewjam-signed-response", "email", "User.email"),
        ("onelogin-crewjam-signed-response", "first_name", "User.FirstName"),
        ("onelogin-crewjam-signed-response", "last_name", "User.LastName"),
        ("google-crewjam-signed-response", "first_name", "firstName"),
        ("pingfederate-gosaml2-signed-response-no-keyinfo", "groups", "group"),
        ("pingfederate-gosaml2-signed-response-no-keyinfo", "last_name", "lastname"),
        ("auth0-gosaml2-signed-response", "username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"),
        ("simplesamlphp-xmlcrypto-feide-signed-response-and-assertion", "email", "mail"),
        ("simplesamlphp-xmlcrypto-feide-signed-response-and-assertion", "username", "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"),
        ("simplesamlphp-xmlcrypto-feide-signed-response-and-assertion", "display_name", "urn:oid:2.5.4.3"),
        ("simplesamlphp-python3saml-signed-response-and-assertion", "roles", "eduPersonAffiliation"),
    ];
    let fixtures = manifest();
    for (name, claim, attribute) in table {
        let fixture = fixtures.iter().find(|f| f["file"].as_str() == Some(&format!("{name}.xml"))).unwrap();
        let case = load(fixture);
        let validated = run(&case, &case.policy).unwrap();
        let claims = serde_json::to_value(&validated.claims).unwrap();
        let source = &validated.attributes[attribute];
        assert!(!source.is_empty(), "{name}: {attribute} is empty");
        match &claims[claim] {
            Value::Array(values) => {
                let values: Vec<&str> = values.iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!(values, source.iter().map(String::as_str).collect::<Vec<_>>(), "{name}: {claim}");
            }
            value => assert_eq!(value.as_str(), Some(source[0].as_str()), "{name}: {claim}"),
        }
    }
}
