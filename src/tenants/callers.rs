//! Caller authentication: static bearer tokens (stored only as SHA-256 hashes, compared in
//! constant time) and/or client certificates from mutual TLS (pinned by SHA-256 fingerprint),
//! each caller optionally restricted to some tenants. Off when no `[[callers]]` are configured
//! and mutual TLS is off (the demo); when on, validation, tenant views and metrics all require a
//! known caller (health and readiness stay open for probes).

use crate::saml::{Code, Error};

/// The verified client certificate of a connection, as callers are identified callers by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// SHA-256 of the leaf certificate's DER encoding (what `openssl x509 -fingerprint -sha256`
    /// prints).
    pub sha256: [u8; 32],
}

#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    token_sha256: Option<[u8; 32]>,
    client_certificate_sha256: Option<[u8; 32]>,
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

/// What one request presented.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header (HTTP) or metadata entry (gRPC).
    pub authorization: Option<&'a str>,
    /// The connection's verified client certificate (mutual TLS).
    pub client_certificate: Option<ClientCertificate>,
}

#[derive(Clone, Debug, Default)]
pub struct Callers {
    callers: Vec<Caller>,
    /// `[server.tls] client_ca_file` is set: every guarded request needs a client certificate.
    require_client_certificate: bool,
}

impl Callers {
    pub fn new(callers: Vec<Caller>, require_client_certificate: bool) -> Callers {
        Callers { callers, require_client_certificate }
    }

    pub fn enabled(&self) -> bool {
        !self.callers.is_empty() || self.require_client_certificate
    }

    /// Authenticates a request and, when a tenant is named, checks that the caller may use it.
    /// `Ok(None)` when authentication is off, or when mutual TLS alone is on (any certificate
    /// issued by the client CA is a caller then).
    pub fn authorize(&self, credentials: &Credentials<'_>, tenant: Option<&str>) -> Result<Option<&Caller>, Error> {
        if !self.enabled() {
            return Ok(None);
        }
        if self.require_client_certificate && credentials.client_certificate.is_none() {
            return Err(Error::new(Code::Unauthenticated, "a client certificate is required (mutual TLS)"));
        }
        if self.callers.is_empty() {
            return Ok(None);
        }
        let presented_cert = credentials.client_certificate.map(|c| c.sha256);
        let caller = match credentials.authorization {
            Some(header) => {
                let token = bearer(header)
                    .ok_or_else(|| Error::new(Code::Unauthenticated, "Authorization must be `Bearer <token>`"))?;
                let digest = openssl::sha::sha256(token.as_bytes());
                // Compare against every caller, in constant time per comparison, without
                // stopping early.
                let mut matched = None;
                for caller in &self.callers {
                    if caller.token_sha256.is_some_and(|known| openssl::memcmp::eq(&digest, &known)) {
                        matched = Some(caller);
                    }
                }
                let caller = matched.ok_or_else(|| Error::new(Code::Unauthenticated, "unknown bearer token"))?;
                // A token bound to a certificate is useless without it: a leaked token alone
                // does not authenticate.
                if let Some(required) = caller.client_certificate_sha256 {
                    if !presented_cert.is_some_and(|cert| openssl::memcmp::eq(&cert, &required)) {
                        return Err(Error::new(
                            Code::Unauthenticated,
                            "this caller's token is only valid with its client certificate",
                        ));
                    }
                }
                caller
            }
            None => {
                let cert = presented_cert.ok_or_else(|| {
                    Error::new(
                        Code::Unauthenticated,
                        "an Authorization: Bearer token or a client certificate is required",
                    )
                })?;
                // Certificate-only callers; a caller that also has a token must send it.
                self.callers
                    .iter()
                    .find(|c| c.token_sha256.is_none() && c.client_certificate_sha256 == Some(cert))
                    .ok_or_else(|| Error::new(Code::Unauthenticated, "client certificate is not a configured caller"))?
            }
        };
        if let Some(tenant) = tenant {
            if !caller.may_use(tenant) {
                // Also for tenants that do not exist: a restricted caller learns nothing about
                // which other tenants are configured.
                return Err(Error::new(Code::Forbidden, format!("caller {:?} may not use this tenant", caller.name)));
            }
        }
        Ok(Some(caller))
    }
}

fn bearer(header: &str) -> Option<&str> {
    header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
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
