//! EncryptedAssertion (issue 15): round trips through the test IdP in every signing order and
//! algorithm, and the attacks on XML Encryption: CBC and PKCS#1 v1.5 padding oracles (one code,
//! one message for every decryption failure), fetches through CipherReference or
//! RetrievalMethod, wrapping with a second EncryptedData or a plain Assertion beside the
//! encrypted one, and hostile plaintexts (DOCTYPE, node floods).

use crate::support::*;
use base64::Engine as _;
use saml_validator::config::Config;
use saml_validator::saml::decrypt::DecryptionKey;
use saml_validator::saml::ns::{self, alg, enc};
use saml_validator::saml::{self, Code, Input, Limits, Request, TenantPolicy};
use saml_validator::testing::encrypt::{encrypt_element, replace_assertion, EncryptOptions};
use saml_validator::testing::idp::{Signing, TestIdp};
use saml_validator::transport::json::TenantView;

struct Setup {
    h: Harness,
    sp: TestIdp,
    /// The tenant, with the SP key configured.
    policy: TenantPolicy,
}

fn setup() -> Setup {
    let h = Harness::new();
    let sp = TestIdp::generate().unwrap();
    let policy = TenantPolicy {
        decryption_keys: vec![DecryptionKey::from_pem(&sp.private_key_pem()).unwrap()],
        ..h.policy.clone()
    };
    Setup { h, sp, policy }
}

impl Setup {
    fn encrypted(&self, signing: Signing, options: &EncryptOptions) -> String {
        self.h.spec().encrypted(&self.h.idp, signing, &self.sp, options).unwrap()
    }

    fn check(&self, xml: &str) -> Result<saml::Validated, saml::Error> {
        self.h.check_with(xml, &self.policy)
    }

    fn error(&self, xml: &str) -> saml::Error {
        match self.check(xml) {
            Ok(v) => panic!("accepted, expected a rejection: {:?}", v.subject),
            Err(e) => e,
        }
    }
}

fn all_options() -> Vec<EncryptOptions> {
    let mut okta = EncryptOptions::entra();
    okta.retrieval_method = true;
    okta.oaep_digest = None;
    let shibboleth = EncryptOptions { content: enc::AES128_CBC, ..EncryptOptions::entra() };
    let gcm128 = EncryptOptions { content: enc::AES128_GCM, ..EncryptOptions::gcm() };
    let gcm192 = EncryptOptions { content: enc::AES192_GCM, ..EncryptOptions::gcm() };
    let cbc192 = EncryptOptions { content: enc::AES192_CBC, ..EncryptOptions::entra() };
    let oaep512 = EncryptOptions { oaep_digest: Some(alg::SHA512), mgf: Some(enc::MGF1_SHA1), ..EncryptOptions::gcm() };
    let oaep_defaults = EncryptOptions { oaep_digest: None, mgf: None, ..EncryptOptions::gcm() };
    vec![
        EncryptOptions::entra(),
        EncryptOptions::gcm(),
        okta,
        shibboleth,
        gcm128,
        gcm192,
        cbc192,
        oaep512,
        oaep_defaults,
    ]
}

#[test]
fn encrypted_assertions_round_trip_in_every_signing_order_and_algorithm() {
    let s = setup();
    for options in all_options() {
        for signing in [Signing::Assertion, Signing::Response, Signing::Both] {
            let xml = s.encrypted(signing, &options);
            assert!(!xml.contains("<Assertion"), "the assertion is not in the clear");
            let v = s.check(&xml).unwrap_or_else(|e| panic!("{options:?} {signing:?}: {e}"));
            assert_eq!(v.subject.name_id, "ada@contoso.example");
            assert_eq!(v.claims.groups.len(), 10);
            assert!(v.encrypted);
            assert_eq!(v.signed.assertion, signing != Signing::Response, "{signing:?}");
            assert_eq!(v.signed.response, signing != Signing::Assertion, "{signing:?}");
            let json = serde_json::to_value(&v).unwrap();
            assert_eq!(json["encrypted"], true);
        }
    }
    let plain = s.check(&s.h.signed(Signing::Assertion)).unwrap();
    assert!(!plain.encrypted);
}

#[test]
fn pkcs1_pem_keys_and_key_rotation_decrypt() {
    let s = setup();
    let other = TestIdp::generate().unwrap();
    let keys = vec![
        DecryptionKey::from_pem(&other.private_key_pem()).unwrap(),
        DecryptionKey::from_pem(&s.sp.rsa_private_key_pem()).unwrap(),
    ];
    assert!(s.sp.rsa_private_key_pem().starts_with("-----BEGIN RSA PRIVATE KEY"));
    let policy = TenantPolicy { decryption_keys: keys, ..s.policy.clone() };
    let xml = s.encrypted(Signing::Assertion, &EncryptOptions::entra());
    s.h.check_with(&xml, &policy).unwrap();
}

/// The content CipherValue (the last one: Entra puts the EncryptedKey inside KeyInfo first).
fn content(xml: &str) -> Vec<u8> {
    let start = xml.rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
    let end = start + xml[start..].find('<').unwrap();
    base64::engine::general_purpose::STANDARD.decode(&xml[start..end]).unwrap()
}

fn with_content(xml: &str, bytes: &[u8]) -> String {
    let start = xml.rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
    let end = start + xml[start..].find('<').unwrap();
    format!("{}{}{}", &xml[..start], base64::engine::general_purpose::STANDARD.encode(bytes), &xml[end..])
}

fn flipped(xml: &str, at: impl Fn(usize) -> usize) -> String {
    let mut bytes = content(xml);
    let i = at(bytes.len());
    bytes[i] ^= 0x01;
    with_content(xml, &bytes)
}

#[test]
fn every_decryption_failure_has_one_code_and_one_message() {
    let s = setup();
    let mut failures = Vec::new();
    let cbc = s.encrypted(Signing::Assertion, &EncryptOptions::entra());
    failures.push(("CBC IV", flipped(&cbc, |_| 3)));
    failures.push(("CBC first block", flipped(&cbc, |_| 16 + 5)));
    failures.push(("CBC last block (padding)", flipped(&cbc, |n| n - 1)));
    failures.push(("CBC second-to-last block", flipped(&cbc, |n| n - 17)));
    failures.push(("CBC truncated", with_content(&cbc, &content(&cbc)[..content(&cbc).len() - 16])));
    failures.push(("CBC not a block multiple", with_content(&cbc, &content(&cbc)[..content(&cbc).len() - 3])));
    let gcm = s.encrypted(Signing::Assertion, &EncryptOptions::gcm());
    failures.push(("GCM tag", flipped(&gcm, |n| n - 1)));
    failures.push(("GCM body", flipped(&gcm, |_| 40)));
    failures.push(("GCM truncated", with_content(&gcm, &content(&gcm)[..20])));
    let other = TestIdp::generate().unwrap();
    let for_other = s.h.spec().encrypted(&s.h.idp, Signing::Assertion, &other, &EncryptOptions::entra()).unwrap();
    failures.push(("wrapped for another key", for_other));
    let wrapped_start = cbc.find("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
    let mut bad_wrap = cbc.clone().into_bytes();
    bad_wrap[wrapped_start + 10] = if bad_wrap[wrapped_start + 10] == b'A' { b'B' } else { b'A' };
    failures.push(("wrapped key bit flip", String::from_utf8(bad_wrap).unwrap()));

    let mut messages = std::collections::BTreeSet::new();
    for (what, xml) in &failures {
        let error = s.error(xml);
        assert_eq!(error.code, Code::DecryptionFailed, "{what}: {error}");
        messages.insert(error.message);
    }
    assert_eq!(messages.len(), 1, "one message for every failure: {messages:?}");
}

#[test]
fn a_signed_response_is_verified_before_anything_is_decrypted() {
    let s = setup();
    let xml = s.encrypted(Signing::Both, &EncryptOptions::entra());
    let error = s.error(&flipped(&xml, |_| 20));
    assert_eq!(error.code, Code::DigestMismatch, "the Response signature covers the ciphertext: {error}");
    // Swapping in an EncryptedAssertion of the attacker's making breaks it the same way.
    let forged = s.h.spec().encrypted(&s.h.idp, Signing::Unsigned, &s.sp, &EncryptOptions::entra()).unwrap();
    let ours = slice(&forged, "<saml:EncryptedAssertion", "</saml:EncryptedAssertion>");
    let theirs = slice(&xml, "<saml:EncryptedAssertion", "</saml:EncryptedAssertion>");
    assert_eq!(s.error(&replace_once(&xml, theirs, ours)).code, Code::DigestMismatch);
}

#[test]
fn rsa_pkcs1_key_transport_needs_the_relaxation() {
    let s = setup();
    let options = EncryptOptions { key_transport: enc::RSA_1_5, oaep_digest: None, ..EncryptOptions::entra() };
    let xml = s.encrypted(Signing::Assertion, &options);
    assert_eq!(s.error(&xml).code, Code::DecryptionAlgorithmUnsupported);
    let relaxed = TenantPolicy { allow_rsa_pkcs1_key_transport: true, ..s.policy.clone() };
    let v = s.h.check_with(&xml, &relaxed).unwrap();
    assert!(v.encrypted);
    // Implicit rejection must not stop at the first (wrong) key of a rollover.
    let old = TestIdp::generate().unwrap();
    let mut rotated = relaxed.clone();
    rotated.decryption_keys.insert(0, DecryptionKey::from_pem(&old.private_key_pem()).unwrap());
    assert!(s.h.check_with(&xml, &rotated).unwrap().encrypted);
    // Implicit rejection: a bad padding continues with a random key, and ends where every
    // other failure ends.
    let wrapped_start = xml.find("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
    let mut bad = xml.clone().into_bytes();
    bad[wrapped_start + 10] = if bad[wrapped_start + 10] == b'A' { b'B' } else { b'A' };
    let error = s.h.check_with(&String::from_utf8(bad).unwrap(), &relaxed).unwrap_err();
    let reference = s.error(&flipped(&s.encrypted(Signing::Assertion, &EncryptOptions::entra()), |_| 3));
    assert_eq!(error, reference);
}

#[test]
fn fetching_and_wrapping_shapes_are_refused_before_any_rsa_operation() {
    let s = setup();
    // A tenant holding the wrong key: the shape is judged before any key is tried, so the
    // answer is the shape's code, never decryption_failed.
    let wrong = TestIdp::generate().unwrap();
    let wrong_key = TenantPolicy {
        decryption_keys: vec![DecryptionKey::from_pem(&wrong.private_key_pem()).unwrap()],
        ..s.policy.clone()
    };
    let xml = s.encrypted(Signing::Assertion, &EncryptOptions::entra());
    let last_value = slice(&xml[xml.rfind("<xenc:CipherData>").unwrap()..], "<xenc:CipherData>", "</xenc:CipherData>");
    let reference = replace_once(
        &xml,
        last_value,
        "<xenc:CipherData><xenc:CipherReference URI=\"http://127.0.0.1:9/ciphertext\"/></xenc:CipherData>",
    );
    let okta = EncryptOptions { retrieval_method: true, ..EncryptOptions::entra() };
    let retrieval = s.encrypted(Signing::Assertion, &okta);
    let uri_start = retrieval.find("URI=\"#").unwrap();
    let uri = &retrieval[uri_start..uri_start + 6 + retrieval[uri_start + 6..].find('"').unwrap() + 1];
    let external = replace_once(&retrieval, uri, "URI=\"http://127.0.0.1:9/key\"");
    let file = replace_once(&retrieval, uri, "URI=\"file:///etc/passwd\"");
    let data = slice(&xml, "<xenc:EncryptedData", "</xenc:EncryptedData>");
    let second = s.encrypted(Signing::Assertion, &EncryptOptions::entra());
    let second = slice(&second, "<xenc:EncryptedData", "</xenc:EncryptedData>");
    let two_data = replace_once(&xml, data, &format!("{data}{second}"));
    let beside = replace_once(&xml, "</saml:EncryptedAssertion>", "</saml:EncryptedAssertion>");
    let plain = assertion(&s.h.signed(Signing::Assertion)).to_string();
    let beside = beside.replacen("<saml:EncryptedAssertion", &format!("{plain}<saml:EncryptedAssertion"), 1);
    let cases = [
        ("CipherReference", reference, Code::EncryptedAssertionUnsupported),
        ("external RetrievalMethod", external, Code::EncryptedAssertionUnsupported),
        ("file RetrievalMethod", file, Code::EncryptedAssertionUnsupported),
        ("two EncryptedData", two_data, Code::SamlMalformed),
        ("plain Assertion beside", beside, Code::MultipleAssertions),
    ];
    for (what, xml, code) in cases {
        for policy in [&s.policy, &wrong_key] {
            let error = s.h.check_with(&xml, policy).unwrap_err();
            assert_eq!(error.code, code, "{what}: {error}");
        }
    }
}

#[test]
fn an_assertion_signed_by_another_key_is_refused_after_decryption() {
    let s = setup();
    let intruder = TestIdp::generate().unwrap();
    let spec = s.h.spec();
    // GCM authenticates the ciphertext: the refusal can say what it is.
    let gcm = spec.encrypted(&intruder, Signing::Assertion, &s.sp, &EncryptOptions::gcm()).unwrap();
    assert_eq!(s.error(&gcm).code, Code::SignatureInvalid);
    // Unsigned Response over CBC: nothing authenticates the ciphertext, so the answer must not
    // tell "decrypted to a well-formed but unverifiable assertion" from "garbage".
    let cbc = spec.encrypted(&intruder, Signing::Assertion, &s.sp, &EncryptOptions::entra()).unwrap();
    assert_eq!(s.error(&cbc).code, Code::DecryptionFailed);
    // A valid Response signature around an intruder's assertion: every signature must verify.
    let inner = spec.encrypted(&intruder, Signing::Assertion, &s.sp, &EncryptOptions::entra()).unwrap();
    let both = s.h.idp.sign(&inner, &spec.response_id, &Default::default()).unwrap();
    assert_eq!(s.error(&both).code, Code::SignatureInvalid);
    // And an encrypted assertion nobody signed.
    let unsigned = spec.encrypted(&s.h.idp, Signing::Unsigned, &s.sp, &EncryptOptions::gcm()).unwrap();
    assert_eq!(s.error(&unsigned).code, Code::SignatureMissing);
}

/// An EncryptedAssertion holding `plaintext`, in place of the signed response's assertion.
fn carrying(s: &Setup, plaintext: &str, options: &EncryptOptions) -> String {
    let spec = s.h.spec();
    let sealed = encrypt_element("EncryptedAssertion", plaintext.as_bytes(), &s.sp, options).unwrap();
    replace_assertion(&spec.render(), &spec.assertion_id, &sealed).unwrap()
}

#[test]
fn hostile_plaintexts_go_through_the_strict_parser_and_limits() {
    let s = setup();
    let signed = s.h.signed(Signing::Assertion);
    let good = assertion(&signed).to_string();
    for options in [EncryptOptions::entra(), EncryptOptions::gcm()] {
        s.check(&carrying(&s, &good, &options)).unwrap();
        let doctype = format!("<!DOCTYPE a [<!ENTITY x \"ada\">]>{good}");
        let response =
            format!("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{good}</samlp:Response>");
        let two = format!("{good}{good}");
        let truncated = good[..good.len() - 5].to_string();
        let pi = good.replacen("<Issuer>", "<?x y?><Issuer>", 1);
        for (what, plaintext) in
            [("DOCTYPE", doctype), ("Response root", response), ("two", two), ("truncated", truncated), ("PI", pi)]
        {
            let error = s.error(&carrying(&s, &plaintext, &options));
            assert_eq!(error.code, Code::DecryptionFailed, "{what}: {error}");
        }
        let xml = carrying(&s, &good, &options);
        let request = Request { expected_request_id: Some(REQUEST_ID), expected_acs_url: None, now: s.h.now };
        let tight = Limits { max_nodes: 40, ..Limits::default() };
        let error = saml::validate(Input::Xml(xml.as_bytes()), &s.policy, &tight, &request).unwrap_err();
        assert_eq!(error.code, Code::DecryptionFailed, "node limit on the plaintext: {error}");
        let deep =
            good.replacen("<AttributeValue>", &format!("<AttributeValue>{}{}", "<a>".repeat(40), "</a>".repeat(40)), 1);
        let error = s.error(&carrying(&s, &deep, &options));
        assert_eq!(error.code, Code::DecryptionFailed, "depth limit on the plaintext: {error}");
    }
}

#[test]
fn require_encrypted_assertions_refuses_plain_ones() {
    let s = setup();
    let strict = TenantPolicy { require_encrypted_assertions: true, ..s.policy.clone() };
    assert_eq!(s.h.check_with(&s.h.signed(Signing::Assertion), &strict).unwrap_err().code, Code::AssertionNotEncrypted);
    let xml = s.encrypted(Signing::Assertion, &EncryptOptions::entra());
    assert!(s.h.check_with(&xml, &strict).unwrap().encrypted);
}

#[test]
fn without_decryption_keys_the_answer_says_what_to_configure() {
    let s = setup();
    let xml = s.encrypted(Signing::Assertion, &EncryptOptions::entra());
    let error = s.h.check(&xml).unwrap_err();
    assert_eq!(error.code, Code::EncryptedAssertionUnsupported);
    assert!(error.message.contains("decryption_key_files"), "{error}");
}

#[test]
fn decryption_keys_never_show_their_private_half() {
    let s = setup();
    let key = &s.policy.decryption_keys[0];
    let shown = format!("{key:?}");
    assert!(!shown.contains("PRIVATE"), "{shown}");
    assert_eq!(key.info.public_key_sha256.len(), 64);
    assert_eq!(key.info.bits, 2048);
    for bad in ["", "not a key", &s.sp.certificate_pem()] {
        let error = DecryptionKey::from_pem(bad).unwrap_err();
        assert!(!error.contains("BEGIN"), "{error}");
    }
}

#[test]
fn encrypted_name_id_and_attributes_are_decrypted_inside_the_verified_assertion() {
    let s = setup();
    let spec = s.h.spec();
    let xml = spec.render();
    let name_id = slice(&xml, "<NameID ", "</NameID>");
    let secret_id = format!(
        "<NameID xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" Format=\"{}\">bob@contoso.example</NameID>",
        spec.name_id_format
    );
    let email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
    let attribute = slice(&xml, &format!("<Attribute Name=\"{email}\">"), "</Attribute>");
    let secret_attribute = format!(
        "<Attribute xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" Name=\"{email}\"><AttributeValue>bob@contoso.example</AttributeValue></Attribute>"
    );
    for options in [EncryptOptions::entra(), EncryptOptions::gcm()] {
        let encrypted_id = encrypt_element("EncryptedID", secret_id.as_bytes(), &s.sp, &options).unwrap();
        let encrypted_attribute =
            encrypt_element("EncryptedAttribute", secret_attribute.as_bytes(), &s.sp, &options).unwrap();
        let edited = replace_once(&replace_once(&xml, name_id, &encrypted_id), attribute, &encrypted_attribute);
        let signed = s.h.idp.sign(&edited, &spec.assertion_id, &Default::default()).unwrap();
        let v = s.check(&signed).unwrap();
        assert_eq!(v.subject.name_id, "bob@contoso.example");
        assert_eq!(v.subject.format.as_deref(), Some(spec.name_id_format.as_str()));
        assert_eq!(v.attributes[email], ["bob@contoso.example"]);
        assert_eq!(v.claims.email.as_deref(), Some("bob@contoso.example"));
        assert!(!v.encrypted, "the assertion itself was not encrypted");
        // Without keys: what to configure; with another key: the one failure.
        assert_eq!(s.h.check(&signed).unwrap_err().code, Code::EncryptedAssertionUnsupported);
        let other = TestIdp::generate().unwrap();
        let wrong = TenantPolicy {
            decryption_keys: vec![DecryptionKey::from_pem(&other.private_key_pem()).unwrap()],
            ..s.policy.clone()
        };
        assert_eq!(s.h.check_with(&signed, &wrong).unwrap_err().code, Code::DecryptionFailed);
        // An EncryptedID that decrypts to something other than a NameID.
        let not_name_id = encrypt_element("EncryptedID", secret_attribute.as_bytes(), &s.sp, &options).unwrap();
        let edited = replace_once(&xml, name_id, &not_name_id);
        let signed = s.h.idp.sign(&edited, &spec.assertion_id, &Default::default()).unwrap();
        assert_eq!(s.error(&signed).code, Code::DecryptionFailed);
    }
}

#[test]
fn decryption_keys_come_from_files_and_every_problem_is_reported_together() {
    let dir = temp_dir("decryption-keys");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let idp = TestIdp::generate().unwrap();
    let current = TestIdp::generate().unwrap();
    let old = TestIdp::generate().unwrap();
    std::fs::write(dir.join("keys/sp.key"), current.private_key_pem()).unwrap();
    std::fs::write(dir.join("keys/old.key"), old.rsa_private_key_pem()).unwrap();
    std::fs::write(dir.join("keys/sp.crt"), current.certificate_pem()).unwrap();
    std::fs::write(dir.join("keys/stranger.crt"), idp.certificate_pem()).unwrap();
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/idp-responses");
    let weak = corpus.join("okta-crewjam-encrypted-assertion-both-signed.sp-key.pem");
    let tenant = |id: &str, extra: &str| {
        format!(
            "[[tenants]]\nid = \"{id}\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{}\"]\n{extra}\n",
            idp.certificate_base64()
        )
    };
    let good = tenant(
        "good",
        "decryption_key_files = [\"keys/sp.key\", \"keys/old.key\"]\ndecryption_certificate_files = [\"keys/sp.crt\"]\nrequire_encrypted_assertions = true",
    );
    let config = Config::parse(&good, &dir, chrono::Utc::now()).unwrap();
    let t = &config.tenants[0];
    assert_eq!(t.policy.decryption_keys.len(), 2);
    assert_eq!(t.decryption_certificates.len(), 1);
    assert!(t.policy.require_encrypted_assertions && !t.policy.allow_rsa_pkcs1_key_transport);
    let view = serde_json::to_value(TenantView::new(t, chrono::Utc::now())).unwrap();
    let shown = view.to_string();
    assert!(!shown.contains("PRIVATE") && !shown.contains(&current.private_key_pem()[30..60]), "{shown}");
    assert_eq!(view["decryption_keys"][0]["public_key_sha256"], t.policy.decryption_keys[0].info.public_key_sha256);
    assert_eq!(view["decryption_keys"][0]["origin"], "file:keys/sp.key");
    assert_eq!(view["relaxations"]["allow_rsa_pkcs1_key_transport"], false);

    let bad = [
        tenant("missing", "decryption_key_files = [\"keys/none.key\"]"),
        tenant("cert-as-key", "decryption_key_files = [\"keys/sp.crt\"]"),
        tenant("weak", &format!("decryption_key_files = ['''{}''']", weak.display())),
        tenant(
            "stranger",
            "decryption_key_files = [\"keys/sp.key\"]\ndecryption_certificate_files = [\"keys/stranger.crt\"]",
        ),
        tenant("no-keys", "require_encrypted_assertions = true\nallow_rsa_pkcs1_key_transport = true"),
        tenant("inline", &format!("decryption_keys = ['''{}''']", current.private_key_pem())),
    ]
    .concat();
    let errors = Config::parse(&bad, &dir, chrono::Utc::now()).unwrap_err().0;
    let expect = [
        "tenants[0].decryption_key_files[0]: cannot read",
        "tenants[1].decryption_key_files[0]:",
        "tenants[2].decryption_key_files[0]:",
        "tenants[3].decryption_certificate_files[0]:",
        "tenants[4].require_encrypted_assertions: needs decryption_key_files",
        "tenants[4].allow_rsa_pkcs1_key_transport:",
        "tenants[5].decryption_keys: unknown key",
    ];
    for needle in expect {
        assert!(errors.iter().any(|e| e.contains(needle)), "missing {needle:?} in {errors:#?}");
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    assert!(errors[2].contains("1024-bit"), "{}", errors[2]);
    assert!(errors.iter().all(|e| !e.contains("PRIVATE KEY-----")), "{errors:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `element` (its EncryptedKey beside the EncryptedData) without a KeyInfo and with `copies`
/// sibling EncryptedKeys, each under its own Id: SAML core 6.2 lets every one of them be tried.
fn with_sibling_keys(element: &str, copies: usize) -> String {
    let without = replace_once(element, slice(element, "<ds:KeyInfo", "</ds:KeyInfo>"), "");
    // Declared once on the container, so that the copies stay within the namespace limits.
    let (xenc, ds) = (format!(" xmlns:xenc=\"{}\"", enc::XENC), format!(" xmlns:ds=\"{}\"", ns::DSIG));
    let key = slice(&without, "<xenc:EncryptedKey", "</xenc:EncryptedKey>");
    let bare = key.replace(&xenc, "").replace(&ds, "");
    let keys: String = (0..copies).map(|i| bare.replacen("Id=\"_ek", &format!("Id=\"_k{i}ek"), 1)).collect();
    let container = format!("xmlns:saml=\"{}\"", ns::ASSERTION);
    replace_once(&without, key, &keys).replacen(&container, &format!("{container}{xenc}{ds}"), 1)
}

fn two_keys(s: &Setup) -> TenantPolicy {
    let old = TestIdp::generate().unwrap();
    let mut policy = s.policy.clone();
    policy.decryption_keys.insert(0, DecryptionKey::from_pem(&old.private_key_pem()).unwrap());
    policy
}

fn assert_rsa_limit(error: &saml::Error, operations: usize, keys: usize, per_key: usize) {
    assert_eq!(error.code, Code::XmlTooComplex, "{error}");
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let counted = format!(
        "needs {operations} RSA operations ({keys} EncryptedKey{} × {per_key} key{})",
        plural(keys),
        plural(per_key)
    );
    assert!(error.message.contains(&counted), "{counted:?} in {error}");
    assert!(error.message.contains("max_rsa_decryptions = 8"), "{error}");
}

/// Review item 1: without a KeyInfo every sibling EncryptedKey was tried with every SP key, one
/// RSA private operation each, with no bound but the document size.
#[test]
fn rsa_operations_are_bounded_per_document_wherever_the_encrypted_keys_sit() {
    let s = setup();
    let okta = EncryptOptions { retrieval_method: true, ..EncryptOptions::entra() };
    let xml = s.encrypted(Signing::Assertion, &okta);
    let one = with_sibling_keys(&xml, 1);
    assert!(s.check(&one).unwrap().encrypted, "one sibling key and no KeyInfo (SAML core 6.2) decrypts");
    let rollover = two_keys(&s);
    assert!(s.h.check_with(&with_sibling_keys(&xml, 4), &rollover).unwrap().encrypted, "4 × 2 fits");
    // 300 keys: close to what the 256 KB document limit holds.
    let flood = with_sibling_keys(&xml, 300);
    // Counted before any key is tried: a tenant holding the wrong key gets the same answer.
    let wrong = TenantPolicy {
        decryption_keys: vec![DecryptionKey::from_pem(&TestIdp::generate().unwrap().private_key_pem()).unwrap()],
        ..s.policy.clone()
    };
    assert_rsa_limit(&s.error(&flood), 300, 300, 1);
    assert_rsa_limit(&s.h.check_with(&flood, &wrong).unwrap_err(), 300, 300, 1);
    assert_rsa_limit(&s.h.check_with(&flood, &rollover).unwrap_err(), 600, 300, 2);
    assert_rsa_limit(&s.h.check_with(&with_sibling_keys(&xml, 5), &rollover).unwrap_err(), 10, 5, 2);
    // Without decryption keys nothing is tried: the answer stays what to configure.
    assert_eq!(s.h.check(&flood).unwrap_err().code, Code::EncryptedAssertionUnsupported);
    // The limit is a setting of [limits].
    let request = Request { expected_request_id: Some(REQUEST_ID), expected_acs_url: None, now: s.h.now };
    let raised = Limits { max_rsa_decryptions: 1000, ..Limits::default() };
    let v = saml::validate(Input::Xml(flood.as_bytes()), &rollover, &raised, &request).unwrap();
    assert!(v.encrypted);
    let config = format!("[limits]\nmax_rsa_decryptions = 3\n\n{}", config_text(&s.h.idp, ""));
    let config = Config::parse(&config, std::path::Path::new("."), chrono::Utc::now()).unwrap();
    assert_eq!(config.limits.max_rsa_decryptions, 3);
    assert_eq!(Limits::default().max_rsa_decryptions, 8);
}

/// Review item 1: EncryptedID and EncryptedAttribute count toward the same per-document total,
/// in a plain assertion and inside a decrypted one.
#[test]
fn rsa_operations_of_encrypted_ids_and_attributes_count_toward_one_total() {
    let s = setup();
    let rollover = two_keys(&s);
    let spec = s.h.spec();
    let xml = spec.render();
    let name_id = slice(&xml, "<NameID ", "</NameID>");
    let secret_id = format!(
        "<NameID xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" Format=\"{}\">bob@contoso.example</NameID>",
        spec.name_id_format
    );
    let email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
    let attribute = slice(&xml, &format!("<Attribute Name=\"{email}\">"), "</Attribute>");
    let secret_attribute = format!(
        "<Attribute xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" Name=\"{email}\"><AttributeValue>bob@contoso.example</AttributeValue></Attribute>"
    );
    let okta = EncryptOptions { retrieval_method: true, ..EncryptOptions::entra() };
    let encrypted_id = encrypt_element("EncryptedID", secret_id.as_bytes(), &s.sp, &okta).unwrap();
    let encrypted_attribute = encrypt_element("EncryptedAttribute", secret_attribute.as_bytes(), &s.sp, &okta).unwrap();
    let build = |ids: usize, attributes: usize| {
        let edited = replace_once(
            &replace_once(&xml, name_id, &with_sibling_keys(&encrypted_id, ids)),
            attribute,
            &with_sibling_keys(&encrypted_attribute, attributes),
        );
        s.h.idp.sign(&edited, &spec.assertion_id, &Default::default()).unwrap()
    };
    // Each alone fits (3 × 2 and 2 × 2); together they need 10 of 8.
    assert_eq!(s.h.check_with(&build(3, 1), &rollover).unwrap().subject.name_id, "bob@contoso.example");
    assert_eq!(s.h.check_with(&build(1, 2), &rollover).unwrap().subject.name_id, "bob@contoso.example");
    assert_rsa_limit(&s.h.check_with(&build(3, 2), &rollover).unwrap_err(), 10, 5, 2);
    assert_rsa_limit(&s.h.check_with(&build(250, 50), &rollover).unwrap_err(), 600, 300, 2);
    // Inside an EncryptedAssertion the EncryptedKeys of its EncryptedID are added to its own.
    let signed = build(4, 1);
    assert_eq!(s.h.check_with(&signed, &rollover).unwrap_err().code, Code::XmlTooComplex, "4 + 1 keys × 2");
    let signed = build(3, 1);
    let sealed = encrypt_element("EncryptedAssertion", assertion(&signed).as_bytes(), &s.sp, &okta).unwrap();
    let outer = replace_assertion(&signed, &spec.assertion_id, &with_sibling_keys(&sealed, 1)).unwrap();
    assert_rsa_limit(&s.h.check_with(&outer, &rollover).unwrap_err(), 10, 5, 2);
    assert_eq!(s.check(&outer).unwrap().subject.name_id, "bob@contoso.example", "5 × 1 fits");
}

#[path = "encryption/namespace_context.rs"]
mod namespace_context;
