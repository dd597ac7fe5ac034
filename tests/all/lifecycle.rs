//! Issue 29, parts 2 and 3: recent failures per tenant (bounded, free of personal data,
//! authorized per tenant), certificate lifecycle in the tenant view (source, days left, which
//! certificate of a rollover really signs), and the fleet list (`GET /v1/tenants`, filters,
//! paging), over HTTP and gRPC alike.

// tonic fixes the error type of every call to `Status`, large as it is.
#![allow(clippy::result_large_err)]

use crate::support::*;
use chrono::Utc;
use saml_validator::testing::certificate::rsa_certificate_base64;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::grpc::pb;
use serde_json::{json, Value};

/// A distinctive address that must never appear in anything the failures list answers.
const MARKER: &str = "zelda.marker-7731@contoso.example";

const EU_TOKEN: &str = "eu-token-8f2c1d";
const OPS_TOKEN: &str = "ops-token-77aa01";

fn callers() -> String {
    format!(
        "\n[[callers]]\nname = \"helpdesk-eu\"\ntoken_sha256 = \"{}\"\ntenants = [\"contoso\"]\n\n[[callers]]\nname = \"operations\"\ntoken_sha256 = \"{}\"\n",
        sha256_hex(EU_TOKEN),
        sha256_hex(OPS_TOKEN)
    )
}

fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> HttpReply {
    let header = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = header.iter().map(|h| ("Authorization", h.as_str())).collect();
    request(addr, "GET", path, b"", &headers)
}

fn post_validate(
    addr: std::net::SocketAddr,
    tenant: &str,
    xml: &str,
    request_id: &str,
    token: Option<&str>,
) -> HttpReply {
    let body = json!({"tenant": tenant, "saml_response": post_binding(xml), "expected_request_id": REQUEST_ID});
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json"), ("X-Request-Id", request_id)];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    request(addr, "POST", "/v1/validate", body.to_string().as_bytes(), &headers)
}

/// A response for `MARKER` (NameID, email and name attributes), issued now.
fn marked_spec() -> ResponseSpec {
    let mut spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 3, 29);
    spec.name_id = MARKER.to_string();
    for (_, values) in &mut spec.attributes {
        for value in values.iter_mut() {
            if value.contains("ada@") {
                *value = MARKER.to_string();
            }
        }
    }
    spec
}

fn sha256_of_certificate(idp: &TestIdp) -> String {
    let der = openssl::x509::X509::from_pem(idp.certificate_pem().as_bytes()).unwrap().to_der().unwrap();
    openssl::sha::sha256(&der).iter().map(|b| format!("{b:02x}")).collect()
}

type Client = pb::saml_validator_client::SamlValidatorClient<tonic::transport::Channel>;

/// A gRPC client on a runtime of its own that outlives each call (the channel's worker task
/// lives on it).
struct Grpc {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Grpc {
    fn connect(addr: std::net::SocketAddr) -> Grpc {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let client = runtime.block_on(Client::connect(format!("http://{addr}"))).unwrap();
        Grpc { runtime, client }
    }

    fn list_failures(&mut self, tenant: &str, token: Option<&str>) -> Result<pb::ListFailuresResponse, tonic::Status> {
        let request = authorized(pb::ListFailuresRequest { tenant: tenant.into() }, token);
        self.runtime.block_on(self.client.list_failures(request)).map(tonic::Response::into_inner)
    }

    fn list_tenants(
        &mut self,
        message: pb::ListTenantsRequest,
        token: Option<&str>,
    ) -> Result<pb::ListTenantsResponse, tonic::Status> {
        self.runtime.block_on(self.client.list_tenants(authorized(message, token))).map(tonic::Response::into_inner)
    }

    fn get_tenant(&mut self, tenant: &str) -> pb::TenantTrust {
        let request = pb::GetTenantRequest { tenant: tenant.into() };
        self.runtime.block_on(self.client.get_tenant(request)).unwrap().into_inner()
    }
}

fn authorized<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

#[test]
fn failures_are_kept_newest_first_bounded_and_without_personal_data() {
    let idp = TestIdp::generate().unwrap();
    let stranger = TestIdp::generate().unwrap();
    let config = config_text(&idp, "\n[diagnostics]\nfailures_per_tenant = 4\n");
    let (http, grpc) = start_both(&config, false);

    // 1: signed by a key the tenant does not trust (its KeyInfo names the stranger's certificate).
    let wrong_key = marked_spec().signed(&stranger, Signing::Assertion).unwrap();
    // 2: the IdP refused, with a StatusMessage naming the user.
    let mut refused = marked_spec();
    refused.status_code = "urn:oasis:names:tc:SAML:2.0:status:Responder".to_string();
    let refused = replace_once(
        &refused.signed(&idp, Signing::Assertion).unwrap(),
        "</samlp:Status>",
        &format!(
            "<samlp:StatusMessage>AADSTS50105: {MARKER} is not assigned to a role</samlp:StatusMessage></samlp:Status>"
        ),
    );
    // 3: issued two hours ago, expired an hour ago.
    let mut old = marked_spec();
    let two_hours = chrono::Duration::hours(2);
    old.issue_instant -= two_hours;
    old.not_before -= two_hours;
    // (the bearer confirmation left valid, so that the Conditions are what refuses it)
    old.not_on_or_after -= two_hours;
    old.authn_instant -= two_hours;
    let old = old.signed(&idp, Signing::Assertion).unwrap();
    // 4: for another audience. 5: accepted. 6: the same again (replayed).
    let mut elsewhere = marked_spec();
    elsewhere.audience = "https://elsewhere.example/".to_string();
    let elsewhere = elsewhere.signed(&idp, Signing::Assertion).unwrap();
    let good = marked_spec().signed(&idp, Signing::Assertion).unwrap();

    for (n, xml) in [&wrong_key, &refused, &old, &elsewhere].into_iter().enumerate() {
        let reply = post_validate(http, "contoso", xml, &format!("req-{}", n + 1), None);
        assert_eq!(reply.json()["valid"], false, "{}", reply.body);
    }
    assert_eq!(post_validate(http, "contoso", &good, "req-ok", None).status, 200);
    let replayed = post_validate(http, "contoso", &good, "req-6", None);
    assert_eq!(replayed.json()["error"]["code"], "replayed", "{}", replayed.body);

    let reply = get(http, "/v1/tenants/contoso/failures", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!reply.body.contains(MARKER), "personal data in the failures list: {}", reply.body);
    assert!(!reply.body.contains("zelda"), "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["tenant"], "contoso");
    let failures = body["failures"].as_array().unwrap();
    let ids: Vec<&str> = failures.iter().map(|f| f["request_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["req-6", "req-4", "req-3", "req-2"], "the newest 4, newest first; the accepted one is no failure");
    let codes: Vec<&str> = failures.iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["replayed", "audience_mismatch", "assertion_expired", "status_not_success"]);

    let status = &failures[3];
    assert_eq!(status["idp_status"], "urn:oasis:names:tc:SAML:2.0:status:Responder");
    assert_eq!(status["message"], "IdP status urn:oasis:names:tc:SAML:2.0:status:Responder");
    let expired = &failures[2];
    let difference = expired["clock_difference_seconds"].as_i64().unwrap();
    assert!((-7300..=-7100).contains(&difference), "clock difference {difference}");
    // Every refusal by the core names the certificate the document carries; the replay is
    // judged after the core, from the store, and carries no document facts.
    for failure in &failures[1..] {
        assert_eq!(failure["keyinfo_sha256"], sha256_of_certificate(&idp), "{failure}");
    }
    assert_eq!(failures[0]["keyinfo_sha256"], Value::Null);
    for failure in failures {
        assert!(failure["at"].as_str().unwrap().ends_with('Z'));
    }
    // The audience failure still says what was expected and found (values of the configuration).
    assert!(failures[1]["message"].as_str().unwrap().contains("https://elsewhere.example/"), "{}", failures[1]);

    // Before it was pushed out, the first failure named the certificate the stranger signs with,
    // which is not the tenant's: checked again with a fresh replica holding only that one.
    let (http2, _) = start_both(&config, false);
    post_validate(http2, "contoso", &wrong_key, "req-1", None);
    let first = get(http2, "/v1/tenants/contoso/failures", None).json();
    let first = &first["failures"][0];
    assert_eq!(first["code"], "signature_invalid");
    assert_eq!(first["keyinfo_sha256"], sha256_of_certificate(&stranger));
    let view = get(http2, "/v1/tenants/contoso", None).json();
    assert_ne!(view["certificates"][0]["sha256_fingerprint"], first["keyinfo_sha256"]);

    // gRPC answers the same entries.
    let mut client = Grpc::connect(grpc);
    let listed = client.list_failures("contoso", None).unwrap();
    let grpc_ids: Vec<&str> = listed.failures.iter().map(|f| f.request_id.as_str()).collect();
    assert_eq!(grpc_ids, ids);
    assert_eq!(listed.failures[3].idp_status.as_deref(), Some("urn:oasis:names:tc:SAML:2.0:status:Responder"));
    assert_eq!(listed.failures[2].clock_difference_seconds, Some(difference));
    assert!(!format!("{listed:?}").contains(MARKER));

    // The list counts every failure of the hour, not only the kept ones.
    let page = get(http, "/v1/tenants", None).json();
    assert_eq!(page["tenants"][0]["failures_last_hour"], 5, "{page}");

    let unknown = get(http, "/v1/tenants/nobody/failures", None);
    assert_eq!((unknown.status, unknown.json()["error"]["code"].clone()), (404, json!("unknown_tenant")));
}

#[test]
fn failures_and_the_list_are_authorized_per_tenant() {
    let idp = TestIdp::generate().unwrap();
    let config = format!("{}{}{}", config_text(&idp, ""), fabrikam_tenant(&idp), callers());
    let (http, grpc) = start_both(&config, false);
    let stranger = TestIdp::generate().unwrap();
    let bad = marked_spec().signed(&stranger, Signing::Assertion).unwrap();
    post_validate(http, "fabrikam", &bad, "fab-1", Some(OPS_TOKEN));
    post_validate(http, "contoso", &bad, "con-1", Some(EU_TOKEN));

    assert_eq!(get(http, "/v1/tenants/fabrikam/failures", None).status, 401);
    let refused = get(http, "/v1/tenants/fabrikam/failures", Some(EU_TOKEN));
    assert_eq!((refused.status, refused.json()["error"]["code"].clone()), (403, json!("forbidden")));
    assert!(!refused.body.contains("fab-1"));
    assert_eq!(get(http, "/v1/tenants/nobody/failures", Some(EU_TOKEN)).status, 403, "no probing of tenant ids");
    let own = get(http, "/v1/tenants/contoso/failures", Some(EU_TOKEN)).json();
    assert_eq!(own["failures"][0]["request_id"], "con-1");
    let other = get(http, "/v1/tenants/fabrikam/failures", Some(OPS_TOKEN)).json();
    assert_eq!(other["failures"][0]["request_id"], "fab-1");

    let ids = |reply: &HttpReply| -> Vec<String> {
        reply.json()["tenants"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(get(http, "/v1/tenants", None).status, 401);
    assert_eq!(ids(&get(http, "/v1/tenants", Some(EU_TOKEN))), ["contoso"]);
    assert_eq!(ids(&get(http, "/v1/tenants", Some(OPS_TOKEN))), ["contoso", "fabrikam"]);

    let mut client = Grpc::connect(grpc);
    let denied = client.list_failures("fabrikam", Some(EU_TOKEN)).unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let own = client.list_failures("contoso", Some(EU_TOKEN)).unwrap();
    assert_eq!(own.failures[0].request_id, "con-1");
    let unauthenticated = client.list_tenants(pb::ListTenantsRequest::default(), None).unwrap_err();
    assert_eq!(unauthenticated.code(), tonic::Code::Unauthenticated);
    let listed = client.list_tenants(pb::ListTenantsRequest::default(), Some(EU_TOKEN)).unwrap();
    assert_eq!(listed.tenants.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["contoso"]);
    assert!(listed.next_page_token.is_empty());
}

/// The tenant with two pinned certificates (`old` first), as in a rollover.
fn rollover_config(old: &TestIdp, new: &TestIdp) -> String {
    format!(
        "[server]\nhttp_addr = \"127.0.0.1:0\"\n\n[[tenants]]\nid = \"contoso\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{}\", \"{}\"]\n",
        old.certificate_base64(),
        new.certificate_base64()
    )
}

#[test]
fn last_used_at_moves_only_for_the_certificate_that_verified() {
    let (old, new, stranger) =
        (TestIdp::generate().unwrap(), TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    let (http, grpc) = start_both(&rollover_config(&old, &new), false);
    let certificates = || get(http, "/v1/tenants/contoso", None).json()["certificates"].as_array().unwrap().clone();
    let last_used = |certs: &[Value], idp: &TestIdp| -> Value {
        let fingerprint = sha256_of_certificate(idp);
        certs.iter().find(|c| c["sha256_fingerprint"] == fingerprint.as_str()).unwrap()["last_used_at"].clone()
    };
    let login = |idp: &TestIdp, seed: u64| {
        let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 3, seed)
            .signed(idp, Signing::Assertion)
            .unwrap();
        post_validate(http, "contoso", &xml, &format!("login-{seed}"), None)
    };

    let before = certificates();
    assert_eq!(before.len(), 2);
    for certificate in &before {
        assert_eq!(certificate["source"], "pinned");
        assert_eq!(certificate["last_used_at"], Value::Null);
        let days = certificate["days_left"].as_i64().unwrap();
        assert!((363..=365).contains(&days), "days_left {days}");
        assert!(certificate["not_after_rfc3339"].as_str().unwrap().ends_with('Z'));
    }

    assert_eq!(login(&old, 1).status, 200);
    let after_old = certificates();
    let old_used = last_used(&after_old, &old);
    assert!(old_used.is_string(), "{after_old:?}");
    assert_eq!(last_used(&after_old, &new), Value::Null, "the new certificate has signed nothing yet");

    // A refused login (unknown key) and a replay move nothing.
    assert_eq!(login(&stranger, 2).json()["error"]["code"], "signature_invalid");
    let replay =
        ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 3, 1).signed(&old, Signing::Assertion).unwrap();
    assert_eq!(post_validate(http, "contoso", &replay, "replay", None).json()["error"]["code"], "replayed");
    assert_eq!(certificates(), after_old);

    // The IdP switches to the new certificate: only it moves.
    assert_eq!(login(&new, 3).status, 200);
    let after_new = certificates();
    assert_eq!(last_used(&after_new, &old), old_used, "the old certificate's last use stays where it was");
    let new_used = last_used(&after_new, &new);
    assert!(new_used.is_string());
    assert!(new_used.as_str().unwrap() >= old_used.as_str().unwrap());

    // gRPC's GetTenant shows the same.
    let mut client = Grpc::connect(grpc);
    let trust = client.get_tenant("contoso");
    for certificate in &trust.certificates {
        let wanted = if certificate.sha256_fingerprint == sha256_of_certificate(&old) { &old_used } else { &new_used };
        assert_eq!(certificate.last_used_at.as_deref(), wanted.as_str());
        assert_eq!(certificate.source, "pinned");
        assert!(certificate.days_left.is_some());
    }
}

/// A self-signed certificate (base64 DER) whose notAfter is `seconds` from now (negative: expired).
fn certificate_expiring_in(seconds: i64) -> String {
    let now = Utc::now().timestamp();
    rsa_certificate_base64("fleet test", now - 400 * 86_400, now + seconds).unwrap()
}

/// 24 tenants t00..t23: t00..t04 expire in 10 days, t05 expired an hour ago, the rest in 400
/// days; plus "zz-metadata", waiting for metadata that is never fetched here (`pending`).
fn fleet_config() -> String {
    const DAY: i64 = 86_400;
    let soon = certificate_expiring_in(10 * DAY);
    let expired = certificate_expiring_in(-3600);
    let later = certificate_expiring_in(400 * DAY);
    let mut text =
        String::from("[server]\nhttp_addr = \"127.0.0.1:0\"\n\n[metadata]\nallowed_hosts = [\"127.0.0.1\"]\n");
    for n in 0..24 {
        let certificate = match n {
            0..=4 => &soon,
            5 => &expired,
            _ => &later,
        };
        // The soonest of two certificates counts.
        let certificates =
            if n == 3 { format!("\"{later}\", \"{certificate}\"") } else { format!("\"{certificate}\"") };
        text.push_str(&format!(
            "\n[[tenants]]\nid = \"t{n:02}\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [{certificates}]\n"
        ));
    }
    text.push_str(&format!(
        "\n[[tenants]]\nid = \"zz-metadata\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nidp_entity_id = \"{IDP}\"\nmetadata_url = \"https://127.0.0.1:1/metadata.xml\"\n"
    ));
    text
}

fn list(addr: std::net::SocketAddr, query: &str) -> Value {
    let reply = get(addr, &format!("/v1/tenants{query}"), None);
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    reply.json()
}

fn listed_ids(page: &Value) -> Vec<String> {
    page["tenants"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_list_filters_and_pages_in_id_order() {
    let (http, grpc) = start_both(&fleet_config(), false);
    let all: Vec<String> = (0..24).map(|n| format!("t{n:02}")).chain(["zz-metadata".to_string()]).collect();

    // Pages of 10: 10 + 10 + 5, in id order, each continuing where the last stopped.
    let mut seen = Vec::new();
    let mut query = "?page_size=10".to_string();
    let mut pages = 0;
    loop {
        let page = list(http, &query);
        pages += 1;
        seen.extend(listed_ids(&page));
        match page["next_page_token"].as_str() {
            Some(token) => query = format!("?page_size=10&page_token={token}"),
            None => break,
        }
    }
    assert_eq!((pages, &seen), (3, &all));
    assert_eq!(listed_ids(&list(http, "")), all, "default page size 100 holds them all");
    assert!(list(http, "").get("next_page_token").is_none());

    let expiring = list(http, "?expiring_within_days=30");
    assert_eq!(listed_ids(&expiring), ["t00", "t01", "t02", "t03", "t04", "t05"]);
    let days: Vec<i64> = expiring["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["soonest_expiry_days_left"].as_i64().unwrap())
        .collect();
    assert_eq!(days, [9, 9, 9, 9, 9, -1]);
    assert!(expiring["tenants"][0]["soonest_expiry"].as_str().unwrap().ends_with('Z'));
    assert_eq!(listed_ids(&list(http, "?expiring_within_days=0")), ["t05"], "expired only");
    assert_eq!(listed_ids(&list(http, "?expiring_within_days=30&page_size=4")), ["t00", "t01", "t02", "t03"]);

    let pending = list(http, "?state=pending");
    assert_eq!(listed_ids(&pending), ["zz-metadata"]);
    assert_eq!(pending["tenants"][0]["state"], "pending");
    assert_eq!(pending["tenants"][0]["soonest_expiry"], Value::Null);
    assert_eq!(listed_ids(&list(http, "?state=ok")).len(), 24);
    // "dDAy" is the token after t02.
    assert_eq!(listed_ids(&list(http, "?state=ok&expiring_within_days=30&page_token=dDAy")), ["t03", "t04", "t05"]);

    for bad in [
        "?state=sleepy",
        "?page_size=0",
        "?page_size=1001",
        "?page_size=ten",
        "?expiring=30",
        "?page_token=%%%",
        "?expiring_within_days=-1",
    ] {
        let reply = get(http, &format!("/v1/tenants{bad}"), None);
        assert_eq!(
            (reply.status, reply.json()["error"]["code"].clone()),
            (400, json!("malformed_request")),
            "{bad}: {}",
            reply.body
        );
    }

    // gRPC: the same pages and filters.
    let mut client = Grpc::connect(grpc);
    let mut call = |message: pb::ListTenantsRequest| client.list_tenants(message, None);
    let first = call(pb::ListTenantsRequest { page_size: 10, ..Default::default() }).unwrap();
    assert_eq!(first.tenants.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), all[..10]);
    let second =
        call(pb::ListTenantsRequest { page_size: 10, page_token: first.next_page_token.clone(), ..Default::default() })
            .unwrap();
    assert_eq!(second.tenants.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), all[10..20]);
    let expiring_grpc = call(pb::ListTenantsRequest { expiring_within_days: Some(30), ..Default::default() }).unwrap();
    let http_summaries: Vec<(String, Option<i64>)> = expiring["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_string(), t["soonest_expiry_days_left"].as_i64()))
        .collect();
    let grpc_summaries: Vec<(String, Option<i64>)> =
        expiring_grpc.tenants.iter().map(|t| (t.id.clone(), t.soonest_expiry_days_left)).collect();
    assert_eq!(grpc_summaries, http_summaries);
    assert!(expiring_grpc.next_page_token.is_empty());
    let pending_grpc = call(pb::ListTenantsRequest { state: Some("pending".into()), ..Default::default() }).unwrap();
    assert_eq!(pending_grpc.tenants.len(), 1);
    assert_eq!(pending_grpc.tenants[0].state, "pending");
    let bad = call(pb::ListTenantsRequest { state: Some("sleepy".into()), ..Default::default() }).unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let bad = call(pb::ListTenantsRequest { page_size: 5000, ..Default::default() }).unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
