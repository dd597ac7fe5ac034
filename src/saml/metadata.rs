//! SAML 2.0 IdP metadata (saml-metadata-2.0-os): the entityID, the signing certificates of the
//! IDPSSODescriptor, its SingleSignOnService endpoints, and validity. Pure: bytes and an
//! instant in, typed result out. Fetching, caching and refreshing live in the adapters.
//!
//! When the operator configures a metadata signing certificate, the document's enveloped
//! signature is verified with the same strict XML-DSig profile as responses, and keys are only
//! read from inside the verified element.

use chrono::{DateTime, Utc};

use super::dsig;
use super::error::{quote, Code, Error};
use super::keys::TrustedKey;
use super::ns;
use super::policy::Limits;
use super::structure;
use super::time;
use super::xml::{self, Node};

pub const METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";

/// What an IdP publishes about itself.
#[derive(Clone, Debug)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Certificates of KeyDescriptors with `use="signing"` or no `use`, in document order.
    pub signing_keys: Vec<TrustedKey>,
    /// (Binding, Location) of each SingleSignOnService whose Location is a safe endpoint.
    pub single_sign_on: Vec<(String, String)>,
    /// Each SingleLogoutService whose Location (and ResponseLocation) is a safe endpoint.
    pub single_logout: Vec<SloEndpoint>,
    /// Why each other SingleSignOnService was left out (`saml::url`): the endpoint is refused,
    /// the rest of the metadata (keys, issuer) stays usable.
    pub refused_endpoints: Vec<String>,
    pub valid_until: Option<DateTime<Utc>>,
    /// `cacheDuration` in seconds, when present.
    pub cache_duration_seconds: Option<u64>,
    /// Whether the document's signature was verified.
    pub signature_verified: bool,
}

/// How to judge a metadata document.
pub struct MetadataPolicy<'a> {
    /// When non-empty, the document must carry a signature verifying with one of these.
    pub signing_keys: &'a [TrustedKey],
    pub allow_sha1: bool,
    pub now: DateTime<Utc>,
}

/// Limits for metadata: larger documents and more namespace declarations than responses
/// (AD FS metadata declares ~220 namespaces, Entra's is ~60 KB with its WS-Fed roles).
pub fn limits() -> Limits {
    Limits {
        max_document_bytes: 2 * 1024 * 1024,
        max_depth: 64,
        max_nodes: 200_000,
        max_attributes_per_element: 64,
        max_namespace_declarations_per_element: 32,
        max_namespace_declarations: 4096,
        // Metadata is never decrypted.
        max_rsa_decryptions: 0,
        max_assertion_age_seconds: super::policy::DEFAULT_MAX_ASSERTION_AGE_SECONDS,
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(Code::MetadataInvalid, message)
}

pub fn parse(bytes: &[u8], policy: &MetadataPolicy<'_>) -> Result<IdpMetadata, Error> {
    let limits = limits();
    if bytes.len() > limits.max_document_bytes {
        return Err(Error::new(Code::PayloadTooLarge, format!("metadata exceeds {} bytes", limits.max_document_bytes)));
    }
    let doc = xml::parse_within(bytes, limits.max_nodes)?;
    let inventory = structure::scan(&doc, &limits)?;
    let root = inventory.root;
    if !root.is(METADATA, "EntityDescriptor") {
        return Err(invalid(format!(
            "root element is <{}>; expected md:EntityDescriptor (one IdP per metadata document)",
            root.local_name()
        )));
    }
    let root_signature = root.elements().find(|n| n.is(ns::DSIG, "Signature"));
    let signature_verified = if policy.signing_keys.is_empty() {
        false
    } else {
        let Some(signature) = root_signature else {
            return Err(Error::new(
                Code::MetadataSignatureMissing,
                "metadata is unsigned but the tenant configures metadata_signing_certificate",
            ));
        };
        // Only the root's own signature counts; keys are read from inside the verified root.
        if inventory.signatures.iter().any(|s| *s != signature) {
            return Err(Error::new(Code::SignaturePlacementInvalid, "metadata carries more than one Signature"));
        }
        dsig::verify(&doc, root, signature, policy.signing_keys, policy.allow_sha1)?;
        true
    };

    let entity_id = root
        .attribute("entityID")
        .map(|v| v.get().into_owned())
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| invalid("EntityDescriptor has no entityID"))?;
    let valid_until = instant(root, "validUntil")?;
    if let Some(until) = valid_until {
        if until <= policy.now {
            return Err(Error::new(
                Code::MetadataExpired,
                format!("metadata validUntil {} has passed", time::format(until)),
            ));
        }
    }
    let cache_duration_seconds = match root.attribute("cacheDuration") {
        None => None,
        Some(v) => Some(
            duration_seconds(&v.get())
                .ok_or_else(|| invalid(format!("cacheDuration {} is not an xs:duration", quote(&v.get()))))?,
        ),
    };

    let mut signing_keys = Vec::new();
    let mut single_sign_on = Vec::new();
    let mut single_logout = Vec::new();
    let mut refused_endpoints = Vec::new();
    let mut idp_roles = 0;
    for role in root.elements().filter(|n| n.is(METADATA, "IDPSSODescriptor")) {
        let protocols = role.attribute("protocolSupportEnumeration").map(|v| v.get().into_owned()).unwrap_or_default();
        if !protocols.split_ascii_whitespace().any(|p| p == ns::PROTOCOL) {
            continue;
        }
        idp_roles += 1;
        for descriptor in role.elements().filter(|n| n.is(METADATA, "KeyDescriptor")) {
            let usage = descriptor.attribute("use").map(|v| v.get().into_owned());
            if !matches!(usage.as_deref(), None | Some("signing")) {
                continue;
            }
            for certificate in certificates(descriptor) {
                let text = xml::text_value(certificate).ok_or_else(|| invalid("X509Certificate must be text"))?;
                let key = TrustedKey::from_certificate_text(&text)
                    .map_err(|e| invalid(format!("signing certificate: {e}")))?;
                if !signing_keys.iter().any(|k: &TrustedKey| k.info.sha256_fingerprint == key.info.sha256_fingerprint) {
                    signing_keys.push(key);
                }
            }
        }
        for service in role.elements().filter(|n| n.is(METADATA, "SingleSignOnService")) {
            let binding = service.attribute("Binding").map(|v| v.get().into_owned()).unwrap_or_default();
            let location = service.attribute("Location").map(|v| v.get().into_owned()).unwrap_or_default();
            // The Location comes back to the caller as `redirect_url` or a form's `action`: a
            // `javascript:` URL or a CR/LF there is script or a header of the IdP's choosing.
            match super::url::endpoint_problem(&location) {
                None => single_sign_on.push((binding, location)),
                Some(problem) => refused_endpoints.push(format!("SingleSignOnService Location {problem}")),
            }
        }
        for service in role.elements().filter(|n| n.is(METADATA, "SingleLogoutService")) {
            let value = |name: &str| service.attribute(name).map(|v| v.get().into_owned());
            let (location, response_location) = (value("Location").unwrap_or_default(), value("ResponseLocation"));
            // Same rule as SingleSignOnService: these come back as `redirect_url` or `action`.
            let problem = super::url::endpoint_problem(&location)
                .or_else(|| response_location.as_deref().and_then(super::url::endpoint_problem));
            match problem {
                None => single_logout.push(SloEndpoint {
                    binding: value("Binding").unwrap_or_default(),
                    location,
                    response_location,
                }),
                Some(problem) => refused_endpoints.push(format!("SingleLogoutService {problem}")),
            }
        }
    }
    if idp_roles == 0 {
        return Err(invalid("no IDPSSODescriptor supporting SAML 2.0"));
    }
    if signing_keys.is_empty() {
        // Never fall back to "no keys": an IdP without signing keys cannot be trusted at all.
        return Err(invalid("the IDPSSODescriptor publishes no signing certificate"));
    }
    Ok(IdpMetadata {
        entity_id,
        signing_keys,
        single_sign_on,
        single_logout,
        refused_endpoints,
        valid_until,
        cache_duration_seconds,
        signature_verified,
    })
}

/// One SingleLogoutService of IdP metadata (metadata 2.2.2): where LogoutRequests go, and
/// LogoutResponses when ResponseLocation is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SloEndpoint {
    pub binding: String,
    pub location: String,
    pub response_location: Option<String>,
}

fn certificates<'a>(descriptor: Node<'a>) -> Vec<Node<'a>> {
    descriptor
        .elements()
        .filter(|n| n.is(ns::DSIG, "KeyInfo"))
        .flat_map(|info| info.elements().filter(|n| n.is(ns::DSIG, "X509Data")).collect::<Vec<_>>())
        .flat_map(|data| data.elements().filter(|n| n.is(ns::DSIG, "X509Certificate")).collect::<Vec<_>>())
        .collect()
}

fn instant(node: Node<'_>, name: &str) -> Result<Option<DateTime<Utc>>, Error> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => time::parse(&v.get())
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} {} is not an xs:dateTime", quote(&v.get())))),
    }
}

/// xs:duration as SAML metadata uses it (`PT6H`, `P1D`, `P0Y0M7DT0H0M0S`); years and months
/// count as 365 and 30 days. Negative or fractional-day forms are refused.
pub fn duration_seconds(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (date, clock) = match rest.split_once('T') {
        Some((date, clock)) => (date, Some(clock)),
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        let mut unit_index = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || (c == '.' && units.last().map(|u| u.0) == Some('S')) {
                number.push(c);
                continue;
            }
            let position = units[unit_index..].iter().position(|(u, _)| *u == c)? + unit_index;
            let value: f64 = number.parse().ok()?;
            total = total.checked_add((value * units[position].1 as f64) as u64)?;
            number.clear();
            unit_index = position + 1;
            any = true;
        }
        number.is_empty().then_some(())
    };
    take(date, &[('Y', 365 * 86_400), ('M', 30 * 86_400), ('D', 86_400)])?;
    if let Some(clock) = clock {
        if clock.is_empty() {
            return None;
        }
        take(clock, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::duration_seconds;

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("PT6H"), Some(21_600));
        assert_eq!(duration_seconds("P1D"), Some(86_400));
        assert_eq!(duration_seconds("P0Y0M7DT0H0M0S"), Some(7 * 86_400));
        assert_eq!(duration_seconds("PT1H30M10.5S"), Some(5_410));
        for bad in ["", "P", "PT", "6H", "-PT1H", "PT1X", "P1H", "PT1D"] {
            assert_eq!(duration_seconds(bad), None, "{bad}");
        }
    }
}
