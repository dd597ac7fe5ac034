//! The service provider's RSA decryption keys, parsed once at configuration load. The private
//! half never leaves this type: `Debug` and the operator view show only a fingerprint of the
//! public half.

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use serde::Serialize;

/// One SP private key that IdPs wrap content keys for (several during a key rollover).
#[derive(Clone)]
pub struct DecryptionKey {
    pub(super) key: PKey<Private>,
    pub info: DecryptionKeyInfo,
}

/// Public facts about a decryption key, safe to show to operators.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DecryptionKeyInfo {
    /// SHA-256 of the DER SubjectPublicKeyInfo of the public half (as `openssl pkey -pubout
    /// -outform DER | sha256sum` prints it).
    pub public_key_sha256: String,
    /// "RSA-2048", ...
    pub key_type: String,
    pub bits: u32,
    /// Where the configuration took it from ("file:…").
    pub origin: String,
}

impl std::fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptionKey").field("info", &self.info).finish()
    }
}

impl DecryptionKey {
    /// Reads an unencrypted PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). Errors never quote the input.
    pub fn from_pem(text: &str) -> Result<DecryptionKey, String> {
        let trimmed = text.trim();
        if !trimmed.starts_with("-----BEGIN") {
            return Err("not a PEM private key".into());
        }
        if trimmed.contains("ENCRYPTED") {
            return Err(
                "the PEM private key is passphrase-protected; store it unencrypted with file permissions".into()
            );
        }
        let key = PKey::private_key_from_pem(trimmed.as_bytes())
            .map_err(|_| "not a readable PEM private key (PKCS#8 or PKCS#1 RSA expected)".to_string())?;
        if key.id() != Id::RSA {
            return Err(format!("a {:?} key; only RSA keys can unwrap XML Encryption keys here", key.id()));
        }
        let rsa = key.rsa().map_err(|_| "unreadable RSA key".to_string())?;
        // A key whose CRT parts do not match its modulus would decrypt garbage for every login.
        if !rsa.check_key().unwrap_or(false) {
            return Err("the RSA private key is inconsistent (check_key failed)".into());
        }
        let public = key.public_key_to_der().map_err(|_| "cannot encode the public half".to_string())?;
        let digest = hash(MessageDigest::sha256(), &public).map_err(|_| "cannot fingerprint".to_string())?;
        let bits = key.bits();
        Ok(DecryptionKey {
            key,
            info: DecryptionKeyInfo {
                public_key_sha256: crate::saml::hex::lower(&digest),
                key_type: format!("RSA-{bits}"),
                bits,
                origin: String::new(),
            },
        })
    }

    /// Labels where the key came from (shown to operators, never used for decisions).
    pub fn with_origin(mut self, origin: &str) -> DecryptionKey {
        self.info.origin = origin.to_string();
        self
    }

    /// Whether `certificate` carries this key's public half.
    pub fn matches(&self, certificate: &X509) -> bool {
        match (certificate.public_key(), self.key.public_key_to_der()) {
            (Ok(public), Ok(ours)) => public.public_key_to_der().is_ok_and(|theirs| theirs == ours),
            _ => false,
        }
    }
}
