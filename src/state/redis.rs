//! The replay record shared by every replica: one Redis (or Redis Cluster) key per accepted
//! assertion, set with `SET key 1 NX PX ttl`, so that of any number of replicas seeing the same
//! assertion at once exactly one is told it is the first.
//!
//! The connection lives on a runtime of its own (one thread): the transports' event loops only
//! await the answer, the connection survives whichever loop happened to open it, and the CLI
//! and tests can use the store without a runtime of theirs. It connects in the background at
//! start (a store that is down must not keep the service from starting) and reconnects by
//! itself; every operation, connecting included, is bounded by the timeout.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{IntoConnectionInfo as _, TlsCertificates};
use tokio::sync::OnceCell;

use crate::config::{RedisEndpoints, RedisSettings};
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

/// A Redis-backed record of first uses.
pub struct RedisStore {
    inner: Arc<Inner>,
    /// `Some` until dropped; taken then so that dropping never blocks on (or panics in) an
    /// async context.
    runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    client: Client,
    connection: OnceCell<Connection>,
    key_prefix: String,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// Last known state, for logging once per change: 0 unknown, 1 up, 2 down.
    state: AtomicU8,
    /// Whether this outage's first fallback was logged.
    falling_back: std::sync::atomic::AtomicBool,
}

enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

const UP: u8 = 1;
const DOWN: u8 = 2;

impl RedisStore {
    /// Builds the client (nothing is contacted yet) and starts connecting in the background.
    pub fn new(target: &RedisSettings, metrics: Arc<Metrics>) -> Result<RedisStore, StoreError> {
        metrics.enable_replay_store();
        let client = client(target).map_err(StoreError::Client)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("replay-store")
            .enable_all()
            .build()
            .map_err(StoreError::Thread)?;
        let inner = Arc::new(Inner {
            client,
            connection: OnceCell::new(),
            key_prefix: target.key_prefix.clone(),
            timeout: target.timeout,
            metrics,
            state: AtomicU8::new(0),
            falling_back: std::sync::atomic::AtomicBool::new(false),
        });
        let warm = inner.clone();
        runtime.spawn(async move {
            let up = matches!(tokio::time::timeout(warm.timeout, warm.connection()).await, Ok(Ok(_)));
            warm.note(up, "initial connection");
        });
        Ok(RedisStore { inner, runtime: Some(runtime) })
    }

    /// Records `(issuer, assertion_id)` until `until`: `Ok(true)` for its first use, `Ok(false)`
    /// if any replica recorded it before, `replay_store_unavailable` if the store could not say.
    pub async fn first_use(
        &self,
        issuer: &str,
        assertion_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let key = format!("{}{}", self.inner.key_prefix, key_digest(issuer, assertion_id));
        // Redis expires the key itself; at least a second, as the memory cache does.
        let ttl_ms = (until - now).num_milliseconds().max(1_000);
        let inner = self.inner.clone();
        let Some(runtime) = &self.runtime else {
            return Err(unavailable("the replay store is shutting down"));
        };
        runtime
            .spawn(async move { inner.set_nx(key, ttl_ms).await })
            .await
            .unwrap_or_else(|_| Err(unavailable("the replay store's task ended")))
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
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Inner {
    /// The shared connection, opened on first need. A failed attempt leaves the cell empty, so
    /// the next operation tries again; once open, the connection reconnects by itself.
    async fn connection(&self) -> redis::RedisResult<Connection> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                match &self.client {
                    Client::Single(client) => {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(self.timeout)
                            .set_response_timeout(self.timeout)
                            // Reconnection is retried by the next operation, not in a loop here.
                            .set_number_of_retries(1)
                            .set_max_delay(self.timeout.as_millis() as u64);
                        client.get_connection_manager_with_config(config).await.map(Connection::Single)
                    }
                    Client::Cluster(client) => client.get_async_connection().await.map(Connection::Cluster),
                }
            })
            .await?;
        Ok(connection.clone())
    }

    async fn set_nx(&self, key: String, ttl_ms: i64) -> Result<bool, Error> {
        let started = crate::ops::monotonic();
        let mut command = redis::cmd("SET");
        command.arg(&key).arg(1).arg("NX").arg("PX").arg(ttl_ms);
        let operation = async {
            let reply: redis::RedisResult<Option<String>> = match self.connection().await? {
                Connection::Single(mut connection) => command.query_async(&mut connection).await,
                Connection::Cluster(mut connection) => command.query_async(&mut connection).await,
            };
            reply
        };
        let (result, answer) = match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(Some(_))) => (StoreResult::Stored, Ok(true)),
            Ok(Ok(None)) => (StoreResult::Replayed, Ok(false)),
            // The connection's own response timeout (the same bound) usually fires first.
            Ok(Err(e)) if e.is_timeout() => {
                let message = format!("the replay store did not answer within {} ms", self.timeout.as_millis());
                (StoreResult::Timeout, Err((message, e.to_string())))
            }
            Ok(Err(e)) => {
                let message = format!("the replay store could not record the assertion: {}", e.kind_text());
                (StoreResult::Error, Err((message, e.to_string())))
            }
            Err(_) => {
                let message = format!("the replay store did not answer within {} ms", self.timeout.as_millis());
                (StoreResult::Timeout, Err((message.clone(), message)))
            }
        };
        self.metrics.replay_store_operation(result, started.elapsed());
        match answer {
            Ok(fresh) => {
                self.note(true, "");
                Ok(fresh)
            }
            Err((message, detail)) => {
                self.note(false, &detail);
                Err(unavailable(message))
            }
        }
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
                detail,
                "shared replay store unavailable: logins answer 503 replay_store_unavailable until it is back"
            );
        }
    }
}

trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for redis::RedisError {
    /// The error's category, without the server's text (which may echo the key).
    fn kind_text(&self) -> String {
        if self.is_timeout() {
            "timed out".into()
        } else if self.is_io_error() || self.is_connection_refusal() || self.is_connection_dropped() {
            "connection failed".into()
        } else {
            format!("{:?}", self.kind())
        }
    }
}

fn unavailable(message: impl Into<String>) -> Error {
    Error::new(Code::ReplayStoreUnavailable, message)
}

/// Hex SHA-256 of `issuer || 0x00 || assertion_id`: the same scope as the memory cache, a
/// fixed-length key whatever the document says, and no identifier readable in the store.
pub fn key_digest(issuer: &str, assertion_id: &str) -> String {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(issuer.as_bytes());
    hasher.update(&[0]);
    hasher.update(assertion_id.as_bytes());
    hasher.finish().iter().map(|b| format!("{b:02x}")).collect()
}

fn client(target: &RedisSettings) -> redis::RedisResult<Client> {
    let certificates = || TlsCertificates { client_tls: None, root_cert: target.ca_pem.clone() };
    let password = target.password.as_ref().map(|secret| secret.0.clone());
    if let RedisEndpoints::Cluster(urls) = &target.endpoints {
        let mut builder = ClusterClientBuilder::new(urls.clone())
            .connection_timeout(target.timeout)
            .response_timeout(target.timeout)
            .retries(1);
        if let Some(username) = &target.username {
            builder = builder.username(username.clone());
        }
        if let Some(password) = password {
            builder = builder.password(password);
        }
        if target.ca_pem.is_some() {
            builder = builder.certs(certificates());
        }
        return builder.build().map(Client::Cluster);
    }
    let url = match &target.endpoints {
        RedisEndpoints::Single(url) => url.as_str(),
        RedisEndpoints::Cluster(_) => "",
    };
    let mut info = url.into_connection_info()?;
    info.redis.username.clone_from(&target.username);
    info.redis.password = password;
    let client = if target.ca_pem.is_some() {
        redis::Client::build_with_tls(info, certificates())?
    } else {
        redis::Client::open(info)?
    };
    Ok(Client::Single(client))
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
