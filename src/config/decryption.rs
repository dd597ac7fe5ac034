//! A tenant's decryption keys (`decryption_key_files`) and the certificates that publish them
//! (`decryption_certificate_files`). Keys are files only: an inline private key would end up
//! in every copy of the configuration, in `check-config` output and in review tools. Problems
//! never quote a key file's content.

use openssl::x509::X509;

use super::files::{FileRules, MAX_FILE_BYTES};
use super::reader::Reader;
use super::strength::{MIN_RELAXED_RSA_BITS, MIN_RSA_BITS};
use crate::saml::decrypt::DecryptionKey;

/// What `[[tenants]]` says about decryption.
pub(super) struct Decryption {
    pub(super) keys: Vec<DecryptionKey>,
    pub(super) certificates: Vec<X509>,
    pub(super) allow_rsa_pkcs1_key_transport: bool,
    pub(super) require_encrypted_assertions: bool,
}

pub(super) fn read(r: &mut Reader<'_>, files: &FileRules<'_>, allow_weak_rsa_keys: bool) -> Decryption {
    let key_files = r.strings("decryption_key_files");
    let certificate_files = r.strings("decryption_certificate_files");
    let allow_rsa_pkcs1_key_transport = r.boolean("allow_rsa_pkcs1_key_transport", false);
    let require_encrypted_assertions = r.boolean("require_encrypted_assertions", false);
    let mut keys = Vec::new();
    for (i, file) in key_files.iter().enumerate() {
        let at = format!("decryption_key_files[{i}]");
        let text = match files.read_to_string(file, MAX_FILE_BYTES) {
            Ok(text) => text,
            Err(e) => {
                r.problem(&at, e.to_string());
                continue;
            }
        };
        match DecryptionKey::from_pem(&text) {
            Ok(key) if key.info.bits < MIN_RELAXED_RSA_BITS => r.problem(
                &at,
                format!(
                    "{file}: a {}-bit RSA key; below {} bits is refused even with allow_weak_rsa_keys",
                    key.info.bits, MIN_RELAXED_RSA_BITS
                ),
            ),
            Ok(key) if key.info.bits < MIN_RSA_BITS && !allow_weak_rsa_keys => r.problem(
                &at,
                format!(
                    "{}: a {}-bit RSA key; below {MIN_RSA_BITS} bits needs allow_weak_rsa_keys = true",
                    file, key.info.bits
                ),
            ),
            Ok(key) => keys.push(key.with_origin(&format!("file:{file}"))),
            Err(e) => r.problem(&at, format!("{file}: {e}")),
        }
    }
    let mut certificates = Vec::new();
    for (i, file) in certificate_files.iter().enumerate() {
        let at = format!("decryption_certificate_files[{i}]");
        let certificate = match files.read(file, MAX_FILE_BYTES) {
            Ok(bytes) => X509::from_pem(&bytes),
            Err(e) => {
                r.problem(&at, e.to_string());
                continue;
            }
        };
        match certificate {
            Ok(certificate) if keys.iter().any(|key| key.matches(&certificate)) => certificates.push(certificate),
            Ok(_) => r.problem(&at, format!("{file}: matches none of decryption_key_files")),
            Err(_) => r.problem(&at, format!("{file}: not a PEM certificate")),
        }
    }
    if require_encrypted_assertions && key_files.is_empty() {
        r.problem("require_encrypted_assertions", "needs decryption_key_files");
    }
    if allow_rsa_pkcs1_key_transport && key_files.is_empty() {
        r.problem("allow_rsa_pkcs1_key_transport", "set only together with decryption_key_files");
    }
    Decryption { keys, certificates, allow_rsa_pkcs1_key_transport, require_encrypted_assertions }
}
