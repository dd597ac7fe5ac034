//! gRPC load generator for the benchmark: CONNECTIONS concurrent callers (one HTTP/2 connection
//! each, one call in flight per connection, like wrk's HTTP/1.1 connections) send distinct
//! requests from a pool file for DURATION seconds, then print throughput and latency percentiles.
//!
//! `cargo run --release --example grpc_load -- http://127.0.0.1:9090 pool.jsonl CONNECTIONS DURATION`

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use saml_validator::grpc::pb::saml_validator_client::SamlValidatorClient;
use saml_validator::grpc::pb::ValidateRequest;

#[derive(serde::Deserialize)]
struct Body {
    tenant: String,
    saml_response: String,
    expected_request_id: Option<String>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, pool, connections, seconds] = args.as_slice() else {
        eprintln!("usage: grpc_load ENDPOINT POOL CONNECTIONS DURATION_SECONDS");
        std::process::exit(2);
    };
    let (connections, seconds): (usize, u64) = (connections.parse()?, seconds.parse()?);
    let pool: Arc<Vec<ValidateRequest>> = Arc::new(
        std::fs::read_to_string(pool)?
            .lines()
            .map(|line| {
                let body: Body = serde_json::from_str(line)?;
                Ok(ValidateRequest {
                    tenant: body.tenant,
                    saml_response: body.saml_response,
                    expected_request_id: body.expected_request_id,
                })
            })
            .collect::<Result<_, serde_json::Error>>()?,
    );
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let channel = tonic::transport::Channel::from_shared(endpoint.clone())?.connect().await?;
        let (pool, next, stop) = (pool.clone(), next.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = SamlValidatorClient::new(channel);
            let (mut latencies, mut valid, mut rejected, mut errors) = (Vec::new(), 0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let request = pool[next.fetch_add(1, Ordering::Relaxed) % pool.len()].clone();
                let sent = Instant::now();
                match client.validate(request).await {
                    Ok(reply) if reply.get_ref().valid => valid += 1,
                    Ok(_) => rejected += 1,
                    Err(_) => errors += 1,
                }
                latencies.push(sent.elapsed().as_micros() as u32);
            }
            (latencies, valid, rejected, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut valid, mut rejected, mut errors) = (Vec::new(), 0, 0, 0);
    for task in tasks {
        let (l, v, r, e) = task.await?;
        latencies.extend(l);
        valid += v;
        rejected += r;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "grpc connections={connections} requests={} valid={valid} rejected={rejected} errors={errors} rps={:.0} p50_us={} p90_us={} p99_us={} max_us={}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().copied().unwrap_or(0)
    );
    Ok(())
}
