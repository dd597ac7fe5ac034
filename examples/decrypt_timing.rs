//! How long each kind of decryption failure takes where nothing authenticates the ciphertext
//! (AES-CBC, no Response signature): the timing side of the padding oracle that one fixed
//! `decryption_failed` answer closes on the wire (Jager and Somorovsky, CCS 2011). Every class
//! has a ~15 KB plaintext, the size of an Entra assertion with ~180 groups; each is what an
//! attacker reaches by flipping ciphertext bits, or (for the classes a bit flip reaches only by
//! luck) what such a flip can produce, encrypted for the SP's key directly.
//!
//! `cargo run --release --example decrypt_timing [iterations]` prints median, p90 and p99 per
//! class, measured in rounds (one of each class, in a fresh order) so that machine noise falls
//! on every class alike; the numbers are in BENCHMARKS.md ("Decryption failure timing").
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::Instant;

use base64::Engine as _;
use saml_validator::saml::decrypt::DecryptionKey;
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Input, Limits, Request, TenantPolicy};
use saml_validator::testing::encrypt::{encrypt_element, replace_assertion, EncryptOptions};
use saml_validator::testing::idp::{ResponseSpec, Signing, TestIdp};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IDP: &str = "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/";
const SP: &str = "https://www.jitbit.com/web-helpdesk/";
const ACS: &str = "https://contoso.jitbit.example/helpdesk/User/Login";
const REQUEST: &str = "_timing-request";

/// The content CipherValue (the last one; the EncryptedKey's comes first).
fn content_range(xml: &str) -> (usize, usize) {
    let start = xml.rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
    (start, start + xml[start..].find('<').unwrap())
}

/// `xml` with byte `at(len)` of the content ciphertext (IV first) XORed with `mask`.
fn flipped(xml: &str, at: impl Fn(usize) -> usize, mask: u8) -> String {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let (start, end) = content_range(xml);
    let mut bytes = b64.decode(&xml[start..end]).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= mask;
    format!("{}{}{}", &xml[..start], b64.encode(bytes), &xml[end..])
}

fn assertion_of(xml: &str) -> &str {
    let start = xml.find("<Assertion ").unwrap();
    &xml[start..xml.rfind("</Assertion>").unwrap() + "</Assertion>".len()]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let iterations: usize = std::env::args().nth(1).map_or(2000, |a| a.parse().unwrap());
    let idp = TestIdp::generate().unwrap();
    let sp = TestIdp::generate().unwrap();
    let intruder = TestIdp::generate().unwrap();
    let now = saml::time::parse("2026-11-29T10:00:00Z").unwrap();
    let mut policy =
        TenantPolicy::new(IDP, SP, ACS, vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()]);
    policy.decryption_keys = vec![DecryptionKey::from_pem(&sp.private_key_pem()).unwrap()];
    let limits = Limits::default();
    let request = Request { expected_request_id: Some(REQUEST), expected_acs_url: None, now };

    let mut groups = 10;
    let spec = loop {
        let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST), now, groups, 1);
        // The signature adds about 1.6 KB to the rendered assertion.
        if spec.render_assertion().len() + 1_600 >= 15_000 {
            break spec;
        }
        groups += 10;
    };
    let cbc = EncryptOptions::entra();
    let seal = |plaintext: &str| {
        let sealed = encrypt_element("EncryptedAssertion", plaintext.as_bytes(), &sp, &cbc).unwrap();
        replace_assertion(&spec.render(), &spec.assertion_id, &sealed).unwrap()
    };
    let signed = spec.signed(&idp, Signing::Assertion).unwrap();
    let good = assertion_of(&signed).to_string();
    let valid = seal(&good);
    let by_intruder = seal(assertion_of(&spec.signed(&intruder, Signing::Assertion).unwrap()));
    let unsigned = seal(assertion_of(&spec.render()));
    let tampered = seal(&good.replacen("<AttributeValue>", "<AttributeValue>x", 1));
    let wrapped = seal(&format!("<Wrapper xmlns=\"urn:example:wrapper\">{good}</Wrapper>"));
    let wrong_key = spec.encrypted(&idp, Signing::Assertion, &intruder, &cbc).unwrap();

    let classes: Vec<(&str, String)> = vec![
        ("accepted (reference)", valid.clone()),
        ("wrapped key fails (OAEP)", wrong_key),
        // The pad length byte ^ 0x80 is above 16.
        ("padding bad", flipped(&valid, |n| n - 17, 0x80)),
        // A garbled first block: not UTF-8 (or not XML) from its first bytes.
        ("garbage at the start", flipped(&valid, |_| 16 + 5, 0x01)),
        // A garbled second-to-last block: the document breaks near its end.
        ("garbage at the end", flipped(&valid, |n| n - 33, 0x01)),
        // An IV bit turns <Assertion into <Asrertion: well-formed until the end tag.
        ("end tag mismatch", flipped(&valid, |_| 3, 0x01)),
        ("parses, not one assertion", wrapped),
        ("parses, unsigned", unsigned),
        ("signature invalid", by_intruder),
        ("digest mismatch", tampered),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(iterations); classes.len()];
    let mut codes = vec![String::new(); classes.len()];
    // A fresh order each round, so that no class always follows the same one.
    let mut order: Vec<usize> = (0..classes.len()).collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..iterations + iterations / 10 {
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let xml = &classes[i].1;
            let started = Instant::now();
            let result = saml::validate(Input::Xml(xml.as_bytes()), &policy, &limits, &request);
            let elapsed = started.elapsed().as_secs_f64() * 1e6;
            // The first tenth warms caches and the allocator.
            if round >= iterations / 10 {
                samples[i].push(elapsed);
            }
            codes[i] = match std::hint::black_box(result) {
                Ok(_) => "ok".to_string(),
                Err(e) => e.code.to_string(),
            };
        }
    }
    println!("plaintext {} bytes ({groups} groups), {iterations} rounds, µs per validation", good.len());
    println!("{:<28} {:<20} {:>8} {:>8} {:>8}", "class", "answer", "median", "p90", "p99");
    let mut medians = Vec::new();
    for (i, (name, _)) in classes.iter().enumerate() {
        let sorted = &mut samples[i];
        sorted.sort_by(f64::total_cmp);
        let median = percentile(sorted, 0.5);
        if codes[i] == "decryption_failed" && !name.starts_with("wrapped key") {
            medians.push(median);
        }
        println!(
            "{name:<28} {:<20} {median:>8.1} {:>8.1} {:>8.1}",
            codes[i],
            percentile(sorted, 0.9),
            percentile(sorted, 0.99)
        );
    }
    let spread = medians.iter().copied().fold(f64::MIN, f64::max) - medians.iter().copied().fold(f64::MAX, f64::min);
    println!("spread of medians over the failures after decryption: {spread:.1} µs");
}
