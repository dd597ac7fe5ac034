//! What a replay record is keyed on, in either store.

/// SHA-256 of `issuer || 0x00 || assertion_id`: what both stores key a record on. The same
/// scope (the issuer, not the tenant), and a fixed 32 bytes whatever the document says: an IdP
/// a tenant controls could otherwise fill every replica's memory with assertion IDs of hundreds
/// of kilobytes, each kept until it expires.
pub fn replay_digest(issuer: &str, assertion_id: &str) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(issuer.as_bytes());
    hasher.update(&[0]);
    hasher.update(assertion_id.as_bytes());
    hasher.finish()
}
