//! Tenants at run time: the live registry of tenant generations (`registry`), reload from the
//! configuration file (`reload`), IdP metadata fetched and kept current (`fetch`, `refresh`, on
//! the shared fetch `pool`), and `tenants_dir` watched file by file (`watch`). Reading the
//! configuration itself is `crate::config`. Uses `saml`, `config` and `ops` only.

pub mod fetch;
mod pool;
pub mod refresh;
pub mod registry;
pub mod reload;
pub mod watch;

pub use crate::config::{MetadataStatus, TenantConfig};
pub use registry::{FileProblem, Registry, TenantSet, TenantState};
