//! The one table from error code to HTTP status, gRPC status code, outcome and metric label.
//! Every transport and the metrics map errors through [`disposition`]; nothing else decides a
//! status. The match has no wildcard: a new code does not compile until its row is written.
//! Depends on nothing but the core's [`Code`].

use crate::saml::Code;

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
    /// The request is fine but the tenant's configuration cannot serve it yet.
    FailedPrecondition = 9,
    Unauthenticated = 16,
}

/// What kind of answer a code is, as counted in `saml_validations_total{outcome}` and logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A verdict about the SAML response: the request itself was fine (HTTP 422, gRPC OK).
    Rejected,
    /// The request could not be judged (bad request, auth, overload, fault).
    Error,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disposition {
    pub http_status: u16,
    pub grpc: GrpcCode,
    pub outcome: Outcome,
    /// Label value for metrics; always a fixed code string, never request content.
    pub metric_label: &'static str,
}

/// Every verdict about the response itself: 422, gRPC OK with `valid = false`.
const REJECTED: (u16, GrpcCode, Outcome) = (422, GrpcCode::Ok, Outcome::Rejected);

pub const fn disposition(code: Code) -> Disposition {
    let (http_status, grpc, outcome) = match code {
        Code::MalformedRequest => (400, GrpcCode::InvalidArgument, Outcome::Error),
        Code::PayloadTooLarge => (413, GrpcCode::ResourceExhausted, Outcome::Error),
        Code::UnknownTenant => (404, GrpcCode::NotFound, Outcome::Error),
        Code::Overloaded => (503, GrpcCode::Unavailable, Outcome::Error),
        // Fail closed: the response may be genuine, but a first use that could not be
        // recorded cannot be accepted. A retry (the store back, another path) may succeed.
        Code::ReplayStoreUnavailable => (503, GrpcCode::Unavailable, Outcome::Error),
        // The tenant's trust is not loaded: nothing about the response was judged, and the
        // tenant may recover (metadata retried with backoff, the file fixed).
        Code::TenantUnavailable => (503, GrpcCode::Unavailable, Outcome::Error),
        Code::Unauthenticated => (401, GrpcCode::Unauthenticated, Outcome::Error),
        Code::Forbidden => (403, GrpcCode::PermissionDenied, Outcome::Error),
        Code::Internal => (500, GrpcCode::Internal, Outcome::Error),
        Code::RelayStateTooLong => (400, GrpcCode::InvalidArgument, Outcome::Error),
        // The caller named an ACS URL the tenant does not have: nothing about the SAML
        // response was judged, and only the caller (or the tenant's acs_urls) can fix it.
        Code::AcsUrlUnknown => (400, GrpcCode::InvalidArgument, Outcome::Error),
        // Not a verdict about any SAML response: the tenant lacks an IdP endpoint, which only
        // its configuration can cure. 422 tells HTTP callers the request itself was well
        // formed; gRPC's FAILED_PRECONDITION says the same, and a CreateAuthnRequest reply
        // has no verdict field that an OK status could carry it in.
        Code::IdpSsoUrlUnknown => (422, GrpcCode::FailedPrecondition, Outcome::Error),
        // As idp_sso_url_unknown: only the tenant's configuration can cure these.
        Code::IdpSloUrlUnknown => (422, GrpcCode::FailedPrecondition, Outcome::Error),
        Code::SloUrlUnknown => (422, GrpcCode::FailedPrecondition, Outcome::Error),
        Code::Base64Invalid => REJECTED,
        Code::EncodingUnsupported => REJECTED,
        Code::DoctypeForbidden => REJECTED,
        Code::XmlMalformed => REJECTED,
        Code::XmlTooComplex => REJECTED,
        Code::ProcessingInstructionForbidden => REJECTED,
        Code::RootElementInvalid => REJECTED,
        Code::BareAssertionNotAllowed => REJECTED,
        Code::DuplicateId => REJECTED,
        Code::IdInvalid => REJECTED,
        Code::AssertionMissing => REJECTED,
        Code::MultipleAssertions => REJECTED,
        Code::EncryptedAssertionUnsupported => REJECTED,
        Code::DecryptionAlgorithmUnsupported => REJECTED,
        Code::DecryptionFailed => REJECTED,
        Code::AssertionNotEncrypted => REJECTED,
        Code::SamlMalformed => REJECTED,
        Code::SignatureMissing => REJECTED,
        Code::SignaturePlacementInvalid => REJECTED,
        Code::SignatureMalformed => REJECTED,
        Code::ReferenceUriInvalid => REJECTED,
        Code::TransformUnsupported => REJECTED,
        Code::CanonicalizationUnsupported => REJECTED,
        Code::SignatureAlgorithmUnsupported => REJECTED,
        Code::DigestAlgorithmUnsupported => REJECTED,
        Code::Sha1NotAllowed => REJECTED,
        Code::DigestMismatch => REJECTED,
        Code::SignatureInvalid => REJECTED,
        Code::VersionUnsupported => REJECTED,
        Code::StatusNotSuccess => REJECTED,
        Code::DestinationMismatch => REJECTED,
        Code::IssuerMismatch => REJECTED,
        Code::IssuedInFuture => REJECTED,
        Code::AssertionTooOld => REJECTED,
        Code::SubjectMissing => REJECTED,
        Code::BearerConfirmationMissing => REJECTED,
        Code::RecipientMismatch => REJECTED,
        Code::SubjectConfirmationExpired => REJECTED,
        Code::NotYetValid => REJECTED,
        Code::AssertionExpired => REJECTED,
        Code::AudienceMismatch => REJECTED,
        Code::ConditionUnsupported => REJECTED,
        Code::InResponseToMismatch => REJECTED,
        Code::UnsolicitedResponse => REJECTED,
        Code::AuthnStatementMissing => REJECTED,
        Code::SessionExpired => REJECTED,
        Code::AuthnTooOld => REJECTED,
        Code::AuthnMethodNotAllowed => REJECTED,
        Code::SubjectKeyMissing => REJECTED,
        Code::Replayed => REJECTED,
        // A verdict about this assertion (it may have been used before the store's loss), not
        // a fault to retry: the same assertion is refused until it is too old anyway. A fresh
        // sign-in passes at once.
        Code::ReplayStateLost => REJECTED,
        Code::LogoutQueryInvalid => REJECTED,
        Code::LogoutDeflateInvalid => REJECTED,
        Code::LogoutInflatedTooLarge => REJECTED,
        Code::LogoutSignatureMissing => REJECTED,
        Code::LogoutDestinationMismatch => REJECTED,
        Code::LogoutIssuerMismatch => REJECTED,
        Code::LogoutExpired => REJECTED,
        Code::LogoutTooOld => REJECTED,
        Code::LogoutInResponseToMismatch => REJECTED,
        Code::LogoutReplayed => REJECTED,
        Code::LogoutRelayStateTooLong => REJECTED,
        Code::MetadataInvalid => REJECTED,
        Code::MetadataExpired => REJECTED,
        Code::MetadataSignatureMissing => REJECTED,
    };
    Disposition { http_status, grpc, outcome, metric_label: code.as_str() }
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
            // A verdict is a normal gRPC reply and always 422; the one 422 that is no verdict
            // (idp_sso_url_unknown, a configuration precondition) is a gRPC error status.
            assert_eq!(d.grpc == GrpcCode::Ok, d.outcome == Outcome::Rejected, "{name}");
            if d.outcome == Outcome::Rejected {
                assert_eq!(d.http_status, 422, "{name}");
            }
            let precondition = matches!(code, Code::IdpSsoUrlUnknown | Code::IdpSloUrlUnknown | Code::SloUrlUnknown);
            assert_eq!(d.http_status == 422 && d.outcome == Outcome::Error, precondition, "{name}");
        }
    }

    #[test]
    fn readme_documents_every_code() {
        let readme = include_str!("../../README.md");
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
        assert_eq!(disposition(Code::RelayStateTooLong).http_status, 400);
        assert_eq!(disposition(Code::AcsUrlUnknown).http_status, 400);
        assert_eq!(disposition(Code::AcsUrlUnknown).grpc, GrpcCode::InvalidArgument);
        assert_eq!(disposition(Code::AuthnMethodNotAllowed).http_status, 422);
        assert_eq!(disposition(Code::AuthnTooOld).grpc, GrpcCode::Ok);
        assert_eq!(disposition(Code::SubjectKeyMissing).http_status, 422);
        assert_eq!(disposition(Code::IdpSsoUrlUnknown).http_status, 422);
        assert_eq!(disposition(Code::IdpSsoUrlUnknown).grpc, GrpcCode::FailedPrecondition);
        assert_eq!(disposition(Code::ReplayStoreUnavailable).http_status, 503);
        assert_eq!(disposition(Code::ReplayStoreUnavailable).grpc, GrpcCode::Unavailable);
    }
}
