//! Linli (邻里): a WebAssembly plugin host for smart-community services.
//!
//! The layers, bottom first, are in docs/ARCHITECTURE.md; README.md says where to start.
// The lower layers, from linli-core: the compiler keeps them from reaching up.
pub use linli_core::{auth, bindings, capabilities, errors, help, metrics, packages, store, tenancy, usage, util};

pub mod runtime;

pub mod dashboard;
pub mod platform;

pub mod api;
pub mod oidc;
pub mod web;

pub mod cli;
pub mod config;
pub mod setup;

use config::Config;
use metrics::Metrics;
use platform::Platform;
use std::net::SocketAddr;
use std::sync::Arc;
use store::vault;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Oidc(#[from] oidc::OidcError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot use the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
    #[error("configuration: {0}")]
    Config(String),
}

/// A running host.
pub struct Server {
    pub platform: Arc<Platform>,
    pub auth: Arc<auth::Auth>,
    /// What the HTTP handlers share (for embedding the host's routes in another router).
    pub state: api::AppState,
    pub addr: SocketAddr,
    /// The admin token, when this host knows it (empty when only `admin_token_sha256` is
    /// configured).
    pub admin_token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish what is in flight, and return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.platform.shutdown().await;
    }

    /// Serve until the process is asked to stop (Ctrl-C or SIGTERM).
    pub async fn wait_for_signal(self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        #[cfg(unix)]
        let term = async move {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutting down");
        self.stop().await;
    }
}

/// The admin token's SHA-256, and the token itself when the host has it.
fn admin_token(config: &Config) -> Result<([u8; 32], String), StartError> {
    use sha2::Digest;
    let known = |token: String| Ok((sha2::Sha256::digest(token.as_bytes()).into(), token));
    if !config.admin_token.is_empty() {
        return known(config.admin_token.clone());
    }
    if !config.admin_token_sha256.is_empty() {
        let hash = hex::decode(config.admin_token_sha256.trim()).ok().and_then(|h| <[u8; 32]>::try_from(h).ok());
        let hash = hash.ok_or_else(|| StartError::Config("admin_token_sha256 must be 64 hex digits (printf %s TOKEN | sha256sum)".into()))?;
        return Ok((hash, String::new()));
    }
    let path = config.data_dir.join("admin.token");
    let io = |source| StartError::DataDir { path: path.display().to_string(), source };
    if let Ok(token) = std::fs::read_to_string(&path) {
        if !token.trim().is_empty() {
            return known(token.trim().to_string());
        }
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(&path, &token).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    known(token)
}

/// Open the database with the configured master key. A key file with a `.next` beside it
/// is a master-key rotation that stopped between committing the rewrapped data keys and
/// renaming the new key into place: whichever of the two opens the keys is kept.
pub async fn open_store(config: &Config) -> Result<store::Store, StartError> {
    let keys = config.keys()?;
    let file = config.master_key_file();
    let next = vault::sibling(&file, "next");
    let url = config.database_url();
    if !config.master_key.is_empty() || !next.exists() {
        return Ok(store::Store::open(&url, keys).await?);
    }
    match store::Store::open(&url, keys.clone()).await {
        Ok(store) => {
            tracing::warn!(path = %next.display(), "a master-key rotation stopped before it changed anything; its new key is removed");
            std::fs::remove_file(&next).map_err(|source| StartError::DataDir { path: next.display().to_string(), source })?;
            Ok(store)
        }
        Err(store::StoreError::Vault(vault::VaultError::WrongMaster { .. })) => {
            let master = vault::MasterKey::from_file_or_create(&next)?;
            let store = store::Store::open(&url, vault::Keys { master, suite: keys.suite }).await?;
            std::fs::rename(&next, &file).map_err(|source| StartError::DataDir { path: file.display().to_string(), source })?;
            tracing::warn!(path = %file.display(), "finished a master-key rotation that stopped before its new key was in place");
            Ok(store)
        }
        Err(e) => Err(e.into()),
    }
}

/// Open the store, start the engine, activate installations, apply an optional set-up
/// and listen.
pub async fn start(config: Config, setup: Option<setup::Setup>) -> Result<Server, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    let store = open_store(&config).await?;
    let metrics = Arc::new(Metrics::new());
    let runtime = runtime::Runtime::new(config.runtime.clone(), &config.compile_cache_dir(), metrics.clone())?;
    let gateway: Arc<dyn auth::sms::SmsGateway> = Arc::new(auth::sms::LogGateway { outbox: config.data_dir.join("sms-outbox.jsonl") });
    let services =
        platform::Services { devices: config.devices.clone(), events: config.events, tickets: config.tickets, cluster: config.cluster, sms: gateway.clone() };
    let platform = Platform::start(store, runtime, metrics, services).await?;
    let (admin_token_sha256, admin_token) = admin_token(&config)?;
    let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(|source| StartError::Listen { addr: config.listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen.clone(), source })?;
    // The issuer of session tokens: where the host is reached.
    let issuer = config.public_url.as_deref().map(|u| u.trim_end_matches('/').to_string()).unwrap_or_else(|| format!("http://{addr}"));
    let https = issuer.starts_with("https://");
    let auth = Arc::new(auth::Auth::new(platform.store.clone(), issuer, auth::AuthSettings::default(), gateway).await?);
    tokio::spawn(platform::cluster::reload_keys(Arc::downgrade(&auth), config.cluster, platform.devices.stopped()));
    if let Some(path) = &config.tenants_file {
        setup::Setup { tenants_file: Some(path.clone()), ..Default::default() }.apply(&platform, &auth).await?;
    }
    if let Some(setup) = setup {
        setup.apply(&platform, &auth).await?;
    }
    let oidc = Arc::new(oidc::Provider::new(platform.clone(), auth.clone()).await?);
    let rate_limits = Arc::new(api::rate_limit::RateLimits::new(config.limits));
    tokio::spawn(util::every(std::time::Duration::from_secs(60), Arc::downgrade(&rate_limits), platform.devices.stopped(), |limits| async move {
        limits.forget_idle()
    }));
    let state = api::AppState { platform: platform.clone(), auth: auth.clone(), admin_token_sha256, imports: Arc::default(), oidc, rate_limits, https };
    // The peer's address reaches the handlers, for the sign-in rate limits.
    let app = api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = served.await {
            tracing::error!("the HTTP server stopped: {e}");
        }
    });
    tracing::info!(%addr, backend = ?platform.store.backend, "linli is serving");
    Ok(Server { platform, auth, state, addr, admin_token, shutdown: Some(tx), task })
}

/// Every request builds and drops a store, an instance and its buffers; mimalloc's
/// thread-local free lists make that churn much cheaper than glibc's malloc (see
/// bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
