//! The test IdP's side of Single Logout: its LogoutRequests (IdP-initiated logout) and its
//! LogoutResponses, in both bindings, signed the ways IdPs sign them (query signature for
//! Redirect, enveloped XML signature for POST), with the knobs the attack tests turn.

use std::io::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::idp::{SignOptions, TestIdp};
use crate::saml::ns::{self, alg};
use crate::saml::redirect::url_encode;
use crate::saml::sign::escape;
use crate::saml::time;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What an IdP's logout message says.
#[derive(Clone, Debug)]
pub struct LogoutSpec {
    pub id: String,
    pub issuer: String,
    pub destination: String,
    pub issue_instant: DateTime<Utc>,
    /// LogoutRequest only.
    pub not_on_or_after: Option<DateTime<Utc>>,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_indexes: Vec<String>,
    /// LogoutRequest: an EncryptedID element to put in place of the NameID.
    pub encrypted_id: Option<String>,
    /// LogoutResponse only.
    pub in_response_to: String,
    pub status: String,
}

impl LogoutSpec {
    /// An Entra-like message from `issuer` to the SP's `destination`, issued at `now`.
    pub fn new(issuer: &str, destination: &str, now: DateTime<Utc>) -> LogoutSpec {
        LogoutSpec {
            id: format!("_{}", super::idp::guid(now.timestamp_nanos_opt().unwrap_or_default() as u64)),
            issuer: issuer.to_string(),
            destination: destination.to_string(),
            issue_instant: now,
            not_on_or_after: Some(now + chrono::Duration::minutes(5)),
            name_id: "alice@contoso.com".to_string(),
            name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".to_string()),
            session_indexes: vec!["_session-1".to_string()],
            encrypted_id: None,
            in_response_to: String::new(),
            status: ns::STATUS_SUCCESS.to_string(),
        }
    }

    pub fn request_xml(&self) -> String {
        let mut out = format!(
            "<samlp:LogoutRequest xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\"",
            ns::PROTOCOL,
            ns::ASSERTION,
            escape(&self.id),
            time::format(self.issue_instant),
            escape(&self.destination)
        );
        if let Some(until) = self.not_on_or_after {
            out.push_str(&format!(" NotOnOrAfter=\"{}\"", time::format(until)));
        }
        out.push_str(&format!("><saml:Issuer>{}</saml:Issuer>", escape(&self.issuer)));
        match &self.encrypted_id {
            Some(encrypted) => out.push_str(encrypted),
            None => {
                let format = self.name_id_format.as_ref().map(|f| format!(" Format=\"{}\"", escape(f)));
                out.push_str(&format!(
                    "<saml:NameID{}>{}</saml:NameID>",
                    format.unwrap_or_default(),
                    escape(&self.name_id)
                ));
            }
        }
        for index in &self.session_indexes {
            out.push_str(&format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(index)));
        }
        out.push_str("</samlp:LogoutRequest>");
        out
    }

    pub fn response_xml(&self) -> String {
        format!(
            "<samlp:LogoutResponse xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\" InResponseTo=\"{}\"><saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode Value=\"{}\"/></samlp:Status></samlp:LogoutResponse>",
            ns::PROTOCOL,
            ns::ASSERTION,
            escape(&self.id),
            time::format(self.issue_instant),
            escape(&self.destination),
            escape(&self.in_response_to),
            escape(&self.issuer),
            escape(&self.status)
        )
    }
}

/// How a Redirect-binding query is signed and encoded.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    /// `None`: unsigned.
    pub sig_alg: Option<&'static str>,
    /// Lower-case `%2f` escapes, as Entra writes them (the signature covers what is sent).
    pub lowercase_escapes: bool,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions { sig_alg: Some(alg::RSA_SHA256), lowercase_escapes: false }
    }
}

fn encode(text: &str, lowercase: bool) -> String {
    let encoded = url_encode(text);
    if !lowercase {
        return encoded;
    }
    // Only the two hex digits after each '%' change case.
    let mut out = String::with_capacity(encoded.len());
    let mut after_percent = 0;
    for c in encoded.chars() {
        if after_percent > 0 {
            out.push(c.to_ascii_lowercase());
            after_percent -= 1;
        } else {
            if c == '%' {
                after_percent = 2;
            }
            out.push(c);
        }
    }
    out
}

/// The raw DEFLATE of `xml`, base64 (the Redirect binding's message value before URL encoding).
pub fn deflate_base64(xml: &[u8]) -> String {
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = deflater.write_all(xml);
    B64.encode(deflater.finish().unwrap_or_default())
}

impl TestIdp {
    /// A Redirect-binding query (`parameter` is `SAMLRequest` or `SAMLResponse`) carrying
    /// `xml`, signed over the exact octets sent (bindings 3.4.4.1).
    pub fn redirect_query(
        &self,
        parameter: &str,
        xml: &str,
        relay_state: Option<&str>,
        options: &QueryOptions,
    ) -> Result<String, String> {
        self.redirect_query_raw(parameter, &deflate_base64(xml.as_bytes()), relay_state, options)
    }

    /// [`TestIdp::redirect_query`] over an already deflated and base64-encoded message.
    pub fn redirect_query_raw(
        &self,
        parameter: &str,
        deflated_base64: &str,
        relay_state: Option<&str>,
        options: &QueryOptions,
    ) -> Result<String, String> {
        let lower = options.lowercase_escapes;
        let mut query = format!("{parameter}={}", encode(deflated_base64, lower));
        if let Some(state) = relay_state {
            query.push_str(&format!("&RelayState={}", encode(state, lower)));
        }
        if let Some(sig_alg) = options.sig_alg {
            query.push_str(&format!("&SigAlg={}", encode(sig_alg, lower)));
            let signature = self.sign_raw(query.as_bytes(), sig_alg)?;
            query.push_str(&format!("&Signature={}", encode(&B64.encode(signature), lower)));
        }
        Ok(query)
    }

    /// A POST-binding form value: `xml` with an enveloped signature on its root (`id`), base64.
    pub fn post_value(&self, xml: &str, id: &str, options: Option<&SignOptions>) -> Result<String, String> {
        let xml = match options {
            Some(options) => self.sign(xml, id, options)?,
            None => xml.to_string(),
        };
        Ok(B64.encode(xml))
    }
}
