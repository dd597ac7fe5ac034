//! The admin pages, from the same views the JSON API serves (tenant view, fleet list, recent
//! failures, diagnosis): one source of truth, rendered through [`Html`] only.

use chrono::{DateTime, Utc};

use super::html::Html;
use crate::saml::diagnose::{hint_for_code, Check, Diagnosis, Outcome, SignatureReport};
use crate::saml::{Code, Error};
use crate::service::activity::Failure;
use crate::service::lifecycle::TenantPage;
use crate::tenants::{FileProblem, TenantConfig};
use crate::transport::json::TenantView;

/// What the paste box held, written back into it with the answer.
#[derive(Default)]
pub(super) struct Pasted {
    pub(super) saml_response: String,
    pub(super) expected_request_id: String,
    pub(super) expected_acs_url: String,
}

pub(super) fn login(problem: Option<&str>) -> Html {
    let mut html = Html::new();
    html.raw("<h1>Sign in</h1>");
    if let Some(problem) = problem {
        html.element("<p class=\"bad\">", problem, "</p>");
    }
    html.raw(
        "<form method=\"post\" action=\"/admin/login\"><p><label>Admin token (the contents of <code>[admin] token_file</code>)<br>\
         <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" autofocus></label></p>\
         <p><button type=\"submit\" id=\"sign-in\">Sign in</button></p></form>",
    );
    html
}

/// `/admin`: every tenant, a page at a time, with the filters of `GET /v1/tenants`.
pub(super) fn overview(page: &TenantPage, state: Option<&str>, expiring_within_days: Option<i64>) -> Html {
    let mut html = Html::new();
    html.raw("<h1>Tenants</h1><form method=\"get\" action=\"/admin\"><label>State <select name=\"state\"><option value=\"\">any</option>");
    for option in ["ok", "pending", "unavailable", "config_error"] {
        html.raw("<option");
        if state == Some(option) {
            html.raw(" selected");
        }
        html.raw(">").text(option).raw("</option>");
    }
    html.raw("</select></label> <label>Certificate expiring within <input type=\"number\" min=\"0\" max=\"36500\" name=\"expiring_within_days\" value=\"")
        .text(&expiring_within_days.map(|d| d.to_string()).unwrap_or_default())
        .raw("\"> days</label> <button type=\"submit\">Filter</button></form>");
    html.raw("<table id=\"tenants\"><tr><th>Tenant</th><th>State</th><th>Soonest certificate expiry</th><th>Days left</th><th>Failures, last hour (this replica)</th></tr>");
    for tenant in &page.tenants {
        html.raw("<tr><td><a href=\"/admin/tenants/").text(&tenant.id).raw("\">").text(&tenant.id).raw("</a></td>");
        html.element("<td class=\"state\">", tenant.state, "</td>");
        html.element("<td>", tenant.soonest_expiry.as_deref().unwrap_or("no certificate"), "</td>");
        let days = tenant.soonest_expiry_days_left.map(|d| d.to_string()).unwrap_or_default();
        let class = match tenant.soonest_expiry_days_left {
            Some(d) if d < 0 => "<td class=\"fail\">",
            Some(d) if d < 14 => "<td class=\"warn\">",
            _ => "<td>",
        };
        html.element(class, &days, "</td>");
        html.element("<td>", &tenant.failures_last_hour.to_string(), "</td></tr>");
    }
    html.raw("</table>");
    if page.tenants.is_empty() {
        html.raw("<p>No tenant matches.</p>");
    }
    if let Some(token) = &page.next_page_token {
        let mut query = vec![("page_token", token.clone())];
        query.extend(state.map(|s| ("state", s.to_string())));
        query.extend(expiring_within_days.map(|d| ("expiring_within_days", d.to_string())));
        let query = serde_urlencoded::to_string(query).unwrap_or_default();
        html.raw("<p><a id=\"next\" href=\"/admin?").text(&query).raw("\">Next page</a></p>");
    }
    html
}

/// A tenant whose file was refused before any version of it loaded.
pub(super) fn refused(id: &str, problem: &FileProblem) -> Html {
    let mut html = Html::new();
    html.element("<h1>Tenant ", id, "</h1>");
    config_error(&mut html, problem);
    html
}

fn config_error(html: &mut Html, problem: &FileProblem) {
    html.raw("<div class=\"bad\"><p>The tenant's file ").text(&problem.file).raw(" was refused at ");
    html.text(&problem.refused_at).raw("; what is shown below is its last good version, if any:</p><ul>");
    for line in &problem.problems {
        html.element("<li>", line, "</li>");
    }
    html.raw("</ul></div>");
}

/// Everything the tenant page shows.
pub(super) struct TenantPageParts<'a> {
    pub(super) view: &'a TenantView<'a>,
    pub(super) tenant: &'a TenantConfig,
    pub(super) failures: &'a [Failure],
    pub(super) diagnosis: Option<&'a Result<Diagnosis, Error>>,
    pub(super) pasted: &'a Pasted,
    pub(super) now: DateTime<Utc>,
}

/// `/admin/tenants/{id}`.
pub(super) fn tenant(parts: &TenantPageParts<'_>) -> Html {
    let view = parts.view;
    let mut html = Html::new();
    html.element("<h1>Tenant <span id=\"tenant-id\">", view.id, "</span></h1>");
    html.element("<p>State: <strong id=\"state\">", view.status, "</strong></p>");
    if let Some(problem) = view.config_error {
        config_error(&mut html, problem);
    }
    // An explanation just asked for comes first, where the admin is looking.
    if parts.diagnosis.is_some() {
        paste_box(&mut html, parts);
    }
    idp_fields(&mut html, parts);
    certificates(&mut html, view);
    failures(&mut html, parts);
    if parts.diagnosis.is_none() {
        paste_box(&mut html, parts);
    }
    html
}

/// The values to type into the IdP: for Entra, exactly the fields of "Basic SAML Configuration".
fn idp_fields(html: &mut Html, parts: &TenantPageParts<'_>) {
    let (view, sp) = (parts.view, &parts.tenant.sp);
    html.raw("<h2>Set up the IdP</h2><p>Microsoft Entra ID: Enterprise applications → your app → Single sign-on → SAML → Basic SAML Configuration. Other IdPs: upload the SP metadata, or type the same values.</p>");
    html.raw("<table id=\"idp-fields\"><tr><th>Field in Entra</th><th>Value</th></tr>");
    html.row(["Identifier (Entity ID)", view.sp_entity_id]);
    for url in &view.acs_urls {
        html.row(["Reply URL (Assertion Consumer Service URL)", url]);
    }
    let sign_on =
        sp.sign_on_url.as_deref().unwrap_or("not configured: set the tenant's sign_on_url (the help desk's login page, e.g. https://<host>/helpdesk/User/Login)");
    html.row(["Sign on URL", sign_on]);
    if let Some(slo) = &sp.slo_url {
        html.row(["Logout Url (optional)", slo]);
    }
    html.raw("</table><table id=\"trust\"><tr><th>What this service expects from the IdP</th><th>Value</th></tr>");
    html.row([
        "Issuer: Entra's \"Microsoft Entra Identifier\" (https://sts.windows.net/<directory id>/)",
        view.idp_entity_id,
    ]);
    if let Some(url) = &parts.tenant.metadata_url {
        html.row(["Federation metadata URL (certificates are read from it)", url]);
    }
    html.raw("</table><p><a id=\"sp-metadata\" href=\"/admin/tenants/").text(view.id);
    html.raw("/sp-metadata\" download>Download the SP metadata (XML)</a> to upload at the IdP (Entra: Upload metadata file).</p>");
}

fn certificates(html: &mut Html, view: &TenantView<'_>) {
    html.raw("<h2>Signing certificates</h2><p>In Entra: SAML Certificates → Certificate (Base64) is what is pasted here. During a rollover, the one that last verified a login is the one the IdP really uses.</p>");
    html.raw("<table id=\"certificates\"><tr><th>Subject</th><th>SHA-256 thumbprint</th><th>Source</th><th>Not after</th><th>Days left</th><th>Last verified a login (this replica)</th></tr>");
    for c in &view.certificates {
        let days = c.days_left.map(|d| d.to_string()).unwrap_or_default();
        html.raw("<tr>").element("<td>", &c.info.subject, "</td>");
        html.element("<td class=\"mono\">", &c.info.sha256_fingerprint, "</td>");
        html.element("<td>", c.source, "</td>");
        html.element("<td>", c.not_after_rfc3339.as_deref().unwrap_or(&c.info.not_after), "</td>");
        let class = match c.days_left {
            Some(d) if d < 0 => "<td class=\"fail\">",
            Some(d) if d < 14 => "<td class=\"warn\">",
            _ => "<td>",
        };
        html.element(class, &days, "</td>");
        html.element("<td>", c.last_used_at.as_deref().unwrap_or("not since this replica started"), "</td></tr>");
    }
    html.raw("</table>");
    if view.certificates.is_empty() {
        html.raw("<p class=\"bad\">No certificate: this tenant cannot verify any login.</p>");
    }
}

fn failures(html: &mut Html, parts: &TenantPageParts<'_>) {
    html.raw("<h2>Recent failures (this replica, newest first)</h2>");
    if parts.failures.is_empty() {
        html.raw("<p id=\"no-failures\">None since this replica started.</p>");
        return;
    }
    html.raw("<table id=\"failures\"><tr><th>At</th><th>Code</th><th>What happened</th><th>How to fix</th><th>Request id</th><th>Certificate in the response (untrusted)</th><th>Clock difference (s)</th><th>IdP status</th></tr>");
    for f in parts.failures {
        let code = Code::ALL.iter().copied().find(|c| c.as_str() == f.code);
        let hint = code.and_then(|code| hint_for_code(code, &parts.tenant.policy, parts.now)).unwrap_or_default();
        let keyinfo = f.keyinfo_sha256.as_deref().map(|sha| {
            let known = parts.view.certificates.iter().any(|c| c.info.sha256_fingerprint.eq_ignore_ascii_case(sha));
            format!("{sha} ({})", if known { "configured here" } else { "NOT one of this tenant's certificates" })
        });
        let clock = f.clock_difference_seconds.map(|s| s.to_string());
        html.row([
            f.at.as_str(),
            f.code,
            &f.message,
            &hint,
            &f.request_id,
            keyinfo.as_deref().unwrap_or(""),
            clock.as_deref().unwrap_or(""),
            f.idp_status.as_deref().unwrap_or(""),
        ]);
    }
    html.raw("</table>");
}

fn paste_box(html: &mut Html, parts: &TenantPageParts<'_>) {
    html.raw("<h2 id=\"explain\">Explain a response</h2><p>Paste the base64 SAMLResponse the browser posted (Entra: \"Test this application\", then the browser's developer tools). Every check is run and explained; nothing is recorded and the login is not consumed.</p>");
    match parts.diagnosis {
        Some(Ok(diagnosis)) => checklist(html, diagnosis),
        Some(Err(error)) => {
            html.raw("<div class=\"bad\" id=\"verdict\"><p>Cannot be explained: <code>").text(error.code.as_str());
            html.raw("</code> ").text(&error.message).raw("</p></div>");
        }
        None => {}
    }
    html.raw("<form method=\"post\" action=\"/admin/tenants/").text(parts.view.id).raw("/diagnose\">");
    html.raw("<p><textarea name=\"saml_response\" id=\"saml_response\" spellcheck=\"false\" placeholder=\"PHNhbWxwOlJlc3BvbnNl…\">");
    html.text(&parts.pasted.saml_response).raw("</textarea></p>");
    html.raw("<p><label>AuthnRequest ID (optional) <input type=\"text\" name=\"expected_request_id\" value=\"");
    html.text(&parts.pasted.expected_request_id).raw("\"></label></p>");
    html.raw("<p><label>ACS URL it was posted to (optional) <input type=\"text\" name=\"expected_acs_url\" value=\"");
    html.text(&parts.pasted.expected_acs_url).raw("\"></label></p>");
    html.raw("<p><button type=\"submit\" id=\"explain-button\">Explain</button></p></form>");
}

fn outcome(result: Outcome) -> &'static str {
    match result {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::NotRun => "not_run",
    }
}

fn checklist(html: &mut Html, diagnosis: &Diagnosis) {
    match &diagnosis.verdict {
        None => {
            html.raw("<div class=\"good\" id=\"verdict\"><p>Every check passes: this response would be accepted now (once: it was not consumed here).</p></div>");
        }
        Some(verdict) => {
            html.raw("<div class=\"bad\" id=\"verdict\"><p>Refused: <code>").text(verdict.code).raw("</code> ");
            html.text(&verdict.message).raw("</p>");
            if let Some(hint) = &verdict.hint {
                html.element("<p><strong>How to fix:</strong> ", hint, "</p>");
            }
            html.raw("</div>");
        }
    }
    html.raw("<table id=\"checks\"><tr><th>Check</th><th>Result</th><th>Expected</th><th>Found</th><th>Seconds from now</th><th>Why / how to fix</th></tr>");
    for check in &diagnosis.checks {
        check_row(html, check);
    }
    html.raw("</table><h3>Signatures</h3>");
    for signature in &diagnosis.signatures {
        signature_report(html, signature);
    }
    if diagnosis.signatures.is_empty() {
        html.raw("<p class=\"bad\">The response carries no signature.</p>");
    }
}

fn check_row(html: &mut Html, check: &Check) {
    let result = outcome(check.result);
    html.raw("<tr class=\"check\"><td>").text(check.name).raw("</td><td class=\"").text(result).raw("\">");
    html.text(result).raw("</td>");
    html.element("<td>", check.expected.as_deref().unwrap_or(""), "</td>");
    html.element("<td>", check.found.as_deref().unwrap_or(""), "</td>");
    html.element("<td>", &check.seconds_from_now.map(|s| s.to_string()).unwrap_or_default(), "</td><td>");
    if let Some(code) = check.code {
        html.element("<code>", code, "</code> ");
    }
    html.text(check.message.as_deref().unwrap_or(""));
    if let Some(hint) = &check.hint {
        html.element("<br><strong>How to fix:</strong> ", hint, "");
    }
    html.raw("</td></tr>");
}

fn signature_report(html: &mut Html, signature: &SignatureReport) {
    let result = outcome(signature.result);
    html.raw("<p class=\"signature\">Signature over the ").text(signature.covers).raw(": <span class=\"");
    html.text(result).raw("\">").text(result).raw("</span>");
    if let Some(by) = &signature.verified_by {
        html.element(", verified by the configured certificate <code>", by, "</code>");
    }
    let algorithms = [signature.signature_algorithm.as_deref(), signature.digest_algorithm.as_deref()];
    for algorithm in algorithms.into_iter().flatten() {
        html.element(" · <code>", algorithm, "</code>");
    }
    if let Some(message) = &signature.message {
        html.raw(" · ").text(message);
    }
    html.raw("</p>");
    if signature.document_certificates.is_empty() {
        return;
    }
    html.raw("<table class=\"document-certificates\"><tr><th>Certificate the response carries (UNTRUSTED, never used to verify)</th><th>SHA-256 thumbprint</th><th>SHA-1 thumbprint (Entra shows this one)</th><th>Valid</th><th>One of this tenant's?</th></tr>");
    for c in &signature.document_certificates {
        let valid = format!("{} – {}", c.not_before, c.not_after);
        let configured =
            if c.configured { "yes" } else { "NO: the IdP signs with a certificate this tenant does not have" };
        html.row([c.subject.as_str(), &c.sha256_thumbprint, &c.sha1_thumbprint, &valid, configured]);
    }
    html.raw("</table>");
}

/// An error page (unknown tenant, bad request): the value that caused it shown as text.
pub(super) fn problem(title: &str, detail: &str) -> Html {
    let mut html = Html::new();
    html.element("<h1>", title, "</h1>");
    html.element("<p class=\"bad\" id=\"problem\">", detail, "</p>");
    html.raw("<p><a href=\"/admin\">All tenants</a></p>");
    html
}
