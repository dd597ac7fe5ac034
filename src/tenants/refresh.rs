//! Keeping metadata-sourced keys current: background refresh on each tenant's schedule, one
//! rate-limited refresh on demand when a response is signed by an unknown key, and the last good
//! keys kept through outages up to `max_staleness_seconds` (never fail-open, never silently
//! zero keys: every failure is logged, counted and visible in `GET /v1/tenants/{id}`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::config::tenant::{merge_keys, next_refresh};
use super::{MetadataStatus, Registry, TenantConfig};
use crate::saml::metadata;
use crate::saml::time;

/// Retry interval after a failed refresh (bounded by the normal interval).
const RETRY_SECONDS: i64 = 60;

impl Registry {
    /// Fetches the tenant's metadata now and installs the result. Returns whether the fetch
    /// succeeded (on failure the previous keys stay, unless they are older than the staleness
    /// limit, in which case the metadata keys are withdrawn).
    pub fn refresh_metadata(&self, id: &str, now: DateTime<Utc>, reason: &str) -> bool {
        let generation = self.current.load_full();
        let Some(tenant) = generation.tenants.get(id).cloned() else { return false };
        let Some(url) = tenant.metadata_url.clone() else { return false };
        let settings = &generation.metadata;
        let loaded =
            generation.fetcher.fetch(&url).and_then(|bytes| self.parse_metadata_cached(id, &tenant, &bytes, now));
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
            loaded_at_instant: None,
            next_refresh_instant: None,
        });
        status.last_attempt = time::format(now);
        let ok = match loaded {
            Ok(parsed)
                if parsed.entity_id == updated.policy.idp_entity_id || parsed.entity_id.contains("{tenantid}") =>
            {
                updated.policy.keys = merge_keys(&updated.static_keys, parsed.signing_keys.clone(), &url);
                updated.idp_sso_endpoints = parsed.single_sign_on.clone();
                let next = next_refresh(&parsed, settings, now);
                status.entity_id = parsed.entity_id;
                status.signature_verified = parsed.signature_verified;
                status.valid_until = parsed.valid_until.map(time::format);
                status.cache_duration_seconds = parsed.cache_duration_seconds;
                status.loaded_at = time::format(now);
                status.loaded_at_instant = Some(now);
                status.result = "ok".into();
                status.next_refresh = Some(time::format(next));
                status.next_refresh_instant = Some(next);
                tracing::info!(tenant = id, reason, keys = updated.policy.keys.len(), "metadata refreshed");
                true
            }
            outcome => {
                let error = match outcome {
                    Ok(parsed) => {
                        format!("entityID changed to {:?}; keeping the configured issuer's keys", parsed.entity_id)
                    }
                    Err(e) => e,
                };
                let retry = RETRY_SECONDS.min(settings.refresh_seconds as i64);
                let next = now + Duration::seconds(retry);
                status.next_refresh = Some(time::format(next));
                status.next_refresh_instant = Some(next);
                let stale = status
                    .loaded_at_instant
                    .is_none_or(|loaded| now - loaded > Duration::seconds(settings.max_staleness_seconds as i64));
                if stale {
                    updated.policy.keys = updated.static_keys.clone();
                    status.result =
                        format!("failed: {error}; last good keys older than max_staleness_seconds were withdrawn");
                    tracing::error!(tenant = id, reason, error = %error, "metadata refresh failed and the last good keys are stale: withdrawn");
                } else {
                    status.result = format!("failed: {error}; keeping the keys loaded at {}", status.loaded_at);
                    tracing::warn!(tenant = id, reason, error = %error, "metadata refresh failed; keeping the last good keys");
                }
                false
            }
        };
        updated.metadata = Some(status);
        // Install only if no reload replaced this tenant meanwhile (the reload's own load wins).
        self.current.rcu(|current| match current.tenants.get(id) {
            Some(existing) if Arc::ptr_eq(existing, &tenant) => Arc::new(current.with_tenant(updated.clone())),
            _ => current.clone(),
        });
        if let Some(metrics) = self.metrics.get() {
            metrics.metadata_refreshed(id, ok);
        }
        ok
    }

    /// Parses fetched metadata, or reuses the keys parsed from the identical document before
    /// (certificate parsing costs several RSA verifications per key; most refreshes return the
    /// same bytes). The cache key covers the tenant, the bytes and the verification policy, so
    /// a changed `metadata_signing_certificate` never reuses an unverified parse; validity is
    /// re-checked against `now` on every hit.
    fn parse_metadata_cached(
        &self,
        id: &str,
        tenant: &TenantConfig,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<metadata::IdpMetadata, String> {
        let mut hasher = openssl::sha::Sha256::new();
        for part in [id.as_bytes(), bytes] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        for key in &tenant.metadata_signing_keys {
            hasher.update(key.info.sha256_fingerprint.as_bytes());
        }
        hasher.update(&[u8::from(tenant.policy.allow_sha1)]);
        let cache_key = hasher.finish();
        if let Some(parsed) = self.metadata_cache.get(&cache_key) {
            if let Some(metrics) = self.metrics.get() {
                metrics.key_cache(true);
            }
            if parsed.valid_until.is_some_and(|until| until <= now) {
                return Err("metadata validUntil has passed".into());
            }
            return Ok(parsed.as_ref().clone());
        }
        if let Some(metrics) = self.metrics.get() {
            metrics.key_cache(false);
        }
        let policy = metadata::MetadataPolicy {
            signing_keys: &tenant.metadata_signing_keys,
            allow_sha1: tenant.policy.allow_sha1,
            now,
        };
        let parsed = metadata::parse(bytes, &policy).map_err(|e| e.to_string())?;
        self.metadata_cache.insert(cache_key, Arc::new(parsed.clone()));
        Ok(parsed)
    }

    /// Refreshes every tenant whose metadata is due. Called every second by `serve`.
    pub fn refresh_due(&self, now: DateTime<Utc>) {
        let due: Vec<String> = self
            .current
            .load()
            .iter()
            .filter(|(_, t)| t.metadata_url.is_some())
            .filter(|(_, t)| t.metadata.as_ref().and_then(|m| m.next_refresh_instant).is_none_or(|next| next <= now))
            .map(|(id, _)| id.to_string())
            .collect();
        for id in due {
            self.refresh_metadata(&id, now, "scheduled");
        }
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
