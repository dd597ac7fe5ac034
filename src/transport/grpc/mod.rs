//! gRPC adapter (tonic): the `saml_validator.v1.SamlValidator` service from proto/, the standard
//! `grpc.health.v1` health service, and server reflection. Same `Frontend` as HTTP, same error
//! table: a rejected assertion is a normal reply; request-level errors are gRPC statuses.

mod api;
mod lifecycle;
mod logout;
pub mod pb;
mod server;

pub use api::Api;
pub use server::{spawn, GrpcError, Running};
