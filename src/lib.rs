//! saml-validator: decides whether a SAML login is genuine.
//!
//! `saml` is the pure validation core. Everything else adapts it to the outside world:
//! configuration, the tenant registry and replay cache (`service`), HTTP, the CLI, logging.

pub mod saml;
