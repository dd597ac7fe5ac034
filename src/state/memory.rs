//! In-process replay cache (SAML profiles 4.1.4.5): an assertion accepted once is refused until
//! it expires. Keyed on the verified issuer and the assertion ID, not on the tenant: tenants that
//! trust the same IdP key, SP entity ID and ACS URL would otherwise each accept one stolen
//! assertion once. Bounded; each replica holds its own.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use moka::Expiry;

pub struct ReplayCache {
    /// Keyed on [`super::key::replay_digest`]: 32 bytes an entry, however long the IDs.
    seen: Cache<[u8; 32], Duration>,
}

/// Each entry lives exactly as long as its assertion could still be accepted.
struct UntilExpiry;

impl Expiry<[u8; 32], Duration> for UntilExpiry {
    fn expire_after_create(&self, _key: &[u8; 32], ttl: &Duration, _created_at: Instant) -> Option<Duration> {
        Some(*ttl)
    }
}

impl ReplayCache {
    pub fn new(capacity: u64) -> ReplayCache {
        ReplayCache { seen: Cache::builder().max_capacity(capacity).expire_after(UntilExpiry).build() }
    }

    /// Records `(issuer, assertion_id)`; false if it was already recorded and not yet expired.
    /// Atomic: of two concurrent requests with the same assertion, exactly one gets `true`.
    pub fn first_use(&self, issuer: &str, assertion_id: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> bool {
        let ttl = (until - now).to_std().unwrap_or(Duration::ZERO).max(Duration::from_secs(1));
        self.seen.entry(super::key::replay_digest(issuer, assertion_id)).or_insert_with(|| ttl).is_fresh()
    }

    /// Current number of remembered IDs (settles pending cache maintenance first, so this is
    /// for scrapes and tests, not the hot path).
    pub fn len(&self) -> u64 {
        self.seen.run_pending_tasks();
        self.seen.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_of_many_concurrent_uses_wins() {
        let cache = std::sync::Arc::new(ReplayCache::new(1_000));
        let now = crate::ops::wall_clock();
        let until = now + chrono::Duration::minutes(5);
        let winners: usize = (0..8)
            .map(|_| {
                let cache = cache.clone();
                std::thread::spawn(move || usize::from(cache.first_use("t", "_a", now, until)))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
        assert!(cache.first_use("https://other-idp/", "_a", now, until), "issuers are separate");
        assert!(!cache.first_use("t", "_a", now, until));
    }

    #[test]
    fn the_key_is_the_digest_of_issuer_and_id_whatever_their_length() {
        let cache = ReplayCache::new(1_000);
        let now = crate::ops::wall_clock();
        let until = now + chrono::Duration::minutes(5);
        let long = "_".repeat(200_000);
        assert!(cache.first_use("https://idp/", &long, now, until));
        assert!(!cache.first_use("https://idp/", &long, now, until), "a long ID is remembered");
        assert!(cache.first_use("https://idp/", &long[1..], now, until), "one character less is another ID");
        // The separator keeps (issuer, id) pairs apart that concatenate to the same text.
        assert!(cache.first_use("https://idp/a", "_b", now, until));
        assert!(cache.first_use("https://idp/", "a_b", now, until));
    }
}
