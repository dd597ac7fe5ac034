//! XML parsing plus the signature-structure checks, without the SAML layer on top: the strict
//! parse, the whole-document inventory (limits, IDs, Assertion/Signature census) and the XML-DSig
//! profile (SignedInfo shape, algorithms, Reference, transforms) for every Signature found.
//! Invariant: a signature only ever vouches for its own parent element.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{dsig, structure, xml, Limits};

fn keys() -> Vec<TrustedKey> {
    [
        include_str!("../../tests/fixtures/idp-responses/entra-ssoready-signed-assertion.crt.pem"),
        include_str!("../../tests/fixtures/idp-responses/okta-dex-signed-response-and-assertion.crt.pem"),
    ]
    .iter()
    .map(|pem| TrustedKey::from_certificate_text(pem).expect("fixture certificate"))
    .collect()
}

fuzz_target!(|data: &[u8]| {
    thread_local! { static KEYS: Vec<TrustedKey> = keys(); }
    let Ok(doc) = xml::parse(data) else { return };
    let Ok(inventory) = structure::scan(&doc, &Limits::default()) else { return };
    KEYS.with(|keys| {
        for &signature in &inventory.signatures {
            let Some(signed) = signature.parent() else { continue };
            for allow_sha1 in [false, true] {
                if let Ok(verified) = dsig::verify(&doc, signed, signature, keys, allow_sha1) {
                    assert!(verified.element() == signed, "a signature vouched for an element other than its parent");
                }
            }
        }
    });
});
