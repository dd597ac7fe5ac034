//! Stable error codes. Each code names exactly one failed check; callers, dashboards and alerts
//! are built against these strings, so a code is never renamed or reused for another meaning.
//! `crate::transport::wire` maps every code to its HTTP status, gRPC code and metric label in one table.

use std::fmt;

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, )*) => {
        /// Why a request or a SAML response was refused.
        #[non_exhaustive]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order (documentation and tests enumerate this).
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable snake_case wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }
        }
    };
}

codes! {
    // ---- request level (not a verdict about the SAML response) ----
    /// The request body is not the expected JSON / protobuf shape.
    MalformedRequest = "malformed_request",
    /// The request body or the SAMLResponse exceeds a configured size limit.
    PayloadTooLarge = "payload_too_large",
    /// No tenant with this id is configured.
    UnknownTenant = "unknown_tenant",
    /// Too many validations in flight; retry later.
    Overloaded = "overloaded",
    /// Caller authentication is on and the request carries no valid bearer token.
    Unauthenticated = "unauthenticated",
    /// The authenticated caller may not use this tenant.
    Forbidden = "forbidden",
    /// A fault inside the service (never caused by the input alone).
    Internal = "internal_error",
    /// An AuthnRequest's relay_state exceeds the 80 bytes SAML bindings 3.4.3 allow.
    RelayStateTooLong = "relay_state_too_long",
    /// An AuthnRequest was asked for a tenant with neither `idp_sso_url` nor a metadata
    /// SingleSignOnService for the binding.
    IdpSsoUrlUnknown = "idp_sso_url_unknown",
    /// The shared replay store (`[replay] store = "redis"`) could not record the assertion
    /// (unreachable, slower than `timeout_ms`, or an error): the login is refused, never
    /// accepted unrecorded. Retry later.
    ReplayStoreUnavailable = "replay_store_unavailable",
    /// The tenant cannot judge logins now: its `metadata_url` has never loaded (not yet tried,
    /// or failing: retried with backoff), or its `tenants_dir` file was refused and no good
    /// version was ever loaded. Other tenants are unaffected. Retry later.
    TenantUnavailable = "tenant_unavailable",
    /// The caller's `expected_acs_url` (validation) or `acs_url` (AuthnRequest) is not one of
    /// the tenant's `acs_url` / `acs_urls`: the caller and the tenant's configuration disagree
    /// on where logins arrive.
    AcsUrlUnknown = "acs_url_unknown",
    /// A LogoutRequest or LogoutResponse was asked for a tenant with neither `idp_slo_url` nor
    /// a metadata SingleLogoutService for the binding.
    IdpSloUrlUnknown = "idp_slo_url_unknown",
    /// A logout message was given to validate for a tenant without `slo_url`: its Destination
    /// cannot be checked, so nothing is judged.
    SloUrlUnknown = "slo_url_unknown",

    // ---- encoding and XML ----
    /// SAMLResponse is neither base64 nor an XML document.
    Base64Invalid = "base64_invalid",
    /// The document is not UTF-8 (or declares another encoding).
    EncodingUnsupported = "encoding_unsupported",
    /// The document has a DOCTYPE (entity expansion and XXE are refused before parsing).
    DoctypeForbidden = "doctype_forbidden",
    /// Not well-formed XML.
    XmlMalformed = "xml_malformed",
    /// Depth, node count or attribute count above the configured limits, or more RSA
    /// operations for the document's encrypted elements than `max_rsa_decryptions`.
    XmlTooComplex = "xml_too_complex",
    /// A processing instruction inside the document element.
    ProcessingInstructionForbidden = "processing_instruction_forbidden",

    // ---- document structure ----
    /// The document element is neither samlp:Response nor (where allowed) saml:Assertion.
    RootElementInvalid = "root_element_invalid",
    /// A bare Assertion was posted but the tenant does not set `allow_bare_assertion`.
    BareAssertionNotAllowed = "bare_assertion_not_allowed",
    /// Two elements carry the same ID.
    DuplicateId = "duplicate_id",
    /// An ID attribute is empty or not an NCName (e.g. padded with whitespace).
    IdInvalid = "id_invalid",
    /// The Response carries no Assertion.
    AssertionMissing = "assertion_missing",
    /// More than one Assertion anywhere in the document (including Advice, Extensions, Object).
    MultipleAssertions = "multiple_assertions",
    /// An encrypted element this service does not decrypt: the tenant has no decryption key, or
    /// the element uses an unsupported shape (CipherReference, external RetrievalMethod, ...).
    EncryptedAssertionUnsupported = "encrypted_assertion_unsupported",
    /// A key transport or content encryption algorithm outside the allow-list (RSA PKCS#1 v1.5
    /// without `allow_rsa_pkcs1_key_transport`, anything but RSA-OAEP and AES-CBC/GCM).
    DecryptionAlgorithmUnsupported = "decryption_algorithm_unsupported",
    /// Decryption, or verification of what it produced, failed; one fixed message for every
    /// cause, so that the answer is no padding oracle.
    DecryptionFailed = "decryption_failed",
    /// A plain Assertion and the tenant sets `require_encrypted_assertions`.
    AssertionNotEncrypted = "assertion_not_encrypted",
    /// A required SAML element or attribute is missing or unparsable.
    SamlMalformed = "saml_malformed",

    // ---- XML signature ----
    /// Neither the Response nor the Assertion is signed.
    SignatureMissing = "signature_missing",
    /// A ds:Signature somewhere other than directly inside the Response or the Assertion.
    SignaturePlacementInvalid = "signature_placement_invalid",
    /// A ds:Signature that does not follow the strict profile (children, counts, Object, ...).
    SignatureMalformed = "signature_malformed",
    /// Reference URI is not `#` + the ID of the element carrying the Signature.
    ReferenceUriInvalid = "reference_uri_invalid",
    /// A transform other than enveloped-signature and (exclusive) C14N, e.g. XSLT or XPath.
    TransformUnsupported = "transform_unsupported",
    /// A canonicalization method other than exclusive or inclusive C14N 1.0 without comments.
    CanonicalizationUnsupported = "canonicalization_unsupported",
    /// A signature algorithm outside the allow-list (HMAC, DSA, unknown).
    SignatureAlgorithmUnsupported = "signature_algorithm_unsupported",
    /// A digest algorithm outside the allow-list.
    DigestAlgorithmUnsupported = "digest_algorithm_unsupported",
    /// SHA-1 in the signature or digest and the tenant does not set `allow_sha1`.
    Sha1NotAllowed = "sha1_not_allowed",
    /// The referenced element's digest differs from DigestValue (content changed after signing).
    DigestMismatch = "digest_mismatch",
    /// SignatureValue does not verify with any configured tenant key.
    SignatureInvalid = "signature_invalid",

    // ---- SAML protocol and assertion checks ----
    /// Version is not 2.0.
    VersionUnsupported = "version_unsupported",
    /// The IdP answered with a non-Success status.
    StatusNotSuccess = "status_not_success",
    /// Response Destination differs from the tenant's acs_url.
    DestinationMismatch = "destination_mismatch",
    /// Issuer differs from the tenant's idp_entity_id.
    IssuerMismatch = "issuer_mismatch",
    /// An IssueInstant lies in the future beyond the allowed clock skew.
    IssuedInFuture = "issued_in_future",
    /// The assertion's signed IssueInstant is older than `[replay] max_assertion_age_seconds`
    /// (plus the tenant's skew), whatever its NotOnOrAfter says: a login presents its assertion
    /// within seconds, and the replay record need not outlive that age.
    AssertionTooOld = "assertion_too_old",
    /// The Assertion has no Subject/NameID.
    SubjectMissing = "subject_missing",
    /// No bearer SubjectConfirmation.
    BearerConfirmationMissing = "bearer_confirmation_missing",
    /// SubjectConfirmationData Recipient differs from the tenant's acs_url.
    RecipientMismatch = "recipient_mismatch",
    /// SubjectConfirmationData NotOnOrAfter has passed.
    SubjectConfirmationExpired = "subject_confirmation_expired",
    /// Conditions NotBefore (or SubjectConfirmationData NotBefore) is still in the future.
    NotYetValid = "not_yet_valid",
    /// Conditions NotOnOrAfter has passed.
    AssertionExpired = "assertion_expired",
    /// AudienceRestriction missing or not naming the tenant's sp_entity_id.
    AudienceMismatch = "audience_mismatch",
    /// A Condition this service does not understand (SAML core 2.5.1: the assertion is invalid).
    ConditionUnsupported = "condition_unsupported",
    /// InResponseTo differs from the expected AuthnRequest ID.
    InResponseToMismatch = "in_response_to_mismatch",
    /// No expected_request_id was given and the tenant does not set `allow_idp_initiated`.
    UnsolicitedResponse = "unsolicited_response",
    /// The Assertion has no AuthnStatement.
    AuthnStatementMissing = "authn_statement_missing",
    /// AuthnStatement SessionNotOnOrAfter has passed.
    SessionExpired = "session_expired",
    /// AuthnInstant is older than the tenant's `max_authn_age_seconds` (plus clock skew), or
    /// there is no AuthnInstant to judge.
    AuthnTooOld = "authn_too_old",
    /// The sign-in used no method of the tenant's `require_authn_methods` (the `authn_methods`
    /// claim, Entra's authnmethodsreferences) or no class of its `require_authn_context`
    /// (AuthnContextClassRef).
    AuthnMethodNotAllowed = "authn_method_not_allowed",
    /// The source the tenant's `subject_key_from` names (object id, persistent NameID,
    /// attribute) is missing or ambiguous in the assertion.
    SubjectKeyMissing = "subject_key_missing",
    /// This assertion (issuer + ID) was already accepted, for this tenant or any other.
    Replayed = "replayed",
    /// The shared replay store lost records (a restart without them, a flush, a failover to a
    /// replica that missed writes, an eviction) and this assertion was issued before the loss
    /// was detected, so whether it was already used cannot be known: the user signs in again.
    /// Assertions issued after the loss are unaffected.
    ReplayStateLost = "replay_state_lost",

    // ---- Single Logout (POST /v1/logout/validate); XML and signature codes as above ----
    /// The Redirect-binding query is unusable: no or both of SAMLRequest and SAMLResponse, a
    /// SAML parameter twice or out of the signed order, SigAlg without Signature (or the
    /// reverse), a broken %-escape; or a POST message in the wrong form field.
    LogoutQueryInvalid = "logout_query_invalid",
    /// The Redirect-binding message is not raw DEFLATE data.
    LogoutDeflateInvalid = "logout_deflate_invalid",
    /// The Redirect-binding message inflates past `max_document_bytes` (a DEFLATE bomb);
    /// inflation stops at the limit.
    LogoutInflatedTooLarge = "logout_inflated_too_large",
    /// The message is unsigned (no query signature, no XML signature on the root) and the
    /// tenant does not relax `require_signed_logout_messages`.
    LogoutSignatureMissing = "logout_signature_missing",
    /// Destination is missing or differs from the tenant's `slo_url`.
    LogoutDestinationMismatch = "logout_destination_mismatch",
    /// Issuer is missing or differs from the tenant's IdP entity ID.
    LogoutIssuerMismatch = "logout_issuer_mismatch",
    /// The LogoutRequest's NotOnOrAfter has passed (plus the tenant's skew).
    LogoutExpired = "logout_expired",
    /// The message's IssueInstant is older than `[replay] max_assertion_age_seconds` (plus the
    /// skew): its ID could no longer be known to the replay record.
    LogoutTooOld = "logout_too_old",
    /// The LogoutResponse's InResponseTo is missing or differs from `expected_request_id`, or
    /// no `expected_request_id` was given.
    LogoutInResponseToMismatch = "logout_in_response_to_mismatch",
    /// This logout message (issuer + ID) was already accepted.
    LogoutReplayed = "logout_replayed",
    /// The delivered RelayState exceeds the 80 bytes SAML bindings 3.4.3 / 3.5.3 allow.
    LogoutRelayStateTooLong = "logout_relay_state_too_long",

    // ---- IdP metadata (configuration and refresh; never a verdict on a login) ----
    /// The metadata document is not usable IdP metadata (no entityID, no signing key, ...).
    MetadataInvalid = "metadata_invalid",
    /// The metadata's validUntil has passed.
    MetadataExpired = "metadata_expired",
    /// A metadata signing certificate is configured but the document is unsigned.
    MetadataSignatureMissing = "metadata_signature_missing",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: a stable code plus a message saying what was expected and what was found.
/// Messages never contain key material or whole documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// What the refused document said about itself, for the operator's recent-failures list
    /// (`crate::saml::facts`); `None` for request-level refusals and documents that never
    /// parsed. Boxed: errors travel by value on every path and are rarely annotated.
    pub facts: Option<Box<FailureFacts>>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), facts: None }
    }
}

/// Facts about a refused document, each absent when the document does not carry it (read by
/// `crate::saml::facts`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureFacts {
    /// Lowercase hex SHA-256 of the first `ds:X509Certificate` in a signature's `KeyInfo` (the
    /// assertion's signature first, then the Response's): the form of the configured
    /// certificates' `sha256_fingerprint`, so "the IdP signs with X, you pinned Y" is one glance.
    pub keyinfo_sha256: Option<String>,
    /// The document's IssueInstant minus now, in whole seconds: positive when the IdP's clock
    /// is ahead of ours, large and negative for an old response presented late.
    pub clock_difference_seconds: Option<i64>,
    /// The top-level StatusCode, and the second-level one after ", ", when not Success.
    pub idp_status: Option<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Shortens a value taken from the document before it goes into a message, so that a hostile
/// document cannot make error messages (and logs built from them) arbitrarily large.
pub fn quote(value: &str) -> String {
    const MAX: usize = 120;
    let mut out = String::with_capacity(value.len().min(MAX) + 8);
    out.push('"');
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}
