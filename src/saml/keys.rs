//! Trusted signing keys. A key is only ever a configured tenant certificate; the document's own
//! KeyInfo is never a source of trust (accepting it is the classic "KeyInfo-supplied key" bypass).

use super::hex;
use base64::Engine as _;
use openssl::ec::EcKey;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use serde::Serialize;

/// A certificate's public key, parsed once at configuration load (parsing costs about five RSA
/// verifications, so it must never happen per request).
#[derive(Clone)]
pub struct TrustedKey {
    /// The key as the low-level RSA / EC object, extracted once: verifying through these skips
    /// OpenSSL 3's per-call algorithm fetch in EVP_DigestVerifyInit (about 5 % of the server's
    /// CPU under load, BENCHMARKS.md).
    pub(crate) material: KeyMaterial,
    pub info: KeyInfo,
    /// The certificate's notAfter, for expiry warnings (SAML pins keys; dates are not enforced).
    pub not_after: Option<chrono::DateTime<chrono::Utc>>,
}

/// Public facts about a trusted certificate, safe to show to operators.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KeyInfo {
    pub sha256_fingerprint: String,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    /// "RSA-2048", "EC-P-256", ...
    pub key_type: String,
    /// RSA modulus size or EC field size in bits.
    pub bits: u32,
    /// Where the configuration took it from ("inline", "file:…", "metadata:…").
    pub origin: String,
}

#[derive(Clone)]
pub(crate) enum KeyMaterial {
    Rsa(Rsa<Public>),
    Ec(EcKey<Public>),
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey").field("info", &self.info).finish()
    }
}

impl TrustedKey {
    /// Reads a certificate as an operator pastes it: PEM, or the bare base64 DER that Entra's
    /// "Certificate (Base64)" download and help-desk "X.509 Certificate" boxes contain (line
    /// breaks and surrounding whitespace allowed).
    pub fn from_certificate_text(text: &str) -> Result<TrustedKey, String> {
        let trimmed = text.trim();
        let cert = if trimmed.starts_with("-----BEGIN") {
            X509::from_pem(trimmed.as_bytes()).map_err(|e| format!("not a PEM certificate: {}", first_line(&e)))?
        } else {
            let compact: String = trimmed.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            if compact.is_empty() {
                return Err("empty certificate".into());
            }
            let der = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                // Not the decoder's reason: it quotes a byte of the text, which may come from a
                // file that is not the tenant's own.
                .map_err(|_| "neither PEM nor base64 DER".to_string())?;
            X509::from_der(&der)
                .map_err(|e| format!("base64 decodes but is not a DER certificate: {}", first_line(&e)))?
        };
        TrustedKey::from_x509(&cert)
    }

    pub fn from_x509(cert: &X509) -> Result<TrustedKey, String> {
        let key = cert.public_key().map_err(|e| format!("unreadable public key: {}", first_line(&e)))?;
        let (key_type, bits, material) = match key.id() {
            Id::RSA => {
                let rsa = key.rsa().map_err(|e| format!("unreadable RSA key: {}", first_line(&e)))?;
                (format!("RSA-{}", key.bits()), key.bits(), KeyMaterial::Rsa(rsa))
            }
            Id::EC => {
                let ec = key.ec_key().map_err(|e| format!("unreadable EC key: {}", first_line(&e)))?;
                let curve = key
                    .ec_key()
                    .ok()
                    .and_then(|ec| ec.group().curve_name())
                    .and_then(|nid| nid.short_name().ok().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into());
                (format!("EC-{curve}"), key.bits(), KeyMaterial::Ec(ec))
            }
            other => return Err(format!("unsupported key type {other:?}: only RSA and EC keys can sign SAML here")),
        };
        let fingerprint =
            cert.digest(MessageDigest::sha256()).map_err(|e| format!("cannot fingerprint: {}", first_line(&e)))?;
        let subject = cert
            .subject_name()
            .entries()
            .map(|entry| {
                let name = entry.object().nid().short_name().unwrap_or("?");
                let value = entry.data().to_string().unwrap_or_default();
                format!("{name}={value}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let not_after = openssl::asn1::Asn1Time::from_unix(0)
            .ok()
            .and_then(|epoch| epoch.diff(cert.not_after()).ok())
            .and_then(|diff| chrono::DateTime::from_timestamp(i64::from(diff.days) * 86_400 + i64::from(diff.secs), 0));
        Ok(TrustedKey {
            material,
            not_after,
            info: KeyInfo {
                sha256_fingerprint: hex::lower(&fingerprint),
                subject,
                not_before: cert.not_before().to_string(),
                not_after: cert.not_after().to_string(),
                key_type,
                bits,
                origin: String::new(),
            },
        })
    }

    /// Labels where the key came from (shown to operators, never used for trust decisions).
    pub fn with_origin(mut self, origin: &str) -> TrustedKey {
        self.info.origin = origin.to_string();
        self
    }

    pub fn is_rsa(&self) -> bool {
        matches!(self.material, KeyMaterial::Rsa(_))
    }

    pub fn is_ec(&self) -> bool {
        matches!(self.material, KeyMaterial::Ec(_))
    }
}

fn first_line(error: &openssl::error::ErrorStack) -> String {
    error.errors().first().map_or_else(|| "unknown error".into(), |e| e.reason().unwrap_or("unknown").to_string())
}
