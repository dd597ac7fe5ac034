//! `GET /v1/tenants` on a fleet of 10,000 tenants (BENCHMARKS.md "Ten thousand tenants"): the
//! list use case and its JSON, per page, with and without filters, after a round of failures
//! recorded for a tenth of the fleet. 9,000 tenants pin one of 20 certificates expiring between
//! 5 and 385 days from now; 1,000 wait for metadata (`pending`).
#![allow(clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use saml_validator::config::Config;
use saml_validator::saml::{Code, Error};
use saml_validator::service::lifecycle::TenantQuery;
use saml_validator::service::Service;
use saml_validator::testing::certificate::rsa_certificate_base64;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TENANTS: usize = 10_000;

fn certificate(days: i64) -> String {
    let now = saml_validator::ops::wall_clock().timestamp();
    rsa_certificate_base64("fleet bench", now - 86_400, now + days * 86_400).unwrap()
}

fn fleet() -> Service {
    let certificates: Vec<String> = (0..20).map(|n| certificate(5 + n * 20)).collect();
    let mut text = String::from("[metadata]\nallowed_hosts = [\"login.microsoftonline.com\"]\n");
    for n in 0..TENANTS {
        let id = format!("tenant-{n:05}");
        let trust = if n % 10 == 9 {
            format!("metadata_url = \"https://login.microsoftonline.com/{n}/federationmetadata.xml\"")
        } else {
            format!("certificates = [\"{}\"]", certificates[n % 20])
        };
        text.push_str(&format!(
            "\n[[tenants]]\nid = \"{id}\"\nidp_entity_id = \"https://sts.windows.net/{n}/\"\nsp_entity_id = \"https://sp.example/{n}\"\nacs_url = \"https://sp.example/{n}/acs\"\n{trust}\n"
        ));
    }
    let config = Config::parse(&text, std::path::Path::new("."), saml_validator::ops::wall_clock()).unwrap();
    let service = Service::in_process(&config);
    let now = saml_validator::ops::wall_clock();
    let error = Error::new(
        Code::SignatureInvalid,
        "SignatureValue does not verify with any of the tenant's 1 configured key(s)",
    );
    for n in (0..TENANTS).step_by(10) {
        for request in 0..5 {
            service.record_failure(&format!("tenant-{n:05}"), &format!("req-{request}"), &error, now);
        }
    }
    service
}

fn list(c: &mut Criterion) {
    let service = fleet();
    let now = saml_validator::ops::wall_clock();
    let mut group = c.benchmark_group("list_tenants_10k");
    let mut case = |name: &str, query: TenantQuery| {
        let page = service.list_tenants(&query, |_| true, now).unwrap();
        assert!(!page.tenants.is_empty(), "{name}: empty page");
        group.bench_function(name, |b| {
            b.iter(|| {
                let page = service.list_tenants(black_box(&query), |_| true, now).unwrap();
                black_box(serde_json::to_vec(&page).unwrap())
            })
        });
    };
    case("first_page_100", TenantQuery::default());
    case("page_1000", TenantQuery { page_size: 1000, ..TenantQuery::default() });
    // The token after the first 9,900 tenants: the last page.
    let mut token = None;
    for _ in 0..10 {
        let query = TenantQuery { page_size: 990, page_token: token, ..TenantQuery::default() };
        token = service.list_tenants(&query, |_| true, now).unwrap().next_page_token;
    }
    case("last_page_100", TenantQuery { page_token: token, ..TenantQuery::default() });
    case("expiring_within_30_days", TenantQuery { expiring_within_days: Some(30), ..TenantQuery::default() });
    case("state_pending", TenantQuery { state: Some("pending".into()), ..TenantQuery::default() });
    group.finish();
}

criterion_group!(benches, list);
criterion_main!(benches);
