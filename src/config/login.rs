//! A tenant's login policies: several ACS URLs (`acs_urls`), how the user must have signed in
//! (`require_authn_methods`, `require_authn_context`), how recently (`max_authn_age_seconds`)
//! and what `subject.key` is derived from (`subject_key_from`). Plain data for the core's
//! `TenantPolicy`; the checks themselves are `saml::requirements` and `saml::subject_key`.

use super::reader::Reader;
use crate::saml::SubjectKeySource;

/// Longest `max_authn_age_seconds`: a day. Beyond that the IdP's own session lifetime decides,
/// and a typo in seconds (an extra digit) should not silently mean "any sign-in".
pub(super) const MAX_AUTHN_AGE_SECONDS: i64 = 86_400;

pub(super) struct LoginSettings {
    /// `acs_urls` without `acs_url` itself.
    pub other_acs_urls: Vec<String>,
    pub require_authn_methods: Vec<String>,
    pub require_authn_context: Vec<String>,
    pub max_authn_age_seconds: Option<i64>,
    pub subject_key_from: SubjectKeySource,
}

/// Reads the login policies of one tenant table; `acs_url` is the tenant's (already read).
pub(super) fn read(r: &mut Reader<'_>, acs_url: Option<&str>) -> LoginSettings {
    let listed = r.strings("acs_urls");
    let mut other_acs_urls: Vec<String> = Vec::new();
    for (i, url) in listed.iter().enumerate() {
        let at = format!("acs_urls[{i}]");
        r.check_endpoint(&at, Some(url));
        if other_acs_urls.contains(url) {
            r.problem(&at, format!("{url:?} is listed twice"));
        } else if Some(url.as_str()) != acs_url {
            // acs_url may be repeated here (it is accepted either way); it stays first.
            other_acs_urls.push(url.clone());
        }
    }
    let require_authn_methods = uris(r, "require_authn_methods");
    let require_authn_context = uris(r, "require_authn_context");
    let max_authn_age_seconds = r
        .table
        .contains_key("max_authn_age_seconds")
        .then(|| r.integer("max_authn_age_seconds", MAX_AUTHN_AGE_SECONDS, 1..=MAX_AUTHN_AGE_SECONDS));
    if max_authn_age_seconds.is_none() {
        r.known.insert("max_authn_age_seconds");
    }
    let subject_key_from = match r.string("subject_key_from") {
        None => SubjectKeySource::default(),
        Some(text) => SubjectKeySource::parse(&text).unwrap_or_else(|problem| {
            r.problem("subject_key_from", problem);
            SubjectKeySource::default()
        }),
    };
    LoginSettings {
        other_acs_urls,
        require_authn_methods,
        require_authn_context,
        max_authn_age_seconds,
        subject_key_from,
    }
}

/// A list of URIs compared exactly with what the IdP signs: whitespace inside one is a typo
/// that would make the requirement impossible to meet (every login refused).
fn uris(r: &mut Reader<'_>, key: &'static str) -> Vec<String> {
    let values = r.strings(key);
    for (i, value) in values.iter().enumerate() {
        if value.is_empty() || value.chars().any(char::is_whitespace) {
            r.problem(&format!("{key}[{i}]"), format!("{value:?} is not a URI (empty, or with whitespace)"));
        }
    }
    values
}
