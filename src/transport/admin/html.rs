//! HTML with no way to write an unescaped value: markup comes only from `&'static str`
//! literals (written here, in the binary), every runtime value goes through [`Html::text`].
//! The values shown are attacker-reachable (a pasted response's Issuer, a path segment, a
//! metadata subject), and the reader is an admin with a session: stored or reflected XSS would
//! be a takeover of the admin page. The Content-Security-Policy (no script at all) is the second
//! wall, not the first.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use base64::Engine as _;

/// The only style sheet, inline and allowed by its hash (no external assets, no `unsafe-inline`).
pub(super) const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}\
header{background:#24292f;color:#fff;padding:10px 24px}header a{color:#fff}main{padding:16px 24px;max-width:1200px}\
table{border-collapse:collapse;background:#fff;margin:8px 0 20px;width:100%}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#eef1f4}code,.mono{font-family:ui-monospace,monospace;word-break:break-all}\
.pass,.fail,.not_run,th{white-space:nowrap;overflow-wrap:normal}.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.not_run{color:#6e7781}\
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px}.bad{background:#ffebe9;border:1px solid #cf222e;padding:8px 12px}\
.good{background:#dafbe1;border:1px solid #1a7f37;padding:8px 12px}textarea{width:100%;height:160px;font-family:ui-monospace,monospace}\
input[type=text],input[type=password]{width:420px}form.inline{display:inline}h2{margin-top:28px}";

/// A page being written.
pub(super) struct Html(String);

impl Html {
    pub(super) fn new() -> Html {
        Html(String::with_capacity(8 * 1024))
    }

    /// Markup written in this binary.
    pub(super) fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// Any value: escaped for element content and for quoted attribute values alike.
    pub(super) fn text(&mut self, value: &str) -> &mut Html {
        for c in value.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                c => self.0.push(c),
            }
        }
        self
    }

    /// `<tag>value</tag>` for a tag written here.
    pub(super) fn element(&mut self, open: &'static str, value: &str, close: &'static str) -> &mut Html {
        self.raw(open).text(value).raw(close)
    }

    /// One table row of cells, each escaped.
    pub(super) fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) -> &mut Html {
        self.raw("<tr>");
        for cell in cells {
            self.element("<td>", cell, "</td>");
        }
        self.raw("</tr>")
    }

    /// The whole document around `body`.
    pub(super) fn page(title: &str, signed_in: bool, body: Html) -> String {
        let mut page = Html::new();
        page.raw("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
            .text(title)
            .raw(" · saml-validator admin</title><style>")
            .raw(STYLE)
            .raw("</style></head><body><header><strong>saml-validator</strong> admin");
        if signed_in {
            page.raw(" · <a href=\"/admin\">tenants</a> · <form class=\"inline\" method=\"post\" action=\"/admin/logout\"><button type=\"submit\">sign out</button></form>");
        }
        page.raw("</header><main>");
        page.0.push_str(&body.0);
        page.raw("</main></body></html>");
        page.0
    }
}

impl Default for Html {
    fn default() -> Self {
        Html::new()
    }
}

/// The Content-Security-Policy of every admin answer: nothing but the inline style sheet above
/// (by hash), forms posting to this origin, never framed.
pub(super) fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha256(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// An HTML answer with the headers every admin page carries.
pub(super) fn respond(status: StatusCode, csp: &HeaderValue, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    secure_headers(&mut response, csp);
    response.content_type("text/html; charset=utf-8").body(body)
}

/// Headers for every admin answer, HTML or not: no script, no framing, no sniffing, no caching
/// (pages show tenant set-ups), no Referer leaking a tenant id to another site (`same-origin`,
/// not `no-referrer`: under `no-referrer` browsers send `Origin: null` on form posts, and the
/// same-origin check of `mod.rs` needs the real one).
pub(super) fn secure_headers(response: &mut actix_web::HttpResponseBuilder, csp: &HeaderValue) {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, csp.clone()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header(("cross-origin-opener-policy", HeaderValue::from_static("same-origin")));
}

#[cfg(test)]
mod tests {
    use super::Html;

    #[test]
    fn every_value_is_escaped_in_text_and_attributes() {
        let mut html = Html::new();
        html.element("<td title=\"", "\"><script>alert('x')</script>&", "\">");
        assert_eq!(html.0, "<td title=\"&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\">");
    }
}
