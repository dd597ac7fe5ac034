//! What `GET /v1/replay-store` shows, whichever store records.

use serde::Serialize;

/// The replay store as this replica sees it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StoreStatus {
    /// `memory`, `redis`, `redis_sentinel` or `redis_cluster`.
    pub kind: &'static str,
    /// The last operation or probe succeeded.
    pub up: bool,
    /// When the oldest epoch this replica knows began (the store's markers' date).
    pub epoch_since: Option<String>,
    pub epoch_age_seconds: Option<i64>,
    /// The servers' `maxmemory-policy`, once probed.
    pub eviction_policy: Option<String>,
    pub eviction_policy_safe: Option<bool>,
    /// In force: assertions issued before `quarantine_since` are refused until `quarantine_until`.
    pub quarantine_since: Option<String>,
    pub quarantine_until: Option<String>,
    pub last_loss_at: Option<String>,
    /// Why: `marker_missing`, `marker_replaced`, `marker_rewound`, `marker_unreadable`,
    /// `restart`, `failover` or `evictions`.
    pub last_loss_reason: Option<&'static str>,
    pub min_replicas_acked: u32,
    /// Records held in this process (the memory store only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
}
