//! Metrics and logs of the real server: exact counter deltas after a scripted mix of requests,
//! and no personal data or document content in the logs after a run of attack documents.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

#[path = "all/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Utc;
use saml_validator::config::MetricsSettings;
use saml_validator::ops::metrics::{CertificateExpiry, Metrics, Snapshot};
use saml_validator::saml::Code;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::wire;
use serde_json::json;
use support::*;

/// Log lines captured from the global subscriber of this test binary.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        tracing_subscriber::fmt()
            .json()
            .with_env_filter("info")
            .with_writer(move || writer.clone())
            .try_init()
            .unwrap();
        capture
    })
}

/// `name{labels}` → value for every sample line of a Prometheus text exposition.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(name, value)| (name.to_string(), value.parse().unwrap()))
        .collect()
}

fn scrape(addr: std::net::SocketAddr) -> (String, HashMap<String, f64>) {
    let reply = request(addr, "GET", "/metrics", b"", &[]);
    assert_eq!(reply.status, 200);
    let map = samples(&reply.body);
    (reply.body, map)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

const NAME_ID: &str = "pii-marker-nameid@contoso.example";
const EMAIL: &str = "pii-marker-email@contoso.example";
const ATTRIBUTE: &str = "pii-marker-attribute-value";

fn spec(seed: u64) -> ResponseSpec {
    let mut spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, seed);
    spec.name_id = NAME_ID.into();
    spec.attributes
        .push(("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress".into(), vec![EMAIL.into()]));
    spec.attributes.push(("urn:custom".into(), vec![ATTRIBUTE.into()]));
    spec
}

fn body(xml: &str) -> serde_json::Value {
    json!({"tenant": "contoso", "saml_response": post_binding(xml), "expected_request_id": REQUEST_ID})
}

#[test]
fn metrics_count_exactly_and_logs_carry_no_personal_data() {
    let capture = logs();
    let idp = TestIdp::generate().unwrap();
    let attacker = TestIdp::generate().unwrap();
    let addr = start_server(&config_text(&idp, ""));
    let (_, before) = scrape(addr);

    // ---- a scripted mix ----
    let mut sent_bodies = Vec::new();
    let mut send = |value: serde_json::Value, request_id: &str| {
        sent_bodies.push(value["saml_response"].as_str().unwrap_or_default().to_string());
        request(addr, "POST", "/v1/validate", value.to_string().as_bytes(), &[("X-Request-Id", request_id)])
    };
    for seed in 0..3 {
        assert_eq!(
            send(body(&spec(seed).signed(&idp, Signing::Assertion).unwrap()), &format!("ok-{seed}")).status,
            200
        );
    }
    let replayed = body(&spec(0).signed(&idp, Signing::Assertion).unwrap());
    assert_eq!(send(replayed, "replay-1").status, 422);
    for seed in 10..12 {
        assert_eq!(
            send(body(&spec(seed).signed(&attacker, Signing::Assertion).unwrap()), &format!("forged-{seed}")).status,
            422
        );
    }
    let unknown = json!({"tenant": "evil-tenant-name", "saml_response": "x"});
    assert_eq!(send(unknown, "unknown-1").status, 404);
    let malformed = request(addr, "POST", "/v1/validate", b"{nope", &[("X-Request-Id", "malformed-1")]);
    assert_eq!(malformed.status, 400);

    let (text, after) = scrape(addr);
    // By default tenants × outcomes, and the codes without the tenant ([metrics] per_tenant_codes).
    let count = |tenant: &str, outcome: &str| {
        delta(&before, &after, &format!("saml_validations_total{{outcome=\"{outcome}\",tenant=\"{tenant}\"}}"))
    };
    let code = |code: &str| delta(&before, &after, &format!("saml_validation_errors_total{{code=\"{code}\"}}"));
    assert_eq!(count("contoso", "valid"), 3.0, "{text}");
    assert_eq!(count("contoso", "rejected"), 3.0);
    assert_eq!(count("-", "error"), 2.0);
    assert_eq!(code("replayed"), 1.0);
    assert_eq!(code("signature_invalid"), 2.0);
    assert_eq!(code("unknown_tenant"), 1.0);
    assert_eq!(code("malformed_request"), 1.0);
    assert!(!text.contains("saml_validations_total{code="), "no tenant x code series by default");
    assert_eq!(delta(&before, &after, "saml_replay_hits_total"), 1.0);
    assert_eq!(delta(&before, &after, "saml_validation_duration_seconds_count"), 8.0);
    assert_eq!(delta(&before, &after, "saml_request_payload_bytes_count"), 8.0);
    assert!(after["saml_replay_cache_entries"] >= 3.0);
    assert_eq!(after["saml_inflight_requests"], 0.0);
    let expiry =
        after.iter().find(|(k, _)| k.starts_with("saml_certificate_expiry_seconds{")).map(|(_, v)| *v).unwrap();
    assert!(expiry > 300.0 * 86_400.0 && expiry <= 366.0 * 86_400.0, "{expiry}");
    assert!(text.contains("saml_build_info{"), "{text}");
    assert!(!text.contains("evil-tenant-name"), "request content must never become a label");

    // ---- attack documents through the same server ----
    let signed = spec(20).signed(&idp, Signing::Assertion).unwrap();
    let evil = {
        let mut evil = spec(21);
        evil.assertion_id = "_evil".into();
        evil.render_assertion()
    };
    let original = signed[signed.find("<Assertion ").unwrap()..].replace("</samlp:Response>", "");
    let attacks = [
        signed.replace(NAME_ID, "pii-marker-nameid@contoso.example.evil"),
        signed.replacen("<Assertion ", &format!("{evil}<Assertion "), 1),
        signed.replace(&original, &evil),
        signed.replace(NAME_ID, "pii-marker-nameid@contoso<!---->.example"),
        format!("<!DOCTYPE r [<!ENTITY x \"{ATTRIBUTE}\">]>{signed}"),
        signed.replace("</NameID>", "<?pi x?></NameID>"),
        spec(22).signed(&idp, Signing::Unsigned).unwrap(),
        spec(23).signed(&attacker, Signing::Both).unwrap(),
        signed.replace("Version=\"2.0\"", "Version=\"1.0\""),
        "<not-saml>".to_string(),
    ];
    for (i, xml) in attacks.iter().enumerate() {
        let reply = send(body(xml), &format!("attack-{i}"));
        assert!(reply.status == 422 || reply.status == 200, "{}", reply.body);
    }
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("\"request_id\":\"attack-0\""), "every validation is logged with its request id");
    for marker in [NAME_ID, EMAIL, ATTRIBUTE, "pii-marker", "<samlp:Response", "<Assertion", "NameID>"] {
        assert!(!text.contains(marker), "logs contain {marker:?}");
    }
    for sent in &sent_bodies {
        if sent.len() > 40 {
            assert!(!text.contains(&sent[..40]), "logs contain a response body");
        }
    }
    // Every metric the README table and the Grafana dashboard use exists.
    let (exposition, _) = scrape(addr);
    let readme = include_str!("../README.md");
    let readme = &readme[readme.find("## Operating").unwrap()..readme.find("## Tests").unwrap()];
    let dashboard = include_str!("../docs/grafana-dashboard.json");
    for source in [readme, dashboard] {
        for name in source.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("saml_"))
        {
            let base = name.trim_end_matches("_bucket").trim_end_matches("_count").trim_end_matches("_sum");
            // Per-tenant metadata series exist only for tenants that use metadata_url.
            // Replay store series exist only with store = "redis" (tests/replay_store.rs checks them).
            if base.starts_with("saml_metadata_") || base.starts_with("saml_replay_store_") {
                continue;
            }
            assert!(exposition.contains(&format!("# TYPE {base} ")), "{name} is documented but not exported");
        }
    }
    // The failed login is traceable: request id → the check that failed.
    let line = text.lines().find(|l| l.contains("\"request_id\":\"forged-10\"")).unwrap();
    assert!(line.contains("\"code\":\"signature_invalid\"") && line.contains("\"tenant\":\"contoso\""), "{line}");
}

/// Series in the exposition, by family (the name before `{` or the space).
fn series(exposition: &str) -> HashMap<String, usize> {
    let mut families = HashMap::new();
    for line in exposition.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = line.split(['{', ' ']).next().unwrap().to_string();
        *families.entry(name).or_insert(0) += 1;
    }
    families
}

/// Every code for every tenant, three certificates each: what the scrape carries.
fn exposition_for(tenants: usize, settings: &MetricsSettings) -> String {
    let metrics = Metrics::with_settings(settings);
    let mut snapshot = Snapshot::default();
    for t in 0..tenants {
        let tenant = format!("tenant-{t:05}");
        metrics.observe(&tenant, "valid", "none", std::time::Duration::from_micros(300), 4096);
        for code in Code::ALL {
            let outcome = wire::disposition(*code).outcome.as_str();
            metrics.observe(&tenant, outcome, code.as_str(), std::time::Duration::from_micros(300), 4096);
        }
        for c in 0..3 {
            snapshot.certificates.push(CertificateExpiry {
                tenant: tenant.clone(),
                sha256_fingerprint: format!("{c:016x}{t:048x}"),
                seconds_until_expiry: 86_400 * (30 + c),
            });
        }
    }
    metrics.render(&snapshot)
}

#[test]
fn series_grow_with_tenants_plus_codes_not_their_product() {
    let codes = Code::ALL.len();
    let bounded = MetricsSettings::default();
    let (small, large) = (series(&exposition_for(20, &bounded)), series(&exposition_for(60, &bounded)));
    let total = |s: &HashMap<String, usize>| s.values().sum::<usize>();
    // Each added tenant costs its outcome series (valid, rejected, error) and one expiry gauge.
    assert_eq!(total(&large) - total(&small), 40 * 4, "{large:?}");
    assert_eq!(large["saml_validations_total"], 60 * 3);
    assert_eq!(large["saml_validation_errors_total"], codes);
    assert_eq!(large["saml_certificate_expiry_seconds"], 60, "one gauge per tenant: its soonest expiry");
    let exposition = exposition_for(3, &bounded);
    assert!(exposition.contains("saml_certificate_expiry_seconds{tenant=\"tenant-00000\"} 2592000"), "{exposition}");
    assert!(!exposition.contains("saml_validation_duration_seconds_bucket{le=\"0.0005\",tenant="));

    // per_tenant_codes (and the other per-tenant details) restore the product, for small fleets.
    let detailed = MetricsSettings { per_tenant_codes: true, per_tenant_durations: true, per_certificate_expiry: true };
    let detailed = series(&exposition_for(20, &detailed));
    assert_eq!(detailed["saml_validations_total"], 20 * (codes + 1));
    assert_eq!(detailed["saml_certificate_expiry_seconds"], 20 * 3);
    assert!(detailed["saml_validation_duration_seconds_bucket"] > 20 * 10);
}
