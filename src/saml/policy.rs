//! What a tenant expects, as plain data. Built by the configuration layer, read by the core.

use super::decrypt::key::DecryptionKey;
use std::fmt;

use super::keys::TrustedKey;

/// Everything the core needs to judge one tenant's responses. Secure by default: every field
/// that relaxes a check is named `allow_*` and is false unless an operator sets it.
#[derive(Clone, Debug)]
pub struct TenantPolicy {
    /// The tenant's id: it scopes subject keys, so that two tenants trusting one IdP never
    /// hand the same key to their callers.
    pub tenant_id: String,
    /// Expected Issuer of the Response and of the Assertion.
    pub idp_entity_id: String,
    /// Expected Audience (this service provider's entity ID).
    pub sp_entity_id: String,
    /// Expected Response Destination and SubjectConfirmationData Recipient; the ACS
    /// AuthnRequests ask for unless told otherwise, index 0 in SP metadata.
    pub acs_url: String,
    /// `acs_urls`: further ACS URLs the tenant accepts (a help desk under its own domain and
    /// the customer's); never holds `acs_url` itself. See [`TenantPolicy::acs_urls`].
    pub other_acs_urls: Vec<String>,
    /// Tolerance applied to every time comparison.
    pub clock_skew_seconds: i64,
    /// Accept rsa-sha1 / sha1 (collision-prone; only for IdPs that cannot do better).
    pub allow_sha1: bool,
    /// Accept responses without an `expected_request_id` (IdP-initiated login, no CSRF binding).
    pub allow_idp_initiated: bool,
    /// Accept a bare signed `<Assertion>` (WS-Federation style) instead of a `<Response>`; in
    /// that mode a bearer SubjectConfirmation without SubjectConfirmationData is tolerated.
    pub allow_bare_assertion: bool,
    /// Accept an assertion without an AuthnStatement (the Web SSO profile, 4.1.4.2, requires
    /// one; Keycloak omits it in some configurations). Session fields are then empty.
    pub allow_missing_authn_statement: bool,
    /// Keys the IdP may sign with (several during a certificate rollover).
    pub keys: Vec<TrustedKey>,
    /// The SP's private keys for EncryptedAssertion, EncryptedID and EncryptedAttribute (each is
    /// tried, for key rollover). Empty: encrypted elements are refused as unsupported.
    pub decryption_keys: Vec<DecryptionKey>,
    /// Accept RSA PKCS#1 v1.5 key transport (`xmlenc#rsa-1_5`, Bleichenbacher-prone; decrypted
    /// with implicit rejection). Only for IdPs that cannot do RSA-OAEP.
    pub allow_rsa_pkcs1_key_transport: bool,
    /// Refuse assertions that did not arrive encrypted.
    pub require_encrypted_assertions: bool,
    pub attribute_mapping: AttributeMapping,
    /// `require_authn_methods`: at least one of these must be among the signed assertion's
    /// `authn_methods` claim (Entra's authnmethodsreferences, e.g. `…/claims/multipleauthn`
    /// after MFA). Empty: no requirement.
    pub require_authn_methods: Vec<String>,
    /// `require_authn_context`: every AuthnStatement's AuthnContextClassRef must be one of
    /// these. Empty: no requirement.
    pub require_authn_context: Vec<String>,
    /// `max_authn_age_seconds`: every AuthnInstant must be at most this old (plus the skew).
    pub max_authn_age_seconds: Option<i64>,
    /// `subject_key_from`: what `subject.key` is derived from.
    pub subject_key_from: SubjectKeySource,
}

impl TenantPolicy {
    /// A policy with every check on: 180 s skew, no relaxation, default attribute mapping, no
    /// login requirement, subject keys from the NameID, an empty tenant id.
    pub fn new(idp_entity_id: &str, sp_entity_id: &str, acs_url: &str, keys: Vec<TrustedKey>) -> TenantPolicy {
        TenantPolicy {
            tenant_id: String::new(),
            idp_entity_id: idp_entity_id.to_string(),
            sp_entity_id: sp_entity_id.to_string(),
            acs_url: acs_url.to_string(),
            other_acs_urls: Vec::new(),
            clock_skew_seconds: 180,
            allow_sha1: false,
            allow_idp_initiated: false,
            allow_bare_assertion: false,
            allow_missing_authn_statement: false,
            keys,
            decryption_keys: Vec::new(),
            allow_rsa_pkcs1_key_transport: false,
            require_encrypted_assertions: false,
            attribute_mapping: AttributeMapping::default(),
            require_authn_methods: Vec::new(),
            require_authn_context: Vec::new(),
            max_authn_age_seconds: None,
            subject_key_from: SubjectKeySource::default(),
        }
    }

    /// Every ACS URL the tenant accepts, `acs_url` first (SP metadata's index order).
    pub fn acs_urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.acs_url.as_str()).chain(self.other_acs_urls.iter().map(String::as_str))
    }
}

/// Where `subject.key` comes from (`subject_key_from`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SubjectKeySource {
    /// `"object_id"`: the `object_id` claim (Entra's objectidentifier: immutable, never
    /// reassigned, unlike the UPN or email Entra puts in the NameID by default).
    ObjectId,
    /// `"persistent_name_id"`: a NameID of the persistent format, with its qualifiers; any
    /// other format is refused, so a tenant relying on persistence never gets less.
    PersistentNameId,
    /// `"name_id"` (the default): the NameID whatever its format, with format and qualifiers.
    /// The only source every accepted login has, so adding `subject.key` refused no login that
    /// was accepted before; as stable as the IdP's NameID and no more.
    #[default]
    NameId,
    /// `"attribute:<name>"`: the one value of that attribute.
    Attribute(String),
}

impl SubjectKeySource {
    /// Parses the configuration's value; the error says what is accepted.
    pub fn parse(text: &str) -> Result<SubjectKeySource, String> {
        match text {
            "object_id" => Ok(SubjectKeySource::ObjectId),
            "persistent_name_id" => Ok(SubjectKeySource::PersistentNameId),
            "name_id" => Ok(SubjectKeySource::NameId),
            other => match other.strip_prefix("attribute:") {
                Some(name) if !name.trim().is_empty() && name.trim() == name => {
                    Ok(SubjectKeySource::Attribute(name.to_string()))
                }
                Some(_) => Err(format!("{other:?} names no attribute; write \"attribute:<attribute Name>\"")),
                None => Err(format!(
                    "{other:?} is not one of \"object_id\", \"persistent_name_id\", \"name_id\", \"attribute:<name>\""
                )),
            },
        }
    }

    /// The source's name in the configuration (and in the key's input).
    pub fn kind(&self) -> &'static str {
        match self {
            SubjectKeySource::ObjectId => "object_id",
            SubjectKeySource::PersistentNameId => "persistent_name_id",
            SubjectKeySource::NameId => "name_id",
            SubjectKeySource::Attribute(_) => "attribute",
        }
    }
}

impl fmt::Display for SubjectKeySource {
    /// As written in the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectKeySource::Attribute(name) => write!(f, "attribute:{name}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Attribute names that feed each normalized claim, tried in order; the first attribute present
/// wins for single-valued claims, all listed attributes are merged for multi-valued ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeMapping {
    pub email: Vec<String>,
    pub first_name: Vec<String>,
    pub last_name: Vec<String>,
    pub display_name: Vec<String>,
    pub username: Vec<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub object_id: Vec<String>,
    pub idp_tenant_id: Vec<String>,
    pub authn_methods: Vec<String>,
    /// Presence of any of these means the IdP left groups out (Entra's >150 groups overage).
    pub groups_overage: Vec<String>,
}

const MS: &str = "http://schemas.microsoft.com/";
const XMLSOAP: &str = "http://schemas.xmlsoap.org/";

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| name.replace("{ms}", MS).replace("{xs}", XMLSOAP)).collect()
}

impl Default for AttributeMapping {
    /// Entra ID / AD FS claim URIs, LDAP and eduPerson OIDs, and the short names Okta, Google,
    /// Keycloak, OneLogin and JumpCloud templates use.
    fn default() -> Self {
        AttributeMapping {
            email: names(&[
                "{xs}ws/2005/05/identity/claims/emailaddress",
                "{xs}claims/EmailAddress",
                "urn:oid:0.9.2342.19200300.100.1.3",
                "email",
                "mail",
                "Email",
                "emailAddress",
                "emailaddress",
                "User.email",
            ]),
            first_name: names(&[
                "{xs}ws/2005/05/identity/claims/givenname",
                "urn:oid:2.5.4.42",
                "givenName",
                "firstName",
                "first_name",
                "FirstName",
                "firstname",
                "given_name",
                "User.FirstName",
            ]),
            last_name: names(&[
                "{xs}ws/2005/05/identity/claims/surname",
                "urn:oid:2.5.4.4",
                "sn",
                "surname",
                "lastName",
                "last_name",
                "LastName",
                "lastname",
                "family_name",
                "User.LastName",
            ]),
            display_name: names(&[
                "{ms}identity/claims/displayname",
                "urn:oid:2.16.840.1.113730.3.1.241",
                "displayName",
                "displayname",
                "urn:oid:2.5.4.3",
                "cn",
                "name",
            ]),
            username: names(&[
                "{xs}ws/2005/05/identity/claims/name",
                "{xs}ws/2005/05/identity/claims/upn",
                "{ms}ws/2008/06/identity/claims/windowsaccountname",
                "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
                "urn:oid:0.9.2342.19200300.100.1.1",
                "eduPersonPrincipalName",
                "uid",
                "username",
                "userName",
                "preferred_username",
            ]),
            groups: names(&[
                "{ms}ws/2008/06/identity/claims/groups",
                "{xs}claims/Group",
                "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
                "groups",
                "Groups",
                "group",
                "memberOf",
                "isMemberOf",
            ]),
            roles: names(&[
                "{ms}ws/2008/06/identity/claims/role",
                "{xs}ws/2005/05/identity/claims/role",
                "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
                "eduPersonAffiliation",
                "Role",
                "role",
                "roles",
            ]),
            object_id: names(&["{ms}identity/claims/objectidentifier", "objectGUID", "oid"]),
            idp_tenant_id: names(&["{ms}identity/claims/tenantid"]),
            authn_methods: names(&["{ms}claims/authnmethodsreferences"]),
            groups_overage: names(&["{ms}claims/groups.link"]),
        }
    }
}

/// Bounds on what one document may cost. Exceeding any is a typed error, never a truncation.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest decoded document, in bytes.
    pub max_document_bytes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most nodes (elements, text, comments) in the document.
    pub max_nodes: usize,
    /// Most attributes on one element.
    pub max_attributes_per_element: usize,
    /// Most namespace declarations on one element, and in the whole document. Canonicalization
    /// cost grows with declarations in scope, so they are bounded like attributes.
    pub max_namespace_declarations_per_element: usize,
    pub max_namespace_declarations: usize,
    /// Most RSA private-key operations one document may cost: every EncryptedKey of every
    /// EncryptedAssertion, EncryptedID and EncryptedAttribute, times the tenant's decryption
    /// keys, counted before the first is tried. Each is about 0.25 ms of RSA-2048, and SAML
    /// core 6.2 lets any number of EncryptedKeys sit beside a KeyInfo-less EncryptedData.
    pub max_rsa_decryptions: usize,
    /// Oldest signed IssueInstant accepted, in seconds before now (plus the tenant's skew),
    /// whatever NotOnOrAfter says (`[replay] max_assertion_age_seconds`). IdPs issue assertions
    /// valid for hours, test suites for years; bounding the age bounds how long a replay record
    /// must live, and so what a store that lost its records could have covered.
    pub max_assertion_age_seconds: i64,
}

/// An hour and five minutes: Entra's assertions are valid for an hour (AD FS, Okta: minutes),
/// and a login presents its assertion within seconds.
pub const DEFAULT_MAX_ASSERTION_AGE_SECONDS: i64 = 3_900;

impl Default for Limits {
    fn default() -> Self {
        // An Entra response for a user in 150 groups is about 16 KB with ~500 nodes and depth 8.
        Limits {
            max_document_bytes: 256 * 1024,
            max_depth: 32,
            max_nodes: 20_000,
            max_attributes_per_element: 32,
            max_namespace_declarations_per_element: 16,
            max_namespace_declarations: 64,
            // IdPs wrap each content key once; a tenant in key rollover holds two SP keys:
            // an EncryptedAssertion, its EncryptedID and two EncryptedAttributes fit.
            max_rsa_decryptions: 8,
            max_assertion_age_seconds: DEFAULT_MAX_ASSERTION_AGE_SECONDS,
        }
    }
}
