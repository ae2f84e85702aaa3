//! One request = one fresh instance of an installation's pre-linked component.
use super::bindings::linli::platform::http_types;
use super::bindings::{subscriber, PluginPre};
use super::{InstanceState, Runtime};
use crate::capabilities::identity::RequestUser;
use crate::capabilities::{Configured, Deadline, RequestContext};
use crate::metrics::RouteMetrics;
use crate::packages::Manifest;
use crate::tenancy::Installation;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtx;

/// What a plugin printed to stderr (a Rust panic message, say) is kept up to this many
/// bytes and logged with the error id when the request fails.
const STDERR_CAPTURE: usize = 16 << 10;

/// An installation ready to serve: its component linked once, its capabilities
/// configured once, its concurrency quota.
pub struct LoadedPlugin {
    pub installation: Installation,
    pub manifest: Arc<Manifest>,
    /// Static UI assets from the package, by path.
    pub assets: BTreeMap<String, bytes::Bytes>,
    pub metrics: RouteMetrics,
    pre: PluginPre<InstanceState>,
    /// The component's `on-event` export, if it has one.
    event_handler: Option<subscriber::exports::linli::platform::event_handler::GuestIndices>,
    configured: Configured,
    quota: Semaphore,
    plugin_id: Arc<str>,
}

impl LoadedPlugin {
    pub fn new(
        installation: Installation,
        manifest: Arc<Manifest>,
        assets: BTreeMap<String, bytes::Bytes>,
        pre: PluginPre<InstanceState>,
        configured: Configured,
        metrics: RouteMetrics,
    ) -> Self {
        let quota = Semaphore::new(installation.limits.max_concurrency as usize);
        let plugin_id = Arc::from(installation.plugin_id.as_str());
        let event_handler = subscriber::exports::linli::platform::event_handler::GuestIndices::new(pre.instance_pre()).ok();
        Self { installation, manifest, assets, metrics, pre, event_handler, configured, quota, plugin_id }
    }

    /// Whether the component exports `on-event`.
    pub fn handles_events(&self) -> bool {
        self.event_handler.is_some()
    }
}

pub struct PluginRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The tenant node the request is for (may be below the installation's node).
    pub tenant: String,
    pub request_id: String,
    /// The signed-in user, if any.
    pub user: Option<Arc<RequestUser>>,
}

pub struct PluginResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the plugin is at its limit of {0} concurrent requests; retry shortly")]
    Busy(u32),
    #[error("the plugin did not answer within its {deadline_ms} ms deadline (error id {error_id})")]
    Timeout { error_id: String, deadline_ms: u64 },
    #[error("the plugin exceeded its memory limit of {memory_mib} MiB (error id {error_id})")]
    MemoryLimit { error_id: String, memory_mib: u64 },
    #[error("the plugin failed (error id {error_id})")]
    Trap { error_id: String },
    #[error("the host could not run the plugin (error id {error_id})")]
    Host { error_id: String },
}

impl InvokeError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Busy(_) => "busy",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory",
            Self::Trap { .. } => "trap",
            Self::Host { .. } => "host",
        }
    }
}

/// Enforces the installation's memory limit and remembers that it did, so the failure is
/// reported as what it is rather than as an anonymous trap.
pub(super) struct MemoryLimiter {
    max_bytes: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Err(wasmtime::format_err!("memory limit of {} bytes reached", self.max_bytes));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

fn error_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

impl Runtime {
    /// A store for one call into `plugin`, with the capabilities prepared for `context`
    /// and the epoch deadline armed.
    fn store_for(&self, plugin: &LoadedPlugin, tenant: &str, request_id: &str, user: Option<Arc<RequestUser>>) -> (Store<InstanceState>, MemoryOutputPipe, Instant) {
        let limits = plugin.installation.limits;
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let started = Instant::now();
        let state = InstanceState {
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { max_bytes: usize::try_from(limits.memory_mib << 20).unwrap_or(usize::MAX), hit: false },
            caps: plugin.configured.prepare(
                plugin.plugin_id.clone(),
                RequestContext {
                    tenant_id: Arc::from(tenant),
                    request_id: request_id.to_string(),
                    user,
                    deadline: Deadline(started + Duration::from_millis(limits.deadline_ms)),
                },
            ),
        };
        let deadline = Duration::from_millis(limits.deadline_ms);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| Ok(if started.elapsed() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) }));
        (store, stderr, started)
    }

    /// Run one request in a fresh instance. The guest runs on this task as a fiber and
    /// yields at every epoch tick, so a busy plugin never holds a worker thread for longer
    /// than a tick; past its deadline it is interrupted. Host calls carry the same
    /// deadline (see `capabilities::Deadline`). Its quota bounds how many run at once.
    pub async fn invoke(&self, plugin: Arc<LoadedPlugin>, request: PluginRequest) -> Result<PluginResponse, InvokeError> {
        let _permit = plugin.quota.try_acquire().map_err(|_| InvokeError::Busy(plugin.installation.limits.max_concurrency))?;
        let (mut store, stderr, started) = self.store_for(&plugin, &request.tenant, &request.request_id, request.user.clone());
        let wit_request = http_types::Request { method: request.method, path: request.path, query: request.query, headers: request.headers, body: request.body };
        self.metrics.live_instances.inc();
        let _live = scopeguard(|| self.metrics.live_instances.dec());
        let run = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance.linli_platform_handler().call_handle(&mut store, &wit_request).await
        };
        // Guest code is interrupted by the epoch callback above; host calls bound their own
        // waiting by the same deadline. No timer is needed for the common, quick request.
        let outcome = run.await;
        match outcome {
            Ok(response) => {
                log_dropped(&plugin, &store, &request.request_id);
                Ok(PluginResponse { status: response.status, headers: response.headers, body: response.body })
            }
            Err(error) => Err(classify(&plugin, &store, &stderr, started, &request.request_id, error)),
        }
    }

    /// Deliver one platform event to the plugin's `on-event`. Waits for a slot of the
    /// installation's quota (events are not urgent enough to be refused). A plugin without
    /// the export, or whose handler answers an error, fails the delivery (it is retried).
    pub async fn invoke_event(&self, plugin: Arc<LoadedPlugin>, event: &crate::capabilities::events::Event) -> Result<(), EventError> {
        let handler = plugin.event_handler.as_ref().ok_or(EventError::NoHandler)?;
        let _permit = plugin.quota.acquire().await.map_err(|_| EventError::NoHandler)?;
        let request_id = format!("event-{}", event.seq);
        let (mut store, stderr, started) = self.store_for(&plugin, &event.tenant_id, &request_id, None);
        let wit_event = subscriber::exports::linli::platform::event_handler::Event {
            seq: u64::try_from(event.seq).unwrap_or_default(),
            kind: event.kind.clone(),
            tenant: event.tenant_id.clone(),
            subject: event.subject.clone(),
            payload: event.payload.clone(),
            at: u64::try_from(event.at).unwrap_or_default(),
        };
        self.metrics.live_instances.inc();
        let _live = scopeguard(|| self.metrics.live_instances.dec());
        let run = async {
            let instance = plugin.pre.instance_pre().instantiate_async(&mut store).await?;
            let guest = handler.load(&mut store, &instance)?;
            guest.call_on_event(&mut store, &wit_event).await
        };
        match run.await {
            Ok(Ok(())) => {
                log_dropped(&plugin, &store, &request_id);
                Ok(())
            }
            Ok(Err(e)) => Err(EventError::Refused(format!("{:?}: {}", e.code, e.message))),
            Err(error) => Err(EventError::Invoke(classify(&plugin, &store, &stderr, started, &request_id, error))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the plugin does not export `linli:platform/event-handler`; rebuild it with a current SDK")]
    NoHandler,
    #[error("the plugin's on-event answered an error: {0}")]
    Refused(String),
    #[error(transparent)]
    Invoke(InvokeError),
}

fn log_dropped(plugin: &LoadedPlugin, store: &Store<InstanceState>, request_id: &str) {
    let dropped = store.data().caps.log.dropped();
    if dropped > 0 {
        tracing::warn!(plugin = %plugin.installation.plugin_id, request = request_id, dropped, "plugin log lines dropped");
    }
}

/// Tell the operator what went wrong in a failed call, with an id to find the log line by.
fn classify(plugin: &LoadedPlugin, store: &Store<InstanceState>, stderr: &MemoryOutputPipe, started: Instant, request_id: &str, error: wasmtime::Error) -> InvokeError {
    log_dropped(plugin, store, request_id);
    let limits = plugin.installation.limits;
    let error_id = error_id();
    let captured = String::from_utf8_lossy(&stderr.contents()).into_owned();
    let (plugin_id, tenant) = (&plugin.installation.plugin_id, &plugin.installation.tenant_id);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if store.data().limiter.hit {
        tracing::warn!(error_id, plugin = %plugin_id, tenant = %tenant, request = request_id, "memory limit reached: {error:#}; stderr: {captured}");
        return InvokeError::MemoryLimit { error_id, memory_mib: limits.memory_mib };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            tracing::warn!(error_id, plugin = %plugin_id, tenant = %tenant, request = request_id, elapsed_ms, "deadline reached");
            InvokeError::Timeout { error_id, deadline_ms: limits.deadline_ms }
        }
        Some(_) => {
            tracing::error!(error_id, plugin = %plugin_id, tenant = %tenant, request = request_id, "plugin trapped: {error:?}; stderr: {captured}");
            InvokeError::Trap { error_id }
        }
        None => {
            tracing::error!(error_id, plugin = %plugin_id, tenant = %tenant, request = request_id, "instantiation or call failed: {error:?}; stderr: {captured}");
            InvokeError::Host { error_id }
        }
    }
}

/// Runs `f` when dropped, also on unwinding.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

