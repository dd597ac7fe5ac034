//! What a tenant may demand of a login beyond the Web SSO profile: where it arrives (one of
//! several ACS URLs), how the user signed in (`require_authn_methods`, `require_authn_context`)
//! and how recently (`max_authn_age_seconds`). Every value judged here comes from the signed
//! assertion; each refusal names what was required and what was found.

use chrono::{DateTime, Duration, Utc};

use super::error::{quote, Code, Error};
use super::policy::TenantPolicy;
use super::time;

/// The most document values a message lists (an IdP may send dozens of methods).
const LISTED: usize = 8;

fn listed<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut more = 0;
    for value in values {
        if out.len() < LISTED {
            out.push(quote(value));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push(format!("and {more} more"));
    }
    format!("[{}]", out.join(", "))
}

/// The caller's `expected_acs_url` must be one of the tenant's: a caller whose own
/// configuration names another URL would otherwise have every login refused as a Destination
/// mismatch, with the real cause hidden.
pub fn expected_acs(policy: &TenantPolicy, expected: Option<&str>) -> Result<(), Error> {
    match expected {
        Some(url) if !policy.acs_urls().any(|acs| acs == url) => Err(Error::new(
            Code::AcsUrlUnknown,
            format!("ACS URL {} is not one of the tenant's ACS URLs {}", quote(url), listed(policy.acs_urls())),
        )),
        _ => Ok(()),
    }
}

/// Whether `found` (Destination or Recipient, whitespace already collapsed) is where this
/// login may arrive: exactly the caller's `expected_acs_url` when given (a response the IdP
/// addressed to the customer's domain is not accepted on the help desk's own), else any of the
/// tenant's ACS URLs.
pub fn acs_matches(policy: &TenantPolicy, expected: Option<&str>, found: &str) -> bool {
    match expected {
        Some(url) => found == url,
        None => policy.acs_urls().any(|acs| acs == found),
    }
}

/// What [`acs_matches`] wanted, for messages.
pub fn acs_wanted(policy: &TenantPolicy, expected: Option<&str>) -> String {
    match (expected, policy.other_acs_urls.is_empty()) {
        (Some(url), _) => format!("{} (expected_acs_url)", quote(url)),
        (None, true) => quote(&policy.acs_url),
        (None, false) => format!("one of {}", listed(policy.acs_urls())),
    }
}

/// `max_authn_age_seconds`: an old sign-in (a session the IdP kept alive for hours) is not
/// what a tenant asking for a recent one wants, e.g. for an admin console. `None` is an
/// assertion without AuthnStatement (`allow_missing_authn_statement`): nothing says when the
/// user signed in, so it is refused too.
pub fn authn_age(policy: &TenantPolicy, authn_instant: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), Error> {
    let Some(max) = policy.max_authn_age_seconds else { return Ok(()) };
    let Some(instant) = authn_instant else {
        return Err(Error::new(
            Code::AuthnTooOld,
            format!("no AuthnStatement, so no AuthnInstant; the tenant requires a sign-in at most {max} s old (max_authn_age_seconds)"),
        ));
    };
    let oldest = now - Duration::seconds(max) - Duration::seconds(policy.clock_skew_seconds);
    if instant < oldest {
        return Err(Error::new(
            Code::AuthnTooOld,
            format!(
                "AuthnInstant {} is {} s before now {}; the tenant requires at most {max} s (max_authn_age_seconds, plus {} s skew)",
                time::format(instant),
                (now - instant).num_seconds(),
                time::format(now),
                policy.clock_skew_seconds
            ),
        ));
    }
    Ok(())
}

/// `require_authn_context`: the AuthnContextClassRef of one AuthnStatement (`None`: it has
/// none, or there is no AuthnStatement at all).
pub fn authn_context(policy: &TenantPolicy, found: Option<&str>) -> Result<(), Error> {
    let required = &policy.require_authn_context;
    if required.is_empty() || found.is_some_and(|class| required.iter().any(|r| r == class)) {
        return Ok(());
    }
    Err(Error::new(
        Code::AuthnMethodNotAllowed,
        format!(
            "AuthnContextClassRef is {}, expected one of {} (require_authn_context)",
            found.map_or("absent".into(), quote),
            listed(required.iter().map(String::as_str))
        ),
    ))
}

/// `require_authn_methods`: any one of them among the `authn_methods` claim, read from the
/// signed assertion's attributes through the tenant's mapping.
pub fn authn_methods(policy: &TenantPolicy, found: &[String]) -> Result<(), Error> {
    let required = &policy.require_authn_methods;
    if required.is_empty() || found.iter().any(|method| required.contains(method)) {
        return Ok(());
    }
    Err(Error::new(
        Code::AuthnMethodNotAllowed,
        format!(
            "authentication methods are {}, expected one of {} (require_authn_methods)",
            if found.is_empty() { "absent".to_string() } else { listed(found.iter().map(String::as_str)) },
            listed(required.iter().map(String::as_str))
        ),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MFA: &str = "http://schemas.microsoft.com/claims/multipleauthn";
    const PASSWORD: &str = "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password";

    fn policy() -> TenantPolicy {
        let mut policy = TenantPolicy::new("https://idp/", "https://sp/", "https://a.example/acs", Vec::new());
        policy.other_acs_urls = vec!["https://b.example/acs".into()];
        policy
    }

    #[test]
    fn expected_acs_must_be_the_tenants_and_then_is_the_only_match() {
        let p = policy();
        assert!(expected_acs(&p, Some("https://b.example/acs")).is_ok());
        assert!(expected_acs(&p, None).is_ok());
        let error = expected_acs(&p, Some("https://evil.example/acs")).unwrap_err();
        assert_eq!(error.code, Code::AcsUrlUnknown);
        assert!(error.message.contains("https://evil.example/acs") && error.message.contains("https://b.example/acs"));
        assert!(acs_matches(&p, None, "https://a.example/acs"));
        assert!(acs_matches(&p, None, "https://b.example/acs"));
        assert!(!acs_matches(&p, Some("https://b.example/acs"), "https://a.example/acs"));
        assert!(!acs_matches(&p, None, "https://c.example/acs"));
    }

    #[test]
    fn authn_age_allows_the_skew_and_no_more() {
        let mut p = policy();
        p.clock_skew_seconds = 60;
        p.max_authn_age_seconds = Some(300);
        let now = time::parse("2026-11-29T10:00:00Z").unwrap();
        assert!(authn_age(&p, Some(now - Duration::seconds(360)), now).is_ok());
        let error = authn_age(&p, Some(now - Duration::seconds(361)), now).unwrap_err();
        assert_eq!(error.code, Code::AuthnTooOld);
        assert!(error.message.contains("361 s") && error.message.contains("at most 300 s"), "{}", error.message);
        assert_eq!(authn_age(&p, None, now).unwrap_err().code, Code::AuthnTooOld);
        p.max_authn_age_seconds = None;
        assert!(authn_age(&p, None, now).is_ok());
    }

    #[test]
    fn methods_are_any_of_and_contexts_must_match() {
        let mut p = policy();
        assert!(authn_methods(&p, &[]).is_ok());
        p.require_authn_methods = vec![MFA.into()];
        assert!(authn_methods(&p, &[PASSWORD.into(), MFA.into()]).is_ok());
        let error = authn_methods(&p, &[PASSWORD.into()]).unwrap_err();
        assert_eq!(error.code, Code::AuthnMethodNotAllowed);
        assert!(error.message.contains(PASSWORD) && error.message.contains(MFA), "{}", error.message);
        assert!(authn_methods(&p, &[]).unwrap_err().message.contains("absent"));
        p.require_authn_context = vec!["urn:x:mfa".into()];
        assert!(authn_context(&p, Some("urn:x:mfa")).is_ok());
        assert_eq!(authn_context(&p, Some("urn:x:password")).unwrap_err().code, Code::AuthnMethodNotAllowed);
        assert!(authn_context(&p, None).unwrap_err().message.contains("absent"));
    }

    #[test]
    fn long_lists_are_cut_in_messages() {
        let values: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        let text = listed(values.iter().map(String::as_str));
        assert!(text.contains("\"m7\"") && !text.contains("\"m8\"") && text.contains("and 12 more"), "{text}");
    }
}
