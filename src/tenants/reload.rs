//! Live configuration reload: on SIGHUP and when the file's content changes (polled), a new
//! valid file replaces the tenant set atomically; an invalid one is refused with every problem
//! logged, and the running configuration keeps serving.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Registry;
use crate::config::{Config, ReplaySettings, ServerConfig};
use crate::ops::metrics::Metrics;

pub struct Reloader {
    path: PathBuf,
    tenants: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// SHA-256 of the file content last attempted, so an unchanged (or still broken) file is
    /// not reloaded over and over by the poller.
    last_seen: Mutex<Option<[u8; 32]>>,
    /// The `[server]`, `[replay]` and `[admin]` sections in force; those settings need a
    /// restart, so changes are flagged.
    restart_only: RestartOnly,
}

impl Reloader {
    pub fn new(path: PathBuf, tenants: Arc<Registry>, metrics: Arc<Metrics>, config: &Config) -> Reloader {
        let current = std::fs::read(&path).ok().map(|bytes| openssl::sha::sha256(&bytes));
        Reloader { path, tenants, metrics, last_seen: Mutex::new(current), restart_only: restart_only(config) }
    }

    /// Reloads if the content changed since the last attempt (or always, when `force`).
    /// Returns whether a new configuration was installed.
    pub fn reload(&self, reason: &str, force: bool) -> bool {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(reason, path = %self.path.display(), error = %e, "config reload failed: cannot read the file");
                self.metrics.reloaded(false);
                return false;
            }
        };
        let digest = openssl::sha::sha256(&bytes);
        {
            let mut last = self.last_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !force && *last == Some(digest) {
                return false;
            }
            *last = Some(digest);
        }
        match self.tenants.load_and_replace(|| Config::load(&self.path, crate::ops::wall_clock())) {
            Ok(config) => {
                if restart_only(&config) != self.restart_only {
                    tracing::warn!(
                        reason,
                        "config reload: [server], [replay] or [admin] settings changed (the admin token included); they take effect after a restart"
                    );
                }
                self.metrics.reloaded(true);
                tracing::info!(reason, tenants = config.tenants.len(), "config reloaded");
                true
            }
            Err(errors) => {
                for problem in &errors.0 {
                    tracing::warn!(reason, problem = %problem, "config reload refused");
                }
                self.metrics.reloaded(false);
                tracing::warn!(
                    reason,
                    problems = errors.0.len(),
                    "config reload refused; the previous configuration keeps serving"
                );
                false
            }
        }
    }

    /// Starts the SIGHUP listener and the file poller (every `poll`; zero disables polling).
    pub fn spawn(self: Arc<Self>, poll: Duration) -> std::io::Result<()> {
        let on_signal = self.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut hangup = {
            let _guard = runtime.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?
        };
        std::thread::Builder::new().name("reload-signal".into()).spawn(move || {
            runtime.block_on(async move {
                while hangup.recv().await.is_some() {
                    on_signal.reload("SIGHUP", true);
                }
            });
        })?;
        if !poll.is_zero() {
            std::thread::Builder::new().name("reload-poll".into()).spawn(move || loop {
                std::thread::sleep(poll);
                self.reload("file changed", false);
            })?;
        }
        Ok(())
    }
}

/// What only a restart applies (a changed store password or admin token included).
fn restart_only(config: &Config) -> RestartOnly {
    (config.server.clone(), config.replay.clone(), config.admin.clone())
}

type RestartOnly = (ServerConfig, ReplaySettings, Option<crate::config::AdminSettings>);
