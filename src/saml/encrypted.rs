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
//! assertion's own signature answers the one `decryption_failed`; the SAML checks after it are
//! only reachable with an assertion the IdP signed.

use super::checks;
use super::claims::Validated;
use super::decrypt::{self, Keys};
use super::dsig;
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
    let plaintext = decrypt::decrypt(outer.encrypted, &keys)?;
    let detailed = verified_response.is_some() || plaintext.authenticated;
    let hide = |error: Error| if detailed { error } else { decrypt::failed() };

    let inner = xml::parse_within(&plaintext.bytes, limits.max_nodes).map_err(|_| decrypt::failed())?;
    let inventory = structure::scan(&inner, limits).map_err(|_| decrypt::failed())?;
    let root = inventory.root;
    let one_assertion = root.is(ns::ASSERTION, "Assertion")
        && inventory.assertions.as_slice() == [root]
        && inventory.encrypted_assertions.is_empty();
    if !one_assertion {
        return Err(decrypt::failed());
    }
    let (_, assertion_signature) =
        structure::signature_slots(&inventory.signatures, None, Some(root)).map_err(|_| decrypt::failed())?;
    let verified_assertion = match assertion_signature {
        Some(signature) => Some(dsig::verify(&inner, root, signature, &policy.keys, policy.allow_sha1).map_err(hide)?),
        None => None,
    };
    let signed = match (verified_assertion, verified_response) {
        (Some(own), _) => SignedAssertion::from_own(own),
        (None, Some(response)) => SignedAssertion::from_encrypted(response, outer.encrypted, root)
            .ok_or_else(|| Error::new(Code::SignatureMissing, "the Response signature does not cover the Assertion"))?,
        (None, None) => {
            return Err(hide(Error::new(
                Code::SignatureMissing,
                "neither the Response nor the decrypted Assertion is signed",
            )))
        }
    };
    // The EncryptedIDs and EncryptedAttributes of the decrypted assertion join the document's
    // count now that the IdP's signature vouches for their markup: counted from an
    // unauthenticated plaintext, the refusal would tell a CBC attacker what it decrypted to.
    context.rsa.count(decrypt::encrypted_keys(&inventory.encrypted))?;
    let envelope = checks::envelope(Some(outer.response), verified_response, verified_assertion.is_some(), true);
    checks::assertion(&signed, false, context, envelope)
}
