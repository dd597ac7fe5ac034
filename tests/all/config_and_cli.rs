//! Configuration loading (every problem reported at once) and the command line.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::*;
use saml_validator::config::Config;
use saml_validator::testing::idp::TestIdp;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/idp-responses")
}

#[test]
fn a_bad_file_reports_every_problem_together() {
    let idp = TestIdp::generate().unwrap();
    let weak =
        std::fs::read_to_string(fixtures().join("okta-xmlcrypto-assertion-inclusive-namespaces.crt.pem")).unwrap();
    let text = format!(
        r#"
unknown_top = 1
[server]
http_addr = "not an address"
max_body_bytes = 12
[diagnostics]
failures_total = 2000000
[[tenants]]
id = "a"
idp_entity_id = "https://idp/"
sp_entity_id = "https://sp/"
acs_url = "https://sp/acs"
certificates = ["not a certificate"]
alow_sha1 = true
[[tenants]]
id = "a"
idp_entity_id = "https://idp/"
sp_entity_id = "https://sp/"
acs_url = "ftp://sp/acs"
clock_skew_seconds = 99999
[[tenants]]
id = "weak"
sp_entity_id = "https://sp/"
acs_url = "https://sp/acs"
certificates = ['''{weak}''']
certificate_files = ["/nonexistent/cert.pem"]
[tenants.attribute_mapping]
email = ["mail"]
nickname = ["x"]
[[tenants]]
id = "fine"
idp_entity_id = "https://idp/"
sp_entity_id = "https://sp/"
acs_url = "https://sp/acs"
certificates = ["{}"]
"#,
        idp.certificate_base64()
    );
    let errors = Config::parse(&text, Path::new("."), chrono::Utc::now()).unwrap_err().0;
    let expect = [
        "unknown_top: unknown key",
        "server.http_addr:",
        "server.max_body_bytes: 12 is outside",
        "diagnostics.failures_total: 2000000 is outside",
        "tenants[0].certificates[0]: neither PEM nor base64 DER",
        "tenants[0].alow_sha1: unknown key",
        "tenants[1]: duplicate tenant id \"a\"",
        "tenants[1].acs_url:",
        "tenants[1].clock_skew_seconds: 99999 is outside",
        "tenants[1].certificates: the tenant has no certificate",
        "tenants[2].idp_entity_id: is required",
        "tenants[2].certificates: certificate",
        "tenants[2].certificate_files[0]: cannot read",
        "tenants[2].attribute_mapping.nickname: unknown key",
    ];
    for needle in expect {
        assert!(errors.iter().any(|e| e.contains(needle)), "missing {needle:?} in {errors:#?}");
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
}

#[test]
fn certificates_as_pem_bare_base64_and_files() {
    let idp = TestIdp::generate().unwrap();
    let dir = temp_dir("certs");
    std::fs::write(dir.join("idp.pem"), idp.certificate_pem()).unwrap();
    // Bare base64 wrapped at 64 columns, as pasted from a download into a text box.
    let wrapped: String = idp
        .certificate_base64()
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let text = format!(
        "[[tenants]]\nid = \"t\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = ['''{wrapped}''', \"{}\"]\ncertificate_files = [\"idp.pem\"]\n",
        idp.certificate_base64()
    );
    std::fs::write(dir.join("config.toml"), &text).unwrap();
    let config = Config::load(&dir.join("config.toml"), chrono::Utc::now()).unwrap();
    let keys = &config.tenants[0].policy.keys;
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k.info.sha256_fingerprint == keys[0].info.sha256_fingerprint));
    assert_eq!(config.tenants[0].policy.clock_skew_seconds, 180, "default skew");
    assert!(!config.tenants[0].policy.allow_sha1 && !config.tenants[0].policy.allow_idp_initiated);
}

fn fixture_config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"[[tenants]]
id = "entra"
idp_entity_id = "https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec/"
sp_entity_id = "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml"
acs_url = "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml/acs"
certificate_files = ["{}"]
allow_idp_initiated = true
"#,
        fixtures().join("entra-ssoready-signed-assertion.crt.pem").display()
    );
    let path = dir.join("fixture.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn cli_check_config() {
    let dir = temp_dir("check");
    let good = fixture_config(&dir);
    let out = Command::new(BIN).args(["check-config"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 tenant"));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[tenants]]\nid = \"x\"\nbogus = 1\n").unwrap();
    let out = Command::new(BIN).args(["check-config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bogus") && stderr.contains("idp_entity_id") && stderr.contains("certificate"), "{stderr}");
}

#[test]
fn cli_validate_replays_a_saved_response_at_its_instant() {
    let dir = temp_dir("validate");
    let config = fixture_config(&dir);
    let file = fixtures().join("entra-ssoready-signed-assertion.xml");
    let out = Command::new(BIN)
        .args(["validate", "--tenant", "entra", "--at", "2023-11-17T18:39:32Z", "--config"])
        .arg(&config)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["claims"]["email"], "ulysse.carion@codomaindata.com");

    // Base64 on standard input, judged now: long expired.
    let xml = std::fs::read(&file).unwrap();
    let mut child = Command::new(BIN)
        .args(["validate", "--tenant", "entra", "--config"])
        .arg(&config)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(saml_validator::testing::idp::post_binding(std::str::from_utf8(&xml).unwrap()).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["code"], "subject_confirmation_expired");

    let out = Command::new(BIN)
        .args(["validate", "--tenant", "entra", "--at", "yesterday", "--config"])
        .arg(&config)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_prints_a_curl_command_that_validates() {
    let mut child = Command::new(BIN)
        .args(["demo", "--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let curl = lines.by_ref().map(|l| l.unwrap()).find(|l| l.starts_with("curl ")).expect("a curl line");
    let url = curl.split_whitespace().nth(2).unwrap();
    let addr: std::net::SocketAddr =
        url.trim_start_matches("http://").trim_end_matches("/v1/validate").parse().unwrap();
    let body = curl.split(" -d '").nth(1).unwrap().trim_end_matches('\'');
    let first = request(addr, "POST", "/v1/validate", body.as_bytes(), &[("Content-Type", "application/json")]);
    let second = request(addr, "POST", "/v1/validate", body.as_bytes(), &[("Content-Type", "application/json")]);
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["claims"]["email"], "ada@contoso.example");
    assert_eq!(second.json()["error"]["code"], "replayed");
}

#[test]
fn cli_serve_with_a_separate_metrics_listener_and_json_logs() {
    let idp = TestIdp::generate().unwrap();
    let metrics_port = free_port();
    let text = config_text(&idp, &format!("metrics_addr = \"127.0.0.1:{metrics_port}\""));
    let (mut child, http, _) = spawn_serve("serve", &text, Stdio::piped());
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    wait_until_up(metrics);
    let ready = request(http, "GET", "/readyz", b"", &[]);
    let rejected = request(
        http,
        "POST",
        "/v1/validate",
        br#"{"tenant":"contoso","saml_response":"!!"}"#,
        &[("X-Request-Id", "cli-serve-1")],
    );
    // A malformed document: libxml2's complaint must end up in the response, not on stderr.
    let broken = saml_validator::testing::idp::post_binding(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><unclosed>",
    );
    let malformed = request(
        http,
        "POST",
        "/v1/validate",
        format!(r#"{{"tenant":"contoso","saml_response":"{broken}"}}"#).as_bytes(),
        &[],
    );
    let on_main = request(http, "GET", "/metrics", b"", &[]);
    let on_metrics = request(metrics, "GET", "/metrics", b"", &[]);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(on_main.status, 404, "metrics live only on metrics_addr when it is set");
    assert_eq!(on_metrics.status, 200);
    assert!(on_metrics.body.contains("saml_validations_total"));
    assert_eq!(rejected.json()["error"]["code"], "base64_invalid");
    assert_eq!(malformed.json()["error"]["code"], "xml_malformed");
    assert!(malformed.json()["error"]["message"].as_str().unwrap().contains("line 1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "non-JSON output on stderr: {line}");
    }
    let event = stderr.lines().find(|l| l.contains("cli-serve-1")).unwrap_or_else(|| panic!("no log event: {stderr}"));
    let event: serde_json::Value = serde_json::from_str(event).unwrap();
    assert_eq!(event["code"], "base64_invalid");
    assert_eq!(event["outcome"], "rejected");
}

#[test]
fn sigterm_finishes_in_flight_requests_then_stops_both_servers() {
    use std::io::Read as _;
    let idp = TestIdp::generate().unwrap();
    let grpc_port = free_port();
    let text = config_text(&idp, &format!("grpc_addr = \"127.0.0.1:{grpc_port}\""));
    let (mut child, http, _) = spawn_serve("sigterm", &text, Stdio::null());
    let grpc: std::net::SocketAddr = format!("127.0.0.1:{grpc_port}").parse().unwrap();
    wait_until_up(grpc);

    // A request in flight: headers and half the body sent before the signal.
    let xml =
        saml_validator::testing::idp::ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), chrono::Utc::now(), 10, 5)
            .signed(&idp, saml_validator::testing::idp::Signing::Assertion)
            .unwrap();
    let body = serde_json::json!({"tenant": "contoso", "saml_response": saml_validator::testing::idp::post_binding(&xml), "expected_request_id": REQUEST_ID}).to_string();
    let mut stream = std::net::TcpStream::connect(http).unwrap();
    write!(
        stream,
        "POST /v1/validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    // Wait (bounded) until the handler has admitted it: the in-flight gauge shows 1.
    let in_flight =
        eventually(|| request(http, "GET", "/metrics", b"", &[]).body.lines().any(|l| l == "saml_inflight_requests 1"));
    assert!(in_flight, "request never became in flight");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // Wait (bounded) until shutdown has begun: new connections are refused.
    let refusing = eventually(|| std::net::TcpStream::connect(http).is_err());
    assert!(refusing, "server kept accepting after SIGTERM");
    stream.write_all(second).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "in-flight request did not finish: {reply}");

    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(std::net::TcpStream::connect(http).is_err(), "HTTP still accepting after shutdown");
    assert!(std::net::TcpStream::connect(grpc).is_err(), "gRPC still accepting after shutdown");
}

fn metadata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/idp-metadata")
}

#[test]
fn a_tenant_configured_only_with_signed_entra_metadata_validates() {
    let dir = temp_dir("metadata");
    let signing =
        std::fs::read_to_string(metadata_dir().join("entra-ssoready-tenant-federationmetadata.crt.pem")).unwrap();
    let text = format!(
        r#"[[tenants]]
id = "entra"
sp_entity_id = "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml"
acs_url = "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml/acs"
metadata_file = "{}"
metadata_signing_certificate = ['''{signing}''']
allow_idp_initiated = true
"#,
        metadata_dir().join("entra-ssoready-tenant-federationmetadata.xml").display()
    );
    let config = dir.join("metadata.toml");
    std::fs::write(&config, &text).unwrap();
    let loaded = Config::load(&config, chrono::Utc::now()).unwrap();
    let tenant = &loaded.tenants[0];
    assert_eq!(
        tenant.policy.idp_entity_id, "https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec/",
        "Issuer from entityID"
    );
    assert!(tenant.policy.keys.iter().all(|k| k.info.origin.starts_with("metadata:")));
    assert!(tenant.metadata.as_ref().unwrap().signature_verified);
    let out = Command::new(BIN)
        .args(["validate", "--tenant", "entra", "--at", "2023-11-17T18:39:32Z", "--config"])
        .arg(&config)
        .arg(fixtures().join("entra-ssoready-signed-assertion.xml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // Mismatched issuer, a signature requirement on unsigned metadata, a stray signing cert.
    let mismatch = text.replace("[[tenants]]\n", "[[tenants]]\nidp_entity_id = \"https://sts.windows.net/other/\"\n");
    let errors = Config::parse(&mismatch, Path::new("."), chrono::Utc::now()).unwrap_err().0;
    assert!(errors.iter().any(|e| e.contains("idp_entity_id") && e.contains("differs")), "{errors:?}");
    let unsigned = text.replace("entra-ssoready-tenant-federationmetadata.xml", "okta-ssoready-metadata.xml");
    let errors = Config::parse(&unsigned, Path::new("."), chrono::Utc::now()).unwrap_err().0;
    assert!(
        errors.iter().any(|e| e.contains("metadata_file") && e.contains("metadata_signature_missing")),
        "{errors:?}"
    );
    let stray = format!("[[tenants]]\nid = \"x\"\nidp_entity_id = \"i\"\nsp_entity_id = \"s\"\nacs_url = \"https://a/\"\nmetadata_signing_certificate = ['''{signing}''']\n");
    let errors = Config::parse(&stray, Path::new("."), chrono::Utc::now()).unwrap_err().0;
    assert!(errors.iter().any(|e| e.contains("set only together with metadata_file")), "{errors:?}");
}

#[test]
fn config_reloads_on_sighup_and_file_change_without_failing_requests() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let idp = TestIdp::generate().unwrap();
    let dir = temp_dir("reload");
    let http_port = free_port();
    let base = config_text(&idp, "config_poll_seconds = 1").replace("127.0.0.1:0", &format!("127.0.0.1:{http_port}"));
    let with_tenant = |id: &str| {
        format!("{base}\n[[tenants]]\nid = \"{id}\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{}\"]\n", idp.certificate_base64())
    };
    let config = dir.join("reload.toml");
    std::fs::write(&config, &base).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    wait_until_up(http);

    // Logins keep flowing through every reload.
    let pool: Vec<String> = (0..400)
        .map(|seed| {
            let xml = saml_validator::testing::idp::ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), chrono::Utc::now(), 10, 1000 + seed)
                .signed(&idp, saml_validator::testing::idp::Signing::Assertion)
                .unwrap();
            serde_json::json!({"tenant": "contoso", "saml_response": saml_validator::testing::idp::post_binding(&xml), "expected_request_id": REQUEST_ID}).to_string()
        })
        .collect();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            for body in pool {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                statuses.push(request(http, "POST", "/v1/validate", body.as_bytes(), &[]).status);
            }
            statuses
        })
    };
    let tenant_status = |id: &str| request(http, "GET", &format!("/v1/tenants/{id}"), b"", &[]).status;
    let hangup = || assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());

    // A good file, announced by SIGHUP.
    std::fs::write(&config, with_tenant("fabrikam")).unwrap();
    hangup();
    assert!(eventually(|| tenant_status("fabrikam") == 200), "SIGHUP reload did not add the tenant");
    // A bad file: refused, the running configuration keeps serving.
    std::fs::write(&config, format!("{}\nbogus_key = 1\n", with_tenant("wrong"))).unwrap();
    hangup();
    let failures = || {
        request(http, "GET", "/metrics", b"", &[])
            .body
            .lines()
            .any(|l| l.starts_with("saml_config_reloads_total{result=\"failure\"}") && !l.ends_with(" 0"))
    };
    assert!(eventually(failures), "the bad file was not reported");
    assert_eq!(tenant_status("fabrikam"), 200);
    assert_eq!(tenant_status("wrong"), 404);
    // A good file again, picked up by the poller without a signal.
    std::fs::write(&config, with_tenant("northwind")).unwrap();
    assert!(eventually(|| tenant_status("northwind") == 200), "file change was not picked up");
    assert_eq!(tenant_status("fabrikam"), 404, "the tenant set is replaced whole");

    stop.store(true, Ordering::Relaxed);
    let statuses = client.join().unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| *s == 200), "a request failed during reloads: {statuses:?}");
}

#[test]
fn cli_diagnose_explains_a_real_entra_response_at_its_instant_and_now() {
    let dir = temp_dir("diagnose");
    let config = fixture_config(&dir);
    let file = fixtures().join("entra-ssoready-signed-assertion.xml");
    let run = |at: Option<&str>| {
        let mut command = Command::new(BIN);
        command.args(["diagnose", "--tenant", "entra", "--config"]).arg(&config);
        if let Some(at) = at {
            command.args(["--at", at]);
        }
        command.arg(&file).output().unwrap()
    };
    let then = run(Some("2023-11-17T18:39:32Z"));
    assert!(then.status.success(), "{}", String::from_utf8_lossy(&then.stdout));
    let v: serde_json::Value = serde_json::from_slice(&then.stdout).unwrap();
    assert!(v["verdict"].is_null() && v.get("valid").is_none(), "{v}");
    let signature = &v["signatures"][0];
    assert_eq!(signature["result"], "pass");
    assert_eq!(signature["document_certificates"][0]["configured"], true, "Entra's KeyInfo names the pasted one");
    assert_eq!(signature["verified_by"], signature["document_certificates"][0]["sha256_thumbprint"]);

    let now = run(None);
    assert_eq!(now.status.code(), Some(1), "{}", String::from_utf8_lossy(&now.stdout));
    let text = String::from_utf8_lossy(&now.stdout);
    assert!(!text.contains("ulysse.carion"), "personal data in a diagnosis: {text}");
    let v: serde_json::Value = serde_json::from_slice(&now.stdout).unwrap();
    assert_eq!(v["verdict"]["code"], "subject_confirmation_expired", "{v}");
    let conditions = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "conditions").unwrap();
    assert_eq!(conditions["code"], "assertion_expired");
    assert!(conditions["seconds_from_now"].as_i64().unwrap() < -86_400 * 365, "{conditions}");
    assert!(v["verdict"]["hint"].as_str().unwrap().contains("clock"), "{v}");
}
