//! gRPC load generator for the benchmark: CONNECTIONS concurrent callers (one HTTP/2 connection
//! each, one call in flight per connection, like wrk's HTTP/1.1 connections) send distinct
//! requests from a pool file for DURATION seconds, then print throughput and latency percentiles.
//!
//! `cargo run --release --example grpc_load -- http://127.0.0.1:9090 pool.jsonl CONNECTIONS DURATION`
//!
//! It speaks gRPC over the `h2` crate directly, on one thread, with every request framed
//! (5-byte gRPC prefix + protobuf) before the clock starts: the generator shares the two cores
//! with the server, and a full tonic client (channel, buffer task, codec, per-call clones) cost
//! about as much CPU per call as the server's HTTP/2 handling, so it measured itself as much
//! as the service. Every reply is still checked: HTTP status, `grpc-status` trailer, and the
//! decoded `ValidateResponse.valid`.
// Load generators time their runs and stamp fresh responses with the clock.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut as _, Bytes, BytesMut};
use prost::Message as _;
use saml_validator::transport::grpc::pb::{ValidateRequest, ValidateResponse};

#[derive(serde::Deserialize)]
struct Body {
    tenant: String,
    saml_response: String,
    expected_request_id: Option<String>,
}

/// One length-prefixed, uncompressed gRPC message (gRPC over HTTP/2, "Length-Prefixed-Message").
fn frame(message: &ValidateRequest) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.encoded_len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.encoded_len()).expect("message under 4 GiB"));
    message.encode(&mut out).expect("BytesMut grows");
    out.freeze()
}

enum Outcome {
    Valid,
    Rejected,
    Error,
}

async fn call(sender: &mut h2::client::SendRequest<Bytes>, uri: &http::Uri, body: Bytes) -> Result<Outcome, String> {
    let request = http::Request::post(uri.clone())
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|e| e.to_string())?;
    let (response, mut stream) = sender.send_request(request, false).map_err(|e| e.to_string())?;
    stream.send_data(body, true).map_err(|e| e.to_string())?;
    let response = response.await.map_err(|e| e.to_string())?;
    if response.status() != http::StatusCode::OK {
        return Ok(Outcome::Error);
    }
    let mut body = response.into_body();
    let mut reply = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(chunk.len());
        reply.extend_from_slice(&chunk);
    }
    let status = body.trailers().await.map_err(|e| e.to_string())?;
    let ok = status.as_ref().and_then(|t| t.get("grpc-status")).is_some_and(|s| s == "0");
    if !ok || reply.len() < 5 || reply[0] != 0 {
        return Ok(Outcome::Error);
    }
    match ValidateResponse::decode(&reply[5..]) {
        Ok(decoded) if decoded.valid => Ok(Outcome::Valid),
        Ok(_) => Ok(Outcome::Rejected),
        Err(_) => Ok(Outcome::Error),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, pool, connections, seconds] = args.as_slice() else {
        eprintln!("usage: grpc_load ENDPOINT POOL CONNECTIONS DURATION_SECONDS");
        std::process::exit(2);
    };
    let (connections, seconds): (usize, u64) = (connections.parse()?, seconds.parse()?);
    let base: http::Uri = endpoint.parse()?;
    let authority = base.authority().ok_or("ENDPOINT needs host:port")?.clone();
    let uri: http::Uri = http::Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query("/saml_validator.v1.SamlValidator/Validate")
        .build()?;
    let pool: Arc<Vec<Bytes>> = Arc::new(
        std::fs::read_to_string(pool)?
            .lines()
            .map(|line| {
                let body: Body = serde_json::from_str(line)?;
                Ok(frame(&ValidateRequest {
                    tenant: body.tenant,
                    saml_response: body.saml_response,
                    expected_request_id: body.expected_request_id,
                    expected_acs_url: None,
                }))
            })
            .collect::<Result<_, serde_json::Error>>()?,
    );
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..connections {
        let tcp = tokio::net::TcpStream::connect(authority.as_str()).await?;
        tcp.set_nodelay(true)?;
        let (sender, connection) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        senders.push(sender);
    }
    let started = Instant::now();
    for sender in senders {
        let (pool, next, stop, uri) = (pool.clone(), next.clone(), stop.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = match sender.ready().await {
                Ok(sender) => sender,
                Err(_) => return (Vec::new(), 0u64, 0u64, 1u64),
            };
            let (mut latencies, mut valid, mut rejected, mut errors) = (Vec::new(), 0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let body = pool[next.fetch_add(1, Ordering::Relaxed) % pool.len()].clone();
                let sent = Instant::now();
                match call(&mut sender, &uri, body).await {
                    Ok(Outcome::Valid) => valid += 1,
                    Ok(Outcome::Rejected) => rejected += 1,
                    Ok(Outcome::Error) | Err(_) => errors += 1,
                }
                latencies.push(sent.elapsed().as_micros() as u32);
                sender = match sender.ready().await {
                    Ok(sender) => sender,
                    Err(_) => break,
                };
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
