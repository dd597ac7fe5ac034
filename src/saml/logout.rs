//! Single Logout, the SP's messages (SAML core 3.7): the LogoutRequest of SP-initiated logout
//! and the LogoutResponse to an IdP's LogoutRequest. Rendered here, carried by the same code as
//! AuthnRequests (`authn_request::Outgoing`: DEFLATE and query signature, or an enveloped XML
//! signature). Pure: the ID and the instant are arguments. Incoming messages: `logout_check`.

use chrono::{DateTime, Utc};

use super::authn_request::{Outgoing, Parameter};
use super::error::{quote, Code, Error};
use super::ns;
use super::sign::escape;
use super::time;

pub const STATUS_PREFIX: &str = "urn:oasis:names:tc:SAML:2.0:status:";

/// A NameID as a LogoutRequest names the user (core 2.2.3): the value and qualifiers exactly as
/// the login's assertion carried them, or the IdP cannot find the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NameId {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_qualifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_name_qualifier: Option<String>,
}

/// What the SP's LogoutRequest says.
#[derive(Clone, Debug)]
pub struct LogoutRequest<'a> {
    pub id: &'a str,
    pub issue_instant: DateTime<Utc>,
    /// The IdP's SingleLogoutService for the chosen binding.
    pub destination: &'a str,
    /// The SP's entity ID.
    pub issuer: &'a str,
    pub name_id: &'a NameId,
    pub session_indexes: &'a [String],
    /// Core 3.7.1: the time at which the request expires.
    pub not_on_or_after: Option<DateTime<Utc>>,
}

impl LogoutRequest<'_> {
    /// The unsigned XML in the schema's order: Issuer, (Signature), NameID, SessionIndex*.
    pub fn render(&self) -> Outgoing<'_> {
        let mut xml = format!(
            "<samlp:LogoutRequest xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\"",
            ns::PROTOCOL,
            ns::ASSERTION,
            escape(self.id),
            time::format(self.issue_instant),
            escape(self.destination),
        );
        if let Some(until) = self.not_on_or_after {
            xml.push_str(&format!(" NotOnOrAfter=\"{}\"", time::format(until)));
        }
        xml.push_str(&format!("><saml:Issuer>{}</saml:Issuer>", escape(self.issuer)));
        let signature_at = xml.len();
        xml.push_str("<saml:NameID");
        for (name, value) in [
            ("Format", &self.name_id.format),
            ("NameQualifier", &self.name_id.name_qualifier),
            ("SPNameQualifier", &self.name_id.sp_name_qualifier),
        ] {
            if let Some(value) = value {
                xml.push_str(&format!(" {name}=\"{}\"", escape(value)));
            }
        }
        xml.push_str(&format!(">{}</saml:NameID>", escape(&self.name_id.value)));
        for index in self.session_indexes {
            xml.push_str(&format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(index)));
        }
        xml.push_str("</samlp:LogoutRequest>");
        Outgoing { destination: self.destination, parameter: Parameter::Request, id: self.id, xml, signature_at }
    }
}

/// A status code (core 3.2.2.2): `success`, `requester`, `responder`, `version_mismatch`, or a
/// full `urn:oasis:names:tc:SAML:2.0:status:` URI.
pub fn status_uri(text: &str) -> Result<String, Error> {
    let uri = match text {
        "success" => "Success",
        "requester" => "Requester",
        "responder" => "Responder",
        "version_mismatch" => "VersionMismatch",
        uri if uri.starts_with(STATUS_PREFIX) && super::url::identifier_problem(uri).is_none() => return Ok(uri.into()),
        other => {
            return Err(Error::new(
                Code::MalformedRequest,
                format!(
                    "status {} must be success, requester, responder, version_mismatch or a {STATUS_PREFIX}… URI",
                    quote(other)
                ),
            ))
        }
    };
    Ok(format!("{STATUS_PREFIX}{uri}"))
}

/// What the SP's LogoutResponse says.
#[derive(Clone, Debug)]
pub struct LogoutResponse<'a> {
    pub id: &'a str,
    pub in_response_to: &'a str,
    pub issue_instant: DateTime<Utc>,
    /// The IdP's SingleLogoutService ResponseLocation (else Location) for the binding.
    pub destination: &'a str,
    pub issuer: &'a str,
    /// Top-level StatusCode URI.
    pub status: &'a str,
    /// Second-level StatusCode URI (e.g. `…:status:PartialLogout`).
    pub second_level_status: Option<&'a str>,
    pub status_message: Option<&'a str>,
}

impl LogoutResponse<'_> {
    /// The unsigned XML: Issuer, (Signature), Status.
    pub fn render(&self) -> Outgoing<'_> {
        let mut xml = format!(
            "<samlp:LogoutResponse xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"{}\" InResponseTo=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\"><saml:Issuer>{}</saml:Issuer>",
            ns::PROTOCOL,
            ns::ASSERTION,
            escape(self.id),
            escape(self.in_response_to),
            time::format(self.issue_instant),
            escape(self.destination),
            escape(self.issuer),
        );
        let signature_at = xml.len();
        xml.push_str(&format!("<samlp:Status><samlp:StatusCode Value=\"{}\"", escape(self.status)));
        match self.second_level_status {
            Some(second) => {
                xml.push_str(&format!("><samlp:StatusCode Value=\"{}\"/></samlp:StatusCode>", escape(second)))
            }
            None => xml.push_str("/>"),
        }
        if let Some(message) = self.status_message {
            xml.push_str(&format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", escape(message)));
        }
        xml.push_str("</samlp:Status></samlp:LogoutResponse>");
        Outgoing { destination: self.destination, parameter: Parameter::Response, id: self.id, xml, signature_at }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_names_map_to_core_uris_and_nothing_else_is_accepted() {
        assert_eq!(status_uri("success").unwrap(), "urn:oasis:names:tc:SAML:2.0:status:Success");
        assert_eq!(
            status_uri("urn:oasis:names:tc:SAML:2.0:status:PartialLogout").unwrap(),
            "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
        );
        for bad in ["Success", "urn:evil", "urn:oasis:names:tc:SAML:2.0:status:A B"] {
            assert_eq!(status_uri(bad).unwrap_err().code, Code::MalformedRequest, "{bad}");
        }
    }
}
