//! Runs the core on one Entra-shaped response in a loop, for profilers:
//! `valgrind --tool=callgrind target/release/examples/profile 2000 10`
//! (arguments: iterations, groups). `profile --pool DIR [COUNT]` instead judges COUNT distinct
//! responses of a `loadpool` pool in process, each once, as the service does over a transport:
//! the same work without the transport, on data the caches have not seen before.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Input, Limits, Request, TenantPolicy};
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};

// The allocator the service binary runs with (src/main.rs): without it this binary would
// measure the core on glibc's malloc, which the service never uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--pool") {
        let dir = args.nth(1).expect("--pool DIR [COUNT]");
        return pool(std::path::Path::new(&dir), args.next().map_or(20_000, |a| a.parse().unwrap()));
    }
    let iterations: usize = args.next().map_or(1000, |a| a.parse().unwrap());
    let groups: usize = args.next().map_or(10, |a| a.parse().unwrap());
    let (idp_id, sp, acs) =
        ("https://sts.windows.net/x/", "https://www.jitbit.com/web-helpdesk/", "https://h.example/helpdesk/User/Login");
    let idp = TestIdp::generate().unwrap();
    let now = saml::time::parse("2026-11-29T10:00:00Z").unwrap();
    let xml =
        ResponseSpec::entra(idp_id, sp, acs, Some("_r"), now, groups, 1).signed(&idp, Signing::Assertion).unwrap();
    let encoded = post_binding(&xml);
    let policy =
        TenantPolicy::new(idp_id, sp, acs, vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()]);
    let request = Request { expected_request_id: Some("_r"), expected_acs_url: None, now };
    let limits = Limits::default();
    let started = std::time::Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(saml::validate(Input::Base64(encoded.as_bytes()), &policy, &limits, &request).unwrap());
    }
    let per = started.elapsed() / iterations.max(1) as u32;
    println!("{} bytes, {groups} groups: {per:?} per validation over {iterations} iterations", xml.len());
}

fn pool(dir: &std::path::Path, count: usize) {
    use saml_validator::config::Config;
    use saml_validator::service::{Service, ValidateRequest};
    let config = Config::load(&dir.join("config.toml"), chrono::Utc::now()).unwrap();
    let service = Service::in_process(&config);
    let text = std::fs::read_to_string(dir.join("pool.jsonl")).unwrap();
    let bodies: Vec<serde_json::Value> = text.lines().take(count).map(|l| serde_json::from_str(l).unwrap()).collect();
    let now = chrono::Utc::now();
    let started = std::time::Instant::now();
    for body in &bodies {
        let request = ValidateRequest {
            tenant: body["tenant"].as_str().unwrap(),
            saml_response: Input::Base64(body["saml_response"].as_str().unwrap().as_bytes()),
            expected_request_id: body["expected_request_id"].as_str(),
            expected_acs_url: None,
        };
        std::hint::black_box(service.judge(&request, now).unwrap());
    }
    let per = started.elapsed() / bodies.len().max(1) as u32;
    println!("pool of {} distinct responses: {per:?} per validation (judged in process, no transport)", bodies.len());
}
