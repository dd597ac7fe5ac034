//! gRPC adapter (tonic): the `saml_validator.v1.SamlValidator` service from proto/, the standard
//! `grpc.health.v1` health service, and server reflection. Same `Frontend` as HTTP, same error
//! table: a rejected assertion is a normal reply; request-level errors are gRPC statuses.

use std::future::Future;
use std::sync::Arc;

use prost::Message as _;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::auth::{self, ClientCertificate, Credentials};
use super::frontend::{self, Frontend, Incoming, OwnedRequest};
use super::json::{tenant_status, TenantView};
use super::sp::{self, AuthnRequestParams};
use super::tls::{self, ClientCertificates, TlsConfig};
use super::wire::{self, GrpcCode};
use crate::ops::wall_clock;
use crate::saml::{Code, Error, Validated};

/// Generated from proto/saml_validator/v1/validator.proto.
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("saml_validator.v1");
    /// Encoded descriptors for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("saml_validator_descriptor");
}

use pb::saml_validator_server::{SamlValidator, SamlValidatorServer};

pub struct Api {
    frontend: Arc<Frontend>,
    max_message_bytes: usize,
}

#[tonic::async_trait]
impl SamlValidator for Api {
    async fn validate(&self, request: Request<pb::ValidateRequest>) -> Result<Response<pb::ValidateResponse>, Status> {
        let request_id = frontend::request_id(request.metadata().get("x-request-id").and_then(|v| v.to_str().ok()));
        let authorization = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        let client_certificate = client_certificate(&request);
        let credentials = Credentials { authorization: authorization.as_deref(), client_certificate };
        let incoming = Message { message: request.into_inner(), max_bytes: self.max_message_bytes };
        let (tenant, result) = self.frontend.handle(&request_id, &credentials, incoming).await;
        respond(&request_id, &tenant, result)
    }

    async fn get_tenant(&self, request: Request<pb::GetTenantRequest>) -> Result<Response<pb::TenantTrust>, Status> {
        let authorization = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        let client_certificate = client_certificate(&request);
        let id = request.into_inner().tenant;
        let credentials = Credentials { authorization: authorization.as_deref(), client_certificate };
        if let Err(error) = auth::authorize(self.frontend.service(), &credentials, Some(&id)) {
            return Err(status(error));
        }
        let generation = self.frontend.service().tenants();
        match tenant_status(&generation, &id, wall_clock()) {
            Some(Ok(view)) => Ok(Response::new(tenant_trust(&view))),
            Some(Err(refused)) => Ok(Response::new(pb::TenantTrust {
                id: id.clone(),
                status: refused.status.to_string(),
                config_errors: refused.config_error.problems.clone(),
                ..pb::TenantTrust::default()
            })),
            None => Err(status(Error::new(Code::UnknownTenant, "no such tenant"))),
        }
    }

    async fn create_authn_request(
        &self,
        request: Request<pb::CreateAuthnRequestRequest>,
    ) -> Result<Response<pb::AuthnRequest>, Status> {
        let authorization = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        let client_certificate = client_certificate(&request);
        let credentials = Credentials { authorization: authorization.as_deref(), client_certificate };
        self.create_authn_request_now(&credentials, request.into_inner()).map(Response::new)
    }
}

/// The tenant view as its protobuf twin.
fn tenant_trust(view: &TenantView<'_>) -> pb::TenantTrust {
    pb::TenantTrust {
        id: view.id.to_string(),
        idp_entity_id: view.idp_entity_id.to_string(),
        sp_entity_id: view.sp_entity_id.to_string(),
        acs_url: view.acs_url.to_string(),
        clock_skew_seconds: view.clock_skew_seconds,
        relaxations: view.relaxations.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
        certificates: view
            .certificates
            .iter()
            .map(|c| pb::Certificate {
                sha256_fingerprint: c.info.sha256_fingerprint.clone(),
                subject: c.info.subject.clone(),
                not_before: c.info.not_before.clone(),
                not_after: c.info.not_after.clone(),
                key_type: c.info.key_type.clone(),
                bits: c.info.bits,
                origin: c.info.origin.clone(),
                seconds_until_expiry: c.seconds_until_expiry,
            })
            .collect(),
        decryption_keys: view
            .decryption_keys
            .iter()
            .map(|k| pb::DecryptionKey {
                public_key_sha256: k.public_key_sha256.clone(),
                key_type: k.key_type.clone(),
                bits: k.bits,
                origin: k.origin.clone(),
            })
            .collect(),
        require_encrypted_assertions: view.require_encrypted_assertions,
        status: view.status.to_string(),
        config_errors: view.config_error.map(|e| e.problems.clone()).unwrap_or_default(),
        metadata: view.metadata.map(|m| pb::MetadataStatus {
            source: m.source.clone(),
            entity_id: m.entity_id.clone(),
            signature_verified: m.signature_verified,
            valid_until: m.valid_until.clone(),
            cache_duration_seconds: m.cache_duration_seconds,
            loaded_at: m.loaded_at.clone(),
            result: m.result.clone(),
        }),
    }
}

impl Api {
    /// `CreateAuthnRequest`, at parity with `POST /v1/authn-requests`.
    #[allow(clippy::result_large_err)] // tonic fixes the error type to `Status`
    fn create_authn_request_now(
        &self,
        credentials: &Credentials<'_>,
        message: pb::CreateAuthnRequestRequest,
    ) -> Result<pb::AuthnRequest, Status> {
        let binding = if message.binding.is_empty() { "redirect".to_string() } else { message.binding };
        let params = AuthnRequestParams {
            tenant: message.tenant,
            relay_state: message.relay_state,
            force_authn: message.force_authn,
            is_passive: message.is_passive,
            binding,
        };
        let body = sp::create(self.frontend.service(), credentials, &params, wall_clock()).map_err(status)?;
        let mut fields = std::collections::HashMap::new();
        if let Some(post) = body.fields {
            fields.insert("SAMLRequest".to_string(), post.saml_request);
            if let Some(relay_state) = post.relay_state {
                fields.insert("RelayState".to_string(), relay_state);
            }
        }
        Ok(pb::AuthnRequest {
            id: body.id,
            issue_instant: body.issue_instant,
            binding: body.binding.to_string(),
            redirect_url: body.redirect_url,
            action: body.action,
            fields,
            expires_at: body.expires_at,
        })
    }
}

/// A gRPC message, already received by tonic, on its way into the pipeline.
struct Message {
    message: pb::ValidateRequest,
    max_bytes: usize,
}

impl Incoming for Message {
    /// Same limit and code as HTTP's body limit. (tonic itself refuses messages beyond four
    /// times this with OUT_OF_RANGE before we see them.)
    async fn receive(&mut self) -> Result<usize, Error> {
        let bytes = self.message.encoded_len();
        if bytes > self.max_bytes {
            return Err(Error::new(Code::PayloadTooLarge, format!("request message exceeds {} bytes", self.max_bytes)));
        }
        Ok(bytes)
    }

    fn decode(self) -> Result<OwnedRequest, Error> {
        let pb::ValidateRequest { tenant, saml_response, expected_request_id } = self.message;
        Ok(OwnedRequest { tenant, saml_response, expected_request_id })
    }
}

/// A request-level error as a gRPC status: code from the one table in `wire`, the stable code in
/// the `x-error-code` trailer.
fn status(error: Error) -> Status {
    let code = tonic::Code::from_i32(wire::disposition(error.code).grpc as i32);
    let mut status = Status::new(code, error.message);
    status.metadata_mut().insert("x-error-code", MetadataValue::from_static(error.code.as_str()));
    status
}

// tonic's trait fixes the error type to `Status`, large as it is.
#[allow(clippy::result_large_err)]
fn respond(
    request_id: &str,
    tenant: &str,
    result: Result<Validated, Error>,
) -> Result<Response<pb::ValidateResponse>, Status> {
    let request_id_value =
        MetadataValue::try_from(request_id).unwrap_or_else(|_| MetadataValue::from_static("invalid"));
    let reply = match result {
        Ok(validated) => to_proto(tenant, validated),
        Err(error) => {
            let disposition = wire::disposition(error.code);
            if disposition.grpc != GrpcCode::Ok {
                let mut status = status(error);
                status.metadata_mut().insert("x-request-id", request_id_value);
                return Err(status);
            }
            pb::ValidateResponse {
                valid: false,
                tenant: tenant.to_string(),
                error: Some(pb::Error { code: error.code.as_str().to_string(), message: error.message }),
                ..Default::default()
            }
        }
    };
    let mut response = Response::new(reply);
    response.metadata_mut().insert("x-request-id", request_id_value);
    Ok(response)
}

fn to_proto(tenant: &str, v: Validated) -> pb::ValidateResponse {
    pb::ValidateResponse {
        valid: true,
        tenant: tenant.to_string(),
        issuer: v.issuer,
        assertion_id: v.assertion_id,
        response_id: v.response_id,
        unsigned_response_id: v.unsigned_response_id,
        encrypted: v.encrypted,
        subject: Some(pb::Subject {
            name_id: v.subject.name_id,
            format: v.subject.format,
            name_qualifier: v.subject.name_qualifier,
            sp_name_qualifier: v.subject.sp_name_qualifier,
        }),
        claims: Some(pb::Claims {
            email: v.claims.email,
            first_name: v.claims.first_name,
            last_name: v.claims.last_name,
            display_name: v.claims.display_name,
            username: v.claims.username,
            groups: v.claims.groups,
            roles: v.claims.roles,
            object_id: v.claims.object_id,
            idp_tenant_id: v.claims.idp_tenant_id,
            groups_overage: v.claims.groups_overage,
            authn_methods: v.claims.authn_methods,
        }),
        attributes: v.attributes.into_iter().map(|(name, values)| (name, pb::AttributeValues { values })).collect(),
        session: Some(pb::Session {
            index: v.session.index,
            authn_instant: v.session.authn_instant,
            not_on_or_after: v.session.not_on_or_after,
            authn_context: v.session.authn_context,
        }),
        valid_until: v.valid_until,
        signed: Some(pb::SignedParts { response: v.signed.response, assertion: v.signed.assertion }),
        error: None,
    }
}

/// The connection's verified client certificate, put into every request by `tls::incoming`.
fn client_certificate<T>(request: &Request<T>) -> Option<ClientCertificate> {
    request.extensions().get::<Option<ClientCertificate>>().copied().flatten()
}

/// Largest encoded reply: a 256 KB document's attributes cannot exceed this.
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// Connections accepted but not yet taken by their thread, per thread; beyond this the
/// acceptor waits and new connections queue in the kernel's backlog.
const HANDOFF_QUEUE: usize = 256;

/// The running gRPC threads.
pub struct Running {
    threads: Vec<std::thread::JoinHandle<Result<(), String>>>,
    failed: Arc<tokio::sync::Notify>,
}

impl Running {
    /// Notified when any gRPC thread (a serving thread or the acceptor) ends with an error or
    /// panics: the process should stop rather than serve HTTP with gRPC dead or degraded.
    pub fn failed(&self) -> Arc<tokio::sync::Notify> {
        self.failed.clone()
    }

    /// Waits until every thread has stopped (after `shutdown` completed and in-flight calls
    /// finished); the first error wins.
    pub fn join(self) -> Result<(), String> {
        self.threads
            .into_iter()
            .map(|thread| thread.join().unwrap_or_else(|_| Err("a gRPC thread panicked".into())))
            .fold(Ok(()), Result::and)
    }
}

/// Serves gRPC on `listener` with `threads` threads (TLS when `tls` is set) until the future
/// `shutdown()` returns has completed on each of them; in-flight calls finish first.
///
/// Thread per core, like actix's HTTP workers: one acceptor hands connections round-robin to
/// threads that each run a single-threaded runtime, so a connection's HTTP/2 frames, its streams
/// and its validations never change threads. On one shared multi-thread runtime the wake-ups
/// between the connection task and the stream tasks cost a fifth of the gRPC throughput, and a
/// shared listening socket instead of the hand-off gave every connection to whichever thread
/// woke first (measured: all 32 benchmark connections on one of two threads).
pub fn spawn<S, F>(
    frontend: Arc<Frontend>,
    listener: std::net::TcpListener,
    tls: Option<TlsConfig>,
    max_message_bytes: usize,
    threads: usize,
    shutdown: S,
) -> Result<Running, String>
where
    S: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    listener.set_nonblocking(true).map_err(|e| format!("cannot use the gRPC listener: {e}"))?;
    // A TLS listener that cannot load its files must not fall back to plain text: checked
    // before anything is served.
    let acceptor = tls
        .as_ref()
        .map(|tls| tls::acceptor(tls, &[b"h2"], ClientCertificates::Required))
        .transpose()?
        .map(|builder| builder.build());
    let failed = Arc::new(tokio::sync::Notify::new());
    let mut handoff = Vec::new();
    let mut running = Vec::new();
    for index in 0..threads.max(1) {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::net::TcpStream>(HANDOFF_QUEUE);
        handoff.push(tx);
        let (frontend, acceptor, shutdown) = (frontend.clone(), acceptor.clone(), shutdown.clone());
        let alarm = Alarm(Some(failed.clone()));
        let thread = std::thread::Builder::new().name(format!("grpc-{index}")).spawn(move || {
            let result = current_thread_runtime()
                .and_then(|runtime| runtime.block_on(serve(frontend, rx, acceptor, max_message_bytes, shutdown())));
            match &result {
                Ok(()) => alarm.disarm(),
                Err(e) => tracing::error!(thread = index, error = %e, "gRPC thread stopped"),
            }
            result
        });
        running.push(thread.map_err(|e| format!("cannot start a gRPC thread: {e}"))?);
    }
    let alarm = Alarm(Some(failed.clone()));
    let thread = std::thread::Builder::new().name("grpc-accept".into()).spawn(move || {
        let result =
            current_thread_runtime().and_then(|runtime| runtime.block_on(accept(listener, handoff, shutdown())));
        match &result {
            Ok(()) => alarm.disarm(),
            Err(e) => tracing::error!(error = %e, "gRPC stopped accepting connections"),
        }
        result
    });
    running.push(thread.map_err(|e| format!("cannot start the gRPC acceptor: {e}"))?);
    Ok(Running { threads: running, failed })
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

/// Rings `Running::failed` when dropped armed: a gRPC thread that returns an error, or unwinds
/// from a panic, stops the process instead of leaving it half-serving.
struct Alarm(Option<Arc<tokio::sync::Notify>>);

impl Alarm {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        if let Some(failed) = self.0.take() {
            failed.notify_one();
        }
    }
}

/// Accepts until `shutdown`, handing connections to the threads in turn. A thread whose queue
/// is full is passed over for the next one with room (one busy thread must not stall accepts for
/// the others); only when every queue is full does the acceptor wait. A thread that stopped is
/// dropped from the rotation and logged; with none left the acceptor fails. Dropping the
/// hand-off senders at the end lets every thread's connection stream finish.
async fn accept(
    listener: std::net::TcpListener,
    mut handoff: Vec<tokio::sync::mpsc::Sender<std::net::TcpStream>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    use tokio::sync::mpsc::error::TrySendError;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    tracing::info!(addr = ?listener.local_addr().ok(), threads = handoff.len(), "gRPC listening");
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next = 0;
    loop {
        let tcp = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Latency over batching; and dead peers must not hold connections (and descriptors)
        // forever when no HTTP/2 ping gets through either.
        let _ = tcp.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(60));
        let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
        let Ok(mut tcp) = tcp.into_std() else { continue };
        let mut tried = 0;
        loop {
            if handoff.is_empty() {
                // The threads also stop on shutdown, possibly before this one notices it: a
                // shutdown in progress is not a failure.
                let shutting_down =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await;
                if shutting_down {
                    return Ok(());
                }
                return Err("every gRPC thread has stopped".into());
            }
            next %= handoff.len();
            if tried >= handoff.len() {
                // Every queue is full: wait until this thread's has room (or the thread stopped,
                // which the `try_send` below then reports), as a single queue would.
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(()),
                    _ = handoff[next].reserve() => {}
                }
            }
            match handoff[next].try_send(tcp) {
                Ok(()) => break,
                Err(TrySendError::Full(returned)) => {
                    tcp = returned;
                    next += 1;
                    tried += 1;
                }
                Err(TrySendError::Closed(returned)) => {
                    tracing::error!(thread = next, "gRPC thread stopped; serving on the others");
                    handoff.remove(next);
                    tcp = returned;
                    tried = 0;
                }
            }
        }
        next += 1;
    }
}

/// One thread's gRPC server over the connections the acceptor hands it, until `shutdown`.
async fn serve(
    frontend: Arc<Frontend>,
    connections: tokio::sync::mpsc::Receiver<std::net::TcpStream>,
    acceptor: Option<openssl::ssl::SslAcceptor>,
    max_message_bytes: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let registry = frontend.service().registry().clone();
    let ready = registry.is_ready();
    // No tenant at all stays not serving (as before); pending metadata becomes serving.
    let became_ready = (!ready && !registry.is_empty()).then(|| registry.wait_ready());
    let (mut health, health_service) = tonic_health::server::health_reporter();
    let api = SamlValidatorServer::new(Api { frontend, max_message_bytes })
        .max_decoding_message_size(max_message_bytes.saturating_mul(4))
        .max_encoding_message_size(MAX_REPLY_BYTES);
    // Reflection descriptors are generated at build time from our own proto; failing to load
    // them is a build defect, reported as a startup error below.
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    if ready {
        health.set_serving::<SamlValidatorServer<Api>>().await;
        health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    } else {
        health.set_not_serving::<SamlValidatorServer<Api>>().await;
        health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
        // Serving once every tenant has been tried, like /readyz.
        if let Some(became_ready) = became_ready {
            let mut health = health.clone();
            tokio::spawn(async move {
                became_ready.await;
                health.set_serving::<SamlValidatorServer<Api>>().await;
                health.set_service_status("", tonic_health::ServingStatus::Serving).await;
            });
        }
    }
    let mut builder = tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_secs(30))
        // Dead peers must not hold connections (and file descriptors) forever: HTTP/2 pings,
        // unanswered for 10 s, close the connection (TLS or not).
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        // One connection's share, announced in HTTP/2 SETTINGS so the client itself waits (a
        // tower concurrency layer queued calls inside the server instead, and cost ~5 % of the
        // gRPC throughput); admission across connections is `max_concurrent_validations`.
        .max_concurrent_streams(Some(256));
    let mut router = builder.add_service(health_service).add_service(api);
    match (reflection_v1, reflection_v1alpha) {
        (Ok(v1), Ok(v1alpha)) => router = router.add_service(v1).add_service(v1alpha),
        (Err(e), _) | (_, Err(e)) => tracing::error!(error = %e, "gRPC reflection unavailable"),
    }
    let result = match acceptor {
        Some(acceptor) => router.serve_with_incoming_shutdown(tls::incoming(connections, acceptor), shutdown).await,
        None => {
            // A socket the runtime cannot register is dropped, never handed to tonic as an
            // error: tonic ends the whole server on some accept errors.
            let incoming = futures_util::stream::unfold(connections, |mut connections| async move {
                loop {
                    let tcp = connections.recv().await?;
                    match tokio::net::TcpStream::from_std(tcp) {
                        Ok(tcp) => return Some((Ok::<_, std::io::Error>(tcp), connections)),
                        Err(e) => tracing::warn!(error = %e, "gRPC connection dropped"),
                    }
                }
            });
            router.serve_with_incoming_shutdown(incoming, shutdown).await
        }
    };
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::{accept, Alarm};

    /// A thread that ends badly (error or panic) rings; one that ends cleanly does not.
    #[tokio::test(flavor = "current_thread")]
    async fn alarm_rings_unless_disarmed() {
        let failed = std::sync::Arc::new(tokio::sync::Notify::new());
        Alarm(Some(failed.clone())).disarm();
        // A ring stores a permit, which a first poll of `notified` would take at once.
        assert!(futures_util::FutureExt::now_or_never(failed.notified()).is_none(), "a disarmed alarm rang");
        let alarm = Alarm(Some(failed.clone()));
        let panicked = std::thread::spawn(move || {
            let _alarm = alarm;
            panic!("a gRPC thread fails");
        })
        .join();
        assert!(panicked.is_err());
        tokio::time::timeout(Duration::from_secs(10), failed.notified()).await.unwrap();
    }

    /// With every queue full the acceptor waits, and hands the connection over once there is room.
    #[tokio::test(flavor = "current_thread")]
    async fn acceptor_waits_when_every_queue_is_full() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let filler = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        tx.try_send(filler).unwrap();
        let _acceptor = tokio::spawn(accept(listener, vec![tx], std::future::pending()));

        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let waiting = rx.recv().await.unwrap();
        assert_ne!(waiting.local_addr().unwrap(), client.peer_addr().unwrap(), "the filler comes first");
        let handed = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert_eq!(handed.local_addr().unwrap(), client.peer_addr().unwrap());
    }

    /// A thread with a full queue is passed over, a stopped one dropped from the rotation, and
    /// the acceptor fails (so the process stops) once no thread is left.
    #[tokio::test(flavor = "current_thread")]
    async fn acceptor_passes_over_full_and_stopped_threads() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let filler = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();

        let (stopped_tx, stopped_rx) = tokio::sync::mpsc::channel(8);
        drop(stopped_rx);
        let (full_tx, full_rx) = tokio::sync::mpsc::channel(1);
        full_tx.try_send(filler).unwrap();
        let (free_tx, mut free_rx) = tokio::sync::mpsc::channel(8);
        let acceptor = tokio::spawn(accept(listener, vec![stopped_tx, full_tx, free_tx], std::future::pending()));

        let _first = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _second = tokio::net::TcpStream::connect(addr).await.unwrap();
        for _ in 0..2 {
            let handed = tokio::time::timeout(Duration::from_secs(10), free_rx.recv()).await.unwrap();
            assert!(handed.is_some(), "connection not handed to the thread with room");
        }
        assert_eq!(full_rx.len(), 1, "a full queue received a connection");

        drop(full_rx);
        drop(free_rx);
        let _third = tokio::net::TcpStream::connect(addr).await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), acceptor).await.unwrap().unwrap();
        assert_eq!(result, Err("every gRPC thread has stopped".to_string()));
    }
}
