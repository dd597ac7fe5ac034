//! The Single Logout calls of the gRPC API, at parity with their HTTP twins: the same params
//! structs, use cases and error table; only the message shapes differ.

use std::sync::Arc;

use crate::saml::Error;
use crate::service::logout::{
    LogoutMessageBody, LogoutRequestParams, LogoutResponseParams, LogoutValidBody, ValidateLogoutParams,
};
use crate::transport::frontend::Frontend;
use crate::transport::wire::{self, GrpcCode};

use super::pb;

fn binding(text: String) -> String {
    if text.is_empty() {
        "redirect".to_string()
    } else {
        text
    }
}

pub(super) fn request_params(message: pb::CreateLogoutRequestRequest) -> LogoutRequestParams {
    LogoutRequestParams {
        tenant: message.tenant,
        name_id: message.name_id,
        name_id_format: message.name_id_format,
        name_qualifier: message.name_qualifier,
        sp_name_qualifier: message.sp_name_qualifier,
        session_indexes: message.session_indexes,
        relay_state: message.relay_state,
        binding: binding(message.binding),
    }
}

pub(super) fn response_params(message: pb::CreateLogoutResponseRequest) -> LogoutResponseParams {
    LogoutResponseParams {
        tenant: message.tenant,
        in_response_to: message.in_response_to,
        status: message.status,
        second_level_status: message.second_level_status,
        status_message: message.status_message,
        relay_state: message.relay_state,
        binding: binding(message.binding),
    }
}

pub(super) fn validate_params(message: pb::ValidateLogoutRequest) -> ValidateLogoutParams {
    ValidateLogoutParams {
        tenant: message.tenant,
        binding: Some(binding(message.binding)),
        query: message.query,
        saml_request: message.saml_request,
        saml_response: message.saml_response,
        relay_state: message.relay_state,
        expected_request_id: message.expected_request_id,
    }
}

pub(super) fn message(body: LogoutMessageBody) -> pb::LogoutMessage {
    delivery_reply!(pb::LogoutMessage { delivery: body.delivery, expires_at: body.expires_at })
}

/// `ValidateLogout`: a verdict is a reply (`valid = false` with the code); a request-level
/// error is a status, as for `Validate`.
pub(super) async fn validate(
    frontend: &Arc<Frontend>,
    request_id: &str,
    params: ValidateLogoutParams,
) -> Result<pb::ValidateLogoutResponse, Error> {
    let tenant = params.tenant.clone();
    match frontend.validate_logout(request_id, params).await {
        Ok(body) => Ok(valid(body)),
        Err(error) if wire::disposition(error.code).grpc == GrpcCode::Ok => Ok(pb::ValidateLogoutResponse {
            valid: false,
            tenant,
            error: Some(pb::Error { code: error.code.as_str().to_string(), message: error.message }),
            ..Default::default()
        }),
        Err(error) => Err(error),
    }
}

fn valid(body: LogoutValidBody) -> pb::ValidateLogoutResponse {
    let signed_by = serde_json::to_value(body.signed_by).ok().and_then(|v| v.as_str().map(str::to_string));
    pb::ValidateLogoutResponse {
        valid: true,
        tenant: body.tenant,
        error: None,
        message_type: body.message_type.to_string(),
        binding: body.binding.to_string(),
        signed_by: signed_by.unwrap_or_default(),
        issuer: body.issuer,
        issue_instant: body.issue_instant,
        relay_state: body.relay_state,
        request_id: body.request_id,
        name_id: body.name_id.map(|n| pb::NameId {
            value: n.value,
            format: n.format,
            name_qualifier: n.name_qualifier,
            sp_name_qualifier: n.sp_name_qualifier,
        }),
        name_id_encrypted: body.name_id_encrypted.unwrap_or(false),
        session_indexes: body.session_indexes.unwrap_or_default(),
        not_on_or_after: body.not_on_or_after,
        reason: body.reason,
        response_id: body.response_id,
        in_response_to: body.in_response_to,
        success: body.success.unwrap_or(false),
        status: body.status,
        second_level_status: body.second_level_status,
        status_message: body.status_message,
    }
}
