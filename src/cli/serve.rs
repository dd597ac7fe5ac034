//! `serve` and `demo`: the commands that run the service until it is stopped.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::commands::load;
use crate::config::Config;
use crate::ops::telemetry;
use crate::ops::wall_clock;
use crate::service::Service;
use crate::supervisor;
use crate::testing::idp::{self, ResponseSpec, Signing, TestIdp};
use crate::transport::frontend::Frontend;
use crate::transport::http;

pub(super) fn serve(path: &Path) -> ExitCode {
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

pub(super) fn demo(http_addr: &str) -> ExitCode {
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
