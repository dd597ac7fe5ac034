//! The use cases. Validation: the tenant's current policy, the pure core, an on-demand
//! metadata refresh when an unknown key may have been rotated in, then the replay record, in
//! one async function ([`Service::validate_with`]) whatever runs the core: the transports pass
//! their XML pool for large documents, the CLI and the tests judge inline
//! ([`Service::validate`]). SP-initiated login: `sp`. A metadata fetch always runs on a
//! blocking thread, never on an event loop.
//!
//! The CLI's `validate` builds its Service on the memory store whatever `[replay]` says
//! ([`Service::in_process`]): checking a saved response must never burn a real assertion in
//! production's shared store.

pub mod activity;
pub mod lifecycle;
pub mod logout;
pub mod sp;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::tenant::Availability;
use crate::config::{Config, ReplaySettings};
use crate::ops::metrics::{CertificateExpiry, Metrics, Snapshot};
use crate::saml::diagnose::Diagnosis;
use crate::saml::{self, Code, Error, Input, Request, Validated};
use crate::state::{RedisStore, ReplayCache, ReplayRecord, StoreError, StoreStatus};
use crate::tenants::{Registry, TenantConfig, TenantSet};

/// One validation request, transport independent.
#[derive(Clone, Copy, Debug)]
pub struct ValidateRequest<'a> {
    pub tenant: &'a str,
    pub saml_response: Input<'a>,
    pub expected_request_id: Option<&'a str>,
    /// The ACS URL the caller received the response on (`expected_acs_url`).
    pub expected_acs_url: Option<&'a str>,
}

/// A response the core accepted, not yet recorded as used.
pub struct Accepted {
    pub validated: Validated,
    /// Until when the assertion could still be accepted: its expiry or its maximum age, plus
    /// the tenant's skew.
    remember_until: DateTime<Utc>,
}

pub struct Service {
    tenants: Arc<Registry>,
    /// Shared with the transports: every count about this service lands in one registry.
    metrics: Arc<Metrics>,
    /// Survives reloads: an assertion accepted before a reload stays refused after it.
    replay: ReplayRecord,
    /// Recent failures and certificate use per tenant, on this replica (`activity`).
    activity: activity::Activity,
}

impl Service {
    /// The service on the replay store `[replay]` names. Connecting to a shared store happens
    /// in the background: a store that is down does not keep the service from starting.
    pub fn try_new(config: &Config, metrics: Arc<Metrics>) -> Result<Service, StoreError> {
        let replay = replay_record(&config.replay, config.server.replay_cache_capacity, &metrics)?;
        let activity =
            activity::Activity::new(config.diagnostics.failures_per_tenant, config.diagnostics.failures_total);
        Ok(Service { tenants: Arc::new(Registry::new(config, metrics.clone())), metrics, replay, activity })
    }

    /// [`Service::try_new`] for tests and tools, whose configuration was just validated (the
    /// only failures left are the store's client or thread not being created).
    pub fn new(config: &Config) -> Service {
        Service::try_new(config, Arc::new(Metrics::with_settings(&config.metrics)))
            .expect("the replay store's client or thread could not be created")
    }

    /// The service on the in-process replay cache, whatever `[replay]` says.
    pub fn in_process(config: &Config) -> Service {
        let metrics = Arc::new(Metrics::with_settings(&config.metrics));
        Service {
            tenants: Arc::new(Registry::new(config, metrics.clone())),
            metrics,
            replay: ReplayRecord::Memory(ReplayCache::new(config.server.replay_cache_capacity)),
            activity: activity::Activity::new(
                config.diagnostics.failures_per_tenant,
                config.diagnostics.failures_total,
            ),
        }
    }

    /// Where this service's counts go (metadata refreshes, tenant files, the replay store);
    /// the transports count their requests into the same registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The live tenants, for the supervisor that starts their background work (reload, the
    /// `tenants_dir` watch, the refresh loop); everything else goes through the use cases.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.tenants
    }

    /// Whether every tenant has been tried once (latched): `/readyz` and gRPC health.
    pub fn is_ready(&self) -> bool {
        self.tenants.is_ready()
    }

    /// Resolves once [`Service::is_ready`] turns true; `None` when it never will by itself (no
    /// tenant at all) or already is.
    pub fn became_ready(&self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        (!self.tenants.is_ready() && !self.tenants.is_empty()).then(|| self.tenants.wait_ready())
    }

    /// The current generation of tenants.
    pub fn tenants(&self) -> Arc<TenantSet> {
        self.tenants.current()
    }

    pub fn tenant(&self, id: &str) -> Option<Arc<TenantConfig>> {
        self.tenants.get(id)
    }

    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    pub fn has_tenant(&self, id: &str) -> bool {
        self.tenants.contains(id)
    }

    pub fn replace_tenants(&self, config: &Config) {
        self.tenants.replace(config);
    }

    pub fn refresh_metadata(&self, id: &str, now: DateTime<Utc>, reason: &str) -> bool {
        self.tenants.refresh_metadata(id, now, reason)
    }

    /// Loads every metadata that is due (all `pending` tenants first); how many were tried.
    pub fn refresh_due(&self, now: DateTime<Utc>) -> usize {
        self.tenants.refresh_due(now)
    }

    /// Starts a background round for what is due and returns at once (the refresh loop).
    pub fn start_due_refreshes(&self, now: DateTime<Utc>) {
        self.tenants.start_due_refreshes(now);
    }

    pub fn warn_expiring_certificates(&self, now: DateTime<Utc>) {
        self.tenants.warn_expiring_certificates(now);
    }

    pub fn replay_entries(&self) -> u64 {
        self.replay.len()
    }

    /// The replay store as this replica sees it (`GET /v1/replay-store`).
    pub fn replay_store(&self, now: DateTime<Utc>) -> StoreStatus {
        self.replay.status(now)
    }

    /// The point-in-time facts metrics expose, read at `now`.
    pub fn gauges(&self, now: DateTime<Utc>) -> Snapshot {
        let mut snapshot = Snapshot { replay_entries: self.replay.len(), ..Snapshot::default() };
        let generation = self.tenants.current();
        snapshot.tenant_states =
            generation.state_counts().iter().map(|(state, count)| (state.as_str(), *count)).collect();
        for (tenant, config) in generation.iter() {
            if let Some(loaded) = config.metadata.as_ref().and_then(|m| m.loaded_at_instant) {
                snapshot.metadata_loaded.push((tenant.to_string(), loaded.timestamp()));
            }
            // A notAfter that could not be read (outside chrono's range) gives no series: 0
            // would read as "expired now" and page someone for a certificate that is fine.
            for key in &config.policy.keys {
                let Some(not_after) = key.not_after else { continue };
                snapshot.certificates.push(CertificateExpiry {
                    tenant: tenant.to_string(),
                    sha256_fingerprint: key.info.sha256_fingerprint.clone(),
                    seconds_until_expiry: (not_after - now).num_seconds(),
                });
            }
        }
        snapshot
    }

    /// Runs the core at `now` against the tenant's current policy. Pure apart from reading the
    /// current generation: nothing is recorded.
    pub fn judge(&self, request: &ValidateRequest<'_>, now: DateTime<Utc>) -> Result<Accepted, Error> {
        let generation = self.tenants.current();
        let tenant = usable(&generation, request.tenant)?;
        let policy = &tenant.policy;
        let core_request = Request {
            expected_request_id: request.expected_request_id,
            expected_acs_url: request.expected_acs_url,
            now,
        };
        let validated = saml::validate(request.saml_response, policy, &generation.limits, &core_request)?;
        // Remember the ID until the assertion could no longer be accepted anyway: its expiry or
        // its maximum age, whichever comes first, plus the skew we tolerate.
        let skew = chrono::Duration::seconds(policy.clock_skew_seconds);
        let max_age = chrono::Duration::seconds(generation.limits.max_assertion_age_seconds);
        let last =
            validated.expires_at.min(validated.issued_at.checked_add_signed(max_age).unwrap_or(validated.expires_at));
        let remember_until = last.checked_add_signed(skew).unwrap_or(last);
        Ok(Accepted { validated, remember_until })
    }

    /// Explains the response against the tenant's current policy at `now`: every check, expected
    /// and found, the certificates. Records nothing and returns no claims (see
    /// [`saml::diagnose`]); the same typed errors as [`Service::judge`] for bad input.
    pub fn diagnose(&self, request: &ValidateRequest<'_>, now: DateTime<Utc>) -> Result<Diagnosis, Error> {
        let generation = self.tenants.current();
        let tenant = usable(&generation, request.tenant)?;
        let core_request = Request {
            expected_request_id: request.expected_request_id,
            expected_acs_url: request.expected_acs_url,
            now,
        };
        let diagnosis =
            saml::diagnose::diagnose(request.saml_response, &tenant.policy, &generation.limits, &core_request);
        self.metrics.diagnosis(match &diagnosis {
            Ok(d) if d.verdict.is_none() => "passes",
            Ok(_) => "fails",
            Err(_) => "error",
        });
        diagnosis
    }

    /// Fetches the tenant's metadata now when `error` may be cured by it: a signature no known
    /// key verifies may be a key the IdP just rotated in (one rate-limited refresh per tenant).
    /// The fetch can take `timeout_seconds`, so it runs on a blocking thread: the caller's event
    /// loop goes on serving its other connections. True when judging again may now succeed.
    pub async fn refresh_for(&self, tenant: &str, error: &Error, now: DateTime<Utc>) -> bool {
        if error.code != Code::SignatureInvalid || !self.tenants.claim_on_demand_refresh(tenant, now) {
            return false;
        }
        let (registry, tenant) = (self.tenants.clone(), tenant.to_string());
        let refresh = move || registry.refresh_metadata(&tenant, now, "unknown signing key");
        tokio::task::spawn_blocking(refresh).await.unwrap_or(false)
    }

    /// Records the accepted assertion as used; `replayed` if it already was, for any tenant:
    /// the record is keyed on the verified issuer and the assertion ID, so one stolen assertion
    /// is usable at most once across every tenant of the tier. A store that cannot record the use answers `replay_store_unavailable`: never accepted
    /// unrecorded.
    pub async fn remember(&self, accepted: Accepted, now: DateTime<Utc>) -> Result<Validated, Error> {
        let Accepted { validated, remember_until } = accepted;
        let fresh = self
            .replay
            .first_use(&validated.issuer, &validated.assertion_id, validated.issued_at, now, remember_until)
            .await?;
        refuse_replay(validated, fresh)
    }

    /// The validation use case: judge, refresh the tenant's metadata once when an unknown key
    /// may have been rotated in and judge again, then remember the assertion as used. `judge`
    /// runs the core ([`Service::judge`]) wherever the caller runs heavy work: inline, or on the
    /// transports' XML pool. Needs a tokio runtime (the refresh runs on a blocking thread).
    pub async fn validate_with<F, J>(&self, tenant: &str, now: DateTime<Utc>, judge: J) -> Result<Validated, Error>
    where
        J: Fn() -> F,
        F: std::future::Future<Output = Result<Accepted, Error>>,
    {
        let accepted = match judge().await {
            Err(error) if self.refresh_for(tenant, &error, now).await => judge().await?,
            result => result?,
        };
        let validated = self.remember(accepted, now).await?;
        // Only a login accepted in full counts as the certificate's use.
        self.activity.record_use(&self.tenants, tenant, &validated.signing_key_sha256, now);
        Ok(validated)
    }

    /// [`Service::validate_with`], judging on the caller's thread (the CLI, tests).
    pub async fn validate(&self, request: &ValidateRequest<'_>, now: DateTime<Utc>) -> Result<Validated, Error> {
        self.validate_with(request.tenant, now, || std::future::ready(self.judge(request, now))).await
    }
}

/// The tenant, if it can judge logins now. A tenant whose trust is not loaded answers
/// `tenant_unavailable` rather than judging with partial trust (which would turn a dead
/// metadata endpoint into `signature_invalid` verdicts about genuine responses).
fn usable<'a>(generation: &'a TenantSet, id: &str) -> Result<&'a Arc<TenantConfig>, Error> {
    let Some(tenant) = generation.get(id) else {
        return Err(match generation.refusal(id) {
            Some(refusal) => Error::new(
                Code::TenantUnavailable,
                format!("tenant file {} was refused and no good version was loaded before", refusal.file),
            ),
            None => Error::new(Code::UnknownTenant, format!("no tenant {}", saml::error::quote(id))),
        });
    };
    match tenant.availability() {
        Availability::Ok => Ok(tenant),
        Availability::Pending => {
            Err(Error::new(Code::TenantUnavailable, "the tenant's metadata has not been loaded yet"))
        }
        Availability::Unavailable => Err(Error::new(
            Code::TenantUnavailable,
            "the tenant's metadata_url has never loaded (retried with backoff; see GET /v1/tenants/{id})",
        )),
    }
}

fn refuse_replay(validated: Validated, fresh: bool) -> Result<Validated, Error> {
    if !fresh {
        return Err(Error::new(
            Code::Replayed,
            format!("assertion {} from this issuer was already accepted", saml::error::quote(&validated.assertion_id)),
        ));
    }
    Ok(validated)
}

fn replay_record(settings: &ReplaySettings, capacity: u64, metrics: &Arc<Metrics>) -> Result<ReplayRecord, StoreError> {
    let Some(redis) = &settings.redis else {
        return Ok(ReplayRecord::Memory(ReplayCache::new(capacity)));
    };
    let store = RedisStore::new(redis, settings.max_assertion_age_seconds, metrics.clone())?;
    let fallback = redis.allow_memory_fallback_when_unavailable.then(|| {
        tracing::warn!(
            target: "replay_store",
            "RELAXATION [replay] allow_memory_fallback_when_unavailable = true: while the shared store is unavailable, replays to other replicas are accepted"
        );
        ReplayCache::new(capacity)
    });
    Ok(ReplayRecord::Shared { store, fallback })
}
