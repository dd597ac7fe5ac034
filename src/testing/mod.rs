//! Test support shipped in the library: a signing IdP used by the `demo` command, the
//! integration tests and the benchmarks. Nothing in production paths uses it.

pub mod certificate;
pub mod encrypt;
pub mod idp;
pub mod logout;
