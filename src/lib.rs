//! saml-validator: decides whether a SAML login is genuine.
//!
//! `saml` is the pure validation core. Everything else adapts it to the outside world:
//! configuration, the tenant registry and replay cache (`service`, `replay`), the HTTP transport,
//! the error-to-status table (`wire`), logging, and a test IdP for the demo, tests and benches.

pub mod auth;
pub mod config;
pub mod frontend;
pub mod grpc;
pub mod http;
pub mod metadata_fetch;
pub mod metrics;
pub mod pool;
pub mod refresh;
pub mod reload;
pub mod replay;
pub mod saml;
pub mod service;
pub mod telemetry;
pub mod test_idp;
pub mod tls;
pub mod wire;
