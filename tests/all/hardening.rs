//! Regressions from the outside security review of the validation core. Each test is named after
//! what it protects and failed on the code before its fix:
//!
//! | finding | tests |
//! |---|---|
//! | a second Subject / NameID / Conditions / SubjectConfirmationData / Issuer was ignored, the first won | `a_second_*`, `two_subjects_*`, `two_identifiers_*` |
//! | only the first AuthnStatement was judged | `every_authn_statement_must_pass_and_the_first_fills_the_session` |
//! | a data-less bearer confirmation rescued a failing one in a bare assertion | `a_failing_bearer_confirmation_is_not_rescued_by_a_data_less_one` |
//! | time zone offsets out of range, non-UTC offsets and zone-less times were accepted | `timestamps_must_be_utc_*` |
//! | UTF-16 / UTF-32 input answered `xml_malformed` | `utf16_and_utf32_documents_answer_encoding_unsupported` |
//! | Audience, Destination, Recipient, Issuer with surrounding whitespace were refused | `uri_values_are_compared_without_surrounding_xml_whitespace` |

use crate::support::*;
use base64::Engine as _;
use chrono::Duration;
use saml_validator::saml::{self, Code, Input, Limits, Request, TenantPolicy};
use saml_validator::testing::idp::{ResponseSpec, SignOptions, Signing};

/// Renders `spec`, applies `edits` (each `from` must occur exactly once), then signs the
/// assertion: the edited content is what the IdP signed.
fn signed_with_edits(h: &Harness, spec: &ResponseSpec, edits: &[(&str, &str)]) -> String {
    let mut xml = spec.render();
    for (from, to) in edits {
        xml = replace_once(&xml, from, to);
    }
    h.idp.sign(&xml, &spec.assertion_id, &SignOptions::default()).unwrap()
}

/// The first occurrence of `from` replaced (the Response's attribute where the Assertion has one
/// too; unsigned when only the assertion is signed).
fn replace_first(xml: &str, from: &str, to: &str) -> String {
    assert!(xml.contains(from), "no {from:?}");
    xml.replacen(from, to, 1)
}

/// Asserts a `saml_malformed` refusal whose message names `element`.
#[track_caller]
fn assert_duplicate_refused(h: &Harness, xml: &str, element: &str) {
    match h.check(xml) {
        Ok(v) => panic!("two <{element}> accepted: name_id {:?}, email {:?}", v.subject.name_id, v.claims.email),
        Err(e) => {
            assert_eq!(e.code, Code::SamlMalformed, "two <{element}>: {e}");
            assert!(e.message.contains(element), "message does not name <{element}>: {}", e.message);
        }
    }
}

// ---------------------------------------------------------------- at most one of each

#[test]
fn a_second_conditions_element_cannot_carry_another_audience_or_an_expired_window() {
    let h = Harness::new();
    let spec = h.spec();
    let other_audience = "<Conditions><AudienceRestriction><Audience>https://other.example/</Audience></AudienceRestriction></Conditions>";
    let expired = format!(
        "<Conditions NotOnOrAfter=\"{}\"><AudienceRestriction><Audience>{SP}</Audience></AudienceRestriction></Conditions>",
        saml::time::format(h.now - Duration::hours(1))
    );
    for second in [other_audience, expired.as_str()] {
        let xml = signed_with_edits(&h, &spec, &[("<AttributeStatement>", &format!("{second}<AttributeStatement>"))]);
        assert_duplicate_refused(&h, &xml, "Conditions");
    }
    // Several AudienceRestriction elements are allowed, and each must name us (core 2.5.1.4).
    let foreign = "<AudienceRestriction><Audience>https://other.example/</Audience></AudienceRestriction>";
    let ours = format!("<AudienceRestriction><Audience>{SP}</Audience></AudienceRestriction>");
    let xml = signed_with_edits(&h, &spec, &[("</AudienceRestriction>", &format!("</AudienceRestriction>{foreign}"))]);
    assert_eq!(h.code(&xml), Code::AudienceMismatch);
    let xml = signed_with_edits(&h, &spec, &[("</AudienceRestriction>", &format!("</AudienceRestriction>{ours}"))]);
    h.check(&xml).unwrap();
}

#[test]
fn a_second_issuer_is_refused_in_the_assertion_and_in_the_response() {
    let h = Harness::new();
    let spec = h.spec();
    let foreign = "<Issuer>https://evil.example/</Issuer>";
    let xml = signed_with_edits(&h, &spec, &[("<Subject>", &format!("{foreign}<Subject>"))]);
    assert_duplicate_refused(&h, &xml, "Issuer");
    // The Response's Issuer is unsigned when only the assertion is signed.
    let signed = h.signed(Signing::Assertion);
    let foreign = format!("<Issuer xmlns=\"{}\">https://evil.example/</Issuer>", saml::ns::ASSERTION);
    let xml = replace_once(&signed, "<samlp:Status>", &format!("{foreign}<samlp:Status>"));
    assert_duplicate_refused(&h, &xml, "Issuer");
}

#[test]
fn two_subjects_cannot_pair_one_users_name_id_with_another_users_attributes() {
    let h = Harness::new();
    let mut spec = h.spec();
    // The attributes (email) say mallory; the first Subject says ada.
    for (_, values) in spec.attributes.iter_mut() {
        for value in values.iter_mut() {
            *value = value.replace("ada@", "mallory@");
        }
    }
    let second = format!(
        "<Subject><NameID>mallory@contoso.example</NameID><SubjectConfirmation Method=\"{}\"/></Subject>",
        saml::ns::CM_BEARER
    );
    let xml = signed_with_edits(&h, &spec, &[("</Subject>", &format!("</Subject>{second}"))]);
    assert_duplicate_refused(&h, &xml, "Subject");
}

#[test]
fn two_identifiers_in_one_subject_are_refused() {
    let h = Harness::new();
    let spec = h.spec();
    let second_name_id = "<NameID>mallory@contoso.example</NameID>";
    let base_id = "<BaseID xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"x\"/>";
    for (second, named) in [(second_name_id, "NameID"), (base_id, "BaseID")] {
        let xml = signed_with_edits(&h, &spec, &[("<SubjectConfirmation ", &format!("{second}<SubjectConfirmation "))]);
        assert_duplicate_refused(&h, &xml, named);
    }
}

#[test]
fn a_second_subject_confirmation_data_is_refused() {
    let h = Harness::new();
    let spec = h.spec();
    let failing = format!(
        "<SubjectConfirmationData NotOnOrAfter=\"{}\" Recipient=\"https://evil.example/acs\"/>",
        saml::time::format(h.now - Duration::hours(1))
    );
    let xml = signed_with_edits(&h, &spec, &[("</SubjectConfirmation>", &format!("{failing}</SubjectConfirmation>"))]);
    assert_duplicate_refused(&h, &xml, "SubjectConfirmationData");
}

#[test]
fn every_authn_statement_must_pass_and_the_first_fills_the_session() {
    let h = Harness::new();
    let spec = h.spec();
    let statement = |attributes: &str, index: &str| {
        format!("<AuthnStatement{attributes} SessionIndex=\"{index}\"><AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:X509</AuthnContextClassRef></AuthnContext></AuthnStatement>")
    };
    let authn = format!(" AuthnInstant=\"{}\"", saml::time::format(h.now - Duration::minutes(1)));
    let ended = format!("{authn} SessionNotOnOrAfter=\"{}\"", saml::time::format(h.now - Duration::minutes(10)));
    let append = |second: &str| signed_with_edits(&h, &spec, &[("</Assertion>", &format!("{second}</Assertion>"))]);
    assert_eq!(h.code(&append(&statement(&ended, "_ended"))), Code::SessionExpired);
    let error = h.check(&append(&statement("", "_no_instant"))).unwrap_err();
    assert_eq!((error.code, error.message.contains("AuthnInstant")), (Code::SamlMalformed, true), "{error}");
    // Two sound statements: accepted, the first one's values are reported.
    let v = h.check(&append(&statement(&authn, "_second"))).unwrap();
    assert_eq!(v.session.index.as_deref(), Some(spec.assertion_id.as_str()));
    assert_eq!(v.session.authn_context.as_deref(), Some("urn:oasis:names:tc:SAML:2.0:ac:classes:Password"));
}

#[test]
fn a_failing_bearer_confirmation_is_not_rescued_by_a_data_less_one() {
    // Bare (WS-Federation style) assertions may carry a bearer confirmation without data. That
    // relaxation must not let a data-less confirmation stand in for one whose data fails.
    let mut h = Harness::new();
    h.expected_request_id = None;
    let mut spec = h.spec();
    spec.in_response_to = None;
    spec.confirmation_not_on_or_after = h.now - Duration::hours(1);
    let data_less = format!("<SubjectConfirmation Method=\"{}\"/>", saml::ns::CM_BEARER);
    let mut xml = replace_once(&spec.render_assertion(), "</Subject>", &format!("{data_less}</Subject>"));
    xml = h.idp.sign(&xml, &spec.assertion_id, &SignOptions::default()).unwrap();
    let relaxed = TenantPolicy { allow_bare_assertion: true, allow_idp_initiated: true, ..h.policy.clone() };
    let error = h.check_with(&xml, &relaxed).unwrap_err();
    assert_eq!(error.code, Code::SubjectConfirmationExpired, "{error}");
    // Several bearer confirmations with data: any one that holds confirms the subject (core
    // 2.4.1.1), and the expiry reported is the one of the confirmation that held.
    let h = Harness::new();
    let spec = h.spec();
    let passing_later = format!(
        "<SubjectConfirmation Method=\"{}\"><SubjectConfirmationData InResponseTo=\"{REQUEST_ID}\" NotOnOrAfter=\"{}\" Recipient=\"{ACS}\"/></SubjectConfirmation>",
        saml::ns::CM_BEARER,
        saml::time::format(h.now + Duration::minutes(30))
    );
    let xml = signed_with_edits(
        &h,
        &spec,
        &[
            (&format!("Recipient=\"{ACS}\""), "Recipient=\"https://evil.example/acs\""),
            ("</Subject>", &format!("{passing_later}</Subject>")),
        ],
    );
    let v = h.check(&xml).unwrap();
    assert_eq!(v.valid_until, saml::time::format(h.now + Duration::minutes(30)));
}

// ---------------------------------------------------------------- time zones

#[test]
fn timestamps_must_be_utc_offsets_out_of_range_non_utc_and_zoneless_are_refused() {
    let h = Harness::new();
    let signed = h.signed(Signing::Assertion);
    let instant = format!("IssueInstant=\"{}\"", saml::time::format(h.now));
    // Each of these was read as an instant in the past (and accepted) before.
    let mut accepted = Vec::new();
    for bad in [
        "2026-11-29T10:00:00+99:99",
        "2026-11-28T10:00:00-23:59",
        "2026-11-29T10:00:00+14:01",
        "2026-11-29T10:30:00+00:60",
        "2026-11-29T12:00:00+02:00",
        "2026-11-28T20:00:00-14:00",
        "2026-11-29T10:00:00",
        "2026-11-29T10:00:00.123",
    ] {
        let edited = replace_first(&signed, &instant, &format!("IssueInstant=\"{bad}\""));
        match h.check(&edited) {
            Ok(_) => accepted.push(bad),
            Err(e) => assert_eq!(e.code, Code::SamlMalformed, "{bad}: {e}"),
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
    for utc in ["2026-11-29T10:00:00Z", "2026-11-29T10:00:00+00:00", "2026-11-29T10:00:00-00:00"] {
        let edited = replace_first(&signed, &instant, &format!("IssueInstant=\"{utc}\""));
        h.check(&edited).unwrap_or_else(|e| panic!("{utc}: {e}"));
    }
    // The message says why, not just "not an xs:dateTime".
    let edited = replace_first(&signed, &instant, "IssueInstant=\"2026-11-29T10:00:00\"");
    let error = h.check(&edited).unwrap_err();
    assert!(error.message.contains("UTC"), "{}", error.message);
}

// ---------------------------------------------------------------- encodings

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
    units.flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() }).collect()
}

fn utf32(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let chars = bom.then_some(0xFEFF).into_iter().chain(text.chars().map(u32::from));
    chars.flat_map(|c| if big_endian { c.to_be_bytes() } else { c.to_le_bytes() }).collect()
}

#[test]
fn utf16_and_utf32_documents_answer_encoding_unsupported() {
    let h = Harness::new();
    let signed = h.signed(Signing::Assertion);
    let declared = format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>{signed}");
    let indented = format!("\n  {signed}");
    let limits = Limits { max_document_bytes: 1 << 20, ..Limits::default() };
    let request = Request { expected_request_id: Some(REQUEST_ID), expected_acs_url: None, now: h.now };
    let run = |input: Input<'_>| saml::validate(input, &h.policy, &limits, &request).map(|v| v.subject.name_id);
    let mut wrong = Vec::new();
    for text in [&signed, &declared, &indented] {
        for big_endian in [false, true] {
            for bom in [true, false] {
                let order = if big_endian { "BE" } else { "LE" };
                for (name, bytes) in [
                    (format!("UTF-16{order} bom={bom}"), utf16(text, big_endian, bom)),
                    (format!("UTF-32{order} bom={bom}"), utf32(text, big_endian, bom)),
                ] {
                    let base64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    for (how, result) in
                        [("xml", run(Input::Xml(&bytes))), ("base64", run(Input::Base64(base64.as_bytes())))]
                    {
                        match result {
                            Err(e) if e.code == Code::EncodingUnsupported => {}
                            other => wrong.push(format!("{name} {how} {:?}: {other:?}", &text[..10])),
                        }
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
    // A UTF-8 byte-order mark is still UTF-8: accepted, with or without a declaration.
    for text in [&signed, &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{signed}")] {
        let bytes = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let base64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(run(Input::Xml(&bytes)).unwrap(), "ada@contoso.example");
        assert_eq!(run(Input::Base64(base64.as_bytes())).unwrap(), "ada@contoso.example");
    }
}

// ---------------------------------------------------------------- whitespace around URIs

#[test]
fn uri_values_are_compared_without_surrounding_xml_whitespace() {
    let h = Harness::new();
    let spec = h.spec();
    // Character references survive attribute-value normalization, so these are real TAB/LF/CR.
    let padded = |value: &str| format!("&#9;&#10; {value}&#13; ");
    let audience = (format!("<Audience>{SP}</Audience>"), format!("<Audience>\n\t {SP} \r\n</Audience>"));
    let recipient = (format!("Recipient=\"{ACS}\""), format!("Recipient=\"{}\"", padded(ACS)));
    let issuer = (format!("<Issuer>{IDP}</Issuer>"), format!("<Issuer>\n  {IDP}\t</Issuer>"));
    let mut refused = Vec::new();
    for (name, (from, to)) in [("Audience", &audience), ("Recipient", &recipient), ("Assertion Issuer", &issuer)] {
        let xml = signed_with_edits(&h, &spec, &[(from, to)]);
        match h.check(&xml) {
            Ok(v) => assert_eq!(v.issuer, IDP, "{name}"),
            Err(e) => refused.push(format!("{name}: {e}")),
        }
    }
    // Response attributes and Issuer: unsigned with assertion-only signing.
    let signed = h.signed(Signing::Assertion);
    let destination = (format!("Destination=\"{ACS}\""), format!("Destination=\"{}\"", padded(ACS)));
    let response_issuer = (format!(">{IDP}</Issuer><samlp:Status>"), format!("> {IDP}\n</Issuer><samlp:Status>"));
    for (name, (from, to)) in [("Destination", &destination), ("Response Issuer", &response_issuer)] {
        match h.check(&replace_once(&signed, from, to)) {
            Ok(v) => assert_eq!(v.issuer, IDP, "{name}"),
            Err(e) => refused.push(format!("{name}: {e}")),
        }
    }
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    // Only XML whitespace is trimmed: no Unicode spaces, no case folding, no URL normalization.
    for to in [
        format!("<Audience>\u{a0}{SP}</Audience>"),
        format!("<Audience>{}</Audience>", SP.to_uppercase()),
        format!("<Audience>{}</Audience>", SP.trim_end_matches('/')),
    ] {
        let xml = signed_with_edits(&h, &spec, &[(&audience.0, &to)]);
        assert_eq!(h.code(&xml), Code::AudienceMismatch, "{to}");
    }
    let xml = signed_with_edits(&h, &spec, &[(&issuer.0, &format!("<Issuer>\u{2003}{IDP}</Issuer>"))]);
    assert_eq!(h.code(&xml), Code::IssuerMismatch);
}

// ---------------------------------------------------------------- third outside review (issue 31)
//
// | finding | test |
// |---|---|
// | 2: SingleSignOnService Locations from metadata were used unchecked | `item2_*` |
// | 3: control characters and whitespace in configured URLs and entity IDs loaded | `item3_*` (and `escape_writes_*` in `saml::sign`) |
// | 4: tenant files named files outside their folder, followed links out, blocked on FIFOs | `item4_*` |
// | 8: `allow_weak_rsa_keys` accepted any RSA size | `item8_*` |
// | 9: a second Status/StatusCode was read first-wins; InResponseTo is compared exactly | `item9_*` |

use saml_validator::config::Config;
use saml_validator::saml::authn_request::Binding;
use saml_validator::testing::idp::{idp_metadata, TestIdp};

fn parse_config(text: &str) -> Result<Config, Vec<String>> {
    Config::parse(text, std::path::Path::new("."), chrono::Utc::now()).map_err(|e| e.0)
}

#[test]
fn item2_metadata_endpoints_with_unsafe_locations_are_refused_and_the_tenant_kept() {
    let idp = TestIdp::generate().unwrap();
    let post = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
    let unsafe_locations = [
        "javascript:alert(document.cookie)",
        "data:text/html,&lt;script&gt;",
        "https://idp.example/sso&#13;&#10;Set-Cookie: a=b",
        "https://idp.example/s so",
        "https:///no-host",
    ];
    let mut services = String::new();
    for location in unsafe_locations {
        services.push_str(&format!("<md:SingleSignOnService Binding=\"{post}\" Location=\"{location}\"/>"));
    }
    let metadata = idp_metadata(IDP, &[&idp], None)
        .replace("</md:IDPSSODescriptor>", &format!("{services}</md:IDPSSODescriptor>"));
    let file = temp_dir("review3-metadata").join("idp.xml");
    std::fs::write(&file, metadata).unwrap();
    let text = format!(
        "[[tenants]]\nid = \"northwind\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_file = {:?}\n",
        file.display().to_string()
    );
    let config = parse_config(&text).expect("an unsafe endpoint refuses the endpoint, not the tenant");
    let tenant = &config.tenants[0];
    assert_eq!(tenant.sp.sso_url(&tenant.idp_sso_endpoints, Binding::Post), None, "no POST endpoint is usable");
    assert_eq!(tenant.sp.sso_url(&tenant.idp_sso_endpoints, Binding::Redirect), Some(format!("{IDP}saml2").as_str()));
    let refused = &tenant.metadata.as_ref().unwrap().refused_endpoints;
    assert_eq!(refused.len(), unsafe_locations.len(), "{refused:?}");

    // Over HTTP: the POST binding has no endpoint, so no form with a javascript: action.
    let http = start_server(&text.replace("[[tenants]]", "[server]\nhttp_addr = \"127.0.0.1:0\"\n\n[[tenants]]"));
    let body = serde_json::json!({"tenant": "northwind", "binding": "post"}).to_string();
    let reply = request(http, "POST", "/v1/authn-requests", body.as_bytes(), &[("Content-Type", "application/json")]);
    assert_eq!(
        (reply.status, reply.json()["error"]["code"].as_str()),
        (422, Some("idp_sso_url_unknown")),
        "{}",
        reply.body
    );
    let view = request(http, "GET", "/v1/tenants/northwind", b"", &[]).json();
    assert_eq!(view["metadata"]["refused_endpoints"].as_array().map(Vec::len), Some(unsafe_locations.len()), "{view}");
}

#[test]
fn item3_control_characters_and_whitespace_in_urls_and_entity_ids_are_refused_at_load() {
    let idp = TestIdp::generate().unwrap();
    let base = config_text(&idp, "");
    let mut accepted = Vec::new();
    for (key, good) in [
        ("acs_url", ACS),
        ("sp_entity_id", SP),
        ("idp_entity_id", IDP),
        ("idp_sso_url", "https://login.example/saml2"),
        ("name_id_format", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
    ] {
        for bad in [
            format!("{good}\\r\\nX: y"),
            format!("{good}\\n"),
            format!("{good}\\t"),
            format!("{good} x"),
            format!("{good}\\u0001"),
        ] {
            let line = format!("{key} = \"{bad}\"\n");
            let text = match key {
                "acs_url" => base.replace(&format!("acs_url = \"{ACS}\"\n"), &line),
                "sp_entity_id" => base.replace(&format!("sp_entity_id = \"{SP}\"\n"), &line),
                "idp_entity_id" => base.replace(&format!("idp_entity_id = \"{IDP}\"\n"), &line),
                _ => base.replace("certificates = ['''", &format!("{line}certificates = ['''")),
            };
            assert!(text.contains(&line), "{key}");
            match parse_config(&text) {
                Ok(_) => accepted.push(format!("{key} = {bad}")),
                Err(problems) => assert!(problems.iter().any(|p| p.contains(key)), "{key}: {problems:?}"),
            }
        }
    }
    for url in ["javascript:alert(1)", "https://", "https:///x"] {
        let text = base.replace("certificates = ['''", &format!("idp_sso_url = \"{url}\"\ncertificates = ['''"));
        if parse_config(&text).is_ok() {
            accepted.push(format!("idp_sso_url = {url}"));
        }
    }
    assert!(accepted.is_empty(), "accepted:\n{}", accepted.join("\n"));
}

/// A tenants_dir with one tenant file `acme.toml` holding `settings`, a key of another
/// customer one folder up, and the main file naming the directory with `main_extra`.
fn tenants_dir_with(idp: &TestIdp, name: &str, settings: &str, main_extra: &str) -> (Config, std::path::PathBuf) {
    let base = temp_dir(name);
    let dir = base.join("tenants.d");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(base.join("other-customer.pem"), idp.certificate_pem()).unwrap();
    std::fs::write(dir.join("idp.pem"), idp.certificate_pem()).unwrap();
    let file = format!(
        "idp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n{}",
        settings.replace("@BASE@", &base.display().to_string())
    );
    std::fs::write(dir.join("acme.toml"), file).unwrap();
    let main = format!("tenants_dir = {:?}\n{main_extra}", dir.display().to_string());
    let config = Config::parse(&main, &base, chrono::Utc::now()).unwrap();
    (config, base)
}

#[test]
fn item4_tenant_files_cannot_name_files_outside_their_folder() {
    let idp = TestIdp::generate().unwrap();
    for settings in [
        "certificate_files = [\"../other-customer.pem\"]\n",
        "certificate_files = [\"@BASE@/other-customer.pem\"]\n",
        "certificate_files = [\"idp.pem\"]\ndecryption_key_files = [\"../other-customer.pem\"]\n",
        "metadata_file = \"../other-customer.pem\"\n",
        "certificate_files = [\"idp.pem\"]\nsp_signing_key_file = \"/etc/ssl/private/x.pem\"\nsp_signing_certificate_file = \"idp.pem\"\n",
    ] {
        let (config, _) = tenants_dir_with(&idp, "review3-confined", settings, "");
        let problems = config.tenant_file_errors.get("acme").unwrap_or_else(|| panic!("{settings} was accepted"));
        assert!(problems.iter().any(|p| p.contains("relative path inside its folder")), "{settings}: {problems:?}");
    }
    // Inside the folder: fine. With the loudly named relaxation, the operator allows outside paths.
    let (config, _) = tenants_dir_with(&idp, "review3-inside", "certificate_files = [\"./idp.pem\"]\n", "");
    assert!(config.tenant_file_errors.is_empty(), "{:?}", config.tenant_file_errors);
    let relaxed = "allow_tenant_files_outside_tenants_dir = true\n";
    let (config, _) =
        tenants_dir_with(&idp, "review3-relaxed", "certificate_files = [\"../other-customer.pem\"]\n", relaxed);
    assert!(config.tenant_file_errors.is_empty(), "{:?}", config.tenant_file_errors);
}

#[test]
fn item4_links_out_fifos_and_huge_files_are_refused_and_never_quoted() {
    let idp = TestIdp::generate().unwrap();
    let (_, base) = tenants_dir_with(&idp, "review3-links", "certificate_files = [\"idp.pem\"]\n", "");
    let dir = base.join("tenants.d");
    // A tenant file that is a link to a file outside: its TOML error would quote that file.
    std::fs::write(base.join("secret.txt"), "THE-SECRET-LINE = is not toml ]]\n").unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), dir.join("linked.toml")).unwrap();
    // A certificate link out, a FIFO (reading it would block the rescan forever), a huge file.
    std::os::unix::fs::symlink(base.join("other-customer.pem"), dir.join("out.pem")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(dir.join("fifo.pem")).status().unwrap().success());
    std::fs::write(dir.join("huge.pem"), vec![b'A'; 2 * 1024 * 1024]).unwrap();
    let tenant = |cert: &str| {
        format!("idp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificate_files = [\"{cert}\"]\n")
    };
    for (id, cert) in [("out", "out.pem"), ("fifo", "fifo.pem"), ("huge", "huge.pem")] {
        std::fs::write(dir.join(format!("{id}.toml")), tenant(cert)).unwrap();
    }
    let main = format!("tenants_dir = {:?}\n", dir.display().to_string());
    let config = Config::parse(&main, &base, chrono::Utc::now()).unwrap();
    let errors = &config.tenant_file_errors;
    for (id, why) in
        [("linked", "leads outside"), ("out", "leads outside"), ("fifo", "not a regular file"), ("huge", "more than")]
    {
        let problems = errors.get(id).unwrap_or_else(|| panic!("{id} accepted: {errors:?}"));
        assert!(problems.iter().any(|p| p.contains(why)), "{id}: {problems:?}");
    }
    let all = format!("{errors:?}");
    assert!(!all.contains("THE-SECRET-LINE") && !all.contains("AAAA"), "a refusal quoted a file: {all}");
    assert!(config.tenants.iter().any(|t| t.id == "acme"), "the good tenant still loads");

    // tenant_keys_dir: names resolve there, and only there.
    let keys = base.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("acme-idp.pem"), idp.certificate_pem()).unwrap();
    for id in ["linked", "out", "fifo", "huge"] {
        let _ = std::fs::remove_file(dir.join(format!("{id}.toml")));
    }
    std::fs::write(dir.join("acme.toml"), tenant("acme-idp.pem")).unwrap();
    std::fs::write(dir.join("beta.toml"), tenant("../tenants.d/idp.pem")).unwrap();
    let main =
        format!("tenants_dir = {:?}\ntenant_keys_dir = {:?}\n", dir.display().to_string(), keys.display().to_string());
    let config = Config::parse(&main, &base, chrono::Utc::now()).unwrap();
    assert!(config.tenants.iter().any(|t| t.id == "acme"), "{:?}", config.tenant_file_errors);
    assert!(config.tenant_file_errors.contains_key("beta"), "a name leaving tenant_keys_dir is refused");
}

#[test]
fn item8_allow_weak_rsa_keys_keeps_a_1024_bit_floor() {
    let (tiny, small) = (TestIdp::generate_rsa(512).unwrap(), TestIdp::generate_rsa(1024).unwrap());
    let text = |idp: &TestIdp| {
        config_text(idp, "").replace("certificates = [", "allow_weak_rsa_keys = true\ncertificates = [")
    };
    let problems = parse_config(&text(&tiny)).map(|_| ()).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("512-bit") && p.contains("even with allow_weak_rsa_keys")),
        "{problems:?}"
    );
    assert!(parse_config(&text(&small)).is_ok(), "1024 bits stays available under the relaxation");
    assert!(parse_config(&config_text(&small, "")).is_err(), "and only under it");
}

#[test]
fn item9_a_second_status_or_status_code_is_malformed() {
    let h = Harness::new();
    let signed = h.signed(Signing::Assertion);
    let success = "<samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/>";
    let denied = "<samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Requester\"/>";
    for (edited, element) in [
        replace_once(&signed, "</samlp:Status>", &format!("</samlp:Status><samlp:Status>{denied}</samlp:Status>")),
        replace_once(&signed, success, &format!("{success}{denied}")),
        replace_once(
            &signed,
            success,
            &format!("<samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Responder\">{denied}{denied}</samlp:StatusCode>"),
        ),
    ]
    .iter()
    .zip(["Status", "StatusCode", "StatusCode"])
    {
        assert_duplicate_refused(&h, edited, element);
    }
}

#[test]
fn item9_in_response_to_is_compared_exactly_and_name_id_returned_as_signed() {
    let h = Harness::new();
    let spec = h.spec();
    // Padded in the Response and in the signed SubjectConfirmationData alike.
    let padded =
        spec.render().replace(&format!("InResponseTo=\"{REQUEST_ID}\""), &format!("InResponseTo=\" {REQUEST_ID}\""));
    let padded = h.idp.sign(&padded, &spec.assertion_id, &SignOptions::default()).unwrap();
    assert_eq!(h.code(&padded), Code::InResponseToMismatch);
    let name_id = format!(">{}</NameID>", spec.name_id);
    let xml = signed_with_edits(&h, &spec, &[(&name_id, &format!(">\n {}</NameID>", spec.name_id))]);
    assert_eq!(h.check(&xml).unwrap().subject.name_id, format!("\n {}", spec.name_id));
}
