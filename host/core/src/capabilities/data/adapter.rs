//! The WIT adapter of `data`: the grant, the per-request state and the `Host` calls.
use super::{DataError, Document, Page, Partition};
use crate::bindings::linli::platform::{data as wit, types};
use crate::capabilities::{Capability, CapabilityInfo, Deadline, Grant, RequestContext};
use crate::packages::Manifest;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "data",
    interface: "linli:platform/data",
    summary_zh: "插件私有数据存储（按插件和社区隔离）",
    summary_en: "Plugin-private document store, separate per plugin and tenant",
    always_granted: false,
    scopes: &[],
};

/// Per-request state.
pub struct DataState {
    partition: Option<Arc<Partition>>,
    deadline: Deadline,
}

impl DataState {
    pub fn new(partition: Option<Arc<Partition>>, deadline: Deadline) -> Self {
        Self { partition, deadline }
    }

    /// Run `op` on the partition within the request's deadline; `permission-denied` when
    /// the installation was not granted `data`.
    async fn with<T, F>(&self, op: impl FnOnce(Arc<Partition>) -> F) -> Result<T, types::Error>
    where
        F: std::future::Future<Output = Result<T, DataError>>,
    {
        crate::capabilities::call(&self.partition, self.deadline, INFO.name, op).await
    }
}

impl From<Document> for wit::Document {
    fn from(d: Document) -> Self {
        Self { key: d.key, value: d.value, version: d.version }
    }
}

impl From<Page> for wit::Page {
    fn from(p: Page) -> Self {
        Self { items: p.items.into_iter().map(Into::into).collect(), next_cursor: p.next_cursor }
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = Partition;
    type State = DataState;

    /// Manifest checks that belong to this capability.
    fn validate_manifest(manifest: &Manifest) -> Result<(), String> {
        if !manifest.data.indexes.is_empty() && !manifest.requests(INFO.name) {
            return Err("[data.indexes] is declared but the `data` capability is not requested".into());
        }
        for (collection, fields) in &manifest.data.indexes {
            if collection.is_empty() || fields.iter().any(|f| f.is_empty()) {
                return Err(format!("[data.indexes] `{collection}` has an empty collection or field name"));
            }
        }
        Ok(())
    }

    /// The installation's partition: its plugin, its tenant and the fields it indexes.
    fn configure(grant: &Grant<'_>) -> Partition {
        Partition {
            store: grant.store.clone(),
            plugin_id: grant.plugin_id.to_string(),
            tenant_id: grant.tenant_id.to_string(),
            indexes: grant.manifest.data.indexes.clone(),
        }
    }

    fn prepare(configured: Option<Arc<Partition>>, request: &RequestContext) -> DataState {
        DataState::new(configured, request.deadline)
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut DataState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<DataState>>(linker, project)
    }
}

impl wit::Host for DataState {
    async fn get(&mut self, collection: String, key: String) -> Result<Option<wit::Document>, types::Error> {
        self.with(|p| async move { p.get(&collection, &key).await }).await.map(|d| d.map(Into::into))
    }

    async fn put(&mut self, collection: String, key: String, value: String, expected_version: Option<u64>) -> Result<u64, types::Error> {
        self.with(|p| async move { p.put(&collection, &key, &value, expected_version).await }).await
    }

    async fn delete(&mut self, collection: String, key: String, expected_version: Option<u64>) -> Result<bool, types::Error> {
        self.with(|p| async move { p.delete(&collection, &key, expected_version).await }).await
    }

    async fn list(&mut self, collection: String, prefix: String, cursor: Option<String>, limit: u32) -> Result<wit::Page, types::Error> {
        self.with(|p| async move { p.list(&collection, &prefix, cursor.as_deref(), limit).await }).await.map(Into::into)
    }

    async fn query(&mut self, collection: String, field: String, value: String, cursor: Option<String>, limit: u32) -> Result<wit::Page, types::Error> {
        self.with(|p| async move { p.query(&collection, &field, &value, cursor.as_deref(), limit).await }).await.map(Into::into)
    }
}
