//! Caller authentication: static bearer tokens (stored only as SHA-256 hashes, compared in
//! constant time) and/or client certificates from mutual TLS (pinned by SHA-256 fingerprint),
//! each caller optionally restricted to some tenants. Off when no `[[callers]]` are configured
//! and mutual TLS is off (the demo); when on, validation, tenant views and metrics all require a
//! known caller (health and readiness stay open for probes). A request is authenticated once;
//! each tenant it names is then authorized against the caller found.

use crate::config::callers::{Caller, Callers};
use crate::saml::{Code, Error};
use crate::service::Service;

/// The verified client certificate of a connection, as callers are identified callers by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// SHA-256 of the leaf certificate's DER encoding (what `openssl x509 -fingerprint -sha256`
    /// prints).
    pub sha256: [u8; 32],
}

/// What one request presented.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header (HTTP) or metadata entry (gRPC).
    pub authorization: Option<&'a str>,
    /// The connection's verified client certificate (mutual TLS).
    pub client_certificate: Option<ClientCertificate>,
}

/// Who a request was authenticated as: `None` when authentication is off.
#[derive(Clone, Copy, Debug)]
pub struct Authenticated<'c>(pub Option<&'c Caller>);

impl Authenticated<'_> {
    /// Whether the caller may use `tenant`: refused also for tenants that do not exist, so a
    /// restricted caller learns nothing about which other tenants are configured.
    pub fn may_use(&self, tenant: &str) -> Result<(), Error> {
        match self.0 {
            Some(caller) if !caller.may_use(tenant) => {
                Err(Error::new(Code::Forbidden, format!("caller {:?} may not use this tenant", caller.name)))
            }
            _ => Ok(()),
        }
    }

    /// [`Authenticated::may_use`] as a plain answer, for filtering lists of tenants.
    pub fn allows(&self, tenant: &str) -> bool {
        self.0.is_none_or(|caller| caller.may_use(tenant))
    }
}

/// Authenticates a request once, before its body is read. `Authenticated(None)` when
/// authentication is off, or when mutual TLS alone is on (any certificate issued by the client
/// CA is a caller then).
pub fn authenticate<'c>(callers: &'c Callers, credentials: &Credentials<'_>) -> Result<Authenticated<'c>, Error> {
    if !callers.enabled() {
        return Ok(Authenticated(None));
    }
    if callers.require_client_certificate && credentials.client_certificate.is_none() {
        return Err(Error::new(Code::Unauthenticated, "a client certificate is required (mutual TLS)"));
    }
    if callers.callers.is_empty() {
        return Ok(Authenticated(None));
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
            for caller in &callers.callers {
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
                Error::new(Code::Unauthenticated, "an Authorization: Bearer token or a client certificate is required")
            })?;
            // Certificate-only callers; a caller that also has a token must send it.
            callers
                .callers
                .iter()
                .find(|c| c.token_sha256.is_none() && c.client_certificate_sha256 == Some(cert))
                .ok_or_else(|| Error::new(Code::Unauthenticated, "client certificate is not a configured caller"))?
        }
    };
    Ok(Authenticated(Some(caller)))
}

/// Authenticates and, when a tenant is named, authorizes a request that names at most one
/// tenant up front (tenant views, SP endpoints, metrics).
pub fn authorize(service: &Service, credentials: &Credentials<'_>, tenant: Option<&str>) -> Result<(), Error> {
    let generation = service.tenants();
    let caller = authenticate(generation.callers(), credentials)?;
    tenant.map_or(Ok(()), |tenant| caller.may_use(tenant))
}

fn bearer(header: &str) -> Option<&str> {
    header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}
