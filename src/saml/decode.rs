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

/// True when the bytes look like an XML document rather than base64 (the CLI accepts both),
/// including one in an encoding [`wide_encoding`] recognizes, so that it is refused for its
/// encoding rather than as bad base64.
pub fn looks_like_xml(bytes: &[u8]) -> bool {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') || wide_encoding(bytes).is_some()
}

/// The name of the UTF-16 or UTF-32 form an XML document is in, recognized the way XML 1.0
/// Appendix F does: by a byte-order mark, or by the first non-whitespace character being `<`
/// in 2- or 4-byte units. Only UTF-8 is accepted (what is checked must be what libxml2
/// decodes), and without this such a document was answered as malformed XML rather than as an
/// unsupported encoding. A UTF-8 byte-order mark is not matched here: that is UTF-8.
pub fn wide_encoding(bytes: &[u8]) -> Option<&'static str> {
    // Longest first: the UTF-32LE mark starts with the UTF-16LE one.
    const MARKS: [(&[u8], &str); 4] = [
        (b"\xFF\xFE\x00\x00", "UTF-32LE"),
        (b"\x00\x00\xFE\xFF", "UTF-32BE"),
        (b"\xFF\xFE", "UTF-16LE"),
        (b"\xFE\xFF", "UTF-16BE"),
    ];
    if let Some((_, name)) = MARKS.iter().find(|(mark, _)| bytes.starts_with(mark)) {
        return Some(name);
    }
    // (unit width, index of the low byte, name); 4-byte units first, for the same reason.
    const LAYOUTS: [(usize, usize, &str); 4] =
        [(4, 0, "UTF-32LE"), (4, 3, "UTF-32BE"), (2, 0, "UTF-16LE"), (2, 1, "UTF-16BE")];
    LAYOUTS.iter().find_map(|&(width, low, name)| {
        // An ASCII character in this layout: its byte at `low`, zero bytes around it.
        let ascii = |unit: &[u8]| unit.iter().enumerate().all(|(i, &b)| i == low || b == 0).then_some(unit[low]);
        let first = bytes.chunks_exact(width).map(ascii).find(|c| !c.is_some_and(|c| c.is_ascii_whitespace()));
        (first == Some(Some(b'<'))).then_some(name)
    })
}
