//! `check-config`: every problem in a configuration file, then what each tenant will accept.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::ops::metrics::Metrics;
use crate::ops::wall_clock;
use crate::saml;
use crate::tenants::Registry;

pub(super) fn check_config(path: &Path) -> ExitCode {
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
            let registry = Registry::new(&config, Arc::new(Metrics::new()));
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
