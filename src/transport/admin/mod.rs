//! The admin page (`[admin]`, issue 29): server-rendered HTML on its own listener, for the
//! people who set up SSO. It reads the same views as the JSON API and explains pasted
//! responses through the same diagnosis; it never validates, records or shows claims.
//!
//! Authentication: `Authorization: Bearer <token>` (scripts), or the sign-in form, which sets
//! a session cookie: `<expiry>.<HMAC-SHA256(token, expiry)>`, HttpOnly, SameSite=Strict,
//! scoped to `/admin`, 8 hours. Stateless, so it holds across replicas; a new token (read at
//! start-up, like every listener setting) ends every session. POSTs signed in by cookie must
//! come from this origin (Sec-Fetch-Site, else Origin): SameSite is the first defence against
//! cross-site form posts, this the second.

mod html;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt as _;
use serde::Deserialize;

use self::html::Html;
use self::pages::{Pasted, TenantPageParts};
use super::frontend::{Frontend, OwnedRequest};
use super::json;
use super::tls::{self, ClientCertificates, TlsConfig};
use crate::config::{AdminSettings, Config};
use crate::ops::wall_clock;

const COOKIE: &str = "saml_admin_session";
const SESSION_SECONDS: i64 = 8 * 3600;
/// Longest a client may take to send a form once its headers arrived.
const BODY_DEADLINE: Duration = Duration::from_secs(5);
/// The sign-in form holds one token.
const LOGIN_FORM_BYTES: usize = 4 * 1024;

pub struct AdminState {
    frontend: Arc<Frontend>,
    token: String,
    /// A pasted response may be as large as a validation's body, once form-encoded (`+`, `/`
    /// and `=` take three bytes each).
    max_form_bytes: usize,
    secure_cookie: bool,
    csp: HeaderValue,
}

impl AdminState {
    pub fn new(frontend: Arc<Frontend>, config: &Config, settings: &AdminSettings) -> AdminState {
        let csp = HeaderValue::from_str(&html::content_security_policy())
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        AdminState {
            frontend,
            token: settings.token.0.clone(),
            max_form_bytes: config.server.max_body_bytes * 3 + LOGIN_FORM_BYTES,
            secure_cookie: config.server.tls.is_some(),
            csp,
        }
    }

    fn page(&self, status: StatusCode, title: &str, signed_in: bool, body: Html) -> HttpResponse {
        html::respond(status, &self.csp, Html::page(title, signed_in, body))
    }

    /// `<expiry>.<hex HMAC-SHA256(token, expiry)>`.
    fn session(&self, expires: i64) -> Option<String> {
        let key = openssl::pkey::PKey::hmac(self.token.as_bytes()).ok()?;
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).ok()?;
        let mac = signer.sign_oneshot_to_vec(format!("saml-validator admin session {expires}").as_bytes()).ok()?;
        Some(format!("{expires}.{}", crate::saml::hex::lower(&mac)))
    }

    fn signed_in(&self, request: &HttpRequest) -> Auth {
        let bearer = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Some(token) = bearer.and_then(|v| v.strip_prefix("Bearer ")) {
            return if same_secret(token, &self.token) { Auth::Bearer } else { Auth::None };
        }
        let now = wall_clock().timestamp();
        // Any of them: a cookie planted by a sibling site under the same name must not hide
        // the real one (the browser sends both, the longer path first).
        if session_cookies(request).any(|cookie| self.valid_session(cookie, now)) {
            Auth::Cookie
        } else {
            Auth::None
        }
    }

    fn valid_session(&self, cookie: &str, now: i64) -> bool {
        let expires = cookie.split_once('.').and_then(|(expires, _)| expires.parse::<i64>().ok());
        match expires.filter(|&e| e > now && e <= now + SESSION_SECONDS).and_then(|e| self.session(e)) {
            Some(expected) => same_secret(cookie, &expected),
            None => false,
        }
    }

    fn sign_in_page(&self, status: StatusCode, problem: Option<&str>) -> HttpResponse {
        self.page(status, "Sign in", false, pages::login(problem))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Bearer,
    Cookie,
}

/// The session cookies' values from the `Cookie` headers (RFC 6265 5.4: `name=value; …`).
fn session_cookies(request: &HttpRequest) -> impl Iterator<Item = &str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Compared by their SHA-256 in constant time: no timing of how much of a guess was right.
fn same_secret(given: &str, expected: &str) -> bool {
    openssl::memcmp::eq(&openssl::sha::sha256(given.as_bytes()), &openssl::sha::sha256(expected.as_bytes()))
}

/// A form post the browser says came from this origin. `Sec-Fetch-Site` decides when sent
/// (every current browser): it is the browser's own judgement, right behind a reverse proxy
/// that rewrites `Host` too. Else `Origin` must name this `Host`. Without either (an old
/// browser, a script) SameSite=Strict alone stands.
fn same_origin(request: &HttpRequest) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            let (origin, host) = (origin.as_bytes(), host.as_bytes());
            [&b"http://"[..], b"https://"].iter().any(|scheme| origin.strip_prefix(*scheme) == Some(host))
        }
        (Some(_), None) => false,
    }
}

/// Binds the admin listener (port 0 picks a free one).
pub fn bind(state: Arc<AdminState>, addr: &str, tls: Option<&TlsConfig>) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/admin", web::get().to(overview))
            .route("/admin/", web::get().to(overview))
            .route("/admin/login", web::get().to(login_form))
            .route("/admin/login", web::post().to(login))
            .route("/admin/logout", web::post().to(logout))
            .route("/admin/tenants/{id}", web::get().to(tenant))
            .route("/admin/tenants/{id}/diagnose", web::post().to(diagnose))
            .route("/admin/tenants/{id}/sp-metadata", web::get().to(sp_metadata))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .client_request_timeout(Duration::from_secs(5))
    .client_disconnect_timeout(Duration::from_secs(1))
    .max_connections(256);
    let server = match tls {
        None => server.bind(addr)?,
        Some(config) => server.bind_openssl(
            addr,
            tls::acceptor(config, &[b"http/1.1"], ClientCertificates::Optional).map_err(std::io::Error::other)?,
        )?,
    };
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// The form's fields, percent-decoded, read under a size cap and a deadline, after the caller
/// was authenticated (a stranger cannot make the listener buffer anything).
async fn read_form<T: serde::de::DeserializeOwned>(mut payload: web::Payload, limit: usize) -> Result<T, String> {
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| format!("the form could not be read: {e}"))?;
            if body.len() + chunk.len() > limit {
                return Err(format!("the form is larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = actix_web::rt::time::timeout(BODY_DEADLINE, read)
        .await
        .map_err(|_| format!("the form was not received within {} s", BODY_DEADLINE.as_secs()))??;
    serde_urlencoded::from_bytes(&body).map_err(|e| format!("not a form this page sends: {e}"))
}

async fn login_form(state: web::Data<AdminState>) -> HttpResponse {
    state.sign_in_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(state: web::Data<AdminState>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    if !same_origin(&request) {
        return state.page(StatusCode::FORBIDDEN, "Refused", false, pages::problem("Refused", "cross-site form post"));
    }
    let form: LoginForm = match read_form(payload, LOGIN_FORM_BYTES).await {
        Ok(form) => form,
        Err(problem) => return state.sign_in_page(StatusCode::BAD_REQUEST, Some(&problem)),
    };
    let peer = request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    if !same_secret(form.token.trim(), &state.token) {
        tracing::warn!(peer, "admin sign-in refused: wrong token");
        return state.sign_in_page(StatusCode::UNAUTHORIZED, Some("That is not this service's admin token."));
    }
    let Some(session) = state.session(wall_clock().timestamp() + SESSION_SECONDS) else {
        return state.sign_in_page(StatusCode::INTERNAL_SERVER_ERROR, Some("the session could not be created"));
    };
    tracing::info!(peer, "admin signed in");
    let secure = if state.secure_cookie { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={session}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}");
    let mut response = HttpResponse::SeeOther();
    html::secure_headers(&mut response, &state.csp);
    response.insert_header((header::LOCATION, "/admin")).insert_header((header::SET_COOKIE, cookie)).finish()
}

async fn logout(state: web::Data<AdminState>, request: HttpRequest) -> HttpResponse {
    if !same_origin(&request) {
        return state.page(StatusCode::FORBIDDEN, "Refused", false, pages::problem("Refused", "cross-site form post"));
    }
    let mut response = HttpResponse::SeeOther();
    html::secure_headers(&mut response, &state.csp);
    response
        .insert_header((header::LOCATION, "/admin/login"))
        .insert_header((header::SET_COOKIE, format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0")))
        .finish()
}

/// Query parameters with empty values dropped (the filter form sends every field).
fn filters(query: &str) -> Result<crate::service::lifecycle::TenantQuery, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| e.to_string())?;
    let kept: Vec<_> = pairs.into_iter().filter(|(_, value)| !value.is_empty()).collect();
    let query = serde_urlencoded::to_string(kept).map_err(|e| e.to_string())?;
    json::tenant_query(&query).map_err(|e| e.message)
}

async fn overview(state: web::Data<AdminState>, request: HttpRequest) -> HttpResponse {
    if state.signed_in(&request) == Auth::None {
        return state.sign_in_page(StatusCode::UNAUTHORIZED, None);
    }
    let listed = filters(request.query_string()).and_then(|query| {
        let page = state.frontend.service().list_tenants(&query, |_| true, wall_clock()).map_err(|e| e.message)?;
        Ok((page, query))
    });
    match listed {
        Ok((page, query)) => {
            let body = pages::overview(&page, query.state.as_deref(), query.expiring_within_days);
            state.page(StatusCode::OK, "Tenants", true, body)
        }
        Err(problem) => state.page(StatusCode::BAD_REQUEST, "Bad filter", true, pages::problem("Bad filter", &problem)),
    }
}

async fn tenant(state: web::Data<AdminState>, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if state.signed_in(&request) == Auth::None {
        return state.sign_in_page(StatusCode::UNAUTHORIZED, None);
    }
    tenant_page(&state, &id, None, &Pasted::default())
}

/// The tenant page, with a diagnosis above the paste box when one was asked for.
fn tenant_page(
    state: &AdminState,
    id: &str,
    diagnosis: Option<&Result<crate::saml::diagnose::Diagnosis, crate::saml::Error>>,
    pasted: &Pasted,
) -> HttpResponse {
    let service = state.frontend.service();
    let generation = service.tenants();
    let now = wall_clock();
    match (json::tenant_status(&generation, id, now), generation.get(id)) {
        (Some(Ok(view)), Some(tenant)) => {
            let view = view.with_last_used(&service.certificates_last_used(id));
            let failures = service.tenant_failures(id).unwrap_or_default();
            let parts = TenantPageParts { view: &view, tenant, failures: &failures, diagnosis, pasted, now };
            state.page(StatusCode::OK, id, true, pages::tenant(&parts))
        }
        (Some(Err(refused)), _) => state.page(StatusCode::OK, id, true, pages::refused(id, refused.config_error)),
        _ => unknown_tenant(state, id),
    }
}

fn unknown_tenant(state: &AdminState, id: &str) -> HttpResponse {
    let detail = format!("There is no tenant {id:?} in this service's configuration.");
    state.page(StatusCode::NOT_FOUND, "No such tenant", true, pages::problem("No such tenant", &detail))
}

#[derive(Deserialize)]
struct DiagnoseForm {
    saml_response: String,
    #[serde(default)]
    expected_request_id: String,
    #[serde(default)]
    expected_acs_url: String,
}

async fn diagnose(
    state: web::Data<AdminState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let auth = state.signed_in(&request);
    if auth == Auth::None {
        return state.sign_in_page(StatusCode::UNAUTHORIZED, None);
    }
    if auth == Auth::Cookie && !same_origin(&request) {
        return state.page(StatusCode::FORBIDDEN, "Refused", true, pages::problem("Refused", "cross-site form post"));
    }
    if !state.frontend.service().has_tenant(&id) {
        return unknown_tenant(&state, &id);
    }
    let form: DiagnoseForm = match read_form(payload, state.max_form_bytes).await {
        Ok(form) => form,
        Err(problem) => {
            return state.page(StatusCode::BAD_REQUEST, "Bad form", true, pages::problem("Bad form", &problem))
        }
    };
    let optional = |value: &str| Some(value.trim().to_string()).filter(|v| !v.is_empty());
    let owned = OwnedRequest {
        tenant: id.to_string(),
        saml_response: form.saml_response.trim().to_string().into(),
        expected_request_id: optional(&form.expected_request_id),
        expected_acs_url: optional(&form.expected_acs_url),
    };
    let diagnosis = state.frontend.explain(owned).await;
    let outcome = match &diagnosis {
        Ok(d) => d.verdict.as_ref().map_or("passes", |v| v.code),
        Err(e) => e.code.as_str(),
    };
    let peer = request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    tracing::info!(tenant = %id, peer, outcome, "admin page diagnosis");
    let pasted = Pasted {
        saml_response: form.saml_response,
        expected_request_id: form.expected_request_id,
        expected_acs_url: form.expected_acs_url,
    };
    tenant_page(&state, &id, Some(&diagnosis), &pasted)
}

async fn sp_metadata(state: web::Data<AdminState>, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if state.signed_in(&request) == Auth::None {
        return state.sign_in_page(StatusCode::UNAUTHORIZED, None);
    }
    match state.frontend.service().sp_metadata(&id, wall_clock()) {
        Ok(xml) => {
            let mut response = HttpResponse::Ok();
            html::secure_headers(&mut response, &state.csp);
            // Tenant ids are [A-Za-z0-9._-] (config), so the file name needs no quoting rules.
            let disposition = format!("attachment; filename=\"{id}-sp-metadata.xml\"");
            response
                .content_type("application/samlmetadata+xml")
                .insert_header((header::CONTENT_DISPOSITION, disposition))
                .body(xml)
        }
        Err(error) if error.code == crate::saml::Code::UnknownTenant => unknown_tenant(&state, &id),
        Err(error) => state.page(StatusCode::OK, "SP metadata", true, pages::problem("No SP metadata", &error.message)),
    }
}

async fn not_found(state: web::Data<AdminState>, request: HttpRequest) -> HttpResponse {
    let detail = format!("No page at {}.", request.path());
    state.page(StatusCode::NOT_FOUND, "Not found", false, pages::problem("Not found", &detail))
}
