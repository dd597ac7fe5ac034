//! Certificate lifecycle and the fleet list: which tenants' certificates expire soon, which
//! cannot serve, how many logins each refused in the last hour (`GET /v1/tenants`, gRPC
//! `ListTenants`), and the facts per certificate the tenant view adds (source, days left, last
//! use on this replica).

use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::activity::Failure;
use super::Service;
use crate::saml::keys::TrustedKey;
use crate::saml::{Code, Error};
use crate::tenants::{TenantConfig, TenantSet, TenantState};

/// Default and largest `page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1000;

/// What `GET /v1/tenants` asks for, already parsed.
#[derive(Clone, Debug, Default)]
pub struct TenantQuery {
    /// 1..=[`MAX_PAGE_SIZE`]; 0 means [`DEFAULT_PAGE_SIZE`].
    pub page_size: usize,
    /// The previous page's `next_page_token`.
    pub page_token: Option<String>,
    /// Only tenants with a certificate whose notAfter is before now + this many days (expired
    /// ones included).
    pub expiring_within_days: Option<i64>,
    /// Only tenants in this state (`ok`, `pending`, `unavailable`, `config_error`).
    pub state: Option<String>,
}

/// One tenant in the list.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct TenantSummary {
    pub id: String,
    pub state: &'static str,
    /// The soonest notAfter among its certificates (RFC 3339); null without certificates.
    pub soonest_expiry: Option<String>,
    /// Whole days until then, negative once expired.
    pub soonest_expiry_days_left: Option<i64>,
    /// Validations of this tenant refused by this replica in the last hour (minute resolution).
    pub failures_last_hour: u32,
}

/// One page of the list, in tenant id order.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct TenantPage {
    pub tenants: Vec<TenantSummary>,
    /// Pass as `page_token` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Where a certificate came from: `metadata` (the IdP's metadata) or `pinned` (the
/// configuration: inline or a file).
pub fn source(key: &TrustedKey) -> &'static str {
    if key.info.origin.starts_with("metadata:") {
        "metadata"
    } else {
        "pinned"
    }
}

/// Whole days from `now` to `not_after`, rounded down: -1 as soon as it has expired.
pub fn days_left(not_after: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (not_after - now).num_seconds().div_euclid(86_400)
}

fn soonest_expiry(tenant: &TenantConfig) -> Option<DateTime<Utc>> {
    tenant.policy.keys.iter().filter_map(|k| k.not_after).min()
}

fn malformed(message: impl Into<String>) -> Error {
    Error::new(Code::MalformedRequest, message)
}

fn parse_state(text: &str) -> Result<TenantState, Error> {
    TenantState::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| {
        malformed(format!(
            "state must be one of ok, pending, unavailable, config_error; got {}",
            crate::saml::error::quote(text)
        ))
    })
}

/// The token is the last id of the page, opaque to callers (base64url): ids are ordered, so
/// a page stays right when tenants come and go between two calls.
fn encode_token(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_token(token: &str) -> Result<String, Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| malformed("page_token is not a token this service returned"))
}

impl Service {
    /// The tenants `may_use` allows, filtered and paged (`GET /v1/tenants`). One pass over the
    /// generation; only the page's tenants are sorted and looked up in the activity record.
    pub fn list_tenants(
        &self,
        query: &TenantQuery,
        may_use: impl Fn(&str) -> bool,
        now: DateTime<Utc>,
    ) -> Result<TenantPage, Error> {
        let page_size = match query.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => return Err(malformed(format!("page_size must be 1..={MAX_PAGE_SIZE}"))),
            n => n,
        };
        let after = query.page_token.as_deref().map(decode_token).transpose()?;
        let state = query.state.as_deref().map(parse_state).transpose()?;
        if query.expiring_within_days.is_some_and(|days| !(0..=36_500).contains(&days)) {
            return Err(malformed("expiring_within_days must be 0..=36500"));
        }
        let horizon = query.expiring_within_days.map(|days| now + chrono::Duration::days(days));
        let generation = self.tenants.current();
        let (found, more) = page_of(&generation, after.as_deref(), state, horizon, &may_use, page_size);
        let counts = self.activity.failures_last_hour(found.iter().map(|f| f.0), now);
        let tenants: Vec<TenantSummary> = found
            .into_iter()
            .zip(counts)
            .map(|(Found(id, state, soonest), failures_last_hour)| TenantSummary {
                id: id.to_string(),
                state: state.as_str(),
                soonest_expiry: soonest.map(crate::saml::time::format),
                soonest_expiry_days_left: soonest.map(|at| days_left(at, now)),
                failures_last_hour,
            })
            .collect();
        let next_page_token = if more { tenants.last().map(|t| encode_token(&t.id)) } else { None };
        Ok(TenantPage { tenants, next_page_token })
    }

    /// `tenant`'s recent failures on this replica, newest first (`GET /v1/tenants/{id}/failures`).
    /// `unknown_tenant` unless configured (a refused file with no good version has none).
    pub fn tenant_failures(&self, tenant: &str) -> Result<Vec<Failure>, Error> {
        let generation = self.tenants.current();
        if generation.get(tenant).is_none() && generation.refusal(tenant).is_none() {
            return Err(Error::new(Code::UnknownTenant, "no such tenant"));
        }
        Ok(self.activity.failures(tenant))
    }

    /// When each certificate of `tenant` last verified a login on this replica, by
    /// `sha256_fingerprint`.
    pub fn certificates_last_used(&self, tenant: &str) -> std::collections::HashMap<String, DateTime<Utc>> {
        self.activity.last_used(tenant)
    }

    /// Records a refused validation of the configured `tenant` (the transports' pipeline, once
    /// per request, with the request id the caller can quote).
    pub fn record_failure(&self, tenant: &str, request_id: &str, error: &Error, now: DateTime<Utc>) {
        self.activity.record_failure(&self.tenants, tenant, request_id, error, now);
    }
}

/// One listed tenant, ordered by id alone.
struct Found<'a>(&'a str, TenantState, Option<DateTime<Utc>>);

impl PartialEq for Found<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Found<'_> {}
impl PartialOrd for Found<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Found<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(other.0)
    }
}

/// The first `page_size` tenants of `generation` after `after` that pass the filters, in id
/// order, and whether more follow. One pass, nothing sorted but the page: a heap of the
/// `page_size + 1` smallest ids so far, which most tenants of a large fleet only compare with
/// its top (10,000 tenants: BENCHMARKS.md).
fn page_of<'a>(
    generation: &'a TenantSet,
    after: Option<&str>,
    state: Option<TenantState>,
    horizon: Option<DateTime<Utc>>,
    may_use: &impl Fn(&str) -> bool,
    page_size: usize,
) -> (Vec<Found<'a>>, bool) {
    let mut heap = std::collections::BinaryHeap::with_capacity(page_size + 1);
    // A tenant refused and never good is listed once, as config_error, with no certificates.
    let loaded = generation.tenants.iter().map(|(id, tenant)| (id.as_str(), Some(tenant.as_ref())));
    let refused_only =
        generation.refused.keys().filter(|id| !generation.tenants.contains_key(*id)).map(|id| (id.as_str(), None));
    for (id, tenant) in loaded.chain(refused_only) {
        if after.is_some_and(|after| id <= after)
            || (heap.len() > page_size && heap.peek().is_some_and(|top: &Found<'_>| id >= top.0))
        {
            continue;
        }
        let soonest = tenant.and_then(soonest_expiry);
        if horizon.is_some_and(|horizon| soonest.is_none_or(|at| at >= horizon)) {
            continue;
        }
        let found_state = state_of(generation, id, tenant);
        if state.is_some_and(|wanted| wanted != found_state) || !may_use(id) {
            continue;
        }
        heap.push(Found(id, found_state, soonest));
        if heap.len() > page_size + 1 {
            heap.pop();
        }
    }
    let mut page = heap.into_sorted_vec();
    let more = page.len() > page_size;
    page.truncate(page_size);
    (page, more)
}

/// [`TenantSet::state`] without hashing the id again when nothing was refused.
fn state_of(generation: &TenantSet, id: &str, tenant: Option<&TenantConfig>) -> TenantState {
    use crate::config::tenant::Availability;
    let refused = !generation.refused.is_empty() && generation.refused.contains_key(id);
    match tenant.map(TenantConfig::availability) {
        _ if refused => TenantState::ConfigError,
        None => TenantState::ConfigError,
        Some(Availability::Ok) => TenantState::Ok,
        Some(Availability::Pending) => TenantState::Pending,
        Some(Availability::Unavailable) => TenantState::Unavailable,
    }
}
