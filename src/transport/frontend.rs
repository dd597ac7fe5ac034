//! The request pipeline both transports run: caller authentication → receive (size limit) →
//! admission → decode → tenant authorization → validation → replay record, then metrics and the
//! one log event, exactly once per request whichever step ended it. HTTP and gRPC are thin
//! shells that supply the credentials and a way to receive the request, so both give the same
//! answers in the same order, count the same way and log the same way.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::auth::{self, Credentials};
use super::pool::Pool;
use super::wire;
use crate::config::Config;
use crate::ops::metrics::{Metrics, UNKNOWN_TENANT};
use crate::ops::wall_clock;
use crate::saml::{Code, Error, Input, Validated};
use crate::service::logout::{LogoutValidBody, ValidateLogoutParams};
use crate::service::{Accepted, Service, ValidateRequest};

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
    /// The base64 text; over HTTP a slice of the received body itself when its JSON string
    /// needed no unescaping, so the 8 KB or more are not copied once more (issue 32).
    pub saml_response: bytes::Bytes,
    pub expected_request_id: Option<String>,
    pub expected_acs_url: Option<String>,
}

impl OwnedRequest {
    fn borrow(&self) -> ValidateRequest<'_> {
        ValidateRequest {
            tenant: &self.tenant,
            saml_response: Input::Base64(&self.saml_response),
            expected_request_id: self.expected_request_id.as_deref(),
            expected_acs_url: self.expected_acs_url.as_deref(),
        }
    }
}

/// How a transport gets its request into the pipeline.
pub trait Incoming {
    /// Receives the request within the size limit; returns its size in bytes. HTTP reads the
    /// body here (after the caller was authenticated); gRPC's message has already arrived.
    fn receive(&mut self) -> impl Future<Output = Result<usize, Error>>;
    /// Decodes what was received (after admission).
    fn decode(self) -> Result<OwnedRequest, Error>;
}

/// What the pipeline learned before it ended, for the metrics and the log event.
struct Facts {
    payload_bytes: usize,
    /// A configured tenant id the caller may use, or [`UNKNOWN_TENANT`].
    tenant: String,
}

/// A slot among `max_concurrent_validations`; released on drop.
pub struct Permit<'a>(&'a Frontend);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a request in `saml_inflight_requests` from arrival to answer; released on drop.
struct Tracked<'a>(&'a Frontend);

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight().dec();
    }
}

impl Frontend {
    /// The pipeline around `service`; fails only when the XML worker threads cannot start.
    pub fn new(service: Arc<Service>, config: &Config) -> std::io::Result<Frontend> {
        let metrics = service.metrics().clone();
        let pool = Pool::new(if config.server.workers > 0 { config.server.workers } else { super::cores() })?;
        Ok(Frontend {
            service,
            metrics,
            in_flight: AtomicUsize::new(0),
            max_in_flight: config.server.max_concurrent_validations,
            name_id_hash_salt: config.logging.debug_log_name_id_hash_salt.clone(),
            test_hook: None,
            pool,
        })
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Runs one request through the whole pipeline. Returns the tenant label (a configured id
    /// or [`UNKNOWN_TENANT`]) with the result; metrics and the log event are already written.
    pub async fn handle(
        self: &Arc<Self>,
        request_id: &str,
        credentials: &Credentials<'_>,
        incoming: impl Incoming,
    ) -> (String, Result<Validated, Error>) {
        let started = crate::ops::monotonic();
        self.metrics.in_flight().inc();
        let _tracked = Tracked(self);
        let mut facts = Facts { payload_bytes: 0, tenant: UNKNOWN_TENANT.to_string() };
        let result = self.pipeline(credentials, incoming, &mut facts).await;
        self.record(request_id, &facts.tenant, &result, started, facts.payload_bytes);
        (facts.tenant, result)
    }

    async fn pipeline(
        self: &Arc<Self>,
        credentials: &Credentials<'_>,
        mut incoming: impl Incoming,
        facts: &mut Facts,
    ) -> Result<Validated, Error> {
        // Unauthenticated callers are refused before their request is read; the caller found
        // is then authorized for the tenant the request names, without authenticating again.
        let generation = self.service.tenants();
        let caller = auth::authenticate(generation.callers(), credentials)?;
        facts.payload_bytes = incoming.receive().await?;
        let _permit = self.admit()?;
        let request = incoming.decode()?;
        caller.may_use(&request.tenant)?;
        if self.service.has_tenant(&request.tenant) {
            facts.tenant.clone_from(&request.tenant);
        }
        self.validate(request).await
    }

    /// `POST /v1/diagnose` and gRPC `Diagnose`: authenticated, admitted and read like a
    /// validation, then explained on the XML pool (it verifies the signature once per
    /// configured key), never recorded and never counted as a validation.
    pub async fn diagnose(
        self: &Arc<Self>,
        credentials: &Credentials<'_>,
        mut incoming: impl Incoming,
    ) -> Result<crate::saml::diagnose::Diagnosis, Error> {
        let generation = self.service.tenants();
        let caller = auth::authenticate(generation.callers(), credentials)?;
        incoming.receive().await?;
        let _permit = self.admit()?;
        let request = incoming.decode()?;
        caller.may_use(&request.tenant)?;
        self.explain_admitted(request).await
    }

    /// The diagnosis of a request its adapter already authorized (the admin page: its own
    /// token), admitted like a validation and run on the XML pool.
    pub async fn explain(self: &Arc<Self>, request: OwnedRequest) -> Result<crate::saml::diagnose::Diagnosis, Error> {
        let _permit = self.admit()?;
        self.explain_admitted(request).await
    }

    async fn explain_admitted(
        self: &Arc<Self>,
        request: OwnedRequest,
    ) -> Result<crate::saml::diagnose::Diagnosis, Error> {
        let request = Arc::new(request);
        let (frontend, now) = (self.clone(), wall_clock());
        self.pool
            .run(move || frontend.service.diagnose(&request.borrow(), now))
            .await
            .unwrap_or_else(|| Err(Error::new(Code::Internal, "the validation worker pool is unavailable")))
    }

    /// Admits one validation, or refuses with `overloaded` instead of queueing without bound.
    fn admit(&self) -> Result<Permit<'_>, Error> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::new(Code::Overloaded, "too many validations in flight; retry shortly"));
        }
        Ok(Permit(self))
    }

    /// The service's validation use case, with the core run here or on the XML pool.
    async fn validate(self: &Arc<Self>, request: OwnedRequest) -> Result<Validated, Error> {
        let request = Arc::new(request);
        let now = wall_clock();
        self.service.validate_with(&request.tenant, now, || self.judge(&request, now)).await
    }

    /// Typical responses (up to [`INLINE_BYTES`] of base64, ~150 µs of work) are judged right
    /// here: the hand-off to the pool would cost more than it protects. Larger documents go to
    /// the XML pool (see `pool`), so a 256 KB document never stalls the other connections of
    /// the caller's event loop.
    async fn judge(self: &Arc<Self>, request: &Arc<OwnedRequest>, now: DateTime<Utc>) -> Result<Accepted, Error> {
        if request.saml_response.len() <= INLINE_BYTES {
            return self.judge_here(request, now);
        }
        let (frontend, request) = (self.clone(), request.clone());
        self.pool
            .run(move || frontend.judge_here(&request, now))
            .await
            .unwrap_or_else(|| Err(Error::new(Code::Internal, "the validation worker pool is unavailable")))
    }

    /// A panic anywhere inside (a bug, never expected on any input) becomes an `internal_error`
    /// for this request only: the worker, its other connections and the service keep running.
    /// The libxml2 document is freed by its destructor during unwinding.
    fn judge_here(&self, request: &OwnedRequest, now: DateTime<Utc>) -> Result<Accepted, Error> {
        let request = request.borrow();
        let run = || {
            if let Some(hook) = self.test_hook {
                hook(&request);
            }
            self.service.judge(&request, now)
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(target: "validation", "validation panicked; answered internal_error");
                Err(Error::new(Code::Internal, "internal error while validating; the service keeps serving"))
            }
        }
    }

    /// `POST /v1/logout/validate` and `ValidateLogout`, after the transport authorized the
    /// caller for the tenant: admission, the core inline or on the XML pool as for logins, the
    /// replay record, then the count in `saml_logout_validations_total` and one log event.
    pub async fn validate_logout(
        self: &Arc<Self>,
        request_id: &str,
        params: ValidateLogoutParams,
    ) -> Result<LogoutValidBody, Error> {
        let result = self.logout_pipeline(params).await;
        self.count_logout(request_id, result.as_ref().err());
        result
    }

    /// A logout validation the transport refused before the pipeline (caller not allowed,
    /// body not parsed, message too large): counted and logged like any other, so a flood of
    /// refusals shows in `saml_logout_validations_total`.
    pub fn refused_logout(&self, request_id: &str, error: Error) -> Error {
        self.count_logout(request_id, Some(&error));
        error
    }

    fn count_logout(&self, request_id: &str, error: Option<&Error>) {
        let (outcome, code) = match error {
            None => ("valid", "none"),
            Some(error) => {
                let disposition = wire::disposition(error.code);
                (disposition.outcome.as_str(), disposition.metric_label)
            }
        };
        self.metrics.observe_logout(outcome, code);
        tracing::info!(target: "validation", request_id, kind = "logout", outcome, code);
    }

    async fn logout_pipeline(self: &Arc<Self>, params: ValidateLogoutParams) -> Result<LogoutValidBody, Error> {
        let _permit = self.admit()?;
        let now = wall_clock();
        let size = [&params.query, &params.saml_request, &params.saml_response]
            .iter()
            .map(|v| v.as_ref().map_or(0, String::len))
            .sum::<usize>();
        let params = Arc::new(params);
        // A Redirect message is DEFLATEd: its size says nothing of the document's, so only a
        // small POST message is judged on the event loop. A panic is contained as for logins.
        let judge = move |frontend: &Frontend, params: &ValidateLogoutParams| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| frontend.service.judge_logout(params, now)))
                .unwrap_or_else(|_| {
                    tracing::error!(target: "validation", "logout validation panicked; answered internal_error");
                    Err(Error::new(Code::Internal, "internal error while validating; the service keeps serving"))
                })
        };
        let checked = if size <= INLINE_BYTES && params.query.is_none() {
            judge(self, &params)?
        } else {
            let (frontend, moved) = (self.clone(), params.clone());
            self.pool
                .run(move || judge(&frontend, &moved))
                .await
                .unwrap_or_else(|| Err(Error::new(Code::Internal, "the validation worker pool is unavailable")))?
        };
        self.service.remember_logout(&params.tenant, checked, now).await
    }

    /// Installs a function run at the start of every validation. Tests use it to prove that a
    /// panic stays contained; production never sets one.
    #[doc(hidden)]
    pub fn with_test_hook(mut self, hook: fn(&ValidateRequest<'_>)) -> Frontend {
        self.test_hook = Some(hook);
        self
    }

    /// Prometheus exposition with the gauges read now.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.service.gauges(wall_clock()))
    }

    /// Records metrics and writes the validation's log event.
    fn record(
        &self,
        request_id: &str,
        tenant: &str,
        result: &Result<Validated, Error>,
        started: Instant,
        payload_bytes: usize,
    ) {
        let elapsed = started.elapsed();
        let (outcome, code) = match result {
            Ok(_) => ("valid", "none"),
            Err(error) => {
                let disposition = wire::disposition(error.code);
                (disposition.outcome.as_str(), disposition.metric_label)
            }
        };
        self.metrics.observe(tenant, outcome, code, elapsed, payload_bytes);
        if let (Err(error), true) = (result, tenant != UNKNOWN_TENANT) {
            self.service.record_failure(tenant, request_id, error, wall_clock());
        }
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
                    outcome,
                    code,
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
    crate::saml::hex::lower(&hasher.finish()[..8])
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
