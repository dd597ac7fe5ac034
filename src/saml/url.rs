//! The one rule for every URL and entity ID this service writes into a message or hands back to
//! a caller: configured (`acs_url`, `idp_sso_url`, `sp_entity_id`, `idp_entity_id`) or taken
//! from IdP metadata (SingleSignOnService Locations).
//!
//! Why it exists: a `Location` of `javascript:…` or `data:…` would come back as `redirect_url`
//! and as the POST form's `action`, and run script in the help desk's origin; a CR/LF in a URL
//! splits the `Location` header the caller builds from it; a tab or newline in an attribute
//! value is normalized to a space by every XML parser (XML 1.0 §3.3.3), so the IdP would read
//! back another URL than the one signed. None of these has a legitimate use in an anyURI that
//! SAML compares by string (SAML core 1.3.2, 8.3.6).

/// Why `url` cannot be an endpoint: it must be absolute `http://` or `https://`, name a host,
/// and carry no whitespace or control character anywhere.
pub fn endpoint_problem(url: &str) -> Option<String> {
    if let Some(problem) = identifier_problem(url) {
        return Some(problem);
    }
    let Some(rest) = strip_scheme(url) else {
        return Some(format!("{} must be an absolute http(s) URL", super::error::quote(url)));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_and_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_and_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Some(format!("{} names no host", super::error::quote(url)));
    }
    // A browser never sends the fragment, and a query appended to the URL (a Redirect-binding
    // message) would land inside it and be lost.
    if url.contains('#') {
        return Some(format!("{} carries a #fragment", super::error::quote(url)));
    }
    None
}

/// Why `value` cannot be an entity ID or URL: empty, or carrying whitespace or a control
/// character (including the Unicode line and paragraph separators).
pub fn identifier_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".to_string());
    }
    let bad = value.chars().find(|c| c.is_whitespace() || c.is_control())?;
    Some(format!(
        "{} contains {} (U+{:04X}); URLs and entity IDs may not contain whitespace or control characters",
        super::error::quote(value),
        if bad.is_whitespace() { "whitespace" } else { "a control character" },
        u32::from(bad)
    ))
}

/// The part after `http://` or `https://` (scheme compared case-insensitively, RFC 3986 3.1).
fn strip_scheme(url: &str) -> Option<&str> {
    ["https://", "http://"].iter().find_map(|scheme| {
        let head = url.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme).then(|| &url[scheme.len()..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_absolute_http_urls_with_a_host_and_no_whitespace_or_control_characters() {
        for good in [
            "https://login.microsoftonline.com/7d1d/saml2",
            "http://idp.example.org:8080/sso?x=1",
            "HTTPS://IDP.EXAMPLE.ORG/",
            "https://[::1]:8443/sso",
            "https://helpdesk.example.com/helpdesk/User/Login",
        ] {
            assert_eq!(endpoint_problem(good), None, "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//idp.example.org/sso",
            "/relative/sso",
            "https:///no-host",
            "https://:443/no-host",
            "https://idp.example.org/sso\r\nSet-Cookie: a=b",
            "https://idp.example.org/sso\nx",
            "https://idp.example.org/s so",
            "https://idp.example.org/sso\t",
            " https://idp.example.org/sso",
            "https://idp.example.org/\u{2028}",
            "https://idp.example.org/\u{85}",
            "https://idp.example.org/\u{7f}",
            "https://idp.example.org/sso#fragment",
            "",
        ] {
            assert!(endpoint_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn identifiers_may_be_urns_but_never_carry_whitespace_or_control_characters() {
        assert_eq!(identifier_problem("urn:example:sp"), None);
        assert_eq!(identifier_problem("https://www.jitbit.com/web-helpdesk/"), None);
        assert!(identifier_problem("urn:example:sp\u{1}").is_some());
        assert!(identifier_problem("urn:example: sp").is_some());
        assert!(identifier_problem("").is_some());
    }
}
