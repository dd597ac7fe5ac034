//! HTTP adapter: JSON in, JSON out, status codes from `wire::disposition`. No validation logic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{dev::Server, web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt as _;
use serde::Deserialize;

use crate::config::Config;
use crate::metrics::{Metrics, UNKNOWN_TENANT};
use crate::saml::{Code, Error, Input, Validated};
use crate::service::{self, Service, ValidateRequest};
use crate::wire::{self, ErrorBody, ValidBody};

/// Shared by every worker.
pub struct State {
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    in_flight: AtomicUsize,
    max_in_flight: usize,
    max_body_bytes: usize,
    /// `/metrics` on the main port (false when a separate `metrics_addr` is configured).
    metrics_on_main_port: bool,
    name_id_hash_salt: Option<String>,
}

impl State {
    pub fn new(service: Arc<Service>, metrics: Arc<Metrics>, config: &Config) -> State {
        State {
            service,
            metrics,
            in_flight: AtomicUsize::new(0),
            max_in_flight: config.server.max_concurrent_validations,
            max_body_bytes: config.server.max_body_bytes,
            metrics_on_main_port: config.server.metrics_addr.is_none(),
            name_id_hash_salt: config.logging.debug_log_name_id_hash_salt.clone(),
        }
    }
}

/// Binds the listener (port 0 picks a free one) and returns the server with its bound address.
pub fn bind(state: Arc<State>, addr: &str, workers: usize) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let data = web::Data::from(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/validate", web::post().to(validate))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_on_main))
            .default_service(web::to(not_found))
    })
    // Slow clients must not hold workers: bound the time to send headers and to close.
    .client_request_timeout(std::time::Duration::from_secs(5))
    .client_disconnect_timeout(std::time::Duration::from_secs(1));
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = server.bind(addr)?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

/// A second listener that serves only `/metrics` (the `metrics_addr` setting).
pub fn bind_metrics(state: Arc<State>, addr: &str) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route("/metrics", web::get().to(metrics)).default_service(web::to(not_found))
    })
    .workers(1)
    .client_request_timeout(std::time::Duration::from_secs(5))
    .bind(addr)?;
    let addrs = server.addrs();
    Ok((server.run(), addrs))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    tenant: String,
    saml_response: String,
    #[serde(default)]
    expected_request_id: Option<String>,
}

/// Decrements the in-flight counters however the handler exits.
struct InFlight<'a>(&'a State);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.in_flight().dec();
    }
}

async fn validate(state: web::Data<State>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = Instant::now();
    let request_id = request_id(&request);
    if state.in_flight.fetch_add(1, Ordering::AcqRel) >= state.max_in_flight {
        state.in_flight.fetch_sub(1, Ordering::AcqRel);
        let result = Err(Error::new(Code::Overloaded, "too many validations in flight; retry shortly"));
        let mut response = finish(&state, &request_id, UNKNOWN_TENANT, result, started, 0);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    state.metrics.in_flight().inc();
    let _guard = InFlight(&state);

    let body = match read_body(&state, &request, payload).await {
        Ok(body) => body,
        Err(error) => return finish(&state, &request_id, UNKNOWN_TENANT, Err(error), started, 0),
    };
    let parsed: ValidateBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            let error = Error::new(
                Code::MalformedRequest,
                format!("body must be JSON {{tenant, saml_response, expected_request_id?}}: {e}"),
            );
            return finish(&state, &request_id, UNKNOWN_TENANT, Err(error), started, body.len());
        }
    };
    let input = ValidateRequest {
        tenant: &parsed.tenant,
        saml_response: Input::Base64(parsed.saml_response.as_bytes()),
        expected_request_id: parsed.expected_request_id.as_deref(),
    };
    let result = state.service.validate(&input, service::wall_clock());
    let tenant = if state.service.has_tenant(&parsed.tenant) { parsed.tenant.as_str() } else { UNKNOWN_TENANT };
    finish(&state, &request_id, tenant, result, started, body.len())
}

/// Reads the body ourselves so an oversize request gets our JSON error, checked against
/// Content-Length first and then against the bytes actually received.
async fn read_body(state: &State, request: &HttpRequest, mut payload: web::Payload) -> Result<web::BytesMut, Error> {
    let too_large =
        || Error::new(Code::PayloadTooLarge, format!("request body exceeds {} bytes", state.max_body_bytes));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8192).min(state.max_body_bytes));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Error::new(Code::MalformedRequest, "request body could not be read"))?;
        if body.len() + chunk.len() > state.max_body_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Records metrics, writes the one log event for this validation, and renders the response.
fn finish(
    state: &State,
    request_id: &str,
    tenant: &str,
    result: Result<Validated, Error>,
    started: Instant,
    payload_bytes: usize,
) -> HttpResponse {
    let elapsed = started.elapsed();
    state.metrics.observe(tenant, &result, elapsed, payload_bytes);
    log(state, request_id, tenant, &result, elapsed);
    match result {
        Ok(validated) => HttpResponse::Ok().insert_header(("x-request-id", request_id.to_string())).json(ValidBody {
            valid: true,
            tenant,
            result: &validated,
        }),
        Err(error) => error_response(&error, request_id),
    }
}

fn error_response(error: &Error, request_id: &str) -> HttpResponse {
    let disposition = wire::disposition(error.code);
    let status = StatusCode::from_u16(disposition.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).insert_header(("x-request-id", request_id.to_string())).json(ErrorBody::new(error))
}

/// One event per validation: tenant (a configured id or "-"), outcome, stable code, duration,
/// request id, and a hash of the assertion ID. Never the NameID, attribute values, the message
/// (an IdP status message can name the user) or the document.
fn log(state: &State, request_id: &str, tenant: &str, result: &Result<Validated, Error>, elapsed: std::time::Duration) {
    let duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    match result {
        Ok(validated) => {
            let assertion_id_hash = short_hash(None, &validated.assertion_id);
            match &state.name_id_hash_salt {
                Some(salt) => tracing::info!(
                    target: "validation",
                    request_id,
                    tenant,
                    outcome = "valid",
                    duration_us,
                    assertion_id_hash,
                    name_id_hash = short_hash(Some(salt), &validated.subject.name_id),
                ),
                None => {
                    tracing::info!(target: "validation", request_id, tenant, outcome = "valid", duration_us, assertion_id_hash)
                }
            }
        }
        Err(error) => tracing::info!(
            target: "validation",
            request_id,
            tenant,
            outcome = if wire::disposition(error.code).http_status == 422 { "rejected" } else { "error" },
            code = error.code.as_str(),
            duration_us,
        ),
    }
}

/// First 16 hex digits of SHA-256(salt || value).
fn short_hash(salt: Option<&str>, value: &str) -> String {
    let mut hasher = openssl::sha::Sha256::new();
    if let Some(salt) = salt {
        hasher.update(salt.as_bytes());
        hasher.update(&[0]);
    }
    hasher.update(value.as_bytes());
    hasher.finish()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller's `X-Request-Id` when it is a short printable token, otherwise a fresh one.
fn request_id(request: &HttpRequest) -> String {
    if let Some(given) = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()) {
        if !given.is_empty() && given.len() <= 128 && given.bytes().all(|b| b.is_ascii_graphic()) {
            return given.to_string();
        }
    }
    let mut bytes = [0u8; 12];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        return "unavailable".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    let tenants = state.service.tenant_count();
    if tenants == 0 {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "not_ready", "tenants": 0}));
    }
    HttpResponse::Ok().json(serde_json::json!({"status": "ready", "tenants": tenants}))
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    let body = state.metrics.render(&state.service, service::wall_clock());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

async fn metrics_on_main(state: web::Data<State>) -> HttpResponse {
    if state.metrics_on_main_port {
        metrics(state).await
    } else {
        not_found().await
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"error": {"code": "not_found", "message": "no such endpoint"}}))
}
