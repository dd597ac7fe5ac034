//! The SAML 2.0 Web Browser SSO profile checks (SAML profiles 4.1.4.2-4.1.4.3, core 2.4-2.7).
//! Each failure has its own code; messages say what was expected and what was found.

use chrono::{DateTime, Duration, Utc};

use super::claims::{self, Session, SignedParts, Subject, Validated};
use super::decrypt;
use super::error::{quote, Code, Error};
use super::ns;
use super::policy::{Limits, TenantPolicy};
use super::request::Request;
use super::requirements;
use super::signed::SignedAssertion;
use super::subject_key::{self, Inputs};
use super::time;
use super::xml::{self, Node};

pub struct Context<'a> {
    pub policy: &'a TenantPolicy,
    /// Limits for documents decrypted along the way (EncryptedID, EncryptedAttribute).
    pub limits: &'a Limits,
    /// The document's RSA operations, shared by every encrypted element in it.
    pub rsa: &'a decrypt::RsaBudget,
    pub request: &'a Request<'a>,
    pub now: DateTime<Utc>,
}

impl Context<'_> {
    fn decryption_keys(&self) -> decrypt::Keys<'_> {
        decrypt::Keys {
            keys: &self.policy.decryption_keys,
            allow_pkcs1: self.policy.allow_rsa_pkcs1_key_transport,
            budget: self.rsa,
        }
    }

    fn skew(&self) -> Duration {
        Duration::seconds(self.policy.clock_skew_seconds)
    }

    /// Whether a Destination or Recipient names where this login may arrive.
    fn acs_matches(&self, found: &str) -> bool {
        requirements::acs_matches(self.policy, self.request.expected_acs_url, uri_value(found))
    }

    pub(super) fn acs_wanted(&self) -> String {
        requirements::acs_wanted(self.policy, self.request.expected_acs_url)
    }
}

pub(super) fn attr(node: Node<'_>, name: &str) -> Option<String> {
    node.attribute(name).map(|v| v.get().into_owned())
}

pub(super) fn instant(node: Node<'_>, name: &str) -> Result<Option<DateTime<Utc>>, Error> {
    match node.attribute(name) {
        None => Ok(None),
        Some(value) => {
            let text = value.get();
            time::parse_utc(&text).map(Some).map_err(|why| {
                Error::new(Code::SamlMalformed, format!("{}@{name} {} {why}", node.local_name(), quote(&text)))
            })
        }
    }
}

pub(super) fn required_instant(node: Node<'_>, name: &str) -> Result<DateTime<Utc>, Error> {
    instant(node, name)?
        .ok_or_else(|| Error::new(Code::SamlMalformed, format!("<{}> has no {name}", node.local_name())))
}

pub(super) fn child<'a>(node: Node<'a>, namespace: &str, name: &str) -> Option<Node<'a>> {
    node.elements().find(|n| n.is(namespace, name))
}

/// The `name` child of `node`, for elements the schema allows at most once there (core 2.2.5,
/// 2.3.3, 2.4.1, 2.4.1.1, 3.2.2). Reading the first of two lets this validator and whatever
/// reads the assertion after it judge different elements (a second Conditions naming another
/// audience, a second Subject naming another user), so a second one refuses the document.
pub(super) fn at_most_one<'a>(node: Node<'a>, namespace: &str, name: &str) -> Result<Option<Node<'a>>, Error> {
    let mut found = node.elements().filter(|n| n.is(namespace, name));
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::new(
            Code::SamlMalformed,
            format!("<{}> has more than one <{name}>; the schema allows at most one", node.local_name()),
        ));
    }
    Ok(first)
}

/// A URI value as the schema reads it: xs:anyURI is whitespace-collapsed (XML Schema part 2,
/// 3.2.17), so an IdP that pads Audience, Destination or Recipient with a line break means the
/// same URI, and so does one padding the entity ID in Issuer (core 8.3.6). Only XML whitespace
/// is trimmed: Unicode spaces, case and URL forms stay significant, or two different
/// identifiers would compare equal.
pub(super) fn uri_value(value: &str) -> &str {
    value.trim_matches([' ', '\t', '\r', '\n'])
}

pub(super) fn text(node: Node<'_>) -> Result<String, Error> {
    xml::text_value(node)
        .map(|t| t.into_owned())
        .ok_or_else(|| Error::new(Code::SamlMalformed, format!("<{}> must contain only text", node.local_name())))
}

pub fn version(element: Node<'_>) -> Result<(), Error> {
    match element.attribute("Version").map(|v| v.get()) {
        Some(v) if v == "2.0" => Ok(()),
        found => Err(Error::new(
            Code::VersionUnsupported,
            format!(
                "<{}> Version is {}, expected \"2.0\"",
                element.local_name(),
                found.as_deref().map_or("absent".into(), quote)
            ),
        )),
    }
}

/// Status must be Success; otherwise the IdP's codes and message are passed on.
pub fn status(response: Node<'_>) -> Result<(), Error> {
    // Exactly one of each (core 3.2.2, 3.2.2.1): with two, a reader that takes the first and
    // one that takes the last would disagree on whether the IdP said Success.
    let status = at_most_one(response, ns::PROTOCOL, "Status")?
        .ok_or_else(|| Error::new(Code::SamlMalformed, "Response has no Status"))?;
    let code = at_most_one(status, ns::PROTOCOL, "StatusCode")?
        .ok_or_else(|| Error::new(Code::SamlMalformed, "Status has no StatusCode"))?;
    let value = attr(code, "Value").unwrap_or_default();
    if value == ns::STATUS_SUCCESS {
        return Ok(());
    }
    let mut message = format!("IdP status {}", quote(&value));
    if let Some(second) = at_most_one(code, ns::PROTOCOL, "StatusCode")?.and_then(|c| attr(c, "Value")) {
        message.push_str(&format!(", {}", quote(&second)));
    }
    if let Some(text) = child(status, ns::PROTOCOL, "StatusMessage").and_then(|m| xml::text_value(m)) {
        message.push_str(&format!(": {}", quote(text.trim())));
    }
    Err(Error::new(Code::StatusNotSuccess, message))
}

/// The Issuer of `element`, checked against the tenant's IdP; returns the value as compared.
pub(super) fn issuer(element: Node<'_>, context: &Context<'_>, required: bool) -> Result<Option<String>, Error> {
    let Some(issuer) = at_most_one(element, ns::ASSERTION, "Issuer")? else {
        if required {
            return Err(Error::new(Code::IssuerMismatch, format!("<{}> has no Issuer", element.local_name())));
        }
        return Ok(None);
    };
    let found = text(issuer)?;
    if uri_value(&found) != context.policy.idp_entity_id {
        return Err(Error::new(
            Code::IssuerMismatch,
            format!(
                "{} Issuer is {}, expected {}",
                element.local_name(),
                quote(&found),
                quote(&context.policy.idp_entity_id)
            ),
        ));
    }
    Ok(Some(uri_value(&found).to_string()))
}

pub(super) fn not_in_future(element: Node<'_>, context: &Context<'_>) -> Result<DateTime<Utc>, Error> {
    let issued = required_instant(element, "IssueInstant")?;
    if issued > context.now + context.skew() {
        return Err(Error::new(
            Code::IssuedInFuture,
            format!(
                "{} IssueInstant {} is after now {} plus skew",
                element.local_name(),
                time::format(issued),
                time::format(context.now)
            ),
        ));
    }
    Ok(issued)
}

/// The assertion's age bound, whatever its NotOnOrAfter says: the replay record of an
/// assertion must outlive every instant at which it could be accepted, so an unbounded
/// validity would make every loss of that record permanent (a store that forgot could never
/// again tell a replay from a first use).
pub(super) fn not_too_old(issued: DateTime<Utc>, context: &Context<'_>) -> Result<(), Error> {
    let max_age = chrono::Duration::seconds(context.limits.max_assertion_age_seconds);
    if context.now - context.skew() > issued + max_age {
        return Err(Error::new(
            Code::AssertionTooOld,
            format!(
                "Assertion IssueInstant {} is more than max_assertion_age_seconds = {} (plus skew) before now {}",
                time::format(issued),
                context.limits.max_assertion_age_seconds,
                time::format(context.now)
            ),
        ));
    }
    Ok(())
}

/// Response-level checks. These attributes are unsigned when only the assertion is signed
/// (Entra's default); they are used only to refuse, never as claims.
pub fn response(response: Node<'_>, context: &Context<'_>) -> Result<(), Error> {
    not_in_future(response, context)?;
    destination(response, context)?;
    issuer(response, context, false)?;
    in_response_to(attr(response, "InResponseTo"), context)
}

/// An absent Destination is accepted (bindings 3.5.5.2 require it only on a signed Response);
/// the assertion's Recipient is checked in every case.
pub(super) fn destination(response: Node<'_>, context: &Context<'_>) -> Result<(), Error> {
    if let Some(destination) = attr(response, "Destination") {
        if !context.acs_matches(&destination) {
            return Err(Error::new(
                Code::DestinationMismatch,
                format!("Destination is {}, expected {}", quote(&destination), context.acs_wanted()),
            ));
        }
    }
    Ok(())
}

/// SP-initiated: InResponseTo must equal the request the caller issued. Without one, only a
/// tenant that explicitly allows IdP-initiated login accepts the response (unsolicited
/// responses have no binding to the browser session, so login CSRF is possible).
/// Compared exactly, never trimmed: InResponseTo is an xs:NCName (core 3.2.2), which cannot
/// hold whitespace, so a padded value is not the ID the caller issued, and trimming would only
/// widen what matches. (NameID, an opaque string, is likewise returned exactly as signed.)
pub(super) fn in_response_to(found: Option<String>, context: &Context<'_>) -> Result<(), Error> {
    match (context.request.expected_request_id, found) {
        (Some(expected), Some(found)) if found == expected => Ok(()),
        (Some(expected), found) => Err(Error::new(
            Code::InResponseToMismatch,
            format!(
                "InResponseTo is {}, expected {}",
                found.as_deref().map_or("absent".into(), quote),
                quote(expected)
            ),
        )),
        // A response to some request, but the caller did not say which: never accepted, even
        // where IdP-initiated login is allowed (it would let a response captured from another
        // session's SP-initiated flow through as "unsolicited").
        (None, Some(found)) => Err(Error::new(
            Code::UnsolicitedResponse,
            format!(
                "no expected_request_id given for a response to request {}; pass the AuthnRequest ID",
                quote(&found)
            ),
        )),
        (None, None) if context.policy.allow_idp_initiated => Ok(()),
        (None, None) => Err(Error::new(
            Code::UnsolicitedResponse,
            "IdP-initiated response and the tenant does not set allow_idp_initiated",
        )),
    }
}

/// What the result says about the enclosing Response, decided by the caller from the verified
/// signatures before the assertion is judged.
pub struct Envelope {
    /// The Response's ID, only when the Response signature verified.
    pub response_id: Option<String>,
    /// The Response's ID when no signature covers it: reported under a name that says so.
    pub unsigned_response_id: Option<String>,
    pub signed: SignedParts,
    /// The assertion arrived as an EncryptedAssertion.
    pub encrypted: bool,
}

/// What the result says about the Response, from the verified signatures.
pub fn envelope(
    response: Option<Node<'_>>,
    verified_response: Option<super::dsig::Verified<'_>>,
    assertion_signed: bool,
    encrypted: bool,
) -> Envelope {
    let id_of = |node: Node<'_>| node.attribute("ID").map(|v| v.get().into_owned());
    Envelope {
        response_id: verified_response.and_then(|verified| id_of(verified.element())),
        unsigned_response_id: if verified_response.is_some() { None } else { response.and_then(id_of) },
        signed: SignedParts { response: verified_response.is_some(), assertion: assertion_signed },
        encrypted,
    }
}

/// Assertion checks, then the claims, all read from the signed assertion.
pub fn assertion(
    signed: &SignedAssertion<'_>,
    bare: bool,
    context: &Context<'_>,
    envelope: Envelope,
) -> Result<Validated, Error> {
    let assertion = signed.node();
    version(assertion)?;
    let issued_at = not_in_future(assertion, context)?;
    let issuer = issuer(assertion, context, true)?
        .ok_or_else(|| Error::new(Code::IssuerMismatch, "<Assertion> has no Issuer"))?;
    let assertion_id = attr(assertion, "ID").ok_or_else(|| Error::new(Code::SamlMalformed, "Assertion has no ID"))?;

    let subject_node = at_most_one(assertion, ns::ASSERTION, "Subject")?
        .ok_or_else(|| Error::new(Code::SubjectMissing, "Assertion has no Subject"))?;
    let subject = subject(subject_node, context)?;
    let confirmation_expiry = bearer_confirmation(subject_node, bare, context)?;
    let conditions_expiry = conditions(assertion, context)?;
    let valid_until = match (conditions_expiry, confirmation_expiry) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => {
            return Err(Error::new(Code::SamlMalformed, "assertion has no NotOnOrAfter at all; it would never expire"))
        }
    };
    // After the expiry checks: an expired assertion is reported as expired, the more telling.
    not_too_old(issued_at, context)?;
    let session = authn_statement(assertion, context)?;
    let attributes = claims::attributes(signed, &context.decryption_keys(), context.limits)?;
    let normalized = claims::normalize(&attributes, &context.policy.attribute_mapping);
    requirements::authn_methods(context.policy, &normalized.authn_methods)?;
    let mut subject = subject;
    let inputs = Inputs {
        tenant_id: &context.policy.tenant_id,
        issuer: &issuer,
        subject: &subject,
        attributes: &attributes,
        mapping: &context.policy.attribute_mapping,
    };
    subject.key = subject_key::derive(&context.policy.subject_key_from, &inputs)?;
    Ok(Validated {
        issuer,
        assertion_id,
        response_id: envelope.response_id,
        unsigned_response_id: envelope.unsigned_response_id,
        subject,
        claims: normalized,
        attributes,
        session,
        valid_until: time::format(valid_until),
        signed: envelope.signed,
        encrypted: envelope.encrypted,
        expires_at: valid_until,
        issued_at,
        signing_key_sha256: context
            .policy
            .keys
            .get(signed.key_index())
            .map(|k| k.info.sha256_fingerprint.clone())
            .unwrap_or_default(),
    })
}

pub(super) fn subject(subject: Node<'_>, context: &Context<'_>) -> Result<Subject, Error> {
    // The identifier is a choice of one (core 2.4.1): two NameIDs, or a NameID next to a BaseID,
    // would let two readers of the same assertion log in different users.
    let identifiers: Vec<Node<'_>> = subject
        .elements()
        .filter(|n| {
            n.namespace() == Some(ns::ASSERTION) && matches!(n.local_name(), "NameID" | "BaseID" | "EncryptedID")
        })
        .collect();
    if identifiers.len() > 1 {
        return Err(Error::new(
            Code::SamlMalformed,
            format!(
                "<Subject> has {} identifiers ({}); the schema allows at most one",
                identifiers.len(),
                identifiers.iter().map(|n| n.local_name()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let identifier = identifiers.first().copied();
    if let Some(encrypted) = identifier.filter(|n| n.local_name() == "EncryptedID") {
        // SAML core 2.2.4: the plaintext is a NameID (or BaseID, which no IdP sends); its
        // ciphertext is covered by the assertion's verified signature.
        let keys = context.decryption_keys();
        let doc = decrypt::decrypt_element(encrypted, &keys, context.limits, ns::ASSERTION, "NameID")?;
        return name_id(doc.root().ok_or_else(decrypt::failed)?);
    }
    let name_id_node = identifier
        .filter(|n| n.local_name() == "NameID")
        .ok_or_else(|| Error::new(Code::SubjectMissing, "Subject has no NameID"))?;
    name_id(name_id_node)
}

fn name_id(name_id: Node<'_>) -> Result<Subject, Error> {
    let value = text(name_id)?;
    if value.trim().is_empty() {
        return Err(Error::new(Code::SubjectMissing, "NameID is empty"));
    }
    Ok(Subject {
        name_id: value,
        format: attr(name_id, "Format"),
        name_qualifier: attr(name_id, "NameQualifier"),
        sp_name_qualifier: attr(name_id, "SPNameQualifier"),
        // Derived once the whole assertion is judged (`subject_key`).
        key: String::new(),
    })
}

/// At least one bearer SubjectConfirmation must hold (profiles 4.1.4.2). Returns the expiry of
/// the one that held.
///
/// Several confirmations are allowed, and any one that holds confirms the subject (core 2.4.1:
/// "if any one of the included subject confirmations are verified"), so a failing bearer
/// confirmation next to one that holds is not a refusal; the expiry used is the one of the
/// confirmation that held, never a later one of another. If none holds, the first failure is
/// reported. A bearer confirmation without SubjectConfirmationData holds only in a bare
/// assertion in which no bearer confirmation carries data: that relaxation exists for
/// WS-Federation tokens that carry none, and must not stand in for data that fails.
pub(super) fn bearer_confirmation(
    subject: Node<'_>,
    bare: bool,
    context: &Context<'_>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let mut bearer_data = Vec::new();
    for confirmation in subject.elements().filter(|n| n.is(ns::ASSERTION, "SubjectConfirmation")) {
        // Checked on every confirmation before any is judged, so that a malformed one is refused
        // whatever its position.
        let data = at_most_one(confirmation, ns::ASSERTION, "SubjectConfirmationData")?;
        if attr(confirmation, "Method").as_deref() == Some(ns::CM_BEARER) {
            bearer_data.push(data);
        }
    }
    if bearer_data.is_empty() {
        return Err(Error::new(Code::BearerConfirmationMissing, "no bearer SubjectConfirmation"));
    }
    if bearer_data.iter().all(Option::is_none) {
        if bare {
            // WS-Federation tokens (Entra's bare assertions) carry no confirmation data; their
            // validity comes from Conditions alone. Only reachable with allow_bare_assertion,
            // and never when the caller expects an answer to a specific request.
            in_response_to(None, context)?;
            return Ok(None);
        }
        return Err(Error::new(
            Code::BearerConfirmationMissing,
            "bearer SubjectConfirmation has no SubjectConfirmationData",
        ));
    }
    let mut first_error = None;
    for data in bearer_data.into_iter().flatten() {
        match check_confirmation_data(data, context) {
            Ok(expiry) => return Ok(Some(expiry)),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| Error::new(Code::BearerConfirmationMissing, "no bearer SubjectConfirmation")))
}

fn check_confirmation_data(data: Node<'_>, context: &Context<'_>) -> Result<DateTime<Utc>, Error> {
    let recipient = attr(data, "Recipient");
    if !recipient.as_deref().is_some_and(|found| context.acs_matches(found)) {
        return Err(Error::new(
            Code::RecipientMismatch,
            format!(
                "Recipient is {}, expected {}",
                recipient.as_deref().map_or("absent".into(), quote),
                context.acs_wanted()
            ),
        ));
    }
    let not_on_or_after = instant(data, "NotOnOrAfter")?
        .ok_or_else(|| Error::new(Code::SamlMalformed, "bearer SubjectConfirmationData has no NotOnOrAfter"))?;
    if context.now - context.skew() >= not_on_or_after {
        return Err(Error::new(
            Code::SubjectConfirmationExpired,
            format!(
                "SubjectConfirmationData NotOnOrAfter {} has passed (now {})",
                time::format(not_on_or_after),
                time::format(context.now)
            ),
        ));
    }
    if let Some(not_before) = instant(data, "NotBefore")? {
        if context.now + context.skew() < not_before {
            return Err(not_yet(not_before, context));
        }
    }
    // The signed binding to the AuthnRequest (profiles 4.1.4.2): when the caller expects a
    // response to a request, the assertion itself must say so. Checking only the Response's
    // InResponseTo would trust an attribute that assertion-only signing leaves unsigned.
    in_response_to(attr(data, "InResponseTo"), context)?;
    Ok(not_on_or_after)
}

fn not_yet(not_before: DateTime<Utc>, context: &Context<'_>) -> Error {
    Error::new(
        Code::NotYetValid,
        format!("NotBefore {} is after now {} plus skew", time::format(not_before), time::format(context.now)),
    )
}

/// Conditions with a validity window and an AudienceRestriction naming us. Unknown conditions
/// make the assertion invalid (core 2.5.1.1: "Indeterminate" must not be treated as valid).
pub(super) fn conditions(assertion: Node<'_>, context: &Context<'_>) -> Result<Option<DateTime<Utc>>, Error> {
    let conditions = at_most_one(assertion, ns::ASSERTION, "Conditions")?.ok_or_else(|| {
        Error::new(Code::AudienceMismatch, "Assertion has no Conditions (an AudienceRestriction is required)")
    })?;
    if let Some(not_before) = instant(conditions, "NotBefore")? {
        if context.now + context.skew() < not_before {
            return Err(not_yet(not_before, context));
        }
    }
    let not_on_or_after = instant(conditions, "NotOnOrAfter")?;
    if let Some(limit) = not_on_or_after {
        if context.now - context.skew() >= limit {
            return Err(Error::new(
                Code::AssertionExpired,
                format!(
                    "Conditions NotOnOrAfter {} has passed (now {})",
                    time::format(limit),
                    time::format(context.now)
                ),
            ));
        }
    }
    let mut restrictions = 0;
    for condition in conditions.elements() {
        match (condition.namespace(), condition.local_name()) {
            (Some(ns::ASSERTION), "AudienceRestriction") => {
                restrictions += 1;
                let mut audiences = Vec::new();
                for audience in condition.elements().filter(|n| n.is(ns::ASSERTION, "Audience")) {
                    audiences.push(text(audience)?);
                }
                if !audiences.iter().any(|a| uri_value(a) == context.policy.sp_entity_id) {
                    return Err(Error::new(
                        Code::AudienceMismatch,
                        format!(
                            "AudienceRestriction names {}, expected {}",
                            audiences.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", "),
                            quote(&context.policy.sp_entity_id)
                        ),
                    ));
                }
            }
            // OneTimeUse is enforced by the replay cache for every assertion anyway;
            // ProxyRestriction only constrains relying parties that re-issue assertions.
            (Some(ns::ASSERTION), "OneTimeUse" | "ProxyRestriction") => {}
            (_, other) => {
                return Err(Error::new(Code::ConditionUnsupported, format!("unsupported condition <{other}>")));
            }
        }
    }
    if restrictions == 0 {
        return Err(Error::new(Code::AudienceMismatch, "Conditions have no AudienceRestriction"));
    }
    Ok(not_on_or_after)
}

/// Several AuthnStatements are allowed (core 2.3.3); each one must pass, or an ended session
/// would be accepted for sitting second. The session reported is the first one's.
pub(super) fn authn_statement(assertion: Node<'_>, context: &Context<'_>) -> Result<Session, Error> {
    let mut session = None;
    for statement in assertion.elements().filter(|n| n.is(ns::ASSERTION, "AuthnStatement")) {
        let checked = check_authn_statement(statement, context)?;
        session.get_or_insert(checked);
    }
    if let Some(session) = session {
        return Ok(session);
    }
    if context.policy.allow_missing_authn_statement {
        // Nothing says how or when the user signed in: a tenant that requires either refuses.
        requirements::authn_age(context.policy, None, context.now)?;
        requirements::authn_context(context.policy, None)?;
        return Ok(Session { index: None, authn_instant: None, not_on_or_after: None, authn_context: None });
    }
    Err(Error::new(
        Code::AuthnStatementMissing,
        "Assertion has no AuthnStatement (set allow_missing_authn_statement for IdPs that omit it)",
    ))
}

fn check_authn_statement(statement: Node<'_>, context: &Context<'_>) -> Result<Session, Error> {
    let authn_instant = required_instant(statement, "AuthnInstant")?;
    let session_end = instant(statement, "SessionNotOnOrAfter")?;
    if let Some(end) = session_end {
        if context.now - context.skew() >= end {
            return Err(Error::new(
                Code::SessionExpired,
                format!("SessionNotOnOrAfter {} has passed (now {})", time::format(end), time::format(context.now)),
            ));
        }
    }
    let authn_context = match at_most_one(statement, ns::ASSERTION, "AuthnContext")? {
        Some(c) => at_most_one(c, ns::ASSERTION, "AuthnContextClassRef")?.map(text).transpose()?,
        None => None,
    };
    requirements::authn_age(context.policy, Some(authn_instant), context.now)?;
    requirements::authn_context(context.policy, authn_context.as_deref().map(uri_value))?;
    Ok(Session {
        index: attr(statement, "SessionIndex"),
        authn_instant: Some(time::format(authn_instant)),
        not_on_or_after: session_end.map(time::format),
        authn_context,
    })
}
