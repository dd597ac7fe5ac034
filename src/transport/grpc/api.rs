//! The `saml_validator.v1.SamlValidator` API: each call authenticated, run through the one
//! request pipeline (`Frontend`), and answered with the error table's gRPC status.

use std::sync::Arc;

use prost::Message as _;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::ops::wall_clock;
use crate::saml::diagnose::{Diagnosis, Outcome};
use crate::saml::{Code, Error, Validated};
use crate::service::sp::AuthnRequestParams;
use crate::transport::auth::{self, ClientCertificate, Credentials};
use crate::transport::frontend::{self, Frontend, Incoming, OwnedRequest};
use crate::transport::json::{tenant_status, TenantView};
use crate::transport::wire::{self, GrpcCode};

use super::logout;
use super::pb::{self, saml_validator_server::SamlValidator};

pub struct Api {
    pub(super) frontend: Arc<Frontend>,
    pub(super) max_message_bytes: usize,
}

#[tonic::async_trait]
impl SamlValidator for Api {
    async fn validate(&self, request: Request<pb::ValidateRequest>) -> Result<Response<pb::ValidateResponse>, Status> {
        let request_id = frontend::request_id(request.metadata().get("x-request-id").and_then(|v| v.to_str().ok()));
        let presented = Presented::of(&request);
        let credentials = presented.credentials();
        let incoming = Message { message: request.into_inner(), max_bytes: self.max_message_bytes };
        let (tenant, result) = self.frontend.handle(&request_id, &credentials, incoming).await;
        respond(&request_id, &tenant, result)
    }

    async fn get_tenant(&self, request: Request<pb::GetTenantRequest>) -> Result<Response<pb::TenantTrust>, Status> {
        let presented = Presented::of(&request);
        let credentials = presented.credentials();
        let id = request.into_inner().tenant;
        if let Err(error) = auth::authorize(self.frontend.service(), &credentials, Some(&id)) {
            return Err(status(error));
        }
        let generation = self.frontend.service().tenants();
        match tenant_status(&generation, &id, wall_clock()) {
            Some(Ok(view)) => {
                let view = view.with_last_used(&self.frontend.service().certificates_last_used(&id));
                Ok(Response::new(tenant_trust(&view)))
            }
            Some(Err(refused)) => Ok(Response::new(pb::TenantTrust {
                id: id.clone(),
                status: refused.status.to_string(),
                config_errors: refused.config_error.problems.clone(),
                ..pb::TenantTrust::default()
            })),
            None => Err(status(Error::new(Code::UnknownTenant, "no such tenant"))),
        }
    }

    async fn list_failures(
        &self,
        request: Request<pb::ListFailuresRequest>,
    ) -> Result<Response<pb::ListFailuresResponse>, Status> {
        let presented = Presented::of(&request);
        super::lifecycle::list_failures(self.frontend.service(), &presented.credentials(), request.into_inner())
            .map(Response::new)
            .map_err(status)
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let presented = Presented::of(&request);
        super::lifecycle::list_tenants(self.frontend.service(), &presented.credentials(), request.into_inner())
            .map(Response::new)
            .map_err(status)
    }

    async fn create_authn_request(
        &self,
        request: Request<pb::CreateAuthnRequestRequest>,
    ) -> Result<Response<pb::AuthnRequest>, Status> {
        let presented = Presented::of(&request);
        let credentials = presented.credentials();
        self.create_authn_request_now(&credentials, request.into_inner()).map(Response::new)
    }

    async fn create_logout_request(
        &self,
        request: Request<pb::CreateLogoutRequestRequest>,
    ) -> Result<Response<pb::LogoutMessage>, Status> {
        let presented = Presented::of(&request);
        let params = logout::request_params(request.into_inner());
        auth::authorize(self.frontend.service(), &presented.credentials(), Some(&params.tenant)).map_err(status)?;
        let body = self.frontend.service().create_logout_request(&params, wall_clock()).map_err(status)?;
        Ok(Response::new(logout::message(body)))
    }

    async fn create_logout_response(
        &self,
        request: Request<pb::CreateLogoutResponseRequest>,
    ) -> Result<Response<pb::LogoutMessage>, Status> {
        let presented = Presented::of(&request);
        let params = logout::response_params(request.into_inner());
        auth::authorize(self.frontend.service(), &presented.credentials(), Some(&params.tenant)).map_err(status)?;
        let body = self.frontend.service().create_logout_response(&params, wall_clock()).map_err(status)?;
        Ok(Response::new(logout::message(body)))
    }

    async fn validate_logout(
        &self,
        request: Request<pb::ValidateLogoutRequest>,
    ) -> Result<Response<pb::ValidateLogoutResponse>, Status> {
        let request_id = frontend::request_id(request.metadata().get("x-request-id").and_then(|v| v.to_str().ok()));
        let presented = Presented::of(&request);
        let message = request.into_inner();
        if message.encoded_len() > self.max_message_bytes {
            let error =
                Error::new(Code::PayloadTooLarge, format!("request message exceeds {} bytes", self.max_message_bytes));
            return Err(status(self.frontend.refused_logout(&request_id, error)));
        }
        let params = logout::validate_params(message);
        auth::authorize(self.frontend.service(), &presented.credentials(), Some(&params.tenant))
            .map_err(|error| status(self.frontend.refused_logout(&request_id, error)))?;
        let reply = logout::validate(&self.frontend, &request_id, params).await.map_err(status)?;
        let mut response = Response::new(reply);
        if let Ok(value) = MetadataValue::try_from(request_id.as_str()) {
            response.metadata_mut().insert("x-request-id", value);
        }
        Ok(response)
    }

    async fn diagnose(&self, request: Request<pb::ValidateRequest>) -> Result<Response<pb::Diagnosis>, Status> {
        let presented = Presented::of(&request);
        let credentials = presented.credentials();
        let incoming = Message { message: request.into_inner(), max_bytes: self.max_message_bytes };
        match self.frontend.diagnose(&credentials, incoming).await {
            Ok(diagnosis) => Ok(Response::new(diagnosis_proto(diagnosis))),
            Err(error) => Err(status(error)),
        }
    }
}

/// The checklist as its protobuf twin.
fn diagnosis_proto(diagnosis: Diagnosis) -> pb::Diagnosis {
    let outcome = |o: Outcome| match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::NotRun => "not_run",
    };
    pb::Diagnosis {
        verdict: diagnosis.verdict.map(|v| pb::DiagnosisVerdict {
            code: v.code.to_string(),
            message: v.message,
            hint: v.hint,
        }),
        checks: diagnosis
            .checks
            .into_iter()
            .map(|c| pb::DiagnosisCheck {
                name: c.name.to_string(),
                result: outcome(c.result).to_string(),
                expected: c.expected,
                found: c.found,
                seconds_from_now: c.seconds_from_now,
                code: c.code.map(str::to_string),
                message: c.message,
                hint: c.hint,
            })
            .collect(),
        signatures: diagnosis
            .signatures
            .into_iter()
            .map(|s| pb::SignatureReport {
                covers: s.covers.to_string(),
                result: outcome(s.result).to_string(),
                signature_algorithm: s.signature_algorithm,
                digest_algorithm: s.digest_algorithm,
                verified_by: s.verified_by,
                code: s.code.map(str::to_string),
                message: s.message,
                document_certificates: s
                    .document_certificates
                    .into_iter()
                    .map(|d| pb::DocumentCertificate {
                        trusted: d.trusted,
                        sha256_thumbprint: d.sha256_thumbprint,
                        sha1_thumbprint: d.sha1_thumbprint,
                        subject: d.subject,
                        not_before: d.not_before,
                        not_after: d.not_after,
                        configured: d.configured,
                    })
                    .collect(),
            })
            .collect(),
        configured_certificates: diagnosis
            .configured_certificates
            .into_iter()
            .map(|c| pb::Certificate {
                sha256_fingerprint: c.info.sha256_fingerprint,
                subject: c.info.subject,
                not_before: c.info.not_before,
                not_after: c.info.not_after,
                key_type: c.info.key_type,
                bits: c.info.bits,
                origin: c.info.origin,
                seconds_until_expiry: c.days_left.map(|d| d * 86_400),
                days_left: c.days_left,
                // The checklist is about the response, not the certificates' use.
                ..pb::Certificate::default()
            })
            .collect(),
    }
}

/// The tenant view as its protobuf twin.
fn tenant_trust(view: &TenantView<'_>) -> pb::TenantTrust {
    pb::TenantTrust {
        id: view.id.to_string(),
        idp_entity_id: view.idp_entity_id.to_string(),
        sp_entity_id: view.sp_entity_id.to_string(),
        acs_url: view.acs_url.to_string(),
        clock_skew_seconds: view.clock_skew_seconds,
        relaxations: view.relaxations.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
        certificates: view
            .certificates
            .iter()
            .map(|c| pb::Certificate {
                sha256_fingerprint: c.info.sha256_fingerprint.clone(),
                subject: c.info.subject.clone(),
                not_before: c.info.not_before.clone(),
                not_after: c.info.not_after.clone(),
                key_type: c.info.key_type.clone(),
                bits: c.info.bits,
                origin: c.info.origin.clone(),
                seconds_until_expiry: c.seconds_until_expiry,
                source: c.source.to_string(),
                not_after_rfc3339: c.not_after_rfc3339.clone(),
                days_left: c.days_left,
                last_used_at: c.last_used_at.clone(),
            })
            .collect(),
        decryption_keys: view
            .decryption_keys
            .iter()
            .map(|k| pb::DecryptionKey {
                public_key_sha256: k.public_key_sha256.clone(),
                key_type: k.key_type.clone(),
                bits: k.bits,
                origin: k.origin.clone(),
            })
            .collect(),
        require_encrypted_assertions: view.require_encrypted_assertions,
        acs_urls: view.acs_urls.iter().map(|url| (*url).to_string()).collect(),
        require_authn_methods: view.require_authn_methods.to_vec(),
        require_authn_context: view.require_authn_context.to_vec(),
        max_authn_age_seconds: view.max_authn_age_seconds,
        subject_key_from: view.subject_key_from.clone(),
        status: view.status.to_string(),
        config_errors: view.config_error.map(|e| e.problems.clone()).unwrap_or_default(),
        metadata: view.metadata.map(|m| pb::MetadataStatus {
            source: m.source.clone(),
            entity_id: m.entity_id.clone(),
            signature_verified: m.signature_verified,
            valid_until: m.valid_until.clone(),
            cache_duration_seconds: m.cache_duration_seconds,
            loaded_at: m.loaded_at.clone(),
            result: m.result.clone(),
        }),
    }
}

impl Api {
    /// `CreateAuthnRequest`, at parity with `POST /v1/authn-requests`.
    #[allow(clippy::result_large_err)] // tonic fixes the error type to `Status`
    fn create_authn_request_now(
        &self,
        credentials: &Credentials<'_>,
        message: pb::CreateAuthnRequestRequest,
    ) -> Result<pb::AuthnRequest, Status> {
        let binding = if message.binding.is_empty() { "redirect".to_string() } else { message.binding };
        let params = AuthnRequestParams {
            tenant: message.tenant,
            relay_state: message.relay_state,
            force_authn: message.force_authn,
            is_passive: message.is_passive,
            binding,
            acs_url: message.acs_url,
        };
        auth::authorize(self.frontend.service(), credentials, Some(&params.tenant)).map_err(status)?;
        let body = self.frontend.service().create_authn_request(&params, wall_clock()).map_err(status)?;
        Ok(delivery_reply!(pb::AuthnRequest { delivery: body.delivery, expires_at: body.expires_at }))
    }
}

/// A gRPC message, already received by tonic, on its way into the pipeline.
struct Message {
    message: pb::ValidateRequest,
    max_bytes: usize,
}

impl Incoming for Message {
    /// Same limit and code as HTTP's body limit. (tonic itself refuses messages beyond four
    /// times this with OUT_OF_RANGE before we see them.)
    async fn receive(&mut self) -> Result<usize, Error> {
        let bytes = self.message.encoded_len();
        if bytes > self.max_bytes {
            return Err(Error::new(Code::PayloadTooLarge, format!("request message exceeds {} bytes", self.max_bytes)));
        }
        Ok(bytes)
    }

    fn decode(self) -> Result<OwnedRequest, Error> {
        let pb::ValidateRequest { tenant, saml_response, expected_request_id, expected_acs_url } = self.message;
        Ok(OwnedRequest { tenant, saml_response: saml_response.into(), expected_request_id, expected_acs_url })
    }
}

/// A request-level error as a gRPC status: code from the one table in `wire`, the stable code in
/// the `x-error-code` trailer.
pub(super) fn status(error: Error) -> Status {
    let code = tonic::Code::from_i32(wire::disposition(error.code).grpc as i32);
    let mut status = Status::new(code, error.message);
    status.metadata_mut().insert("x-error-code", MetadataValue::from_static(error.code.as_str()));
    status
}

// tonic's trait fixes the error type to `Status`, large as it is.
#[allow(clippy::result_large_err)]
fn respond(
    request_id: &str,
    tenant: &str,
    result: Result<Validated, Error>,
) -> Result<Response<pb::ValidateResponse>, Status> {
    let request_id_value =
        MetadataValue::try_from(request_id).unwrap_or_else(|_| MetadataValue::from_static("invalid"));
    let reply = match result {
        Ok(validated) => to_proto(tenant, validated),
        Err(error) => {
            let disposition = wire::disposition(error.code);
            if disposition.grpc != GrpcCode::Ok {
                let mut status = status(error);
                status.metadata_mut().insert("x-request-id", request_id_value);
                return Err(status);
            }
            pb::ValidateResponse {
                valid: false,
                tenant: tenant.to_string(),
                error: Some(pb::Error { code: error.code.as_str().to_string(), message: error.message }),
                ..Default::default()
            }
        }
    };
    let mut response = Response::new(reply);
    response.metadata_mut().insert("x-request-id", request_id_value);
    Ok(response)
}

fn to_proto(tenant: &str, v: Validated) -> pb::ValidateResponse {
    pb::ValidateResponse {
        valid: true,
        tenant: tenant.to_string(),
        issuer: v.issuer,
        assertion_id: v.assertion_id,
        response_id: v.response_id,
        unsigned_response_id: v.unsigned_response_id,
        encrypted: v.encrypted,
        subject: Some(pb::Subject {
            name_id: v.subject.name_id,
            format: v.subject.format,
            name_qualifier: v.subject.name_qualifier,
            sp_name_qualifier: v.subject.sp_name_qualifier,
            key: v.subject.key,
        }),
        claims: Some(pb::Claims {
            email: v.claims.email,
            first_name: v.claims.first_name,
            last_name: v.claims.last_name,
            display_name: v.claims.display_name,
            username: v.claims.username,
            groups: v.claims.groups,
            roles: v.claims.roles,
            object_id: v.claims.object_id,
            idp_tenant_id: v.claims.idp_tenant_id,
            groups_overage: v.claims.groups_overage,
            authn_methods: v.claims.authn_methods,
        }),
        attributes: v.attributes.into_iter().map(|(name, values)| (name, pb::AttributeValues { values })).collect(),
        session: Some(pb::Session {
            index: v.session.index,
            authn_instant: v.session.authn_instant,
            not_on_or_after: v.session.not_on_or_after,
            authn_context: v.session.authn_context,
        }),
        valid_until: v.valid_until,
        signed: Some(pb::SignedParts { response: v.signed.response, assertion: v.signed.assertion }),
        error: None,
    }
}

/// What a call presented to authenticate with, owned, so that the message can be taken out of
/// the request while the credentials are checked.
struct Presented {
    /// The `authorization` metadata entry.
    authorization: Option<String>,
    /// The connection's verified client certificate, put into every request by `tls::incoming`.
    client_certificate: Option<ClientCertificate>,
}

impl Presented {
    fn of<T>(request: &Request<T>) -> Presented {
        Presented {
            authorization: request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
            client_certificate: request.extensions().get::<Option<ClientCertificate>>().copied().flatten(),
        }
    }

    fn credentials(&self) -> Credentials<'_> {
        Credentials { authorization: self.authorization.as_deref(), client_certificate: self.client_certificate }
    }
}
