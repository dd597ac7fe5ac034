//! `ListFailures` and `ListTenants`, at parity with `GET /v1/tenants/{id}/failures` and
//! `GET /v1/tenants`: same authorization, same use cases, same errors.

use crate::ops::wall_clock;
use crate::saml::Error;
use crate::service::lifecycle::TenantQuery;
use crate::service::Service;
use crate::transport::auth::{self, Credentials};

use super::pb;

pub(super) fn list_failures(
    service: &Service,
    credentials: &Credentials<'_>,
    message: pb::ListFailuresRequest,
) -> Result<pb::ListFailuresResponse, Error> {
    auth::authorize(service, credentials, Some(&message.tenant))?;
    let failures = service.tenant_failures(&message.tenant)?;
    Ok(pb::ListFailuresResponse {
        tenant: message.tenant,
        failures: failures
            .into_iter()
            .map(|f| pb::Failure {
                at: f.at,
                code: f.code.to_string(),
                message: f.message,
                request_id: f.request_id,
                keyinfo_sha256: f.keyinfo_sha256,
                clock_difference_seconds: f.clock_difference_seconds,
                idp_status: f.idp_status,
            })
            .collect(),
    })
}

pub(super) fn list_tenants(
    service: &Service,
    credentials: &Credentials<'_>,
    message: pb::ListTenantsRequest,
) -> Result<pb::ListTenantsResponse, Error> {
    let generation = service.tenants();
    let caller = auth::authenticate(generation.callers(), credentials)?;
    let query = TenantQuery {
        page_size: message.page_size as usize,
        page_token: Some(message.page_token).filter(|t| !t.is_empty()),
        expiring_within_days: message.expiring_within_days,
        state: message.state,
    };
    let page = service.list_tenants(&query, |id| caller.allows(id), wall_clock())?;
    Ok(pb::ListTenantsResponse {
        tenants: page
            .tenants
            .into_iter()
            .map(|t| pb::TenantSummary {
                id: t.id,
                state: t.state.to_string(),
                soonest_expiry: t.soonest_expiry,
                soonest_expiry_days_left: t.soonest_expiry_days_left,
                failures_last_hour: t.failures_last_hour,
            })
            .collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
    })
}
