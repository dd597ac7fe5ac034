//! gRPC adapter (tonic): the `saml_validator.v1.SamlValidator` service from proto/, the standard
//! `grpc.health.v1` health service, and server reflection. Same `Frontend` as HTTP, same error
//! table: a rejected assertion is a normal reply; request-level errors are gRPC statuses.

/// The proto reply to one of the SP's outgoing messages (`AuthnRequest`, `LogoutMessage`): both
/// carry the service's `Delivery` in the same six fields (the form's fields as a map), then
/// their own `expires_at`. A macro because prost generates two unrelated structs.
macro_rules! delivery_reply {
    ($message:path { delivery: $delivery:expr, expires_at: $expires_at:expr $(,)? }) => {{
        let delivery: $crate::service::sp::Delivery = $delivery;
        let mut fields = std::collections::HashMap::new();
        if let Some(post) = delivery.fields {
            for (name, value) in [
                ("SAMLRequest", post.saml_request),
                ("SAMLResponse", post.saml_response),
                ("RelayState", post.relay_state),
            ] {
                if let Some(value) = value {
                    fields.insert(name.to_string(), value);
                }
            }
        }
        $message {
            id: delivery.id,
            issue_instant: delivery.issue_instant,
            binding: delivery.binding.to_string(),
            redirect_url: delivery.redirect_url,
            action: delivery.action,
            fields,
            expires_at: $expires_at,
        }
    }};
}

mod api;
mod lifecycle;
mod logout;
pub mod pb;
mod server;

pub use api::Api;
pub use server::{spawn, GrpcError, Running};
