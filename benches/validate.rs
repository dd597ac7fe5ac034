//! Criterion benches with a fixed clock: end-to-end validation of Entra-shaped responses (10
//! groups, 150 groups, ~64 KB), each pipeline stage alone, and one bare RSA-2048 verify with the
//! same key, the unit every other number is compared against (see BENCHMARKS.md). The
//! `encrypted` group puts an Entra "Token encryption" response (AES-256-CBC, RSA-OAEP) beside
//! the plain one, with one bare RSA-2048 OAEP unwrap, the private-key operation it adds.
#![allow(clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use openssl::hash::{hash, MessageDigest};
use openssl::sign::Verifier;
use saml_validator::saml::c14n;
use saml_validator::saml::decrypt::cipher::{self, Digest, KeyTransport};
use saml_validator::saml::decrypt::DecryptionKey;
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::xml::{self, C14nMode};
use saml_validator::saml::{self, decode, structure, Input, Limits, Request, TenantPolicy};
use saml_validator::testing::encrypt::EncryptOptions;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};

// The allocator the service binary runs with (src/main.rs), so these numbers are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IDP: &str = "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/";
const SP: &str = "https://www.jitbit.com/web-helpdesk/";
const ACS: &str = "https://contoso.jitbit.example/helpdesk/User/Login";
const REQUEST: &str = "_bench-request";

struct Setup {
    idp: TestIdp,
    policy: TenantPolicy,
    now: chrono::DateTime<chrono::Utc>,
}

fn setup() -> Setup {
    let idp = TestIdp::generate().unwrap();
    let policy =
        TenantPolicy::new(IDP, SP, ACS, vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()]);
    let now = saml::time::parse("2026-11-29T10:00:00Z").unwrap();
    Setup { idp, policy, now }
}

fn document(setup: &Setup, groups: usize) -> String {
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST), setup.now, groups, 1);
    spec.signed(&setup.idp, Signing::Assertion).unwrap()
}

fn end_to_end(c: &mut Criterion) {
    let setup = setup();
    let limits = Limits::default();
    let request = Request { expected_request_id: Some(REQUEST), expected_acs_url: None, now: setup.now };
    let mut group = c.benchmark_group("end_to_end");
    // 10 groups is the common Entra response; 150 is Entra's maximum before the overage claim;
    // 870 groups makes a ~64 KB document for the linearity check.
    for (name, groups) in [("entra_10_groups", 10), ("entra_150_groups", 150), ("entra_64kb", 870)] {
        let xml = document(&setup, groups);
        let encoded = post_binding(&xml);
        saml::validate(Input::Base64(encoded.as_bytes()), &setup.policy, &limits, &request).unwrap();
        group.throughput(Throughput::Bytes(xml.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &encoded, |b, encoded| {
            b.iter(|| {
                saml::validate(Input::Base64(black_box(encoded.as_bytes())), &setup.policy, &limits, &request).unwrap()
            })
        });
    }
    group.finish();
}

fn stages(c: &mut Criterion) {
    let setup = setup();
    let limits = Limits::default();
    let request = Request { expected_request_id: Some(REQUEST), expected_acs_url: None, now: setup.now };
    for (name, groups) in [("entra_10_groups", 10), ("entra_150_groups", 150)] {
        let xml = document(&setup, groups);
        let encoded = post_binding(&xml);
        let mut group = c.benchmark_group(format!("stage_{name}"));
        group.bench_function("decode_base64", |b| {
            b.iter(|| decode::base64(black_box(encoded.as_bytes()), 1 << 20).unwrap())
        });
        group.bench_function("parse", |b| b.iter(|| xml::parse(black_box(xml.as_bytes())).unwrap()));
        let doc = xml::parse(xml.as_bytes()).unwrap();
        group
            .bench_function("scan", |b| b.iter(|| structure::scan(black_box(&doc), &limits).unwrap().assertions.len()));
        let inventory = structure::scan(&doc, &limits).unwrap();
        let assertion = inventory.assertions[0];
        let signature = inventory.signatures[0];
        let signed_info = signature.elements().next().unwrap();
        group.bench_function("c14n_assertion", |b| {
            b.iter(|| c14n::canonicalize(&doc, assertion, Some(signature), C14nMode::Exclusive10, &[]).unwrap())
        });
        group.bench_function("c14n_signed_info", |b| {
            b.iter(|| c14n::canonicalize(&doc, signed_info, None, C14nMode::Exclusive10, &[]).unwrap())
        });
        group.bench_function("c14n_assertion_libxml2", |b| {
            b.iter(|| doc.canonicalize(assertion, Some(signature), C14nMode::Exclusive10, &[]).unwrap())
        });
        let c14n_bytes = c14n::canonicalize(&doc, assertion, Some(signature), C14nMode::Exclusive10, &[]).unwrap();
        group.bench_function("sha256_assertion", |b| {
            b.iter(|| hash(MessageDigest::sha256(), black_box(&c14n_bytes)).unwrap())
        });
        let validated = saml::validate(Input::Base64(encoded.as_bytes()), &setup.policy, &limits, &request).unwrap();
        group.bench_function("claims_normalize", |b| {
            b.iter(|| saml::claims::normalize(black_box(&validated.attributes), &setup.policy.attribute_mapping))
        });
        group.finish();
    }
}

fn rsa_unit(c: &mut Criterion) {
    // The unit of comparison: one RSA-2048 PKCS#1 v1.5 SHA-256 verify of a SignedInfo-sized
    // message with the same (cached, parsed) key the end-to-end bench uses.
    let setup = setup();
    let key = openssl::pkey::PKey::public_key_from_pem(&setup.idp_public_pem()).unwrap();
    let message = vec![0x5a_u8; 600];
    let signature = setup.idp.sign_raw(&message, saml_validator::saml::ns::alg::RSA_SHA256).unwrap();
    c.bench_function("unit_rsa2048_verify", |b| {
        b.iter(|| {
            let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
            verifier.verify_oneshot(black_box(&signature), black_box(&message)).unwrap()
        })
    });
    // The same verify without OpenSSL 3's EVP layer (no per-call algorithm fetch): SHA-256,
    // the RSA public operation, and a comparison with the expected encoding. This is how the
    // pipeline verifies; the ratio against it is the stricter one.
    let rsa = key.rsa().unwrap();
    let prefix: &[u8] = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20";
    c.bench_function("unit_rsa2048_verify_raw", |b| {
        b.iter(|| {
            let hashed = openssl::sha::sha256(black_box(&message));
            let mut recovered = [0u8; 256];
            let n = rsa.public_decrypt(black_box(&signature), &mut recovered, openssl::rsa::Padding::PKCS1).unwrap();
            assert!(n == 51 && recovered[..19] == *prefix && recovered[19..51] == hashed);
        })
    });
}

impl Setup {
    fn idp_public_pem(&self) -> Vec<u8> {
        let cert = openssl::x509::X509::from_pem(self.idp.certificate_pem().as_bytes()).unwrap();
        cert.public_key().unwrap().public_key_to_pem().unwrap()
    }
}

fn encrypted(c: &mut Criterion) {
    let setup = setup();
    let sp = TestIdp::generate().unwrap();
    let key = DecryptionKey::from_pem(&sp.private_key_pem()).unwrap();
    let policy = TenantPolicy { decryption_keys: vec![key.clone()], ..setup.policy.clone() };
    let limits = Limits::default();
    let request = Request { expected_request_id: Some(REQUEST), expected_acs_url: None, now: setup.now };
    let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST), setup.now, 10, 1);
    let mut group = c.benchmark_group("encrypted");
    let documents = [
        ("plain_entra_10_groups", spec.signed(&setup.idp, Signing::Assertion).unwrap()),
        (
            "encrypt_cbc_entra_10_groups",
            spec.encrypted(&setup.idp, Signing::Assertion, &sp, &EncryptOptions::entra()).unwrap(),
        ),
        (
            "encrypt_gcm_entra_10_groups",
            spec.encrypted(&setup.idp, Signing::Assertion, &sp, &EncryptOptions::gcm()).unwrap(),
        ),
    ];
    for (name, xml) in &documents {
        let encoded = post_binding(xml);
        saml::validate(Input::Base64(encoded.as_bytes()), &policy, &limits, &request).unwrap();
        group.throughput(Throughput::Bytes(xml.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &encoded, |b, encoded| {
            b.iter(|| saml::validate(Input::Base64(black_box(encoded.as_bytes())), &policy, &limits, &request).unwrap())
        });
    }
    group.finish();
    // One RSA-2048 OAEP unwrap of a 32-byte key: the private-key operation decryption adds.
    let cert = openssl::x509::X509::from_pem(sp.certificate_pem().as_bytes()).unwrap();
    let public = cert.public_key().unwrap();
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&public).unwrap();
    ctx.encrypt_init().unwrap();
    ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP).unwrap();
    let mut wrapped = Vec::new();
    ctx.encrypt_to_vec(&[7u8; 32], &mut wrapped).unwrap();
    let transport = KeyTransport::Oaep { digest: Digest::Sha1, mgf1: Digest::Sha1 };
    c.bench_function("unit_rsa2048_oaep_unwrap", |b| {
        b.iter(|| cipher::unwrap_key(&key, transport, &[], black_box(&wrapped), 32).unwrap())
    });
}

criterion_group!(benches, rsa_unit, end_to_end, stages, encrypted);
criterion_main!(benches);
