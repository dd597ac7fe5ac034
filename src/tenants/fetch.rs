//! Fetching IdP metadata over HTTP(S), safely: only http/https URLs on an operator allow-list of
//! hosts (a metadata URL must not become a way to reach internal services), no redirects, a
//! global timeout, a response size limit, and only a 200 answer counts.

use std::fmt;
use std::time::Duration;

use crate::config::MetadataSettings;

/// Why a metadata load did not install new keys. Shown in the tenant view (`metadata.result`)
/// and the log as its `Display`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// Not http(s), or the host is not in `[metadata] allowed_hosts`.
    UrlRefused(String),
    /// No answer: connection, TLS, timeout.
    Unreachable { url: String, reason: String },
    /// An answer other than 200.
    Status { url: String, status: u16 },
    /// The body could not be read within `max_bytes`.
    Body { url: String, reason: String, limit: usize },
    /// The document is not acceptable metadata (the core's reason).
    Invalid(String),
    /// It speaks for another issuer than the tenant's.
    Issuer(String),
    /// It publishes a key below the tenant's strength floor.
    WeakKey(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::UrlRefused(why) | MetadataError::Invalid(why) | MetadataError::Issuer(why) => {
                f.write_str(why)
            }
            MetadataError::Unreachable { url, reason } => write!(f, "fetching {url}: {reason}"),
            MetadataError::Status { url, status } => write!(f, "fetching {url}: HTTP {status}"),
            MetadataError::Body { url, reason, limit } => write!(f, "reading {url}: {reason} (limit {limit} bytes)"),
            MetadataError::WeakKey(problem) => write!(f, "metadata {problem}"),
        }
    }
}

impl std::error::Error for MetadataError {}

pub struct Fetcher {
    agent: ureq::Agent,
    allowed_hosts: Vec<String>,
    max_bytes: usize,
}

impl Fetcher {
    pub fn new(settings: &MetadataSettings) -> Fetcher {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(settings.timeout_seconds)))
            .max_redirects(0)
            .http_status_as_error(false)
            .tls_config(ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::NativeTls).build())
            .build();
        Fetcher {
            agent: config.into(),
            allowed_hosts: settings.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            max_bytes: settings.max_bytes,
        }
    }

    /// Refuses URLs that are not http(s) or whose host is not allow-listed.
    pub fn check_url(&self, url: &str) -> Result<(), MetadataError> {
        crate::config::metadata::check_url(&self.allowed_hosts, url).map_err(MetadataError::UrlRefused)
    }

    /// GETs `url`; anything but a 200 within the limits is an error.
    pub fn fetch(&self, url: &str) -> Result<Vec<u8>, MetadataError> {
        self.check_url(url)?;
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| MetadataError::Unreachable { url: url.to_string(), reason: e.to_string() })?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(MetadataError::Status { url: url.to_string(), status });
        }
        response.body_mut().with_config().limit(self.max_bytes as u64).read_to_vec().map_err(|e| MetadataError::Body {
            url: url.to_string(),
            reason: e.to_string(),
            limit: self.max_bytes,
        })
    }
}
