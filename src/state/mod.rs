//! What must hold across logins: the record of accepted assertions (replay protection, SAML
//! profiles §4.1.4.5), in this process ([`memory`]) or shared by every replica ([`redis`]).
//! Uses nothing but `saml`'s error type and `ops`' metrics.

pub mod key;
pub mod memory;
pub mod redis;
pub mod status;

use chrono::{DateTime, Utc};

pub use memory::ReplayCache;
pub use redis::{RedisStore, StoreError};
pub use status::StoreStatus;

use crate::saml::{Code, Error};

/// Where first uses are recorded.
pub enum ReplayRecord {
    /// Per process: each replica remembers only what it accepted, and forgets on restart.
    Memory(ReplayCache),
    /// Shared; `fallback` is set only under `allow_memory_fallback_when_unavailable`.
    Shared { store: RedisStore, fallback: Option<ReplayCache> },
}

impl ReplayRecord {
    /// Records `(issuer, assertion_id)` until `until`: `Ok(true)` on its first use, `Ok(false)`
    /// for a replay, `replay_store_unavailable` when the shared store cannot tell (fail closed).
    /// `issued_at` is the assertion's signed IssueInstant: a shared store that lost records
    /// refuses what was issued before the loss (`replay_state_lost`).
    pub async fn first_use(
        &self,
        issuer: &str,
        assertion_id: &str,
        issued_at: DateTime<Utc>,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, Error> {
        match self {
            ReplayRecord::Memory(cache) => Ok(cache.first_use(issuer, assertion_id, now, until)),
            ReplayRecord::Shared { store, fallback } => {
                let answer = store.first_use(issuer, assertion_id, issued_at, now, until).await;
                fall_back(answer, fallback.as_ref(), store, issuer, assertion_id, now, until)
            }
        }
    }

    /// Entries held in this process (the memory cache, or the fallback cache).
    pub fn len(&self) -> u64 {
        match self {
            ReplayRecord::Memory(cache) => cache.len(),
            ReplayRecord::Shared { fallback, .. } => fallback.as_ref().map_or(0, ReplayCache::len),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What `GET /v1/replay-store` shows.
    pub fn status(&self, now: DateTime<Utc>) -> StoreStatus {
        match self {
            ReplayRecord::Memory(cache) => StoreStatus {
                kind: "memory",
                up: true,
                epoch_since: None,
                epoch_age_seconds: None,
                eviction_policy: None,
                eviction_policy_safe: None,
                quarantine_since: None,
                quarantine_until: None,
                last_loss_at: None,
                last_loss_reason: None,
                min_replicas_acked: 0,
                entries: Some(cache.len()),
            },
            ReplayRecord::Shared { store, .. } => store.status(now),
        }
    }
}

/// Under the relaxation, a store that could not answer hands the decision to this process's
/// cache: a replay to another replica (or after a restart) then gets through, which is what
/// the setting's name says it accepts.
fn fall_back(
    answer: Result<bool, Error>,
    fallback: Option<&ReplayCache>,
    store: &RedisStore,
    issuer: &str,
    assertion_id: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, Error> {
    match (answer, fallback) {
        (Err(error), Some(cache)) if error.code == Code::ReplayStoreUnavailable => {
            store.fell_back();
            Ok(cache.first_use(issuer, assertion_id, now, until))
        }
        (answer, _) => answer,
    }
}
