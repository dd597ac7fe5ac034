//! What this replica saw of each tenant's logins, in memory only (each replica has its own):
//! the last N failed validations, failures per minute over the last hour, and when each
//! certificate last verified a login. Bounded: entries exist only for configured tenants (a
//! tenant removed from the configuration is dropped the next time a new one would be added),
//! N failures each and M in all (the oldest go first), one instant per certificate the tenant
//! still has.
//!
//! A failure entry holds the stable code, the core's message (which quotes only what an
//! operator compares with the configuration: Issuer, Destination, Audience, algorithms, IDs),
//! the request id and the facts the core read from the document; never the NameID, an attribute
//! value or the IdP's StatusMessage.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::saml::{self, Code, Error};
use crate::tenants::Registry;

/// Longest message kept (the core quotes document values at 120 characters each).
const MAX_MESSAGE: usize = 512;

/// Longest request id kept (the transports already refuse longer ones).
const MAX_REQUEST_ID: usize = 128;

/// Minutes in the failure count window.
const WINDOW_MINUTES: usize = 60;

/// One failed validation, as `GET /v1/tenants/{id}/failures` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// When this replica refused it (RFC 3339, UTC, milliseconds).
    pub at: String,
    pub code: &'static str,
    pub message: String,
    pub request_id: String,
    /// SHA-256 of the certificate the document's `KeyInfo` carries: UNTRUSTED, never used to
    /// verify; compare it with the tenant's certificates' `sha256_fingerprint`.
    pub keyinfo_sha256: Option<String>,
    /// The document's IssueInstant minus this replica's clock, in seconds.
    pub clock_difference_seconds: Option<i64>,
    /// The IdP's StatusCode (and second-level code) when it was not Success.
    pub idp_status: Option<String>,
}

struct TenantActivity {
    /// Oldest first, each with its key in [`State::order`].
    failures: VecDeque<(u64, Failure)>,
    /// Failures per minute since the Unix epoch, as (minute, count) in slot `minute % 60`.
    minutes: [(i64, u32); WINDOW_MINUTES],
    /// `sha256_fingerprint` → when it last verified a login here.
    last_used: Vec<(String, DateTime<Utc>)>,
}

impl Default for TenantActivity {
    fn default() -> Self {
        TenantActivity { failures: VecDeque::new(), minutes: [(0, 0); WINDOW_MINUTES], last_used: Vec::new() }
    }
}

impl TenantActivity {
    fn failures_since(&self, now: DateTime<Utc>) -> u32 {
        let current = minute(now);
        self.minutes.iter().filter(|(at, _)| current - at < WINDOW_MINUTES as i64).map(|(_, n)| n).sum()
    }
}

fn minute(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

/// Every configured tenant's recent activity on this replica.
pub struct Activity {
    failures_per_tenant: usize,
    failures_total: usize,
    // One lock: every hold is a hash lookup and a few writes (a failure's are O(log n) in the
    // failures held), far below the cost of the validation that precedes it.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tenants: HashMap<String, TenantActivity>,
    /// Every held failure, by sequence number (so oldest first), with its tenant: the oldest
    /// of all goes when `failures_total` is reached. A tenant's own cap alone would let ten
    /// thousand tenants, each sent its 50 failures (0.6–2 KB an entry with its strings), hold
    /// hundreds of megabytes on every replica. Exact (a failure that goes leaves it at once),
    /// so no pass over it is ever needed under the lock.
    order: BTreeMap<u64, String>,
    next: u64,
}

impl State {
    /// Drops the oldest failures of all until at most `total` are held.
    fn trim(&mut self, total: usize) {
        while self.order.len() > total {
            let Some((sequence, tenant)) = self.order.pop_first() else { break };
            let entry = self.tenants.get_mut(&tenant);
            // A tenant's failures are in sequence order, so the oldest of all is its first.
            let first = entry.and_then(|entry| entry.failures.pop_front());
            debug_assert_eq!(first.map(|(at, _)| at), Some(sequence));
        }
    }
}

/// `tenant`'s entry, created only for a configured tenant. Before a new entry is added to a
/// full map, entries of tenants no longer configured are dropped, their failures with them:
/// the map never holds more than the configured tenants (plus one removed in a race). Takes
/// the two maps it changes rather than the `State`, so that the caller may go on using the
/// others while it holds the entry.
fn entry<'a>(
    tenants: &'a mut HashMap<String, TenantActivity>,
    order: &mut BTreeMap<u64, String>,
    registry: &Registry,
    tenant: &str,
) -> Option<&'a mut TenantActivity> {
    if !tenants.contains_key(tenant) {
        if !registry.contains(tenant) {
            return None;
        }
        if tenants.len() >= registry.len() {
            let current = registry.current();
            tenants.retain(|id, entry| {
                let keep = current.get(id).is_some();
                if !keep {
                    for (sequence, _) in &entry.failures {
                        order.remove(sequence);
                    }
                }
                keep
            });
        }
    }
    Some(tenants.entry(tenant.to_string()).or_default())
}

impl Activity {
    /// Keeps at most `failures_per_tenant` failures of each tenant and `failures_total` in all.
    pub fn new(failures_per_tenant: usize, failures_total: usize) -> Activity {
        Activity { failures_per_tenant, failures_total, state: Mutex::new(State::default()) }
    }

    /// Records a refusal of a validation for the configured `tenant`.
    pub(super) fn record_failure(
        &self,
        registry: &Registry,
        tenant: &str,
        request_id: &str,
        error: &Error,
        now: DateTime<Utc>,
    ) {
        let kept = self.failures_per_tenant.min(self.failures_total);
        let failure = (kept > 0).then(|| failure(request_id, error, now));
        let mut state = self.lock();
        let State { tenants, order, next } = &mut *state;
        let Some(entry) = entry(tenants, order, registry, tenant) else { return };
        let slot = &mut entry.minutes[minute(now).rem_euclid(WINDOW_MINUTES as i64) as usize];
        if slot.0 != minute(now) {
            *slot = (minute(now), 0);
        }
        slot.1 = slot.1.saturating_add(1);
        let Some(failure) = failure else { return };
        while entry.failures.len() >= kept {
            if let Some((at, _)) = entry.failures.pop_front() {
                order.remove(&at);
            }
        }
        entry.failures.push_back((*next, failure));
        order.insert(*next, tenant.to_string());
        *next += 1;
        state.trim(self.failures_total);
    }

    /// Records that the certificate `sha256_fingerprint` verified a login for `tenant` at `now`.
    /// Fingerprints the tenant no longer has are dropped when the list outgrows its keys.
    pub(super) fn record_use(&self, registry: &Registry, tenant: &str, sha256_fingerprint: &str, now: DateTime<Utc>) {
        if sha256_fingerprint.is_empty() {
            return;
        }
        let mut state = self.lock();
        let State { tenants, order, .. } = &mut *state;
        let Some(entry) = entry(tenants, order, registry, tenant) else { return };
        if let Some(known) = entry.last_used.iter_mut().find(|(fp, _)| fp == sha256_fingerprint) {
            known.1 = known.1.max(now);
            return;
        }
        let keys = registry.get(tenant).map_or(0, |t| t.policy.keys.len());
        if entry.last_used.len() >= keys {
            let current = registry.get(tenant);
            let has = |fp: &str| {
                current.as_ref().is_some_and(|t| t.policy.keys.iter().any(|k| k.info.sha256_fingerprint == fp))
            };
            entry.last_used.retain(|(fp, _)| has(fp));
        }
        entry.last_used.push((sha256_fingerprint.to_string(), now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `tenant`'s kept failures, newest first.
    pub fn failures(&self, tenant: &str) -> Vec<Failure> {
        let state = self.lock();
        state
            .tenants
            .get(tenant)
            .map(|entry| entry.failures.iter().rev().map(|(_, f)| f.clone()).collect())
            .unwrap_or_default()
    }

    /// Failures of each of `tenants` in the hour before `now` (minute resolution), in order.
    pub fn failures_last_hour<'a>(&self, tenants: impl IntoIterator<Item = &'a str>, now: DateTime<Utc>) -> Vec<u32> {
        let state = self.lock();
        tenants.into_iter().map(|id| state.tenants.get(id).map_or(0, |entry| entry.failures_since(now))).collect()
    }

    /// When each of `tenant`'s certificates last verified a login here, by fingerprint.
    pub fn last_used(&self, tenant: &str) -> HashMap<String, DateTime<Utc>> {
        self.lock().tenants.get(tenant).map(|entry| entry.last_used.iter().cloned().collect()).unwrap_or_default()
    }
}

/// The entry kept for `error`: the core's message, except where it may quote what the user or
/// the IdP typed (the IdP's StatusMessage can name the user): then only the status codes.
fn failure(request_id: &str, error: &Error, now: DateTime<Utc>) -> Failure {
    let facts = error.facts.as_deref();
    let idp_status = facts.and_then(|f| f.idp_status.clone());
    let message = match error.code {
        Code::StatusNotSuccess => {
            format!("IdP status {}", idp_status.as_deref().unwrap_or("other than Success"))
        }
        _ => bounded(&error.message, MAX_MESSAGE),
    };
    Failure {
        at: saml::time::format(now),
        code: error.code.as_str(),
        message,
        request_id: bounded(request_id, MAX_REQUEST_ID),
        keyinfo_sha256: facts.and_then(|f| f.keyinfo_sha256.clone()),
        clock_difference_seconds: facts.and_then(|f| f.clock_difference_seconds),
        idp_status,
    }
}

fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::ops::metrics::Metrics;

    fn now() -> DateTime<Utc> {
        saml::time::parse("2026-11-29T10:00:00Z").unwrap()
    }

    fn config(ids: &[&str]) -> Config {
        let certificate = crate::testing::idp::TestIdp::generate().unwrap().certificate_base64();
        let mut text = String::new();
        for id in ids {
            text.push_str(&format!(
                "[[tenants]]\nid = \"{id}\"\nidp_entity_id = \"https://idp.example/\"\nsp_entity_id = \"https://sp.example/\"\nacs_url = \"https://sp.example/acs\"\ncertificates = [\"{certificate}\"]\n\n"
            ));
        }
        Config::parse(&text, std::path::Path::new("."), now()).unwrap()
    }

    fn tracked(activity: &Activity) -> Vec<String> {
        let mut ids: Vec<String> = activity.lock().tenants.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Entries exist only for configured tenants; one removed from the configuration goes when
    /// a new one needs the room; each keeps at most N failures and one instant per certificate.
    #[test]
    fn bounded_by_the_configured_tenants_and_n_each() {
        let registry = Registry::new(&config(&["a", "b"]), Arc::new(Metrics::new()));
        let activity = Activity::new(3, 1000);
        let now = now();
        let error = Error::new(Code::AudienceMismatch, "Audience is \"x\", expected \"y\"");
        for n in 0..10 {
            for tenant in ["a", "b", "ghost"] {
                activity.record_failure(&registry, tenant, &format!("r{n}"), &error, now);
            }
        }
        assert_eq!(tracked(&activity), ["a", "b"], "never an entry for a tenant that is not configured");
        let kept: Vec<String> = activity.failures("a").into_iter().map(|f| f.request_id).collect();
        assert_eq!(kept, ["r9", "r8", "r7"]);
        assert_eq!(activity.failures_last_hour(["a", "ghost"], now), [10, 0]);
        assert_eq!(activity.failures_last_hour(["a"], now + chrono::Duration::minutes(61)), [0], "an hour later");

        registry.replace(&config(&["b", "c"]));
        activity.record_failure(&registry, "c", "r0", &error, now);
        assert_eq!(tracked(&activity), ["b", "c"], "the removed tenant made room");

        let key = registry.get("b").unwrap().policy.keys[0].info.sha256_fingerprint.clone();
        for n in 0..5 {
            activity.record_use(&registry, "b", &format!("{n:064}"), now);
        }
        activity.record_use(&registry, "b", &key, now);
        let used = activity.last_used("b");
        assert!(
            used.len() <= 2 && used.contains_key(&key),
            "fingerprints the tenant does not have are dropped: {used:?}"
        );
    }

    fn kept(activity: &Activity, tenant: &str) -> Vec<String> {
        activity.failures(tenant).into_iter().map(|f| f.request_id).collect()
    }

    /// The order of all held failures is exactly the tenants' lists; their number.
    fn consistent(activity: &Activity) -> usize {
        let state = activity.lock();
        let mut held: Vec<u64> = state.tenants.values().flat_map(|t| t.failures.iter().map(|(at, _)| *at)).collect();
        held.sort_unstable();
        assert_eq!(held, state.order.keys().copied().collect::<Vec<_>>());
        held.len()
    }

    /// At most M failures in all: the oldest of all go first, whichever tenant holds them; a
    /// flood on one tenant recycles only that tenant's own N; a removed tenant's failures
    /// leave the count when its entry goes.
    #[test]
    fn bounded_in_all_oldest_of_all_first() {
        let registry = Registry::new(&config(&["a", "b", "c"]), Arc::new(Metrics::new()));
        let activity = Activity::new(3, 5);
        let error = Error::new(Code::AudienceMismatch, "Audience is \"x\", expected \"y\"");
        for (n, tenant) in ["a", "a", "b", "a", "c", "c", "b"].into_iter().enumerate() {
            activity.record_failure(&registry, tenant, &format!("r{n}"), &error, now());
        }
        assert_eq!(consistent(&activity), 5);
        assert_eq!(
            (kept(&activity, "a"), kept(&activity, "b"), kept(&activity, "c")),
            (vec!["r3".to_string()], vec!["r6".into(), "r2".into()], vec!["r5".into(), "r4".into()])
        );

        for n in 7..10_007 {
            activity.record_failure(&registry, "a", &format!("r{n}"), &error, now());
            consistent(&activity);
        }
        assert_eq!(kept(&activity, "a"), ["r10006", "r10005", "r10004"]);
        assert_eq!((kept(&activity, "b"), kept(&activity, "c")), (vec!["r6".to_string()], vec!["r5".to_string()]));
        assert_eq!(activity.failures_last_hour(["a"], now()), [10_003], "the count keeps every failure");

        registry.replace(&config(&["a", "c", "d"]));
        activity.record_failure(&registry, "d", "d0", &error, now());
        assert_eq!(consistent(&activity), 5, "b's failure left the count with its entry");
        activity.record_failure(&registry, "d", "d1", &error, now());
        assert_eq!(consistent(&activity), 5);
        assert_eq!(kept(&activity, "c"), Vec::<String>::new(), "the oldest of all went: c's r5");
        assert_eq!(kept(&activity, "d"), ["d1", "d0"]);

        let none = Activity::new(3, 0);
        none.record_failure(&registry, "a", "r0", &error, now());
        assert_eq!((consistent(&none), none.failures_last_hour(["a"], now())[0]), (0, 1));
    }

    /// A status refusal keeps the codes, never the IdP's StatusMessage; long messages are cut.
    #[test]
    fn entries_leave_out_the_status_message_and_stay_short() {
        let mut error =
            Error::new(Code::StatusNotSuccess, "IdP status \"urn:x:Responder\": \"jane@contoso.example is blocked\"");
        error.facts = Some(Box::new(crate::saml::error::FailureFacts {
            idp_status: Some("urn:x:Responder".into()),
            ..Default::default()
        }));
        let entry = failure("r1", &error, now());
        assert_eq!(entry.message, "IdP status urn:x:Responder");
        let long = failure(&"x".repeat(500), &Error::new(Code::IssuerMismatch, "é".repeat(2000)), now());
        assert_eq!(long.message.chars().count(), MAX_MESSAGE + 1);
        assert_eq!(long.request_id.chars().count(), MAX_REQUEST_ID + 1);
    }
}
