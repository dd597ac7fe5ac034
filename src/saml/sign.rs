//! Signing as a service provider: the SP's own key signs AuthnRequests (both bindings) and its
//! metadata. Pure: the key arrives as PEM text (the configuration layer reads the files), the
//! document as a string; nothing here reads the clock or the disk.
//!
//! The enveloped XML signature is built with this crate's own exclusive C14N (`c14n.rs`), the
//! same code that verifies IdP signatures, and checked against libxml2's in debug builds;
//! xmlsec1 verifies the result in tests/all/authn_requests.rs, so the two cannot drift together.

use base64::Engine as _;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use openssl::x509::X509;

use super::c14n;
use super::error::{Code, Error};
use super::ns::{self, alg};
use super::xml::{self, C14nMode, Node};

/// An SP signing key with its certificate, checked to belong together when loaded.
#[derive(Clone)]
pub struct SigningKey {
    key: PKey<Private>,
    certificate: X509,
    /// SHA-256 of the certificate's DER, hex: how operators and logs name the key (never the
    /// key itself).
    pub sha256_fingerprint: String,
}

/// Never the key: only which certificate it belongs to.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("sha256_fingerprint", &self.sha256_fingerprint).finish_non_exhaustive()
    }
}

fn first_reason(error: &openssl::error::ErrorStack) -> String {
    error.errors().first().and_then(|e| e.reason()).unwrap_or("unknown error").to_string()
}

fn internal(what: &str, error: &openssl::error::ErrorStack) -> Error {
    Error::new(Code::Internal, format!("{what}: {}", first_reason(error)))
}

impl SigningKey {
    /// A PEM private key (PKCS#8 or traditional RSA / EC) and its PEM certificate. Refused when
    /// the certificate's public key is not the private key's: the IdP would be told to trust
    /// a certificate whose key never signs, and every signed request would fail there.
    pub fn from_pem(key_pem: &[u8], certificate_pem: &[u8]) -> Result<SigningKey, String> {
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| format!("not a PEM private key (unencrypted): {}", first_reason(&e)))?;
        let certificate =
            X509::from_pem(certificate_pem).map_err(|e| format!("not a PEM certificate: {}", first_reason(&e)))?;
        let public = certificate.public_key().map_err(|e| format!("unreadable public key: {}", first_reason(&e)))?;
        if !key.public_eq(&public) {
            return Err("the private key does not match the certificate's public key".into());
        }
        match key.id() {
            Id::RSA if key.bits() < 2048 => return Err(format!("{}-bit RSA key; at least 2048 bits", key.bits())),
            Id::RSA | Id::EC => {}
            other => return Err(format!("unsupported key type {other:?}: RSA or EC only")),
        }
        let digest = certificate
            .digest(MessageDigest::sha256())
            .map_err(|e| format!("cannot fingerprint: {}", first_reason(&e)))?;
        let sha256_fingerprint = super::hex::lower(&digest);
        Ok(SigningKey { key, certificate, sha256_fingerprint })
    }

    /// The XML-DSig SignatureMethod / bindings SigAlg URI this key signs with.
    pub fn algorithm(&self) -> &'static str {
        if self.key.id() == Id::EC {
            alg::ECDSA_SHA256
        } else {
            alg::RSA_SHA256
        }
    }

    /// The certificate as base64 DER (KeyInfo / metadata X509Certificate content).
    pub fn certificate_base64(&self) -> Result<String, Error> {
        let der = self.certificate.to_der().map_err(|e| internal("cannot encode the SP certificate", &e))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(der))
    }

    /// A signature over `data` in the encoding [`Self::algorithm`] names: PKCS#1 v1.5 for
    /// RSA; for ECDSA the fixed-width r || s of XML-DSig (RFC 4050 / RFC 6931), not DER.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).map_err(|e| internal("signer", &e))?;
        let der = signer.sign_oneshot_to_vec(data).map_err(|e| internal("signing failed", &e))?;
        if self.key.id() != Id::EC {
            return Ok(der);
        }
        let signature = EcdsaSig::from_der(&der).map_err(|e| internal("ECDSA signature", &e))?;
        let width = usize::try_from(self.key.bits()).unwrap_or(256).div_ceil(8);
        let mut out = Vec::with_capacity(width * 2);
        for part in [signature.r(), signature.s()] {
            let padded = i32::try_from(width).map_err(|_| Error::new(Code::Internal, "EC field too large"))?;
            out.extend(part.to_vec_padded(padded).map_err(|e| internal("ECDSA signature", &e))?);
        }
        Ok(out)
    }

    /// Inserts an enveloped signature over the element whose `ID` is `id` at byte offset
    /// `insert_at` of `document` (the caller rendered the document, so it knows where the
    /// schema puts the Signature: after Issuer in requests, first in metadata). Exclusive C14N,
    /// enveloped-signature transform, SHA-256, as SAML core 5.4 profiles it.
    pub fn sign_enveloped(&self, document: &str, id: &str, insert_at: usize) -> Result<String, Error> {
        if !document.is_char_boundary(insert_at) {
            return Err(Error::new(Code::Internal, "signature position is not inside the document"));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let digest = {
            let doc = xml::parse(document.as_bytes())?;
            let root = doc.root().ok_or_else(|| Error::new(Code::Internal, "document has no root"))?;
            let element = find_by_id(root, id)
                .ok_or_else(|| Error::new(Code::Internal, format!("no element with ID {id} to sign")))?;
            let bytes = c14n::canonicalize(&doc, element, None, C14nMode::Exclusive10, &[])
                .map_err(|e| Error::new(Code::Internal, format!("canonicalization failed: {e}")))?;
            openssl::sha::sha256(&bytes)
        };
        let signed_info = format!(
            concat!(
                "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{c14n}\"/><ds:SignatureMethod Algorithm=\"{sm}\"/>",
                "<ds:Reference URI=\"#{id}\"><ds:Transforms><ds:Transform Algorithm=\"{env}\"/>",
                "<ds:Transform Algorithm=\"{c14n}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{dm}\"/>",
                "<ds:DigestValue>{dv}</ds:DigestValue></ds:Reference></ds:SignedInfo>"
            ),
            c14n = alg::EXC_C14N_10,
            sm = self.algorithm(),
            id = id,
            env = alg::ENVELOPED,
            dm = alg::SHA256,
            dv = b64.encode(digest),
        );
        // SignedInfo canonicalized in a Signature of its own: exclusive C14N renders only the
        // namespaces it uses, so the context it ends up in inside the document changes nothing.
        let info_bytes = {
            let wrapper = format!("<ds:Signature xmlns:ds=\"{}\">{signed_info}</ds:Signature>", ns::DSIG);
            let doc = xml::parse(wrapper.as_bytes())?;
            let info = doc
                .root()
                .and_then(|root| root.elements().next())
                .ok_or_else(|| Error::new(Code::Internal, "SignedInfo did not parse"))?;
            c14n::canonicalize(&doc, info, None, C14nMode::Exclusive10, &[])
                .map_err(|e| Error::new(Code::Internal, format!("canonicalization failed: {e}")))?
        };
        let signature_value = b64.encode(self.sign(&info_bytes)?);
        let signature = format!(
            "<ds:Signature xmlns:ds=\"{}\">{signed_info}<ds:SignatureValue>{signature_value}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
            ns::DSIG,
            self.certificate_base64()?
        );
        Ok(format!("{}{signature}{}", &document[..insert_at], &document[insert_at..]))
    }
}

fn find_by_id<'a>(node: Node<'a>, id: &str) -> Option<Node<'a>> {
    if node.attribute("ID").is_some_and(|v| v.get() == id) {
        return Some(node);
    }
    node.elements().find_map(|child| find_by_id(child, id))
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // An attribute value's tab, newline and carriage return are read back as spaces
            // (XML 1.0 3.3.3 normalization) and a text's CR as LF (2.11): as character
            // references they survive, so what a parser reads is what was written.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::saml::keys::TrustedKey;
    use crate::saml::{dsig, Code};

    fn key() -> SigningKey {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut builder = openssl::x509::X509Builder::new().unwrap();
        builder.set_pubkey(&key).unwrap();
        builder.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        builder.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap()).unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        let certificate = builder.build();
        SigningKey::from_pem(&key.private_key_to_pem_pkcs8().unwrap(), &certificate.to_pem().unwrap()).unwrap()
    }

    /// Our own strict verifier accepts what we sign (xmlsec1 checks it independently in
    /// tests/all/authn_requests.rs), and refuses it once changed.
    #[test]
    fn the_verifier_accepts_our_enveloped_signature() {
        let key = key();
        let document = format!(
            "<samlp:AuthnRequest xmlns:samlp=\"{}\" xmlns:saml=\"{}\" ID=\"_r1\" Version=\"2.0\"><saml:Issuer>sp</saml:Issuer><samlp:NameIDPolicy AllowCreate=\"true\"/></samlp:AuthnRequest>",
            ns::PROTOCOL,
            ns::ASSERTION
        );
        let at = document.find("<samlp:NameIDPolicy").unwrap();
        let signed = key.sign_enveloped(&document, "_r1", at).unwrap();
        let trusted = TrustedKey::from_certificate_text(&key.certificate_base64().unwrap()).unwrap();
        for (text, expected) in [(signed.clone(), None), (signed.replace(">sp<", ">evil<"), Some(Code::DigestMismatch))]
        {
            let doc = xml::parse(text.as_bytes()).unwrap();
            let root = doc.root().unwrap();
            let signature = root.elements().find(|n| n.is(ns::DSIG, "Signature")).unwrap();
            let result = dsig::verify(&doc, root, signature, std::slice::from_ref(&trusted), false);
            assert_eq!(result.err().map(|e| e.code), expected);
        }
    }

    /// Issue 31, item 3: `escape()` left tab, LF and CR as they were, so a parser read back a
    /// space (attribute values) or LF (text) instead of what was written and signed.
    #[test]
    fn escape_writes_tab_newline_and_carriage_return_as_character_references() {
        let value = "https://sp.example/acs\tx\ny\rz";
        let document = format!("<a v=\"{}\">{}</a>", escape(value), escape(value));
        assert!(!document.contains(['\t', '\n', '\r']), "{document}");
        let doc = xml::parse(document.as_bytes()).unwrap();
        let root = doc.root().unwrap();
        assert_eq!(root.attribute("v").unwrap().get(), value, "the attribute reads back as written");
        assert_eq!(xml::text_value(root).unwrap(), value, "the text reads back as written");
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let (one, other) = (PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(), key());
        let pem = other.certificate.to_pem().unwrap();
        let error = SigningKey::from_pem(&one.private_key_to_pem_pkcs8().unwrap(), &pem).unwrap_err();
        assert!(error.contains("does not match"), "{error}");
    }
}
