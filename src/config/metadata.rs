//! `[metadata]`: how metadata URLs are fetched and refreshed, and which URLs may be fetched at
//! all (an operator allow-list of hosts: a metadata URL must not become a way to reach internal
//! services). The fetching itself is `tenants::fetch`.

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

impl MetadataSettings {
    /// Refuses URLs that are not http(s) or whose host is not in `allowed_hosts`.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        check_url(&self.allowed_hosts, url)
    }
}

/// Refuses URLs that are not http(s) or whose host is not allow-listed.
pub fn check_url(allowed_hosts: &[String], url: &str) -> Result<(), String> {
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
    if host.is_empty() || !allowed_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(&host)) {
        return Err(format!("{url:?}: host {host:?} is not in [metadata] allowed_hosts"));
    }
    Ok(())
}
