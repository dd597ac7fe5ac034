//! The types and service traits generated from proto/saml_validator/v1/validator.proto.
#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

tonic::include_proto!("saml_validator.v1");
/// Encoded descriptors for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("saml_validator_descriptor");
