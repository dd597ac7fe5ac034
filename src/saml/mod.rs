//! The validation core: bytes, a tenant policy and an instant in; a verified, normalized user or
//! a typed error out. No I/O, no clock, no shared state: adapters (HTTP, CLI, replay cache)
//! live outside this module.
//!
//! Pipeline: decode → safe parse → whole-document inventory → response status → signature
//! placement → XML-DSig verification → SAML checks → claims from the verified element only.

pub mod authn_request;
pub mod c14n;
pub mod checks;
pub mod claims;
pub mod decode;
pub mod decrypt;
pub mod diagnose;
pub mod dsig;
mod encrypted;
mod equalize;
pub mod error;
pub mod facts;
pub mod hex;
mod hints;
pub mod keys;
pub mod logout;
pub mod logout_check;
pub mod metadata;
pub mod ns;
pub mod policy;
pub mod redirect;
pub mod request;
pub mod requirements;
pub mod sign;
pub mod signed;
pub mod sp_metadata;
pub mod structure;
pub mod subject_key;
#[cfg(test)]
pub(crate) mod tally;
pub mod time;
pub mod url;
pub mod xml;

pub use claims::Validated;
pub use error::{Code, Error};
pub use policy::{AttributeMapping, Limits, SubjectKeySource, TenantPolicy};
pub use request::{Input, Request};
pub use signed::SignedAssertion;

use xml::Node;

/// Validates one SAML response for one tenant at `request.now`.
pub fn validate(
    input: Input<'_>,
    policy: &TenantPolicy,
    limits: &Limits,
    request: &Request<'_>,
) -> Result<Validated, Error> {
    // A request naming an ACS URL the tenant does not have is refused before any work.
    requirements::expected_acs(policy, request.expected_acs_url)?;
    let mut decoded = Vec::new();
    let bytes = document(input, limits, &mut decoded)?;
    let doc = xml::parse_within(bytes, limits.max_nodes)?;
    // Once the document parsed, every refusal carries what it says about itself (KeyInfo
    // thumbprint, clock difference, IdP status) for the operator; the verdict is already made.
    judge(&doc, policy, limits, request).map_err(|error| facts::annotate(error, &doc, request.now))
}

/// The verdict on a parsed document.
fn judge(
    doc: &xml::Document,
    policy: &TenantPolicy,
    limits: &Limits,
    request: &Request<'_>,
) -> Result<Validated, Error> {
    let inventory = structure::scan(doc, limits)?;
    // Like every other limit, before any cryptography: the RSA work of every encrypted element
    // in view, counted from the markup alone.
    let rsa = decrypt::RsaBudget::new(limits, policy.decryption_keys.len());
    rsa.count(decrypt::encrypted_keys(&inventory.encrypted))?;
    let response = response_root(inventory.root, policy)?;
    if let Some(response) = response {
        // Status before anything else: an IdP error response usually carries no assertion, and
        // the caller needs the IdP's reason, not "assertion missing".
        checks::version(response)?;
        checks::status(response)?;
    }
    let context = checks::Context { policy, limits, rsa: &rsa, request, now: request.now };
    match (inventory.assertions.as_slice(), inventory.encrypted_assertions.as_slice(), response) {
        (_, [], _) => plain(doc, &inventory, response, &context),
        ([], [encrypted], Some(response)) => {
            let outer = encrypted::Outer { doc, signatures: &inventory.signatures, response, encrypted: *encrypted };
            encrypted::validate(&outer, limits, &context)
        }
        (plain, encrypted, _) => Err(Error::new(
            Code::MultipleAssertions,
            format!(
                "{} Assertion and {} EncryptedAssertion elements in the document; exactly one assertion is allowed",
                plain.len(),
                encrypted.len()
            ),
        )),
    }
}

/// The Response, or `None` for a bare Assertion where the tenant allows one.
fn response_root<'a>(root: Node<'a>, policy: &TenantPolicy) -> Result<Option<Node<'a>>, Error> {
    if root.is(ns::PROTOCOL, "Response") {
        Ok(Some(root))
    } else if root.is(ns::ASSERTION, "Assertion") {
        if !policy.allow_bare_assertion {
            return Err(Error::new(
                Code::BareAssertionNotAllowed,
                "a bare Assertion was posted; expected a samlp:Response (set allow_bare_assertion for WS-Federation style tokens)",
            ));
        }
        Ok(None)
    } else {
        Err(Error::new(
            Code::RootElementInvalid,
            format!(
                "root element is <{}> in {:?}; expected samlp:Response",
                root.local_name(),
                root.namespace().unwrap_or("no namespace")
            ),
        ))
    }
}

/// A document whose assertion is in the clear.
fn plain(
    doc: &xml::Document,
    inventory: &structure::Inventory<'_>,
    response: Option<Node<'_>>,
    context: &checks::Context<'_>,
) -> Result<Validated, Error> {
    let policy = context.policy;
    let assertion = match inventory.assertions.as_slice() {
        [] => return Err(Error::new(Code::AssertionMissing, "no Assertion in the response")),
        [only] => *only,
        more => {
            return Err(Error::new(
                Code::MultipleAssertions,
                format!("{} Assertion elements in the document; exactly one is allowed", more.len()),
            ))
        }
    };
    if let Some(response) = response {
        if assertion.parent() != Some(response) {
            return Err(Error::new(Code::AssertionMissing, "the only Assertion is not a direct child of the Response"));
        }
    }
    if policy.require_encrypted_assertions {
        return Err(Error::new(
            Code::AssertionNotEncrypted,
            "the assertion is not encrypted and the tenant sets require_encrypted_assertions",
        ));
    }

    let (response_signature, assertion_signature) =
        structure::signature_slots(&inventory.signatures, response, Some(assertion))?;

    // Every signature present must verify (a broken one is never ignored because another
    // verified), and at least one must cover the assertion.
    let keys = &policy.keys;
    let verified_response = match (response, response_signature) {
        (Some(response), Some(signature)) => Some(dsig::verify(doc, response, signature, keys, policy.allow_sha1)?),
        _ => None,
    };
    let verified_assertion = match assertion_signature {
        Some(signature) => Some(dsig::verify(doc, assertion, signature, keys, policy.allow_sha1)?),
        None => None,
    };
    let signed = match (verified_assertion, verified_response) {
        (Some(own), _) => SignedAssertion::from_own(own),
        (None, Some(outer)) => SignedAssertion::from_response(outer, assertion)
            .ok_or_else(|| Error::new(Code::SignatureMissing, "the Response signature does not cover the Assertion"))?,
        (None, None) => {
            return Err(Error::new(Code::SignatureMissing, "neither the Response nor the Assertion is signed"))
        }
    };

    if let Some(response) = response {
        checks::response(response, context)?;
    }
    let envelope = checks::envelope(response, verified_response, verified_assertion.is_some(), false);
    checks::assertion(&signed, response.is_none(), context, envelope)
}

/// The document's bytes: base64-decoded (size checked before allocation) or as given, in an
/// encoding the parser will read as we do.
pub(crate) fn document<'a>(input: Input<'a>, limits: &Limits, decoded: &'a mut Vec<u8>) -> Result<&'a [u8], Error> {
    let bytes = match input {
        Input::Base64(encoded) => {
            *decoded = decode::base64(encoded, limits.max_document_bytes)?;
            &decoded[..]
        }
        Input::Xml(bytes) => {
            if bytes.len() > limits.max_document_bytes {
                return Err(Error::new(
                    Code::PayloadTooLarge,
                    format!("document exceeds {} bytes", limits.max_document_bytes),
                ));
            }
            bytes
        }
    };
    if let Some(encoding) = decode::wide_encoding(bytes) {
        return Err(Error::new(
            Code::EncodingUnsupported,
            format!("the document is {encoding}; only UTF-8 is accepted"),
        ));
    }
    if !decode::looks_like_xml(bytes) {
        return Err(Error::new(Code::XmlMalformed, "decoded SAMLResponse is not an XML document"));
    }
    Ok(bytes)
}
