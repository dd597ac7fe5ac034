//! TLS and mutual TLS on both transports: the listener speaks only TLS, client certificates
//! from the configured CA identify callers (alone or bound to a token), others are refused at
//! the handshake, and probes stay reachable without a certificate.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use crate::support::*;
use chrono::Utc;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};
use saml_validator::config::Config;
use saml_validator::testing::idp::{post_binding, ResponseSpec, Signing, TestIdp};
use saml_validator::transport::grpc::pb;
use serde_json::json;

// ---------------------------------------------------------------- a throwaway PKI

struct Issued {
    cert: X509,
    key: PKey<Private>,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    name.build()
}

/// A certificate for `cn`; self-signed CA when `issuer` is None.
fn issue(cn: &str, issuer: Option<&Issued>, role: &str, serial: u32) -> Issued {
    let key = key();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap()).unwrap();
    builder.set_subject_name(&name(cn)).unwrap();
    builder.set_issuer_name(issuer.map_or(&name(cn), |i| i.cert.subject_name())).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    builder.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
    match role {
        "ca" => {
            builder.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
            builder.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
        }
        "server" => {
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .ip("127.0.0.1")
                .build(&builder.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                .unwrap();
            builder.append_extension(san).unwrap();
            builder.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap()).unwrap();
        }
        _ => builder.append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap()).unwrap(),
    }
    let signer = issuer.map_or(&key, |i| &i.key);
    builder.sign(signer, MessageDigest::sha256()).unwrap();
    Issued { cert: builder.build(), key }
}

struct Pki {
    dir: PathBuf,
    ca: Issued,
}

impl Pki {
    fn new(test: &str) -> Pki {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = issue("Test client and server CA", None, "ca", 1);
        let pki = Pki { dir, ca };
        let server = issue("localhost", Some(&pki.ca), "server", 2);
        pki.write("server", &server);
        std::fs::write(pki.dir.join("ca.pem"), pki.ca.cert.to_pem().unwrap()).unwrap();
        pki
    }

    fn write(&self, name: &str, issued: &Issued) {
        std::fs::write(self.dir.join(format!("{name}.pem")), issued.cert.to_pem().unwrap()).unwrap();
        std::fs::write(self.dir.join(format!("{name}.key")), issued.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    }

    /// A client certificate from this PKI's CA, written as `<name>.pem/.key`; its fingerprint.
    fn client(&self, name: &str, serial: u32) -> String {
        let issued = issue(name, Some(&self.ca), "client", serial);
        self.write(name, &issued);
        issued
            .cert
            .digest(MessageDigest::sha256())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn server_section(&self, mutual: bool) -> String {
        // (`allow_any_client_certificate` is added by the tests that mean it.)
        let mut section = format!(
            "[server.tls]\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n",
            self.path("server.pem"),
            self.path("server.key")
        );
        if mutual {
            section.push_str(&format!("client_ca_file = \"{}\"\n", self.path("ca.pem")));
        }
        section
    }

    fn connector(&self, client: Option<&str>, alpn: &[u8]) -> SslConnector {
        let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
        builder.set_ca_file(self.dir.join("ca.pem")).unwrap();
        builder.set_verify(SslVerifyMode::PEER);
        builder.set_alpn_protos(alpn).unwrap();
        if let Some(client) = client {
            builder.set_certificate_file(self.dir.join(format!("{client}.pem")), SslFiletype::PEM).unwrap();
            builder.set_private_key_file(self.dir.join(format!("{client}.key")), SslFiletype::PEM).unwrap();
        }
        builder.build()
    }

    /// An HTTPS request presenting `client`'s certificate; Err when the handshake fails.
    fn https(
        &self,
        addr: SocketAddr,
        client: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<HttpReply, String> {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        let stream = self.connector(client, b"\x08http/1.1").connect("localhost", tcp).map_err(|e| e.to_string())?;
        // TLS 1.3 reports a refused client certificate only when the client reads, so a refusal
        // can also show up as a connection that ends without an answer.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            request_over(stream, addr, method, path, body, headers)
        }))
        .map_err(|_| "connection ended without an HTTP response".to_string())
    }

    /// A gRPC client over TLS presenting `client`'s certificate.
    async fn grpc(
        &self,
        addr: SocketAddr,
        client: Option<&str>,
    ) -> Result<pb::saml_validator_client::SamlValidatorClient<tonic::transport::Channel>, String> {
        let connector = self.connector(client, b"\x02h2");
        let channel = tonic::transport::Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let connector = connector.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    let ssl =
                        connector.configure().and_then(|c| c.into_ssl("localhost")).map_err(std::io::Error::other)?;
                    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(std::io::Error::other)?;
                    Pin::new(&mut stream).connect().await.map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(pb::saml_validator_client::SamlValidatorClient::new(channel))
    }
}

fn signed_body(idp: &TestIdp, tenant: &str, seed: u64) -> Vec<u8> {
    let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, seed)
        .signed(idp, Signing::Assertion)
        .unwrap();
    json!({"tenant": tenant, "saml_response": post_binding(&xml), "expected_request_id": REQUEST_ID})
        .to_string()
        .into_bytes()
}

fn grpc_request(idp: &TestIdp, tenant: &str, seed: u64, token: Option<&str>) -> tonic::Request<pb::ValidateRequest> {
    let xml = ResponseSpec::entra(IDP, SP, ACS, Some(REQUEST_ID), Utc::now(), 10, seed)
        .signed(idp, Signing::Assertion)
        .unwrap();
    let mut request = tonic::Request::new(pb::ValidateRequest {
        tenant: tenant.into(),
        saml_response: post_binding(&xml),
        expected_request_id: Some(REQUEST_ID.into()),
        expected_acs_url: None,
    });
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

fn code(reply: &HttpReply) -> String {
    reply.json()["error"]["code"].as_str().unwrap_or("none").to_string()
}

#[test]
fn tls_without_client_certificates_serves_both_transports_and_refuses_plaintext() {
    let pki = Pki::new("server-only");
    let idp = TestIdp::generate().unwrap();
    let (http, grpc) = start_both(&config_text(&idp, &pki.server_section(false)), false);

    let reply = pki.https(http, None, "POST", "/v1/validate", &signed_body(&idp, "contoso", 1), &[]).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["valid"], true);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(http).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    use std::io::{Read, Write};
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(!String::from_utf8_lossy(&raw).contains("200 OK"), "plain HTTP was served on a TLS port");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = pki.grpc(grpc, None).await.unwrap();
        let reply = client.validate(grpc_request(&idp, "contoso", 2, None)).await.unwrap().into_inner();
        assert!(reply.valid, "{:?}", reply.error);
        // A plaintext gRPC client cannot talk to the TLS listener.
        let plain = pb::saml_validator_client::SamlValidatorClient::connect(format!("http://{grpc}")).await;
        match plain {
            Err(_) => {}
            Ok(mut plain) => assert!(plain.validate(grpc_request(&idp, "contoso", 3, None)).await.is_err()),
        }
    });
}

#[test]
fn mutual_tls_identifies_callers_by_certificate_on_both_transports() {
    let pki = Pki::new("mutual");
    let idp = TestIdp::generate().unwrap();
    let eu = pki.client("helpdesk-eu", 10);
    let ops = pki.client("operations", 11);
    pki.client("unlisted", 12);
    // A certificate from another CA: refused during the handshake.
    let stranger_ca = issue("Some other CA", None, "ca", 20);
    pki.write("stranger", &issue("stranger", Some(&stranger_ca), "client", 21));

    let config = format!(
        r#"{}{}
[[callers]]
name = "helpdesk-eu"
client_certificate_sha256 = "{eu}"
tenants = ["contoso"]

[[callers]]
name = "operations"
token_sha256 = "{}"
client_certificate_sha256 = "{}"

[[callers]]
name = "token-only"
token_sha256 = "{}"
"#,
        config_text(&idp, &pki.server_section(true)),
        fabrikam_tenant(&idp),
        sha256_hex("ops-token-1"),
        ops.to_lowercase().replace(':', ""),
        sha256_hex("plain-token-2"),
    );
    let (http, grpc) = start_both(&config, false);
    let https = |client: Option<&str>, method: &str, path: &str, body: &[u8], token: Option<&str>| {
        let header = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("Authorization", h.as_str())).collect();
        pki.https(http, client, method, path, body, &headers)
    };

    // No certificate: probes only.
    assert_eq!(https(None, "GET", "/healthz", b"", None).unwrap().status, 200);
    assert_eq!(https(None, "GET", "/readyz", b"", None).unwrap().status, 200);
    let reply = https(None, "POST", "/v1/validate", &signed_body(&idp, "contoso", 1), None).unwrap();
    assert_eq!((reply.status, code(&reply)), (401, "unauthenticated".into()));
    assert_eq!(https(None, "GET", "/metrics", b"", None).unwrap().status, 401);
    assert_eq!(https(None, "GET", "/v1/tenants/contoso", b"", None).unwrap().status, 401);
    // Even the right token needs its certificate.
    assert_eq!(https(None, "GET", "/metrics", b"", Some("ops-token-1")).unwrap().status, 401);

    // A certificate-only caller, restricted to contoso.
    let reply = https(Some("helpdesk-eu"), "POST", "/v1/validate", &signed_body(&idp, "contoso", 2), None).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = https(Some("helpdesk-eu"), "POST", "/v1/validate", &signed_body(&idp, "fabrikam", 3), None).unwrap();
    assert_eq!((reply.status, code(&reply)), (403, "forbidden".into()));
    assert_eq!(https(Some("helpdesk-eu"), "GET", "/v1/tenants/fabrikam", b"", None).unwrap().status, 403);
    assert_eq!(https(Some("helpdesk-eu"), "GET", "/v1/tenants/contoso", b"", None).unwrap().status, 200);

    // The token caller: its certificate alone is not enough, a token on another certificate is
    // refused, both together pass.
    assert_eq!(https(Some("operations"), "GET", "/metrics", b"", None).unwrap().status, 401);
    assert_eq!(https(Some("helpdesk-eu"), "GET", "/metrics", b"", Some("ops-token-1")).unwrap().status, 401);
    assert_eq!(https(Some("operations"), "GET", "/metrics", b"", Some("ops-token-1")).unwrap().status, 200);

    // Under mutual TLS a token alone is not enough, whoever it belongs to; with any of the
    // CA's certificates it is.
    assert_eq!(https(None, "GET", "/v1/tenants/contoso", b"", Some("plain-token-2")).unwrap().status, 401);
    assert_eq!(https(Some("unlisted"), "GET", "/v1/tenants/contoso", b"", Some("plain-token-2")).unwrap().status, 200);

    // A valid certificate from the CA that is not a configured caller.
    assert_eq!(https(Some("unlisted"), "GET", "/v1/tenants/contoso", b"", None).unwrap().status, 401);
    // Another CA's certificate never completes the handshake.
    assert!(https(Some("stranger"), "GET", "/healthz", b"", None).is_err(), "foreign client certificate accepted");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // gRPC serves nothing anonymous: the handshake itself needs a certificate.
        let anonymous = match pki.grpc(grpc, None).await {
            Err(_) => None,
            Ok(mut client) => Some(client.validate(grpc_request(&idp, "contoso", 4, None)).await),
        };
        assert!(!matches!(anonymous, Some(Ok(_))), "gRPC answered without a client certificate");

        let mut eu_client = pki.grpc(grpc, Some("helpdesk-eu")).await.unwrap();
        let reply = eu_client.validate(grpc_request(&idp, "contoso", 5, None)).await.unwrap().into_inner();
        assert!(reply.valid, "{:?}", reply.error);
        let status = eu_client.validate(grpc_request(&idp, "fabrikam", 6, None)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        let trust = eu_client.get_tenant(pb::GetTenantRequest { tenant: "contoso".into() }).await.unwrap();
        assert_eq!(trust.into_inner().id, "contoso");
        let status = eu_client.get_tenant(pb::GetTenantRequest { tenant: "fabrikam".into() }).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);

        let mut ops_client = pki.grpc(grpc, Some("operations")).await.unwrap();
        let status = ops_client.validate(grpc_request(&idp, "fabrikam", 7, None)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "token-bound caller without its token");
        let reply = ops_client.validate(grpc_request(&idp, "fabrikam", 8, Some("ops-token-1"))).await.unwrap();
        assert!(reply.into_inner().valid);

        let stranger = match pki.grpc(grpc, Some("stranger")).await {
            Err(_) => None,
            Ok(mut client) => Some(client.validate(grpc_request(&idp, "contoso", 9, None)).await),
        };
        assert!(!matches!(stranger, Some(Ok(_))), "foreign client certificate accepted over gRPC");
    });
}

#[test]
fn tls_configuration_is_checked_when_loaded() {
    let pki = Pki::new("config");
    let idp = TestIdp::generate().unwrap();
    let other = issue("localhost", Some(&pki.ca), "server", 30);
    pki.write("other", &other);
    let fingerprint = pki.client("someone", 31);
    let cases = [
        // Key of another certificate.
        (
            format!(
                "[server.tls]\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n",
                pki.path("server.pem"),
                pki.path("other.key")
            ),
            "does not belong",
        ),
        (
            format!(
                "[server.tls]\ncertificate_file = \"{}\"\nprivate_key_file = \"{}\"\n",
                pki.path("missing.pem"),
                pki.path("server.key")
            ),
            "certificate_file",
        ),
        (format!("[server.tls]\ncertificate_file = \"{}\"\n", pki.path("server.pem")), "private_key_file: is required"),
        (format!("{}client_ca_file = \"{}\"\n", pki.server_section(false), pki.path("server.key")), "client_ca_file"),
        (format!("{}colour = \"blue\"\n", pki.server_section(false)), "server.tls.colour: unknown key"),
    ];
    for (section, needle) in cases {
        let errors = Config::parse(&config_text(&idp, &section), Path::new("."), chrono::Utc::now()).unwrap_err().0;
        assert!(errors.iter().any(|e| e.contains(needle)), "missing {needle:?} in {errors:#?}");
    }
    // A certificate-pinned caller needs mutual TLS; a caller needs some credential.
    let text = format!(
        "{}\n[[callers]]\nname = \"a\"\nclient_certificate_sha256 = \"{fingerprint}\"\n\n[[callers]]\nname = \"b\"\n\n[[callers]]\nname = \"c\"\nclient_certificate_sha256 = \"12:34\"\n",
        config_text(&idp, &pki.server_section(false))
    );
    let errors = Config::parse(&text, Path::new("."), chrono::Utc::now()).unwrap_err().0;
    for needle in [
        "callers[0].client_certificate_sha256: needs mutual TLS",
        "callers[1].token_sha256",
        "callers[2].client_certificate_sha256: must be",
    ] {
        assert!(errors.iter().any(|e| e.contains(needle)), "missing {needle:?} in {errors:#?}");
    }
    // Two callers on one certificate.
    let text = format!(
        "{}\n[[callers]]\nname = \"a\"\nclient_certificate_sha256 = \"{fingerprint}\"\n\n[[callers]]\nname = \"b\"\nclient_certificate_sha256 = \"{fingerprint}\"\n",
        config_text(&idp, &pki.server_section(true))
    );
    let errors = Config::parse(&text, Path::new("."), chrono::Utc::now()).unwrap_err().0;
    assert!(errors.iter().any(|e| e.contains("share a client certificate")), "{errors:#?}");
    // Mutual TLS naming no caller accepts any certificate of the CA: only when said so.
    let errors =
        Config::parse(&config_text(&idp, &pki.server_section(true)), Path::new("."), chrono::Utc::now()).unwrap_err().0;
    assert!(errors.iter().any(|e| e.contains("allow_any_client_certificate")), "{errors:#?}");
    let relaxed = format!("{}allow_any_client_certificate = true\n", pki.server_section(true));
    Config::parse(&config_text(&idp, &relaxed), Path::new("."), chrono::Utc::now()).unwrap();
    let pointless = format!("{}allow_any_client_certificate = true\n", pki.server_section(false));
    let errors = Config::parse(&config_text(&idp, &pointless), Path::new("."), chrono::Utc::now()).unwrap_err().0;
    assert!(errors.iter().any(|e| e.contains("only means something with client_ca_file")), "{errors:#?}");
}

#[test]
fn mutual_tls_without_callers_accepts_the_cas_certificates_only_when_allowed() {
    let pki = Pki::new("any-cert");
    let idp = TestIdp::generate().unwrap();
    pki.client("anyone", 40);
    let metrics_port = free_port();
    let section = format!(
        "metrics_addr = \"127.0.0.1:{metrics_port}\"\n{}allow_any_client_certificate = true\n",
        pki.server_section(true)
    );
    let config = config_text(&idp, &section);
    let (_child, http, _) = spawn_serve_tls("any-cert", &config, &pki);
    let metrics: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();

    let reply = pki.https(http, Some("anyone"), "POST", "/v1/validate", &signed_body(&idp, "contoso", 1), &[]).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = pki.https(http, None, "POST", "/v1/validate", &signed_body(&idp, "contoso", 2), &[]).unwrap();
    assert_eq!((reply.status, code(&reply)), (401, "unauthenticated".into()));
    assert_eq!(pki.https(http, None, "GET", "/healthz", b"", &[]).unwrap().status, 200);
    // The metrics port serves nothing anonymous: no certificate, no handshake.
    assert!(pki.https(metrics, None, "GET", "/metrics", b"", &[]).is_err(), "metrics answered without a certificate");
    assert_eq!(pki.https(metrics, Some("anyone"), "GET", "/metrics", b"", &[]).unwrap().status, 200);
}

/// `saml-validator serve` with TLS: waits for the HTTPS port to answer /healthz.
fn spawn_serve_tls(name: &str, config_text: &str, pki: &Pki) -> (KillOnDrop, SocketAddr, PathBuf) {
    let http_port = free_port();
    let config = temp_dir(name).join(format!("{name}.toml"));
    std::fs::write(&config, config_text.replace("127.0.0.1:0", &format!("127.0.0.1:{http_port}"))).unwrap();
    let child = KillOnDrop(
        std::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http: SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    assert!(
        eventually(|| TcpStream::connect(http).is_ok() && pki.https(http, None, "GET", "/healthz", b"", &[]).is_ok()),
        "TLS server did not come up"
    );
    (child, http, config)
}
