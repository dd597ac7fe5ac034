//! Single Logout (issue 30): the SP's LogoutRequests and LogoutResponses in both bindings,
//! checked with tools that share no code with ours (xmllint against the OASIS XSDs, xmlsec1,
//! `openssl dgst` over the exact query octets), and the IdP's messages judged with the
//! strictness of logins, over HTTP, gRPC and the CLI.

use std::process::Command;

use crate::authn_requests::{
    attribute, inflate, openssl_verify, percent_decode, query, scratch, unique, xmlsec_verify, xsd_check, SpKey,
};
use crate::support::*;
use base64::Engine as _;
use chrono::{Duration, Utc};
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::logout_check::{self, Delivered, LogoutPolicy};
use saml_validator::saml::ns::alg;
use saml_validator::saml::{Code, Limits, TenantPolicy};
use saml_validator::testing::idp::{self, SignOptions, TestIdp};
use saml_validator::testing::logout::{deflate_base64, LogoutSpec, QueryOptions};
use saml_validator::transport::grpc::pb;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The SP's logout endpoint (`slo_url`).
const SLO: &str = "https://contoso.jitbit.example/helpdesk/User/Logout";
/// The IdP's SingleLogoutService (`idp_slo_url`).
const IDP_SLO: &str = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/saml2";
const PROTOCOL_LOGOUT_REQUEST: &str = "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest";
const PROTOCOL_LOGOUT_RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse";

/// contoso: signing SP, IdP SLO URL, slo_url; relaxed: require_signed_logout_messages = false;
/// fabrikam: neither SLO URL; ecorp: an ECDSA IdP; northwind: the IdP SLO URL from metadata.
fn config(idp: &TestIdp, ec_idp: &TestIdp, sp: &SpKey) -> String {
    let metadata = scratch("idp-metadata.xml", idp::idp_metadata(IDP, &[idp], None).as_bytes());
    let tenant = |id: &str, certificate: String, extra: &str| {
        format!(
            "\n[[tenants]]\nid = \"{id}\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{certificate}\"]\nslo_url = \"{SLO}\"\n{extra}\n"
        )
    };
    config_text(idp, "").replace(
        "certificates = ['''",
        &format!("idp_slo_url = \"{IDP_SLO}\"\nslo_url = \"{SLO}\"\n{}certificates = ['''", sp.settings()),
    ) + &fabrikam_tenant(idp)
        + &tenant("relaxed", idp.certificate_base64(), "require_signed_logout_messages = false")
        + &tenant("ecorp", ec_idp.certificate_base64(), "")
        + &format!(
            "\n[[tenants]]\nid = \"northwind\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nslo_url = \"{SLO}\"\nmetadata_file = {:?}\n",
            metadata.display().to_string()
        )
}

struct Setup {
    idp: TestIdp,
    ec_idp: TestIdp,
    sp: SpKey,
    http: std::net::SocketAddr,
    grpc: std::net::SocketAddr,
}

fn setup() -> Setup {
    let (idp, ec_idp, sp) = (TestIdp::generate().unwrap(), TestIdp::generate_ec().unwrap(), SpKey::rsa());
    let (http, grpc) = start_both(&config(&idp, &ec_idp, &sp), false);
    Setup { idp, ec_idp, sp, http, grpc }
}

fn post(addr: std::net::SocketAddr, path: &str, body: &Value) -> HttpReply {
    request(addr, "POST", path, body.to_string().as_bytes(), &[("Content-Type", "application/json")])
}

fn code(reply: &HttpReply) -> String {
    reply.json()["error"]["code"].as_str().unwrap_or("none").to_string()
}

/// An IdP message to the SP with a fresh ID.
fn spec() -> LogoutSpec {
    let mut spec = LogoutSpec::new(IDP, SLO, Utc::now());
    spec.id = format!("_idp{}x{}", unique(), std::process::id());
    spec
}

fn redirect(tenant: &str, query: &str) -> Value {
    json!({"tenant": tenant, "binding": "redirect", "query": query})
}

// ---------------------------------------------------------------- the SP's messages

#[test]
fn sp_logout_request_is_schema_valid_and_signed_in_both_bindings() {
    let s = setup();
    let body = json!({"tenant": "contoso", "name_id": "alice@contoso.com",
        "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "session_indexes": ["_s1", "_s2"], "relay_state": "/after/logout?x=1"});
    let reply = post(s.http, "/v1/logout-requests", &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    let url = v["redirect_url"].as_str().unwrap();
    let (base, params) = query(url);
    assert_eq!(base, IDP_SLO);
    assert_eq!(
        params.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["SAMLRequest", "RelayState", "SigAlg", "Signature"]
    );
    let xml = inflate(params[0].1);
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(attribute(&xml, "ID"), v["id"].as_str());
    assert_eq!(attribute(&xml, "Destination"), Some(IDP_SLO));
    assert_eq!(attribute(&xml, "NotOnOrAfter"), v["expires_at"].as_str());
    assert!(xml.contains(&format!("<saml:Issuer>{SP}</saml:Issuer>")), "{xml}");
    assert!(xml.contains("<samlp:SessionIndex>_s1</samlp:SessionIndex><samlp:SessionIndex>_s2</samlp:SessionIndex>"));
    assert!(!xml.contains("Signature"), "{xml}");
    // Bindings 3.4.4.1: the signature covers the octets up to `&Signature=`, as sent.
    let (signed, signature) = url.split_once('?').unwrap().1.rsplit_once("&Signature=").unwrap();
    let signature = B64.decode(percent_decode(signature)).unwrap();
    assert!(openssl_verify(&s.sp.public_pem(), signed.as_bytes(), &signature));
    assert!(!openssl_verify(&s.sp.public_pem(), signed.replace("%2Fafter", "%2Fother").as_bytes(), &signature));

    let reply = post(s.http, "/v1/logout-requests", &json!({"tenant": "contoso", "name_id": "a", "binding": "post"}));
    let v = reply.json();
    assert_eq!((v["binding"].as_str(), v["action"].as_str()), (Some("post"), Some(IDP_SLO)));
    let xml = String::from_utf8(B64.decode(v["fields"]["SAMLRequest"].as_str().unwrap()).unwrap()).unwrap();
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(xml.contains("</saml:Issuer><ds:Signature "), "SAML core 5.4.1: the Signature follows Issuer");
    xmlsec_verify(&s.sp.certificate_file, PROTOCOL_LOGOUT_REQUEST, &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let tampered = xml.replace(">a</saml:NameID>", ">b</saml:NameID>");
    assert!(xmlsec_verify(&s.sp.certificate_file, PROTOCOL_LOGOUT_REQUEST, &tampered).is_err());

    // The IdP SLO URL from metadata (northwind); none at all (fabrikam); bounds on the input.
    let reply = post(s.http, "/v1/logout-requests", &json!({"tenant": "northwind", "name_id": "a"}));
    assert!(reply.json()["redirect_url"].as_str().unwrap().starts_with(&format!("{IDP}saml2?SAMLRequest=")));
    for (body, expected) in [
        (json!({"tenant": "fabrikam", "name_id": "a"}), "idp_slo_url_unknown"),
        (json!({"tenant": "contoso", "name_id": ""}), "malformed_request"),
        (json!({"tenant": "contoso", "name_id": "a", "name_id_format": "a b"}), "malformed_request"),
        // Characters XML cannot carry are the caller's error, not the service's (was a 500).
        (json!({"tenant": "contoso", "name_id": "al\u{1}ice"}), "malformed_request"),
        (json!({"tenant": "contoso", "name_id": "a", "session_indexes": ["s\u{b}1"]}), "malformed_request"),
        (json!({"tenant": "contoso", "name_id": "a\u{fffe}"}), "malformed_request"),
        (json!({"tenant": "contoso", "name_id": "a", "relay_state": "x".repeat(81)}), "relay_state_too_long"),
        (json!({"tenant": "contoso", "name_id": "a", "binding": "artifact"}), "malformed_request"),
        (json!({"tenant": "nope", "name_id": "a"}), "unknown_tenant"),
    ] {
        assert_eq!(code(&post(s.http, "/v1/logout-requests", &body)), expected, "{body}");
    }
}

#[test]
fn sp_logout_response_is_schema_valid_and_signed_in_both_bindings() {
    let s = setup();
    let body = json!({"tenant": "contoso", "in_response_to": "_idp-req-1", "relay_state": "rs",
        "second_level_status": "urn:oasis:names:tc:SAML:2.0:status:PartialLogout", "status_message": "partly"});
    let v = post(s.http, "/v1/logout-responses", &body).json();
    let url = v["redirect_url"].as_str().unwrap();
    let (_, params) = query(url);
    assert_eq!(
        params.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["SAMLResponse", "RelayState", "SigAlg", "Signature"]
    );
    let xml = inflate(params[0].1);
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(attribute(&xml, "InResponseTo"), Some("_idp-req-1"));
    assert!(
        xml.contains(":status:Success\"><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:PartialLogout")
    );
    let (signed, signature) = url.split_once('?').unwrap().1.rsplit_once("&Signature=").unwrap();
    assert!(openssl_verify(&s.sp.public_pem(), signed.as_bytes(), &B64.decode(percent_decode(signature)).unwrap()));

    let body = json!({"tenant": "contoso", "in_response_to": "_r2", "binding": "post", "status": "responder"});
    let v = post(s.http, "/v1/logout-responses", &body).json();
    assert!(v.get("expires_at").is_none());
    let xml = String::from_utf8(B64.decode(v["fields"]["SAMLResponse"].as_str().unwrap()).unwrap()).unwrap();
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(xml.contains("urn:oasis:names:tc:SAML:2.0:status:Responder"));
    xmlsec_verify(&s.sp.certificate_file, PROTOCOL_LOGOUT_RESPONSE, &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    for body in [
        json!({"tenant": "contoso", "in_response_to": "a b"}),
        json!({"tenant": "contoso", "in_response_to": "_r", "status": "fine"}),
    ] {
        assert_eq!(code(&post(s.http, "/v1/logout-responses", &body)), "malformed_request", "{body}");
    }
}

#[test]
fn sp_metadata_publishes_single_logout_for_both_bindings() {
    let s = setup();
    let xml = request(s.http, "GET", "/v1/tenants/contoso/sp-metadata", b"", &[]).body;
    xsd_check("saml-schema-metadata-2.0.xsd", &xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    for binding in ["HTTP-Redirect", "HTTP-POST"] {
        let element = format!(
            "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:{binding}\" Location=\"{SLO}\"/>"
        );
        assert!(xml.contains(&element), "{xml}");
    }
    let fabrikam = request(s.http, "GET", "/v1/tenants/fabrikam/sp-metadata", b"", &[]).body;
    assert!(!fabrikam.contains("SingleLogoutService"), "no slo_url, no endpoint");
}

// ---------------------------------------------------------------- the IdP's messages

#[test]
fn idp_logout_requests_round_trip_in_both_bindings_and_every_signing_choice() {
    let s = setup();
    let cases: Vec<(&str, &TestIdp, QueryOptions)> = vec![
        ("contoso", &s.idp, QueryOptions::default()),
        ("contoso", &s.idp, QueryOptions { sig_alg: Some(alg::RSA_SHA512), lowercase_escapes: false }),
        // Entra writes lower-case escapes and signs them: the octets as received verify.
        ("contoso", &s.idp, QueryOptions { sig_alg: Some(alg::RSA_SHA256), lowercase_escapes: true }),
        ("ecorp", &s.ec_idp, QueryOptions { sig_alg: Some(alg::ECDSA_SHA256), lowercase_escapes: false }),
    ];
    for (tenant, signer, options) in cases {
        let spec = spec();
        let query = signer.redirect_query("SAMLRequest", &spec.request_xml(), Some("/home"), &options).unwrap();
        let reply = post(s.http, "/v1/logout/validate", &redirect(tenant, &format!("?{query}")));
        assert_eq!(reply.status, 200, "{tenant} {options:?}: {}", reply.body);
        let v = reply.json();
        assert_eq!(v["message_type"], "LogoutRequest");
        assert_eq!((v["binding"].as_str(), v["signed_by"].as_str()), (Some("redirect"), Some("query")));
        assert_eq!(v["request_id"].as_str(), Some(spec.id.as_str()));
        assert_eq!(v["issuer"], IDP);
        assert_eq!(v["name_id"]["value"], "alice@contoso.com");
        assert_eq!(v["name_id"]["format"], "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress");
        assert_eq!(v["session_indexes"], json!(["_session-1"]));
        assert_eq!(v["relay_state"], "/home");
        assert!(v["not_on_or_after"].as_str().unwrap().ends_with('Z'));
    }
    for (tenant, signer, options) in [
        ("contoso", &s.idp, SignOptions::default()),
        ("contoso", &s.idp, SignOptions { key_info: false, ..SignOptions::default() }),
        ("ecorp", &s.ec_idp, SignOptions { signature_method: alg::ECDSA_SHA256, ..SignOptions::default() }),
    ] {
        let spec = spec();
        let value = signer.post_value(&spec.request_xml(), &spec.id, Some(&options)).unwrap();
        let body = json!({"tenant": tenant, "binding": "post", "saml_request": value, "relay_state": "r"});
        let reply = post(s.http, "/v1/logout/validate", &body);
        assert_eq!(reply.status, 200, "{tenant}: {}", reply.body);
        assert_eq!(
            (reply.json()["signed_by"].as_str(), reply.json()["relay_state"].as_str()),
            (Some("xml"), Some("r"))
        );
    }
}

#[test]
fn sp_initiated_logout_round_trips_and_binds_the_response_to_the_request() {
    let s = setup();
    let created = post(s.http, "/v1/logout-requests", &json!({"tenant": "contoso", "name_id": "alice"})).json();
    let request_id = created["id"].as_str().unwrap();
    let answer = |in_response_to: &str| {
        let mut spec = spec();
        spec.in_response_to = in_response_to.to_string();
        s.idp.redirect_query("SAMLResponse", &spec.response_xml(), None, &QueryOptions::default()).unwrap()
    };
    let good = answer(request_id);
    let body = json!({"tenant": "contoso", "query": good, "expected_request_id": request_id});
    let reply = post(s.http, "/v1/logout/validate", &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    assert_eq!((v["message_type"].as_str(), v["success"].as_bool()), (Some("LogoutResponse"), Some(true)));
    assert_eq!(v["in_response_to"].as_str(), Some(request_id));
    assert_eq!(v["status"], "urn:oasis:names:tc:SAML:2.0:status:Success");
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &body)), "logout_replayed");

    // A LogoutResponse for another request, or with no request to bind it to.
    let other = answer("_someone-elses-request");
    let body = json!({"tenant": "contoso", "query": other, "expected_request_id": request_id});
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &body)), "logout_in_response_to_mismatch");
    // An empty expectation binds to nothing, not to an empty InResponseTo.
    let body = json!({"tenant": "contoso", "query": answer(""), "expected_request_id": ""});
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &body)), "logout_in_response_to_mismatch");
    let body = json!({"tenant": "contoso", "query": answer(request_id)});
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &body)), "logout_in_response_to_mismatch");

    // A POSTed, XML-signed LogoutResponse answering with a failure status is still valid: the
    // caller learns the status.
    let mut spec = spec();
    spec.in_response_to = request_id.to_string();
    spec.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".into();
    let value = s.idp.post_value(&spec.response_xml(), &spec.id, Some(&SignOptions::default())).unwrap();
    let body =
        json!({"tenant": "contoso", "binding": "post", "saml_response": value, "expected_request_id": request_id});
    let v = post(s.http, "/v1/logout/validate", &body).json();
    assert_eq!((v["valid"].as_bool(), v["success"].as_bool()), (Some(true), Some(false)), "{v}");
}

/// Every refusal, with its code: what a forger, a replayer or a careless IdP would send.
#[test]
fn attacks_on_logout_messages_are_refused_with_their_codes() {
    let s = setup();
    let stranger = TestIdp::generate().unwrap();
    let signed = |spec: &LogoutSpec, relay: Option<&str>| {
        s.idp.redirect_query("SAMLRequest", &spec.request_xml(), relay, &QueryOptions::default()).unwrap()
    };
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let unsigned_options = QueryOptions { sig_alg: None, lowercase_escapes: false };
    let spec1 = spec();
    cases.push((
        "unsigned redirect",
        redirect(
            "contoso",
            &s.idp.redirect_query("SAMLRequest", &spec1.request_xml(), None, &unsigned_options).unwrap(),
        ),
        "logout_signature_missing",
    ));
    let spec2 = spec();
    let value = s.idp.post_value(&spec2.request_xml(), &spec2.id, None).unwrap();
    cases.push((
        "unsigned post",
        json!({"tenant": "contoso", "binding": "post", "saml_request": value}),
        "logout_signature_missing",
    ));
    let spec3 = spec();
    let query = stranger.redirect_query("SAMLRequest", &spec3.request_xml(), None, &QueryOptions::default()).unwrap();
    cases.push(("unknown key", redirect("contoso", &query), "signature_invalid"));
    // KeyInfo carries the stranger's own certificate: never read, so it does not help.
    let spec4 = spec();
    let value = stranger.post_value(&spec4.request_xml(), &spec4.id, Some(&SignOptions::default())).unwrap();
    cases.push((
        "KeyInfo-embedded key",
        json!({"tenant": "contoso", "binding": "post", "saml_request": value}),
        "signature_invalid",
    ));
    let mut spec5 = spec();
    spec5.destination = "https://other-sp.example/logout".into();
    cases.push(("wrong Destination", redirect("contoso", &signed(&spec5, None)), "logout_destination_mismatch"));
    let mut spec6 = spec();
    spec6.issuer = "https://evil.example/".into();
    cases.push(("wrong Issuer", redirect("contoso", &signed(&spec6, None)), "logout_issuer_mismatch"));
    let mut spec7 = spec();
    spec7.issue_instant = Utc::now() - Duration::minutes(20);
    spec7.not_on_or_after = Some(Utc::now() - Duration::minutes(10));
    cases.push(("expired", redirect("contoso", &signed(&spec7, None)), "logout_expired"));
    let mut spec8 = spec();
    spec8.issue_instant = Utc::now() - Duration::days(1);
    spec8.not_on_or_after = None;
    cases.push(("too old", redirect("contoso", &signed(&spec8, None)), "logout_too_old"));
    // Re-encoded after signing: the escapes' case changed, the octets no longer those signed.
    let good = signed(&spec(), Some("/a b"));
    cases.push((
        "re-encoded",
        redirect("contoso", &good.replace("%2F", "%2f").replace("%3D", "%3d")),
        "signature_invalid",
    ));
    let (head, tail) = good.split_once("&SigAlg=").unwrap();
    let (relay_part, saml_part) =
        (head.split_once("&RelayState=").unwrap().1, head.split_once("&RelayState=").unwrap().0);
    let reordered = format!("RelayState={relay_part}&{saml_part}&SigAlg={tail}");
    cases.push(("re-ordered", redirect("contoso", &reordered), "logout_query_invalid"));
    let swapped = good.replace("rsa-sha256", "rsa-sha512");
    cases.push(("SigAlg swapped", redirect("contoso", &swapped), "signature_invalid"));
    let sha1 = s
        .idp
        .redirect_query(
            "SAMLRequest",
            &spec().request_xml(),
            None,
            &QueryOptions { sig_alg: Some(alg::RSA_SHA1), lowercase_escapes: false },
        )
        .unwrap();
    cases.push(("SHA-1 without opt-in", redirect("contoso", &sha1), "sha1_not_allowed"));
    let hmac = good.replace("rsa-sha256", "hmac-sha256");
    cases.push(("HMAC", redirect("contoso", &hmac), "signature_algorithm_unsupported"));
    let other_relay = good.replace("RelayState=%2Fa%20b", "RelayState=%2Fevil");
    cases.push(("signature over another RelayState", redirect("contoso", &other_relay), "signature_invalid"));
    let long_relay = signed(&spec(), Some(&"r".repeat(81)));
    cases.push(("oversized RelayState", redirect("contoso", &long_relay), "logout_relay_state_too_long"));
    let twice = format!("{good}&SAMLRequest=x");
    cases.push(("parameter twice", redirect("contoso", &twice), "logout_query_invalid"));
    // A POST message whose signature was moved off the root (into SessionIndex).
    let spec9 = spec();
    let signed_xml = s.idp.sign(&spec9.request_xml(), &spec9.id, &SignOptions::default()).unwrap();
    let start = signed_xml.find("<Signature").unwrap();
    let end = signed_xml.find("</Signature>").unwrap() + "</Signature>".len();
    let signature = &signed_xml[start..end];
    let moved = format!("{}{}", &signed_xml[..start], &signed_xml[end..])
        .replace("<samlp:SessionIndex>_session-1", &format!("<samlp:SessionIndex>{signature}_session-1"));
    cases.push((
        "signature moved",
        json!({"tenant": "contoso", "binding": "post", "saml_request": B64.encode(&moved)}),
        "signature_placement_invalid",
    ));
    // An XML signature inside a Redirect-binding message: nobody checked it.
    let spec10 = spec();
    let inner = s.idp.sign(&spec10.request_xml(), &spec10.id, &SignOptions::default()).unwrap();
    let query = s.idp.redirect_query("SAMLRequest", &inner, None, &QueryOptions::default()).unwrap();
    cases.push(("XML signature in redirect", redirect("contoso", &query), "signature_placement_invalid"));
    // A LogoutResponse posted as SAMLRequest.
    let mut spec11 = spec();
    spec11.in_response_to = "_x".into();
    let query = s.idp.redirect_query("SAMLRequest", &spec11.response_xml(), None, &QueryOptions::default()).unwrap();
    cases.push(("response as request", redirect("contoso", &query), "root_element_invalid"));
    cases.push(("no slo_url", redirect("fabrikam", &signed(&spec(), None)), "slo_url_unknown"));
    cases.push((
        "query and form",
        json!({"tenant": "contoso", "query": "a", "saml_request": "b"}),
        "malformed_request",
    ));

    for (name, body, expected) in &cases {
        let reply = post(s.http, "/v1/logout/validate", body);
        assert_eq!(code(&reply), *expected, "{name}: {}", reply.body);
    }

    // Replayed: the second delivery of an accepted LogoutRequest.
    let once = redirect("contoso", &signed(&spec(), None));
    assert_eq!(post(s.http, "/v1/logout/validate", &once).status, 200);
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &once)), "logout_replayed");

    // gRPC gives every verdict the same code (a reply with valid = false), and request-level
    // errors the table's status.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{}", s.grpc)).await.unwrap();
        for (name, body, expected) in &cases {
            let message = pb::ValidateLogoutRequest {
                tenant: body["tenant"].as_str().unwrap().into(),
                binding: body["binding"].as_str().unwrap_or("").into(),
                query: body["query"].as_str().map(str::to_string),
                saml_request: body["saml_request"].as_str().map(str::to_string),
                saml_response: body["saml_response"].as_str().map(str::to_string),
                relay_state: None,
                expected_request_id: None,
            };
            let found = match client.validate_logout(message).await {
                Ok(reply) => reply.into_inner().error.map(|e| e.code).unwrap_or_default(),
                Err(status) => status.metadata().get("x-error-code").unwrap().to_str().unwrap().to_string(),
            };
            assert_eq!(found, *expected, "gRPC {name}");
        }
        let replay = pb::ValidateLogoutRequest {
            tenant: "contoso".into(),
            query: once["query"].as_str().map(str::to_string),
            ..Default::default()
        };
        assert_eq!(client.validate_logout(replay).await.unwrap().into_inner().error.unwrap().code, "logout_replayed");
    });
}

#[test]
fn the_relaxation_accepts_unsigned_messages_and_says_so() {
    let s = setup();
    let spec = spec();
    let unsigned = QueryOptions { sig_alg: None, lowercase_escapes: false };
    let query = s.idp.redirect_query("SAMLRequest", &spec.request_xml(), None, &unsigned).unwrap();
    let reply = post(s.http, "/v1/logout/validate", &redirect("relaxed", &query));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["signed_by"], "unsigned");
    // A signature that is present is still checked.
    let stranger = TestIdp::generate().unwrap();
    let forged = stranger.redirect_query("SAMLRequest", &self::spec().request_xml(), None, &QueryOptions::default());
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &redirect("relaxed", &forged.unwrap()))), "signature_invalid");
    let view = request(s.http, "GET", "/v1/tenants/relaxed", b"", &[]).json();
    assert_eq!(view["relaxations"]["allow_unsigned_logout_messages"], true, "{view}");
    // Unsigned messages are not recorded: anyone can mint fresh IDs, so recording them would
    // refuse nothing and let anyone fill the store logins rely on. The same one passes again.
    let again = post(s.http, "/v1/logout/validate", &redirect("relaxed", &query));
    assert_eq!(again.status, 200, "{}", again.body);
    // A signed message is recorded, and its replay refused.
    let signed = s.idp.redirect_query("SAMLRequest", &self::spec().request_xml(), None, &QueryOptions::default());
    let signed = redirect("relaxed", &signed.unwrap());
    assert_eq!(post(s.http, "/v1/logout/validate", &signed).status, 200);
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &signed)), "logout_replayed");
}

#[test]
fn a_message_id_longer_than_256_bytes_is_refused_before_it_is_recorded() {
    let s = setup();
    let mut long = spec();
    long.id = format!("_{}", "a".repeat(256));
    let query = s.idp.redirect_query("SAMLRequest", &long.request_xml(), None, &QueryOptions::default()).unwrap();
    let reply = post(s.http, "/v1/logout/validate", &redirect("contoso", &query));
    assert_eq!((reply.status, code(&reply).as_str()), (422, "saml_malformed"), "{}", reply.body);
    let mut fits = spec();
    fits.id = format!("_{}", "a".repeat(255));
    let query = s.idp.redirect_query("SAMLRequest", &fits.request_xml(), None, &QueryOptions::default()).unwrap();
    assert_eq!(post(s.http, "/v1/logout/validate", &redirect("contoso", &query)).status, 200);
}

/// A DEFLATE bomb: 1 GiB of zeros in about a megabyte, signed by the tenant's own IdP so that
/// only the inflation limit stands in the way. Inflation stops at max_document_bytes.
#[test]
fn a_one_gib_deflate_bomb_stops_at_the_limit() {
    let idp = TestIdp::generate().unwrap();
    let out = Command::new("sh").args(["-c", "head -c 1073741824 /dev/zero | gzip -9"]).output().unwrap();
    assert!(out.status.success());
    // RFC 1952: a 10-byte header (no optional fields from a pipe) and an 8-byte trailer
    // around the raw DEFLATE stream.
    let raw = &out.stdout[10..out.stdout.len() - 8];
    let query = idp.redirect_query_raw("SAMLRequest", &B64.encode(raw), None, &QueryOptions::default()).unwrap();
    let mut policy =
        TenantPolicy::new(IDP, SP, ACS, vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()]);
    policy.tenant_id = "contoso".into();
    let limits = Limits { max_document_bytes: 4 * 1024 * 1024, ..Limits::default() };
    let logout = LogoutPolicy { tenant: &policy, slo_url: SLO, require_signed: true };
    let started = std::time::Instant::now();
    let error =
        logout_check::check(Delivered::Redirect { query: &query }, &logout, &limits, None, Utc::now()).unwrap_err();
    assert_eq!(error.code, Code::LogoutInflatedTooLarge, "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());

    // Over HTTP, a smaller bomb (64 MiB) within the body limit answers the same code.
    let s = setup();
    let small = deflate_base64(&vec![0u8; 64 * 1024 * 1024]);
    let query = s.idp.redirect_query_raw("SAMLRequest", &small, None, &QueryOptions::default()).unwrap();
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &redirect("contoso", &query))), "logout_inflated_too_large");
    // Unsigned, it is refused before anything is inflated.
    let unsigned = QueryOptions { sig_alg: None, lowercase_escapes: false };
    let query = s.idp.redirect_query_raw("SAMLRequest", &small, None, &unsigned).unwrap();
    assert_eq!(code(&post(s.http, "/v1/logout/validate", &redirect("contoso", &query))), "logout_signature_missing");
}

#[test]
fn grpc_and_cli_create_the_same_messages() {
    let s = setup();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{}", s.grpc)).await.unwrap();
        let request = pb::CreateLogoutRequestRequest {
            tenant: "contoso".into(),
            name_id: "alice".into(),
            session_indexes: vec!["_s".into()],
            binding: "post".into(),
            relay_state: Some("r".into()),
            ..Default::default()
        };
        let created = client.create_logout_request(request).await.unwrap().into_inner();
        assert_eq!((created.binding.as_str(), created.action.as_deref()), ("post", Some(IDP_SLO)));
        assert_eq!(created.fields.get("RelayState").map(String::as_str), Some("r"));
        let xml = String::from_utf8(B64.decode(&created.fields["SAMLRequest"]).unwrap()).unwrap();
        xmlsec_verify(&s.sp.certificate_file, PROTOCOL_LOGOUT_REQUEST, &xml).unwrap();

        let response = pb::CreateLogoutResponseRequest {
            tenant: "contoso".into(),
            in_response_to: "_x".into(),
            ..Default::default()
        };
        let created = client.create_logout_response(response).await.unwrap().into_inner();
        assert!(created.redirect_url.unwrap().starts_with(&format!("{IDP_SLO}?SAMLResponse=")));

        let missing =
            pb::CreateLogoutRequestRequest { tenant: "fabrikam".into(), name_id: "a".into(), ..Default::default() };
        let status = client.create_logout_request(missing).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(status.metadata().get("x-error-code").unwrap().to_str().unwrap(), "idp_slo_url_unknown");

        // A valid message over gRPC answers what HTTP answers.
        let spec = spec();
        let query = s.idp.redirect_query("SAMLRequest", &spec.request_xml(), None, &QueryOptions::default()).unwrap();
        let message = pb::ValidateLogoutRequest { tenant: "contoso".into(), query: Some(query), ..Default::default() };
        let reply = client.validate_logout(message).await.unwrap().into_inner();
        assert!(reply.valid, "{reply:?}");
        assert_eq!((reply.message_type.as_str(), reply.signed_by.as_str()), ("LogoutRequest", "query"));
        assert_eq!(reply.request_id.as_deref(), Some(spec.id.as_str()));
        assert_eq!(reply.name_id.unwrap().value, "alice@contoso.com");
    });

    let file = scratch("config.toml", config(&s.idp, &s.ec_idp, &s.sp).as_bytes());
    let run = |args: &[&str]| Command::new(BIN).args(args).arg("--config").arg(&file).output().unwrap();
    let out = run(&[
        "logout-request",
        "--tenant",
        "contoso",
        "--name-id",
        "alice",
        "--session-index",
        "_s",
        "--binding",
        "post",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let xml = String::from_utf8(B64.decode(v["fields"]["SAMLRequest"].as_str().unwrap()).unwrap()).unwrap();
    xsd_check("saml-schema-protocol-2.0.xsd", &xml).unwrap();
    xmlsec_verify(&s.sp.certificate_file, PROTOCOL_LOGOUT_REQUEST, &xml).unwrap();
    let out = run(&["logout-response", "--tenant", "contoso", "--in-response-to", "_x"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = spec();
    let query = s.idp.redirect_query("SAMLRequest", &spec.request_xml(), None, &QueryOptions::default()).unwrap();
    let out = run(&["validate-logout", "--tenant", "contoso", "--query", &query]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["request_id"].as_str(), Some(spec.id.as_str()));
    let out = run(&["validate-logout", "--tenant", "fabrikam", "--query", &query]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_logout_urls_are_configuration_errors_reported_together() {
    let idp = TestIdp::generate().unwrap();
    let text = config_text(&idp, "").replace(
        "certificates = ['''",
        "slo_url = \"javascript:alert(1)\"\nidp_slo_url = \"/relative\"\nrequire_signed_logout_messages = \"no\"\ncertificates = ['''",
    );
    let errors = saml_validator::config::Config::parse(&text, std::path::Path::new("."), Utc::now()).unwrap_err().0;
    let all = errors.join("\n");
    for key in ["slo_url", "idp_slo_url", "require_signed_logout_messages"] {
        assert!(errors.iter().any(|e| e.contains(key)), "{key} not reported:\n{all}");
    }
}

#[test]
fn an_encrypted_name_id_is_decrypted_with_the_tenants_key() {
    use saml_validator::testing::encrypt::{encrypt_element, EncryptOptions};
    let (idp, sp, stranger) =
        (TestIdp::generate().unwrap(), TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    let key_file = scratch(&format!("sp-decryption{}.pem", unique()), sp.private_key_pem().as_bytes());
    let settings = format!(
        "slo_url = \"{SLO}\"\ndecryption_key_files = [{:?}]\ncertificates = ['''",
        key_file.display().to_string()
    );
    let addr = start_server(&config_text(&idp, "").replace("certificates = ['''", &settings));
    let name_id = |recipient: &TestIdp| {
        let plain = format!(
            "<saml:NameID xmlns:saml=\"{}\" Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">bob@contoso.com</saml:NameID>",
            saml_validator::saml::ns::ASSERTION
        );
        encrypt_element("EncryptedID", plain.as_bytes(), recipient, &EncryptOptions::entra()).unwrap()
    };
    let mut message = spec();
    message.encrypted_id = Some(name_id(&sp));
    let query = idp.redirect_query("SAMLRequest", &message.request_xml(), None, &QueryOptions::default()).unwrap();
    let reply = post(addr, "/v1/logout/validate", &redirect("contoso", &format!("?{query}")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    assert_eq!(v["name_id"]["value"], "bob@contoso.com", "{v}");
    assert_eq!(v["name_id"]["format"], "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress");
    assert_eq!(v["name_id_encrypted"], true, "{v}");

    // Encrypted for a key the tenant does not hold: one fixed answer, as for logins.
    let mut message = spec();
    message.encrypted_id = Some(name_id(&stranger));
    let query = idp.redirect_query("SAMLRequest", &message.request_xml(), None, &QueryOptions::default()).unwrap();
    let reply = post(addr, "/v1/logout/validate", &redirect("contoso", &format!("?{query}")));
    assert_eq!((reply.status, code(&reply).as_str()), (422, "decryption_failed"), "{}", reply.body);
}

#[test]
fn logout_validations_refused_before_the_pipeline_are_counted() {
    let s = setup();
    let bad = request(s.http, "POST", "/v1/logout/validate", b"not json", &[("Content-Type", "application/json")]);
    assert_eq!(bad.status, 400);
    let unknown = post(s.http, "/v1/logout/validate", &json!({"tenant": "contoso", "saml_request": 1}));
    assert_eq!(unknown.status, 400);
    let metrics = request(s.http, "GET", "/metrics", b"", &[]).body;
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("saml_logout_validations_total{") && l.contains("code=\"malformed_request\""))
        .unwrap_or_else(|| panic!("not counted:\n{metrics}"));
    assert!(counted.ends_with(" 2"), "{counted}");
}
