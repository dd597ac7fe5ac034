//! What a caller hands the core besides the tenant policy and limits.

use chrono::{DateTime, Utc};

/// How the SAMLResponse arrived.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Base64 as posted by the browser (HTTP-POST binding).
    Base64(&'a [u8]),
    /// The decoded XML document (CLI, tests).
    Xml(&'a [u8]),
}

/// Per-request facts supplied by the caller.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The ID of the AuthnRequest the caller issued, if it was SP-initiated.
    pub expected_request_id: Option<&'a str>,
    /// The ACS URL the caller received this response on (`expected_acs_url`): one of the
    /// tenant's, and then Destination and Recipient must name exactly it. Without it, any of
    /// the tenant's ACS URLs will do.
    pub expected_acs_url: Option<&'a str>,
    /// The instant to judge validity windows at (the adapters read the clock, never the core).
    pub now: DateTime<Utc>,
}
