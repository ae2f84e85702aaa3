//! One request = one fresh instance of an installation's pre-linked component, unless the
//! installation lets an instance serve several requests of one caller (`requests_per_instance`).
use super::{InstanceState, Runtime};
use crate::bindings::linli::platform::http_types;
use crate::bindings::{subscriber, HttpPlugin, PluginPre};
use crate::capabilities::identity::RequestUser;
use crate::capabilities::{Configured, Deadline, RequestContext};
use crate::metrics::RouteMetrics;
use crate::packages::Manifest;
use crate::tenancy::Installation;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::InstancePre;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::WasiHttpCtx;

mod wasi_http;

/// What a plugin printed to stderr (a Rust panic message, say) is kept up to this many
/// bytes and logged with the error id when the request fails.
const STDERR_CAPTURE: usize = 16 << 10;

/// A component linked once, by the export it serves its routes with.
pub enum Entry {
    /// `linli:platform/handler`: the whole request in, the whole response out.
    Linli(PluginPre<InstanceState>),
    /// The standard `wasi:http/incoming-handler@0.2.x` (components built for Spin or
    /// `wasmtime serve`): bodies as streams. Always a fresh instance per request.
    WasiHttp(ProxyPre<InstanceState>),
}

impl Entry {
    fn instance_pre(&self) -> &InstancePre<InstanceState> {
        match self {
            Self::Linli(pre) => pre.instance_pre(),
            Self::WasiHttp(pre) => pre.instance_pre(),
        }
    }
}

/// An installation ready to serve: its component linked once, its capabilities
/// configured once, its concurrency quota.
pub struct LoadedPlugin {
    pub installation: Installation,
    pub manifest: Arc<Manifest>,
    /// Static UI assets from the package, by path.
    pub assets: BTreeMap<String, bytes::Bytes>,
    pub metrics: RouteMetrics,
    entry: Entry,
    /// The component's `on-event` export, if it has one.
    event_handler: Option<subscriber::exports::linli::platform::event_handler::GuestIndices>,
    configured: Configured,
    quota: Semaphore,
    plugin_id: Arc<str>,
    /// Instances parked between requests (only when `requests_per_instance` > 1).
    parked: Mutex<Vec<Parked>>,
}

/// Whom an instance may serve again: the same tenant and the same signed-in account (or
/// anonymous visitors), so that what one caller's request leaves in the plugin's memory is
/// never seen by another caller.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Caller {
    tenant: String,
    account: Option<String>,
}

impl Caller {
    fn of(request: &PluginRequest) -> Self {
        Self { tenant: request.tenant.clone(), account: request.user.as_ref().map(|u| u.account_id.clone()) }
    }
}

/// An instance that served a request and may serve its caller again.
struct WarmInstance {
    caller: Caller,
    store: Store<InstanceState>,
    instance: HttpPlugin,
    stderr: MemoryOutputPipe,
    served: u32,
}

/// A parked instance holds one of the host's idle places until it is taken or dropped.
struct Parked {
    warm: WarmInstance,
    since: Instant,
    _place: IdlePlace,
}

struct IdlePlace(Arc<AtomicU32>);

impl IdlePlace {
    fn take(idle: &Arc<AtomicU32>, max: u32) -> Option<Self> {
        idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(idle.clone()))
    }
}

impl Drop for IdlePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A parked instance unused for this long is dropped (it holds a slot of the pool).
const IDLE_FOR_AT_MOST: Duration = Duration::from_secs(30);
/// Callers with a parked instance per installation; the longest-parked one makes room.
const PARKED_PER_INSTALLATION: usize = 16;

/// Takes out the instances parked for longer than `IDLE_FOR_AT_MOST`, for the caller to
/// drop once it has released the lock.
fn expire(parked: &mut Vec<Parked>) -> Vec<Parked> {
    parked.extract_if(.., |p| p.since.elapsed() >= IDLE_FOR_AT_MOST).collect()
}

impl LoadedPlugin {
    pub fn new(
        installation: Installation,
        manifest: Arc<Manifest>,
        assets: BTreeMap<String, bytes::Bytes>,
        entry: Entry,
        configured: Configured,
        metrics: RouteMetrics,
    ) -> Self {
        let quota = Semaphore::new(installation.limits.max_concurrency as usize);
        let plugin_id = Arc::from(installation.plugin_id.as_str());
        let event_handler = subscriber::exports::linli::platform::event_handler::GuestIndices::new(entry.instance_pre()).ok();
        Self { installation, manifest, assets, metrics, entry, event_handler, configured, quota, plugin_id, parked: Mutex::new(Vec::new()) }
    }

    /// wasi:http components always get a fresh instance: their requests and responses are
    /// resources of the store that served them.
    fn reuses_instances(&self) -> bool {
        self.installation.limits.requests_per_instance > 1 && matches!(self.entry, Entry::Linli(_))
    }

    /// The most recently parked instance for `caller`, if any. Instances dropped on the way
    /// are dropped after the lock is released (resetting their memory takes microseconds).
    fn take_parked(&self, caller: &Caller) -> Option<WarmInstance> {
        let (found, _expired) = {
            let mut parked = self.parked.lock().ok()?;
            let expired = expire(&mut parked);
            let found = parked.iter().rposition(|p| p.warm.caller == *caller).map(|index| parked.remove(index).warm);
            (found, expired)
        };
        found
    }

    fn park(&self, warm: WarmInstance, idle: &Arc<AtomicU32>, max_idle: u32) {
        let Ok(mut parked) = self.parked.lock() else { return };
        let mut dropped = expire(&mut parked);
        if parked.len() >= PARKED_PER_INSTALLATION {
            dropped.push(parked.remove(0));
        }
        if let Some(place) = IdlePlace::take(idle, max_idle) {
            parked.push(Parked { warm, since: Instant::now(), _place: place });
        }
        drop(parked);
        drop(dropped);
    }

    /// Whether the component exports `on-event`.
    pub fn handles_events(&self) -> bool {
        self.event_handler.is_some()
    }
}

/// The header that tells the guest the tenant node a request is for.
pub const TENANT_HEADER: &str = "x-linli-tenant";
/// The header that carries the request's id into the guest (for its logs).
pub const REQUEST_ID_HEADER: &str = "x-linli-request-id";

pub struct PluginRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The headers passed on; `invoke` sets `x-linli-tenant` and `x-linli-request-id` from
    /// the fields below, whoever made the request (HTTP, a set-up file, a dashboard).
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

fn caps_for(plugin: &LoadedPlugin, tenant: &str, request_id: &str, user: Option<Arc<RequestUser>>, started: Instant) -> crate::capabilities::InstanceCaps {
    let deadline = Deadline(started + Duration::from_millis(plugin.installation.limits.deadline_ms));
    plugin.configured.prepare(&RequestContext {
        plugin_id: plugin.plugin_id.clone(),
        tenant_id: Arc::from(tenant),
        request_id: request_id.to_string(),
        user,
        deadline,
    })
}

/// Past the deadline the guest is interrupted; until then it yields at every epoch tick.
fn arm_deadline(store: &mut Store<InstanceState>, started: Instant, deadline_ms: u64) {
    let deadline = Duration::from_millis(deadline_ms);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| Ok(if started.elapsed() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) }));
}

impl Runtime {
    /// A store for one call into `plugin`, with the capabilities prepared for `context`
    /// and the epoch deadline armed.
    fn store_for(
        &self,
        plugin: &LoadedPlugin,
        tenant: &str,
        request_id: &str,
        user: Option<Arc<RequestUser>>,
    ) -> (Store<InstanceState>, MemoryOutputPipe, Instant) {
        let limits = plugin.installation.limits;
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let started = Instant::now();
        let state = InstanceState {
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { max_bytes: usize::try_from(limits.memory_mib << 20).unwrap_or(usize::MAX), hit: false },
            caps: caps_for(plugin, tenant, request_id, user, started),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        arm_deadline(&mut store, started, limits.deadline_ms);
        (store, stderr, started)
    }

    /// A parked instance made ready for its caller's next request: this request's
    /// capabilities and deadline.
    fn rearm(plugin: &LoadedPlugin, warm: &mut WarmInstance, request: &PluginRequest) -> Instant {
        let started = Instant::now();
        let state = warm.store.data_mut();
        state.caps = caps_for(plugin, &request.tenant, &request.request_id, request.user.clone(), started);
        state.limiter.hit = false;
        arm_deadline(&mut warm.store, started, plugin.installation.limits.deadline_ms);
        started
    }

    /// Run one request in a fresh instance. The guest runs on this task as a fiber and
    /// yields at every epoch tick, so a busy plugin never holds a worker thread for longer
    /// than a tick; past its deadline it is interrupted. Host calls carry the same
    /// deadline (see `capabilities::Deadline`). Its quota bounds how many run at once.
    ///
    /// An installation with `requests_per_instance` above 1 parks the instance after a
    /// successful request and gives it to the same caller's next one; an instance that
    /// failed in any way is never reused.
    pub async fn invoke(&self, plugin: Arc<LoadedPlugin>, mut request: PluginRequest) -> Result<PluginResponse, InvokeError> {
        request.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(TENANT_HEADER) && !name.eq_ignore_ascii_case(REQUEST_ID_HEADER));
        request.headers.push((TENANT_HEADER.into(), request.tenant.clone()));
        request.headers.push((REQUEST_ID_HEADER.into(), request.request_id.clone()));
        let _permit = plugin.quota.try_acquire().map_err(|_| InvokeError::Busy(plugin.installation.limits.max_concurrency))?;
        let pre = match &plugin.entry {
            Entry::Linli(pre) => pre,
            Entry::WasiHttp(_) => return self.invoke_wasi_http(plugin.clone(), request).await,
        };
        let caller = plugin.reuses_instances().then(|| Caller::of(&request));
        let (mut store, stderr, started, warm_instance, served) = match caller.as_ref().and_then(|c| plugin.take_parked(c)) {
            Some(mut warm) => {
                let started = Self::rearm(&plugin, &mut warm, &request);
                (warm.store, warm.stderr, started, Some(warm.instance), warm.served)
            }
            None => {
                let (store, stderr, started) = self.store_for(&plugin, &request.tenant, &request.request_id, request.user.clone());
                (store, stderr, started, None, 0)
            }
        };
        let request_id = request.request_id;
        let wit_request =
            http_types::Request { method: request.method, path: request.path, query: request.query, headers: request.headers, body: request.body };
        self.metrics.live_instances.inc();
        let _live = scopeguard(|| self.metrics.live_instances.dec());
        let run = async {
            let instance = match warm_instance {
                Some(instance) => instance,
                None => pre.instantiate_async(&mut store).await?,
            };
            let response = instance.linli_platform_handler().call_handle(&mut store, &wit_request).await?;
            Ok::<_, wasmtime::Error>((instance, response))
        };
        // Guest code is interrupted by the epoch callback above; host calls bound their own
        // waiting by the same deadline. No timer is needed for the common, quick request.
        match run.await {
            Ok((instance, response)) => {
                log_dropped(&plugin, &store, &request_id);
                let served = served + 1;
                // A full stderr capture would make the guest's next write fail.
                if let Some(caller) =
                    caller.filter(|_| served < plugin.installation.limits.requests_per_instance && stderr.contents().len() < STDERR_CAPTURE / 2)
                {
                    plugin.park(WarmInstance { caller, store, instance, stderr, served }, &self.idle_instances, self.config.max_idle_instances);
                }
                Ok(PluginResponse { status: response.status, headers: response.headers, body: response.body })
            }
            Err(error) => Err(classify(&plugin, &store, &stderr, started, &request_id, error)),
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
            let instance = plugin.entry.instance_pre().instantiate_async(&mut store).await?;
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
fn classify(
    plugin: &LoadedPlugin,
    store: &Store<InstanceState>,
    stderr: &MemoryOutputPipe,
    started: Instant,
    request_id: &str,
    error: wasmtime::Error,
) -> InvokeError {
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
