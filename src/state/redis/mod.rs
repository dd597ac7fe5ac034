//! The replay record shared by every replica: one Redis key per accepted assertion, set with
//! `SET key 1 NX PX ttl` inside a script that also reads (or writes, when missing) its
//! bucket's epoch marker, so that of any number of replicas seeing the same assertion at once
//! exactly one is told it is the first, and a store that lost records is caught in the same
//! round trip ([`epoch`]).
//!
//! Requests talk to the connection from their own event loop (no hop to another thread per
//! record); dialling, probing the servers, declaring losses and the once-a-second health
//! check run on a runtime of the store's own (one thread), where the connection's driver
//! lives, so it survives whichever loop first needed it and a declaration is never cut short
//! by a request that gave up. A store that is down does not keep the service from starting;
//! the connection heals by itself ([`link`]).

mod epoch;
mod link;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use self::epoch::{Declare, Identity, Ledger, LossReason, Marker, Server, Sighting, BUCKETS};
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

/// KEYS: the record, its bucket's marker. ARGV: the record's TTL in ms, the marker to write
/// if the bucket has none, "1" to read `evicted_keys`. One script, so the marker read and the
/// record written are one atomic step on the server that holds both (one hash tag).
const RECORD: &str = r"
local marker = redis.call('GET', KEYS[2])
local created = 0
if not marker then
  redis.call('SET', KEYS[2], ARGV[2])
  marker = ARGV[2]
  created = 1
end
local stored = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
local evicted = -1
if ARGV[3] == '1' then
  local count = string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)')
  if count then evicted = tonumber(count) end
end
if stored then stored = 1 else stored = 0 end
return {stored, marker, created, evicted}
";

/// KEYS: a bucket's marker, the identity of the server that held the bucket when last
/// probed. ARGV: the marker to write if there is none. Answers the marker, whether it was
/// written, the identity recorded before, and this server's: run_id, replication ids, AOF on,
/// `evicted_keys`. The identity is recorded in the store (and so kept, replicated and lost
/// with the records), so that a replica that starts after a restart still sees it.
const IDENTITY: &str = r"
local marker = redis.call('GET', KEYS[1])
local created = 0
if not marker then
  redis.call('SET', KEYS[1], ARGV[1])
  marker = ARGV[1]
  created = 1
end
local server = redis.call('INFO', 'server')
local replication = redis.call('INFO', 'replication')
local persistence = redis.call('INFO', 'persistence')
local stats = redis.call('INFO', 'stats')
local run_id = string.match(server, 'run_id:(%w+)') or ''
local replid = string.match(replication, 'master_replid:(%w+)') or ''
local replid2 = string.match(replication, 'master_replid2:(%w+)') or ''
local aof = string.match(persistence, 'aof_enabled:(%d)') or '0'
local evicted = tonumber(string.match(stats, 'evicted_keys:(%d+)') or '-1')
local recorded = redis.call('GET', KEYS[2]) or ''
return {marker, created, recorded, run_id, replid, replid2, aof, evicted}
";

/// The identity script's answer.
type IdentityReply = (String, i64, String, String, String, String, String, i64);

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
    script_sha: String,
    /// Whether a cluster (no single server to probe before records flow).
    cluster: bool,
    key_prefix: String,
    timeout: Duration,
    min_replicas_acked: u32,
    metrics: Arc<Metrics>,
    handle: tokio::runtime::Handle,
    ledger: Mutex<Ledger>,
    /// The servers as last probed (one, or every master of a cluster).
    servers: Mutex<Vec<Server>>,
    /// A server may evict records: the script then reads `evicted_keys` with every record.
    may_evict: AtomicBool,
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
            script_sha: hex(&openssl::sha::sha1(RECORD.as_bytes())),
            cluster,
            key_prefix: target.key_prefix.clone(),
            timeout: target.timeout,
            min_replicas_acked: target.min_replicas_acked,
            metrics,
            handle: runtime.handle().clone(),
            ledger: Mutex::new(Ledger::new(max_assertion_age_seconds + MAX_SKEW_SECONDS)),
            servers: Mutex::new(Vec::new()),
            may_evict: AtomicBool::new(false),
            marker_id: hex(&id),
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

/// The script's answer: stored (1) or not, the bucket's marker, whether the script wrote it,
/// and `evicted_keys` (-1 when not asked).
type Reply = (i64, String, i64, i64);

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
        let evictions = if self.may_evict.load(Ordering::Acquire) { "1" } else { "0" };
        let mut connection = live.connection.clone();
        let candidate = self.fresh_marker();
        let mut command = redis::cmd("EVALSHA");
        command.arg(&self.script_sha).arg(2).arg(&record_key).arg(&marker_key).arg(ttl_ms).arg(candidate.encode());
        command.arg(evictions);
        let reply: redis::RedisResult<Reply> = match connection.query(&command).await {
            // Scripts are not persisted nor replicated: a server without ours was restarted or
            // promoted (or never ran it). Before it records anything, the bucket's server is
            // judged against the identity recorded in the store: a cluster reconnects to a
            // promoted node by itself, so this is where its failover is seen first.
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                self.check_bucket(&live, bucket).await.map_err(|e| self.failed(&live, &e))?;
                let candidate = self.fresh_marker();
                let mut command = redis::cmd("EVAL");
                command.arg(RECORD).arg(2).arg(&record_key).arg(&marker_key).arg(ttl_ms).arg(candidate.encode());
                connection.query(command.arg(evictions)).await
            }
            reply => reply,
        };
        let (stored, marker, created, evicted) = reply.map_err(|e| self.failed(&live, &e))?;
        if self.min_replicas_acked > 0 {
            let mut wait = redis::cmd("WAIT");
            wait.arg(self.min_replicas_acked).arg(self.timeout.as_millis() as u64);
            let acked: i64 = connection.query(&wait).await.map_err(|e| self.failed(&live, &e))?;
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
        let sighting =
            Sighting { bucket, marker: &marker, created: created == 1, evicted_keys: u64::try_from(evicted).ok() };
        let (loss, declare) = self.ledger().see(&sighting, candidate);
        if let Some(reason) = loss {
            self.lost(reason, declare, &live).await;
        }
        Ok(stored == 1)
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

    /// Reads the servers' eviction policies and evictions, then every bucket's marker and
    /// server identity (one pipelined round trip), and declares what they show.
    async fn probe(&self, live: &Live) -> redis::RedisResult<()> {
        let mut connection = live.connection.clone();
        let info: redis::Value = connection.query(&redis::cmd("INFO")).await?;
        let mut texts_ = Vec::new();
        texts(&info, &mut texts_);
        let servers: Vec<Server> = texts_.iter().map(|text| Server::parse(text)).collect();
        // A URL that names a replica (or a master demoted since) would answer every record with
        // READONLY: refuse the connection instead, so the dial backs off and Sentinel is asked.
        if !self.cluster && servers.iter().any(|s| !s.master) {
            return Err(redis::RedisError::from((redis::ErrorKind::ReadOnly, "the server is a replica, not a master")));
        }
        self.eviction_policy(&servers);
        let before = std::mem::replace(&mut *lock(&self.servers), servers.clone());
        if epoch::evicted_since(&before, &servers) {
            let (reason, declare) = self.ledger().lost(LossReason::Evictions, self.fresh_marker());
            if let Some(reason) = reason {
                self.lost(reason, declare, live).await;
            }
        }
        let fresh = self.fresh_marker();
        let identity = |bucket: usize| {
            let mut command = redis::cmd("EVAL");
            command.arg(IDENTITY).arg(2).arg(self.marker_key(bucket)).arg(self.identity_key(bucket));
            command.arg(fresh.encode());
            command
        };
        let replies: Vec<IdentityReply> = match &mut connection {
            // One round trip for all buckets.
            link::Connection::Single(c) => {
                let mut pipe = redis::pipe();
                for bucket in 0..BUCKETS {
                    pipe.add_command(identity(bucket));
                }
                pipe.query_async(c).await?
            }
            // A cluster pipeline cannot cross slots: the buckets are asked at once instead.
            link::Connection::Cluster(c) => {
                let asks = (0..BUCKETS).map(|bucket| {
                    let (command, mut c) = (identity(bucket), c.clone());
                    async move { command.query_async::<IdentityReply>(&mut c).await }
                });
                futures_util::future::join_all(asks).await.into_iter().collect::<redis::RedisResult<_>>()?
            }
        };
        self.judge_buckets(live, &replies, fresh).await
    }

    /// One bucket's marker and identity, before a server without our script records anything.
    async fn check_bucket(&self, live: &Live, bucket: usize) -> redis::RedisResult<()> {
        let fresh = self.fresh_marker();
        let mut command = redis::cmd("EVAL");
        command.arg(IDENTITY).arg(2).arg(self.marker_key(bucket)).arg(self.identity_key(bucket)).arg(fresh.encode());
        let reply: IdentityReply = live.connection.clone().query(&command).await?;
        let mut replies = vec![Default::default(); BUCKETS];
        replies[bucket] = reply;
        self.judge_buckets_only(live, &replies, &[bucket], fresh).await
    }

    async fn judge_buckets(&self, live: &Live, replies: &[IdentityReply], fresh: Marker) -> redis::RedisResult<()> {
        let all: Vec<usize> = (0..replies.len().min(BUCKETS)).collect();
        self.judge_buckets_only(live, replies, &all, fresh).await
    }

    /// Judges what the identity script saw of `buckets`, declares at most one loss, then
    /// records each bucket's server as the one now holding it.
    async fn judge_buckets_only(
        &self,
        live: &Live,
        replies: &[IdentityReply],
        buckets: &[usize],
        fresh: Marker,
    ) -> redis::RedisResult<()> {
        let mut connection = live.connection.clone();
        let mut durable: Option<bool> = None;
        let mut found: Option<(LossReason, Declare)> = None;
        for &bucket in buckets {
            let (marker, created, recorded, run_id, replid, replid2, aof, evicted) = &replies[bucket];
            let identity = Identity {
                run_id: run_id.clone(),
                replid: replid.clone(),
                replid2: replid2.clone(),
                aof_enabled: aof == "1",
            };
            if let Ok(evicted) = u64::try_from(*evicted) {
                self.ledger().evictions_baseline(bucket, evicted);
            }
            let sighting = Sighting { bucket, marker, created: *created == 1, evicted_keys: None };
            let (loss, declare) = self.ledger().see(&sighting, fresh.clone());
            if let Some(reason) = loss {
                found.get_or_insert((reason, declare));
            }
            let changed = !recorded.is_empty() && !recorded.starts_with(&format!("{run_id} "));
            if changed && identity.aof_enabled && durable.is_none() {
                durable = Some(self.appendfsync_always(&mut connection).await);
            }
            if let Some(reason) = epoch::judge(recorded, &identity, durable.unwrap_or(false)) {
                let (_, declare) = self.ledger().lost(reason, fresh.clone());
                found = Some((reason, declare));
            }
        }
        if let Some((reason, declare)) = found {
            self.lost(reason, declare, live).await;
        }
        // Only after a loss was declared: the identity is what tells a later probe, or a replica
        // started later, that the server changed.
        for &bucket in buckets {
            let run_id = &replies[bucket].3;
            if run_id.is_empty() {
                continue;
            }
            let identity =
                Identity { run_id: run_id.clone(), replid: replies[bucket].4.clone(), ..Identity::default() };
            let mut set = redis::cmd("SET");
            set.arg(self.identity_key(bucket)).arg(identity.record());
            connection.query::<()>(&set).await?;
        }
        Ok(())
    }

    /// `appendfsync always`, as far as the ACL lets us read it (CONFIG is often denied, and
    /// then a restart cannot be proven harmless).
    async fn appendfsync_always(&self, connection: &mut link::Connection) -> bool {
        if self.cluster {
            return false;
        }
        let mut config = redis::cmd("CONFIG");
        config.arg("GET").arg("appendfsync");
        let reply: redis::RedisResult<Vec<String>> = connection.query(&config).await;
        matches!(reply.as_deref(), Ok([_, value]) if value == "always")
    }

    fn eviction_policy(&self, servers: &[Server]) {
        let may_evict = servers.iter().any(Server::may_evict);
        let first = lock(&self.servers).is_empty();
        if self.may_evict.swap(may_evict, Ordering::AcqRel) == may_evict && !first {
            return;
        }
        self.metrics.replay_store_eviction_policy_safe(!may_evict);
        if may_evict {
            let policy = servers.iter().find(|s| s.may_evict()).map(|s| s.eviction_policy.clone()).unwrap_or_default();
            tracing::warn!(
                target: "replay_store",
                policy,
                "the replay store's maxmemory-policy can evict records: set noeviction. Until then every eviction is treated as a loss of records, and logins issued before it are refused with replay_state_lost"
            );
        }
    }

    /// Logs and counts a loss, then tells the store (and so every replica). The writes run on
    /// the store's runtime: a request that gives up waiting does not cut a declaration short.
    async fn lost(&self, reason: LossReason, declare: Declare, live: &Live) {
        let now = crate::ops::wall_clock();
        let quarantine = self.ledger().quarantine(now);
        let until = quarantine.map_or(0, |q| q.until.timestamp());
        self.metrics.replay_store_loss(reason.as_str(), until);
        tracing::error!(
            target: "replay_store",
            reason = reason.as_str(),
            since = quarantine.map(|q| rfc3339(q.since)).unwrap_or_default(),
            "the replay store lost records: assertions issued before the loss are refused (replay_state_lost); fresh logins pass"
        );
        let (marker, only_where_missing) = match declare {
            Declare::Nothing => return,
            Declare::WhereMissing(marker) => (marker, true),
            Declare::Everywhere(marker) => (marker, false),
        };
        let keys: Vec<String> = (0..BUCKETS).map(|bucket| self.marker_key(bucket)).collect();
        let mut connection = live.connection.clone();
        let value = marker.encode();
        let write = async move {
            let mut failed = 0;
            for key in keys {
                let mut set = redis::cmd("SET");
                set.arg(key).arg(&value);
                if only_where_missing {
                    set.arg("NX");
                }
                // A bucket not told now learns of the loss from this replica's next probe, or
                // its own marker check: the quarantine here is already in force.
                if connection.query::<Option<String>>(&set).await.is_err() {
                    failed += 1;
                }
            }
            failed
        };
        let failed = self.handle.spawn(write).await.unwrap_or(BUCKETS);
        if failed > 0 {
            tracing::warn!(target: "replay_store", failed, "could not write the loss marker into every bucket");
        }
        self.ledger().declared(&marker);
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

/// Every text in an `INFO` reply: one server's, or a cluster's map of node to text.
fn texts(value: &redis::Value, into: &mut Vec<String>) {
    match value {
        redis::Value::BulkString(bytes) => into.push(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::VerbatimString { text, .. } | redis::Value::SimpleString(text) => into.push(text.clone()),
        redis::Value::Map(pairs) => pairs.iter().for_each(|(_, v)| texts(v, into)),
        redis::Value::Array(values) => values.iter().for_each(|v| texts(v, into)),
        _ => {}
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of `issuer || 0x00 || assertion_id`: the same scope as the memory cache, a
/// fixed-length key whatever the document says, and no identifier readable in the store.
pub fn key_digest(issuer: &str, assertion_id: &str) -> String {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(issuer.as_bytes());
    hasher.update(&[0]);
    hasher.update(assertion_id.as_bytes());
    hex(&hasher.finish())
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
}
