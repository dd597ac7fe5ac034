//! Fetching IdP metadata over HTTP(S), safely: only http/https URLs on an operator allow-list of
//! hosts (a metadata URL must not become a way to reach internal services), no redirects, a
//! global timeout, a response size limit, and only a 200 answer counts.

use std::time::Duration;

use crate::config::MetadataSettings;

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
        crate::config::metadata::check_url(&self.allowed_hosts, url)
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
