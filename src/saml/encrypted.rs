//! The pipeline for a Response whose assertion is an EncryptedAssertion (SAML core 2.3.4, 6).
//!
//! Order matters: the Response signature (if any) is verified on the received document before
//! anything is decrypted; the plaintext is then parsed as a document of its own (inheriting
//! only the namespace declarations in scope around it, xmlenc-core1 4.5), with the same strict
//! parser, limits and inventory as any input, and judged exactly as a plain assertion.
//!
//! Where nothing authenticates the ciphertext (no verified Response signature, AES-CBC), an
//! attacker can flip ciphertext bits and watch which check fails (Jager and Somorovsky, "How
//! to break XML Encryption", CCS 2011). There, every failure up to and including the decrypted
//! assertion's own signature answers the one `decryption_failed` and does the work of the full
//! path (`equalize.rs`), so that neither the answer nor its time says which step failed; the
//! SAML checks after it are only reachable with an assertion the IdP signed.

use super::checks;
use super::claims::Validated;
use super::decrypt::{self, Keys};
use super::dsig;
use super::equalize::{self, Reached};
use super::error::{Code, Error};
use super::ns;
use super::policy::Limits;
use super::signed::SignedAssertion;
use super::structure;
use super::xml::{self, Document, Node};

/// The received document around the EncryptedAssertion.
pub(super) struct Outer<'a> {
    pub doc: &'a Document,
    /// Every ds:Signature of the received document.
    pub signatures: &'a [Node<'a>],
    pub response: Node<'a>,
    pub encrypted: Node<'a>,
}

pub(super) fn validate(outer: &Outer<'_>, limits: &Limits, context: &checks::Context<'_>) -> Result<Validated, Error> {
    let policy = context.policy;
    if outer.encrypted.parent() != Some(outer.response) {
        return Err(Error::new(
            Code::AssertionMissing,
            "the only EncryptedAssertion is not a direct child of the Response",
        ));
    }
    if policy.decryption_keys.is_empty() {
        return Err(decrypt::no_keys(outer.encrypted));
    }
    // A signature inside the EncryptedAssertion would sign the ciphertext's wrapping, which no
    // profile does: only the Response's own signature is accepted on the received document.
    let (response_signature, _) = structure::signature_slots(outer.signatures, Some(outer.response), None)?;
    let verified_response = match response_signature {
        Some(signature) => Some(dsig::verify(outer.doc, outer.response, signature, &policy.keys, policy.allow_sha1)?),
        None => None,
    };
    // Refusals that need no decryption come first: they cost no RSA operation.
    checks::response(outer.response, context)?;

    let keys =
        Keys { keys: &policy.decryption_keys, allow_pkcs1: policy.allow_rsa_pkcs1_key_transport, budget: context.rsa };
    let plaintext = match decrypt::decrypt(outer.encrypted, &keys) {
        // An unwrap or padding failure does the work of everything after it (equalize.rs).
        Err(error) if error.code == Code::DecryptionFailed && verified_response.is_none() => {
            let len = decrypt::ciphertext_len(outer.encrypted);
            equalize::settle(Reached::Unparsed { len, read: 0 }, limits, &policy.keys);
            return Err(error);
        }
        other => other?,
    };
    let detailed = verified_response.is_some() || plaintext.authenticated;
    // Unauthenticated, every failure below answers the same and costs the same.
    let fail = |reached: Reached<'_>, error: Error| {
        if detailed {
            return error;
        }
        equalize::settle(reached, limits, &policy.keys);
        decrypt::failed()
    };

    let len = plaintext.bytes.len();
    let inner = match xml::parse_measured(&plaintext.bytes, limits.max_nodes) {
        Ok(inner) => inner,
        Err(refused) => return Err(fail(Reached::Unparsed { len, read: refused.read }, decrypt::failed())),
    };
    let inventory = match structure::scan(&inner, limits) {
        Ok(inventory) => inventory,
        Err(_) => {
            let reached = inner.root().map_or(Reached::Unparsed { len, read: len }, Reached::Parsed);
            return Err(fail(reached, decrypt::failed()));
        }
    };
    let root = inventory.root;
    let one_assertion = root.is(ns::ASSERTION, "Assertion")
        && inventory.assertions.as_slice() == [root]
        && inventory.encrypted_assertions.is_empty();
    if !one_assertion {
        return Err(fail(Reached::Scanned(root), decrypt::failed()));
    }
    let (_, assertion_signature) = structure::signature_slots(&inventory.signatures, None, Some(root))
        .map_err(|_| fail(Reached::Scanned(root), decrypt::failed()))?;
    let verified_assertion = match assertion_signature {
        Some(signature) => {
            Some(dsig::verify(&inner, root, signature, &policy.keys, policy.allow_sha1).map_err(|error| {
                match error.code {
                    Code::DigestMismatch if !detailed => decrypt::failed(),
                    Code::SignatureInvalid => fail(Reached::SignatureChecked(root), error),
                    _ => fail(Reached::Scanned(root), error),
                }
            })?)
        }
        None => None,
    };
    let signed = match (verified_assertion, verified_response) {
        (Some(own), _) => SignedAssertion::from_own(own),
        (None, Some(response)) => SignedAssertion::from_encrypted(response, outer.encrypted, root)
            .ok_or_else(|| Error::new(Code::SignatureMissing, "the Response signature does not cover the Assertion"))?,
        (None, None) => {
            let missing =
                Error::new(Code::SignatureMissing, "neither the Response nor the decrypted Assertion is signed");
            return Err(fail(Reached::Scanned(root), missing));
        }
    };
    // The EncryptedIDs and EncryptedAttributes of the decrypted assertion join the document's
    // count now that the IdP's signature vouches for their markup: counted from an
    // unauthenticated plaintext, the refusal would tell a CBC attacker what it decrypted to.
    context.rsa.count(decrypt::encrypted_keys(&inventory.encrypted))?;
    let envelope = checks::envelope(Some(outer.response), verified_response, verified_assertion.is_some(), true);
    checks::assertion(&signed, false, context, envelope)
}
