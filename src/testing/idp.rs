//! A tiny identity provider that signs Entra-shaped SAML responses with a freshly generated key.
//!
//! Used by the `demo` command, the integration and attack tests, and the benchmarks. It signs
//! with the same C14N code the verifier uses, so it is not an independent oracle: the shared
//! conformance corpus (real IdP output, verified with xmlsec1) is what proves the verifier
//! interoperates.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use openssl::x509::X509;

use super::certificate;
use crate::saml::ns::{self, alg};
use crate::saml::time;
use crate::saml::xml::{self, C14nMode, Node};

/// A signing identity: private key plus self-signed certificate.
pub struct TestIdp {
    key: PKey<Private>,
    cert: X509,
}

/// Which parts of a response carry a signature (Entra offers all three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    Assertion,
    Response,
    Both,
    Unsigned,
}

/// Algorithms and options for one signature.
#[derive(Clone, Debug)]
pub struct SignOptions {
    pub signature_method: &'static str,
    pub digest_method: &'static str,
    /// Put the certificate into KeyInfo (Entra does; the verifier ignores it).
    pub key_info: bool,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions { signature_method: alg::RSA_SHA256, digest_method: alg::SHA256, key_info: true }
    }
}

fn ssl(e: openssl::error::ErrorStack) -> String {
    e.to_string()
}

impl TestIdp {
    /// A new RSA-2048 identity.
    pub fn generate() -> Result<TestIdp, String> {
        TestIdp::generate_rsa(2048)
    }

    /// A new RSA identity of `bits` (a weak one, to test the key-strength floor).
    pub fn generate_rsa(bits: u32) -> Result<TestIdp, String> {
        let key = PKey::from_rsa(Rsa::generate(bits).map_err(ssl)?).map_err(ssl)?;
        TestIdp::with_key(key)
    }

    /// A new ECDSA P-256 identity.
    pub fn generate_ec() -> Result<TestIdp, String> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ssl)?;
        let key = PKey::from_ec_key(EcKey::generate(&group).map_err(ssl)?).map_err(ssl)?;
        TestIdp::with_key(key)
    }

    fn with_key(key: PKey<Private>) -> Result<TestIdp, String> {
        let (not_before, not_after) =
            (Asn1Time::days_from_now(0).map_err(ssl)?, Asn1Time::days_from_now(365).map_err(ssl)?);
        let cert = certificate::self_signed(&key, "saml-validator test IdP", &not_before, &not_after)?;
        Ok(TestIdp { key, cert })
    }

    /// The private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), e.g. to act as an SP decryption key.
    pub fn private_key_pem(&self) -> String {
        String::from_utf8(self.key.private_key_to_pem_pkcs8().unwrap_or_default()).unwrap_or_default()
    }

    /// The private key as PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`); empty for EC keys.
    pub fn rsa_private_key_pem(&self) -> String {
        let pem = self.key.rsa().and_then(|rsa| rsa.private_key_to_pem());
        String::from_utf8(pem.unwrap_or_default()).unwrap_or_default()
    }

    pub(crate) fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// The certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap_or_default()).unwrap_or_default()
    }

    /// The certificate as Entra's "Certificate (Base64)" download: base64 DER, no armour.
    pub fn certificate_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.cert.to_der().unwrap_or_default())
    }

    /// Signs the element whose `ID` is `id` inside `document`, inserting an enveloped signature
    /// right after that element's Issuer (SAML core 5.4.1 placement). Returns the new document.
    pub fn sign(&self, document: &str, id: &str, options: &SignOptions) -> Result<String, String> {
        let digest = {
            let doc = xml::parse(document.as_bytes()).map_err(|e| e.to_string())?;
            let root = doc.root().ok_or("no root")?;
            let element = find_by_id(root, id).ok_or_else(|| format!("no element with ID {id}"))?;
            let c14n = doc.canonicalize(element, None, C14nMode::Exclusive10, &[])?;
            hash(digest_md(options.digest_method)?, &c14n).map_err(ssl)?
        };
        let b64 = &base64::engine::general_purpose::STANDARD;
        let signed_info = format!(
            concat!(
                "<SignedInfo><CanonicalizationMethod Algorithm=\"{c14n}\"/><SignatureMethod Algorithm=\"{sm}\"/>",
                "<Reference URI=\"#{id}\"><Transforms><Transform Algorithm=\"{env}\"/><Transform Algorithm=\"{c14n}\"/>",
                "</Transforms><DigestMethod Algorithm=\"{dm}\"/><DigestValue>{dv}</DigestValue></Reference></SignedInfo>"
            ),
            c14n = alg::EXC_C14N_10,
            sm = options.signature_method,
            id = id,
            env = alg::ENVELOPED,
            dm = options.digest_method,
            dv = b64.encode(digest),
        );
        let info_c14n = {
            let wrapper = format!("<Signature xmlns=\"{}\">{signed_info}</Signature>", ns::DSIG);
            let doc = xml::parse(wrapper.as_bytes()).map_err(|e| e.to_string())?;
            let root = doc.root().ok_or("no root")?;
            let info = root.elements().next().ok_or("no SignedInfo")?;
            doc.canonicalize(info, None, C14nMode::Exclusive10, &[])?
        };
        let signature_value = self.sign_bytes(&info_c14n, options.signature_method)?;
        let key_info = if options.key_info {
            format!(
                "<KeyInfo><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo>",
                self.certificate_base64()
            )
        } else {
            String::new()
        };
        let signature = format!(
            "<Signature xmlns=\"{}\">{signed_info}<SignatureValue>{}</SignatureValue>{key_info}</Signature>",
            ns::DSIG,
            b64.encode(signature_value)
        );
        // SAML core 5.4.1 puts the Signature after the Issuer; metadata (no Issuer) first.
        let at = issuer_end(document, id)
            .or_else(|| start_tag_end(document, id))
            .ok_or("cannot find where to place the Signature")?;
        Ok(format!("{}{}{}", &document[..at], signature, &document[at..]))
    }

    /// A raw signature over `data` with `method` (benchmarks compare against this).
    pub fn sign_raw(&self, data: &[u8], method: &str) -> Result<Vec<u8>, String> {
        self.sign_bytes(data, method)
    }

    fn sign_bytes(&self, data: &[u8], method: &str) -> Result<Vec<u8>, String> {
        let md = match method {
            alg::RSA_SHA1 | alg::ECDSA_SHA1 => MessageDigest::sha1(),
            alg::RSA_SHA256 | alg::ECDSA_SHA256 => MessageDigest::sha256(),
            alg::RSA_SHA384 | alg::ECDSA_SHA384 => MessageDigest::sha384(),
            alg::RSA_SHA512 | alg::ECDSA_SHA512 => MessageDigest::sha512(),
            other => return Err(format!("test IdP cannot sign with {other}")),
        };
        let mut signer = Signer::new(md, &self.key).map_err(ssl)?;
        let der = signer.sign_oneshot_to_vec(data).map_err(ssl)?;
        if self.key.ec_key().is_err() {
            return Ok(der);
        }
        // XML-DSig wants r || s, each left-padded to the field size.
        let sig = EcdsaSig::from_der(&der).map_err(ssl)?;
        let width = usize::try_from(self.key.bits()).unwrap_or(256).div_ceil(8);
        let mut out = Vec::with_capacity(width * 2);
        for part in [sig.r(), sig.s()] {
            let bytes = part.to_vec_padded(i32::try_from(width).unwrap_or(32)).map_err(ssl)?;
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }
}

fn digest_md(method: &str) -> Result<MessageDigest, String> {
    match method {
        alg::SHA1 => Ok(MessageDigest::sha1()),
        alg::SHA256 => Ok(MessageDigest::sha256()),
        alg::SHA384 => Ok(MessageDigest::sha384()),
        alg::SHA512 => Ok(MessageDigest::sha512()),
        other => Err(format!("test IdP cannot digest with {other}")),
    }
}

fn find_by_id<'a>(node: Node<'a>, id: &str) -> Option<Node<'a>> {
    if node.attribute("ID").is_some_and(|v| v.get() == id) {
        return Some(node);
    }
    node.elements().find_map(|child| find_by_id(child, id))
}

/// Byte offset just after the start tag that carries `ID="id"`.
fn start_tag_end(document: &str, id: &str) -> Option<usize> {
    let start = document.find(&format!("ID=\"{id}\""))?;
    Some(start + document[start..].find('>')? + 1)
}

/// Byte offset just after the closing tag of the first Issuer following the start tag that
/// carries `ID="id"`.
fn issuer_end(document: &str, id: &str) -> Option<usize> {
    let start = document.find(&format!("ID=\"{id}\""))?;
    let mut from = start;
    loop {
        let found = from + document[from..].find("Issuer>")?;
        let tag_start = document[..found].rfind('<')?;
        if document[tag_start..].starts_with("</") {
            return Some(found + "Issuer>".len());
        }
        from = found + 1;
    }
}

/// The same escaping as the service's own documents: what a test signs parses back as written.
pub use crate::saml::sign::escape;

/// The content of an Entra ID style SAML response, every field open to tests.
#[derive(Clone, Debug)]
pub struct ResponseSpec {
    pub response_id: String,
    pub assertion_id: String,
    pub issuer: String,
    pub destination: Option<String>,
    pub in_response_to: Option<String>,
    pub recipient: String,
    pub audience: String,
    pub name_id: String,
    pub name_id_format: String,
    pub status_code: String,
    pub issue_instant: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    /// Conditions NotOnOrAfter.
    pub not_on_or_after: DateTime<Utc>,
    /// SubjectConfirmationData NotOnOrAfter.
    pub confirmation_not_on_or_after: DateTime<Utc>,
    pub authn_instant: DateTime<Utc>,
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    /// AuthnContextClassRef of the AuthnStatement.
    pub authn_context: String,
    pub attributes: Vec<(String, Vec<String>)>,
}

/// Claim URIs Entra ID uses.
pub mod entra {
    pub const TENANT_ID: &str = "http://schemas.microsoft.com/identity/claims/tenantid";
    pub const OBJECT_ID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
    pub const DISPLAY_NAME: &str = "http://schemas.microsoft.com/identity/claims/displayname";
    pub const GROUPS: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";
    pub const GROUPS_LINK: &str = "http://schemas.microsoft.com/claims/groups.link";
    pub const IDP: &str = "http://schemas.microsoft.com/identity/claims/identityprovider";
    pub const AMR: &str = "http://schemas.microsoft.com/claims/authnmethodsreferences";
    pub const GIVEN_NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname";
    pub const SURNAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname";
    pub const EMAIL: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
    pub const NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
}

/// A deterministic pseudo-GUID, so that generated documents differ per `seed` without a RNG.
pub fn guid(seed: u64) -> String {
    let a = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let b = a.rotate_left(17) ^ 0xD1B5_4A32_D192_ED03;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16,
        (b >> 48) as u16,
        b & 0xFFFF_FFFF_FFFF
    )
}

impl ResponseSpec {
    /// An Entra ID response for `groups` groups, issued at `now`, valid for an hour, answering
    /// the AuthnRequest `request_id` for the help desk described by the arguments.
    pub fn entra(
        idp_entity_id: &str,
        sp_entity_id: &str,
        acs_url: &str,
        request_id: Option<&str>,
        now: DateTime<Utc>,
        groups: usize,
        seed: u64,
    ) -> ResponseSpec {
        let tenant = guid(7);
        let object_id = guid(seed ^ 0xABCD);
        let attributes = vec![
            (entra::TENANT_ID.to_string(), vec![tenant]),
            (entra::OBJECT_ID.to_string(), vec![object_id]),
            (entra::DISPLAY_NAME.to_string(), vec!["Ada Lovelace".to_string()]),
            (entra::GROUPS.to_string(), (0..groups as u64).map(|g| guid(1000 + g)).collect()),
            (entra::IDP.to_string(), vec![idp_entity_id.to_string()]),
            (
                entra::AMR.to_string(),
                vec!["http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password".to_string()],
            ),
            (entra::GIVEN_NAME.to_string(), vec!["Ada".to_string()]),
            (entra::SURNAME.to_string(), vec!["Lovelace".to_string()]),
            (entra::EMAIL.to_string(), vec!["ada@contoso.example".to_string()]),
            (entra::NAME.to_string(), vec!["ada@contoso.example".to_string()]),
        ];
        ResponseSpec {
            response_id: format!("_{}", guid(seed)),
            assertion_id: format!("_{}", guid(seed.wrapping_add(0x5555_5555))),
            issuer: idp_entity_id.to_string(),
            destination: Some(acs_url.to_string()),
            in_response_to: request_id.map(str::to_string),
            recipient: acs_url.to_string(),
            audience: sp_entity_id.to_string(),
            name_id: "ada@contoso.example".to_string(),
            name_id_format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".to_string(),
            status_code: ns::STATUS_SUCCESS.to_string(),
            issue_instant: now,
            not_before: now - Duration::minutes(5),
            not_on_or_after: now + Duration::hours(1),
            confirmation_not_on_or_after: now + Duration::hours(1),
            authn_instant: now - Duration::seconds(2),
            session_not_on_or_after: None,
            authn_context: "urn:oasis:names:tc:SAML:2.0:ac:classes:Password".to_string(),
            attributes,
        }
    }

    /// The unsigned response XML, in Entra's layout (single line, default-namespace Assertion).
    pub fn render(&self) -> String {
        let e = escape;
        let t = |instant: DateTime<Utc>| time::format(instant);
        let mut out = String::with_capacity(2048 + self.attributes.len() * 160);
        out.push_str(&format!(
            "<samlp:Response ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\"",
            self.response_id,
            t(self.issue_instant)
        ));
        if let Some(destination) = &self.destination {
            out.push_str(&format!(" Destination=\"{}\"", e(destination)));
        }
        if let Some(request) = &self.in_response_to {
            out.push_str(&format!(" InResponseTo=\"{}\"", e(request)));
        }
        out.push_str(&format!(" xmlns:samlp=\"{}\">", ns::PROTOCOL));
        out.push_str(&format!("<Issuer xmlns=\"{}\">{}</Issuer>", ns::ASSERTION, e(&self.issuer)));
        out.push_str(&format!("<samlp:Status><samlp:StatusCode Value=\"{}\"/></samlp:Status>", e(&self.status_code)));
        out.push_str(&self.render_assertion());
        out.push_str("</samlp:Response>");
        out
    }

    /// The unsigned Assertion element alone.
    pub fn render_assertion(&self) -> String {
        let e = escape;
        let t = |instant: DateTime<Utc>| time::format(instant);
        let mut out = String::with_capacity(1536 + self.attributes.len() * 160);
        out.push_str(&format!(
            "<Assertion ID=\"{}\" IssueInstant=\"{}\" Version=\"2.0\" xmlns=\"{}\"><Issuer>{}</Issuer>",
            self.assertion_id,
            t(self.issue_instant),
            ns::ASSERTION,
            e(&self.issuer)
        ));
        out.push_str(&format!(
            "<Subject><NameID Format=\"{}\">{}</NameID><SubjectConfirmation Method=\"{}\"><SubjectConfirmationData",
            e(&self.name_id_format),
            e(&self.name_id),
            ns::CM_BEARER
        ));
        if let Some(request) = &self.in_response_to {
            out.push_str(&format!(" InResponseTo=\"{}\"", e(request)));
        }
        out.push_str(&format!(
            " NotOnOrAfter=\"{}\" Recipient=\"{}\"/></SubjectConfirmation></Subject>",
            t(self.confirmation_not_on_or_after),
            e(&self.recipient)
        ));
        out.push_str(&format!(
            "<Conditions NotBefore=\"{}\" NotOnOrAfter=\"{}\"><AudienceRestriction><Audience>{}</Audience></AudienceRestriction></Conditions>",
            t(self.not_before),
            t(self.not_on_or_after),
            e(&self.audience)
        ));
        out.push_str("<AttributeStatement>");
        for (name, values) in &self.attributes {
            out.push_str(&format!("<Attribute Name=\"{}\">", e(name)));
            for value in values {
                out.push_str(&format!("<AttributeValue>{}</AttributeValue>", e(value)));
            }
            out.push_str("</Attribute>");
        }
        out.push_str("</AttributeStatement>");
        out.push_str(&format!("<AuthnStatement AuthnInstant=\"{}\"", t(self.authn_instant)));
        if let Some(end) = self.session_not_on_or_after {
            out.push_str(&format!(" SessionNotOnOrAfter=\"{}\"", t(end)));
        }
        out.push_str(&format!(
            " SessionIndex=\"{}\"><AuthnContext><AuthnContextClassRef>{}</AuthnContextClassRef></AuthnContext></AuthnStatement></Assertion>",
            self.assertion_id,
            e(&self.authn_context)
        ));
        out
    }

    /// Renders and signs as `signing` says, with default (RSA-SHA256) options.
    pub fn signed(&self, idp: &TestIdp, signing: Signing) -> Result<String, String> {
        self.signed_with(idp, signing, &SignOptions::default())
    }

    pub fn signed_with(&self, idp: &TestIdp, signing: Signing, options: &SignOptions) -> Result<String, String> {
        let mut xml = self.render();
        if matches!(signing, Signing::Assertion | Signing::Both) {
            xml = idp.sign(&xml, &self.assertion_id, options)?;
        }
        if matches!(signing, Signing::Response | Signing::Both) {
            xml = idp.sign(&xml, &self.response_id, options)?;
        }
        Ok(xml)
    }
}

/// Base64 as the browser posts it.
pub fn post_binding(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

/// SAML metadata for an IdP publishing `signing` certificates (e.g. during a key rollover), as
/// an IdP's metadata endpoint would serve it. Sign it with [`TestIdp::sign`] on `ID="_metadata"`.
pub fn idp_metadata(entity_id: &str, signing: &[&TestIdp], cache_duration: Option<&str>) -> String {
    let mut out = format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" ID=\"_metadata\" entityID=\"{}\"",
        escape(entity_id)
    );
    if let Some(duration) = cache_duration {
        out.push_str(&format!(" cacheDuration=\"{duration}\""));
    }
    out.push_str("><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">");
    for idp in signing {
        out.push_str(&format!(
            "<md:KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"{}\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></md:KeyDescriptor>",
            ns::DSIG,
            idp.certificate_base64()
        ));
    }
    // Metadata 2.4.1 order: SingleLogoutService (SSODescriptorType) before SingleSignOnService.
    out.push_str(&format!(
        "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{}saml2\"/>",
        escape(entity_id)
    ));
    out.push_str(&format!(
        "<md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{}saml2\"/>",
        escape(entity_id)
    ));
    out.push_str("</md:IDPSSODescriptor></md:EntityDescriptor>");
    out
}
