//! One table of cases run against both transports on loopback: identical verdicts, codes,
//! messages and claims over HTTP/JSON and gRPC.

use crate::support::*;
use chrono::Utc;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::grpc::pb;
use saml_validator::transport::wire::{disposition, GrpcCode};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    tenant: String,
    saml_response: String,
    expected_request_id: Option<String>,
}

fn cases(idp: &TestIdp) -> Vec<Case> {
    let attacker = TestIdp::generate().unwrap();
    let now = Utc::now();
    let spec = |seed| ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), now, 10, seed);
    let signed = spec(4).signed(idp, Signing::Assertion).unwrap();
    let evil = {
        let mut evil = spec(5);
        evil.assertion_id = "_evil".into();
        evil.name_id = "admin@contoso.example".into();
        evil.render_assertion()
    };
    let case = |name, xml: String| Case {
        name,
        tenant: "contoso".into(),
        saml_response: post_binding(&xml),
        expected_request_id: Some(REQUEST_ID.into()),
    };
    let mut unsolicited = case("unsolicited_response", spec(6).signed(idp, Signing::Assertion).unwrap());
    unsolicited.expected_request_id = None;
    let mut wrong_request = case("in_response_to_mismatch", spec(7).signed(idp, Signing::Assertion).unwrap());
    wrong_request.expected_request_id = Some("_other".into());
    let mut unknown = case("unknown_tenant", spec(8).signed(idp, Signing::Assertion).unwrap());
    unknown.tenant = "nope".into();
    let mut not_base64 = case("base64_invalid", String::new());
    not_base64.saml_response = "%%%".into();
    let mut oversize = case("payload_too_large", String::new());
    oversize.saml_response = "A".repeat(100_000);
    vec![
        case("valid_assertion_signed", spec(1).signed(idp, Signing::Assertion).unwrap()),
        case("valid_response_signed", spec(2).signed(idp, Signing::Response).unwrap()),
        case("valid_both_signed", spec(3).signed(idp, Signing::Both).unwrap()),
        case("signature_invalid", spec(9).signed(&attacker, Signing::Assertion).unwrap()),
        case("digest_mismatch", signed.replace(">ada@contoso.example</NameID>", ">admin@contoso.example</NameID>")),
        case("multiple_assertions", signed.replacen("<Assertion ", &format!("{evil}<Assertion "), 1)),
        case("doctype_forbidden", format!("<!DOCTYPE r [<!ENTITY a \"a\">]>{signed}")),
        unsolicited,
        wrong_request,
        unknown,
        not_base64,
        oversize,
    ]
}

/// The HTTP verdict as (transport status class, JSON body).
fn over_http(addr: std::net::SocketAddr, case: &Case) -> (String, Value) {
    let mut body = json!({"tenant": case.tenant, "saml_response": case.saml_response});
    if let Some(id) = &case.expected_request_id {
        body["expected_request_id"] = json!(id);
    }
    let reply = validate_json(addr, &body);
    let json = reply.json();
    let class = match reply.status {
        200 | 422 => "ok".to_string(),
        other => {
            let code = json["error"]["code"].as_str().unwrap();
            assert_eq!(disposition(code_from_str(code)).http_status, other);
            format!("error:{code}")
        }
    };
    let body = if class_is_ok(&class) { json } else { Value::Null };
    (class, body)
}

fn class_is_ok(class: &str) -> bool {
    class == "ok"
}

fn code_from_str(code: &str) -> saml_validator::saml::Code {
    *saml_validator::saml::Code::ALL.iter().find(|c| c.as_str() == code).unwrap()
}

/// The gRPC verdict converted to the HTTP JSON shape.
fn over_grpc(runtime: &tokio::runtime::Runtime, addr: std::net::SocketAddr, case: &Case) -> (String, Value) {
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{addr}")).await.unwrap();
        let request = pb::ValidateRequest {
            tenant: case.tenant.clone(),
            saml_response: case.saml_response.clone(),
            expected_request_id: case.expected_request_id.clone(),
            expected_acs_url: None,
        };
        match client.validate(request).await {
            Ok(reply) => ("ok".to_string(), to_json(reply.into_inner())),
            Err(status) => {
                let code = status.metadata().get("x-error-code").unwrap().to_str().unwrap().to_string();
                let expected = disposition(code_from_str(&code)).grpc;
                assert_ne!(expected, GrpcCode::Ok);
                assert_eq!(status.code() as i32, expected as i32, "{code}");
                (format!("error:{code}"), Value::Null)
            }
        }
    })
}

fn to_json(r: pb::ValidateResponse) -> Value {
    if !r.valid {
        let error = r.error.unwrap();
        return json!({"valid": false, "error": {"code": error.code, "message": error.message}});
    }
    let subject = r.subject.unwrap();
    let claims = r.claims.unwrap();
    let session = r.session.unwrap();
    let signed = r.signed.unwrap();
    let mut subject_json = json!({"name_id": subject.name_id, "format": subject.format, "key": subject.key});
    if let Some(q) = subject.name_qualifier {
        subject_json["name_qualifier"] = json!(q);
    }
    if let Some(q) = subject.sp_name_qualifier {
        subject_json["sp_name_qualifier"] = json!(q);
    }
    let mut reply = json!({
        "valid": true,
        "tenant": r.tenant,
        "issuer": r.issuer,
        "assertion_id": r.assertion_id,
        "response_id": r.response_id,
        "subject": subject_json,
        "claims": {
            "email": claims.email, "first_name": claims.first_name, "last_name": claims.last_name,
            "display_name": claims.display_name, "username": claims.username, "groups": claims.groups,
            "roles": claims.roles, "object_id": claims.object_id, "idp_tenant_id": claims.idp_tenant_id,
            "groups_overage": claims.groups_overage, "authn_methods": claims.authn_methods,
        },
        "attributes": r.attributes.into_iter().map(|(k, v)| (k, json!(v.values))).collect::<serde_json::Map<_, _>>(),
        "session": {
            "index": session.index, "authn_instant": session.authn_instant,
            "not_on_or_after": session.not_on_or_after, "authn_context": session.authn_context,
        },
        "valid_until": r.valid_until,
        "signed": {"response": signed.response, "assertion": signed.assertion},
        "encrypted": r.encrypted,
    });
    if let Some(id) = r.unsigned_response_id {
        reply["unsigned_response_id"] = json!(id);
    }
    reply
}

#[test]
fn both_transports_give_identical_answers() {
    let idp = TestIdp::generate().unwrap();
    let config = config_text(&idp, "max_body_bytes = 65536");
    // Two independent instances (own replay caches), so the same bytes can go to each.
    let (http_addr, _) = start_both(&config, false);
    let (_, grpc_addr) = start_both(&config, false);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut valid = 0;
    for case in cases(&idp) {
        let http = over_http(http_addr, &case);
        let grpc = over_grpc(&runtime, grpc_addr, &case);
        assert_eq!(http, grpc, "{}", case.name);
        if http.1["valid"] == true {
            valid += 1;
        } else if class_is_ok(&http.0) {
            assert_eq!(http.1["error"]["code"], case.name, "{}", case.name);
        } else {
            assert_eq!(http.0, format!("error:{}", case.name));
        }
    }
    assert_eq!(valid, 3);
}

#[test]
fn one_replay_cache_across_transports_and_request_ids_in_metadata() {
    let idp = TestIdp::generate().unwrap();
    let (http_addr, grpc_addr) = start_both(&config_text(&idp, ""), false);
    let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, 77)
        .signed(&idp, Signing::Assertion)
        .unwrap();
    let body = json!({"tenant": "contoso", "saml_response": post_binding(&xml), "expected_request_id": REQUEST_ID});
    assert_eq!(validate_json(http_addr, &body).status, 200);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc_addr}")).await.unwrap();
        let mut request = tonic::Request::new(pb::ValidateRequest {
            tenant: "contoso".into(),
            saml_response: post_binding(&xml),
            expected_request_id: Some(REQUEST_ID.into()),
            expected_acs_url: None,
        });
        request.metadata_mut().insert("x-request-id", "grpc-trace-1".parse().unwrap());
        let reply = client.validate(request).await.unwrap();
        assert_eq!(reply.metadata().get("x-request-id").unwrap(), "grpc-trace-1");
        let reply = reply.into_inner();
        assert!(!reply.valid);
        assert_eq!(reply.error.unwrap().code, "replayed");
    });
}

#[test]
fn health_reflects_readiness_and_reflection_lists_the_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let idp = TestIdp::generate().unwrap();
    let config = config_text(&idp, "");
    let (_, ready) = start_both(&config, false);
    let (http_not_ready, not_ready) = start_both(&config, true);
    assert_eq!(request(http_not_ready, "GET", "/readyz", b"", &[]).status, 503);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for (addr, expected) in [(ready, ServingStatus::Serving), (not_ready, ServingStatus::NotServing)] {
            let channel =
                tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
            let mut health = HealthClient::new(channel);
            for service in ["", "saml_validator.v1.SamlValidator"] {
                let status =
                    health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
                assert_eq!(status, expected as i32, "{service:?} at {addr}");
            }
        }
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        let channel =
            tonic::transport::Channel::from_shared(format!("http://{ready}")).unwrap().connect().await.unwrap();
        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream =
            reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
        let reply = stream.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("no service list")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&"saml_validator.v1.SamlValidator".to_string()), "{names:?}");
        assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
    });
}

#[test]
fn tenant_trust_over_http_and_grpc() {
    let idp = TestIdp::generate().unwrap();
    let (http_addr, grpc_addr) = start_both(&config_text(&idp, ""), false);
    let reply = request(http_addr, "GET", "/v1/tenants/contoso", b"", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let view = reply.json();
    assert_eq!(view["idp_entity_id"], IDP);
    assert_eq!(view["relaxations"]["allow_sha1"], false);
    let cert = &view["certificates"][0];
    assert_eq!(cert["origin"], "inline");
    assert_eq!(cert["sha256_fingerprint"].as_str().unwrap().len(), 64);
    assert!(cert["seconds_until_expiry"].as_i64().unwrap() > 300 * 86_400);
    assert!(!reply.body.contains("PRIVATE") && !reply.body.contains("MII"), "no key material in the view");
    let missing = request(http_addr, "GET", "/v1/tenants/nope", b"", &[]);
    assert_eq!((missing.status, missing.json()["error"]["code"].as_str().unwrap()), (404, "unknown_tenant"));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc_addr}")).await.unwrap();
        let trust = client.get_tenant(pb::GetTenantRequest { tenant: "contoso".into() }).await.unwrap().into_inner();
        assert_eq!(trust.idp_entity_id, IDP);
        assert_eq!(trust.certificates[0].sha256_fingerprint, cert["sha256_fingerprint"].as_str().unwrap());
        assert!(!trust.relaxations["allow_idp_initiated"]);
        let status = client.get_tenant(pb::GetTenantRequest { tenant: "nope".into() }).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    });
}

#[test]
fn a_panic_inside_one_validation_is_a_500_for_that_request_only() {
    fn panic_on_marker(request: &saml_validator::service::ValidateRequest<'_>) {
        if request.expected_request_id == Some("_panic") {
            panic!("deliberate test panic");
        }
    }
    let idp = TestIdp::generate().unwrap();
    let (http_addr, grpc_addr) = start_both_with_hook(&config_text(&idp, ""), false, Some(panic_on_marker));
    let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, 31)
        .signed(&idp, Signing::Assertion)
        .unwrap();
    let poison = json!({"tenant": "contoso", "saml_response": post_binding(&xml), "expected_request_id": "_panic"});
    for _ in 0..3 {
        let reply = validate_json(http_addr, &poison);
        assert_eq!((reply.status, reply.json()["error"]["code"].as_str().unwrap()), (500, "internal_error"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc_addr}")).await.unwrap();
        let request = pb::ValidateRequest {
            tenant: "contoso".into(),
            saml_response: post_binding(&xml),
            expected_request_id: Some("_panic".into()),
            expected_acs_url: None,
        };
        assert_eq!(client.validate(request).await.unwrap_err().code(), tonic::Code::Internal);
    });
    // Both servers keep serving.
    let good = json!({"tenant": "contoso", "saml_response": post_binding(&xml), "expected_request_id": REQUEST_ID});
    assert_eq!(validate_json(http_addr, &good).status, 200);
}

/// The proto's list of gRPC statuses is the error table's, row for row: every code that is a
/// gRPC error (not a `valid = false` reply) appears as `code: STATUS` in the service comment.
/// (It used to name five of the nine statuses.)
#[test]
fn the_proto_lists_every_error_code_with_its_grpc_status() {
    let proto = include_str!("../../proto/saml_validator/v1/validator.proto");
    let name = |grpc: GrpcCode| match grpc {
        GrpcCode::Ok => "OK",
        GrpcCode::InvalidArgument => "INVALID_ARGUMENT",
        GrpcCode::NotFound => "NOT_FOUND",
        GrpcCode::PermissionDenied => "PERMISSION_DENIED",
        GrpcCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
        GrpcCode::Internal => "INTERNAL",
        GrpcCode::Unavailable => "UNAVAILABLE",
        GrpcCode::FailedPrecondition => "FAILED_PRECONDITION",
        GrpcCode::Unauthenticated => "UNAUTHENTICATED",
    };
    let mut missing = Vec::new();
    for code in saml_validator::saml::Code::ALL {
        let grpc = disposition(*code).grpc;
        let line = format!("//   {}: {}", code.as_str(), name(grpc));
        if grpc != GrpcCode::Ok && !proto.lines().any(|l| l.trim() == line.trim()) {
            missing.push(line);
        }
    }
    assert!(missing.is_empty(), "add to the proto's status list:\n{}", missing.join("\n"));
}
