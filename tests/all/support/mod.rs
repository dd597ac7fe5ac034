//! Shared test support: a tenant trusting a freshly generated test IdP, and string surgery on
//! signed documents (how attackers edit them too).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::disallowed_methods)]

use chrono::{DateTime, Utc};
use saml_validator::saml::keys::TrustedKey;
use saml_validator::saml::{self, Input, Limits, Request, TenantPolicy, Validated};
use saml_validator::testing::idp::{ResponseSpec, Signing, TestIdp};

pub const IDP: &str = "https://sts.windows.net/11111111-2222-3333-4444-555555555555/";
pub const SP: &str = "https://www.jitbit.com/web-helpdesk/";
pub const ACS: &str = "https://contoso.jitbit.example/helpdesk/User/Login";
pub const REQUEST_ID: &str = "_a1b2c3d4-request";

pub struct Harness {
    pub idp: TestIdp,
    pub policy: TenantPolicy,
    pub now: DateTime<Utc>,
    pub expected_request_id: Option<String>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_idp(TestIdp::generate().unwrap())
    }

    pub fn with_idp(idp: TestIdp) -> Harness {
        let policy =
            TenantPolicy::new(IDP, SP, ACS, vec![TrustedKey::from_certificate_text(&idp.certificate_pem()).unwrap()]);
        let now = saml::time::parse("2026-11-29T10:00:00Z").unwrap();
        Harness { idp, policy, now, expected_request_id: Some(REQUEST_ID.into()) }
    }

    /// An Entra-shaped response issued at `now` for REQUEST_ID.
    pub fn spec(&self) -> ResponseSpec {
        ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), self.now, 10, 42)
    }

    pub fn signed(&self, signing: Signing) -> String {
        self.spec().signed(&self.idp, signing).unwrap()
    }

    pub fn check(&self, xml: &str) -> Result<Validated, saml::Error> {
        self.check_with(xml, &self.policy)
    }

    pub fn check_with(&self, xml: &str, policy: &TenantPolicy) -> Result<Validated, saml::Error> {
        let request =
            Request { expected_request_id: self.expected_request_id.as_deref(), expected_acs_url: None, now: self.now };
        saml::validate(Input::Xml(xml.as_bytes()), policy, &Limits::default(), &request)
    }

    /// The error code for `xml`, panicking with the document's verdict if it was accepted.
    pub fn code(&self, xml: &str) -> saml::Code {
        match self.check(xml) {
            Ok(v) => panic!("accepted, expected a rejection: {:?}", v.subject),
            Err(e) => e.code,
        }
    }
}

/// Replaces exactly one occurrence of `from`.
pub fn replace_once(xml: &str, from: &str, to: &str) -> String {
    assert_eq!(xml.matches(from).count(), 1, "expected exactly one {from:?} in the document");
    xml.replacen(from, to, 1)
}

/// The substring from the first `start` to the end of the first `end` after it.
pub fn slice<'a>(xml: &'a str, start: &str, end: &str) -> &'a str {
    let from = xml.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let to = from + xml[from..].find(end).unwrap_or_else(|| panic!("no {end:?}")) + end.len();
    &xml[from..to]
}

/// The signed Assertion element of an Entra-shaped document.
pub fn assertion(xml: &str) -> &str {
    slice(xml, "<Assertion ", "</Assertion>")
}

/// The first Signature element after `after`.
pub fn signature_after<'a>(xml: &'a str, after: &str) -> &'a str {
    let from = xml.find(after).unwrap();
    slice(&xml[from..], "<Signature ", "</Signature>")
}

pub mod redis;

// ---------------------------------------------------------------- HTTP on loopback

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use saml_validator::config::Config;
use saml_validator::service::Service;
use saml_validator::transport::http;

/// A TOML configuration with one tenant "contoso" trusting `idp`.
pub fn config_text(idp: &TestIdp, extra_server: &str) -> String {
    format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
{extra_server}

[[tenants]]
id = "contoso"
idp_entity_id = "{IDP}"
sp_entity_id = "{SP}"
acs_url = "{ACS}"
certificates = ['''
{}''']
"#,
        idp.certificate_pem()
    )
}

/// A second tenant, "fabrikam", trusting `idp` too (for per-caller tenant restrictions).
pub fn fabrikam_tenant(idp: &TestIdp) -> String {
    format!(
        "\n[[tenants]]\nid = \"fabrikam\"\nidp_entity_id = \"{IDP}\"\nsp_entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\ncertificates = [\"{}\"]\n",
        idp.certificate_base64()
    )
}

/// Hex SHA-256 of a bearer token, as `token_sha256` takes it.
pub fn sha256_hex(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the real HTTP server on a free loopback port in a background thread.
pub fn start_server(config_text: &str) -> SocketAddr {
    let config = Config::parse(config_text, std::path::Path::new("."), chrono::Utc::now()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let service = Arc::new(Service::new(&config));
        let frontend = Arc::new(saml_validator::transport::frontend::Frontend::new(service, &config).unwrap());
        let state = Arc::new(http::State::new(frontend, &config));
        actix_web::rt::System::new().block_on(async move {
            let (server, addrs) = http::bind(state, &config.server.http_addr, 2, config.server.tls.as_ref()).unwrap();
            tx.send(addrs[0]).unwrap();
            server.await.unwrap();
        });
    });
    rx.recv().unwrap()
}

pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough to test the real server.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> HttpReply {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    request_over(stream, addr, method, path, body, headers)
}

/// One HTTP/1.1 request on an open connection (plain or TLS), read to the server's close.
pub fn request_over(
    mut stream: impl Read + Write,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> HttpReply {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (e.g. 413) before reading an oversize body; ignore a reset here.
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    HttpReply { status, headers, body: body.to_string() }
}

pub fn validate_json(addr: SocketAddr, body: &serde_json::Value) -> HttpReply {
    request(addr, "POST", "/v1/validate", body.to_string().as_bytes(), &[("Content-Type", "application/json")])
}

/// Starts HTTP and gRPC on free loopback ports around one shared frontend (one replay cache,
/// one metrics registry), as `serve` does. `clear_tenants` starts them with no tenants (not ready).
pub fn start_both(config_text: &str, clear_tenants: bool) -> (SocketAddr, SocketAddr) {
    start_both_with_hook(config_text, clear_tenants, None)
}

/// As [`start_both`], with a test hook run at the start of every validation.
pub fn start_both_with_hook(
    config_text: &str,
    clear_tenants: bool,
    hook: Option<fn(&saml_validator::service::ValidateRequest<'_>)>,
) -> (SocketAddr, SocketAddr) {
    let mut config = Config::parse(config_text, std::path::Path::new("."), chrono::Utc::now()).unwrap();
    if clear_tenants {
        config.tenants.clear();
    }
    let service = Arc::new(Service::new(&config));
    let mut frontend = saml_validator::transport::frontend::Frontend::new(service, &config).unwrap();
    if let Some(hook) = hook {
        frontend = frontend.with_test_hook(hook);
    }
    let frontend = Arc::new(frontend);
    let grpc_frontend = frontend.clone();
    let max_message = config.server.max_body_bytes;
    let grpc_tls = config.server.tls.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let grpc_addr = listener.local_addr().unwrap();
    // Never joined: the test process ends with the servers.
    saml_validator::transport::grpc::spawn(
        grpc_frontend,
        listener,
        grpc_tls,
        max_message,
        2,
        std::future::pending::<()>,
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let state = Arc::new(http::State::new(frontend, &config));
        actix_web::rt::System::new().block_on(async move {
            let (server, addrs) = http::bind(state, "127.0.0.1:0", 2, config.server.tls.as_ref()).unwrap();
            tx.send(addrs[0]).unwrap();
            server.await.unwrap();
        });
    });
    (rx.recv().unwrap(), grpc_addr)
}

// ---------------------------------------------------------------- the real binary

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_saml-validator");

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saml-validator-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `condition` until it holds, for at most ~4 s. Waiting for an observable state (a port
/// open, a gauge at 1), not a sleep standing in for one.
pub fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..400 {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

pub fn wait_until_up(addr: std::net::SocketAddr) {
    assert!(eventually(|| std::net::TcpStream::connect(addr).is_ok()), "server at {addr} did not come up");
}

/// Starts `saml-validator serve` on `config_text` with its `127.0.0.1:0` HTTP address replaced
/// by a free port, and waits until it accepts connections. Returns the child and the address.
pub fn spawn_serve(
    name: &str,
    config_text: &str,
    stderr: Stdio,
) -> (std::process::Child, std::net::SocketAddr, PathBuf) {
    let http_port = free_port();
    let config = temp_dir(name).join(format!("{name}.toml"));
    std::fs::write(&config, config_text.replace("127.0.0.1:0", &format!("127.0.0.1:{http_port}"))).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    wait_until_up(http);
    (child, http, config)
}

/// Kills the child when dropped, so a failing test does not leave a server running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `future` to completion on a fresh current-thread runtime (the service's use cases are
/// async; tests that drive a `Service` directly call them through this).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}
