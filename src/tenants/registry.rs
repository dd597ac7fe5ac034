//! The live tenants: one generation of the configuration at a time, swapped atomically on
//! reload and on each metadata refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use super::callers::{Callers, Credentials};
use super::config::{Config, TenantConfig};
use super::fetch::{Fetcher, MetadataSettings};
use crate::ops::metrics::Metrics;
use crate::saml::metadata::IdpMetadata;
use crate::saml::Limits;

/// One consistent generation of the tenant configuration, replaced whole on reload: a request
/// validates entirely against the generation it started with.
pub struct TenantSet {
    pub(crate) tenants: HashMap<String, Arc<TenantConfig>>,
    pub limits: Limits,
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

    pub fn get(&self, id: &str) -> Option<&Arc<TenantConfig>> {
        self.tenants.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &TenantConfig)> {
        self.tenants.iter().map(|(id, tenant)| (id.as_str(), tenant.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

/// The live tenants: the current generation (swapped atomically on reload and on each metadata
/// refresh), and what metadata refresh remembers between generations.
pub struct Registry {
    pub(crate) current: ArcSwap<TenantSet>,
    /// Last on-demand metadata refresh per tenant (rate limit).
    pub(crate) on_demand: Mutex<HashMap<String, DateTime<Utc>>>,
    pub(crate) metrics: OnceLock<Arc<Metrics>>,
    /// Parsed metadata by (tenant, document, verification policy) digest: see refresh.rs.
    pub(crate) metadata_cache: moka::sync::Cache<[u8; 32], Arc<IdpMetadata>>,
}

impl Registry {
    pub fn new(config: &Config) -> Registry {
        Registry {
            current: ArcSwap::from_pointee(TenantSet::new(config)),
            on_demand: Mutex::new(HashMap::new()),
            metrics: OnceLock::new(),
            metadata_cache: moka::sync::Cache::builder()
                .max_capacity(4096)
                .time_to_live(std::time::Duration::from_secs(86_400))
                .build(),
        }
    }

    /// Reports metadata refreshes to `metrics` from now on (set once, at start-up).
    pub fn report_to(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Atomically replaces the tenants and limits. In-flight validations finish on the
    /// generation they started with.
    pub fn replace(&self, config: &Config) {
        self.current.store(Arc::new(TenantSet::new(config)));
    }

    /// The current generation.
    pub fn current(&self) -> Arc<TenantSet> {
        self.current.load_full()
    }

    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.load().is_empty()
    }

    /// Everything configured for one tenant (for `GET /v1/tenants/{id}`).
    pub fn get(&self, id: &str) -> Option<Arc<TenantConfig>> {
        self.current.load().tenants.get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.current.load().tenants.contains_key(id)
    }

    /// Caller authentication against the current configuration (see `callers`).
    pub fn authorize(&self, credentials: &Credentials<'_>, tenant: Option<&str>) -> Result<(), crate::saml::Error> {
        self.current.load().callers.authorize(credentials, tenant).map(|_| ())
    }
}
