//! Fetching IdP metadata over HTTP(S), safely: only http/https URLs on an operator allow-list of
//! hosts (a metadata URL must not become a way to reach internal services), no redirects, a
//! global timeout, a response size limit, and only a 200 answer counts.

use std::time::Duration;

/// `[metadata]`: how metadata URLs are fetched and refreshed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataSettings {
    /// Hosts metadata may be fetched from (exact, case-insensitive). Required when any tenant
    /// sets `metadata_url`.
    pub allowed_hosts: Vec<String>,
    pub timeout_seconds: u64,
    pub max_bytes: usize,
    /// Refresh interval when the metadata gives no cacheDuration.
    pub refresh_seconds: u64,
    /// Bounds applied to cacheDuration.
    pub min_refresh_seconds: u64,
    pub max_refresh_seconds: u64,
    /// How long the last good keys stay in use while refreshes fail.
    pub max_staleness_seconds: u64,
    /// At most one on-demand refresh per tenant per this interval (a response signed by a key
    /// the tenant does not know triggers one).
    pub on_demand_min_interval_seconds: u64,
    /// Log a warning when a trusted certificate expires within this many days.
    pub expiry_warning_days: i64,
    /// Metadata fetches running at once (start-up, refresh rounds).
    pub max_concurrent_fetches: usize,
}

impl Default for MetadataSettings {
    fn default() -> Self {
        MetadataSettings {
            allowed_hosts: Vec::new(),
            timeout_seconds: 10,
            max_bytes: 2 * 1024 * 1024,
            refresh_seconds: 3600,
            min_refresh_seconds: 300,
            max_refresh_seconds: 86_400,
            max_staleness_seconds: 2 * 86_400,
            on_demand_min_interval_seconds: 30,
            expiry_warning_days: 30,
            max_concurrent_fetches: 16,
        }
    }
}

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
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| format!("{url:?}: only http and https metadata URLs are allowed"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(format!("{url:?}: credentials in metadata URLs are not allowed"));
        }
        let host = if let Some(bracketed) = authority.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or_default()
        } else {
            authority.rsplit_once(':').map_or(authority, |(host, _port)| host)
        };
        let host = host.to_ascii_lowercase();
        if host.is_empty() || !self.allowed_hosts.contains(&host) {
            return Err(format!("{url:?}: host {host:?} is not in [metadata] allowed_hosts"));
        }
        Ok(())
    }

    /// GETs `url`; anything but a 200 within the limits is an error.
    pub fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self.check_url(url)?;
        let mut response = self.agent.get(url).call().map_err(|e| format!("fetching {url}: {e}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("fetching {url}: HTTP {status}"));
        }
        response
            .body_mut()
            .with_config()
            .limit(self.max_bytes as u64)
            .read_to_vec()
            .map_err(|e| format!("reading {url}: {e} (limit {} bytes)", self.max_bytes))
    }
}
