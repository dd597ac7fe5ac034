//! Caller authentication (bearer tokens, stored hashed) on both transports: what is refused,
//! what stays open for probes, and per-caller tenant restrictions.

use crate::support::*;
use chrono::Utc;
use saml_validator::config::Config;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::grpc::pb;
use serde_json::json;

fn config_with_callers(idp: &TestIdp) -> String {
    format!(
        r#"{}{}
[[callers]]
name = "helpdesk-eu"
token_sha256 = "{}"
tenants = ["contoso"]

[[callers]]
name = "operations"
token_sha256 = "{}"
"#,
        config_text(idp, ""),
        fabrikam_tenant(idp),
        sha256_hex("eu-token-8f2c1d"),
        sha256_hex("ops-token-77aa01")
    )
}

#[test]
fn bearer_tokens_guard_validation_tenant_views_and_metrics_but_not_probes() {
    let idp = TestIdp::generate().unwrap();
    let (http, grpc) = start_both(&config_with_callers(&idp), false);
    let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, 1)
        .signed(&idp, Signing::Assertion)
        .unwrap();
    let body = |tenant: &str| {
        json!({"tenant": tenant, "saml_response": post_binding(&xml), "expected_request_id": REQUEST_ID}).to_string()
    };
    let post = |tenant: &str, auth: Option<&str>| {
        let header = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("Authorization", h.as_str())).collect();
        request(http, "POST", "/v1/validate", body(tenant).as_bytes(), &headers)
    };
    let code = |reply: &HttpReply| reply.json()["error"]["code"].as_str().unwrap_or("none").to_string();

    let reply = post("contoso", None);
    assert_eq!((reply.status, code(&reply)), (401, "unauthenticated".into()));
    let reply = post("contoso", Some("guess"));
    assert_eq!((reply.status, code(&reply)), (401, "unauthenticated".into()));
    let reply =
        request(http, "POST", "/v1/validate", body("contoso").as_bytes(), &[("Authorization", "Basic ZXU6dG9rZW4=")]);
    assert_eq!(reply.status, 401);
    let reply = post("fabrikam", Some("eu-token-8f2c1d"));
    assert_eq!((reply.status, code(&reply)), (403, "forbidden".into()));
    let reply = post("no-such-tenant", Some("eu-token-8f2c1d"));
    assert_eq!((reply.status, code(&reply)), (403, "forbidden".into()), "a restricted caller cannot probe tenant ids");
    let reply = post("contoso", Some("eu-token-8f2c1d"));
    assert_eq!(reply.status, 200, "{}", reply.body);

    let get = |path: &str, auth: Option<&str>| {
        let header = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("Authorization", h.as_str())).collect();
        request(http, "GET", path, b"", &headers).status
    };
    assert_eq!(get("/v1/tenants/contoso", None), 401);
    assert_eq!(get("/v1/tenants/contoso", Some("eu-token-8f2c1d")), 200);
    assert_eq!(get("/v1/tenants/fabrikam", Some("eu-token-8f2c1d")), 403);
    assert_eq!(get("/v1/tenants/fabrikam", Some("ops-token-77aa01")), 200);
    assert_eq!(get("/metrics", None), 401);
    assert_eq!(get("/metrics", Some("ops-token-77aa01")), 200);
    assert_eq!(get("/healthz", None), 200);
    assert_eq!(get("/readyz", None), 200);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc}")).await.unwrap();
        let call = |tenant: &str, token: Option<&str>| {
            let mut request = tonic::Request::new(pb::ValidateRequest {
                tenant: tenant.into(),
                saml_response: post_binding(&xml),
                expected_request_id: Some(REQUEST_ID.into()),
                expected_acs_url: None,
            });
            if let Some(token) = token {
                request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            request
        };
        assert_eq!(client.validate(call("contoso", None)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(
            client.validate(call("fabrikam", Some("eu-token-8f2c1d"))).await.unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        // Authorized: reaches validation (this assertion was already used over HTTP).
        let reply = client.validate(call("contoso", Some("eu-token-8f2c1d"))).await.unwrap().into_inner();
        assert_eq!(reply.error.unwrap().code, "replayed");
        let status = client.get_tenant(pb::GetTenantRequest { tenant: "contoso".into() }).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    });
}

#[test]
fn caller_configuration_is_checked() {
    let idp = TestIdp::generate().unwrap();
    let text = format!(
        "{}\n[[callers]]\nname = \"a\"\ntoken_sha256 = \"not-hex\"\n\n[[callers]]\nname = \"b\"\ntoken_sha256 = \"{}\"\ntenants = [\"nope\"]\n\n[[callers]]\nname = \"b\"\ntoken_sha256 = \"{}\"\ncolour = 1\n",
        config_text(&idp, ""),
        sha256_hex("x"),
        sha256_hex("x")
    );
    let errors = Config::parse(&text, std::path::Path::new("."), chrono::Utc::now()).unwrap_err().0;
    for needle in [
        "callers[0].token_sha256",
        "\"nope\" is not a configured tenant",
        "duplicate caller",
        "share a token",
        "callers[2].colour",
    ] {
        assert!(errors.iter().any(|e| e.contains(needle)), "missing {needle:?} in {errors:#?}");
    }
}
