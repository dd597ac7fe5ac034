//! TLS for every listener (HTTP, gRPC, metrics) on OpenSSL, the same library that verifies the
//! SAML signatures, so one stack is patched and configured. With `client_ca_file` the server also
//! asks for a client certificate (mutual TLS); `transport::auth` decides what a request may do with it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openssl::ssl::{AlpnError, SslAcceptor, SslAcceptorBuilder, SslRef};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use super::auth::ClientCertificate;
use crate::config::tls::server_context;
pub use crate::config::tls::{ClientCertificates, TlsConfig};

/// TLS handshakes in progress at once on the gRPC listener.
const MAX_CONCURRENT_HANDSHAKES: usize = 1024;

/// Longest a client may take to finish the TLS handshake: short, since a client that connects
/// and stays silent holds one of the handshake slots (actix uses 3 s as well).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// An acceptor for `config` (see `config::tls::server_context`), offering `alpn` (most
/// preferred first).
pub fn acceptor(
    config: &TlsConfig,
    alpn: &'static [&'static [u8]],
    client_certificates: ClientCertificates,
) -> Result<SslAcceptorBuilder, String> {
    let mut builder = server_context(config, client_certificates)?;
    let mut wire = Vec::new();
    for protocol in alpn {
        wire.push(protocol.len() as u8);
        wire.extend_from_slice(protocol);
    }
    builder.set_alpn_protos(&wire).map_err(|e| e.to_string())?;
    builder.set_alpn_select_callback(move |_, client| {
        alpn.iter().find_map(|p| client_offers(client, p)).ok_or(AlpnError::NOACK)
    });
    Ok(builder)
}

/// `protocol` as it appears in the client's ALPN list (wire format), if it does: the selected
/// name must point into the client's buffer.
fn client_offers<'a>(mut client: &'a [u8], protocol: &[u8]) -> Option<&'a [u8]> {
    while let Some((&len, rest)) = client.split_first() {
        let (name, tail) = rest.split_at_checked(len as usize)?;
        if name == protocol {
            return Some(name);
        }
        client = tail;
    }
    None
}

/// The verified client certificate on `ssl`, if one was presented (OpenSSL has already checked
/// its chain to `client_ca_file`; an unverifiable one fails the handshake).
pub fn client_certificate(ssl: &SslRef) -> Option<ClientCertificate> {
    let cert = ssl.peer_certificate()?;
    let der = cert.to_der().ok()?;
    Some(ClientCertificate { sha256: openssl::sha::sha256(&der) })
}

/// One accepted TLS connection for tonic, carrying its client certificate into every request's
/// extensions.
pub struct TlsConnection(SslStream<TcpStream>);

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = Option<ClientCertificate>;

    fn connect_info(&self) -> Self::ConnectInfo {
        client_certificate(self.0.ssl())
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Takes the TCP connections `grpc`'s acceptor hands this thread and yields those that complete
/// a TLS handshake. Each handshake runs in its own task under a deadline, so one slow or failing
/// client never stalls the others, and a failed handshake is logged and dropped rather than
/// ending the stream.
pub fn incoming(
    mut connections: tokio::sync::mpsc::Receiver<std::net::TcpStream>,
    acceptor: SslAcceptor,
) -> impl futures_util::Stream<Item = Result<TlsConnection, io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<TlsConnection>(64);
    let acceptor = std::sync::Arc::new(acceptor);
    // Handshakes in progress at once on this thread (each holds an SSL object of tens of KB);
    // beyond this the acceptor's queue to this thread fills and new connections wait in the
    // kernel's backlog.
    let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    tokio::spawn(async move {
        // Ends when tonic stops taking connections (shutdown drops the receiver) or the
        // acceptor stops handing them over.
        while !tx.is_closed() {
            let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
            let Some(tcp) = connections.recv().await else { return };
            let tcp = match TcpStream::from_std(tcp) {
                Ok(tcp) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "gRPC connection dropped");
                    continue;
                }
            };
            let peer = tcp.peer_addr().ok();
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = async {
                    let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(io::Error::other)?;
                    let mut stream = SslStream::new(ssl, tcp).map_err(io::Error::other)?;
                    Pin::new(&mut stream).accept().await.map_err(io::Error::other)?;
                    Ok::<_, io::Error>(stream)
                };
                let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await;
                drop(permit);
                match result {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(TlsConnection(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(?peer, error = %e, "gRPC TLS handshake failed"),
                    Err(_) => tracing::debug!(?peer, "gRPC TLS handshake timed out"),
                }
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|conn| (Ok(conn), rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_lists_are_read_without_overrun() {
        assert_eq!(client_offers(b"\x02h2\x08http/1.1", b"http/1.1"), Some(&b"http/1.1"[..]));
        assert_eq!(client_offers(b"\x02h2", b"h2"), Some(&b"h2"[..]));
        assert_eq!(client_offers(b"\x08http/1.1", b"h2"), None);
        assert_eq!(client_offers(b"\x09h2", b"h2"), None, "a length past the end is not a match");
        assert_eq!(client_offers(b"", b"h2"), None);
    }
}
