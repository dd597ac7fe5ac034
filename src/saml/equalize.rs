//! Equal work for every unauthenticated decryption failure. Where nothing authenticates the
//! ciphertext (AES-CBC and no verified Response signature) an attacker can flip ciphertext bits
//! and watch what the plaintext does (Jager and Somorovsky, "How to break XML Encryption", CCS
//! 2011). Every such failure already answers the one `decryption_failed`; this closes the
//! timing channel beside it. Before, a bad padding answered at once, a plaintext that parsed
//! went on to the scan, one carrying a signature on to an RSA check, and one whose signature
//! held on to the C14N and digest of the whole assertion: 200 µs apart for a 15 KB plaintext,
//! which told an attacker probing block by block whether a guess made the plaintext parse.
//!
//! Each failure now does, on what it has, the work of the steps it skipped: the scan's walk,
//! the C14N of a SignedInfo with one RSA check per tenant key, the C14N and SHA-256 of the
//! assertion; a plaintext that never parsed does all of it on a stand-in of its length. The
//! results are thrown away. What remains is the part of a step done before it failed (mostly
//! how far the parser got): BENCHMARKS.md, "Decryption failure timing", measures it.

use std::hint::black_box;

use super::c14n;
use super::dsig;
use super::keys::TrustedKey;
use super::ns;
use super::policy::Limits;
use super::structure;
use super::xml::{self, C14nMode, Node};

/// How far an unauthenticated plaintext got before it failed.
pub(super) enum Reached<'d> {
    /// Nothing parsed: the unwrap or the padding failed, or the parser after reading `read` of
    /// `len` bytes.
    Unparsed { len: usize, read: usize },
    /// Parsed; the scan failed.
    Parsed(Node<'d>),
    /// Scanned; refused before any signature check.
    Scanned(Node<'d>),
    /// The SignedInfo's RSA check failed; the digest was not reached.
    SignatureChecked(Node<'d>),
}

/// Does the work `reached` skipped of the full path (parse, scan, signature check, digest).
pub(super) fn settle(reached: Reached<'_>, limits: &Limits, keys: &[TrustedKey]) {
    match reached {
        Reached::Unparsed { len, read } => {
            // The parse it did not finish, on a stand-in of the rest of its length (libxml2
            // stops at the first error: an end tag that fails to match at the end of 15 KB has
            // cost a full parse), then the scan, the signature check and a digest of its length.
            let stand_in = stand_in(len.saturating_sub(read).max(MIN_STAND_IN));
            let Ok(doc) = xml::parse_within(stand_in.as_bytes(), limits.max_nodes) else { return };
            let Ok(inventory) = structure::scan(&doc, limits) else { return };
            signature_check(inventory.root, keys);
            digest_of_length(inventory.root, len.saturating_sub(SIGNATURE_LEN));
        }
        Reached::Parsed(root) => {
            walk(root);
            signature_check(root, keys);
            digest(root);
        }
        Reached::Scanned(root) => {
            signature_check(root, keys);
            digest(root);
        }
        Reached::SignatureChecked(root) => digest(root),
    }
}

/// The smallest stand-in: its signature and a few values.
const MIN_STAND_IN: usize = 2_500;

/// About the length of the stand-in's signature (and of an Entra assertion's), which the digest
/// leaves out.
const SIGNATURE_LEN: usize = 2_200;

/// An assertion-shaped document of about `len` bytes for a plaintext that never parsed: an
/// Entra assertion's signature (SignedInfo, SignatureValue, certificate), then group GUIDs, as
/// dense in elements as the real thing.
fn stand_in(len: usize) -> String {
    const HEAD: &str = "<Assertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_equal_work\" Version=\"2.0\">";
    const VALUE: &str = "<AttributeValue>00000000-0000-0000-0000-000000000000</AttributeValue>";
    const TAIL: &str = "</Attribute></AttributeStatement></Assertion>";
    let mut out = String::with_capacity(len + 4096);
    out.push_str(HEAD);
    out.push_str(&format!(
        concat!(
            "<Signature xmlns=\"{dsig}\"><SignedInfo><CanonicalizationMethod Algorithm=\"{c14n}\"/>",
            "<SignatureMethod Algorithm=\"{rsa}\"/><Reference URI=\"#_equal_work\"><Transforms>",
            "<Transform Algorithm=\"{env}\"/><Transform Algorithm=\"{c14n}\"/></Transforms>",
            "<DigestMethod Algorithm=\"{sha}\"/><DigestValue>{digest}</DigestValue></Reference></SignedInfo>",
            "<SignatureValue>{value}</SignatureValue><KeyInfo><X509Data><X509Certificate>{cert}",
            "</X509Certificate></X509Data></KeyInfo></Signature>"
        ),
        dsig = ns::DSIG,
        c14n = ns::alg::EXC_C14N_10,
        rsa = ns::alg::RSA_SHA256,
        env = ns::alg::ENVELOPED,
        sha = ns::alg::SHA256,
        digest = "A".repeat(44),
        value = "A".repeat(344),
        cert = "A".repeat(1000),
    ));
    out.push_str(
        "<AttributeStatement><Attribute Name=\"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups\">",
    );
    while out.len() + TAIL.len() < len {
        out.push_str(VALUE);
    }
    out.push_str(TAIL);
    out
}

/// What the scan reads of every node.
fn walk(root: Node<'_>) {
    let mut stack = vec![root];
    let mut seen = 0usize;
    while let Some(node) = stack.pop() {
        seen += node.attributes().count() + node.namespace_declarations().count();
        stack.extend(node.children().filter(|child| child.is_element()));
    }
    black_box(seen);
}

/// The C14N of the root's SignedInfo (when it has one) and an RSA check with every tenant key.
fn signature_check(root: Node<'_>, keys: &[TrustedKey]) {
    let signed_info = signature(root).and_then(|s| s.elements().find(|n| n.is(ns::DSIG, "SignedInfo")));
    let mut info = Vec::new();
    if let Some(signed_info) = signed_info {
        let _ = c14n::write(signed_info, None, C14nMode::Exclusive10, &[], &mut info);
    }
    dsig::spend_signature_check(&info, keys);
}

/// The C14N and SHA-256 of the root minus its signature.
fn digest(root: Node<'_>) {
    let mut out = Vec::new();
    let _ = c14n::write(root, signature(root), C14nMode::Exclusive10, &[], &mut out);
    black_box(openssl::sha::sha256(&out));
}

/// [`digest`] repeated until `len` canonical bytes are hashed: a stand-in shorter than the
/// plaintext (the parser read the rest) still costs the digest of the whole.
fn digest_of_length(root: Node<'_>, len: usize) {
    let (mut done, mut out) = (0, Vec::new());
    // Another pass as long as more than half of it is still owed.
    while done == 0 || len.saturating_sub(done) * 2 > out.len() {
        out.clear();
        if c14n::write(root, signature(root), C14nMode::Exclusive10, &[], &mut out).is_err() || out.is_empty() {
            return;
        }
        done += out.len();
        black_box(openssl::sha::sha256(&out));
    }
}

/// The first ds:Signature in document order: the one a full path would have checked.
fn signature(root: Node<'_>) -> Option<Node<'_>> {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.is(ns::DSIG, "Signature") {
            return Some(node);
        }
        let first = stack.len();
        stack.extend(node.elements());
        stack[first..].reverse();
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::Engine as _;

    use crate::saml::decrypt::DecryptionKey;
    use crate::saml::keys::TrustedKey;
    use crate::saml::tally::{self, Tally};
    use crate::saml::{self, Code, Input, Limits, Request, TenantPolicy};
    use crate::testing::encrypt::{encrypt_element, replace_assertion, EncryptOptions};
    use crate::testing::idp::{ResponseSpec, Signing, TestIdp};

    const IDP: &str = "https://idp.example/";
    const SP: &str = "https://sp.example/";
    const ACS: &str = "https://sp.example/acs";

    /// `xml` with byte `at(len)` of the content ciphertext (IV first) XORed with `mask`.
    fn flipped(xml: &str, at: impl Fn(usize) -> usize, mask: u8) -> String {
        let b64 = &base64::engine::general_purpose::STANDARD;
        let start = xml.rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
        let end = start + xml[start..].find('<').unwrap();
        let mut bytes = b64.decode(&xml[start..end]).unwrap();
        let i = at(bytes.len());
        bytes[i] ^= mask;
        format!("{}{}{}", &xml[..start], b64.encode(bytes), &xml[end..])
    }

    fn assertion_of(xml: &str) -> &str {
        &xml[xml.find("<Assertion ").unwrap()..xml.rfind("</Assertion>").unwrap() + "</Assertion>".len()]
    }

    fn within(actual: usize, expected: usize, percent: usize) -> bool {
        actual.abs_diff(expected) * 100 <= expected * percent
    }

    /// Review item 6: with AES-CBC and no Response signature, a bad padding answered at once
    /// while a plaintext that parsed went on to the scan, an RSA check, a C14N and a digest:
    /// the time told an attacker which. Each failure must now do the work of the full path.
    #[test]
    fn every_unauthenticated_decryption_failure_does_the_work_of_the_full_path() {
        let (idp, sp, intruder) =
            (TestIdp::generate().unwrap(), TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
        let now = saml::time::parse("2026-11-29T10:00:00Z").unwrap();
        let spec = ResponseSpec::entra(IDP, SP, ACS, Some("_r"), now, 150, 1);
        let mut policy =
            TenantPolicy::new(IDP, SP, ACS, vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()]);
        policy.decryption_keys = vec![DecryptionKey::from_pem(&sp.private_key_pem()).unwrap()];
        let cbc = EncryptOptions::entra();
        let seal = |plaintext: &str| {
            let sealed = encrypt_element("EncryptedAssertion", plaintext.as_bytes(), &sp, &cbc).unwrap();
            replace_assertion(&spec.render(), &spec.assertion_id, &sealed).unwrap()
        };
        let signed = spec.signed(&idp, Signing::Assertion).unwrap();
        let good = assertion_of(&signed).to_string();
        let valid = seal(&good);
        // The same length without its signature: a comment in its place.
        let signature = &good[good.find("<Signature").unwrap()..good.find("</Signature>").unwrap() + 12];
        let unsigned = good.replacen(signature, &format!("<!--{}-->", "x".repeat(signature.len() - 7)), 1);
        let classes = [
            ("digest mismatch (the full path)", seal(&good.replacen("<AttributeValue>", "<AttributeValue>x", 1))),
            ("wrapped key fails", spec.encrypted(&idp, Signing::Assertion, &intruder, &cbc).unwrap()),
            ("padding bad", flipped(&valid, |n| n - 17, 0x80)),
            ("garbage at the start", flipped(&valid, |_| 16 + 5, 0x01)),
            ("end tag mismatch", flipped(&valid, |_| 3, 0x01)),
            ("parses, not one assertion", seal(&format!("<W xmlns=\"urn:example:w\">{good}</W>"))),
            ("parses, unsigned", seal(&unsigned)),
            ("signature invalid", seal(assertion_of(&spec.signed(&intruder, Signing::Assertion).unwrap()))),
        ];
        let request = Request { expected_request_id: Some("_r"), expected_acs_url: None, now };
        let mut full = Tally::default();
        for (i, (what, xml)) in classes.iter().enumerate() {
            tally::take();
            let error = saml::validate(Input::Xml(xml.as_bytes()), &policy, &Limits::default(), &request).unwrap_err();
            let work = tally::take();
            assert_eq!(error.code, Code::DecryptionFailed, "{what}");
            if i == 0 {
                full = work;
                assert!(full.canonical_bytes > 10_000 && full.rsa_checks == 1, "{full:?}");
            }
            assert_eq!(work.rsa_checks, full.rsa_checks, "{what}: {work:?} against {full:?}");
            assert!(within(work.parsed_bytes, full.parsed_bytes, 10), "{what}: {work:?} against {full:?}");
            assert!(within(work.canonical_bytes, full.canonical_bytes, 10), "{what}: {work:?} against {full:?}");
        }
    }
}
