//! The HTTP API against the real server on a loopback port.

use crate::support::*;
use chrono::Utc;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use serde_json::json;

fn fresh(idp: &TestIdp, seed: u64, signing: Signing) -> String {
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, seed);
    post_binding(&spec.signed(idp, signing).unwrap())
}

#[test]
fn valid_response_returns_the_documented_shape_then_replay_is_refused() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let body = json!({"tenant": "contoso", "saml_response": fresh(&idp, 1, Signing::Assertion), "expected_request_id": REQUEST_ID});
    let reply = validate_json(addr, &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["tenant"], "contoso");
    assert_eq!(v["issuer"], IDP);
    assert!(v["assertion_id"].is_string());
    assert_eq!(v["subject"]["name_id"], "ada@contoso.example");
    assert_eq!(v["subject"]["format"], "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress");
    for key in [
        "email",
        "first_name",
        "last_name",
        "display_name",
        "username",
        "groups",
        "roles",
        "object_id",
        "idp_tenant_id",
        "groups_overage",
        "authn_methods",
    ] {
        assert!(v["claims"].get(key).is_some(), "claims.{key} missing: {}", v["claims"]);
    }
    assert_eq!(v["claims"]["groups"].as_array().unwrap().len(), 10);
    assert_eq!(v["claims"]["groups_overage"], false);
    for key in ["index", "authn_instant", "not_on_or_after", "authn_context"] {
        assert!(v["session"].get(key).is_some(), "session.{key} missing");
    }
    assert!(v["attributes"].as_object().unwrap().len() >= 10);
    assert!(v["valid_until"].is_string());

    let again = validate_json(addr, &body);
    assert_eq!(again.status, 422);
    assert_eq!(again.json()["error"]["code"], "replayed");
    assert_eq!(again.json()["valid"], false);
}

#[test]
fn all_three_entra_signing_modes_over_http() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    for (seed, signing) in [(10, Signing::Assertion), (11, Signing::Response), (12, Signing::Both)] {
        let body = json!({"tenant": "contoso", "saml_response": fresh(&idp, seed, signing), "expected_request_id": REQUEST_ID});
        let reply = validate_json(addr, &body);
        assert_eq!(reply.status, 200, "{signing:?}: {}", reply.body);
    }
}

#[test]
fn rejections_are_422_with_a_stable_code_and_a_message() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let attacker = TestIdp::generate().unwrap();
    let forged = json!({"tenant": "contoso", "saml_response": fresh(&attacker, 2, Signing::Assertion), "expected_request_id": REQUEST_ID});
    let reply = validate_json(addr, &forged);
    assert_eq!(reply.status, 422);
    let v = reply.json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["code"], "signature_invalid");
    assert!(v["error"]["message"].as_str().unwrap().contains("key"));

    let wrong_request = json!({"tenant": "contoso", "saml_response": fresh(&idp, 3, Signing::Assertion), "expected_request_id": "_other"});
    assert_eq!(validate_json(addr, &wrong_request).json()["error"]["code"], "in_response_to_mismatch");
    let unsolicited = json!({"tenant": "contoso", "saml_response": fresh(&idp, 4, Signing::Assertion)});
    assert_eq!(validate_json(addr, &unsolicited).json()["error"]["code"], "unsolicited_response");
    let not_base64 = json!({"tenant": "contoso", "saml_response": "%%%not-base64%%%"});
    let reply = validate_json(addr, &not_base64);
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str().unwrap()), (422, "base64_invalid"));
}

#[test]
fn request_errors_map_to_400_404_413() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, "max_body_bytes = 65536"));
    let unknown = json!({"tenant": "nope", "saml_response": fresh(&idp, 5, Signing::Assertion)});
    let reply = validate_json(addr, &unknown);
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "unknown_tenant");

    for bad in [
        &b"{not json"[..],
        b"{\"tenant\": \"contoso\"}",
        b"{\"tenant\": \"contoso\", \"saml_response\": \"x\", \"extra\": 1}",
        b"",
    ] {
        let reply = request(addr, "POST", "/v1/validate", bad, &[("Content-Type", "application/json")]);
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(bad));
        assert_eq!(reply.json()["error"]["code"], "malformed_request");
    }

    let huge = json!({"tenant": "contoso", "saml_response": "A".repeat(100_000)});
    let reply = validate_json(addr, &huge);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error"]["code"], "payload_too_large");

    // The service keeps serving after all of the above.
    let ok = json!({"tenant": "contoso", "saml_response": fresh(&idp, 6, Signing::Assertion), "expected_request_id": REQUEST_ID});
    assert_eq!(validate_json(addr, &ok).status, 200);
}

#[test]
fn health_readiness_and_request_ids() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let health = request(addr, "GET", "/healthz", b"", &[]);
    assert_eq!(health.status, 200);
    let ready = request(addr, "GET", "/readyz", b"", &[]);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["tenants"], 1);
    let body = json!({"tenant": "contoso", "saml_response": "x"});
    let reply = request(addr, "POST", "/v1/validate", body.to_string().as_bytes(), &[("X-Request-Id", "trace-123")]);
    assert_eq!(reply.header("x-request-id"), Some("trace-123"));
    let reply = request(addr, "POST", "/v1/validate", body.to_string().as_bytes(), &[]);
    assert_eq!(reply.header("x-request-id").map(str::len), Some(24), "a fresh id is generated");
    assert_eq!(request(addr, "GET", "/nope", b"", &[]).status, 404);
}

#[test]
fn overload_answers_503_with_retry_after() {
    // With a limit of one validation in flight, concurrent requests must either succeed or be
    // refused with 503 + Retry-After; none may queue without bound or fail otherwise.
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, "max_concurrent_validations = 1"));
    let bodies: Vec<String> = (0..24)
        .map(|i| json!({"tenant": "contoso", "saml_response": fresh(&idp, 100 + i, Signing::Assertion), "expected_request_id": REQUEST_ID}).to_string())
        .collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(bodies.len()));
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                request(addr, "POST", "/v1/validate", body.as_bytes(), &[])
            })
        })
        .collect();
    let replies: Vec<HttpReply> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for reply in &replies {
        match reply.status {
            200 => {}
            503 => {
                assert_eq!(reply.json()["error"]["code"], "overloaded");
                assert_eq!(reply.header("retry-after"), Some("1"));
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(replies.iter().any(|r| r.status == 200));
}

#[test]
fn a_client_trickling_its_body_does_not_hold_a_validation_slot() {
    use std::io::Write as _;
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, "max_concurrent_validations = 1"));
    // Headers and a few bytes of a 100 KB body, then nothing.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    write!(slow, "POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{{\"tenant\":").unwrap();
    slow.flush().unwrap();
    let body = json!({"tenant": "contoso", "saml_response": fresh(&idp, 900, Signing::Assertion), "expected_request_id": REQUEST_ID});
    let reply = validate_json(addr, &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    drop(slow);
}

#[test]
fn large_documents_are_validated_on_the_xml_pool() {
    // Above frontend::INLINE_BYTES of base64 the work moves to the XML pool; the answer is the same.
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 600, 77);
    let encoded = post_binding(&spec.signed(&idp, Signing::Assertion).unwrap());
    assert!(encoded.len() > saml_validator::transport::frontend::INLINE_BYTES);
    let reply =
        validate_json(addr, &json!({"tenant": "contoso", "saml_response": encoded, "expected_request_id": REQUEST_ID}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["claims"]["groups"].as_array().unwrap().len(), 600);
}

/// Every answer carries `X-Request-Id`, whatever the route and outcome: the caller's own when
/// it sent a usable one, a fresh one otherwise (the tenant view, SP metadata, metrics and 404
/// answers used to send `-` or nothing).
#[test]
fn every_answer_carries_the_request_id() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let routes: [(&str, &str, &[u8]); 9] = [
        ("POST", "/v1/validate", br#"{"tenant": "contoso", "saml_response": "bm90IHhtbA=="}"#),
        ("POST", "/v1/validate", b"not json"),
        ("GET", "/v1/tenants/contoso", b""),
        ("GET", "/v1/tenants/nobody", b""),
        ("GET", "/v1/tenants/contoso/sp-metadata", b""),
        ("POST", "/v1/authn-requests", br#"{"tenant": "contoso"}"#),
        ("GET", "/healthz", b""),
        ("GET", "/metrics", b""),
        ("GET", "/no/such/route", b""),
    ];
    for (method, path, body) in routes {
        let given =
            request(addr, method, path, body, &[("Content-Type", "application/json"), ("X-Request-Id", "caller-42")]);
        assert_eq!(given.header("x-request-id"), Some("caller-42"), "{method} {path}: {}", given.status);
        let fresh = request(addr, method, path, body, &[("Content-Type", "application/json")]);
        let id = fresh.header("x-request-id").unwrap_or_else(|| panic!("{method} {path}: no X-Request-Id"));
        assert!(id.len() >= 16 && id != "-", "{method} {path}: {id:?}");
    }
    // An unusable id (control characters, too long) is replaced, never echoed.
    let long = "x".repeat(129);
    let reply = request(addr, "GET", "/healthz", b"", &[("X-Request-Id", &long)]);
    assert_ne!(reply.header("x-request-id"), Some(long.as_str()));
}

/// The body's base64 is used in place when its JSON string has no escapes, and unescaped first
/// when it has some (PHP's json_encode writes every `/` as `\/`; any character may be written
/// as `\uXXXX`): both are the same response.
#[test]
fn an_escaped_saml_response_string_is_the_same_response() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    for (seed, escape) in [(30, false), (31, true)] {
        let encoded = fresh(&idp, seed, Signing::Assertion);
        let mut text = serde_json::to_string(&encoded).unwrap();
        if escape {
            // Base64 of ASCII XML has many '+' ('>' ends a sextet) and few '/'.
            assert!(text.contains('+'), "the test needs a '+' in the base64");
            text = text.replace('/', "\\/").replace('+', "\\u002B");
        }
        let body = format!(r#"{{"tenant":"contoso","saml_response":{text},"expected_request_id":"{REQUEST_ID}"}}"#);
        let reply = request(addr, "POST", "/v1/validate", body.as_bytes(), &[("Content-Type", "application/json")]);
        assert_eq!(reply.status, 200, "escaped={escape}: {}", reply.body);
        assert_eq!(reply.json()["subject"]["name_id"], "ada@contoso.example");
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
}
