//! The gRPC server: one acceptor thread handing connections to one single-threaded runtime per
//! core (the API it serves is `super::Api`).

use std::future::Future;
use std::sync::Arc;

use super::api::Api;
use super::pb::{self, saml_validator_server::SamlValidatorServer};
use crate::transport::frontend::Frontend;
use crate::transport::tls::{self, ClientCertificates, TlsConfig};

/// Largest encoded reply: a 256 KB document's attributes cannot exceed this.
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// Connections accepted but not yet taken by their thread, per thread; beyond this the
/// acceptor waits and new connections queue in the kernel's backlog.
const HANDOFF_QUEUE: usize = 256;

/// Why gRPC could not start, or stopped.
#[derive(Debug)]
pub enum GrpcError {
    /// The listener, a runtime or a thread could not be set up (`what` says which).
    Setup { what: &'static str, error: std::io::Error },
    /// The TLS material could not be turned into an acceptor.
    Tls(String),
    /// A serving thread's server failed.
    Serve(tonic::transport::Error),
    /// A thread panicked.
    Panicked,
    /// The acceptor has no thread left to hand connections to.
    NoThreadLeft,
}

impl std::fmt::Display for GrpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrpcError::Setup { what, error } => write!(f, "cannot start {what}: {error}"),
            GrpcError::Tls(e) => write!(f, "TLS: {e}"),
            GrpcError::Serve(e) => write!(f, "{e}"),
            GrpcError::Panicked => f.write_str("a gRPC thread panicked"),
            GrpcError::NoThreadLeft => f.write_str("every gRPC thread has stopped"),
        }
    }
}

impl std::error::Error for GrpcError {}

fn setup(what: &'static str) -> impl FnOnce(std::io::Error) -> GrpcError {
    move |error| GrpcError::Setup { what, error }
}

/// The running gRPC threads.
pub struct Running {
    threads: Vec<std::thread::JoinHandle<Result<(), GrpcError>>>,
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
    pub fn join(self) -> Result<(), GrpcError> {
        self.threads
            .into_iter()
            .map(|thread| thread.join().unwrap_or(Err(GrpcError::Panicked)))
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
) -> Result<Running, GrpcError>
where
    S: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    listener.set_nonblocking(true).map_err(setup("the gRPC listener"))?;
    // A TLS listener that cannot load its files must not fall back to plain text: checked
    // before anything is served.
    let acceptor = tls
        .as_ref()
        .map(|tls| tls::acceptor(tls, &[b"h2"], ClientCertificates::Required))
        .transpose()
        .map_err(GrpcError::Tls)?
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
        running.push(thread.map_err(setup("a gRPC thread"))?);
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
    running.push(thread.map_err(setup("the gRPC acceptor"))?);
    Ok(Running { threads: running, failed })
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime, GrpcError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(setup("a gRPC runtime"))
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
) -> Result<(), GrpcError> {
    use tokio::sync::mpsc::error::TrySendError;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(setup("the gRPC listener"))?;
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
                return Err(GrpcError::NoThreadLeft);
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
) -> Result<(), GrpcError> {
    let ready = frontend.service().is_ready();
    // No tenant at all stays not serving (as before); pending metadata becomes serving.
    let became_ready = frontend.service().became_ready();
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
    result.map_err(GrpcError::Serve)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{accept, Alarm, GrpcError};

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
        assert!(matches!(result, Err(GrpcError::NoThreadLeft)), "{result:?}");
    }
}
