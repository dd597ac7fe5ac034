//! The test suite as one binary (linking actix, tonic, openssl, redis and libxml2 once, not once
//! per file), a module per concern. `tests/observability.rs` stays a binary of its own: it
//! installs a process-wide log subscriber and reads every line it captures.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

mod admin;
mod attacks;
mod auth;
mod authn_requests;
mod c14n;
mod config_and_cli;
mod conformance;
mod diagnose;
mod encryption;
mod flood;
mod hardening;
mod http_api;
mod layering;
mod lifecycle;
mod logout;
mod logout_real;
mod metadata;
mod metadata_refresh;
mod policies;
mod policies_service;
mod replay;
mod replay_faults;
mod replay_store;
mod snapshots;
mod tenants_dir;
mod tls;
mod transports;
