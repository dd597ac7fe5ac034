//! The SAMLResponse as the browser posted it: base64 (HTTP-POST binding, SAML bindings 3.5.4),
//! line breaks tolerated.

use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
use base64::Engine as _;

use super::error::{Code, Error};

const LENIENT_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 with embedded whitespace. The size limit is checked on the encoded length
/// before any allocation proportional to the input.
pub fn base64(encoded: &[u8], max_decoded: usize) -> Result<Vec<u8>, Error> {
    if encoded.len() / 4 * 3 > max_decoded.saturating_add(3) * 2 {
        // Even with generous whitespace this cannot fit; refuse without scanning it.
        return Err(too_large(max_decoded));
    }
    // Browsers post one unbroken line; only wrapped input pays for a whitespace-free copy.
    let decoded = match LENIENT_PADDING.decode(encoded) {
        Ok(decoded) => decoded,
        Err(_) => {
            let compact: Vec<u8> = encoded.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            if compact.is_empty() {
                return Err(Error::new(Code::Base64Invalid, "SAMLResponse is empty"));
            }
            LENIENT_PADDING
                .decode(&compact)
                .map_err(|e| Error::new(Code::Base64Invalid, format!("SAMLResponse is not base64: {e}")))?
        }
    };
    if decoded.is_empty() {
        return Err(Error::new(Code::Base64Invalid, "SAMLResponse is empty"));
    }
    if decoded.len() > max_decoded {
        return Err(too_large(max_decoded));
    }
    Ok(decoded)
}

fn too_large(max: usize) -> Error {
    Error::new(Code::PayloadTooLarge, format!("decoded SAMLResponse exceeds {max} bytes"))
}

/// True when the bytes look like an XML document rather than base64 (the CLI accepts both).
pub fn looks_like_xml(bytes: &[u8]) -> bool {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}
