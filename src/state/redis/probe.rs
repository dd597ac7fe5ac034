//! What the store says about itself: every bucket's marker and server identity, the servers'
//! eviction policies and evictions, read on every new connection, every second, and before a
//! record on a server without the judged script counts; and the declaration of a loss they show.

use std::sync::atomic::Ordering;

use super::epoch::{self, Declare, Identity, LossReason, Marker, Server, Sighting, BUCKETS};
use super::link::{self, Live};
use super::{judged_script, lock, rfc3339, Inner};

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

impl Inner {
    /// Reads the servers' eviction policies and evictions, then every bucket's marker and
    /// server identity (one pipelined round trip), and declares what they show.
    pub(super) async fn probe(&self, live: &Live) -> redis::RedisResult<()> {
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
        self.set_get.store(!servers.is_empty() && servers.iter().all(Server::set_get), Ordering::Release);
        let before = std::mem::replace(&mut *lock(&self.servers), servers.clone());
        if epoch::evicted_since(&before, &servers) {
            let (reason, declare) = self.ledger().lost(LossReason::Evictions, self.fresh_marker());
            if let Some(reason) = reason {
                let _ = self.lost(reason, declare, live).await;
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
        self.judge_buckets(live, &replies, fresh).await?;
        self.metrics.replay_store_judged("probe");
        Ok(())
    }

    /// One bucket's marker and identity, before a record on a server without the judged script
    /// counts.
    pub(super) async fn check_bucket(&self, live: &Live, bucket: usize) -> redis::RedisResult<()> {
        let fresh = self.fresh_marker();
        let mut command = redis::cmd("EVAL");
        command.arg(IDENTITY).arg(2).arg(self.marker_key(bucket)).arg(self.identity_key(bucket)).arg(fresh.encode());
        let reply: IdentityReply = live.connection.clone().query(&command).await?;
        let mut replies = vec![Default::default(); BUCKETS];
        replies[bucket] = reply;
        self.judge_buckets_only(live, &replies, &[bucket], fresh).await?;
        self.metrics.replay_store_judged("record");
        Ok(())
    }

    async fn judge_buckets(&self, live: &Live, replies: &[IdentityReply], fresh: Marker) -> redis::RedisResult<()> {
        let all: Vec<usize> = (0..replies.len().min(BUCKETS)).collect();
        self.judge_buckets_only(live, replies, &all, fresh).await
    }

    /// Judges what the identity script saw of `buckets`, declares at most one loss, then
    /// records each bucket's server as the one now holding it, and marks the server judged.
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
        // Only after a loss was declared in every bucket: the identity is what tells a later
        // probe, or a replica started later, that the server changed. A bucket the declaration
        // could not reach keeps its old identity (and the server stays unjudged), so the next
        // probe, here or on another replica, sees the change again instead of a new identity
        // beside an old marker (a failover to a lagging replica would then pass unseen there).
        if let Some((reason, declare)) = found {
            if !self.lost(reason, declare, live).await {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "the loss could not be declared in every bucket; the server stays unjudged",
                )));
            }
        }
        for &bucket in buckets {
            let run_id = &replies[bucket].3;
            // Loaded last, after any loss was declared: a record that finds it on a server
            // trusts the server for this bucket (see `judged_script`). A server that does not say who it is gets it
            // too, without an identity (its markers alone judge it).
            let identity = if run_id.is_empty() {
                String::new()
            } else {
                Identity { run_id: run_id.clone(), replid: replies[bucket].4.clone(), ..Identity::default() }.record()
            };
            let mut judged = redis::cmd("EVAL");
            judged.arg(judged_script(&self.key_prefix, bucket)).arg(1).arg(self.identity_key(bucket)).arg(identity);
            connection.query::<()>(&judged).await?;
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
    /// False when a bucket could not be told.
    pub(super) async fn lost(&self, reason: LossReason, declare: Declare, live: &Live) -> bool {
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
            Declare::Nothing => return true,
            Declare::WhereMissing(marker) => (marker, true),
            Declare::Everywhere(marker) => (marker, false),
        };
        let keys: Vec<String> = (0..BUCKETS).map(|bucket| self.marker_key(bucket)).collect();
        let mut connection = live.connection.clone();
        let value = marker.encode();
        let (ledger, written) = (self.ledger.clone(), marker.clone());
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
            // Here, not after the await below: a request that gives up waiting drops that
            // await, and the ledger would stay "declaring" until the next loss (an old marker
            // seen meanwhile would not read as a rewind).
            lock(&ledger).declared(&written);
            failed
        };
        let failed = self.handle.spawn(write).await.unwrap_or(BUCKETS);
        if failed > 0 {
            tracing::warn!(target: "replay_store", failed, "could not write the loss marker into every bucket");
        }
        failed == 0
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
