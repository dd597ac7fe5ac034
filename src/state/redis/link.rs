//! The connection to the store, rebuilt after every failure, whatever its kind: an I/O error,
//! but also a server that answers `NOAUTH`/`WRONGPASS` (a password changed), `READONLY` (a
//! master demoted under us), `LOADING`, `MASTERDOWN` or `CLUSTERDOWN`. A connection that keeps
//! answering one of those never heals by itself (the failure is in what it negotiated), so
//! the only cure is a new one: dialled again after a bounded, jittered backoff, through the
//! Sentinels when there are some (they name the master anew after a failover).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo as _, TlsCertificates};

use crate::config::{RedisEndpoints, RedisSettings};

/// First and longest wait between two dials: a password restored or a failover finished is
/// picked up within about half a second.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

pub(super) enum Target {
    Single(redis::Client),
    Sentinel(Sentinels),
    Cluster(redis::cluster::ClusterClient),
}

/// The Sentinels, asked all at once on every dial (each within the dial's time): one whose
/// host is gone must not hold the others' answer back.
pub(super) struct Sentinels {
    clients: Vec<redis::Client>,
    master_name: String,
    /// The master's credentials; its address is what the Sentinels answer.
    master: redis::RedisConnectionInfo,
    tls: bool,
    certificates: Option<TlsCertificates>,
}

impl Sentinels {
    async fn master(&self, config: &AsyncConnectionConfig) -> redis::RedisResult<redis::Client> {
        let mut asks = tokio::task::JoinSet::new();
        for client in &self.clients {
            let (client, config, name) = (client.clone(), config.clone(), self.master_name.clone());
            asks.spawn(async move {
                let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
                let mut ask = redis::cmd("SENTINEL");
                ask.arg("get-master-addr-by-name").arg(&name);
                let address: Option<(String, u16)> = ask.query_async(&mut connection).await?;
                address.ok_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::MasterNameNotFoundBySentinel, "no master by that name"))
                })
            });
        }
        let mut last = redis::RedisError::from((redis::ErrorKind::IoError, "no Sentinel answered"));
        while let Some(answer) = asks.join_next().await {
            match answer {
                Ok(Ok((host, port))) => {
                    let addr = if self.tls {
                        ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None }
                    } else {
                        ConnectionAddr::Tcp(host, port)
                    };
                    let info = redis::ConnectionInfo { addr, redis: self.master.clone() };
                    return match &self.certificates {
                        Some(certificates) => redis::Client::build_with_tls(info, certificates.clone()),
                        None => redis::Client::open(info),
                    };
                }
                Ok(Err(e)) => last = e,
                Err(_) => {}
            }
        }
        Err(last)
    }
}

/// The time a probe may take: its own budget beside the record's `timeout_ms`, since it is a
/// few round trips (and a cluster's INFO goes to every master).
pub(super) fn probe_budget(timeout: Duration) -> Duration {
    timeout + Duration::from_secs(1)
}

#[derive(Clone)]
pub(super) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connection {
    pub(super) async fn query<T: redis::FromRedisValue>(&mut self, command: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            Connection::Single(connection) => command.query_async(connection).await,
            Connection::Cluster(connection) => command.query_async(connection).await,
        }
    }

    /// `EXEC`'s answers to an atomic pipeline, sent in one write (a Cluster routes it by its
    /// keys, which must share a slot).
    pub(super) async fn transact(&mut self, transaction: &redis::Pipeline) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            Connection::Single(connection) => transaction.query_async(connection).await,
            Connection::Cluster(connection) => transaction.query_async(connection).await,
        }
    }
}

/// A connection and the dial it came from, so that only the failing one is dropped.
#[derive(Clone)]
pub(super) struct Live {
    pub(super) connection: Connection,
    pub(super) generation: u64,
    /// The server this dial reached (a Sentinel's answer), for the callers' threads to open
    /// their own connections to ([`Link::local`]); none for a cluster.
    server: Option<redis::Client>,
}

thread_local! {
    /// This thread's own connections: (link, dial generation, connection). Its driver runs on
    /// this thread's event loop, so a record is written and its answer read there, without
    /// waking the store's thread twice per batch (on two shared cores, those wake-ups cost
    /// more than Redis itself).
    /// `None` while one is being dialled: the thread's other records use the shared connection
    /// meanwhile, rather than each dialling its own (a burst after every reconnection).
    static LOCAL: RefCell<Vec<(u64, u64, Option<MultiplexedConnection>)>> = const { RefCell::new(Vec::new()) };
}

/// Clears a `LOCAL` slot left unfilled, when dropped (a dial that failed or was cut short).
struct Unclaimed {
    link: u64,
    generation: u64,
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|local| {
            local
                .borrow_mut()
                .retain(|(id, generation, c)| !(*id == self.link && *generation == self.generation && c.is_none()));
        });
    }
}

/// Tells links apart in `LOCAL` (tests run several stores in one process).
static LINKS: AtomicU64 = AtomicU64::new(0);

struct Backoff {
    not_before: Option<Instant>,
    delay: Duration,
}

pub(super) struct Link {
    id: u64,
    target: Target,
    timeout: Duration,
    current: Mutex<Option<Live>>,
    generation: Mutex<u64>,
    dialing: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
}

/// Why no connection could be had.
pub(super) enum DialError {
    /// Still waiting out the backoff after the last failure.
    Waiting,
    Failed(redis::RedisError),
    TimedOut,
}

impl Link {
    pub(super) fn new(settings: &RedisSettings) -> redis::RedisResult<Link> {
        Ok(Link {
            id: LINKS.fetch_add(1, Ordering::Relaxed),
            target: target(settings)?,
            // WAIT takes up to `timeout` on its own, after the record.
            timeout: settings.timeout * if settings.min_replicas_acked > 0 { 2 } else { 1 },
            current: Mutex::new(None),
            generation: Mutex::new(0),
            dialing: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff { not_before: None, delay: FIRST_BACKOFF }),
        })
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    pub(super) fn kind(&self) -> &'static str {
        match self.target {
            Target::Single(_) => "redis",
            Target::Sentinel(_) => "redis_sentinel",
            Target::Cluster(_) => "redis_cluster",
        }
    }

    pub(super) fn current(&self) -> Option<Live> {
        lock(&self.current).clone()
    }

    /// A new connection, unless the backoff says to wait, installed only once `check` (the
    /// identity probe) passed on it: no record is written on a server before it was judged.
    /// Must run on the store's runtime: the connection's driver task lives where it was dialled.
    pub(super) async fn dial<F, Fut>(&self, check: F) -> Result<Live, DialError>
    where
        F: FnOnce(Live) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<()>>,
    {
        let _one_at_a_time = self.dialing.lock().await;
        if let Some(live) = self.current() {
            return Ok(live);
        }
        if lock(&self.backoff).not_before.is_some_and(|t| crate::ops::monotonic() < t) {
            return Err(DialError::Waiting);
        }
        let generation = {
            let mut generation = lock(&self.generation);
            *generation += 1;
            *generation
        };
        let dialled = match tokio::time::timeout(self.timeout, self.open()).await {
            Ok(Ok(connection)) => {
                let (connection, server) = connection;
                let live = Live { connection, generation, server };
                match tokio::time::timeout(probe_budget(self.timeout), check(live.clone())).await {
                    Ok(Ok(())) => Ok(live),
                    Ok(Err(e)) => Err(DialError::Failed(e)),
                    Err(_) => Err(DialError::TimedOut),
                }
            }
            Ok(Err(e)) => Err(DialError::Failed(e)),
            Err(_) => Err(DialError::TimedOut),
        };
        let mut backoff = lock(&self.backoff);
        match dialled {
            Ok(live) => {
                *backoff = Backoff { not_before: None, delay: FIRST_BACKOFF };
                *lock(&self.current) = Some(live.clone());
                Ok(live)
            }
            Err(e) => {
                // Jitter keeps a tier of replicas from dialling a recovering server in step.
                let jitter = 0.75 + 0.5 * f64::from(rand_u8()) / 255.0;
                backoff.not_before = Some(crate::ops::monotonic() + backoff.delay.mul_f64(jitter));
                backoff.delay = (backoff.delay * 2).min(MAX_BACKOFF);
                Err(e)
            }
        }
    }

    /// Drops the connection of `generation` after a failure (a newer one is kept).
    pub(super) fn drop_connection(&self, generation: u64) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|live| live.generation == generation) {
            *current = None;
        }
    }

    fn config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new().set_connection_timeout(self.timeout).set_response_timeout(self.timeout)
    }

    async fn open(&self) -> redis::RedisResult<(Connection, Option<redis::Client>)> {
        let config = self.config();
        let client = match &self.target {
            Target::Single(client) => client.clone(),
            // Asked anew on every dial: after a failover the Sentinels name the new master (and
            // the probe refuses a server that is not one).
            Target::Sentinel(sentinels) => sentinels.master(&config).await?,
            Target::Cluster(client) => {
                return client.get_async_connection().await.map(|c| (Connection::Cluster(c), None));
            }
        };
        let connection = client.get_multiplexed_async_connection_with_config(&config).await?;
        Ok((Connection::Single(connection), Some(client)))
    }

    /// The calling thread's own connection to the server `live` reached (as a `Live` of the same
    /// generation, so that a failure on it drops the shared one too), dialled on first use
    /// (the caller's event loop then drives it); `live`'s own where there is none to be had
    /// (a cluster, a dial that failed). It needs no probe of its own: every record asks the
    /// server it reached whether it was judged (`SCRIPT EXISTS`), and one that was not (a name
    /// that resolves to another server now, a restart) is judged on this same connection
    /// before any answer counts.
    /// Replaced when `live` is (a new dial after any failure), so it heals with it.
    pub(super) async fn local(&self, live: &Live, probed_run_id: Option<&str>) -> Live {
        let connection = self.local_connection(live, probed_run_id).await;
        Live { connection, generation: live.generation, server: None }
    }

    async fn local_connection(&self, live: &Live, probed_run_id: Option<&str>) -> Connection {
        let Some(server) = &live.server else { return live.connection.clone() };
        let found = LOCAL.with_borrow_mut(|local| {
            let found = local.iter().find(|(id, generation, _)| *id == self.id && *generation == live.generation);
            if let Some((_, _, connection)) = found {
                return Some(connection.clone());
            }
            local.retain(|(id, _, _)| *id != self.id);
            local.push((self.id, live.generation, None));
            None
        });
        match found {
            Some(Some(connection)) => return Connection::Single(connection),
            Some(None) => return live.connection.clone(),
            None => {}
        }
        // Failed, or given up with the request that timed out: the next record tries again.
        let unclaimed = Unclaimed { link: self.id, generation: live.generation };
        let mut connection = server.get_multiplexed_async_connection_with_config(&self.config()).await.ok();
        // The shared connection's server was probed; this one must be the same server, or the
        // records of this thread and the others would land on two masters.
        if let (Some(dialled), Some(expected)) = (&mut connection, probed_run_id) {
            let info: redis::RedisResult<String> = redis::cmd("INFO").arg("server").query_async(dialled).await;
            let same = info.as_deref().is_ok_and(|info| super::epoch::Server::parse(info).run_id == expected);
            if !same {
                tracing::warn!(target: "replay_store", "a thread's own connection reached another server than the one probed; it records on the shared connection");
                connection = None;
            }
        }
        LOCAL.with_borrow_mut(|local| {
            let slot = local.iter_mut().find(|(id, generation, _)| *id == self.id && *generation == live.generation);
            if let (Some(slot), Some(connection)) = (slot, &connection) {
                slot.2 = Some(connection.clone());
            }
        });
        drop(unclaimed);
        connection.map_or_else(|| live.connection.clone(), Connection::Single)
    }

    /// Forgets the calling thread's connection after it failed: the next record dials anew.
    pub(super) fn drop_local(&self) {
        LOCAL.with_borrow_mut(|local| local.retain(|(id, _, _)| *id != self.id));
    }
}

/// Whether a failed operation leaves the connection unusable. Everything but `NOSCRIPT` and a
/// reply of an unexpected type does: a connection that answered `NOAUTH` once answers it
/// forever.
pub(super) fn poisons(error: &redis::RedisError) -> bool {
    !matches!(error.kind(), redis::ErrorKind::NoScriptError | redis::ErrorKind::TypeError)
}

/// The error's category and the server's error code (`WRONGPASS`, `READONLY`…), never the
/// server's text, which may echo a key.
pub(super) fn describe(error: &redis::RedisError) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped() {
        "connection failed".into()
    } else if let Some(code) = error.code() {
        code.to_string()
    } else {
        format!("{:?}", error.kind())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn rand_u8() -> u8 {
    let mut byte = [0u8; 1];
    // Jitter only: a failed read leaves the midpoint.
    if openssl::rand::rand_bytes(&mut byte).is_err() {
        return 128;
    }
    byte[0]
}

fn target(settings: &RedisSettings) -> redis::RedisResult<Target> {
    let certificates = || TlsCertificates { client_tls: None, root_cert: settings.ca_pem.clone() };
    let password = settings.password.as_ref().map(|secret| secret.0.clone());
    match &settings.endpoints {
        RedisEndpoints::Cluster(urls) => {
            let mut builder = ClusterClientBuilder::new(urls.clone())
                .connection_timeout(settings.timeout)
                .response_timeout(settings.timeout)
                .retries(1);
            if let Some(username) = &settings.username {
                builder = builder.username(username.clone());
            }
            if let Some(password) = password {
                builder = builder.password(password);
            }
            if settings.ca_pem.is_some() {
                builder = builder.certs(certificates());
            }
            builder.build().map(Target::Cluster)
        }
        RedisEndpoints::Single(url) => {
            let mut info = url.as_str().into_connection_info()?;
            info.redis.username.clone_from(&settings.username);
            info.redis.password = password;
            let client = if settings.ca_pem.is_some() {
                redis::Client::build_with_tls(info, certificates())?
            } else {
                redis::Client::open(info)?
            };
            Ok(Target::Single(client))
        }
        RedisEndpoints::Sentinel(sentinel) => {
            let tls = sentinel.urls.iter().any(|url| url.starts_with("rediss://"));
            let mut clients = Vec::new();
            for url in &sentinel.urls {
                let mut info = url.as_str().into_connection_info()?;
                info.redis.username.clone_from(&sentinel.username);
                info.redis.password = sentinel.password.as_ref().map(|secret| secret.0.clone());
                clients.push(if settings.ca_pem.is_some() {
                    redis::Client::build_with_tls(info, certificates())?
                } else {
                    redis::Client::open(info)?
                });
            }
            let master = redis::RedisConnectionInfo {
                username: settings.username.clone(),
                password: password.clone(),
                ..Default::default()
            };
            Ok(Target::Sentinel(Sentinels {
                clients,
                master_name: sentinel.master_name.clone(),
                master,
                tls,
                certificates: settings.ca_pem.is_some().then(certificates),
            }))
        }
    }
}
