//! SP-initiated login: AuthnRequests and SP metadata, over HTTP, gRPC and the CLI, checked with
//! tools that share no code with ours: xmllint against the OASIS XSDs, xmlsec1 for XML
//! signatures, `openssl dgst` for the redirect binding's query signature, flate2 for DEFLATE.
//! scripts/test.sh installs the tools (scripts/deps.sh) and fetches the XSDs
//! (scripts/schemas.sh); a test that cannot find one fails saying so, it never skips.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use base64::Engine as _;
use chrono::Utc;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use saml_validator::testing::idp::{self, post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::grpc::pb;
use serde_json::{json, Value};

const SSO: &str = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/saml2";
const PASSWORD_PROTECTED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

// ---------------------------------------------------------------- the independent tools

/// A tool on PATH, or a failure that says how to get it.
pub(crate) fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} not found on PATH: run scripts/test.sh, which installs the Debian package {package}")
    })
}

/// The OASIS XSD folder: $SAML_SCHEMAS_DIR, else target/saml-schemas (scripts/schemas.sh).
pub(crate) fn schema(file: &str) -> PathBuf {
    let dir = std::env::var_os("SAML_SCHEMAS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/saml-schemas"));
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "{} missing: run scripts/test.sh (scripts/schemas.sh fetches the SAML XSDs and sets SAML_SCHEMAS_DIR)",
        path.display()
    );
    path
}

pub(crate) fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = temp_dir("authn-requests").join(format!("{}-{name}", unique()));
    std::fs::write(&path, bytes).unwrap();
    path
}

pub(crate) fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// xmllint's verdict on `xml` against one of the OASIS schemas.
pub(crate) fn xsd_check(schema_file: &str, xml: &str) -> Result<(), String> {
    let file = scratch("document.xml", xml.as_bytes());
    let out = Command::new(tool("xmllint", "libxml2-utils"))
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema(schema_file))
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// xmlsec1's verdict on the enveloped signature of the element `id_attr` names.
pub(crate) fn xmlsec_verify(certificate_pem: &Path, id_attr: &str, xml: &str) -> Result<(), String> {
    let file = scratch("signed.xml", xml.as_bytes());
    let out = Command::new(tool("xmlsec1", "xmlsec1"))
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(certificate_pem)
        .arg("--id-attr:ID")
        .arg(id_attr)
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && stderr.lines().any(|l| l.trim() == "OK") {
        Ok(())
    } else {
        Err(stderr)
    }
}

/// `openssl dgst -sha256 -verify` over exactly `data`.
pub(crate) fn openssl_verify(public_key_pem: &[u8], data: &[u8], signature_der: &[u8]) -> bool {
    let key = scratch("pubkey.pem", public_key_pem);
    let signature = scratch("sig.bin", signature_der);
    let data = scratch("data.bin", data);
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&key)
        .arg("-signature")
        .arg(&signature)
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("openssl command not runnable: {e}"));
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

// ---------------------------------------------------------------- the SP's keys

/// An SP signing key and its self-signed certificate, as PEM files.
pub(crate) struct SpKey {
    pub(crate) key: PKey<Private>,
    pub(crate) key_file: PathBuf,
    pub(crate) certificate_file: PathBuf,
}

impl SpKey {
    pub(crate) fn rsa() -> SpKey {
        SpKey::with(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
    }

    pub(crate) fn ec() -> SpKey {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        SpKey::with(PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap())
    }

    fn with(key: PKey<Private>) -> SpKey {
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "help desk SP").unwrap();
        let name = name.build();
        let mut builder = openssl::x509::X509Builder::new().unwrap();
        builder.set_version(2).unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        builder.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        builder.set_not_after(&openssl::asn1::Asn1Time::days_from_now(365).unwrap()).unwrap();
        builder.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
        let certificate = builder.build();
        let n = unique();
        let key_file = scratch(&format!("sp{n}.key"), &key.private_key_to_pem_pkcs8().unwrap());
        let certificate_file = scratch(&format!("sp{n}.pem"), &certificate.to_pem().unwrap());
        SpKey { key, key_file, certificate_file }
    }

    pub(crate) fn public_pem(&self) -> Vec<u8> {
        self.key.public_key_to_pem().unwrap()
    }

    pub(crate) fn certificate_base64(&self) -> String {
        let pem = std::fs::read(&self.certificate_file).unwrap();
        B64.encode(openssl::x509::X509::from_pem(&pem).unwrap().to_der().unwrap())
    }

    pub(crate) fn settings(&self) -> String {
        format!(
            "sp_signing_key_file = {:?}\nsp_signing_certificate_file = {:?}\n",
            self.key_file.display().to_string(),
            self.certificate_file.display().to_string()
        )
    }
}

// ---------------------------------------------------------------- the service

/// contoso: SSO URL, RSA signing, an authn context; fabrikam: no SSO URL, unsigned; northwind:
/// the SSO URL only from its metadata (Redirect binding only); ecorp: an EC signing key.
fn config(idp: &TestIdp, sp: &SpKey, ec: &SpKey, extra: &str) -> String {
    let metadata = scratch("idp-metadata.xml", idp::idp_metadata(IDP, &[idp], None).as_bytes());
    let certificate = idp.certificate_base64();
    format!(
        r#"{}
[[tenants]]
id = "northwind"
sp_entity_id = "{SP}"
acs_url = "{ACS}"
metadata_file = {:?}

[[tenants]]
id = "ecorp"
idp_entity_id = "{IDP}"
sp_entity_id = "{SP}"
acs_url = "{ACS}"
certificates = ["{certificate}"]
idp_sso_url = "{SSO}"
{}
{extra}
"#,
        config_text(idp, "").replace(
            "certificates = ['''",
            &format!(
                "idp_sso_url = \"{SSO}\"\nrequested_authn_context = [\"{PASSWORD_PROTECTED}\"]\n{}certificates = ['''",
                sp.settings()
            )
        ) + &fabrikam_tenant(idp),
        metadata.display().to_string(),
        ec.settings(),
    )
}

struct Setup {
    idp: TestIdp,
    sp: SpKey,
    ec: SpKey,
    http: std::net::SocketAddr,
    grpc: std::net::SocketAddr,
}

fn setup() -> Setup {
    let (idp, sp, ec) = (TestIdp::generate().unwrap(), SpKey::rsa(), SpKey::ec());
    let (http, grpc) = start_both(&config(&idp, &sp, &ec, ""), false);
    Setup { idp, sp, ec, http, grpc }
}

fn create(addr: std::net::SocketAddr, body: &Value) -> HttpReply {
    request(addr, "POST", "/v1/authn-requests", body.to_string().as_bytes(), &[("Content-Type", "application/json")])
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The redirect URL's base and its query parameters, in order, still encoded.
pub(crate) fn query(url: &str) -> (&str, Vec<(&str, &str)>) {
    let (base, query) = url.split_once('?').unwrap();
    (base, query.split('&').map(|pair| pair.split_once('=').unwrap()).collect())
}

pub(crate) fn inflate(saml_request: &str) -> String {
    let deflated = B64.decode(percent_decode(saml_request)).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..]).read_to_string(&mut xml).unwrap();
    xml
}

pub(crate) fn attribute<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&xml[start..start + xml[start..].find('"')?])
}

// ---------------------------------------------------------------- the tests

#[test]
fn redirect_request_inflates_to_a_schema_valid_authn_request_signed_over_the_exact_query() {
    let s = setup();
    let reply = create(s.http, &json!({"tenant": "contoso", "relay_state": "/tickets/42?x=1&y=2"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    assert_eq!(v["binding"], "redirect");
    let id = v["id"].as_str().unwrap();
    assert!(id.len() == 33 && id.starts_with('_') && id[1..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let issued = saml_validator::saml::time::parse(v["issue_instant"].as_str().unwrap()).unwrap();
    let expires = saml_validator::saml::time::parse(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - issued).num_seconds(), 600, "authn_request_lifetime_seconds defaults to 600");
    assert!(v.get("action").is_none() && v.get("fields").is_none());

    let url = v["redirect_url"].as_str().unwrap();
    let (base, params) = query(url);
    assert_eq!(base, SSO);
    let names: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["SAMLRequest", "RelayState", "SigAlg", "Signature"]);
    assert_eq!(percent_decode(params[1].1), "/tickets/42?x=1&y=2");
    assert_eq!(percent_decode(params[2].1), "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");

    let xml = inflate(params[0].1);
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap_or_else(|e| panic!("not a valid AuthnRequest: {e}\n{xml}"));
    let without_version = xml.replace(" Version=\"2.0\"", "");
    assert!(xsd_check("saml-schema-protocol-2.0.xsd", &without_version).is_err(), "the schema check cannot fail");
    assert_eq!(attribute(&xml, "ID"), Some(id));
    assert_eq!(attribute(&xml, "Destination"), Some(SSO));
    assert_eq!(attribute(&xml, "AssertionConsumerServiceURL"), Some(ACS));
    assert_eq!(attribute(&xml, "ProtocolBinding"), Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"));
    assert_eq!(attribute(&xml, "Version"), Some("2.0"));
    assert!(attribute(&xml, "IssueInstant").unwrap().ends_with('Z'));
    assert!(xml.contains(&format!("<saml:Issuer>{SP}</saml:Issuer>")), "{xml}");
    assert!(xml.contains("Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\" AllowCreate=\"true\""));
    assert!(xml.contains(&format!("Comparison=\"exact\"><saml:AuthnContextClassRef>{PASSWORD_PROTECTED}<")));
    assert!(attribute(&xml, "ForceAuthn").is_none() && attribute(&xml, "IsPassive").is_none());
    assert!(!xml.contains("Signature"), "the redirect binding signs the query, not the XML: {xml}");

    // Bindings 3.4.4.1: the signature covers the octets up to `&Signature=`, as sent.
    let (signed, signature) = url.split_once('?').unwrap().1.rsplit_once("&Signature=").unwrap();
    let signature = B64.decode(percent_decode(signature)).unwrap();
    assert!(openssl_verify(&s.sp.public_pem(), signed.as_bytes(), &signature), "openssl refused the query signature");
    let tampered = signed.replace("RelayState=%2Ftickets", "RelayState=%2Fadmin");
    assert!(!openssl_verify(&s.sp.public_pem(), tampered.as_bytes(), &signature), "a changed query still verified");

    let again = create(s.http, &json!({"tenant": "contoso"})).json();
    assert_ne!(again["id"], v["id"], "every request gets a fresh ID");
    let (_, params) = query(again["redirect_url"].as_str().unwrap());
    assert_eq!(params.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["SAMLRequest", "SigAlg", "Signature"]);
    assert_eq!(attribute(&inflate(params[0].1), "ID"), again["id"].as_str());
}

#[test]
fn post_request_carries_an_enveloped_signature_that_xmlsec1_verifies() {
    let s = setup();
    let body =
        json!({"tenant": "contoso", "relay_state": "abc", "binding": "post", "force_authn": true, "is_passive": true});
    let reply = create(s.http, &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    assert_eq!((v["binding"].as_str(), v["action"].as_str()), (Some("post"), Some(SSO)));
    assert_eq!(v["fields"]["RelayState"], "abc");
    assert!(v.get("redirect_url").is_none());
    let xml = String::from_utf8(B64.decode(v["fields"]["SAMLRequest"].as_str().unwrap()).unwrap()).unwrap();
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(attribute(&xml, "ID"), v["id"].as_str());
    assert_eq!((attribute(&xml, "ForceAuthn"), attribute(&xml, "IsPassive")), (Some("true"), Some("true")));
    assert!(xml.contains("</saml:Issuer><ds:Signature "), "SAML core 5.4.1: the Signature follows Issuer");
    let protocol = "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest";
    xmlsec_verify(&s.sp.certificate_file, protocol, &xml).unwrap_or_else(|e| panic!("xmlsec1: {e}\n{xml}"));
    let tampered = xml.replace(ACS, "https://evil.example/acs");
    assert!(xmlsec_verify(&s.sp.certificate_file, protocol, &tampered).is_err(), "xmlsec1 accepted a changed request");

    // EC keys sign with ECDSA-SHA256 in XML-DSig's r || s form.
    let v = create(s.http, &json!({"tenant": "ecorp", "binding": "post"})).json();
    let xml = String::from_utf8(B64.decode(v["fields"]["SAMLRequest"].as_str().unwrap()).unwrap()).unwrap();
    assert!(xml.contains("xmldsig-more#ecdsa-sha256"));
    xmlsec_verify(&s.ec.certificate_file, protocol, &xml).unwrap_or_else(|e| panic!("xmlsec1 (EC): {e}"));
    // ... and the redirect binding's query with the same r || s signature.
    let v = create(s.http, &json!({"tenant": "ecorp"})).json();
    let url = v["redirect_url"].as_str().unwrap();
    let (signed, signature) = url.split_once('?').unwrap().1.rsplit_once("&Signature=").unwrap();
    let raw = B64.decode(percent_decode(signature)).unwrap();
    assert_eq!(raw.len(), 64);
    let (r, s_) = raw.split_at(32);
    let der = openssl::ecdsa::EcdsaSig::from_private_components(
        openssl::bn::BigNum::from_slice(r).unwrap(),
        openssl::bn::BigNum::from_slice(s_).unwrap(),
    )
    .unwrap()
    .to_der()
    .unwrap();
    assert!(openssl_verify(&s.ec.public_pem(), signed.as_bytes(), &der), "openssl refused the EC query signature");
}

#[test]
fn sp_metadata_is_schema_valid_signed_and_says_what_the_idp_needs() {
    let s = setup();
    let reply = request(s.http, "GET", "/v1/tenants/contoso/sp-metadata", b"", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/samlmetadata+xml"));
    let xml = &reply.body;
    xsd_check("saml-schema-metadata-2.0.xsd", xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let entity = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor";
    xmlsec_verify(&s.sp.certificate_file, entity, xml).unwrap_or_else(|e| panic!("xmlsec1: {e}\n{xml}"));
    assert!(xmlsec_verify(&s.sp.certificate_file, entity, &xml.replace(ACS, "https://evil.example/")).is_err());
    assert_eq!(attribute(xml, "entityID"), Some(SP));
    assert_eq!(attribute(xml, "AuthnRequestsSigned"), Some("true"));
    assert_eq!(attribute(xml, "WantAssertionsSigned"), Some("true"));
    assert_eq!(attribute(xml, "protocolSupportEnumeration"), Some("urn:oasis:names:tc:SAML:2.0:protocol"));
    assert!(xml.contains(&format!(
        "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}<",
        s.sp.certificate_base64()
    )));
    assert!(!xml.contains("use=\"encryption\""), "no decryption certificates are configured");
    assert!(xml.contains(&format!(
        "<md:AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{ACS}\" index=\"0\" isDefault=\"true\"/>"
    )));
    assert!(xml.contains("<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>"));
    let until = saml_validator::saml::time::parse(attribute(xml, "validUntil").unwrap()).unwrap();
    assert!(((until - Utc::now()).num_seconds() - 7 * 86_400).abs() < 60, "validUntil is a week ahead");

    // Without a signing key: unsigned, and it says requests are unsigned.
    let reply = request(s.http, "GET", "/v1/tenants/fabrikam/sp-metadata", b"", &[]);
    assert_eq!(reply.status, 200);
    xsd_check("saml-schema-metadata-2.0.xsd", &reply.body).unwrap();
    assert_eq!(attribute(&reply.body, "AuthnRequestsSigned"), Some("false"));
    assert!(!reply.body.contains("Signature") && !reply.body.contains("KeyDescriptor"));

    let reply = request(s.http, "GET", "/v1/tenants/nope/sp-metadata", b"", &[]);
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (404, Some("unknown_tenant")));
}

#[test]
fn the_test_idp_answers_the_request_and_only_that_request_validates() {
    let s = setup();
    let first = create(s.http, &json!({"tenant": "contoso", "binding": "post"})).json();
    let second = create(s.http, &json!({"tenant": "contoso"})).json();
    let (first_id, second_id) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let answer = |seed| {
        let spec = ResponseSpec::entra(IDP, SP, ACS, Some(first_id), Utc::now(), 3, seed);
        post_binding(&spec.signed(&s.idp, Signing::Assertion).unwrap())
    };
    let ok = validate_json(
        s.http,
        &json!({"tenant": "contoso", "saml_response": answer(1), "expected_request_id": first_id}),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["valid"], true);
    // A response to another browser's request (login CSRF) does not validate in this session.
    let other = validate_json(
        s.http,
        &json!({"tenant": "contoso", "saml_response": answer(2), "expected_request_id": second_id}),
    );
    assert_eq!((other.status, other.json()["error"]["code"].as_str()), (422, Some("in_response_to_mismatch")));
}

#[test]
fn refusals_have_their_codes() {
    let s = setup();
    for (body, status, code) in [
        (json!({"tenant": "nope"}), 404, "unknown_tenant"),
        (json!({"tenant": "fabrikam"}), 422, "idp_sso_url_unknown"),
        (json!({"tenant": "fabrikam", "binding": "post"}), 422, "idp_sso_url_unknown"),
        (json!({"tenant": "contoso", "relay_state": "x".repeat(81)}), 400, "relay_state_too_long"),
        (json!({"tenant": "contoso", "binding": "artifact"}), 400, "malformed_request"),
        (json!({"tenant": "contoso", "extra": 1}), 400, "malformed_request"),
        (json!({"binding": "post"}), 400, "malformed_request"),
        // northwind's metadata publishes only an HTTP-Redirect SingleSignOnService.
        (json!({"tenant": "northwind", "binding": "post"}), 422, "idp_sso_url_unknown"),
    ] {
        let reply = create(s.http, &body);
        assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (status, Some(code)), "{body}");
    }
    let exactly_80 = create(s.http, &json!({"tenant": "contoso", "relay_state": "x".repeat(80)}));
    assert_eq!(exactly_80.status, 200, "{}", exactly_80.body);
    let from_metadata = create(s.http, &json!({"tenant": "northwind"})).json();
    let url = from_metadata["redirect_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{IDP}saml2?SAMLRequest=")), "{url}");
    assert!(!url.contains("Signature="), "northwind has no signing key");
}

#[test]
fn callers_and_their_tenant_restrictions_apply_as_for_validation() {
    let (idp, sp, ec) = (TestIdp::generate().unwrap(), SpKey::rsa(), SpKey::ec());
    let callers = format!(
        "[[callers]]\nname = \"fabrikam-desk\"\ntoken_sha256 = \"{}\"\ntenants = [\"fabrikam\"]\n",
        sha256_hex("fabrikam-token")
    );
    let (http, _) = start_both(&config(&idp, &sp, &ec, &callers), false);
    let bearer = [("Authorization", "Bearer fabrikam-token")];
    let body = json!({"tenant": "contoso"}).to_string();
    let reply = request(http, "POST", "/v1/authn-requests", body.as_bytes(), &bearer);
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (403, Some("forbidden")));
    let reply = request(http, "POST", "/v1/authn-requests", body.as_bytes(), &[]);
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (401, Some("unauthenticated")));
    let unknown = json!({"tenant": "nope"}).to_string();
    let reply = request(http, "POST", "/v1/authn-requests", unknown.as_bytes(), &bearer);
    assert_eq!(reply.status, 403, "a restricted caller learns nothing about other tenant ids");
    let reply = request(http, "GET", "/v1/tenants/contoso/sp-metadata", b"", &bearer);
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(request(http, "GET", "/v1/tenants/fabrikam/sp-metadata", b"", &[]).status, 401);
    assert_eq!(request(http, "GET", "/v1/tenants/fabrikam/sp-metadata", b"", &bearer).status, 200);
    let own = json!({"tenant": "fabrikam"}).to_string();
    let reply = request(http, "POST", "/v1/authn-requests", own.as_bytes(), &bearer);
    assert_eq!(reply.json()["error"]["code"], "idp_sso_url_unknown", "authorized, then judged");
}

#[test]
fn grpc_create_authn_request_matches_http() {
    let s = setup();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{}", s.grpc)).await.unwrap();
        let message = |tenant: &str, binding: &str, relay_state: Option<&str>| pb::CreateAuthnRequestRequest {
            tenant: tenant.into(),
            relay_state: relay_state.map(str::to_string),
            force_authn: false,
            is_passive: false,
            binding: binding.into(),
            acs_url: None,
        };
        let post = client.create_authn_request(message("contoso", "post", Some("s1"))).await.unwrap().into_inner();
        assert_eq!((post.binding.as_str(), post.action.as_deref()), ("post", Some(SSO)));
        assert_eq!(post.fields.get("RelayState").map(String::as_str), Some("s1"));
        let xml = String::from_utf8(B64.decode(&post.fields["SAMLRequest"]).unwrap()).unwrap();
        assert_eq!(attribute(&xml, "ID"), Some(post.id.as_str()));
        let protocol = "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest";
        xmlsec_verify(&s.sp.certificate_file, protocol, &xml).unwrap();

        // An empty binding is the default, redirect, as an absent JSON field is.
        let redirect = client.create_authn_request(message("contoso", "", None)).await.unwrap().into_inner();
        assert_eq!(redirect.binding, "redirect");
        assert!(redirect.redirect_url.unwrap().starts_with(&format!("{SSO}?SAMLRequest=")));
        assert!(redirect.fields.is_empty() && redirect.action.is_none());

        for (request, code, grpc) in [
            (message("fabrikam", "", None), "idp_sso_url_unknown", tonic::Code::FailedPrecondition),
            (message("nope", "", None), "unknown_tenant", tonic::Code::NotFound),
            (message("contoso", "", Some(&"x".repeat(81))), "relay_state_too_long", tonic::Code::InvalidArgument),
            (message("contoso", "artifact", None), "malformed_request", tonic::Code::InvalidArgument),
        ] {
            let status = client.create_authn_request(request).await.unwrap_err();
            assert_eq!(status.code(), grpc, "{code}");
            assert_eq!(status.metadata().get("x-error-code").unwrap().to_str().unwrap(), code);
        }
    });
}

#[test]
fn cli_prints_the_same_documents() {
    let (idp, sp, ec) = (TestIdp::generate().unwrap(), SpKey::rsa(), SpKey::ec());
    let file = scratch("config.toml", config(&idp, &sp, &ec, "").as_bytes());
    let run = |args: &[&str]| Command::new(BIN).args(args).arg("--config").arg(&file).output().unwrap();
    let out = run(&["authn-request", "--tenant", "contoso", "--binding", "post", "--relay-state", "r"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["binding"].as_str(), v["action"].as_str()), (Some("post"), Some(SSO)));
    let xml = String::from_utf8(B64.decode(v["fields"]["SAMLRequest"].as_str().unwrap()).unwrap()).unwrap();
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap();
    xmlsec_verify(&sp.certificate_file, "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest", &xml).unwrap();

    let out = run(&["authn-request", "--tenant", "fabrikam"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "idp_sso_url_unknown");

    let out = run(&["sp-metadata", "--tenant", "contoso"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let xml = String::from_utf8(out.stdout).unwrap();
    xsd_check("saml-schema-metadata-2.0.xsd", &xml).unwrap();
    xmlsec_verify(&sp.certificate_file, "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", &xml).unwrap();
    assert_eq!(run(&["sp-metadata", "--tenant", "nope"]).status.code(), Some(2));
}

#[test]
fn signing_key_problems_are_configuration_errors_reported_together() {
    let (idp, one, other) = (TestIdp::generate().unwrap(), SpKey::rsa(), SpKey::rsa());
    let tenant = |settings: String| {
        config_text(&idp, "").replace("certificates = ['''", &format!("{settings}certificates = ['''"))
    };
    let parse =
        |text: &str| saml_validator::config::Config::parse(text, Path::new("."), Utc::now()).map(|_| ()).unwrap_err().0;
    let mismatched = format!(
        "sp_signing_key_file = {:?}\nsp_signing_certificate_file = {:?}\nidp_sso_url = \"ftp://x\"\n",
        one.key_file.display().to_string(),
        other.certificate_file.display().to_string()
    );
    let problems = parse(&tenant(mismatched));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("sp_signing_key_file") && p.contains("does not match")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("idp_sso_url")), "{problems:?}");
    let key_text = std::fs::read_to_string(&one.key_file).unwrap();
    let secret_line = key_text.lines().nth(1).unwrap();
    assert!(problems.iter().all(|p| !p.contains(secret_line)), "key material in a message");

    let both = format!(
        "{}sp_signing_key_files = [{:?}]\nsp_signing_certificate_files = [{:?}]\n",
        one.settings(),
        other.key_file.display().to_string(),
        other.certificate_file.display().to_string()
    );
    assert!(parse(&tenant(both)).iter().any(|p| p.contains("not both")));
    let uneven = format!("sp_signing_key_files = [{:?}]\n", one.key_file.display().to_string());
    assert!(parse(&tenant(uneven)).iter().any(|p| p.contains("each key needs its certificate")));

    // A rollover list: the first key signs, both certificates are published.
    let rollover = format!(
        "idp_sso_url = \"{SSO}\"\nsp_signing_key_files = [{:?}, {:?}]\nsp_signing_certificate_files = [{:?}, {:?}]\n",
        one.key_file.display().to_string(),
        other.key_file.display().to_string(),
        one.certificate_file.display().to_string(),
        other.certificate_file.display().to_string()
    );
    let config = saml_validator::config::Config::parse(&tenant(rollover), Path::new("."), Utc::now()).unwrap();
    let contoso = &config.tenants[0];
    let xml = saml_validator::service::sp::sp_metadata(contoso, "_md", Utc::now()).unwrap();
    assert_eq!(xml.matches("use=\"signing\"").count(), 2);
    let entity = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor";
    xmlsec_verify(&one.certificate_file, entity, &xml).unwrap();
    assert!(xmlsec_verify(&other.certificate_file, entity, &xml).is_err(), "the second key does not sign");
}

/// `decryption_certificate_files` are published as the encryption KeyDescriptor (they were
/// parsed and checked, but SP metadata listed none, so an IdP set up from it never encrypted).
#[test]
fn sp_metadata_publishes_the_decryption_certificates_for_encryption() {
    let (idp, signing, decryption) = (TestIdp::generate().unwrap(), SpKey::rsa(), SpKey::rsa());
    let settings = format!(
        "{}decryption_key_files = [{:?}]\ndecryption_certificate_files = [{:?}]\n",
        signing.settings(),
        decryption.key_file.display().to_string(),
        decryption.certificate_file.display().to_string()
    );
    let text = config_text(&idp, "").replace("certificates = ['''", &format!("{settings}certificates = ['''"));
    let config = saml_validator::config::Config::parse(&text, Path::new("."), Utc::now()).unwrap();
    let xml = saml_validator::service::sp::sp_metadata(&config.tenants[0], "_md", Utc::now()).unwrap();
    xsd_check("saml-schema-metadata-2.0.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    xmlsec_verify(&signing.certificate_file, "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", &xml).unwrap();
    assert!(xml.contains(&format!(
        "<md:KeyDescriptor use=\"encryption\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}<",
        decryption.certificate_base64()
    )));
    assert_eq!(xml.matches("use=\"encryption\"").count(), 1);
}
