//! Resource bounds under a hostile flood: several connections send 1 MiB and deeply nested
//! payloads at the real binary while one caller keeps logging in. Every hostile request gets its
//! typed 4xx, every login succeeds, and the process's peak RSS stays under a stated bound.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::*;
use chrono::Utc;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use serde_json::json;

/// Peak RSS allowed for the whole process (debug build, 2 HTTP workers, 8 hostile connections
/// carrying 1 MiB bodies). Each in-flight 1 MiB request costs its body, the JSON string, the
/// decoded bytes and, on the XML pool (one thread per core), libxml2's tree. Measured here: 22 MB
/// before, 62 MB peak; 106 MB before tag and attribute counts were bounded ahead of parsing,
/// which this bound would catch.
const PEAK_RSS_BOUND_KB: u64 = 96 * 1024;

const HOSTILE_CONNECTIONS: usize = 8;
const ROUNDS: usize = 6;

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn body(xml: &str) -> Vec<u8> {
    json!({"tenant": "contoso", "saml_response": post_binding(xml), "expected_request_id": REQUEST_ID})
        .to_string()
        .into_bytes()
}

/// The hostile payloads, each about 1 MiB on the wire, with the code it must get.
fn payloads(idp: &TestIdp) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mib = 1024 * 1024;
    let signed = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, 99)
        .signed(idp, Signing::Assertion)
        .unwrap();
    // Deep nesting inside the signed assertion, never a stack overflow: 100k levels are more
    // tags than the node limit allows (refused before parsing); 19k levels plus a large comment
    // reach libxml2, whose depth limit refuses them.
    let nest = |depth: usize, padding: usize| {
        signed.replacen(
            "</AttributeStatement>",
            &format!(
                "</AttributeStatement><!--{}-->{}{}",
                "p".repeat(padding),
                "<x>".repeat(depth),
                "</x>".repeat(depth)
            ),
            1,
        )
    };
    // Hundreds of thousands of small elements: the node limit.
    let wide = signed.replacen("</AttributeStatement>", &format!("</AttributeStatement>{}", "<y/>".repeat(180_000)), 1);
    // Attribute-heavy elements.
    let attributes = signed.replacen(
        "</AttributeStatement>",
        &format!("</AttributeStatement>{}", "<z a=\"1\" b=\"2\" c=\"3\" d=\"4\"/>".repeat(25_000)),
        1,
    );
    // 1 MiB that is not base64.
    let garbage = json!({"tenant": "contoso", "saml_response": "!".repeat(mib)}).to_string().into_bytes();
    // Valid base64 of 1 MiB of zeros: not XML.
    let zeros = body(&"\0".repeat(700 * 1024));
    let payloads = vec![
        ("100k levels", body(&nest(100_000, 0)), "xml_too_complex"),
        ("19k levels", body(&nest(19_000, 600 * 1024)), "xml_malformed"),
        ("wide", body(&wide), "xml_too_complex"),
        ("attribute-heavy", body(&attributes), "xml_too_complex"),
        ("not base64", garbage, "base64_invalid"),
        ("zeros", zeros, "xml_malformed"),
    ];
    for (name, payload, _) in &payloads {
        assert!(payload.len() > 900 * 1024 && payload.len() <= 2 * mib, "{name}: {} bytes", payload.len());
    }
    payloads
}

#[test]
fn hostile_megabyte_payloads_from_many_connections_stay_bounded_while_logins_succeed() {
    let idp = Arc::new(TestIdp::generate().unwrap());
    // Let 1 MiB bodies and documents through the size checks so they reach the parser.
    let text = config_text(&idp, "max_body_bytes = 2097152\nworkers = 2\n")
        .replace("[[tenants]]", "[limits]\nmax_document_bytes = 1048576\n\n[[tenants]]");
    let (child, http, _) = spawn_serve("flood", &text, Stdio::null());
    let child = KillOnDrop(child);
    let pid = child.0.id();
    let before = peak_rss_kb(pid);

    let payloads = Arc::new(payloads(&idp));
    let flooding = Arc::new(AtomicBool::new(true));
    let hostile: Vec<_> = (0..HOSTILE_CONNECTIONS)
        .map(|worker| {
            let payloads = payloads.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for round in 0..ROUNDS {
                    let (name, payload, expected) = &payloads[(worker + round) % payloads.len()];
                    let reply = request(http, "POST", "/v1/validate", payload, &[("Content-Type", "application/json")]);
                    let code = reply.json()["error"]["code"].as_str().unwrap_or("none").to_string();
                    assert!((400..500).contains(&reply.status), "{name}: {} {}", reply.status, reply.body);
                    assert_eq!(code, *expected, "{name}");
                    seen.push(code);
                }
                seen
            })
        })
        .collect();

    // Meanwhile, distinct valid logins, one after another, until the flood is over.
    let login = {
        let flooding = flooding.clone();
        let idp = idp.clone();
        std::thread::spawn(move || {
            let mut ok = 0usize;
            let mut seed = 1_000;
            while flooding.load(Ordering::Relaxed) || ok < 5 {
                seed += 1;
                let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, seed)
                    .signed(&idp, Signing::Assertion)
                    .unwrap();
                let reply = request(http, "POST", "/v1/validate", &body(&xml), &[("Content-Type", "application/json")]);
                assert_eq!(reply.status, 200, "a login failed during the flood: {}", reply.body);
                ok += 1;
            }
            ok
        })
    };
    let mut hostile_total = 0;
    for thread in hostile {
        hostile_total += thread.join().unwrap().len();
    }
    flooding.store(false, Ordering::Relaxed);
    let logins = login.join().unwrap();
    let peak = peak_rss_kb(pid);
    // Still serving after the flood.
    assert_eq!(request(http, "GET", "/healthz", b"", &[]).status, 200);
    drop(child);
    eprintln!(
        "flood: {hostile_total} hostile requests (~1 MiB each) on {HOSTILE_CONNECTIONS} connections, {logins} logins all 200, peak RSS {} MB -> {} MB (bound {} MB)",
        before / 1024,
        peak / 1024,
        PEAK_RSS_BOUND_KB / 1024
    );
    assert_eq!(hostile_total, HOSTILE_CONNECTIONS * ROUNDS);
    assert!(peak < PEAK_RSS_BOUND_KB, "peak RSS {peak} kB exceeds {PEAK_RSS_BOUND_KB} kB");
}

/// Bound for the slow-upload flood with a 16 MiB budget and 1 MiB bodies allowed: the process
/// before it (~32 MB in a debug build), the bodies the budget admits (charged at twice their
/// length, what they really pin), and the refused connections' own buffers (~190 KB each while
/// the transport drains what they send; `max_connections` bounds that part). Measured here:
/// 87 MB peak; without the budget the same flood took the process to 195 MB.
const SLOW_UPLOAD_RSS_BOUND_KB: u64 = 100 * 1024;

/// The same flood against the defaults must stay within the flood bound the project states for
/// itself. Measured here: 84 MB peak (24 admitted, 176 refused); with the old default of 64 MiB,
/// charged at the body's length only, 156 MB.
const DEFAULT_SLOW_UPLOAD_RSS_BOUND_KB: u64 = PEAK_RSS_BOUND_KB;

#[test]
fn slow_uploads_holding_back_their_last_byte_stay_within_the_body_budget() {
    let idp = TestIdp::generate().unwrap();
    let text = config_text(&idp, "max_body_bytes = 1048576\nmax_inflight_body_bytes = 16777216\nworkers = 2\n");
    slow_upload_flood("slow-uploads", &text, SLOW_UPLOAD_RSS_BOUND_KB, &idp);
}

/// Issue 31, item 5: with the default `max_inflight_body_bytes` (64 MiB, charged at the body's
/// length) the same flood took the process from 30 MB to 143 MB.
#[test]
fn item5_slow_uploads_stay_under_the_flood_bound_with_the_default_settings() {
    let idp = TestIdp::generate().unwrap();
    let text = config_text(&idp, "workers = 2\n");
    slow_upload_flood("slow-uploads-defaults", &text, DEFAULT_SLOW_UPLOAD_RSS_BOUND_KB, &idp);
}

fn slow_upload_flood(name: &str, text: &str, bound_kb: u64, idp: &TestIdp) {
    use std::io::{Read, Write};
    const CONNECTIONS: usize = 200;
    const DECLARED: usize = 500 * 1024;
    let (child, http, _) = spawn_serve(name, text, Stdio::null());
    let child = KillOnDrop(child);
    let pid = child.0.id();
    let before = peak_rss_kb(pid);

    // Every connection declares 500 KB, sends all but the last byte, and waits for its answer:
    // inside the budget that is the body deadline's 400, beyond it an immediate 503.
    let uploads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(http).unwrap();
                stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
                let head = format!(
                    "POST /v1/validate HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\nContent-Length: {DECLARED}\r\n\r\n"
                );
                // A refused upload may be closed under the writer: that is an answer too.
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&vec![b' '; DECLARED - 1]));
                let mut reply = Vec::new();
                let _ = stream.read_to_end(&mut reply);
                let reply = String::from_utf8_lossy(&reply).into_owned();
                reply.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0)
            })
        })
        .collect();
    let statuses: Vec<u16> = uploads.into_iter().map(|t| t.join().unwrap()).collect();
    let peak = peak_rss_kb(pid);
    let refused = statuses.iter().filter(|s| **s == 503).count();
    let timed_out = statuses.iter().filter(|s| **s == 400).count();
    eprintln!(
        "{name}: {CONNECTIONS} connections x {} KB held back one byte: {timed_out} got the body deadline's 400, {refused} got 503 overloaded, {} were closed; peak RSS {} MB -> {} MB (bound {} MB)",
        DECLARED / 1024,
        CONNECTIONS - refused - timed_out,
        before / 1024,
        peak / 1024,
        bound_kb / 1024
    );
    assert!(statuses.iter().all(|s| matches!(s, 0 | 400 | 503)), "{statuses:?}");
    assert!(refused > 0, "200 x 500 KB cannot fit the budget: some uploads must be refused");
    assert!(timed_out > 0, "uploads within the budget are read until the body deadline");
    assert!(peak < bound_kb, "peak RSS {peak} kB exceeds {bound_kb} kB");

    // The budget is given back: a login afterwards succeeds.
    let xml =
        ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, 7).signed(idp, Signing::Assertion).unwrap();
    let reply = request(http, "POST", "/v1/validate", &body(&xml), &[("Content-Type", "application/json")]);
    assert_eq!(reply.status, 200, "{}", reply.body);
}
