//! `[server.tls]`: the certificate, key and client CA every listener serves with, loaded and
//! checked when the configuration is read.

use std::path::PathBuf;

use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509Name;

/// `[server.tls]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM: the server certificate first, then its intermediates.
    pub certificate_file: PathBuf,
    /// PEM private key of the server certificate.
    pub private_key_file: PathBuf,
    /// PEM CA certificates that issue client certificates; set = mutual TLS.
    pub client_ca_file: Option<PathBuf>,
    /// RELAXATION: mutual TLS with no `[[callers]]` pinning certificates accepts every
    /// certificate the CA ever issued, for every tenant; only with this set.
    pub allow_any_client_certificate: bool,
}

/// Whether a listener under mutual TLS refuses handshakes without a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertificates {
    /// Asked for, verified when presented, not required: the HTTP port, where kubelet probes
    /// (which present none) reach /healthz and /readyz and everything else needs one.
    Optional,
    /// Required by the handshake itself: gRPC and the metrics port serve nothing anonymous.
    Required,
}

/// The server side of TLS for `config`: certificate chain, private key, client CA. Every file
/// problem is reported here, so `check-config` and start-up refuse a configuration that cannot
/// serve; the listeners add their ALPN choice (`transport::tls`).
pub fn server_context(
    config: &TlsConfig,
    client_certificates: ClientCertificates,
) -> Result<SslAcceptorBuilder, String> {
    // Mozilla "intermediate": TLS 1.2 and 1.3 with AEAD suites only.
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(|e| e.to_string())?;
    let cert = &config.certificate_file;
    builder.set_certificate_chain_file(cert).map_err(|e| format!("certificate_file {}: {e}", cert.display()))?;
    let key = &config.private_key_file;
    let pem = std::fs::read(key).map_err(|e| format!("private_key_file {}: {e}", key.display()))?;
    let private_key = PKey::private_key_from_pem(&pem)
        .map_err(|_| format!("private_key_file {}: not a PEM private key", key.display()))?;
    // OpenSSL compares the key with the certificate already set.
    builder
        .set_private_key(&private_key)
        .and_then(|()| builder.check_private_key())
        .map_err(|_| "private_key_file does not belong to certificate_file".to_string())?;
    if let Some(ca) = &config.client_ca_file {
        let names = X509Name::load_client_ca_file(ca).map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?;
        if names.is_empty() {
            return Err(format!("client_ca_file {}: no certificates", ca.display()));
        }
        builder.set_ca_file(ca).map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?;
        builder.set_client_ca_list(names);
        // A certificate that is presented must chain to the CA or the handshake fails. Where
        // one is optional, every endpoint but the probes refuses a connection without (auth.rs).
        builder.set_verify(match client_certificates {
            ClientCertificates::Optional => SslVerifyMode::PEER,
            ClientCertificates::Required => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        });
        // Session resumption with client certificates needs a context id (RFC 5246 F.1.4).
        builder.set_session_id_context(b"saml-validator").map_err(|e| e.to_string())?;
    }
    Ok(builder)
}
