//! `[[callers]]` as configured: each caller's credentials (a bearer token stored only as its
//! SHA-256, and/or a pinned client certificate fingerprint) and the tenants it may use.
//! Checking what a request presents against them is the transport's (`transport::auth`).

#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub(crate) token_sha256: Option<[u8; 32]>,
    pub(crate) client_certificate_sha256: Option<[u8; 32]>,
    /// `None`: every tenant.
    tenants: Option<Vec<String>>,
}

impl Caller {
    /// A caller needs at least one credential; with both, a request must present both.
    pub fn new(
        name: String,
        token_sha256: Option<[u8; 32]>,
        client_certificate_sha256: Option<[u8; 32]>,
        tenants: Option<Vec<String>>,
    ) -> Caller {
        debug_assert!(token_sha256.is_some() || client_certificate_sha256.is_some());
        Caller { name, token_sha256, client_certificate_sha256, tenants }
    }

    pub fn may_use(&self, tenant: &str) -> bool {
        self.tenants.as_ref().is_none_or(|allowed| allowed.iter().any(|t| t == tenant))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Callers {
    pub(crate) callers: Vec<Caller>,
    /// `[server.tls] client_ca_file` is set: every guarded request needs a client certificate.
    pub(crate) require_client_certificate: bool,
}

impl Callers {
    pub fn new(callers: Vec<Caller>, require_client_certificate: bool) -> Callers {
        Callers { callers, require_client_certificate }
    }

    pub fn enabled(&self) -> bool {
        !self.callers.is_empty() || self.require_client_certificate
    }
}

/// Parses a SHA-256 value (a certificate fingerprint, a token hash): 64 hex digits, optionally
/// colon-separated as OpenSSL prints fingerprints.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..32).map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok()).collect();
    bytes.and_then(|b| <[u8; 32]>::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&plain), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&"ab".repeat(31)), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
        assert_eq!(parse_fingerprint(&"é".repeat(32)), None);
    }
}
