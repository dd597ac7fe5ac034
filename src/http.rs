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

use crate::config::ServerConfig;
use crate::saml::{Code, Error, Input, Validated};
use crate::service::{self, Service, ValidateRequest};
use crate::wire::{self, ErrorBody, ValidBody};

/// Shared by every worker.
pub struct State {
    service: Arc<Service>,
    in_flight: AtomicUsize,
    max_in_flight: usize,
    max_body_bytes: usize,
}

impl State {
    pub fn new(service: Arc<Service>, server: &ServerConfig) -> State {
        State {
            service,
            in_flight: AtomicUsize::new(0),
            max_in_flight: server.max_concurrent_validations,
            max_body_bytes: server.max_body_bytes,
        }
    }
}

/// Binds the listener (port 0 picks a free one) and returns the server with its bound address.
pub fn bind(
    state: Arc<State>,
    addr: &str,
    workers: usize,
) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let data = web::Data::from(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/validate", web::post().to(validate))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    tenant: String,
    saml_response: String,
    #[serde(default)]
    expected_request_id: Option<String>,
}

/// Decrements the in-flight counter however the handler exits.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn validate(
    state: web::Data<State>,
    request: HttpRequest,
    mut payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let request_id = request_id(&request);
    if state.in_flight.fetch_add(1, Ordering::AcqRel) >= state.max_in_flight {
        state.in_flight.fetch_sub(1, Ordering::AcqRel);
        let error = Error::new(
            Code::Overloaded,
            "too many validations in flight; retry shortly",
        );
        let mut response = error_response(&error, &request_id);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        log(&request_id, "-", &Err(error), started);
        return response;
    }
    let _guard = InFlight(&state.in_flight);

    // Read the body ourselves so an oversize request gets our JSON error, checked against
    // Content-Length first and then against the bytes actually received.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        Error::new(
            Code::PayloadTooLarge,
            format!("request body exceeds {} bytes", state.max_body_bytes),
        )
    };
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        let error = too_large();
        log(&request_id, "-", &Err(error.clone()), started);
        return error_response(&error, &request_id);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8192).min(state.max_body_bytes));
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            let error = Error::new(Code::MalformedRequest, "request body could not be read");
            return error_response(&error, &request_id);
        };
        if body.len() + chunk.len() > state.max_body_bytes {
            let error = too_large();
            log(&request_id, "-", &Err(error.clone()), started);
            return error_response(&error, &request_id);
        }
        body.extend_from_slice(&chunk);
    }
    let parsed: ValidateBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            let error = Error::new(
                Code::MalformedRequest,
                format!("body must be JSON {{tenant, saml_response, expected_request_id?}}: {e}"),
            );
            log(&request_id, "-", &Err(error.clone()), started);
            return error_response(&error, &request_id);
        }
    };
    let input = ValidateRequest {
        tenant: &parsed.tenant,
        saml_response: Input::Base64(parsed.saml_response.as_bytes()),
        expected_request_id: parsed.expected_request_id.as_deref(),
    };
    let result = state.service.validate(&input, service::wall_clock());
    let tenant_label = if state.service.has_tenant(&parsed.tenant) {
        parsed.tenant.as_str()
    } else {
        "-"
    };
    log(&request_id, tenant_label, &result, started);
    match result {
        Ok(validated) => {
            let body = ValidBody {
                valid: true,
                tenant: &parsed.tenant,
                result: &validated,
            };
            HttpResponse::Ok()
                .insert_header(("x-request-id", request_id))
                .json(body)
        }
        Err(error) => error_response(&error, &request_id),
    }
}

fn error_response(error: &Error, request_id: &str) -> HttpResponse {
    let disposition = wire::disposition(error.code);
    let status =
        StatusCode::from_u16(disposition.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .insert_header(("x-request-id", request_id.to_string()))
        .json(ErrorBody::new(error))
}

/// One event per validation. No NameID, attribute values or document content: only the tenant
/// (a configured id or "-"), the outcome and the stable code.
fn log(request_id: &str, tenant: &str, result: &Result<Validated, Error>, started: Instant) {
    let duration_us = started.elapsed().as_micros() as u64;
    match result {
        Ok(_) => {
            tracing::info!(target: "validation", request_id, tenant, outcome = "valid", duration_us)
        }
        Err(error) => tracing::info!(
            target: "validation",
            request_id,
            tenant,
            outcome = "rejected",
            code = error.code.as_str(),
            duration_us,
            message = %error.message
        ),
    }
}

/// The caller's `X-Request-Id` when it is a short printable token, otherwise a fresh one.
fn request_id(request: &HttpRequest) -> String {
    if let Some(given) = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
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
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not_ready", "tenants": 0}));
    }
    HttpResponse::Ok().json(serde_json::json!({"status": "ready", "tenants": tenants}))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .json(serde_json::json!({"error": {"code": "not_found", "message": "no such endpoint"}}))
}
