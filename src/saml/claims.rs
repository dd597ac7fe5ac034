//! The verified user, normalized. Built only from a [`SignedAssertion`], the proof that the
//! assertion element is covered by a verified signature.

use std::collections::BTreeMap;

use serde::Serialize;

use super::decrypt;
use super::error::{Code, Error};
use super::ns;
use super::policy::{AttributeMapping, Limits};
use super::signed::SignedAssertion;
use super::xml::{self, Node};

/// The result of a successful validation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Validated {
    pub issuer: String,
    pub assertion_id: String,
    /// ID of the enclosing Response, when the Response signature verified (absent for a bare
    /// assertion and when only the Assertion is signed).
    pub response_id: Option<String>,
    /// ID of the enclosing Response when no verified signature covers it (only the Assertion
    /// is signed): anyone who relays the response can change it, so it is named as such.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsigned_response_id: Option<String>,
    pub subject: Subject,
    pub claims: Claims,
    /// Every attribute of the assertion, by Name, every value in document order.
    pub attributes: BTreeMap<String, Vec<String>>,
    pub session: Session,
    /// The earliest NotOnOrAfter among Conditions and the bearer confirmation used.
    pub valid_until: String,
    /// Which signatures were present and verified.
    pub signed: SignedParts,
    /// The assertion arrived encrypted (EncryptedAssertion) and was decrypted with the tenant's key.
    pub encrypted: bool,
    /// `valid_until` as an instant, for the replay cache.
    #[serde(skip)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The assertion's signed IssueInstant: what a replay store's loss is compared against.
    #[serde(skip)]
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// `sha256_fingerprint` of the tenant certificate whose signature covers the assertion
    /// (per-certificate `last_used_at`).
    #[serde(skip)]
    pub signing_key_sha256: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SignedParts {
    pub response: bool,
    pub assertion: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Subject {
    pub name_id: String,
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_qualifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sp_name_qualifier: Option<String>,
    /// Stable, opaque identifier of the user for this tenant (`subject_key_from`; see
    /// `subject_key`): bind accounts to this, not to the NameID.
    pub key: String,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Claims {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub object_id: Option<String>,
    pub idp_tenant_id: Option<String>,
    /// True when the IdP omitted the user's groups because there were too many (Entra ID sends
    /// a `groups.link` claim instead when a user is in more than 150 groups); the caller must
    /// then fetch them from the directory.
    pub groups_overage: bool,
    pub authn_methods: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Session {
    pub index: Option<String>,
    pub authn_instant: Option<String>,
    /// SessionNotOnOrAfter, when the IdP bounds the session.
    pub not_on_or_after: Option<String>,
    pub authn_context: Option<String>,
}

/// Every attribute of the signed assertion, in document order. An EncryptedAttribute (SAML
/// core 2.7.3.2) is decrypted with the tenant's keys; its ciphertext is covered by the
/// assertion's verified signature, so what it decrypts to is the IdP's.
pub fn attributes(
    assertion: &SignedAssertion<'_>,
    keys: &decrypt::Keys<'_>,
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for statement in assertion.node().elements().filter(|n| n.is(ns::ASSERTION, "AttributeStatement")) {
        for attribute in statement.elements() {
            if attribute.is(ns::ASSERTION, "EncryptedAttribute") {
                let doc = decrypt::decrypt_element(attribute, keys, limits, ns::ASSERTION, "Attribute")?;
                let root = doc.root().ok_or_else(decrypt::failed)?;
                add_attribute(&mut out, root)?;
            } else if attribute.is(ns::ASSERTION, "Attribute") {
                add_attribute(&mut out, attribute)?;
            }
        }
    }
    Ok(out)
}

fn add_attribute(out: &mut BTreeMap<String, Vec<String>>, attribute: Node<'_>) -> Result<(), Error> {
    let name = attribute
        .attribute("Name")
        .map(|v| v.get().into_owned())
        .ok_or_else(|| Error::new(Code::SamlMalformed, "Attribute without Name"))?;
    let values = out.entry(name).or_default();
    for value in attribute.elements().filter(|n| n.is(ns::ASSERTION, "AttributeValue")) {
        values.push(attribute_value(value));
    }
    Ok(())
}

fn attribute_value(value: Node<'_>) -> String {
    // Plain text in nearly every IdP; structured values (eduPersonTargetedID holds a NameID)
    // are reduced to their character data.
    match xml::text_value(value) {
        Some(text) => text.into_owned(),
        None => xml::deep_text(value),
    }
}

/// Applies the tenant's attribute mapping.
pub fn normalize(attributes: &BTreeMap<String, Vec<String>>, mapping: &AttributeMapping) -> Claims {
    let first = |names: &[String]| -> Option<String> {
        names.iter().find_map(|n| attributes.get(n).and_then(|v| v.iter().find(|s| !s.is_empty())).cloned())
    };
    let all = |names: &[String]| -> Vec<String> {
        let mut sources = names.iter().filter_map(|n| attributes.get(n));
        let Some(first_source) = sources.next() else {
            return Vec::new();
        };
        let mut out: Vec<String> = first_source.iter().filter(|v| !v.is_empty()).cloned().collect();
        // Values from further attributes (rare: an IdP sending both `groups` and `memberOf`)
        // are merged without duplicates.
        let mut seen: Option<std::collections::HashSet<String>> = None;
        for source in sources {
            let seen = seen.get_or_insert_with(|| out.iter().cloned().collect());
            for value in source {
                if !value.is_empty() && seen.insert(value.clone()) {
                    out.push(value.clone());
                }
            }
        }
        out
    };
    Claims {
        email: first(&mapping.email),
        first_name: first(&mapping.first_name),
        last_name: first(&mapping.last_name),
        display_name: first(&mapping.display_name),
        username: first(&mapping.username),
        groups: all(&mapping.groups),
        roles: all(&mapping.roles),
        object_id: first(&mapping.object_id),
        idp_tenant_id: first(&mapping.idp_tenant_id),
        groups_overage: mapping.groups_overage.iter().any(|n| attributes.contains_key(n)),
        authn_methods: all(&mapping.authn_methods),
    }
}
