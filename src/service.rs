//! The validation service: tenant registry, replay cache and the one read of the wall clock,
//! wrapped around the pure core. Transports (HTTP, CLI) call [`Service::validate`].

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::auth::Callers;
use crate::config::{Config, TenantConfig};
use crate::metadata_fetch::{Fetcher, MetadataSettings};
use crate::metrics::Metrics;
use crate::replay::ReplayCache;
use crate::saml::{self, Code, Error, Input, Limits, Request, Validated};

/// The only place the service reads the wall clock; the core always receives `now`.
pub fn wall_clock() -> DateTime<Utc> {
    Utc::now()
}

/// One validation request, transport independent.
#[derive(Clone, Copy, Debug)]
pub struct ValidateRequest<'a> {
    pub tenant: &'a str,
    pub saml_response: Input<'a>,
    pub expected_request_id: Option<&'a str>,
}

/// One consistent generation of the tenant configuration, replaced whole on reload: a request
/// validates entirely against the generation it started with.
pub struct TenantSet {
    pub(crate) tenants: HashMap<String, Arc<TenantConfig>>,
    limits: Limits,
    pub(crate) metadata: MetadataSettings,
    pub(crate) fetcher: Arc<Fetcher>,
    callers: Callers,
}

impl TenantSet {
    fn new(config: &Config) -> TenantSet {
        TenantSet {
            tenants: config.tenants.iter().map(|t| (t.id.clone(), Arc::new(t.clone()))).collect(),
            limits: config.limits.clone(),
            metadata: config.metadata.clone(),
            fetcher: Arc::new(Fetcher::new(&config.metadata)),
            callers: config.callers.clone(),
        }
    }

    /// The same generation with one tenant replaced (metadata refreshes).
    pub(crate) fn with_tenant(&self, tenant: TenantConfig) -> TenantSet {
        let mut tenants = self.tenants.clone();
        tenants.insert(tenant.id.clone(), Arc::new(tenant));
        TenantSet {
            tenants,
            limits: self.limits.clone(),
            metadata: self.metadata.clone(),
            fetcher: self.fetcher.clone(),
            callers: self.callers.clone(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &TenantConfig)> {
        self.tenants.iter().map(|(id, tenant)| (id.as_str(), tenant.as_ref()))
    }
}

pub struct Service {
    pub(crate) current: ArcSwap<TenantSet>,
    /// Survives reloads: an assertion accepted before a reload stays refused after it.
    replay: ReplayCache,
    /// Last on-demand metadata refresh per tenant (rate limit).
    pub(crate) on_demand: std::sync::Mutex<HashMap<String, DateTime<Utc>>>,
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// Parsed metadata by (tenant, document, verification policy) digest: see refresh.rs.
    pub(crate) metadata_cache: moka::sync::Cache<[u8; 32], Arc<crate::saml::metadata::IdpMetadata>>,
}

impl Service {
    pub fn new(config: &Config) -> Service {
        Service {
            current: ArcSwap::from_pointee(TenantSet::new(config)),
            replay: ReplayCache::new(config.server.replay_cache_capacity),
            on_demand: std::sync::Mutex::new(HashMap::new()),
            metrics: None,
            metadata_cache: moka::sync::Cache::builder()
                .max_capacity(4096)
                .time_to_live(std::time::Duration::from_secs(86_400))
                .build(),
        }
    }

    /// Reports metadata refreshes to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Service {
        self.metrics = Some(metrics);
        self
    }

    /// Atomically replaces the tenants and limits. In-flight validations finish on the
    /// generation they started with.
    pub fn replace_tenants(&self, config: &Config) {
        self.current.store(Arc::new(TenantSet::new(config)));
    }

    /// The current generation.
    pub fn tenants(&self) -> Arc<TenantSet> {
        self.current.load_full()
    }

    pub fn tenant_count(&self) -> usize {
        self.current.load().tenants.len()
    }

    pub fn replay_entries(&self) -> u64 {
        self.replay.len()
    }

    /// Everything configured for one tenant (for `GET /v1/tenants/{id}`).
    pub fn tenant(&self, id: &str) -> Option<Arc<TenantConfig>> {
        self.current.load().tenants.get(id).cloned()
    }

    /// Caller authentication against the current configuration (see `auth`).
    pub fn authorize(&self, credentials: &crate::auth::Credentials<'_>, tenant: Option<&str>) -> Result<(), Error> {
        self.current.load().callers.authorize(credentials, tenant).map(|_| ())
    }

    pub fn has_tenant(&self, id: &str) -> bool {
        self.current.load().tenants.contains_key(id)
    }

    /// Validates at `now`, then records the assertion ID so that the same assertion is refused
    /// (`replayed`) until it expires.
    pub fn validate(&self, request: &ValidateRequest<'_>, now: DateTime<Utc>) -> Result<Validated, Error> {
        let mut generation = self.current.load_full();
        let core_request = Request { expected_request_id: request.expected_request_id, now };
        let attempt = |generation: &TenantSet| {
            let policy = &generation
                .tenants
                .get(request.tenant)
                .ok_or_else(|| {
                    Error::new(Code::UnknownTenant, format!("no tenant {}", saml::error::quote(request.tenant)))
                })?
                .policy;
            saml::validate(request.saml_response, policy, &generation.limits, &core_request)
        };
        let mut result = attempt(&generation);
        // A signature no known key verifies may be a key the IdP just rotated in: one
        // rate-limited metadata refresh, then one more try (issue: fresh Entra rotations).
        if matches!(&result, Err(e) if e.code == Code::SignatureInvalid) && self.refresh_on_demand(request.tenant, now)
        {
            generation = self.current.load_full();
            result = attempt(&generation);
        }
        let validated = result?;
        let policy = &generation
            .tenants
            .get(request.tenant)
            .ok_or_else(|| Error::new(Code::Internal, "tenant vanished"))?
            .policy;
        // Remember the ID until the assertion could no longer be accepted anyway: its expiry
        // plus the skew we tolerate.
        let skew = chrono::Duration::seconds(policy.clock_skew_seconds);
        let remember_until = validated.expires_at.checked_add_signed(skew).unwrap_or(validated.expires_at);
        if !self.replay.first_use(request.tenant, &validated.assertion_id, now, remember_until) {
            return Err(Error::new(
                Code::Replayed,
                format!(
                    "assertion {} was already accepted for this tenant",
                    saml::error::quote(&validated.assertion_id)
                ),
            ));
        }
        Ok(validated)
    }
}
