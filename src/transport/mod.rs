//! Transports: HTTP (actix-web) and gRPC (tonic) on plain TCP or TLS, both thin shells around
//! one request pipeline (`frontend`), with one table from error code to status (`wire`).

pub mod admin;
pub mod auth;
pub mod budget;
pub mod frontend;
pub mod grpc;
pub mod http;
pub mod json;
pub mod pool;
pub mod tls;
pub mod wire;

/// Threads to run where the configuration says 0 (`workers`): one per core.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}
