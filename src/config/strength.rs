//! The floors every key a tenant trusts is held to, configured or fetched (NIST SP 800-131A).

use crate::saml::keys::TrustedKey;

/// Weakest RSA modulus accepted without `allow_weak_rsa_keys`.
pub(crate) const MIN_RSA_BITS: u32 = 2048;
/// Weakest RSA modulus accepted even with `allow_weak_rsa_keys`: 512-bit RSA is factored in
/// hours on rented machines (and 768-bit publicly), so it would let anyone sign as the IdP or
/// read what was encrypted to the SP.
pub(crate) const MIN_RELAXED_RSA_BITS: u32 = 1024;

/// Why each key in `keys` is too weak to trust (NIST SP 800-131A floors), for the configured
/// certificates and for every metadata load alike: a key an IdP publishes is held to the same
/// floor as one an operator pasted.
pub(crate) fn key_strength_problems(keys: &[TrustedKey], allow_weak_rsa_keys: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for key in keys {
        if key.is_ec() && !matches!(key.info.key_type.as_str(), "EC-prime256v1" | "EC-secp384r1" | "EC-secp521r1") {
            problems.push(format!(
                "certificate {} uses {}; only P-256, P-384 and P-521 are accepted",
                key.info.sha256_fingerprint, key.info.key_type
            ));
        }
        if key.is_rsa() && key.info.bits < MIN_RELAXED_RSA_BITS {
            problems.push(format!(
                "certificate {} has a {}-bit RSA key; below {MIN_RELAXED_RSA_BITS} bits is refused even with allow_weak_rsa_keys",
                key.info.sha256_fingerprint, key.info.bits
            ));
        } else if key.is_rsa() && key.info.bits < MIN_RSA_BITS && !allow_weak_rsa_keys {
            problems.push(format!(
                "certificate {} has a {}-bit RSA key; below {MIN_RSA_BITS} bits needs allow_weak_rsa_keys = true",
                key.info.sha256_fingerprint, key.info.bits
            ));
        }
    }
    problems
}
