//! What a refused document says about itself, read after the verdict for the operator's list of
//! recent failures: the certificate its `KeyInfo` carries (SHA-256 of the DER, untrusted: it is
//! never used to verify anything, keys come only from configuration), how far its IssueInstant
//! lies from now, and the IdP's status codes. Never the subject, an attribute or the IdP's
//! StatusMessage (which can name the user): only values an operator compares with the tenant's
//! configuration.

use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::error::{Error, FailureFacts};
use super::ns;
use super::xml::{self, Document, Node};

/// Longest certificate text read (an RSA-4096 certificate is about 2 KB of base64).
const MAX_CERTIFICATE_TEXT: usize = 16 * 1024;

/// Longest status code kept (they are URIs of about 50 characters).
const MAX_STATUS: usize = 200;

/// `error` with the facts `doc` carries, read at `now`.
pub(super) fn annotate(mut error: Error, doc: &Document, now: DateTime<Utc>) -> Error {
    if let Some(root) = doc.root() {
        let facts = read(root, now);
        if facts != FailureFacts::default() {
            error.facts = Some(Box::new(facts));
        }
    }
    error
}

fn read(root: Node<'_>, now: DateTime<Utc>) -> FailureFacts {
    let assertion = root.is(ns::PROTOCOL, "Response").then(|| child(root, ns::ASSERTION, "Assertion")).flatten();
    let keyinfo_sha256 = assertion.into_iter().chain([root]).find_map(keyinfo_certificate);
    let clock_difference_seconds = root
        .attribute("IssueInstant")
        .and_then(|v| super::time::parse(&v.get()))
        .map(|issued| (issued - now).num_seconds());
    FailureFacts { keyinfo_sha256, clock_difference_seconds, idp_status: status(root) }
}

fn child<'a>(node: Node<'a>, namespace: &str, name: &str) -> Option<Node<'a>> {
    node.elements().find(|n| n.is(namespace, name))
}

/// SHA-256 of `signed`'s `Signature/KeyInfo/X509Data/X509Certificate`, when it decodes.
fn keyinfo_certificate(signed: Node<'_>) -> Option<String> {
    let signature = child(signed, ns::DSIG, "Signature")?;
    let data = child(child(signature, ns::DSIG, "KeyInfo")?, ns::DSIG, "X509Data")?;
    let text = xml::text_value(child(data, ns::DSIG, "X509Certificate")?)?;
    if text.len() > MAX_CERTIFICATE_TEXT {
        return None;
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    Some(super::hex::lower(&openssl::sha::sha256(&der)))
}

fn status(root: Node<'_>) -> Option<String> {
    let code = child(child(root, ns::PROTOCOL, "Status")?, ns::PROTOCOL, "StatusCode")?;
    let value = code.attribute("Value")?.get();
    if value == ns::STATUS_SUCCESS {
        return None;
    }
    let mut out = bounded(&value);
    if let Some(second) = child(code, ns::PROTOCOL, "StatusCode").and_then(|c| c.attribute("Value")) {
        out.push_str(", ");
        out.push_str(&bounded(&second.get()));
    }
    Some(out)
}

/// At most [`MAX_STATUS`] characters, control characters escaped.
fn bounded(value: &str) -> String {
    value.chars().take(MAX_STATUS).flat_map(char::escape_default).collect()
}
