//! `tenants_dir` on the real binary: files added, changed, refused and deleted while logins for
//! other tenants run, each change touching its own tenant only; a dead `metadata_url` beside
//! healthy tenants. The watch is what the binary runs (inotify, polling as the fallback).

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::*;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use serde_json::json;

fn tenant_file(idp: &TestIdp) -> String {
    format!(
        "idp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{}\"]\n",
        idp.certificate_base64()
    )
}

/// Replaces the file the way a control plane should (write aside, rename over): the watch
/// never sees half a file.
fn put(dir: &Path, id: &str, text: &str) {
    let aside = dir.join(format!(".{id}.toml.tmp"));
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, dir.join(format!("{id}.toml"))).unwrap();
}

/// A fresh `<temp>/tenants.d` (emptied of an earlier run's files), with its parent.
fn empty_tenants_dir(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let base = temp_dir(name);
    let dir = base.join("tenants.d");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (base, dir)
}

static SEED: AtomicU64 = AtomicU64::new(1);

fn login(addr: std::net::SocketAddr, tenant: &str, idp: &TestIdp) -> HttpReply {
    let seed = SEED.fetch_add(1, Ordering::Relaxed);
    let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), chrono::Utc::now(), 10, seed)
        .signed(idp, Signing::Assertion)
        .unwrap();
    validate_json(
        addr,
        &json!({"tenant": tenant, "saml_response": post_binding(&xml), "expected_request_id": REQUEST_ID}),
    )
}

fn tenant_view(addr: std::net::SocketAddr, id: &str) -> (u16, serde_json::Value) {
    let reply = request(addr, "GET", &format!("/v1/tenants/{id}"), b"", &[]);
    let body = serde_json::from_str(&reply.body).unwrap_or(serde_json::Value::Null);
    (reply.status, body)
}

#[test]
fn each_tenant_file_change_touches_that_tenant_only_while_logins_run() {
    let name = "tenants-dir";
    let base = temp_dir(name);
    let dir = base.join("tenants.d");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let steady = Arc::new(TestIdp::generate().unwrap());
    let (old, new) = (TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    put(&dir, "alpha", &tenant_file(&steady));
    put(&dir, "beta", &tenant_file(&steady));
    // Editors' leftovers and names that are not ids never become tenants.
    std::fs::write(dir.join("notes.txt"), "not a tenant").unwrap();
    std::fs::write(dir.join("Upper.toml"), tenant_file(&steady)).unwrap();
    let dead = format!("http://127.0.0.1:{}/federationmetadata.xml", free_port());
    put(&dir, "dead", &format!("sp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_url = \"{dead}\"\n"));
    let config = "tenants_dir = \"tenants.d\"\n\n[server]\nhttp_addr = \"127.0.0.1:0\"\n\n[metadata]\nallowed_hosts = [\"127.0.0.1\"]\ntimeout_seconds = 1\n";
    let (child, addr, _) = spawn_serve(name, config, Stdio::null());
    let _child = KillOnDrop(child);

    // Ready once every tenant was tried; the dead endpoint makes one tenant unavailable.
    assert!(eventually(|| request(addr, "GET", "/readyz", b"", &[]).status == 200));
    let ready = request(addr, "GET", "/readyz", b"", &[]).json();
    assert_eq!((ready["tenants"].as_u64(), ready["unavailable"].as_u64()), (Some(3), Some(1)), "{ready}");
    assert_eq!(tenant_view(addr, "dead").1["status"], "unavailable");
    let refused = login(addr, "dead", &steady);
    assert_eq!((refused.status, refused.json()["error"]["code"].as_str()), (503, Some("tenant_unavailable")));
    assert_eq!(tenant_view(addr, "upper").0, 404);

    // Logins for alpha and beta run throughout; every one must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = ["alpha", "beta"]
        .into_iter()
        .map(|tenant| {
            let (stop, statuses, steady) = (stop.clone(), statuses.clone(), steady.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let reply = login(addr, tenant, &steady);
                    statuses.lock().unwrap().push((tenant, reply.status, reply.body));
                }
            })
        })
        .collect();

    // Added: in force without a reload.
    put(&dir, "gamma", &tenant_file(&old));
    assert!(eventually(|| login(addr, "gamma", &old).status == 200), "added tenant never served");
    // Changed: the new certificate replaces the old one.
    put(&dir, "gamma", &tenant_file(&new));
    assert!(eventually(|| login(addr, "gamma", &new).status == 200), "changed tenant never took its new key");
    assert_eq!(login(addr, "gamma", &old).json()["error"]["code"], "signature_invalid");
    // Refused: shown as config_error, and the last good version keeps serving.
    put(&dir, "gamma", &format!("{}bogus_key = 1\n", tenant_file(&new)));
    assert!(eventually(|| tenant_view(addr, "gamma").1["status"] == "config_error"));
    let (status, view) = tenant_view(addr, "gamma");
    assert_eq!(status, 200);
    let problems = view["config_error"]["problems"].to_string();
    assert!(problems.contains("bogus_key"), "{view}");
    assert_eq!(view["idp_entity_id"], IDP, "the view is the last good version: {view}");
    assert_eq!(login(addr, "gamma", &new).status, 200, "last good version keeps serving");
    // A file that was never good: config_error, and its logins are refused as unavailable.
    put(&dir, "delta", "sp_entity_id = 1\n");
    assert!(eventually(|| tenant_view(addr, "delta").1["status"] == "config_error"));
    let refused = login(addr, "delta", &steady);
    assert_eq!((refused.status, refused.json()["error"]["code"].as_str()), (503, Some("tenant_unavailable")));
    // Fixed again: the refusal clears.
    put(&dir, "gamma", &tenant_file(&new));
    assert!(eventually(|| tenant_view(addr, "gamma").1["status"] == "ok"));
    // Deleted: gone.
    std::fs::remove_file(dir.join("gamma.toml")).unwrap();
    assert!(eventually(|| login(addr, "gamma", &new).status == 404), "deleted tenant still served");

    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let statuses = statuses.lock().unwrap();
    assert!(statuses.len() >= 10, "the steady logins ran: {}", statuses.len());
    for (tenant, status, body) in statuses.iter() {
        assert_eq!(*status, 200, "{tenant}: {body}");
    }
    let metrics = request(addr, "GET", "/metrics", b"", &[]).body;
    assert!(metrics.contains("saml_tenants{state=\"config_error\"} 1"), "{metrics}");
    assert!(metrics.contains("saml_tenants{state=\"unavailable\"} 1"), "{metrics}");
    let refusals = metrics
        .lines()
        .find_map(|l| l.strip_prefix("saml_tenant_file_reloads_total{result=\"refused\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(refusals >= Some(2), "{metrics}");
}

#[test]
fn check_config_refuses_bad_tenant_files_by_name() {
    let (base, dir) = empty_tenants_dir("tenants-dir-check");
    let idp = TestIdp::generate().unwrap();
    put(&dir, "good", &tenant_file(&idp));
    put(&dir, "broken", "acs_url = 3\n");
    put(&dir, "named", &format!("id = \"other\"\n{}", tenant_file(&idp)));
    let main = base.join("main.toml");
    std::fs::write(&main, "tenants_dir = \"tenants.d\"\n").unwrap();
    let out = std::process::Command::new(BIN).args(["check-config"]).arg(&main).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\"broken\"") && stderr.contains("acs_url"), "{stderr}");
    assert!(stderr.contains("\"named\"") && stderr.contains("file name is the tenant id"), "{stderr}");
    assert!(stderr.contains("1 tenant(s) are ok"), "{stderr}");
    std::fs::remove_file(dir.join("broken.toml")).unwrap();
    std::fs::remove_file(dir.join("named.toml")).unwrap();
    let out = std::process::Command::new(BIN).args(["check-config"]).arg(&main).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 1 tenant"));
}

/// A file named after a `[[tenants]]` entry of the main file is refused, and stays refused
/// through full reloads: editing or deleting it never replaces or removes the operator's tenant.
#[test]
fn a_tenant_file_never_takes_over_a_main_file_tenant_even_after_a_reload() {
    use saml_validator::config::Config;
    use saml_validator::tenants::Registry;
    let (base, dir) = empty_tenants_dir("tenants-dir-inline");
    let (operator, intruder) = (TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    let main = base.join("main.toml");
    std::fs::write(
        &main,
        format!("tenants_dir = \"tenants.d\"\n\n[[tenants]]\nid = \"acme\"\n{}", tenant_file(&operator)),
    )
    .unwrap();
    put(&dir, "acme", &tenant_file(&intruder));
    let now = chrono::Utc::now();
    let metrics = std::sync::Arc::new(saml_validator::ops::metrics::Metrics::new());
    let registry = Registry::new(&Config::load(&main, now).unwrap(), metrics);
    let trusted = || registry.get("acme").map(|t| t.static_keys[0].info.sha256_fingerprint.clone());
    let operator_key = trusted();
    assert!(operator_key.is_some());
    assert_eq!(registry.current().state("acme").map(|s| s.as_str()), Some("config_error"));

    // A full reload (SIGHUP, a main-file change, a restart) reads the clash again...
    registry.replace(&Config::load(&main, now).unwrap());
    assert_eq!(trusted(), operator_key);
    // ... and afterwards an edited file is still refused,
    put(&dir, "acme", &format!("{}clock_skew_seconds = 5\n", tenant_file(&intruder)));
    let rescan = registry.rescan_tenants_dir(now);
    assert_eq!((rescan.loaded, rescan.refused), (0, 1));
    assert_eq!(trusted(), operator_key);
    // and a deleted one removes nobody.
    std::fs::remove_file(dir.join("acme.toml")).unwrap();
    registry.rescan_tenants_dir(now);
    assert_eq!(trusted(), operator_key);
    assert_eq!(registry.current().state("acme").map(|s| s.as_str()), Some("ok"));
}
