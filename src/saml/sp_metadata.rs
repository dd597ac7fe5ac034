//! The SP's own metadata (saml-metadata-2.0-os 2.4.4): what an administrator uploads to the IdP
//! (Entra: "Upload metadata file") so that entity ID, ACS URL and signing certificates need no
//! typing. Pure: the instant and the document ID are arguments.

use chrono::{DateTime, Utc};

use super::authn_request::{BINDING_POST, BINDING_REDIRECT};
use super::error::Error;
use super::metadata::METADATA;
use super::ns;
use super::sign::{escape, SigningKey};
use super::time;

/// What the SP publishes.
#[derive(Clone, Debug)]
pub struct SpMetadata<'a> {
    /// `ID` of the EntityDescriptor (the signature's Reference points at it).
    pub id: &'a str,
    pub entity_id: &'a str,
    /// Every ACS URL, the default (the tenant's `acs_url`) first.
    pub acs_urls: &'a [&'a str],
    /// `slo_url`: published as SingleLogoutService for both bindings.
    pub slo_url: Option<&'a str>,
    pub name_id_format: &'a str,
    /// Published with `use="signing"`; the first one also signs the document.
    pub signing_keys: &'a [SigningKey],
    /// Base64 DER certificates published with `use="encryption"`.
    pub encryption_certificates: &'a [String],
    pub valid_until: DateTime<Utc>,
}

impl SpMetadata<'_> {
    /// The document, signed with the first signing key when there is one.
    pub fn render(&self) -> Result<String, Error> {
        let mut out = format!(
            "<md:EntityDescriptor xmlns:md=\"{METADATA}\" xmlns:ds=\"{}\" ID=\"{}\" entityID=\"{}\" validUntil=\"{}\">",
            ns::DSIG,
            escape(self.id),
            escape(self.entity_id),
            time::format(self.valid_until),
        );
        // Metadata 2.3.2: the Signature is the EntityDescriptor's first child.
        let signature_at = out.len();
        out.push_str(&format!(
            "<md:SPSSODescriptor AuthnRequestsSigned=\"{}\" WantAssertionsSigned=\"true\" protocolSupportEnumeration=\"{}\">",
            !self.signing_keys.is_empty(),
            ns::PROTOCOL
        ));
        let signing: Vec<String> =
            self.signing_keys.iter().map(SigningKey::certificate_base64).collect::<Result<_, _>>()?;
        key_descriptors(&mut out, "signing", &signing);
        key_descriptors(&mut out, "encryption", self.encryption_certificates);
        // Metadata 2.4.2 order: SingleLogoutService before NameIDFormat. One endpoint takes
        // requests and responses alike, so no ResponseLocation.
        if let Some(slo_url) = self.slo_url {
            for binding in [BINDING_REDIRECT, BINDING_POST] {
                out.push_str(&format!(
                    "<md:SingleLogoutService Binding=\"{binding}\" Location=\"{}\"/>",
                    escape(slo_url)
                ));
            }
        }
        out.push_str(&format!("<md:NameIDFormat>{}</md:NameIDFormat>", escape(self.name_id_format)));
        // Metadata 2.4.4: each endpoint with its own index, which an AuthnRequest may name;
        // the first is the default the IdP answers on when a request names none.
        for (index, url) in self.acs_urls.iter().enumerate() {
            let default = if index == 0 { " isDefault=\"true\"" } else { "" };
            out.push_str(&format!(
                "<md:AssertionConsumerService Binding=\"{BINDING_POST}\" Location=\"{}\" index=\"{index}\"{default}/>",
                escape(url)
            ));
        }
        out.push_str("</md:SPSSODescriptor></md:EntityDescriptor>");
        match self.signing_keys.first() {
            Some(key) => key.sign_enveloped(&out, self.id, signature_at),
            None => Ok(out),
        }
    }
}

/// One KeyDescriptor per certificate (rollover: the IdP trusts each while it is listed).
fn key_descriptors(out: &mut String, usage: &str, certificates: &[String]) {
    for certificate in certificates {
        out.push_str(&format!(
            "<md:KeyDescriptor use=\"{usage}\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        ));
    }
}
