//! Starting, naming and stopping everything `serve` runs (ARCHITECTURE.md, "Threads and
//! runtimes"): the background work of the tenants (metadata refresh, configuration reload,
//! `tenants_dir` watch), the gRPC threads and the HTTP listeners, wired once at construction
//! with one metrics registry. HTTP and gRPC stop together: on SIGTERM, and when either fails.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::ops::metrics::Metrics;
use crate::ops::{monotonic, wall_clock};
use crate::service::Service;
use crate::tenants::reload::Reloader;
use crate::transport::frontend::Frontend;
use crate::transport::{admin, grpc, http};

/// Why `serve` could not start or stopped badly.
#[derive(Debug)]
pub enum SupervisorError {
    /// The replay store's client or thread could not be created.
    ReplayStore(crate::state::StoreError),
    /// A background thread (named) could not be started.
    Thread { name: &'static str, error: std::io::Error },
    /// A listener could not be bound.
    Bind { what: &'static str, addr: String, error: std::io::Error },
    /// The gRPC threads could not start, or one of them failed.
    Grpc(grpc::GrpcError),
    /// An HTTP listener failed.
    Http(std::io::Error),
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorError::ReplayStore(e) => write!(f, "{e}"),
            SupervisorError::Thread { name, error } => write!(f, "cannot start {name}: {error}"),
            SupervisorError::Bind { what, addr, error } => write!(f, "cannot bind {what} {addr}: {error}"),
            SupervisorError::Grpc(e) => write!(f, "gRPC server error: {e}"),
            SupervisorError::Http(e) => write!(f, "server error: {e}"),
        }
    }
}

impl std::error::Error for SupervisorError {}

/// Runs the service on `config` until SIGTERM (or a listener fails). `path` is the main
/// configuration file, watched for reloads; `None` serves `config` as it is.
pub fn serve(config: &Config, path: Option<&Path>) -> Result<(), SupervisorError> {
    let metrics = Arc::new(Metrics::with_settings(&config.metrics));
    let service = Arc::new(Service::try_new(config, metrics).map_err(SupervisorError::ReplayStore)?);
    service.warn_expiring_certificates(wall_clock());
    start_refresh_loop(&service)?;
    if let Some(path) = path {
        start_reload(&service, config, path)?;
    }
    let frontend = Arc::new(
        Frontend::new(service, config).map_err(|error| SupervisorError::Thread { name: "the XML workers", error })?,
    );
    // Bind every listener before serving anything, so a taken port fails start-up loudly.
    let grpc_listener = match &config.server.grpc_addr {
        None => None,
        Some(addr) => Some(std::net::TcpListener::bind(addr).map_err(|error| SupervisorError::Bind {
            what: "grpc_addr",
            addr: addr.clone(),
            error,
        })?),
    };
    // gRPC stops on SIGTERM like HTTP, and when HTTP stops for any other reason.
    let (stop_grpc, grpc_stopped) = tokio::sync::watch::channel(false);
    let grpc = match grpc_listener {
        None => None,
        Some(listener) => Some(start_grpc(&frontend, config, listener, grpc_stopped)?),
    };
    let result = serve_http(frontend, config, grpc.as_ref());
    // HTTP has drained (SIGTERM) or failed: stop gRPC too and wait for its in-flight calls.
    let _ = stop_grpc.send(true);
    let grpc_result = grpc.map(grpc::Running::join);
    result.map_err(SupervisorError::Http)?;
    grpc_result.unwrap_or(Ok(())).map_err(SupervisorError::Grpc)
}

/// The metadata refresh schedule (a round at once: `metadata_url` tenants are `pending`, and
/// /readyz not ready, until it has tried them all) and hourly certificate-expiry warnings.
fn start_refresh_loop(service: &Arc<Service>) -> Result<(), SupervisorError> {
    let service = service.clone();
    let spawned = std::thread::Builder::new().name("metadata-refresh".into()).spawn(move || {
        let mut last_warning = monotonic();
        loop {
            service.start_due_refreshes(wall_clock());
            service.registry().wait_for_refresh_work(Duration::from_secs(1));
            if last_warning.elapsed() >= Duration::from_secs(3600) {
                service.warn_expiring_certificates(wall_clock());
                last_warning = monotonic();
            }
        }
    });
    spawned.map(drop).map_err(|error| SupervisorError::Thread { name: "metadata refresh", error })
}

/// Reload of the main file (SIGHUP and polling) and the `tenants_dir` watch.
fn start_reload(service: &Arc<Service>, config: &Config, path: &Path) -> Result<(), SupervisorError> {
    let registry = service.registry().clone();
    let reloader = Arc::new(Reloader::new(path.to_path_buf(), registry.clone(), service.metrics().clone(), config));
    let poll = Duration::from_secs(config.server.config_poll_seconds);
    reloader.spawn(poll).map_err(|error| SupervisorError::Thread { name: "configuration reload", error })?;
    crate::tenants::watch::spawn(registry, poll)
        .map_err(|error| SupervisorError::Thread { name: "the tenants_dir watch", error })
}

fn start_grpc(
    frontend: &Arc<Frontend>,
    config: &Config,
    listener: std::net::TcpListener,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<grpc::Running, SupervisorError> {
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            tokio::select! {
                () = termination() => {}
                _ = stopped.changed() => {}
            }
        }
    };
    let workers = if config.server.workers > 0 { config.server.workers } else { crate::transport::cores() };
    grpc::spawn(frontend.clone(), listener, config.server.tls.clone(), config.server.max_body_bytes, workers, shutdown)
        .map_err(SupervisorError::Grpc)
}

/// Serves HTTP (and the separate metrics and admin listeners, when configured) until SIGTERM, or until a
/// gRPC thread fails: HTTP still serving and ready would hide that failure from the
/// orchestrator, so every listener stops and the process exits with an error instead.
fn serve_http(frontend: Arc<Frontend>, config: &Config, grpc: Option<&grpc::Running>) -> std::io::Result<()> {
    let state = Arc::new(http::State::new(frontend, config));
    let failed = grpc.map(grpc::Running::failed);
    actix_web::rt::System::new().block_on(async {
        let (server, addrs) =
            http::bind(state.clone(), &config.server.http_addr, config.server.workers, config.server.tls.as_ref())?;
        tracing::info!(addrs = ?addrs, tenants = config.tenants.len(), "listening");
        let stop_when_grpc_fails = |handles: Vec<actix_web::dev::ServerHandle>| {
            if let Some(failed) = failed.clone() {
                actix_web::rt::spawn(async move {
                    failed.notified().await;
                    // Every stop is sent when `stop` is called; then wait for all of them.
                    let stopping: Vec<_> = handles.iter().map(|handle| handle.stop(true)).collect();
                    for stopped in stopping {
                        stopped.await;
                    }
                });
            }
        };
        let mut servers = vec![server];
        if let Some(metrics_addr) = &config.server.metrics_addr {
            let (metrics_server, metrics_addrs) =
                http::bind_metrics(state.clone(), metrics_addr, config.server.tls.as_ref())?;
            tracing::info!(addrs = ?metrics_addrs, "metrics listening");
            servers.push(metrics_server);
        }
        if let Some(settings) = &config.admin {
            let admin_state = Arc::new(admin::AdminState::new(state.frontend().clone(), config, settings));
            let (admin_server, admin_addrs) = admin::bind(admin_state, &settings.addr, config.server.tls.as_ref())?;
            tracing::info!(addrs = ?admin_addrs, "admin page listening");
            servers.push(admin_server);
        }
        stop_when_grpc_fails(servers.iter().map(actix_web::dev::Server::handle).collect());
        futures_util::future::join_all(servers).await.into_iter().collect::<std::io::Result<()>>()
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn termination() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
