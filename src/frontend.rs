//! What every transport does around a validation: admission control, the validation itself,
//! metrics, and the one log event. HTTP and gRPC are thin shells around this, so both give the
//! same answers, count the same way and log the same way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::metrics::{Metrics, UNKNOWN_TENANT};
use crate::pool::Pool;
use crate::saml::{Code, Error, Validated};
use crate::service::{self, Service, ValidateRequest};
use crate::wire;

pub struct Frontend {
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    in_flight: AtomicUsize,
    max_in_flight: usize,
    name_id_hash_salt: Option<String>,
    test_hook: Option<fn(&ValidateRequest<'_>)>,
    pool: Pool,
}

/// Largest SAMLResponse (base64 bytes) validated on the transport's own thread: an Entra
/// response for a user in 150 groups is about 21 KB of base64.
pub const INLINE_BYTES: usize = 32 * 1024;

/// An owned validation request, for handing to the XML pool.
pub struct OwnedRequest {
    pub tenant: String,
    pub saml_response: String,
    pub expected_request_id: Option<String>,
}

/// A slot among `max_concurrent_validations`; released on drop.
pub struct Permit<'a>(&'a Frontend);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a request in `saml_inflight_requests` from arrival to answer; released on drop.
pub struct Tracked<'a>(&'a Frontend);

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight().dec();
    }
}

impl Frontend {
    pub fn new(service: Arc<Service>, metrics: Arc<Metrics>, config: &Config) -> Frontend {
        Frontend {
            service,
            metrics,
            in_flight: AtomicUsize::new(0),
            max_in_flight: config.server.max_concurrent_validations,
            name_id_hash_salt: config.logging.debug_log_name_id_hash_salt.clone(),
            test_hook: None,
            pool: Pool::new(if config.server.workers > 0 { config.server.workers } else { cores() })
                .unwrap_or_else(|e| panic!("cannot start the XML worker threads: {e}")),
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Admits one validation, or refuses with `overloaded` instead of queueing without bound.
    pub fn admit(&self) -> Result<Permit<'_>, Error> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::new(Code::Overloaded, "too many validations in flight; retry shortly"));
        }
        Ok(Permit(self))
    }

    /// Marks a request as in flight (for the gauge) until the guard drops.
    pub fn track(&self) -> Tracked<'_> {
        self.metrics.in_flight().inc();
        Tracked(self)
    }

    /// Validates now.
    ///
    /// A panic anywhere inside (a bug, never expected on any input) becomes an `internal_error`
    /// for this request only: the worker, its other connections and the service keep running.
    /// The libxml2 document is freed by its destructor during unwinding.
    pub fn validate(&self, request: &ValidateRequest<'_>) -> Result<Validated, Error> {
        let run = || {
            if let Some(hook) = self.test_hook {
                hook(request);
            }
            self.service.validate(request, service::wall_clock())
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(target: "validation", "validation panicked; answered internal_error");
                Err(Error::new(Code::Internal, "internal error while validating; the service keeps serving"))
            }
        }
    }

    /// Validates a request. Typical responses (up to [`INLINE_BYTES`] of base64, ~150 µs of
    /// work) run right here: the hand-off to the pool would cost more than it protects.
    /// Larger documents go to the XML pool (see `pool`), so a 256 KB document never stalls the
    /// other connections of the caller's event loop.
    /// The admitted, authorized part of a request both transports share: validate, then record
    /// the outcome under the tenant's label. Returns that label with the result.
    pub async fn validate_and_record(
        self: &Arc<Self>,
        request_id: &str,
        request: OwnedRequest,
        started: Instant,
        payload_bytes: usize,
    ) -> (String, Result<Validated, Error>) {
        let tenant = self.tenant_label(&request.tenant).to_string();
        let result = self.validate_on_pool(request).await;
        self.record(request_id, &tenant, &result, started, payload_bytes);
        (tenant, result)
    }

    pub async fn validate_on_pool(self: &Arc<Self>, request: OwnedRequest) -> Result<Validated, Error> {
        if request.saml_response.len() <= INLINE_BYTES {
            let borrowed = ValidateRequest {
                tenant: &request.tenant,
                saml_response: crate::saml::Input::Base64(request.saml_response.as_bytes()),
                expected_request_id: request.expected_request_id.as_deref(),
            };
            return self.validate(&borrowed);
        }
        let frontend = self.clone();
        let work = move || {
            let borrowed = ValidateRequest {
                tenant: &request.tenant,
                saml_response: crate::saml::Input::Base64(request.saml_response.as_bytes()),
                expected_request_id: request.expected_request_id.as_deref(),
            };
            frontend.validate(&borrowed)
        };
        self.pool
            .run(work)
            .await
            .unwrap_or_else(|| Err(Error::new(Code::Internal, "the validation worker pool is unavailable")))
    }

    /// Installs a function run at the start of every validation. Tests use it to prove that a
    /// panic stays contained; production never sets one.
    #[doc(hidden)]
    pub fn with_test_hook(mut self, hook: fn(&ValidateRequest<'_>)) -> Frontend {
        self.test_hook = Some(hook);
        self
    }

    /// The tenant as a metric label and log field: configured ids only, never request content.
    pub fn tenant_label<'a>(&self, tenant: &'a str) -> &'a str {
        if self.service.has_tenant(tenant) {
            tenant
        } else {
            UNKNOWN_TENANT
        }
    }

    /// Records metrics and writes the validation's log event.
    pub fn record(
        &self,
        request_id: &str,
        tenant: &str,
        result: &Result<Validated, Error>,
        started: Instant,
        payload_bytes: usize,
    ) {
        let elapsed = started.elapsed();
        self.metrics.observe(tenant, result, elapsed, payload_bytes);
        let duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        // Never the NameID, attribute values, the message (an IdP status message can name the
        // user) or the document: tenant, outcome, stable code, duration, request id, hashes.
        match result {
            Ok(validated) => {
                let assertion_id_hash = short_hash(None, &validated.assertion_id);
                match &self.name_id_hash_salt {
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
            Err(error) => {
                tracing::info!(
                    target: "validation",
                    request_id,
                    tenant,
                    outcome = if wire::disposition(error.code).http_status == 422 { "rejected" } else { "error" },
                    code = error.code.as_str(),
                    duration_us,
                );
                // libxml2's own diagnostic (captured per thread, never printed to stderr) names
                // the markup problem, not document values; available at debug level.
                if matches!(error.code, Code::XmlMalformed | Code::EncodingUnsupported) {
                    tracing::debug!(target: "validation", request_id, parser_detail = %error.message);
                }
            }
        }
    }
}

/// First 16 hex digits of SHA-256(salt || 0 || value).
fn short_hash(salt: Option<&str>, value: &str) -> String {
    let mut hasher = openssl::sha::Sha256::new();
    if let Some(salt) = salt {
        hasher.update(salt.as_bytes());
        hasher.update(&[0]);
    }
    hasher.update(value.as_bytes());
    hasher.finish()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller's request id when it is a short printable token, otherwise a fresh random one.
pub fn request_id(given: Option<&str>) -> String {
    if let Some(given) = given {
        if !given.is_empty() && given.len() <= 128 && given.bytes().all(|b| b.is_ascii_graphic()) {
            return given.to_string();
        }
    }
    // A counter run through SipHash under a per-process random key (std's RandomState): unique
    // in practice, without a CSPRNG call per request (3 % of the server's CPU under load), and
    // without handing every caller the process's request count. Not secret, not a nonce.
    use std::hash::BuildHasher as _;
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let key = KEY.get_or_init(std::collections::hash_map::RandomState::new);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let high = key.hash_one((count, 0u8));
    let low = key.hash_one((count, 1u8));
    format!("{high:016x}{:08x}", low as u32)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}
