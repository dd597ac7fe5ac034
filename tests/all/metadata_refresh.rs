//! Tenants whose keys come from a metadata URL, against a real HTTP server on loopback serving
//! metadata documents: initial load, rotation, an unknown key triggering one on-demand refresh,
//! and every kind of endpoint failure (last good keys kept, then withdrawn when stale).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use crate::support::*;
use chrono::{Duration, Utc};
use saml_validator::config::Config;
use saml_validator::saml::{Code, Input};
use saml_validator::service::{Service, ValidateRequest};
use saml_validator::testing::idp::{idp_metadata, post_binding, ResponseSpec, SignOptions, Signing, TestIdp};

/// What the fake metadata endpoint answers.
#[derive(Clone)]
enum Answer {
    Document(String),
    Status(u16),
    Garbage,
    Oversized,
    /// Accept the connection and never answer (a hung endpoint).
    Hang,
    /// Accept and close at once (a crashed endpoint).
    Drop,
}

struct Endpoint {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<Mutex<usize>>,
}

impl Endpoint {
    fn start(answer: Answer) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let hits = Arc::new(Mutex::new(0));
        let (shared, counter) = (answer.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                *counter.lock().unwrap() += 1;
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer);
                let (status, body) = match shared.lock().unwrap().clone() {
                    Answer::Document(xml) => (200, xml.into_bytes()),
                    Answer::Status(code) => (code, b"error".to_vec()),
                    Answer::Garbage => (200, b"<html><body>maintenance</body></html>".to_vec()),
                    Answer::Oversized => (200, vec![b' '; 3 * 1024 * 1024]),
                    Answer::Drop => {
                        drop(stream);
                        continue;
                    }
                    Answer::Hang => {
                        // Hold the connection open past the client's timeout.
                        std::thread::spawn(move || {
                            std::thread::sleep(std::time::Duration::from_secs(30));
                            drop(stream);
                        });
                        continue;
                    }
                };
                let head =
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Endpoint { addr, answer, hits }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn url(&self) -> String {
        format!("http://{}/federationmetadata/2007-06/federationmetadata.xml", self.addr)
    }

    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

fn config(endpoint: &Endpoint, extra_tenant: &str, extra_metadata: &str) -> Config {
    let text = format!(
        r#"[metadata]
allowed_hosts = ["127.0.0.1"]
timeout_seconds = 1
max_bytes = 1048576
max_staleness_seconds = 3600
on_demand_min_interval_seconds = 30
{extra_metadata}

[[tenants]]
id = "contoso"
sp_entity_id = "{SP}"
acs_url = "{ACS}"
metadata_url = "{}"
{extra_tenant}
"#,
        endpoint.url()
    );
    Config::parse(&text, std::path::Path::new("."), chrono::Utc::now()).unwrap_or_else(|e| panic!("{e}"))
}

fn login(service: &Service, idp: &TestIdp, seed: u64, now: chrono::DateTime<Utc>) -> Result<(), Code> {
    let xml =
        ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), now, 10, seed).signed(idp, Signing::Assertion).unwrap();
    let encoded = post_binding(&xml);
    let request = ValidateRequest {
        tenant: "contoso",
        saml_response: Input::Base64(encoded.as_bytes()),
        expected_request_id: Some(REQUEST_ID),
        expected_acs_url: None,
    };
    block_on(service.validate(&request, now)).map(|_| ()).map_err(|e| e.code)
}

#[test]
fn a_tenant_configured_only_with_a_metadata_url_survives_rotation_and_outages() {
    let (a, b, c) = (TestIdp::generate().unwrap(), TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    let endpoint = Endpoint::start(Answer::Document(idp_metadata(IDP, &[&a], None)));
    let metrics = Arc::new(saml_validator::ops::metrics::Metrics::new());
    let service = Service::try_new(&config(&endpoint, "", ""), metrics.clone()).unwrap();
    let now = Utc::now();
    // Nothing is fetched while the configuration is read: until its first load the tenant is
    // pending, and judges nothing.
    assert_eq!(endpoint.hits(), 0);
    assert!(!service.is_ready());
    assert_eq!(login(&service, &a, 0, now), Err(Code::TenantUnavailable));
    // Refreshing an unchanged document reuses the parsed keys (a cache hit).
    assert!(service.refresh_metadata("contoso", now, "test"));
    assert!(service.refresh_metadata("contoso", now, "test"));
    let exposition = metrics.render(&service.gauges(now));
    assert!(exposition.contains("saml_key_cache_lookups_total{result=\"hit\"} 1"), "{exposition}");
    assert!(exposition.contains("saml_key_cache_lookups_total{result=\"miss\"} 1"), "{exposition}");
    assert!(exposition.contains("saml_metadata_refreshes_total{result=\"success\"} 2"), "{exposition}");
    let tenant = service.tenant("contoso").unwrap();
    assert_eq!(tenant.policy.idp_entity_id, IDP, "Issuer taken from the metadata's entityID");
    assert_eq!(login(&service, &a, 1, now), Ok(()));

    // Rotation, step 1: the IdP publishes a second certificate; both work after a refresh.
    endpoint.set(Answer::Document(idp_metadata(IDP, &[&a, &b], None)));
    assert!(service.refresh_metadata("contoso", now, "test"));
    assert_eq!(login(&service, &a, 2, now), Ok(()));
    assert_eq!(login(&service, &b, 3, now), Ok(()));
    // Step 2: the old one is removed.
    endpoint.set(Answer::Document(idp_metadata(IDP, &[&b], None)));
    assert!(service.refresh_metadata("contoso", now, "test"));
    assert_eq!(login(&service, &a, 4, now), Err(Code::SignatureInvalid));
    assert_eq!(login(&service, &b, 5, now), Ok(()));

    // A brand-new key, published but not yet fetched: the first login carrying it triggers one
    // refresh and succeeds; within the rate limit an unknown key causes no further fetch.
    // (The rejected login with `a` above used this tenant's on-demand budget at `now`.)
    endpoint.set(Answer::Document(idp_metadata(IDP, &[&b, &c], None)));
    let before = endpoint.hits();
    let later = now + Duration::seconds(31);
    assert_eq!(login(&service, &c, 6, later), Ok(()));
    assert_eq!(endpoint.hits(), before + 1);
    let stranger = TestIdp::generate().unwrap();
    assert_eq!(login(&service, &stranger, 7, later + Duration::seconds(5)), Err(Code::SignatureInvalid));
    assert_eq!(endpoint.hits(), before + 1, "on-demand refresh is rate limited");

    // Outages: down, failing, garbage, oversized, hung, empty key list. The last good keys
    // (b, c) stay in use and the failure is visible.
    for (name, answer) in [
        ("500", Answer::Status(500)),
        ("404", Answer::Status(404)),
        ("garbage", Answer::Garbage),
        ("oversized", Answer::Oversized),
        ("hung", Answer::Hang),
        ("down", Answer::Drop),
        ("no keys", Answer::Document(idp_metadata(IDP, &[], None))),
    ] {
        endpoint.set(answer);
        assert!(!service.refresh_metadata("contoso", now + Duration::minutes(10), "test"), "{name}");
        assert_eq!(login(&service, &c, 100 + endpoint.hits() as u64, now), Ok(()), "{name}: last good keys kept");
        let status = service.tenant("contoso").unwrap().metadata.clone().unwrap();
        assert!(status.result.starts_with("failed:"), "{name}: {}", status.result);
    }
    // Past max_staleness_seconds without a good refresh, the metadata keys are withdrawn.
    assert!(!service.refresh_metadata("contoso", now + Duration::hours(2), "test"));
    assert!(service.tenant("contoso").unwrap().policy.keys.is_empty());
    assert_eq!(login(&service, &c, 200, now + Duration::hours(2)), Err(Code::SignatureInvalid));
    // And the endpoint coming back restores them.
    endpoint.set(Answer::Document(idp_metadata(IDP, &[&c], None)));
    assert!(service.refresh_metadata("contoso", now + Duration::hours(2), "test"));
    assert_eq!(login(&service, &c, 201, now + Duration::hours(2)), Ok(()));
}

#[test]
fn signed_metadata_is_required_when_a_signing_certificate_is_configured() {
    let (idp, signer) = (TestIdp::generate().unwrap(), TestIdp::generate().unwrap());
    let signed = signer.sign(&idp_metadata(IDP, &[&idp], Some("PT1H")), "_metadata", &SignOptions::default()).unwrap();
    let endpoint = Endpoint::start(Answer::Document(signed.clone()));
    let extra = format!("metadata_signing_certificate = [\"{}\"]", signer.certificate_base64());
    let service = Service::new(&config(&endpoint, &extra, ""));
    assert_eq!(service.refresh_due(Utc::now()), 1);
    let status = service.tenant("contoso").unwrap().metadata.clone().unwrap();
    assert!(status.signature_verified);
    assert_eq!(status.cache_duration_seconds, Some(3600));
    assert_eq!(login(&service, &idp, 1, Utc::now()), Ok(()));
    // Unsigned or tampered metadata is refused; the verified keys stay.
    endpoint.set(Answer::Document(idp_metadata(IDP, &[&idp], None)));
    assert!(!service.refresh_metadata("contoso", Utc::now(), "test"));
    let attacker = TestIdp::generate().unwrap();
    endpoint.set(Answer::Document(signed.replace(&idp.certificate_base64(), &attacker.certificate_base64())));
    assert!(!service.refresh_metadata("contoso", Utc::now(), "test"));
    assert_eq!(login(&service, &attacker, 2, Utc::now()), Err(Code::SignatureInvalid));
    assert_eq!(login(&service, &idp, 3, Utc::now()), Ok(()));
}

#[test]
fn metadata_urls_are_restricted_to_allowed_http_hosts() {
    let idp = TestIdp::generate().unwrap();
    let endpoint = Endpoint::start(Answer::Document(idp_metadata(IDP, &[&idp], None)));
    let base = |url: &str, hosts: &str| {
        format!("[metadata]\nallowed_hosts = [{hosts}]\n\n[[tenants]]\nid = \"t\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_url = \"{url}\"\n")
    };
    for (url, hosts) in [
        (endpoint.url(), ""),
        (endpoint.url(), "\"metadata.example.com\""),
        ("file:///etc/passwd".to_string(), "\"127.0.0.1\""),
        ("gopher://127.0.0.1/".to_string(), "\"127.0.0.1\""),
        (format!("http://user:pw@{}/m", endpoint.addr), "\"127.0.0.1\""),
    ] {
        let errors = Config::parse(&base(&url, hosts), std::path::Path::new("."), chrono::Utc::now()).unwrap_err().0;
        assert!(errors.iter().any(|e| e.contains("metadata_url")), "{url}: {errors:?}");
    }
    assert_eq!(endpoint.hits(), 0, "refused URLs are never fetched");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn real_entra_federation_metadata_served_from_a_url_validates_the_real_entra_response() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let metadata = std::fs::read(fixtures.join("idp-metadata/entra-ssoready-tenant-federationmetadata.xml")).unwrap();
    let endpoint = Endpoint::start(Answer::Document(String::from_utf8(metadata).unwrap()));
    let signing =
        std::fs::read_to_string(fixtures.join("idp-metadata/entra-ssoready-tenant-federationmetadata.crt.pem"))
            .unwrap();
    let text = format!(
        r#"[metadata]
allowed_hosts = ["127.0.0.1"]

[[tenants]]
id = "contoso"
sp_entity_id = "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml"
acs_url = "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml/acs"
metadata_url = "{}"
metadata_signing_certificate = ['''{signing}''']
allow_idp_initiated = true
"#,
        endpoint.url()
    );
    let service = Service::new(&Config::parse(&text, std::path::Path::new("."), chrono::Utc::now()).unwrap());
    assert!(service.refresh_metadata("contoso", chrono::Utc::now(), "test"));
    let xml = std::fs::read(fixtures.join("idp-responses/entra-ssoready-signed-assertion.xml")).unwrap();
    let request = ValidateRequest {
        tenant: "contoso",
        saml_response: Input::Xml(&xml),
        expected_request_id: None,
        expected_acs_url: None,
    };
    let at = saml_validator::saml::time::parse("2023-11-17T18:39:32Z").unwrap();
    let validated = block_on(service.validate(&request, at)).unwrap();
    assert_eq!(validated.claims.email.as_deref(), Some("ulysse.carion@codomaindata.com"));
}

#[test]
fn tenants_sharing_a_url_fetch_it_once_and_a_dead_url_makes_only_its_tenant_unavailable() {
    let idp = TestIdp::generate().unwrap();
    let shared = Endpoint::start(Answer::Document(idp_metadata(IDP, &[&idp], None)));
    let dead = format!("http://127.0.0.1:{}/m", free_port());
    let tenant = |id: &str, url: &str| {
        format!(
            "\n[[tenants]]\nid = \"{id}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_url = \"{url}\"\n"
        )
    };
    let mut text = "[metadata]\nallowed_hosts = [\"127.0.0.1\"]\ntimeout_seconds = 1\nmax_concurrent_fetches = 4\nrefresh_seconds = 3600\n".to_string();
    for id in ["one", "two", "three", "four", "five"] {
        text.push_str(&tenant(id, &shared.url()));
    }
    text.push_str(&tenant("dead", &dead));
    text.push_str(&format!(
        "\n[[tenants]]\nid = \"pinned\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{}\"]\n",
        idp.certificate_base64()
    ));
    let config = Config::parse(&text, std::path::Path::new("."), Utc::now()).unwrap();
    let service = Service::new(&config);
    let now = Utc::now();
    assert!(!service.is_ready(), "not ready before every tenant was tried");
    assert_eq!(service.refresh_due(now), 6);
    assert_eq!(shared.hits(), 1, "one fetch for the five tenants sharing the URL");
    assert!(service.is_ready(), "ready once tried, the dead one included");

    let login_as = |tenant: &str, seed: u64| {
        let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), now, 10, seed)
            .signed(&idp, Signing::Assertion)
            .unwrap();
        let encoded = post_binding(&xml);
        let request = ValidateRequest {
            tenant,
            saml_response: Input::Base64(encoded.as_bytes()),
            expected_request_id: Some(REQUEST_ID),
            expected_acs_url: None,
        };
        block_on(service.validate(&request, now)).map(|_| ()).map_err(|e| e.code)
    };
    for (seed, id) in ["one", "two", "three", "four", "five", "pinned"].into_iter().enumerate() {
        assert_eq!(login_as(id, seed as u64), Ok(()), "{id}");
    }
    assert_eq!(login_as("dead", 10), Err(Code::TenantUnavailable));
    let counts = service.tenants().state_counts();
    let count = |state: &str| counts.iter().find(|(s, _)| s.as_str() == state).unwrap().1;
    assert_eq!((count("ok"), count("unavailable"), count("pending")), (6, 1, 0));

    // The dead tenant is retried with backoff (60 s, then 120 s, ±10 %), alone.
    let status = service.tenant("dead").unwrap().metadata.clone().unwrap();
    assert_eq!(status.consecutive_failures, 1);
    let first_retry = status.next_refresh_instant.unwrap() - now;
    assert!((54..=66).contains(&first_retry.num_seconds()), "{first_retry}");
    assert_eq!(service.refresh_due(now + Duration::seconds(30)), 0, "nothing due yet");
    assert_eq!(service.refresh_due(now + Duration::seconds(67)), 1, "only the dead tenant is due");
    let status = service.tenant("dead").unwrap().metadata.clone().unwrap();
    assert_eq!(status.consecutive_failures, 2);
    let second_retry = status.next_refresh_instant.unwrap() - (now + Duration::seconds(67));
    assert!((108..=132).contains(&second_retry.num_seconds()), "{second_retry}");
    assert_eq!(shared.hits(), 1);

    // The next scheduled round fetches the shared URL once again.
    assert_eq!(service.refresh_due(now + Duration::hours(2)), 6);
    assert_eq!(shared.hits(), 2);
}

#[test]
fn a_hanging_endpoint_delays_only_its_own_tenants() {
    let idp = TestIdp::generate().unwrap();
    let good = Endpoint::start(Answer::Document(idp_metadata(IDP, &[&idp], None)));
    let hung = Endpoint::start(Answer::Hang);
    let text = format!(
        "[metadata]\nallowed_hosts = [\"127.0.0.1\"]\ntimeout_seconds = 3\n\n[[tenants]]\nid = \"good\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_url = \"{}\"\n\n[[tenants]]\nid = \"hung\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_url = \"{}\"\n",
        good.url(),
        hung.url()
    );
    let service = Arc::new(Service::new(&Config::parse(&text, std::path::Path::new("."), Utc::now()).unwrap()));
    let round_over = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let round = {
        let (service, round_over) = (service.clone(), round_over.clone());
        std::thread::spawn(move || {
            service.refresh_due(Utc::now());
            round_over.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    // The good tenant serves while the round still waits for the hung endpoint (3 s timeout).
    assert!(eventually(|| service.tenant("good").unwrap().metadata.as_ref().is_some_and(|m| m.result == "ok")));
    assert!(!round_over.load(std::sync::atomic::Ordering::SeqCst), "installed only when the round ended");
    assert!(!service.is_ready(), "the hung tenant has not been tried to the end");
    round.join().unwrap();
    assert!(service.is_ready());
    assert_eq!(service.tenants().state("hung").map(|s| s.as_str()), Some("unavailable"));
}

#[test]
fn a_tenant_added_while_an_endpoint_hangs_loads_on_the_next_tick() {
    let idp = TestIdp::generate().unwrap();
    let good = Endpoint::start(Answer::Document(idp_metadata(IDP, &[&idp], None)));
    let late = Endpoint::start(Answer::Document(idp_metadata(IDP, &[&idp], None)));
    let hung = Endpoint::start(Answer::Hang);
    let tenant = |id: &str, url: String| {
        format!(
            "[[tenants]]\nid = \"{id}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_url = \"{url}\"\n\n"
        )
    };
    // The client gives up only after 20 s: everything below happens while the hung fetch runs.
    let head = "[metadata]\nallowed_hosts = [\"127.0.0.1\"]\ntimeout_seconds = 20\n\n";
    let first = format!("{head}{}{}", tenant("good", good.url()), tenant("hung", hung.url()));
    let service = Arc::new(Service::new(&Config::parse(&first, std::path::Path::new("."), Utc::now()).unwrap()));
    let state = |id: &str| service.tenants().state(id).map(|s| s.as_str());

    // The refresh loop's tick returns at once; the round it started serves `good` while `hung`
    // is still pending.
    service.start_due_refreshes(Utc::now());
    assert!(eventually(|| state("good") == Some("ok")));
    assert_eq!(state("hung"), Some("pending"));

    // A tenant added meanwhile is fetched by the next ticks, not after the hung round ends,
    // and those ticks leave the hung URL to the round that holds it.
    let second = format!("{first}{}", tenant("late", late.url()));
    service.replace_tenants(&Config::parse(&second, std::path::Path::new("."), Utc::now()).unwrap());
    assert!(eventually(|| {
        service.start_due_refreshes(Utc::now());
        state("late") == Some("ok")
    }));
    assert_eq!(state("hung"), Some("pending"), "the hung fetch was over before the late tenant loaded");
    assert!(!service.is_ready());
    assert_eq!((hung.hits(), good.hits(), late.hits()), (1, 1, 1));

    // A synchronous round (what check-config runs) also leaves the held URL alone.
    assert_eq!(service.refresh_due(Utc::now()), 0);
    assert_eq!(hung.hits(), 1);
}

#[test]
fn a_weak_key_in_fetched_metadata_is_refused_like_a_configured_one() {
    let strong = TestIdp::generate().unwrap();
    let weak = TestIdp::generate_rsa(1024).unwrap();
    let endpoint = Endpoint::start(Answer::Document(idp_metadata(IDP, &[&weak], None)));
    let config = |relaxed: bool| {
        let text = format!(
            "[metadata]\nallowed_hosts = [\"127.0.0.1\"]\n\n[[tenants]]\nid = \"t\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nmetadata_url = \"{}\"\n{}",
            endpoint.url(),
            if relaxed { "allow_weak_rsa_keys = true\n" } else { "" }
        );
        Config::parse(&text, std::path::Path::new("."), Utc::now()).unwrap()
    };
    let service = Service::new(&config(false));
    let result = || service.tenant("t").unwrap().metadata.clone().unwrap().result;

    // Never loaded: a 1024-bit key is no trust at all.
    assert!(!service.refresh_metadata("t", Utc::now(), "test"));
    assert!(result().contains("1024-bit"), "{}", result());
    assert_eq!(service.tenants().state("t").map(|s| s.as_str()), Some("unavailable"));

    // Loaded with a strong key, then the document turns weak: the strong key stays, the weak
    // one is never trusted.
    endpoint.set(Answer::Document(idp_metadata(IDP, &[&strong], None)));
    assert!(service.refresh_metadata("t", Utc::now(), "test"));
    endpoint.set(Answer::Document(idp_metadata(IDP, &[&strong, &weak], None)));
    assert!(!service.refresh_metadata("t", Utc::now(), "test"));
    let trusted: Vec<String> =
        service.tenant("t").unwrap().policy.keys.iter().map(|k| k.info.sha256_fingerprint.clone()).collect();
    assert_eq!(trusted.len(), 1, "{trusted:?}");
    assert!(result().contains("keeping the keys"), "{}", result());

    // The relaxation, loudly named, lets it in; changing it re-fetches (no carried keys).
    service.replace_tenants(&config(true));
    assert_eq!(service.tenants().state("t").map(|s| s.as_str()), Some("pending"));
    assert!(service.refresh_metadata("t", Utc::now(), "test"));
    assert_eq!(service.tenant("t").unwrap().policy.keys.len(), 2);
}
