//! One validation: the tenant's current policy, the pure core, then the replay record. The
//! transports call [`Service::judge`] and [`Service::remember`] as two steps of their pipeline
//! (so an on-demand metadata fetch between them never runs on an event loop); the CLI and the
//! tests call [`Service::validate`], which does the same in one blocking call.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ops::metrics::{CertificateExpiry, Metrics, Snapshot};
use crate::saml::{self, Code, Error, Input, Request, Validated};
use crate::state::ReplayCache;
use crate::tenants::callers::Credentials;
use crate::tenants::config::Config;
use crate::tenants::{Registry, TenantConfig, TenantSet};

/// One validation request, transport independent.
#[derive(Clone, Copy, Debug)]
pub struct ValidateRequest<'a> {
    pub tenant: &'a str,
    pub saml_response: Input<'a>,
    pub expected_request_id: Option<&'a str>,
}

/// A response the core accepted, not yet recorded as used.
pub struct Accepted {
    pub validated: Validated,
    /// Until when the assertion could still be accepted: its expiry plus the tenant's skew.
    remember_until: DateTime<Utc>,
}

pub struct Service {
    tenants: Arc<Registry>,
    /// Survives reloads: an assertion accepted before a reload stays refused after it.
    replay: ReplayCache,
}

impl Service {
    pub fn new(config: &Config) -> Service {
        Service {
            tenants: Arc::new(Registry::new(config)),
            replay: ReplayCache::new(config.server.replay_cache_capacity),
        }
    }

    /// Reports metadata refreshes to `metrics`.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Service {
        self.tenants.report_to(metrics);
        self
    }

    /// The live tenants (reload, refresh, lookups).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.tenants
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

    pub fn authorize(&self, credentials: &Credentials<'_>, tenant: Option<&str>) -> Result<(), Error> {
        self.tenants.authorize(credentials, tenant)
    }

    pub fn refresh_metadata(&self, id: &str, now: DateTime<Utc>, reason: &str) -> bool {
        self.tenants.refresh_metadata(id, now, reason)
    }

    pub fn refresh_due(&self, now: DateTime<Utc>) {
        self.tenants.refresh_due(now);
    }

    pub fn warn_expiring_certificates(&self, now: DateTime<Utc>) {
        self.tenants.warn_expiring_certificates(now);
    }

    pub fn replay_entries(&self) -> u64 {
        self.replay.len()
    }

    /// The point-in-time facts metrics expose, read at `now`.
    pub fn gauges(&self, now: DateTime<Utc>) -> Snapshot {
        let mut snapshot = Snapshot { replay_entries: self.replay.len(), ..Snapshot::default() };
        for (tenant, config) in self.tenants.current().iter() {
            if let Some(loaded) = config.metadata.as_ref().and_then(|m| m.loaded_at_instant) {
                snapshot.metadata_loaded.push((tenant.to_string(), loaded.timestamp()));
            }
            for key in &config.policy.keys {
                snapshot.certificates.push(CertificateExpiry {
                    tenant: tenant.to_string(),
                    sha256_fingerprint: key.info.sha256_fingerprint.clone(),
                    seconds_until_expiry: key.not_after.map_or(0, |not_after| (not_after - now).num_seconds()),
                });
            }
        }
        snapshot
    }

    /// Runs the core at `now` against the tenant's current policy. Pure apart from reading the
    /// current generation: nothing is recorded.
    pub fn judge(&self, request: &ValidateRequest<'_>, now: DateTime<Utc>) -> Result<Accepted, Error> {
        let generation = self.tenants.current();
        let policy = &generation
            .get(request.tenant)
            .ok_or_else(|| {
                Error::new(Code::UnknownTenant, format!("no tenant {}", saml::error::quote(request.tenant)))
            })?
            .policy;
        let core_request = Request { expected_request_id: request.expected_request_id, now };
        let validated = saml::validate(request.saml_response, policy, &generation.limits, &core_request)?;
        // Remember the ID until the assertion could no longer be accepted anyway: its expiry
        // plus the skew we tolerate.
        let skew = chrono::Duration::seconds(policy.clock_skew_seconds);
        let remember_until = validated.expires_at.checked_add_signed(skew).unwrap_or(validated.expires_at);
        Ok(Accepted { validated, remember_until })
    }

    /// Whether a refusal may be cured by fetching the tenant's metadata now: a signature no
    /// known key verifies may be a key the IdP just rotated in (one rate-limited refresh).
    pub fn may_refresh_for(&self, tenant: &str, error: &Error, now: DateTime<Utc>) -> bool {
        error.code == Code::SignatureInvalid && self.tenants.claim_on_demand_refresh(tenant, now)
    }

    /// Records the accepted assertion as used; `replayed` if it already was, for any tenant:
    /// the record is keyed on the verified issuer and the assertion ID, so one stolen assertion
    /// is usable at most once across every tenant of the tier.
    pub fn remember(&self, accepted: Accepted, now: DateTime<Utc>) -> Result<Validated, Error> {
        let Accepted { validated, remember_until } = accepted;
        if !self.replay.first_use(&validated.issuer, &validated.assertion_id, now, remember_until) {
            return Err(Error::new(
                Code::Replayed,
                format!(
                    "assertion {} from this issuer was already accepted",
                    saml::error::quote(&validated.assertion_id)
                ),
            ));
        }
        Ok(validated)
    }

    /// Judges, refreshes metadata on demand (blocking: for the CLI and tests, never an event
    /// loop), and remembers.
    pub fn validate(&self, request: &ValidateRequest<'_>, now: DateTime<Utc>) -> Result<Validated, Error> {
        let accepted = match self.judge(request, now) {
            Err(error) if self.may_refresh_for(request.tenant, &error, now) => {
                if !self.tenants.refresh_metadata(request.tenant, now, "unknown signing key") {
                    return Err(error);
                }
                self.judge(request, now)?
            }
            result => result?,
        };
        self.remember(accepted, now)
    }
}
