//! Command line: parse arguments, load configuration, start adapters. No validation logic here.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use saml_validator::config::Config;
use saml_validator::ops::telemetry;
use saml_validator::ops::wall_clock;
use saml_validator::saml::{self, decode, Input};
use saml_validator::service::logout::{self, LogoutRequestParams, LogoutResponseParams, ValidateLogoutParams};
use saml_validator::service::sp::{self, AuthnRequestParams};
use saml_validator::service::{Service, ValidateRequest};
use saml_validator::supervisor;
use saml_validator::testing::idp::{self, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::frontend::Frontend;
use saml_validator::transport::http;
use saml_validator::transport::json::{ErrorBody, ValidBody};

// mimalloc for the whole process, libxml2's and OpenSSL's malloc included (the `override`
// feature replaces the C symbols): a validation makes a few hundred small allocations, mostly
// libxml2 nodes, and glibc's allocator was 12 % of the server's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "saml-validator", version, about = "Validates SAML responses for help-desk tenants")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service with a configuration file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate one saved SAMLResponse (base64 or XML) and print the verdict as JSON.
    /// Exit status: 0 valid, 1 rejected, 2 usage or configuration error.
    Validate {
        #[command(flatten)]
        response: SavedResponse,
    },
    /// Explain one saved SAMLResponse without accepting it: every check with what was expected
    /// and found, the certificates, a hint per failure (what `POST /v1/diagnose` answers).
    /// Exit status: 0 every check passes, 1 a check fails or the input is refused, 2 usage or
    /// configuration error.
    Diagnose {
        #[command(flatten)]
        response: SavedResponse,
    },
    /// Print a fresh AuthnRequest for SP-initiated login: the JSON `POST /v1/authn-requests`
    /// answers. Exit status: 0 created, 1 refused (the error JSON), 2 usage or configuration error.
    AuthnRequest {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        /// "redirect" or "post".
        #[arg(long, default_value = "redirect")]
        binding: String,
        #[arg(long)]
        relay_state: Option<String>,
        #[arg(long)]
        force_authn: bool,
        #[arg(long)]
        is_passive: bool,
        /// The ACS URL to ask the IdP to answer on (one of the tenant's; default its acs_url).
        #[arg(long)]
        acs_url: Option<String>,
    },
    /// Print the tenant's SP metadata XML (`GET /v1/tenants/{id}/sp-metadata`), the file to
    /// upload at the IdP (Entra: "Upload metadata file").
    SpMetadata {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// Print a fresh LogoutRequest for SP-initiated logout: the JSON `POST /v1/logout-requests`
    /// answers. Exit status as for `authn-request`.
    LogoutRequest {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        params: LogoutRequestParams,
    },
    /// Print the SP's LogoutResponse to an IdP's LogoutRequest (`POST /v1/logout-responses`).
    LogoutResponse {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        params: LogoutResponseParams,
    },
    /// Judge one delivered logout message (`POST /v1/logout/validate`) and print the verdict as
    /// JSON. Exit status: 0 valid, 1 rejected, 2 usage or configuration error. The replay record
    /// is this process's memory only.
    ValidateLogout {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        params: ValidateLogoutParams,
    },
    /// Check a configuration file and report every problem in it.
    CheckConfig { file: PathBuf },
    /// Start the service with a built-in demo tenant and a freshly generated IdP key, and print
    /// a ready-to-run curl command carrying a freshly signed response.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_addr: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Validate { response } => validate(&response, false),
        Command::Diagnose { response } => validate(&response, true),
        Command::AuthnRequest { config, tenant, binding, relay_state, force_authn, is_passive, acs_url } => {
            let params = AuthnRequestParams { tenant, relay_state, force_authn, is_passive, binding, acs_url };
            authn_request(&config, &params)
        }
        Command::SpMetadata { config, tenant } => sp_metadata(&config, &tenant),
        Command::LogoutRequest { config, params } => {
            print_created(&config, &params.tenant, |t, id| logout::logout_request(t, &params, id, wall_clock()))
        }
        Command::LogoutResponse { config, params } => {
            print_created(&config, &params.tenant, |t, id| logout::logout_response(t, &params, id, wall_clock()))
        }
        Command::ValidateLogout { config, params } => validate_logout(&config, &params),
        Command::CheckConfig { file } => check_config(&file),
        Command::Demo { http_addr } => demo(&http_addr),
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path, wall_clock()).map_err(|errors| {
        eprint!("{}: {errors}", path.display());
        ExitCode::from(2)
    })
}

fn serve(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    telemetry::init(config.logging.level.as_deref().unwrap_or("info"), config.logging.format.as_deref());
    // Panics are bugs; they go to the structured log like everything else (the request that
    // hit one gets internal_error, see Frontend::validate).
    // Only the location: a panic payload can quote document content.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(location, "panic");
    }));
    if config.logging.debug_log_name_id_hash_salt.is_some() {
        tracing::warn!("logging.debug_log_name_id_hash_salt is set: validation events carry a salted NameID hash");
    }
    run_server(&config, Some(path))
}

fn run_server(config: &Config, path: Option<&Path>) -> ExitCode {
    match supervisor::serve(config, path) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}

/// A saved SAMLResponse and what to judge it against (`validate` and `diagnose`).
#[derive(clap::Args)]
struct SavedResponse {
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

/// `validate`, or with `diagnose` the checklist instead of a verdict (nothing recorded either way).
fn validate(saved: &SavedResponse, diagnose: bool) -> ExitCode {
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
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
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

/// The tenant's configuration, or the exit code after saying why not.
/// The tenant's configuration with its metadata loaded, or the exit code after saying why not.
fn tenant_of(path: &Path, id: &str) -> Result<saml_validator::tenants::TenantConfig, ExitCode> {
    let config = load(path)?;
    let registry = saml_validator::tenants::Registry::new(
        &config,
        std::sync::Arc::new(saml_validator::ops::metrics::Metrics::new()),
    );
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

fn authn_request(path: &Path, params: &AuthnRequestParams) -> ExitCode {
    let tenant = match tenant_of(path, &params.tenant) {
        Ok(tenant) => tenant,
        Err(code) => return code,
    };
    let created = sp::fresh_id().and_then(|id| sp::authn_request(&tenant, params, &id, wall_clock()));
    match created.map(|body| serde_json::to_string_pretty(&body)) {
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

/// Prints what `create` builds for the tenant with a fresh ID, as `authn_request` does.
fn print_created<T: serde::Serialize>(
    path: &Path,
    tenant: &str,
    create: impl FnOnce(&saml_validator::tenants::TenantConfig, &str) -> Result<T, saml::Error>,
) -> ExitCode {
    let tenant = match tenant_of(path, tenant) {
        Ok(tenant) => tenant,
        Err(code) => return code,
    };
    match sp::fresh_id().and_then(|id| create(&tenant, &id)).map(|body| serde_json::to_string_pretty(&body)) {
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

/// `validate-logout`: the service's use case on this process's memory replay record.
fn validate_logout(path: &Path, params: &ValidateLogoutParams) -> ExitCode {
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
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(service.validate_logout(params, wall_clock())) {
        Ok(body) => match serde_json::to_string_pretty(&body) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render result: {e}");
                ExitCode::from(2)
            }
        },
        Err(error) => print_refusal(&error),
    }
}

fn sp_metadata(path: &Path, id: &str) -> ExitCode {
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

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path, wall_clock()) {
        Ok(config) => {
            let refused = config.tenant_file_errors.len() + config.bad_tenant_file_names.len();
            if refused > 0 {
                for (id, problems) in &config.tenant_file_errors {
                    for problem in problems {
                        eprintln!("{}: tenant {id:?} refused: {problem}", path.display());
                    }
                }
                for name in &config.bad_tenant_file_names {
                    eprintln!(
                        "{}: tenants_dir: {name:?} is not <id>.toml with an id matching [a-z0-9][a-z0-9_.-]{{0,62}}",
                        path.display()
                    );
                }
                eprintln!(
                    "{}: {} tenant file(s) refused; the other {} tenant(s) are ok",
                    path.display(),
                    refused,
                    config.tenants.len()
                );
                return ExitCode::from(1);
            }
            println!("{}: ok, {} tenant(s)", path.display(), config.tenants.len());
            // Checked, not contacted: the store may be unreachable from where this runs.
            match &config.replay.redis {
                None => println!("  replay store: memory (per process)"),
                Some(redis) => println!(
                    "  replay store: redis {:?}{}",
                    redis.endpoints,
                    if redis.allow_memory_fallback_when_unavailable {
                        " (RELAXATION: memory fallback when unavailable)"
                    } else {
                        ""
                    }
                ),
            }
            // Metadata URLs are fetched (as a start-up would): one that fails is a warning, as
            // the service would serve every other tenant and answer tenant_unavailable for it.
            let registry = saml_validator::tenants::Registry::new(
                &config,
                std::sync::Arc::new(saml_validator::ops::metrics::Metrics::new()),
            );
            registry.refresh_due(wall_clock());
            let generation = registry.current();
            let mut tenants: Vec<_> = generation.iter().collect();
            tenants.sort_by_key(|(id, _)| *id);
            for (id, tenant) in tenants {
                if let Some(status) = tenant.metadata.as_ref().filter(|m| m.loaded_at_instant.is_none()) {
                    println!("  {id}: WARNING unavailable: {}", status.result);
                }
                for key in &tenant.policy.keys {
                    println!(
                        "  {id}: {} {} sha256={} not_after={}",
                        key.info.key_type, key.info.subject, key.info.sha256_fingerprint, key.info.not_after
                    );
                }
                println!("  {id}: {}", login_policies(&tenant.policy));
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprint!("{}: {errors}", path.display());
            ExitCode::from(1)
        }
    }
}

/// One line of a tenant's login policies for `check-config`: what its logins must meet.
fn login_policies(policy: &saml::TenantPolicy) -> String {
    let mut line =
        format!("acs_urls={:?} subject_key_from={}", policy.acs_urls().collect::<Vec<_>>(), policy.subject_key_from);
    if !policy.require_authn_methods.is_empty() {
        line.push_str(&format!(" require_authn_methods={:?}", policy.require_authn_methods));
    }
    if !policy.require_authn_context.is_empty() {
        line.push_str(&format!(" require_authn_context={:?}", policy.require_authn_context));
    }
    if let Some(max) = policy.max_authn_age_seconds {
        line.push_str(&format!(" max_authn_age_seconds={max}"));
    }
    line
}

fn demo(http_addr: &str) -> ExitCode {
    telemetry::init("info", None);
    let idp = match TestIdp::generate() {
        Ok(idp) => idp,
        Err(e) => {
            eprintln!("cannot generate the demo IdP key: {e}");
            return ExitCode::from(2);
        }
    };
    let text = include_str!("demo.toml")
        .replace("@HTTP_ADDR@", http_addr)
        .replace("@DEMO_CERTIFICATE@", &idp.certificate_base64());
    let config = match Config::parse(&text, Path::new("."), wall_clock()) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("demo configuration: {errors}");
            return ExitCode::from(2);
        }
    };
    let tenant = &config.tenants[0];
    let service = Arc::new(Service::new(&config));
    let frontend = match Frontend::new(service, &config) {
        Ok(frontend) => Arc::new(frontend),
        Err(e) => {
            eprintln!("cannot start the XML workers: {e}");
            return ExitCode::from(2);
        }
    };
    let state = Arc::new(http::State::new(frontend, &config));
    let result = actix_web::rt::System::new().block_on(async {
        let (server, addrs) = http::bind(state, &config.server.http_addr, 1, None)?;
        let addr = addrs.first().copied().ok_or_else(|| std::io::Error::other("no listening address"))?;
        let request_id = format!("_{}", idp::guid(std::process::id().into()));
        let spec = ResponseSpec::entra(
            &tenant.policy.idp_entity_id,
            &tenant.policy.sp_entity_id,
            &tenant.policy.acs_url,
            Some(&request_id),
            wall_clock(),
            10,
            u64::from(std::process::id()) << 16,
        );
        let xml = spec.signed(&idp, Signing::Assertion).map_err(std::io::Error::other)?;
        let body = serde_json::json!({
            "tenant": tenant.id,
            "saml_response": idp::post_binding(&xml),
            "expected_request_id": request_id,
        });
        println!("saml-validator demo: tenant \"{}\" trusts a freshly generated IdP key.", tenant.id);
        println!("Validate a freshly signed Entra-style response (run it twice to see `replayed`):\n");
        println!("curl -s http://{addr}/v1/validate -H 'content-type: application/json' -d '{body}'\n");
        println!("Listening on http://{addr} (Ctrl-C to stop).");
        server.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo server error: {e}");
            ExitCode::from(2)
        }
    }
}
