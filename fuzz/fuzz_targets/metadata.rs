//! IdP metadata parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_validator::saml::metadata::{self, MetadataPolicy};

fuzz_target!(|data: &[u8]| {
    let now = saml_validator::saml::time::parse("2026-01-01T00:00:00Z").expect("instant");
    let _ = metadata::parse(data, &MetadataPolicy { signing_keys: &[], allow_sha1: false, now });
});
