//! Tenants: the configuration file (`config`), the live registry of tenant generations
//! (`registry`), reload from the file (`reload`), IdP metadata fetched and kept current
//! (`fetch`, `refresh`, on the shared fetch `pool`), `tenants_dir` watched file by file (`watch`), and the callers allowed to ask for which tenants (`callers`). Uses
//! `saml` and `ops` only.

pub mod callers;
pub mod config;
pub mod fetch;
mod pool;
pub mod refresh;
pub mod registry;
pub mod reload;
pub mod tls;
pub mod watch;

pub use config::{MetadataStatus, TenantConfig};
pub use registry::{FileProblem, Registry, TenantSet, TenantState};
