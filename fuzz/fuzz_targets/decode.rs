//! Base64 decoding and xs:dateTime / xs:duration parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_validator::saml::{decode, metadata, time};

fuzz_target!(|data: &[u8]| {
    let _ = decode::base64(data, 64 * 1024);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = time::parse(text);
        let _ = metadata::duration_seconds(text);
    }
});
