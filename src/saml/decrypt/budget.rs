//! The per-document bound on RSA private-key operations (`Limits::max_rsa_decryptions`).
//!
//! Each EncryptedKey is tried with each of the tenant's decryption keys, one RSA private
//! operation apiece (about 0.25 ms for RSA-2048), and SAML core 6.2 lets any number of
//! EncryptedKeys stand beside a KeyInfo-less EncryptedData: before this bound, one unsigned
//! request could buy a few hundred of them. Every encrypted element of a document is counted
//! before the first key is tried. The count depends only on markup the sender wrote in the
//! clear (or, inside a decrypted assertion, markup the IdP signed), never on what anything
//! decrypts to, so the refusal is no decryption oracle.

use std::cell::Cell;

use crate::saml::error::{Code, Error};
use crate::saml::policy::Limits;

/// What one document may still spend on RSA decryption.
pub struct RsaBudget {
    limit: usize,
    /// The tenant's decryption keys: each EncryptedKey may be tried with every one.
    keys: usize,
    /// EncryptedKeys counted so far: the received document's, then a decrypted assertion's.
    counted: Cell<usize>,
    /// EncryptedKeys whose RSA operations have been started.
    spent: Cell<usize>,
}

impl RsaBudget {
    pub fn new(limits: &Limits, keys: usize) -> RsaBudget {
        RsaBudget { limit: limits.max_rsa_decryptions, keys, counted: Cell::new(0), spent: Cell::new(0) }
    }

    /// Adds `encrypted_keys` (what `decrypt::encrypted_keys` finds) to the document's count, and
    /// refuses the document once everything counted, times the tenant's keys, exceeds the limit.
    pub fn count(&self, encrypted_keys: usize) -> Result<(), Error> {
        self.counted.set(self.counted.get().saturating_add(encrypted_keys));
        self.check(self.counted.get())
    }

    /// Takes the RSA operations of `encrypted_keys` EncryptedKeys before they are tried. The
    /// count above has already refused any document that could get here over the limit; this
    /// keeps the bound even for an element the count did not see.
    pub(super) fn spend(&self, encrypted_keys: usize) -> Result<(), Error> {
        self.spent.set(self.spent.get().saturating_add(encrypted_keys));
        self.check(self.spent.get())
    }

    fn check(&self, encrypted_keys: usize) -> Result<(), Error> {
        let operations = encrypted_keys.saturating_mul(self.keys);
        if operations <= self.limit {
            return Ok(());
        }
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        Err(Error::new(
            Code::XmlTooComplex,
            format!(
                "the document needs {operations} RSA operations ({encrypted_keys} EncryptedKey{} × {} key{}), more than max_rsa_decryptions = {}",
                plural(encrypted_keys),
                self.keys,
                plural(self.keys),
                self.limit
            ),
        ))
    }
}
