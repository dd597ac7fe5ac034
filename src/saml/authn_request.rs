//! SP-initiated login: the AuthnRequest (SAML core 3.4.1) and its two bindings, HTTP-Redirect
//! (bindings 3.4: DEFLATE, query-string signature) and HTTP-POST (bindings 3.5: base64 form
//! field, enveloped XML signature). Pure: the ID's randomness and the instant are arguments.

use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::error::{Code, Error};
use super::ns;
pub use super::redirect::{url_encode, Parameter};
use super::sign::{escape, SigningKey};
use super::time;

pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const NAME_ID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// Bindings 3.4.3 / 3.5.3: "RelayState data MUST NOT exceed 80 bytes in length".
pub const MAX_RELAY_STATE_BYTES: usize = 80;

/// How the browser carries the request to the IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Redirect,
    Post,
}

impl Binding {
    /// The API's name for it (`"redirect"`, `"post"`); anything else is a malformed request.
    pub fn parse(text: &str) -> Result<Binding, Error> {
        match text {
            "redirect" => Ok(Binding::Redirect),
            "post" => Ok(Binding::Post),
            other => Err(Error::new(
                Code::MalformedRequest,
                format!("binding {} must be \"redirect\" or \"post\"", super::error::quote(other)),
            )),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Binding::Redirect => "redirect",
            Binding::Post => "post",
        }
    }

    /// The metadata Binding URI of the IdP endpoint this binding needs.
    pub const fn uri(self) -> &'static str {
        match self {
            Binding::Redirect => BINDING_REDIRECT,
            Binding::Post => BINDING_POST,
        }
    }
}

/// The request ID from 16 random bytes (128 bits, as SAML core 1.3.4 asks of identifiers):
/// `_` first because an xs:ID must not start with a digit.
pub fn request_id(random: &[u8; 16]) -> String {
    format!("_{}", super::hex::lower(random))
}

/// What one AuthnRequest says.
#[derive(Clone, Debug)]
pub struct AuthnRequest<'a> {
    pub id: &'a str,
    pub issue_instant: DateTime<Utc>,
    /// The IdP's SingleSignOnService for the chosen binding.
    pub destination: &'a str,
    pub acs_url: &'a str,
    /// The SP's entity ID.
    pub issuer: &'a str,
    pub name_id_format: &'a str,
    pub force_authn: bool,
    pub is_passive: bool,
    /// AuthnContextClassRef URIs, compared exactly (none: no RequestedAuthnContext).
    pub requested_authn_context: &'a [String],
}

/// The browser's side of one message: where to send it and what to carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// Send the browser to this URL (302 or a link).
    Redirect { url: String },
    /// Auto-submit a form to `action` with these fields (`value` in the field `parameter`
    /// names: SAMLRequest or SAMLResponse).
    Post { action: String, parameter: Parameter, value: String, relay_state: Option<String> },
}

/// One rendered protocol message on its way to the IdP: AuthnRequest, LogoutRequest or
/// LogoutResponse, all carried the same way.
#[derive(Clone, Debug)]
pub struct Outgoing<'a> {
    pub destination: &'a str,
    pub parameter: Parameter,
    /// The root's `ID`, which an enveloped signature references.
    pub id: &'a str,
    pub xml: String,
    /// Where the schema puts an enveloped Signature: right after Issuer (SAML core 5.4.1).
    pub signature_at: usize,
}

impl Outgoing<'_> {
    /// The message in `binding`, signed by `key` when given: the query signature of bindings
    /// 3.4.4.1, or an enveloped XML signature for POST (3.5.4).
    pub fn encode(
        self,
        binding: Binding,
        relay_state: Option<&str>,
        key: Option<&SigningKey>,
    ) -> Result<Encoded, Error> {
        check_relay_state(relay_state)?;
        match binding {
            Binding::Redirect => Ok(Encoded::Redirect {
                url: super::redirect::url(self.destination, self.parameter, &self.xml, relay_state, key)?,
            }),
            Binding::Post => {
                let xml = match key {
                    Some(key) => key.sign_enveloped(&self.xml, self.id, self.signature_at)?,
                    None => self.xml,
                };
                Ok(Encoded::Post {
                    action: self.destination.to_string(),
                    parameter: self.parameter,
                    value: base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()),
                    relay_state: relay_state.map(str::to_string),
                })
            }
        }
    }
}

/// Refuses relay state over the bindings' limit (an IdP may truncate or reject it, and
/// the caller would lose the state it meant to restore).
pub fn check_relay_state(relay_state: Option<&str>) -> Result<(), Error> {
    match relay_state {
        Some(state) if state.len() > MAX_RELAY_STATE_BYTES => Err(Error::new(
            Code::RelayStateTooLong,
            format!("relay_state is {} bytes; the SAML bindings allow at most {MAX_RELAY_STATE_BYTES}", state.len()),
        )),
        _ => Ok(()),
    }
}

impl AuthnRequest<'_> {
    /// The unsigned XML, and the byte offset just after Issuer where an enveloped signature
    /// belongs (the schema's order: Issuer, Signature, ..., NameIDPolicy, RequestedAuthnContext).
    pub fn render(&self) -> (String, usize) {
        let mut out = format!(
            "<samlp:AuthnRequest xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\" AssertionConsumerServiceURL=\"{}\" ProtocolBinding=\"{BINDING_POST}\"",
            ns::PROTOCOL,
            ns::ASSERTION,
            escape(self.id),
            time::format(self.issue_instant),
            escape(self.destination),
            escape(self.acs_url),
        );
        if self.force_authn {
            out.push_str(" ForceAuthn=\"true\"");
        }
        if self.is_passive {
            out.push_str(" IsPassive=\"true\"");
        }
        out.push_str(&format!("><saml:Issuer>{}</saml:Issuer>", escape(self.issuer)));
        let signature_at = out.len();
        out.push_str(&format!("<samlp:NameIDPolicy Format=\"{}\" AllowCreate=\"true\"/>", escape(self.name_id_format)));
        if !self.requested_authn_context.is_empty() {
            out.push_str("<samlp:RequestedAuthnContext Comparison=\"exact\">");
            for class in self.requested_authn_context {
                out.push_str(&format!("<saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef>", escape(class)));
            }
            out.push_str("</samlp:RequestedAuthnContext>");
        }
        out.push_str("</samlp:AuthnRequest>");
        (out, signature_at)
    }

    /// The request in `binding`, signed by `key` when given.
    pub fn encode(
        &self,
        binding: Binding,
        relay_state: Option<&str>,
        key: Option<&SigningKey>,
    ) -> Result<Encoded, Error> {
        let (xml, signature_at) = self.render();
        let outgoing =
            Outgoing { destination: self.destination, parameter: Parameter::Request, id: self.id, xml, signature_at };
        outgoing.encode(binding, relay_state, key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_underscore_and_32_hex_digits() {
        let id = request_id(&[0xab; 16]);
        assert_eq!(id.len(), 33);
        assert!(id.starts_with("_abab"));
    }

    #[test]
    fn relay_state_limit_is_80_bytes() {
        assert!(check_relay_state(Some(&"x".repeat(80))).is_ok());
        assert_eq!(check_relay_state(Some(&"x".repeat(81))).unwrap_err().code, Code::RelayStateTooLong);
        // Bytes, not characters: 41 two-byte characters are 82 bytes.
        assert_eq!(check_relay_state(Some(&"é".repeat(41))).unwrap_err().code, Code::RelayStateTooLong);
    }

    #[test]
    fn bindings_parse_strictly() {
        assert_eq!(Binding::parse("post").unwrap(), Binding::Post);
        assert_eq!(Binding::parse("POST").unwrap_err().code, Code::MalformedRequest);
        assert_eq!(Binding::parse("artifact").unwrap_err().code, Code::MalformedRequest);
    }
}
