//! The core in process, with and without a loopback TCP exchange (8 KB in, 1.5 KB out, as a
//! validation over HTTP moves) between validations. Times the core alone either way, to show
//! what the kernel's work between requests does to the core's own speed (issue 32).
//! `interference ITERATIONS`
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Input, Limits, Request, TenantPolicy};
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};

// The allocator the service binary runs with (src/main.rs): without it this binary would
// measure the core on glibc's malloc, which the service never uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let iterations: usize = std::env::args().nth(1).map_or(5000, |a| a.parse().unwrap());
    let (idp_id, sp, acs) =
        ("https://sts.windows.net/x/", "https://www.jitbit.com/web-helpdesk/", "https://h.example/helpdesk/User/Login");
    let idp = TestIdp::generate().unwrap();
    let now = saml::time::parse("2026-11-29T10:00:00Z").unwrap();
    let xml = ResponseSpec::entra(idp_id, sp, acs, Some("_r"), now, 10, 1).signed(&idp, Signing::Assertion).unwrap();
    let encoded = post_binding(&xml);
    let policy =
        TenantPolicy::new(idp_id, sp, acs, vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()]);
    let request = Request { expected_request_id: Some("_r"), expected_acs_url: None, now };
    let limits = Limits::default();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_nodelay(true).unwrap();
        let (mut request, reply) = (vec![0u8; 8192], vec![b'r'; 1500]);
        while peer.read_exact(&mut request).is_ok() {
            if peer.write_all(&reply).is_err() {
                break;
            }
        }
    });
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_nodelay(true).unwrap();
    let (body, mut reply) = (vec![b'b'; 8192], vec![0u8; 1500]);

    for exchange in [false, true, false, true] {
        let (mut core, started, cpu_before) = (Duration::ZERO, Instant::now(), thread_cpu());
        for _ in 0..iterations {
            if exchange {
                socket.write_all(&body).unwrap();
                socket.read_exact(&mut reply).unwrap();
            }
            let t = Instant::now();
            std::hint::black_box(
                saml::validate(Input::Base64(encoded.as_bytes()), &policy, &limits, &request).unwrap(),
            );
            core += t.elapsed();
        }
        let n = iterations as u32;
        println!(
            "exchange={exchange}: core {:?} per validation; per iteration {:?} of this thread's CPU, {:?} of wall time",
            core / n,
            (thread_cpu() - cpu_before) / n,
            started.elapsed() / n
        );
    }
}

/// This thread's CPU time (user + system, as the service's CPU per request is counted), in ns
/// from the scheduler's own accounting.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(text.split_whitespace().next().unwrap().parse().unwrap())
}
