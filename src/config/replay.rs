//! `[replay]`: where accepted assertions are recorded. `memory` (the default) is per process;
//! `redis` is shared by every replica and survives their restarts: one server (`url`), a
//! Sentinel-managed master (`sentinel_urls`), or a Redis Cluster (`cluster_urls`).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use redis::IntoConnectionInfo as _;
use toml::Table;

use super::reader::Reader;

/// `[replay]` as read from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaySettings {
    /// `None`: the in-process cache (`store = "memory"`).
    pub redis: Option<RedisSettings>,
    /// The oldest signed IssueInstant accepted (the core's `Limits`), and so the longest any
    /// record must live, and how long a quarantine after a loss of records lasts.
    pub max_assertion_age_seconds: i64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings { redis: None, max_assertion_age_seconds: DEFAULT_MAX_ASSERTION_AGE_SECONDS }
    }
}

/// `store = "redis"`: everything needed to reach the store, files already read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    /// One endpoint (`url`) or the seed nodes of a Redis Cluster (`cluster_urls`).
    pub endpoints: RedisEndpoints,
    pub username: Option<String>,
    /// Read from `password_file`; never written in the configuration itself.
    pub password: Option<Secret>,
    /// PEM certificates from `ca_file`: the CA a `rediss://` server must chain to.
    pub ca_pem: Option<Vec<u8>>,
    pub key_prefix: String,
    /// One store operation, connecting included.
    pub timeout: Duration,
    /// RELAXATION: while the store is unreachable, record in this process only.
    pub allow_memory_fallback_when_unavailable: bool,
    /// After each record, `WAIT` for this many replicas to acknowledge it (0: do not wait);
    /// fewer within `timeout` is `replay_store_unavailable`.
    pub min_replicas_acked: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisEndpoints {
    Single(String),
    Cluster(Vec<String>),
    /// The master Sentinel names `master_name`, asked anew after every failure.
    Sentinel(SentinelSettings),
}

/// `sentinel_urls` and what goes with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelSettings {
    pub urls: Vec<String>,
    pub master_name: String,
    /// The Sentinels' own credentials (ACL user, `requirepass`), apart from the master's.
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// A credential that `Debug` (and so every configuration dump) never shows.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

pub const DEFAULT_KEY_PREFIX: &str = "saml-validator:";
pub const DEFAULT_TIMEOUT_MS: i64 = 200;
pub use crate::saml::policy::DEFAULT_MAX_ASSERTION_AGE_SECONDS;

const REDIS_ONLY: &[&str] = &[
    "url",
    "cluster_urls",
    "username",
    "password_file",
    "ca_file",
    "key_prefix",
    "timeout_ms",
    "allow_memory_fallback_when_unavailable",
    "sentinel_urls",
    "sentinel_master_name",
    "sentinel_username",
    "sentinel_password_file",
    "min_replicas_acked",
];

pub(super) fn read_replay(table: Option<&Table>, base: &Path, problems: &mut Vec<String>) -> ReplaySettings {
    let Some(table) = table else { return ReplaySettings::default() };
    let mut r = Reader::new(table, "replay".into(), problems);
    let store = r.string("store").unwrap_or_else(|| "memory".into());
    // A minute at least (logins take seconds, clocks drift); a week at most (a record must
    // live that long, and a quarantine after a loss lasts that long).
    let max_assertion_age_seconds =
        r.integer("max_assertion_age_seconds", DEFAULT_MAX_ASSERTION_AGE_SECONDS, 60..=7 * 86_400);
    let redis = match store.as_str() {
        "memory" => {
            // Redis keys under the memory store are a half-finished switch, not a no-op to ignore.
            for &key in REDIS_ONLY {
                if r.get(key).is_some() {
                    r.problem(key, "only means something with store = \"redis\"");
                }
            }
            None
        }
        "redis" => read_redis(&mut r, base),
        other => {
            r.problem("store", format!("{other:?} must be \"memory\" or \"redis\""));
            None
        }
    };
    r.finish();
    ReplaySettings { redis, max_assertion_age_seconds }
}

fn read_redis(r: &mut Reader<'_>, base: &Path) -> Option<RedisSettings> {
    let url = r.string("url");
    let cluster_urls = r.get("cluster_urls").is_some().then(|| r.strings("cluster_urls"));
    let sentinel_urls = r.get("sentinel_urls").is_some().then(|| r.strings("sentinel_urls"));
    let sentinel_master_name = r.string("sentinel_master_name");
    let sentinel_username = r.string("sentinel_username");
    let sentinel_password = r
        .string("sentinel_password_file")
        .and_then(|file| read_password(r, "sentinel_password_file", &base.join(file)));
    let min_replicas_acked = r.integer("min_replicas_acked", 0, 0..=64) as u32;
    let username = r.string("username");
    let password = r.string("password_file").and_then(|file| read_password(r, "password_file", &base.join(file)));
    let ca_file = r.string("ca_file");
    let key_prefix = r.string("key_prefix").unwrap_or_else(|| DEFAULT_KEY_PREFIX.into());
    let timeout_ms = r.integer("timeout_ms", DEFAULT_TIMEOUT_MS, 1..=60_000);
    let allow_memory_fallback_when_unavailable = r.boolean("allow_memory_fallback_when_unavailable", false);
    let sentinel_only = [
        ("sentinel_master_name", sentinel_master_name.is_some()),
        ("sentinel_username", sentinel_username.is_some()),
        ("sentinel_password_file", sentinel_password.is_some()),
    ];
    let endpoints = match (url, cluster_urls, sentinel_urls) {
        (Some(url), None, None) => RedisEndpoints::Single(url),
        (None, Some(urls), None) if !urls.is_empty() => RedisEndpoints::Cluster(urls),
        (None, Some(_), None) => {
            r.problem("cluster_urls", "must name at least one node");
            return None;
        }
        (None, None, Some(urls)) if !urls.is_empty() => {
            let Some(master_name) = sentinel_master_name else {
                r.problem("sentinel_master_name", "sentinel_urls needs the name the Sentinels monitor the master by");
                return None;
            };
            RedisEndpoints::Sentinel(SentinelSettings {
                urls,
                master_name,
                username: sentinel_username,
                password: sentinel_password,
            })
        }
        (None, None, Some(_)) => {
            r.problem("sentinel_urls", "must name at least one Sentinel");
            return None;
        }
        (None, None, None) => {
            r.problem("url", "store = \"redis\" needs url, sentinel_urls or cluster_urls");
            return None;
        }
        _ => {
            r.problem(
                "url",
                "set one of url (one server), sentinel_urls (a Sentinel-managed master) or cluster_urls (a Redis Cluster)",
            );
            return None;
        }
    };
    if !matches!(endpoints, RedisEndpoints::Sentinel(_)) {
        for (key, set) in sentinel_only {
            if set {
                r.problem(key, "only means something with sentinel_urls");
            }
        }
    }
    // WAIT counts the replicas of the connection's own server; a cluster spreads records over
    // masters each with their own replicas, which one WAIT cannot speak for.
    if min_replicas_acked > 0 && matches!(endpoints, RedisEndpoints::Cluster(_)) {
        r.problem("min_replicas_acked", "is not supported with cluster_urls (use url or sentinel_urls)");
    }
    let (urls, key) = match &endpoints {
        RedisEndpoints::Single(url) => (std::slice::from_ref(url), "url"),
        RedisEndpoints::Cluster(urls) => (urls.as_slice(), "cluster_urls"),
        RedisEndpoints::Sentinel(sentinel) => (sentinel.urls.as_slice(), "sentinel_urls"),
    };
    let mut tls = Vec::new();
    for url in urls {
        match check_url(url) {
            Ok(is_tls) => tls.push(is_tls),
            Err(message) => r.problem(key, message),
        }
    }
    if tls.iter().any(|t| *t) && tls.iter().any(|t| !*t) {
        r.problem(key, "mixes redis:// and rediss://; every node must use the same scheme");
    }
    let ca_pem = ca_file.and_then(|file| {
        if !tls.iter().any(|t| *t) {
            r.problem("ca_file", "only means something with rediss:// (TLS)");
        }
        read_ca(r, &base.join(file))
    });
    Some(RedisSettings {
        endpoints,
        username,
        password,
        ca_pem,
        key_prefix,
        timeout: Duration::from_millis(timeout_ms as u64),
        allow_memory_fallback_when_unavailable,
        min_replicas_acked,
    })
}

/// `Ok(true)` for `rediss://`. A password in the URL is refused: configuration files are read by
/// more people and tools than secrets are, so it belongs in `password_file`.
fn check_url(url: &str) -> Result<bool, String> {
    let tls = if url.starts_with("rediss://") {
        true
    } else if url.starts_with("redis://") {
        false
    } else {
        return Err(format!("{url:?} must start with redis:// or rediss://"));
    };
    let info = url.into_connection_info().map_err(|e| format!("{url:?} is not a Redis URL: {e}"))?;
    if info.redis.password.is_some() {
        return Err("has a password in it; put the password in password_file instead".into());
    }
    if info.redis.username.is_some() {
        return Err("has a user name in it; set username instead".into());
    }
    Ok(tls)
}

fn read_password(r: &mut Reader<'_>, key: &str, path: &Path) -> Option<Secret> {
    match std::fs::read_to_string(path) {
        // A trailing newline is how editors and `kubectl create secret --from-file` leave it.
        Ok(text) if !text.trim_end_matches(['\r', '\n']).is_empty() => {
            Some(Secret(text.trim_end_matches(['\r', '\n']).to_string()))
        }
        Ok(_) => {
            r.problem(key, format!("{} is empty", path.display()));
            None
        }
        Err(e) => {
            r.problem(key, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn read_ca(r: &mut Reader<'_>, path: &Path) -> Option<Vec<u8>> {
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) => {
            r.problem("ca_file", format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match openssl::x509::X509::stack_from_pem(&pem) {
        Ok(certificates) if !certificates.is_empty() => Some(pem),
        _ => {
            r.problem("ca_file", format!("{} holds no PEM certificate", path.display()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, base: &Path) -> (ReplaySettings, Vec<String>) {
        let table: Table = text.parse().unwrap_or_else(|e| panic!("{e}"));
        let mut problems = Vec::new();
        let settings = read_replay(Some(&table), base, &mut problems);
        (settings, problems)
    }

    fn problems(text: &str) -> Vec<String> {
        read(text, Path::new(".")).1
    }

    #[test]
    fn memory_is_the_default_and_redis_takes_its_defaults() {
        assert!(read("", Path::new(".")).0.redis.is_none());
        let (settings, problems) = read("store = \"redis\"\nurl = \"redis://10.0.0.5:6379/0\"", Path::new("."));
        assert!(problems.is_empty(), "{problems:?}");
        let redis = settings.redis.unwrap_or_else(|| panic!("no redis settings"));
        assert_eq!(redis.endpoints, RedisEndpoints::Single("redis://10.0.0.5:6379/0".into()));
        assert_eq!(redis.key_prefix, DEFAULT_KEY_PREFIX);
        assert_eq!(redis.timeout, Duration::from_millis(200));
        assert!(!redis.allow_memory_fallback_when_unavailable);
        assert_eq!(redis.min_replicas_acked, 0);
        assert_eq!(settings.max_assertion_age_seconds, 3_900);
        let (settings, problems) = read(
            "store = \"redis\"\nsentinel_urls = [\"redis://s1:26379\", \"redis://s2:26379\"]\nsentinel_master_name = \"saml\"\nmin_replicas_acked = 1",
            Path::new("."),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let redis = settings.redis.unwrap_or_else(|| panic!("no redis settings"));
        let RedisEndpoints::Sentinel(sentinel) = redis.endpoints else { panic!("not sentinel") };
        assert_eq!((sentinel.urls.len(), sentinel.master_name.as_str()), (2, "saml"));
        assert_eq!(redis.min_replicas_acked, 1);
    }

    #[test]
    fn every_bad_combination_is_reported() {
        let cases: &[(&str, &str)] = &[
            ("store = \"redis\"", "needs url, sentinel_urls or cluster_urls"),
            ("store = \"redis\"\nsentinel_urls = [\"redis://a:26379\"]", "sentinel_master_name"),
            ("store = \"redis\"\nsentinel_urls = []\nsentinel_master_name = \"m\"", "at least one Sentinel"),
            (
                "store = \"redis\"\nurl = \"redis://a\"\nsentinel_master_name = \"m\"",
                "only means something with sentinel_urls",
            ),
            (
                "store = \"redis\"\ncluster_urls = [\"redis://a\"]\nmin_replicas_acked = 1",
                "not supported with cluster_urls",
            ),
            ("store = \"redis\"\nurl = \"redis://a\"\nsentinel_urls = [\"redis://b\"]", "set one of url"),
            ("max_assertion_age_seconds = 10", "outside 60..=604800"),
            ("store = \"memcached\"", "must be \"memory\" or \"redis\""),
            ("url = \"redis://a:6379\"", "only means something with store = \"redis\""),
            ("allow_memory_fallback_when_unavailable = true", "only means something with store"),
            ("store = \"redis\"\nurl = \"redis://a\"\ncluster_urls = [\"redis://b\"]", "set one of url"),
            ("store = \"redis\"\ncluster_urls = []", "at least one node"),
            ("store = \"redis\"\nurl = \"http://a:6379\"", "must start with redis:// or rediss://"),
            ("store = \"redis\"\nurl = \"redis://:hunter2@a:6379\"", "password_file instead"),
            (
                "store = \"redis\"\nurl = \"redis://a:6379\"\nca_file = \"ca.pem\"",
                "only means something with rediss://",
            ),
            ("store = \"redis\"\ncluster_urls = [\"redis://a\", \"rediss://b\"]", "mixes redis:// and rediss://"),
            ("store = \"redis\"\nurl = \"redis://a\"\npassword_file = \"/nonexistent/pw\"", "cannot read"),
            ("store = \"redis\"\nurl = \"redis://a\"\ntimeout_ms = 0", "outside 1..=60000"),
            ("store = \"redis\"\nurl = \"redis://a\"\npassword = \"hunter2\"", "unknown key"),
        ];
        for (text, expected) in cases {
            let found = problems(text);
            assert!(found.iter().any(|p| p.starts_with("replay.") && p.contains(expected)), "{text}: {found:?}");
        }
    }

    #[test]
    fn files_are_read_relative_to_the_configuration() {
        let dir = std::env::temp_dir().join(format!("saml-validator-replay-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("empty"), "\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("ca.pem"), "not a certificate").unwrap_or_else(|e| panic!("{e}"));
        let (settings, found) =
            read("store = \"redis\"\nurl = \"rediss://a:6380\"\nusername = \"saml\"\npassword_file = \"pw\"", &dir);
        assert!(found.is_empty(), "{found:?}");
        let redis = settings.redis.unwrap_or_else(|| panic!("no redis settings"));
        assert_eq!(redis.password, Some(Secret("s3cret".into())));
        assert!(!format!("{redis:?}").contains("s3cret"), "Debug shows the password");
        let (_, found) = read("store = \"redis\"\nurl = \"redis://a\"\npassword_file = \"empty\"", &dir);
        assert!(found.iter().any(|p| p.contains("is empty")), "{found:?}");
        let (_, found) = read("store = \"redis\"\nurl = \"rediss://a\"\nca_file = \"ca.pem\"", &dir);
        assert!(found.iter().any(|p| p.contains("holds no PEM certificate")), "{found:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
