//! XML Encryption (xmlenc-core1) of a SAML EncryptedAssertion, EncryptedID or
//! EncryptedAttribute (SAML core 2.2.4, 6): the element's shape and algorithms are judged
//! before any RSA operation, then the content key is unwrapped with the SP's keys and the
//! content decrypted to bytes that the caller parses as a document of its own, with the
//! namespace declarations in scope where the EncryptedData stood (`context.rs`).
//!
//! Only the shapes IdPs send are accepted: one EncryptedData whose CipherValue is inline, its
//! EncryptedKey inside its KeyInfo or beside it in the same Encrypted* element (named by a
//! `#id` RetrievalMethod). CipherReference, other URIs and transforms would make the service
//! fetch or compute on the attacker's behalf (SSRF, file reads) and are refused outright.

mod budget;
pub mod cipher;
mod context;
pub mod key;

use base64::Engine as _;

use super::error::{Code, Error};
use super::ns::{self, enc};
use super::policy::Limits;
use super::structure;
use super::xml::{self, Document, Node};
pub use budget::RsaBudget;
use cipher::{Content, Digest, KeyTransport};
pub use key::{DecryptionKey, DecryptionKeyInfo};

/// The one message of every failure after the algorithm checks. A distinct message for a wrong
/// key, a bad padding, a bad tag or an unparsable plaintext is the oracle that CBC and
/// PKCS#1 v1.5 attacks need, so none exists.
pub const FAILED: &str =
    "the encrypted element did not decrypt to one well-formed, verifiable element with the tenant's keys";

pub fn failed() -> Error {
    Error::new(Code::DecryptionFailed, FAILED)
}

/// At most this many EncryptedKeys inside one KeyInfo. The work of a whole document, siblings
/// of a KeyInfo-less EncryptedData included, is bounded by `Limits::max_rsa_decryptions`
/// ([`RsaBudget`]).
const MAX_ENCRYPTED_KEYS: usize = 4;

/// What decryption needs besides the element.
pub struct Keys<'k> {
    pub keys: &'k [DecryptionKey],
    /// `allow_rsa_pkcs1_key_transport`.
    pub allow_pkcs1: bool,
    /// The document's RSA operations, shared by all its encrypted elements.
    pub budget: &'k RsaBudget,
}

/// Decrypted bytes and whether the cipher itself authenticated them.
pub struct Plaintext {
    pub bytes: Vec<u8>,
    /// True for AES-GCM: a modified ciphertext fails the tag, so what the plaintext contains
    /// can be reported in detail without creating a decryption oracle.
    pub authenticated: bool,
}

/// Decrypts the EncryptedData inside `container` (EncryptedAssertion, EncryptedID or
/// EncryptedAttribute).
pub fn decrypt(container: Node<'_>, keys: &Keys<'_>) -> Result<Plaintext, Error> {
    let plan = plan(container, keys.allow_pkcs1)?;
    if keys.keys.is_empty() {
        return Err(no_keys(container));
    }
    keys.budget.spend(plan.wrapped.len())?;
    let content_key = content_key(&plan, keys.keys)?;
    let bytes = cipher::decrypt_content(plan.content, &content_key, &plan.data).map_err(|_| failed())?;
    let bytes = context::in_context(container, bytes);
    Ok(Plaintext { bytes, authenticated: plan.content.is_authenticated() })
}

/// The content key, from the first EncryptedKey one of the tenant's keys unwraps. With
/// PKCS#1 v1.5 in play every pair is tried whatever the outcome and a failure continues with a
/// random key (implicit rejection): Bleichenbacher's attack needs to tell a padding failure
/// from what follows it, by answer or by the number of RSA operations.
fn content_key(plan: &Plan, keys: &[DecryptionKey]) -> Result<Vec<u8>, Error> {
    let key_len = plan.content.key_len();
    let pkcs1 = plan.wrapped.iter().any(|w| w.transport == KeyTransport::Pkcs1);
    let mut found = None;
    'search: for wrapped in &plan.wrapped {
        for key in keys {
            if let Ok(unwrapped) = cipher::unwrap_key(key, wrapped.transport, &wrapped.label, &wrapped.value, key_len) {
                found.get_or_insert(unwrapped);
                if !pkcs1 {
                    break 'search;
                }
            }
        }
    }
    match found {
        Some(key) => Ok(key),
        None if pkcs1 => cipher::random_key(key_len).map_err(|_| failed()),
        None => Err(failed()),
    }
}

/// Decrypts an EncryptedID or EncryptedAttribute of a verified assertion and parses the
/// plaintext as a document of its own (same parser, limits and inventory as any input), whose
/// root must be `namespace:name` and which may hold no assertion or signature of its own.
pub fn decrypt_element(
    container: Node<'_>,
    keys: &Keys<'_>,
    limits: &Limits,
    namespace: &str,
    name: &str,
) -> Result<Document, Error> {
    let plaintext = decrypt(container, keys)?;
    let doc = xml::parse_within(&plaintext.bytes, limits.max_nodes).map_err(|_| failed())?;
    let inventory = structure::scan(&doc, limits).map_err(|_| failed())?;
    let alone =
        inventory.assertions.is_empty() && inventory.encrypted_assertions.is_empty() && inventory.signatures.is_empty();
    if !inventory.root.is(namespace, name) || !alone {
        return Err(failed());
    }
    Ok(doc)
}

/// The length of the content ciphertext (IV and tag included) of `container`, from its base64
/// text: public, like everything an unauthenticated failure may depend on.
pub fn ciphertext_len(container: Node<'_>) -> usize {
    let value = layout(container).ok().and_then(|layout| layout.cipher_data).and_then(|data| data.elements().next());
    value.and_then(xml::text_value).map_or(0, |text| text.bytes().filter(|b| !b.is_ascii_whitespace()).count() / 4 * 3)
}

/// Everything read from the element before any cryptography.
struct Plan {
    content: Content,
    data: Vec<u8>,
    wrapped: Vec<Wrapped>,
}

struct Wrapped {
    transport: KeyTransport,
    label: Vec<u8>,
    value: Vec<u8>,
}

/// The answer for an encrypted element when the tenant has no decryption key.
pub fn no_keys(container: Node<'_>) -> Error {
    Error::new(
        Code::EncryptedAssertionUnsupported,
        format!(
            "the response carries an encrypted <{}> and the tenant has no decryption key; configure decryption_key_files",
            container.local_name()
        ),
    )
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::new(Code::EncryptedAssertionUnsupported, what)
}

fn malformed(what: impl Into<String>) -> Error {
    Error::new(Code::SamlMalformed, what)
}

fn algorithm(node: Node<'_>) -> Option<String> {
    node.attribute("Algorithm").map(|v| v.get().trim().to_string())
}

/// The children of an encrypted element and of its EncryptedData, judged before anything is
/// decoded.
struct Layout<'a> {
    siblings: Vec<Node<'a>>,
    method: Option<Node<'a>>,
    key_info: Option<Node<'a>>,
    cipher_data: Option<Node<'a>>,
}

fn layout(container: Node<'_>) -> Result<Layout<'_>, Error> {
    let mut data = None;
    let mut siblings = Vec::new();
    for child in container.elements() {
        match (child.namespace(), child.local_name()) {
            (Some(enc::XENC), "EncryptedData") if data.is_none() => data = Some(child),
            (Some(enc::XENC), "EncryptedData") => {
                return Err(malformed(format!("<{}> has more than one EncryptedData", container.local_name())))
            }
            (Some(enc::XENC), "EncryptedKey") => siblings.push(child),
            _ => {
                return Err(malformed(format!(
                    "<{}> may only contain EncryptedData and EncryptedKey, found <{}>",
                    container.local_name(),
                    child.local_name()
                )))
            }
        }
    }
    let data = data.ok_or_else(|| malformed(format!("<{}> has no EncryptedData", container.local_name())))?;
    if let Some(kind) = data.attribute("Type").map(|v| v.get().into_owned()) {
        if kind.trim() != enc::TYPE_ELEMENT {
            return Err(unsupported("EncryptedData Type must be xmlenc#Element (SAML core 6.1)"));
        }
    }
    let mut layout = Layout { siblings, method: None, key_info: None, cipher_data: None };
    for child in data.elements() {
        match (child.namespace(), child.local_name()) {
            (Some(enc::XENC), "EncryptionMethod") if layout.method.is_none() => layout.method = Some(child),
            (Some(ns::DSIG), "KeyInfo") if layout.key_info.is_none() => layout.key_info = Some(child),
            (Some(enc::XENC), "CipherData") if layout.cipher_data.is_none() => layout.cipher_data = Some(child),
            (Some(enc::XENC), "EncryptionProperties") => {}
            _ => return Err(malformed(format!("unexpected <{}> in EncryptedData", child.local_name()))),
        }
    }
    Ok(layout)
}

/// How many EncryptedKeys decrypting `containers` (EncryptedAssertion, EncryptedID,
/// EncryptedAttribute) tries, each with every key: those [`plan`] finds. None for a shape
/// [`plan`] refuses, since it refuses it before any RSA operation.
pub fn encrypted_keys(containers: &[Node<'_>]) -> usize {
    let count = |container: &Node<'_>| {
        layout(*container).and_then(|layout| key_candidates(layout.key_info, &layout.siblings)).map_or(0, |k| k.len())
    };
    containers.iter().map(count).sum()
}

fn plan(container: Node<'_>, allow_pkcs1: bool) -> Result<Plan, Error> {
    let layout = layout(container)?;
    let method = layout.method.ok_or_else(|| unsupported("EncryptedData has no EncryptionMethod"))?;
    let content = content_algorithm(method)?;
    let keys = key_candidates(layout.key_info, &layout.siblings)?;
    let wrapped = keys.into_iter().map(|k| wrapped_key(k, allow_pkcs1)).collect::<Result<Vec<_>, _>>()?;
    let data = cipher_value(layout.cipher_data.ok_or_else(|| malformed("EncryptedData has no CipherData"))?)?;
    Ok(Plan { content, data, wrapped })
}

fn content_algorithm(method: Node<'_>) -> Result<Content, Error> {
    if method.elements().next().is_some() {
        return Err(unsupported("parameters on the content EncryptionMethod"));
    }
    let algorithm = algorithm(method).unwrap_or_default();
    Ok(match algorithm.as_str() {
        enc::AES128_CBC => Content::Cbc { key_len: 16 },
        enc::AES192_CBC => Content::Cbc { key_len: 24 },
        enc::AES256_CBC => Content::Cbc { key_len: 32 },
        enc::AES128_GCM => Content::Gcm { key_len: 16 },
        enc::AES192_GCM => Content::Gcm { key_len: 24 },
        enc::AES256_GCM => Content::Gcm { key_len: 32 },
        other => return Err(algorithm_unsupported("content encryption", other)),
    })
}

fn algorithm_unsupported(role: &str, found: &str) -> Error {
    Error::new(
        Code::DecryptionAlgorithmUnsupported,
        format!("{role} algorithm {} is not accepted", super::error::quote(found)),
    )
}

/// The EncryptedKeys the KeyInfo names: children of it, or siblings it points to with a
/// same-document RetrievalMethod. Without KeyInfo, the siblings (SAML core 6.2).
fn key_candidates<'a>(key_info: Option<Node<'a>>, siblings: &[Node<'a>]) -> Result<Vec<Node<'a>>, Error> {
    let Some(key_info) = key_info else { return Ok(siblings.to_vec()) };
    let mut out = Vec::new();
    for child in key_info.elements() {
        match (child.namespace(), child.local_name()) {
            (Some(enc::XENC), "EncryptedKey") => out.push(child),
            (Some(ns::DSIG), "RetrievalMethod") => out.push(retrieve(child, siblings)?),
            (Some(ns::DSIG), "KeyName") => {}
            _ => return Err(unsupported(format!("<{}> in EncryptedData KeyInfo", child.local_name()))),
        }
    }
    if out.is_empty() {
        out = siblings.to_vec();
    }
    if out.is_empty() {
        return Err(malformed("no EncryptedKey for the EncryptedData"));
    }
    if out.len() > MAX_ENCRYPTED_KEYS {
        return Err(malformed(format!("more than {MAX_ENCRYPTED_KEYS} EncryptedKeys")));
    }
    Ok(out)
}

/// Resolves a RetrievalMethod to a sibling EncryptedKey. Only `#id`: any other URI would be a
/// fetch (SSRF) or a file read, and transforms would be computation chosen by the sender.
fn retrieve<'a>(method: Node<'a>, siblings: &[Node<'a>]) -> Result<Node<'a>, Error> {
    if method.elements().next().is_some() {
        return Err(unsupported("transforms on a RetrievalMethod"));
    }
    if let Some(kind) = method.attribute("Type").map(|v| v.get().into_owned()) {
        if kind.trim() != enc::TYPE_ENCRYPTED_KEY {
            return Err(unsupported("a RetrievalMethod that does not name an EncryptedKey"));
        }
    }
    let uri = method.attribute("URI").map(|v| v.get().into_owned()).unwrap_or_default();
    let Some(id) = uri.strip_prefix('#').filter(|id| super::structure::is_safe_id(id)) else {
        return Err(unsupported(format!(
            "RetrievalMethod URI {} is not a same-document #id reference",
            super::error::quote(&uri)
        )));
    };
    siblings.iter().copied().find(|k| k.attribute("Id").is_some_and(|v| v.get() == id)).ok_or_else(|| {
        malformed(format!(
            "RetrievalMethod names {}, which is not an EncryptedKey beside the EncryptedData",
            super::error::quote(id)
        ))
    })
}

fn wrapped_key(key: Node<'_>, allow_pkcs1: bool) -> Result<Wrapped, Error> {
    let mut method = None;
    let mut cipher_data = None;
    for child in key.elements() {
        match (child.namespace(), child.local_name()) {
            (Some(enc::XENC), "EncryptionMethod") if method.is_none() => method = Some(child),
            (Some(enc::XENC), "CipherData") if cipher_data.is_none() => cipher_data = Some(child),
            // The recipient's certificate, the data it encrypts, a name: informative only.
            (Some(ns::DSIG), "KeyInfo") | (Some(enc::XENC), "ReferenceList" | "CarriedKeyName") => {}
            _ => return Err(malformed(format!("unexpected <{}> in EncryptedKey", child.local_name()))),
        }
    }
    let method = method.ok_or_else(|| unsupported("EncryptedKey has no EncryptionMethod"))?;
    let (transport, label) = key_transport(method, allow_pkcs1)?;
    let value = cipher_value(cipher_data.ok_or_else(|| malformed("EncryptedKey has no CipherData"))?)?;
    Ok(Wrapped { transport, label, value })
}

fn key_transport(method: Node<'_>, allow_pkcs1: bool) -> Result<(KeyTransport, Vec<u8>), Error> {
    let algorithm = algorithm(method).unwrap_or_default();
    let mut digest = None;
    let mut mgf = None;
    let mut label = Vec::new();
    for child in method.elements() {
        match (child.namespace(), child.local_name()) {
            (Some(ns::DSIG), "DigestMethod") if digest.is_none() => digest = Some(algorithm_of(child)?),
            (Some(enc::XENC11), "MGF") if mgf.is_none() => mgf = Some(algorithm_of(child)?),
            (Some(enc::XENC), "OAEPparams") if label.is_empty() => label = base64(child)?,
            _ => return Err(unsupported(format!("<{}> in the key transport EncryptionMethod", child.local_name()))),
        }
    }
    let transport = match algorithm.as_str() {
        // xmlenc-core1 5.5.2: rsa-oaep-mgf1p fixes MGF1 with SHA-1; DigestMethod defaults to SHA-1.
        enc::RSA_OAEP_MGF1P if mgf.is_none() => {
            KeyTransport::Oaep { digest: oaep_digest(digest.as_deref())?, mgf1: Digest::Sha1 }
        }
        enc::RSA_OAEP => {
            KeyTransport::Oaep { digest: oaep_digest(digest.as_deref())?, mgf1: mgf1_digest(mgf.as_deref())? }
        }
        enc::RSA_1_5 if allow_pkcs1 && digest.is_none() && mgf.is_none() && label.is_empty() => KeyTransport::Pkcs1,
        enc::RSA_1_5 if !allow_pkcs1 => {
            return Err(Error::new(
                Code::DecryptionAlgorithmUnsupported,
                "key transport rsa-1_5 (RSA PKCS#1 v1.5, open to Bleichenbacher's attack) is refused; ask the IdP for RSA-OAEP or set allow_rsa_pkcs1_key_transport",
            ))
        }
        other => return Err(algorithm_unsupported("key transport", other)),
    };
    Ok((transport, label))
}

fn algorithm_of(node: Node<'_>) -> Result<String, Error> {
    algorithm(node).ok_or_else(|| malformed(format!("<{}> has no Algorithm", node.local_name())))
}

fn oaep_digest(uri: Option<&str>) -> Result<Digest, Error> {
    Ok(match uri {
        None | Some(ns::alg::SHA1) => Digest::Sha1,
        Some(ns::alg::SHA256) => Digest::Sha256,
        Some(ns::alg::SHA384) => Digest::Sha384,
        Some(ns::alg::SHA512) => Digest::Sha512,
        Some(other) => return Err(algorithm_unsupported("OAEP digest", other)),
    })
}

fn mgf1_digest(uri: Option<&str>) -> Result<Digest, Error> {
    Ok(match uri {
        None | Some(enc::MGF1_SHA1) => Digest::Sha1,
        Some(enc::MGF1_SHA224) => Digest::Sha224,
        Some(enc::MGF1_SHA256) => Digest::Sha256,
        Some(enc::MGF1_SHA384) => Digest::Sha384,
        Some(enc::MGF1_SHA512) => Digest::Sha512,
        Some(other) => return Err(algorithm_unsupported("MGF", other)),
    })
}

/// The bytes of a CipherData's one inline CipherValue.
fn cipher_value(cipher_data: Node<'_>) -> Result<Vec<u8>, Error> {
    let mut children = cipher_data.elements();
    let value = match (children.next(), children.next()) {
        (Some(value), None) if value.is(enc::XENC, "CipherValue") => value,
        (Some(reference), None) if reference.is(enc::XENC, "CipherReference") => {
            return Err(unsupported("CipherReference (the ciphertext must be inline; no fetching)"))
        }
        _ => return Err(malformed("CipherData must hold exactly one CipherValue")),
    };
    base64(value)
}

fn base64(node: Node<'_>) -> Result<Vec<u8>, Error> {
    let text = xml::text_value(node)
        .ok_or_else(|| malformed(format!("<{}> must contain only base64 text", node.local_name())))?;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| malformed(format!("<{}> is not base64", node.local_name())))
}
