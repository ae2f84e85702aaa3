//! The WIT adapter of `log`: always granted; the per-request state counts and cuts lines.
use crate::bindings::linli::platform::log as wit;
use crate::capabilities::{Capability, CapabilityInfo, Grant, RequestContext};
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "log",
    interface: "linli:platform/log",
    summary_zh: "写入平台日志",
    summary_en: "Write to the platform log",
    always_granted: true,
    scopes: &[],
};

/// A plugin may not flood the host's log: lines past this many per request are counted
/// and dropped, and lines are cut at `MAX_LINE` bytes.
const MAX_LINES_PER_REQUEST: u32 = 200;
const MAX_LINE: usize = 4096;

pub struct LogState {
    pub plugin_id: std::sync::Arc<str>,
    pub tenant_id: std::sync::Arc<str>,
    pub request_id: String,
    lines: u32,
}

impl LogState {
    pub fn new(plugin_id: std::sync::Arc<str>, tenant_id: std::sync::Arc<str>, request_id: String) -> Self {
        Self { plugin_id, tenant_id, request_id, lines: 0 }
    }

    pub fn dropped(&self) -> u32 {
        self.lines.saturating_sub(MAX_LINES_PER_REQUEST)
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    /// Always granted, and nothing to decide per installation.
    type Configured = ();
    type State = LogState;

    fn configure(_grant: &Grant<'_>) {}

    fn prepare(_configured: Option<Arc<()>>, request: &RequestContext) -> LogState {
        LogState::new(request.plugin_id.clone(), request.tenant_id.clone(), request.request_id.clone())
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut LogState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<LogState>>(linker, project)
    }
}

impl wit::Host for LogState {
    async fn log(&mut self, level: wit::Level, message: String) {
        self.lines = self.lines.saturating_add(1);
        if self.lines > MAX_LINES_PER_REQUEST {
            return;
        }
        let mut end = message.len().min(MAX_LINE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        let (plugin, tenant, request) = (&*self.plugin_id, &*self.tenant_id, self.request_id.as_str());
        match level {
            wit::Level::Trace => tracing::trace!(target: "plugin", plugin, tenant, request, "{message}"),
            wit::Level::Debug => tracing::debug!(target: "plugin", plugin, tenant, request, "{message}"),
            wit::Level::Info => tracing::info!(target: "plugin", plugin, tenant, request, "{message}"),
            wit::Level::Warn => tracing::warn!(target: "plugin", plugin, tenant, request, "{message}"),
            wit::Level::Error => tracing::error!(target: "plugin", plugin, tenant, request, "{message}"),
        }
    }
}
