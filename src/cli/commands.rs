//! The one-shot commands: judge a saved message, or build one for a tenant, and print what the
//! HTTP API would answer.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::config::Config;
use crate::ops::metrics::Metrics;
use crate::ops::wall_clock;
use crate::saml::{self, decode, Input};
use crate::service::logout::ValidateLogoutParams;
use crate::service::sp;
use crate::service::{Service, ValidateRequest};
use crate::tenants::{Registry, TenantConfig};
use crate::transport::json::{ErrorBody, ValidBody};

/// A saved SAMLResponse and what to judge it against (`validate` and `diagnose`).
#[derive(clap::Args)]
pub(super) struct SavedResponse {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    tenant: String,
    /// Judge validity at this RFC 3339 instant instead of now (for replaying saved responses).
    /// UTC only: `Z` or `+00:00` (as in SAML's xs:dateTime values); any other offset is refused.
    #[arg(long)]
    at: Option<String>,
    #[arg(long)]
    expected_request_id: Option<String>,
    /// The ACS URL the response was received on: one of the tenant's; Destination and
    /// Recipient must then equal it.
    #[arg(long)]
    expected_acs_url: Option<String>,
    /// File holding the response, or - for standard input.
    file: String,
}

/// The configuration file, or exit code 2 after printing every problem in it.
pub(super) fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path, wall_clock()).map_err(|errors| {
        eprint!("{}: {errors}", path.display());
        ExitCode::from(2)
    })
}

/// `validate`, or with `diagnose` the checklist instead of a verdict (nothing recorded either way).
pub(super) fn validate(saved: &SavedResponse, diagnose: bool) -> ExitCode {
    let (path, tenant, at, file) = (saved.config.as_path(), saved.tenant.as_str(), saved.at.as_deref(), &saved.file);
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = match at {
        None => wall_clock(),
        Some(text) => match saml::time::parse_utc(text) {
            Ok(instant) => instant,
            Err(why) => {
                eprintln!("--at {text:?} {why}: give a UTC instant such as 2024-05-20T21:10:45Z");
                return ExitCode::from(2);
            }
        },
    };
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(file).map(|b| bytes = b)
    };
    if let Err(e) = read {
        eprintln!("cannot read {file}: {e}");
        return ExitCode::from(2);
    }
    let input = if decode::looks_like_xml(&bytes) { Input::Xml(&bytes) } else { Input::Base64(&bytes) };
    // Never the shared store: checking a saved response must not burn a real assertion there.
    let service = Service::in_process(&config);
    service.refresh_metadata(tenant, wall_clock(), "cli");
    let request = ValidateRequest {
        tenant,
        saml_response: input,
        expected_request_id: saved.expected_request_id.as_deref(),
        expected_acs_url: saved.expected_acs_url.as_deref(),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let (json, code) = if diagnose {
        match service.diagnose(&request, now) {
            Ok(diagnosis) => {
                let code = if diagnosis.verdict.is_none() { ExitCode::SUCCESS } else { ExitCode::from(1) };
                (serde_json::to_string_pretty(&diagnosis), code)
            }
            Err(error) => (serde_json::to_string_pretty(&ErrorBody::new(&error)), ExitCode::from(1)),
        }
    } else {
        match runtime.block_on(service.validate(&request, now)) {
            Ok(validated) => (
                serde_json::to_string_pretty(&ValidBody { valid: true, tenant, result: &validated }),
                ExitCode::SUCCESS,
            ),
            Err(error) => (serde_json::to_string_pretty(&ErrorBody::new(&error)), ExitCode::from(1)),
        }
    };
    match json {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("cannot render result: {e}");
            return ExitCode::from(2);
        }
    }
    code
}

/// A runtime for the service's async use cases, or the exit code after saying why not.
fn runtime() -> Result<Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("cannot start a runtime: {e}");
        ExitCode::from(2)
    })
}

/// The tenant's configuration with its metadata loaded, or the exit code after saying why not.
fn tenant_of(path: &Path, id: &str) -> Result<TenantConfig, ExitCode> {
    let config = load(path)?;
    let registry = Registry::new(&config, Arc::new(Metrics::new()));
    registry.refresh_metadata(id, wall_clock(), "cli");
    let tenant = registry.get(id).ok_or_else(|| {
        eprintln!("{}: no tenant {id:?}", path.display());
        ExitCode::from(2)
    })?;
    if let Some(status) = tenant.metadata.as_ref().filter(|m| m.loaded_at_instant.is_none()) {
        eprintln!("{}: tenant {id:?}: {}", path.display(), status.result);
        return Err(ExitCode::from(2));
    }
    Ok(tenant.as_ref().clone())
}

fn print_refusal(error: &saml::Error) -> ExitCode {
    match serde_json::to_string_pretty(&ErrorBody::new(error)) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("cannot render result: {e}"),
    }
    ExitCode::from(1)
}

/// The body as JSON (exit 0), or the refusal's error JSON (exit 1).
fn print_json<T: serde::Serialize>(result: Result<T, saml::Error>) -> ExitCode {
    match result.map(|body| serde_json::to_string_pretty(&body)) {
        Ok(Ok(json)) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("cannot render result: {e}");
            ExitCode::from(2)
        }
        Err(error) => print_refusal(&error),
    }
}

/// Prints what `create` builds for the tenant with a fresh ID (`authn-request`, `logout-request`,
/// `logout-response`).
pub(super) fn print_created<T: serde::Serialize>(
    path: &Path,
    tenant: &str,
    create: impl FnOnce(&TenantConfig, &str) -> Result<T, saml::Error>,
) -> ExitCode {
    let tenant = match tenant_of(path, tenant) {
        Ok(tenant) => tenant,
        Err(code) => return code,
    };
    print_json(sp::fresh_id().and_then(|id| create(&tenant, &id)))
}

/// `validate-logout`: the service's use case on this process's memory replay record.
pub(super) fn validate_logout(path: &Path, params: &ValidateLogoutParams) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let service = Service::in_process(&config);
    if !service.has_tenant(&params.tenant) {
        eprintln!("{}: no tenant {:?}", path.display(), params.tenant);
        return ExitCode::from(2);
    }
    service.refresh_metadata(&params.tenant, wall_clock(), "cli");
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    print_json(runtime.block_on(service.validate_logout(params, wall_clock())))
}

pub(super) fn sp_metadata(path: &Path, id: &str) -> ExitCode {
    let tenant = match tenant_of(path, id) {
        Ok(tenant) => tenant,
        Err(code) => return code,
    };
    match sp::fresh_id().and_then(|document_id| sp::sp_metadata(&tenant, &document_id, wall_clock())) {
        Ok(xml) => {
            println!("{xml}");
            ExitCode::SUCCESS
        }
        Err(error) => print_refusal(&error),
    }
}
