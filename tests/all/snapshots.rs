//! JSON snapshots of every reply shape callers are built against (tests/all/snapshots/): a field
//! added, renamed or retyped shows up as a changed `.snap` file in review. Values that change
//! from run to run (IDs, instants, keys, fingerprints) are redacted; the shape and the fixed
//! values stay. `cargo insta review` (or INSTA_UPDATE=always) accepts an intended change.

use chrono::Utc;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use serde_json::json;

use crate::support::*;

fn login(idp: &TestIdp, seed: u64) -> serde_json::Value {
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 3, seed);
    json!({"tenant": "contoso", "saml_response": post_binding(&spec.signed(idp, Signing::Assertion).unwrap()), "expected_request_id": REQUEST_ID})
}

#[test]
fn reply_shapes() {
    let idp = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let body = login(&idp, 1);

    let valid = validate_json(addr, &body);
    assert_eq!(valid.status, 200, "{}", valid.body);
    insta::assert_json_snapshot!("validate_200", valid.json(), {
        ".assertion_id" => "[id]",
        ".unsigned_response_id" => "[id]",
        ".valid_until" => "[instant]",
        ".claims.groups[]" => "[group]",
        ".claims.object_id" => "[guid]",
        ".claims.idp_tenant_id" => "[guid]",
        ".session.index" => "[id]",
        ".session.authn_instant" => "[instant]",
        ".session.not_on_or_after" => "[instant]",
        ".attributes.*[]" => "[value]",
    });

    let replayed = validate_json(addr, &body);
    assert_eq!(replayed.status, 422);
    insta::assert_json_snapshot!("validate_422_replayed", replayed.json(), { ".error.message" => "[message]" });

    let unknown = validate_json(addr, &json!({"tenant": "nobody", "saml_response": "eA=="}));
    insta::assert_json_snapshot!("validate_404_unknown_tenant", unknown.json());

    let tenant = request(addr, "GET", "/v1/tenants/contoso", b"", &[]);
    assert_eq!(tenant.status, 200, "{}", tenant.body);
    insta::assert_json_snapshot!("tenant_view", tenant.json(), {
        ".certificates[].sha256_fingerprint" => "[fingerprint]",
        ".certificates[].sha1_fingerprint" => "[fingerprint]",
        ".certificates[].subject" => "[subject]",
        ".certificates[].issuer" => "[subject]",
        ".certificates[].not_before" => "[instant]",
        ".certificates[].not_after" => "[instant]",
        ".certificates[].serial" => "[serial]",
        ".certificates[].seconds_until_expiry" => "[seconds]",
        ".certificates[].not_after_rfc3339" => "[instant]",
        ".certificates[].days_left" => "[days]",
        ".certificates[].last_used_at" => "[instant]",
    });
}
