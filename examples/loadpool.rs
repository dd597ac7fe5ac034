//! Load-test fixtures: a test IdP, a configuration trusting it, and a pool of distinct freshly
//! signed Entra-shaped responses (one JSON request body per line), so that replay protection can
//! stay on while every request is new.
//!
//! `cargo run --release --example loadpool -- DIR COUNT GROUPS HTTP_ADDR GRPC_ADDR`
// Load generators time their runs and stamp fresh responses with the clock.
#![allow(clippy::disallowed_methods)]

use std::io::Write as _;
use std::sync::Arc;

use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};

const IDP: &str = "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/";
const SP: &str = "https://www.jitbit.com/web-helpdesk/";
const ACS: &str = "https://bench.example.com/helpdesk/User/Login";
const REQUEST: &str = "_bench-request";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count, groups, http_addr, grpc_addr] = args.as_slice() else {
        eprintln!("usage: loadpool DIR COUNT GROUPS HTTP_ADDR GRPC_ADDR");
        std::process::exit(2);
    };
    let (count, groups): (usize, usize) = (count.parse()?, groups.parse()?);
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let idp = Arc::new(TestIdp::generate()?);
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[server]\nhttp_addr = \"{http_addr}\"\ngrpc_addr = \"{grpc_addr}\"\nmax_concurrent_validations = 4096\n\
             replay_cache_capacity = 10000000\n\n[logging]\nlevel = \"warn\"\n\n[[tenants]]\nid = \"bench\"\n\
             idp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{}\"]\n",
            idp.certificate_base64()
        ),
    )?;
    let now = chrono::Utc::now();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let idp = idp.clone();
            std::thread::spawn(move || -> Result<Vec<String>, String> {
                (0..count)
                    .filter(|i| i % threads == t)
                    .map(|i| {
                        let spec = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST), now, groups, i as u64 + 1);
                        let xml = spec.signed(&idp, Signing::Assertion)?;
                        Ok(format!(
                            "{{\"tenant\":\"bench\",\"saml_response\":\"{}\",\"expected_request_id\":\"{REQUEST}\"}}",
                            post_binding(&xml)
                        ))
                    })
                    .collect()
            })
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("pool.jsonl"))?);
    let mut written = 0;
    for handle in handles {
        for line in handle.join().map_err(|_| "generator thread panicked")?? {
            writeln!(out, "{line}")?;
            written += 1;
        }
    }
    out.flush()?;
    eprintln!("wrote {written} signed responses ({groups} groups) and config.toml to {}", dir.display());
    Ok(())
}
