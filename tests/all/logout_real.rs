//! Single Logout (issue 30) on real messages: LogoutRequests and LogoutResponses produced by
//! real IdP software, copied as data from public test suites (tests/fixtures/logout, with
//! PROVENANCE.md), judged through the core at their recorded IssueInstant with a tenant policy
//! built from the message's Issuer, Destination and the certificate that signed it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::logout_check::{self, Checked, Delivered, LogoutPolicy, Message, SignedBy};
use saml_validator::saml::{Code, Error, Limits, TenantPolicy};

/// SimpleSAMLphp IdP (python3-saml tests/src/OneLogin/saml2_tests/auth_test.py).
const SSP_IDP: &str = "https://pitbulk.no-ip.org/simplesaml/saml2/idp/metadata.php";
const SSP_SLO: &str = "https://pitbulk.no-ip.org/newonelogin/demo1/index.php?sls";
const SSP_SP: &str = "https://pitbulk.no-ip.org/newonelogin/demo1/metadata.php";
/// A SimpleSAMLphp IdP run locally (passport-saml test/static/idp_slo_redirect.json).
const LOCAL_SSP_IDP: &str = "http://localhost:20000/saml2/idp/metadata.php";
const LOCAL_SSP_SLO: &str = "http://idp.lvh.me:5000/auth/saml/ats/treadstone/idp_slo";
/// The ID of the SP's LogoutRequest the captured LogoutResponse answers.
const SSP_ANSWERED_REQUEST: &str = "ONELOGIN_ebb3e5e4489c6cde1a549d6ac42ad808b48f960e";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logout")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn at(instant: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(instant).unwrap().with_timezone(&Utc)
}

fn tenant(idp: &str, certificate: &str, allow_sha1: bool) -> TenantPolicy {
    let key = TrustedKey::from_certificate_text(&fixture(certificate)).unwrap();
    let mut policy = TenantPolicy::new(idp, SSP_SP, SSP_SLO, vec![key]);
    policy.tenant_id = "real".into();
    policy.allow_sha1 = allow_sha1;
    policy
}

/// One captured Redirect-binding query, judged as received.
struct Redirect {
    file: &'static str,
    idp: &'static str,
    slo_url: &'static str,
    certificate: &'static str,
    /// The message's IssueInstant.
    instant: &'static str,
    expected_request_id: Option<&'static str>,
}

impl Redirect {
    fn query(&self) -> String {
        fixture(self.file).trim_end().to_string()
    }

    fn judge(&self, query: &str, allow_sha1: bool, now: DateTime<Utc>) -> Result<Checked, Error> {
        let policy = tenant(self.idp, self.certificate, allow_sha1);
        let logout = LogoutPolicy { tenant: &policy, slo_url: self.slo_url, require_signed: true };
        logout_check::check(Delivered::Redirect { query }, &logout, &Limits::default(), self.expected_request_id, now)
    }

    fn judge_at_instant(&self, query: &str, allow_sha1: bool) -> Result<Checked, Error> {
        self.judge(query, allow_sha1, at(self.instant))
    }
}

const SSP_REQUEST: Redirect = Redirect {
    file: "simplesamlphp-logout-request.redirect.query",
    idp: SSP_IDP,
    slo_url: SSP_SLO,
    certificate: "simplesamlphp-idp.crt",
    instant: "2014-03-20T16:26:52Z",
    expected_request_id: None,
};

const SSP_RESPONSE: Redirect = Redirect {
    file: "simplesamlphp-logout-response.redirect.query",
    idp: SSP_IDP,
    slo_url: SSP_SLO,
    certificate: "simplesamlphp-idp.crt",
    instant: "2014-03-20T16:17:37Z",
    expected_request_id: Some(SSP_ANSWERED_REQUEST),
};

/// Captured with `Signature` before `SigAlg`; signed over the bindings' order.
const LOCAL_SSP_REQUEST: Redirect = Redirect {
    file: "passport-saml-simplesamlphp-logout-request.captured.query",
    idp: LOCAL_SSP_IDP,
    slo_url: LOCAL_SSP_SLO,
    certificate: "passport-saml-acme_tools_com.crt",
    instant: "2018-04-11T14:03:13Z",
    expected_request_id: None,
};

/// The queries in the order SAML bindings 3.4.4.1 signs them, which is the order the IdP sent
/// (SimpleSAMLphp appends SigAlg, then Signature); the octets of every parameter unchanged.
fn in_bindings_order(message: &Redirect) -> String {
    let query = message.query();
    let (signed, rest) = query.split_once("&Signature=").unwrap();
    match rest.split_once("&SigAlg=") {
        Some((signature, sig_alg)) => format!("{signed}&SigAlg={sig_alg}&Signature={signature}"),
        None => query.clone(),
    }
}

const ALL: [&Redirect; 3] = [&SSP_REQUEST, &SSP_RESPONSE, &LOCAL_SSP_REQUEST];

fn code(result: Result<Checked, Error>) -> Code {
    match result {
        Ok(checked) => panic!("accepted: {checked:?}"),
        Err(error) => error.code,
    }
}

/// SimpleSAMLphp signs the Redirect binding with rsa-sha1: refused unless the tenant opts in.
#[test]
fn real_redirect_messages_signed_with_sha1_need_the_tenants_opt_in() {
    for message in ALL {
        let error = message.judge_at_instant(&in_bindings_order(message), false).unwrap_err();
        assert_eq!(error.code, Code::Sha1NotAllowed, "{}: {error}", message.file);
    }
}

#[test]
fn a_real_simplesamlphp_logout_request_is_valid_at_its_instant() {
    let checked = SSP_REQUEST.judge_at_instant(&in_bindings_order(&SSP_REQUEST), true).unwrap();
    assert_eq!(checked.signed_by, SignedBy::Query);
    assert_eq!(checked.id, "_906d2a7f56a375e7eeb4076e43f368192c4f8827e2");
    assert_eq!(checked.issuer, SSP_IDP);
    assert_eq!(checked.destination, SSP_SLO);
    assert_eq!(checked.issue_instant, at("2014-03-20T16:26:52Z"));
    assert_eq!(checked.relay_state.as_deref(), Some("_1037fbc88ec82ce8e770b2bed1119747bb812a07e6"));
    let Message::Request(facts) = checked.message else { panic!("{:?}", checked.message) };
    assert_eq!(facts.name_id.value, "_fb2bd252465360c3cb5193e357659806c5985659bc");
    assert_eq!(facts.name_id.format.as_deref(), Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient"));
    assert_eq!(facts.name_id.sp_name_qualifier.as_deref(), Some(SSP_SP));
    assert!(!facts.name_id_encrypted);
    assert_eq!(facts.session_indexes, ["_ed822d29c6e476e5a0328e35b4a852c024b49b3609"]);
    assert_eq!(facts.not_on_or_after, Some(at("2023-09-21T21:46:52Z")));
}

#[test]
fn a_real_simplesamlphp_logout_response_is_valid_at_its_instant() {
    let checked = SSP_RESPONSE.judge_at_instant(&in_bindings_order(&SSP_RESPONSE), true).unwrap();
    assert_eq!(checked.signed_by, SignedBy::Query);
    assert_eq!(checked.id, "_5872342f0a421a0793990a0a2e62399bb65becaa72");
    assert_eq!(checked.issuer, SSP_IDP);
    assert_eq!(checked.destination, SSP_SLO);
    assert_eq!(checked.relay_state.as_deref(), Some("https://pitbulk.no-ip.org/newonelogin/demo1/index.php"));
    let Message::Response(facts) = checked.message else { panic!("{:?}", checked.message) };
    assert!(facts.success(), "{facts:?}");
    assert_eq!(facts.in_response_to, SSP_ANSWERED_REQUEST);
    assert_eq!((facts.second_level_status, facts.status_message), (None, None));

    // Answering another request of ours, it ends nothing.
    let other = Redirect { expected_request_id: Some("ONELOGIN_another"), ..SSP_RESPONSE };
    assert_eq!(code(other.judge_at_instant(&in_bindings_order(&other), true)), Code::LogoutInResponseToMismatch);
}

/// passport-saml's capture puts Signature before SigAlg. We refuse a query whose SAML
/// parameters are out of the bindings' order (a reordered query is not the one the IdP sent);
/// in the order SimpleSAMLphp sent it, the same octets verify.
#[test]
fn a_real_logout_request_captured_out_of_order_is_refused_and_valid_in_order() {
    let captured = LOCAL_SSP_REQUEST.query();
    assert!(
        captured.contains("&Signature=")
            && captured.ends_with("&SigAlg=http%3A%2F%2Fwww.w3.org%2F2000%2F09%2Fxmldsig%23rsa-sha1")
    );
    let error = LOCAL_SSP_REQUEST.judge_at_instant(&captured, true).unwrap_err();
    assert_eq!(error.code, Code::LogoutQueryInvalid, "{error}");

    let checked = LOCAL_SSP_REQUEST.judge_at_instant(&in_bindings_order(&LOCAL_SSP_REQUEST), true).unwrap();
    assert_eq!(checked.signed_by, SignedBy::Query);
    assert_eq!(checked.id, "_8f0effde308adfb6ae7f1e29b414957fc320f5636f");
    assert_eq!(checked.issuer, LOCAL_SSP_IDP);
    assert_eq!(checked.destination, LOCAL_SSP_SLO);
    assert_eq!(checked.relay_state.as_deref(), Some("_a4653e9109c4639a2165159db4ca31e4f0ca505654"));
    let Message::Request(facts) = checked.message else { panic!("{:?}", checked.message) };
    assert_eq!(facts.name_id.value, "stavros@workable.com");
    assert_eq!(facts.name_id.format.as_deref(), Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"));
    assert_eq!(facts.name_id.sp_name_qualifier.as_deref(), Some("http://idp.lvh.me:5000"));
    assert_eq!(facts.session_indexes, ["_00bf7b2d5d9d3c970217eecefb1194bef3362a618e"]);
    let until = at("2018-04-11T14:08:13Z");
    assert_eq!(facts.not_on_or_after, Some(until));

    // SimpleSAMLphp gives it five minutes: past NotOnOrAfter (plus the skew) it has expired.
    let skew = chrono::Duration::seconds(tenant(LOCAL_SSP_IDP, LOCAL_SSP_REQUEST.certificate, true).clock_skew_seconds);
    let late = LOCAL_SSP_REQUEST.judge(&in_bindings_order(&LOCAL_SSP_REQUEST), true, until + skew);
    assert_eq!(code(late), Code::LogoutExpired);
}

/// Judged today instead of at the recorded instant, both are long past max_assertion_age.
#[test]
fn real_messages_are_too_old_today() {
    for message in ALL {
        assert_eq!(
            code(message.judge(&in_bindings_order(message), true, Utc::now())),
            Code::LogoutTooOld,
            "{}",
            message.file
        );
    }
}

/// Another tenant's Destination or IdP: the same signed message is refused.
#[test]
fn real_messages_for_another_destination_or_issuer_are_refused() {
    for message in ALL {
        let elsewhere = Redirect { slo_url: "https://pitbulk.no-ip.org/other/index.php?sls", ..*message };
        assert_eq!(
            code(elsewhere.judge_at_instant(&in_bindings_order(message), true)),
            Code::LogoutDestinationMismatch
        );
        let stranger = Redirect { idp: "https://idp.example.org/", ..*message };
        assert_eq!(code(stranger.judge_at_instant(&in_bindings_order(message), true)), Code::LogoutIssuerMismatch);
    }
}

/// One byte changed anywhere in the signed octets (message, RelayState, SigAlg) or in the
/// Signature: refused. Each alphanumeric byte of a value (not of a %-escape) is replaced by
/// another one, so the query stays well-formed and only the signature can tell.
#[test]
fn a_one_byte_tamper_of_a_real_message_is_refused() {
    for message in ALL {
        let query = in_bindings_order(message);
        let bytes = query.as_bytes();
        let mut tried = 0;
        for (position, byte) in bytes.iter().enumerate() {
            let escape = position >= 1 && bytes[position - 1] == b'%' || position >= 2 && bytes[position - 2] == b'%';
            let name = query[..position].rsplit('&').next().unwrap_or_default();
            // Every 5th byte keeps the test quick while touching every parameter.
            if !byte.is_ascii_alphanumeric() || escape || !name.contains('=') || position % 5 != 0 {
                continue;
            }
            let replacement = if *byte == b'A' { "B" } else { "A" };
            let mut tampered = query.clone();
            tampered.replace_range(position..=position, replacement);
            let got = code(message.judge_at_instant(&tampered, true));
            let expected: &[Code] = if name.starts_with("SigAlg=") {
                &[Code::SignatureAlgorithmUnsupported]
            } else if name.starts_with("Signature=") {
                // The last base64 character can also leave non-zero padding bits.
                &[Code::SignatureInvalid, Code::SignatureMalformed]
            } else {
                &[Code::SignatureInvalid]
            };
            assert!(expected.contains(&got), "{} byte {position} ({name:.20}): {got:?}", message.file);
            tried += 1;
        }
        assert!(tried > 50, "{tried}");
    }
}
