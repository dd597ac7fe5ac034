//! HTTP adapter: JSON in, JSON out, status codes from `wire::disposition`. No validation logic:
//! the handler supplies the credentials and the body to `Frontend::handle`.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpMessage as _, HttpRequest, HttpResponse, HttpResponseBuilder, HttpServer};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::auth::{self, ClientCertificate, Credentials};
use super::budget::{Budget, Reservation};
use super::frontend::{self, Frontend, Incoming, OwnedRequest};
use super::json::{self, ErrorBody, ValidBody};
use super::tls::{self, ClientCertificates, TlsConfig};
use super::wire;
use crate::config::Config;
use crate::ops::wall_clock;
use crate::saml::{Code, Error, Validated};
use crate::service::logout::{LogoutRequestParams, LogoutResponseParams, ValidateLogoutParams};
use crate::service::sp::AuthnRequestParams;
use crate::tenants::TenantState;

/// Shared by every worker.
pub struct State {
    frontend: Arc<Frontend>,
    max_body_bytes: usize,
    /// Body bytes every connection together may hold (`max_inflight_body_bytes`).
    bodies: Budget,
    max_connections: usize,
    /// `/metrics` on the main port (false when a separate `metrics_addr` is configured).
    metrics_on_main_port: bool,
}

impl State {
    pub fn new(frontend: Arc<Frontend>, config: &Config) -> State {
        State {
            frontend,
            max_body_bytes: config.server.max_body_bytes,
            bodies: Budget::new(config.server.max_inflight_body_bytes),
            max_connections: config.server.max_connections,
            metrics_on_main_port: config.server.metrics_addr.is_none(),
        }
    }

    pub fn frontend(&self) -> &Arc<Frontend> {
        &self.frontend
    }
}

/// Binds the listener (port 0 picks a free one), with TLS when `tls` is set, and returns the
/// server with its bound address.
pub fn bind(
    state: Arc<State>,
    addr: &str,
    workers: usize,
    tls: Option<&TlsConfig>,
) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let per_worker = state.max_connections.div_ceil(if workers > 0 { workers } else { super::cores() }).max(1);
    let data = web::Data::from(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(stamp_request_id))
            .route("/v1/validate", web::post().to(validate))
            .route("/v1/tenants", web::get().to(list_tenants))
            .route("/v1/tenants/{id}", web::get().to(tenant))
            .route("/v1/tenants/{id}/failures", web::get().to(tenant_failures))
            .route("/v1/replay-store", web::get().to(replay_store))
            .route("/v1/diagnose", web::post().to(diagnose))
            .route("/v1/authn-requests", web::post().to(create_authn_request))
            .route("/v1/tenants/{id}/sp-metadata", web::get().to(sp_metadata))
            .route("/v1/logout-requests", web::post().to(create_logout_request))
            .route("/v1/logout-responses", web::post().to(create_logout_response))
            .route("/v1/logout/validate", web::post().to(validate_logout))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_on_main))
            .default_service(web::to(not_found))
    })
    // Slow clients must not hold workers: bound the time to send headers and to close.
    .client_request_timeout(std::time::Duration::from_secs(5))
    .client_disconnect_timeout(std::time::Duration::from_secs(1))
    // actix counts connections per worker; beyond the cap, accepting pauses and new
    // connections wait in the kernel's backlog.
    .max_connections(per_worker)
    .on_connect(remember_client_certificate);
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = match tls {
        None => server.bind(addr)?,
        Some(tls) => server.bind_openssl(addr, acceptor(tls, ClientCertificates::Optional)?)?,
    };
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// The TLS acceptor for an HTTP listener (actix installs its own ALPN choice: h2, http/1.1).
fn acceptor(
    tls: &TlsConfig,
    client_certificates: ClientCertificates,
) -> std::io::Result<openssl::ssl::SslAcceptorBuilder> {
    tls::acceptor(tls, &[b"h2", b"http/1.1"], client_certificates).map_err(std::io::Error::other)
}

/// Copies the connection's verified client certificate (mutual TLS) into its request data.
fn remember_client_certificate(connection: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    type TlsStream = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(stream) = connection.downcast_ref::<TlsStream>() {
        if let Some(certificate) = tls::client_certificate(stream.ssl()) {
            data.insert(certificate);
        }
    }
}

fn credentials(request: &HttpRequest) -> Credentials<'_> {
    Credentials {
        authorization: request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
        client_certificate: request.conn_data::<ClientCertificate>().copied(),
    }
}

/// The request's id: the caller's `X-Request-Id` when usable, else a fresh one. Set for every
/// route before its handler runs (the handler logs with it) and written on every answer, error
/// or not, so a caller can always quote it.
#[derive(Clone)]
struct RequestId(Arc<str>);

impl RequestId {
    fn of(request: &actix_web::dev::ServiceRequest) -> RequestId {
        let id =
            RequestId(frontend::request_id(request.headers().get("x-request-id").and_then(|v| v.to_str().ok())).into());
        request.extensions_mut().insert(id.clone());
        id
    }

    fn stamp<B>(&self, mut answer: actix_web::dev::ServiceResponse<B>) -> actix_web::dev::ServiceResponse<B> {
        // Always a valid header value: `frontend::request_id` keeps only visible ASCII.
        if let Ok(value) = HeaderValue::from_str(&self.0) {
            answer.headers_mut().insert(header::HeaderName::from_static("x-request-id"), value);
        }
        answer
    }
}

/// Every route's middleware: the request id set before the handler, written on the answer.
async fn stamp_request_id(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let id = RequestId::of(&request);
    next.call(request).await.map(|answer| id.stamp(answer))
}

impl actix_web::FromRequest for RequestId {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<RequestId, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let id = request.extensions().get::<RequestId>().cloned();
        std::future::ready(Ok(id.unwrap_or_else(|| RequestId(frontend::request_id(None).into()))))
    }
}

/// A second listener that serves only `/metrics` (the `metrics_addr` setting).
pub fn bind_metrics(
    state: Arc<State>,
    addr: &str,
    tls: Option<&TlsConfig>,
) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(stamp_request_id))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .on_connect(remember_client_certificate);
    let server = match tls {
        None => server.bind(addr)?,
        Some(tls) => server.bind_openssl(addr, acceptor(tls, ClientCertificates::Required)?)?,
    };
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// Longest a client may take to send a request body once its headers arrived.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody<'a> {
    tenant: String,
    #[serde(borrow)]
    saml_response: std::borrow::Cow<'a, str>,
    #[serde(default)]
    expected_request_id: Option<String>,
    #[serde(default)]
    expected_acs_url: Option<String>,
}

async fn validate(state: web::Data<State>, request: HttpRequest, id: RequestId, payload: web::Payload) -> HttpResponse {
    let frontend = &state.frontend;
    let request_id = &id.0;
    let incoming = Body::new(&state, &request, payload);
    let (tenant, result) = frontend.handle(request_id, &credentials(&request), incoming).await;
    respond(&tenant, result)
}

/// `POST /v1/diagnose`: the body of `/v1/validate`, answered with the checklist (never a
/// verdict field named `valid`, never claims, nothing recorded).
async fn diagnose(state: web::Data<State>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let incoming = Body::new(&state, &request, payload);
    match state.frontend.diagnose(&credentials(&request), incoming).await {
        Ok(diagnosis) => HttpResponse::Ok().json(diagnosis),
        Err(error) => error_response(&error),
    }
}

/// An HTTP request body on its way into the pipeline.
struct Body<'a> {
    state: &'a State,
    request: &'a HttpRequest,
    payload: Option<web::Payload>,
    bytes: web::BytesMut,
    /// The body's share of `max_inflight_body_bytes`, held until the request is answered.
    held: Reservation<'a>,
}

impl<'a> Body<'a> {
    fn new(state: &'a State, request: &'a HttpRequest, payload: web::Payload) -> Body<'a> {
        Body { state, request, payload: Some(payload), bytes: web::BytesMut::new(), held: state.bodies.reservation() }
    }
}

impl Incoming for Body<'_> {
    /// The body under a deadline: a client trickling bytes must not hold one of the validation
    /// slots (which are shared with gRPC) while it does.
    async fn receive(&mut self) -> Result<usize, Error> {
        let payload = self.payload.take().ok_or_else(|| Error::new(Code::Internal, "body received twice"))?;
        self.bytes = read_body_in_time(self.state, self.request, payload, &mut self.held).await?;
        Ok(self.bytes.len())
    }

    fn decode(self) -> Result<OwnedRequest, Error> {
        let body = self.bytes.freeze();
        let parsed: ValidateBody<'_> = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                Code::MalformedRequest,
                format!("body must be JSON {{tenant, saml_response, expected_request_id?, expected_acs_url?}}: {e}"),
            )
        })?;
        Ok(OwnedRequest {
            tenant: parsed.tenant,
            saml_response: match parsed.saml_response {
                std::borrow::Cow::Borrowed(text) => body.slice_ref(text.as_bytes()),
                std::borrow::Cow::Owned(text) => text.into(),
            },
            expected_request_id: parsed.expected_request_id,
            expected_acs_url: parsed.expected_acs_url,
        })
    }
}

/// [`read_body`] under [`BODY_DEADLINE`]: a client trickling bytes must not hold a worker's
/// attention (or a validation slot) while it does.
async fn read_body_in_time(
    state: &State,
    request: &HttpRequest,
    payload: web::Payload,
    held: &mut Reservation<'_>,
) -> Result<web::BytesMut, Error> {
    match actix_web::rt::time::timeout(BODY_DEADLINE, read_body(state, request, payload, held)).await {
        Ok(body) => body,
        Err(_) => Err(Error::new(
            Code::MalformedRequest,
            format!("request body not received within {} s", BODY_DEADLINE.as_secs()),
        )),
    }
}

/// Resident bytes per body byte while a body is received and held: our buffer, plus the
/// transport's own buffers of the same bytes, which live as long as the connection waits for
/// the rest (measured: about 880 KB resident per 500 KB body held back one byte short, 100
/// connections; tests/all/flood.rs). The budget charges this, not the body alone, so that
/// `max_inflight_body_bytes` bounds what stalled uploads really pin.
const RESIDENT_PER_BODY_BYTE: usize = 2;

/// Reads the body ourselves so an oversize request gets our JSON error, checked against
/// Content-Length first and then against the bytes actually received.
/// The bytes are reserved from the process-wide budget before they are buffered: the declared
/// length up front (it is what gets allocated), then every growth of the buffer, exactly.
async fn read_body(
    state: &State,
    request: &HttpRequest,
    mut payload: web::Payload,
    held: &mut Reservation<'_>,
) -> Result<web::BytesMut, Error> {
    let over_budget =
        || Error::new(Code::Overloaded, "too many request bytes in flight (max_inflight_body_bytes); retry shortly");
    let too_large =
        || Error::new(Code::PayloadTooLarge, format!("request body exceeds {} bytes", state.max_body_bytes));
    let charge = |capacity: usize| capacity.saturating_mul(RESIDENT_PER_BODY_BYTE);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return Err(too_large());
    }
    let initial = declared.unwrap_or(8192).min(state.max_body_bytes);
    if !held.grow_to(charge(initial)) {
        return Err(over_budget());
    }
    let mut body = web::BytesMut::with_capacity(initial);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Error::new(Code::MalformedRequest, "request body could not be read"))?;
        let needed = body.len() + chunk.len();
        if needed > state.max_body_bytes {
            return Err(too_large());
        }
        if needed > body.capacity() {
            // Grown by doubling into a buffer of exactly that size, charged before it is
            // allocated; the old buffer lives on during the copy, so it is charged too.
            let grown_capacity = needed.max(body.capacity().saturating_mul(2)).min(state.max_body_bytes);
            if !held.grow_to(charge(grown_capacity) + body.capacity()) {
                return Err(over_budget());
            }
            let mut grown = web::BytesMut::with_capacity(grown_capacity);
            grown.extend_from_slice(&body);
            body = grown;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn respond(tenant: &str, result: Result<Validated, Error>) -> HttpResponse {
    match result {
        Ok(validated) => json_reply(HttpResponse::Ok(), &ValidBody { valid: true, tenant, result: &validated }, 4096),
        Err(error) => error_response(&error),
    }
}

fn error_response(error: &Error) -> HttpResponse {
    let disposition = wire::disposition(error.code);
    let status = StatusCode::from_u16(disposition.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    // Every 503 is a momentary state of this replica (overload, a store or tenant not yet
    // reachable): tell well-behaved clients when to try again.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
    }
    // A body refused unread (too large, over the in-flight budget) is not drained: reading it
    // only to discard it is what the refusal is meant to spare, so the connection closes.
    if matches!(error.code, Code::PayloadTooLarge | Code::Overloaded) {
        response.force_close();
    }
    json_reply(response, &ErrorBody::new(error), 256)
}

/// A JSON reply serialized into a buffer of `capacity` bytes up front: actix's `json()` starts
/// from 128 bytes and regrows (copying) five times for an accepted login's 2.9 KB, which was
/// most of the reply's cost (issue 32, BENCHMARKS.md).
fn json_reply(mut builder: HttpResponseBuilder, body: &impl Serialize, capacity: usize) -> HttpResponse {
    let mut bytes = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut bytes, body) {
        Ok(()) => builder.content_type(header::ContentType::json()).body(bytes),
        // Unreachable with these bodies (string keys only); answered in the API's own shape.
        Err(_) => HttpResponse::InternalServerError()
            .content_type(header::ContentType::json())
            .body(r#"{"valid":false,"error":{"code":"internal_error","message":"the reply could not be serialized"}}"#),
    }
}

/// The tenant's effective trust: certificates (fingerprints, subjects, validity, origin),
/// relaxations, metadata status. Public facts only.
async fn tenant(state: web::Data<State>, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    if let Err(error) = auth::authorize(state.frontend.service(), &credentials(&request), Some(&id)) {
        return error_response(&error);
    }
    let generation = state.frontend.service().tenants();
    match json::tenant_status(&generation, &id, wall_clock()) {
        Some(Ok(view)) => {
            HttpResponse::Ok().json(view.with_last_used(&state.frontend.service().certificates_last_used(&id)))
        }
        Some(Err(refused)) => HttpResponse::Ok().json(refused),
        None => error_response(&Error::new(Code::UnknownTenant, "no such tenant")),
    }
}

/// `GET /v1/replay-store`: the replay store as this replica sees it (kind, up, epoch,
/// eviction policy, quarantine, last loss). Any authenticated caller: it names no tenant.
async fn replay_store(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    if let Err(error) = auth::authorize(state.frontend.service(), &credentials(&request), None) {
        return error_response(&error);
    }
    HttpResponse::Ok().json(state.frontend.service().replay_store(wall_clock()))
}

/// `POST /v1/authn-requests`: the caller is authenticated before its body is read, as for
/// `/v1/validate`.
async fn create_authn_request(state: web::Data<State>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let credentials = credentials(&request);
    let created = async {
        auth::authorize(state.frontend.service(), &credentials, None)?;
        let mut held = state.bodies.reservation();
        let body = read_body_in_time(&state, &request, payload, &mut held).await?;
        let params: AuthnRequestParams = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                Code::MalformedRequest,
                format!(
                    "body must be JSON {{tenant, relay_state?, force_authn?, is_passive?, binding?, acs_url?}}: {e}"
                ),
            )
        })?;
        auth::authorize(state.frontend.service(), &credentials, Some(&params.tenant))?;
        state.frontend.service().create_authn_request(&params, wall_clock())
    };
    match created.await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(error) => error_response(&error),
    }
}

/// The JSON body of a tenant-scoped call: the caller authenticated before the body is read
/// (as for `/v1/validate`), then authorized for the tenant it names. `shape` lists the fields
/// for the error message.
async fn tenant_body<T: serde::de::DeserializeOwned>(
    state: &State,
    request: &HttpRequest,
    payload: web::Payload,
    shape: &str,
    tenant: fn(&T) -> &str,
) -> Result<T, Error> {
    let credentials = credentials(request);
    auth::authorize(state.frontend.service(), &credentials, None)?;
    let mut held = state.bodies.reservation();
    let body = read_body_in_time(state, request, payload, &mut held).await?;
    let parsed: T = serde_json::from_slice(&body)
        .map_err(|e| Error::new(Code::MalformedRequest, format!("body must be JSON {{{shape}}}: {e}")))?;
    auth::authorize(state.frontend.service(), &credentials, Some(tenant(&parsed)))?;
    Ok(parsed)
}

fn json_or_error<T: serde::Serialize>(result: Result<T, Error>) -> HttpResponse {
    match result {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(error) => error_response(&error),
    }
}

/// `GET /v1/tenants/{id}/failures`: the tenant's recent failures on this replica, newest first.
async fn tenant_failures(state: web::Data<State>, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let service = state.frontend.service();
    let failures =
        auth::authorize(service, &credentials(&request), Some(&id)).and_then(|()| service.tenant_failures(&id));
    match failures {
        Ok(failures) => HttpResponse::Ok().json(json::FailuresBody { tenant: &id, failures }),
        Err(error) => error_response(&error),
    }
}

/// `POST /v1/logout-requests`: the SP's LogoutRequest, both bindings.
async fn create_logout_request(state: web::Data<State>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let shape = "tenant, name_id, name_id_format?, name_qualifier?, sp_name_qualifier?, session_indexes?, relay_state?, binding?";
    let params = tenant_body(&state, &request, payload, shape, |p: &LogoutRequestParams| &p.tenant).await;
    json_or_error(params.and_then(|params| state.frontend.service().create_logout_request(&params, wall_clock())))
}

/// `POST /v1/logout-responses`: the SP's LogoutResponse to an IdP's LogoutRequest.
async fn create_logout_response(state: web::Data<State>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let shape = "tenant, in_response_to, status?, second_level_status?, status_message?, relay_state?, binding?";
    let params = tenant_body(&state, &request, payload, shape, |p: &LogoutResponseParams| &p.tenant).await;
    json_or_error(params.and_then(|params| state.frontend.service().create_logout_response(&params, wall_clock())))
}

/// `POST /v1/logout/validate`: a LogoutRequest or LogoutResponse as the browser delivered it.
async fn validate_logout(
    state: web::Data<State>,
    request: HttpRequest,
    id: RequestId,
    payload: web::Payload,
) -> HttpResponse {
    let shape = "tenant, binding?, query? | saml_request? | saml_response?, relay_state?, expected_request_id?";
    let params = tenant_body(&state, &request, payload, shape, |p: &ValidateLogoutParams| &p.tenant).await;
    match params {
        Ok(params) => json_or_error(state.frontend.validate_logout(&id.0, params).await),
        Err(error) => error_response(&state.frontend.refused_logout(&id.0, error)),
    }
}

/// `GET /v1/tenants?page_size=&page_token=&expiring_within_days=&state=`: the tenants the
/// caller may use, in id order, a page at a time.
async fn list_tenants(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    let service = state.frontend.service();
    let generation = service.tenants();
    let listed = auth::authenticate(generation.callers(), &credentials(&request)).and_then(|caller| {
        let query = json::tenant_query(request.query_string())?;
        service.list_tenants(&query, |id| caller.allows(id), wall_clock())
    });
    match listed {
        Ok(page) => HttpResponse::Ok().json(page),
        Err(error) => error_response(&error),
    }
}

/// `GET /v1/tenants/{id}/sp-metadata`: the document to upload at the IdP.
async fn sp_metadata(state: web::Data<State>, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let service = state.frontend.service();
    let xml = auth::authorize(service, &credentials(&request), Some(&id))
        .and_then(|()| service.sp_metadata(&id, wall_clock()));
    match xml {
        Ok(xml) => HttpResponse::Ok().content_type("application/samlmetadata+xml").body(xml),
        Err(error) => error_response(&error),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready once every tenant has been tried (its metadata loaded or failed: a dead endpoint
/// makes one tenant `unavailable`, never the replica unready). Latched: a tenant added later
/// does not take the replica out of rotation.
async fn readyz(state: web::Data<State>) -> HttpResponse {
    let service = state.frontend.service();
    let counts = service.tenants().state_counts();
    let count = |wanted: TenantState| counts.iter().find(|(state, _)| *state == wanted).map_or(0, |(_, n)| *n);
    let ready = service.is_ready();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "tenants": service.tenant_count(),
        "pending": count(TenantState::Pending),
        "unavailable": count(TenantState::Unavailable),
        "config_errors": count(TenantState::ConfigError),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    if let Err(error) = auth::authorize(state.frontend.service(), &credentials(&request), None) {
        return error_response(&error);
    }
    let body = state.frontend.render_metrics();
    let mut response = HttpResponse::Ok();
    response.content_type("text/plain; version=0.0.4");
    // A fleet's exposition is O(tenants) lines of near-identical text: gzip (which Prometheus
    // always asks for) cuts it tenfold.
    if accepts_gzip(&request) {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if std::io::Write::write_all(&mut encoder, body.as_bytes()).is_ok() {
            if let Ok(compressed) = encoder.finish() {
                return response
                    .insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")))
                    .body(compressed);
            }
        }
    }
    response.body(body)
}

fn accepts_gzip(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

async fn metrics_on_main(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    if state.metrics_on_main_port {
        metrics(state, request).await
    } else {
        not_found().await
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"error": {"code": "not_found", "message": "no such endpoint"}}))
}
