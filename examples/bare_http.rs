//! The floor under any HTTP transport on this machine (issue 32): the thinnest HTTP/1.1 server
//! that still does the per-request work no transport can skip (a socket read of the 8 KB body
//! and a write of a reply as long as the service's, on an event loop per core), around the same
//! core the service runs (`Service::judge`: tenant lookup, base64, parse, c14n, RSA, checks,
//! claims). No routing, no JSON reply, no log line, no metrics, no replay record, no limits:
//! never a server to deploy, only the number `scripts/transport-cost.sh` sets beside the
//! service's so that what actix, JSON, the log and the rest add is told apart from what the
//! kernel and the machine charge for a loopback request.
//!
//! `bare_http POOL_DIR ADDR [WORKERS]` (the pool of `examples/loadpool`; its config.toml's tenant)
#![allow(clippy::unwrap_used, clippy::disallowed_methods, clippy::expect_used)]

use std::sync::Arc;

use saml_validator::config::Config;
use saml_validator::saml::Input;
use saml_validator::service::{Service, ValidateRequest};

// The allocator the service binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// As long as the service's reply to the pool's 10-group response (2,859 bytes of JSON).
const REPLY_BODY_BYTES: usize = 2859;

#[derive(serde::Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    tenant: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    saml_response: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    expected_request_id: Option<std::borrow::Cow<'a, str>>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("POOL_DIR ADDR [WORKERS]"));
    let addr = args.next().expect("POOL_DIR ADDR [WORKERS]");
    let workers: usize = args.next().map_or(2, |a| a.parse().unwrap());
    let config = Config::load(&dir.join("config.toml"), chrono::Utc::now()).unwrap();
    let service = Arc::new(Service::in_process(&config));
    let mut reply =
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {REPLY_BODY_BYTES}\r\n\r\n")
            .into_bytes();
    let padding = REPLY_BODY_BYTES - r#"{"valid":true,"pad":""}"#.len();
    reply.extend_from_slice(format!(r#"{{"valid":true,"pad":"{}"}}"#, "x".repeat(padding)).as_bytes());
    let reply: Arc<[u8]> = reply.into();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_io().build().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(connection(stream, service.clone(), reply.clone()));
        }
    });
}

async fn connection(stream: tokio::net::TcpStream, service: Arc<Service>, reply: Arc<[u8]>) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut filled = 0;
    loop {
        let Some((header_end, length)) = request_at(&buffer[..filled]) else {
            if filled == buffer.len() || !read(&stream, &mut buffer, &mut filled).await {
                return;
            }
            continue;
        };
        let end = header_end + length;
        if end > buffer.len() {
            return;
        }
        while filled < end {
            if !read(&stream, &mut buffer, &mut filled).await {
                return;
            }
        }
        let answer = judge(&service, &buffer[header_end..end]);
        let out: &[u8] = if answer { &reply } else { b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n" };
        if !write(&stream, out).await {
            return;
        }
        buffer.copy_within(end..filled, 0);
        filled -= end;
    }
}

fn judge(service: &Service, body: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<Body<'_>>(body) else { return false };
    let request = ValidateRequest {
        tenant: &body.tenant,
        saml_response: Input::Base64(body.saml_response.as_bytes()),
        expected_request_id: body.expected_request_id.as_deref(),
        expected_acs_url: None,
    };
    service.judge(&request, chrono::Utc::now()).is_ok()
}

/// The end of the headers and the Content-Length of the first request buffered, once its
/// headers are complete.
fn request_at(buffer: &[u8]) -> Option<(usize, usize)> {
    let header_end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let headers = std::str::from_utf8(&buffer[..header_end]).ok()?;
    let length = headers
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    Some((header_end, length))
}

async fn read(stream: &tokio::net::TcpStream, buffer: &mut [u8], filled: &mut usize) -> bool {
    loop {
        if stream.readable().await.is_err() {
            return false;
        }
        match stream.try_read(&mut buffer[*filled..]) {
            Ok(0) => return false,
            Ok(n) => {
                *filled += n;
                return true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return false,
        }
    }
}

async fn write(stream: &tokio::net::TcpStream, mut out: &[u8]) -> bool {
    while !out.is_empty() {
        if stream.writable().await.is_err() {
            return false;
        }
        match stream.try_write(out) {
            Ok(n) => out = &out[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return false,
        }
    }
    true
}
