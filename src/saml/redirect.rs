//! The HTTP-Redirect binding (SAML bindings 3.4) both ways: building a signed query for an
//! AuthnRequest, LogoutRequest or LogoutResponse, and taking apart a query the browser delivered
//! without ever re-encoding what was signed. Pure: bytes in, bytes out.

use std::io::{Read as _, Write as _};

use base64::Engine as _;

use super::error::{quote, Code, Error};
use super::sign::SigningKey;

/// `SAMLRequest` or `SAMLResponse`: which message a query or form carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parameter {
    Request,
    Response,
}

impl Parameter {
    pub const fn name(self) -> &'static str {
        match self {
            Parameter::Request => "SAMLRequest",
            Parameter::Response => "SAMLResponse",
        }
    }
}

/// Bindings 3.4.4.1: `parameter` is the raw DEFLATE (RFC 1951) of the XML, base64, URL-encoded;
/// the signature covers exactly `SAMLRequest=…&RelayState=…&SigAlg=…` as they appear in the URL,
/// and no XML signature is inside (the query signature replaces it).
pub fn url(
    destination: &str,
    parameter: Parameter,
    xml: &str,
    relay_state: Option<&str>,
    key: Option<&SigningKey>,
) -> Result<String, Error> {
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater.write_all(xml.as_bytes()).map_err(|e| Error::new(Code::Internal, format!("DEFLATE failed: {e}")))?;
    let deflated = deflater.finish().map_err(|e| Error::new(Code::Internal, format!("DEFLATE failed: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut query = format!("{}={}", parameter.name(), url_encode(&b64.encode(deflated)));
    if let Some(state) = relay_state {
        query.push_str(&format!("&RelayState={}", url_encode(state)));
    }
    if let Some(key) = key {
        query.push_str(&format!("&SigAlg={}", url_encode(key.algorithm())));
        let signature = key.sign(query.as_bytes())?;
        query.push_str(&format!("&Signature={}", url_encode(&b64.encode(signature))));
    }
    // An endpoint URL that already carries a query (some IdPs put the tenant there) keeps it.
    let separator = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{separator}{query}"))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters. The signed octets
/// are the encoded ones, so the IdP must see exactly these bytes: no `+` for spaces.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A received Redirect-binding query, its values still exactly as the browser sent them.
#[derive(Debug)]
pub struct Query<'a> {
    pub parameter: Parameter,
    /// The message parameter's raw (still percent-encoded) value.
    pub message: &'a str,
    pub relay_state: Option<&'a str>,
    pub sig_alg: Option<&'a str>,
    pub signature: Option<&'a str>,
}

fn query_invalid(message: impl Into<String>) -> Error {
    Error::new(Code::LogoutQueryInvalid, message)
}

impl<'a> Query<'a> {
    /// Splits a raw query string (with or without its leading `?`). Other parameters (the help
    /// desk's own) are ignored: nothing reads them and the signature does not cover them. Each
    /// SAML parameter at most once, in the order bindings 3.4.4.1 signs them: a duplicate would
    /// let the verifier and the reader see different values, and a query in another order is
    /// not the one the IdP sent.
    pub fn parse(raw: &'a str) -> Result<Query<'a>, Error> {
        let raw = raw.strip_prefix('?').unwrap_or(raw);
        let mut found: [Option<&'a str>; 5] = [None; 5];
        let mut last = None;
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (raw_name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Names are matched decoded, as every web framework reads them: `Relay%53tate` must
            // be the RelayState the signature covers (or refused), not an unknown name skipped
            // here while the caller's framework reads it as the RelayState.
            let name = percent_decode(raw_name)?;
            let Some(slot) = ["SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"]
                .iter()
                .position(|known| *known == name)
            else {
                continue;
            };
            if name != raw_name {
                return Err(query_invalid(format!("{name} is %-encoded in the query's parameter names")));
            }
            if found[slot].replace(value).is_some() {
                return Err(query_invalid(format!("{name} appears more than once in the query")));
            }
            // SAMLRequest and SAMLResponse share the first position.
            let position = slot.max(1);
            if last.is_some_and(|previous| previous >= position) {
                return Err(query_invalid(
                    "the query's SAML parameters are not in the order SAMLRequest|SAMLResponse, RelayState, SigAlg, Signature",
                ));
            }
            last = Some(position);
        }
        let [request, response, relay_state, sig_alg, signature] = found;
        let (parameter, message) = match (request, response) {
            (Some(message), None) => (Parameter::Request, message),
            (None, Some(message)) => (Parameter::Response, message),
            (Some(_), Some(_)) => return Err(query_invalid("the query carries both SAMLRequest and SAMLResponse")),
            (None, None) => return Err(query_invalid("the query carries neither SAMLRequest nor SAMLResponse")),
        };
        if sig_alg.is_some() != signature.is_some() {
            return Err(query_invalid("SigAlg and Signature come together or not at all"));
        }
        Ok(Query { parameter, message, relay_state, sig_alg, signature })
    }

    /// Bindings 3.4.4.1: the octets the signature covers, rebuilt from the values exactly as
    /// received (never decoded and encoded again: `%2f` and `%2F` are different octets, and an
    /// IdP may use either, as Entra's lower-case encoding shows).
    pub fn signed_octets(&self) -> Option<String> {
        let sig_alg = self.sig_alg?;
        let mut octets = format!("{}={}", self.parameter.name(), self.message);
        if let Some(state) = self.relay_state {
            octets.push_str(&format!("&RelayState={state}"));
        }
        octets.push_str(&format!("&SigAlg={sig_alg}"));
        Some(octets)
    }
}

/// Form decoding of one query value (`%XX`, and `+` as a space as browsers write it).
pub fn percent_decode(value: &str) -> Result<String, Error> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = value.get(i + 1..i + 3).ok_or_else(|| query_invalid("a truncated %-escape"))?;
                // Two hex digits exactly: from_str_radix alone would also take "+A".
                let byte = Some(hex)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| query_invalid(format!("{} is not a %-escape", quote(&value[i..i + 3]))))?;
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| query_invalid("a query value is not UTF-8"))
}

/// Raw DEFLATE, stopping with an error as soon as the output would pass `max_bytes`: a few
/// kilobytes of query inflate to gigabytes (a DEFLATE bomb), so the output is bounded, never
/// the input alone.
pub fn inflate(deflated: &[u8], max_bytes: usize) -> Result<Vec<u8>, Error> {
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Error::new(Code::LogoutDeflateInvalid, format!("the message is not raw DEFLATE data: {e}")))?;
    if out.len() > max_bytes {
        return Err(Error::new(
            Code::LogoutInflatedTooLarge,
            format!("the message inflates to more than {max_bytes} bytes (max_document_bytes)"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_leaves_only_unreserved_characters() {
        assert_eq!(url_encode("a+b/c=d e&é~"), "a%2Bb%2Fc%3Dd%20e%26%C3%A9~");
    }

    #[test]
    fn queries_keep_their_raw_values_and_refuse_duplicates_and_reordering() {
        let q = Query::parse("?x=1&SAMLResponse=a%2fb&RelayState=r&SigAlg=s%3A&Signature=z&y=2").unwrap();
        assert_eq!(q.parameter, Parameter::Response);
        assert_eq!(q.signed_octets().unwrap(), "SAMLResponse=a%2fb&RelayState=r&SigAlg=s%3A");
        for bad in [
            "SAMLRequest=a&SAMLRequest=b",
            "SAMLRequest=a&SAMLResponse=b",
            "RelayState=r",
            "SigAlg=s&SAMLRequest=a&Signature=z",
            "SAMLRequest=a&Signature=z&SigAlg=s",
            "SAMLRequest=a&SigAlg=s",
            "RelayState=r&SAMLRequest=a",
            // A name a framework decodes to RelayState, beside the signed one.
            "Relay%53tate=evil&SAMLRequest=a&RelayState=r&SigAlg=s&Signature=z",
            "SAMLRequest=a&Relay%53tate=r&SigAlg=s&Signature=z",
        ] {
            assert_eq!(Query::parse(bad).unwrap_err().code, Code::LogoutQueryInvalid, "{bad}");
        }
        assert!(Query::parse("SAMLRequest=a").unwrap().signed_octets().is_none());
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflater.write_all(&vec![b'a'; 100_000]).unwrap();
        let bomb = deflater.finish().unwrap();
        assert_eq!(inflate(&bomb, 100_000).unwrap().len(), 100_000);
        assert_eq!(inflate(&bomb, 99_999).unwrap_err().code, Code::LogoutInflatedTooLarge);
        assert_eq!(inflate(b"\xff\xff\xff", 10).unwrap_err().code, Code::LogoutDeflateInvalid);
    }

    #[test]
    fn percent_decoding_is_form_decoding() {
        assert_eq!(percent_decode("a%2Fb+c%2b").unwrap(), "a/b c+");
        assert!(percent_decode("a%2").is_err() && percent_decode("%zz").is_err());
        assert!(percent_decode("%+A").is_err() && percent_decode("%-1").is_err(), "two hex digits exactly");
    }
}
