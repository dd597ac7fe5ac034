//! The one table from error code to HTTP status, gRPC status code and metric label. Every
//! transport maps errors through [`disposition`]; nothing else decides a status.

use serde::Serialize;

use crate::config::{MetadataStatus, TenantConfig};
use crate::saml::keys::KeyInfo;
use crate::saml::{Code, Error, Validated};

/// gRPC status codes used by the service (numbers from grpc/status.proto).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcCode {
    /// The call succeeded; the verdict (`valid = false`) is in the message.
    Ok = 0,
    InvalidArgument = 3,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disposition {
    pub http_status: u16,
    pub grpc: GrpcCode,
    /// Label value for metrics; always a fixed code string, never request content.
    pub metric_label: &'static str,
}

pub const fn disposition(code: Code) -> Disposition {
    let (http_status, grpc) = match code {
        Code::MalformedRequest => (400, GrpcCode::InvalidArgument),
        Code::PayloadTooLarge => (413, GrpcCode::ResourceExhausted),
        Code::UnknownTenant => (404, GrpcCode::NotFound),
        Code::Overloaded => (503, GrpcCode::Unavailable),
        Code::Unauthenticated => (401, GrpcCode::Unauthenticated),
        Code::Forbidden => (403, GrpcCode::PermissionDenied),
        Code::Internal => (500, GrpcCode::Internal),
        // Every other code is a verdict about the SAML response: the request itself was fine.
        _ => (422, GrpcCode::Ok),
    };
    Disposition { http_status, grpc, metric_label: code.as_str() }
}

/// JSON body of an accepted response (HTTP 200, CLI exit 0).
#[derive(Serialize)]
pub struct ValidBody<'a> {
    pub valid: bool,
    pub tenant: &'a str,
    #[serde(flatten)]
    pub result: &'a Validated,
}

/// JSON body of any refusal.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub valid: bool,
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'static str,
    pub message: &'a str,
}

impl<'a> ErrorBody<'a> {
    pub fn new(error: &'a Error) -> ErrorBody<'a> {
        ErrorBody { valid: false, error: ErrorDetail { code: error.code.as_str(), message: &error.message } }
    }
}

/// A tenant's effective trust (`GET /v1/tenants/{id}` and gRPC `GetTenant`): public facts only.
#[derive(Serialize)]
pub struct TenantView<'a> {
    pub id: &'a str,
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub clock_skew_seconds: i64,
    /// Every relaxation with its current value (all false unless an operator set them).
    pub relaxations: std::collections::BTreeMap<&'static str, bool>,
    pub certificates: Vec<CertificateView<'a>>,
    pub metadata: Option<&'a MetadataStatus>,
}

#[derive(Serialize)]
pub struct CertificateView<'a> {
    #[serde(flatten)]
    pub info: &'a KeyInfo,
    /// Negative once expired (SAML pins keys, so an expired certificate still verifies, but
    /// the IdP will rotate it).
    pub seconds_until_expiry: Option<i64>,
}

impl<'a> TenantView<'a> {
    pub fn new(tenant: &'a TenantConfig, now: chrono::DateTime<chrono::Utc>) -> TenantView<'a> {
        let p = &tenant.policy;
        TenantView {
            id: &tenant.id,
            idp_entity_id: &p.idp_entity_id,
            sp_entity_id: &p.sp_entity_id,
            acs_url: &p.acs_url,
            clock_skew_seconds: p.clock_skew_seconds,
            relaxations: [
                ("allow_sha1", p.allow_sha1),
                ("allow_idp_initiated", p.allow_idp_initiated),
                ("allow_bare_assertion", p.allow_bare_assertion),
                ("allow_missing_authn_statement", p.allow_missing_authn_statement),
            ]
            .into_iter()
            .collect(),
            certificates: p
                .keys
                .iter()
                .map(|k| CertificateView {
                    info: &k.info,
                    seconds_until_expiry: k.not_after.map(|t| (t - now).num_seconds()),
                })
                .collect(),
            metadata: tenant.metadata.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_snake_case_name_and_a_disposition() {
        let mut names = std::collections::HashSet::new();
        for &code in Code::ALL {
            let name = code.as_str();
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
            assert!(names.insert(name), "duplicate {name}");
            let d = disposition(code);
            assert_eq!(d.metric_label, name);
            assert!(matches!(d.http_status, 400 | 401 | 403 | 404 | 413 | 422 | 500 | 503));
            assert_eq!(d.http_status == 422, d.grpc == GrpcCode::Ok, "{name}");
        }
    }

    #[test]
    fn readme_documents_every_code() {
        let readme = include_str!("../README.md");
        for code in Code::ALL {
            assert!(readme.contains(&format!("`{}`", code.as_str())), "README lacks `{code}`");
        }
    }

    #[test]
    fn transport_level_codes_map_as_documented() {
        assert_eq!(disposition(Code::MalformedRequest).http_status, 400);
        assert_eq!(disposition(Code::PayloadTooLarge).http_status, 413);
        assert_eq!(disposition(Code::UnknownTenant).http_status, 404);
        assert_eq!(disposition(Code::Replayed).http_status, 422);
        assert_eq!(disposition(Code::SignatureInvalid).grpc, GrpcCode::Ok);
        assert_eq!(disposition(Code::UnknownTenant).grpc, GrpcCode::NotFound);
    }
}
