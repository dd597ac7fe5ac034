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
use openssl::hash::{hash, MessageDigest};
use openssl::sign::Verifier;

use super::c14n;
use super::error::{quote, Code, Error};
use super::keys::TrustedKey;
use super::ns::{self, alg};
use super::xml::{self, C14nMode, Document, Node, NodeKind};

/// Proof that the signature carried by `element` verified with a tenant key and that its single
/// Reference covers `element` (minus the signature itself). Only this module can construct it,
/// so claims can only be read from an element that went through [`verify`].
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    element: Node<'a>,
}

impl<'a> Verified<'a> {
    pub fn element(self) -> Node<'a> {
        self.element
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
    fn md(self) -> MessageDigest {
        match self {
            Digest::Sha1 => MessageDigest::sha1(),
            Digest::Sha256 => MessageDigest::sha256(),
            Digest::Sha384 => MessageDigest::sha384(),
            Digest::Sha512 => MessageDigest::sha512(),
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
    verify_signature_value(&info_bytes, &signature_bytes, key_kind, sig_digest, keys)?;

    // ---- then the Reference digest over the signed element minus this signature ----
    let referenced = c14n::canonicalize(doc, signed, Some(signature), reference_c14n.mode, &reference_c14n.prefixes)
        .map_err(|e| Error::new(Code::Internal, format!("reference canonicalization failed: {e}")))?;
    let actual = hash(ref_digest.md(), &referenced).map_err(|_| Error::new(Code::Internal, "digest failed"))?;
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
    Ok(Verified { element: signed })
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
    let algorithm = algorithm(method)?;
    let chosen = match algorithm.as_ref() {
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
            format!(
                "signature algorithm {} uses SHA-1; set allow_sha1 for this tenant to accept it",
                quote(&algorithm)
            ),
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

fn verify_signature_value(
    signed_info: &[u8],
    signature: &[u8],
    kind: KeyKind,
    digest: Digest,
    keys: &[TrustedKey],
) -> Result<(), Error> {
    let candidates: Vec<&TrustedKey> = keys
        .iter()
        .filter(|k| match kind {
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
    // XML-DSig carries ECDSA signatures as r || s; OpenSSL wants DER.
    let der;
    let signature = match kind {
        KeyKind::Rsa => signature,
        KeyKind::Ecdsa => {
            if signature.len() % 2 != 0 {
                return Err(Error::new(Code::SignatureInvalid, "ECDSA SignatureValue has odd length"));
            }
            let (r, s) = signature.split_at(signature.len() / 2);
            let parsed = BigNum::from_slice(r)
                .and_then(|r| BigNum::from_slice(s).map(|s| (r, s)))
                .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
                .and_then(|sig| sig.to_der())
                .map_err(|_| Error::new(Code::SignatureInvalid, "ECDSA SignatureValue is not r || s"))?;
            der = parsed;
            &der
        }
    };
    for key in &candidates {
        let verified = Verifier::new(digest.md(), &key.key)
            .and_then(|mut v| v.verify_oneshot(signature, signed_info))
            .unwrap_or(false);
        if verified {
            return Ok(());
        }
    }
    Err(Error::new(
        Code::SignatureInvalid,
        format!("SignatureValue does not verify with any of the tenant's {} configured key(s)", candidates.len()),
    ))
}
