//! Transports: HTTP (actix-web) and gRPC (tonic) on plain TCP or TLS, both thin shells around
//! one request pipeline (`frontend`), with one table from error code to status (`wire`).

pub mod auth;
pub mod budget;
pub mod frontend;
pub mod grpc;
pub mod http;
pub mod json;
pub mod pool;
pub mod sp;
pub mod tls;
pub mod wire;
