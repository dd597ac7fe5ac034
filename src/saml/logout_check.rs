//! Single Logout, the IdP's messages: a LogoutRequest (IdP-initiated logout) or the
//! LogoutResponse to the SP's request, as the browser delivered them, judged with the strictness
//! of logins. Pure: the raw query or form value, the tenant's policy and `now` in; owned facts
//! out (the caller records the message ID in the replay store).
//!
//! Order: the signature first (the Redirect binding's over the query octets as received, before
//! anything is inflated; the POST binding's through `dsig::verify` after the safe parse and the
//! inventory), then the message, read only through a proof that it was authenticated.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};

use super::authn_request::{check_relay_state, Binding, Parameter, MAX_RELAY_STATE_BYTES};
use super::checks::{at_most_one, attr, instant, required_instant, text, uri_value};
use super::error::{quote, Code, Error};
use super::logout::NameId;
use super::policy::{Limits, TenantPolicy};
use super::redirect::{self, percent_decode, Query};
use super::xml::{self, Document, Node};
use super::{decode, decrypt, dsig, ns, structure, time};

/// A logout message as the browser delivered it to the SP's `slo_url`.
#[derive(Clone, Copy, Debug)]
pub enum Delivered<'a> {
    /// HTTP-Redirect: the raw query string, exactly as received (never decoded and re-encoded).
    Redirect { query: &'a str },
    /// HTTP-POST: the base64 value of the `parameter` form field, and the RelayState field.
    Post { parameter: Parameter, value: &'a str, relay_state: Option<&'a str> },
}

/// What a tenant expects of logout messages.
#[derive(Clone, Copy, Debug)]
pub struct LogoutPolicy<'a> {
    /// Issuer, keys, SHA-1 opt-in, skew and decryption keys: the same as for logins.
    pub tenant: &'a TenantPolicy,
    /// `slo_url`: the Destination every message must name.
    pub slo_url: &'a str,
    /// `require_signed_logout_messages` (default true).
    pub require_signed: bool,
}

/// How a message was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedBy {
    /// The Redirect binding's query signature.
    Query,
    /// An enveloped XML signature on the message.
    Xml,
    /// Nothing: the tenant relaxed `require_signed_logout_messages`.
    Unsigned,
}

/// A LogoutRequest's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub name_id: NameId,
    /// The NameID arrived as an EncryptedID and was decrypted with the tenant's keys.
    pub name_id_encrypted: bool,
    pub session_indexes: Vec<String>,
    pub not_on_or_after: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// A LogoutResponse's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseFacts {
    pub in_response_to: String,
    pub status: String,
    pub second_level_status: Option<String>,
    pub status_message: Option<String>,
}

impl ResponseFacts {
    /// Top-level Success: the IdP ended the session (a second-level PartialLogout says not
    /// everywhere).
    pub fn success(&self) -> bool {
        self.status == ns::STATUS_SUCCESS
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(RequestFacts),
    Response(ResponseFacts),
}

/// A logout message that passed every check, not yet recorded as used.
#[derive(Clone, Debug)]
pub struct Checked {
    pub message: Message,
    pub binding: Binding,
    pub signed_by: SignedBy,
    pub id: String,
    pub issuer: String,
    pub issue_instant: DateTime<Utc>,
    pub destination: String,
    pub relay_state: Option<String>,
    /// Until when the message could still be accepted, plus the skew: how long the replay
    /// record must keep its ID.
    pub remember_until: DateTime<Utc>,
}

/// Proof that the root of the message was authenticated, or that the tenant waived it.
enum Proof<'a> {
    Query(dsig::QueryVerified),
    Xml(dsig::Verified<'a>),
    Unsigned,
}

impl<'a> Proof<'a> {
    /// The element the message is read from: for an XML signature, the one it verified.
    fn root(&self, parsed: Node<'a>) -> Node<'a> {
        match self {
            Proof::Xml(verified) => verified.element(),
            Proof::Query(_) | Proof::Unsigned => parsed,
        }
    }

    fn signed_by(&self) -> SignedBy {
        match self {
            Proof::Query(_) => SignedBy::Query,
            Proof::Xml(_) => SignedBy::Xml,
            Proof::Unsigned => SignedBy::Unsigned,
        }
    }
}

fn missing_signature(what: &str) -> Error {
    Error::new(
        Code::LogoutSignatureMissing,
        format!("{what} is unsigned and the tenant requires signed logout messages (require_signed_logout_messages)"),
    )
}

/// Judges one delivered logout message at `now`. A LogoutResponse must answer
/// `expected_request_id` (the LogoutRequest ID the caller kept).
pub fn check(
    delivered: Delivered<'_>,
    policy: &LogoutPolicy<'_>,
    limits: &Limits,
    expected_request_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Checked, Error> {
    let (binding, parameter, bytes, relay_state, query_proof) = match delivered {
        Delivered::Redirect { query } => {
            let query = Query::parse(query)?;
            let relay_state = query.relay_state.map(percent_decode).transpose()?;
            let proof = match query.signed_octets() {
                Some(octets) => Some(verify_query(&query, &octets, policy.tenant)?),
                None if policy.require_signed => return Err(missing_signature("the Redirect-binding query")),
                None => None,
            };
            bounded_relay_state(relay_state.as_deref())?;
            // Inflated only after the signature verified (or was waived): an unsigned DEFLATE
            // bomb costs nothing.
            let deflated = decode::base64(percent_decode(query.message)?.as_bytes(), limits.max_document_bytes)?;
            let bytes = redirect::inflate(&deflated, limits.max_document_bytes)?;
            (Binding::Redirect, query.parameter, bytes, relay_state, proof)
        }
        Delivered::Post { parameter, value, relay_state } => {
            bounded_relay_state(relay_state)?;
            let bytes = decode::base64(value.as_bytes(), limits.max_document_bytes)?;
            (Binding::Post, parameter, bytes, relay_state.map(str::to_string), None)
        }
    };
    if let Some(encoding) = decode::wide_encoding(&bytes) {
        return Err(Error::new(
            Code::EncodingUnsupported,
            format!("the message is {encoding}; only UTF-8 is accepted"),
        ));
    }
    let doc = xml::parse_within(&bytes, limits.max_nodes)?;
    let inventory = structure::scan(&doc, limits)?;
    if !inventory.assertions.is_empty() || !inventory.encrypted_assertions.is_empty() {
        return Err(Error::new(Code::SamlMalformed, "a logout message carries no assertion"));
    }
    let root = inventory.root;
    let expected = match parameter {
        Parameter::Request => "LogoutRequest",
        Parameter::Response => "LogoutResponse",
    };
    if !root.is(ns::PROTOCOL, expected) {
        return Err(Error::new(
            Code::RootElementInvalid,
            format!("{} carries <{}>; expected samlp:{expected}", parameter.name(), root.local_name()),
        ));
    }
    let proof = match (binding, query_proof) {
        (Binding::Redirect, proof) => {
            if !inventory.signatures.is_empty() {
                // Bindings 3.4.4.1: the XML signature is removed before DEFLATE; one that is
                // still there was never checked by anyone and must not look authenticated.
                return Err(Error::new(
                    Code::SignaturePlacementInvalid,
                    "a Redirect-binding message carries its signature in the query, never in the XML",
                ));
            }
            proof.map_or(Proof::Unsigned, Proof::Query)
        }
        (Binding::Post, _) => post_proof(&doc, root, &inventory.signatures, policy)?,
    };
    let root = proof.root(root);
    let context = Context { policy, limits, now, inventory: &inventory };
    let common = common(root, &context)?;
    let message = match parameter {
        Parameter::Request => Message::Request(request_facts(root, &proof, &context)?),
        Parameter::Response => Message::Response(response_facts(root, expected_request_id)?),
    };
    let skew = Duration::seconds(policy.tenant.clock_skew_seconds);
    let oldest = common.issue_instant + Duration::seconds(limits.max_assertion_age_seconds);
    let last = match &message {
        Message::Request(RequestFacts { not_on_or_after: Some(until), .. }) => oldest.min(*until),
        _ => oldest,
    };
    Ok(Checked {
        message,
        binding,
        signed_by: proof.signed_by(),
        id: common.id,
        issuer: common.issuer,
        issue_instant: common.issue_instant,
        destination: common.destination,
        relay_state,
        remember_until: last + skew,
    })
}

fn bounded_relay_state(relay_state: Option<&str>) -> Result<(), Error> {
    check_relay_state(relay_state).map_err(|_| {
        Error::new(
            Code::LogoutRelayStateTooLong,
            format!("RelayState exceeds the {MAX_RELAY_STATE_BYTES} bytes SAML bindings 3.4.3 / 3.5.3 allow"),
        )
    })
}

/// Bindings 3.4.4.1: SigAlg and Signature decoded, the signature checked over the octets as
/// received with the tenant's keys under the allow-list of XML signatures.
fn verify_query(query: &Query<'_>, octets: &str, tenant: &TenantPolicy) -> Result<dsig::QueryVerified, Error> {
    let sig_alg = percent_decode(query.sig_alg.unwrap_or_default())?;
    let signature = percent_decode(query.signature.unwrap_or_default())?;
    let compact: Vec<u8> = signature.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| Error::new(Code::SignatureMalformed, "the query's Signature is not base64"))?;
    dsig::verify_detached(octets.as_bytes(), &sig_alg, &signature, &tenant.keys, tenant.allow_sha1)
}

/// The POST binding's one enveloped signature, directly on the root (SAML core 5.4.1).
fn post_proof<'a>(
    doc: &'a Document,
    root: Node<'a>,
    signatures: &[Node<'a>],
    policy: &LogoutPolicy<'_>,
) -> Result<Proof<'a>, Error> {
    let (on_root, _) = structure::signature_slots(signatures, Some(root), None)?;
    match on_root {
        Some(signature) => {
            Ok(Proof::Xml(dsig::verify(doc, root, signature, &policy.tenant.keys, policy.tenant.allow_sha1)?))
        }
        None if policy.require_signed => Err(missing_signature(&format!("the POSTed <{}>", root.local_name()))),
        None => Ok(Proof::Unsigned),
    }
}

struct Context<'a> {
    policy: &'a LogoutPolicy<'a>,
    limits: &'a Limits,
    now: DateTime<Utc>,
    inventory: &'a structure::Inventory<'a>,
}

impl Context<'_> {
    fn skew(&self) -> Duration {
        Duration::seconds(self.policy.tenant.clock_skew_seconds)
    }
}

struct Common {
    id: String,
    issuer: String,
    issue_instant: DateTime<Utc>,
    destination: String,
}

const MAX_ID_BYTES: usize = 256;

/// Version, ID, Issuer, Destination and IssueInstant: what both messages carry (core 3.2.1).
fn common(root: Node<'_>, context: &Context<'_>) -> Result<Common, Error> {
    super::checks::version(root)?;
    let id = attr(root, "ID").ok_or_else(|| Error::new(Code::SamlMalformed, "the message has no ID"))?;
    // IDs are recorded: bounded, so no message can make a record of arbitrary size (core
    // 1.3.4 asks for 128-160 bits of randomness; IdPs send under 100 characters).
    if id.len() > MAX_ID_BYTES {
        return Err(Error::new(
            Code::SamlMalformed,
            format!("the message's ID is {} bytes; at most {MAX_ID_BYTES} are accepted", id.len()),
        ));
    }
    let expected_issuer = &context.policy.tenant.idp_entity_id;
    let issuer = match at_most_one(root, ns::ASSERTION, "Issuer")? {
        Some(issuer) => uri_value(&text(issuer)?).to_string(),
        None => String::new(),
    };
    if issuer != *expected_issuer {
        return Err(Error::new(
            Code::LogoutIssuerMismatch,
            format!("{} Issuer is {}, expected {}", root.local_name(), quote(&issuer), quote(expected_issuer)),
        ));
    }
    // Bindings 3.4.5.2 / 3.5.5.2 require Destination on a signed message; we require it always,
    // so that a message meant for another SP (same IdP) is never accepted here.
    let destination = attr(root, "Destination").unwrap_or_default();
    if uri_value(&destination) != context.policy.slo_url {
        return Err(Error::new(
            Code::LogoutDestinationMismatch,
            format!("Destination is {}, expected slo_url {}", quote(&destination), quote(context.policy.slo_url)),
        ));
    }
    let issue_instant = required_instant(root, "IssueInstant")?;
    if issue_instant > context.now + context.skew() {
        return Err(Error::new(
            Code::IssuedInFuture,
            format!(
                "IssueInstant {} is after now {} plus skew",
                time::format(issue_instant),
                time::format(context.now)
            ),
        ));
    }
    let max_age = Duration::seconds(context.limits.max_assertion_age_seconds);
    if context.now - context.skew() > issue_instant + max_age {
        return Err(Error::new(
            Code::LogoutTooOld,
            format!(
                "IssueInstant {} is more than max_assertion_age_seconds = {} (plus skew) before now {}",
                time::format(issue_instant),
                context.limits.max_assertion_age_seconds,
                time::format(context.now)
            ),
        ));
    }
    Ok(Common { id, issuer, issue_instant, destination: uri_value(&destination).to_string() })
}

/// Core 3.7.1: NotOnOrAfter, exactly one of BaseID / NameID / EncryptedID, SessionIndex*.
fn request_facts(root: Node<'_>, proof: &Proof<'_>, context: &Context<'_>) -> Result<RequestFacts, Error> {
    let not_on_or_after = instant(root, "NotOnOrAfter")?;
    if let Some(until) = not_on_or_after {
        if context.now - context.skew() >= until {
            return Err(Error::new(
                Code::LogoutExpired,
                format!(
                    "LogoutRequest NotOnOrAfter {} has passed (now {})",
                    time::format(until),
                    time::format(context.now)
                ),
            ));
        }
    }
    let identifiers: Vec<Node<'_>> = root
        .elements()
        .filter(|n| {
            n.namespace() == Some(ns::ASSERTION) && matches!(n.local_name(), "NameID" | "EncryptedID" | "BaseID")
        })
        .collect();
    let (name_id, name_id_encrypted) = match identifiers.as_slice() {
        [one] if one.local_name() == "NameID" => (name_id(*one)?, false),
        [one] if one.local_name() == "EncryptedID" => (encrypted_name_id(*one, proof, context)?, true),
        [one] => {
            return Err(Error::new(
                Code::SamlMalformed,
                format!("LogoutRequest names the user by <{}>", one.local_name()),
            ))
        }
        _ => return Err(Error::new(Code::SamlMalformed, "LogoutRequest must carry exactly one NameID or EncryptedID")),
    };
    let session_indexes = root
        .elements()
        .filter(|n| n.is(ns::PROTOCOL, "SessionIndex"))
        .map(|n| text(n).map(|t| t.trim().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RequestFacts { name_id, name_id_encrypted, session_indexes, not_on_or_after, reason: attr(root, "Reason") })
}

fn name_id(node: Node<'_>) -> Result<NameId, Error> {
    let value = text(node)?.trim().to_string();
    if value.is_empty() {
        return Err(Error::new(Code::SamlMalformed, "LogoutRequest NameID is empty"));
    }
    Ok(NameId {
        value,
        format: attr(node, "Format"),
        name_qualifier: attr(node, "NameQualifier"),
        sp_name_qualifier: attr(node, "SPNameQualifier"),
    })
}

/// SAML core 3.7.1 lets the IdP encrypt the NameID to the SP: decrypted with the tenant's keys
/// (`decrypt`, the shape and algorithm allow-lists and the RSA budget of logins), and only in
/// an authenticated message: an unauthenticated ciphertext would make this a decryption oracle.
fn encrypted_name_id(container: Node<'_>, proof: &Proof<'_>, context: &Context<'_>) -> Result<NameId, Error> {
    if matches!(proof, Proof::Unsigned) {
        return Err(Error::new(
            Code::EncryptedAssertionUnsupported,
            "an EncryptedID is decrypted only in a signed logout message",
        ));
    }
    let tenant = context.policy.tenant;
    let budget = decrypt::RsaBudget::new(context.limits, tenant.decryption_keys.len());
    budget.count(decrypt::encrypted_keys(&context.inventory.encrypted))?;
    let keys = decrypt::Keys {
        keys: &tenant.decryption_keys,
        allow_pkcs1: tenant.allow_rsa_pkcs1_key_transport,
        budget: &budget,
    };
    let doc = decrypt::decrypt_element(container, &keys, context.limits, ns::ASSERTION, "NameID")?;
    let root = doc.root().ok_or_else(decrypt::failed)?;
    name_id(root)
}

/// Core 3.7.2 / 3.2.2: InResponseTo bound to the caller's request, and the Status.
fn response_facts(root: Node<'_>, expected_request_id: Option<&str>) -> Result<ResponseFacts, Error> {
    let in_response_to = attr(root, "InResponseTo").unwrap_or_default();
    match expected_request_id {
        // An empty expectation must not match an absent InResponseTo.
        Some(expected) if !expected.is_empty() && expected == in_response_to => {}
        Some(expected) => {
            return Err(Error::new(
                Code::LogoutInResponseToMismatch,
                format!("InResponseTo is {}, expected {}", quote(&in_response_to), quote(expected)),
            ))
        }
        // A LogoutResponse nobody asked for ends nothing: without the request ID the caller
        // kept, any of the IdP's LogoutResponses (for any user) would be accepted here.
        None => {
            return Err(Error::new(
                Code::LogoutInResponseToMismatch,
                "a LogoutResponse needs the expected_request_id of the LogoutRequest it answers",
            ))
        }
    }
    let status = at_most_one(root, ns::PROTOCOL, "Status")?
        .ok_or_else(|| Error::new(Code::SamlMalformed, "LogoutResponse has no Status"))?;
    let code = at_most_one(status, ns::PROTOCOL, "StatusCode")?
        .ok_or_else(|| Error::new(Code::SamlMalformed, "Status has no StatusCode"))?;
    let value = attr(code, "Value").ok_or_else(|| Error::new(Code::SamlMalformed, "StatusCode has no Value"))?;
    let second = at_most_one(code, ns::PROTOCOL, "StatusCode")?.and_then(|c| attr(c, "Value"));
    let message = match at_most_one(status, ns::PROTOCOL, "StatusMessage")? {
        Some(node) => Some(text(node)?.trim().to_string()),
        None => None,
    };
    Ok(ResponseFacts { in_response_to, status: value, second_level_status: second, status_message: message })
}
