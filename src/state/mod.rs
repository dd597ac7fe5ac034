//! What must hold across logins: the record of accepted assertions (replay protection, SAML
//! profiles §4.1.4.5). Uses nothing but `saml`'s error type.

pub mod memory;

pub use memory::ReplayCache;
