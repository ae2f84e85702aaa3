//! The wasmtime engine: pooling allocator, epoch deadlines, memory limits, a compiled
//! component cache, one pre-instantiated component per installation and a fresh
//! instance per request.
use crate::bindings;
mod cache;
mod invoke;

pub use invoke::{Entry, InvokeError, LoadedPlugin, PluginRequest, PluginResponse, REQUEST_ID_HEADER, TENANT_HEADER};

use crate::capabilities::{self, HasCapabilities, InstanceCaps};
use crate::metrics::Metrics;
use crate::packages::Manifest;
use bindings::PluginPre;
use cache::{ComponentCache, Lookup};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The two exports a component may serve its routes with.
const LINLI_HANDLER: &str = "linli:platform/handler@";
const WASI_HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2.";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Per-request deadline unless the installation sets its own.
    pub default_deadline_ms: u64,
    /// Per-instance memory limit unless the installation sets its own.
    pub default_memory_mib: u64,
    /// The largest memory limit an installation may be given (sizes the pool's slots).
    pub max_memory_mib: u64,
    /// Concurrent instances per installation unless it sets its own; beyond it, 503.
    pub default_max_concurrency: u32,
    /// Concurrent instances in the whole host (the pooling allocator's size).
    pub max_instances: u32,
    /// How often the epoch advances; deadlines are accurate to about this.
    pub epoch_tick_ms: u64,
    /// Idle instances kept across the host for installations that reuse them
    /// (`requests_per_instance` above 1); each holds a slot of the pool.
    pub max_idle_instances: u32,
}

/// The most requests an installation may let one instance serve.
pub const MAX_REQUESTS_PER_INSTANCE: u32 = 10_000;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            default_deadline_ms: 2_000,
            default_memory_mib: 64,
            max_memory_mib: 512,
            default_max_concurrency: 32,
            max_instances: 1_000,
            epoch_tick_ms: 10,
            max_idle_instances: 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the wasm file is a core module, not a component; build it with `cargo build --target wasm32-wasip2` (or `linli plugin build`)")]
    CoreModule,
    #[error("the file is not WebAssembly")]
    NotWasm,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("the component imports `{import}`, but linli.toml does not request the `{capability}` capability")]
    UndeclaredImport { import: String, capability: &'static str },
    #[error("the component imports `{0}`, which this host does not provide")]
    UnknownImport(String),
    #[error("the component exports neither `linli:platform/handler` nor `wasi:http/incoming-handler@0.2`, or not as this host knows them: {0}")]
    Link(String),
    #[error("the wasm engine could not start: {0}")]
    Engine(String),
    #[error("cannot use the compile cache at {path}: {source}")]
    Cache { path: String, source: std::io::Error },
}

/// What a store holds for one request: WASI (no files, no network, no environment; stderr
/// captured for error reports), wasi:http (outbound requests only where the `http`
/// capability allows), the memory limiter and each capability's state.
pub struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: invoke::MemoryLimiter,
    pub caps: InstanceCaps,
}

impl HasCapabilities for InstanceState {
    fn capabilities(&mut self) -> &mut InstanceCaps {
        &mut self.caps
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    /// Every request goes through the `http` capability's hooks, which refuse what the
    /// installation was not granted.
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.caps.http }
    }
}

/// The rule `compile` applies, on a component's import names: the CLI checks a component
/// it built with the same rule before packing it.
pub fn check_import_names(imports: &[String], manifest: &Manifest) -> Result<(), RuntimeError> {
    for name in imports {
        if !name.starts_with("linli:") && !name.starts_with("wasi:http/outgoing-handler") {
            continue;
        }
        let unversioned = name.split('@').next().unwrap_or(name);
        if capabilities::TYPE_ONLY_INTERFACES.contains(&unversioned) {
            continue;
        }
        match capabilities::for_import(name) {
            Some(cap) if cap.always_granted || manifest.requests(cap.name) => {}
            Some(cap) => return Err(RuntimeError::UndeclaredImport { import: name.to_string(), capability: cap.name }),
            None => return Err(RuntimeError::UnknownImport(name.to_string())),
        }
    }
    Ok(())
}

/// The names a component imports at its top level, read without compiling it.
pub fn component_imports(wasm: &[u8]) -> Result<Vec<String>, RuntimeError> {
    use wasmparser::{Parser, Payload};
    let mut names = Vec::new();
    // Nested modules and components have import sections of their own.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| RuntimeError::Compile(e.to_string()))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import.map_err(|e| RuntimeError::Compile(e.to_string()))?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

#[derive(Debug, PartialEq, Eq)]
pub enum WasmKind {
    Component,
    CoreModule,
    NotWasm,
}

/// Tells a component from a core module by the binary header: `\0asm`, then a 16-bit
/// version and a 16-bit layer (0 for core modules, 1 for components).
pub fn wasm_kind(bytes: &[u8]) -> WasmKind {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => WasmKind::CoreModule,
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => WasmKind::Component,
        _ => WasmKind::NotWasm,
    }
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceState>,
    cache: ComponentCache,
    /// Components in memory by wasm sha256: every installation of the same package shares
    /// one copy of the compiled code.
    loaded: std::sync::Mutex<std::collections::HashMap<String, Component>>,
    pub config: RuntimeConfig,
    metrics: Arc<Metrics>,
    /// Instances parked for reuse, across all installations (bounded by `max_idle_instances`).
    idle_instances: Arc<std::sync::atomic::AtomicU32>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig, cache_dir: &Path, metrics: Arc<Metrics>) -> Result<Arc<Self>, RuntimeError> {
        let mut pool = PoolingAllocationConfig::default();
        // Parked instances (see `max_idle_instances`) hold slots beside the running ones.
        let instances = config.max_instances.max(1).saturating_add(config.max_idle_instances);
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .max_memories_per_component(4)
            .total_stacks(instances)
            .max_memory_size(usize::try_from(config.max_memory_mib << 20).unwrap_or(usize::MAX))
            // Reset a used slot by rewriting only its dirty pages (PAGEMAP_SCAN, Linux 6.7+)
            // instead of madvise: no page faults on reuse, no cross-CPU TLB shootdowns.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true).epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        capabilities::add_to_linker(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let cache = ComponentCache::new(cache_dir, &engine).map_err(|source| RuntimeError::Cache { path: cache_dir.display().to_string(), source })?;

        // The epoch ticker: deadlines are counted in ticks of this thread. It holds only a
        // weak handle, so it ends when the engine is dropped.
        let weak = engine.weak();
        let tick = Duration::from_millis(config.epoch_tick_ms.max(1));
        std::thread::Builder::new()
            .name("linli-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(tick);
                }
            })
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;

        Ok(Arc::new(Self { engine, linker, cache, loaded: Default::default(), config, metrics, idle_instances: Default::default() }))
    }

    /// Compile (or load from the cache) and check the component against the manifest.
    /// CPU-heavy on a miss: call from a blocking thread.
    pub fn compile(&self, wasm: &[u8], wasm_sha256: &str, manifest: &Manifest) -> Result<Component, RuntimeError> {
        match wasm_kind(wasm) {
            WasmKind::Component => {}
            WasmKind::CoreModule => return Err(RuntimeError::CoreModule),
            WasmKind::NotWasm => return Err(RuntimeError::NotWasm),
        }
        let in_memory = self.loaded.lock().ok().and_then(|loaded| loaded.get(wasm_sha256).cloned());
        let component = match in_memory {
            Some(component) => component,
            None => {
                let component = match self.cache.get(&self.engine, wasm_sha256) {
                    Lookup::Hit(component) => component,
                    Lookup::Miss => {
                        let started = std::time::Instant::now();
                        let component = Component::new(&self.engine, wasm).map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
                        tracing::info!(plugin = %manifest.id, ms = started.elapsed().as_millis() as u64, "compiled component");
                        self.cache.put(wasm_sha256, &component);
                        component
                    }
                };
                if let Ok(mut loaded) = self.loaded.lock() {
                    loaded.insert(wasm_sha256.to_string(), component.clone());
                }
                component
            }
        };
        self.check_imports(&component, manifest)?;
        Ok(component)
    }

    /// Every `linli:platform` interface the component imports, and wasi:http's outgoing
    /// handler, must belong to a capability the manifest requests, so that what the operator
    /// reviews is what the code can call.
    fn check_imports(&self, component: &Component, manifest: &Manifest) -> Result<(), RuntimeError> {
        let imports = component.component_type().imports(&self.engine).map(|(name, _)| name.to_string()).collect::<Vec<_>>();
        check_import_names(&imports, manifest)
    }

    /// Link once per installation; every request then only instantiates. A component
    /// serves its routes through `linli:platform/handler` or, as built for Spin or
    /// `wasmtime serve`, through the standard `wasi:http/incoming-handler`.
    pub fn prepare(&self, component: &Component) -> Result<Entry, RuntimeError> {
        let pre = self.linker.instantiate_pre(component).map_err(|e| {
            let message = format!("{e:#}");
            match message.split("import `").nth(1).and_then(|rest| rest.split('`').next()) {
                Some(import) => RuntimeError::UnknownImport(import.to_string()),
                None => RuntimeError::Link(message),
            }
        })?;
        let exports_wasi_http = component.component_type().exports(&self.engine).any(|(name, _)| name.starts_with(WASI_HTTP_HANDLER));
        if exports_wasi_http && !component.component_type().exports(&self.engine).any(|(name, _)| name.starts_with(LINLI_HANDLER)) {
            return ProxyPre::new(pre).map(Entry::WasiHttp).map_err(|e| RuntimeError::Link(format!("{e:#}")));
        }
        PluginPre::new(pre).map(Entry::Linli).map_err(|e| RuntimeError::Link(format!("{e:#}")))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_components_from_core_modules() {
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0"), WasmKind::CoreModule);
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0"), WasmKind::Component);
        assert_eq!(wasm_kind(b"\0asm"), WasmKind::NotWasm);
        assert_eq!(wasm_kind(b"PK\x03\x04zip!"), WasmKind::NotWasm);
    }
}
