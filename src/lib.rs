//! saml-validator: decides whether a SAML login is genuine.
//!
//! The folders are the layers, and each uses only those below it:
//!
//! - `transport` — HTTP, gRPC, TLS listeners, the request pipeline both share, the error table;
//! - `service` — one validation: the tenant's current policy, the core, the replay record;
//! - `tenants` — the live tenant registry, reload, metadata fetch and refresh, `tenants_dir`;
//! - `config` — the configuration file: every section, tenants, callers, TLS material; read
//!   and judged whole, with no I/O beyond the files it names;
//! - `state` — what must hold across logins (the replay record);
//! - `ops` — metrics, logging, and the one read of the wall clock;
//! - `saml` — the pure validation core: bytes, a tenant policy and an instant in; claims or a
//!   typed error out.
//!
//! `supervisor` starts, names and stops everything `serve` runs, above all of them; `cli`, the
//! command line the binary runs, sits on top and nothing uses it.
//!
//! `testing` holds a signing test IdP for the demo, the tests and the benchmarks.

pub mod cli;
pub mod config;
pub mod ops;
pub mod saml;
pub mod service;
pub mod state;
pub mod supervisor;
pub mod tenants;
pub mod testing;
pub mod transport;
