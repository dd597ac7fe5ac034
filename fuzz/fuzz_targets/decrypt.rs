//! The decryption path: must never panic, and never accept, whatever the bytes. Two shapes per
//! input: the bytes as a whole response for a tenant holding the AD FS fixture's SP key (the
//! encrypted corpus fixtures seed it, so mutations reach key unwrapping and AES), and the
//! bytes as the plaintext of an EncryptedAssertion for a tenant key (so mutations reach the
//! parser, limits and inventory of decrypted documents).
#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_validator::saml::decrypt::DecryptionKey;
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Input, Limits, Request, TenantPolicy};
use saml_validator::testing::encrypt::{encrypt_element, replace_assertion, EncryptOptions};
use saml_validator::testing::idp::{ResponseSpec, TestIdp};

struct Fixture {
    corpus: TenantPolicy,
    own: TenantPolicy,
    sp: TestIdp,
    spec: ResponseSpec,
}

fn fixture() -> Fixture {
    let cert = include_str!("../../tests/fixtures/idp-responses/adfs-gosaml2-encrypted-assertion.crt.pem");
    let key = include_str!("../../tests/fixtures/idp-responses/adfs-gosaml2-encrypted-assertion.sp-key.pem");
    let mut corpus = TenantPolicy::new(
        "http://fs.spstest2.com/adfs/services/trust",
        "https://saml.test.nope/session/sso/saml/spentityid/dknhyszjl7",
        "https://saml.test.nope/session/sso/saml/acs/dknhyszjl7",
        vec![TrustedKey::from_certificate_text(cert).expect("fixture certificate")],
    );
    corpus.decryption_keys = vec![DecryptionKey::from_pem(key).expect("fixture SP key")];
    corpus.allow_idp_initiated = true;
    corpus.allow_rsa_pkcs1_key_transport = true;
    let idp = TestIdp::generate().expect("test IdP");
    let sp = TestIdp::generate().expect("test SP key");
    let mut own = TenantPolicy::new(
        "https://idp.example/",
        "https://sp.example/",
        "https://sp.example/acs",
        vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).expect("test IdP certificate")],
    );
    own.decryption_keys = vec![DecryptionKey::from_pem(&sp.private_key_pem()).expect("test SP key")];
    own.allow_idp_initiated = true;
    let now = saml::time::parse("2017-09-21T23:19:13Z").expect("instant");
    let spec = ResponseSpec::entra("https://idp.example/", "https://sp.example/", "https://sp.example/acs", None, now, 2, 1);
    Fixture { corpus, own, sp, spec }
}

fuzz_target!(|data: &[u8]| {
    thread_local! { static FIXTURE: Fixture = fixture(); }
    let now = saml::time::parse("2017-09-21T23:19:13Z").expect("instant");
    let request = Request { expected_request_id: None, expected_acs_url: None, now };
    FIXTURE.with(|f| {
        let _ = saml::validate(Input::Xml(data), &f.corpus, &Limits::default(), &request);
        for options in [EncryptOptions::entra(), EncryptOptions::gcm()] {
            let Ok(sealed) = encrypt_element("EncryptedAssertion", data, &f.sp, &options) else { return };
            let Ok(xml) = replace_assertion(&f.spec.render(), &f.spec.assertion_id, &sealed) else { return };
            // Nobody signed what the fuzzer wrote: it must never be accepted.
            assert!(saml::validate(Input::Xml(xml.as_bytes()), &f.own, &Limits::default(), &request).is_err());
        }
    });
});
