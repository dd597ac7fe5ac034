//! The replay record shared by every replica: one Redis key per accepted assertion, set with
//! `SET key 1 NX PX ttl` in one `MULTI`/`EXEC` transaction ([`record`]) that also reads (or
//! writes, when missing) its bucket's epoch marker and asks whether the server was judged, so
//! that of any number of replicas seeing the same assertion at once exactly one is told it is
//! the first, and a store that lost records is caught in the same round trip ([`epoch`]).
//!
//! Each transport thread records on a connection of its own, driven by that thread's event
//! loop (no hop to another thread per record: on two shared cores those wake-ups cost more
//! than Redis itself). Dialling the shared connection, probing the servers, declaring losses
//! and the once-a-second health check run on a runtime of the store's own (one thread), where
//! the shared connection's driver lives, so it survives whichever loop first needed it and a
//! declaration is never cut short by a request that gave up. A store that is down does not
//! keep the service from starting; the connections heal by themselves ([`link`]).

mod epoch;
mod link;
mod probe;
mod record;

use crate::saml::hex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use self::epoch::{Ledger, Marker, Server, Sighting};
use self::link::{DialError, Link, Live};
use super::status::StoreStatus;
use crate::config::tenant::MAX_SKEW_SECONDS;
use crate::config::RedisSettings;
use crate::ops::metrics::{Metrics, StoreResult};
use crate::saml::{Code, Error};

/// Why the shared store could not be set up (nothing is contacted yet: an unreachable store is
/// not one of these, it answers `replay_store_unavailable` per request).
#[derive(Debug)]
pub enum StoreError {
    /// The client refused the settings (a URL it cannot use, a CA it cannot load).
    Client(redis::RedisError),
    /// The store's own runtime thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Client(e) => write!(f, "replay store: {e}"),
            StoreError::Thread(e) => write!(f, "replay store: cannot start its thread: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Loaded (by `EVAL`, routed by a bucket's key) on a server only after a probe judged it and
/// declared any loss it showed; while there, it records the server's identity (ARGV[1], when
/// the server says who it is) beside the bucket's marker. Scripts are neither persisted nor
/// replicated, so a server without it was restarted, promoted, or never judged: every record
/// asks `SCRIPT EXISTS` for it in its own transaction, and a record that finds it missing has
/// its bucket judged before it is answered. That is what sees a Redis Cluster's failover first:
/// the cluster client reconnects to a promoted node by itself, which holds the old master's
/// markers (replicated) but not the records it had not received yet.
///
/// Each bucket of each `key_prefix` has a script of its own (the body ends in a comment naming
/// both, so its SHA differs): another deployment judging its own prefix on a shared Redis, or
/// a judgement of one bucket, must not make this prefix's other buckets trusted.
const JUDGED: &str = "if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1]) end return 1";

/// The judged script of `bucket` under `key_prefix`.
pub(super) fn judged_script(key_prefix: &str, bucket: usize) -> String {
    // A prefix is a key prefix (no newline can end the comment early; it is quoted anyway).
    format!("{JUDGED} -- judged: {key_prefix:?} bucket {bucket}")
}

/// How often the servers are probed (identity, eviction policy, evictions) and a lost
/// connection dialled again without waiting for a login to need it.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// A Redis-backed record of first uses.
pub struct RedisStore {
    inner: Arc<Inner>,
    /// `Some` until dropped; taken then so that dropping never blocks on (or panics in) an
    /// async context.
    runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    link: Link,
    /// SHA-1 of each bucket's [`judged_script`], asked for by every record of that bucket.
    judged_sha: Vec<String>,
    /// Whether a cluster (no single server to probe before records flow).
    cluster: bool,
    key_prefix: String,
    timeout: Duration,
    min_replicas_acked: u32,
    metrics: Arc<Metrics>,
    handle: tokio::runtime::Handle,
    /// Shared with the declarations' writes, which finish (and say so here) even when the
    /// request that started them gave up waiting.
    ledger: Arc<Mutex<Ledger>>,
    /// The servers as last probed (one, or every master of a cluster).
    servers: Mutex<Vec<Server>>,
    /// A server may evict records: the record's transaction then reads `evicted_keys` too.
    may_evict: AtomicBool,
    /// Every server takes `SET … NX GET` (Redis ≥ 7.0), as last probed. A server older than
    /// the probe saw (a failover to a 6.x replica) answers that command with a syntax error
    /// inside `EXEC` (the others run: the record is written, the assertion burnt): the error
    /// fails the record closed (503), drops the connections, and the new dial's probe sees the
    /// version.
    set_get: AtomicBool,
    /// This process's part of the markers it declares, and a count to keep them distinct.
    marker_id: String,
    declared: AtomicU64,
    /// Last known state, for logging once per change: 0 unknown, 1 up, 2 down.
    state: AtomicU8,
    /// Whether this outage's first fallback was logged.
    falling_back: AtomicBool,
}

const UP: u8 = 1;
const DOWN: u8 = 2;

impl RedisStore {
    /// Builds the client (nothing is contacted yet) and starts connecting in the background.
    pub fn new(
        target: &RedisSettings,
        max_assertion_age_seconds: i64,
        metrics: Arc<Metrics>,
    ) -> Result<RedisStore, StoreError> {
        metrics.enable_replay_store();
        let link = Link::new(target).map_err(StoreError::Client)?;
        let cluster = link.is_cluster();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("replay-store")
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        let mut id = [0u8; 6];
        openssl::rand::rand_bytes(&mut id).map_err(|e| StoreError::Thread(std::io::Error::other(e)))?;
        let inner = Arc::new(Inner {
            link,
            judged_sha: (0..epoch::BUCKETS)
                .map(|bucket| hex::lower(&openssl::sha::sha1(judged_script(&target.key_prefix, bucket).as_bytes())))
                .collect(),
            cluster,
            key_prefix: target.key_prefix.clone(),
            timeout: target.timeout,
            min_replicas_acked: target.min_replicas_acked,
            metrics,
            handle: runtime.handle().clone(),
            ledger: Arc::new(Mutex::new(Ledger::new(max_assertion_age_seconds + MAX_SKEW_SECONDS))),
            servers: Mutex::new(Vec::new()),
            may_evict: AtomicBool::new(false),
            set_get: AtomicBool::new(false),
            marker_id: hex::lower(&id),
            declared: AtomicU64::new(0),
            state: AtomicU8::new(0),
            falling_back: AtomicBool::new(false),
        });
        let watch = Arc::downgrade(&inner);
        runtime.spawn(async move {
            loop {
                let Some(inner) = watch.upgrade() else { return };
                inner.health_check().await;
                drop(inner);
                tokio::time::sleep(PROBE_EVERY).await;
            }
        });
        Ok(RedisStore { inner, runtime: Some(runtime) })
    }

    /// Records `(issuer, assertion_id)` until `until`: `Ok(true)` for its first use, `Ok(false)`
    /// if any replica recorded it before, `replay_state_lost` if it was issued before a loss
    /// of the store's records that is still in quarantine, `replay_store_unavailable` if the
    /// store could not say. Needs a tokio runtime with timers (every transport has one).
    pub async fn first_use(
        &self,
        issuer: &str,
        assertion_id: &str,
        issued_at: DateTime<Utc>,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, Error> {
        if self.runtime.is_none() {
            return Err(unavailable("the replay store is shutting down"));
        }
        let digest = key_digest(issuer, assertion_id);
        let bucket = usize::from_str_radix(&digest[..1], 16).unwrap_or(0);
        // Redis expires the key itself; at least a second, as the memory cache does.
        let ttl_ms = (until - now).num_milliseconds().max(1_000);
        let started = crate::ops::monotonic();
        // WAIT may take its own timeout after the record's.
        let bound = self.inner.timeout * if self.inner.min_replicas_acked > 0 { 2 } else { 1 };
        let record = self.inner.record(bucket, &digest, ttl_ms);
        let outcome = match tokio::time::timeout(bound, record).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::timed_out(self.inner.timeout)),
        };
        let answer = self.inner.conclude(outcome, started.elapsed())?;
        if answer {
            if let Some(quarantine) = self.inner.ledger().refuses(issued_at) {
                return Err(Error::new(
                    Code::ReplayStateLost,
                    format!(
                        "the replay store lost records at {}; this assertion was issued before, so whether it was used cannot be known: sign in again",
                        quarantine.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ),
                ));
            }
        }
        Ok(answer)
    }

    /// Counts a decision handed to the in-process cache (the relaxation), warning once per outage.
    pub fn fell_back(&self) {
        self.inner.metrics.replay_store_fallback();
        if !self.inner.falling_back.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                target: "replay_store",
                "RELAXATION allow_memory_fallback_when_unavailable: recording in this process only while the shared store is unavailable; replays to other replicas are not refused"
            );
        }
    }

    /// What `GET /v1/replay-store` shows.
    pub fn status(&self, now: DateTime<Utc>) -> StoreStatus {
        let ledger = self.inner.ledger();
        let servers = lock(&self.inner.servers).clone();
        let policy = servers.first().map(|s| s.eviction_policy.clone()).filter(|p| !p.is_empty());
        StoreStatus {
            kind: self.inner.link.kind(),
            up: self.inner.state.load(Ordering::Acquire) == UP,
            epoch_since: ledger.epoch_since().map(rfc3339),
            epoch_age_seconds: ledger.epoch_since().map(|since| (now - since).num_seconds()),
            eviction_policy: policy,
            eviction_policy_safe: (!servers.is_empty()).then(|| !servers.iter().any(Server::may_evict)),
            quarantine_since: ledger.quarantine(now).map(|q| rfc3339(q.since)),
            quarantine_until: ledger.quarantine(now).map(|q| rfc3339(q.until)),
            last_loss_at: ledger.last_loss().map(|loss| rfc3339(loss.at)),
            last_loss_reason: ledger.last_loss().map(|loss| loss.reason.as_str()),
            min_replicas_acked: self.inner.min_replicas_acked,
            entries: None,
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What went wrong with one record, for the metric, the log and the caller.
struct Failure {
    result: StoreResult,
    message: String,
    detail: String,
}

impl Failure {
    fn timed_out(timeout: Duration) -> Failure {
        let message = format!("the replay store did not answer within {} ms", timeout.as_millis());
        Failure { result: StoreResult::Timeout, detail: message.clone(), message }
    }

    fn redis(error: &redis::RedisError, timeout: Duration) -> Failure {
        if error.is_timeout() {
            return Failure { detail: link::describe(error), ..Failure::timed_out(timeout) };
        }
        Failure {
            result: StoreResult::Error,
            message: format!("the replay store could not record the assertion: {}", link::describe(error)),
            detail: link::describe(error),
        }
    }

    fn other(message: String) -> Failure {
        Failure { result: StoreResult::Error, detail: message.clone(), message }
    }
}

impl Inner {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// A marker dated by the clock now, not by the request's instant (taken before the XML
    /// queue and any metadata fetch): a loss is dated no earlier than it was seen.
    fn fresh_marker(&self) -> Marker {
        let n = self.declared.fetch_add(1, Ordering::Relaxed);
        Marker::new(format!("{}.{n}", self.marker_id), crate::ops::wall_clock())
    }

    fn marker_key(&self, bucket: usize) -> String {
        format!("{}{{{bucket:x}}}:epoch", self.key_prefix)
    }

    fn identity_key(&self, bucket: usize) -> String {
        format!("{}{{{bucket:x}}}:server", self.key_prefix)
    }

    async fn record(self: &Arc<Inner>, bucket: usize, digest: &str, ttl_ms: i64) -> Result<bool, Failure> {
        let live = self.connection().await?;
        let record_key = format!("{}{{{bucket:x}}}:{digest}", self.key_prefix);
        let marker_key = self.marker_key(bucket);
        // Evictions are read with every record while a server may evict (not only by the
        // once-a-second probe): an evicted record's replay would otherwise pass until the next
        // probe. Where the policy is `noeviction` nothing can be evicted, and nothing is read.
        let evictions = self.may_evict.load(Ordering::Acquire);
        let set_get = self.set_get.load(Ordering::Acquire);
        let candidate = self.fresh_marker();
        let encoded = candidate.encode();
        let transaction = record::transaction(
            &marker_key,
            &encoded,
            &record_key,
            ttl_ms,
            &self.judged_sha[bucket],
            set_get,
            evictions,
        );
        // This thread's own connection; everything this record asks or declares goes on it, the
        // judgement included, so the server judged is the one that holds the record (a name
        // that resolved to another server since the shared connection was dialled, say).
        // The probed server's run_id: a thread's own connection must reach that very server
        // (a name that resolves to two masters in a split brain must not split the record).
        let probed = lock(&self.servers).first().map(|server| server.run_id.clone()).filter(|id| !id.is_empty());
        let here = self.link.local(&live, probed.as_deref()).await;
        let mut connection = here.connection.clone();
        let replies = connection.transact(&transaction).await.map_err(|e| self.failed_here(&here, &e))?;
        let seen = record::read(&replies, &encoded, set_get, evictions).map_err(|e| self.failed_here(&here, &e))?;
        let sighting =
            Sighting { bucket, marker: &seen.marker, created: seen.created, evicted_keys: seen.evicted_keys };
        let (loss, declare) = self.ledger().see(&sighting, candidate);
        if let Some(reason) = loss {
            // A bucket the declaration missed sees the same loss in its own marker.
            let _ = self.lost(reason, declare, &here).await;
        }
        // A server without the judged script was restarted, promoted or never probed: its
        // bucket is judged (and any loss declared, so the quarantine below refuses what it
        // covers) before this record's answer counts. The record already written there is
        // harmless: it only burns this assertion on that server.
        if !seen.judged {
            self.check_bucket(&here, bucket).await.map_err(|e| self.failed_here(&here, &e))?;
        }
        if self.min_replicas_acked > 0 {
            let mut wait = redis::cmd("WAIT");
            wait.arg(self.min_replicas_acked).arg(self.timeout.as_millis() as u64);
            let acked: i64 = connection.query(&wait).await.map_err(|e| self.failed_here(&here, &e))?;
            if acked < i64::from(self.min_replicas_acked) {
                // The record stays: the assertion is burnt rather than accepted on a copy
                // that a failover could lose.
                return Err(Failure::other(format!(
                    "only {acked} of min_replicas_acked = {} replicas acknowledged the record within {} ms",
                    self.min_replicas_acked,
                    self.timeout.as_millis()
                )));
            }
        }
        Ok(seen.stored)
    }

    /// The current connection, or a new one dialled (and probed) on the store's runtime,
    /// where the connection's driver will live.
    async fn connection(self: &Arc<Inner>) -> Result<Live, Failure> {
        if let Some(live) = self.link.current() {
            return Ok(live);
        }
        let inner = self.clone();
        let dialled = self.handle.spawn(async move { inner.dial().await }).await;
        match dialled {
            Ok(Ok(live)) => Ok(live),
            Ok(Err(DialError::Waiting)) => {
                Err(Failure::other("the replay store is unavailable; reconnecting with backoff".into()))
            }
            Ok(Err(DialError::Failed(e))) => Err(Failure::redis(&e, self.timeout)),
            Ok(Err(DialError::TimedOut)) => Err(Failure::timed_out(self.timeout)),
            Err(_) => Err(Failure::other("the replay store's task ended".into())),
        }
    }

    /// A new connection, judged before any record is written on it. A cluster's connection is
    /// installed even when some master cannot be probed (the others keep serving); its
    /// buckets are judged by the records' own NOSCRIPT check and the next probe.
    async fn dial(self: &Arc<Inner>) -> Result<Live, DialError> {
        self.link
            .dial(|live| async move {
                match self.probe(&live).await {
                    Err(e) if self.cluster => {
                        tracing::warn!(target: "replay_store", cause = link::describe(&e), "could not probe every cluster node");
                        Ok(())
                    }
                    result => result,
                }
            })
            .await
    }

    /// A failure on this thread's own connection: it goes, and so does the shared one (the
    /// cause may be the server's: a password changed, a demoted master), dialled and probed
    /// again before the next record.
    fn failed_here(&self, live: &Live, error: &redis::RedisError) -> Failure {
        if link::poisons(error) {
            self.link.drop_local();
        }
        self.failed(live, error)
    }

    fn failed(&self, live: &Live, error: &redis::RedisError) -> Failure {
        if link::poisons(error) {
            self.link.drop_connection(live.generation);
        }
        Failure::redis(error, self.timeout)
    }

    fn conclude(&self, outcome: Result<bool, Failure>, elapsed: Duration) -> Result<bool, Error> {
        let (result, answer) = match outcome {
            Ok(true) => (StoreResult::Stored, Ok(true)),
            Ok(false) => (StoreResult::Replayed, Ok(false)),
            Err(failure) => (failure.result, Err(failure)),
        };
        self.metrics.replay_store_operation(result, elapsed);
        match answer {
            Ok(fresh) => {
                self.note(true, "");
                Ok(fresh)
            }
            Err(failure) => {
                self.note(false, &failure.detail);
                Err(unavailable(failure.message))
            }
        }
    }

    /// Dials when there is no connection (healing without waiting for a login), else probes.
    async fn health_check(self: &Arc<Inner>) {
        let Some(live) = self.link.current() else {
            match self.dial().await {
                Ok(_) => self.note(true, ""),
                Err(DialError::Waiting) => {}
                Err(DialError::Failed(e)) => self.note(false, &link::describe(&e)),
                Err(DialError::TimedOut) => self.note(false, "connecting timed out"),
            }
            return;
        };
        match tokio::time::timeout(link::probe_budget(self.timeout), self.probe(&live)).await {
            Ok(Ok(())) => self.note(true, ""),
            Ok(Err(e)) => {
                if link::poisons(&e) && !self.cluster {
                    self.link.drop_connection(live.generation);
                }
                self.note(false, &link::describe(&e));
            }
            Err(_) => {
                self.link.drop_connection(live.generation);
                self.note(false, "the probe timed out");
            }
        }
        let now = crate::ops::wall_clock();
        let until = self.ledger().quarantine(now).map_or(0, |q| q.until.timestamp());
        self.metrics.replay_store_quarantine_until(until);
    }

    /// Logs a change of state once, not once per request.
    fn note(&self, up: bool, detail: &str) {
        let new = if up { UP } else { DOWN };
        let old = self.state.swap(new, Ordering::AcqRel);
        self.metrics.replay_store_up(up);
        if up {
            self.falling_back.store(false, Ordering::Release);
        }
        if old == new {
            return;
        }
        if up {
            tracing::info!(target: "replay_store", "shared replay store reachable");
        } else {
            tracing::error!(
                target: "replay_store",
                cause = detail,
                "shared replay store unavailable: logins answer 503 replay_store_unavailable until it is back (reconnecting with backoff)"
            );
        }
    }
}

fn unavailable(message: impl Into<String>) -> Error {
    Error::new(Code::ReplayStoreUnavailable, message)
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The record's key: the memory cache's digest ([`super::key::replay_digest`]) in hex, so that
/// no identifier is readable in the store.
pub fn key_digest(issuer: &str, assertion_id: &str) -> String {
    hex::lower(&super::key::replay_digest(issuer, assertion_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_issuer_and_id() {
        // NUL cannot occur in XML text, so the separator keeps every (issuer, id) pair apart.
        assert_ne!(key_digest("https://a/", "_x"), key_digest("https://b/", "_x"));
        assert_ne!(key_digest("https://a/", "_x"), key_digest("https://a/", "_y"));
        assert_eq!(key_digest("i", "_x").len(), 64);
    }

    #[test]
    fn each_prefix_and_bucket_has_a_judged_script_of_its_own() {
        let sha = |prefix: &str, bucket| hex::lower(&openssl::sha::sha1(judged_script(prefix, bucket).as_bytes()));
        let all: std::collections::HashSet<String> =
            ["a:", "b:"].iter().flat_map(|p| (0..epoch::BUCKETS).map(move |b| sha(p, b))).collect();
        assert_eq!(all.len(), 2 * epoch::BUCKETS, "a judgement of one must never vouch for another");
    }
}
