//! Keeping metadata-sourced keys current: refresh rounds on each tenant's schedule (the first
//! one at start-up), one rate-limited refresh on demand when a response is signed by an unknown
//! key, and the last good keys kept through outages up to `max_staleness_seconds` (never
//! fail-open, never silently zero keys: every failure is logged, counted and visible in
//! `GET /v1/tenants/{id}`).
//!
//! A round fetches each distinct URL once, however many tenants share it (a multi-tenant app's
//! common endpoint), within the process-wide `max_concurrent_fetches` (pool.rs), and installs
//! the results in batches as they arrive (every 100 ms): a fleet of thousands of metadata
//! tenants costs a few table swaps per round, not one per tenant. Scheduled rounds run on their
//! own threads and overlap, each URL held by one of them: an endpoint that hangs delays its own
//! tenants only, never the next round. A tenant that never loaded is `unavailable` on its own and retried with
//! backoff; it never fails the configuration or another tenant.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use super::fetch::MetadataError;
use super::{MetadataStatus, Registry, TenantConfig, TenantSet};
use crate::config::tenant::{key_strength_problems, merge_keys, next_refresh};
use crate::config::MetadataSettings;
use crate::saml::metadata;
use crate::saml::time;

/// First retry after a failed load; doubles with each consecutive failure up to the tenant's
/// normal refresh interval.
const RETRY_SECONDS: i64 = 60;
/// Loads finished within this long of each other are installed as one generation (one table
/// swap per batch, not per tenant).
const INSTALL_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether a round holds its URLs against other scheduled rounds. On-demand refreshes (a
/// response signed by an unknown key, the CLI) do not: they are rate-limited per tenant and must
/// not come back empty-handed because a scheduled round happens to be fetching.
#[derive(Clone, Copy)]
enum Claim {
    Exclusive,
    No,
}

/// How many tenants a round tried, and how many of those loads succeeded.
struct Round {
    tried: usize,
    succeeded: usize,
}

/// One tenant's load, ready to install over the version it was computed from.
struct Loaded {
    from: Arc<TenantConfig>,
    updated: Arc<TenantConfig>,
    ok: bool,
}

impl Registry {
    /// Fetches the tenant's metadata now and installs the result. Returns whether the load
    /// succeeded (on failure the previous keys stay, unless they are older than the staleness
    /// limit, in which case the metadata keys are withdrawn).
    pub fn refresh_metadata(&self, id: &str, now: DateTime<Utc>, reason: &str) -> bool {
        self.refresh_tenants(&[id], now, reason, Claim::No).succeeded == 1
    }

    /// Refreshes every tenant whose metadata is due (`pending` tenants first of all) and waits
    /// for the round; URLs another round is fetching are left to it. Returns how many tenants
    /// were tried.
    pub fn refresh_due(&self, now: DateTime<Utc>) -> usize {
        let due = self.due(now);
        if due.is_empty() {
            return 0;
        }
        let due: Vec<&str> = due.iter().map(String::as_str).collect();
        self.refresh_tenants(&due, now, "scheduled", Claim::Exclusive).tried
    }

    /// The refresh loop's tick (every second and on each tenant change): starts a round for
    /// what is due on its own thread and returns at once, so an endpoint that hangs until
    /// `timeout_seconds` never holds back a tenant added or falling due meanwhile.
    pub fn start_due_refreshes(self: &Arc<Self>, now: DateTime<Utc>) {
        let due = self.due(now);
        if due.is_empty() {
            return;
        }
        let registry = self.clone();
        let spawned = std::thread::Builder::new().name("metadata-round".into()).spawn(move || {
            let due: Vec<&str> = due.iter().map(String::as_str).collect();
            registry.refresh_tenants(&due, now, "scheduled", Claim::Exclusive);
        });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a metadata refresh round; retrying on the next tick");
        }
    }

    /// Tenants whose metadata is due and whose URL no round is fetching now.
    fn due(&self, now: DateTime<Utc>) -> Vec<String> {
        self.current
            .load()
            .iter()
            .filter(|(_, t)| t.metadata_url.as_deref().is_some_and(|url| !self.fetches.is_claimed(url)))
            .filter(|(_, t)| is_due(t, now))
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// One round over `ids`.
    fn refresh_tenants(&self, ids: &[&str], now: DateTime<Utc>, reason: &str, claim: Claim) -> Round {
        let urls = |generation: &TenantSet| -> BTreeSet<String> {
            ids.iter().filter_map(|id| generation.tenants.get(*id)?.metadata_url.clone()).collect()
        };
        let mut claims = match claim {
            Claim::Exclusive => Some(self.fetches.claim(urls(&self.current.load()))),
            Claim::No => None,
        };
        // Read after claiming: a round that held these URLs installed its results before giving
        // them back, so a tenant it just refreshed is no longer due and is not fetched twice.
        let generation = self.current.load_full();
        let mut by_url: BTreeMap<&str, Vec<Arc<TenantConfig>>> = BTreeMap::new();
        for id in ids {
            let Some(tenant) = generation.tenants.get(*id) else { continue };
            let Some(url) = tenant.metadata_url.as_deref() else { continue };
            let wanted = match &claims {
                Some(claims) => claims.holds(url) && is_due(tenant, now),
                None => true,
            };
            if wanted {
                by_url.entry(url).or_default().push(tenant.clone());
            }
        }
        let groups: Vec<(&str, Vec<Arc<TenantConfig>>)> = by_url.into_iter().collect();
        let limit = generation.metadata.max_concurrent_fetches;
        let next = AtomicUsize::new(0);
        let (done, arrivals) = std::sync::mpsc::channel::<(&str, Vec<Loaded>)>();
        let mut round = Round { tried: groups.iter().map(|(_, tenants)| tenants.len()).sum(), succeeded: 0 };
        std::thread::scope(|scope| {
            for _ in 0..limit.clamp(1, groups.len().max(1)) {
                let done = done.clone();
                let (groups, next, generation) = (&groups, &next, &generation);
                scope.spawn(move || {
                    while let Some((url, tenants)) = groups.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let _slot = self.fetches.slot(limit);
                        let fetched = generation.fetcher.fetch(url);
                        let loaded: Vec<Loaded> = tenants
                            .iter()
                            .map(|tenant| {
                                let parsed = match &fetched {
                                    Ok(bytes) => self.parse_metadata_cached(tenant, bytes, now),
                                    Err(e) => Err(e.clone()),
                                };
                                apply(tenant, parsed, &generation.metadata, now, reason)
                            })
                            .collect();
                        if done.send((url, loaded)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done);
            // Results are installed in batches as they arrive, so one endpoint that hangs until
            // `timeout_seconds` delays its own tenants only.
            let (mut batch, mut urls) = (Vec::new(), Vec::new());
            let mut first = None;
            loop {
                let wait = first.map_or(INSTALL_EVERY, |at: Instant| INSTALL_EVERY.saturating_sub(at.elapsed()));
                let finished = match arrivals.recv_timeout(wait) {
                    Ok((url, loaded)) => {
                        first.get_or_insert_with(crate::ops::monotonic);
                        batch.extend(loaded);
                        urls.push(url);
                        false
                    }
                    Err(RecvTimeoutError::Timeout) => false,
                    Err(RecvTimeoutError::Disconnected) => true,
                };
                if finished || first.is_some_and(|at| at.elapsed() >= INSTALL_EVERY) {
                    round.succeeded += self.install(&batch);
                    // Given back only once installed: a round starting in between would find
                    // these tenants still due and fetch the URL twice.
                    for url in urls.drain(..) {
                        if let Some(claims) = claims.as_mut() {
                            claims.release(url);
                        }
                    }
                    batch.clear();
                    first = None;
                }
                if finished {
                    break;
                }
            }
        });
        round
    }

    /// Installs loads over the generation of the moment, tenant by tenant only where no reload
    /// or file change replaced the tenant meanwhile (their own load wins). Returns how many
    /// succeeded.
    fn install(&self, results: &[Loaded]) -> usize {
        if results.is_empty() {
            return 0;
        }
        self.current.rcu(|current| {
            let updates = results
                .iter()
                .filter(|r| current.tenants.get(&r.from.id).is_some_and(|existing| Arc::ptr_eq(existing, &r.from)))
                .map(|r| (r.from.id.clone(), Some(r.updated.clone())));
            Arc::new(current.with_changes(updates, []))
        });
        for result in results {
            self.metrics.metadata_refreshed(result.ok);
        }
        self.update_readiness();
        results.iter().filter(|r| r.ok).count()
    }

    /// Parses fetched metadata, or reuses the keys parsed from the identical document before
    /// (certificate parsing costs several RSA verifications per key; most refreshes return the
    /// same bytes, and tenants sharing a URL share the parse). The cache key covers the bytes
    /// and the verification policy, so a changed `metadata_signing_certificate` never reuses an
    /// unverified parse; validity is re-checked against `now` on every hit.
    fn parse_metadata_cached(
        &self,
        tenant: &TenantConfig,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<metadata::IdpMetadata, MetadataError> {
        let mut hasher = openssl::sha::Sha256::new();
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
        for key in &tenant.metadata_signing_keys {
            hasher.update(key.info.sha256_fingerprint.as_bytes());
        }
        hasher.update(&[u8::from(tenant.policy.allow_sha1)]);
        let cache_key = hasher.finish();
        if let Some(parsed) = self.metadata_cache.get(&cache_key) {
            self.metrics.key_cache(true);
            if parsed.valid_until.is_some_and(|until| until <= now) {
                return Err(MetadataError::Invalid("metadata validUntil has passed".into()));
            }
            return Ok(parsed.as_ref().clone());
        }
        self.metrics.key_cache(false);
        let policy = metadata::MetadataPolicy {
            signing_keys: &tenant.metadata_signing_keys,
            allow_sha1: tenant.policy.allow_sha1,
            now,
        };
        let parsed = metadata::parse(bytes, &policy).map_err(|e| MetadataError::Invalid(e.to_string()))?;
        self.metadata_cache.insert(cache_key, Arc::new(parsed.clone()));
        Ok(parsed)
    }

    /// Claims the one on-demand refresh a response signed by an unknown key may trigger: the
    /// tenant has a `metadata_url` and none was claimed within `on_demand_min_interval_seconds`.
    /// Cheap and non-blocking; the fetch itself is [`Registry::refresh_metadata`], which the
    /// transports run off their event loops.
    pub fn claim_on_demand_refresh(&self, id: &str, now: DateTime<Utc>) -> bool {
        let generation = self.current.load();
        let Some(tenant) = generation.tenants.get(id) else { return false };
        if tenant.metadata_url.is_none() {
            return false;
        }
        let interval = Duration::seconds(generation.metadata.on_demand_min_interval_seconds as i64);
        let mut last = self.on_demand.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.get(id).is_some_and(|at| now - *at < interval) {
            return false;
        }
        last.insert(id.to_string(), now);
        true
    }

    /// Logs a warning for every trusted certificate that expires within the configured window.
    pub fn warn_expiring_certificates(&self, now: DateTime<Utc>) {
        let generation = self.current.load();
        let window = Duration::days(generation.metadata.expiry_warning_days);
        for (id, tenant) in generation.iter() {
            for key in &tenant.policy.keys {
                if let Some(not_after) = key.not_after {
                    if not_after - now < window {
                        tracing::warn!(
                            tenant = id,
                            sha256 = %key.info.sha256_fingerprint,
                            not_after = %time::format(not_after),
                            days_left = (not_after - now).num_days(),
                            "IdP signing certificate expires soon (or has expired): rotate before logins break"
                        );
                    }
                }
            }
        }
    }
}

/// `pending` (never tried) or past its next refresh (or retry) instant.
fn is_due(tenant: &TenantConfig, now: DateTime<Utc>) -> bool {
    tenant.metadata.as_ref().and_then(|m| m.next_refresh_instant).is_none_or(|next| next <= now)
}

/// The tenant after one load attempt.
fn apply(
    tenant: &Arc<TenantConfig>,
    loaded: Result<metadata::IdpMetadata, MetadataError>,
    settings: &MetadataSettings,
    now: DateTime<Utc>,
    reason: &str,
) -> Loaded {
    let id = tenant.id.as_str();
    let url = tenant.metadata_url.clone().unwrap_or_default();
    let mut updated: TenantConfig = tenant.as_ref().clone();
    let mut status = updated.metadata.clone().unwrap_or_else(|| MetadataStatus {
        source: url.clone(),
        entity_id: String::new(),
        signature_verified: false,
        valid_until: None,
        cache_duration_seconds: None,
        loaded_at: String::new(),
        result: String::new(),
        last_attempt: String::new(),
        next_refresh: None,
        consecutive_failures: 0,
        refused_endpoints: Vec::new(),
        loaded_at_instant: None,
        next_refresh_instant: None,
    });
    status.last_attempt = time::format(now);
    let accepted = loaded.and_then(|parsed| {
        issuer_check(&updated, &parsed)?;
        // A weak key in the document refuses the whole load (the last good keys stay), as the
        // same key in the configuration refuses the tenant.
        match key_strength_problems(&parsed.signing_keys, updated.allow_weak_rsa_keys).into_iter().next() {
            Some(problem) => Err(MetadataError::WeakKey(problem)),
            None => Ok(parsed),
        }
    });
    let ok = match accepted {
        Ok(parsed) => {
            if updated.policy.idp_entity_id.is_empty() {
                updated.policy.idp_entity_id.clone_from(&parsed.entity_id);
            }
            updated.metadata_keys.clone_from(&parsed.signing_keys);
            updated.policy.keys = merge_keys(&updated.static_keys, parsed.signing_keys.clone(), &url);
            updated.idp_sso_endpoints.clone_from(&parsed.single_sign_on);
            updated.idp_slo_endpoints.clone_from(&parsed.single_logout);
            for refused in &parsed.refused_endpoints {
                tracing::warn!(tenant = id, problem = refused.as_str(), "metadata endpoint refused");
            }
            status.refused_endpoints.clone_from(&parsed.refused_endpoints);
            let next = next_refresh(&parsed, settings, now);
            status.entity_id = parsed.entity_id;
            status.signature_verified = parsed.signature_verified;
            status.valid_until = parsed.valid_until.map(time::format);
            status.cache_duration_seconds = parsed.cache_duration_seconds;
            status.loaded_at = time::format(now);
            status.loaded_at_instant = Some(now);
            status.result = "ok".into();
            status.consecutive_failures = 0;
            status.next_refresh = Some(time::format(next));
            status.next_refresh_instant = Some(next);
            tracing::info!(tenant = id, reason, keys = updated.policy.keys.len(), "metadata refreshed");
            true
        }
        Err(error) => {
            status.consecutive_failures = status.consecutive_failures.saturating_add(1);
            let next = now + retry_after(status.consecutive_failures, settings);
            status.next_refresh = Some(time::format(next));
            status.next_refresh_instant = Some(next);
            match status.loaded_at_instant {
                None => {
                    status.result = format!("failed: {error}; the tenant is unavailable until its metadata loads");
                    tracing::warn!(tenant = id, reason, error = %error, retry_at = %time::format(next), "metadata never loaded: tenant unavailable");
                }
                Some(loaded) if now - loaded > Duration::seconds(settings.max_staleness_seconds as i64) => {
                    updated.metadata_keys.clear();
                    updated.policy.keys = updated.static_keys.clone();
                    status.result =
                        format!("failed: {error}; last good keys older than max_staleness_seconds were withdrawn");
                    tracing::error!(tenant = id, reason, error = %error, "metadata refresh failed and the last good keys are stale: withdrawn");
                }
                Some(_) => {
                    status.result = format!("failed: {error}; keeping the keys loaded at {}", status.loaded_at);
                    tracing::warn!(tenant = id, reason, error = %error, "metadata refresh failed; keeping the last good keys");
                }
            }
            false
        }
    };
    updated.metadata = Some(status);
    Loaded { from: tenant.clone(), updated: Arc::new(updated), ok }
}

/// The issuer the metadata may speak for. A tenant without a configured `idp_entity_id`
/// adopts the entityID of its first load and holds to it afterwards: a document naming
/// another issuer later is a refused refresh, never a silent change of whom the tenant trusts.
fn issuer_check(tenant: &TenantConfig, parsed: &metadata::IdpMetadata) -> Result<(), MetadataError> {
    let expected = &tenant.policy.idp_entity_id;
    // Entra's multi-tenant (common) metadata names `https://sts.windows.net/{tenantid}/`: only a
    // configured issuer says which tenant's responses to accept.
    let template = parsed.entity_id.contains("{tenantid}");
    if expected.is_empty() {
        return if template {
            Err(MetadataError::Issuer(format!(
                "entityID {:?} is a template; set idp_entity_id for this tenant",
                parsed.entity_id
            )))
        } else {
            Ok(())
        };
    }
    if parsed.entity_id == *expected || (template && tenant.configured_idp_entity_id.is_some()) {
        return Ok(());
    }
    Err(MetadataError::Issuer(format!(
        "entityID changed to {:?}; keeping the issuer {expected:?} and its keys",
        parsed.entity_id
    )))
}

/// 60 s, 120 s, 240 s … up to the normal refresh interval, ±10 % so that a fleet whose
/// endpoint failed at once does not retry in one burst.
fn retry_after(failures: u32, settings: &MetadataSettings) -> Duration {
    let doubled = RETRY_SECONDS.saturating_mul(1_i64 << failures.saturating_sub(1).min(20));
    let seconds = doubled.min(settings.refresh_seconds as i64).max(1);
    let mut noise = [0u8; 2];
    let _ = openssl::rand::rand_bytes(&mut noise);
    let jitter = (f64::from(u16::from_le_bytes(noise)) / f64::from(u16::MAX) - 0.5) * 0.2;
    Duration::seconds(((seconds as f64) * (1.0 + jitter)).max(1.0) as i64)
}
