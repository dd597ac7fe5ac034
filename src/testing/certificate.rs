//! Self-signed certificates: the test IdP's, and the many a fleet needs with chosen validity
//! (certificate lifecycle: days left, expiry, which of a rollover signs).

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder, X509};

fn ssl(e: openssl::error::ErrorStack) -> String {
    e.to_string()
}

/// A certificate of `key` signed by itself, subject and issuer `CN=common_name`, with a random
/// serial (RFC 5280 4.1.2.2: unique per issuer, so two of them never look like one).
pub fn self_signed(
    key: &PKey<Private>,
    common_name: &str,
    not_before: &Asn1TimeRef,
    not_after: &Asn1TimeRef,
) -> Result<X509, String> {
    let mut name = X509NameBuilder::new().map_err(ssl)?;
    name.append_entry_by_text("CN", common_name).map_err(ssl)?;
    let name = name.build();
    let mut builder = X509Builder::new().map_err(ssl)?;
    builder.set_version(2).map_err(ssl)?;
    let mut serial = BigNum::new().map_err(ssl)?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false).map_err(ssl)?;
    let serial = serial.to_asn1_integer().map_err(ssl)?;
    builder.set_serial_number(&serial).map_err(ssl)?;
    builder.set_subject_name(&name).map_err(ssl)?;
    builder.set_issuer_name(&name).map_err(ssl)?;
    builder.set_pubkey(key).map_err(ssl)?;
    builder.set_not_before(not_before).map_err(ssl)?;
    builder.set_not_after(not_after).map_err(ssl)?;
    builder.sign(key, MessageDigest::sha256()).map_err(ssl)?;
    Ok(builder.build())
}

/// A self-signed certificate of a fresh RSA-2048 key, valid between two Unix times, as Entra's
/// "Certificate (Base64)" download: base64 DER, no armour, as a tenant's `certificates` take it.
pub fn rsa_certificate_base64(common_name: &str, not_before: i64, not_after: i64) -> Result<String, String> {
    let key = PKey::from_rsa(Rsa::generate(2048).map_err(ssl)?).map_err(ssl)?;
    let not_before = Asn1Time::from_unix(not_before).map_err(ssl)?;
    let not_after = Asn1Time::from_unix(not_after).map_err(ssl)?;
    let certificate = self_signed(&key, common_name, &not_before, &not_after)?;
    Ok(openssl::base64::encode_block(&certificate.to_der().map_err(ssl)?))
}
