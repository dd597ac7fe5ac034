//! One pass over the whole document before any signature work: resource limits, forbidden node
//! kinds, ID uniqueness, and an inventory of every Assertion and Signature wherever it hides.
//!
//! XML Signature Wrapping works by giving the verifier and the claim reader different elements.
//! Counting every Assertion and Signature in the document (not just where we expect them) lets
//! the pipeline refuse any document with more than the one it verifies.

use std::collections::HashSet;

use super::error::{quote, Code, Error};
use super::ns;
use super::policy::Limits;
use super::xml::{Document, Node, NodeKind};

/// What the scan found.
pub struct Inventory<'a> {
    pub root: Node<'a>,
    /// Every saml:Assertion element, in document order.
    pub assertions: Vec<Node<'a>>,
    /// Every ds:Signature element, in document order.
    pub signatures: Vec<Node<'a>>,
    /// Every saml:EncryptedAssertion element, in document order: each counts as an assertion
    /// when the pipeline demands exactly one.
    pub encrypted_assertions: Vec<Node<'a>>,
    /// Every saml:EncryptedAssertion, EncryptedID and EncryptedAttribute, in document order:
    /// their RSA operations are counted before any is decrypted.
    pub encrypted: Vec<Node<'a>>,
}

pub fn scan<'a>(doc: &'a Document, limits: &Limits) -> Result<Inventory<'a>, Error> {
    for top in doc.children() {
        if top.kind() == NodeKind::ProcessingInstruction {
            return Err(pi_error());
        }
    }
    let root = doc.root().ok_or_else(|| Error::new(Code::XmlMalformed, "document has no root element"))?;
    let mut inventory = Inventory {
        root,
        assertions: Vec::new(),
        signatures: Vec::new(),
        encrypted_assertions: Vec::new(),
        encrypted: Vec::new(),
    };
    let mut ids: HashSet<&'a str> = HashSet::new();
    let mut nodes = 0usize;
    let mut namespace_declarations = 0usize;
    // Explicit stack instead of recursion: depth is attacker-controlled until we have checked it.
    let mut stack: Vec<(Node<'a>, usize)> = vec![(root, 1)];
    while let Some((node, depth)) = stack.pop() {
        nodes += 1;
        if nodes > limits.max_nodes {
            return Err(Error::new(Code::XmlTooComplex, format!("more than {} nodes", limits.max_nodes)));
        }
        match node.kind() {
            NodeKind::Element => {}
            NodeKind::ProcessingInstruction => return Err(pi_error()),
            NodeKind::EntityRef | NodeKind::Other => {
                return Err(Error::new(Code::XmlMalformed, "unexpected node type (entity reference or DTD content)"))
            }
            NodeKind::Text | NodeKind::Comment => continue,
        }
        if depth > limits.max_depth {
            return Err(Error::new(Code::XmlTooComplex, format!("elements nested deeper than {}", limits.max_depth)));
        }
        let mut declared = 0usize;
        for (_, uri) in node.namespace_declarations() {
            declared += 1;
            check_namespace_uri(uri)?;
        }
        namespace_declarations += declared;
        if declared > limits.max_namespace_declarations_per_element
            || namespace_declarations > limits.max_namespace_declarations
        {
            return Err(Error::new(
                Code::XmlTooComplex,
                format!(
                    "more than {} namespace declarations on one element or {} in the document",
                    limits.max_namespace_declarations_per_element, limits.max_namespace_declarations
                ),
            ));
        }
        let mut attribute_count = 0usize;
        for attr in node.attributes() {
            attribute_count += 1;
            if attribute_count > limits.max_attributes_per_element {
                return Err(Error::new(
                    Code::XmlTooComplex,
                    format!("more than {} attributes on <{}>", limits.max_attributes_per_element, node.local_name()),
                ));
            }
            if is_id_attribute(attr.name, attr.namespace) {
                let value = attr.value.get();
                let value: &'a str = match value {
                    std::borrow::Cow::Borrowed(v) => v,
                    // A multi-node attribute value only arises from entity or character
                    // references; IDs never need them.
                    std::borrow::Cow::Owned(v) => {
                        return Err(Error::new(Code::IdInvalid, format!("ID {} is built from references", quote(&v))))
                    }
                };
                if !is_safe_id(value) {
                    return Err(Error::new(
                        Code::IdInvalid,
                        format!(
                            "{} attribute {} on <{}> is not a plain identifier",
                            attr.name,
                            quote(value),
                            node.local_name()
                        ),
                    ));
                }
                if !ids.insert(value) {
                    return Err(Error::new(Code::DuplicateId, format!("ID {} occurs more than once", quote(value))));
                }
            }
        }
        match (node.namespace(), node.local_name()) {
            (Some(ns::ASSERTION), "Assertion") => inventory.assertions.push(node),
            (Some(ns::ASSERTION), "EncryptedAssertion") => {
                inventory.encrypted_assertions.push(node);
                inventory.encrypted.push(node);
            }
            (Some(ns::ASSERTION), "EncryptedID" | "EncryptedAttribute") => inventory.encrypted.push(node),
            (Some(ns::DSIG), "Signature") => inventory.signatures.push(node),
            _ => {}
        }
        // Push children in reverse so they pop in document order.
        let first_len = stack.len();
        for child in node.children() {
            stack.push((child, depth + 1));
        }
        stack[first_len..].reverse();
    }
    Ok(inventory)
}

/// Namespace URIs must be absolute and plain: C14N implementations disagree on relative URIs
/// (libxml2 refuses them) and on escaping `&`, `<` and `"` in them, and SAML never needs either.
fn check_namespace_uri(uri: &str) -> Result<(), Error> {
    if uri.is_empty() {
        return Ok(()); // xmlns="" undeclares the default namespace
    }
    let scheme_end = uri.find(':');
    let absolute = scheme_end.is_some_and(|end| {
        end > 0
            && uri.as_bytes()[0].is_ascii_alphabetic()
            && uri[..end].bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    });
    if !absolute || uri.bytes().any(|b| matches!(b, b'&' | b'<' | b'"' | b'\'') || b.is_ascii_whitespace()) {
        return Err(Error::new(
            Code::XmlMalformed,
            format!("namespace URI {} is not a plain absolute URI", quote(uri)),
        ));
    }
    Ok(())
}

fn pi_error() -> Error {
    Error::new(
        Code::ProcessingInstructionForbidden,
        "processing instructions are not accepted (C14N signs them, text readers skip them)",
    )
}

/// Attributes that act as identifiers for some XML-DSig implementation: SAML's `ID`, the `Id` of
/// xenc/wsu, `id`, and `xml:id`. Treating all of them as one ID space means no two
/// implementations can resolve the same `#ref` to different elements.
fn is_id_attribute(name: &str, namespace: Option<&str>) -> bool {
    match namespace {
        None => matches!(name, "ID" | "Id" | "id"),
        Some(ns::XML) => name == "id",
        Some(_) => matches!(name, "ID" | "Id" | "id"),
    }
}

/// An ID must be usable verbatim as a URI fragment: non-empty, no whitespace or control
/// characters, none of the characters that fragment or XPointer syntax gives meaning to.
/// Whitespace padding is the "ID with spaces" trick that makes resolvers disagree. (Strict
/// NCName would also forbid a leading digit, which real IdPs such as Secureworks emit.)
pub fn is_safe_id(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(c, '#' | '(' | ')' | '"' | '\'' | '<' | '>' | '&' | ':' | '/' | '\\')
        })
}

/// The Response's and the Assertion's signatures. Every signature must sit directly in the
/// Response or the Assertion, at most one each: anything else is a wrapping attempt.
pub fn signature_slots<'a>(
    signatures: &[Node<'a>],
    response: Option<Node<'a>>,
    assertion: Option<Node<'a>>,
) -> Result<(Option<Node<'a>>, Option<Node<'a>>), Error> {
    let mut response_signature = None;
    let mut assertion_signature = None;
    for &signature in signatures {
        let slot = match signature.parent() {
            Some(parent) if Some(parent) == response => &mut response_signature,
            Some(parent) if Some(parent) == assertion => &mut assertion_signature,
            parent => {
                return Err(Error::new(
                    Code::SignaturePlacementInvalid,
                    format!(
                    "a Signature inside <{}>; signatures are only accepted directly in the Response or the Assertion",
                    parent.map_or("document", |p| p.local_name())
                ),
                ))
            }
        };
        if slot.replace(signature).is_some() {
            return Err(Error::new(Code::SignaturePlacementInvalid, "two Signatures on the same element"));
        }
    }
    Ok((response_signature, assertion_signature))
}
