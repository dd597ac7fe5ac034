//! The login policies of issue 33 from a `tenants_dir` file alone, over HTTP, gRPC and the CLI
//! alike (same codes, messages and subject keys), shown in the tenant view on both
//! transports, and their bad values refused by the configuration reader and `check-config`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use chrono::Utc;
use saml_validator::config::Config;
use saml_validator::testing::idp::{entra, post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::grpc::pb;
use serde_json::{json, Value};

use crate::policies::{with_methods, MFA, OTHER_ACS, PASSWORD};
use crate::support::*;

const OBJECT_ID: &str = "d1ad9ce7-b322-4221-ab74-1e1011e1bbcb";

/// A configuration whose only tenant, `contoso`, is a file in `tenants_dir` with every policy.
fn setup(name: &str, idp: &TestIdp) -> (PathBuf, String) {
    let dir = temp_dir(name);
    let tenants = dir.join("tenants.d");
    let _ = std::fs::remove_dir_all(&tenants);
    std::fs::create_dir_all(&tenants).unwrap();
    let file = format!(
        r#"idp_entity_id = "{IDP}"
sp_entity_id = "{SP}"
acs_url = "{ACS}"
acs_urls = ["{OTHER_ACS}"]
certificates = ["{}"]
idp_sso_url = "https://login.microsoftonline.com/contoso/saml2"
require_authn_methods = ["{MFA}"]
max_authn_age_seconds = 900
subject_key_from = "object_id"
"#,
        idp.certificate_base64()
    );
    std::fs::write(tenants.join("contoso.toml"), file).unwrap();
    let main = format!("tenants_dir = \"{}\"\n[server]\nhttp_addr = \"127.0.0.1:0\"\n", tenants.display());
    let path = dir.join("main.toml");
    std::fs::write(&path, &main).unwrap();
    (path, main)
}

/// An Entra response to `acs`, signed in `age` seconds ago with `methods`, for one user.
fn response(idp: &TestIdp, seed: u64, acs: &str, methods: &[&str], age: i64) -> String {
    let now = Utc::now();
    let mut spec = with_methods(ResponseSpec::entra(IDP, SP, acs, Some(REQUEST_ID), now, 3, seed), methods);
    spec.authn_instant = now - chrono::Duration::seconds(age);
    spec.attributes.iter_mut().find(|(name, _)| name == entra::OBJECT_ID).unwrap().1 = vec![OBJECT_ID.into()];
    spec.signed(idp, Signing::Assertion).unwrap()
}

/// (HTTP status, code or "valid", message or subject key) over HTTP.
fn over_http(addr: std::net::SocketAddr, xml: &str, acs: Option<&str>) -> (u16, String, String) {
    let mut body = json!({"tenant": "contoso", "saml_response": post_binding(xml), "expected_request_id": REQUEST_ID});
    if let Some(acs) = acs {
        body["expected_acs_url"] = json!(acs);
    }
    let reply = validate_json(addr, &body);
    let json = reply.json();
    match json["valid"].as_bool() {
        Some(true) => (reply.status, "valid".into(), json["subject"]["key"].as_str().unwrap().into()),
        _ => (
            reply.status,
            json["error"]["code"].as_str().unwrap().into(),
            json["error"]["message"].as_str().unwrap().into(),
        ),
    }
}

/// The same over gRPC, with the HTTP status the error table gives the code.
fn over_grpc(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    xml: &str,
    acs: Option<&str>,
) -> (u16, String, String) {
    use saml_validator::transport::wire::disposition;
    runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{addr}")).await.unwrap();
        let request = pb::ValidateRequest {
            tenant: "contoso".into(),
            saml_response: post_binding(xml),
            expected_request_id: Some(REQUEST_ID.into()),
            expected_acs_url: acs.map(str::to_string),
        };
        let status_of = |code: &str| {
            let code = saml_validator::saml::Code::ALL.iter().find(|c| c.as_str() == code).unwrap();
            disposition(*code).http_status
        };
        match client.validate(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                match reply.error {
                    None => (200, "valid".into(), reply.subject.unwrap().key),
                    Some(error) => (status_of(&error.code), error.code, error.message),
                }
            }
            Err(status) => {
                let code = status.metadata().get("x-error-code").unwrap().to_str().unwrap().to_string();
                assert_eq!(status.code(), tonic::Code::InvalidArgument, "{code}");
                (status_of(&code), code, status.message().to_string())
            }
        }
    })
}

/// The answer with the instant a message may name as "now" blanked: two calls are judged
/// a few milliseconds apart.
fn without_now((status, code, message): (u16, String, String)) -> (u16, String, String) {
    let message = match message.find(" now ") {
        Some(at) if message.len() >= at + 5 + 24 => format!("{}[now]{}", &message[..at + 5], &message[at + 5 + 24..]),
        _ => message,
    };
    (status, code, message)
}

#[test]
fn policies_from_a_tenant_file_alone_give_the_same_answers_over_http_and_grpc() {
    let idp = TestIdp::generate().unwrap();
    let (_, main) = setup("policies-transports", &idp);
    let (http, grpc) = start_both(&main, false);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let password = response(&idp, 1, ACS, &[PASSWORD], 5);
    let stale = response(&idp, 2, ACS, &[PASSWORD, MFA], 2000);
    let to_other = response(&idp, 3, OTHER_ACS, &[MFA], 5);
    let refusals = [
        (&password, None, 422, "authn_method_not_allowed", vec![MFA, PASSWORD]),
        (&stale, None, 422, "authn_too_old", vec!["at most 900 s"]),
        (&to_other, Some(ACS), 422, "destination_mismatch", vec![OTHER_ACS, ACS]),
        (&to_other, Some("https://evil.example/acs"), 400, "acs_url_unknown", vec!["evil.example", OTHER_ACS]),
    ];
    for (xml, acs, status, code, needles) in refusals {
        let answer = without_now(over_http(http, xml, acs));
        assert_eq!(without_now(over_grpc(&runtime, grpc, xml, acs)), answer, "{code}");
        assert_eq!((answer.0, answer.1.as_str()), (status, code), "{}", answer.2);
        for needle in needles {
            assert!(answer.2.contains(needle), "{needle:?} not in {:?}", answer.2);
        }
    }
    // Accepted on the customer's domain when the caller says that is where it arrived; the key
    // is the object id's, the same for the same user on both transports (two assertions: the
    // replay record is shared).
    let on_http = over_http(http, &to_other, Some(OTHER_ACS));
    let on_grpc = over_grpc(&runtime, grpc, &response(&idp, 4, OTHER_ACS, &[MFA], 5), None);
    assert_eq!((on_http.0, on_http.1.as_str()), (200, "valid"), "{}", on_http.2);
    assert_eq!(on_grpc, on_http);
    // A user without an object id, when the tenant keys on it.
    let mut spec = with_methods(ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 3, 5), &[MFA]);
    spec.attributes.retain(|(name, _)| name != entra::OBJECT_ID);
    let anonymous = spec.signed(&idp, Signing::Assertion).unwrap();
    let answer = over_http(http, &anonymous, None);
    assert_eq!(over_grpc(&runtime, grpc, &anonymous, None), answer);
    assert_eq!(answer.1, "subject_key_missing", "{}", answer.2);
    assert!(answer.2.contains("object_id") && answer.2.contains(entra::OBJECT_ID), "{}", answer.2);

    // The tenant view shows every policy, on both transports.
    let view = request(http, "GET", "/v1/tenants/contoso", b"", &[]).json();
    assert_eq!(view["acs_urls"], json!([ACS, OTHER_ACS]));
    assert_eq!(view["require_authn_methods"], json!([MFA]));
    assert_eq!(view["require_authn_context"], json!([]));
    assert_eq!(view["max_authn_age_seconds"], json!(900));
    assert_eq!(view["subject_key_from"], json!("object_id"));
    let trust = runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc}")).await.unwrap();
        client.get_tenant(pb::GetTenantRequest { tenant: "contoso".into() }).await.unwrap().into_inner()
    });
    assert_eq!(trust.acs_urls, [ACS, OTHER_ACS]);
    assert_eq!(trust.require_authn_methods, [MFA]);
    assert_eq!((trust.max_authn_age_seconds, trust.subject_key_from.as_str()), (Some(900), "object_id"));
}

#[test]
fn authn_requests_ask_for_one_of_the_tenants_acs_urls_and_metadata_lists_them_all() {
    let idp = TestIdp::generate().unwrap();
    let (_, main) = setup("policies-authn-requests", &idp);
    let (http, grpc) = start_both(&main, false);
    let create = |acs: Option<&str>| {
        let mut body = json!({"tenant": "contoso", "binding": "post"});
        if let Some(acs) = acs {
            body["acs_url"] = json!(acs);
        }
        request(
            http,
            "POST",
            "/v1/authn-requests",
            body.to_string().as_bytes(),
            &[("Content-Type", "application/json")],
        )
    };
    let acs_of = |reply: &HttpReply| {
        let xml = base64::engine::general_purpose::STANDARD
            .decode(reply.json()["fields"]["SAMLRequest"].as_str().unwrap())
            .unwrap();
        let xml = String::from_utf8(xml).unwrap();
        let from = xml.find("AssertionConsumerServiceURL=\"").unwrap() + "AssertionConsumerServiceURL=\"".len();
        xml[from..from + xml[from..].find('"').unwrap()].to_string()
    };
    assert_eq!(acs_of(&create(None)), ACS);
    assert_eq!(acs_of(&create(Some(OTHER_ACS))), OTHER_ACS);
    let unknown = create(Some("https://evil.example/acs"));
    assert_eq!(
        (unknown.status, unknown.json()["error"]["code"].as_str()),
        (400, Some("acs_url_unknown")),
        "{}",
        unknown.body
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let mut client =
            pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc}")).await.unwrap();
        let message = pb::CreateAuthnRequestRequest {
            tenant: "contoso".into(),
            acs_url: Some("https://evil.example/acs".into()),
            ..Default::default()
        };
        client.create_authn_request(message).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.metadata().get("x-error-code").unwrap(), "acs_url_unknown");

    let metadata = request(http, "GET", "/v1/tenants/contoso/sp-metadata", b"", &[]);
    assert_eq!(metadata.status, 200);
    for (index, url) in [ACS, OTHER_ACS].iter().enumerate() {
        assert!(metadata.body.contains(&format!("Location=\"{url}\" index=\"{index}\"")), "{}", metadata.body);
    }
    assert_eq!(metadata.body.matches("isDefault=\"true\"").count(), 1);
}

#[test]
fn the_cli_takes_the_expected_acs_url_and_the_acs_to_ask_for() {
    let idp = TestIdp::generate().unwrap();
    let (config, _) = setup("policies-cli", &idp);
    let saved = config.with_file_name("response.xml");
    std::fs::write(&saved, response(&idp, 7, OTHER_ACS, &[MFA], 5)).unwrap();
    let validate = |acs: &str| {
        let out = Command::new(BIN)
            .args([
                "validate",
                "--tenant",
                "contoso",
                "--expected-request-id",
                REQUEST_ID,
                "--expected-acs-url",
                acs,
                "--config",
            ])
            .arg(&config)
            .arg(&saved)
            .output()
            .unwrap();
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap())
    };
    let (status, refused) = validate(ACS);
    assert_eq!((status, refused["error"]["code"].as_str()), (Some(1), Some("destination_mismatch")), "{refused}");
    let (status, valid) = validate(OTHER_ACS);
    assert_eq!(status, Some(0), "{valid}");
    assert_eq!(valid["subject"]["key"].as_str().unwrap().len(), 64);

    let out = Command::new(BIN)
        .args(["authn-request", "--tenant", "contoso", "--binding", "post", "--acs-url", OTHER_ACS, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let xml =
        base64::engine::general_purpose::STANDARD.decode(body["fields"]["SAMLRequest"].as_str().unwrap()).unwrap();
    assert!(String::from_utf8(xml).unwrap().contains(&format!("AssertionConsumerServiceURL=\"{OTHER_ACS}\"")));
}

#[test]
fn bad_policy_values_are_configuration_errors_reported_together() {
    let idp = TestIdp::generate().unwrap();
    let text = format!(
        r#"
[[tenants]]
id = "a"
idp_entity_id = "{IDP}"
sp_entity_id = "{SP}"
acs_url = "{ACS}"
acs_urls = ["ftp://helpdesk.example/acs", "{OTHER_ACS}", "{OTHER_ACS}", "{ACS}"]
certificates = ["{cert}"]
subject_key_from = "oid"
max_authn_age_seconds = 0
require_authn_methods = ["multiple authn"]
require_authn_context = [""]
[[tenants]]
id = "b"
idp_entity_id = "{IDP}"
sp_entity_id = "{SP}"
acs_url = "{ACS}"
certificates = ["{cert}"]
subject_key_from = "attribute:"
max_authn_age_seconds = 86401
"#,
        cert = idp.certificate_base64()
    );
    let errors = Config::parse(&text, Path::new("."), Utc::now()).unwrap_err().0;
    let expect = [
        "tenants[0].acs_urls[0]:",
        "tenants[0].acs_urls[2]: \"https://helpdesk.contoso.example/User/Login\" is listed twice",
        "tenants[0].subject_key_from: \"oid\" is not one of",
        "tenants[0].max_authn_age_seconds: 0 is outside 1..=86400",
        "tenants[0].require_authn_methods[0]: \"multiple authn\" is not a URI",
        "tenants[0].require_authn_context[0]: \"\" is not a URI",
        "tenants[1].subject_key_from: \"attribute:\" names no attribute",
        "tenants[1].max_authn_age_seconds: 86401 is outside",
    ];
    for needle in expect {
        assert!(errors.iter().any(|e| e.contains(needle)), "missing {needle:?} in {errors:#?}");
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");

    // acs_url itself may be repeated in acs_urls; it stays first, once.
    let good = text.replace("\"ftp://helpdesk.example/acs\", ", "").replacen(&format!("\"{OTHER_ACS}\", "), "", 1);
    let good = good.split("subject_key_from = \"oid\"").next().unwrap().to_string() + "\n";
    let config = Config::parse(&good, Path::new("."), Utc::now()).unwrap();
    let acs: Vec<&str> = config.tenants[0].policy.acs_urls().collect();
    assert_eq!(acs, [ACS, OTHER_ACS]);

    // check-config shows a good tenant's policies, names a bad tenant file and refuses it alone.
    let (config, _) = setup("policies-check-config", &idp);
    let out = Command::new(BIN).args(["check-config"]).arg(&config).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = format!(
        "contoso: acs_urls=[\"{ACS}\", \"{OTHER_ACS}\"] subject_key_from=object_id require_authn_methods=[\"{MFA}\"] max_authn_age_seconds=900"
    );
    assert!(stdout.contains(&line), "{stdout}");
    let tenants = config.with_file_name("tenants.d");
    let bad = std::fs::read_to_string(tenants.join("contoso.toml")).unwrap().replace("\"object_id\"", "\"objectid\"");
    std::fs::write(tenants.join("fabrikam.toml"), bad).unwrap();
    let out = Command::new(BIN).args(["check-config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tenant \"fabrikam\" refused") && stderr.contains("subject_key_from"), "{stderr}");
    assert!(stderr.contains("the other 1 tenant(s) are ok"), "{stderr}");
}
