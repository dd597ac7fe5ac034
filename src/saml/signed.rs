//! The proof that an assertion's content is covered by a verified signature. Claims and every
//! assertion check read the assertion only through [`SignedAssertion`], which can only be made
//! from a [`dsig::Verified`].

use super::dsig;
use super::xml::Node;

/// The assertion whose content is covered by a verified signature: either its own, or the
/// enclosing Response's (of which it is a direct child). Claims are only read through this.
pub struct SignedAssertion<'a> {
    node: Node<'a>,
    /// The index, among the tenant's keys, of the key whose signature covers the assertion.
    key: usize,
}

impl<'a> SignedAssertion<'a> {
    pub(super) fn from_own(verified: dsig::Verified<'a>) -> SignedAssertion<'a> {
        SignedAssertion { node: verified.element(), key: verified.key_index() }
    }

    pub(super) fn from_response(verified: dsig::Verified<'a>, assertion: Node<'a>) -> Option<SignedAssertion<'a>> {
        (assertion.parent() == Some(verified.element()))
            .then_some(SignedAssertion { node: assertion, key: verified.key_index() })
    }

    /// The decrypted Assertion `decrypted` of `encrypted`, covered by the verified Response
    /// signature because `encrypted` (the EncryptedAssertion holding its ciphertext and key) is
    /// a direct child of the verified Response: the signature fixes the ciphertext, and the
    /// ciphertext under the SP's key fixes the plaintext.
    pub(super) fn from_encrypted<'r>(
        verified: dsig::Verified<'r>,
        encrypted: Node<'r>,
        decrypted: Node<'a>,
    ) -> Option<SignedAssertion<'a>> {
        let covered = encrypted.parent() == Some(verified.element())
            && encrypted.is(super::ns::ASSERTION, "EncryptedAssertion")
            && decrypted.is(super::ns::ASSERTION, "Assertion");
        covered.then_some(SignedAssertion { node: decrypted, key: verified.key_index() })
    }

    pub fn node(&self) -> Node<'a> {
        self.node
    }

    pub fn key_index(&self) -> usize {
        self.key
    }
}
