//! `tenants_dir` kept live: inotify events (with a rescan every poll interval as the fallback
//! for file systems that send none) trigger a rescan that stats every file and reads only the
//! ones whose stamp changed. Each changed file is judged alone: a good one replaces its tenant,
//! a bad one is refused (its last good version keeps serving), a deleted one removes its
//! tenant. One rescan installs one generation; requests in flight finish on theirs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::registry::file_problem;
use super::Registry;
use crate::config::directory;
use crate::config::tenant::{Context, TenantConfig};

/// Events arriving this close together are one change (an editor's write, rename and chmod;
/// a control plane writing a batch of files).
const QUIET: Duration = Duration::from_millis(20);
/// Never wait longer than this after the first event, however busy the directory.
const MAX_DELAY: Duration = Duration::from_millis(200);

/// What one rescan applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rescan {
    pub loaded: usize,
    pub removed: usize,
    pub refused: usize,
}

enum Change {
    Good(Box<TenantConfig>),
    Bad(Vec<String>),
    Gone,
}

impl Registry {
    /// Applies every `tenants_dir` file that changed since it was last read.
    pub fn rescan_tenants_dir(&self, now: DateTime<Utc>) -> Rescan {
        let mut files = self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = self.current.load_full();
        let Some(dir) = generation.tenants_dir.clone() else { return Rescan::default() };
        let listing = match directory::list(&dir) {
            Ok(listing) => listing,
            Err(e) => {
                // A directory that vanished (an unmounted volume) removes nobody: the tenants
                // as last read keep serving until it is back.
                tracing::warn!(dir = %dir.display(), error = %e, "tenants_dir cannot be listed; keeping the tenants as last read");
                return Rescan::default();
            }
        };
        let paths = &generation.tenant_file_paths;
        let context = Context { files: paths.rules(&dir), settings: &generation.metadata, now };
        let confine = paths.tenant_file_confine(&dir);
        let mut changes = Vec::new();
        for (id, (path, stamp)) in &listing.files {
            let known = files.get(id);
            if known.is_some_and(|version| version.stamp == *stamp) {
                continue;
            }
            let Some(read) = directory::read(id, path, *stamp, confine, &context) else { continue };
            let same_content = known.is_some_and(|version| version.digest == read.version.digest);
            files.insert(id.clone(), read.version);
            if same_content {
                continue;
            }
            let change = match read.tenant {
                Ok(_) if generation.inline_ids.contains(id) => {
                    Change::Bad(vec![format!("{id}.toml: tenant {id:?} is also in [[tenants]]")])
                }
                Ok(tenant) => Change::Good(Box::new(tenant)),
                Err(problems) => Change::Bad(problems),
            };
            changes.push((id.clone(), change));
        }
        let gone: Vec<String> = files.keys().filter(|id| !listing.files.contains_key(*id)).cloned().collect();
        for id in gone {
            files.remove(&id);
            changes.push((id, Change::Gone));
        }
        if changes.is_empty() {
            return Rescan::default();
        }
        // Installed under the lock: a full reload waiting for it reads the directory after this
        // rescan and installs over it, never the other way round (a deleted file coming back).
        self.current.rcu(|current| {
            let mut updates = Vec::new();
            let mut refusals = Vec::new();
            for (id, change) in &changes {
                match change {
                    Change::Good(tenant) => {
                        let mut tenant = tenant.as_ref().clone();
                        if let Some(before) = current.tenants.get(id) {
                            tenant.carry_metadata_from(before);
                        }
                        updates.push((id.clone(), Some(Arc::new(tenant))));
                        refusals.push((id.clone(), None));
                    }
                    Change::Bad(problems) => {
                        refusals.push((id.clone(), Some(Arc::new(file_problem(id, problems.clone(), now)))));
                    }
                    Change::Gone => {
                        if !current.inline_ids.contains(id) {
                            updates.push((id.clone(), None));
                        }
                        refusals.push((id.clone(), None));
                    }
                }
            }
            Arc::new(current.with_changes(updates, refusals))
        });
        drop(files);
        let mut rescan = Rescan::default();
        for (id, change) in &changes {
            let result = match change {
                Change::Good(_) => {
                    rescan.loaded += 1;
                    tracing::info!(tenant = %id, "tenant file loaded");
                    "loaded"
                }
                Change::Bad(problems) => {
                    rescan.refused += 1;
                    for problem in problems {
                        tracing::warn!(tenant = %id, problem = %problem, "tenant file refused; its last good version (if any) keeps serving");
                    }
                    "refused"
                }
                Change::Gone => {
                    rescan.removed += 1;
                    tracing::info!(tenant = %id, "tenant file deleted: tenant removed");
                    self.metrics.forget_tenant(id);
                    "removed"
                }
            };
            self.metrics.tenant_file(result);
        }
        if rescan.loaded > 0 {
            self.wake_refresh();
        }
        self.update_readiness();
        rescan
    }
}

/// Watches the current `tenants_dir` (following a reload that names another one) and rescans
/// on each burst of events, and every `poll` regardless (`poll` zero: every 2 s).
pub fn spawn(registry: Arc<Registry>, poll: Duration) -> std::io::Result<()> {
    let poll = if poll.is_zero() { Duration::from_secs(2) } else { poll };
    std::thread::Builder::new().name("tenants-dir".into()).spawn(move || {
        let (events, arrivals) = std::sync::mpsc::channel();
        let mut watcher = match notify::recommended_watcher(move |event| {
            let _ = events.send(event);
        }) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable: tenants_dir is polled only");
                None
            }
        };
        let mut watched: Option<PathBuf> = None;
        loop {
            let dir = registry.current().tenants_dir.clone();
            if dir != watched {
                if let Some(watcher) = watcher.as_mut() {
                    use notify::Watcher as _;
                    if let Some(old) = &watched {
                        let _ = watcher.unwatch(old);
                    }
                    if let Some(new) = &dir {
                        if let Err(e) = watcher.watch(new, notify::RecursiveMode::NonRecursive) {
                            tracing::warn!(dir = %new.display(), error = %e, "cannot watch tenants_dir: polled only");
                        }
                    }
                }
                watched = dir;
            }
            match arrivals.recv_timeout(poll) {
                Ok(_) => {
                    let first = crate::ops::monotonic();
                    while first.elapsed() < MAX_DELAY && arrivals.recv_timeout(QUIET).is_ok() {}
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                // No watcher (its sender is gone): poll.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(poll),
            }
            if watched.is_some() {
                registry.rescan_tenants_dir(crate::ops::wall_clock());
            }
        }
    })?;
    Ok(())
}
