//! The live tenants: one generation of the configuration at a time, swapped atomically on
//! reload, on each `tenants_dir` change and on each metadata refresh round.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use super::fetch::Fetcher;
use crate::config::callers::Callers;
use crate::config::directory::FileVersion;
use crate::config::files::TenantFilePaths;
use crate::config::tenant::Availability;
use crate::config::MetadataSettings;
use crate::config::{Config, TenantConfig};
use crate::ops::metrics::Metrics;
use crate::saml::metadata::IdpMetadata;
use crate::saml::Limits;

/// A tenant file that was refused, shown at `GET /v1/tenants/{id}` as `config_error`. The
/// tenant's last good version, if it ever had one, keeps serving.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileProblem {
    pub file: String,
    pub problems: Vec<String>,
    /// When it was refused (RFC 3339).
    pub refused_at: String,
}

/// A tenant's state as `GET /v1/tenants/{id}`, `/readyz` and `saml_tenants{state}` show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantState {
    Ok,
    Pending,
    Unavailable,
    /// Its file was refused (a last good version may still be serving).
    ConfigError,
}

impl TenantState {
    pub const ALL: [TenantState; 4] =
        [TenantState::Ok, TenantState::Pending, TenantState::Unavailable, TenantState::ConfigError];

    pub const fn as_str(self) -> &'static str {
        match self {
            TenantState::Ok => "ok",
            TenantState::Pending => "pending",
            TenantState::Unavailable => "unavailable",
            TenantState::ConfigError => "config_error",
        }
    }
}

/// One consistent generation of the tenant configuration: a request validates entirely
/// against the generation it started with.
pub struct TenantSet {
    pub(crate) tenants: HashMap<String, Arc<TenantConfig>>,
    /// Refused tenant files by id.
    pub(crate) refused: HashMap<String, Arc<FileProblem>>,
    pub limits: Limits,
    pub(crate) metadata: MetadataSettings,
    pub(crate) fetcher: Arc<Fetcher>,
    callers: Callers,
    pub(crate) tenants_dir: Option<PathBuf>,
    pub(crate) tenant_file_paths: TenantFilePaths,
    /// The main file's `[[tenants]]` ids: a tenant file may not take one over.
    pub(crate) inline_ids: Arc<HashSet<String>>,
}

impl TenantSet {
    /// The generation `config` describes. Tenants also in `previous` keep their loaded
    /// metadata when its source is unchanged (a reload never sends them back to `pending`),
    /// and a refused file keeps the previous good version of its tenant.
    fn new(config: &Config, previous: Option<&TenantSet>) -> TenantSet {
        let now = config.loaded_at;
        let mut tenants = HashMap::with_capacity(config.tenants.len());
        for tenant in &config.tenants {
            let mut tenant = tenant.clone();
            if let Some(before) = previous.and_then(|p| p.tenants.get(&tenant.id)) {
                tenant.carry_metadata_from(before);
            }
            tenants.insert(tenant.id.clone(), Arc::new(tenant));
        }
        let mut refused = HashMap::new();
        for (id, problems) in &config.tenant_file_errors {
            if let Some(before) = previous.and_then(|p| p.tenants.get(id)) {
                tenants.entry(id.clone()).or_insert_with(|| before.clone());
            }
            refused.insert(id.clone(), Arc::new(file_problem(id, problems.clone(), now)));
        }
        TenantSet {
            tenants,
            refused,
            limits: config.limits.clone(),
            metadata: config.metadata.clone(),
            fetcher: Arc::new(Fetcher::new(&config.metadata)),
            callers: config.callers.clone(),
            tenants_dir: config.tenants_dir.clone(),
            tenant_file_paths: config.tenant_file_paths.clone(),
            inline_ids: Arc::new(config.inline_tenant_ids.clone()),
        }
    }

    /// The same generation with `updates` applied: a tenant replaced (`Some`) or removed
    /// (`None`), and file refusals set or cleared.
    pub(crate) fn with_changes(
        &self,
        updates: impl IntoIterator<Item = (String, Option<Arc<TenantConfig>>)>,
        refusals: impl IntoIterator<Item = (String, Option<Arc<FileProblem>>)>,
    ) -> TenantSet {
        let mut tenants = self.tenants.clone();
        for (id, tenant) in updates {
            match tenant {
                Some(tenant) => tenants.insert(id, tenant),
                None => tenants.remove(&id),
            };
        }
        let mut refused = self.refused.clone();
        for (id, problem) in refusals {
            match problem {
                Some(problem) => refused.insert(id, problem),
                None => refused.remove(&id),
            };
        }
        TenantSet {
            tenants,
            refused,
            limits: self.limits.clone(),
            metadata: self.metadata.clone(),
            fetcher: self.fetcher.clone(),
            callers: self.callers.clone(),
            tenants_dir: self.tenants_dir.clone(),
            tenant_file_paths: self.tenant_file_paths.clone(),
            inline_ids: self.inline_ids.clone(),
        }
    }

    /// `[[callers]]` of this generation (checked by `transport::auth`).
    pub fn callers(&self) -> &Callers {
        &self.callers
    }

    pub fn get(&self, id: &str) -> Option<&Arc<TenantConfig>> {
        self.tenants.get(id)
    }

    /// The refusal of the tenant's file, if its last change was refused.
    pub fn refusal(&self, id: &str) -> Option<&Arc<FileProblem>> {
        self.refused.get(id)
    }

    pub fn state(&self, id: &str) -> Option<TenantState> {
        if self.refused.contains_key(id) {
            return Some(TenantState::ConfigError);
        }
        self.tenants.get(id).map(|tenant| match tenant.availability() {
            Availability::Ok => TenantState::Ok,
            Availability::Pending => TenantState::Pending,
            Availability::Unavailable => TenantState::Unavailable,
        })
    }

    /// How many tenants are in each state (every state listed). A tenant refused and never
    /// good counts once, as `config_error`.
    pub fn state_counts(&self) -> [(TenantState, usize); 4] {
        let mut counts = TenantState::ALL.map(|state| (state, 0));
        let ids = self.tenants.keys().chain(self.refused.keys().filter(|id| !self.tenants.contains_key(*id)));
        for id in ids {
            if let Some(state) = self.state(id) {
                counts[state as usize].1 += 1;
            }
        }
        counts
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

pub(crate) fn file_problem(id: &str, problems: Vec<String>, now: DateTime<Utc>) -> FileProblem {
    FileProblem { file: format!("{id}.toml"), problems, refused_at: crate::saml::time::format(now) }
}

/// The live tenants: the current generation (swapped atomically), and what refreshes and
/// directory rescans remember between generations.
pub struct Registry {
    pub(crate) current: ArcSwap<TenantSet>,
    /// Serializes the writers that derive a generation from the files (full reloads and
    /// `tenants_dir` rescans), holding the directory's files as last read. Metadata installs
    /// do not take it: they replace single tenants by compare-and-swap.
    pub(crate) files: Mutex<BTreeMap<String, FileVersion>>,
    /// Last on-demand metadata refresh per tenant (rate limit).
    pub(crate) on_demand: Mutex<HashMap<String, DateTime<Utc>>>,
    pub(crate) metrics: Arc<Metrics>,
    /// Parsed metadata by (document, verification policy) digest: see refresh.rs.
    pub(crate) metadata_cache: moka::sync::Cache<[u8; 32], Arc<IdpMetadata>>,
    /// Fetch slots and the URLs scheduled rounds hold (pool.rs).
    pub(crate) fetches: super::pool::FetchPool,
    /// Latches true once every tenant has been tried (no `pending` tenant left).
    ready: tokio::sync::watch::Sender<bool>,
    /// Set when a change may have made metadata due (a tenant added), to wake the refresh
    /// loop before its next tick.
    refresh_wanted: (Mutex<bool>, std::sync::Condvar),
}

impl Registry {
    /// The tenants of `config`. Nothing is fetched: `metadata_url` tenants are `pending` until
    /// [`Registry::refresh_due`] runs.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Registry {
        let registry = Registry {
            current: ArcSwap::from_pointee(TenantSet::new(config, None)),
            files: Mutex::new(config.tenant_files.clone()),
            on_demand: Mutex::new(HashMap::new()),
            metrics,
            metadata_cache: moka::sync::Cache::builder()
                .max_capacity(4096)
                .time_to_live(std::time::Duration::from_secs(86_400))
                .build(),
            fetches: super::pool::FetchPool::default(),
            ready: tokio::sync::watch::Sender::new(false),
            refresh_wanted: (Mutex::new(false), std::sync::Condvar::new()),
        };
        registry.update_readiness();
        registry
    }

    /// Atomically replaces the tenants and limits. In-flight validations finish on the
    /// generation they started with; unchanged metadata tenants keep their keys.
    pub fn replace(&self, config: &Config) {
        self.install_config(self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner), config);
    }

    /// Reads a configuration with `load` and installs it, both under the lock directory rescans
    /// take: a rescan can neither slip between the read and the install (its newer view of a
    /// file would be overwritten by the older one read here) nor land after it.
    pub fn load_and_replace<E>(&self, load: impl FnOnce() -> Result<Config, E>) -> Result<Config, E> {
        let files = self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let config = load()?;
        self.install_config(files, &config);
        Ok(config)
    }

    fn install_config(&self, mut files: std::sync::MutexGuard<'_, BTreeMap<String, FileVersion>>, config: &Config) {
        self.current.rcu(|current| Arc::new(TenantSet::new(config, Some(current))));
        files.clone_from(&config.tenant_files);
        drop(files);
        self.update_readiness();
        self.wake_refresh();
    }

    /// Asks the refresh loop to look for due metadata now.
    pub(crate) fn wake_refresh(&self) {
        let (wanted, signal) = &self.refresh_wanted;
        *wanted.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        signal.notify_all();
    }

    /// Blocks until [`Registry::wake_refresh`] or `timeout`, whichever comes first (the
    /// refresh loop's tick).
    pub fn wait_for_refresh_work(&self, timeout: std::time::Duration) {
        let (wanted, signal) = &self.refresh_wanted;
        let guard = wanted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut guard, _) = signal
            .wait_timeout_while(guard, timeout, |wanted| !*wanted)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = false;
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

    /// Whether every tenant has been tried at least once since start-up (and there is one).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow() && !self.is_empty()
    }

    /// Resolves once [`Registry::is_ready`] has latched.
    pub fn wait_ready(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ready = self.ready.subscribe();
        async move {
            let _ = ready.wait_for(|ready| *ready).await;
        }
    }

    /// Latches readiness once no tenant is `pending`. Stays ready afterwards: a tenant added
    /// later waits for its own metadata without taking the replica out of rotation.
    pub(crate) fn update_readiness(&self) {
        if *self.ready.borrow() {
            return;
        }
        let current = self.current.load();
        if !current.is_empty() && current.tenants.values().all(|t| t.availability() != Availability::Pending) {
            self.ready.send_replace(true);
        }
    }
}
