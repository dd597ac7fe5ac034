//! XML-DSig verification under a deliberately narrow profile (SAML core 5.4 and the attacks of the
//! last decade): one enveloped signature, one same-document Reference to the ID of the element
//! that carries it, exclusive or inclusive C14N 1.0, RSA or ECDSA with SHA-2 (SHA-1 only when the
//! tenant allows it), keys only from configuration.
//!
//! Every structural rule is checked before any canonicalization, digest or key operation, so a
//! hostile Reference, transform or algorithm never causes work.

use base64::Engine as _;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::Public;
use openssl::rsa::{Padding, Rsa};

use super::c14n;
use super::error::{quote, Code, Error};
use super::keys::{KeyMaterial, TrustedKey};
use super::ns::{self, alg};
use super::xml::{self, C14nMode, Document, Node, NodeKind};

/// Proof that the signature carried by `element` verified with a tenant key and that its single
/// Reference covers `element` (minus the signature itself). Only this module can construct it,
/// so claims can only be read from an element that went through [`verify`].
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    element: Node<'a>,
    /// Which of the keys passed to [`verify`] verified it (its index), so the service can say
    /// which certificate of a rollover the IdP really signs with.
    key: usize,
}

impl<'a> Verified<'a> {
    pub fn element(self) -> Node<'a> {
        self.element
    }

    pub fn key_index(self) -> usize {
        self.key
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Digest {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    /// OpenSSL's one-shot SHA functions: no per-call algorithm fetch (OpenSSL 3's EVP layer
    /// looks the algorithm up in a locked store on every init).
    fn compute(self, data: &[u8]) -> Vec<u8> {
        match self {
            Digest::Sha1 => openssl::sha::sha1(data).to_vec(),
            Digest::Sha256 => openssl::sha::sha256(data).to_vec(),
            Digest::Sha384 => openssl::sha::sha384(data).to_vec(),
            Digest::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    /// DER of the DigestInfo header that precedes the hash in an EMSA-PKCS1-v1_5 encoding
    /// (RFC 8017 section 9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Digest::Sha1 => b"\x30\x21\x30\x09\x06\x05\x2b\x0e\x03\x02\x1a\x05\x00\x04\x14",
            Digest::Sha256 => b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20",
            Digest::Sha384 => b"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30",
            Digest::Sha512 => b"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ecdsa,
}

/// The canonicalization a Reference or SignedInfo asks for.
struct C14n<'a> {
    mode: C14nMode,
    prefixes: Vec<&'a str>,
}

/// Verifies the `ds:Signature` `signature`, which must be a child of `signed`.
pub fn verify<'a>(
    doc: &'a Document,
    signed: Node<'a>,
    signature: Node<'a>,
    keys: &[TrustedKey],
    allow_sha1: bool,
) -> Result<Verified<'a>, Error> {
    debug_assert_eq!(signature.parent(), Some(signed));
    let parts = children(signature)?;
    let (signed_info, signature_value) = match parts.as_slice() {
        [si, sv] | [si, sv, _] if si.is(ns::DSIG, "SignedInfo") && sv.is(ns::DSIG, "SignatureValue") => (*si, *sv),
        _ => return Err(malformed("Signature must contain SignedInfo, SignatureValue and optionally KeyInfo")),
    };
    if let Some(extra) = parts.get(2) {
        // ds:Object is where wrapping attacks hide the original assertion; KeyInfo is read by
        // no one (keys come only from configuration).
        if !extra.is(ns::DSIG, "KeyInfo") {
            return Err(malformed(&format!("unexpected <{}> in Signature", extra.local_name())));
        }
    }

    // ---- SignedInfo: structure and algorithms, no work yet ----
    let info = children(signed_info)?;
    let [c14n_method, signature_method, reference] = info.as_slice() else {
        return Err(if info.iter().filter(|n| n.is(ns::DSIG, "Reference")).count() > 1 {
            malformed("exactly one Reference is allowed")
        } else {
            malformed("SignedInfo must contain CanonicalizationMethod, SignatureMethod and one Reference")
        });
    };
    if !c14n_method.is(ns::DSIG, "CanonicalizationMethod")
        || !signature_method.is(ns::DSIG, "SignatureMethod")
        || !reference.is(ns::DSIG, "Reference")
    {
        return Err(malformed("SignedInfo must contain CanonicalizationMethod, SignatureMethod and one Reference"));
    }
    let info_c14n = c14n_of(*c14n_method, Code::CanonicalizationUnsupported)?;
    let (key_kind, sig_digest) = signature_algorithm(*signature_method, allow_sha1)?;

    // ---- Reference: must point at the signed element, by its ID, within this document ----
    let uri = reference.attribute("URI").map(|v| v.get()).unwrap_or_default();
    let id = signed.attribute("ID").map(|v| v.get()).unwrap_or_default();
    if id.is_empty() {
        return Err(Error::new(Code::ReferenceUriInvalid, format!("signed <{}> has no ID", signed.local_name())));
    }
    if uri.strip_prefix('#') != Some(id.as_ref()) {
        return Err(Error::new(
            Code::ReferenceUriInvalid,
            format!("Reference URI {} must be \"#{}\", the ID of the element carrying the Signature", quote(&uri), id),
        ));
    }
    let ref_parts = children(*reference)?;
    let (transforms, digest_method, digest_value) = match ref_parts.as_slice() {
        [t, m, v] if t.is(ns::DSIG, "Transforms") => (Some(*t), *m, *v),
        [m, v] => (None, *m, *v),
        _ => return Err(malformed("Reference must contain Transforms, DigestMethod and DigestValue")),
    };
    if !digest_method.is(ns::DSIG, "DigestMethod") || !digest_value.is(ns::DSIG, "DigestValue") {
        return Err(malformed("Reference must contain Transforms, DigestMethod and DigestValue"));
    }
    let reference_c14n = reference_transforms(transforms)?;
    let ref_digest = digest_algorithm(digest_method, allow_sha1)?;
    let expected_digest = base64_text(digest_value, "DigestValue")?;
    let signature_bytes = base64_text(signature_value, "SignatureValue")?;
    if signature_bytes.is_empty() {
        return Err(Error::new(Code::SignatureInvalid, "SignatureValue is empty"));
    }

    // ---- SignedInfo signature first: a forgery fails here before the larger reference C14N ----
    let info_bytes = c14n::canonicalize(doc, signed_info, None, info_c14n.mode, &info_c14n.prefixes)
        .map_err(|e| Error::new(Code::Internal, format!("SignedInfo canonicalization failed: {e}")))?;
    let key = verify_signature_value(&info_bytes, &signature_bytes, key_kind, sig_digest, keys)?;

    // ---- then the Reference digest over the signed element minus this signature ----
    let referenced = c14n::canonicalize(doc, signed, Some(signature), reference_c14n.mode, &reference_c14n.prefixes)
        .map_err(|e| Error::new(Code::Internal, format!("reference canonicalization failed: {e}")))?;
    let actual = ref_digest.compute(&referenced);
    if actual.len() != expected_digest.len() || !openssl::memcmp::eq(&actual, &expected_digest) {
        return Err(Error::new(
            Code::DigestMismatch,
            format!(
                "digest of <{}> {} does not match DigestValue: content changed after signing",
                signed.local_name(),
                quote(&id)
            ),
        ));
    }
    Ok(Verified { element: signed, key })
}

/// Proof that a Redirect-binding query signature (bindings 3.4.4.1) verified with a tenant key
/// over the octets it names. Only [`verify_detached`] constructs it.
#[derive(Clone, Copy, Debug)]
pub struct QueryVerified(());

/// Verifies `signature` (raw bytes: PKCS#1 v1.5 for RSA, r || s for ECDSA, as XML-DSig encodes
/// them) over `octets` with the algorithm `sig_alg` names: the same allow-list, SHA-1 opt-in and
/// tenant keys as an XML signature.
pub fn verify_detached(
    octets: &[u8],
    sig_alg: &str,
    signature: &[u8],
    keys: &[TrustedKey],
    allow_sha1: bool,
) -> Result<QueryVerified, Error> {
    let (kind, digest) = algorithm_by_uri(sig_alg, allow_sha1)?;
    if signature.is_empty() {
        return Err(Error::new(Code::SignatureInvalid, "Signature is empty"));
    }
    verify_signature_value(octets, signature, kind, digest, keys)?;
    Ok(QueryVerified(()))
}

/// Real IdPs list one or two (`xs`, `xsd`); each costs a lookup per canonicalized element.
const MAX_INCLUSIVE_PREFIXES: usize = 16;

fn malformed(message: &str) -> Error {
    Error::new(Code::SignatureMalformed, message)
}

/// Element children of a signature-profile element; any non-blank text or processing
/// instruction between them is refused.
fn children<'a>(node: Node<'a>) -> Result<Vec<Node<'a>>, Error> {
    let mut out = Vec::with_capacity(4);
    for child in node.children() {
        match child.kind() {
            NodeKind::Element => out.push(child),
            NodeKind::Text if xml::is_blank(child.text()) => {}
            NodeKind::Comment => {}
            _ => return Err(malformed(&format!("unexpected content inside <{}>", node.local_name()))),
        }
    }
    Ok(out)
}

fn algorithm<'a>(node: Node<'a>) -> Result<std::borrow::Cow<'a, str>, Error> {
    node.attribute("Algorithm")
        .map(|v| v.get())
        .ok_or_else(|| malformed(&format!("<{}> has no Algorithm", node.local_name())))
}

/// CanonicalizationMethod or a C14N Transform. `unsupported` is the code for a foreign algorithm.
fn c14n_of(method: Node<'_>, unsupported: Code) -> Result<C14n<'_>, Error> {
    let algorithm = algorithm(method)?;
    let inner = children(method)?;
    match algorithm.as_ref() {
        alg::EXC_C14N_10 => {
            let prefixes = match inner.as_slice() {
                [] => Vec::new(),
                [list] if list.is(ns::EXC_C14N, "InclusiveNamespaces") && list.elements().next().is_none() => {
                    let value = list
                        .attribute("PrefixList")
                        .ok_or_else(|| malformed("InclusiveNamespaces without PrefixList"))?;
                    match value.get() {
                        std::borrow::Cow::Borrowed(text) => {
                            let prefixes: Vec<&str> = text.split_ascii_whitespace().collect();
                            // Each listed prefix costs a namespace lookup per element.
                            if prefixes.len() > MAX_INCLUSIVE_PREFIXES {
                                return Err(Error::new(
                                    unsupported,
                                    format!("PrefixList has more than {MAX_INCLUSIVE_PREFIXES} prefixes"),
                                ));
                            }
                            prefixes
                        }
                        std::borrow::Cow::Owned(_) => return Err(malformed("PrefixList built from references")),
                    }
                }
                _ => return Err(Error::new(unsupported, "unexpected parameters on exclusive C14N")),
            };
            Ok(C14n { mode: C14nMode::Exclusive10, prefixes })
        }
        alg::C14N_10 if inner.is_empty() => Ok(C14n { mode: C14nMode::Inclusive10, prefixes: Vec::new() }),
        other => Err(Error::new(
            unsupported,
            format!(
                "canonicalization {} is not allowed (exclusive or inclusive C14N 1.0 without comments only)",
                quote(other)
            ),
        )),
    }
}

fn signature_algorithm(method: Node<'_>, allow_sha1: bool) -> Result<(KeyKind, Digest), Error> {
    if !children(method)?.is_empty() {
        // HMACOutputLength and friends: truncated-HMAC attacks (CVE-2009-0217).
        return Err(Error::new(Code::SignatureAlgorithmUnsupported, "SignatureMethod must not have parameters"));
    }
    algorithm_by_uri(&algorithm(method)?, allow_sha1)
}

/// The one allow-list of signature algorithms, for XML signatures and the Redirect binding's
/// `SigAlg` alike.
fn algorithm_by_uri(algorithm: &str, allow_sha1: bool) -> Result<(KeyKind, Digest), Error> {
    let chosen = match algorithm {
        alg::RSA_SHA256 => (KeyKind::Rsa, Digest::Sha256),
        alg::RSA_SHA384 => (KeyKind::Rsa, Digest::Sha384),
        alg::RSA_SHA512 => (KeyKind::Rsa, Digest::Sha512),
        alg::ECDSA_SHA256 => (KeyKind::Ecdsa, Digest::Sha256),
        alg::ECDSA_SHA384 => (KeyKind::Ecdsa, Digest::Sha384),
        alg::ECDSA_SHA512 => (KeyKind::Ecdsa, Digest::Sha512),
        alg::RSA_SHA1 => (KeyKind::Rsa, Digest::Sha1),
        alg::ECDSA_SHA1 => (KeyKind::Ecdsa, Digest::Sha1),
        other => {
            // HMAC would let anyone who knows the "key" (here: nobody, or the public cert)
            // forge; DSA and unknown URIs are simply outside the profile.
            return Err(Error::new(
                Code::SignatureAlgorithmUnsupported,
                format!("signature algorithm {} is not allowed (RSA or ECDSA with SHA-2)", quote(other)),
            ));
        }
    };
    if chosen.1 == Digest::Sha1 && !allow_sha1 {
        return Err(Error::new(
            Code::Sha1NotAllowed,
            format!("signature algorithm {} uses SHA-1; set allow_sha1 for this tenant to accept it", quote(algorithm)),
        ));
    }
    Ok(chosen)
}

fn digest_algorithm(method: Node<'_>, allow_sha1: bool) -> Result<Digest, Error> {
    if !children(method)?.is_empty() {
        return Err(malformed("DigestMethod must not have parameters"));
    }
    let algorithm = algorithm(method)?;
    let digest = match algorithm.as_ref() {
        alg::SHA256 => Digest::Sha256,
        alg::SHA384 => Digest::Sha384,
        alg::SHA512 => Digest::Sha512,
        alg::SHA1 => Digest::Sha1,
        other => {
            return Err(Error::new(
                Code::DigestAlgorithmUnsupported,
                format!("digest algorithm {} is not allowed (SHA-256/384/512)", quote(other)),
            ))
        }
    };
    if digest == Digest::Sha1 && !allow_sha1 {
        return Err(Error::new(
            Code::Sha1NotAllowed,
            "digest algorithm is SHA-1; set allow_sha1 for this tenant to accept it",
        ));
    }
    Ok(digest)
}

/// The Reference's transforms: exactly one enveloped-signature, then at most one C14N. Without a
/// C14N transform the node-set is serialized with inclusive C14N 1.0 (XML-DSig 4.3.3.2).
fn reference_transforms(transforms: Option<Node<'_>>) -> Result<C14n<'_>, Error> {
    let list = match transforms {
        Some(t) => children(t)?,
        None => Vec::new(),
    };
    let mut enveloped = false;
    let mut c14n: Option<C14n<'_>> = None;
    for transform in &list {
        if !transform.is(ns::DSIG, "Transform") {
            return Err(malformed("Transforms may only contain Transform elements"));
        }
        let algorithm = algorithm(*transform)?;
        match algorithm.as_ref() {
            alg::ENVELOPED if !enveloped && c14n.is_none() && children(*transform)?.is_empty() => enveloped = true,
            alg::EXC_C14N_10 | alg::C14N_10 if c14n.is_none() => {
                c14n = Some(c14n_of(*transform, Code::TransformUnsupported)?);
            }
            alg::ENVELOPED | alg::EXC_C14N_10 | alg::C14N_10 => {
                return Err(Error::new(Code::TransformUnsupported, "transforms repeated or out of order"))
            }
            other => {
                // XSLT and XPath transforms execute attacker-chosen programs or select
                // attacker-chosen nodes; none are needed for SAML.
                return Err(Error::new(
                    Code::TransformUnsupported,
                    format!("transform {} is not allowed (enveloped-signature and C14N only)", quote(other)),
                ));
            }
        }
    }
    if !enveloped {
        return Err(Error::new(Code::TransformUnsupported, "the enveloped-signature transform is required"));
    }
    Ok(c14n.unwrap_or(C14n { mode: C14nMode::Inclusive10, prefixes: Vec::new() }))
}

fn base64_text(node: Node<'_>, what: &str) -> Result<Vec<u8>, Error> {
    let text = xml::text_value(node).ok_or_else(|| malformed(&format!("{what} must be text")))?;
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(&compact).map_err(|_| malformed(&format!("{what} is not base64")))
}

/// RSASSA-PKCS1-v1_5 verification (RFC 8017 section 8.2.2): recover the encoded message with
/// the public key (OpenSSL checks the 00 01 FF..FF 00 padding) and compare it, whole, with the
/// DigestInfo we expect. Comparing the full encoding rather than parsing the DigestInfo is what
/// keeps out Bleichenbacher's 2006 forgeries against lenient parsers.
fn rsa_pkcs1_v15_verify(rsa: &Rsa<Public>, digest: Digest, hashed: &[u8], signature: &[u8]) -> bool {
    let size = rsa.size() as usize;
    if signature.len() != size {
        return false;
    }
    let mut recovered = vec![0u8; size];
    #[cfg(test)]
    super::tally::add(|tally| tally.rsa_checks += 1);
    let Ok(length) = rsa.public_decrypt(signature, &mut recovered, Padding::PKCS1) else {
        return false;
    };
    let prefix = digest.digest_info_prefix();
    let recovered = &recovered[..length];
    recovered.len() == prefix.len() + hashed.len()
        && openssl::memcmp::eq(&recovered[..prefix.len()], prefix)
        && openssl::memcmp::eq(&recovered[prefix.len()..], hashed)
}

/// The cost of [`verify_signature_value`] failing with every RSA key of the tenant, for a result
/// thrown away: what an unauthenticated decryption failure spends in place of a signature check
/// it never reached (`equalize.rs`).
pub(super) fn spend_signature_check(signed_info: &[u8], keys: &[TrustedKey]) {
    let hashed = Digest::Sha256.compute(signed_info);
    for key in keys {
        if let KeyMaterial::Rsa(rsa) = &key.material {
            // Below every modulus of this size (whose top byte is at least 0x80): a full
            // public-key operation, then a padding check that fails.
            let decoy = vec![0x5a; rsa.size() as usize];
            std::hint::black_box(rsa_pkcs1_v15_verify(rsa, Digest::Sha256, &hashed, &decoy));
        }
    }
    drop(openssl::error::ErrorStack::get());
}

fn verify_signature_value(
    signed_info: &[u8],
    signature: &[u8],
    kind: KeyKind,
    digest: Digest,
    keys: &[TrustedKey],
) -> Result<usize, Error> {
    let candidates: Vec<(usize, &TrustedKey)> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| match kind {
            KeyKind::Rsa => k.is_rsa(),
            KeyKind::Ecdsa => k.is_ec(),
        })
        .collect();
    if candidates.is_empty() {
        return Err(Error::new(
            Code::SignatureInvalid,
            format!("signed with {kind:?} but the tenant has no {kind:?} key configured"),
        ));
    }
    let hashed = digest.compute(signed_info);
    let ecdsa = match kind {
        KeyKind::Rsa => None,
        // XML-DSig carries ECDSA signatures as r || s (RFC 4050 / XML-DSig 1.1 section 6.4.3).
        KeyKind::Ecdsa => {
            if signature.len() % 2 != 0 {
                return Err(Error::new(Code::SignatureInvalid, "ECDSA SignatureValue has odd length"));
            }
            let (r, s) = signature.split_at(signature.len() / 2);
            let parsed = BigNum::from_slice(r)
                .and_then(|r| BigNum::from_slice(s).map(|s| (r, s)))
                .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
                .map_err(|_| Error::new(Code::SignatureInvalid, "ECDSA SignatureValue is not r || s"))?;
            Some(parsed)
        }
    };
    for (index, key) in &candidates {
        let verified = match (&key.material, &ecdsa) {
            (KeyMaterial::Rsa(rsa), _) => rsa_pkcs1_v15_verify(rsa, digest, &hashed, signature),
            (KeyMaterial::Ec(ec), Some(sig)) => sig.verify(&hashed, ec).unwrap_or(false),
            (KeyMaterial::Ec(_), None) => false,
        };
        if verified {
            return Ok(*index);
        }
    }
    // A rejected ECDSA signature (r or s zero or past the order) leaves EC_R_BAD_SIGNATURE in
    // OpenSSL's per-thread error queue, and rust-openssl drains it only for negative returns.
    // This thread also runs TLS connections: a stale error there makes the next would-block
    // read fail as fatal and drops a connection other callers share. Leave the queue empty.
    drop(openssl::error::ErrorStack::get());
    Err(Error::new(
        Code::SignatureInvalid,
        format!("SignatureValue does not verify with any of the tenant's {} configured key(s)", candidates.len()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs `encoded` (an EMSA-PKCS1-v1_5 payload) with a fresh key: 00 01 FF.. 00 || encoded.
    fn raw_sign(encoded: &[u8]) -> (Rsa<Public>, Vec<u8>) {
        let private = Rsa::generate(2048).unwrap();
        let mut signature = vec![0u8; private.size() as usize];
        let n = private.private_encrypt(encoded, &mut signature, Padding::PKCS1).unwrap();
        signature.truncate(n);
        let public = Rsa::from_public_components(private.n().to_owned().unwrap(), private.e().to_owned().unwrap());
        (public.unwrap(), signature)
    }

    #[test]
    fn pkcs1_v15_accepts_only_the_exact_digest_info() {
        let hashed = Digest::Sha256.compute(b"<SignedInfo/>");
        let good = [Digest::Sha256.digest_info_prefix(), &hashed].concat();
        let (key, signature) = raw_sign(&good);
        assert!(rsa_pkcs1_v15_verify(&key, Digest::Sha256, &hashed, &signature));
        assert!(!rsa_pkcs1_v15_verify(&key, Digest::Sha256, &Digest::Sha256.compute(b"other"), &signature));
        assert!(!rsa_pkcs1_v15_verify(&key, Digest::Sha256, &hashed, &signature[1..]), "short signature");

        // The hash without its DigestInfo, or under another algorithm's header, is no signature.
        let (key, bare) = raw_sign(&hashed);
        assert!(!rsa_pkcs1_v15_verify(&key, Digest::Sha256, &hashed, &bare));
        let sha1 = Digest::Sha1.compute(b"<SignedInfo/>");
        let (key, mislabelled) = raw_sign(&[Digest::Sha1.digest_info_prefix(), &sha1].concat());
        assert!(rsa_pkcs1_v15_verify(&key, Digest::Sha1, &sha1, &mislabelled));
        assert!(!rsa_pkcs1_v15_verify(&key, Digest::Sha256, &sha1, &mislabelled));
        // Trailing garbage after the hash (the 2006 forgery shape) fails the length check.
        let (key, padded) = raw_sign(&[&good[..], b"garbage"].concat());
        assert!(!rsa_pkcs1_v15_verify(&key, Digest::Sha256, &hashed, &padded));
    }

    #[test]
    fn rejected_signatures_leave_no_openssl_error_behind() {
        let ec = crate::testing::idp::TestIdp::generate_ec().unwrap();
        let rsa = crate::testing::idp::TestIdp::generate().unwrap();
        let keys = [ec.certificate_pem(), rsa.certificate_pem()]
            .iter()
            .map(|pem| TrustedKey::from_certificate_text(pem).unwrap())
            .collect::<Vec<_>>();
        drop(openssl::error::ErrorStack::get());
        let zero = [0u8; 64];
        let order_and_more = [0xff_u8; 64];
        for (signature, kind) in [
            (&zero[..], KeyKind::Ecdsa),
            (&order_and_more[..], KeyKind::Ecdsa),
            (&[1u8; 256][..], KeyKind::Rsa),
            (&[0xff_u8; 256][..], KeyKind::Rsa),
        ] {
            let result = verify_signature_value(b"<SignedInfo/>", signature, kind, Digest::Sha256, &keys);
            assert_eq!(result.unwrap_err().code, Code::SignatureInvalid);
            let left = openssl::error::ErrorStack::get();
            assert!(left.errors().is_empty(), "{kind:?}: OpenSSL errors left queued: {left}");
        }
    }
}
