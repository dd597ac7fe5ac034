//! Caller authentication: static bearer tokens, stored only as SHA-256 hashes in the
//! configuration and compared in constant time, each optionally restricted to some tenants.
//! Off when no `[[callers]]` are configured (the demo); when on, validation, tenant views and
//! metrics all require a valid token (health and readiness stay open for probes).

use crate::saml::{Code, Error};

#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    token_sha256: [u8; 32],
    /// `None`: every tenant.
    tenants: Option<Vec<String>>,
}

impl Caller {
    pub fn new(name: String, token_sha256: [u8; 32], tenants: Option<Vec<String>>) -> Caller {
        Caller { name, token_sha256, tenants }
    }

    pub fn may_use(&self, tenant: &str) -> bool {
        self.tenants.as_ref().is_none_or(|allowed| allowed.iter().any(|t| t == tenant))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Callers {
    callers: Vec<Caller>,
}

impl Callers {
    pub fn new(callers: Vec<Caller>) -> Callers {
        Callers { callers }
    }

    pub fn enabled(&self) -> bool {
        !self.callers.is_empty()
    }

    /// Checks an `Authorization` header value (HTTP header or gRPC metadata) and, when a
    /// tenant is named, that the caller may use it. `Ok(None)` when authentication is off.
    pub fn authorize(&self, authorization: Option<&str>, tenant: Option<&str>) -> Result<Option<&Caller>, Error> {
        if !self.enabled() {
            return Ok(None);
        }
        let token = authorization
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Error::new(Code::Unauthenticated, "an Authorization: Bearer token is required"))?;
        let digest = openssl::sha::sha256(token.as_bytes());
        // Compare against every caller, in constant time per comparison, without stopping early.
        let mut matched = None;
        for caller in &self.callers {
            if openssl::memcmp::eq(&digest, &caller.token_sha256) {
                matched = Some(caller);
            }
        }
        let caller = matched.ok_or_else(|| Error::new(Code::Unauthenticated, "unknown bearer token"))?;
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
