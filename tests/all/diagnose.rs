//! Issue 29 part 1: `POST /v1/diagnose` explains a response (every check, expected and found,
//! the certificate the IdP really signs with) without consuming it, returning claims or saying
//! `valid`.

use chrono::Utc;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use serde_json::{json, Value};

use crate::support::*;

fn body(spec: &ResponseSpec, idp: &TestIdp) -> Value {
    json!({
        "tenant": "contoso",
        "saml_response": post_binding(&spec.signed(idp, Signing::Assertion).unwrap()),
        "expected_request_id": REQUEST_ID,
    })
}

fn diagnose(addr: std::net::SocketAddr, body: &Value) -> (u16, Value) {
    let reply =
        request(addr, "POST", "/v1/diagnose", body.to_string().as_bytes(), &[("Content-Type", "application/json")]);
    (reply.status, reply.json())
}

fn check<'a>(diagnosis: &'a Value, name: &str) -> &'a Value {
    diagnosis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {diagnosis}"))
}

fn sha256_of(idp: &TestIdp) -> String {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD.decode(idp.certificate_base64()).unwrap();
    openssl::sha::sha256(&der).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_wrong_pasted_certificate_is_named_beside_the_one_the_idp_signs_with() {
    let (pasted, real) = (TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    let addr = start_server(&config_text(&pasted, ""));
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 2, 1);
    let (status, diagnosis) = diagnose(addr, &body(&spec, &real));
    assert_eq!(status, 200, "{diagnosis}");
    assert_eq!(diagnosis["verdict"]["code"], "signature_invalid");
    let signature = &diagnosis["signatures"][0];
    assert_eq!((signature["covers"].as_str(), signature["result"].as_str()), (Some("assertion"), Some("fail")));
    let carried = &signature["document_certificates"][0];
    assert_eq!(carried["sha256_thumbprint"], sha256_of(&real));
    assert_eq!((carried["trusted"].as_bool(), carried["configured"].as_bool()), (Some(false), Some(false)));
    assert_eq!(carried["sha1_thumbprint"].as_str().map(str::len), Some(40));
    assert_eq!(diagnosis["configured_certificates"][0]["sha256_fingerprint"], sha256_of(&pasted));
    let hint = diagnosis["verdict"]["hint"].as_str().unwrap();
    assert!(hint.contains(&sha256_of(&real)) && hint.contains(&sha256_of(&pasted)), "{hint}");
    assert!(hint.contains("Certificate (Base64)"), "{hint}");
    // The rest of the checklist still ran: everything else about the response is right.
    for name in
        ["destination", "response_issuer", "in_response_to", "assertion_issuer", "conditions", "subject_confirmation"]
    {
        assert_eq!(check(&diagnosis, name)["result"], "pass", "{name}: {diagnosis}");
    }
}

#[test]
fn every_mistake_is_reported_at_once_with_entra_hints_and_clock_differences() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let mut spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 2, 2);
    spec.audience = "https://helpdesk.example/wrong-identifier".into();
    spec.destination = Some("https://helpdesk.example/wrong-reply-url".into());
    spec.recipient = "https://helpdesk.example/wrong-reply-url".into();
    let (status, diagnosis) = diagnose(addr, &body(&spec, &idp));
    assert_eq!(status, 200, "{diagnosis}");
    assert_eq!(diagnosis["signatures"][0]["result"], "pass");
    assert_eq!(diagnosis["signatures"][0]["document_certificates"][0]["configured"], true);
    assert!(diagnosis["signatures"][0]["verified_by"].as_str().is_some());
    let destination = check(&diagnosis, "destination");
    assert_eq!(destination["result"], "fail");
    assert_eq!(destination["found"], "https://helpdesk.example/wrong-reply-url");
    assert!(destination["hint"]
        .as_str()
        .unwrap()
        .contains(&format!("Reply URL (Assertion Consumer Service URL) must be `{ACS}`")));
    let conditions = check(&diagnosis, "conditions");
    assert_eq!(conditions["code"], "audience_mismatch");
    assert!(conditions["hint"].as_str().unwrap().contains(&format!("Identifier (Entity ID) must be `{SP}`")));
    assert_eq!(check(&diagnosis, "subject_confirmation")["code"], "recipient_mismatch");
    // Conditions end an hour from now: the difference is reported in seconds.
    let left = conditions["seconds_from_now"].as_i64().unwrap();
    assert!((3_500..=3_600).contains(&left), "{conditions}");
    assert_eq!(check(&diagnosis, "status")["result"], "pass");
}

#[test]
fn a_diagnosis_consumes_nothing_returns_no_claims_and_never_says_valid() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 2, 3);
    let body = body(&spec, &idp);
    let reply = request(addr, "POST", "/v1/diagnose", body.to_string().as_bytes(), &[]);
    assert_eq!(reply.status, 200);
    let diagnosis = reply.json();
    assert!(diagnosis["verdict"].is_null(), "{diagnosis}");
    assert!(diagnosis.get("valid").is_none() && diagnosis.get("claims").is_none(), "{diagnosis}");
    assert!(
        !reply.body.contains("ada@contoso.example") && !reply.body.contains("Lovelace"),
        "personal data: {}",
        reply.body
    );
    // Diagnosed twice, then validated: the assertion was never recorded.
    assert_eq!(diagnose(addr, &body).0, 200);
    assert_eq!(validate_json(addr, &body).status, 200);
    assert_eq!(validate_json(addr, &body).status, 422, "the validation itself records it");
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_diagnoses_total{outcome=\"passes\"} 2"), "{metrics}");
}

#[test]
fn bad_input_gets_the_typed_errors_of_validate_and_callers_their_tenants_only() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let not_base64 = json!({"tenant": "contoso", "saml_response": "%%%"});
    let (status, reply) = diagnose(addr, &not_base64);
    assert_eq!((status, reply["error"]["code"].as_str()), (422, Some("base64_invalid")), "{reply}");
    let (status, reply) = diagnose(addr, &json!({"tenant": "nobody", "saml_response": "PHg+"}));
    assert_eq!((status, reply["error"]["code"].as_str()), (404, Some("unknown_tenant")), "{reply}");
    let reply = request(addr, "POST", "/v1/diagnose", b"{not json", &[]);
    assert_eq!(reply.status, 400);

    let token = "diagnose-caller-token";
    let callers = format!(
        "\n[[callers]]\nname = \"fabrikam-only\"\ntoken_sha256 = \"{}\"\ntenants = [\"fabrikam\"]\n",
        sha256_hex(token)
    );
    let mut text = config_text(&idp, "");
    text.push_str(&fabrikam_tenant(&idp));
    text.push_str(&callers);
    let guarded = start_server(&text);
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 2, 4);
    let payload = body(&spec, &idp).to_string();
    let bearer = format!("Bearer {token}");
    let reply = request(guarded, "POST", "/v1/diagnose", payload.as_bytes(), &[("Authorization", &bearer)]);
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reply = request(guarded, "POST", "/v1/diagnose", payload.as_bytes(), &[]);
    assert_eq!(reply.status, 401, "{}", reply.body);
}

#[test]
fn grpc_diagnose_gives_the_same_checklist() {
    use saml_validator::transport::grpc::pb;
    let (pasted, real) = (TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    let (http, grpc) = start_both(&config_text(&pasted, ""), false);
    let mut spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 2, 5);
    spec.audience = "https://helpdesk.example/wrong-identifier".into();
    let body = body(&spec, &real);
    let (_, over_http) = diagnose(http, &body);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let over_grpc = runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc}")).await.unwrap();
        let request = pb::ValidateRequest {
            tenant: "contoso".into(),
            saml_response: body["saml_response"].as_str().unwrap().into(),
            expected_request_id: Some(REQUEST_ID.into()),
            expected_acs_url: None,
        };
        client.diagnose(request).await.unwrap().into_inner()
    });
    let verdict = over_grpc.verdict.unwrap();
    assert_eq!(verdict.code, over_http["verdict"]["code"].as_str().unwrap());
    assert_eq!(verdict.hint.as_deref(), over_http["verdict"]["hint"].as_str());
    assert_eq!(
        over_grpc.checks.iter().map(|c| (c.name.clone(), c.result.clone())).collect::<Vec<_>>(),
        over_http["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_string(), c["result"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    );
    let audience = over_grpc.checks.iter().find(|c| c.name == "conditions").unwrap();
    assert_eq!(audience.code.as_deref(), Some("audience_mismatch"));
    assert_eq!(over_grpc.signatures[0].document_certificates[0].sha256_thumbprint, sha256_of(&real));
    assert!(!over_grpc.signatures[0].document_certificates[0].trusted);
}
