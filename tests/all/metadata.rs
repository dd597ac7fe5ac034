//! IdP metadata parsing on the real documents of tests/fixtures/idp-metadata (Entra with BOM and
//! WS-Fed roles, AD FS, Okta, Google, Shibboleth, Keycloak, ...), signature verification when a
//! metadata signing certificate is configured, and the failure modes.

use std::path::{Path, PathBuf};

use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::metadata::{self, MetadataPolicy};
use saml_validator::saml::{time, Code};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/idp-metadata")
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["metadata"].as_array().unwrap().clone()
}

fn now_for(entry: &Value) -> chrono::DateTime<chrono::Utc> {
    match entry["valid_until"].as_str() {
        Some(until) => time::parse(until).unwrap() - chrono::Duration::days(1),
        None => time::parse("2026-11-29T00:00:00Z").unwrap(),
    }
}

fn signing_cert(entry: &Value) -> Option<TrustedKey> {
    let file = entry["metadata_signing_cert_file"].as_str()?;
    Some(TrustedKey::from_certificate_text(&std::fs::read_to_string(dir().join(file)).unwrap()).unwrap())
}

#[test]
fn every_metadata_document_yields_its_entity_and_signing_keys() {
    let mut checked = 0;
    for entry in manifest() {
        let name = entry["file"].as_str().unwrap();
        let bytes = std::fs::read(dir().join(name)).unwrap();
        let keys: Vec<TrustedKey> = signing_cert(&entry).into_iter().collect();
        let policy = MetadataPolicy { signing_keys: &keys, allow_sha1: true, now: now_for(&entry) };
        let parsed = metadata::parse(&bytes, &policy).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.entity_id, entry["entity_id"].as_str().unwrap(), "{name}");
        assert_eq!(parsed.signature_verified, !keys.is_empty(), "{name}");
        let idp_role = entry["roles"].as_array().unwrap().iter().find(|r| r["role"] == "IDPSSODescriptor").unwrap();
        let expected: Vec<&str> = idp_role["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["use"] != "encryption")
            .map(|k| k["sha256_fingerprint"].as_str().unwrap())
            .collect();
        let got: Vec<&str> = parsed.signing_keys.iter().map(|k| k.info.sha256_fingerprint.as_str()).collect();
        assert_eq!(got, expected, "{name}");
        let sso = idp_role["single_sign_on_services"].as_array().unwrap();
        assert_eq!(parsed.single_sign_on.len(), sso.len(), "{name}");
        assert_eq!(parsed.single_sign_on[0].1, sso[0]["location"].as_str().unwrap(), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 17);
}

#[test]
fn signed_metadata_is_verified_and_tampering_is_refused() {
    let entry = manifest().into_iter().find(|e| e["file"] == "entra-xmlcrypto-tenant-federationmetadata.xml").unwrap();
    let bytes = std::fs::read(dir().join(entry["file"].as_str().unwrap())).unwrap();
    let keys = vec![signing_cert(&entry).unwrap()];
    let policy = MetadataPolicy { signing_keys: &keys, allow_sha1: false, now: now_for(&entry) };
    assert_eq!(metadata::parse(&bytes, &policy).unwrap().signing_keys.len(), 2);

    // Another IdP's certificate does not verify it.
    let other = manifest().into_iter().find(|e| e["file"] == "adfs-identitymodel-v3-federationmetadata.xml").unwrap();
    let wrong = vec![signing_cert(&other).unwrap()];
    let policy_wrong = MetadataPolicy { signing_keys: &wrong, ..policy };
    assert_eq!(metadata::parse(&bytes, &policy_wrong).unwrap_err().code, Code::SignatureInvalid);

    // A substituted entityID (or key) breaks the digest.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let entity = entry["entity_id"].as_str().unwrap();
    let tampered = text.replacen(entity, "https://sts.windows.net/00000000-0000-0000-0000-000000000000/", 1);
    let policy = MetadataPolicy { signing_keys: &keys, allow_sha1: false, now: now_for(&entry) };
    assert_eq!(metadata::parse(tampered.as_bytes(), &policy).unwrap_err().code, Code::DigestMismatch);
}

#[test]
fn unsigned_metadata_is_refused_when_a_signature_is_required() {
    let okta = std::fs::read(dir().join("okta-ssoready-metadata.xml")).unwrap();
    let entry = manifest().into_iter().find(|e| e["file"] == "entra-ssoready-tenant-federationmetadata.xml").unwrap();
    let keys = vec![signing_cert(&entry).unwrap()];
    let policy =
        MetadataPolicy { signing_keys: &keys, allow_sha1: false, now: time::parse("2026-01-01T00:00:00Z").unwrap() };
    assert_eq!(metadata::parse(&okta, &policy).unwrap_err().code, Code::MetadataSignatureMissing);
}

#[test]
fn expired_empty_and_foreign_documents_are_refused() {
    let google = manifest().into_iter().find(|e| e["valid_until"].is_string()).unwrap();
    let bytes = std::fs::read(dir().join(google["file"].as_str().unwrap())).unwrap();
    let late = time::parse(google["valid_until"].as_str().unwrap()).unwrap() + chrono::Duration::seconds(1);
    let policy = MetadataPolicy { signing_keys: &[], allow_sha1: false, now: late };
    assert_eq!(metadata::parse(&bytes, &policy).unwrap_err().code, Code::MetadataExpired);

    let now = time::parse("2026-01-01T00:00:00Z").unwrap();
    let policy = MetadataPolicy { signing_keys: &[], allow_sha1: false, now };
    let okta = String::from_utf8(std::fs::read(dir().join("okta-ssoready-metadata.xml")).unwrap()).unwrap();
    let start = okta.find("<md:KeyDescriptor").unwrap();
    let end = okta.find("</md:KeyDescriptor>").unwrap() + "</md:KeyDescriptor>".len();
    let keyless = format!("{}{}", &okta[..start], &okta[end..]);
    assert_eq!(metadata::parse(keyless.as_bytes(), &policy).unwrap_err().code, Code::MetadataInvalid);
    for garbage in [&b"not xml"[..], b"<html><body>502 Bad Gateway</body></html>", b""] {
        let code = metadata::parse(garbage, &policy).unwrap_err().code;
        assert!(matches!(code, Code::XmlMalformed | Code::MetadataInvalid), "{code}");
    }
}
