//! Command line: parse arguments, load configuration, start adapters. No validation logic here.
//!
//! The topmost layer: it may use every other, and nothing uses it. The binary (`src/main.rs`)
//! only installs the allocator and calls [`main`].

mod check;
mod commands;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::ops::wall_clock;
use crate::service::logout::{self, LogoutRequestParams, LogoutResponseParams, ValidateLogoutParams};
use crate::service::sp::{self, AuthnRequestParams};

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
        response: commands::SavedResponse,
    },
    /// Explain one saved SAMLResponse without accepting it: every check with what was expected
    /// and found, the certificates, a hint per failure (what `POST /v1/diagnose` answers).
    /// Exit status: 0 every check passes, 1 a check fails or the input is refused, 2 usage or
    /// configuration error.
    Diagnose {
        #[command(flatten)]
        response: commands::SavedResponse,
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

/// Runs the command the process's arguments name; the exit code is part of each command's
/// contract (see its help).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve::serve(&config),
        Command::Validate { response } => commands::validate(&response, false),
        Command::Diagnose { response } => commands::validate(&response, true),
        Command::AuthnRequest { config, tenant, binding, relay_state, force_authn, is_passive, acs_url } => {
            let params = AuthnRequestParams { tenant, relay_state, force_authn, is_passive, binding, acs_url };
            commands::print_created(&config, &params.tenant, |t, id| sp::authn_request(t, &params, id, wall_clock()))
        }
        Command::SpMetadata { config, tenant } => commands::sp_metadata(&config, &tenant),
        Command::LogoutRequest { config, params } => commands::print_created(&config, &params.tenant, |t, id| {
            logout::logout_request(t, &params, id, wall_clock())
        }),
        Command::LogoutResponse { config, params } => commands::print_created(&config, &params.tenant, |t, id| {
            logout::logout_response(t, &params, id, wall_clock())
        }),
        Command::ValidateLogout { config, params } => commands::validate_logout(&config, &params),
        Command::CheckConfig { file } => check::check_config(&file),
        Command::Demo { http_addr } => serve::demo(&http_addr),
    }
}
